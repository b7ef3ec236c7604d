// The records a module keeps for people and scripts: heartbeat, registry, module:NAME and job:ID
// (records.hpp).
#include "tobus/module/records.hpp"

#include <unistd.h>

#include "tobus/core/error.hpp"
#include "tobus/process/service.hpp"
#include "tobus/state/state_record.hpp"

namespace tobus {
namespace {

// How long a job's state record (job:ID) is kept after the job ended.
constexpr long long job_record_ttl_ms = 24LL * 3600 * 1000;

}  // namespace

void ModuleRecords::heartbeat(Connection& c, int running) {
  std::string json = "{\"host\":\"" + host_name() + "\",\"pid\":" + std::to_string(getpid()) +
                     ",\"started\":" + std::to_string(started_ms_) +
                     ",\"heartbeat\":" + std::to_string(now_ms()) +
                     ",\"jobs\":" + std::to_string(options_.jobs) +
                     ",\"running\":" + std::to_string(running) + "}";
  // Refused (an ACL, a key of another kind): the module works on, unseen by tobus-state modules;
  // said once, not every heartbeat.
  Reply r = c.command({"HSET", keys_.instances(options_.name), instance_, json});
  if (r.is_error() && !heartbeat_refused_)
    options_.report.warn("cannot write the heartbeat to '{}': {}, working on", keys_.instances(options_.name), r.str());
  else if (!r.is_error() && heartbeat_refused_)
    options_.report.info("the heartbeat is written to '{}' again", keys_.instances(options_.name));
  heartbeat_refused_ = r.is_error();
  registry_.note(options_.name, now_ms());
  registry_.flush(c);
  flush_module_record(c, "running");
}

void ModuleRecords::detach(Connection& c) {
  c.command({"HDEL", keys_.instances(options_.name), instance_});
  Reply left = c.command({"HLEN", keys_.instances(options_.name)});
  flush_module_record(c, left.integer() > 0 ? "running" : "stopped");
}

void ModuleRecords::count(const std::string& message_id, int rc, const std::string& error) {
  if (rc == 0) ++done_since_flush_;
  else {
    ++failed_since_flush_;
    last_failure_ = message_id + ": " + (error.empty() ? "rc " + std::to_string(rc) : error);
  }
}

// The module's state record (module:NAME): status, messages done and failed, last failure.
// Counts are added up here and written with the heartbeat, off the hot path.
void ModuleRecords::flush_module_record(Connection& c, const std::string& status) {
  const std::string name = "module:" + options_.name;
  try {
    if (done_since_flush_) state_incr(c, keys_, name, "done", done_since_flush_);
    if (failed_since_flush_) state_incr(c, keys_, name, "failed", failed_since_flush_);
    if (retried_since_flush_) state_incr(c, keys_, name, "retried", retried_since_flush_);
  } catch (const RedisError&) {
    throw;
  } catch (const Error& e) {
    options_.report.warn("cannot count in state record '{}': {}, ignoring", name, e.what());
  }
  done_since_flush_ = failed_since_flush_ = retried_since_flush_ = 0;
  Fields fields{{"status", status}, {"heartbeat", std::to_string(now_ms())}};
  if (!last_failure_.empty()) fields.emplace_back("last_failure", last_failure_);
  write_record(c, name, fields);
}

// State records are for people and scripts: a record spoilt by hand never stops the work.
void ModuleRecords::write_record(Connection& c, const std::string& name, const Fields& fields) {
  try {
    state_set(c, keys_, name, fields);
  } catch (const RedisError&) {
    throw;
  } catch (const Error& e) {
    options_.report.warn("cannot write state record '{}': {}, ignoring", name, e.what());
  }
}

void ModuleRecords::job_running(Connection& c, const Message& m, int attempt, std::int64_t started_ms,
                                const JobRun& run) {
  // The job's state record: what runs where, readable with tobus-state get job:ID.
  Fields record{{"status", "running"},
                {"module", options_.name},
                {"attempt", std::to_string(attempt)},
                {"host", host_name()},
                {"started", std::to_string(started_ms)}};
  if (run.handler_pid() > 0) record.emplace_back("pid", std::to_string(run.handler_pid()));
  if (!run.workdir().empty()) record.emplace_back("workdir", run.workdir());
  write_record(c, "job:" + m.id, record);
}

void ModuleRecords::job_pid(Connection& c, const std::string& message_id, int pid) {
  write_record(c, "job:" + message_id, {{"pid", std::to_string(pid)}});
}

void ModuleRecords::job_files(Connection& c, const std::string& message_id, const std::string& files) {
  write_record(c, "job:" + message_id, {{"files", files}});
}

void ModuleRecords::job_queued(Connection& c, const std::string& message_id, int attempt, std::int64_t retry_at_ms) {
  write_record(c, "job:" + message_id,
               {{"status", "queued"}, {"attempt", std::to_string(attempt)}, {"retry_at", std::to_string(retry_at_ms)}});
}

void ModuleRecords::job_ended(Connection& c, const std::string& message_id, int rc, int attempt) {
  write_record(c, "job:" + message_id,
               {{"status", rc == 0 ? "done" : "failed"},
                {"rc", std::to_string(rc)},
                {"attempt", std::to_string(attempt)},
                {"finished", std::to_string(now_ms())}});
  c.command({"PEXPIRE", state_key(keys_, "job:" + message_id), std::to_string(job_record_ttl_ms)});
}

}  // namespace tobus
