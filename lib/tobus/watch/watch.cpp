// tobus-watch reading the bus: the tap over every stream, and the three ways it is used: the live
// watch, the journey of one message (--trace) and the statistics (--stats). What entries mean is
// in watch_event.cpp; how events are shown, in watch_render.cpp.

#include "tobus/watch/watch.hpp"

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>

#include "tobus/core/error.hpp"
#include "tobus/core/registry.hpp"
#include "tobus/process/signals.hpp"
#include "tobus/redis/redis.hpp"
#include "tobus/util/io.hpp"
#include "tobus/util/json.hpp"
#include "tobus/util/text.hpp"
#include "tobus/watch/metrics.hpp"
#include "tobus/watch/serve.hpp"

namespace tobus {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int read_count = 1000;                    // entries per stream per XREAD
constexpr auto scan_every = std::chrono::seconds(3);  // looking for new inboxes, at most this often
constexpr std::int64_t live_heartbeat_ms = 15'000;  // an instance is live when it beat this recently
constexpr std::size_t kept_durations = 10'000;      // per module, for the percentiles

bool colour_wanted(int fd) { return isatty(fd) == 1 && std::getenv("NO_COLOR") == nullptr; }

// A tobus-send id (%011x ms, -, 6 hex, -, hex) tells when the message was made.
std::optional<std::int64_t> generated_id_time(std::string_view id) {
  auto hex = [](std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
      return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    });
  };
  if (id.size() < 20 || id[11] != '-' || id[18] != '-') return std::nullopt;
  if (!hex(id.substr(0, 11)) || !hex(id.substr(12, 6)) || !hex(id.substr(19))) return std::nullopt;
  std::int64_t ms = 0;
  if (!to_int(id.substr(0, 11), ms, 16)) return std::nullopt;
  return ms;
}

}  // namespace

// --- reading the streams -------------------------------------------------------------------------

namespace {

// Every stream of the bus, read with plain XREAD from where it was last read: the bus, the dead
// letters and every inbox, found from the routes on the bus and by SCAN every few seconds.
class Tap {
 public:
  Tap(const RedisAddress& address, const Keys& keys, int out_fd, Reporter report)
      : address_(address),
        keys_(keys),
        out_fd_(out_fd),
        report_(std::move(report)),
        conn_(connect_with_retry(address, Millis(0))) {}

  Connection& conn() { return conn_; }

  void reconnect(const RedisError& e) {
    report_.warn("{}, reconnecting", e.what());
    conn_ = connect_with_retry(address_, reconnect_budget);
  }

  // The server's clock, in ms (event times are its times).
  std::int64_t server_ms() {
    for (;;) {
      try {
        Reply r = conn_.command({"TIME"});
        std::int64_t secs = 0, usecs = 0;
        if (r.size() != 2 || !to_int(r[0].str(), secs) || !to_int(r[1].str(), usecs)) return now_ms();
        return secs * 1000 + usecs / 1000;
      } catch (const RedisError& e) {
        reconnect(e);
      }
    }
  }

  // Reads every stream from `from_ms` on (0: from the oldest entry).
  void start(std::int64_t from_ms) {
    start_id_ = from_ms <= 0 ? "0-0" : std::to_string(from_ms - 1) + "-18446744073709551615";
    add(keys_.bus());
    add(keys_.dead());
    for (;;) {
      try {
        scan();
        break;
      } catch (const RedisError& e) {
        reconnect(e);
      }
    }
    fresh_.clear();
    report_.info("watching {} streams on '{}' from {}", streams_.size(), address_.display(),
                 from_ms <= 0 ? std::string("the oldest entry") : clock_time(from_ms));
  }

  // The next events in time order: waits up to `block` for some (no wait without it).
  std::vector<Event> read(std::optional<Millis> block) {
    if (Clock::now() >= next_scan_) {
      try {
        scan();
      } catch (const RedisError& e) {
        reconnect(e);
      }
      fresh_.clear();  // read with the others just below
    }
    std::vector<Event> events;
    std::int64_t batch_end = 0;
    Reply r = xread(streams_, block);
    caught_up_ = !absorb(r, events, std::numeric_limits<std::int64_t>::max(), batch_end);
    // Inboxes this batch revealed: what they hold up to the batch's time belongs with it, so
    // a message's first routing is not printed after its result.
    for (int round = 0; round < 3 && !fresh_.empty() && batch_end > 0; ++round) {
      std::vector<std::string> fresh;
      fresh.swap(fresh_);
      Reply more = xread(fresh, std::nullopt);
      std::int64_t ignored = 0;
      if (absorb(more, events, batch_end, ignored)) caught_up_ = false;
    }
    if (!fresh_.empty()) caught_up_ = false;
    fresh_.clear();
    sort_events(events);
    return events;
  }

