#include "tobus/util/io.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

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

std::string read_secret_file(const std::string& path, std::string_view what, const Reporter& report) {
  auto refuse = [&](const std::string& why) {
    throw Error(ErrorKind::usage, "cannot use the " + std::string(what) + " '" + path + "': " + why);
  };
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) refuse(std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    refuse("not a regular file");
  }
  std::string text(4096, '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    ssize_t n = read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  close(fd);
  text.resize(got);
  text.erase(std::min(text.find('\n'), text.size()));
  if (!text.empty() && text.back() == '\r') text.pop_back();
  if (text.empty()) refuse("its first line is empty");
  if ((st.st_mode & 077) != 0)
    report.warn("the {} '{}' can be read by other users (mode {:04o}); chmod 600 it", what, path, st.st_mode & 07777);
  return text;
}

}  // namespace tobus
