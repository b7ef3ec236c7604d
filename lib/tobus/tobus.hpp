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

#include "tobus/bus.hpp"
#include "tobus/cli.hpp"
#include "tobus/duration.hpp"
#include "tobus/error.hpp"
#include "tobus/keys.hpp"
#include "tobus/message.hpp"
#include "tobus/module.hpp"
#include "tobus/send.hpp"
#include "tobus/url.hpp"

namespace tobus {

// Attaches the module to the Redis and namespace `program` was given and runs it until
// SIGINT/SIGTERM; then ends the process by that signal (exit status 128+N), as the programs do.
int run_module(Program& program, ModuleOptions options);

// Runs a bus on the Redis `program` was given, with `options.hooks`, likewise.
int run_bus(Program& program, BusOptions options);

}  // namespace tobus
