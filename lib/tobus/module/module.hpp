#pragma once
// A module: attaches to the bus under a name, takes messages from its inbox, runs a handler for
// each (a callback in this process, or a command in its own process group) and hands the result
// back to the bus. Instances of one name share the inbox (one consumer group).

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tobus/core/keys.hpp"
#include "tobus/core/message.hpp"
#include "tobus/core/report.hpp"
#include "tobus/module/join_options.hpp"
#include "tobus/process/service_options.hpp"
#include "tobus/redis/url.hpp"
#include "tobus/util/duration.hpp"

namespace tobus {

// What a handler made of a message: rc 0 forwards `payload`; 75 asks for a retry with backoff;
// anything else fails the message (dead letter; a waiting sender is told `error`).
struct Outcome {
  int rc = 0;
  std::string payload;
  std::string error;

  static Outcome ok(std::string payload) { return {0, std::move(payload), {}}; }
  static Outcome retry(std::string why) { return {75, {}, std::move(why)}; }
  static Outcome fail(int rc, std::string why) { return {rc, {}, std::move(why)}; }
};

// An in-process handler; `attempt` counts from 1.
using Handler = std::function<Outcome(const Message& message, int attempt)>;

struct ModuleOptions {
  std::string name;
  std::vector<std::string> command;  // run per message; empty: `handler`, or pass-through
  // per_message: COMMAND runs once per message. lines/framed: COMMAND is a co-process, started
  // once and fed messages (docs/coprocess.md); restarted when it dies, reloaded on a change.
  enum class Mode { per_message, lines, framed } mode = Mode::per_message;
  std::vector<std::string> reload_on;  // co-process: more paths whose change reloads it
  Handler handler;
  int jobs = 1;                       // commands running at a time
  int retries = 3;                    // runs after the first one that asked for a retry
  Millis backoff{500};                // first retry delay, doubling
  std::optional<Millis> timeout;      // kill the command's process group after this long
  Millis claim_after{15'000};
  int batch = 256;                    // entries per read for in-process handlers
  std::vector<std::string> types;     // joined types: `@TYPE` hops copy messages to this module
  std::optional<JoinOptions> join;    // collect groups and handle each once
  // A longer result fails the message; a per-message command is stopped once its output passes
  // it (or service.max_output, if lower), a co-process restarted.
  std::size_t max_payload = default_max_payload;
  // Per-message commands: the pool, work dirs, callbacks and limits (docs/service.md). Its
  // `timeout` is set from `timeout` above by the Module.
  ServiceOptions service;
  // Handlers, services and co-processes get TOBUS_REDIS with the password only when this is set
  // (tobus(7), Secrets): they run code that reads data from anyone.
  bool pass_redis_password = false;
  // Where what happens along the way is told (a reconnection, a skipped entry); silent by default.
  Reporter report;
  // Called once the module is attached (registered, its inbox's group there: a message sent from
  // now on is handled), and once when a stop began, before the handlers in flight are waited
  // for; for a service manager (run_module tells systemd).
  std::function<void()> on_ready;
  std::function<void()> on_stopping;
};

inline constexpr int rc_tempfail = 75;  // EX_TEMPFAIL
inline constexpr int rc_timeout = 124;

class Module {
 public:
  Module(RedisAddress address, Keys keys, ModuleOptions options);
  // Runs until SIGINT/SIGTERM (call signals::install() first): then stops taking work, lets
  // running handlers finish, acknowledges, deregisters and returns. A second signal kills the
  // handlers; their messages stay pending and are redelivered.
  void run();

 private:
  RedisAddress address_;
  Keys keys_;
  ModuleOptions options_;
};

}  // namespace tobus
