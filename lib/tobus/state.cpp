#include "tobus/state.hpp"

#include <CLI/CLI.hpp>
#include <fnmatch.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <set>

#include "tobus/error.hpp"
#include "tobus/io.hpp"
#include "tobus/json.hpp"
#include "tobus/registry.hpp"
#include "tobus/signals.hpp"

namespace tobus {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto reconnect_budget = std::chrono::seconds(30);
// A write made with plain HSET is not in the change stream: `wait` re-reads the record this often.
constexpr auto recheck_every = std::chrono::seconds(5);
constexpr int read_batch = 500;
constexpr int retry_batch = 100;
constexpr std::size_t show_payload_max = 4096;

template <typename Int>
bool to_int(std::string_view s, Int& out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size() && !s.empty();
}

std::optional<std::int64_t> int_of(std::string_view s) {
  std::int64_t v = 0;
  if (!to_int(s, v)) return std::nullopt;
  return v;
}

// The milliseconds part of a stream id.
std::int64_t id_ms(std::string_view id) {
  std::int64_t ms = 0;
  std::from_chars(id.data(), id.data() + id.size(), ms);
  return ms;
}

bool looks_like_entry_id(std::string_view s) {
  auto dash = s.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 == s.size()) return false;
  for (std::size_t i = 0; i < s.size(); ++i)
    if (i != dash && (s[i] < '0' || s[i] > '9')) return false;
  return true;
}

// An array of strings in JSON, made by the one JSON writer of the library: {"a":[...]} → [...].
std::string json_array(const std::vector<std::string>& items) {
  JsonObject o;
  o.add("a", items);
  std::string s = o.str();
  return s.substr(5, s.size() - 6);
}

JsonObject& add_opt(JsonObject& o, std::string_view key, const std::optional<std::int64_t>& v) {
  if (v) return o.add(key, *v);
  return o.add_raw(key, "null");
}

JsonObject& add_opt(JsonObject& o, std::string_view key, const std::string& v) {
  if (!v.empty()) return o.add(key, v);
  return o.add_raw(key, "null");
}

std::string quote(std::string_view s) { return "'" + escape_text(s.substr(0, 200)) + "'"; }

// An error reply from reading `key`, which should hold a `want`: a clear line, exit 4 for a key
// of the wrong type (written by hand), else exit 1.
[[noreturn]] void read_error(Connection& c, const ReplyView& r, std::string_view key, std::string_view want,
                             const std::string& doing) {
  if (r.str().find("WRONGTYPE") != std::string_view::npos) {
    Reply t = c.command({"TYPE", key});
    throw Error(ErrorKind::bad_input, "cannot " + doing + ": '" + std::string(key) + "' holds a " +
                                          std::string(t.str()) + ", not a " + std::string(want));
  }
  throw Error(ErrorKind::failed, "cannot " + doing + ": " + std::string(r.str()));
}

// --- Lua scripts ---------------------------------------------------------------------------------

struct Script {
  explicit Script(std::string t) : text(std::move(t)), sha(sha1_hex(text)) {}
  std::string text;
  std::string sha;
};

// Every state write first checks the types of the record and of the change stream, so a key
// written by hand is reported, not half-written (a script is not rolled back on an error).
constexpr std::string_view prelude = R"lua(
local function expect(key, want)
  local t = redis.call('TYPE', key)['ok']
  if t ~= want and t ~= 'none' then
    return redis.error_reply('WRONGTYPE ' .. key .. ' ' .. t .. ' ' .. want)
  end
end
local bad = expect(KEYS[1], 'hash') or expect(KEYS[2], 'stream')
if bad then return bad end
local event = {'XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'name', ARGV[1]}
)lua";

