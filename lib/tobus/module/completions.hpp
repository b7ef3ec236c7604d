#pragma once
// What a module writes when it is done with entries of its inbox: their results and dead letters,
// pipelined, then one XACK for the entries whose writes were all taken. A write Redis refuses
// leaves its entry pending (taken again when reclaimed), and is said when it starts and then at
// most once a minute while it lasts; a join's bookkeeping (join_write) is told the same way.

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "tobus/bus/router.hpp"
#include "tobus/module/module.hpp"
#include "tobus/redis/redis.hpp"
#include "tobus/redis/stream.hpp"

namespace tobus {

// A finished entry: what to write, and that its inbox entry can then be acknowledged.
struct Completion {
  std::string entry_id;
  std::vector<Write> writes;
};

class Completions {
 public:
  // The completions of entries of `inbox`, read by `consumer`, for the module `options` names.
  Completions(const std::string& inbox, GroupConsumer& consumer, const ModuleOptions& options)
      : inbox_(inbox), consumer_(consumer), options_(options) {}

  bool empty() const { return completions_.empty(); }
  // Whether `entry_id` is done here, its result waiting to be written.
  bool completing(const std::string& entry_id) const;
  void complete(const std::string& entry_id, Write w);
  void complete(const std::string& entry_id, std::vector<Write> writes);

  // One pipeline: every result, then one XACK for the entries whose result was written.
  void write(Connection& c);

  // Runs a write of the join's bookkeeping. Refused (a key of the wrong type, out of memory), it is
  // done again later: a part's inbox entry stays pending and is reclaimed, a group's lock lapses
  // and the sweep takes the group again. Returns whether it was written.
  bool join_write(const std::function<void()>& write);

 private:
  void note_refused(const std::string& what, std::string_view key);

  const std::string& inbox_;
  GroupConsumer& consumer_;
  const ModuleOptions& options_;
  std::vector<Completion> completions_;
  // The key whose writes Redis refused, until one is taken again (join_records for a join's
  // bookkeeping); empty while writes go through.
  std::string failing_key_;
  std::chrono::steady_clock::time_point next_write_warning_{};
};

}  // namespace tobus