  // The last read found every stream read to its end.
  bool caught_up() const { return caught_up_; }

  // Modules whose inbox is a known stream.
  std::vector<std::string> inbox_modules() const {
    std::vector<std::string> out;
    const std::string prefix = keys_.inbox("");
    for (const auto& s : streams_)
      if (s.starts_with(prefix)) out.push_back(s.substr(prefix.size()));
    return out;
  }

 private:
  void add(const std::string& key) {
    if (last_.contains(key)) return;
    last_[key] = start_id_;
    streams_.push_back(key);
    fresh_.push_back(key);
    report_.debug("reading '{}'", key);
  }

  void scan() {
    auto started = Clock::now();
    std::string cursor = "0";
    do {
      Reply r = conn_.command({"SCAN", cursor, "MATCH", keys_.inbox("*"), "TYPE", "stream", "COUNT", "1000"});
      if (!r.is_array() || r.size() < 2) break;
      cursor = std::string(r[0].str());
      for (std::size_t i = 0; i < r[1].size(); ++i) add(std::string(r[1][i].str()));
    } while (cursor != "0");
    // SCAN walks the whole keyspace: on a big shared Redis, walk it less often (at most 1% of
    // the time); routes on the bus reveal most new inboxes anyway.
    next_scan_ = Clock::now() + std::max<Clock::duration>(scan_every, (Clock::now() - started) * 100);
  }

  // The inboxes of a route's next hop: the module's, or for @TYPE those of the type's members.
  void add_next_hop(const std::string& hop) {
    if (valid_name(hop)) {
      add(keys_.inbox(hop));
      return;
    }
    std::string type = hop.substr(1);
    if (!hop.starts_with('@') || !valid_name(type) || types_.contains(type)) return;
    types_.insert(type);  // looked up once; members that join later are found by SCAN
    try {
      Reply members = conn_.command({"SMEMBERS", keys_.type(type)});
      for (std::size_t i = 0; i < members.size(); ++i)
        if (valid_name(members[i].str())) add(keys_.inbox(members[i].str()));
    } catch (const RedisError& e) {
      report_.debug("cannot read the members of type '{}': {}", type, e.what());
    }
  }

  // Drops keys that are not streams (someone's hand-written key), which would fail every XREAD.
  void prune() {
    std::vector<std::string> keep;
    for (const auto& key : streams_) {
      Reply t = conn_.command({"TYPE", key});
      if (t.str() == "stream" || t.str() == "none") {
        keep.push_back(key);
      } else {
        report_.warn("ignoring '{}': it is a {}, not a stream", key, t.str());
        last_[key] = "+";  // known, never read again
      }
    }
    streams_ = std::move(keep);
  }

  Reply xread(std::vector<std::string> keys, std::optional<Millis> block) {
    for (;;) {
      try {
        std::string count = std::to_string(read_count);
        std::string ms = block ? std::to_string(std::max<long long>(1, block->count())) : "";
        Args args{"XREAD", "COUNT", count};
        if (block) {
          args.push_back("BLOCK");
          args.push_back(ms);
        }
        args.push_back("STREAMS");
        for (const auto& k : keys) args.push_back(k);
        for (const auto& k : keys) args.push_back(last_[k]);
        conn_.append(args);
        conn_.flush();
        Reply r = await();
        if (r.is_error()) {
          if (r.str().starts_with("WRONGTYPE")) {
            prune();
            std::erase_if(keys, [&](const std::string& k) { return last_[k] == "+"; });
            if (keys.empty()) return Reply(nullptr);
            continue;
          }
          throw_reply_error(r, "read the bus's streams");
        }
        return r;
      } catch (const RedisError& e) {
        reconnect(e);
      }
    }
  }

