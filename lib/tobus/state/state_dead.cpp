// tobus-state's verbs on dead letters: dead list, show, retry, purge; and how a dead letter is
// sent back onto the bus.

#include <algorithm>
#include <chrono>
#include <map>
#include <set>

#include "tobus/core/error.hpp"
#include "tobus/process/signals.hpp"
#include "tobus/state/state_verbs.hpp"
#include "tobus/util/text.hpp"

namespace tobus {
namespace {

constexpr int retry_batch = 100;
constexpr std::size_t show_payload_max = 4096;

bool looks_like_entry_id(std::string_view s) {
  auto dash = s.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 == s.size()) return false;
  for (std::size_t i = 0; i < s.size(); ++i)
    if (i != dash && (s[i] < '0' || s[i] > '9')) return false;
  return true;
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

namespace state_detail {
namespace {

class DeadLetters : Verbs {
 public:
  using Verbs::Verbs;

  int run() {
    switch (o_.verb) {
      case StateVerb::dead_list: return dead_list();
      case StateVerb::dead_show: return dead_show();
      case StateVerb::dead_retry: return dead_retry();
      case StateVerb::dead_purge: return dead_purge();
      default: return exit_code::usage;
    }
  }

 private:
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
    std::string out = d.entry + " " + format_time_utc(d.at.value_or(entry_ms(d.entry)), true) + " " +
                      (id.empty() ? "-" : id) + " " + (d.hop.empty() ? "-" : escape_text(d.hop)) + " " +
                      (d.rc ? std::to_string(*d.rc) : "-") + " " +
                      (d.reason.empty() ? "unknown" : escape_text(d.reason));
    return out;
  }

  JsonObject dead_json(const DeadLetter& d) {
    JsonObject j;
    j.add("entry", d.entry).add("at", d.at.value_or(entry_ms(d.entry)));
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
    text += "at: " + format_time_utc(d.at.value_or(entry_ms(d.entry)), true) + "\n";
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
    return o_.all ? retry_all(c, route) : retry_one(c, route);
  }

  // The script's arguments for one dead letter: its entry id, then the fields of the bus entry.
  static Args retry_args(const std::string& entry, const Fields& fields) {
    Args argv{entry};
    for (const auto& [k, v] : fields) {
      argv.push_back(k);
      argv.push_back(v);
    }
    return argv;
  }

  // dead retry ID: that one, or a clear error.
  int retry_one(Connection& c, const std::vector<std::string>* route) {
    const std::string dead = keys_.dead(), bus = keys_.bus();
    DeadLetter d = must_find_dead(c);
    std::string error;
    bool junk = false;
    auto fields = retry_fields(d, route, error, junk);
    if (!fields)
      throw Error(junk ? ErrorKind::bad_input : ErrorKind::failed,
                  "cannot retry dead letter " + d.entry + ": " + error);
    Reply r = retry_script().eval(c, {dead, bus}, retry_args(d.entry, *fields));
    if (r.is_error()) script_error(r, "retry dead letter " + d.entry);
    if (r.is_nil())
      throw Error(ErrorKind::failed,
                  "dead letter " + d.entry + " is gone (retried or purged meanwhile)");
    out(message_id_of(*fields) + "\n");
    return exit_code::ok;
  }

  // dead retry --all: batch after batch, each collected, moved back onto the bus and its ids
  // written. The exit code says whether some could not be retried.
  int retry_all(Connection& c, const std::vector<std::string>* route) {
    const std::string dead = keys_.dead();
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
      std::vector<Retry> batch = retries_of(entries, route, result);
      out(move_back(c, batch));
      if (entries.size() < static_cast<std::size_t>(retry_batch)) break;
    }
    return result;
  }

  struct Retry {
    std::string entry;  // in NS:dead
    Fields fields;      // of the bus entry that retries it
  };

  // --- dead retry --all: collecting

  // The retries of `entries`; each dead letter that cannot be retried is reported and makes
  // `result` failed, or bad_input when it is junk.
  std::vector<Retry> retries_of(const std::vector<Entry>& entries, const std::vector<std::string>* route,
                                int& result) {
    std::vector<Retry> batch;
    for (const auto& e : entries) {
      DeadLetter d = parse_dead_letter(e);
      std::string error;
      bool junk = false;
      auto fields = retry_fields(d, route, error, junk);
      if (!fields) {
        o_.report.warn("not retrying dead letter {}: {}", d.entry, error);
        result = junk || result == exit_code::bad_input ? exit_code::bad_input : exit_code::failed;
        continue;
      }
      batch.push_back({d.entry, std::move(*fields)});
    }
    return batch;
  }

  // --- dead retry --all: moving back

  // Runs the retry script for each of `batch`, pipelined; each script is atomic on its own, so a
  // kill between two loses nothing. Returns the ids of the messages sent, one a line.
  std::string move_back(Connection& c, const std::vector<Retry>& batch) {
    const std::string dead = keys_.dead(), bus = keys_.bus();
    std::vector<Args> calls;
    for (const auto& p : batch) calls.push_back(retry_args(p.entry, p.fields));
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
    return text;
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
};

}  // namespace

int run_dead_verb(const RedisAddress& address, const Keys& keys, const StateOptions& o, int out) {
  return DeadLetters(address, keys, o, out).run();
}

}  // namespace state_detail
}  // namespace tobus
