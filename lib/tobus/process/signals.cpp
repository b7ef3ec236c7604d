#include "tobus/process/signals.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>

namespace tobus::signals {
namespace {

int pipe_fds[2] = {-1, -1};
std::atomic<int> stops{0};
std::atomic<int> first_stop{0};
std::atomic<bool> child{false};
std::atomic<bool> hup{false};

void on_signal(int sig) {
  int saved = errno;
  if (sig == SIGCHLD) {
    child.store(true);
  } else if (sig == SIGHUP) {
    hup.store(true);
  } else if (sig == SIGINT || sig == SIGTERM) {
    int expected = 0;
    first_stop.compare_exchange_strong(expected, sig);
    stops.fetch_add(1);
  }
  char b = static_cast<char>(sig);
  [[maybe_unused]] auto n = write(pipe_fds[1], &b, 1);
  errno = saved;
}

}  // namespace

void ignore_sigpipe() { ::signal(SIGPIPE, SIG_IGN); }

void install() {
  ignore_sigpipe();
  if (pipe_fds[0] < 0) {
    if (pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) std::abort();
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGCHLD}) sigaction(sig, &sa, nullptr);
}

int fd() { return pipe_fds[0]; }

void drain() {
  char buf[64];
  while (read(pipe_fds[0], buf, sizeof buf) > 0) {
  }
}

int stop_count() { return stops.load(); }
int stop_signal() { return first_stop.load(); }
bool take_child() { return child.exchange(false); }
bool take_hup() { return hup.exchange(false); }

void request_stop() { on_signal(SIGTERM); }

void reset_stops() {
  stops.store(0);
  first_stop.store(0);
  drain();
}

void reraise_stop() {
  int sig = first_stop.load();
  die_by(sig == 0 ? SIGTERM : sig);
}

void die_by(int sig) {
  ::signal(sig, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  sigprocmask(SIG_UNBLOCK, &set, nullptr);
  raise(sig);
  std::_Exit(128 + sig);
}

}  // namespace tobus::signals
