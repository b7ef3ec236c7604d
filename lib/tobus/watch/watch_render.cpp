// How tobus-watch shows events: the default line, --format, JSON records, filters (--grep and the
// others) and the journey of one message (--trace).

#include "tobus/watch/watch.hpp"

// GCC 12 warns that std::function inside <regex> "may be used uninitialized" when optimising with
// the sanitizers: a known false positive of that release, silenced for that header only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <regex>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include <algorithm>
#include <cmath>
#include <ctime>
#include <map>
#include <string>
#include <vector>

#include "tobus/core/error.hpp"
#include "tobus/util/json.hpp"
#include "tobus/util/text.hpp"

namespace tobus {
namespace {

std::string_view colour_of(EventKind k) {
  switch (k) {
    case EventKind::sent: return "\x1b[34m";
    case EventKind::routed: return "\x1b[36m";
    case EventKind::handled: return "\x1b[32m";
    case EventKind::failed: return "\x1b[31m";
    case EventKind::dead: return "\x1b[1;31m";
    case EventKind::delivered:
    case EventKind::done: return "\x1b[1;32m";
  }
  return "";
}
constexpr std::string_view colour_reset = "\x1b[0m";

std::string quoted(std::string_view text) { return "\"" + escape_bytes(text) + "\""; }

// What an event adds to its id, as key=value words (the default line and the trace share them; the
// trace shows a fan-out copy by its place in the tree instead).
std::string details(const Event& e, bool copy = true) {
  std::string out;
  const Message& m = e.message;
  if (copy && m.fan) out += " copy=" + std::to_string(m.fan->index) + "/" + std::to_string(m.fan->n);
  auto rc = [&] {
    if (e.rc) out += " rc=" + std::to_string(*e.rc);
  };
  switch (e.kind) {
    case EventKind::sent:
      out += " route=" + join_route(m.route);
      break;
    case EventKind::routed:
      break;
    case EventKind::handled:
    case EventKind::failed:
      rc();
      if (e.duration_ms) out += " " + std::to_string(*e.duration_ms) + "ms";
      if (e.attempts > 1 || (e.kind == EventKind::failed && e.attempts > 0))
        out += " attempts=" + std::to_string(e.attempts);
      if (e.kind == EventKind::failed) out += " error=" + quoted(e.error);
      break;
    case EventKind::dead:
      rc();
      out += " reason=" + quoted(e.error);
      break;
    case EventKind::delivered:
    case EventKind::done:
      rc();
      break;
  }
  return out;
}

std::string payload_words(const Event& e, PayloadMode mode) {
  switch (mode) {
    case PayloadMode::none: return "";
    case PayloadMode::preview: return " " + preview(e.message.payload);
    case PayloadMode::full: return " " + quoted(e.message.payload);
  }
  return "";
}

}  // namespace

// --- output pieces -------------------------------------------------------------------------------

std::optional<PayloadMode> parse_payload_mode(std::string_view text) {
  if (text == "none") return PayloadMode::none;
  if (text == "preview") return PayloadMode::preview;
  if (text == "full") return PayloadMode::full;
  return std::nullopt;
}

namespace {
// The first bytes of `payload` a preview shows: at most `limit`, not splitting a UTF-8 character
// (backing up over at most three continuation bytes).
std::string_view preview_part(std::string_view payload, std::size_t limit) {
  if (payload.size() <= limit) return payload;
  std::size_t cut = limit;
  for (int k = 0; k < 3 && cut > 0 && (static_cast<unsigned char>(payload[cut]) & 0xc0) == 0x80; ++k) --cut;
  return payload.substr(0, cut == 0 ? limit : cut);
}
constexpr std::size_t json_preview_limit = 64;
}  // namespace

std::string preview(std::string_view payload, std::size_t limit) {
  auto part = preview_part(payload, limit);
  if (part.size() == payload.size()) return quoted(payload);
  return quoted(part) + "... (" + std::to_string(payload.size()) + " bytes)";
}

std::optional<std::int64_t> percentile(std::vector<std::int64_t> values, double p) {
  if (values.empty()) return std::nullopt;
  std::sort(values.begin(), values.end());
  auto n = static_cast<double>(values.size());
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * n));
  rank = std::clamp<std::size_t>(rank, 1, values.size());
  return values[rank - 1];
}

