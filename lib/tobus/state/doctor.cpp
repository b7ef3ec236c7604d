// tobus-state doctor: the checks, one small function each, and the run that shows them.

#include "tobus/state/doctor.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include "tobus/core/error.hpp"
#include "tobus/core/message.hpp"
#include "tobus/redis/stream.hpp"
#include "tobus/state/acl.hpp"
#include "tobus/state/state_verbs.hpp"
#include "tobus/util/io.hpp"
#include "tobus/util/json.hpp"
#include "tobus/util/text.hpp"

namespace tobus {

using namespace state_detail;

// --- pure helpers --------------------------------------------------------------------------------

std::string_view status_word(CheckStatus s) {
  switch (s) {
    case CheckStatus::ok: return "ok";
    case CheckStatus::warn: return "WARN";
    case CheckStatus::fail: return "FAIL";
  }
  return "FAIL";
}

std::map<std::string, std::string> parse_info(std::string_view text) {
  std::map<std::string, std::string> out;
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) continue;
    out.emplace(std::string(line.substr(0, colon)), std::string(line.substr(colon + 1)));
  }
  return out;
}

bool version_at_least(std::string_view version, std::string_view minimum) {
  auto parts = [](std::string_view v, std::vector<long>& out) {
    while (!v.empty()) {
      auto dot = v.find('.');
      std::string_view p = v.substr(0, dot);
      long n = 0;
      auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), n);
      if (ec != std::errc() || end != p.data() + p.size()) return false;
      out.push_back(n);
      v = dot == std::string_view::npos ? std::string_view() : v.substr(dot + 1);
    }
    return !out.empty();
  };
  std::vector<long> have, want;
  if (!parts(version, have) || !parts(minimum, want)) return false;
  have.resize(std::max(have.size(), want.size()));
  want.resize(have.size());
  return have >= want;
}

std::string format_check_line(const DoctorCheck& c) {
  std::string word(status_word(c.status));
  word.resize(6, ' ');
  return word + c.name + ": " + c.message;
}

static CheckStatus worst(const std::vector<DoctorCheck>& checks) {
  CheckStatus w = CheckStatus::ok;
  for (const auto& c : checks) w = std::max(w, c.status);
  return w;
}

static std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

std::string doctor_json(const std::vector<DoctorCheck>& checks) {
  std::string arr = "[";
  for (const auto& c : checks) {
    if (arr.size() > 1) arr += ",";
    JsonObject o;
    o.add("name", c.name).add("status", lower(status_word(c.status))).add("message", c.message);
    o.add_raw("details", c.details);
    arr += o.str();
  }
  JsonObject top;
  top.add("status", lower(status_word(worst(checks)))).add_raw("checks", arr + "]");
  return top.str();
}

int doctor_exit_code(const std::vector<DoctorCheck>& checks, bool strict) {
  CheckStatus w = worst(checks);
  return w == CheckStatus::fail || (strict && w == CheckStatus::warn) ? exit_code::failed : exit_code::ok;
}

DoctorCheck judge_clock(std::int64_t local_before, std::int64_t local_after, std::int64_t redis_ms) {
  std::int64_t rtt = local_after - local_before;
  std::int64_t skew = redis_ms - (local_before + local_after) / 2;  // > 0: Redis is ahead
  // The round trip bounds how well the two clocks can be compared.
  std::int64_t off = std::max<std::int64_t>(0, std::abs(skew) - rtt / 2);
  JsonObject d;
  d.add("skew_ms", skew).add("round_trip_ms", rtt);
  DoctorCheck c;
  c.name = "clock";
  std::string what = "this host is " + std::to_string(std::abs(skew)) + "ms " + (skew > 0 ? "behind" : "ahead of") +
                     " Redis";
  if (off <= 1000) {
    c.message = "this host and Redis agree within " + std::to_string(std::abs(skew)) + "ms (round trip " +
                std::to_string(rtt) + "ms)";
  } else if (off > instance_live_ms / 3) {
    // Instances are live while their heartbeat, stamped by their host's clock, is younger than
    // 15s by the reader's clock; ages of stream entries are Redis's clock.
    c.status = CheckStatus::fail;
    c.message = what + ": liveness (a 15s heartbeat window) and ages are judged wrong; synchronise the clocks (NTP)";
  } else {
    c.status = CheckStatus::warn;
    c.message = what + ": ages shown are off by that much; synchronise the clocks (NTP)";
  }
  c.details = d.str();
  return c;
}

