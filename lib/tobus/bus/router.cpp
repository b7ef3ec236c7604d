#include "tobus/bus/router.hpp"

#include "tobus/core/dead_letter.hpp"
#include "tobus/core/result.hpp"

namespace tobus {

Write dead_letter(const Keys& keys, const Fields& raw, const std::string& stream,
                  const std::string& entry_id, const std::string& reason, const Failure* failure) {
  return {keys.dead(), encode(make_dead_letter(raw, stream, entry_id, reason, now_ms(), failure)), false};
}

std::string group_of(const Message& m) {
  if (m.fan) return m.fan->group;
  if (!m.correlation.empty()) return "corr:" + m.correlation;
  return {};
}

namespace {
bool reply_key_ok(const Keys& keys, const std::string& reply) {
  return reply.size() > keys.reply_prefix().size() && reply.starts_with(keys.reply_prefix());
}
}  // namespace

std::vector<Write> give_up(const Keys& keys, const Message* m, const Fields& raw, const std::string& stream,
                           const std::string& entry_id, const std::string& reason) {
  std::vector<Write> out{dead_letter(keys, raw, stream, entry_id, reason)};
  if (m && reply_key_ok(keys, m->reply)) {
    Message failed = *m;
    failed.failure = Failure{m->route.empty() ? "bus" : m->route.front(), -1, 0, reason, {}};
    out.push_back({m->reply, encode_result(failed), true});
  }
  return out;
}

namespace {

// The result for every sender waiting on `m`: its reply stream, and a join's other senders.
void add_replies(const Keys& keys, const Message& m, Decision& d) {
  Fields fields = encode_result(m);
  std::size_t first = d.writes.size();
  for (const auto& [reply, id] : m.also) {
    if (!reply_key_ok(keys, reply)) continue;
    Fields f = fields;
    for (auto& [k, v] : f)
      if (k == "id") v = id;
    d.writes.push_back({reply, std::move(f), true});
  }
  // The sender's own result first, its fields moved rather than copied.
  if (!m.reply.empty())
    d.writes.insert(d.writes.begin() + static_cast<std::ptrdiff_t>(first), Write{m.reply, std::move(fields), true});
}

}  // namespace

Decision route(const Keys& keys, const Message& m, const Fields& raw, bool modified,
               const std::string& entry_id, const std::vector<std::string>* members) {
  Decision d;
  const std::string bus = keys.bus();
  bool reply_ok = m.reply.empty() || reply_key_ok(keys, m.reply);
  if (!reply_ok) {
    d.writes.push_back(dead_letter(keys, raw, bus, entry_id,
                                   "reply key '" + m.reply.substr(0, 100) + "' is not under '" +
                                       keys.reply_prefix() + "'"));
    return d;
  }
  if (m.failure) {
    std::string reason = m.failure->error.empty() ? "failed at hop '" + m.failure->hop + "'" : m.failure->error;
    d.writes.push_back(dead_letter(keys, raw, bus, entry_id, reason, &*m.failure));
    // A failed branch of a group: the join downstream counts it instead of waiting for it.
    if (std::string g = group_of(m); !g.empty()) {
      std::string branch = m.fan ? std::to_string(m.fan->index) : m.id;
      d.writes.push_back({keys.group(g), {{"failed:" + branch, m.failure->hop + ": " + reason}}, false, true,
                          group_record_ttl_ms});
    }
    add_replies(keys, m, d);
    return d;
  }
  if (!m.route.empty() && m.route.front().starts_with('@')) {
    // Fan-out: a copy into the inbox of every module of the type, each going on on its own.
    if (!members || members->empty())
      return Decision{give_up(keys, &m, raw, bus, entry_id, "no module of type '" + m.route.front().substr(1) + "'"), {}};
    int n = static_cast<int>(members->size());
    for (int i = 0; i < n; ++i) {
      Message copy = m;
      copy.route.front() = (*members)[static_cast<std::size_t>(i)];
      copy.fan = Fanout{entry_id, n, i};
      std::string inbox = keys.inbox(copy.route.front());
      d.writes.push_back({std::move(inbox), encode(std::move(copy)), false});
    }
    d.next_hop = m.route.front();
    return d;
  }
  if (!m.route.empty()) {
    d.next_hop = m.route.front();
    d.writes.push_back({keys.inbox(d.next_hop), modified ? encode(m) : raw, false});
    return d;
  }
  add_replies(keys, m, d);
  return d;
}

}  // namespace tobus
