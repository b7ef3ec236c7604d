#pragma once
// The registry of modules that attached (the original's access modules): `NS:modules`, a hash of
// module name → {"first_seen":MS,"last_seen":MS}. Writes are batched: note() is cheap.

#include <cstdint>
#include <map>
#include <string>

#include "tobus/core/keys.hpp"
#include "tobus/redis/redis.hpp"

namespace tobus {

struct RegistryRecord {
  std::int64_t first_seen = 0;
  std::int64_t last_seen = 0;
};

// JSON for a registry value; parse returns false on anything malformed.
std::string registry_json(const RegistryRecord& r);
bool parse_registry_json(const std::string& text, RegistryRecord& out);

class Registry {
 public:
  explicit Registry(Keys keys) : keys_(std::move(keys)) {}
  void note(const std::string& module, std::int64_t when_ms);
  // Writes what changed since the last flush, at most once a second per module.
  void flush(Connection& c);

 private:
  struct State {
    RegistryRecord record;
    bool loaded = false;
    std::int64_t written = 0;  // last_seen as last written
  };
  Keys keys_;
  std::map<std::string, State> seen_;
};

}  // namespace tobus
