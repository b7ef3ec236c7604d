#include "tobus/process/coprocess.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <thread>

#include "tobus/core/error.hpp"
#include "tobus/process/runner.hpp"
#include "tobus/process/signals.hpp"
#include "tobus/util/size.hpp"

namespace tobus {
namespace {

using Clock = CoProcess::Clock;
using std::chrono::milliseconds;

constexpr std::size_t max_header = 32;                      // "RC LEN\n" is at most 15 bytes
constexpr std::size_t read_chunk = std::size_t{256} << 10;
constexpr int reads_per_pump = 16;  // a flooding process must not keep the caller's loop
constexpr std::size_t stderr_tail_max = 4096;
constexpr int pipe_size = 1 << 20;  // fewer wake-ups under load; the kernel may refuse
constexpr auto check_every = milliseconds(500);
constexpr auto eof_grace = milliseconds(100);    // stdout closed: time to exit before it is killed
constexpr auto term_after = milliseconds(1000);  // a retired process with stdin closed: SIGTERM
constexpr auto kill_after = milliseconds(3000);  // then SIGKILL
constexpr auto backoff_min = milliseconds(100);
constexpr auto backoff_max = milliseconds(5000);
constexpr auto healthy_after = milliseconds(10'000);
constexpr int rc_retry = 75;    // EX_TEMPFAIL
constexpr int rc_dataerr = 65;  // EX_DATAERR
constexpr auto silent_warn_after = std::chrono::seconds(5);

void close_fd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

struct Spawned {
  pid_t pid = -1;
  int in = -1, out = -1, err = -1;
};

// Starts `argv` the way Process (runner.cpp) starts a handler (spawn_in_group), but its stdin
// stays open for message after message.
Spawned spawn_piped(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  if (argv.empty()) throw Error(ErrorKind::failed, "no command to run");
  int fds[3][2];
  for (int i = 0; i < 3; ++i) {
    if (pipe2(fds[i], O_CLOEXEC) != 0) {
      int saved = errno;
      for (int k = 0; k < i; ++k) {
        close(fds[k][0]);
        close(fds[k][1]);
      }
      throw Error(ErrorKind::failed, std::string("pipe: ") + std::strerror(saved));
    }
  }
  fcntl(fds[0][1], F_SETPIPE_SZ, pipe_size);
  fcntl(fds[1][1], F_SETPIPE_SZ, pipe_size);
  Spawned s;
  int rc = spawn_in_group(argv, env, fds[0][0], fds[1][1], fds[2][1], {}, s.pid);
  close(fds[0][0]);
  close(fds[1][1]);
  close(fds[2][1]);
  s.in = fds[0][1];
  s.out = fds[1][0];
  s.err = fds[2][0];
  if (rc != 0) {
    close_fd(s.in);
    close_fd(s.out);
    close_fd(s.err);
    throw Error(ErrorKind::failed, "cannot run '" + argv[0] + "': " + std::strerror(rc));
  }
  set_nonblocking(s.in);
  set_nonblocking(s.out);
  set_nonblocking(s.err);
  return s;
}

// What tells a changed file: an editor that replaces it changes the inode, one that rewrites it
// in place changes the size or the modification time.
struct Signature {
  bool exists = false;
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  std::int64_t mtime_ns = 0;
  bool operator==(const Signature&) const = default;
};

Signature signature(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return {};
  return {true, st.st_dev, st.st_ino, st.st_size,
          static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

bool is_regular_file(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string describe_status(int st) {
  if (WIFEXITED(st)) return "exited with " + std::to_string(WEXITSTATUS(st));
  if (WIFSIGNALED(st)) return "was killed by signal " + std::to_string(WTERMSIG(st));
  return "ended";
}

// Bytes from a misbehaving process, fit for one log line.
std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 40)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > 40) out += "...";
  return out;
}

// A decimal of 1 to `digits` digits, at most `max`.
bool parse_decimal(std::string_view s, std::size_t digits, std::uint64_t max, std::uint64_t& out) {
  if (s.empty() || s.size() > digits) return false;
  out = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return out <= max;
}

struct Held {
  std::uint64_t tag;
  std::uint64_t end;  // where its bytes end in everything written to this process
};

struct Queued {
  std::uint64_t tag;
  std::string frame;
};

struct Child {
  pid_t pid = -1;
  int in = -1, out = -1, err = -1;
  Clock::time_point started;
  std::string wbuf;  // frames not yet written, from woff
  std::size_t woff = 0;
  std::uint64_t queued = 0, written = 0;  // byte totals over its life
  std::deque<Held> held;                  // given to it, oldest first; answers come in this order
  std::string rbuf;                       // stdout not yet parsed, from roff
  std::size_t roff = 0;
  bool in_body = false;  // framed: a header was read, its body is awaited
  int body_rc = 0;
  std::size_t body_len = 0;
  std::string err_line, err_tail;
  std::uint64_t answered = 0;
  std::uint64_t answered_seen = 0;  // `answered` when its silence was last measured
  Clock::time_point silent_since;   // holding messages and answering none since then
  bool warned_silent = false;       // said once per process: it may be slow by design
  bool exited = false;
  int status = 0;
  Clock::time_point gone_at = Clock::time_point::max();  // closed stdout or stdin
  std::string gone_why;
};

// A process that was let go: reaped, then what is left of its group (its members become our
// children when the caller is a subreaper, see become_subreaper() in runner.hpp).
struct Corpse {
  pid_t pid;
  Clock::time_point term_at, kill_at;
  bool termed = false, killed = false;
  bool reaped = false;
};

// Reaps what of group `pgid` is our child; true once none is left. `block` waits for them.
bool reap_group(pid_t pgid, bool block) {
  for (;;) {
    pid_t r = waitpid(-pgid, nullptr, block ? 0 : WNOHANG);
    if (r > 0) continue;
    if (r == 0) return false;
    if (errno != EINTR) return true;  // ECHILD
  }
}

// Kills a process and its group and reaps them, waiting: for shutdown only.
void kill_and_reap(pid_t pid, bool reaped) {
  kill(-pid, SIGKILL);
  if (!reaped)
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  kill(-pid, SIGKILL);
  reap_group(pid, true);
}

}  // namespace

struct CoProcess::Impl {
  CoProcessOptions o;
  std::vector<std::string> watched;
  std::vector<Signature> seen;        // at the last check
  std::vector<Signature> start_sigs;  // when the last process was started
  std::unique_ptr<Child> child;
  std::deque<Queued> pending;  // accepted while no process could take them
  std::vector<CoResult> results;
  std::vector<Corpse> corpses;
  std::vector<int> polled;
  std::vector<char> chunk = std::vector<char>(read_chunk);
  bool draining = false;
  Clock::time_point drain_deadline = Clock::time_point::max();
  bool stopped = false;
  Clock::time_point restart_at = Clock::time_point::max();
  milliseconds backoff = backoff_min;
  Clock::time_point next_check{};
  std::uint64_t starts = 0;

