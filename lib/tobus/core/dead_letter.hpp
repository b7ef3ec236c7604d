#pragma once
// The dead-letter entry on NS:dead and its codec (docs/protocol.md, "Dead letter"): the fields of
// the original entry exactly as they were, followed by the dead.* fields.

#include <cstdint>
#include <optional>
#include <string>

#include "tobus/core/message.hpp"

namespace tobus {

struct DeadLetter {
  std::string entry;  // its id in NS:dead (not a field: the reader sets it)
  Fields original;    // the original entry's fields, as they were
  std::string reason;        // dead.reason: why, one line
  std::string stream;        // dead.stream: the stream the entry was taken from
  std::string source_entry;  // dead.entry: its id there
  std::string hop;           // dead.hop: the hop that failed
  std::string stderr_tail;   // dead.stderr
  std::optional<std::int64_t> at;        // dead.at, MS
  std::optional<std::int64_t> rc;        // dead.rc; with a value, encode writes the failed hop's four fields
  std::optional<std::int64_t> attempts;  // dead.attempts
  std::string message_id() const;  // the original `id` field when it is a valid id, else empty
};

// The dead letter of an entry taken from `stream`: `original` (moved in), then dead.reason,
// dead.stream, dead.entry, dead.at and, for a failed hop, dead.hop, dead.rc, dead.attempts and
// dead.stderr.
DeadLetter make_dead_letter(Fields original, std::string stream, std::string source_entry,
                            std::string reason, std::int64_t at_ms, const Failure* failure = nullptr);

// The entry's fields: `original`, then dead.reason, dead.stream, dead.entry, dead.at (when set),
// then dead.hop, dead.rc, dead.attempts, dead.stderr when `rc` is set.
Fields encode(const DeadLetter& d);
Fields encode(DeadLetter&& d);  // moves `original` instead of copying it

// Reads an entry of NS:dead, written by the bus, a module, or anybody else. It never fails: the
// last dead.reason starts the dead.* fields (everything before it is the original entry, even
// dead.* fields of a dead letter that was itself dead-lettered); an entry without dead.reason is
// all original. A dead.* field that is missing leaves its member empty; a number that does not
// parse (dead.at, dead.rc, dead.attempts) leaves it unset; unknown dead.* fields are ignored.
DeadLetter decode_dead_letter(const Fields& fields);

}  // namespace tobus
