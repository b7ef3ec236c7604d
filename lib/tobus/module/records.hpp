#pragma once
// The records a module keeps for people and scripts beside its work (docs/state.md): its
// instance's heartbeat in NS:instances:NAME and its entry in the registry; its state record
// module:NAME (status, messages done and failed, the last failure), whose counts are added up here
// and written with the heartbeat, off the hot path; and the state record job:ID of each message a
// per-message command handles (what runs where, its attempts and its end).

#include <cstdint>
#include <string>
#include <utility>

#include "tobus/core/keys.hpp"
#include "tobus/core/message.hpp"
#include "tobus/core/registry.hpp"
#include "tobus/module/module.hpp"
#include "tobus/redis/redis.hpp"

namespace tobus {

class JobRun;

class ModuleRecords {
 public:
  // The records of the module `options` names, kept by its instance (consumer) `instance`.
  ModuleRecords(const Keys& keys, const ModuleOptions& options, std::string instance)
      : keys_(keys), options_(options), instance_(std::move(instance)), registry_(keys) {}

  // The instance starts now: its heartbeat says since when.
  void mark_started() { started_ms_ = now_ms(); }
  // The instance's heartbeat (with `running`: how many handlers run now), the module's registry
  // entry and module:NAME "running" with the counts since the last one.
  void heartbeat(Connection& c, int running);
  // The instance leaves: it is deregistered, and module:NAME says "stopped" when it was the last.
  void detach(Connection& c);
  // A message handled here ended with `rc` (`error`: why it failed): counted in module:NAME.
  void count(const std::string& message_id, int rc, const std::string& error);
  // A handler asked for a retry (exit 75) and is run again: counted in module:NAME "retried".
  void count_retry() { ++retried_since_flush_; }

  // job:ID of a per-message command: it runs (its pid once it is known, its work dir if any).
  void job_running(Connection& c, const Message& m, int attempt, std::int64_t started_ms, const JobRun& run);
  void job_pid(Connection& c, const std::string& message_id, int pid);
  // The listing of its work dir, as JSON.
  void job_files(Connection& c, const std::string& message_id, const std::string& files);
  // It asked for a retry: `attempt` starts at `retry_at_ms`.
  void job_queued(Connection& c, const std::string& message_id, int attempt, std::int64_t retry_at_ms);
  // It ended with `rc`; the record expires a day later.
  void job_ended(Connection& c, const std::string& message_id, int rc, int attempt);

 private:
  void flush_module_record(Connection& c, const std::string& status);
  void write_record(Connection& c, const std::string& name, const Fields& fields);

  const Keys& keys_;
  const ModuleOptions& options_;
  std::string instance_;
  Registry registry_;
  std::int64_t started_ms_ = 0;
  long long done_since_flush_ = 0, failed_since_flush_ = 0, retried_since_flush_ = 0;
  std::string last_failure_;
  bool heartbeat_refused_ = false;  // said once, until a heartbeat is taken again
};

}  // namespace tobus
