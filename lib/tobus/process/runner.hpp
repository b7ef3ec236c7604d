#pragma once
// One handler process: argv as given (no shell), its own process group, the payload on stdin,
// stdout captured as the result, stderr passed on line by line with its tail kept.
//
// Limits (ProcessOptions): a working directory, stdout also written to a file, a cap on stdout
// bytes, an address-space limit (setrlimit in the child, so such jobs are started with fork+exec;
// jobs without one keep the posix_spawn fast path), and kill escalation: terminate() sends SIGTERM
// to the group and tick() sends SIGKILL once `kill_after` has passed. Everything the handler
// started in its group is killed when the handler exits (the containment of fork bombs; RLIMIT_NPROC
// is per user and ignored for root, so it is no help). A process that leaves the group (setsid)
// is out of reach: that needs cgroups.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tobus {

// This process's environment (KEY=VALUE) for a child it starts: all of it but what speaks for this
// process alone (NOTIFY_SOCKET: the service manager's socket is ours; a handler, hook or
// redis-server, which speaks that protocol too, must not answer for us) and what `drop` says.
std::vector<std::string> inherited_environment(const std::function<bool(std::string_view kv)>& drop = {});

// Starts argv[0] (a path: no PATH search) with `env` (KEY=VALUE), the descriptors `in`, `out` and
// `err` as its stdin, stdout and stderr, in `workdir` (empty: ours), in a process group of its
// own, with no signal blocked and the signals the programs catch or ignore back at the defaults
// a shell would give it. posix_spawn: fast, and safe in a threaded program. Returns 0 and sets
// `pid`, or the error number of the failure.
int spawn_in_group(const std::vector<std::string>& argv, const std::vector<std::string>& env, int in, int out,
                   int err, const std::string& workdir, pid_t& pid);

struct ProcessOptions {
  std::string workdir;         // the child's working directory; empty: the caller's
  std::string stdout_path;     // stdout is also written to this file (created or truncated, 0644)
  int stdout_file = -1;        // or to this open file (Process writes a dup of it; stdout_path
                               // then only names it in errors)
  bool keep_stdout = true;     // keep stdout in memory for take_stdout()
  bool stdout_to_stderr = false;  // the child's stdout is its stderr (callbacks: all output is log)
  std::size_t max_output = 0;     // stdout bytes; past it the group is killed (0: no limit)
  std::uint64_t max_memory = 0;   // RLIMIT_AS of the child in bytes (0: none); uses fork+exec
  std::chrono::milliseconds kill_after{2000};  // terminate(): SIGTERM, then SIGKILL this much later
};

class Process {
 public:
  using Clock = std::chrono::steady_clock;

  // Starts `argv` with the environment `env` (KEY=VALUE). Throws Error(failed) when it cannot run.
  // `input` (its stdin) is not copied: it must stay valid until written or the Process is gone.
  Process(const std::vector<std::string>& argv, const std::vector<std::string>& env, std::string_view input);
  Process(const std::vector<std::string>& argv, const std::vector<std::string>& env, std::string_view input,
          const ProcessOptions& options);
  // Kills the group if the handler still runs, and reaps it and what of its group is ours to reap.
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  // File descriptors to poll: stdin while input is left (POLLOUT), stdout and stderr (POLLIN).
  int stdin_fd() const { return in_fd_; }
  int stdout_fd() const { return out_fd_; }
  int stderr_fd() const { return err_fd_; }
  // Moves data for whichever descriptors are ready; `on_stderr_line` gets each complete line.
  void pump_stdin();
  void pump_output(int fd, const std::function<void(std::string_view)>& on_stderr_line);
  // Reaps the process if it exited; then kills what is left of its group.
  bool reap();
  bool exited() const { return exited_; }
  bool drained() const { return out_fd_ < 0 && err_fd_ < 0; }
  // SIGTERM or SIGKILL to the whole group.
  void signal_group(int sig);
  void close_outputs();  // gives up on output held open by an escaped grandchild

  // SIGTERM to the group now, SIGKILL when tick() finds `kill_after` passed. Once only.
  void terminate();
  bool terminated() const { return terminated_; }
  // Sends the SIGKILL terminate() scheduled, when it is due. Call it by kill_at() at the latest.
  void tick(Clock::time_point now = Clock::now());
  Clock::time_point kill_at() const { return exited_ ? Clock::time_point::max() : kill_at_; }

  // Why a limit stopped the process ("output exceeded N bytes") or its stdout file failed; the
  // group was killed then. Empty otherwise.
  const std::string& failure() const { return failure_; }
  std::uint64_t stdout_bytes() const { return out_total_; }

  int status() const { return status_; }  // exit code, or 128+N when killed by signal N
  std::string take_stdout() { return std::move(out_); }
  const std::string& stderr_tail() const { return err_tail_; }

  static constexpr std::size_t stderr_tail_max = 4096;

 private:
  void spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env);
  void fail_limit(std::string why);
  void reap_group(bool block);

  ProcessOptions options_;
  pid_t pid_ = -1;
  int in_fd_ = -1, out_fd_ = -1, err_fd_ = -1, file_fd_ = -1;
  std::string_view input_;
  std::size_t input_off_ = 0;
  std::string out_, err_line_, err_tail_, failure_;
  std::uint64_t out_total_ = 0;
  bool exited_ = false;
  bool group_reaped_ = false;
  bool terminated_ = false;
  int status_ = 0;
  Clock::time_point kill_at_ = Clock::time_point::max();
};

// Looks `program` up on PATH like execvp would; empty when not found or not executable.
std::string find_program(const std::string& program);

// Makes this process the reaper of orphans (PR_SET_CHILD_SUBREAPER): what a handler's children
// leave when the group is killed is then reaped by Process instead of piling up as zombies under
// an init that may not reap. Call once at startup, before any Process; harmless to repeat.
void become_subreaper();

}  // namespace tobus
