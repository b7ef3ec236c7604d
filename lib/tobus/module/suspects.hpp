#pragma once
// The suspects of a module (docs/protocol.md, "Consumer groups"): entries delivered more than once
// without an answer, each perhaps what ended its last holder (a crash of the module). The Worker
// runs a suspect alone (module.cpp: start_entry holds the others back, start_held lets them go);
// this ledger keeps NS:suspect:NAME, which tells the next instance that this one ended while
// running an entry alone, and says when a suspect has ended enough instances to be dead-lettered
// instead of run again.

#include <string>
#include <utility>
#include <vector>

#include "tobus/core/keys.hpp"
#include "tobus/core/report.hpp"
#include "tobus/redis/redis.hpp"

namespace tobus {

// A suspect is dead-lettered once this many instances ended while running it alone. Not 1: one
// instance killed from outside (kill -9, OOM, a reboot) while it runs an innocent message alone
// must not dead-letter that message. Twice on the same message is no accident.
inline constexpr int max_lone_ends = 2;

class SuspectLedger {
 public:
  // The ledger of `module` kept by the instance (consumer) `instance`.
  SuspectLedger(const Keys& keys, const std::string& module, std::string instance, const Reporter& report)
      : key_(keys.suspects(module)), instance_(std::move(instance)), report_(report) {}

  // How many instances ended while running `entry_id` alone. Its record in NS:suspect:NAME is
  // "N INSTANCE": INSTANCE runs it alone, after N others ended doing so. When INSTANCE is not
  // us, it ended too: the entry came to us idle for --claim-after, so it stopped serving it.
  int lone_ends(Connection& c, const std::string& entry_id) const;

  // Whether a suspect that `lone_ends` instances ended while running it alone is dead-lettered
  // rather than run again, and the reason its dead letter gives.
  static bool exhausted(int lone_ends) { return lone_ends >= max_lone_ends; }
  static std::string exhausted_reason(int lone_ends);

  // Records the suspect `entry_id` (message `message_id`) in NS:suspect:NAME before it starts: if
  // this run ends the module, the next instance knows.
  void record(Connection& c, const std::string& entry_id, const std::string& message_id, long long deliveries,
              int lone_ends) const;

  // `entry_id` is done with (its handler ended, or it is dead-lettered): its record is deleted at
  // the next flush().
  void done_with(std::string entry_id) { unmark_.push_back(std::move(entry_id)); }

  // Deletes the records of the suspects done with from NS:suspect:NAME, after each step rather
  // than when a job finishes: a lost connection there would leave a job half finished.
  void flush(Connection& c);

 private:
  std::string key_;  // NS:suspect:NAME
  std::string instance_;
  const Reporter& report_;
  std::vector<std::string> unmark_;  // entry ids whose NS:suspect:NAME record is to be deleted
};

}  // namespace tobus
