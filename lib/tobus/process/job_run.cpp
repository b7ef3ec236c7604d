// One job of the service framework (JobRun): its work dir, the --before, --on-change and --after
// callbacks around the handler, the handler's limits and timeout, and the keep policy; and the
// variables a handler gets for its message.
#include "tobus/process/job_run.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <set>

#include "tobus/core/error.hpp"
#include "tobus/process/pool.hpp"
#include "tobus/process/service_detail.hpp"
#include "tobus/process/signals.hpp"
#include "tobus/util/io.hpp"

namespace tobus {
namespace {

namespace fs = std::filesystem;
using namespace service_detail;
using Clock = JobRun::Clock;

void close_fd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

}  // namespace

std::vector<std::string> message_env(const Message& m, int attempt, std::vector<std::string>* shadowed) {
  std::vector<std::string> env;
  env.push_back("TOBUS_ID=" + m.id);
  env.push_back("TOBUS_FROM=" + m.from);
  env.push_back("TOBUS_ROUTE=" + join_route(m.route, 1));
  env.push_back("TOBUS_ATTEMPT=" + std::to_string(attempt));
  std::set<std::string> names;
  for (const auto& [k, v] : m.headers) {
    if (v.find('\0') != std::string::npos) continue;  // cannot be in an environment
    std::string name = header_env_name(k);
    if (!names.insert(name).second) {
      if (shadowed) shadowed->push_back(k);
      continue;
    }
    env.push_back(name + "=" + v);
  }
  return env;
}

// --- a job ---------------------------------------------------------------------------------------

struct JobRun::Callback {
  std::string option;  // --before, --on-change, --after: names it in log lines and errors
  std::unique_ptr<Process> process;
  Clock::time_point deadline = Clock::time_point::max();
  Clock::time_point drain_until = Clock::time_point::max();
  bool timed_out = false;
};

JobRun::JobRun(const ServiceOptions& options, JobSpec spec, LineSink log)
    : options_(options), spec_(std::move(spec)), log_(std::move(log)) {
  if (!log_) log_ = [](std::string_view) {};
  signals::ignore_sigpipe();  // a handler that closes its stdin early must not kill us
  if (spec_.argv.empty()) {
    fail(rc_not_found, "no handler to run");
    return;
  }
  // The handler runs in its work dir: a relative path to it must not depend on that.
  if (spec_.argv[0].find('/') != std::string::npos) spec_.argv[0] = absolute(spec_.argv[0]);
  if (!options_.workdir.empty()) {
    if (!make_workdir()) return;
    std::string input = dir_ + "/input";
    int fd = openat(dir_fd_, "input", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && write_fully(fd, spec_.input);
    int e = errno;
    if (fd >= 0) close(fd);
    if (!ok) {
      fail(exit_code::failed, "cannot write '" + input + "': " + std::strerror(e));
      return;
    }
    spec_.env.push_back("TOBUS_WORKDIR=" + dir_);
    listing_ = list_at(dir_fd_);
    listing_dirty_ = true;
    if (!options_.before.empty()) {
      phase_ = Phase::before;
      start_callback(options_.before, "before", 0);
      return;
    }
  }
  start_handler();
}

JobRun::~JobRun() {
  close_fd(dir_fd_);
  close_fd(base_fd_);
}

bool JobRun::make_workdir() {
  std::string base = absolute(options_.workdir);
  base_fd_ = open(base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (base_fd_ < 0 && errno == ENOENT) {
    std::error_code ec;
    fs::create_directories(fs::path(base).parent_path(), ec);
    if (mkdir(base.c_str(), 0700) == 0 || errno == EEXIST)
      base_fd_ = open(base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  }
  int e = errno;
  struct stat st {};
  std::string why;
  if (base_fd_ < 0)
    why = e == ELOOP ? "--workdir '" + base + "' is a symlink: name the directory itself"
                     : "cannot open --workdir '" + base + "': " + std::strerror(e);
  else if (fstat(base_fd_, &st) != 0)
    why = "cannot open --workdir '" + base + "': " + std::strerror(errno);
  else
    why = base_problem(base, st);
  if (!why.empty()) {
    fail(exit_code::failed, why);
    return false;
  }
  // A name already taken (the same message delivered twice at once, a dir left by a module killed
  // mid-job, or one planted by someone else in a shared base) is never reused.
  std::string name = spec_.job_id.empty() ? job_dir_name(new_message_id(), 1) : spec_.job_id;
  std::random_device rd;
  for (int i = 1;; ++i) {
    std::string n = name;
    if (i > 1 && i < 10) {
      n += "-" + std::to_string(i);
    } else if (i >= 10) {
      char hex[16];
      std::snprintf(hex, sizeof hex, "-%08x", static_cast<unsigned>(rd()));
      n += hex;
    }
    if (mkdirat(base_fd_, n.c_str(), 0700) == 0) {
      dir_name_ = std::move(n);
      break;
    }
    e = errno;
    if (e != EEXIST || i == 100) {
      fail(exit_code::failed, "cannot create the work dir '" + base + "/" + n + "': " + std::strerror(e));
      return false;
    }
  }
  dir_fd_ = openat(base_fd_, dir_name_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dir_fd_ < 0 || fstat(dir_fd_, &st) != 0 || st.st_uid != geteuid()) {
    close_fd(dir_fd_);
    fail(exit_code::failed, "the work dir '" + base + "/" + dir_name_ + "' was replaced after it was made");
    return false;
  }
  dir_ = base + "/" + dir_name_;
  return true;
}

void JobRun::start_handler() {
  phase_ = Phase::handler;
  ProcessOptions po;
  po.workdir = dir_;
  po.max_output = options_.max_output;
  po.max_memory = options_.max_memory;
  po.kill_after = options_.kill_after;
  int out = -1;
  if (!dir_.empty()) {
    po.stdout_path = dir_ + "/output";
    out = openat(dir_fd_, "output", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
      int e = errno;
      fail(exit_code::failed, "cannot create '" + po.stdout_path + "': " + std::strerror(e));
      return;
    }
    po.stdout_file = out;
    po.keep_stdout = options_.result.empty();
  }
  try {
    handler_ = std::make_unique<Process>(spec_.argv, spec_.env, spec_.input, po);
  } catch (const Error& e) {
    close_fd(out);
    fail(rc_not_found, e.what());
    return;
  }
  close_fd(out);
  spec_.input = {};
  auto now = Clock::now();
  if (options_.timeout) handler_deadline_ = now + *options_.timeout;
  if (!dir_.empty()) {
    // What --before did is part of the starting point, not a change.
    Listing l = list_at(dir_fd_);
    if (!(l == listing_)) {
      listing_ = std::move(l);
      listing_dirty_ = true;
    }
    next_watch_ = now + options_.watch_interval;
  }
}

void JobRun::start_callback(const std::string& command, std::string_view event, int rc) {
  auto cb = std::make_unique<Callback>();
  cb->option = event == "change" ? "--on-change" : "--" + std::string(event);
  std::vector<std::string> env = spec_.env;
  env.push_back("TOBUS_EVENT=" + std::string(event));
  env.push_back("TOBUS_LISTING=" + listing_.json());
  if (event == "after") env.push_back("TOBUS_RC=" + std::to_string(rc));
  ProcessOptions po;
  po.workdir = dir_;
  po.stdout_to_stderr = true;
  po.kill_after = options_.kill_after;
  try {
    cb->process = std::make_unique<Process>(std::vector<std::string>{"/bin/sh", "-c", command}, env, "", po);
  } catch (const Error& e) {
    log_(cb->option + ": " + e.what());
    callback_ = std::move(cb);
    on_callback_end();
    return;
  }
  cb->deadline = Clock::now() + options_.callback_timeout;
  callback_ = std::move(cb);
}

void JobRun::on_callback_end() {
  std::unique_ptr<Callback> cb = std::move(callback_);
  int rc = !cb->process ? rc_not_found : cb->timed_out ? rc_timeout : cb->process->status();
  std::string what = cb->timed_out
                         ? cb->option + " timed out after " + format_duration(options_.callback_timeout)
                         : cb->option + " exited with " + std::to_string(rc);
  cb.reset();  // reaps it
  if (phase_ == Phase::before) {
    if (rc != 0) {
      fail(rc, what);
      return;
    }
    start_handler();
    return;
  }
  if (rc != 0) log_(what + ", ignoring");
  if (phase_ == Phase::after) finish();
}

void JobRun::on_handler_end() {
  Process& p = *handler_;
  int rc = p.status();
  std::string error;
  if (!p.failure().empty()) {
    rc = exit_code::failed;
    error = p.failure();
  } else if (timed_out_) {
    rc = rc_timeout;
    error = "timed out after " + format_duration(*options_.timeout);
  }
  result_.rc = rc;
  result_.error = std::move(error);
  result_.stderr_tail = p.stderr_tail();
  if (rc == 0 && options_.result.empty()) result_.payload = p.take_stdout();
  handler_.reset();  // reaps what is left of its group
  phase_ = Phase::settle;
  if (!dir_.empty()) next_watch_ = Clock::time_point::min();  // one last look
}

void JobRun::watch(Clock::time_point now) {
  if (dir_.empty() || now < next_watch_) return;
  next_watch_ = phase_ == Phase::handler ? now + options_.watch_interval : Clock::time_point::max();
  Listing l = list_at(dir_fd_);
  if (l == listing_) return;
  listing_ = std::move(l);
  listing_dirty_ = true;
  if (!options_.on_change.empty()) change_pending_ = true;
}

void JobRun::start_after() {
  if (result_.rc == 0 && !options_.result.empty()) {
    std::string path = dir_ + "/" + options_.result;
    int fd = open_beneath(dir_fd_, options_.result);
    struct stat st {};
    if (fd < 0) {
      result_.rc = exit_code::failed;
      result_.error = errno == ENOENT
                          ? "no result file '" + options_.result + "' in the work dir '" + dir_ + "'"
                          : "cannot read the result file '" + path + "': " + std::strerror(errno);
    } else if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      result_.rc = exit_code::failed;
      result_.error = "the result '" + path + "' is not a regular file";
    } else if (options_.max_output > 0 && static_cast<std::uint64_t>(st.st_size) > options_.max_output) {
      result_.rc = exit_code::failed;
      result_.error = "the result file '" + options_.result + "' has " + std::to_string(st.st_size) +
                      " bytes, more than the output limit of " + std::to_string(options_.max_output);
    } else {
      std::string data;
      char buf[65536];
      ssize_t n;
      while ((n = read(fd, buf, sizeof buf)) != 0) {
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        data.append(buf, static_cast<std::size_t>(n));
      }
      if (n < 0) {
        result_.rc = exit_code::failed;
        result_.error = "cannot read the result file '" + path + "': " + std::strerror(errno);
      } else {
        result_.payload = std::move(data);
      }
    }
    if (fd >= 0) close(fd);
  }
  if (dir_.empty() || options_.after.empty()) {
    finish();
    return;
  }
  phase_ = Phase::after;
  start_callback(options_.after, "after", result_.rc);
}

void JobRun::fail(int rc, std::string error) {
  result_.rc = rc;
  result_.error = std::move(error);
  result_.payload.clear();
  start_after();
}

void JobRun::finish() {
  phase_ = Phase::done;
  if (dir_.empty()) return;
  bool keep =
      options_.keep == KeepWorkdir::always || (options_.keep == KeepWorkdir::failed && result_.rc != 0);
  if (!keep) {
    // Relative to the open dirs: a symlink planted in the work dir is removed, never followed.
    std::string why = empty_dir(openat(dir_fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), 0);
    if (why.empty() && unlinkat(base_fd_, dir_name_.c_str(), AT_REMOVEDIR) != 0) why = std::strerror(errno);
    if (!why.empty()) log_("cannot remove the work dir '" + dir_ + "': " + why + ", leaving it");
  }
  close_fd(dir_fd_);
  close_fd(base_fd_);
}

void JobRun::add_pollfds(std::vector<pollfd>& fds) {
  polled_.clear();
  if (handler_ && !handler_->exited() && handler_->stdin_fd() >= 0) handler_->pump_stdin();
  if (handler_) {
    if (handler_->stdin_fd() >= 0) polled_.push_back(handler_->stdin_fd());
    if (handler_->stdout_fd() >= 0) polled_.push_back(handler_->stdout_fd());
    if (handler_->stderr_fd() >= 0) polled_.push_back(handler_->stderr_fd());
  }
  if (callback_ && callback_->process && callback_->process->stderr_fd() >= 0)
    polled_.push_back(callback_->process->stderr_fd());
  for (int fd : polled_)
    fds.push_back({fd, static_cast<short>(handler_ && fd == handler_->stdin_fd() ? POLLOUT : POLLIN), 0});
}

void JobRun::handle(const std::vector<pollfd>& fds, std::size_t first) {
  auto polled = std::move(polled_);
  polled_.clear();
  for (std::size_t i = 0; i < polled.size() && first + i < fds.size(); ++i) {
    if (!fds[first + i].revents) continue;
    int fd = polled[i];
    if (handler_ && fd == handler_->stdin_fd()) {
      handler_->pump_stdin();
    } else if (handler_ && (fd == handler_->stdout_fd() || fd == handler_->stderr_fd())) {
      handler_->pump_output(fd, log_);
    } else if (callback_ && callback_->process && fd == callback_->process->stderr_fd()) {
      const std::string& option = callback_->option;
      callback_->process->pump_output(
          fd, [&](std::string_view line) { log_(option + ": " + std::string(line)); });
    }
  }
}

void JobRun::tick(bool child_exited) {
  // Each pass moves the job on by at most one step; a step that ends at once (a callback that
  // cannot start, an empty listing change) is followed in the same call.
  for (int pass = 0; pass < 8 && phase_ != Phase::done; ++pass) {
    auto now = Clock::now();
    Phase phase = phase_;
    bool had_callback = static_cast<bool>(callback_);

    if (callback_) {
      Callback& c = *callback_;
      Process& p = *c.process;
      if (!p.exited()) {
        if (now >= c.deadline && !c.timed_out) {
          c.timed_out = true;
          p.terminate();
        }
        p.tick(now);
        if ((child_exited || c.timed_out || p.drained()) && p.reap())
          c.drain_until = now + options_.drain_grace;
      }
      if (p.exited()) {
        if (!p.drained() && now >= c.drain_until) p.close_outputs();
        if (p.drained()) on_callback_end();
      }
    }

    if (handler_ && phase_ == Phase::handler) {
      Process& p = *handler_;
      if (!p.exited()) {
        if (now >= handler_deadline_ && !timed_out_) {
          timed_out_ = true;
          p.terminate();
        }
        p.tick(now);
        if ((child_exited || timed_out_ || p.drained() || !p.failure().empty()) && p.reap())
          drain_until_ = now + options_.drain_grace;
      }
      if (p.exited()) {
        if (!p.drained() && now >= drain_until_) p.close_outputs();
        if (p.drained()) on_handler_end();
      }
    }

    if (phase_ == Phase::handler || phase_ == Phase::settle) watch(now);
    if (!callback_ && change_pending_ && (phase_ == Phase::handler || phase_ == Phase::settle)) {
      change_pending_ = false;
      start_callback(options_.on_change, "change", 0);
    }
    if (phase_ == Phase::settle && !callback_ && !change_pending_) start_after();

    if (phase_ == phase && static_cast<bool>(callback_) == had_callback) break;
  }
}

Clock::time_point JobRun::wake_at() const {
  auto wake = Clock::time_point::max();
  if (phase_ == Phase::done) return wake;
  if (handler_) {
    if (!timed_out_) wake = std::min(wake, handler_deadline_);
    wake = std::min(wake, handler_->kill_at());
    if (handler_->exited()) wake = std::min(wake, drain_until_);
  }
  if (callback_ && callback_->process) {
    if (!callback_->timed_out) wake = std::min(wake, callback_->deadline);
    wake = std::min(wake, callback_->process->kill_at());
    if (callback_->process->exited()) wake = std::min(wake, callback_->drain_until);
  }
  if (phase_ == Phase::handler || phase_ == Phase::settle) wake = std::min(wake, next_watch_);
  return wake;
}

std::optional<std::string> JobRun::take_listing() {
  if (!listing_dirty_ || dir_.empty()) return std::nullopt;
  listing_dirty_ = false;
  return listing_.json();
}

pid_t JobRun::handler_pid() const { return handler_ && !handler_->exited() ? handler_->pid() : -1; }

void JobRun::kill() {
  if (handler_) handler_->signal_group(SIGKILL);
  if (callback_ && callback_->process) callback_->process->signal_group(SIGKILL);
}

JobResult JobRun::wait(const std::function<bool()>& stop) {
  std::vector<pollfd> fds;
  while (!done()) {
    if (stop && stop()) {
      kill();
      handler_.reset();
      callback_.reset();
      phase_ = Phase::done;
      result_ = {exit_code::failed, {}, "stopped", {}};
      break;
    }
    fds.clear();
    add_pollfds(fds);
    auto now = Clock::now();
    // Without a SIGCHLD to wake it, the loop looks at its processes at least every 20ms.
    auto wake = std::min(wake_at(), now + std::chrono::milliseconds(20));
    auto ms =
        std::max<long long>(0, std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count());
    int n = poll(fds.data(), fds.size(), static_cast<int>(ms));
    if (n > 0)
      handle(fds, 0);
    else
      polled_.clear();
    tick(true);
  }
  return take_result();
}

}  // namespace tobus