  explicit Impl(CoProcessOptions options) : o(std::move(options)) {
    if (o.argv.empty()) throw Error(ErrorKind::failed, "co-process: no command to run");
    if (o.name.empty()) o.name = o.argv[0].substr(o.argv[0].rfind('/') + 1);
    if (o.max_in_flight == 0) o.max_in_flight = 1;
    watched.push_back(o.argv[0]);
    for (std::size_t i = 1; i < o.argv.size(); ++i)
      if (is_regular_file(o.argv[i])) watched.push_back(o.argv[i]);
    for (const auto& p : o.reload_on) watched.push_back(p);
  }

  ~Impl() {
    if (child) bury(*child, true);
    child.reset();
    for (auto& c : corpses) kill_and_reap(c.pid, c.reaped);
  }

  std::vector<Signature> signatures() const {
    std::vector<Signature> out;
    out.reserve(watched.size());
    for (const auto& p : watched) out.push_back(signature(p));
    return out;
  }

  bool live() const { return child && child->gone_at == Clock::time_point::max(); }
  std::size_t in_flight() const { return (child ? child->held.size() : 0) + pending.size(); }

  void encode(std::string& to, std::string_view payload) const {
    if (o.mode == CoProcessOptions::Mode::framed) {
      to += std::to_string(payload.size());
      to += '\n';
      to += payload;
    } else {
      to += payload;
      to += '\n';
    }
  }

