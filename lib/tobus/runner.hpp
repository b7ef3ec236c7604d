#pragma once
// One handler process: argv as given (no shell), its own process group, the payload on stdin,
// stdout captured as the result, stderr passed on line by line with its tail kept.

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace tobus {

class Process {
 public:
  // Starts `argv` with the environment `env` (KEY=VALUE). Throws Error(failed) when it cannot run.
  Process(const std::vector<std::string>& argv, const std::vector<std::string>& env, std::string input);
  ~Process();  // kills the group if it still runs
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

  int status() const { return status_; }  // exit code, or 128+N when killed by signal N
  std::string take_stdout() { return std::move(out_); }
  const std::string& stderr_tail() const { return err_tail_; }

  static constexpr std::size_t stderr_tail_max = 4096;

 private:
  pid_t pid_ = -1;
  int in_fd_ = -1, out_fd_ = -1, err_fd_ = -1;
  std::string input_;
  std::size_t input_off_ = 0;
  std::string out_, err_line_, err_tail_;
  bool exited_ = false;
  int status_ = 0;
};

// Looks `program` up on PATH like execvp would; empty when not found or not executable.
std::string find_program(const std::string& program);

}  // namespace tobus
