#include "tobus/runner.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "tobus/error.hpp"

namespace tobus {
namespace {

void close_fd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

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

Process::Process(const std::vector<std::string>& argv, const std::vector<std::string>& env, std::string input)
    : input_(std::move(input)) {
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0) throw Error(ErrorKind::failed, std::string("pipe: ") + std::strerror(errno));
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]);
    close(in[1]);
    throw Error(ErrorKind::failed, std::string("pipe: ") + std::strerror(errno));
  }
  if (pipe2(err, O_CLOEXEC) != 0) {
    for (int fd : {in[0], in[1], out[0], out[1]}) close(fd);
    throw Error(ErrorKind::failed, std::string("pipe: ") + std::strerror(errno));
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  // Ignored signals survive exec: give the handler the defaults a shell would.
  for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGQUIT}) sigaddset(&defaults, sig);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const auto& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  // argv[0] was resolved against PATH when the module started; posix_spawn (not spawnp) keeps
  // the search out of the hot path.
  int rc = posix_spawn(&pid_, argv[0].c_str(), &fa, &attr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  in_fd_ = in[1];
  out_fd_ = out[0];
  err_fd_ = err[0];
  if (rc != 0) {
    pid_ = -1;
    close_fd(in_fd_);
    close_fd(out_fd_);
    close_fd(err_fd_);
    throw Error(ErrorKind::failed, "cannot run '" + argv[0] + "': " + std::strerror(rc));
  }
  set_nonblocking(in_fd_);
  set_nonblocking(out_fd_);
  set_nonblocking(err_fd_);
  if (input_.empty()) close_fd(in_fd_);
}

Process::~Process() {
  if (pid_ > 0 && !exited_) {
    kill(-pid_, SIGKILL);
    while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  close_fd(in_fd_);
  close_fd(out_fd_);
  close_fd(err_fd_);
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
  std::string().swap(input_);
}

void Process::pump_output(int fd, const std::function<void(std::string_view)>& on_stderr_line) {
  char buf[65536];
  for (;;) {
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
      out_.append(buf, static_cast<std::size_t>(n));
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
  if (exited_ || pid_ <= 0) return exited_;
  int st = 0;
  pid_t r = waitpid(pid_, &st, WNOHANG);
  if (r != pid_) return false;
  exited_ = true;
  status_ = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 1;
  // A handler's job ends when it exits: whatever it left running in its group goes too.
  kill(-pid_, SIGKILL);
  if (err_tail_.size() > stderr_tail_max) err_tail_.erase(0, err_tail_.size() - stderr_tail_max);
  return true;
}

void Process::signal_group(int sig) {
  if (pid_ > 0 && !exited_) kill(-pid_, sig);
}

void Process::close_outputs() {
  close_fd(out_fd_);
  close_fd(err_fd_);
}

}  // namespace tobus
