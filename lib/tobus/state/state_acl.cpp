// tobus-state acl: prints the ACL rules of a role (acl.hpp) as ACL SETUSER lines or an aclfile
// line. It talks to no Redis: its output is applied by whoever may (redis-cli, an aclfile).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "tobus/core/error.hpp"
#include "tobus/state/acl.hpp"
#include "tobus/state/state.hpp"
#include "tobus/util/io.hpp"
#include "tobus/util/sha256.hpp"

namespace tobus {
namespace {

// The first line of `path`, without its line end (as redis-cli's and tobus's own password files
// are kept); bounded, a regular file. One that others may read is warned about.
std::string read_password(const std::string& path, const Reporter& report) {
  auto refuse = [&path](const std::string& why) {
    throw Error(ErrorKind::usage, "cannot use the password file '" + path + "': " + why);
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
    report.warn("the password file '{}' can be read by other users (mode {:04o}); chmod 600 it", path,
                st.st_mode & 07777);
  return text;
}

}  // namespace

int run_acl(const Keys& keys, const StateOptions& o, int out_fd) {
  auto role = parse_acl_role(o.role);
  if (!role) {
    std::string all;
    for (auto n : acl_role_names) all += (all.empty() ? "" : ", ") + std::string(n);
    throw Error(ErrorKind::usage, "unknown role '" + o.role + "' (" + all + ")");
  }
  AclRules rules = acl_rules(keys, AclRequest{*role, o.name, o.types});
  std::string user = o.user.empty() ? default_acl_user(keys, *role, o.name) : o.user;
  if (!valid_acl_user(user))
    throw Error(ErrorKind::usage, "invalid user name '" + user + "' (1-128 of A-Z a-z 0-9 _ . - @)");
  // The password's SHA-256, never the password: the output may be kept in a file or a log.
  std::optional<std::string> hash;
  if (!o.password_file.empty()) hash = sha256_hex(read_password(o.password_file, o.report));
  else o.report.warn("no --password-file: user '{}' is created off (it cannot log in until a password is set)", user);
  write_output(out_fd, (o.aclfile ? aclfile_line(user, rules, hash) : acl_setuser_line(user, rules, hash)) + "\n");
  return exit_code::ok;
}

}  // namespace tobus
