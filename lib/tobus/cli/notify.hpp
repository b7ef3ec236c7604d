#pragma once
// Telling a service manager how the program is doing (systemd's sd_notify(3) protocol): READY=1
// once it works (the bus routes, the module is attached), STOPPING=1 when a stop began, STATUS=
// lines for `systemctl status`. Does nothing when NOTIFY_SOCKET is not set (not run as a
// Type=notify service) or when tobus was built without libsystemd.

#include <string_view>

namespace tobus {

// Sends `state` (newline-separated VAR=VALUE assignments) to the service manager. Failing to tell
// it is not an error of the program: returns whether it was told.
bool notify_service_manager(std::string_view state);

// Whether this build can tell a service manager anything (built with libsystemd).
bool can_notify_service_manager();

}  // namespace tobus
