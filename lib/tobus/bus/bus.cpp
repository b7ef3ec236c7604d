#include "tobus/bus/bus.hpp"


#include <chrono>
#include <algorithm>
#include <map>
#include <set>
#include <unordered_set>

#include "tobus/bus/router.hpp"
#include "tobus/core/error.hpp"
#include "tobus/core/registry.hpp"
#include "tobus/process/signals.hpp"
#include "tobus/redis/redis.hpp"
#include "tobus/redis/stream.hpp"
#include "tobus/util/duration.hpp"
#include "tobus/util/text.hpp"

namespace tobus {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto block_time = std::chrono::milliseconds(2000);
constexpr auto maintenance_every = std::chrono::milliseconds(1000);
constexpr auto dead_warning_every = std::chrono::seconds(60);

struct Plan {
  std::string entry_id;
  const Fields* raw = nullptr;
  std::optional<Message> message;
  std::vector<Write> writes;
  std::string error;  // the first write Redis refused: why
  std::vector<std::pair<std::size_t, std::string>> failed;  // each write Redis refused (index), why
};

// Entries of a batch that share a failure, for one warning line instead of one per entry.
struct Tally {
  std::size_t n = 0;
  std::string key, error;
  void add(const std::string& k, const std::string& e) {
    if (n++ == 0) {
      key = k;
      error = e;
    }
  }
};

class Router {
 public:
  Router(const RedisAddress& address, const Keys& keys, const BusOptions& options)
      : address_(address),
        keys_(keys),
        options_(options),
        consumer_(keys.bus(), std::string(Keys::bus_group), new_consumer_name()),
        registry_(keys),
        conn_(connect_with_retry(address, std::chrono::milliseconds(0))),
        client_id_(client_id(conn_)) {}

  void run() {
    ensure_group(conn_, keys_.bus(), Keys::bus_group);
    options_.report.info("routing on '{}' (namespace '{}') as {}", address_.display(), keys_.ns(),
                 consumer_.consumer());
    if (options_.on_ready) options_.on_ready();
    bool recover = false;
    while (signals::stop_count() == 0) {
      try {
        if (recover) {
          consumer_.start_read(conn_, options_.batch, block_time, true);
          recover = false;
        } else {
          if (Clock::now() >= next_maintenance_) maintain();
          consumer_.start_read(conn_, options_.batch, block_time);
        }
        std::optional<Reply> reply = await_reply(conn_, client_id_);
        if (!reply) break;  // stopped; the read abandoned
        std::vector<Entry> entries = consumer_.finish_read(conn_, *reply);
        reply.reset();  // the entries hold copies: a large payload is not kept twice
        handle(std::move(entries));
      } catch (const RedisError& e) {
        if (signals::stop_count() > 0) break;
        options_.report.warn("{}, reconnecting", e.what());
        try {
          connect(reconnect_budget);
        } catch (const RedisError&) {
          if (signals::stop_count() > 0) break;
          throw;
        }
        recover = true;
      }
    }
    if (options_.on_stopping && signals::stop_count() > 0) options_.on_stopping();
    options_.report.info("stopped");
  }

 private:
  void connect(std::chrono::milliseconds budget) {
    conn_ = connect_with_retry(address_, budget);
    client_id_ = client_id(conn_);
    known_inboxes_.clear();
  }

  void maintain() {
    next_maintenance_ = Clock::now() + maintenance_every;
    handle(consumer_.reclaim(conn_, options_.claim_after, options_.batch));
    trim_acknowledged(conn_, keys_.bus(), Keys::bus_group, options_.retain);
    for (const auto& inbox : known_inboxes_) trim_acknowledged(conn_, inbox, Keys::module_group, options_.retain);
    registry_.flush(conn_);
  }

