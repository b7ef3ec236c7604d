#include "tobus/process/runner.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "tobus/core/error.hpp"

namespace tobus {
namespace {

void close_fd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Signals the module catches or ignores; a handler gets the defaults a shell would give it.
constexpr int reset_signals[] = {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGQUIT};

// What the forked child reports before exec fails: the step and its errno.
enum ChildStep : int { step_fd = 1, step_chdir, step_rlimit, step_exec };

[[noreturn]] void child_fail(int report_fd, int step) {
  int msg[2] = {step, errno};
  [[maybe_unused]] auto n = write(report_fd, msg, sizeof msg);
  _exit(127);
}

// dup2, clearing close-on-exec also when the descriptor is already in place.
bool place_fd(int from, int to) {
  if (from == to) return fcntl(to, F_SETFD, 0) == 0;
  return dup2(from, to) == to;
}

// The pipes of a child's stdin, stdout (none when its stdout is its stderr) and stderr. What was
// not taken is closed with it.
struct ChildPipes {
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  bool stdout_to_stderr;

  explicit ChildPipes(bool to_stderr) : stdout_to_stderr(to_stderr) {
    if (pipe2(in, O_CLOEXEC) != 0 || (!stdout_to_stderr && pipe2(out, O_CLOEXEC) != 0) ||
        pipe2(err, O_CLOEXEC) != 0) {
      int e = errno;
      close_all();
      throw Error(ErrorKind::failed, std::string("pipe: ") + std::strerror(e));
    }
  }
  ~ChildPipes() { close_all(); }
  ChildPipes(const ChildPipes&) = delete;
  ChildPipes& operator=(const ChildPipes&) = delete;

  int child_out() const { return stdout_to_stderr ? err[1] : out[1]; }
  void close_child_ends() {
    close_fd(in[0]);
    close_fd(out[1]);
    close_fd(err[1]);
  }
  void close_all() {
    for (int* fd : {&in[0], &in[1], &out[0], &out[1], &err[0], &err[1]}) close_fd(*fd);
  }
};

// argv and env as the null-terminated arrays of char* that exec takes, pointing into the strings
// (which must outlive them). Made before a fork, so that the child allocates nothing.
struct ExecArgs {
  std::vector<char*> argv, env;

  ExecArgs(const std::vector<std::string>& a, const std::vector<std::string>& e) {
    for (const auto& s : a) argv.push_back(const_cast<char*>(s.c_str()));
    argv.push_back(nullptr);
    for (const auto& s : e) env.push_back(const_cast<char*>(s.c_str()));
    env.push_back(nullptr);
  }
};

// Everything the forked child needs, prepared by the parent before the fork.
struct ChildSetup {
  const ExecArgs& exec;
  int in, out, err;     // to become its stdin, stdout and stderr
  const char* workdir;  // nullptr: ours
  rlimit memory;        // its RLIMIT_AS
  int report_fd;        // where it writes the step that failed (child_fail)
};

// The child's side, between fork and exec: only async-signal-safe calls, no allocation.
[[noreturn]] void exec_child(const ChildSetup& c) {
  setpgid(0, 0);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig : reset_signals) sigaction(sig, &dfl, nullptr);
  if (!place_fd(c.in, 0) || !place_fd(c.out, 1) || !place_fd(c.err, 2)) child_fail(c.report_fd, step_fd);
  if (c.workdir && chdir(c.workdir) != 0) child_fail(c.report_fd, step_chdir);
  if (setrlimit(RLIMIT_AS, &c.memory) != 0) child_fail(c.report_fd, step_rlimit);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  execve(c.exec.argv[0], c.exec.argv.data(), c.exec.env.data());
  child_fail(c.report_fd, step_exec);
}

// The parent's side once the child is forked: waits until the child has exec'd (the report pipe
// reaches end of file) or reported the step that failed (then reaps it). Returns 0, or the error
// number with the step in `step`.
int await_exec(pid_t pid, int report_fd, int& step) {
  setpgid(pid, pid);  // the child does it too; whichever runs first wins, so kill(-pid) is safe
  int msg[2] = {0, 0};
  ssize_t n;
  do n = read(report_fd, msg, sizeof msg);
  while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof msg)) return 0;  // end of file: exec succeeded
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  step = msg[0];
  return msg[1] ? msg[1] : EIO;
}

