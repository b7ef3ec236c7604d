#pragma once
// JSON for --json output and input: compact objects, one per line, binary-safe payloads
// (`payload` when it is UTF-8 text, `payload_base64` otherwise), and the message envelope that
// `tobus-watch --json` writes and `tobus-send --json` reads.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tobus/core/message.hpp"

namespace tobus {

bool is_utf8(std::string_view s);

// The deepest nesting of arrays and objects tobus reads in any JSON: envelopes, records and hook
// answers are flat, and a parser that recurses must never meet 100,000 '['.
inline constexpr int max_json_depth = 32;

// True when `json` nests arrays and objects at most `max_depth` deep (strings are skipped, so a
// '[' in a string does not count). Check before a parser, cereal's included, sees the bytes.
bool json_depth_within(std::string_view json, int max_depth = max_json_depth);
std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);

// A JSON string literal for `text` (which should be UTF-8), quotes included.
std::string json_string(std::string_view text);

// Builds one JSON object; keys appear in the order they were added.
class JsonObject {
 public:
  JsonObject();
  ~JsonObject();
  JsonObject(JsonObject&&) noexcept;
  JsonObject& operator=(JsonObject&&) noexcept;

  JsonObject& add(std::string_view key, std::string_view value);
  JsonObject& add(std::string_view key, const char* value) { return add(key, std::string_view(value)); }
  JsonObject& add(std::string_view key, std::int64_t value);
  JsonObject& add(std::string_view key, int value) { return add(key, static_cast<std::int64_t>(value)); }
  JsonObject& add(std::string_view key, bool value);
  JsonObject& add(std::string_view key, const std::vector<std::string>& values);
  JsonObject& add(std::string_view key, const std::vector<std::pair<std::string, std::string>>& object);
  JsonObject& add_raw(std::string_view key, std::string_view json);  // an already-encoded value
  // `payload` as text when it is valid UTF-8, else `payload_base64`.
  JsonObject& add_payload(std::string_view payload);
  std::string str();  // closes the object; the builder is spent

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The JSON envelope of a message: id, route (array), from, created, reply, rc, trail, headers
// (object), payload or payload_base64.
JsonObject& add_message(JsonObject& o, const Message& m);

// Reads an envelope (extra keys, like a watch record's "event", are ignored). A missing route is
// allowed (the caller may supply one); `error` names what is wrong otherwise.
// `event`, if given, gets the record's "event" (a tobus-watch record), or empty.
std::optional<Message> message_from_json(std::string_view line, std::string& error, std::string* event = nullptr);

// A flat JSON object of string values (a state record); nullopt when `json` is not one.
std::optional<std::vector<std::pair<std::string, std::string>>> parse_flat_object(std::string_view json);

}  // namespace tobus