  // Waits for the reply, watching stdout: when its reader has gone, end now, not at the next
  // record (`tobus-watch | head -1` must not wait for more traffic).
  Reply await() {
    std::unique_ptr<Reply> reply;
    for (;;) {
      if (conn_.take_reply(reply)) return std::move(*reply);
      pollfd fds[2] = {{conn_.fd(), POLLIN, 0}, {out_fd_, 0, 0}};
      int n = poll(fds, out_fd_ >= 0 ? 2 : 1, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw RedisError("poll failed: " + std::string(std::strerror(errno)));
      }
      if (fds[1].revents & POLLNVAL) out_fd_ = -1;
      else if (fds[1].revents & (POLLERR | POLLHUP)) end_by_sigpipe();
      if (fds[0].revents) conn_.read_available();
    }
  }

  // Takes the entries of an XREAD reply up to `limit_ms`, and no further than the end of any
  // stream that hit the COUNT (what lies beyond it in other streams comes with the next read).
  // Returns true when something was left for the next read.
  bool absorb(const Reply& r, std::vector<Event>& events, std::int64_t limit_ms, std::int64_t& batch_end) {
    if (!r.is_array()) return false;
    struct Got {
      std::string key;
      std::vector<Entry> entries;
    };
    std::vector<Got> got;
    std::int64_t horizon = limit_ms;
    bool left = false;
    for (std::size_t i = 0; i < r.size(); ++i) {
      Got g{std::string(r[i][0].str()), parse_entries(r[i][1])};
      if (g.entries.size() >= static_cast<std::size_t>(read_count)) {
        horizon = std::min(horizon, entry_ms(g.entries.back().id));
        left = true;
      }
      got.push_back(std::move(g));
    }
    // Entries of the horizon's own millisecond may have causes not read yet in the stream that
    // hit the COUNT: leave them for the next read, unless nothing else is there to take.
    bool strict = left;
    if (strict) {
      strict = false;
      for (const auto& g : got)
        if (!g.entries.empty() && entry_ms(g.entries.front().id) < horizon) strict = true;
    }
    const std::string bus = keys_.bus();
    for (auto& g : got) {
      for (auto& entry : g.entries) {
        std::int64_t ms = entry_ms(entry.id);
        if (ms > horizon || (strict && ms == horizon)) {
          left = true;
          break;
        }
        last_[g.key] = entry.id;
        batch_end = std::max(batch_end, ms);
        auto evs = events_from_entry(keys_, g.key, entry);
        if (g.key == bus)
          for (const auto& e : evs)
            if (!e.message.route.empty()) add_next_hop(e.message.route.front());
        for (auto& e : evs) events.push_back(std::move(e));
      }
    }
    return left;
  }