// Starts `args` as spawn_in_group does, but with its address space limited to `max_memory` bytes:
// setrlimit must run in the child before exec, which posix_spawn cannot do, so fork and exec.
// Returns 0 and sets `pid`, or the error number with the step that failed in `step`. Throws
// Error(failed) when it cannot make the pipe the child reports on.
int fork_with_limit(const ExecArgs& args, int in, int out, int err, const std::string& workdir,
                    std::uint64_t max_memory, pid_t& pid, int& step) {
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) {
    int e = errno;
    throw Error(ErrorKind::failed, std::string("pipe: ") + std::strerror(e));
  }
  ChildSetup setup{args, in, out, err, workdir.empty() ? nullptr : workdir.c_str(), {}, report[1]};
  setup.memory.rlim_cur = setup.memory.rlim_max = static_cast<rlim_t>(max_memory);
  sigset_t all, old;
  sigfillset(&all);
  // Blocked across fork so no handler of ours runs in the child before its dispositions reset.
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t child = fork();
  if (child == 0) exec_child(setup);
  int fork_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  close(report[1]);
  int rc = child < 0 ? fork_errno : await_exec(child, report[0], step);
  if (rc == 0) pid = child;
  close(report[0]);
  return rc;
}

}  // namespace

std::string find_program(const std::string& program) {
  if (program.find('/') != std::string::npos)
    return access(program.c_str(), X_OK) == 0 ? program : std::string();
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    auto colon = dirs.find(':', start);
    std::string dir = dirs.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + program;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return {};
}

void become_subreaper() { prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }

Process::Process(const std::vector<std::string>& argv, const std::vector<std::string>& env, std::string_view input)
    : Process(argv, env, input, ProcessOptions{}) {}

Process::Process(const std::vector<std::string>& argv, const std::vector<std::string>& env, std::string_view input,
                 const ProcessOptions& options)
    : options_(options), input_(input) {
  if (argv.empty()) throw Error(ErrorKind::failed, "cannot run an empty command");
  if (options_.stdout_file >= 0) {
    file_fd_ = fcntl(options_.stdout_file, F_DUPFD_CLOEXEC, 0);
    if (file_fd_ < 0)
      throw Error(ErrorKind::failed, "cannot write '" + options_.stdout_path + "': " + std::strerror(errno));
  } else if (!options_.stdout_path.empty()) {
    file_fd_ = open(options_.stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (file_fd_ < 0)
      throw Error(ErrorKind::failed, "cannot create '" + options_.stdout_path + "': " + std::strerror(errno));
  }
  try {
    spawn(argv, env);
  } catch (...) {
    close_fd(file_fd_);
    throw;
  }
}

std::vector<std::string> inherited_environment(const std::function<bool(std::string_view kv)>& drop) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string_view kv(*e);
    if (kv.starts_with("NOTIFY_SOCKET=") || (drop && drop(kv))) continue;
    env.emplace_back(kv);
  }
  return env;
}

int spawn_in_group(const std::vector<std::string>& argv, const std::vector<std::string>& env, int in, int out,
                   int err, const std::string& workdir, pid_t& pid) {
  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const auto& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in, 0);
  posix_spawn_file_actions_adddup2(&fa, out, 1);
  posix_spawn_file_actions_adddup2(&fa, err, 2);
  if (!workdir.empty()) posix_spawn_file_actions_addchdir_np(&fa, workdir.c_str());
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  // Ignored signals survive exec: give the handler the defaults a shell would.
  for (int sig : reset_signals) sigaddset(&defaults, sig);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  int rc = posix_spawn(&pid, argv[0].c_str(), &fa, &attr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  return rc;
}

void Process::spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  ChildPipes pipes(options_.stdout_to_stderr);
  int rc = 0;
  std::string what;  // the step that failed, when it is not exec itself
  if (options_.max_memory == 0) {
    // The fast path. argv[0] was resolved against PATH by the caller.
    rc = spawn_in_group(argv, env, pipes.in[0], pipes.child_out(), pipes.err[1], options_.workdir, pid_);
    if (rc != 0 && !options_.workdir.empty() && access(options_.workdir.c_str(), X_OK) != 0)
      what = "cannot enter '" + options_.workdir + "'";
  } else {
    int step = 0;
    rc = fork_with_limit(ExecArgs(argv, env), pipes.in[0], pipes.child_out(), pipes.err[1], options_.workdir,
                         options_.max_memory, pid_, step);
    if (step == step_chdir) what = "cannot enter '" + options_.workdir + "'";
    if (step == step_rlimit) what = "cannot limit its memory";
  }
  pipes.close_child_ends();
  if (rc != 0) {
    pid_ = -1;  // our ends of the pipes close with `pipes`
    throw Error(ErrorKind::failed,
                "cannot run '" + argv[0] + "': " + (what.empty() ? "" : what + ": ") + std::strerror(rc));
  }
  in_fd_ = std::exchange(pipes.in[1], -1);
  out_fd_ = std::exchange(pipes.out[0], -1);
  err_fd_ = std::exchange(pipes.err[0], -1);
  set_nonblocking(in_fd_);
  if (out_fd_ >= 0) set_nonblocking(out_fd_);
  set_nonblocking(err_fd_);
  if (input_.empty()) close_fd(in_fd_);
}

