#include "tobus/util/json.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace tobus {

bool is_utf8(std::string_view s) {
  std::size_t i = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  while (i < s.size()) {
    unsigned char c = p[i];
    std::size_t n;
    std::uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (std::size_t k = 1; k <= n; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += n + 1;
  }
  return true;
}

namespace {
constexpr char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    std::uint32_t v = (p[i] << 16) | (p[i + 1] << 8) | p[i + 2];
    out += b64[v >> 18];
    out += b64[(v >> 12) & 63];
    out += b64[(v >> 6) & 63];
    out += b64[v & 63];
  }
  if (i < bytes.size()) {
    std::uint32_t v = p[i] << 16;
    if (i + 1 < bytes.size()) v |= p[i + 1] << 8;
    out += b64[v >> 18];
    out += b64[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? b64[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      char c = text[i + k];
      if (c == '=' && i + 4 == text.size() && k >= 2) {
        v[k] = 0;
        ++pad;
        continue;
      }
      if (pad) return std::nullopt;  // data after '='
      v[k] = value(c);
      if (v[k] < 0) return std::nullopt;
    }
    std::uint32_t n = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out += static_cast<char>(n >> 16);
    if (pad < 2) out += static_cast<char>((n >> 8) & 0xff);
    if (pad < 1) out += static_cast<char>(n & 0xff);
  }
  return out;
}

struct JsonObject::Impl {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer{buffer};
  void key(std::string_view k) { writer.Key(k.data(), static_cast<rapidjson::SizeType>(k.size())); }
  void string(std::string_view s) {
    // Invalid UTF-8 would make invalid JSON: replace what is not text (payloads use base64 instead).
    if (is_utf8(s)) {
      writer.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
    } else {
      std::string clean;
      for (unsigned char c : s) clean += c < 0x80 ? static_cast<char>(c) : '?';
      writer.String(clean.data(), static_cast<rapidjson::SizeType>(clean.size()));
    }
  }
};

std::string json_string(std::string_view text) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
  return std::string(buffer.GetString(), buffer.GetSize());
}

JsonObject::JsonObject() : impl_(std::make_unique<Impl>()) { impl_->writer.StartObject(); }
JsonObject::~JsonObject() = default;
JsonObject::JsonObject(JsonObject&&) noexcept = default;
JsonObject& JsonObject::operator=(JsonObject&&) noexcept = default;

JsonObject& JsonObject::add(std::string_view key, std::string_view value) {
  impl_->key(key);
  impl_->string(value);
  return *this;
}
JsonObject& JsonObject::add(std::string_view key, std::int64_t value) {
  impl_->key(key);
  impl_->writer.Int64(value);
  return *this;
}
JsonObject& JsonObject::add(std::string_view key, bool value) {
  impl_->key(key);
  impl_->writer.Bool(value);
  return *this;
}
JsonObject& JsonObject::add(std::string_view key, const std::vector<std::string>& values) {
  impl_->key(key);
  impl_->writer.StartArray();
  for (const auto& v : values) impl_->string(v);
  impl_->writer.EndArray();
  return *this;
}
JsonObject& JsonObject::add(std::string_view key, const std::vector<std::pair<std::string, std::string>>& object) {
  impl_->key(key);
  impl_->writer.StartObject();
  for (const auto& [k, v] : object) {
    impl_->key(k);
    impl_->string(v);
  }
  impl_->writer.EndObject();
  return *this;
}
JsonObject& JsonObject::add_raw(std::string_view key, std::string_view json) {
  impl_->key(key);
  impl_->writer.RawValue(json.data(), json.size(), rapidjson::kObjectType);
  return *this;
}
JsonObject& JsonObject::add_payload(std::string_view payload) {
  if (is_utf8(payload)) return add("payload", payload);
  return add("payload_base64", base64_encode(payload));
}
std::string JsonObject::str() {
  impl_->writer.EndObject();
  return std::string(impl_->buffer.GetString(), impl_->buffer.GetSize());
}

JsonObject& add_message(JsonObject& o, const Message& m) {
  o.add("id", m.id);
  o.add("route", m.route);
  if (!m.from.empty()) o.add("from", m.from);
  if (m.created_ms) o.add("created", m.created_ms);
  if (!m.reply.empty()) o.add("reply", m.reply);
  o.add("rc", m.rc);
  if (!m.trail.empty()) {
    std::string trail = "[";
    for (const auto& h : m.trail) {
      if (trail.size() > 1) trail += ',';
      JsonObject hop;
      hop.add("hop", h.name).add("rc", h.rc).add("at", h.at_ms).add("duration_ms", h.duration_ms);
      trail += hop.str();
    }
    trail += "]";
    o.add_raw("trail", trail);
  }
  if (!m.headers.empty()) o.add("headers", m.headers);
  o.add_payload(m.payload);
  return o;
}

