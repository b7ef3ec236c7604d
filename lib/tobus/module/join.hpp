#pragma once
// Joins: a module started with --join collects the parts of a group — the copies one fan-out
// made, or N messages sharing a correlation id — durably in Redis, and runs its handler once
// when the group is complete, timed out, or short of branches that failed.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "tobus/core/keys.hpp"
#include "tobus/core/message.hpp"
#include "tobus/module/join_options.hpp"
#include "tobus/redis/redis.hpp"
#include "tobus/redis/stream.hpp"

namespace tobus {

// A group ready to be handled: the message to run the handler on (its payload the parts
// combined), or the failure to report instead.
struct ReadyGroup {
  std::string key;   // the join hash
  std::string lock;  // held while the handler runs
  Message message;
  int parts = 0, expected = 0;
  std::vector<std::string> missing;  // branches that did not arrive (fan-out index or message id)
};

class Joiner {
 public:
  Joiner(Keys keys, std::string module, std::string owner, JoinOptions options, std::chrono::milliseconds lock_ttl)
      : keys_(std::move(keys)), module_(std::move(module)), owner_(std::move(owner)), options_(options),
        lock_ttl_(lock_ttl) {}

  // Whether `m` belongs to a group this module joins (else it is handled on its own).
  bool joins(const Message& m) const;
  // Stores `m` as a part of its group and acknowledges its inbox entry, in one script; returns
  // the group when this part made it ready and we hold its lock.
  std::optional<ReadyGroup> add(Connection& c, const std::string& inbox, const Entry& entry, const Message& m);
  // Groups that became ready without a new part: timed out, branches failed, or left behind by
  // an instance that died while handling them. Bounded work per call.
  std::vector<ReadyGroup> sweep(Connection& c);
  // Keeps the lock of a group being handled.
  void refresh(Connection& c, const ReadyGroup& g);
  // Writes `result` to the bus and deletes the group, in one script.
  void finish(Connection& c, const ReadyGroup& g, const Message& result);

  // The handler's environment for a joined message.
  static std::vector<std::string> env(const ReadyGroup& g);

 private:
  std::optional<ReadyGroup> evaluate(Connection& c, const std::string& key);
  Keys keys_;
  std::string module_, owner_;
  JoinOptions options_;
  std::chrono::milliseconds lock_ttl_;
  std::string sweep_cursor_ = "0";
};

// Packs fields into one binary-safe string (netstring-like) and back.
std::string pack_fields(const Fields& fields);
std::optional<Fields> unpack_fields(std::string_view packed);

}  // namespace tobus
