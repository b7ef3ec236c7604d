#include "tobus/core/result.hpp"

#include <string_view>

#include "tobus/core/entry_fields.hpp"
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

namespace {

// What decode_result() has read of an entry so far.
struct ResultDecoding {
  Result r;
  Failure failure;  // kept only when the status says failed
  std::optional<Fanout> fan;
  std::string* payload = nullptr;  // moved out once the entry is known good
  Envelope envelope;
  bool have_status = false;
  bool failed = false;
};

// The result's own fields: status, trail, payload.
FieldRead read_result_field(const std::string& name, std::string& value, ResultDecoding& d, DecodeError& error) {
  if (name == "status") {
    if (value == "failed") d.failed = true;
    else if (value != "done") return bad_field(error, "unknown status '" + value.substr(0, 20) + "'");
    d.have_status = true;
  } else if (name == "trail") {
    if (!parse_trail(value, d.r.trail)) return bad_field(error, "bad 'trail'");
  } else if (name == "payload") {
    d.payload = &value;
  } else {
    return FieldRead::other;
  }
  return FieldRead::read;
}

}  // namespace

std::optional<Result> decode_result(Fields& fields, DecodeError& error) {
  ResultDecoding d;
  for (auto& [name, value] : fields) {
    FieldRead read = read_envelope_field(name, value, d.r.id, d.envelope, error);
    if (read == FieldRead::other) read = read_result_field(name, value, d, error);
    if (read == FieldRead::other) read = read_failure_field(name, value, d.failure, error);
    if (read == FieldRead::other) read = read_fan_field(name, value, d.fan, error);
    if (read == FieldRead::bad) return std::nullopt;
  }
  bool whole =
      all_present({{d.envelope.have_v, "v"}, {d.envelope.have_id, "id"}, {d.have_status, "status"}}, error) &&
      fan_complete(d.fan, error);
  if (!whole) return std::nullopt;
  d.r.rc = d.failure.rc;
  d.r.fan = std::move(d.fan);
  if (d.failed) d.r.failure = std::move(d.failure);
  if (d.payload) d.r.payload = std::move(*d.payload);
  return std::move(d.r);
}

}  // namespace tobus