bool json_depth_within(std::string_view json, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < json.size(); ++i) {
    char c = json[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

namespace {

// The steps of message_from_json: each reads one member or group of members of the envelope, and
// on a bad one sets `error` and returns false.

// The line as a JSON object, within the depth limit.
bool parse_json_object(std::string_view line, rapidjson::Document& d, std::string& error) {
  if (!json_depth_within(line)) {
    error = "JSON nested deeper than " + std::to_string(max_json_depth) + " levels";
    return false;
  }
  d.Parse(line.data(), line.size());
  if (d.HasParseError()) {
    std::string why = rapidjson::GetParseError_En(d.GetParseError());
    if (!why.empty() && why.back() == '.') why.pop_back();
    error = "not JSON: " + why + " at offset " +
            std::to_string(d.GetErrorOffset());
    return false;
  }
  if (!d.IsObject()) {
    error = "not a JSON object";
    return false;
  }
  return true;
}

// A string member into `out`, if there is one.
bool read_string_member(const rapidjson::Value& d, const char* key, std::string& out, std::string& error) {
  auto it = d.FindMember(key);
  if (it == d.MemberEnd()) return true;
  if (!it->value.IsString()) {
    error = std::string("'") + key + "' is not a string";
    return false;
  }
  out.assign(it->value.GetString(), it->value.GetStringLength());
  return true;
}

// id, from, reply, and the record's event when asked for.
bool read_text_members(const rapidjson::Value& d, Message& m, std::string* event, std::string& error) {
  if (!read_string_member(d, "id", m.id, error) || !read_string_member(d, "from", m.from, error) ||
      !read_string_member(d, "reply", m.reply, error))
    return false;
  if (event && !read_string_member(d, "event", *event, error)) return false;
  if (!m.id.empty() && !valid_message_id(m.id)) {
    error = "bad message id";
    return false;
  }
  return true;
}

// route: a route string as -r takes it, or an array of hop names.
bool read_route_member(const rapidjson::Value& d, std::vector<std::string>& route, std::string& error) {
  auto it = d.FindMember("route");
  if (it == d.MemberEnd()) return true;
  if (it->value.IsString()) {
    std::string text(it->value.GetString(), it->value.GetStringLength());
    try {
      if (!text.empty()) route = parse_route(text);
    } catch (const std::exception& e) {
      error = e.what();
      return false;
    }
  } else if (it->value.IsArray()) {
    for (const auto& hop : it->value.GetArray()) {
      if (!hop.IsString() || !valid_name(std::string_view(hop.GetString(), hop.GetStringLength()))) {
        error = "bad hop in 'route'";
        return false;
      }
      route.emplace_back(hop.GetString(), hop.GetStringLength());
    }
  } else {
    error = "'route' is neither a string nor an array";
    return false;
  }
  return true;
}

// headers: an object of string values.
bool read_headers_member(const rapidjson::Value& d, std::vector<std::pair<std::string, std::string>>& headers,
                         std::string& error) {
  auto it = d.FindMember("headers");
  if (it == d.MemberEnd()) return true;
  if (!it->value.IsObject()) {
    error = "'headers' is not an object";
    return false;
  }
  for (const auto& h : it->value.GetObject()) {
    std::string k(h.name.GetString(), h.name.GetStringLength());
    if (!valid_name(k) || !h.value.IsString()) {
      error = "bad header '" + k.substr(0, 64) + "'";
      return false;
    }
    headers.emplace_back(k, std::string(h.value.GetString(), h.value.GetStringLength()));
  }
  return true;
}

// payload (text) or payload_base64 (bytes): exactly one of them.
bool read_payload_member(const rapidjson::Value& d, std::string& payload, std::string& error) {
  auto text = d.FindMember("payload");
  auto b64 = d.FindMember("payload_base64");
  if (text != d.MemberEnd() && b64 != d.MemberEnd()) {
    error = "both 'payload' and 'payload_base64'";
    return false;
  }
  if (text != d.MemberEnd()) {
    if (!text->value.IsString()) {
      error = "'payload' is not a string";
      return false;
    }
    payload.assign(text->value.GetString(), text->value.GetStringLength());
  } else if (b64 != d.MemberEnd()) {
    auto bytes = b64->value.IsString()
                     ? base64_decode(std::string_view(b64->value.GetString(), b64->value.GetStringLength()))
                     : std::nullopt;
    if (!bytes) {
      error = "'payload_base64' is not base64";
      return false;
    }
    payload = std::move(*bytes);
  } else {
    error = "no 'payload' or 'payload_base64'";
    return false;
  }
  return true;
}

}  // namespace

std::optional<Message> message_from_json(std::string_view line, std::string& error, std::string* event) {
  rapidjson::Document d;
  if (!parse_json_object(line, d, error)) return std::nullopt;
  Message m;
  if (!read_text_members(d, m, event, error) || !read_route_member(d, m.route, error) ||
      !read_headers_member(d, m.headers, error) || !read_payload_member(d, m.payload, error))
    return std::nullopt;
  return m;
}

std::optional<std::vector<std::pair<std::string, std::string>>> parse_flat_object(std::string_view json) {
  if (!json_depth_within(json, 1)) return std::nullopt;
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject()) return std::nullopt;
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& m : d.GetObject()) {
    std::string value;
    if (m.value.IsString()) value.assign(m.value.GetString(), m.value.GetStringLength());
    else if (m.value.IsInt64()) value = std::to_string(m.value.GetInt64());
    else if (m.value.IsBool()) value = m.value.GetBool() ? "true" : "false";
    else return std::nullopt;
    out.emplace_back(std::string(m.name.GetString(), m.name.GetStringLength()), std::move(value));
  }
  return out;
}

}  // namespace tobus