std::string clock_time(std::int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  localtime_r(&secs, &tm);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

Formatter::Formatter(std::string_view spec) {
  static constexpr std::string_view tokens = "etTmirdacpPhRfEXsS";
  std::string literal;
  auto flush = [&] {
    if (!literal.empty()) pieces_.push_back({0, std::move(literal)});
    literal.clear();
  };
  for (std::size_t i = 0; i < spec.size(); ++i) {
    char c = spec[i];
    if (c == '%') {
      if (i + 1 == spec.size()) throw Error(ErrorKind::usage, "bad --format: it ends with a lone '%'");
      char t = spec[++i];
      if (t == '%') {
        literal += '%';
      } else if (tokens.find(t) != std::string_view::npos) {
        flush();
        pieces_.push_back({t, {}});
      } else {
        throw Error(ErrorKind::usage, std::string("bad --format token '%") + t + "'");
      }
    } else if (c == '\\') {
      if (i + 1 == spec.size()) throw Error(ErrorKind::usage, "bad --format: it ends with a lone '\\'");
      char t = spec[++i];
      switch (t) {
        case 'n': literal += '\n'; break;
        case 'r': literal += '\r'; break;
        case 't': literal += '\t'; break;
        case '0': literal += '\0'; break;
        case '\\': literal += '\\'; break;
        default: throw Error(ErrorKind::usage, std::string("bad --format escape '\\") + t + "'");
      }
    } else {
      literal += c;
    }
  }
  flush();
}

std::string Formatter::format(const Event& e) const {
  std::string out;
  const Message& m = e.message;
  for (const auto& p : pieces_) {
    switch (p.token) {
      case 0: out += p.text; break;
      case 'e': out += event_name(e.kind); break;
      case 't': out += std::to_string(e.time_ms); break;
      case 'T': out += clock_time(e.time_ms); break;
      case 'm': out += e.module; break;
      case 'i': out += m.id; break;
      case 'r': if (e.rc) out += std::to_string(*e.rc); break;
      case 'd': if (e.duration_ms) out += std::to_string(*e.duration_ms); break;
      case 'a': if (e.attempts) out += std::to_string(e.attempts); break;
      case 'c':
        if (m.fan) out += std::to_string(m.fan->index) + "/" + std::to_string(m.fan->n);
        break;
      case 'p': out += m.payload; break;
      case 'P': out += preview(m.payload); break;
      case 'h':
        for (std::size_t i = 0; i < m.headers.size(); ++i) {
          if (i) out += ',';
          out += m.headers[i].first + "=" + m.headers[i].second;
        }
        break;
      case 'R': out += join_route(m.route); break;
      case 'f': out += m.from; break;
      case 'E': out += e.error; break;
      case 'X': out += e.stderr_tail; break;
      case 's': out += e.entry; break;
      case 'S': out += e.stream; break;
      default: break;
    }
  }
  return out;
}

std::string format_line(const Event& e, PayloadMode payload, bool color) {
  std::string line = clock_time(e.time_ms);
  line += ' ';
  std::string_view name = event_name(e.kind);
  if (color) {
    line += colour_of(e.kind);
    line += name;
    line += colour_reset;
  } else {
    line += name;
  }
  line.append(9 - std::min<std::size_t>(9, name.size()), ' ');
  line += ' ';
  line += e.module.empty() ? "-" : e.module;
  line += ' ';
  line += e.message.id.empty() ? "-" : e.message.id;
  line += details(e);
  line += payload_words(e, payload);
  line += '\n';
  return line;
}

std::string event_json(const Event& e, PayloadMode payload) {
  JsonObject o;
  o.add("event", event_name(e.kind)).add("time", e.time_ms).add("module", e.module);
  o.add("stream", e.stream).add("entry", e.entry);
  if (const auto& fan = e.message.fan) o.add("fanout", fan->group).add("copy", fan->index).add("copies", fan->n);
  if (e.duration_ms) o.add("duration_ms", *e.duration_ms);
  if (e.attempts) o.add("attempts", e.attempts);
  if (!e.error.empty()) o.add("error", e.error);
  if (!e.stderr_tail.empty()) o.add("stderr", e.stderr_tail);
  if (payload == PayloadMode::full) return add_message(o, e.message).str();
  // The envelope without the payload: add_message ends with it, so an empty one is cut off.
  Message m = e.message;
  m.payload.clear();
  std::string json = add_message(o, m).str();
  constexpr std::string_view empty_payload = ",\"payload\":\"\"}";
  if (json.ends_with(empty_payload)) json.resize(json.size() - empty_payload.size());
  else json.pop_back();
  JsonObject tail;
  tail.add("payload_size", static_cast<std::int64_t>(e.message.payload.size()));
  if (payload == PayloadMode::preview)
    tail.add("preview", escape_bytes(preview_part(e.message.payload, json_preview_limit)));
  std::string rest = tail.str();
  return json + "," + rest.substr(1);
}

// --- filters -------------------------------------------------------------------------------------

struct PayloadPattern::Impl {
  std::regex re;
};

PayloadPattern::PayloadPattern(const std::string& pattern) {
  try {
    impl_ = std::make_shared<const Impl>(Impl{std::regex(pattern, std::regex::ECMAScript)});
  } catch (const std::regex_error& e) {
    throw Error(ErrorKind::usage, "bad --grep '" + pattern + "': " + e.what());
  }
}

bool PayloadPattern::found_in(std::string_view bytes) const {
  return std::regex_search(bytes.begin(), bytes.end(), impl_->re);
}

bool WatchFilter::matches(const Event& e) const {
  if (failed_only && e.kind != EventKind::failed && e.kind != EventKind::dead) return false;
  if (!events.empty() && std::find(events.begin(), events.end(), e.kind) == events.end()) return false;
  if (!modules.empty() && std::find(modules.begin(), modules.end(), e.module) == modules.end()) return false;
  if (!id.empty() && e.message.id != id) return false;
  for (const auto& [k, v] : headers) {
    auto it = std::find_if(e.message.headers.begin(), e.message.headers.end(),
                           [&](const auto& h) { return h.first == k; });
    if (it == e.message.headers.end() || it->second != v) return false;
  }
  if (grep && !grep->found_in(e.message.payload)) return false;
  return true;
}

// --- the journey of one message ------------------------------------------------------------------

namespace {

using Kind = TraceNode::Kind;

bool is_end(EventKind k) { return k == EventKind::dead || k == EventKind::delivered || k == EventKind::done; }

// The list of nodes holding an event of stream entry `entry` (where a fan-out it made belongs).
std::vector<TraceNode>* line_of_entry(std::vector<TraceNode>& nodes, const std::string& entry) {
  for (auto& n : nodes) {
    for (const auto& e : n.events)
      if (e.entry == entry) return &nodes;
    if (auto* found = line_of_entry(n.children, entry)) return found;
  }
  return nullptr;
}

TraceNode* find_fanout(std::vector<TraceNode>& nodes, const std::string& group) {
  for (auto& n : nodes) {
    if (n.kind == Kind::fanout && n.name == group) return &n;
    if (auto* found = find_fanout(n.children, group)) return found;
  }
  return nullptr;
}

// Adds `e` to one line of the journey: a routing opens a hop, a result goes to the latest visit to
// its hop that has none yet (a hop that ran twice, or whose routing is older than the history,
// gets a node of its own), anything else is an event of its own.
void add_to_line(std::vector<TraceNode>& line, const Event& e) {
  switch (e.kind) {
    case EventKind::routed:
      line.push_back({Kind::hop, e.module, 0, 0, {e}, {}});
      return;
    case EventKind::handled:
    case EventKind::failed:
      for (auto it = line.rbegin(); it != line.rend(); ++it) {
        if (it->kind != Kind::hop || it->name != e.module) continue;
        bool has_result = std::any_of(it->events.begin(), it->events.end(), [](const Event& x) {
          return x.kind == EventKind::handled || x.kind == EventKind::failed;
        });
        if (!has_result) {
          it->events.push_back(e);
          return;
        }
        break;
      }
      line.push_back({Kind::hop, e.module, 0, 0, {e}, {}});
      return;
    default:
      line.push_back({Kind::event, {}, 0, 0, {e}, {}});
      return;
  }
}

}  // namespace

void Journey::add(const Event& e) {
  const auto& fan = e.message.fan;
  std::vector<TraceNode>* line = &nodes_;
  if (fan) {
    // A copy: under its fan-out, placed after the entry that made it (the group is that entry).
    TraceNode* f = find_fanout(nodes_, fan->group);
    if (!f) {
      std::vector<TraceNode>* parent = line_of_entry(nodes_, fan->group);
      if (!parent) parent = &nodes_;
      parent->push_back({Kind::fanout, fan->group, 0, fan->n, {}, {}});
      f = &parent->back();
    }
    auto it = std::find_if(f->children.begin(), f->children.end(),
                           [&](const TraceNode& c) { return c.index >= fan->index; });
    if (it == f->children.end() || it->index != fan->index)
      it = f->children.insert(it, {Kind::copy, {}, fan->index, fan->n, {}, {}});
    line = &it->children;
  }
  add_to_line(*line, e);

  // Which lines are still going: a fan-out splits one into N, a join merges the copies that
  // reached it back into one, an end closes one.
  if (fan && !splits_.contains(fan->group)) {
    splits_[fan->group] = fan->n;
    open_ += fan->n - 1;
  }
  if (fan && e.kind == EventKind::routed) arrived_[{e.module, fan->group}].insert(fan->index);
  if (!fan && (e.kind == EventKind::handled || e.kind == EventKind::failed)) {
    for (const auto& [key, copies] : arrived_) {
      if (key.first != e.module || merged_.contains(key)) continue;
      merged_.insert(key);
      open_ -= static_cast<int>(copies.size()) - 1;
    }
  }
  if (is_end(e.kind)) {
    std::string key = fan ? fan->group + ":" + std::to_string(fan->index) : "main";
    if (end_keys_.insert(key).second) {  // a duplicate end (a hop that ran twice) ends nothing
      --open_;
      ++ends_[e.kind];
    }
  }
}

namespace {

std::int64_t first_time(const std::vector<TraceNode>& nodes) {
  std::int64_t t = std::numeric_limits<std::int64_t>::max();
  for (const auto& n : nodes) {
    for (const auto& e : n.events) t = std::min(t, e.time_ms);
    if (!n.children.empty()) t = std::min(t, first_time(n.children));
  }
  return t;
}

std::int64_t last_time(const std::vector<TraceNode>& nodes) {
  std::int64_t t = 0;
  for (const auto& n : nodes) {
    for (const auto& e : n.events) t = std::max(t, e.time_ms);
    if (!n.children.empty()) t = std::max(t, last_time(n.children));
  }
  return t;
}

bool has_failed(const std::vector<TraceNode>& nodes) {
  for (const auto& n : nodes) {
    for (const auto& e : n.events)
      if (e.kind == EventKind::failed) return true;
    if (has_failed(n.children)) return true;
  }
  return false;
}

void indent(std::string& out, int level) { out.append(2 * static_cast<std::size_t>(level), ' '); }

void render(std::string& out, const std::vector<TraceNode>& nodes, int level, std::int64_t t0,
            PayloadMode payload, bool failure_shown) {
  for (const auto& n : nodes) {
    int l = level;
    switch (n.kind) {
      case Kind::hop:
        indent(out, l++);
        out += "hop " + n.name + "\n";
        break;
      case Kind::fanout:
        indent(out, l++);
        out += "fan-out: " + std::to_string(n.of) + (n.of == 1 ? " copy\n" : " copies\n");
        break;
      case Kind::copy:
        indent(out, l++);
        out += "copy " + std::to_string(n.index) + " of " + std::to_string(n.of) + "\n";
        break;
      case Kind::event:
        break;
    }
    for (const auto& e : n.events) {
      indent(out, l);
      out += event_name(e.kind);
      out += " +" + std::to_string(e.time_ms - t0) + "ms";
      out += details(e, false);
      out += payload_words(e, payload);
      out += '\n';
      // The handler's last words, on the failure (or on the dead letter when that is all we have).
      bool show = e.kind == EventKind::failed || (e.kind == EventKind::dead && !failure_shown);
      if (show && !e.stderr_tail.empty()) {
        std::string_view tail = e.stderr_tail;
        while (!tail.empty() && tail.back() == '\n') tail.remove_suffix(1);
        for (std::size_t start = 0; start <= tail.size();) {
          auto nl = tail.find('\n', start);
          auto line = tail.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
          indent(out, l + 1);
          out += "| " + escape_bytes(line) + "\n";
          if (nl == std::string_view::npos) break;
          start = nl + 1;
        }
      }
    }
    render(out, n.children, l, t0, payload, failure_shown);
  }
}

std::string nodes_json(const std::vector<TraceNode>& nodes, PayloadMode payload) {
  std::string out = "[";
  for (const auto& n : nodes) {
    if (out.size() > 1) out += ',';
    if (n.kind == Kind::event && n.events.size() == 1) {
      out += event_json(n.events.front(), payload);
      continue;
    }
    JsonObject o;
    switch (n.kind) {
      case Kind::hop: {
        o.add("hop", n.name);
        std::string events = "[";
        for (const auto& e : n.events) {
          if (events.size() > 1) events += ',';
          events += event_json(e, payload);
        }
        o.add_raw("events", events + "]");
        break;
      }
      case Kind::fanout: o.add("fanout", n.name).add("copies", n.of); break;
      case Kind::copy: o.add("copy", n.index).add("of", n.of); break;
      case Kind::event: break;
    }
    o.add_raw(n.kind == Kind::hop ? "children" : "nodes", nodes_json(n.children, payload));
    out += o.str();
  }
  return out + "]";
}

}  // namespace

namespace {
// How a journey ended, in one word: dead when any of its lines died, else how they ended.
std::string_view end_word(const std::map<EventKind, int>& ends) {
  if (ends.contains(EventKind::dead)) return event_name(EventKind::dead);
  if (ends.contains(EventKind::delivered)) return event_name(EventKind::delivered);
  return event_name(EventKind::done);
}
}  // namespace

std::string Journey::text(PayloadMode payload) const {
  std::int64_t t0 = first_time(nodes_);
  std::string out = id_ + ": ";
  if (ended()) {
    out += std::string(end_word(ends_)) + " after " + std::to_string(last_time(nodes_) - t0) + "ms";
    if (end_keys_.size() > 1) {
      // The lines of a fan-out that was not joined again, each ended on its own.
      std::string counts;
      for (const auto& [kind, n] : ends_)
        counts += (counts.empty() ? "" : ", ") + std::to_string(n) + " " + std::string(event_name(kind));
      out += " (" + counts + ")";
    }
  } else {
    out += "in flight";
  }
  out += '\n';
  render(out, nodes_, 1, t0, payload, has_failed(nodes_));
  return out;
}

std::string Journey::json(PayloadMode payload) const {
  JsonObject o;
  o.add("id", id_);
  if (ended()) o.add("end", end_word(ends_));
  else o.add_raw("end", "null");
  if (end_keys_.size() > 1) {
    std::vector<std::pair<std::string, std::string>> counts;
    for (const auto& [kind, n] : ends_) counts.emplace_back(event_name(kind), std::to_string(n));
    std::string json = "{";
    for (const auto& [k, v] : counts) json += (json.size() > 1 ? "," : "") + json_string(k) + ":" + v;
    o.add_raw("ends", json + "}");
  }
  if (!nodes_.empty()) {
    std::int64_t t0 = first_time(nodes_);
    o.add("time", t0);
    if (ended()) o.add("duration_ms", last_time(nodes_) - t0);
  }
  o.add_raw("nodes", nodes_json(nodes_, payload));
  return o.str() + "\n";
}

}  // namespace tobus