std::int64_t DoctorContext::redis_now() const {
  return redis_ms > 0 ? redis_ms + (now_ms() - local_after) : now_ms();
}

// --- the checks ----------------------------------------------------------------------------------

namespace {

DoctorCheck make(CheckStatus s, std::string message, JsonObject details) {
  DoctorCheck c;
  c.status = s;
  c.message = std::move(message);
  c.details = details.str();
  return c;
}

DoctorCheck could_not_check(const std::string& why, JsonObject details = {}) {
  details.add("checked", false).add("why", why);
  return make(CheckStatus::warn, "could not check: " + why, std::move(details));
}

// An error reply as one printable line: what a refusal says.
std::string reply_text(const ReplyView& r) { return escape_text(last_line(r.str())); }

std::optional<std::int64_t> info_int(const DoctorContext& x, const std::string& key) {
  auto it = x.info.find(key);
  if (it == x.info.end()) return std::nullopt;
  return int_of(it->second);
}

std::string info_str(const DoctorContext& x, const std::string& key) {
  auto it = x.info.find(key);
  return it == x.info.end() ? std::string() : escape_text(it->second);
}

// CONFIG GET of one parameter: its value, or nullopt with `refused` saying why (an ACL user may
// not run CONFIG; a managed Redis may rename it away).
std::optional<std::string> config_get(Connection& c, std::string_view param, std::string& refused) {
  Reply r = c.command({"CONFIG", "GET", param});
  if (r.is_error()) {
    refused = "CONFIG GET " + std::string(param) + " was refused: " + reply_text(r);
    return std::nullopt;
  }
  if (r.size() < 2) {
    refused = "CONFIG GET " + std::string(param) + " gave nothing";
    return std::nullopt;
  }
  return std::string(r[1].str());
}

// The stream's name without the namespace: "bus", "in:NAME".
std::string short_key(const DoctorContext& x, const std::string& key) {
  return escape_text(key.substr(std::min(key.size(), x.keys.ns().size() + 1)));
}

// Redis 6.2 brought XAUTOCLAIM, XTRIM MINID and XPENDING IDLE; SCAN TYPE is 6.0.
constexpr std::string_view min_version = "6.2.0";

DoctorCheck check_version(DoctorContext& x) {
  std::string version = info_str(x, "redis_version");
  if (version.empty()) {
    // HELLO (6.0+) tells the version to any user.
    Reply h = x.c.command({"HELLO"});
    for (std::size_t i = 0; h.is_array() && i + 1 < h.size(); i += 2)
      if (h[i].str() == "version") version = escape_text(h[i + 1].str());
  }
  JsonObject d;
  d.add("version", version).add("minimum", min_version);
  if (!version.empty() && !version_at_least(version, min_version)) {
    d.add("missing", std::vector<std::string>{});
    return make(CheckStatus::fail,
                "Redis " + version + ": tobus needs " + std::string(min_version) +
                    " or later (XAUTOCLAIM, XTRIM MINID, XPENDING IDLE)",
                std::move(d));
  }
  // Every command the programs send (Lua scripts' redis.call included): those of the ACL roles.
  const std::vector<std::string> needed_commands = acl_all_commands(x.keys);
  Args args{"COMMAND", "INFO"};
  for (const auto& name : needed_commands) args.push_back(name);
  Reply r = x.c.command(args);
  if (r.is_error()) {
    std::string why = "COMMAND INFO was refused: " + reply_text(r);
    if (version.empty()) return could_not_check("the version is unknown (INFO and HELLO gave none) and " + why);
    return make(CheckStatus::warn, "Redis " + version + " (" + std::string(min_version) +
                                       " or later needed); could not check the commands: " + why,
                std::move(d.add("checked", false)));
  }
  std::vector<std::string> missing;
  for (std::size_t i = 0; i < std::size(needed_commands); ++i)
    if (i >= r.size() || r[i].is_nil() || r[i].size() == 0) missing.push_back(needed_commands[i]);
  d.add("missing", missing);
  std::string what = version.empty() ? std::string("Redis of unknown version") : "Redis " + version;
  if (!missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : " ") + m;
    return make(CheckStatus::fail, what + ", but commands tobus uses are missing (renamed or disabled): " + list,
                std::move(d));
  }
  return make(version.empty() ? CheckStatus::warn : CheckStatus::ok,
              what + " (" + std::string(min_version) + " or later needed); all " +
                  std::to_string(std::size(needed_commands)) + " commands tobus uses are there",
              std::move(d));
}