  void give(Child& c, std::uint64_t tag, std::size_t added) {
    c.queued += added;
    c.held.push_back({tag, c.queued});
  }

  void submit(std::uint64_t tag, std::string_view payload) {
    if (o.mode == CoProcessOptions::Mode::lines && payload.find('\n') != std::string_view::npos) {
      results.push_back({tag,
                         rc_dataerr,
                         {},
                         "the payload contains a newline, which a line co-process cannot take "
                         "(use --framed)",
                         {}});
      return;
    }
    if (stopped) {
      results.push_back({tag, rc_retry, {}, "co-process '" + o.name + "' is stopped", {}});
      return;
    }
    if (live() && !draining) {
      std::size_t before = child->wbuf.size();
      encode(child->wbuf, payload);
      give(*child, tag, child->wbuf.size() - before);
      return;
    }
    Queued q{tag, {}};
    encode(q.frame, payload);
    pending.push_back(std::move(q));
  }

  void start() {
    start_sigs = signatures();
    Spawned s = spawn_piped(line_buffered_argv(), o.env);
    child = std::make_unique<Child>();
    child->pid = s.pid;
    child->in = s.in;
    child->out = s.out;
    child->err = s.err;
    child->started = Clock::now();
    child->silent_since = child->started;
    ++starts;
    restart_at = Clock::time_point::max();
    for (auto& q : pending) {
      child->wbuf += q.frame;
      give(*child, q.tag, q.frame.size());
    }
    pending.clear();
    o.report.debug("co-process '{}' started (pid {})", o.name, s.pid);
  }

  // A lines co-process runs through `stdbuf -oL`: a stdio filter (tr, sed, grep, awk) buffers its
  // output on a pipe and would never answer the first line. A program that sets its own buffering
  // keeps it; one that is not a C stdio program is not affected.
  std::vector<std::string> line_buffered_argv() const {
    // (A program that cannot run is left to fail to start, with its own error.)
    if (o.mode != CoProcessOptions::Mode::lines || !o.answers || access(o.argv[0].c_str(), X_OK) != 0) return o.argv;
    static const std::string stdbuf = find_program("stdbuf");
    if (stdbuf.empty()) return o.argv;
    std::vector<std::string> argv{stdbuf, "-oL", "--"};
    argv.insert(argv.end(), o.argv.begin(), o.argv.end());
    return argv;
  }

  // Says once per process when it holds messages and answers none for a while: the usual cause is
  // output it keeps in a buffer.
  void watch_silence(Clock::time_point now) {
    if (!child || !o.answers || draining || child->warned_silent) return;
    Child& c = *child;
    if (c.held.empty() || c.answered != c.answered_seen) {
      c.answered_seen = c.answered;
      c.silent_since = now;
      return;
    }
    if (now - c.silent_since < silent_warn_after) return;
    c.warned_silent = true;
    o.report.warn(
        "co-process '{}' holds {} message(s) and has answered none for {}: if it buffers its output "
        "on a pipe, make it flush each answer (python3 -u, sys.stdout.flush(), sed -u, grep "
        "--line-buffered, fflush() in awk); if it is slow by design, ignore this",
        o.name, c.held.size(), format_duration(silent_warn_after));
  }

  // Starts a process now; when that fails, what waits for one is retried and it is tried again
  // after the backoff.
  void start_or_retry() {
    try {
      start();
    } catch (const Error& e) {
      auto now = Clock::now();
      o.report.warn("cannot start co-process '{}': {}, retrying in {}", o.name, e.what(),
                    format_duration(backoff));
      for (auto& q : pending)
        results.push_back(
            {q.tag, rc_retry, {}, "cannot start co-process '" + o.name + "': " + e.what(), {}});
      pending.clear();
      restart_at = now + backoff;
      backoff = std::min(backoff * 2, backoff_max);
    }
  }

  void mark_gone(Child& c, std::string why) {
    if (c.gone_at != Clock::time_point::max()) return;
    c.gone_at = Clock::now();
    c.gone_why = std::move(why);
  }

