#include "tobus/tobus.hpp"

#include <string>

#include "tobus/cli/notify.hpp"
#include "tobus/process/signals.hpp"

namespace tobus {

int run_module(Program& program, ModuleOptions options) {
  if (!options.report) options.report = program.reporter();
  notify_by_default(options, "attached as module '" + options.name + "'");
  signals::install();
  Module module(program.redis_address(), program.keys(), std::move(options));
  module.run();
  signals::reraise_stop();
}

int run_bus(Program& program, BusOptions options) {
  signals::install();
  if (!options.report) options.report = program.reporter();
  notify_by_default(options, "routing");
  Bus bus(program.redis_address(), program.keys(), std::move(options));
  bus.run();
  signals::reraise_stop();
}

}  // namespace tobus