DoctorCheck check_persistence(DoctorContext& x) {
  std::string refused;
  auto aof = config_get(x.c, "appendonly", refused);
  auto fsync = aof ? config_get(x.c, "appendfsync", refused) : std::nullopt;
  auto save = fsync ? config_get(x.c, "save", refused) : std::nullopt;
  if (!save) {
    JsonObject d;
    if (auto on = info_int(x, "aof_enabled")) {
      d.add("aof", *on != 0);
      return could_not_check(refused + std::string(*on ? "; INFO says AOF is on, its appendfsync is unknown"
                                                      : "; INFO says AOF is off, the snapshot schedule is unknown"),
                             std::move(d));
    }
    return could_not_check(refused, std::move(d));
  }
  JsonObject d;
  d.add("aof", *aof == "yes").add("appendfsync", *fsync).add("save", *save);
  if (*aof == "yes") {
    if (*fsync == "always")
      return make(CheckStatus::ok, "AOF, appendfsync always (every acknowledged write is on disk)", std::move(d));
    if (*fsync == "everysec")
      return make(CheckStatus::ok, "AOF, appendfsync everysec (a crash loses at most 1s of acknowledged writes)",
                  std::move(d));
    return make(CheckStatus::warn,
                "AOF, appendfsync " + escape_text(*fsync) +
                    " (the OS writes to disk when it likes, often every 30s: a crash of the machine loses that much; "
                    "everysec bounds it to 1s)",
                std::move(d));
  }
  if (!save->empty())
    return make(CheckStatus::warn,
                "RDB snapshots only (save " + escape_text(*save) +
                    "): a crash loses every message since the last snapshot; appendonly yes keeps them",
                std::move(d));
  return make(CheckStatus::fail,
              "none (appendonly no, save ''): a restart of Redis loses every message, pending entry and dead "
              "letter; at-least-once holds only while Redis runs",
              std::move(d));
}

DoctorCheck check_eviction(DoctorContext& x) {
  std::optional<std::int64_t> max = info_int(x, "maxmemory");
  std::string policy = info_str(x, "maxmemory_policy");
  std::string refused;
  if (!max) {
    auto v = config_get(x.c, "maxmemory", refused);
    if (v) max = int_of(*v);
  }
  if (policy.empty() && refused.empty()) {
    auto v = config_get(x.c, "maxmemory-policy", refused);
    if (v) policy = escape_text(*v);
  }
  if (!max || policy.empty()) {
    std::string why = refused.empty() ? "neither INFO nor CONFIG GET gave maxmemory and its policy" : refused;
    if (!x.info_error.empty()) why = x.info_error + "; " + why;
    return could_not_check(why);
  }
  JsonObject d;
  d.add("maxmemory", *max).add("policy", policy);
  if (policy == "noeviction")
    return make(CheckStatus::ok,
                std::string("maxmemory-policy noeviction: nothing is evicted") +
                    (*max > 0 ? " (a full Redis refuses writes instead)" : ", and there is no maxmemory"),
                std::move(d));
  if (*max == 0)
    return make(CheckStatus::warn,
                "maxmemory-policy " + policy +
                    " with no maxmemory: nothing is evicted now, but setting maxmemory would evict keys (message "
                    "loss); use noeviction",
                std::move(d));
  return make(CheckStatus::fail,
              "maxmemory " + info_str(x, "maxmemory_human") + " with maxmemory-policy " + policy +
                  ": when full, Redis evicts keys (streams, inboxes, records: message loss); use noeviction",
              std::move(d));
}

// --- acl: the users of tobus-state acl's roles against what their programs need ----------------