  void flush(Child& c) {
    while (c.in >= 0 && c.woff < c.wbuf.size()) {
      ssize_t n = write(c.in, c.wbuf.data() + c.woff, c.wbuf.size() - c.woff);
      if (n > 0) {
        c.woff += static_cast<std::size_t>(n);
        c.written += static_cast<std::uint64_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && errno == EAGAIN) {
        break;
      } else {
        mark_gone(c, "closed its stdin");
        close_fd(c.in);
      }
    }
    if (c.woff == c.wbuf.size()) {
      c.wbuf.clear();
      c.woff = 0;
    } else if (c.woff > (std::size_t{1} << 20) && c.woff > c.wbuf.size() / 2) {
      c.wbuf.erase(0, c.woff);
      c.woff = 0;
    }
    if (!o.answers)
      while (!c.held.empty() && c.held.front().end <= c.written) {
        c.held.pop_front();
        ++c.answered;  // for an observer, taken is done
      }
  }

  void on_stderr_line(std::string_view line) { o.report.warn("{}: {}", o.name, line); }

  void read_stderr(Child& c) {
    for (int i = 0; c.err >= 0 && i < reads_per_pump; ++i) {
      ssize_t n = read(c.err, chunk.data(), chunk.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;
      if (n <= 0) {
        if (!c.err_line.empty()) on_stderr_line(c.err_line);
        c.err_line.clear();
        close_fd(c.err);
        return;
      }
      std::string_view data(chunk.data(), static_cast<std::size_t>(n));
      c.err_tail.append(data);
      if (c.err_tail.size() > 2 * stderr_tail_max)
        c.err_tail.erase(0, c.err_tail.size() - stderr_tail_max);
      while (!data.empty()) {
        auto nl = data.find('\n');
        if (nl == std::string_view::npos) {
          c.err_line.append(data);
          if (c.err_line.size() > stderr_tail_max) {
            on_stderr_line(c.err_line);
            c.err_line.clear();
          }
          break;
        }
        c.err_line.append(data.substr(0, nl));
        on_stderr_line(c.err_line);
        c.err_line.clear();
        data.remove_prefix(nl + 1);
      }
    }
  }

  std::string tail_of(Child& c) {
    if (c.err >= 0) read_stderr(c);  // what it said just before it answered
    if (c.err_tail.size() > stderr_tail_max)
      c.err_tail.erase(0, c.err_tail.size() - stderr_tail_max);
    return c.err_tail;
  }

  // Reads what stdout has; false when the process turned out unusable (and was lost).
  bool read_stdout(Child& c) {
    for (int i = 0; c.out >= 0 && i < reads_per_pump; ++i) {
      ssize_t n = read(c.out, chunk.data(), chunk.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) break;
      if (n <= 0) {
        close_fd(c.out);
        mark_gone(c, "closed its stdout");
        break;
      }
      if (o.answers) c.rbuf.append(chunk.data(), static_cast<std::size_t>(n));
    }
    std::string why = o.mode == CoProcessOptions::Mode::framed ? parse_framed(c) : parse_lines(c);
    if (c.roff == c.rbuf.size()) {
      c.rbuf.clear();
      c.roff = 0;
    } else if (c.roff > c.rbuf.size() / 2) {
      c.rbuf.erase(0, c.roff);
      c.roff = 0;
    }
    if (why.empty()) return true;
    lose(why, true);
    return false;
  }

  // Matches complete lines to held messages; returns what is wrong with the output, if anything.
  std::string parse_lines(Child& c) {
    for (;;) {
      const char* begin = c.rbuf.data() + c.roff;
      std::size_t left = c.rbuf.size() - c.roff;
      const void* nl = std::memchr(begin, '\n', left);
      if (!nl) {
        if (left > o.max_answer)
          return "wrote more than " + format_size(o.max_answer) + " without a newline (--max-payload)";
        return {};
      }
      std::size_t len = static_cast<std::size_t>(static_cast<const char*>(nl) - begin);
      if (len > o.max_answer)
        return "wrote an answer of " + std::to_string(len) + " bytes, more than " + format_size(o.max_answer) +
               " (--max-payload)";
      if (c.held.empty())
        return "wrote a line with no message waiting for an answer: '" + printable({begin, len}) +
               "'";
      results.push_back({c.held.front().tag, 0, std::string(begin, len), {}, {}});
      c.held.pop_front();
      ++c.answered;
      c.roff += len + 1;
    }
  }

  std::string parse_framed(Child& c) {
    for (;;) {
      const char* begin = c.rbuf.data() + c.roff;
      std::size_t left = c.rbuf.size() - c.roff;
      if (!c.in_body) {
        const void* nl = std::memchr(begin, '\n', std::min(left, max_header));
        if (!nl) {
          if (left >= max_header)
            return "wrote a malformed answer header '" + printable({begin, max_header}) +
                   "' (expected 'RC LEN')";
          return {};
        }
        std::string_view header(begin,
                                static_cast<std::size_t>(static_cast<const char*>(nl) - begin));
        auto sp = header.find(' ');
        std::uint64_t rc = 0, len = 0;
        if (sp == std::string_view::npos || !parse_decimal(header.substr(0, sp), 3, 255, rc) ||
            !parse_decimal(header.substr(sp + 1), 10, 9'999'999'999, len))
          return "wrote a malformed answer header '" + printable(header) + "' (expected 'RC LEN')";
        if (len > o.max_answer)
          return "announced an answer of " + std::to_string(len) + " bytes, more than " + format_size(o.max_answer) +
                 " (--max-payload)";
        if (c.held.empty())
          return "wrote an answer with no message waiting for one: '" + printable(header) + "'";
        c.in_body = true;
        c.body_rc = static_cast<int>(rc);
        c.body_len = static_cast<std::size_t>(len);
        c.roff += header.size() + 1;
        if (c.rbuf.capacity() < c.roff + c.body_len) c.rbuf.reserve(c.roff + c.body_len);
        continue;
      }
      if (left < c.body_len) return {};
      CoResult r{c.held.front().tag, c.body_rc, {}, {}, {}};
      c.held.pop_front();
      ++c.answered;
      std::string body(begin, c.body_len);
      c.roff += c.body_len;
      c.in_body = false;
      if (r.rc == 0) {
        r.payload = std::move(body);
      } else {
        while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
        r.error = body.empty() ? (r.rc == rc_retry ? "handler asked for a retry"
                                                   : "handler answered " + std::to_string(r.rc))
                               : std::move(body);
        r.stderr_tail = tail_of(c);
      }
      results.push_back(std::move(r));
    }
  }

  // Ends `c`: kills its group (gracefully: stdin closed, SIGTERM, then SIGKILL) and hands what it
  // held back as retries with `why`.
  void bury(Child& c, bool kill_now, const std::string& why = {}) {
    std::string tail = c.held.empty() ? std::string() : tail_of(c);
    if (c.err >= 0) read_stderr(c);
    if (!c.err_line.empty()) on_stderr_line(c.err_line);
    c.err_line.clear();
    close_fd(c.in);
    close_fd(c.out);
    close_fd(c.err);
    for (const auto& h : c.held)
      results.push_back({h.tag, rc_retry, {}, "co-process '" + o.name + "' " + why, tail});
    c.held.clear();
    auto now = Clock::now();
    if (c.exited) {
      kill(-c.pid, SIGKILL);  // what it left running in its group
      corpses.push_back({c.pid, now, now, true, true, true});
    } else if (kill_now) {
      kill(-c.pid, SIGKILL);
      corpses.push_back({c.pid, now, now, true, true, false});
    } else {
      corpses.push_back({c.pid, now + term_after, now + kill_after});
    }
  }

  // The process died or misbehaved: what it held is retried, a new one starts after the backoff
  // (or at once with `immediate`).
  void lose(const std::string& why, bool kill_now, bool immediate = false) {
    Child& c = *child;
    auto now = Clock::now();
    std::size_t held = c.held.size();
    bool healthy = c.answered > 0 || now - c.started >= healthy_after;
    bury(c, kill_now, why);
    child.reset();
    draining = false;
    drain_deadline = Clock::time_point::max();
    if (healthy || immediate) backoff = backoff_min;
    std::string holding = held ? " holding " + std::to_string(held) + " message(s)" : "";
    if (stopped) return;
    if (immediate) {
      // restart(): the caller says why.
      o.report.debug("co-process '{}' {}{}, restarting it", o.name, why, holding);
      start_or_retry();
      return;
    }
    o.report.warn("co-process '{}' {}{}, restarting in {}", o.name, why, holding,
                  format_duration(backoff));
    restart_at = now + backoff;
    backoff = std::min(backoff * 2, backoff_max);
  }

  // Replaces a drained process by a new one.
  void swap_drained(const std::string& why_held) {
    bury(*child, false, why_held);
    child.reset();
    draining = false;
    drain_deadline = Clock::time_point::max();
    backoff = backoff_min;
    start_or_retry();
    if (child) o.report.info("co-process '{}' reloaded (pid {})", o.name, child->pid);
  }

  // `reap`: also ask whether it exited (tick() does; a pump only once its output closed).
  void check(bool reap) {
    if (!child) return;
    Child& c = *child;
    if (!c.exited && (reap || c.gone_at != Clock::time_point::max())) {
      int st = 0;
      pid_t r = waitpid(c.pid, &st, WNOHANG);
      if (r == c.pid) {
        c.exited = true;
        c.status = st;
      }
    }
    if (c.exited) {
      // Answers it wrote before it exited still count.
      if (c.out >= 0 && !read_stdout(c)) return;
      lose("died (" + describe_status(c.status) + ")", true);
      return;
    }
    auto now = Clock::now();
    if (c.gone_at != Clock::time_point::max() && now >= c.gone_at + eof_grace) {
      lose("died (" + c.gone_why + ")", true);
      return;
    }
    if (!draining) return;
    if (c.held.empty()) {
      swap_drained({});
    } else if (now >= drain_deadline) {
      swap_drained("was reloaded before it answered (no answer within " +
                   format_duration(o.drain_grace) + ")");
    }
  }

  void reap_corpses() {
    auto now = Clock::now();
    for (auto it = corpses.begin(); it != corpses.end();) {
      if (!it->reaped) {
        pid_t r = waitpid(it->pid, nullptr, WNOHANG);
        if (r == it->pid || (r < 0 && errno == ECHILD)) {
          it->reaped = true;
          kill(-it->pid, SIGKILL);  // what it left running in its group
        }
      }
      if (it->reaped) {
        if (reap_group(it->pid, false))
          it = corpses.erase(it);
        else
          ++it;
        continue;
      }
      if (!it->killed && now >= it->kill_at) {
        kill(-it->pid, SIGKILL);
        it->killed = true;
      } else if (!it->termed && now >= it->term_at) {
        kill(-it->pid, SIGTERM);
        it->termed = true;
      }
      ++it;
    }
  }

  void check_files(Clock::time_point now) {
    next_check = now + check_every;
    auto current = signatures();
    // Acted on once it held still for a check: a file written in several steps is not run half.
    bool stable = current == seen;
    seen = current;
    if (!stable || current == start_sigs || draining) return;
    for (std::size_t i = 0; i < watched.size(); ++i)
      if (!(current[i] == start_sigs[i])) {
        o.report.info("co-process '{}': '{}' changed, reloading", o.name, watched[i]);
        break;
      }
    if (child) {
      begin_reload();
    } else {
      start_sigs = current;
      backoff = backoff_min;
      restart_at = now;
    }
  }

  void begin_reload() {
    if (stopped) return;
    if (!child) {
      backoff = backoff_min;
      restart_at = Clock::now();
      return;
    }
    if (draining) return;
    draining = true;
    drain_deadline = Clock::now() + o.drain_grace;
    o.report.info("reloading co-process '{}': waiting for {} answer(s)", o.name, child->held.size());
    check(false);
  }

  void tick() {
    reap_corpses();
    if (stopped) return;
    check(true);
    auto now = Clock::now();
    watch_silence(now);
    if (now >= next_check) check_files(now);
    if (!child && now >= restart_at) start_or_retry();
  }

  Clock::time_point wake_at() const {
    auto t = Clock::time_point::max();
    for (const auto& c : corpses) {
      if (!c.termed) t = std::min(t, c.term_at);
      if (!c.killed) t = std::min(t, c.kill_at);
    }
    if (stopped) return t;
    t = std::min(t, next_check);
    if (!child) return std::min(t, restart_at);
    if (!child->warned_silent && !child->held.empty()) t = std::min(t, child->silent_since + silent_warn_after);
    if (child->gone_at != Clock::time_point::max()) t = std::min(t, child->gone_at + eof_grace);
    if (draining) t = std::min(t, drain_deadline);
    return t;
  }

  void stop(milliseconds grace) {
    if (stopped) return;
    stopped = true;
    draining = false;
    for (auto& q : pending)
      results.push_back({q.tag, rc_retry, {}, "co-process '" + o.name + "' stopped", {}});
    pending.clear();
    if (child) {
      Child& c = *child;
      close_fd(c.in);  // end of input: a well-behaved process answers what it has and exits
      auto deadline = Clock::now() + grace;
      while (child && c.out >= 0) {
        auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) break;
        pollfd fds[2] = {{c.out, POLLIN, 0}, {c.err, POLLIN, 0}};
        int n = poll(fds, c.err >= 0 ? 2 : 1, static_cast<int>(left));
        if (n < 0 && errno != EINTR) break;
        if (n <= 0) continue;
        if (fds[1].revents && c.err >= 0) read_stderr(c);
        if (fds[0].revents && !read_stdout(c)) break;
      }
      if (child) {
        bury(*child, true, "stopped before it answered");
        child.reset();
      }
    }
    for (auto& c : corpses) kill_and_reap(c.pid, c.reaped);
    corpses.clear();
  }
};

CoProcess::CoProcess(CoProcessOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  // A process that closes its stdin must be an error on write, not the death of this one.
  signals::ignore_sigpipe();
  impl_->start();
  impl_->seen = impl_->start_sigs;
  impl_->next_check = Clock::now() + check_every;
}

CoProcess::~CoProcess() = default;

bool CoProcess::can_submit() const {
  return !impl_->stopped && impl_->live() && !impl_->draining &&
         impl_->in_flight() < impl_->o.max_in_flight;
}

void CoProcess::submit(std::uint64_t tag, std::string_view payload) { impl_->submit(tag, payload); }

void CoProcess::add_pollfds(std::vector<pollfd>& fds) {
  auto& polled = impl_->polled;
  polled.clear();
  if (!impl_->child) return;
  Child& c = *impl_->child;
  if (c.woff < c.wbuf.size()) impl_->flush(c);
  if (c.in >= 0 && c.woff < c.wbuf.size()) polled.push_back(c.in);
  if (c.out >= 0) polled.push_back(c.out);
  if (c.err >= 0) polled.push_back(c.err);
  for (int fd : polled) fds.push_back({fd, static_cast<short>(fd == c.in ? POLLOUT : POLLIN), 0});
}

void CoProcess::handle(const std::vector<pollfd>& fds, std::size_t first) {
  auto polled = std::move(impl_->polled);
  impl_->polled.clear();
  for (std::size_t i = 0; i < polled.size() && first + i < fds.size(); ++i) {
    if (!fds[first + i].revents) continue;
    if (!impl_->child) break;
    Child& c = *impl_->child;
    int fd = polled[i];
    if (fd == c.in)
      impl_->flush(c);
    else if (fd == c.out && !impl_->read_stdout(c))
      break;
    else if (fd == c.err)
      impl_->read_stderr(c);
  }
  impl_->check(false);
}

void CoProcess::tick() { impl_->tick(); }
CoProcess::Clock::time_point CoProcess::wake_at() const { return impl_->wake_at(); }

void CoProcess::reload() { impl_->begin_reload(); }

void CoProcess::restart(std::string_view why) {
  if (impl_->stopped) return;
  if (!impl_->child) {
    impl_->restart_at = Clock::now();
    impl_->tick();
    return;
  }
  impl_->lose(std::string(why), true, true);
}

void CoProcess::stop(Millis grace) { impl_->stop(grace); }

std::vector<CoResult> CoProcess::take_results() {
  std::vector<CoResult> out;
  out.swap(impl_->results);
  return out;
}

std::size_t CoProcess::in_flight() const { return impl_->in_flight(); }
bool CoProcess::running() const { return !impl_->stopped && impl_->live() && !impl_->draining; }
pid_t CoProcess::pid() const { return impl_->child ? impl_->child->pid : -1; }
std::uint64_t CoProcess::starts() const { return impl_->starts; }
const std::string& CoProcess::name() const { return impl_->o.name; }

}  // namespace tobus
