#pragma once
// Watching the bus without taking anything from it: the events every stream entry stands for, a
// live tap over all the streams (plain XREAD, never a consumer group), the journey of one message
// (--trace) and per-module figures (--stats). Nothing here writes to Redis.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tobus/core/keys.hpp"
#include "tobus/core/message.hpp"
#include "tobus/core/report.hpp"
#include "tobus/redis/stream.hpp"
#include "tobus/redis/url.hpp"
#include "tobus/util/duration.hpp"
#include "tobus/util/text.hpp"
#include "tobus/watch/serve.hpp"

namespace tobus {

// What happened to a message, in the order a journey goes.
enum class EventKind { sent, routed, handled, failed, dead, delivered, done };

std::string_view event_name(EventKind kind);
std::optional<EventKind> parse_event_name(std::string_view name);

struct Event {
  EventKind kind = EventKind::sent;
  std::string stream;   // the key the entry was read from
  std::string entry;    // its stream entry id
  std::int64_t time_ms = 0;  // when Redis took the entry (its id's time)
  // The module the event happened at: routed to, handled by, failed at, dead at. Empty for sent,
  // delivered and done, which happen at the bus.
  std::string module;
  Message message;
  std::optional<int> rc;
  std::optional<std::int64_t> duration_ms;  // the handler's run time
  int attempts = 0;         // 0: not known
  std::string error;        // failed: the reason; dead: dead.reason
  std::string stderr_tail;  // failed and dead: the handler's last stderr
  int depth = 0;  // causal order of a message's events written in the same millisecond
};

// The events one entry stands for (none for an entry that does not decode: its dead letter is
// the event). `stream` is the key it was read from: the bus, an inbox or the dead letters.
std::vector<Event> events_from_entry(const Keys& keys, std::string_view stream, const Entry& entry);

// Sorts events by time, keeping cause before effect within a millisecond; stable.
void sort_events(std::vector<Event>& events);

// --- output pieces (pure) ----------------------------------------------------------------------

enum class PayloadMode { none, preview, full };
std::optional<PayloadMode> parse_payload_mode(std::string_view text);

// escape_bytes (bytes made one printable line, for between quotes) is in text.hpp.
// A quoted, escaped preview of at most `limit` bytes of `payload` (cut at a character boundary):
// "hello", or "hel"... (1234 bytes) when cut.
std::string preview(std::string_view payload, std::size_t limit = 64);

// The nearest-rank percentile `p` (0-100] of `values`; nullopt when there are none.
std::optional<std::int64_t> percentile(std::vector<std::int64_t> values, double p);

// HH:MM:SS.mmm in local time.
std::string clock_time(std::int64_t ms);

// A --format string in the manner of kcat -f: %-tokens and backslash escapes, parsed once.
// Tokens: %e event, %t time (ms), %T time (HH:MM:SS.mmm), %m module, %i id, %r rc, %d duration
// (ms), %a attempts, %c fan-out copy (I/N), %p payload (raw bytes), %P preview, %h headers
// (k=v,...), %R route, %f from, %E error or reason, %X stderr tail, %s stream entry id, %S stream
// key, %% a percent sign;
// escapes \n \r \t \0 \\. Nothing is added at the end. Throws Error(usage) naming a bad token.
class Formatter {
 public:
  explicit Formatter(std::string_view spec);
  std::string format(const Event& e) const;