  const RedisAddress& address_;
  const Keys& keys_;
  int out_fd_;
  Reporter report_;
  Connection conn_;
  std::string start_id_ = "0-0";
  std::vector<std::string> streams_;
  std::unordered_map<std::string, std::string> last_;  // stream → last id read
  std::vector<std::string> fresh_;                      // added since the last read
  std::set<std::string> types_;                         // @TYPE hops whose members were added
  Clock::time_point next_scan_{};
  bool caught_up_ = false;
};

Millis until(Clock::time_point t) {
  return std::max(Millis(1), std::chrono::duration_cast<Millis>(t - Clock::now()) + Millis(1));
}

// --- the tap ---------------------------------------------------------------------------------------

int run_tap(Tap& tap, const WatchOptions& o, int out_fd) {
  std::optional<Formatter> formatter;
  if (o.output == WatchOutput::format) formatter.emplace(o.format);
  PayloadMode payload = o.payload.value_or(o.output == WatchOutput::json ? PayloadMode::full : PayloadMode::preview);
  bool color = o.output == WatchOutput::line && colour_wanted(out_fd);
  std::optional<Clock::time_point> deadline;
  if (o.timeout) deadline = Clock::now() + *o.timeout;
  long long matched = 0;
  std::string out;
  for (;;) {
    Millis block = scan_every;
    if (deadline) {
      if (Clock::now() >= *deadline) break;
      block = std::min(block, until(*deadline));
    }
    auto events = tap.read(block);
    out.clear();
    for (const auto& e : events) {
      if (!o.filter.matches(e)) continue;
      switch (o.output) {
        case WatchOutput::line: out += format_line(e, payload, color); break;
        case WatchOutput::json: out += event_json(e, payload) + "\n"; break;
        case WatchOutput::format: out += formatter->format(e); break;
      }
      ++matched;
      if (o.count > 0 && matched >= o.count) break;
    }
    if (!out.empty()) write_output(out_fd, out);
    if (o.count > 0 && matched >= o.count) return exit_code::ok;
  }
  // The time is up: with --count, not all came; without, nothing came at all.
  bool done = o.count > 0 ? matched >= o.count : matched > 0;
  return done ? exit_code::ok : exit_code::timeout;
}

// --- the trace -------------------------------------------------------------------------------------

int run_trace(Tap& tap, const WatchOptions& o, int out_fd) {
  const std::string& id = o.trace;
  std::int64_t now = tap.server_ms();
  std::int64_t from = 0;  // all of the retained history
  if (o.since) from = now - o.since->count();
  else if (auto made = generated_id_time(id)) from = *made - 60'000;  // the sender's clock may differ
  tap.start(from);
  bool json = o.output == WatchOutput::json;
  PayloadMode payload = o.payload.value_or(json ? PayloadMode::full : PayloadMode::preview);
  auto show = [&](const Journey& j) { write_output(out_fd, json ? j.json(payload) : j.text(payload)); };
  std::optional<Clock::time_point> deadline;
  if (o.timeout) deadline = Clock::now() + *o.timeout;
  Journey journey(id);
  bool history = true;  // reading what is retained, not yet waiting
  for (;;) {
    std::optional<Millis> block;
    if (!history) {
      block = scan_every;
      if (deadline) block = std::min(*block, until(*deadline));
    }
    for (const auto& e : tap.read(block))
      if (e.message.id == id) journey.add(e);
    if (journey.ended()) {
      show(journey);
      return exit_code::ok;
    }
    if (history && tap.caught_up()) {
      history = false;
      if (journey.empty() && !deadline)
        throw Error(ErrorKind::failed, "no message '" + id + "' in the retained history (give --timeout to wait for it)");
      o.report.info("message '{}' {}: waiting for the rest of its journey", id,
                    journey.empty() ? "not seen yet" : "in flight");
    }
    if (deadline && Clock::now() >= *deadline) {
      if (!journey.empty()) show(journey);
      throw Error(ErrorKind::timeout, "the journey of message '" + id + "' did not end within " +
                                          format_duration(*o.timeout));
    }
  }
}

// --- the stats -------------------------------------------------------------------------------------

struct ModuleFigures {
  std::int64_t handled = 0;
  std::int64_t failed = 0;
  std::deque<std::int64_t> in_times, out_times;  // event times, pruned to the interval
  std::deque<std::int64_t> durations;            // the latest handled events'
  std::int64_t last_inbox = -1;
};

struct ModuleRow {
  std::string name;
  int instances = 0;
  long long inbox = 0;
  std::optional<long long> lag;  // entries not yet delivered to any instance
  long long pending = 0;         // delivered, not acknowledged
  double rate_in = 0, rate_out = 0;
  std::int64_t handled = 0, failed = 0;
  std::optional<std::int64_t> p50, p99;
  std::optional<std::int64_t> last_seen;
  bool stalled = false;  // work waits and no live instance takes it
};

struct Snapshot {
  std::int64_t time_ms = 0;
  double bus_rate = 0;
  long long dead = 0;
  std::vector<ModuleRow> rows;
};

std::string rate_text(double r) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", r);
  return buf;
}

