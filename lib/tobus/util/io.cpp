#include "tobus/util/io.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "tobus/core/error.hpp"
#include "tobus/process/signals.hpp"

namespace tobus {

void end_by_sigpipe() { signals::die_by(SIGPIPE); }

void write_output(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EPIPE) end_by_sigpipe();
    if (n < 0) throw Error(ErrorKind::failed, std::string("cannot write to stdout: ") + std::strerror(errno));
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

bool write_fully(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

std::string read_all(int fd, std::string_view what) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(ErrorKind::failed, "cannot read " + std::string(what) + ": " + std::strerror(errno));
    if (n == 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

}  // namespace tobus