 private:
  struct Piece {
    char token = 0;  // 0: literal text
    std::string text;
  };
  std::vector<Piece> pieces_;
};

// The readable default line for an event, newline included.
std::string format_line(const Event& e, PayloadMode payload, bool color);

// A JSON Lines record: event, time, module, stream, entry, what the event adds (duration_ms,
// attempts, error, stderr), then the message envelope of add_message, so a record is valid input
// for `tobus-send --json`. Without `full` payload, `payload_size` stands in for it (and with
// `preview`, `preview`: its first 64 bytes, escaped).
std::string event_json(const Event& e, PayloadMode payload);

// --- filters -----------------------------------------------------------------------------------

// A --grep pattern: an ECMAScript regular expression, searched for anywhere in a payload's bytes.
// (Only watch.cpp sees std::regex: GCC 12 warns falsely inside <regex> in sanitizer builds.)
class PayloadPattern {
 public:
  // Throws Error(usage) naming the pattern and what is wrong with it.
  explicit PayloadPattern(const std::string& pattern);
  bool found_in(std::string_view bytes) const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

struct WatchFilter {
  std::vector<std::string> modules;  // any of them
  std::string id;
  std::vector<std::pair<std::string, std::string>> headers;  // all of them
  std::optional<PayloadPattern> grep;                         // on the payload
  bool failed_only = false;                                   // failed and dead
  std::vector<EventKind> events;                              // any of them
  bool matches(const Event& e) const;
};

// --- the journey of one message ----------------------------------------------------------------

// A node of a journey: a single event at the bus (sent, delivered, done, dead), a hop (a module and
// what happened there), a fan-out (the copies one @TYPE hop made) or one of its copies (the lines
// of that copy's own way, as `children`).
struct TraceNode {
  enum class Kind { event, hop, fanout, copy };
  Kind kind = Kind::event;
  std::string name;  // hop: the module; fanout: the group (the bus entry that made the copies)
  int index = 0;     // copy: which one (from 0)
  int of = 0;        // fanout, copy: how many
  std::vector<Event> events;
  std::vector<TraceNode> children;
};

class Journey {
 public:
  explicit Journey(std::string id) : id_(std::move(id)) {}
  void add(const Event& e);
  bool empty() const { return nodes_.empty(); }
  // Every line of the journey ended (delivered, done or dead): the copies of a fan-out each end
  // or are joined into one again.
  bool ended() const { return !end_keys_.empty() && open_ <= 0; }
  const std::string& id() const { return id_; }
  const std::vector<TraceNode>& nodes() const { return nodes_; }
  std::string text(PayloadMode payload) const;  // the indented tree
  std::string json(PayloadMode payload) const;  // one JSON object, newline included

 private:
  std::string id_;
  std::vector<TraceNode> nodes_;
  std::map<EventKind, int> ends_;  // how the lines ended
  int open_ = 1;                            // lines still going
  std::set<std::string> end_keys_;          // the lines that ended (main, or GROUP:INDEX)
  std::map<std::string, int> splits_;       // fan-out group -> copies
  std::map<std::pair<std::string, std::string>, std::set<int>> arrived_;  // (module, group) -> copies
  std::set<std::pair<std::string, std::string>> merged_;  // (module, group) joined
};

// --- running -----------------------------------------------------------------------------------

enum class WatchOutput { line, json, format };

struct WatchOptions {
  WatchFilter filter;
  WatchOutput output = WatchOutput::line;
  std::string format;
  std::optional<PayloadMode> payload;  // default: preview for lines, full for JSON
  long long count = 0;                 // records (snapshots with stats) before exiting; 0: no limit
  std::optional<Millis> timeout;
  std::optional<Millis> since;  // start from retained history this far back
  std::string trace;            // a message id: trace its journey
  bool stats = false;
  Millis interval{1000};
  // Serve GET /metrics (and an index at /) over HTTP here instead of writing records, until a
  // SIGINT or SIGTERM (signals::install() is the caller's); metrics.hpp says what is served.
  std::optional<ServeAddress> serve;
  // Where what happens along the way is told (a reconnection, a skipped entry); silent by default.
  Reporter report;
};

// Runs the tap, the trace, the stats or the server, writing to `out_fd`; returns the exit code: 0,
// 1 (a trace of a message that is not in the retained history; --serve cannot listen) or 124
// (--timeout expired first). A closed
// `out_fd` ends the process by SIGPIPE, quietly.
int run_watch(const RedisAddress& address, const Keys& keys, const WatchOptions& options, int out_fd);

}  // namespace tobus
