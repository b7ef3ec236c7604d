// The Redis ACL rules of each role (acl.hpp). Each grant names what it is for; the commands are
// those the programs send, found in bus/, module/, send/, watch/, state/ and redis/stream.cpp.
#include "tobus/state/acl.hpp"

#include <fnmatch.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "tobus/core/error.hpp"
#include "tobus/core/message.hpp"

namespace tobus {
namespace {

using Access = AclKey::Access;

AclKey r(std::string p) { return {std::move(p), Access::read}; }
AclKey w(std::string p) { return {std::move(p), Access::write}; }
AclKey rw(std::string p) { return {std::move(p), Access::read_write}; }

// What every connection needs: PING (connecting, and waiting out LOADING), SELECT (a database
// other than 0 in the URL).
std::vector<std::string> connection_commands() { return {"ping", "select"}; }

// A loop that blocks on a read and is woken to stop (redis/stream.hpp: await_reply).
void add_unblock(std::vector<std::string>& c) {
  c.emplace_back("client|id");
  c.emplace_back("client|unblock");
}

std::vector<AclGrant> watcher_grants(const Keys& k) {
  AclGrant root{"connect; find inboxes and records (SCAN: key names only); the server's clock",
                connection_commands(), {}};
  add_unblock(root.commands);
  root.commands.insert(root.commands.end(), {"scan", "time"});
  AclGrant read{"read the bus, inboxes, dead letters, the registry, types, state records and their changes",
                {"type", "xread", "xrange", "xrevrange", "xlen", "xinfo|groups", "xpending", "hget", "hgetall",
                 "hkeys", "hlen", "hmget", "smembers", "scard"},
                {r(k.bus()), r(k.dead()), r(k.inbox("*")), r(k.modules()), r(k.instances("*")), r(k.type("*")),
                 r(k.ns() + ":state:*"), r(k.ns() + ":state-changes")}};
  return {root, read};
}

std::vector<AclGrant> bus_grants(const Keys& k) {
  AclGrant root{"connect", connection_commands(), {}};
  add_unblock(root.commands);
  return {
      root,
      {"the bus stream: read as group 'bus', reclaim, acknowledge, trim what was acknowledged",
       {"xgroup|create", "xreadgroup", "xautoclaim", "xpending", "xack", "xinfo|groups", "xtrim"},
       {rw(k.bus())}},
      {"inboxes: create their group, deliver, trim what modules acknowledged",
       {"xgroup|create", "xadd", "xinfo|groups", "xpending", "xtrim"},
       {rw(k.inbox("*"))}},
      {"dead letters", {"xadd"}, {w(k.dead())}},
      {"results to the senders' reply streams, and their expiry", {"xadd", "pexpire"}, {w(k.reply("*"))}},
      {"fan-out records (failed branches, for joins), and their expiry", {"hset", "pexpire"}, {w(k.group("*"))}},
      {"the members of types, for @TYPE hops", {"smembers"}, {r(k.type("*"))}},
      {"the module registry", {"hget", "hset"}, {rw(k.modules())}},
  };
}

std::vector<AclGrant> module_grants(const Keys& k, const std::string& n, const std::vector<std::string>& types) {
  AclGrant root{"connect; load scripts; find its join groups (SCAN: key names only)", connection_commands(), {}};
  add_unblock(root.commands);
  root.commands.insert(root.commands.end(), {"script|load", "scan"});
  const std::string job = k.ns() + ":state:job:*", record = k.ns() + ":state:module:" + n,
                    changes = k.ns() + ":state-changes", joins = k.join(n, "*");
  std::vector<AclGrant> g{
      root,
      {"its inbox: read as group 'module', reclaim, keep claimed, acknowledge",
       {"xgroup|create", "xreadgroup", "xautoclaim", "xclaim", "xpending", "xack"},
       {rw(k.inbox(n))}},
      {"results onto the bus, and dead letters", {"xadd"}, {w(k.bus()), w(k.dead())}},
      {"its instances (heartbeat) and suspects", {"hset", "hdel", "hlen", "hget"},
       {rw(k.instances(n)), rw(k.suspects(n))}},
      {"the module registry", {"hget", "hset"}, {rw(k.modules())}},
  };
  if (!types.empty()) {
    AclGrant t{"membership of its types (--type)", {"sadd"}, {}};
    for (const auto& type : types) t.keys.push_back(w(k.type(type)));
    g.push_back(std::move(t));
  }
  g.push_back({"its joins: parts, locks, done markers",
               {"hgetall", "hexists", "hsetnx", "hincrby", "hset", "del", "set", "pexpire"},
               {rw(joins)}});
  g.push_back({"fan-out records, read by its joins", {"hgetall"}, {r(k.group("*"))}});
  g.push_back({"its state record module:NAME", {"type", "hset", "hget", "hincrby"}, {rw(record)}});
  g.push_back({"job records job:ID (named by message id, not by module), and their expiry",
               {"type", "hset", "pexpire"},
               {w(job)}});
  g.push_back({"change events of state records", {"type", "xadd"}, {w(changes)}});
  g.push_back({"the keys its scripts are given (each command in a script is checked as if sent)",
               {"eval", "evalsha"},
               {rw(k.inbox(n)), rw(k.bus()), rw(joins), rw(record), rw(job), rw(changes)}});
  return g;
}

std::vector<AclGrant> sender_grants(const Keys& k) {
  return {
      {"connect", connection_commands(), {}},
      {"new messages onto the bus", {"xadd"}, {w(k.bus())}},
      {"its reply stream (--wait): read the results, delete it at the end", {"xread", "del"}, {rw(k.reply("*"))}},
  };
}

std::vector<AclGrant> admin_grants(const Keys& k) {
  auto g = watcher_grants(k);
  g[0].what += "; load scripts";
  g[0].commands.emplace_back("script|load");
  const std::string state = k.ns() + ":state:*", changes = k.ns() + ":state-changes";
  g.push_back({"state records: set, del, cas, incr (in scripts)",
               {"hset", "hdel", "del", "hlen", "hget", "hincrby"},
               {rw(state)}});
  g.push_back({"change events of state records (in scripts)", {"xadd"}, {w(changes)}});
  g.push_back({"dead letters: retry takes them off, purge trims", {"xrange", "xdel", "xtrim"}, {rw(k.dead())}});
  g.push_back({"dead retry: back onto the bus", {"xadd"}, {w(k.bus())}});
  g.push_back({"the keys its scripts are given (each command in a script is checked as if sent)",
               {"eval", "evalsha"},
               {rw(state), rw(changes), rw(k.dead()), rw(k.bus())}});
  return g;
}

std::string key_rule(const AclKey& key) {
  switch (key.access) {
    case Access::read: return "%R~" + key.pattern;
    case Access::write: return "%W~" + key.pattern;
    case Access::read_write: break;
  }
  return "~" + key.pattern;
}

std::string join_args(const std::vector<std::string>& args) {
  std::string out;
  for (const auto& a : args) out += " " + a;
  return out;
}

}  // namespace

std::optional<AclRole> parse_acl_role(std::string_view name) {
  for (std::size_t i = 0; i < std::size(acl_role_names); ++i)
    if (acl_role_names[i] == name) return static_cast<AclRole>(i);
  return std::nullopt;
}

std::string_view acl_role_name(AclRole role) { return acl_role_names[static_cast<std::size_t>(role)]; }

AclRules acl_rules(const Keys& keys, const AclRequest& request) {
  AclRules rules;
  rules.role = request.role;
  if (request.role == AclRole::module) {
    if (request.module.empty()) throw Error(ErrorKind::usage, "the module role needs the module's NAME");
    if (!valid_name(request.module))
      throw Error(ErrorKind::usage, "invalid module name '" + request.module + "' (1-64 of A-Z a-z 0-9 _ . -)");
    for (const auto& t : request.types)
      if (!valid_name(t)) throw Error(ErrorKind::usage, "invalid type '" + t + "' (1-64 of A-Z a-z 0-9 _ . -)");
    rules.module = request.module;
  } else {
    std::string role(acl_role_name(request.role));
    if (!request.module.empty())
      throw Error(ErrorKind::usage, "the " + role + " role takes no NAME (only the module role does)");
    if (!request.types.empty()) throw Error(ErrorKind::usage, "--type is for the module role, not " + role);
  }
  switch (request.role) {
    case AclRole::bus: rules.grants = bus_grants(keys); break;
    case AclRole::module: rules.grants = module_grants(keys, request.module, request.types); break;
    case AclRole::sender: rules.grants = sender_grants(keys); break;
    case AclRole::watcher: rules.grants = watcher_grants(keys); break;
    case AclRole::admin: rules.grants = admin_grants(keys); break;
  }
  return rules;
}

std::vector<std::string> acl_all_commands(const Keys& keys) {
  std::set<std::string> all;
  for (AclRole role : {AclRole::bus, AclRole::module, AclRole::sender, AclRole::watcher, AclRole::admin}) {
    // Any module name and type: the commands are the same for all.
    AclRequest request{role, {}, {}};
    if (role == AclRole::module) request = {role, "m", {"t"}};
    for (const AclGrant& g : acl_rules(keys, request).grants)
      for (const std::string& c : g.commands) {
        std::string name = c.substr(0, c.find('|'));
        std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return std::toupper(ch); });
        all.insert(std::move(name));
      }
  }
  return {all.begin(), all.end()};
}