// A command of the role table as ACL DRYRUN takes it, "@" where its key goes; none for a command
// this table does not know (not checked, and counted so).
const std::vector<std::string>* dryrun_form(std::string_view command) {
  static const std::map<std::string, std::vector<std::string>, std::less<>> forms{
      {"client|id", {"CLIENT", "ID"}}, {"client|unblock", {"CLIENT", "UNBLOCK", "1"}},
      {"del", {"DEL", "@"}}, {"eval", {"EVAL", "return 1", "1", "@"}},
      {"evalsha", {"EVALSHA", std::string(40, '0'), "1", "@"}}, {"hdel", {"HDEL", "@", "f"}},
      {"hexists", {"HEXISTS", "@", "f"}}, {"hget", {"HGET", "@", "f"}}, {"hgetall", {"HGETALL", "@"}},
      {"hincrby", {"HINCRBY", "@", "f", "1"}}, {"hkeys", {"HKEYS", "@"}}, {"hlen", {"HLEN", "@"}}, {"hmget", {"HMGET", "@", "f"}},
      {"hset", {"HSET", "@", "f", "v"}}, {"hsetnx", {"HSETNX", "@", "f", "v"}}, {"pexpire", {"PEXPIRE", "@", "1000"}},
      {"ping", {"PING"}}, {"sadd", {"SADD", "@", "m"}}, {"scard", {"SCARD", "@"}}, {"scan", {"SCAN", "0"}},
      {"script|load", {"SCRIPT", "LOAD", "return 1"}}, {"select", {"SELECT", "0"}}, {"set", {"SET", "@", "v"}},
      {"smembers", {"SMEMBERS", "@"}}, {"time", {"TIME"}}, {"type", {"TYPE", "@"}},
      {"xack", {"XACK", "@", "g", "0-1"}}, {"xadd", {"XADD", "@", "*", "f", "v"}},
      {"xautoclaim", {"XAUTOCLAIM", "@", "g", "c", "0", "0-0"}}, {"xclaim", {"XCLAIM", "@", "g", "c", "0", "0-1"}},
      {"xdel", {"XDEL", "@", "0-1"}}, {"xgroup|create", {"XGROUP", "CREATE", "@", "g", "$"}},
      {"xinfo|groups", {"XINFO", "GROUPS", "@"}}, {"xlen", {"XLEN", "@"}}, {"xpending", {"XPENDING", "@", "g"}},
      {"xrange", {"XRANGE", "@", "-", "+"}}, {"xread", {"XREAD", "STREAMS", "@", "0"}},
      {"xreadgroup", {"XREADGROUP", "GROUP", "g", "c", "STREAMS", "@", ">"}},
      {"xrevrange", {"XREVRANGE", "@", "+", "-"}}, {"xtrim", {"XTRIM", "@", "MAXLEN", "0"}},
  };
  auto it = forms.find(command);
  return it == forms.end() ? nullptr : &it->second;
}

// The role `user` was made for by tobus-state acl's default names on this bus, if any.
std::optional<AclRequest> role_of_user(const Keys& keys, std::string_view user) {
  for (AclRole role : {AclRole::bus, AclRole::sender, AclRole::watcher, AclRole::admin})
    if (user == default_acl_user(keys, role, "")) return AclRequest{role, {}, {}};
  const std::string prefix = keys.ns() + "-module-";
  if (user.starts_with(prefix) && valid_name(user.substr(prefix.size())))
    return AclRequest{AclRole::module, std::string(user.substr(prefix.size())), {}};
  return std::nullopt;
}

// What `user` may not do of what `rules` need, asked of the server (ACL DRYRUN), as "XADD
// tobus:bus"; a key pattern is tried with a key it matches.
std::vector<std::string> missing_rights(Connection& c, const std::string& user, const AclRules& rules) {
  std::vector<std::string> missing;
  for (const AclGrant& g : rules.grants)
    for (const std::string& command : g.commands) {
      const std::vector<std::string>* form = dryrun_form(command);
      if (form == nullptr) continue;
      std::vector<std::string> keys;
      for (const AclKey& k : g.keys) {
        std::string key = k.pattern;
        for (std::size_t at; (at = key.find('*')) != std::string::npos;) key.replace(at, 1, "doctor");
        keys.push_back(std::move(key));
      }
      if (keys.empty()) keys.emplace_back();
      for (const std::string& key : keys) {
        Args args{"ACL", "DRYRUN", user};
        for (const std::string& a : *form) args.emplace_back(a == "@" ? std::string_view(key) : std::string_view(a));
        Reply r = c.command(args);
        if (r.is_error()) throw_reply_error(r, "ask ACL DRYRUN");
        if (r.str() != "OK") {
          std::string what = (*form)[0];
          if (form->size() > 1 && command.find('|') != std::string::npos) what += " " + (*form)[1];
          missing.push_back(what + (key.empty() ? "" : " " + key));
        }
      }
    }
  return missing;
}

