#pragma once
// The field groups that more than one wire entry carries, each read in one place: the envelope
// (v, id), a failure's (hop, rc, attempts, error, stderr) and a fan-out copy's (fan, fan.n, fan.i),
// and the checks made after the last field. Both a message entry (decode, message.cpp) and a
// result entry (decode_result, result.cpp) carry them, and both decoders read them here, so their
// checks and the words of a refusal cannot drift apart.

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "tobus/core/message.hpp"

namespace tobus {

// What a field reader made of one field: not one of its group's, read, or malformed (then
// `error.reason` says why and the entry is refused).
enum class FieldRead { other, read, bad };

// Refuses the entry: `error.reason` is `why`.
FieldRead bad_field(DecodeError& error, std::string why);

// Which of the fields every entry must have were seen.
struct Envelope {
  bool have_v = false;
  bool have_id = false;
};

// v (must be the protocol version) and id (must be a valid message id, stored in `id`).
FieldRead read_envelope_field(std::string_view name, const std::string& value, std::string& id, Envelope& seen,
                              DecodeError& error);

// hop, rc, attempts, error, stderr. `rc` is the entry's return code whether it failed or not: it
// lands in `failure.rc` and the caller takes it from there.
FieldRead read_failure_field(std::string_view name, const std::string& value, Failure& failure, DecodeError& error);

// fan, fan.n, fan.i: `fan` is made by the first of them.
FieldRead read_fan_field(std::string_view name, const std::string& value, std::optional<Fanout>& fan,
                         DecodeError& error);

// After the last field: whether each field an entry must have was seen; if not, `error` names the
// first one missing ("missing field 'id'").
struct Required {
  bool seen;
  const char* name;
};
bool all_present(std::initializer_list<Required> fields, DecodeError& error);

// After the last field: a fan-out is whole (a group, n copies and an index below n) or absent.
bool fan_complete(const std::optional<Fanout>& fan, DecodeError& error);

}  // namespace tobus
