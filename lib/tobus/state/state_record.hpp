#pragma once
// State records (tobus-state(1), "THE STATE MODEL"): their names, keys and writes, for tobus-state
// and for the job and module records tobus-module keeps.
//
// A state record NAME is the hash NS:state:NAME. Every write goes through one Lua script that
// changes the hash and appends a change event to the stream NS:state-changes in the same atomic
// step, so `wait` and `watch` block on the stream instead of polling the hash:
//
//   XADD NS:state-changes MAXLEN ~ 10000 * name NAME op set|del|cas|incr [field F [value V]]...

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "tobus/core/keys.hpp"
#include "tobus/core/message.hpp"
#include "tobus/redis/redis.hpp"

namespace tobus {

// --- names and keys ----------------------------------------------------------------------------

// A record name: 1-256 printable ASCII characters, no spaces, so that job:ID fits every message id
// tobus-send accepts (order#42, 200 characters).
inline constexpr std::size_t max_state_name = 256;
bool valid_state_name(std::string_view name);
// A field tobus-state writes: 1-200 of A-Z a-z 0-9 _ . : @ / -
bool valid_state_field(std::string_view field);
std::string state_key(const Keys& keys, std::string_view name);  // NS:state:NAME
std::string state_changes_key(const Keys& keys);                 // NS:state-changes
inline constexpr long long state_changes_maxlen = 10000;
inline constexpr std::size_t max_state_fields = 1000;  // per write: the script's argument limit

// --- writes: one Lua script each (atomic), with its change event --------------------------------
// They throw Error(bad_input) when NS:state:NAME is not a hash or NS:state-changes not a stream,
// and RedisError when the connection is lost. Names and fields are the caller's to validate.

void state_set(Connection& c, const Keys& keys, std::string_view name, const Fields& fields);
// Removes `fields`, or the whole record when `fields` is empty; returns how many fields went.
long long state_del(Connection& c, const Keys& keys, std::string_view name,
                    const std::vector<std::string>& fields);
// Sets `field` to `desired` when its value is `expected` (an empty `expected` matches an absent or
// empty field). True when it won; `found`, if given, gets the value it found (absent: empty).
bool state_cas(Connection& c, const Keys& keys, std::string_view name, std::string_view field,
               std::string_view expected, std::string_view desired, std::string* found = nullptr);
// HINCRBY; returns the new value. A value that is not an integer, or overflow: Error(bad_input).
long long state_incr(Connection& c, const Keys& keys, std::string_view name, std::string_view field,
                     long long by);

// The error reply of a state script as an Error: "WRONGTYPE KEY TYPE WANT" (a script's type check)
// is Error(bad_input) naming the key and its type, anything else Error(failed); `doing` says what.
[[noreturn]] void script_error(const ReplyView& r, const std::string& doing);

}  // namespace tobus
