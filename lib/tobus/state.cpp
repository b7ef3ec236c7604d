#include "tobus/state.hpp"

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
#include "tobus/text.hpp"

namespace tobus {
namespace {

using Clock = std::chrono::steady_clock;
// A write made with plain HSET is not in the change stream: `wait` re-reads the record this often.
constexpr auto recheck_every = std::chrono::seconds(5);
constexpr int read_batch = 500;
constexpr int retry_batch = 100;
constexpr std::size_t show_payload_max = 4096;

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

// An error reply from reading `key`, which should hold a `want`: a clear line, exit 4 for a key
// of the wrong type (written by hand), 5 when the user may not read it (ACL), else exit 1.
[[noreturn]] void read_error(Connection& c, const ReplyView& r, std::string_view key, std::string_view want,
                             const std::string& doing) {
  if (r.str().find("WRONGTYPE") != std::string_view::npos) {
    Reply t = c.command({"TYPE", key});
    throw Error(ErrorKind::bad_input, "cannot " + doing + ": '" + std::string(key) + "' holds a " +
                                          std::string(t.str()) + ", not a " + std::string(want));
  }
  throw_reply_error(r, doing);
}

// --- Lua scripts ---------------------------------------------------------------------------------

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

}  // namespace

// --- helpers -------------------------------------------------------------------------------------

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
    if (r.is_error()) throw_reply_error(r, "list keys");
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
                  "bad state record name " + quote(o_.name) + ": 1-256 printable characters, no spaces");
  }
  static void check_field(const std::string& f, const std::string& what) {
    if (!valid_state_field(f))
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
    std::optional<Reply> read = await_reply(c, client);
    if (signals::stop_count() > 0) signals::reraise_stop();
    Reply& r = *read;
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

  static std::string age(std::int64_t ms) { return ms <= 0 ? "never" : age_text(now_ms() - ms); }

  static std::string table(const std::vector<std::vector<std::string>>& rows) {
    std::string out;
    for (const auto& line : table_lines(rows)) out += line + "\n";
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
        if (r->is_error()) throw_reply_error(*r, "list keys");
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
      Reply r = retry_script().eval(c, {dead, bus}, argv);
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
      for (const auto& p : batch) {
        Args argv{p.entry};
        for (const auto& [k, v] : p.fields) {
          argv.push_back(k);
          argv.push_back(v);
        }
        calls.push_back(argv);
      }
      retry_script().prepare(c);
      for (const auto& argv : calls) retry_script().append(c, {dead, bus}, argv);
      std::vector<Reply> replies;
      for (std::size_t i = 0; i < batch.size(); ++i) replies.push_back(c.read_reply());
      std::string text;
      for (std::size_t i = 0; i < batch.size(); ++i) {
        Reply& rr = replies[i];
        // NOSCRIPT: nothing ran (the server lost its script cache); again with EVAL.
        if (Script::is_noscript(rr)) rr = retry_script().eval(c, {dead, bus}, calls[i]);
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

}  // namespace

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
