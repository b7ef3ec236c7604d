#include "tobus/cli/notify.hpp"

#include <string>

#ifdef TOBUS_HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace tobus {

// libsystemd's sd_notify rather than the socket protocol written here: it is the reference
// implementation of the protocol (abstract sockets, credentials, the socket's checks) and is a
// well-kept Debian package (libsystemd-dev); it is a no-op without NOTIFY_SOCKET.
bool notify_service_manager(std::string_view state) {
#ifdef TOBUS_HAVE_LIBSYSTEMD
  return sd_notify(0, std::string(state).c_str()) > 0;
#else
  (void)state;
  return false;
#endif
}

bool can_notify_service_manager() {
#ifdef TOBUS_HAVE_LIBSYSTEMD
  return true;
#else
  return false;
#endif
}

}  // namespace tobus
