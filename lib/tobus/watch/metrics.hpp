#pragma once
// The bus's figures as Prometheus metrics (tobus-watch --serve, GET /metrics): the text exposition
// format (version 0.0.4), what the tap's events count since the exporter started, and what is read
// from Redis at each scrape. The exposition is a pure function of the figures; nothing here logs.

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tobus/core/keys.hpp"
#include "tobus/redis/redis.hpp"
#include "tobus/watch/watch.hpp"

namespace tobus {

// --- the text exposition format (pure) -----------------------------------------------------------

enum class MetricType { counter, gauge, histogram };

struct MetricSample {
  std::string suffix;  // appended to the family's name: "", "_bucket", "_sum", "_count"
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};

struct MetricFamily {
  std::string name;
  std::string help;
  MetricType type = MetricType::gauge;
  std::vector<MetricSample> samples;
};

// [a-zA-Z_:][a-zA-Z0-9_:]*, and for labels [a-zA-Z_][a-zA-Z0-9_]* not starting with "__".
bool valid_metric_name(std::string_view name);
bool valid_label_name(std::string_view name);
// A label value between double quotes: backslash, double quote and line feed escaped; any other
// byte as it is (the format is UTF-8; a module or type name is [A-Za-z0-9_.-] anyway).
std::string escape_label_value(std::string_view value);
// A sample value: an integer as such, else the shortest round-trip decimal; +Inf, -Inf, NaN.
std::string format_metric_value(double value);
// The families in the order given, each "# HELP", "# TYPE" then its samples. A family without
// samples is left out. Throws std::logic_error for an invalid metric or label name (a bug).
std::string exposition(const std::vector<MetricFamily>& families);

inline constexpr std::string_view exposition_content_type = "text/plain; version=0.0.4; charset=utf-8";

// --- what the events count -----------------------------------------------------------------------

// The upper bounds of the handler duration histogram, in seconds (+Inf is implied).
inline constexpr std::array<double, 14> duration_buckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                            1,     2.5,  5,     10,   30,  60,  300};

struct DurationHistogram {
  std::array<std::uint64_t, duration_buckets.size()> buckets{};  // not cumulative: one count each
  std::uint64_t count = 0;
  std::uint64_t sum_ms = 0;  // the trail's durations are whole milliseconds: summed exactly
  void observe(std::int64_t ms);
};

struct ModuleEventCounts {
  std::uint64_t dead_lettered = 0;
  DurationHistogram durations;
};

struct EventFigures {
  std::map<std::string, ModuleEventCounts> modules;
  std::uint64_t dead_lettered = 0;    // all dead letters, those of no module included
  std::uint64_t dropped_events = 0;   // of modules past the cap
};

// Counts the tap's events from the moment the exporter started: dead letters per module and the
// handler durations the trails give. Thread-safe: the tap adds, a scrape takes a copy. At most
// `max_modules` modules are counted; the events of others only count in `dropped_events`.
class EventCounters {
 public:
  explicit EventCounters(std::size_t max_modules) : max_modules_(max_modules) {}
  void add(const Event& e);
  EventFigures figures() const;

 private:
  std::size_t max_modules_;
  mutable std::mutex mutex_;
  EventFigures figures_;
};

// --- what Redis holds at a scrape ----------------------------------------------------------------

struct ModuleGauges {
  std::string name;
  std::optional<std::int64_t> inbox, lag, pending, instances, running;
  std::optional<std::int64_t> handled, failed, retried;  // module:NAME's counts (docs/state.md)
};

struct BusFigures {
  bool redis_up = false;
  std::optional<std::int64_t> dead;  // NS:dead's length
  std::vector<ModuleGauges> modules;  // sorted by name
  std::vector<std::pair<std::string, std::int64_t>> types;  // type → members, sorted
  std::uint64_t modules_dropped = 0, types_dropped = 0;  // past the caps
};

// The metric families of both, in a fixed order (tobus-watch(1), METRICS).
std::vector<MetricFamily> metric_families(const BusFigures& bus, const EventFigures& events,
                                          std::size_t max_modules, std::size_t max_types);

// Reads BusFigures with a connection of its own, opened at the first scrape and again after an
// error. The modules are the registry's and those the caller names (inboxes the tap found); the
// types are found by SCAN at most every `type_scan_every` (and never more than 1% of the time),
// so a scrape's work is bounded by the caps, not by the keyspace. Not thread-safe: one scrape at a
// time. Never throws for Redis: a lost or slow (over `timeout`) Redis is `redis_up` false.
class BusReader {
 public:
  BusReader(const RedisAddress& address, const Keys& keys, std::size_t max_modules, std::size_t max_types,
            std::chrono::milliseconds timeout = std::chrono::seconds(5));
  BusFigures read(const std::vector<std::string>& more_modules);

 private:
  BusFigures read_or_throw(const std::vector<std::string>& more_modules);
  std::vector<std::string> type_names(Connection& c, std::chrono::steady_clock::time_point deadline);

  RedisAddress address_;
  Keys keys_;
  std::size_t max_modules_, max_types_;
  std::chrono::milliseconds timeout_;
  std::optional<Connection> conn_;
  std::vector<std::string> types_;  // NS:type:* keys found by the last SCAN
  std::chrono::steady_clock::time_point next_type_scan_{};
};

}  // namespace tobus
