#pragma once
// The public C++ API of tobus: define a module (a handler callback) or a custom bus (receive and
// send hooks) in a few lines. The five tobus programs are built on it.
//
//   #include <tobus/tobus.hpp>
//   int main(int argc, char** argv) {
//     tobus::Program program("shout", "upper-cases every message");
//     return program.run(argc, argv, [&] {
//       tobus::ModuleOptions o;
//       o.name = "shout";
//       o.handler = [](const tobus::Message& m, int) { return tobus::Outcome::ok(upper(m.payload)); };
//       return tobus::run_module(program, o);
//     });
//   }

#include "tobus/bus/bus.hpp"
#include "tobus/cli/cli.hpp"
#include "tobus/core/error.hpp"
#include "tobus/core/keys.hpp"
#include "tobus/core/message.hpp"
#include "tobus/module/module.hpp"
#include "tobus/redis/url.hpp"
#include "tobus/send/send.hpp"
#include "tobus/util/duration.hpp"

namespace tobus {

// Attaches the module to the Redis and namespace `program` was given and runs it until
// SIGINT/SIGTERM; then ends the process by that signal (exit status 128+N), as the programs do.
int run_module(Program& program, ModuleOptions options);

// Runs a bus on the Redis `program` was given, with `options.hooks`, likewise. Both log what the
// library reports through `program` unless `options.report` was set, and tell a service manager
// (systemd's NOTIFY_SOCKET) when they are ready and when they stop unless `on_ready` and
// `on_stopping` were set.
int run_bus(Program& program, BusOptions options);

}  // namespace tobus
