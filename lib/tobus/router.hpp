#pragma once
// The router's decisions, as a pure function of an entry: where it goes next. No I/O.

#include <string>
#include <vector>

#include "tobus/keys.hpp"
#include "tobus/message.hpp"

namespace tobus {

struct Write {
  std::string key;
  Fields fields;
  bool is_reply = false;  // a reply stream: gets an expiry
};

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
Decision route(const Keys& keys, const Message& m, const Fields& raw, bool modified,
               const std::string& entry_id);

// The result entry for a sender waiting on `m`'s reply stream.
Fields result_fields(const Message& m);

}  // namespace tobus