Process::~Process() {
  if (pid_ > 0 && !exited_) {
    kill(-pid_, SIGKILL);
    while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
    exited_ = true;
  }
  // The group was killed when the handler was reaped (or just now); its members that became our
  // children (become_subreaper) die at once and are reaped here, so none is left a zombie.
  if (pid_ > 0) reap_group(true);
  close_fd(in_fd_);
  close_fd(out_fd_);
  close_fd(err_fd_);
  close_fd(file_fd_);
}

void Process::reap_group(bool block) {
  while (!group_reaped_) {
    pid_t r = waitpid(-pid_, nullptr, block ? 0 : WNOHANG);
    if (r > 0) continue;
    if (r == 0) return;
    if (errno == EINTR) continue;
    group_reaped_ = true;  // ECHILD: no child of ours is left in the group
  }
}

void Process::pump_stdin() {
  while (in_fd_ >= 0 && input_off_ < input_.size()) {
    ssize_t n = write(in_fd_, input_.data() + input_off_, input_.size() - input_off_);
    if (n > 0) {
      input_off_ += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      return;
    } else {
      break;  // EPIPE: the handler does not read its stdin; that is its business
    }
  }
  close_fd(in_fd_);
  input_ = {};
}

void Process::fail_limit(std::string why) {
  if (failure_.empty()) failure_ = std::move(why);
  signal_group(SIGKILL);
  close_fd(out_fd_);  // nothing more is wanted from it
}

void Process::pump_output(int fd, const std::function<void(std::string_view)>& on_stderr_line) {
  char buf[65536];
  for (;;) {
    if (fd < 0 || (fd != out_fd_ && fd != err_fd_)) return;
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {
      if (fd == err_fd_ && !err_line_.empty()) {
        on_stderr_line(err_line_);
        err_line_.clear();
      }
      if (fd == out_fd_) close_fd(out_fd_);
      if (fd == err_fd_) close_fd(err_fd_);
      return;
    }
    if (fd == out_fd_) {
      auto got = static_cast<std::size_t>(n);
      std::size_t take = got;
      if (options_.max_output > 0 && out_total_ + got > options_.max_output)
        take = static_cast<std::size_t>(options_.max_output - out_total_);
      std::size_t off = 0;
      while (file_fd_ >= 0 && off < take) {
        ssize_t w = write(file_fd_, buf + off, take - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
          fail_limit("cannot write '" + options_.stdout_path + "': " + std::strerror(w < 0 ? errno : ENOSPC));
          return;
        }
        off += static_cast<std::size_t>(w);
      }
      if (options_.keep_stdout) out_.append(buf, take);
      out_total_ += take;
      if (take < got) {
        fail_limit("output exceeded " + std::to_string(options_.max_output) + " bytes");
        return;
      }
      continue;
    }
    std::string_view chunk(buf, static_cast<std::size_t>(n));
    err_tail_.append(chunk);
    if (err_tail_.size() > 2 * stderr_tail_max) err_tail_.erase(0, err_tail_.size() - stderr_tail_max);
    while (!chunk.empty()) {
      auto nl = chunk.find('\n');
      if (nl == std::string_view::npos) {
        err_line_.append(chunk);
        if (err_line_.size() > stderr_tail_max) {
          on_stderr_line(err_line_);
          err_line_.clear();
        }
        break;
      }
      err_line_.append(chunk.substr(0, nl));
      on_stderr_line(err_line_);
      err_line_.clear();
      chunk.remove_prefix(nl + 1);
    }
  }
}

bool Process::reap() {
  if (pid_ <= 0) return exited_;
  if (exited_) {
    reap_group(false);
    return true;
  }
  int st = 0;
  pid_t r = waitpid(pid_, &st, WNOHANG);
  if (r != pid_) return false;
  exited_ = true;
  kill_at_ = Clock::time_point::max();
  status_ = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 1;
  // A handler's job ends when it exits: whatever it left running in its group goes too.
  kill(-pid_, SIGKILL);
  reap_group(false);
  if (err_tail_.size() > stderr_tail_max) err_tail_.erase(0, err_tail_.size() - stderr_tail_max);
  return true;
}

void Process::signal_group(int sig) {
  if (pid_ > 0 && !exited_) kill(-pid_, sig);
}

void Process::terminate() {
  if (terminated_ || exited_ || pid_ <= 0) return;
  terminated_ = true;
  kill(-pid_, SIGTERM);
  kill(-pid_, SIGCONT);  // a stopped handler must see the SIGTERM too
  kill_at_ = Clock::now() + options_.kill_after;
}

void Process::tick(Clock::time_point now) {
  if (exited_ || now < kill_at_) return;
  kill(-pid_, SIGKILL);
  kill_at_ = Clock::time_point::max();
}

void Process::close_outputs() {
  close_fd(out_fd_);
  close_fd(err_fd_);
}

}  // namespace tobus
