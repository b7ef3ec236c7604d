// The suspect ledger of a module: reading, writing and deleting NS:suspect:NAME (suspects.hpp).
#include "tobus/module/suspects.hpp"

#include <algorithm>
#include <charconv>
#include <string_view>

namespace tobus {

int SuspectLedger::lone_ends(Connection& c, const std::string& entry_id) const {
  Reply r = c.command({"HGET", key_, entry_id});
  if (!r.is_string()) return 0;
  std::string_view v = r.str();
  auto space = v.find(' ');
  int before = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + std::min(space, v.size()), before);
  if (space == std::string_view::npos || ec != std::errc() || end != v.data() + space || before < 0)
    return 0;  // not ours to read: ignored
  before = std::min(before, max_lone_ends);
  return v.substr(space + 1) == instance_ ? before : before + 1;
}

std::string SuspectLedger::exhausted_reason(int lone_ends) {
  return "tobus-module ended " + std::to_string(lone_ends) +
         " times while running it alone (does its handler crash the module?)";
}

void SuspectLedger::record(Connection& c, const std::string& entry_id, const std::string& message_id,
                           long long deliveries, int lone_ends) const {
  Reply r = c.command({"HSET", key_, entry_id, std::to_string(lone_ends) + " " + instance_});
  if (r.is_error())
    report_.warn("{}: cannot record it as run alone in '{}': {}, running it anyway", message_id, key_, r.str());
  report_.info("{}: delivered {} times, run alone in case it is what ends the module", message_id, deliveries);
}

void SuspectLedger::flush(Connection& c) {
  if (unmark_.empty()) return;
  Args args{"HDEL", key_};
  for (const auto& id : unmark_) args.push_back(id);
  c.command(args);
  unmark_.clear();
}

}  // namespace tobus
