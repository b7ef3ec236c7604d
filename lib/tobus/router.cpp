#include "tobus/router.hpp"

namespace tobus {

Write dead_letter(const Keys& keys, const Fields& raw, const std::string& stream,
                  const std::string& entry_id, const std::string& reason, const Failure* failure) {
  Write w{keys.dead(), raw, false};
  w.fields.emplace_back("dead.reason", reason);
  w.fields.emplace_back("dead.stream", stream);
  w.fields.emplace_back("dead.entry", entry_id);
  w.fields.emplace_back("dead.at", std::to_string(now_ms()));
  if (failure) {
    w.fields.emplace_back("dead.hop", failure->hop);
    w.fields.emplace_back("dead.rc", std::to_string(failure->rc));
    w.fields.emplace_back("dead.attempts", std::to_string(failure->attempts));
    w.fields.emplace_back("dead.stderr", failure->stderr_tail);
  }
  return w;
}

Fields result_fields(const Message& m) {
  Fields f;
  f.emplace_back("v", std::string(protocol_version));
  f.emplace_back("id", m.id);
  if (m.failure) {
    f.emplace_back("status", "failed");
    f.emplace_back("hop", m.failure->hop);
    f.emplace_back("rc", std::to_string(m.failure->rc));
    f.emplace_back("attempts", std::to_string(m.failure->attempts));
    f.emplace_back("error", m.failure->error);
    f.emplace_back("stderr", m.failure->stderr_tail);
  } else {
    f.emplace_back("status", "done");
    f.emplace_back("rc", std::to_string(m.rc));
  }
  Message trail_only;
  trail_only.trail = m.trail;
  for (auto& [k, v] : encode(trail_only))
    if (k == "trail") f.emplace_back(k, v);
  f.emplace_back("payload", m.failure ? std::string() : m.payload);
  return f;
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
    out.push_back({m->reply, result_fields(failed), true});
  }
  return out;
}

Decision route(const Keys& keys, const Message& m, const Fields& raw, bool modified,
               const std::string& entry_id) {
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
    if (!m.reply.empty()) d.writes.push_back({m.reply, result_fields(m), true});
    return d;
  }
  if (!m.route.empty()) {
    d.next_hop = m.route.front();
    d.writes.push_back({keys.inbox(d.next_hop), modified ? encode(m) : raw, false});
    return d;
  }
  if (!m.reply.empty()) d.writes.push_back({m.reply, result_fields(m), true});
  return d;
}

}  // namespace tobus