const Script& set_script() {
  static const Script s(std::string(prelude) + R"lua(
event[#event + 1] = 'op'; event[#event + 1] = 'set'
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  event[#event + 1] = 'field'; event[#event + 1] = ARGV[i]
  event[#event + 1] = 'value'; event[#event + 1] = ARGV[i + 1]
end
redis.call(unpack(event))
return 1
)lua");
  return s;
}

const Script& del_script() {
  static const Script s(std::string(prelude) + R"lua(
event[#event + 1] = 'op'; event[#event + 1] = 'del'
local n = 0
if #ARGV < 3 then
  n = redis.call('HLEN', KEYS[1])
  if n == 0 then return 0 end
  redis.call('DEL', KEYS[1])
else
  for i = 3, #ARGV do
    if redis.call('HDEL', KEYS[1], ARGV[i]) == 1 then
      n = n + 1
      event[#event + 1] = 'field'; event[#event + 1] = ARGV[i]
    end
  end
  if n == 0 then return 0 end
end
redis.call(unpack(event))
return n
)lua");
  return s;
}

// An absent field counts as empty: EXPECTED '' means "absent or empty".
const Script& cas_script() {
  static const Script s(std::string(prelude) + R"lua(
local found = redis.call('HGET', KEYS[1], ARGV[3])
if not found then found = '' end
if found ~= ARGV[4] then return {0, found} end
redis.call('HSET', KEYS[1], ARGV[3], ARGV[5])
event[#event + 1] = 'op'; event[#event + 1] = 'cas'
event[#event + 1] = 'field'; event[#event + 1] = ARGV[3]
event[#event + 1] = 'value'; event[#event + 1] = ARGV[5]
redis.call(unpack(event))
return {1, found}
)lua");
  return s;
}

// The new value is read back as a string: Lua numbers are doubles and would round big integers.
const Script& incr_script() {
  static const Script s(std::string(prelude) + R"lua(
local r = redis.pcall('HINCRBY', KEYS[1], ARGV[3], ARGV[4])
if type(r) == 'table' and r.err then return r end
local v = redis.call('HGET', KEYS[1], ARGV[3])
event[#event + 1] = 'op'; event[#event + 1] = 'incr'
event[#event + 1] = 'field'; event[#event + 1] = ARGV[3]
event[#event + 1] = 'value'; event[#event + 1] = v
event[#event + 1] = 'by'; event[#event + 1] = ARGV[4]
redis.call(unpack(event))
return v
)lua");
  return s;
}

// Moves one dead letter back onto the bus: the XADD and the XDEL in one atomic step, so an
// interrupted retry leaves every message either still dead or back on the bus, never both or
// neither. A dead letter already gone (retried or purged meanwhile) is not sent again.
const Script& retry_script() {
  static const Script s(R"lua(
local t = redis.call('TYPE', KEYS[2])['ok']
if t ~= 'stream' and t ~= 'none' then
  return redis.error_reply('WRONGTYPE ' .. KEYS[2] .. ' ' .. t .. ' stream')
end
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then return false end
local add = {'XADD', KEYS[2], '*'}
for i = 2, #ARGV do add[#add + 1] = ARGV[i] end
local id = redis.call(unpack(add))
redis.call('XDEL', KEYS[1], ARGV[1])
return id
)lua");
  return s;
}

struct ScriptCall {
  Args args;
};

// The scripts take one or two keys; the count is a static string, so the views stay valid.
ScriptCall script_call(const Script& s, bool by_sha, std::initializer_list<std::string_view> keys,
                       const Args& argv) {
  static constexpr std::string_view counts[] = {"0", "1", "2", "3"};
  ScriptCall call;
  call.args = {by_sha ? "EVALSHA" : "EVAL", by_sha ? std::string_view(s.sha) : std::string_view(s.text),
               counts[std::min<std::size_t>(keys.size(), 3)]};
  call.args.insert(call.args.end(), keys.begin(), keys.end());
  call.args.insert(call.args.end(), argv.begin(), argv.end());
  return call;
}

bool no_script(const ReplyView& r) { return r.is_error() && r.str().starts_with("NOSCRIPT"); }

// EVALSHA, and EVAL when the server does not have the script yet (NOSCRIPT: nothing ran).
Reply eval(Connection& c, const Script& s, std::initializer_list<std::string_view> keys, const Args& argv) {
  {
    ScriptCall call = script_call(s, true, keys, argv);
    Reply r = c.command(call.args);
    if (!no_script(r)) return r;
  }
  ScriptCall call = script_call(s, false, keys, argv);
  return c.command(call.args);
}

// The error reply of a write script, as an Error: "WRONGTYPE KEY TYPE WANT" from the prelude.
[[noreturn]] void script_error(const ReplyView& r, const std::string& doing) {
  std::string_view e = r.str();
  if (e.starts_with("WRONGTYPE ")) {
    std::string words[3];
    std::size_t pos = 10;
    for (auto& w : words) {
      auto sp = e.find(' ', pos);
      w = std::string(e.substr(pos, sp == std::string_view::npos ? std::string_view::npos : sp - pos));
      pos = sp == std::string_view::npos ? e.size() : sp + 1;
    }
    throw Error(ErrorKind::bad_input,
                "cannot " + doing + ": '" + words[0] + "' holds a " + words[1] + ", not a " + words[2]);
  }
  throw Error(ErrorKind::failed, "cannot " + doing + ": " + std::string(e));
}

std::string maxlen() { return std::to_string(state_changes_maxlen); }

// --- SHA-1 (for EVALSHA) -------------------------------------------------------------------------

std::uint32_t rol(std::uint32_t v, int n) { return (v << n) | (v >> (32 - n)); }

}  // namespace

// --- names, keys, helpers ------------------------------------------------------------------------

bool valid_state_name(std::string_view name) {
  if (name.empty() || name.size() > 200) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '.' || c == ':' || c == '@' || c == '/' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string state_key(const Keys& keys, std::string_view name) {
  return keys.ns() + ":state:" + std::string(name);
}
std::string state_changes_key(const Keys& keys) { return keys.ns() + ":state-changes"; }

std::string escape_text(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto ch = static_cast<unsigned char>(s[i]);
    if (ch >= 0x80) {
      // UTF-8 text stays readable; other bytes are escaped.
      std::size_t n = ch >= 0xf0 ? 4 : ch >= 0xe0 ? 3 : ch >= 0xc0 ? 2 : 1;
      if (n > 1 && is_utf8(s.substr(i, n))) {
        out += s.substr(i, n);
        i += n - 1;
        continue;
      }
    }
    switch (ch) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (ch < 0x20 || ch >= 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", ch);
          out += buf;
        } else {
          out += static_cast<char>(ch);
        }
    }
  }
  return out;
}

std::string format_time_utc(std::int64_t ms, bool millis) {
  if (ms < 0) ms = 0;
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out(buf, n);
  if (millis) {
    std::snprintf(buf, sizeof buf, ".%03d", static_cast<int>(ms % 1000));
    out += buf;
  }
  return out + "Z";
}

std::string sha1_hex(std::string_view data) {
  std::uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
  std::string msg(data);
  std::uint64_t bits = static_cast<std::uint64_t>(data.size()) * 8;
  msg += static_cast<char>(0x80);
  while (msg.size() % 64 != 56) msg += '\0';
  for (int i = 7; i >= 0; --i) msg += static_cast<char>((bits >> (i * 8)) & 0xff);
  for (std::size_t chunk = 0; chunk < msg.size(); chunk += 64) {
    std::uint32_t w[80];
    for (int i = 0; i < 16; ++i) {
      const auto* p = reinterpret_cast<const unsigned char*>(msg.data() + chunk + i * 4);
      w[i] = (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | p[3];
    }
    for (int i = 16; i < 80; ++i) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    std::uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; ++i) {
      std::uint32_t f, k;
      if (i < 20) {
        f = (b & c) | (~b & d);
        k = 0x5A827999;
      } else if (i < 40) {
        f = b ^ c ^ d;
        k = 0x6ED9EBA1;
      } else if (i < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = 0x8F1BBCDC;
      } else {
        f = b ^ c ^ d;
        k = 0xCA62C1D6;
      }
      std::uint32_t t = rol(a, 5) + f + e + k + w[i];
      e = d;
      d = c;
      c = rol(b, 30);
      b = a;
      a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
  }
  std::string out;
  char buf[9];
  for (auto v : h) {
    std::snprintf(buf, sizeof buf, "%08x", v);
    out += buf;
  }
  return out;
}

ModuleInstance parse_instance(std::string id, std::string_view json) {
  ModuleInstance in;
  in.id = std::move(id);
  // parse_flat_object is rapidjson's strict parser: junk is rejected, never trusted.
  auto obj = json.size() <= 4096 ? parse_flat_object(json) : std::nullopt;
  if (!obj) return in;
  bool have_heartbeat = false;
  for (const auto& [k, v] : *obj) {
    if (k == "host") in.host = v;
    else if (k == "pid") to_int(v, in.pid);
    else if (k == "started") to_int(v, in.started);
    else if (k == "heartbeat") have_heartbeat = to_int(v, in.heartbeat);
    else if (k == "jobs") to_int(v, in.jobs);
  }
  in.known = have_heartbeat;
  return in;
}

DeadLetter parse_dead_letter(const Entry& e) {
  DeadLetter d = decode_dead_letter(e.fields);
  d.entry = e.id;
  return d;
}

std::optional<Fields> retry_fields(const DeadLetter& d, const std::vector<std::string>* to,
                                   std::string& error, bool& undecodable) {
  undecodable = false;
  DecodeError why;
  auto decoded = decode(d.original, why);
  Message m;
  if (decoded) {
    m = std::move(*decoded);
  } else {
    undecodable = true;
    if (!to) {
      error = "it could not be decoded (" + why.reason + "); give --to ROUTE to send its payload anew";
      return std::nullopt;
    }
    // Junk sent anew: its payload, its id if valid (else a new one), its valid headers.
    bool have_payload = false;
    for (const auto& [k, v] : d.original) {
      if (k == "payload") {
        m.payload = v;
        have_payload = true;
      } else if (k == "id" && valid_message_id(v)) {
        m.id = v;
      } else if (k.starts_with("h:") && valid_name(std::string_view(k).substr(2))) {
        m.headers.emplace_back(k.substr(2), v);
      } else if (k == "created") {
        to_int(v, m.created_ms);
      }
    }
    if (!have_payload) {
      error = "it could not be decoded (" + why.reason + ") and has no payload to send anew";
      return std::nullopt;
    }
    if (m.id.empty()) m.id = new_message_id();
  }
  std::vector<std::string> route;
  if (to) {
    route = *to;
  } else if (!d.hop.empty()) {
    if (!valid_name(d.hop)) {
      undecodable = true;
      error = "its dead.hop " + quote(d.hop) + " is not a module name; give --to ROUTE";
      return std::nullopt;
    }
    route.push_back(d.hop);
    route.insert(route.end(), m.route.begin(), m.route.end());
  } else {
    route = m.route;
  }
  if (route.empty()) {
    error = "it has no route left; give --to ROUTE";
    return std::nullopt;
  }
  m.route = std::move(route);
  m.from = "retry";
  m.rc = 0;
  m.failure.reset();
  return encode(m);
}

// --- writes --------------------------------------------------------------------------------------

void state_set(Connection& c, const Keys& keys, std::string_view name, const Fields& fields) {
  std::string key = state_key(keys, name), changes = state_changes_key(keys), ml = maxlen();
  Args argv{name, ml};
  for (const auto& [f, v] : fields) {
    argv.push_back(f);
    argv.push_back(v);
  }
  Reply r = eval(c, set_script(), {key, changes}, argv);
  if (r.is_error()) script_error(r, "set " + quote(name));
}

long long state_del(Connection& c, const Keys& keys, std::string_view name,
                    const std::vector<std::string>& fields) {
  std::string key = state_key(keys, name), changes = state_changes_key(keys), ml = maxlen();
  Args argv{name, ml};
  for (const auto& f : fields) argv.push_back(f);
  Reply r = eval(c, del_script(), {key, changes}, argv);
  if (r.is_error()) script_error(r, "delete from " + quote(name));
  return r.integer();
}

bool state_cas(Connection& c, const Keys& keys, std::string_view name, std::string_view field,
               std::string_view expected, std::string_view desired, std::string* found) {
  std::string key = state_key(keys, name), changes = state_changes_key(keys), ml = maxlen();
  Reply r = eval(c, cas_script(), {key, changes}, Args{name, ml, field, expected, desired});
  if (r.is_error()) script_error(r, "compare-and-set " + quote(name));
  if (found) *found = std::string(r[1].str());
  return r[0].integer() == 1;
}

long long state_incr(Connection& c, const Keys& keys, std::string_view name, std::string_view field,
                     long long by) {
  std::string key = state_key(keys, name), changes = state_changes_key(keys), ml = maxlen();
  std::string n = std::to_string(by);
  Reply r = eval(c, incr_script(), {key, changes}, Args{name, ml, field, n});
  std::string doing = "increment " + quote(field) + " of " + quote(name);
  if (r.is_error()) {
    if (r.str().find("not an integer") != std::string_view::npos) {
      Reply v = c.command({"HGET", key, field});
      throw Error(ErrorKind::bad_input,
                  "cannot " + doing + ": its value " + quote(v.str()) + " is not an integer");
    }
    if (r.str().find("overflow") != std::string_view::npos)
      throw Error(ErrorKind::bad_input, "cannot " + doing + " by " + n + ": the result would overflow");
    script_error(r, doing);
  }
  long long v = 0;
  if (!to_int(r.str(), v)) throw Error(ErrorKind::failed, "cannot " + doing + ": unexpected reply");
  return v;
}

// --- reads ---------------------------------------------------------------------------------------

std::optional<Fields> state_get(Connection& c, const Keys& keys, std::string_view name) {
  std::string key = state_key(keys, name);
  Reply r = c.command({"HGETALL", key});
  if (r.is_error()) read_error(c, r, key, "hash", "read state record " + quote(name));
  if (r.size() == 0) return std::nullopt;
  Fields out;
  for (std::size_t i = 0; i + 1 < r.size(); i += 2) out.emplace_back(r[i].str(), r[i + 1].str());
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<std::string> state_get_field(Connection& c, const Keys& keys, std::string_view name,
                                           std::string_view field) {
  std::string key = state_key(keys, name);
  Reply r = c.command({"HGET", key, field});
  if (r.is_error()) read_error(c, r, key, "hash", "read state record " + quote(name));
  if (r.is_nil()) return std::nullopt;
  return std::string(r.str());
}

namespace {

// Every key matching `match` (SCAN; the same key may come twice, so a set).
std::set<std::string> scan_keys(Connection& c, const std::string& match, std::string_view type = {}) {
  std::set<std::string> out;
  std::string cursor = "0";
  do {
    Args args{"SCAN", cursor, "MATCH", match, "COUNT", "1000"};
    if (!type.empty()) {
      args.push_back("TYPE");
      args.push_back(type);
    }
    Reply r = c.command(args);
    if (r.is_error()) throw Error(ErrorKind::failed, "cannot list keys: " + std::string(r.str()));
    cursor = std::string(r[0].str());
    for (std::size_t i = 0; i < r[1].size(); ++i) out.emplace(r[1][i].str());
  } while (cursor != "0");
  return out;
}

}  // namespace

StateList state_list(Connection& c, const Keys& keys, std::string_view pattern) {
  const std::string prefix = state_key(keys, "");
  auto found = scan_keys(c, prefix + std::string(pattern));
  std::vector<std::string> all(found.begin(), found.end());
  StateList out;
  for (std::size_t start = 0; start < all.size(); start += read_batch) {
    std::size_t end = std::min(all.size(), start + read_batch);
    for (std::size_t i = start; i < end; ++i) c.append({"TYPE", all[i]});
    for (std::size_t i = start; i < end; ++i) {
      Reply t = c.read_reply();
      std::string name = all[i].substr(prefix.size());
      if (t.str() != "hash") {
        if (t.str() != "none")
          out.skipped.push_back("'" + escape_text(all[i]) + "': it holds a " + std::string(t.str()) +
                                ", not a hash");
      } else if (!valid_state_name(name)) {
        out.skipped.push_back("'" + escape_text(all[i]) + "': not a valid state record name");
      } else {
        out.names.push_back(std::move(name));
      }
    }
  }
  std::sort(out.names.begin(), out.names.end());
  return out;
}

// --- change events -------------------------------------------------------------------------------

std::optional<StateChange> parse_state_change(const Entry& e) {
  StateChange ch;
  ch.entry = e.id;
  for (const auto& [k, v] : e.fields) {
    if (k == "name") ch.name = v;
    else if (k == "op") ch.op = v;
    else if (k == "field") ch.fields.emplace_back(v, "");
    else if (k == "value" && !ch.fields.empty()) ch.fields.back().second = v;
  }
  if (ch.name.empty() || ch.op.empty()) return std::nullopt;
  return ch;
}

std::string format_state_change(const StateChange& c) {
  std::string out = escape_text(c.name) + " " + escape_text(c.op);
  for (const auto& [f, v] : c.fields) {
    out += " " + escape_text(f);
    if (c.op != "del") out += "=" + escape_text(v);
  }
  return out;
}

std::string state_change_json(const StateChange& c) {
  JsonObject o;
  o.add("entry", c.entry).add("at", id_ms(c.entry)).add("name", c.name).add("op", c.op);
  if (c.op == "del") {
    std::vector<std::string> names;
    for (const auto& f : c.fields) names.push_back(f.first);
    o.add("deleted", names);
  } else {
    o.add("fields", c.fields);
  }
  return o.str();
}

// --- the verbs -----------------------------------------------------------------------------------

namespace {

class Session {
 public:
  Session(const RedisAddress& address, const Keys& keys, const StateOptions& o, int out)
      : address_(address), keys_(keys), o_(o), out_(out) {}

  int run() {
    switch (o_.verb) {
      case StateVerb::get: return get();
      case StateVerb::set: return set();
      case StateVerb::del: return del();
      case StateVerb::list: return list();
      case StateVerb::cas: return cas();
      case StateVerb::incr: return incr();
      case StateVerb::wait: return wait();
      case StateVerb::watch: return watch();
      case StateVerb::modules: return modules();
      case StateVerb::types: return types();
      case StateVerb::jobs: return jobs();
      case StateVerb::dead_list: return dead_list();
      case StateVerb::dead_show: return dead_show();
      case StateVerb::dead_retry: return dead_retry();
      case StateVerb::dead_purge: return dead_purge();
    }
    return exit_code::usage;
  }

 private:
  // --- arguments

  void check_name() const {
    if (!valid_state_name(o_.name))
      throw Error(ErrorKind::usage,
                  "bad state record name " + quote(o_.name) + ": 1-200 of A-Z a-z 0-9 _ . : @ / -");
  }
  static void check_field(const std::string& f, const std::string& what) {
    if (!valid_state_name(f))
      throw Error(ErrorKind::usage,
                  "bad field " + quote(what) + ": a field is 1-200 of A-Z a-z 0-9 _ . : @ / -");
  }
  static Error too_many(const std::string& verb) {
    return Error(ErrorKind::usage,
                 "too many fields: at most " + std::to_string(max_state_fields) + " per " + verb);
  }
  static std::pair<std::string, std::string> split_assignment(const std::string& text) {
    auto eq = text.find('=');
    if (eq == std::string::npos || eq == 0)
      throw Error(ErrorKind::usage, "bad argument " + quote(text) + ": expected FIELD=VALUE");
    return {text.substr(0, eq), text.substr(eq + 1)};
  }

  Connection connect() { return connect_with_retry(address_, Millis(0)); }
  void out(std::string_view s) { write_output(out_, s); }

  // --- records

  int get() {
    check_name();
    Connection c = connect();
    if (!o_.args.empty()) {
      const std::string& field = o_.args.front();
      auto v = state_get_field(c, keys_, o_.name, field);
      if (!v) {
        spdlog::info("state record {} has no field {}", quote(o_.name), quote(field));
        return exit_code::failed;
      }
      if (o_.json) {
        JsonObject j;
        j.add(field, *v);
        out(j.str() + "\n");
      } else {
        out(*v + "\n");
      }
      return exit_code::ok;
    }
    auto rec = state_get(c, keys_, o_.name);
    if (!rec) {
      spdlog::info("no state record {}", quote(o_.name));
      return exit_code::failed;
    }
    std::string text;
    if (o_.json) {
      JsonObject j;
      for (const auto& [f, v] : *rec) j.add(f, v);
      text = j.str() + "\n";
    } else {
      for (const auto& [f, v] : *rec) text += escape_text(f) + "=" + escape_text(v) + "\n";
    }
    out(text);
    return exit_code::ok;
  }

  int set() {
    check_name();
    if (o_.args.size() > max_state_fields) throw too_many("set");
    Fields fields;
    for (const auto& a : o_.args) {
      auto fv = split_assignment(a);
      check_field(fv.first, a);
      fields.push_back(std::move(fv));
    }
    Connection c = connect();
    state_set(c, keys_, o_.name, fields);
    return exit_code::ok;
  }

  int del() {
    check_name();
    if (o_.args.size() > max_state_fields) throw too_many("del");
    for (const auto& f : o_.args)
      if (f.empty()) throw Error(ErrorKind::usage, "empty field name");
    Connection c = connect();
    long long n = state_del(c, keys_, o_.name, o_.args);
    if (n == 0) {
      spdlog::info("nothing to delete in {}", quote(o_.name));
      return exit_code::failed;
    }
    return exit_code::ok;
  }

  int list() {
    Connection c = connect();
    StateList l = state_list(c, keys_, o_.pattern);
    for (const auto& s : l.skipped) spdlog::warn("ignoring {}", s);
    std::string text;
    if (o_.json) {
      text = json_array(l.names) + "\n";
    } else {
      for (const auto& n : l.names) text += n + "\n";
    }
    out(text);
    return exit_code::ok;
  }

  int cas() {
    check_name();
    check_field(o_.field, o_.field);
    Connection c = connect();
    std::string found;
    if (state_cas(c, keys_, o_.name, o_.field, o_.expected, o_.desired, &found)) return exit_code::ok;
    spdlog::info("lost: {} of {} is {}", quote(o_.field), quote(o_.name), quote(found));
    return exit_code::failed;
  }

  int incr() {
    check_name();
    check_field(o_.field, o_.field);
    Connection c = connect();
    out(std::to_string(state_incr(c, keys_, o_.name, o_.field, o_.by)) + "\n");
    return exit_code::ok;
  }

  // --- waiting on the change stream

  // The id of the newest change event, or 0-0; events after it are news.
  std::string last_change(Connection& c) {
    const std::string changes = state_changes_key(keys_);
    Reply r = c.command({"XREVRANGE", changes, "+", "-", "COUNT", "1"});
    if (r.is_error()) read_error(c, r, changes, "stream", "read the change stream");
    auto e = parse_entries(r);
    return e.empty() ? "0-0" : e.front().id;
  }

  // XREAD BLOCK on the change stream after `last`; nil when nothing came. A stop signal unblocks
  // it (CLIENT UNBLOCK) and ends the process by that signal.
  std::vector<Entry> read_changes(Connection& c, long long client, const std::string& last, Millis block) {
    const std::string changes = state_changes_key(keys_);
    std::string b = std::to_string(std::max<long long>(1, block.count()));
    c.append({"XREAD", "COUNT", "1000", "BLOCK", b, "STREAMS", changes, last});
    c.flush();
    Reply r = await_reply(c, client);
    if (signals::stop_count() > 0) signals::reraise_stop();
    if (r.is_error()) read_error(c, r, changes, "stream", "read the change stream");
    if (r.is_nil() || r.size() == 0) return {};
    return parse_entries(r[0][1]);
  }

  int wait() {
    check_name();
    auto [field, value] = split_assignment(o_.args.at(0));
    auto holds = [&](Connection& c) {
      auto v = state_get_field(c, keys_, o_.name, field);
      return v ? *v == value : value.empty();
    };
    Connection c = connect();
    long long client = client_id(c);
    auto deadline = o_.timeout ? Clock::now() + *o_.timeout : Clock::time_point::max();
    std::string last = last_change(c);
    auto next_check = Clock::now();
    for (;;) {
      try {
        if (Clock::now() >= next_check) {
          // Read after `last` was taken: a write in between is caught by one or the other.
          if (holds(c)) return exit_code::ok;
          next_check = Clock::now() + recheck_every;
        }
        if (signals::stop_count() > 0) signals::reraise_stop();
        auto now = Clock::now();
        if (now >= deadline) {
          spdlog::info("{} of {} did not become {} in time", quote(field), quote(o_.name), quote(value));
          return exit_code::timeout;
        }
        auto until = std::min(deadline, next_check);
        auto block = std::chrono::ceil<Millis>(until - now);
        auto events = read_changes(c, client, last, block);
        if (!events.empty()) last = events.back().id;
        for (const auto& e : events) {
          auto ch = parse_state_change(e);
          if (ch && ch->name == o_.name) next_check = Clock::now();
        }
        // The deadline passed while blocked: one last look before giving up.
        if (Clock::now() >= deadline) next_check = Clock::now();
      } catch (const RedisError& e) {
        spdlog::warn("{}, reconnecting", e.what());
        c = connect_with_retry(address_, reconnect_budget);
        client = client_id(c);
        next_check = Clock::now();
      }
    }
  }

  int watch() {
    Connection c = connect();
    long long client = client_id(c);
    std::string last = last_change(c);
    for (;;) {
      try {
        auto events = read_changes(c, client, last, std::chrono::seconds(5));
        std::string text;
        for (const auto& e : events) {
          last = e.id;
          auto ch = parse_state_change(e);
          if (!ch) {
            spdlog::warn("ignoring change event {}: no name or op", e.id);
            continue;
          }
          if (fnmatch(o_.pattern.c_str(), ch->name.c_str(), 0) != 0) continue;
          out((o_.json ? state_change_json(*ch) : format_state_change(*ch)) + "\n");
        }
      } catch (const RedisError& e) {
        spdlog::warn("{}, reconnecting", e.what());
        c = connect_with_retry(address_, reconnect_budget);
        client = client_id(c);
      }
    }
  }

  // --- modules and jobs

  static std::string age(std::int64_t ms) {
    if (ms <= 0) return "never";
    std::int64_t s = std::max<std::int64_t>(0, now_ms() - ms) / 1000;
    if (s < 60) return std::to_string(s) + "s";
    if (s < 3600) return std::to_string(s / 60) + "m";
    if (s < 86400) return std::to_string(s / 3600) + "h";
    return std::to_string(s / 86400) + "d";
  }

  static std::string table(const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::size_t> width;
    for (const auto& r : rows)
      for (std::size_t i = 0; i < r.size(); ++i) {
        if (width.size() <= i) width.push_back(0);
        width[i] = std::max(width[i], r[i].size());
      }
    std::string out;
    for (const auto& r : rows) {
      for (std::size_t i = 0; i < r.size(); ++i) {
        out += r[i];
        if (i + 1 < r.size()) out += std::string(width[i] - r[i].size() + 2, ' ');
      }
      out += "\n";
    }
    return out;
  }

  // The reply to one command by `deadline`, or Error(timeout): the --names lookups serve shell
  // completions, which must never hang.
  std::unique_ptr<Reply> reply_by(Connection& c, const Args& args, Clock::time_point deadline) {
    c.append(args);
    c.flush();
    std::unique_ptr<Reply> r;
    while (!c.take_reply(r)) {
      auto left = std::chrono::ceil<Millis>(deadline - Clock::now()).count();
      if (left <= 0)
        throw Error(ErrorKind::timeout,
                    "no answer from Redis at '" + address_.display() + "' within 1s");
      pollfd p{c.fd(), POLLIN, 0};
      int n = poll(&p, 1, static_cast<int>(left));
      if (n < 0 && errno != EINTR) throw RedisError("poll failed");
      if (n > 0) c.read_available();
    }
    return r;
  }

  // Module names for completions: the registry only, bounded to a second, never a hang.
  int module_names() {
    Connection c = Connection::open(address_, std::chrono::seconds(1));
    auto r = reply_by(c, {"HKEYS", keys_.modules()}, Clock::now() + std::chrono::seconds(1));
    if (r->is_error()) read_error(c, *r, keys_.modules(), "hash", "read the module registry");
    std::vector<std::string> names;
    for (std::size_t i = 0; i < r->size(); ++i) names.emplace_back((*r)[i].str());
    std::sort(names.begin(), names.end());
    std::string text;
    for (const auto& n : names) text += escape_text(n) + "\n";
    out(text);
    return exit_code::ok;
  }

  struct ModuleRow {
    std::string name;
    bool registered = false;
    std::optional<RegistryRecord> registry;  // nullopt: unregistered or unreadable
    std::optional<std::vector<ModuleInstance>> instances;  // nullopt: unreadable
    std::optional<std::int64_t> inbox, pending;
  };

  int modules() {
    if (o_.names_only) return module_names();
    Connection c = connect();
    Reply reg = c.command({"HGETALL", keys_.modules()});
    if (reg.is_error()) read_error(c, reg, keys_.modules(), "hash", "read the module registry");
    std::map<std::string, ModuleRow> rows;
    for (std::size_t i = 0; i + 1 < reg.size(); i += 2) {
      ModuleRow& row = rows[std::string(reg[i].str())];
      row.name = std::string(reg[i].str());
      row.registered = true;
      RegistryRecord rec;
      if (parse_registry_json(std::string(reg[i + 1].str()), rec)) row.registry = rec;
    }
    // Inboxes of modules that never attached (a route naming a module nobody runs) show too.
    const std::string inbox_prefix = keys_.inbox("");
    for (const auto& key : scan_keys(c, inbox_prefix + "*", "stream")) {
      std::string name = key.substr(inbox_prefix.size());
      if (!rows.count(name)) rows[name].name = name;
    }
    std::vector<ModuleRow*> order;
    for (auto& [name, row] : rows) order.push_back(&row);
    for (std::size_t start = 0; start < order.size(); start += read_batch) {
      std::size_t end = std::min(order.size(), start + read_batch);
      for (std::size_t i = start; i < end; ++i) {
        const std::string& n = order[i]->name;
        c.append({"HGETALL", keys_.instances(n)});
        c.append({"XLEN", keys_.inbox(n)});
        c.append({"XPENDING", keys_.inbox(n), Keys::module_group});
      }
      for (std::size_t i = start; i < end; ++i) {
        ModuleRow& row = *order[i];
        Reply inst = c.read_reply(), len = c.read_reply(), pend = c.read_reply();
        if (!inst.is_error()) {
          row.instances.emplace();
          for (std::size_t k = 0; k + 1 < inst.size(); k += 2)
            row.instances->push_back(parse_instance(std::string(inst[k].str()), inst[k + 1].str()));
        }
        if (len.is_integer()) row.inbox = len.integer();
        if (pend.is_array() && pend.size() > 0) row.pending = pend[0].integer();
        else if (pend.is_error() && pend.str().starts_with("NOGROUP")) row.pending = 0;
      }
    }
    std::int64_t now = now_ms();
    auto live = [now](const ModuleInstance& in) { return in.known && now - in.heartbeat < instance_live_ms; };
    auto num = [](const std::optional<std::int64_t>& v) { return v ? std::to_string(*v) : "unknown"; };
    std::vector<std::vector<std::string>> table_rows{
        {"MODULE", "STATUS", "INSTANCES", "INBOX", "PENDING", "LAST_SEEN"}};
    std::string text;
    for (const ModuleRow* row : order) {
      std::int64_t n_live = 0, seen = row->registry ? row->registry->last_seen : 0;
      if (row->instances)
        for (const auto& in : *row->instances) {
          if (live(in)) ++n_live;
          if (in.known) seen = std::max(seen, in.heartbeat);
        }
      bool seen_known = seen > 0 || !row->registered || row->registry;
      if (o_.json) {
        JsonObject j;
        j.add("name", row->name).add("status", n_live > 0 ? "up" : "down").add("registered", row->registered);
        std::optional<std::int64_t> first;
        if (row->registry) first = row->registry->first_seen;
        add_opt(j, "first_seen", first);
        add_opt(j, "last_seen", seen > 0 ? std::optional<std::int64_t>(seen) : std::nullopt);
        j.add("live", n_live);
        if (row->instances) {
          std::string arr = "[";
          for (const auto& in : *row->instances) {
            if (arr.size() > 1) arr += ",";
            JsonObject i;
            i.add("id", in.id).add("live", live(in)).add("known", in.known);
            if (in.known)
              i.add("host", in.host).add("pid", in.pid).add("started", in.started)
                  .add("heartbeat", in.heartbeat).add("jobs", in.jobs);
            arr += i.str();
          }
          j.add_raw("instances", arr + "]");
        } else {
          j.add_raw("instances", "null");
        }
        add_opt(j, "inbox", row->inbox);
        add_opt(j, "pending", row->pending);
        text += j.str() + "\n";
      } else {
        table_rows.push_back({escape_text(row->name), n_live > 0 ? "up" : "down",
                              row->instances ? std::to_string(n_live) : "unknown", num(row->inbox),
                              num(row->pending), seen_known ? age(seen) : "unknown"});
      }
    }
    out(o_.json ? text : table(table_rows));
    return exit_code::ok;
  }

  // The types modules joined: the sets NS:type:TYPE, whose members are the modules.
  int types() {
    const std::string prefix = keys_.type("");
    std::set<std::string> found;
    std::string cursor = "0";
    if (o_.names_only) {
      // For completions: bounded to a second in all, however many keys there are.
      auto deadline = Clock::now() + std::chrono::seconds(1);
      Connection c = Connection::open(address_, std::chrono::seconds(1));
      do {
        auto r = reply_by(c, {"SCAN", cursor, "MATCH", prefix + "*", "COUNT", "1000", "TYPE", "set"}, deadline);
        if (r->is_error()) throw Error(ErrorKind::failed, "cannot list keys: " + std::string(r->str()));
        cursor = std::string((*r)[0].str());
        for (std::size_t i = 0; i < (*r)[1].size(); ++i) found.emplace((*r)[1][i].str());
      } while (cursor != "0");
      std::string text;
      for (const auto& key : found) text += escape_text(key.substr(prefix.size())) + "\n";
      out(text);
      return exit_code::ok;
    }
    Connection c = connect();
    found = scan_keys(c, prefix + "*", "set");
    std::vector<std::string> names(found.begin(), found.end());
    std::vector<std::vector<std::string>> members(names.size());
    for (std::size_t start = 0; start < names.size(); start += read_batch) {
      std::size_t end = std::min(names.size(), start + read_batch);
      for (std::size_t i = start; i < end; ++i) c.append({"SMEMBERS", names[i]});
      for (std::size_t i = start; i < end; ++i) {
        Reply r = c.read_reply();
        if (r.is_error()) continue;  // changed type since the scan
        for (std::size_t k = 0; k < r.size(); ++k) members[i].emplace_back(r[k].str());
        std::sort(members[i].begin(), members[i].end());
      }
    }
    std::vector<std::vector<std::string>> rows{{"TYPE", "MODULES"}};
    std::string text;
    for (std::size_t i = 0; i < names.size(); ++i) {
      std::string type = names[i].substr(prefix.size());
      if (members[i].empty()) continue;  // emptied since the scan
      if (o_.json) {
        JsonObject j;
        j.add("type", type).add("modules", members[i]);
        text += j.str() + "\n";
      } else {
        std::string list;
        for (const auto& m : members[i]) list += (list.empty() ? "" : ",") + escape_text(m);
        rows.push_back({escape_text(type), list});
      }
    }
    out(o_.json ? text : table(rows));
    return exit_code::ok;
  }

  int jobs() {
    Connection c = connect();
    StateList l = state_list(c, keys_, "job:*");
    for (const auto& s : l.skipped) spdlog::warn("ignoring {}", s);
    struct Job {
      std::string id;
      std::map<std::string, std::string> f;
      std::int64_t when = 0;
    };
    std::vector<Job> jobs;
    for (std::size_t start = 0; start < l.names.size(); start += read_batch) {
      std::size_t end = std::min(l.names.size(), start + read_batch);
      std::vector<std::string> keys;
      for (std::size_t i = start; i < end; ++i) keys.push_back(state_key(keys_, l.names[i]));
      for (const auto& k : keys) c.append({"HGETALL", k});
      for (std::size_t i = start; i < end; ++i) {
        Reply r = c.read_reply();
        if (r.is_error() || r.size() == 0) continue;  // changed type or gone since the scan
        Job j;
        j.id = l.names[i].substr(4);
        for (std::size_t k = 0; k + 1 < r.size(); k += 2)
          j.f[std::string(r[k].str())] = std::string(r[k + 1].str());
        if (!o_.module.empty() && j.f["module"] != o_.module) continue;
        j.when = int_of(j.f["started"]).value_or(int_of(j.f["finished"]).value_or(0));
        jobs.push_back(std::move(j));
      }
    }
    std::sort(jobs.begin(), jobs.end(), [](const Job& a, const Job& b) {
      return a.when != b.when ? a.when > b.when : a.id < b.id;
    });
    static const char* numeric[] = {"attempt", "rc", "started", "finished"};
    std::vector<std::vector<std::string>> rows{
        {"JOB", "STATUS", "MODULE", "ATTEMPT", "RC", "STARTED", "FINISHED", "HOST", "PID"}};
    std::string text;
    for (auto& j : jobs) {
      if (o_.json) {
        JsonObject o;
        o.add("job", j.id);
        for (const char* k : {"status", "module"}) add_opt(o, k, j.f[k]);
        for (const char* k : numeric) {
          const std::string& v = j.f[k];
          if (auto n = int_of(v)) o.add(k, *n);
          else add_opt(o, k, v);  // malformed: the text as it is
        }
        add_opt(o, "host", j.f["host"]);
        if (auto n = int_of(j.f["pid"])) o.add("pid", *n);
        else add_opt(o, "pid", j.f["pid"]);
        text += o.str() + "\n";
      } else {
        auto cell = [&](const char* k) { return j.f[k].empty() ? std::string("-") : escape_text(j.f[k]); };
        auto time = [&](const char* k) {
          auto n = int_of(j.f[k]);
          return n ? format_time_utc(*n) : cell(k);
        };
        rows.push_back({escape_text(j.id), cell("status"), cell("module"), cell("attempt"), cell("rc"),
                        time("started"), time("finished"), cell("host"), cell("pid")});
      }
    }
    out(o_.json ? text : table(rows));
    return exit_code::ok;
  }

  // --- dead letters

  // Calls `each` for every dead letter from `start` to `end` (XRANGE ids), in batches, oldest first.
  template <typename F>
  void each_dead(Connection& c, std::string start, const std::string& end, F each) {
    const std::string dead = keys_.dead();
    const std::string count = std::to_string(read_batch);
    for (;;) {
      Reply r = c.command({"XRANGE", dead, start, end, "COUNT", count});
      if (r.is_error()) read_error(c, r, dead, "stream", "read the dead letters");
      auto entries = parse_entries(r);
      if (entries.empty()) return;
      if (!each(entries)) return;
      start = "(" + entries.back().id;
      if (entries.size() < static_cast<std::size_t>(read_batch)) return;
    }
  }

  std::string dead_line(const DeadLetter& d) {
    std::string id = d.message_id();
    std::string out = d.entry + " " + format_time_utc(d.at.value_or(id_ms(d.entry)), true) + " " +
                      (id.empty() ? "-" : id) + " " + (d.hop.empty() ? "-" : escape_text(d.hop)) + " " +
                      (d.rc ? std::to_string(*d.rc) : "-") + " " +
                      (d.reason.empty() ? "unknown" : escape_text(d.reason));
    return out;
  }

  JsonObject dead_json(const DeadLetter& d) {
    JsonObject j;
    j.add("entry", d.entry).add("at", d.at.value_or(id_ms(d.entry)));
    add_opt(j, "id", d.message_id());
    add_opt(j, "hop", d.hop);
    add_opt(j, "rc", d.rc);
    add_opt(j, "attempts", d.attempts);
    add_opt(j, "reason", d.reason);
    add_opt(j, "stream", d.stream);
    add_opt(j, "source_entry", d.source_entry);
    return j;
  }

  int dead_list() {
    Connection c = connect();
    each_dead(c, "-", "+", [&](const std::vector<Entry>& entries) {
      std::string text;
      for (const auto& e : entries) {
        DeadLetter d = parse_dead_letter(e);
        text += (o_.json ? dead_json(d).str() : dead_line(d)) + "\n";
      }
      out(text);
      return true;
    });
    return exit_code::ok;
  }

  // The dead letter with stream id `id`, else the newest one of the message with id `id`.
  std::optional<DeadLetter> find_dead(Connection& c, const std::string& id) {
    const std::string dead = keys_.dead();
    if (looks_like_entry_id(id)) {
      Reply r = c.command({"XRANGE", dead, id, id});
      if (r.is_error()) read_error(c, r, dead, "stream", "read the dead letters");
      auto e = parse_entries(r);
      if (!e.empty()) return parse_dead_letter(e.front());
    }
    std::string end = "+";
    const std::string count = std::to_string(read_batch);
    for (;;) {
      Reply r = c.command({"XREVRANGE", dead, end, "-", "COUNT", count});
      if (r.is_error()) read_error(c, r, dead, "stream", "read the dead letters");
      auto entries = parse_entries(r);
      for (const auto& e : entries) {
        DeadLetter d = parse_dead_letter(e);
        for (const auto& [k, v] : d.original)
          if (k == "id" && v == id) return d;
      }
      if (entries.size() < static_cast<std::size_t>(read_batch)) return std::nullopt;
      end = "(" + entries.back().id;
    }
  }

  DeadLetter must_find_dead(Connection& c) {
    if (o_.name.empty()) throw Error(ErrorKind::usage, "give a dead letter's ID");
    auto d = find_dead(c, o_.name);
    if (!d) throw Error(ErrorKind::failed, "no dead letter " + quote(o_.name) + " in '" + keys_.dead() + "'");
    return *d;
  }

  int dead_show() {
    Connection c = connect();
    DeadLetter d = must_find_dead(c);
    std::string stderr_tail = d.stderr_tail;
    for (const auto& [k, v] : d.original)
      if (k == "stderr" && stderr_tail.empty()) stderr_tail = v;
    if (o_.json) {
      JsonObject j = dead_json(d);
      add_opt(j, "stderr", stderr_tail);
      DecodeError why;
      if (auto m = decode(d.original, why)) {
        JsonObject msg;
        add_message(msg, *m);
        j.add_raw("message", msg.str());
      } else {
        j.add_raw("message", "null");
        j.add("error", why.reason);
      }
      j.add("fields", d.original);
      out(j.str() + "\n");
      return exit_code::ok;
    }
    std::string text = "entry: " + d.entry + "\n";
    text += "at: " + format_time_utc(d.at.value_or(id_ms(d.entry)), true) + "\n";
    text += "reason: " + (d.reason.empty() ? std::string("unknown") : escape_text(d.reason)) + "\n";
    if (!d.stream.empty()) text += "stream: " + escape_text(d.stream) + "\n";
    if (!d.source_entry.empty()) text += "source entry: " + escape_text(d.source_entry) + "\n";
    if (!d.hop.empty()) text += "hop: " + escape_text(d.hop) + "\n";
    if (d.rc) text += "rc: " + std::to_string(*d.rc) + "\n";
    if (d.attempts) text += "attempts: " + std::to_string(*d.attempts) + "\n";
    DecodeError why;
    if (!decode(d.original, why)) text += "undecodable: " + escape_text(why.reason) + "\n";
    text += "message:\n";
    for (const auto& [k, v] : d.original) {
      if (k == "stderr") continue;
      std::string value = escape_text(std::string_view(v).substr(0, show_payload_max));
      if (v.size() > show_payload_max) value += "... (" + std::to_string(v.size()) + " bytes)";
      text += "  " + escape_text(k) + ": " + value + "\n";
    }
    if (!stderr_tail.empty()) {
      text += "stderr:\n";
      std::size_t start = 0;
      while (start < stderr_tail.size()) {
        auto nl = stderr_tail.find('\n', start);
        auto end = nl == std::string::npos ? stderr_tail.size() : nl;
        auto line = std::string_view(stderr_tail).substr(start, end - start);
        text += "  " + escape_text(line) + "\n";
        start = nl == std::string::npos ? stderr_tail.size() : nl + 1;
      }
    }
    out(text);
    return exit_code::ok;
  }

  int dead_retry() {
    if (o_.all == !o_.name.empty()) throw Error(ErrorKind::usage, "give a dead letter's ID or --all");
    std::vector<std::string> to;
    if (!o_.to.empty()) to = parse_route(o_.to);
    const std::vector<std::string>* route = o_.to.empty() ? nullptr : &to;
    Connection c = connect();
    const std::string dead = keys_.dead(), bus = keys_.bus();
    if (!o_.all) {
      DeadLetter d = must_find_dead(c);
      std::string error;
      bool junk = false;
      auto fields = retry_fields(d, route, error, junk);
      if (!fields)
        throw Error(junk ? ErrorKind::bad_input : ErrorKind::failed,
                    "cannot retry dead letter " + d.entry + ": " + error);
      Args argv{d.entry};
      for (const auto& [k, v] : *fields) {
        argv.push_back(k);
        argv.push_back(v);
      }
      Reply r = eval(c, retry_script(), {dead, bus}, argv);
      if (r.is_error()) script_error(r, "retry dead letter " + d.entry);
      if (r.is_nil())
        throw Error(ErrorKind::failed,
                    "dead letter " + d.entry + " is gone (retried or purged meanwhile)");
      out(message_id_of(*fields) + "\n");
      return exit_code::ok;
    }
    // Only what is dead now: a message that fails again while we work is not retried in a loop.
    Reply newest = c.command({"XREVRANGE", dead, "+", "-", "COUNT", "1"});
    if (newest.is_error()) read_error(c, newest, dead, "stream", "read the dead letters");
    auto last = parse_entries(newest);
    if (last.empty()) return exit_code::ok;
    int result = exit_code::ok;
    std::string start = "-";
    const std::string end = last.front().id;
    for (;;) {
      if (signals::stop_count() > 0) signals::reraise_stop();
      Reply r = c.command({"XRANGE", dead, start, end, "COUNT", std::to_string(retry_batch)});
      if (r.is_error()) read_error(c, r, dead, "stream", "read the dead letters");
      auto entries = parse_entries(r);
      if (entries.empty()) break;
      start = "(" + entries.back().id;
      struct Pending {
        std::string entry;
        Fields fields;
      };
      std::vector<Pending> batch;
      for (const auto& e : entries) {
        DeadLetter d = parse_dead_letter(e);
        std::string error;
        bool junk = false;
        auto fields = retry_fields(d, route, error, junk);
        if (!fields) {
          spdlog::warn("not retrying dead letter {}: {}", d.entry, error);
          result = junk || result == exit_code::bad_input ? exit_code::bad_input : exit_code::failed;
          continue;
        }
        batch.push_back({d.entry, std::move(*fields)});
      }
      // Pipelined; each script is atomic on its own, so a kill between two loses nothing.
      std::vector<Args> calls;
      std::vector<ScriptCall> sent;
      for (const auto& p : batch) {
        Args argv{p.entry};
        for (const auto& [k, v] : p.fields) {
          argv.push_back(k);
          argv.push_back(v);
        }
        calls.push_back(argv);
      }
      for (const auto& argv : calls) sent.push_back(script_call(retry_script(), true, {dead, bus}, argv));
      for (const auto& s : sent) c.append(s.args);
      std::vector<Reply> replies;
      for (std::size_t i = 0; i < batch.size(); ++i) replies.push_back(c.read_reply());
      std::string text;
      for (std::size_t i = 0; i < batch.size(); ++i) {
        Reply& rr = replies[i];
        // NOSCRIPT: nothing ran (the server lost its script cache); again with EVAL.
        if (no_script(rr)) rr = eval(c, retry_script(), {dead, bus}, calls[i]);
        if (rr.is_error()) script_error(rr, "retry dead letter " + batch[i].entry);
        if (rr.is_nil()) continue;  // someone else retried or purged it meanwhile
        text += message_id_of(batch[i].fields) + "\n";
      }
      out(text);
      if (entries.size() < static_cast<std::size_t>(retry_batch)) break;
    }
    return result;
  }

  static std::string message_id_of(const Fields& f) {
    for (const auto& [k, v] : f)
      if (k == "id") return v;
    return {};
  }

  int dead_purge() {
    Connection c = connect();
    const std::string dead = keys_.dead();
    std::string minid;
    if (o_.older_than)
      minid = std::to_string(std::max<std::int64_t>(0, now_ms() - o_.older_than->count())) + "-0";
    Reply r = o_.older_than ? c.command({"XTRIM", dead, "MINID", minid})
                            : c.command({"XTRIM", dead, "MAXLEN", "0"});
    if (r.is_error()) read_error(c, r, dead, "stream", "purge the dead letters");
    out(std::to_string(r.integer()) + "\n");
    return exit_code::ok;
  }

  const RedisAddress& address_;
  const Keys& keys_;
  const StateOptions& o_;
  int out_;
};

void add_commands_help(const CLI::App& app, const std::string& prefix, std::string& out) {
  auto line = [&out](const std::string& left, const std::string& right) {
    constexpr std::size_t column = 30;
    std::string pad = left.size() < column ? std::string(column - left.size(), ' ')
                                            : "\n" + std::string(column, ' ');
    out += left + pad + right + "\n";
  };
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    std::string usage = "  " + prefix + sub->get_name();
    std::vector<const CLI::Option*> options;
    for (const CLI::Option* opt : sub->get_options()) {
      if (opt->get_lnames().empty() && opt->get_snames().empty() && opt->get_positional()) {
        std::string arg = opt->get_name() + (opt->get_items_expected_max() > 1 ? "..." : "");
        usage += " " + (opt->get_required() ? arg : "[" + arg + "]");
      } else if (!opt->get_lnames().empty() && opt->get_lnames().front() != "help") {
        options.push_back(opt);
      }
    }
    if (!sub->get_subcommands([](const CLI::App*) { return true; }).empty()) {
      add_commands_help(*sub, prefix + sub->get_name() + " ", out);
      continue;
    }
    line(usage, sub->get_description());
    for (const CLI::Option* opt : options) {
      std::string value = opt->get_type_size() == 0 ? "" : " " + opt->get_type_name();
      line("      --" + opt->get_lnames().front() + value, opt->get_description());
    }
  }
}

}  // namespace

std::string commands_help(const CLI::App& app) {
  std::string out = "Commands (a command's options follow it; see also COMMAND --help):\n";
  add_commands_help(app, "", out);
  return out;
}

int run_state(const RedisAddress& address, const Keys& keys, const StateOptions& options, int out_fd) {
  // wait and watch block on Redis and must end by a stop signal at once; dead retry stops between
  // batches. The rest keep the default disposition of SIGINT and SIGTERM.
  auto v = options.verb;
  if (v == StateVerb::wait || v == StateVerb::watch || v == StateVerb::dead_retry)
    signals::install();
  else
    signals::ignore_sigpipe();
  return Session(address, keys, options, out_fd).run();
}

}  // namespace tobus
