// The bus's figures as Prometheus metrics (metrics.hpp): the exposition format, the event counts
// and the scrape's reads from Redis.

#include "tobus/watch/metrics.hpp"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <memory>
#include <set>
#include <stdexcept>

#include "tobus/core/error.hpp"
#include "tobus/core/message.hpp"
#include "tobus/core/registry.hpp"
#include "tobus/state/state.hpp"
#include "tobus/state/state_record.hpp"
#include "tobus/util/text.hpp"

namespace tobus {

// --- the text exposition format ------------------------------------------------------------------

namespace {

bool name_char(char c, bool first, bool colon) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  if (colon && c == ':') return true;
  return !first && c >= '0' && c <= '9';
}

std::string_view type_name(MetricType t) {
  switch (t) {
    case MetricType::counter: return "counter";
    case MetricType::gauge: return "gauge";
    case MetricType::histogram: return "histogram";
  }
  return "untyped";
}

// HELP text escapes backslash and line feed only.
std::string escape_help(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

}  // namespace

bool valid_metric_name(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i)
    if (!name_char(name[i], i == 0, true)) return false;
  return true;
}

bool valid_label_name(std::string_view name) {
  if (name.empty() || name.starts_with("__")) return false;
  for (std::size_t i = 0; i < name.size(); ++i)
    if (!name_char(name[i], i == 0, false)) return false;
  return true;
}

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string format_metric_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  if (ec != std::errc()) return "NaN";
  return std::string(buf, end);
}

std::string exposition(const std::vector<MetricFamily>& families) {
  std::string out;
  for (const auto& f : families) {
    if (f.samples.empty()) continue;
    if (!valid_metric_name(f.name)) throw std::logic_error("bad metric name '" + f.name + "'");
    out += "# HELP " + f.name + " " + escape_help(f.help) + "\n";
    out += "# TYPE " + f.name + " " + std::string(type_name(f.type)) + "\n";
    for (const auto& s : f.samples) {
      out += f.name + s.suffix;
      if (!s.labels.empty()) {
        out += '{';
        bool first = true;
        for (const auto& [k, v] : s.labels) {
          if (!valid_label_name(k)) throw std::logic_error("bad label name '" + k + "'");
          if (!first) out += ',';
          first = false;
          out += k + "=\"" + escape_label_value(v) + "\"";
        }
        out += '}';
      }
      out += ' ' + format_metric_value(s.value) + '\n';
    }
  }
  return out;
}

// --- what the events count -----------------------------------------------------------------------

void DurationHistogram::observe(std::int64_t ms) {
  ms = std::max<std::int64_t>(0, ms);
  ++count;
  sum_ms += static_cast<std::uint64_t>(ms);
  const double seconds = static_cast<double>(ms) / 1000.0;
  for (std::size_t i = 0; i < duration_buckets.size(); ++i)
    if (seconds <= duration_buckets[i]) {
      ++buckets[i];
      return;
    }
  // Above the last bound: only in +Inf, which is `count`.
}

void EventCounters::add(const Event& e) {
  bool dead = e.kind == EventKind::dead;
  bool timed = (e.kind == EventKind::handled || e.kind == EventKind::failed) && e.duration_ms;
  if (!dead && !timed) return;
  std::lock_guard lock(mutex_);
  if (dead) ++figures_.dead_lettered;
  // Only names a module can have become label values: a dead letter written by hand may name
  // anything (bytes that are not UTF-8 included) in dead.stream.
  if (!valid_name(e.module)) return;
  auto it = figures_.modules.find(e.module);
  if (it == figures_.modules.end()) {
    if (figures_.modules.size() >= max_modules_) {
      ++figures_.dropped_events;
      return;
    }
    it = figures_.modules.emplace(e.module, ModuleEventCounts{}).first;
  }
  if (dead) ++it->second.dead_lettered;
  else it->second.durations.observe(*e.duration_ms);
}

EventFigures EventCounters::figures() const {
  std::lock_guard lock(mutex_);
  return figures_;
}

// --- the metric families ---------------------------------------------------------------------------

