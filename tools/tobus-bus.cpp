// tobus-bus: the router. Runs in a terminal until Ctrl-C; starts an embedded Redis when none is
// configured.
#include <spdlog/spdlog.h>

#include <memory>

#include "tobus/bus/hooks.hpp"
#include "tobus/cli/config.hpp"
#include "tobus/cli/notify.hpp"
#include "tobus/process/signals.hpp"
#include "tobus/redis/embedded.hpp"
#include "tobus/redis/redis.hpp"
#include "tobus/tobus.hpp"

namespace {

// What the command line asked for.
struct Cli {
  bool embedded = false;
  std::string data_dir = tobus::default_data_dir();
  std::string socket = tobus::default_socket_path();
  tobus::BusOptions options;
  tobus::ShellHookOptions hooks;
  bool pass_password = false;
};

void add_options(tobus::Program& program, Cli& cli) {
  auto& app = program.app();
  app.add_flag("--embedded", cli.embedded, "Start a private redis-server even if one answers");
  app.add_option("--data-dir", cli.data_dir, "Data directory of the embedded redis-server")
      ->envname("TOBUS_DATA_DIR")
      ->type_name("DIR")
      ->capture_default_str();
  app.add_option("--socket", cli.socket, "Unix socket of the embedded redis-server")
      ->envname("TOBUS_SOCKET")
      ->type_name("PATH")
      ->capture_default_str();
  app.add_option("--batch", cli.options.batch, "Entries taken per read")
      ->type_name("N")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  program.add_duration("--claim-after", cli.options.claim_after,
                       "Take over entries a dead consumer left pending this long");
  program.add_duration("--retain", cli.options.retain,
                       "Keep delivered entries this long as history for tobus-watch (0: none)");
  app.add_option("--on-receive", cli.hooks.on_receive,
                 "Shell command fed each message taken as a JSON line; answers pass, drop or reroute")
      ->type_name("CMD");
  app.add_option("--on-send", cli.hooks.on_send, "Shell command fed each message written, as a JSON line")
      ->type_name("CMD");
  program.add_duration("--hook-timeout", cli.hooks.timeout,
                       "Wait this long for a hook, then pass the message and restart the hook");
  app.add_flag("--pass-redis-password", cli.pass_password,
               "Give the hooks the Redis password in TOBUS_REDIS (by default it is left out)");
}

// The Redis to route on: the one configured; without one, the embedded socket if a bus already
// runs there, then 127.0.0.1:6379; else (or with --embedded) an embedded server started here,
// left in `server` to be stopped when the bus stops.
tobus::RedisAddress bus_redis(tobus::Program& program, const Cli& cli,
                              std::unique_ptr<tobus::EmbeddedRedis>& server) {
  bool configured = !program.common().redis.empty();
  if (cli.embedded && configured)
    throw tobus::Error(tobus::ErrorKind::usage, "--embedded and --redis (or TOBUS_REDIS) exclude each other");
  if (!cli.embedded) {
    ::setenv("TOBUS_SOCKET", cli.socket.c_str(), 1);
    auto address = program.redis_address(false);
    if (configured || tobus::redis_answers(address)) return address;
  }
  server = tobus::EmbeddedRedis::start(cli.socket, cli.data_dir, program.reporter());
  spdlog::info("started the embedded redis-server on '{}' (data in '{}')", cli.socket, cli.data_dir);
  return server->address();
}

// Routes until SIGINT/SIGTERM, then ends the process by that signal.
int route(tobus::Program& program, Cli& cli) {
  tobus::signals::install();
  std::unique_ptr<tobus::EmbeddedRedis> server;
  tobus::RedisAddress address = bus_redis(program, cli, server);
  cli.hooks.env = tobus::redis_environment(address, cli.pass_password);
  cli.hooks.env.push_back("TOBUS_NAMESPACE=" + program.keys().ns());
  cli.hooks.report = cli.options.report = program.reporter();
  cli.options.hooks = tobus::shell_hooks(cli.hooks);
  // Type=notify: systemd counts the bus started once it routes, and stopping once told.
  tobus::notify_by_default(cli.options, "routing on " + address.display());
  {
    tobus::Bus bus(address, program.keys(), cli.options);
    bus.run();
  }
  server.reset();  // stop the embedded server cleanly before re-raising
  tobus::signals::reraise_stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  tobus::Program program("tobus-bus", "Route every message on the bus to the next hop of its route.");
  Cli cli;
  add_options(program, cli);
  tobus::add_config_option(program);
  return program.run(argc, argv, [&] { return route(program, cli); });
}
