#pragma once
// What tobus-state reads and shows about a bus (tobus-state(1)): state records and their change
// events, the module registry, job records and dead letters. The record names, keys and writes,
// which modules use too, are in state_record.hpp.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tobus/core/dead_letter.hpp"
#include "tobus/core/keys.hpp"
#include "tobus/core/message.hpp"
#include "tobus/core/report.hpp"
#include "tobus/redis/redis.hpp"
#include "tobus/redis/stream.hpp"
#include "tobus/redis/url.hpp"
#include "tobus/state/state_record.hpp"
#include "tobus/util/duration.hpp"
#include "tobus/util/text.hpp"

namespace tobus {

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

// escape_text (bytes made one printable line) is in text.hpp.
// 2026-01-02T03:04:05Z, or with milliseconds 2026-01-02T03:04:05.678Z.
std::string format_time_utc(std::int64_t ms, bool millis = false);

// A live module instance, from its JSON in NS:module:NAME.
struct ModuleInstance {
  std::string id;
  bool known = false;  // false: the value is not the JSON tobus-module writes
  std::string host;
  std::int64_t pid = 0, started = 0, heartbeat = 0, jobs = 0;
  std::optional<std::int64_t> running;  // handlers running at its heartbeat; nullopt: not said
};
inline constexpr std::int64_t instance_live_ms = 15000;  // a heartbeat younger than this: live
ModuleInstance parse_instance(std::string id, std::string_view json);
// An instance is live while its heartbeat (the module host's clock) is younger than
// instance_live_ms by this host's clock.
bool instance_live(const ModuleInstance& in, std::int64_t now);

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
  doctor,                                                       // a preflight check (doctor.hpp)
  acl,                                                          // the ACL rules of a role (acl.hpp)
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
  Millis claim_after{15'000};        // doctor --claim-after
  Millis dead_since{3'600'000};      // doctor --dead-since
  bool strict = false;               // doctor --strict
  // acl: ROLE [NAME] (NAME in `module`), --type, --user, --password-file, --aclfile
  std::string role;
  std::vector<std::string> types;
  std::string user;
  std::string password_file;
  bool aclfile = false;
  // Where what happens along the way is told (a reconnection, a skipped entry); silent by default.
  Reporter report;
};

// Validates the arguments (Error(usage)), runs the verb and returns the exit code.
// The acl verb needs no Redis: run_acl (state_acl.cpp) prints the rules of o.role.
int run_acl(const Keys& keys, const StateOptions& options, int out_fd);
int run_state(const RedisAddress& address, const Keys& keys, const StateOptions& options,
              int out_fd);

}  // namespace tobus
