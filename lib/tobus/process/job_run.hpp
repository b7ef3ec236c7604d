#pragma once
// One job of the service framework (docs/service.md): its work dir, the --before, --on-change and
// --after callbacks around the handler, the handler's limits and timeout, and the keep policy;
// and the variables a handler gets for its message.
//
// HOW THE MODULE DRIVES A JOB (lib/tobus/module/module.cpp; everything here is non-blocking):
//
//   Module::Module: check_service_options(options.service, !options.command.empty());
//                   options.service.timeout = options.timeout;
//   launch(job):
//     argv = options.command, or with --pool: auto p = pick(pool, message);
//            if (!p.ok()) { finish(job, p.rc, {}, p.error); return; }  argv = p.argv;
//     env = base_env + message_env(message, attempt) + TOBUS_JOB (+ the join's variables);
//     job.run = std::make_unique<JobRun>(options.service,
//         JobSpec{argv, env, message.payload, job_dir_name(message.id, attempt)},
//         [id](std::string_view line) { /* log it: "ID: LINE" */ });
//     (a JobRun that could not start is done() at once with rc 127 and the reason; it is
//      finished in the next check_jobs() like any other)
//   wait_and_pump():
//     wake = min(wake, job.run->wake_at());
//     std::size_t first = fds.size(); job.run->add_pollfds(fds);   (remember `first` per job)
//     after poll(): job.run->handle(fds, first);
//   check_jobs():
//     bool child = signals::take_child();  job.run->tick(child);
//     if (auto l = job.run->take_listing()) write *l into the job's state record (field `files`);
//     if (job.run->done()) { JobResult r = job.run->take_result(); job.run.reset();
//                            finish(job, r.rc, std::move(r.payload), std::move(r.error),
//                                   std::move(r.stderr_tail)); }
//   second SIGINT/SIGTERM: job.run->kill() (SIGKILL to every process of the job), then drop it.
//
// JobRun replaces the Process, deadline, kill_at and drain handling of module.cpp: with no work
// dir and no callbacks it is exactly one Process with the limits and the timeout.

#include <poll.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tobus/core/message.hpp"
#include "tobus/process/runner.hpp"
#include "tobus/process/service_options.hpp"
#include "tobus/process/workdir.hpp"

namespace tobus {

struct JobSpec {
  std::vector<std::string> argv;  // the handler, argv[0] a path (find_program, or pick())
  std::vector<std::string> env;   // KEY=VALUE, the TOBUS_* variables included
  std::string_view input;         // the payload, not copied: it must outlive the JobRun
  std::string job_id;             // the work dir's name: job_dir_name(id, attempt), made unique
};

// What a job made of its message. rc 0: `payload` is the result; otherwise `error` says why when
// the framework knows better than "handler exited with N" (empty: the caller words it).
struct JobResult {
  int rc = 0;
  std::string payload;
  std::string error;
  std::string stderr_tail;
};

// One job: the work dir, --before, the handler with its limits and timeout, --on-change whenever
// the listing changes, --after, and the keep policy, in that order. Non-blocking; see the top of
// this file for how a poll loop drives it, or call wait().
//
// The work dir is made (mode 0700) and used relative to open descriptors of the --workdir base
// and of the dir itself, never following a symlink: `input` and `output` (0600) are created with
// O_EXCL, the --result file is opened component by component with O_NOFOLLOW, and the dir is
// removed without following symlinks planted in it.
class JobRun {
 public:
  using Clock = std::chrono::steady_clock;
  using LineSink = std::function<void(std::string_view line)>;

  // Starts the job (creates the work dir, starts --before or the handler). Never throws: a job that
  // cannot start is done() at once (rc 127, or 1 when its work dir cannot be made or the --workdir
  // base is no safe place for it).
  JobRun(const ServiceOptions& options, JobSpec spec, LineSink log);
  ~JobRun();  // kills and reaps whatever still runs; the work dir is left as it is
  JobRun(const JobRun&) = delete;
  JobRun& operator=(const JobRun&) = delete;

  // Appends the descriptors to poll (with their events) to `fds`: the handler's stdin while input
  // is left, its stdout and stderr, a running callback's output. The same API as CoProcess.
  void add_pollfds(std::vector<pollfd>& fds);
  // After poll(): moves data for the descriptors add_pollfds() appended, from fds[first] on.
  void handle(const std::vector<pollfd>& fds, std::size_t first);
  // Reaps, enforces deadlines, lists the work dir when due and moves the job on. Call after each
  // poll() round. `child_exited`: a SIGCHLD arrived since the last round (signals::take_child());
  // without one a process is reaped only once its output closed or a deadline passed.
  void tick(bool child_exited = true);
  // When tick() must run next at the latest.
  Clock::time_point wake_at() const;

  bool done() const { return phase_ == Phase::done; }
  JobResult take_result() { return std::move(result_); }
  // The work dir's listing as JSON, when it changed since the last call (the first call after the
  // dir was made gives the first listing); for the job's state record.
  std::optional<std::string> take_listing();
  // The handler's pid while it runs (for the job's state record), else -1.
  pid_t handler_pid() const;
  const std::string& workdir() const { return dir_; }  // empty without --workdir

  // SIGKILL to every process of the job now (the module's second stop signal).
  void kill();
  // Runs the job to its end in a poll loop of its own (--once, tests). `stop`, checked between
  // rounds, ends it early: kill(), and the result is rc 1, "stopped".
  JobResult wait(const std::function<bool()>& stop = {});

 private:
  enum class Phase { before, handler, settle, after, done };
  struct Callback;

  bool make_workdir();
  void start_handler();
  void start_callback(const std::string& command, std::string_view event, int rc);
  void on_callback_end();
  void on_handler_end();
  void watch(Clock::time_point now);
  void start_after();
  void finish();
  void fail(int rc, std::string error);

  ServiceOptions options_;
  JobSpec spec_;
  LineSink log_;
  Phase phase_ = Phase::handler;
  std::string dir_;       // the work dir's path: what the handler and callbacks are given
  std::string dir_name_;  // its name in the base
  int base_fd_ = -1;      // the --workdir base and the work dir, open (O_CLOEXEC)
  int dir_fd_ = -1;
  std::unique_ptr<Process> handler_;
  Clock::time_point handler_deadline_ = Clock::time_point::max();
  Clock::time_point drain_until_ = Clock::time_point::max();
  bool timed_out_ = false;
  std::unique_ptr<Callback> callback_;
  std::vector<int> polled_;  // what add_pollfds() appended, in order
  bool change_pending_ = false;
  Listing listing_;
  bool listing_dirty_ = false;
  Clock::time_point next_watch_ = Clock::time_point::max();
  JobResult result_;
};

// The variables a handler gets for `message` at attempt `attempt`: TOBUS_ID, TOBUS_FROM,
// TOBUS_ROUTE (the hops after this one), TOBUS_ATTEMPT and TOBUS_HEADER_<NAME> per header
// (header_env_name). Of headers with one variable name (a.b, a-b, A_B) the first in the message
// is set; the others' keys go to `shadowed`. The caller adds TOBUS_MODULE, TOBUS_REDIS,
// TOBUS_NAMESPACE and TOBUS_JOB.
std::vector<std::string> message_env(const Message& message, int attempt,
                                     std::vector<std::string>* shadowed = nullptr);

}  // namespace tobus
