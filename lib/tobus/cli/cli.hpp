#pragma once
// What every program shares: the common options, logging to stderr, and run(), which parses,
// calls the job and maps errors to exit codes, each reported once.

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tobus/core/keys.hpp"
#include "tobus/core/report.hpp"
#include "tobus/redis/url.hpp"
#include "tobus/util/duration.hpp"

namespace tobus {

struct CommonOptions {
  std::string redis;  // URL; empty: discover
  std::string password_file;  // the Redis password's file; else TOBUS_REDIS_PASSWORD, else the URL's
  TlsOptions tls;             // for a rediss:// URL
  std::string ns = "tobus";
  std::string log_level;
  int verbose = 0;
  bool quiet = false;
};

// How an option's value is made of the choices it publishes for the completions: one of them, a
// comma-separated list of them, or a template of text in which any of them (tokens) may appear.
enum class Choices { one, list, tokens };

// A DURATION option on `app`, a program or one of its subcommands (500ms, 30s, 2m, 1h; a bare
// number is seconds): `store` gets each value given, a bad one is a usage error.
CLI::Option* add_duration_option(CLI::App& app, const std::string& names, std::function<void(Millis)> store,
                                 const std::string& help);

// An option holding a size in bytes (4096, 512K, 16M, 1G: powers of 1024), shown as N: `store`
// gets each value given, a bad one is a usage error.
CLI::Option* add_size_option(CLI::App& app, const std::string& names, std::function<void(std::uint64_t)> store,
                             const std::string& help);

class Program {
 public:
  Program(std::string name, std::string description);
  CLI::App& app() { return app_; }
  const std::string& name() const { return name_; }
  CommonOptions& common() { return common_; }
  Keys keys() const { return Keys(common_.ns); }

  // An option holding a duration (500ms, 30s, 2m, 1h; a bare number is seconds).
  CLI::Option* add_duration(const std::string& names, Millis& target, const std::string& help);

  // Publishes the values an option takes, for the completions (--_options), when the tool checks
  // them itself; an option checked by CLI::IsMember publishes its set without this.
  void publish_choices(const CLI::Option* opt, Choices how, std::vector<std::string> values);

  // Parses argv, sets up logging, runs `job` and returns the process's exit code.
  int run(int argc, char** argv, const std::function<int()>& job);

  // Where Redis is: --redis, TOBUS_REDIS, else find_redis(wait_for_bus) (embedded.hpp). With a
  // URL, the password may come from --redis-password-file or TOBUS_REDIS_PASSWORD instead of the
  // URL (never both: Error(usage)), so that it is not on any command line. The --tls-* options
  // go with a rediss:// URL only (else Error(usage)).
  RedisAddress redis_address(bool wait_for_bus = true) const;

  // What the library reports, logged to stderr at the level -v/-q/--log-level chose (valid once
  // run() has parsed the options).
  Reporter reporter() const;

 private:
  std::string name_;
  CLI::App app_;
  CommonOptions common_;
  std::map<const CLI::Option*, std::pair<Choices, std::vector<std::string>>> choices_;
};

// The commands of `app` (a program with subcommands) with their arguments and options, for the
// end of its --help (each command's own --help has the details).
std::string commands_help(const CLI::App& app);

}  // namespace tobus