std::vector<MetricFamily> metric_families(const BusFigures& bus, const EventFigures& events,
                                          std::size_t max_modules, std::size_t max_types) {
  using Labels = std::vector<std::pair<std::string, std::string>>;
  auto family = [](std::string name, std::string help, MetricType type) {
    return MetricFamily{std::move(name), std::move(help), type, {}};
  };
  auto add = [](MetricFamily& f, Labels labels, double v, std::string suffix = {}) {
    f.samples.push_back({std::move(suffix), std::move(labels), v});
  };
  auto opt = [&](MetricFamily& f, const std::string& module, const std::optional<std::int64_t>& v) {
    if (v) add(f, {{"module", module}}, static_cast<double>(*v));
  };
  const std::string cap_text = std::to_string(max_modules);

  std::vector<MetricFamily> out;
  MetricFamily up = family("tobus_redis_up", "1 when this scrape could read Redis, else 0", MetricType::gauge);
  add(up, {}, bus.redis_up ? 1 : 0);
  out.push_back(std::move(up));

  MetricFamily handled = family("tobus_module_messages_handled_total",
                                "Messages the module's handler ended with exit 0 (module:NAME done, kept in Redis)",
                                MetricType::counter);
  MetricFamily failed = family("tobus_module_messages_failed_total",
                               "Messages whose hop at the module failed (module:NAME failed, kept in Redis)",
                               MetricType::counter);
  MetricFamily retried = family("tobus_module_messages_retried_total",
                                "Handler runs the module retried after exit 75 (module:NAME retried, kept in Redis)",
                                MetricType::counter);
  MetricFamily inbox = family("tobus_module_inbox_length", "Entries in the module's inbox stream (XLEN)",
                              MetricType::gauge);
  MetricFamily lag = family("tobus_module_lag", "Inbox entries not yet delivered to any instance (Redis 7 and later)",
                            MetricType::gauge);
  MetricFamily pending = family("tobus_module_pending", "Inbox entries delivered to an instance and not yet "
                                                        "acknowledged", MetricType::gauge);
  MetricFamily running = family("tobus_module_jobs_in_flight",
                                "Handlers running in the module's live instances, as of their last heartbeat",
                                MetricType::gauge);
  MetricFamily instances = family("tobus_module_instances", "Live instances of the module (heartbeat within 15s)",
                                  MetricType::gauge);
  for (const auto& m : bus.modules) {
    opt(handled, m.name, m.handled);
    opt(failed, m.name, m.failed);
    opt(retried, m.name, m.retried);
    opt(inbox, m.name, m.inbox);
    opt(lag, m.name, m.lag);
    opt(pending, m.name, m.pending);
    opt(running, m.name, m.running);
    opt(instances, m.name, m.instances);
  }

  MetricFamily dead_module = family("tobus_module_dead_lettered_total",
                                    "Dead letters of messages that failed or were dropped at the module, seen since "
                                    "this exporter started", MetricType::counter);
  MetricFamily durations = family("tobus_module_handler_duration_seconds",
                                  "Handler run time of the hops the module ended (from the trail), seen since this "
                                  "exporter started", MetricType::histogram);
  // Every module the scrape or the events know of, so that a counter starts at 0, not at its
  // first increment (a rate over its first dead letter would miss it otherwise).
  std::map<std::string, const ModuleEventCounts*> counted;
  for (const auto& m : bus.modules) counted.emplace(m.name, nullptr);
  for (const auto& [name, c] : events.modules) counted[name] = &c;
  const ModuleEventCounts none{};
  for (const auto& [name, counts] : counted) {
    const ModuleEventCounts& c = counts ? *counts : none;
    add(dead_module, {{"module", name}}, static_cast<double>(c.dead_lettered));
    const DurationHistogram& h = c.durations;
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < duration_buckets.size(); ++i) {
      cumulative += h.buckets[i];
      add(durations, {{"module", name}, {"le", format_metric_value(duration_buckets[i])}},
          static_cast<double>(cumulative), "_bucket");
    }
    add(durations, {{"module", name}, {"le", "+Inf"}}, static_cast<double>(h.count), "_bucket");
    add(durations, {{"module", name}}, static_cast<double>(h.sum_ms) / 1000.0, "_sum");
    add(durations, {{"module", name}}, static_cast<double>(h.count), "_count");
  }

  MetricFamily dead_total = family("tobus_dead_lettered_total",
                                   "Dead letters written since this exporter started, those of no module included",
                                   MetricType::counter);
  add(dead_total, {}, static_cast<double>(events.dead_lettered));
  MetricFamily dead = family("tobus_dead_letters", "Entries in the dead-letter stream (XLEN)", MetricType::gauge);
  if (bus.dead) add(dead, {}, static_cast<double>(*bus.dead));
  MetricFamily types = family("tobus_type_members", "Modules that joined the type", MetricType::gauge);
  for (const auto& [t, n] : bus.types) add(types, {{"type", t}}, static_cast<double>(n));

  MetricFamily dropped = family("tobus_exporter_dropped",
                                "What this exporter left out past its caps (" + cap_text + " modules, " +
                                    std::to_string(max_types) + " types): modules and types at this scrape, events "
                                    "since it started",
                                MetricType::gauge);
  add(dropped, {{"what", "modules"}}, static_cast<double>(bus.modules_dropped));
  add(dropped, {{"what", "types"}}, static_cast<double>(bus.types_dropped));
  add(dropped, {{"what", "events"}}, static_cast<double>(events.dropped_events));

  for (auto* f : {&handled, &failed, &retried, &dead_module, &inbox, &lag, &pending, &running, &instances, &durations,
                  &dead_total, &dead, &types, &dropped})
    out.push_back(std::move(*f));
  return out;
}