std::string snapshot_json(const Snapshot& s, Millis interval) {
  auto opt = [](JsonObject& o, std::string_view key, const auto& v) {
    if (v) o.add(key, static_cast<std::int64_t>(*v));
    else o.add_raw(key, "null");
  };
  std::string modules = "[";
  for (const auto& r : s.rows) {
    if (modules.size() > 1) modules += ',';
    JsonObject m;
    m.add("module", r.name).add("instances", r.instances).add("inbox", static_cast<std::int64_t>(r.inbox));
    opt(m, "lag", r.lag);
    m.add("pending", static_cast<std::int64_t>(r.pending));
    m.add_raw("rate_in", rate_text(r.rate_in)).add_raw("rate_out", rate_text(r.rate_out));
    m.add("handled", r.handled).add("failed", r.failed);
    opt(m, "p50_ms", r.p50);
    opt(m, "p99_ms", r.p99);
    opt(m, "last_seen", r.last_seen);
    m.add("stalled", r.stalled);
    modules += m.str();
  }
  modules += "]";
  JsonObject o;
  o.add("time", s.time_ms).add("interval_ms", static_cast<std::int64_t>(interval.count()));
  o.add_raw("bus_rate", rate_text(s.bus_rate)).add("dead", static_cast<std::int64_t>(s.dead));
  o.add_raw("modules", modules);
  return o.str() + "\n";
}

std::string snapshot_table(const Snapshot& s, bool color) {
  static const std::vector<std::string> heads = {"MODULE", "INST", "INBOX", "LAG",     "PEND", "IN/s",
                                                 "OUT/s",  "HANDLED", "FAILED", "P50", "P99",  "SEEN"};
  std::vector<std::vector<std::string>> cells = {heads};
  auto ms = [](const std::optional<std::int64_t>& v) { return v ? std::to_string(*v) + "ms" : std::string("-"); };
  for (const auto& r : s.rows) {
    cells.push_back({r.name, std::to_string(r.instances), std::to_string(r.inbox),
                     r.lag ? std::to_string(*r.lag) : "-", std::to_string(r.pending), rate_text(r.rate_in),
                     rate_text(r.rate_out), std::to_string(r.handled), std::to_string(r.failed), ms(r.p50),
                     ms(r.p99), r.last_seen ? age_text(s.time_ms - *r.last_seen) : "-"});
  }
  // The module name left-aligned, the figures right-aligned; a stalled module's line marked with '!'.
  auto lines = table_lines(cells, 1);
  std::string out = clock_time(s.time_ms) + "  bus " + rate_text(s.bus_rate) + "/s  dead " + std::to_string(s.dead) + "\n";
  out += "  " + lines[0] + "\n";
  for (std::size_t i = 0; i < s.rows.size(); ++i) {
    bool mark = s.rows[i].stalled;
    const std::string& line = lines[i + 1];
    if (mark && color) out += "\x1b[1;31m! " + line + "\x1b[0m\n";
    else out += (mark ? "! " : "  ") + line + "\n";
  }
  return out;
}

class Stats {
 public:
  Stats(Tap& tap, const Keys& keys, const WatchOptions& o) : tap_(tap), keys_(keys), o_(o) {}

  void add(const Event& e) {
    std::int64_t t = e.time_ms;
    if (e.stream == keys_.bus() && e.kind != EventKind::delivered && e.kind != EventKind::done)
      bus_times_.push_back(t);
    if (e.module.empty()) return;
    auto& f = figures_[e.module];
    switch (e.kind) {
      case EventKind::routed: f.in_times.push_back(t); break;
      case EventKind::handled:
        f.out_times.push_back(t);
        ++f.handled;
        if (e.duration_ms) {
          f.durations.push_back(*e.duration_ms);
          if (f.durations.size() > kept_durations) f.durations.pop_front();
        }
        break;
      case EventKind::failed:
        f.out_times.push_back(t);
        ++f.failed;
        break;
      default: break;
    }
  }

  // The figures at server time `at`, the rates over (`since`, `at`]: the caller has read every
  // entry written up to `at`.
  Snapshot take(std::int64_t at, std::int64_t since) {
    for (;;) {
      try {
        return gather(at, since);
      } catch (const RedisError& e) {
        tap_.reconnect(e);
      }
    }
  }

 private:
  bool wanted(const std::string& name) const {
    return o_.filter.modules.empty() ||
           std::find(o_.filter.modules.begin(), o_.filter.modules.end(), name) != o_.filter.modules.end();
  }

