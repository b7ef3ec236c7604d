// tobus-state acl: prints the ACL rules of a role (acl.hpp) as ACL SETUSER lines or an aclfile
// line. It talks to no Redis: its output is applied by whoever may (redis-cli, an aclfile).
#include "tobus/core/error.hpp"
#include "tobus/state/acl.hpp"
#include "tobus/state/state.hpp"
#include "tobus/util/io.hpp"
#include "tobus/util/sha256.hpp"

namespace tobus {

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
  if (!o.password_file.empty()) hash = sha256_hex(read_secret_file(o.password_file, "password file", o.report));
  else o.report.warn("no --password-file: user '{}' is created off (it cannot log in until a password is set)", user);
  write_output(out_fd, (o.aclfile ? aclfile_line(user, rules, hash) : acl_setuser_line(user, rules, hash)) + "\n");
  return exit_code::ok;
}

}  // namespace tobus
