#pragma once
// Internal to tobus-state (not installed): what its verbs share. The verbs on records and their
// change events are in state.cpp, on modules, types and jobs in state_registry.cpp, on dead
// letters in state_dead.cpp; run_state (state.cpp) picks one.

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "tobus/core/registry.hpp"
#include "tobus/state/state.hpp"
#include "tobus/util/io.hpp"
#include "tobus/util/json.hpp"

namespace tobus::state_detail {

inline constexpr int read_batch = 500;  // keys or entries per round trip

std::optional<std::int64_t> int_of(std::string_view s);
JsonObject& add_opt(JsonObject& o, std::string_view key, const std::optional<std::int64_t>& v);
JsonObject& add_opt(JsonObject& o, std::string_view key, const std::string& v);  // "": null

// An error reply from reading `key`, which should hold a `want`: a clear line, exit 4 for a key
// of the wrong type (written by hand), 5 when the user may not read it (ACL), else exit 1.
[[noreturn]] void read_error(Connection& c, const ReplyView& r, std::string_view key, std::string_view want,
                             const std::string& doing);

// Every key matching `match` (SCAN; the same key may come twice, so a set).
std::set<std::string> scan_keys(Connection& c, const std::string& match, std::string_view type = {});

// --- the modules (state_registry.cpp), as `modules` shows them and `doctor` checks them

struct ModuleRow {
  std::string name;
  bool registered = false;
  std::optional<RegistryRecord> registry;                // nullopt: unregistered or unreadable
  std::optional<std::vector<ModuleInstance>> instances;  // nullopt: unreadable
  std::optional<std::int64_t> inbox, pending;            // XLEN (acknowledged history included), XPENDING
};
// One row per module, sorted by name: those in the registry and those with only an inbox, each
// with its instances, inbox length and pending count (pipelined in batches).
std::vector<ModuleRow> read_modules(Connection& c, const Keys& keys);

// What a row's instances add up to: how many are live, and when the module was last seen.
struct ModuleStatus {
  std::int64_t live = 0, seen = 0;
  bool seen_known = false;  // false: `seen` is 0 because its registry entry is unreadable
};
ModuleStatus module_status(const ModuleRow& row, std::int64_t now);

// What every verb runs with: where Redis is, the namespace, the options, where output goes.
class Verbs {
 public:
  Verbs(const RedisAddress& address, const Keys& keys, const StateOptions& o, int out)
      : address_(address), keys_(keys), o_(o), out_(out) {}

 protected:
  Connection connect() { return connect_with_retry(address_, Millis(0)); }
  void out(std::string_view s) { write_output(out_, s); }

  const RedisAddress& address_;
  const Keys& keys_;
  const StateOptions& o_;
  int out_;
};

// modules, types, jobs (state_registry.cpp)
int run_registry_verb(const RedisAddress& address, const Keys& keys, const StateOptions& o, int out);
// dead list, show, retry, purge (state_dead.cpp)
int run_dead_verb(const RedisAddress& address, const Keys& keys, const StateOptions& o, int out);

}  // namespace tobus::state_detail
