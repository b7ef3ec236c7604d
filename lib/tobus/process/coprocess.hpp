#pragma once
// A co-process: one long-running handler process, started once and fed message after message on
// its stdin, its answers read back from its stdout (docs/coprocess.md). It is driven by the
// caller's poll() loop: no threads, no blocking calls. It is restarted with backoff when it dies,
// and reloaded (drained, then restarted) when its program, its script or a --reload-on path
// changes on disk, or on reload(). Needs SIGPIPE ignored (the constructor makes sure of it).

#include <poll.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tobus/core/message.hpp"
#include "tobus/core/report.hpp"
#include "tobus/util/duration.hpp"

namespace tobus {

struct CoProcessOptions {
  // lines: one line per message, one line back, in order. framed: length-prefixed, binary-safe,
  // with a return code per message (docs/coprocess.md).
  enum class Mode { lines, framed };

  std::vector<std::string> argv;  // argv[0] already resolved to a path
  std::vector<std::string> env;   // KEY=VALUE, complete
  Mode mode = Mode::lines;
  // false: an observer (a send hook). A message is done once written; stdout is read and
  // discarded; only messages lost with a dead process are reported (as retries).
  bool answers = true;
  // Extra paths whose change triggers a reload. argv[0] is always watched, and so is every other
  // argv element that names an existing regular file (the script of `python3 handler.py`).
  std::vector<std::string> reload_on;
  std::size_t max_in_flight = 64;  // messages given to the process and not yet answered
  std::size_t max_answer = default_max_payload;  // a longer answer: the process is restarted
  Millis drain_grace{30'000};      // a reload waits this long for answers, then retries the rest
  std::string name;                // in log lines and errors; default: argv[0]'s file name
  // Where what happens along the way is told (a reconnection, a skipped entry); silent by default.
  Reporter report;
};

// A message done with. rc 0: `payload` is the answer. rc 75: retry it (the process died or was
// reloaded before it answered, or a framed handler asked for a retry); others: it failed, `error`
// says why (65: it cannot be framed in lines mode; a framed handler's own code otherwise).
struct CoResult {
  std::uint64_t tag = 0;
  int rc = 0;
  std::string payload;
  std::string error;
  std::string stderr_tail;
};

class CoProcess {
 public:
  using Clock = std::chrono::steady_clock;

  // Starts the process; throws Error(failed) when it cannot.
  explicit CoProcess(CoProcessOptions options);
  ~CoProcess();  // kills what still runs
  CoProcess(const CoProcess&) = delete;
  CoProcess& operator=(const CoProcess&) = delete;

  // A process runs and takes new messages (not draining for a reload), with room in flight.
  bool can_submit() const;
  // Always accepted (can_submit() is the flow control): written as the pipe accepts, or held
  // until a (re)started process can take it. `tag` comes back in the CoResult.
  void submit(std::uint64_t tag, std::string_view payload);
  // Writes what the pipe takes now, then appends what to poll: stdin (POLLOUT) while data is
  // queued, stdout and stderr (POLLIN).
  void add_pollfds(std::vector<pollfd>& fds);
  // After poll(): pumps the descriptors add_pollfds() appended, which start at fds[first].
  void handle(const std::vector<pollfd>& fds, std::size_t first);
  // Call at least every 200ms, or at wake_at(): reaps a dead process, restarts it after its
  // backoff, checks the watched files (every 500ms), ends a reload whose grace ran out.
  void tick();
  Clock::time_point wake_at() const;  // when tick() next has something to do

  // Drain, then restart (SIGHUP): no new messages go to the running process; once it answered
  // what it holds (or the grace ran out: those are retried) a new one starts and takes the rest.
  void reload();
  // Kills the process now and starts a new one at once; what it held comes back as retries
  // with `why` in their error. Logs nothing above debug: the caller says why.
  void restart(std::string_view why);
  // Closes stdin, collects answers for up to `grace`, then kills the process group. What was
  // not answered comes back as retries. The co-process is not restarted afterwards.
  void stop(Millis grace = Millis(1000));

  std::vector<CoResult> take_results();
  std::size_t in_flight() const;  // submitted, not yet in a result
  bool running() const;           // a process runs now and is not draining
  pid_t pid() const;              // of the running process, or -1
  std::uint64_t starts() const;   // processes started so far, the first included
  const std::string& name() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tobus