bool acl_allows(const AclRules& rules, std::string_view command, std::string_view key, AclKey::Access need) {
  auto has = [&](const AclGrant& g) { return std::find(g.commands.begin(), g.commands.end(), command) != g.commands.end(); };
  if (key.empty()) return !rules.grants.empty() && rules.grants.front().keys.empty() && has(rules.grants.front());
  auto covers = [need](Access a) { return a == Access::read_write || a == need; };
  const std::string k(key);
  for (const auto& g : rules.grants) {
    if (g.keys.empty() || !has(g)) continue;
    for (const auto& p : g.keys)
      if (covers(p.access) && fnmatch(p.pattern.c_str(), k.c_str(), 0) == 0) return true;
  }
  return false;
}

std::string default_acl_user(const Keys& keys, AclRole role, std::string_view module) {
  std::string user = keys.ns() + "-" + std::string(acl_role_name(role));
  if (role == AclRole::module) user += "-" + std::string(module);
  return user;
}

bool valid_acl_user(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-' || c == '@';
    if (!ok) return false;
  }
  return true;
}

std::vector<std::string> acl_setuser_args(const AclRules& rules, const std::optional<std::string>& password_sha256,
                                          bool quote_selectors) {
  std::vector<std::string> args{"reset"};
  if (password_sha256) {
    args.emplace_back("on");
    args.push_back("#" + *password_sha256);
  } else {
    args.emplace_back("off");
  }
  args.emplace_back("resetchannels");
  args.emplace_back("-@all");
  for (const auto& grant : rules.grants) {
    if (grant.keys.empty()) {
      for (const auto& c : grant.commands) args.push_back("+" + c);
      continue;
    }
    std::string selector = "(";
    for (const auto& key : grant.keys) selector += key_rule(key) + " ";
    for (std::size_t i = 0; i < grant.commands.size(); ++i) selector += (i ? " +" : "+") + grant.commands[i];
    selector += ")";
    args.push_back(quote_selectors ? "\"" + selector + "\"" : selector);
  }
  return args;
}

std::string acl_setuser_line(std::string_view user, const AclRules& rules,
                             const std::optional<std::string>& password_sha256) {
  return "ACL SETUSER " + std::string(user) + join_args(acl_setuser_args(rules, password_sha256, true));
}

std::string aclfile_line(std::string_view user, const AclRules& rules, const std::optional<std::string>& password_sha256) {
  return "user " + std::string(user) + join_args(acl_setuser_args(rules, password_sha256, false));
}

}  // namespace tobus