// --- reading Redis at a scrape ---------------------------------------------------------------------

namespace {

using Clock = std::chrono::steady_clock;

// The next reply by `deadline`, or RedisError: a scrape never hangs on a slow Redis.
Reply reply_by(Connection& c, Clock::time_point deadline) {
  std::unique_ptr<Reply> r;
  while (!c.take_reply(r)) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) throw RedisError("no answer from Redis in time");
    pollfd p{c.fd(), POLLIN, 0};
    int n = poll(&p, 1, static_cast<int>(left));
    if (n < 0 && errno != EINTR) throw RedisError("poll failed: " + std::string(std::strerror(errno)));
    if (n > 0) c.read_available();
  }
  return std::move(*r);
}

}  // namespace

BusReader::BusReader(const RedisAddress& address, const Keys& keys, std::size_t max_modules, std::size_t max_types,
                     std::chrono::milliseconds timeout)
    : address_(address), keys_(keys), max_modules_(max_modules), max_types_(max_types), timeout_(timeout) {}

BusFigures BusReader::read(const std::vector<std::string>& more_modules) {
  try {
    return read_or_throw(more_modules);
  } catch (const Error&) {
    // Lost, refused or too slow: this scrape says so, the next one connects again.
    conn_.reset();
    return BusFigures{};
  }
}

std::vector<std::string> BusReader::type_names(Connection& c, Clock::time_point deadline) {
  if (Clock::now() < next_type_scan_) return types_;
  auto started = Clock::now();
  std::set<std::string> found;
  std::string cursor = "0";
  do {
    c.append({"SCAN", cursor, "MATCH", keys_.type("*"), "TYPE", "set", "COUNT", "1000"});
    c.flush();
    Reply r = reply_by(c, deadline);
    if (!r.is_array() || r.size() < 2) break;
    cursor = std::string(r[0].str());
    for (std::size_t i = 0; i < r[1].size(); ++i) found.emplace(r[1][i].str());
  } while (cursor != "0");
  types_.assign(found.begin(), found.end());
  // SCAN walks the whole keyspace: every 30 seconds at most, and at most 1% of the time.
  next_type_scan_ = Clock::now() + std::max<Clock::duration>(std::chrono::seconds(30), (Clock::now() - started) * 100);
  return types_;
}

