#pragma once
// Telling a service manager how the program is doing (systemd's sd_notify(3) protocol): READY=1
// once it works (the bus routes, the module is attached), STOPPING=1 when a stop began, STATUS=
// lines for `systemctl status`. Does nothing when NOTIFY_SOCKET is not set (not run as a
// Type=notify service) or when tobus was built without libsystemd.

#include <string>
#include <string_view>
#include <utility>

namespace tobus {

// Sends `state` (newline-separated VAR=VALUE assignments) to the service manager. Failing to tell
// it is not an error of the program: returns whether it was told.
bool notify_service_manager(std::string_view state);

// Whether this build can tell a service manager anything (built with libsystemd).
bool can_notify_service_manager();

// Sets a loop's `on_ready` and `on_stopping` (BusOptions, ModuleOptions), where the caller left
// them empty, to tell the service manager READY=1 with `ready_status`, and STOPPING=1.
template <class Options>
void notify_by_default(Options& options, std::string ready_status) {
  if (!options.on_ready)
    options.on_ready = [status = std::move(ready_status)] { notify_service_manager("READY=1\nSTATUS=" + status); };
  if (!options.on_stopping)
    options.on_stopping = [] { notify_service_manager("STOPPING=1\nSTATUS=stopping: finishing the work in hand"); };
}

}  // namespace tobus
