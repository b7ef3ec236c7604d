// Writing the results of a module's finished entries and acknowledging them (completions.hpp).
#include "tobus/module/completions.hpp"

#include <algorithm>
#include <chrono>

#include "tobus/core/error.hpp"
#include "tobus/util/duration.hpp"

namespace tobus {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto write_warning_every = std::chrono::seconds(60);
// Stands for a join's bookkeeping (its keys vary by group) where a refused write names its key.
constexpr std::string_view join_records = "(join records)";

}  // namespace

bool Completions::join_write(const std::function<void()>& write) {
  try {
    write();
  } catch (const RedisError&) {
    throw;
  } catch (const Error& e) {
    note_refused(e.what(), join_records);
    return false;
  }
  if (failing_key_ == join_records) {
    options_.report.info("parts of groups are stored again");
    failing_key_.clear();
  }
  return true;
}

// A write Redis refused, to `key`: said when it starts and then at most once a minute while it
// lasts, not per entry or per retry. It lasts until a write to that same key is taken: other
// writes going through in between (results for the bus while the dead-letter stream refuses)
// do not end it.
void Completions::note_refused(const std::string& what, std::string_view key) {
  auto now = Clock::now();
  if (failing_key_ == key && now < next_write_warning_) return;
  failing_key_ = key;
  next_write_warning_ = now + write_warning_every;
  options_.report.error("{}; left pending, tried again after {}", what, format_duration(options_.claim_after));
}

bool Completions::completing(const std::string& entry_id) const {
  return std::any_of(completions_.begin(), completions_.end(),
                     [&](const Completion& c) { return c.entry_id == entry_id; });
}

void Completions::complete(const std::string& entry_id, Write w) {
  // Not `{entry_id, {std::move(w)}}`: an initializer list would copy the write (and its payload).
  Completion c{entry_id, {}};
  c.writes.push_back(std::move(w));
  completions_.push_back(std::move(c));
}

void Completions::complete(const std::string& entry_id, std::vector<Write> writes) {
  completions_.push_back({entry_id, std::move(writes)});
}

void Completions::write(Connection& cmd) {
  for (const auto& c : completions_) {
    for (const auto& w : c.writes) {
      Args args{"XADD", w.key, "*"};
      for (const auto& [k, v] : w.fields) {
        args.push_back(k);
        args.push_back(v);
      }
      cmd.append(args);
    }
  }
  std::vector<std::string> acks;
  std::size_t refused = 0;
  std::string key, error;
  bool recovered = false;  // a write to the key that refused earlier was taken
  for (const auto& c : completions_) {
    bool ok = true;
    for (const auto& w : c.writes) {
      Reply r = cmd.read_reply();
      if (!r.is_error()) {
        recovered = recovered || (!failing_key_.empty() && w.key == failing_key_);
        continue;
      }
      ok = false;
      if (refused++ == 0) {
        key = w.key;
        error = r.str();
      }
    }
    if (ok) acks.push_back(c.entry_id);
  }
  // Not acknowledged: those entries stay pending and are taken again when reclaimed. Said when
  // it starts and then at most once a minute while it lasts, not per entry or per retry.
  if (refused > 0) {
    std::size_t held = completions_.size() - acks.size();
    note_refused("cannot write " + std::to_string(refused) + " result(s) to '" + key + "': " + error + "; " +
                     std::to_string(held) + (held == 1 ? " entry" : " entries") + " on '" + inbox_ + "'",
                 key);
  } else if (recovered) {
    options_.report.info("results are written to '{}' again", failing_key_);
    failing_key_.clear();
  }
  completions_.clear();
  if (acks.empty()) return;
  consumer_.append_ack(cmd, acks);
  Reply r = cmd.read_reply();
  if (r.is_error()) options_.report.error("cannot acknowledge on '{}': {}", inbox_, r.str());
}

}  // namespace tobus
