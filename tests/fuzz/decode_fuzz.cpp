// Fuzz target for the stream-entry decoder and the registry's JSON reader: whatever bytes another
// client writes into Redis, decoding must not crash, and what decodes must survive a round trip.
// Input: fields as NAME\0VALUE\0NAME\0VALUE...; an input starting with '{' is fed to the JSON reader.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "tobus/core/message.hpp"
#include "tobus/core/registry.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  if (!input.empty() && input.front() == '{') {
    tobus::RegistryRecord r;
    if (tobus::parse_registry_json(input, r)) {
      tobus::RegistryRecord again;
      if (!tobus::parse_registry_json(tobus::registry_json(r), again) || again.first_seen != r.first_seen ||
          again.last_seen != r.last_seen)
        std::abort();
    }
    return 0;
  }
  tobus::Fields fields;
  std::size_t pos = 0;
  while (pos < input.size()) {
    auto a = input.find('\0', pos);
    std::string name = input.substr(pos, a == std::string::npos ? std::string::npos : a - pos);
    std::string value;
    if (a != std::string::npos) {
      auto b = input.find('\0', a + 1);
      value = input.substr(a + 1, b == std::string::npos ? std::string::npos : b - a - 1);
      pos = b == std::string::npos ? input.size() : b + 1;
    } else {
      pos = input.size();
    }
    fields.emplace_back(std::move(name), std::move(value));
  }
  tobus::DecodeError error;
  auto m = tobus::decode(fields, error);
  if (!m) {
    if (error.reason.empty()) std::abort();  // a refusal always says why
    return 0;
  }
  auto again = tobus::decode(tobus::encode(*m), error);
  if (!again || !(*again == *m)) std::abort();
  return 0;
}