BusFigures BusReader::read_or_throw(const std::vector<std::string>& more_modules) {
  auto deadline = Clock::now() + timeout_;
  if (!conn_) conn_.emplace(Connection::open(address_, timeout_));
  Connection& c = *conn_;
  BusFigures bus;

  c.append({"HKEYS", keys_.modules()});
  c.append({"XLEN", keys_.dead()});
  c.flush();
  Reply names = reply_by(c, deadline);
  Reply dead = reply_by(c, deadline);
  if (dead.is_integer()) bus.dead = dead.integer();
  // Only names a module can have: anything else in the registry was not written by tobus.
  std::set<std::string> modules;
  for (std::size_t i = 0; i < names.size(); ++i)
    if (valid_name(names[i].str())) modules.emplace(names[i].str());
  for (const auto& m : more_modules)
    if (valid_name(m)) modules.insert(m);
  for (const auto& m : modules) {
    if (bus.modules.size() >= max_modules_) {
      ++bus.modules_dropped;
      continue;
    }
    bus.modules.emplace_back().name = m;
  }

  // Per module, pipelined in batches: instances, inbox length, groups, the state record's counts.
  constexpr std::size_t batch = 200;
  const std::int64_t now = now_ms();
  for (std::size_t start = 0; start < bus.modules.size(); start += batch) {
    std::size_t end = std::min(bus.modules.size(), start + batch);
    for (std::size_t i = start; i < end; ++i) {
      const std::string& n = bus.modules[i].name;
      c.append({"HGETALL", keys_.instances(n)});
      c.append({"XLEN", keys_.inbox(n)});
      c.append({"XINFO", "GROUPS", keys_.inbox(n)});
      c.append({"HMGET", state_key(keys_, "module:" + n), "done", "failed", "retried"});
    }
    c.flush();
    for (std::size_t i = start; i < end; ++i) {
      ModuleGauges& m = bus.modules[i];
      Reply inst = reply_by(c, deadline), len = reply_by(c, deadline), groups = reply_by(c, deadline),
            counts = reply_by(c, deadline);
      if (inst.is_array()) {
        std::int64_t live = 0, running = 0;
        bool running_known = false;
        for (std::size_t k = 0; k + 1 < inst.size(); k += 2) {
          // The value tobus-module writes (docs/protocol.md): junk is skipped, never trusted.
          ModuleInstance in = parse_instance(std::string(inst[k].str()), inst[k + 1].str());
          if (!instance_live(in, now)) continue;
          ++live;
          if (in.running) {
            running += *in.running;
            running_known = true;
          }
        }
        m.instances = live;
        m.running = running_known || live == 0 ? std::optional<std::int64_t>(running) : std::nullopt;
      }
      if (len.is_integer()) m.inbox = len.integer();
      if (groups.is_array()) {
        for (std::size_t g = 0; g < groups.size(); ++g) {
          ReplyView group = groups[g];
          bool ours = false;
          std::int64_t pend = 0;
          std::optional<std::int64_t> lag;  // nil when Redis cannot tell; absent before Redis 7
          for (std::size_t j = 0; j + 1 < group.size(); j += 2) {
            std::string_view k = group[j].str();
            if (k == "name") ours = group[j + 1].str() == Keys::module_group;
            else if (k == "pending") pend = group[j + 1].integer();
            else if (k == "lag" && group[j + 1].is_integer()) lag = group[j + 1].integer();
          }
          if (ours) {
            m.pending = pend;
            m.lag = lag;
          }
        }
        if (!m.pending) {  // no group yet: nothing delivered, all of it waits
          m.pending = 0;
          m.lag = m.inbox;
        }
      } else if (groups.is_error() && groups.str().starts_with("ERR no such key")) {
        m.pending = 0;
        m.lag = 0;
      }
      // Counts a module keeps in its state record: 0 until it has written one.
      if (counts.is_array() && counts.size() == 3) {
        std::optional<std::int64_t>* fields[] = {&m.handled, &m.failed, &m.retried};
        for (std::size_t k = 0; k < 3; ++k) {
          std::int64_t v = 0;
          if (counts[k].is_nil()) *fields[k] = 0;
          else if (to_int(counts[k].str(), v) && v >= 0) *fields[k] = v;
        }
      }
    }
  }

  std::vector<std::string> type_keys = type_names(c, deadline);
  const std::string prefix = keys_.type("");
  std::vector<std::string> types;
  for (const auto& key : type_keys) {
    std::string t = key.substr(prefix.size());
    if (!valid_name(t)) continue;
    if (types.size() >= max_types_) {
      ++bus.types_dropped;
      continue;
    }
    types.push_back(std::move(t));
  }
  for (std::size_t start = 0; start < types.size(); start += batch) {
    std::size_t end = std::min(types.size(), start + batch);
    for (std::size_t i = start; i < end; ++i) c.append({"SCARD", keys_.type(types[i])});
    c.flush();
    for (std::size_t i = start; i < end; ++i) {
      Reply n = reply_by(c, deadline);
      if (n.is_integer() && n.integer() > 0) bus.types.emplace_back(types[i], n.integer());
    }
  }
  bus.redis_up = true;
  return bus;
}

}  // namespace tobus