  Snapshot gather(std::int64_t at, std::int64_t since) {
    Connection& c = tap_.conn();
    Snapshot s;
    s.time_ms = at;
    c.append({"HGETALL", keys_.modules()});
    c.append({"XLEN", keys_.dead()});
    Reply registry = c.read_reply();
    Reply dead = c.read_reply();
    s.dead = dead.integer();

    std::map<std::string, ModuleRow> rows;
    for (std::size_t i = 0; i + 1 < registry.size(); i += 2) {
      std::string name(registry[i].str());
      if (!valid_name(name) || !wanted(name)) continue;
      auto& row = rows[name];
      RegistryRecord rec;
      if (parse_registry_json(std::string(registry[i + 1].str()), rec) && rec.last_seen > 0) row.last_seen = rec.last_seen;
    }
    for (const auto& name : tap_.inbox_modules())
      if (valid_name(name) && wanted(name)) rows[name];
    for (const auto& [name, f] : figures_)
      if (wanted(name)) rows[name];

    for (const auto& [name, row] : rows) {
      c.append({"HGETALL", keys_.instances(name)});
      c.append({"XLEN", keys_.inbox(name)});
      c.append({"XINFO", "GROUPS", keys_.inbox(name)});
    }
    // Consecutive windows tile: every event is counted in exactly one of them.
    const double secs_in_window = static_cast<double>(std::max<std::int64_t>(1, at - since)) / 1000.0;
    auto in_window = [&](std::deque<std::int64_t>& times) {
      while (!times.empty() && times.front() <= since) times.pop_front();
      auto n = std::count_if(times.begin(), times.end(), [&](std::int64_t t) { return t <= at; });
      return static_cast<double>(n) / secs_in_window;
    };
    for (auto& [name, row] : rows) {
      row.name = name;
      Reply instances = c.read_reply();
      Reply xlen = c.read_reply();
      Reply groups = c.read_reply();
      for (std::size_t i = 0; i + 1 < instances.size(); i += 2) {
        auto rec = parse_flat_object(instances[i + 1].str());
        if (!rec) continue;
        for (const auto& [k, v] : *rec) {
          std::int64_t beat = 0;
          if (k != "heartbeat" || !to_int(v, beat)) continue;
          if (s.time_ms - beat < live_heartbeat_ms) ++row.instances;
          if (!row.last_seen || beat > *row.last_seen) row.last_seen = beat;
        }
      }
      row.inbox = xlen.integer();
      for (std::size_t g = 0; g < groups.size(); ++g) {
        ReplyView group = groups[g];
        bool ours = false;
        long long pending = 0;
        std::optional<long long> lag;
        for (std::size_t j = 0; j + 1 < group.size(); j += 2) {
          std::string_view k = group[j].str();
          if (k == "name") ours = group[j + 1].str() == Keys::module_group;
          else if (k == "pending") pending = group[j + 1].integer();
          else if (k == "lag" && group[j + 1].is_integer()) lag = group[j + 1].integer();
        }
        if (!ours) continue;
        row.pending = pending;
        row.lag = lag;
      }
      auto& f = figures_[name];
      row.rate_in = in_window(f.in_times);
      row.rate_out = in_window(f.out_times);
      row.handled = f.handled;
      row.failed = f.failed;
      std::vector<std::int64_t> d(f.durations.begin(), f.durations.end());
      row.p50 = percentile(d, 50);
      row.p99 = percentile(d, 99);
      bool grew = f.last_inbox >= 0 && row.inbox > f.last_inbox;
      f.last_inbox = row.inbox;
      row.stalled = row.instances == 0 && (row.lag.value_or(0) > 0 || row.pending > 0 || grew);
      s.rows.push_back(row);
    }
    s.bus_rate = in_window(bus_times_);
    return s;
  }

  Tap& tap_;
  const Keys& keys_;
  const WatchOptions& o_;
  std::map<std::string, ModuleFigures> figures_;
  std::deque<std::int64_t> bus_times_;
};