DoctorCheck check_acl(DoctorContext& x) {
  Reply users = x.c.command({"ACL", "USERS"});
  if (users.is_error())
    return could_not_check("ACL USERS was refused: " + reply_text(users) +
                           " (run doctor as a user that may run ACL USERS and ACL DRYRUN)");
  constexpr std::size_t most_users = 200;  // a bus has a handful; a server of thousands of users is not scanned
  std::vector<std::string> checked, wrong;
  std::vector<std::string> lines;
  for (std::size_t i = 0; i < users.size() && checked.size() < most_users; ++i) {
    const std::string user(users[i].str());
    auto request = role_of_user(x.keys, user);
    if (!request) continue;
    AclRules rules = acl_rules(x.keys, *request);
    std::vector<std::string> missing = missing_rights(x.c, user, rules);
    checked.push_back(user);
    if (missing.empty()) continue;
    wrong.push_back(user);
    std::string shown;
    for (std::size_t m = 0; m < missing.size() && m < 3; ++m) shown += (m ? ", " : "") + missing[m];
    if (missing.size() > 3) shown += " and " + std::to_string(missing.size() - 3) + " more";
    std::string again = "tobus-state acl " + std::string(acl_role_name(request->role)) +
                        (request->module.empty() ? "" : " " + request->module);
    lines.push_back(escape_text(user) + " may not " + escape_text(shown) + " (apply '" + again + "' again)");
  }
  JsonObject d;
  d.add("users", checked).add("wrong", wrong);
  if (checked.empty())
    return make(CheckStatus::ok,
                "no user of tobus-state acl's roles here (" + default_acl_user(x.keys, AclRole::bus, "") + ", " +
                    x.keys.ns() + "-module-NAME, ...): the programs run as the users they are given",
                std::move(d));
  if (!wrong.empty()) {
    std::string all;
    for (const auto& l : lines) all += (all.empty() ? "" : "; ") + l;
    return make(CheckStatus::fail, all, std::move(d));
  }
  std::string names;
  for (std::size_t i = 0; i < checked.size() && i < 5; ++i) names += (i ? ", " : "") + escape_text(checked[i]);
  if (checked.size() > 5) names += ", ...";
  return make(CheckStatus::ok,
              std::to_string(checked.size()) + " role user" + (checked.size() == 1 ? "" : "s") + " (" + names +
                  ") may do what their programs need",
              std::move(d));
}

DoctorCheck check_memory(DoctorContext& x) {
  auto used = info_int(x, "used_memory");
  auto max = info_int(x, "maxmemory");
  if (!used || !max) return could_not_check(x.info_error.empty() ? "INFO gave no used_memory or maxmemory" : x.info_error);
  JsonObject d;
  d.add("used", *used).add("maxmemory", *max);
  std::string used_h = info_str(x, "used_memory_human");
  if (*max == 0) {
    std::string sys = info_str(x, "total_system_memory_human");
    return make(CheckStatus::ok,
                "used " + used_h + ", no maxmemory" + (sys.empty() ? "" : " (the system has " + sys + ")"),
                std::move(d));
  }
  std::int64_t pct = *used * 100 / *max;
  d.add("percent", pct);
  std::string what = "used " + used_h + " of maxmemory " + info_str(x, "maxmemory_human") + " (" +
                     std::to_string(pct) + "%)";
  if (pct >= 95)
    return make(CheckStatus::fail, what + ": Redis is about to refuse writes (noeviction) or evict keys", std::move(d));
  if (pct >= 80) return make(CheckStatus::warn, what + ": little headroom left", std::move(d));
  return make(CheckStatus::ok, what, std::move(d));
}

DoctorCheck check_clock(DoctorContext& x) {
  if (x.redis_ms == 0) return could_not_check("TIME was refused");
  return judge_clock(x.local_before, x.local_after, x.redis_ms);
}