  Plan plan(const Entry& e) {
    Plan p;
    p.entry_id = e.id;
    p.raw = &e.fields;
    const std::string bus = keys_.bus();
    if (e.deliveries > max_deliveries && !held_.contains(e.id)) {
      DecodeError ignored;
      auto m = decode(e.fields, ignored);
      p.writes = give_up(keys_, m ? &*m : nullptr, e.fields, bus, e.id,
                         "delivered " + std::to_string(e.deliveries) + " times without being acknowledged");
      return p;
    }
    DecodeError error;
    p.message = decode(e.fields, error);
    if (!p.message) {
      p.writes.push_back(dead_letter(keys_, e.fields, bus, e.id, error.reason));
      return p;
    }
    Message& m = *p.message;
    if (!m.from.empty() && valid_name(m.from) && m.from != "send" && m.from != "retry") registry_.note(m.from, now_ms());
    bool modified = false;
    if (options_.hooks.on_receive) {
      std::string reason;
      if (!options_.hooks.on_receive(m, reason)) {
        p.writes = give_up(keys_, &m, e.fields, bus, e.id,
                           "dropped by the receive hook" + (reason.empty() ? "" : ": " + reason));
        return p;
      }
      modified = true;
    }
    const std::vector<std::string>* members = nullptr;
    if (!m.route.empty() && m.route.front().starts_with('@')) members = &type_members_[m.route.front().substr(1)];
    p.writes = route(keys_, m, e.fields, modified, e.id, members).writes;
    return p;
  }

  // The members of every type an entry of the batch fans out to, in one round trip. The route's
  // first hop is read from the raw fields: the entries are decoded later.
  void load_types(const std::vector<Entry>& entries) {
    type_members_.clear();
    for (const auto& e : entries)
      for (const auto& [k, v] : e.fields)
        if (k == "route" && v.starts_with('@')) type_members_[v.substr(1, v.find(',') - 1)];
    if (type_members_.empty()) return;
    for (const auto& [type, members] : type_members_) conn_.append({"SMEMBERS", keys_.type(type)});
    for (auto& [type, members] : type_members_) {
      Reply r = conn_.read_reply();
      for (std::size_t i = 0; i < r.size(); ++i) {
        std::string_view member = r[i].str();
        if (valid_name(member)) members.emplace_back(member);
        else note_bad_member(type, member);
      }
      std::sort(members.begin(), members.end());
    }
  }

  // A member no module could be (written into NS:type:T by hand, or by another program) gets no
  // copies: they would wait in an inbox nobody serves. Said once per member.
  void note_bad_member(const std::string& type, std::string_view member) {
    if (bad_members_.size() >= 1000 || !bad_members_.insert(type + '\n' + std::string(member)).second) return;
    options_.report.warn("type '{}' has a member that is not a module name, '{}'; it gets no copies", type,
                 escape_text(member.substr(0, 100)));
  }

  // Appends the commands for `w`; returns how many replies they owe.
  int append_write(const Write& w) {
    if (w.is_hash) {
      Args args{"HSET", w.key};
      for (const auto& [k, v] : w.fields) {
        args.push_back(k);
        args.push_back(v);
      }
      conn_.append(args);
      conn_.append({"PEXPIRE", w.key, std::to_string(w.ttl_ms)});
      return 2;
    }
    int replies = 0;
    if (w.key.starts_with(keys_.inbox("")) && !known_inboxes_.contains(w.key)) {
      // Created at 0 so a module that attaches later still gets everything.
      conn_.append({"XGROUP", "CREATE", w.key, Keys::module_group, "0", "MKSTREAM"});
      known_inboxes_.insert(w.key);
      ++replies;
    }
    Args args{"XADD", w.key, "*"};
    args.reserve(3 + 2 * w.fields.size());
    for (const auto& [k, v] : w.fields) {
      args.push_back(k);
      args.push_back(v);
    }
    conn_.append(args);
    ++replies;
    // A reply stream's expiry is renewed once per batch, not once per result.
    if (w.is_reply && expired_.insert(w.key).second) {
      conn_.append({"PEXPIRE", w.key, std::to_string(options_.reply_ttl.count())});
      ++replies;
    }
    return replies;
  }

