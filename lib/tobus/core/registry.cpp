#include "tobus/core/registry.hpp"

#include <cereal/archives/json.hpp>
#include <sstream>

#include "tobus/util/json.hpp"

namespace tobus {

std::string registry_json(const RegistryRecord& r) {
  std::ostringstream out;
  {
    cereal::JSONOutputArchive ar(out, cereal::JSONOutputArchive::Options::NoIndent());
    ar(cereal::make_nvp("first_seen", r.first_seen), cereal::make_nvp("last_seen", r.last_seen));
  }
  return out.str();
}

bool parse_registry_json(const std::string& text, RegistryRecord& out) {
  // cereal trusts its input's shape; check it is an object before it sees the bytes.
  if (text.size() > 4096 || text.empty() || text.front() != '{' || !json_depth_within(text, 1)) return false;
  try {
    std::istringstream in(text);
    cereal::JSONInputArchive ar(in);
    RegistryRecord r;
    ar(cereal::make_nvp("first_seen", r.first_seen), cereal::make_nvp("last_seen", r.last_seen));
    out = r;
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

void Registry::note(const std::string& module, std::int64_t when_ms) {
  auto& s = seen_[module];
  if (s.record.first_seen == 0) s.record.first_seen = when_ms;
  if (when_ms > s.record.last_seen) s.record.last_seen = when_ms;
}

void Registry::flush(Connection& c) {
  const std::string key = keys_.modules();
  for (auto& [name, s] : seen_) {
    if (s.record.last_seen < s.written + 1000) continue;
    if (!s.loaded) {
      Reply old = c.command({"HGET", key, name});
      RegistryRecord r;
      if (old.is_string() && parse_registry_json(std::string(old.str()), r) && r.first_seen > 0 &&
          r.first_seen < s.record.first_seen)
        s.record.first_seen = r.first_seen;
      s.loaded = true;
    }
    c.command({"HSET", key, name, registry_json(s.record)});
    s.written = s.record.last_seen;
  }
}

}  // namespace tobus
