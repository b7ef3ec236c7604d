#include "tobus/core/result.hpp"

#include <string_view>

#include "tobus/util/text.hpp"

namespace tobus {

Fields encode_result(const Message& m) {
  Fields f;
  f.reserve(13);
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
  // A copy of a fan-out says which: a waiting sender collects every copy's result.
  if (!m.trail.empty()) f.emplace_back("trail", format_trail(m.trail));
  if (m.fan) {
    f.emplace_back("fan", m.fan->group);
    f.emplace_back("fan.n", std::to_string(m.fan->n));
    f.emplace_back("fan.i", std::to_string(m.fan->index));
  }
  // (Not `m.failure ? std::string() : m.payload`: that is a const string, copied once more.)
  f.emplace_back("payload", m.failure ? std::string() : std::string(m.payload));
  return f;
}

std::optional<Result> decode_result(Fields& fields, DecodeError& error) {
  Result r;
  Failure f;
  std::optional<Fanout> fan;
  std::string* payload = nullptr;
  bool have_v = false, have_id = false, have_status = false, failed = false;
  auto fail = [&error](std::string why) {
    error.reason = std::move(why);
    return std::nullopt;
  };
  for (auto& [name, value] : fields) {
    if (name == "v") {
      if (value != protocol_version) return fail("unknown protocol version '" + value.substr(0, 20) + "'");
      have_v = true;
    } else if (name == "id") {
      if (!valid_message_id(value)) return fail("bad message id");
      r.id = value;
      have_id = true;
    } else if (name == "status") {
      if (value == "failed") failed = true;
      else if (value != "done") return fail("unknown status '" + value.substr(0, 20) + "'");
      have_status = true;
    } else if (name == "rc") {
      if (!to_int(value, r.rc)) return fail("bad 'rc'");
      f.rc = r.rc;
    } else if (name == "hop") {
      f.hop = value;
    } else if (name == "attempts") {
      if (!to_int(value, f.attempts)) return fail("bad 'attempts'");
    } else if (name == "error") {
      f.error = value;
    } else if (name == "stderr") {
      f.stderr_tail = value;
    } else if (name == "trail") {
      if (!parse_trail(value, r.trail)) return fail("bad 'trail'");
    } else if (name == "fan") {
      if (!fan) fan.emplace();
      fan->group = value;
    } else if (name == "fan.n") {
      if (!fan) fan.emplace();
      if (!to_int(value, fan->n) || fan->n < 1) return fail("bad 'fan.n'");
    } else if (name == "fan.i") {
      if (!fan) fan.emplace();
      if (!to_int(value, fan->index) || fan->index < 0) return fail("bad 'fan.i'");
    } else if (name == "payload") {
      payload = &value;
    }
  }
  if (!have_v) return fail("missing field 'v'");
  if (!have_id) return fail("missing field 'id'");
  if (!have_status) return fail("missing field 'status'");
  if (fan) {
    if (fan->group.empty() || fan->n < 1 || fan->index >= fan->n) return fail("incomplete fan-out fields");
    r.fan = std::move(fan);
  }
  if (failed) r.failure = std::move(f);
  if (payload) r.payload = std::move(*payload);
  return r;
}

}  // namespace tobus
