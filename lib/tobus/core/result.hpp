#pragma once
// The result entry on a waiting sender's reply stream NS:reply:SENDER and its codec
// (docs/protocol.md, "Result entry"). The bus writes it; tobus-send --wait reads it.

#include <optional>
#include <string>
#include <vector>

#include "tobus/core/message.hpp"

namespace tobus {

struct Result {
  std::string id;                  // the message id
  int rc = 0;                      // the last hop's return code (the failed hop's when failed)
  std::optional<Failure> failure;  // status failed: the hop, rc, attempts, error and stderr
  std::vector<Hop> trail;          // the hops done
  std::optional<Fanout> fan;       // the result of one copy of a fan-out
  std::string payload;             // the final payload (empty when failed)
  bool done() const { return !failure; }
};

// The result entry for a sender waiting on `m`, in this order: v, id, status, then for `failed`
// hop, rc, attempts, error, stderr, or for `done` rc; then trail, fan, fan.n, fan.i when set, and
// payload (empty when failed).
Fields encode_result(const Message& m);

// Reads a result entry. It is strict, since anybody who can write to the stream may have: v must
// be the protocol version, id a valid message id, status `done` or `failed`, rc, attempts and
// the fan-out fields numbers (and a whole fan-out), trail well formed. On failure `error` says
// why and the result is empty. Unknown fields are ignored. On success the payload is moved out of
// `fields` rather than copied.
std::optional<Result> decode_result(Fields& fields, DecodeError& error);

}  // namespace tobus