DoctorCheck check_pending(DoctorContext& x) {
  const Millis stuck = x.options.claim_after * 2;
  struct Stream {
    std::string key;
    std::string_view group;
  };
  std::vector<Stream> streams{{x.keys.bus(), Keys::bus_group}};
  for (const auto& key : scan_keys(x.c, x.keys.inbox("*"), "stream")) streams.push_back({key, Keys::module_group});
  std::sort(streams.begin() + 1, streams.end(), [](const Stream& a, const Stream& b) { return a.key < b.key; });
  constexpr int shown_per_stream = 100;
  struct Found {
    std::string name;
    std::int64_t count = 0, max_idle = 0;
    bool more = false;
    std::string consumer;  // of the longest idle entry
  };
  std::vector<Found> found;
  std::int64_t total = 0;
  const std::string idle = std::to_string(stuck.count()), count = std::to_string(shown_per_stream);
  for (std::size_t start = 0; start < streams.size(); start += read_batch) {
    std::size_t end = std::min(streams.size(), start + read_batch);
    for (std::size_t i = start; i < end; ++i)
      x.c.append({"XPENDING", streams[i].key, streams[i].group, "IDLE", idle, "-", "+", count});
    for (std::size_t i = start; i < end; ++i) {
      Reply r = x.c.read_reply();
      if (r.is_error()) {
        if (r.str().starts_with("NOGROUP")) continue;  // nobody ever read it: nothing pending
        throw_reply_error(r, "read the pending entries of '" + streams[i].key + "'");
      }
      if (r.size() == 0) continue;
      Found f;
      f.name = short_key(x, streams[i].key);
      f.count = static_cast<std::int64_t>(r.size());
      f.more = f.count >= shown_per_stream;
      for (std::size_t k = 0; k < r.size(); ++k)
        if (r[k].size() >= 3 && r[k][2].integer() > f.max_idle) {
          f.max_idle = r[k][2].integer();
          f.consumer = escape_text(r[k][1].str());
        }
      total += f.count;
      found.push_back(std::move(f));
    }
  }
  JsonObject d;
  d.add("claim_after_ms", static_cast<std::int64_t>(x.options.claim_after.count()))
      .add("stuck_after_ms", static_cast<std::int64_t>(stuck.count()))
      .add("streams", static_cast<std::int64_t>(streams.size()));
  std::string arr = "[";
  for (const auto& f : found) {
    if (arr.size() > 1) arr += ",";
    JsonObject o;
    o.add("stream", f.name).add("count", f.count).add("at_least", f.more).add("max_idle_ms", f.max_idle)
        .add("consumer", f.consumer);
    arr += o.str();
  }
  d.add_raw("stuck", arr + "]");
  std::string limit = format_duration(stuck) + " (twice --claim-after " + format_duration(x.options.claim_after) + ")";
  if (found.empty())
    return make(CheckStatus::ok,
                "no entry pending longer than " + limit + " in the bus or " + std::to_string(streams.size() - 1) +
                    " inbox" + (streams.size() == 2 ? "" : "es"),
                std::move(d));
  std::string list;
  for (std::size_t i = 0; i < found.size() && i < 5; ++i) {
    const Found& f = found[i];
    list += (i ? ", " : "") + f.name + " " + std::to_string(f.count) + (f.more ? "+" : "") + " (idle up to " +
            age_text(f.max_idle) + ", consumer " + f.consumer + ")";
  }
  if (found.size() > 5) list += ", and " + std::to_string(found.size() - 5) + " more";
  return make(CheckStatus::fail,
              std::to_string(total) + " entr" + (total == 1 ? "y" : "ies") + " pending longer than " + limit +
                  ", which nobody reclaims: " + list,
              std::move(d));
}

// What waits in a stream for a group: entries never delivered to it and entries pending in it.
struct Waiting {
  std::int64_t unread = 0, pending = 0;
  bool at_least = false;  // unread is a lower bound
  bool group = false;     // the group exists
};

Waiting stream_waiting(DoctorContext& x, const std::string& key, std::string_view group) {
  Waiting w;
  Reply g = x.c.command({"XINFO", "GROUPS", key});
  if (g.is_error()) {
    if (g.str().starts_with("ERR no such key")) return w;
    throw_reply_error(g, "read the groups of '" + key + "'");
  }
  for (std::size_t i = 0; i < g.size(); ++i) {
    std::string_view name, last;
    std::int64_t pending = 0;
    std::optional<std::int64_t> lag;
    ReplyView e = g[i];
    for (std::size_t k = 0; k + 1 < e.size(); k += 2) {
      std::string_view f = e[k].str();
      if (f == "name") name = e[k + 1].str();
      else if (f == "pending") pending = e[k + 1].integer();
      else if (f == "last-delivered-id") last = e[k + 1].str();
      else if (f == "lag" && e[k + 1].is_integer()) lag = e[k + 1].integer();
    }
    if (name != group) continue;
    w.group = true;
    w.pending = pending;
    if (lag) {
      w.unread = *lag;
    } else {
      // Before Redis 7, or when deletions hide it: is there anything after the last delivered?
      Reply r = x.c.command({"XRANGE", key, "(" + std::string(last), "+", "COUNT", "1"});
      w.unread = r.is_array() ? static_cast<std::int64_t>(r.size()) : 0;
      w.at_least = true;
    }
    return w;
  }
  // No group: nobody ever read it, everything in it is unread.
  Reply len = x.c.command({"XLEN", key});
  if (len.is_error()) throw_reply_error(len, "read the length of '" + key + "'");
  w.unread = len.integer();
  return w;
}