  // Writes every plan's entries in one pipeline; records in each plan which of its writes the
  // server refused (a key of the wrong type, out of memory) and why.
  void write_all(std::vector<Plan>& plans) {
    struct Owed {
      std::size_t plan, write;
      int replies;
    };
    std::vector<Owed> owed;
    for (std::size_t i = 0; i < plans.size(); ++i)
      for (std::size_t j = 0; j < plans[i].writes.size(); ++j) owed.push_back({i, j, append_write(plans[i].writes[j])});
    for (const auto& [i, j, n] : owed) {
      std::string refused;
      for (int k = 0; k < n; ++k) {
        Reply r = conn_.read_reply();
        if (r.is_error() && !r.str().starts_with("BUSYGROUP") && refused.empty()) refused = std::string(r.str());
      }
      if (refused.empty()) continue;
      if (plans[i].error.empty()) plans[i].error = refused;
      plans[i].failed.emplace_back(j, std::move(refused));
      // Its group may not have been created: create it again next time.
      known_inboxes_.erase(plans[i].writes[j].key);
    }
  }

  // The refusal of `p`'s dead letter, or null when it was written or `p` has none.
  const std::string* dead_letter_refused(const Plan& p) const {
    for (const auto& [j, why] : p.failed)
      if (p.writes[j].key == keys_.dead()) return &why;
    return nullptr;
  }
  // Whether the writes Redis refused were only results for waiting senders, beside a dead letter
  // that was written: the journey's end is recorded, the sender cannot be told.
  bool only_replies_failed(const Plan& p) const {
    bool dead = std::any_of(p.writes.begin(), p.writes.end(), [&](const Write& w) { return w.key == keys_.dead(); });
    return dead && !dead_letter_refused(p) &&
           std::all_of(p.failed.begin(), p.failed.end(), [&](const auto& f) { return p.writes[f.first].is_reply; });
  }

  // Whether `p` wrote a dead letter.
  bool wrote_dead_letter(const Plan& p) const {
    for (std::size_t j = 0; j < p.writes.size(); ++j)
      if (p.writes[j].key == keys_.dead() &&
          std::none_of(p.failed.begin(), p.failed.end(), [j](const auto& f) { return f.first == j; }))
        return true;
    return false;
  }

  // Entries whose dead letter Redis refused stay pending: reclaimed after --claim-after and tried
  // again. Warned about when it starts, then at most once a minute while it lasts: not per entry,
  // not per retry.
  void note_dead_letters(const Tally& held, bool written) {
    auto now = Clock::now();
    if (held.n > 0 && (!dead_failing_ || now >= next_dead_warning_)) {
      options_.report.warn("cannot write dead letters to '{}': {}; {} entr{} left pending on '{}', tried again every {}",
                   held.key, held.error, held_.size(), held_.size() == 1 ? "y" : "ies", keys_.bus(),
                   format_duration(options_.claim_after));
      next_dead_warning_ = now + dead_warning_every;
      dead_failing_ = true;
    } else if (held.n == 0 && written && dead_failing_) {
      options_.report.info("'{}' takes dead letters again", keys_.dead());
      dead_failing_ = false;
    }
  }

