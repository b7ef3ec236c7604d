// tobus-module --once: one message run here through the same JobRun as the module, with no Redis,
// and what the module would do with its result.
#include "tobus/process/once.hpp"

#include <string_view>
#include <utility>

#include "tobus/core/error.hpp"
#include "tobus/process/job_run.hpp"
#include "tobus/process/runner.hpp"
#include "tobus/process/service_detail.hpp"
#include "tobus/process/signals.hpp"
#include "tobus/util/io.hpp"
#include "tobus/util/text.hpp"

namespace tobus {
namespace {

using namespace service_detail;

// The handler --once runs, chosen as the module chooses it: the pool's pick, or COMMAND (found on
// PATH). Without `argv` (no handler: pass-through, or a pick that failed) `outcome` is already
// what the job made of the message.
struct OnceHandler {
  std::vector<std::string> argv;
  JobResult outcome;
};

// The message: a new id, at hop `module`, then the -t hops, with the -H headers and -m payload.
Message once_message(const OnceOptions& o) {
  Message m;
  m.id = new_message_id();
  m.route.push_back(o.module);
  m.route.insert(m.route.end(), o.route.begin(), o.route.end());
  m.created_ms = now_ms();
  m.headers = o.headers;
  m.payload = o.payload;
  return m;
}

OnceHandler choose_handler(const OnceOptions& o, const Message& m) {
  OnceHandler h;
  if (!o.service.pool.empty()) {
    ServicePick p = pick(o.service.pool, m);
    if (p.ok())
      h.argv = std::move(p.argv);
    else
      h.outcome = {p.rc, {}, p.error, {}};
  } else if (!o.command.empty()) {
    std::string path = find_program(o.command.front());
    if (path.empty())
      throw Error(ErrorKind::usage, "cannot run '" + o.command.front() + "': command not found");
    h.argv = o.command;
    h.argv.front() = path;
  } else {
    h.outcome.payload = m.payload;  // no handler: pass-through, as the module does
  }
  return h;
}

// What the handler gets: our environment without its TOBUS_* variables, then those the module
// sets, with no bus (TOBUS_REDIS, TOBUS_NAMESPACE and TOBUS_JOB empty) and TOBUS_ONCE=1.
std::vector<std::string> once_env(const OnceOptions& o, const Message& m) {
  std::vector<std::string> env = inherited_environment([](std::string_view kv) { return kv.starts_with("TOBUS_"); });
  env.push_back("TOBUS_MODULE=" + o.module);
  for (const char* v : {"TOBUS_REDIS=", "TOBUS_NAMESPACE=", "TOBUS_JOB=", "TOBUS_ONCE=1"})
    env.emplace_back(v);
  auto more = message_env(m, 1);
  env.insert(env.end(), more.begin(), more.end());
  return env;
}

// Runs `argv` on `m` to its end, the framework's lines on `err_fd`; a stop signal ends the job and
// is re-raised.
JobResult run_job(const OnceOptions& o, const Message& m, std::vector<std::string> argv, int err_fd) {
  std::vector<std::string> env = once_env(o, m);
  signals::install();
  become_subreaper();
  JobRun job(o.service, JobSpec{std::move(argv), std::move(env), m.payload, job_dir_name(m.id, 1)},
             [err_fd](std::string_view line) { write_fully(err_fd, std::string(line) + "\n"); });
  JobResult r = job.wait([] { return signals::stop_count() > 0; });
  if (signals::stop_count() > 0) signals::reraise_stop();
  return r;
}

// How the module words a failure the framework has no better words for.
std::string describe_rc(int rc) {
  if (rc == rc_tempfail) return "the handler asked for a retry (75)";
  if (rc > 128 && rc < 128 + 65) return "handler killed by signal " + std::to_string(rc - 128);
  return "handler exited with " + std::to_string(rc);
}

// Why a job with rc != 0 failed: its error, or its exit code in words.
std::string failure(const JobResult& r) { return r.error.empty() ? describe_rc(r.rc) : r.error; }

// What the module would do with `r`: "would send to the bus: ...", "would retry: ..." or
// "would dead-letter: ...", with the reason and the last line of stderr.
std::string verdict(const OnceOptions& o, const JobResult& r) {
  if (r.rc == 0)
    return "would send to the bus: route " + (o.route.empty() ? std::string("ends here") : join_route(o.route)) +
           ", rc 0";
  std::string tail = last_line(r.stderr_tail);
  std::string detail = failure(r) + (tail.empty() ? "" : ": " + one_line(tail));
  return (r.rc == rc_tempfail ? "would retry: " : "would dead-letter: ") + detail;
}

// --dry-run: the verdict, then the message the module would send (or the hop that failed) field by
// field, one line each.
std::string describe(const OnceOptions& o, const Message& m, const JobResult& r) {
  std::string d = verdict(o, r) + "\n";
  d += "id: " + m.id + "\n";
  if (r.rc == 0) {
    d += "route: " + (o.route.empty() ? std::string("(ends here)") : join_route(o.route)) + "\n";
    d += "from: " + o.module + "\n";
  } else {
    d += "hop: " + o.module + "\n";
  }
  d += "rc: " + std::to_string(r.rc) + "\n";
  for (const auto& [k, v] : m.headers) d += "header " + k + ": " + one_line(v) + "\n";
  if (r.rc == 0) {
    d += "payload: " + std::to_string(r.payload.size()) + " bytes: " + one_line(r.payload) + "\n";
  } else {
    d += "error: " + one_line(failure(r)) + "\n";
    if (!r.stderr_tail.empty()) d += "stderr: " + one_line(r.stderr_tail) + "\n";
  }
  return d;
}

}  // namespace

int run_once(const OnceOptions& o, int out_fd, int err_fd) {
  if (!valid_name(o.module))
    throw Error(ErrorKind::usage, "bad module name '" + o.module + "': names are 1-64 of A-Z a-z 0-9 _ . -");
  check_service_options(o.service, !o.command.empty());
  Message m = once_message(o);
  OnceHandler h = choose_handler(o, m);
  JobResult r = h.argv.empty() ? std::move(h.outcome) : run_job(o, m, std::move(h.argv), err_fd);
  if (o.dry_run) {
    write_fully(out_fd, describe(o, m, r));
  } else {
    if (r.rc == 0) write_fully(out_fd, r.payload);
    write_fully(err_fd, verdict(o, r) + "\n");
  }
  return r.rc < 0 || r.rc > 255 ? exit_code::failed : r.rc;
}

}  // namespace tobus
