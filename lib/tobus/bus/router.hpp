#pragma once
// The router's decisions, as a pure function of an entry: where it goes next. No I/O.

#include <cstdint>
#include <string>
#include <vector>

#include "tobus/core/keys.hpp"
#include "tobus/core/message.hpp"

namespace tobus {

struct Write {
  std::string key;
  Fields fields;
  bool is_reply = false;  // a reply stream: gets an expiry
  bool is_hash = false;   // HSET the fields (with `ttl_ms`) instead of XADD
  std::int64_t ttl_ms = 0;
};

// How long a group's record of failed branches is kept.
inline constexpr std::int64_t group_record_ttl_ms = 24LL * 3600 * 1000;

// The key of the group a message belongs to for joins: its fan-out, else its correlation id.
std::string group_of(const Message& m);

struct Decision {
  std::vector<Write> writes;  // empty: the journey ended with nobody waiting
  std::string next_hop;       // the module the message goes to, if any
};

// The dead letter for an entry taken from `stream`: its fields as they were, then dead.*.
Write dead_letter(const Keys& keys, const Fields& raw, const std::string& stream,
                  const std::string& entry_id, const std::string& reason,
                  const Failure* failure = nullptr);

// A journey that ends here: the dead letter, and the failure for a waiting sender when the
// message names a reply stream in the namespace. `m` may be null (an undecodable entry).
std::vector<Write> give_up(const Keys& keys, const Message* m, const Fields& raw, const std::string& stream,
                           const std::string& entry_id, const std::string& reason);

// What the bus does with a message read from `NS:bus`. `raw` are the entry's fields (forwarded
// unchanged when the message was not modified); `modified` says a hook changed the message.
// `members` are the modules of the type when the next hop is `@TYPE` (sorted).
Decision route(const Keys& keys, const Message& m, const Fields& raw, bool modified,
               const std::string& entry_id, const std::vector<std::string>* members = nullptr);

}  // namespace tobus
