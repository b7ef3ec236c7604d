// The failure and fan-out fields that message entries and result entries share, read once for both.

#include "tobus/core/entry_fields.hpp"

#include "tobus/util/text.hpp"

namespace tobus {
FieldRead bad_field(DecodeError& error, std::string why) {
  error.reason = std::move(why);
  return FieldRead::bad;
}

FieldRead read_envelope_field(std::string_view name, const std::string& value, std::string& id, Envelope& seen,
                              DecodeError& error) {
  if (name == "v") {
    if (value != protocol_version) return bad_field(error, "unknown protocol version '" + value.substr(0, 20) + "'");
    seen.have_v = true;
  } else if (name == "id") {
    if (!valid_message_id(value)) return bad_field(error, "bad message id");
    id = value;
    seen.have_id = true;
  } else {
    return FieldRead::other;
  }
  return FieldRead::read;
}

FieldRead read_failure_field(std::string_view name, const std::string& value, Failure& failure, DecodeError& error) {
  if (name == "rc") {
    if (!to_int(value, failure.rc)) return bad_field(error, "bad 'rc'");
  } else if (name == "hop") {
    failure.hop = value;
  } else if (name == "attempts") {
    if (!to_int(value, failure.attempts)) return bad_field(error, "bad 'attempts'");
  } else if (name == "error") {
    failure.error = value;
  } else if (name == "stderr") {
    failure.stderr_tail = value;
  } else {
    return FieldRead::other;
  }
  return FieldRead::read;
}

FieldRead read_fan_field(std::string_view name, const std::string& value, std::optional<Fanout>& fan,
                         DecodeError& error) {
  if (name != "fan" && name != "fan.n" && name != "fan.i") return FieldRead::other;
  if (!fan) fan.emplace();
  if (name == "fan") {
    fan->group = value;
  } else if (name == "fan.n") {
    if (!to_int(value, fan->n) || fan->n < 1) return bad_field(error, "bad 'fan.n'");
  } else {
    if (!to_int(value, fan->index) || fan->index < 0) return bad_field(error, "bad 'fan.i'");
  }
  return FieldRead::read;
}

bool all_present(std::initializer_list<Required> fields, DecodeError& error) {
  for (const auto& f : fields) {
    if (f.seen) continue;
    error.reason = std::string("missing field '") + f.name + "'";
    return false;
  }
  return true;
}

bool fan_complete(const std::optional<Fanout>& fan, DecodeError& error) {
  if (!fan || (!fan->group.empty() && fan->n >= 1 && fan->index < fan->n)) return true;
  error.reason = "incomplete fan-out fields";
  return false;
}

}  // namespace tobus
