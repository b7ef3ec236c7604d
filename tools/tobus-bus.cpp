// tobus-bus: the router. Runs in a terminal until Ctrl-C; starts an embedded Redis when none is
// configured.
#include <spdlog/spdlog.h>

#include <memory>

#include "tobus/bus/hooks.hpp"
#include "tobus/process/signals.hpp"
#include "tobus/redis/embedded.hpp"
#include "tobus/redis/redis.hpp"
#include "tobus/tobus.hpp"

int main(int argc, char** argv) {
  tobus::Program program("tobus-bus", "Route every message on the bus to the next hop of its route.");
  auto& app = program.app();
  bool embedded = false;
  std::string data_dir = tobus::default_data_dir();
  std::string socket = tobus::default_socket_path();
  tobus::BusOptions options;
  app.add_flag("--embedded", embedded, "Start a private redis-server even if one answers");
  app.add_option("--data-dir", data_dir, "Data directory of the embedded redis-server")
      ->envname("TOBUS_DATA_DIR")
      ->type_name("DIR")
      ->capture_default_str();
  app.add_option("--socket", socket, "Unix socket of the embedded redis-server")
      ->envname("TOBUS_SOCKET")
      ->type_name("PATH")
      ->capture_default_str();
  app.add_option("--batch", options.batch, "Entries taken per read")
      ->type_name("N")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  program.add_duration("--claim-after", options.claim_after,
                       "Take over entries a dead consumer left pending this long");
  program.add_duration("--retain", options.retain,
                       "Keep delivered entries this long as history for tobus-watch (0: none)");
  tobus::ShellHookOptions hooks;
  app.add_option("--on-receive", hooks.on_receive,
                 "Shell command fed each message taken as a JSON line; answers pass, drop or reroute")
      ->type_name("CMD");
  app.add_option("--on-send", hooks.on_send, "Shell command fed each message written, as a JSON line")
      ->type_name("CMD");
  program.add_duration("--hook-timeout", hooks.timeout,
                       "Wait this long for a hook, then pass the message and restart the hook");

  return program.run(argc, argv, [&] {
    tobus::signals::install();
    std::unique_ptr<tobus::EmbeddedRedis> server;
    tobus::RedisAddress address;
    bool configured = !program.common().redis.empty();
    if (embedded && configured)
      throw tobus::Error(tobus::ErrorKind::usage, "--embedded and --redis (or TOBUS_REDIS) exclude each other");
    if (!embedded) {
      // Without a URL: the embedded socket if a bus already runs there, then 127.0.0.1:6379.
      ::setenv("TOBUS_SOCKET", socket.c_str(), 1);
      address = program.redis_address(false);
      if (!configured && !tobus::redis_answers(address)) embedded = true;
    }
    if (embedded) {
      server = tobus::EmbeddedRedis::start(socket, data_dir);
      address = server->address();
      spdlog::info("started the embedded redis-server on '{}' (data in '{}')", socket, data_dir);
    }
    hooks.env = {"TOBUS_REDIS=" + address.url(), "TOBUS_NAMESPACE=" + program.keys().ns()};
    hooks.report = program.reporter();
    options.hooks = tobus::shell_hooks(hooks);
    {
      tobus::Bus bus(address, program.keys(), options);
      bus.run();
    }
    server.reset();  // stop the embedded server cleanly before re-raising
    tobus::signals::reraise_stop();
    return 0;
  });
}
