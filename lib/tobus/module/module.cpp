// The module's Worker: its read loop (read, take over, keep fresh), the dispatch of each entry to
// its handler (a callback, a command per message, a co-process), retries, joins, and holding the
// others back while a suspect runs alone. Beside it: the writes of finished entries and their
// acknowledgement (completions.cpp), the records it keeps (records.cpp), the suspect ledger
// (suspects.cpp) and joins (join.cpp).
#include "tobus/module/module.hpp"

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <unordered_map>
#include <unordered_set>

#include "tobus/bus/router.hpp"
#include "tobus/core/error.hpp"
#include "tobus/module/completions.hpp"
#include "tobus/module/join.hpp"
#include "tobus/module/records.hpp"
#include "tobus/module/suspects.hpp"
#include "tobus/process/coprocess.hpp"
#include "tobus/process/job_run.hpp"
#include "tobus/process/pool.hpp"
#include "tobus/process/runner.hpp"
#include "tobus/process/signals.hpp"
#include "tobus/redis/redis.hpp"
#include "tobus/redis/stream.hpp"
#include "tobus/util/size.hpp"
#include "tobus/util/text.hpp"

namespace tobus {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
constexpr auto block_time = milliseconds(5000);
constexpr auto heartbeat_every = milliseconds(5000);
constexpr auto max_backoff = milliseconds(60'000);

struct Job {
  Entry entry;
  Message message;
  int attempt = 1;  // of the whole journey at this hop, redeliveries included
  int runs = 0;     // in this process
  std::unique_ptr<JobRun> run;  // a per-message command: its process, work dir, callbacks, limits
  bool pid_recorded = false;    // the handler's pid is in the job's state record
  Clock::time_point started{};
  Clock::time_point deadline = Clock::time_point::max();  // --timeout of a co-process message
  Clock::time_point retry_at = Clock::time_point::max();  // waiting for a retry
  std::int64_t started_ms = 0;
  std::optional<ReadyGroup> group;  // a joined group: no inbox entry of its own
  std::uint64_t tag = 0;             // given to the co-process, until it answers
  // Delivered before and never answered: its last holder ended (or went silent) with it in hand,
  // maybe because of it. It runs alone until one run of its handler has ended; see start_entry.
  bool suspect = false;
  int lone_ends = 0;  // instances that ended while running it alone, as NS:suspect:NAME says
  bool held = false;  // taken, not started: waiting for a suspect to run alone
};

class Worker {
 public:
  Worker(const RedisAddress& address, const Keys& keys, const ModuleOptions& options)
      : address_(address),
        keys_(keys),
        options_(options),
        inbox_(keys.inbox(options.name)),
        consumer_(inbox_, std::string(Keys::module_group), new_consumer_name()),
        completions_(inbox_, consumer_, options),
        records_(keys, options, consumer_.consumer()),
        suspects_(keys, options.name, consumer_.consumer(), options.report),
        cmd_(connect_with_retry(address, milliseconds(0))),
        reader_(connect_with_retry(address, milliseconds(0))),
        reader_id_(client_id(reader_)) {
    if (options_.join)
      joiner_.emplace(keys_, options_.name, consumer_.consumer(), *options_.join,
                      std::max(options_.claim_after, milliseconds(1000)));
    capacity_ = in_process() ? std::max(1, options_.batch) : std::max(1, options_.jobs);
    // Ours (TOBUS_*) are set per message.
    base_env_ = inherited_environment([](std::string_view kv) { return kv.starts_with("TOBUS_"); });
    base_env_.push_back("TOBUS_MODULE=" + options_.name);
    for (auto& kv : redis_environment(address_, options_.pass_redis_password)) base_env_.push_back(std::move(kv));
    base_env_.push_back("TOBUS_NAMESPACE=" + keys_.ns());
    if (options_.mode != ModuleOptions::Mode::per_message && !options_.command.empty()) {
      CoProcessOptions co;
      co.argv = options_.command;
      co.env = base_env_;
      co.mode = options_.mode == ModuleOptions::Mode::framed ? CoProcessOptions::Mode::framed
                                                              : CoProcessOptions::Mode::lines;
      co.reload_on = options_.reload_on;
      co.max_in_flight = static_cast<std::size_t>(std::max(64, options_.batch));
      co.max_answer = options_.max_payload;
      co.name = options_.name;
      co.report = options_.report;
      capacity_ = static_cast<int>(co.max_in_flight);
      co_ = std::make_unique<CoProcess>(std::move(co));
    }
  }

  void run() {
    ensure_group(cmd_, inbox_, Keys::module_group);
    for (const auto& type : options_.types) {
      // Refused (an ACL without this type, a key of another kind): said, not ignored: the module
      // would never get the type's copies.
      Reply r = cmd_.command({"SADD", keys_.type(type), options_.name});
      if (r.is_error()) throw_reply_error(r, "join type '" + type + "'");
    }
    records_.mark_started();
    heartbeat();
    options_.report.info("module '{}' attached on '{}' as {}", options_.name, address_.display(), consumer_.consumer());
    if (options_.on_ready) options_.on_ready();
    bool killed = false, told_stopping = false;
    for (;;) {
      if (signals::stop_count() > 0 && !told_stopping) {
        told_stopping = true;
        if (options_.on_stopping) options_.on_stopping();
      }
      if (signals::stop_count() >= 2 && !killed) {
        killed = true;
        for (auto& j : jobs_)
          if (j.run) j.run->kill();
        if (co_) co_->stop(Millis(0));
        options_.report.warn("killed {} running handler(s); their messages stay pending for redelivery",
                             running());
        break;
      }
      bool stopping = signals::stop_count() > 0;
      if (stopping && !read_outstanding_ && running() == 0) break;
      try {
        step(stopping);
      } catch (const RedisError& e) {
        // Stopping without Redis: what is in flight stays pending and is redelivered.
        if (signals::stop_count() > 0) break;
        options_.report.warn("{}, reconnecting", e.what());
        try {
          reconnect();
        } catch (const RedisError&) {
          if (signals::stop_count() > 0) break;
          throw;
        }
      }
    }
    if (co_) co_->stop();
    try {
      if (!completions_.empty()) completions_.write(cmd_);
      // Handlers killed by a second signal did not end the module: not a sign of a bad message.
      for (const auto& j : jobs_)
        if (j.suspect && !j.held) suspects_.done_with(j.entry.id);
      suspects_.flush(cmd_);
      records_.detach(cmd_);
    } catch (const RedisError& e) {
      options_.report.warn("{}", e.what());
    }
    if (!jobs_.empty())
      options_.report.info("{} message(s) left pending for redelivery", jobs_.size());
    options_.report.info("module '{}' detached", options_.name);
  }

 private:
  // No command and no pool: the callback `handler`, or pass-through.
  bool in_process() const { return options_.command.empty() && options_.service.pool.empty(); }

  int running() const {
    return static_cast<int>(std::count_if(jobs_.begin(), jobs_.end(), [](const Job& j) {
      return j.retry_at == Clock::time_point::max() && !j.held;
    }));
  }
  bool suspect_in_hand() const {
    return std::any_of(jobs_.begin(), jobs_.end(), [](const Job& j) { return j.suspect; });
  }
  int free_slots() const {
    if (co_ && !co_->can_submit()) return 0;
    // Nothing is read or taken over while a suspect waits or runs: it runs alone.
    if (suspect_in_hand()) return 0;
    // Jobs waiting for a retry do not hold a slot, but do bound how much is in hand.
    int in_hand = static_cast<int>(jobs_.size());
    if (in_hand >= capacity_ + 1024) return 0;
    return std::max(0, capacity_ - running());
  }

  void reconnect() {
    cmd_ = connect_with_retry(address_, reconnect_budget);
    reader_ = connect_with_retry(address_, reconnect_budget);
    reader_id_ = client_id(reader_);
    read_outstanding_ = false;
    // Entries the lost read delivered to us are pending under our name: take them back.
    consumer_.start_read(cmd_, capacity_ + 1024, milliseconds(0), true);
    Reply r = cmd_.read_reply();
    start_entries(consumer_.finish_read(cmd_, r));
  }

  void heartbeat() {
    next_heartbeat_ = Clock::now() + heartbeat_every;
    records_.heartbeat(cmd_, running());
  }

  void maintain() {
    auto now = Clock::now();
    if (now >= next_heartbeat_) heartbeat();
    if (now >= next_refresh_) {
      next_refresh_ = now + std::max(milliseconds(200), options_.claim_after / 3);
      std::vector<std::string> ids;
      for (const auto& j : jobs_)
        if (!j.group) ids.push_back(j.entry.id);
      consumer_.refresh(cmd_, ids);
    }
    if (joiner_ && now >= next_sweep_ && signals::stop_count() == 0) {
      next_sweep_ = now + milliseconds(1000);
      for (const auto& j : jobs_)
        if (j.group) joiner_->refresh(cmd_, *j.group);
      if (!suspect_in_hand())
        for (auto& g : joiner_->sweep(cmd_)) start_group(std::move(g));
    }
    if (now >= next_reclaim_ && signals::stop_count() == 0) {
      next_reclaim_ = now + std::max(milliseconds(200), options_.claim_after / 2);
      // An entry taken over is a suspect (it was delivered before) and runs alone: one at a time,
      // rather than a batch that would sit here idle while each runs alone, and die with us if one
      // of them crashes the module. The next is looked for as soon as this one is done with.
      if (free_slots() > 0) {
        auto entries = consumer_.reclaim(cmd_, options_.claim_after, 1);
        bool found = !entries.empty();
        start_entries(std::move(entries));
        if (found && !suspect_in_hand()) next_reclaim_ = now;
      }
    }
  }

  void step(bool stopping) {
    maintain();
    if (!stopping && !read_outstanding_ && free_slots() > 0) {
      consumer_.start_read(reader_, std::min(free_slots(), std::max(1, options_.batch)), block_time);
      read_outstanding_ = true;
      unblocked_ = false;
    }
    if (stopping && read_outstanding_ && !unblocked_) {
      unblocked_ = true;
      // Refused (an ACL without CLIENT ID or CLIENT UNBLOCK): the read is abandoned rather than
      // waited out; what it would still deliver stays pending under our name and is reclaimed.
      if (reader_id_ < 0 || cmd_.command({"CLIENT", "UNBLOCK", std::to_string(reader_id_)}).is_error())
        read_outstanding_ = false;
    }
    start_held();
    wait_and_pump();
    check_jobs();
    suspects_.flush(cmd_);
    if (!completions_.empty()) completions_.write(cmd_);
  }

  void wait_and_pump() {
    std::vector<pollfd> fds;
    std::vector<std::pair<Job*, std::size_t>> owners;  // a job and its first entry in fds
    fds.push_back({signals::fd(), POLLIN, 0});
    fds.push_back({read_outstanding_ ? reader_.fd() : -1, POLLIN, 0});
    auto now = Clock::now();
    auto wake = now + milliseconds(1000);
    wake = std::min({wake, next_heartbeat_, next_refresh_, next_reclaim_});
    if (joiner_) wake = std::min(wake, next_sweep_);
    if (co_) wake = std::min(wake, co_->wake_at());
    const bool alone = suspect_in_hand();  // no retry starts meanwhile
    for (auto& j : jobs_) {
      if (!alone) wake = std::min(wake, j.retry_at);
      wake = std::min(wake, j.deadline);
      if (!j.run) continue;
      wake = std::min(wake, j.run->wake_at());
      owners.emplace_back(&j, fds.size());
      j.run->add_pollfds(fds);
    }
    const std::size_t co_first = fds.size();
    if (co_) co_->add_pollfds(fds);
    // A reply already parsed must not wait for the socket.
    std::unique_ptr<Reply> reply;
    if (read_outstanding_ && reader_.take_reply(reply)) {
      on_read(std::move(reply));
      return;
    }
    int timeout = static_cast<int>(
        std::max<long long>(0, std::chrono::duration_cast<milliseconds>(wake - now).count() + 1));
    int n = poll(fds.data(), fds.size(), timeout);
    if (n < 0 && errno != EINTR) throw Error(ErrorKind::failed, "poll failed");
    if (n <= 0) return;
    if (fds[0].revents) signals::drain();
    if (co_) co_->handle(fds, co_first);
    for (auto [job, first] : owners) job->run->handle(fds, first);
    if (fds[1].revents) {
      reader_.read_available();
      if (reader_.take_reply(reply)) on_read(std::move(reply));
    }
  }

  void on_read(std::unique_ptr<Reply> reply) {
    read_outstanding_ = false;
    std::vector<Entry> entries = consumer_.finish_read(reader_, *reply);
    reply.reset();  // the entries hold copies: a large payload is not kept twice
    start_entries(std::move(entries));
  }

  void start_entries(std::vector<Entry> entries) {
    for (auto& e : entries) {
      if (in_hand_.contains(e.id) || completions_.completing(e.id)) continue;  // already running or done here
      start_entry(std::move(e));
    }
  }

  void start_entry(Entry e) {
    DecodeError error;
    auto m = decode(e.fields, error);
    if (!m) {
      completions_.complete(e.id, dead_letter(keys_, e.fields, inbox_, e.id, error.reason));
      return;
    }
    if (m->route.empty() || m->route.front() != options_.name) {
      completions_.complete(e.id, give_up(keys_, &*m, e.fields, inbox_, e.id,
                                          "route '" + join_route(m->route) + "' does not start with '" +
                                              options_.name + "'"));
      return;
    }
    if (joiner_ && joiner_->joins(*m)) {
      // Stored as a part (its entry acknowledged with it); handled when its group is ready.
      std::optional<ReadyGroup> ready;
      if (!completions_.join_write([&] { ready = joiner_->add(cmd_, inbox_, e, *m); })) return;  // left pending
      if (ready) start_group(std::move(*ready));
      return;
    }
    Job j;
    // Read before the job is in hand: a lost connection here leaves the entry pending, not stuck.
    if (e.deliveries > 1 && e.deliveries <= max_deliveries) j.lone_ends = suspects_.lone_ends(cmd_, e.id);
    j.attempt = static_cast<int>(std::min<long long>(e.deliveries, 1'000'000));
    j.entry = std::move(e);
    Fields().swap(j.entry.fields);  // decoded into the message: not kept twice
    j.message = std::move(*m);
    in_hand_.insert(j.entry.id);
    jobs_.push_back(std::move(j));
    Job& job = jobs_.back();
    if (job.entry.deliveries > max_deliveries) {
      finish(job, -1, {},
             "delivered " + std::to_string(job.entry.deliveries) +
                 " times without an answer (does its handler crash the module?)");
      return;
    }
    if (job.entry.deliveries > 1) {
      // A suspect: whoever had it before ended (or went silent) without answering, a crash of the
      // module perhaps, and this entry perhaps the cause. Run alone, it cannot take innocent
      // messages down with it, and the instance records it in NS:suspect:NAME before it starts
      // it. So when it comes round again still recorded by another instance, that instance ended
      // while running it alone; after max_lone_ends of those it is dead-lettered, not after
      // max_deliveries crashes (suspects.hpp).
      if (SuspectLedger::exhausted(job.lone_ends)) {
        suspects_.done_with(job.entry.id);
        finish(job, -1, {}, SuspectLedger::exhausted_reason(job.lone_ends));
        return;
      }
      job.suspect = true;
    }
    if (suspect_in_hand()) {
      // Entries a read brings while a suspect waits or runs wait for it too.
      job.held = true;
      return;
    }
    launch(job);
  }

  // Starts the jobs held back for a suspect: the suspect once no other handler runs, the others
  // once it is done with.
  void start_held() {
    if (signals::stop_count() > 0) return;
    for (auto& j : jobs_)
      if (j.suspect) {
        if (j.held && running() == 0) launch(j);
        return;
      }
    for (auto it = jobs_.begin(); it != jobs_.end();) {
      Job& j = *it++;  // launch may end the job and erase it
      if (j.held) launch(j);
    }
  }

  void start_group(ReadyGroup g) {
    if (g.message.failure) {
      options_.report.warn("{}: {}", g.message.id, g.message.failure->error);
      completions_.join_write([&] { joiner_->finish(cmd_, g, g.message); });
      return;
    }
    Job j;
    j.message = g.message;
    j.group = std::move(g);
    jobs_.push_back(std::move(j));
    launch(jobs_.back());
  }

  void launch(Job& job) {
    // Recorded before it starts: if this run ends the module, the next instance knows.
    if (job.suspect) suspects_.record(cmd_, job.entry.id, job.message.id, job.entry.deliveries, job.lone_ends);
    job.held = false;
    job.retry_at = Clock::time_point::max();
    job.started = Clock::now();
    job.started_ms = now_ms();
    ++job.runs;
    if (in_process()) {
      Outcome o = options_.handler ? options_.handler(job.message, job.attempt)
                                   : Outcome::ok(job.message.payload);
      finish(job, o.rc, std::move(o.payload), std::move(o.error));
      return;
    }
    if (co_) {
      job.tag = ++next_tag_;
      by_tag_[job.tag] = &job;
      co_->submit(job.tag, job.message.payload);
      if (options_.timeout) job.deadline = job.started + *options_.timeout;
      return;
    }
    const Message& m = job.message;
    std::vector<std::string> argv = options_.command;
    if (!options_.service.pool.empty()) {
      // Looked up per message: a service dropped into the pool is used at once.
      ServicePick p = pick(options_.service.pool, m);
      if (!p.ok()) {
        finish(job, p.rc, {}, std::move(p.error));
        return;
      }
      argv = std::move(p.argv);
    }
    std::vector<std::string> env = base_env_;
    std::vector<std::string> shadowed;
    for (auto& e : message_env(m, job.attempt, &shadowed)) env.push_back(std::move(e));
    for (const auto& key : shadowed)
      options_.report.warn("{}: header '{}' is {} too, set by an earlier header; the handler does not see it",
                           m.id, escape_text(key), header_env_name(key));
    env.push_back("TOBUS_JOB=job:" + m.id);
    if (job.group)
      for (auto& e : Joiner::env(*job.group)) env.push_back(std::move(e));
    job.run = std::make_unique<JobRun>(
        options_.service, JobSpec{std::move(argv), std::move(env), m.payload, job_dir_name(m.id, job.attempt)},
        [id = m.id, &report = options_.report](std::string_view line) { report.warn("{}: {}", id, line); });
    job.pid_recorded = job.run->handler_pid() > 0;  // else once --before has ended
    records_.job_running(cmd_, m, job.attempt, job.started_ms, *job.run);
  }

  void check_jobs() {
    auto now = Clock::now();
    bool child = signals::take_child();
    if (co_) {
      if (signals::take_hup()) co_->reload();
      if (now >= co_->wake_at()) co_->tick();
      for (auto& r : co_->take_results()) {
        auto it = by_tag_.find(r.tag);
        if (it == by_tag_.end()) continue;  // timed out meanwhile
        Job& j = *it->second;
        by_tag_.erase(it);
        j.tag = 0;
        j.deadline = Clock::time_point::max();
        finish_or_forget(j, r.rc, std::move(r.payload), std::move(r.error), std::move(r.stderr_tail));
      }
    }
    const bool alone = suspect_in_hand();  // no retry starts while a suspect waits or runs
    for (auto it = jobs_.begin(); it != jobs_.end();) {
      Job& j = *it++;
      if (j.retry_at != Clock::time_point::max()) {
        if (now >= j.retry_at && signals::stop_count() == 0 && !alone) launch(j);
        continue;
      }
      if (j.tag && now >= j.deadline) {
        // A co-process that sits on a message too long: the message fails, the process is
        // restarted, and what else it held is retried.
        by_tag_.erase(j.tag);
        j.tag = 0;
        j.deadline = Clock::time_point::max();
        finish_or_forget(j, rc_timeout, {}, "timed out after " + format_duration(*options_.timeout));
        co_->restart("a message timed out");
        continue;
      }
      if (!j.run) continue;
      j.run->tick(child);
      if (!j.pid_recorded && j.run->handler_pid() > 0) {
        j.pid_recorded = true;
        records_.job_pid(cmd_, j.message.id, j.run->handler_pid());
      }
      if (auto files = j.run->take_listing()) records_.job_files(cmd_, j.message.id, *files);
      if (!j.run->done()) continue;
      JobResult r = j.run->take_result();
      j.run.reset();
      finish_or_forget(j, r.rc, std::move(r.payload), std::move(r.error), std::move(r.stderr_tail));
    }
  }

  // finish(), for a job whose handler has ended. When Redis fails under it (the job's record, a
  // join's bookkeeping), the job is forgotten rather than left with no process, which nothing
  // would ever complete and a stop would wait for: its inbox entry, not acknowledged, is taken
  // again after the reconnect and handled anew; a joined group is swept again once its lock lapses.
  void finish_or_forget(Job& job, int rc, std::string out, std::string error, std::string tail = {}) {
    try {
      finish(job, rc, std::move(out), std::move(error), std::move(tail));
    } catch (const RedisError&) {
      if (job.tag) by_tag_.erase(job.tag);
      if (!job.group) in_hand_.erase(job.entry.id);
      for (auto it = jobs_.begin(); it != jobs_.end(); ++it)
        if (&*it == &job) {
          jobs_.erase(it);
          break;
        }
      throw;
    }
  }

  // The handler of `job` ended with `rc`: retry it, or pass the result or the failure on.
  void finish(Job& job, int rc, std::string out, std::string error, std::string tail = {}) {
    if (job.suspect) {
      // Its handler ended and the module did not: it is not what crashes the module. The others
      // go on, and the next entry to take over is looked for at once.
      job.suspect = false;
      suspects_.done_with(job.entry.id);
      next_reclaim_ = Clock::now();
    }
    auto duration = std::chrono::duration_cast<milliseconds>(Clock::now() - job.started).count();
    if (rc == rc_tempfail && job.runs <= options_.retries) {
      auto delay = options_.backoff * (1LL << std::min(job.runs - 1, 16));
      job.retry_at = Clock::now() + std::min<milliseconds>(delay, max_backoff);
      ++job.attempt;
      records_.count_retry();
      options_.report.info("{}: handler asked for a retry, attempt {} in {}", job.message.id, job.attempt,
                           format_duration(std::min<milliseconds>(delay, max_backoff)));
      if (!in_process() && !co_)
        records_.job_queued(cmd_, job.message.id, job.attempt,
                            now_ms() + std::min<milliseconds>(delay, max_backoff).count());
      return;
    }
    if (rc == 0 && out.size() > options_.max_payload) {
      rc = 1;
      error = "its result of " + std::to_string(out.size()) + " bytes is larger than " +
              format_size(options_.max_payload) + " (--max-payload)";
      std::string().swap(out);
    }
    Message& m = job.message;
    records_.count(m.id, rc, error);
    if (!in_process() && !co_) records_.job_ended(cmd_, m.id, rc, job.attempt);
    m.route.erase(m.route.begin());
    m.from = options_.name;
    m.trail.push_back({options_.name, rc, now_ms(), duration});
    if (rc == 0) {
      m.rc = 0;
      m.payload = std::move(out);
      std::string().swap(out);  // the move handed it the old payload's buffer
    } else {
      if (error.empty()) {
        if (rc == rc_tempfail) error = "still asking for a retry (75) after " + std::to_string(job.runs) + " runs";
        else if (rc > 128 && rc < 128 + 65) error = "handler killed by signal " + std::to_string(rc - 128);
        else error = "handler exited with " + std::to_string(rc);
      }
      std::string line = last_line(tail);
      options_.report.warn("{}: {}{}", m.id, error, line.empty() ? "" : ": " + line);
      m.rc = rc;
      m.failure = Failure{options_.name, rc, job.attempt, error, std::move(tail)};
    }
    if (job.group) {
      // The result and the end of the group in one script: a crash before it leaves the group
      // to be handled again, never half-done.
      if (!completions_.empty()) completions_.write(cmd_);
      completions_.join_write([&] { joiner_->finish(cmd_, *job.group, m); });
    } else {
      completions_.complete(job.entry.id, Write{keys_.bus(), encode(std::move(m)), false});
      in_hand_.erase(job.entry.id);
    }
    for (auto it = jobs_.begin(); it != jobs_.end(); ++it)
      if (&*it == &job) {
        jobs_.erase(it);
        break;
      }
  }

  const RedisAddress& address_;
  const Keys& keys_;
  const ModuleOptions& options_;
  std::string inbox_;
  GroupConsumer consumer_;
  Completions completions_;  // results waiting to be written, then acknowledged
  ModuleRecords records_;   // heartbeat, registry, module:NAME, job:ID
  SuspectLedger suspects_;  // NS:suspect:NAME
  Connection cmd_;
  Connection reader_;
  long long reader_id_;
  bool read_outstanding_ = false;
  bool unblocked_ = false;
  int capacity_ = 1;
  std::vector<std::string> base_env_;
  std::list<Job> jobs_;  // stable addresses: poll owners point into it
  std::unordered_set<std::string> in_hand_;
  Clock::time_point next_heartbeat_{}, next_refresh_{}, next_reclaim_{}, next_sweep_{};
  std::optional<Joiner> joiner_;
  std::unique_ptr<CoProcess> co_;
  std::uint64_t next_tag_ = 0;
  std::unordered_map<std::uint64_t, Job*> by_tag_;
};

}  // namespace

Module::Module(RedisAddress address, Keys keys, ModuleOptions options)
    : address_(std::move(address)), keys_(std::move(keys)), options_(std::move(options)) {
  if (!valid_name(options_.name))
    throw Error(ErrorKind::usage, "bad module name '" + options_.name + "': names are 1-64 of A-Z a-z 0-9 _ . -");
  check_service_options(options_.service, !options_.command.empty());
  if (!options_.service.pool.empty() && options_.mode != ModuleOptions::Mode::per_message)
    throw Error(ErrorKind::usage, "--pool runs a command per message: it excludes --lines and --framed");
  options_.service.timeout = options_.timeout;
  if (options_.max_payload == 0) throw Error(ErrorKind::usage, "--max-payload must be more than 0");
  auto& max_output = options_.service.max_output;
  if (max_output == 0 || max_output > options_.max_payload) max_output = options_.max_payload;
  if (!options_.command.empty()) {
    std::string path = find_program(options_.command.front());
    if (path.empty())
      throw Error(ErrorKind::usage, "cannot run '" + options_.command.front() + "': command not found");
    options_.command.front() = path;
  }
}

void Module::run() {
  Worker worker(address_, keys_, options_);
  worker.run();
}

}  // namespace tobus
