#pragma once
// State kept in Redis for shell scripts and modules (tobus-state(1), "THE STATE MODEL"), and what
// tobus-state shows about a bus: the module registry, job records and dead letters.
//
// A state record NAME is the hash NS:state:NAME. Every write goes through one Lua script that
// changes the hash and appends a change event to the stream NS:state-changes in the same atomic
// step, so `wait` and `watch` block on the stream instead of polling the hash:
//
//   XADD NS:state-changes MAXLEN ~ 10000 * name NAME op set|del|cas|incr [field F [value V]]...

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tobus/dead_letter.hpp"
#include "tobus/duration.hpp"
#include "tobus/keys.hpp"
#include "tobus/message.hpp"
#include "tobus/redis.hpp"
#include "tobus/stream.hpp"
#include "tobus/url.hpp"

namespace CLI {
class App;
}

namespace tobus {

// --- names and keys ----------------------------------------------------------------------------

// A record name, or a field tobus-state writes: 1-200 of A-Z a-z 0-9 _ . : @ / -
bool valid_state_name(std::string_view name);
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

// --- reads -------------------------------------------------------------------------------------

// The record's fields sorted by name; nullopt when there is no record.
std::optional<Fields> state_get(Connection& c, const Keys& keys, std::string_view name);
std::optional<std::string> state_get_field(Connection& c, const Keys& keys, std::string_view name,
                                           std::string_view field);

struct StateList {
  std::vector<std::string> names;    // sorted
  std::vector<std::string> skipped;  // keys under NS:state: that are not records, one line each
};
// Names matching the glob `pattern` (SCAN MATCH NS:state:PATTERN).
StateList state_list(Connection& c, const Keys& keys, std::string_view pattern);

// --- change events -----------------------------------------------------------------------------

struct StateChange {
  std::string entry;  // its id in NS:state-changes
  std::string name;
  std::string op;  // set, del, cas, incr
  Fields fields;   // field and new value; for del the values are empty, no fields: whole record
};
std::optional<StateChange> parse_state_change(const Entry& e);
std::string format_state_change(const StateChange& c);  // NAME op F=V ...  (no newline)
std::string state_change_json(const StateChange& c);

// --- pure helpers ------------------------------------------------------------------------------

// Makes bytes one printable line: \\ \n \r \t, and \xNN for other control bytes and for bytes
// that are not UTF-8 (UTF-8 text stays as it is).
std::string escape_text(std::string_view s);
// 2026-01-02T03:04:05Z, or with milliseconds 2026-01-02T03:04:05.678Z.
std::string format_time_utc(std::int64_t ms, bool millis = false);
std::string sha1_hex(std::string_view data);

// A live module instance, from its JSON in NS:module:NAME.
struct ModuleInstance {
  std::string id;
  bool known = false;  // false: the value is not the JSON tobus-module writes
  std::string host;
  std::int64_t pid = 0, started = 0, heartbeat = 0, jobs = 0;
};
inline constexpr std::int64_t instance_live_ms = 15000;  // a heartbeat younger than this: live
ModuleInstance parse_instance(std::string id, std::string_view json);

// An entry of NS:dead, read with the dead-letter codec (tobus/dead_letter.hpp), with its id.
DeadLetter parse_dead_letter(const Entry& e);

// The fields of the fresh bus entry that retries `d`: same id, headers and payload; `from` retry;
// route `to` if given, else the failed hop and what was left of the route, else the route.
// nullopt when it cannot be retried: `error` says why, `undecodable` whether it is junk (then
// only a `to` route can resend its payload).
std::optional<Fields> retry_fields(const DeadLetter& d, const std::vector<std::string>* to,
                                   std::string& error, bool& undecodable);

// --- the verbs of tobus-state ------------------------------------------------------------------

enum class StateVerb {
  get, set, del, list, cas, incr, wait, watch, modules, types, jobs,  // records, the registry
  dead_list, dead_show, dead_retry, dead_purge,                 // dead letters
};

struct StateOptions {
  StateVerb verb = StateVerb::get;
  std::string name;  // the record; the ID of dead show and dead retry
  // set: FIELD=VALUE...; del: FIELD...; get: [FIELD]; wait: FIELD=VALUE
  std::vector<std::string> args;
  std::string field, expected, desired;  // cas, incr
  long long by = 1;                      // incr
  std::string pattern = "*";             // list, watch
  std::string module;                    // jobs
  bool json = false;
  bool names_only = false;           // modules --names, types --names
  bool all = false;                  // dead retry --all
  std::string to;                    // dead retry --to (a route)
  std::optional<Millis> timeout;     // wait
  std::optional<Millis> older_than;  // dead purge
};

// The commands of `app` with their arguments and options, for the end of its --help (each
// command's own --help has the details).
std::string commands_help(const CLI::App& app);

// Validates the arguments (Error(usage)), runs the verb and returns the exit code.
int run_state(const RedisAddress& address, const Keys& keys, const StateOptions& options,
              int out_fd);

}  // namespace tobus
