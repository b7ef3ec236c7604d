#pragma once
// The service framework around a per-message handler (docs/service.md): a pool of services picked
// by a message header, a work dir per job, watch callbacks around the job, limits, handler
// templates (--init) and a local run of one message (--once).
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
//         [id](std::string_view line) { spdlog::warn("{}: {}", id, line); });
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

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tobus/core/message.hpp"
#include "tobus/process/runner.hpp"
#include "tobus/util/duration.hpp"

namespace tobus {

using Headers = std::vector<std::pair<std::string, std::string>>;

inline constexpr int rc_bad_data = 65;    // EX_DATAERR: a bad `service` or `args` header
inline constexpr int rc_not_found = 127;  // as a shell: no such service, or not executable

// --- the pool ------------------------------------------------------------------------------------

// 1-64 of A-Z a-z 0-9 _ . -, not starting with '.' (so never '.', '..' or a hidden file).
bool valid_service_name(std::string_view name);

struct ServicePick {
  std::vector<std::string> argv;  // DIR/NAME and the args; empty when the pick failed
  int rc = 0;                     // 0; rc_not_found (unknown, not executable); rc_bad_data
  std::string error;              // why it failed, one line
  bool ok() const { return rc == 0; }
};

// The service the header `service` names in `pool_dir`, with the header `args` (a JSON array of
// strings) as its arguments. Looked up on every call: a service dropped into the pool is picked
// up at once. Never throws.
ServicePick pick(const std::string& pool_dir, const Headers& headers);
inline ServicePick pick(const std::string& pool_dir, const Message& message) {
  return pick(pool_dir, message.headers);
}

// The `args` header: a JSON array of at most 1024 strings without NUL bytes; nullopt and `error`
// otherwise.
std::optional<std::vector<std::string>> parse_args_header(std::string_view json, std::string& error);

// --- work dirs -----------------------------------------------------------------------------------

// The name of a job's work dir: the message id with every byte outside A-Z a-z 0-9 _ - (and a
// leading '.') written %XX, long ids shortened with a hash, then '.' and the attempt. Distinct ids
// and attempts give distinct names. JobRun makes NAME, or NAME-2 ... NAME-9 (then NAME-<random>)
// when that is taken: two deliveries of one message at once never share a dir.
std::string job_dir_name(std::string_view message_id, int attempt);

enum class KeepWorkdir { always, failed, never };
std::optional<KeepWorkdir> parse_keep_workdir(std::string_view text);  // always|failed|never
// --result FILE: relative, inside the work dir (no '..'). Throws Error(usage) naming the problem.
void check_result_path(std::string_view path);

// A work dir's contents: every file and directory under it (recursively, symlinks not followed),
// names relative to it (directories end with '/'), sorted, the first max_listed of them.
struct Listing {
  struct File {
    std::string name;
    std::uint64_t size = 0;
    bool operator==(const File&) const = default;
  };
  std::size_t count = 0;                            // entries found (the walk stops at max_scanned)
  std::vector<File> files;                          // the first max_listed by name
  bool truncated = false;                           // count > files.size()
  bool operator==(const Listing&) const = default;  // the change detection of the watcher

  // {"count":N,"truncated":false,"files":[{"name":"input","size":5},...]}; names that are not
  // UTF-8 get \xNN for their odd bytes. Files are left out (and truncated set) to stay within
  // `max_bytes`, so it always fits an environment variable.
  std::string json(std::size_t max_bytes = 100'000) const;

  static constexpr std::size_t max_listed = 1000;
  static constexpr std::size_t max_scanned = 100'000;
};
Listing list_dir(const std::string& dir);  // an unreadable or missing dir lists as empty

// --- a job ---------------------------------------------------------------------------------------

// The module's options for its jobs (tobus-module's command line).
struct ServiceOptions {
  std::string pool;                        // --pool DIR
  std::string workdir;                     // --workdir DIR; empty: no work dirs, no watching, no callbacks
  std::string result;                      // --result FILE, relative to the job's work dir; empty: stdout
  KeepWorkdir keep = KeepWorkdir::failed;  // --keep-workdir
  std::string before, on_change, after;    // --before, --on-change, --after: /bin/sh -c CMD
  Millis watch_interval{1000};             // --watch-interval
  Millis callback_timeout{10'000};         // each callback's bound (then SIGTERM, kill_after, SIGKILL)
  std::optional<Millis> timeout;           // --timeout: of the handler
  Millis kill_after{2000};                 // --kill-after
  std::size_t max_output = 0;              // --max-output BYTES of stdout (0: no limit)
  std::uint64_t max_memory = 0;            // --max-memory BYTES, RLIMIT_AS (0: none)
  Millis drain_grace{1000};  // output held open by an escaped grandchild after the handler exited
};

// The checks tobus-module makes of these options at startup: --pool excludes a COMMAND and is a
// directory, the callbacks and --result need --workdir, which, if it exists, is a directory (not
// a symlink) owned by us or root, and writable by nobody else unless it is sticky (as /tmp is: then
// others cannot replace our job dirs in it); --result stays inside the work dir. Throws
// Error(usage).
void check_service_options(const ServiceOptions& options, bool has_command);

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

// --- --init --------------------------------------------------------------------------------------

// Writes the handler template DIR/NAME (mode 0755) in `lang` (sh or python) and returns its path.
// Throws Error(usage) for a bad name or language, Error(failed) when the file exists (it is never
// overwritten) or cannot be written.
std::string write_template(const std::string& dir, const std::string& name, const std::string& lang);

// --- --once --------------------------------------------------------------------------------------

struct OnceOptions {
  std::string module;                // NAME: the hop the message is at
  std::vector<std::string> command;  // COMMAND; empty: pass-through (or the pool)
  std::string payload;               // -m
  Headers headers;                   // -H KEY=VALUE
  std::vector<std::string> route;    // the hops after this one (-t), may be empty
  bool dry_run = false;              // describe on stdout instead of printing the result
  ServiceOptions service;
};

// Runs the handler on one message here, with no Redis at all, through the same JobRun as the
// module, and reports what the module would do with the result (docs/service.md, "--once"):
// the result on `out_fd` and one verdict line on `err_fd`, or with dry_run a description on
// `out_fd`. Returns the handler's exit code (0 would send, 75 would retry, other would
// dead-letter). Throws Error(usage) for a command that is not found or a bad option.
int run_once(const OnceOptions& options, int out_fd = 1, int err_fd = 2);

}  // namespace tobus