int run_stats(Tap& tap, const Keys& keys, const WatchOptions& o, int out_fd) {
  std::int64_t now = tap.server_ms();
  tap.start(o.since ? now - o.since->count() : now);
  Stats stats(tap, keys, o);
  const bool tty = isatty(out_fd) == 1;
  const bool color = colour_wanted(out_fd);
  const bool json = o.output == WatchOutput::json;
  auto next = Clock::now() + o.interval;
  long long shown = 0;
  std::int64_t window_start = now;  // the rates are of what happened since the watch started
  for (;;) {
    for (const auto& e : tap.read(std::min<Millis>(scan_every, until(next)))) stats.add(e);
    if (Clock::now() < next) continue;
    // History first: a snapshot is due only once what is retained has been read.
    if (!tap.caught_up()) continue;
    // Everything written up to the snapshot's time is counted in it, not left for the next.
    std::int64_t at = tap.server_ms();
    do {
      for (const auto& e : tap.read(std::nullopt)) stats.add(e);
    } while (!tap.caught_up());
    Snapshot s = stats.take(at, window_start);
    window_start = at;
    std::string out;
    if (json) {
      out = snapshot_json(s, o.interval);
    } else if (tty) {
      // In place: home, each line cleared to its end, then the rest of the screen.
      std::string table = snapshot_table(s, color);
      out = "\x1b[H";
      for (std::size_t start = 0; start < table.size();) {
        auto nl = table.find('\n', start);
        out += table.substr(start, nl - start) + "\x1b[K\n";
        start = nl + 1;
      }
      out += "\x1b[J";
    } else {
      out = snapshot_table(s, false) + "\n";
    }
    write_output(out_fd, out);
    if (o.count > 0 && ++shown >= o.count) return exit_code::ok;
    next += o.interval;
    if (next < Clock::now()) next = Clock::now() + o.interval;
  }
}

// --- the server (--serve) ---------------------------------------------------------------------------

// The caps on what one exporter counts and serves (tobus-watch(1), METRICS): past them, modules
// and types are left out, and counted in tobus_exporter_dropped.
constexpr std::size_t max_metric_modules = 1000;
constexpr std::size_t max_metric_types = 1000;

constexpr std::string_view serve_index = R"(<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>tobus-watch</title></head>
<body>
<h1>tobus-watch</h1>
<ul>
<li><a href="/metrics">/metrics</a>: the bus's metrics in the Prometheus text format (tobus-watch(1), METRICS)</li>
</ul>
</body>
</html>
)";

int run_serve(const RedisAddress& address, const Keys& keys, const WatchOptions& o) {
  EventCounters counters(max_metric_modules);
  BusReader reader(address, keys, max_metric_modules, max_metric_types);
  std::mutex scrape_mutex;  // one scrape at a time: the reader's connection is its own
  std::mutex inboxes_mutex;
  std::vector<std::string> inboxes;  // modules whose inbox the tap found

  HttpServer server;
  server.get("/", [] { return HttpReply{200, "text/html; charset=utf-8", std::string(serve_index)}; });
  server.get("/metrics", [&] {
    std::vector<std::string> more;
    {
      std::lock_guard lock(inboxes_mutex);
      more = inboxes;
    }
    std::lock_guard lock(scrape_mutex);
    BusFigures bus = reader.read(more);
    return HttpReply{200, std::string(exposition_content_type),
                     exposition(metric_families(bus, counters.figures(), max_metric_modules, max_metric_types))};
  });
  // Listening first: a port in use is said at once, before any wait for Redis.
  server.start(*o.serve);
  ServeAddress bound = *o.serve;
  bound.port = server.port();
  o.report.info("serving http://{}/ (metrics at /metrics)", bound.display());

  // The counters count from now: what happens while the exporter runs.
  Tap tap(address, keys, -1, o.report);
  tap.start(tap.server_ms());
  while (signals::stop_count() == 0) {
    for (const auto& e : tap.read(Millis(1000))) counters.add(e);
    std::vector<std::string> found = tap.inbox_modules();
    if (found.size() > max_metric_modules) found.resize(max_metric_modules);
    std::lock_guard lock(inboxes_mutex);
    inboxes.swap(found);
  }
  server.stop();
  return exit_code::ok;
}

}  // namespace

int run_watch(const RedisAddress& address, const Keys& keys, const WatchOptions& o, int out_fd) {
  if (o.serve) return run_serve(address, keys, o);
  Tap tap(address, keys, out_fd, o.report);
  if (!o.trace.empty()) return run_trace(tap, o, out_fd);
  if (o.stats) return run_stats(tap, keys, o, out_fd);
  std::int64_t now = tap.server_ms();
  tap.start(o.since ? now - o.since->count() : now);
  return run_tap(tap, o, out_fd);
}

}  // namespace tobus
