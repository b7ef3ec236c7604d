#pragma once
// The Redis ACL rules of each role on a bus (tobus-state acl, docs/security.md). Pure: no Redis.
//
// A role is a list of grants, each some commands on some key patterns, read from what the
// programs send (core/keys.hpp, the loops, the Lua scripts). Each grant with keys becomes a Redis 7
// selector, so that a command is allowed only on the keys it is needed for: a module may XADD to
// the bus and to the dead letters, but its DEL and PEXPIRE reach only its own join keys. Commands a
// Lua script runs are checked by Redis one by one against the grants, as if sent directly; the
// grant of EVAL/EVALSHA only names the keys the scripts are given (Redis wants read and write on
// those), it lets no one read or write them. No role uses pub/sub: every user gets no channels.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tobus/core/keys.hpp"

namespace tobus {

enum class AclRole { bus, module, sender, watcher, admin };

inline constexpr std::string_view acl_role_names[] = {"bus", "module", "sender", "watcher", "admin"};
std::optional<AclRole> parse_acl_role(std::string_view name);
std::string_view acl_role_name(AclRole role);

// A key pattern (a Redis glob) and what may be done to keys it matches: read (%R~: the command
// returns data from the key), write (%W~: it changes the key) or both (~). Redis decides which a
// command needs from its key specs: XADD, HSET, DEL, PEXPIRE only write; XRANGE, HGETALL only read;
// XREADGROUP, HINCRBY, EVAL both; TYPE neither (any pattern).
struct AclKey {
  enum class Access { read, write, read_write };
  std::string pattern;
  Access access = Access::read_write;
};

struct AclGrant {
  std::string what;                   // what it is for, one line (docs)
  std::vector<std::string> commands;  // lower case, a subcommand as "client|id"
  std::vector<AclKey> keys;           // none: commands without keys, the user's root rules
};

struct AclRules {
  AclRole role = AclRole::watcher;
  std::string module;               // the module role's NAME
  std::vector<AclGrant> grants;     // the first has no keys
};

struct AclRequest {
  AclRole role = AclRole::watcher;
  std::string module;               // required for the module role, refused for the others
  std::vector<std::string> types;   // the module role: the types it joins (--type), NS:type:T
};

// The rules of a role on the bus of `keys`. Throws Error(usage) on a missing or bad module name
// or type, or a name or type given to a role that takes none.
AclRules acl_rules(const Keys& keys, const AclRequest& request);

// Whether `rules` let their user run `command` (lower case, "client|id" for a subcommand) on `key`
// with `need` access, as Redis decides it: a command without keys (`key` empty) by the first grant,
// one with a key by any grant that has the command and a pattern matching the key (a glob) with at
// least that access. For tests and checks of a user against its role (ACL DRYRUN asks the server).
bool acl_allows(const AclRules& rules, std::string_view command, std::string_view key, AclKey::Access need);

// Every command some role may run, upper case, a subcommand's command once ("CLIENT"), sorted: the
// commands the programs send, for a check that a server has them all (tobus-state doctor).
std::vector<std::string> acl_all_commands(const Keys& keys);

// NS-ROLE, or NS-module-NAME: tobus-bus, tobus-module-resize with the default namespace.
std::string default_acl_user(const Keys& keys, AclRole role, std::string_view module);

// A user name Redis takes on one line, in ACL SETUSER and in an aclfile: 1-128 of A-Z a-z 0-9
// and _ . - @ (no spaces, no quotes, no glob characters).
bool valid_acl_user(std::string_view name);

// The rules as ACL SETUSER arguments after the user's name: `reset`, then `on #SHA256` when the
// password's hash is given, else `off` (a user who cannot log in until a password is set), then
// `resetchannels`, `-@all`, the root commands, and one selector "(%R~KEY ... +CMD ...)" per grant
// with keys. `quote_selectors` puts each selector in double quotes, for redis-cli's own parser.
std::vector<std::string> acl_setuser_args(const AclRules& rules, const std::optional<std::string>& password_sha256,
                                          bool quote_selectors);

// One line (no line end): `ACL SETUSER USER ARGS...`, for `| redis-cli`; or `user USER ARGS...`,
// a line of an aclfile (aclfile lines are split at spaces, a selector is not quoted there).
std::string acl_setuser_line(std::string_view user, const AclRules& rules,
                             const std::optional<std::string>& password_sha256);
std::string aclfile_line(std::string_view user, const AclRules& rules, const std::optional<std::string>& password_sha256);

}  // namespace tobus
