#include "tobus/cli/cli.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>

#include "tobus/cli/config.hpp"
#include "tobus/core/error.hpp"
#include "tobus/core/message.hpp"
#include "tobus/redis/embedded.hpp"
#include "tobus/util/io.hpp"
#include "tobus/util/size.hpp"

namespace tobus {
namespace {

void setup_logging(const std::string& program, const CommonOptions& o) {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  if (std::getenv("NO_COLOR")) sink->set_color_mode(spdlog::color_mode::never);
  auto logger = std::make_shared<spdlog::logger>(program, sink);
  logger->set_pattern("%n: %^%l%$: %v");
  auto level = spdlog::level::warn;
  if (o.verbose == 1) level = spdlog::level::info;
  if (o.verbose >= 2) level = spdlog::level::debug;
  if (o.quiet) level = spdlog::level::err;
  if (!o.log_level.empty()) level = spdlog::level::from_str(o.log_level == "warn" ? "warning" : o.log_level);
  logger->set_level(level);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
}

// The option table that --_options prints, on which the completions are built (git's
// --git-completion-helper), so that they follow the parser and cannot drift. One line per option,
// then one per command, five fields separated by tabs:
//
//   NAMES<TAB>VALUE<TAB>DESCRIPTION<TAB>CHOICES<TAB>COMMANDS
//
//   NAMES        the option's names, comma-separated ("-r,--redis"); empty on a command's line
//   VALUE        the kind of value it takes (URL, DURATION, ...), as --help and the man page show
//                it; empty for a flag
//   DESCRIPTION  one line
//   CHOICES      empty when the value is free; else how the value is made of the words that
//                follow, all separated by spaces: "one always failed never" (one of them),
//                "list sent routed ..." (a comma-separated list of them), "tokens %e %t ..."
//                (a template: text with any of these tokens in it)
//   COMMANDS     where the option is accepted, as command paths separated by commas: a path is
//                the names of the commands and subcommands, separated by spaces ("get",
//                "dead retry"), and the empty path is the program itself; so an empty field is
//                the program alone, ",get" the program and its command get. On a command's
//                line: the command's own path.
//
// An option that several commands have is one line, with the first one's description. The first
// version of the table had the first three fields only; readers ignore fields they do not know,
// and lines with empty NAMES, so later fields may be added at the end.
struct TableLine {
  std::string names, value, description, choices;
  std::vector<std::string> paths;
};

std::string join(const std::vector<std::string>& words, std::string_view separator) {
  std::string out;
  for (std::size_t i = 0; i < words.size(); ++i) out += (i == 0 ? "" : std::string(separator)) + words[i];
  return out;
}

std::vector<const CLI::App*> subcommands(const CLI::App& app) {
  return app.get_subcommands([](const CLI::App*) { return true; });
}

std::string child_path(const std::string& path, const CLI::App& sub) {
  return path.empty() ? sub.get_name() : path + " " + sub.get_name();
}

// The paths where an option of `app` (at `path`) is accepted: there, and in every subcommand that
// lets the options it does not know fall through to it.
void reach(const CLI::App& app, const std::string& path, std::vector<std::string>& out) {
  out.push_back(path);
  for (const CLI::App* sub : subcommands(app))
    if (sub->get_fallthrough()) reach(*sub, child_path(path, *sub), out);
}

// The set of a CLI::IsMember check, from the type name CLI11 shows ("POLICY:{always,failed}").
std::vector<std::string> member_set(const std::string& type_name) {
  std::size_t open = type_name.find(":{");
  if (open == std::string::npos) return {};
  std::size_t close = type_name.find('}', open);
  std::string set = type_name.substr(open + 2, close == std::string::npos ? 0 : close - open - 2);
  if (set.empty() || set.find("->") != std::string::npos) return {};  // a map, not a set
  std::vector<std::string> out;
  for (std::size_t at = 0; at <= set.size();) {
    std::size_t comma = std::min(set.find(',', at), set.size());
    out.push_back(set.substr(at, comma - at));
    at = comma + 1;
  }
  return out;
}

using ChoiceMap = std::map<const CLI::Option*, std::pair<Choices, std::vector<std::string>>>;

void collect_options(const CLI::App& app, const std::string& path, const ChoiceMap& published,
                     std::vector<TableLine>& lines) {
  std::vector<std::string> where;
  reach(app, path, where);
  for (const CLI::Option* opt : app.get_options()) {
    if (opt->get_group().empty() || opt->get_name().empty()) continue;
    if (opt->get_positional() && opt->get_lnames().empty() && opt->get_snames().empty()) continue;
    std::string names;
    for (const auto& s : opt->get_snames()) names += (names.empty() ? "-" : ",-") + s;
    for (const auto& l : opt->get_lnames()) names += (names.empty() ? "--" : ",--") + l;
    auto same = std::find_if(lines.begin(), lines.end(), [&](const TableLine& l) { return l.names == names; });
    if (same != lines.end()) {
      for (const auto& p : where)
        if (std::find(same->paths.begin(), same->paths.end(), p) == same->paths.end()) same->paths.push_back(p);
      continue;
    }
    TableLine line;
    line.names = names;
    // The type name without the checks CLI11 appends ("N:INT in [1 - 4096]" → "N").
    std::string type = opt->get_type_size() == 0 ? "" : opt->get_type_name();
    line.value = type.substr(0, type.find(':'));
    line.description = opt->get_description();
    if (auto p = published.find(opt); p != published.end()) {
      static const char* const how[] = {"one", "list", "tokens"};
      line.choices = std::string(how[static_cast<int>(p->second.first)]) + " " + join(p->second.second, " ");
    } else if (auto set = member_set(type); !set.empty()) {
      line.choices = (opt->get_delimiter() == ',' ? "list " : "one ") + join(set, " ");
    }
    line.paths = where;
    lines.push_back(std::move(line));
  }
  for (const CLI::App* sub : subcommands(app)) collect_options(*sub, child_path(path, *sub), published, lines);
}

void print_commands(const CLI::App& app, const std::string& path) {
  for (const CLI::App* sub : subcommands(app)) {
    std::string here = child_path(path, *sub);
    std::cout << "\t\t" << sub->get_description() << "\t\t" << here << '\n';
    print_commands(*sub, here);
  }
}

void print_options(const CLI::App& app, const ChoiceMap& published) {
  std::vector<TableLine> lines;
  collect_options(app, "", published, lines);
  for (const auto& l : lines)
    std::cout << l.names << '\t' << l.value << '\t' << l.description << '\t' << l.choices << '\t'
              << join(l.paths, ",") << '\n';
  print_commands(app, "");
}

}  // namespace

Program::Program(std::string name, std::string description)
    : name_(std::move(name)), app_(std::move(description), name_) {
  app_.set_version_flag("--version", name_ + " " + TOBUS_VERSION, "Print the version and exit");
  app_.set_help_flag("-h,--help", "Print this help and exit");
  app_.add_option("-r,--redis", common_.redis,
                  "Redis URL: redis://[user:password@]host:port/db, rediss://… (TLS) or unix:///path.sock?db=N")
      ->envname("TOBUS_REDIS")
      ->type_name("URL");
  app_.add_option("--redis-password-file", common_.password_file,
                  "Read the Redis password from the first line of PATH (else TOBUS_REDIS_PASSWORD)")
      ->envname("TOBUS_REDIS_PASSWORD_FILE")
      ->type_name("PATH");
  app_.add_option("--tls-ca", common_.tls.ca,
                  "With rediss://: trust the CA certificates in PATH (a PEM file or a directory), not the system's")
      ->envname("TOBUS_TLS_CA")
      ->type_name("PATH");
  app_.add_option("--tls-cert", common_.tls.cert, "With rediss://: present this client certificate (PEM)")
      ->envname("TOBUS_TLS_CERT")
      ->type_name("PATH");
  app_.add_option("--tls-key", common_.tls.key, "With rediss://: the client certificate's private key (PEM)")
      ->envname("TOBUS_TLS_KEY")
      ->type_name("PATH");
  app_.add_option("--tls-server-name", common_.tls.server_name,
                  "With rediss://: the name the server's certificate must carry (default: the URL's host)")
      ->envname("TOBUS_TLS_SERVER_NAME")
      ->type_name("NAME");
  app_.add_flag("--tls-insecure", common_.tls.insecure,
                "With rediss://: do not verify the server's certificate (encrypted, but not authenticated)")
      ->envname("TOBUS_TLS_INSECURE");
  app_.add_option("-n,--namespace", common_.ns, "Prefix of every key this bus uses")
      ->envname("TOBUS_NAMESPACE")
      ->type_name("NAME")
      ->check([](const std::string& s) {
        return valid_name(s) ? std::string() : "a namespace is 1-64 of A-Z a-z 0-9 _ . -";
      })
      ->capture_default_str();
  app_.add_option("--log-level", common_.log_level, "Log level: trace, debug, info, warn, error, off")
      ->type_name("LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  app_.add_flag("-v,--verbose", common_.verbose, "More logging on stderr (-v info, -vv debug)");
  app_.add_flag("-q,--quiet", common_.quiet, "Log errors only");
  app_.add_flag_callback(
          "--_options",
          [this] {
            print_options(app_, choices_);
            throw CLI::Success();
          },
          "Print the options, one per line, for completions")
      ->group("");
}

void Program::publish_choices(const CLI::Option* opt, Choices how, std::vector<std::string> values) {
  choices_[opt] = {how, std::move(values)};
}

CLI::Option* add_duration_option(CLI::App& app, const std::string& names, std::function<void(Millis)> store,
                                 const std::string& help) {
  auto* opt = app.add_option_function<std::string>(
      names,
      [store = std::move(store), names](const std::string& text) {
        auto d = parse_duration(text);
        if (!d)
          throw CLI::ValidationError(names, "invalid duration '" + text +
                                                "' (use 500ms, 30s, 2m, 1h; a bare number is seconds)");
        store(*d);
      },
      help);
  opt->type_name("DURATION");
  return opt;
}

CLI::Option* add_size_option(CLI::App& app, const std::string& names, std::function<void(std::uint64_t)> store,
                             const std::string& help) {
  auto* opt = app.add_option_function<std::string>(
      names,
      [store = std::move(store), names](const std::string& text) {
        auto bytes = parse_size(text);
        if (!bytes) throw CLI::ValidationError(names, "invalid size '" + text + "' (use 4096, 512K, 16M, 1G)");
        store(*bytes);
      },
      help);
  opt->type_name("N");
  return opt;
}

CLI::Option* Program::add_duration(const std::string& names, Millis& target, const std::string& help) {
  auto* opt = add_duration_option(app_, names, [&target](Millis d) { target = d; }, help);
  opt->default_str(format_duration(target));
  return opt;
}

Reporter Program::reporter() const {
  auto logger = spdlog::default_logger();
  Severity least = Severity::error;
  switch (logger->level()) {
    case spdlog::level::trace:
    case spdlog::level::debug: least = Severity::debug; break;
    case spdlog::level::info: least = Severity::info; break;
    case spdlog::level::warn: least = Severity::warn; break;
    default: break;
  }
  return Reporter(
      [logger](Severity s, std::string_view text) {
        static constexpr spdlog::level::level_enum levels[] = {spdlog::level::debug, spdlog::level::info,
                                                               spdlog::level::warn, spdlog::level::err};
        logger->log(levels[static_cast<int>(s)], "{}", text);
      },
      least);
}

namespace {

// The --tls-* options checked, their files made absolute: a handler told them runs elsewhere.
TlsOptions checked_tls(TlsOptions tls) {
  if (tls.cert.empty() != tls.key.empty())
    throw Error(ErrorKind::usage, "--tls-cert and --tls-key go together (TOBUS_TLS_CERT, TOBUS_TLS_KEY)");
  for (auto [option, path] : {std::pair{"--tls-ca", &tls.ca}, std::pair{"--tls-cert", &tls.cert},
                              std::pair{"--tls-key", &tls.key}}) {
    if (path->empty()) continue;
    if (access(path->c_str(), R_OK) != 0)
      throw Error(ErrorKind::usage, std::string("cannot read ") + option + " '" + *path + "': " + std::strerror(errno));
    if (!path->starts_with('/')) {
      char* real = realpath(path->c_str(), nullptr);
      if (real != nullptr) *path = real;
      std::free(real);
    }
  }
  return tls;
}

}  // namespace

RedisAddress Program::redis_address(bool wait_for_bus) const {
  if (common_.redis.empty()) {
    if (common_.tls.any())
      throw Error(ErrorKind::usage, "the --tls-* options (TOBUS_TLS_*) need a rediss:// URL in --redis or TOBUS_REDIS");
    if (!common_.password_file.empty() || std::getenv("TOBUS_REDIS_PASSWORD"))
      reporter().info("no Redis URL (--redis, TOBUS_REDIS): the password given is not used");
    return find_redis(wait_for_bus, reporter());
  }
  std::optional<std::string> password;
  std::string source;
  if (!common_.password_file.empty()) {
    password = read_secret_file(common_.password_file, "Redis password file", reporter());
    source = "the password file";
  } else if (const char* p = std::getenv("TOBUS_REDIS_PASSWORD"); p && *p) {
    password = p;
    source = "TOBUS_REDIS_PASSWORD";
  }
  RedisAddress address = parse_redis_url(common_.redis, password.has_value());
  if (common_.tls.any() && !address.tls)
    throw Error(ErrorKind::usage, "the --tls-* options (TOBUS_TLS_*) need a rediss:// URL, not '" + address.display() + "'");
  if (address.tls) address.tls_options = checked_tls(common_.tls);
  if (password) {
    if (!address.password.empty())
      throw Error(ErrorKind::usage, "the Redis password is given twice: in the URL and in " + source);
    address.password = std::move(*password);
  }
  return address;
}

int Program::run(int argc, char** argv, const std::function<int()>& job) {
  try {
    app_.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app_.help();
    return exit_code::ok;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << app_.help("", CLI::AppFormatMode::All);
    return exit_code::ok;
  } catch (const CLI::CallForVersion& e) {
    std::cout << e.what() << '\n';
    return exit_code::ok;
  } catch (const CLI::Success&) {
    return exit_code::ok;
  } catch (const CLI::ParseError& e) {
    // CLI11 checks required options before leftovers; a stray option is the likelier mistake.
    std::string what = e.what();
    if (dynamic_cast<const CLI::RequiredError*>(&e) && !app_.remaining().empty()) {
      auto rest = app_.remaining();
      what = "unexpected argument '" + rest.front() + "'";
    }
    // A bad config file (--config) is the file's mistake, not the command line's: one line that
    // says where in the file.
    std::string origin = config_origin(what);
    std::cerr << name_ << ": error: " << origin << what << "\n";
    if (origin.empty() && !dynamic_cast<const CLI::ConfigError*>(&e) && !dynamic_cast<const CLI::FileError*>(&e))
      std::cerr << "Try '" << name_ << " --help'.\n";
    return exit_code::usage;
  }
  setup_logging(name_, common_);
  try {
    return job();
  } catch (const Error& e) {
    spdlog::error("{}", e.what());
    if (e.kind() == ErrorKind::usage) std::cerr << "Try '" << name_ << " --help'.\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return exit_code::failed;
  }
}

namespace {

void add_commands_help(const CLI::App& app, const std::string& prefix, std::string& out) {
  auto line = [&out](const std::string& left, const std::string& right) {
    constexpr std::size_t column = 30;
    std::string pad = left.size() < column ? std::string(column - left.size(), ' ')
                                            : "\n" + std::string(column, ' ');
    out += left + pad + right + "\n";
  };
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    std::string usage = "  " + prefix + sub->get_name();
    std::vector<const CLI::Option*> options;
    for (const CLI::Option* opt : sub->get_options()) {
      if (opt->get_lnames().empty() && opt->get_snames().empty() && opt->get_positional()) {
        std::string arg = opt->get_name() + (opt->get_items_expected_max() > 1 ? "..." : "");
        usage += " " + (opt->get_required() ? arg : "[" + arg + "]");
      } else if (!opt->get_lnames().empty() && opt->get_lnames().front() != "help") {
        options.push_back(opt);
      }
    }
    if (!sub->get_subcommands([](const CLI::App*) { return true; }).empty()) {
      add_commands_help(*sub, prefix + sub->get_name() + " ", out);
      continue;
    }
    line(usage, sub->get_description());
    for (const CLI::Option* opt : options) {
      std::string value = opt->get_type_size() == 0 ? "" : " " + opt->get_type_name();
      line("      --" + opt->get_lnames().front() + value, opt->get_description());
    }
  }
}

}  // namespace

std::string commands_help(const CLI::App& app) {
  std::string out = "Commands (a command's options follow it; see also COMMAND --help):\n";
  add_commands_help(app, "", out);
  return out;
}

}  // namespace tobus
