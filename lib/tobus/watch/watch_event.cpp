// tobus-watch's event model: what each entry of the bus's streams says happened (events_from_entry).

#include "tobus/watch/watch.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "tobus/core/dead_letter.hpp"
#include "tobus/redis/stream.hpp"
#include "tobus/util/text.hpp"

namespace tobus {
namespace {

const std::string* field(const Fields& fields, std::string_view name) {
  for (const auto& [k, v] : fields)
    if (k == name) return &v;
  return nullptr;
}

}  // namespace

// --- events --------------------------------------------------------------------------------------

namespace {
constexpr std::pair<EventKind, std::string_view> event_names[] = {
    {EventKind::sent, "sent"},       {EventKind::routed, "routed"}, {EventKind::handled, "handled"},
    {EventKind::failed, "failed"},   {EventKind::dead, "dead"},     {EventKind::delivered, "delivered"},
    {EventKind::done, "done"},
};
}  // namespace

std::string_view event_name(EventKind kind) {
  for (const auto& [k, name] : event_names)
    if (k == kind) return name;
  return "?";
}

std::optional<EventKind> parse_event_name(std::string_view name) {
  for (const auto& [k, n] : event_names)
    if (n == name) return k;
  return std::nullopt;
}

namespace {

// The steps of events_from_entry, one per kind of stream the entry is on. Each gets the event
// with what every entry gives (stream, entry id, time) already filled in.

// A dead letter: whatever can be read of the message, and why and where it died.
Event dead_event(Event e, std::optional<Message> decoded, const Entry& entry, const std::string& inbox_prefix) {
  e.kind = EventKind::dead;
  if (decoded) {
    e.message = std::move(*decoded);
  } else {
    // What can be read of an entry that was dead-lettered for not decoding.
    if (auto* id = field(entry.fields, "id"); id && valid_message_id(*id)) e.message.id = *id;
    if (auto* p = field(entry.fields, "payload")) e.message.payload = *p;
    if (auto* f = field(entry.fields, "from"); f && valid_name(*f)) e.message.from = *f;
  }
  const Message& m = e.message;
  DeadLetter d = decode_dead_letter(entry.fields);
  e.error = std::move(d.reason);
  if (valid_name(d.hop)) e.module = std::move(d.hop);
  e.stderr_tail = std::move(d.stderr_tail);
  auto fits = [](std::optional<std::int64_t> v) {
    return v && *v >= std::numeric_limits<int>::min() && *v <= std::numeric_limits<int>::max();
  };
  if (fits(d.rc)) e.rc = static_cast<int>(*d.rc);
  if (fits(d.attempts)) e.attempts = static_cast<int>(*d.attempts);
  if (e.module.empty()) {
    // Dead-lettered by a module (undecodable, redelivered too often): the inbox says which.
    if (d.stream.size() > inbox_prefix.size() && d.stream.starts_with(inbox_prefix))
      e.module = d.stream.substr(inbox_prefix.size());
  }
  if (m.failure && !m.trail.empty() && m.trail.back().name == m.failure->hop)
    e.duration_ms = m.trail.back().duration_ms;
  if (e.rc) e.message.rc = *e.rc;
  e.depth = 2 * static_cast<int>(m.trail.size()) + 1;
  return e;
}

// An entry on a module's inbox: the bus routed the message there.
Event routed_event(Event e, std::string_view stream, const std::string& inbox_prefix) {
  e.kind = EventKind::routed;
  e.module = std::string(stream.substr(inbox_prefix.size()));
  e.depth = 2 * static_cast<int>(e.message.trail.size()) + 1;
  return e;
}

// A bus entry saying a hop failed.
Event failed_event(Event e) {
  const Message& m = e.message;
  e.kind = EventKind::failed;
  e.module = m.failure->hop;
  e.rc = m.failure->rc;
  e.attempts = m.failure->attempts;
  e.error = m.failure->error;
  e.stderr_tail = m.failure->stderr_tail;
  if (!m.trail.empty() && m.trail.back().name == m.failure->hop) e.duration_ms = m.trail.back().duration_ms;
  return e;
}

// A bus entry that did not fail: a new message, or a hop's result.
Event sent_or_handled_event(Event e) {
  const Message& m = e.message;
  if (m.from.empty() || m.from == "send" || m.trail.empty()) {
    e.kind = EventKind::sent;
  } else {
    e.kind = EventKind::handled;
    e.module = m.from;
    e.rc = m.rc;
    if (m.trail.back().name == m.from) {
      e.rc = m.trail.back().rc;
      e.duration_ms = m.trail.back().duration_ms;
    }
  }
  return e;
}

// After a bus entry with no hops left, the bus ends the journey: a result for a waiting sender, or
// nothing. A reply key outside the namespace is dead-lettered instead, and that dead letter is the
// event, so there is none here.
std::optional<Event> journey_end_event(Event e, const Keys& keys) {
  const bool waited = !e.message.reply.empty();
  const std::string& reply = e.message.reply;
  bool reply_ok = reply.size() > keys.reply_prefix().size() && reply.starts_with(keys.reply_prefix());
  if (waited && !reply_ok) return std::nullopt;
  e.kind = waited ? EventKind::delivered : EventKind::done;
  e.module.clear();
  e.rc = e.message.rc;
  e.duration_ms.reset();
  e.attempts = 0;
  return e;
}

// A bus entry: a new message, a hop's result or a hop's failure, and maybe the journey's end.
void bus_events(Event e, const Entry& entry, const Keys& keys, std::vector<Event>& out) {
  e.depth = 2 * static_cast<int>(e.message.trail.size());
  int n = 0;
  if (auto* v = field(entry.fields, "attempts"); v && to_int(*v, n)) e.attempts = n;
  if (e.message.failure) {
    out.push_back(failed_event(std::move(e)));
    return;
  }
  out.push_back(sent_or_handled_event(std::move(e)));
  if (out.back().message.route.empty())
    if (auto end = journey_end_event(out.back(), keys)) out.push_back(std::move(*end));
}

}  // namespace

std::vector<Event> events_from_entry(const Keys& keys, std::string_view stream, const Entry& entry) {
  std::vector<Event> out;
  const std::string inbox_prefix = keys.inbox("");
  const bool is_bus = stream == keys.bus();
  const bool is_dead = stream == keys.dead();
  const bool is_inbox = stream.size() > inbox_prefix.size() && stream.starts_with(inbox_prefix);
  if (!is_bus && !is_dead && !is_inbox) return out;

  Event e;
  e.stream = std::string(stream);
  e.entry = entry.id;
  e.time_ms = entry_ms(entry.id);
  DecodeError error;
  auto decoded = decode(entry.fields, error);

  if (is_dead) {
    out.push_back(dead_event(std::move(e), std::move(decoded), entry, inbox_prefix));
    return out;
  }
  if (!decoded) return out;  // its dead letter will be the event
  e.message = std::move(*decoded);
  if (is_inbox) out.push_back(routed_event(std::move(e), stream, inbox_prefix));
  else bus_events(std::move(e), entry, keys, out);
  return out;
}

void sort_events(std::vector<Event>& events) {
  // Entries of different streams written in one millisecond have unrelated sequence numbers; a
  // message's trail length orders them instead (sent < routed < handled < routed ...).
  std::stable_sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    return std::pair(a.time_ms, a.depth) < std::pair(b.time_ms, b.depth);
  });
}

}  // namespace tobus
