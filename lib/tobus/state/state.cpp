// tobus-state: the verbs on state records and their change events (get, set, del, list, cas, incr,
// wait, watch), and run_state, which hands the registry and dead-letter verbs to state_registry.cpp
// and state_dead.cpp.

#include "tobus/state/state.hpp"
#include "tobus/state/state_verbs.hpp"

#include <fnmatch.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <set>

#include "tobus/core/error.hpp"
#include "tobus/process/signals.hpp"
#include "tobus/state/doctor.hpp"
#include "tobus/util/io.hpp"
#include "tobus/util/json.hpp"
#include "tobus/util/text.hpp"

namespace tobus {
namespace state_detail {

std::optional<std::int64_t> int_of(std::string_view s) {
  std::int64_t v = 0;
  if (!to_int(s, v)) return std::nullopt;
  return v;
}

JsonObject& add_opt(JsonObject& o, std::string_view key, const std::optional<std::int64_t>& v) {
  if (v) return o.add(key, *v);
  return o.add_raw(key, "null");
}

JsonObject& add_opt(JsonObject& o, std::string_view key, const std::string& v) {
  if (!v.empty()) return o.add(key, v);
  return o.add_raw(key, "null");
}

void read_error(Connection& c, const ReplyView& r, std::string_view key, std::string_view want,
                             const std::string& doing) {
  if (r.str().find("WRONGTYPE") != std::string_view::npos) {
    Reply t = c.command({"TYPE", key});
    throw Error(ErrorKind::bad_input, "cannot " + doing + ": '" + std::string(key) + "' holds a " +
                                          std::string(t.str()) + ", not a " + std::string(want));
  }
  throw_reply_error(r, doing);
}

}  // namespace state_detail

using namespace state_detail;

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

std::set<std::string> state_detail::scan_keys(Connection& c, const std::string& match, std::string_view type) {
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
  o.add("entry", c.entry).add("at", entry_ms(c.entry)).add("name", c.name).add("op", c.op);
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

using Clock = std::chrono::steady_clock;
// A write made with plain HSET is not in the change stream: `wait` re-reads the record this often.
constexpr auto recheck_every = std::chrono::seconds(5);

// An array of strings in JSON, made by the one JSON writer of the library: {"a":[...]} → [...].
std::string json_array(const std::vector<std::string>& items) {
  JsonObject o;
  o.add("a", items);
  std::string s = o.str();
  return s.substr(5, s.size() - 6);
}

// The verbs on records and their change events.
class Records : Verbs {
 public:
  using Verbs::Verbs;

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
      case StateVerb::modules:
      case StateVerb::types:
      case StateVerb::jobs: return run_registry_verb(address_, keys_, o_, out_);
      case StateVerb::dead_list:
      case StateVerb::dead_show:
      case StateVerb::dead_retry:
      case StateVerb::dead_purge: return run_dead_verb(address_, keys_, o_, out_);
      case StateVerb::doctor: return doctor();
      case StateVerb::acl: return run_acl(keys_, o_, out_);
    }
    return exit_code::usage;
  }

 private:
  int doctor() {
    if (o_.claim_after.count() <= 0 || o_.dead_since.count() <= 0)
      throw Error(ErrorKind::usage, "--claim-after and --dead-since must be longer than 0");
    DoctorOptions d;
    d.claim_after = o_.claim_after;
    d.dead_since = o_.dead_since;
    d.json = o_.json;
    d.strict = o_.strict;
    d.report = o_.report;
    return run_doctor(address_, keys_, d, out_);
  }

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


  // --- records

  int get() {
    check_name();
    Connection c = connect();
    if (!o_.args.empty()) {
      const std::string& field = o_.args.front();
      auto v = state_get_field(c, keys_, o_.name, field);
      if (!v) {
        o_.report.info("state record {} has no field {}", quote(o_.name), quote(field));
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
      o_.report.info("no state record {}", quote(o_.name));
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
      o_.report.info("nothing to delete in {}", quote(o_.name));
      return exit_code::failed;
    }
    return exit_code::ok;
  }

  int list() {
    Connection c = connect();
    StateList l = state_list(c, keys_, o_.pattern);
    for (const auto& s : l.skipped) o_.report.warn("ignoring {}", s);
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
    o_.report.info("lost: {} of {} is {}", quote(o_.field), quote(o_.name), quote(found));
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
          o_.report.info("{} of {} did not become {} in time", quote(field), quote(o_.name), quote(value));
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
        o_.report.warn("{}, reconnecting", e.what());
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
            o_.report.warn("ignoring change event {}: no name or op", e.id);
            continue;
          }
          if (fnmatch(o_.pattern.c_str(), ch->name.c_str(), 0) != 0) continue;
          out((o_.json ? state_change_json(*ch) : format_state_change(*ch)) + "\n");
        }
      } catch (const RedisError& e) {
        o_.report.warn("{}, reconnecting", e.what());
        c = connect_with_retry(address_, reconnect_budget);
        client = client_id(c);
      }
    }
  }

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
  return Records(address, keys, options, out_fd).run();
}

}  // namespace tobus
