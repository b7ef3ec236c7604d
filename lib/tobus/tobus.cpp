#include "tobus/tobus.hpp"

#include <string>

#include "tobus/cli/notify.hpp"
#include "tobus/process/signals.hpp"

namespace tobus {

namespace {

// What the programs tell a service manager (systemd, Type=notify), unless told otherwise.
template <class Options>
void notify_by_default(Options& options, std::string ready_status) {
  if (!options.on_ready)
    options.on_ready = [status = std::move(ready_status)] { notify_service_manager("READY=1\nSTATUS=" + status); };
  if (!options.on_stopping)
    options.on_stopping = [] { notify_service_manager("STOPPING=1\nSTATUS=stopping: finishing the work in hand"); };
}

}  // namespace

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
