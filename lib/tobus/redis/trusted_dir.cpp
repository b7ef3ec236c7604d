#include "tobus/redis/trusted_dir.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "tobus/core/error.hpp"

namespace tobus {
namespace {

const char* label(PrivateDir which) { return which == PrivateDir::runtime ? "runtime directory" : "data directory"; }

// The hint for a directory that must go away or be replaced by another.
const char* elsewhere(PrivateDir which) {
  return which == PrivateDir::runtime ? "remove it or set XDG_RUNTIME_DIR" : "remove it or set TOBUS_DATA_DIR";
}

[[noreturn]] void refuse(const std::string& what, const std::string& path, const std::string& why,
                         const std::string& hint) {
  throw Error(ErrorKind::failed, "refusing " + what + " '" + path + "': " + why + " (" + hint + ")");
}

std::string octal(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

std::string without_trailing_slashes(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

// The directory part of `path` ("." for a bare name, "/" for a name in the root).
std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Opens `path` as a directory without following a symbolic link in its last component. -1 when it
// does not exist; refuses a symbolic link, a non-directory and what it cannot open.
int open_dir(const std::string& path, PrivateDir which) {
  int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) return fd;
  int err = errno;
  if (err == ENOENT) return -1;
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (S_ISLNK(st.st_mode)) refuse(label(which), path, "it is a symbolic link", elsewhere(which));
    if (!S_ISDIR(st.st_mode)) refuse(label(which), path, "not a directory", elsewhere(which));
    if (st.st_uid != geteuid())
      refuse(label(which), path, "owned by uid " + std::to_string(st.st_uid) + ", not you", elsewhere(which));
  }
  refuse(label(which), path, std::strerror(err), elsewhere(which));
}

// The checks on an open directory that do not depend on who made it: a directory of ours that
// nobody else can write in (who can write in it can replace what is in it).
struct stat check_dir(int fd, const std::string& path, PrivateDir which) {
  struct stat st {};
  if (fstat(fd, &st) != 0) refuse(label(which), path, std::strerror(errno), elsewhere(which));
  if (!S_ISDIR(st.st_mode)) refuse(label(which), path, "not a directory", elsewhere(which));
  if (st.st_uid != geteuid())
    refuse(label(which), path, "owned by uid " + std::to_string(st.st_uid) + ", not you", elsewhere(which));
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    refuse(label(which), path, "others can write in it", "mode " + octal(st.st_mode) + "; chmod 700 it or remove it");
  return st;
}

void make_parents(const std::string& path) {
  for (std::size_t pos = path.find('/', 1); pos != std::string::npos; pos = path.find('/', pos + 1)) {
    std::string partial = path.substr(0, pos);
    if (mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST)
      throw Error(ErrorKind::failed, "cannot create '" + partial + "': " + std::strerror(errno));
  }
}

}  // namespace

void make_private_dir(const std::string& given, PrivateDir which, const Reporter& report) {
  std::string path = without_trailing_slashes(given);
  make_parents(path);
  bool created = mkdir(path.c_str(), 0700) == 0;
  if (!created && errno != EEXIST)
    throw Error(ErrorKind::failed, "cannot create " + std::string(label(which)) + " '" + path +
                                       "': " + std::strerror(errno));
  Fd fd(open_dir(path, which));
  if (fd.get() < 0) refuse(label(which), path, "it vanished as it was created", elsewhere(which));
  struct stat st = check_dir(fd.get(), path, which);
  // Ours and closed to writers: what is in it is ours. Others' read access goes too (the AOF holds
  // every message); a directory we just made gets exactly 0700 whatever the umask.
  if (created || (st.st_mode & 07777) != 0700) {
    if (fchmod(fd.get(), 0700) != 0) refuse(label(which), path, std::strerror(errno), elsewhere(which));
    if (!created) report.debug("{} '{}': mode {} made 0700", label(which), path, octal(st.st_mode));
  }
}

bool trusted_socket(const std::string& given) {
  std::string socket = without_trailing_slashes(given);
  std::string dir = dir_of(socket);
  std::string name = socket.substr(socket.rfind('/') == std::string::npos ? 0 : socket.rfind('/') + 1);
  Fd fd(open_dir(dir, PrivateDir::runtime));
  if (fd.get() < 0) return false;
  check_dir(fd.get(), dir, PrivateDir::runtime);
  struct stat st {};
  if (fstatat(fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return false;
    refuse("socket", socket, std::strerror(errno), "remove it");
  }
  if (!S_ISSOCK(st.st_mode)) refuse("socket", socket, "not a socket", "remove it");
  if (st.st_uid != geteuid())
    refuse("socket", socket, "owned by uid " + std::to_string(st.st_uid) + ", not you", "remove it");
  return true;
}

std::string untrusted_listener(int port) {
  // /proc/net/tcp prints each 32-bit word of an address as the number it is in host order.
  const unsigned loopback = htonl(INADDR_LOOPBACK);
  const unsigned v4mapped = htonl(0xffff);
  std::vector<unsigned long> uids;
  for (const char* file : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);  // the header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state, queues, timer, retransmits;
      unsigned long uid = 0;
      fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid;
      auto colon = local.rfind(':');
      if (!fields || state != "0A" || colon == std::string::npos) continue;  // 0A: LISTEN
      if (std::strtol(local.c_str() + colon + 1, nullptr, 16) != port) continue;
      std::string address = local.substr(0, colon);
      std::vector<unsigned> words;
      for (std::size_t at = 0; at + 8 <= address.size(); at += 8)
        words.push_back(static_cast<unsigned>(std::stoul(address.substr(at, 8), nullptr, 16)));
      bool reaches_loopback = false;  // a listener that a connection to 127.0.0.1 can reach
      if (words.size() == 1) reaches_loopback = words[0] == loopback || words[0] == 0;
      if (words.size() == 4)
        reaches_loopback = words[0] == 0 && words[1] == 0 &&
                           ((words[2] == 0 && words[3] == 0) || (words[2] == v4mapped && words[3] == loopback));
      if (reaches_loopback) uids.push_back(uid);
    }
  }
  if (uids.empty()) return "cannot tell which user runs it";
  const struct passwd* redis = getpwnam("redis");
  for (unsigned long uid : uids)
    if (uid != geteuid() && uid != 0 && !(redis && uid == redis->pw_uid))
      return "it runs as uid " + std::to_string(uid) + ", not as you, root or redis";
  return {};
}

}  // namespace tobus