std::string waiting_text(const Waiting& w) {
  return std::to_string(w.unread) + (w.at_least ? "+" : "") + " unread, " + std::to_string(w.pending) + " pending";
}

// Messages on the bus with no tobus-bus reading it: nobody routes them. A live bus reads with a
// blocking XREADGROUP of 2s, again and again, so its consumer is never idle for long.
DoctorCheck check_bus(DoctorContext& x) {
  const std::string key = x.keys.bus();
  const Millis gone = x.options.claim_after * 2;
  Waiting w = stream_waiting(x, key, Keys::bus_group);
  std::optional<std::int64_t> idle;  // the least idle consumer's
  std::int64_t consumers = 0;
  if (w.group) {
    Reply r = x.c.command({"XINFO", "CONSUMERS", key, Keys::bus_group});
    if (r.is_error()) throw_reply_error(r, "read the consumers of '" + key + "'");
    for (std::size_t i = 0; i < r.size(); ++i)
      for (std::size_t k = 0; k + 1 < r[i].size(); k += 2)
        if (r[i][k].str() == "idle") {
          ++consumers;
          std::int64_t v = r[i][k + 1].integer();
          if (!idle || v < *idle) idle = v;
        }
  }
  bool reading = idle && *idle < gone.count();
  JsonObject d;
  d.add("unread", w.unread).add("unread_at_least", w.at_least).add("pending", w.pending).add("consumers", consumers);
  add_opt(d, "idle_ms", idle);
  d.add("reading", reading);
  std::string waiting = waiting_text(w);
  if (reading)
    return make(CheckStatus::ok, "a tobus-bus reads it (last read " + age_text(*idle) + " ago); " + waiting,
                std::move(d));
  if (w.unread + w.pending == 0)
    return make(CheckStatus::ok, "no tobus-bus reads it now, and no message waits on it", std::move(d));
  return make(CheckStatus::fail,
              "messages wait on the bus (" + waiting + ") and no tobus-bus reads it (" +
                  (idle ? "last read " + age_text(*idle) + " ago" : std::string("never read")) + ")",
              std::move(d));
}

DoctorCheck check_modules(DoctorContext& x) {
  std::vector<ModuleRow> rows = read_modules(x.c, x.keys);
  std::int64_t now = now_ms();
  std::int64_t up = 0;
  std::vector<std::string> stranded_text, unknown;
  std::string arr = "[";
  for (const auto& row : rows) {
    ModuleStatus st = module_status(row, now);
    if (st.live > 0) {
      ++up;
      continue;
    }
    if (!row.instances) {
      unknown.push_back(escape_text(row.name));
      continue;
    }
    if (row.inbox.value_or(0) == 0) continue;
    Waiting w = stream_waiting(x, x.keys.inbox(row.name), Keys::module_group);
    if (w.unread + w.pending == 0) continue;
    std::string seen = st.seen > 0 ? "last seen " + age_text(now - st.seen) + " ago" : "never seen";
    stranded_text.push_back(escape_text(row.name) + " (" + waiting_text(w) + ", " + seen + ")");
    if (arr.size() > 1) arr += ",";
    JsonObject o;
    o.add("module", row.name).add("unread", w.unread).add("unread_at_least", w.at_least).add("pending", w.pending);
    add_opt(o, "last_seen", st.seen > 0 ? std::optional<std::int64_t>(st.seen) : std::nullopt);
    arr += o.str();
  }
  JsonObject d;
  d.add("modules", static_cast<std::int64_t>(rows.size())).add("up", up).add_raw("stranded", arr + "]");
  d.add("unknown", unknown);
  std::string counts = std::to_string(rows.size()) + " module" + (rows.size() == 1 ? "" : "s") + ", " +
                       std::to_string(up) + " with a live instance";
  if (!stranded_text.empty()) {
    std::string list;
    for (std::size_t i = 0; i < stranded_text.size() && i < 5; ++i) list += (i ? ", " : "") + stranded_text[i];
    if (stranded_text.size() > 5) list += ", and " + std::to_string(stranded_text.size() - 5) + " more";
    return make(CheckStatus::fail, "messages wait for modules with no live instance: " + list, std::move(d));
  }
  if (!unknown.empty()) {
    std::string list;
    for (const auto& u : unknown) list += (list.empty() ? "" : ", ") + u;
    return make(CheckStatus::warn, counts + "; the instances of these are unreadable: " + list, std::move(d));
  }
  return make(CheckStatus::ok, counts + "; no messages wait for a module without one", std::move(d));
}

