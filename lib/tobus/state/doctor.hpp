#pragma once
// tobus-state doctor (tobus-state(1), DOCTOR): a preflight check of the Redis the programs would
// use. Each check is a small function of a DoctorContext that returns one DoctorCheck (a status,
// one line for people, a JSON object of figures for scripts); doctor_checks() lists them in the
// order they run and are shown. One more check is one more function and one more entry there.
//
// Internal to tobus-state (not installed).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tobus/core/keys.hpp"
#include "tobus/core/report.hpp"
#include "tobus/redis/redis.hpp"
#include "tobus/redis/url.hpp"
#include "tobus/util/duration.hpp"

namespace tobus {

// ok: fine. warn: worth a look, or could not be checked; exit 0 unless --strict. fail: something
// is wrong that loses or stalls messages; exit 1.
enum class CheckStatus { ok, warn, fail };
std::string_view status_word(CheckStatus s);  // "ok", "WARN", "FAIL" (lines); json: lower case

struct DoctorCheck {
  std::string name;
  CheckStatus status = CheckStatus::ok;
  std::string message;         // one printable line, no newline
  std::string details = "{}";  // a JSON object: the figures behind the message
};

struct DoctorOptions {
  // The --claim-after the bus and modules run with (theirs default to 15s): an entry idle twice
  // that long is stuck, since a live reader reclaims it after claim-after.
  Millis claim_after{15'000};
  // Dead letters younger than this count as new: the dead-letter stream is growing.
  Millis dead_since{3'600'000};
  bool json = false;
  bool strict = false;  // warnings exit 1 too
  Reporter report;
};

// What the checks share: one connection, the namespace, the options, and what was read once up
// front (INFO, both clocks).
struct DoctorContext {
  Connection& c;
  const Keys& keys;
  const DoctorOptions& options;
  // INFO's fields (key → value); empty when INFO was refused, then `info_error` says why.
  std::map<std::string, std::string> info;
  std::string info_error;
  // This host's clock, just before and just after TIME, and Redis's clock from TIME (ms).
  std::int64_t local_before = 0, local_after = 0, redis_ms = 0;
  // Redis's clock now, for the ages of stream entries (their ids are Redis's clock).
  std::int64_t redis_now() const;
};

using DoctorCheckFn = DoctorCheck (*)(DoctorContext&);
struct DoctorCheckEntry {
  std::string_view name;
  DoctorCheckFn run;
};
// Every check, in order: version, persistence, eviction, memory, acl, clock, pending, bus,
// modules, dead-letters.
const std::vector<DoctorCheckEntry>& doctor_checks();

// --- pure helpers (unit-tested) ------------------------------------------------------------------

// "redis_version:7.0.15\r\n# Server\r\n..." → its fields.
std::map<std::string, std::string> parse_info(std::string_view text);
// "7.0.15" ≥ "6.2.0", by numbers; a malformed version is less than any.
bool version_at_least(std::string_view version, std::string_view minimum);
// "ok    NAME: MESSAGE" (the word padded to 6 columns), no newline.
std::string format_check_line(const DoctorCheck& c);
// {"status":"fail","checks":[{"name":...,"status":"ok","message":...,"details":{...}},...]}
std::string doctor_json(const std::vector<DoctorCheck>& checks);
// The clock check from this host's clock before and after TIME and Redis's clock in TIME (ms):
// ok within 1s (less half the round trip), warn beyond, fail beyond 5s (a third of the 15s window
// in which an instance's heartbeat counts as live).
DoctorCheck judge_clock(std::int64_t local_before, std::int64_t local_after, std::int64_t redis_ms);
// 1 when a check failed (or, with `strict`, warned), else 0.
int doctor_exit_code(const std::vector<DoctorCheck>& checks, bool strict);

// Runs every check against the Redis at `address` and writes one line each (or the JSON) to
// `out_fd`; the exit code as doctor_exit_code. Redis unreachable: RedisError (exit 3).
int run_doctor(const RedisAddress& address, const Keys& keys, const DoctorOptions& options, int out_fd);

}  // namespace tobus