  void handle(std::vector<Entry> entries) {
    if (entries.empty()) return;
    load_types(entries);
    expired_.clear();
    std::vector<Plan> plans;
    plans.reserve(entries.size());
    for (const auto& e : entries) plans.push_back(plan(e));
    write_all(plans);
    // A write the server refused (a key of the wrong type, out of memory): dead-letter instead.
    // When the dead letter itself is what failed, the entry stays pending: never acknowledged
    // before its step is written.
    std::vector<Plan> retry;
    Tally rerouted, held, unreplied;
    std::vector<std::string> acks;
    for (auto& p : plans) {
      if (p.error.empty()) {
        acks.push_back(p.entry_id);
        continue;
      }
      const auto& [first, why] = p.failed.front();
      const Write& failed = p.writes[first];
      if (const std::string* refused = dead_letter_refused(p)) {
        held.add(keys_.dead(), *refused);
        held_.insert(p.entry_id);
        continue;
      }
      if (only_replies_failed(p)) {
        unreplied.add(failed.key, why);
        acks.push_back(p.entry_id);
        continue;
      }
      rerouted.add(failed.key, why);
      Plan d;
      d.entry_id = p.entry_id;
      d.raw = p.raw;
      d.writes = give_up(keys_, p.message ? &*p.message : nullptr, *p.raw, keys_.bus(), p.entry_id,
                         "cannot write to '" + failed.key + "': " + why);
      // The reply stream itself may be what failed: the dead letter must not wait on it.
      std::erase_if(d.writes, [&](const Write& w) {
        return w.is_reply && std::any_of(p.failed.begin(), p.failed.end(),
                                         [&](const auto& f) { return p.writes[f.first].key == w.key; });
      });
      retry.push_back(std::move(d));
    }
    if (rerouted.n > 0)
      options_.report.warn("cannot write {} entr{} to '{}': {}; dead-lettering {}", rerouted.n, rerouted.n == 1 ? "y" : "ies",
                   rerouted.key, rerouted.error, rerouted.n == 1 ? "it" : "them");
    if (!retry.empty()) write_all(retry);
    for (const auto& p : retry) {
      if (p.error.empty()) {
        acks.push_back(p.entry_id);
      } else if (const std::string* refused = dead_letter_refused(p)) {
        held.add(keys_.dead(), *refused);
        held_.insert(p.entry_id);
      } else {
        // Only the sender's result failed (give_up writes nothing else): the dead letter is in.
        unreplied.add(p.writes[p.failed.front().first].key, p.failed.front().second);
        acks.push_back(p.entry_id);
      }
    }
    if (unreplied.n > 0)
      options_.report.warn("cannot write {} result(s) to '{}': {}; dead-lettered without telling the sender", unreplied.n,
                   unreplied.key, unreplied.error);
    bool written = std::any_of(plans.begin(), plans.end(), [&](const Plan& p) { return wrote_dead_letter(p); }) ||
                   std::any_of(retry.begin(), retry.end(), [&](const Plan& p) { return wrote_dead_letter(p); });
    note_dead_letters(held, written);
    if (!acks.empty()) {
      for (const auto& id : acks) held_.erase(id);
      consumer_.append_ack(conn_, acks);
      Reply r = conn_.read_reply();
      if (r.is_error()) options_.report.warn("cannot acknowledge on '{}': {}", keys_.bus(), r.str());
    }
    if (options_.hooks.on_send) {
      for (const auto& p : plans)
        if (p.error.empty() && p.message)
          for (const auto& w : p.writes) options_.hooks.on_send(*p.message, w.key);
    }
  }

  const RedisAddress& address_;
  const Keys& keys_;
  const BusOptions& options_;
  GroupConsumer consumer_;
  Registry registry_;
  Connection conn_;
  long long client_id_;
  std::set<std::string> known_inboxes_;
  std::map<std::string, std::vector<std::string>> type_members_;  // of the batch being routed
  std::set<std::string> bad_members_;  // "TYPE\nMEMBER" already warned about
  std::set<std::string> expired_;  // reply streams whose expiry this batch renewed
  // Entries left pending because their dead letter could not be written: their deliveries count
  // retries of ours, not a crash, so they are not given up on as delivered too often.
  std::unordered_set<std::string> held_;
  bool dead_failing_ = false;  // the last dead letters we tried were refused
  Clock::time_point next_dead_warning_{};
  Clock::time_point next_maintenance_{};
};

}  // namespace

void Bus::run() {
  Router router(address_, keys_, options_);
  router.run();
}

}  // namespace tobus
