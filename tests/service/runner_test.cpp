// Process: the limits, kill escalation and containment it adds for the service framework.
#include "tobus/process/runner.hpp"

#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "tobus/core/error.hpp"

using namespace tobus;
using Clock = std::chrono::steady_clock;

namespace {

std::vector<std::string> env() { return {"PATH=/usr/local/bin:/usr/bin:/bin"}; }

// Drives `p` to its end the way the module does (poll, pump, reap, tick); returns its stdout.
std::string drive(Process& p, Clock::time_point terminate_at = Clock::time_point::max()) {
  while (!(p.exited() && p.drained())) {
    std::vector<pollfd> fds;
    if (p.stdin_fd() >= 0) fds.push_back({p.stdin_fd(), POLLOUT, 0});
    for (int fd : {p.stdout_fd(), p.stderr_fd()})
      if (fd >= 0) fds.push_back({fd, POLLIN, 0});
    poll(fds.data(), fds.size(), 10);
    for (auto& f : fds) {
      if (!f.revents) continue;
      if (f.fd == p.stdin_fd())
        p.pump_stdin();
      else
        p.pump_output(f.fd, [](std::string_view) {});
    }
    if (Clock::now() >= terminate_at) {
      p.terminate();
      terminate_at = Clock::time_point::max();
    }
    p.tick();
    p.reap();
  }
  return p.take_stdout();
}

int count_children() {
  int n = 0;
  std::ifstream f("/proc/self/task/" + std::to_string(getpid()) + "/children");
  std::string pid;
  while (f >> pid) ++n;
  return n;
}

// The ignored signals among 1-31 in a /proc/PID/status text (glibc's posix_spawn leaves its own
// internal real-time signals 32 and 33 ignored).
unsigned long standard_ignored(const std::string& status) {
  auto at = status.find("SigIgn:\t");
  if (at == std::string::npos) return ~0ul;
  return std::stoul(status.substr(at + 8, 16), nullptr, 16) & 0x7ffffffful;
}

}  // namespace

TEST_CASE("the old constructor still works") {
  Process p({"/bin/sh", "-c", "tr a-z A-Z"}, env(), "abc");
  CHECK(drive(p) == "ABC");
  CHECK(p.status() == 0);
  CHECK(p.failure().empty());
  CHECK(p.stdout_bytes() == 3);
}

TEST_CASE("working directory and stdout to a file") {
  char tmpl[] = "/tmp/tobus-runner-test.XXXXXX";
  std::string dir = mkdtemp(tmpl);
  ProcessOptions o;
  o.workdir = dir;
  o.stdout_path = dir + "/output";
  o.keep_stdout = false;
  Process p({"/bin/sh", "-c", "pwd; cat"}, env(), "in", o);
  CHECK(drive(p).empty());
  std::ifstream f(dir + "/output");
  std::string text(std::istreambuf_iterator<char>(f), {});
  CHECK(text == dir + "\nin");
  std::filesystem::remove_all(dir);

  o.stdout_path = "/nonexistent/dir/output";
  CHECK_THROWS_WITH_AS(Process({"/bin/true"}, env(), "", o),
                       "cannot create '/nonexistent/dir/output': No such file or directory", Error);
}

TEST_CASE("stdout to stderr") {
  ProcessOptions o;
  o.stdout_to_stderr = true;
  Process p({"/bin/sh", "-c", "echo out; echo err >&2"}, env(), "", o);
  CHECK(p.stdout_fd() < 0);
  CHECK(drive(p).empty());
  CHECK(p.stderr_tail() == "out\nerr\n");
}

TEST_CASE("an output flood is cut at max_output") {
  ProcessOptions o;
  o.max_output = 1 << 20;
  auto t0 = Clock::now();
  Process p({"/usr/bin/yes"}, env(), "", o);
  auto out = drive(p);
  CHECK(Clock::now() - t0 < std::chrono::seconds(5));
  CHECK(p.failure() == "output exceeded 1048576 bytes");
  CHECK(out.size() == (1u << 20));
  CHECK(p.status() == 128 + SIGKILL);

  Process q({"/bin/sh", "-c", "head -c 1048576 /dev/zero"}, env(), "", o);  // exactly the limit
  CHECK(drive(q).size() == (1u << 20));
  CHECK(q.failure().empty());
  CHECK(q.status() == 0);
}

TEST_CASE("kill escalation: SIGTERM, then SIGKILL after kill_after") {
  ProcessOptions o;
  o.kill_after = std::chrono::milliseconds(300);
  {
    // Heeds SIGTERM.
    Process p({"/bin/sleep", "30"}, env(), "", o);
    drive(p, Clock::now() + std::chrono::milliseconds(50));
    CHECK(p.status() == 128 + SIGTERM);
  }
  {
    // Ignores it: killed kill_after later.
    Process p({"/bin/sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"}, env(), "", o);
    auto t0 = Clock::now();
    drive(p, t0 + std::chrono::milliseconds(200));
    auto took = Clock::now() - t0;
    CHECK(p.status() == 128 + SIGKILL);
    CHECK(took >= std::chrono::milliseconds(480));
    CHECK(took < std::chrono::seconds(5));
  }
}

TEST_CASE("the memory limit uses fork+exec and applies") {
  ProcessOptions o;
  o.max_memory = 64ull << 20;
  Process ok({"/bin/sh", "-c", "cat"}, env(), "fine", o);
  CHECK(drive(ok) == "fine");
  CHECK(ok.status() == 0);
  // A shell asked to build a 200 MB string cannot.
  Process big({"/bin/sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}"}, env(), "", o);
  drive(big);
  CHECK(big.status() != 0);
  // exec and chdir failures are reported as posix_spawn's are.
  CHECK_THROWS_WITH_AS(Process({"/nonexistent"}, env(), "", o),
                       "cannot run '/nonexistent': No such file or directory", Error);
  o.workdir = "/nonexistent-dir";
  CHECK_THROWS_WITH_AS(Process({"/bin/true"}, env(), "", o),
                       "cannot run '/bin/true': cannot enter '/nonexistent-dir': No such file or directory",
                       Error);
}

TEST_CASE("children left in the group are killed and reaped (fork bomb contained)") {
  become_subreaper();
  std::string marker = "1234" + std::to_string(getpid()) + ".5";
  {
    Process p({"/bin/sh", "-c", "for i in $(seq 50); do sleep " + marker + " & done; echo forked"}, env(),
              "");
    CHECK(drive(p) == "forked\n");
    CHECK(p.status() == 0);
  }
  // The destructor reaped them: nothing of ours is left, zombie or alive.
  CHECK(count_children() == 0);
  CHECK(std::system(("! pgrep -f 'slee[p] " + marker + "' >/dev/null").c_str()) == 0);
}

TEST_CASE("handler defaults: signals reset, own process group") {
  signal(SIGPIPE, SIG_IGN);
  Process p({"/bin/sh", "-c", "ps -o pgid= -p $$; grep SigIgn /proc/self/status"}, env(), "");
  auto out = drive(p);
  CHECK(std::stol(out) == p.pid());
  CHECK_MESSAGE(standard_ignored(out) == 0, out);
  ProcessOptions o;
  o.max_memory = 1ull << 30;
  Process q({"/bin/sh", "-c", "ps -o pgid= -p $$; grep SigIgn /proc/self/status"}, env(), "", o);
  out = drive(q);
  CHECK(std::stol(out) == q.pid());
  CHECK_MESSAGE(standard_ignored(out) == 0, out);
}