DoctorCheck check_dead(DoctorContext& x) {
  const std::string key = x.keys.dead();
  Reply len = x.c.command({"XLEN", key});
  if (len.is_error()) read_error(x.c, len, key, "stream", "read the dead letters");
  JsonObject d;
  const std::int64_t length = len.integer();
  d.add("length", length);
  if (length == 0) {
    d.add_raw("newest_age_ms", "null").add("recent", 0);
    return make(CheckStatus::ok, "none", std::move(d));
  }
  Reply last = x.c.command({"XREVRANGE", key, "+", "-", "COUNT", "1"});
  if (last.is_error()) read_error(x.c, last, key, "stream", "read the dead letters");
  std::int64_t now = x.redis_now();
  std::int64_t age = last.size() > 0 ? now - entry_ms(last[0][0].str()) : 0;
  // Count the recent ones newest first, a few at a time (dead letters carry payloads), up to a cap.
  constexpr std::int64_t cap = 1000;
  const std::string since = std::to_string(std::max<std::int64_t>(0, now - x.options.dead_since.count())) + "-0";
  std::int64_t recent = 0;
  std::string from = "+";
  for (;;) {
    Reply r = x.c.command({"XREVRANGE", key, from, since, "COUNT", "32"});
    if (r.is_error()) read_error(x.c, r, key, "stream", "read the dead letters");
    recent += static_cast<std::int64_t>(r.size());
    if (r.size() < 32 || recent >= cap) break;
    from = "(" + std::string(r[r.size() - 1][0].str());
  }
  recent = std::min(recent, cap);
  d.add("newest_age_ms", age).add("recent", recent).add("recent_at_least", recent >= cap)
      .add("since_ms", static_cast<std::int64_t>(x.options.dead_since.count()));
  std::string window = format_duration(x.options.dead_since);
  std::string all = std::to_string(length) + " in all";
  if (recent > 0)
    return make(CheckStatus::fail,
                "growing: " + std::to_string(recent) + (recent >= cap ? "+" : "") + " new in the last " + window +
                    " (newest " + age_text(age) + " ago), " + all + "; see tobus-state dead list",
                std::move(d));
  return make(CheckStatus::warn,
              all + ", the newest " + age_text(age) + " old, none in the last " + window +
                  ": look at them (tobus-state dead list), retry or purge them",
              std::move(d));
}

}  // namespace

const std::vector<DoctorCheckEntry>& doctor_checks() {
  // The order they run and are shown in. A new check is one more line.
  static const std::vector<DoctorCheckEntry> checks{
      {"version", check_version},
      {"persistence", check_persistence},
      {"eviction", check_eviction},
      {"memory", check_memory},
      {"acl", check_acl},
      {"clock", check_clock},
      {"pending", check_pending},
      {"bus", check_bus},
      {"modules", check_modules},
      {"dead-letters", check_dead},
  };
  return checks;
}

// --- the run -------------------------------------------------------------------------------------

int run_doctor(const RedisAddress& address, const Keys& keys, const DoctorOptions& options, int out_fd) {
  Connection c = connect_with_retry(address, Millis(0));
  DoctorContext x{c, keys, options, {}, {}, 0, 0, 0};
  Reply info = c.command({"INFO"});
  if (info.is_error()) x.info_error = "INFO was refused: " + reply_text(info);
  else x.info = parse_info(info.str());
  x.local_before = now_ms();
  Reply t = c.command({"TIME"});
  x.local_after = now_ms();
  if (t.is_array() && t.size() == 2) {
    auto secs = int_of(t[0].str()), micros = int_of(t[1].str());
    if (secs && micros) x.redis_ms = *secs * 1000 + *micros / 1000;
  }

  std::vector<DoctorCheck> results;
  for (const auto& check : doctor_checks()) {
    DoctorCheck r;
    try {
      r = check.run(x);
    } catch (const RedisError&) {
      throw;  // Redis went away: exit 3, not a verdict
    } catch (const Error& e) {
      r = could_not_check(escape_text(e.what()));  // the one escape of what errors name (keys are bytes)
    }
    r.name = std::string(check.name);
    if (!options.json) write_output(out_fd, format_check_line(r) + "\n");
    results.push_back(std::move(r));
  }
  if (options.json) write_output(out_fd, doctor_json(results) + "\n");
  return doctor_exit_code(results, options.strict);
}

}  // namespace tobus
