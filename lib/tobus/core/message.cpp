#include "tobus/core/message.hpp"

#include <unistd.h>

#include <atomic>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <random>

#include "tobus/core/entry_fields.hpp"
#include "tobus/core/error.hpp"
#include "tobus/util/text.hpp"

namespace tobus {
namespace {

constexpr std::size_t max_name = 64;
constexpr std::size_t max_id = 200;
constexpr std::string_view header_prefix = "h:";

bool split_route(std::string_view text, std::vector<std::string>& out, std::string& bad) {
  out.clear();
  if (text.empty()) return true;
  std::size_t start = 0;
  for (;;) {
    auto comma = text.find(',', start);
    auto hop = text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (!valid_hop(hop)) {
      bad = std::string(hop);
      return false;
    }
    out.emplace_back(hop);
    if (comma == std::string_view::npos) return true;
    start = comma + 1;
  }
}

}  // namespace

bool parse_trail(std::string_view text, std::vector<Hop>& out) {
  out.clear();
  if (text.empty()) return true;
  std::size_t start = 0;
  for (;;) {
    auto comma = text.find(',', start);
    auto item = text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    // HOP:RC:MS:DURATION
    Hop h;
    std::string_view parts[4];
    std::size_t p = 0, pos = 0;
    for (; p < 4; ++p) {
      auto colon = item.find(':', pos);
      if (p < 3 && colon == std::string_view::npos) return false;
      parts[p] = item.substr(pos, p < 3 ? colon - pos : std::string_view::npos);
      pos = colon + 1;
    }
    if (!valid_name(parts[0]) || !to_int(parts[1], h.rc) || !to_int(parts[2], h.at_ms) ||
        !to_int(parts[3], h.duration_ms))
      return false;
    h.name = std::string(parts[0]);
    out.push_back(std::move(h));
    if (comma == std::string_view::npos) return true;
    start = comma + 1;
  }
}

std::string format_trail(const std::vector<Hop>& trail) {
  std::string out;
  for (const auto& h : trail) {
    if (!out.empty()) out += ',';
    out += h.name + ':' + std::to_string(h.rc) + ':' + std::to_string(h.at_ms) + ':' +
           std::to_string(h.duration_ms);
  }
  return out;
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > max_name) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string header_env_name(std::string_view key) {
  std::string out = "TOBUS_HEADER_";
  for (char c : key) {
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    out += alnum ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : '_';
  }
  return out;
}

std::pair<std::string, std::string> parse_header_option(std::string_view text) {
  auto eq = text.find('=');
  std::string_view key = text.substr(0, eq);
  if (eq == std::string_view::npos || !valid_name(key))
    throw Error(ErrorKind::usage,
                "bad header '" + std::string(text) + "': expected KEY=VALUE, KEY 1-64 of A-Z a-z 0-9 _ . -");
  return {std::string(key), std::string(text.substr(eq + 1))};
}

bool valid_hop(std::string_view hop) {
  return valid_name(hop) || (hop.size() > 1 && hop.front() == '@' && valid_name(hop.substr(1)));
}

bool valid_message_id(std::string_view id) {
  if (id.empty() || id.size() > max_id) return false;
  for (char c : id)
    if (c <= ' ' || c > '~') return false;
  return true;
}

std::vector<std::string> parse_route(std::string_view text) {
  std::vector<std::string> route;
  std::string bad;
  if (text.empty()) throw Error(ErrorKind::usage, "empty route");
  if (!split_route(text, route, bad))
    throw Error(ErrorKind::usage, "bad hop '" + bad + "' in route '" + std::string(text) +
                                      "': hops are NAME or @TYPE, names 1-64 of A-Z a-z 0-9 _ . -");
  return route;
}

std::string join_route(const std::vector<std::string>& route, std::size_t from) {
  std::string out;
  for (std::size_t i = from; i < route.size(); ++i) {
    if (i > from) out += ',';
    out += route[i];
  }
  return out;
}

namespace {

// What decode() has read of an entry so far.
struct MessageDecoding {
  Message m;
  Failure failure;  // kept only when the status says failed
  std::optional<Fanout> fan;
  Envelope envelope;
  bool have_route = false, have_payload = false;
  bool failed = false;
};

// `also`: one "REPLY ID" line per further waiting sender.
bool parse_also(std::string_view text, std::vector<std::pair<std::string, std::string>>& out) {
  std::string_view rest = text;
  while (!rest.empty()) {
    auto nl = rest.find('\n');
    auto line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    auto sp = line.find(' ');
    if (sp == std::string_view::npos || !valid_message_id(line.substr(sp + 1))) return false;
    out.emplace_back(std::string(line.substr(0, sp)), std::string(line.substr(sp + 1)));
  }
  return true;
}

// The message's own fields: route, payload, from, created, reply, trail, corr, also.
FieldRead read_message_field(const std::string& name, const std::string& value, MessageDecoding& d,
                             DecodeError& error) {
  Message& m = d.m;
  if (name == "route") {
    std::string bad;
    if (!split_route(value, m.route, bad)) return bad_field(error, "bad hop '" + bad.substr(0, 70) + "' in route");
    d.have_route = true;
  } else if (name == "payload") {
    m.payload = value;
    d.have_payload = true;
  } else if (name == "from") {
    m.from = value;
  } else if (name == "created") {
    if (!to_int(value, m.created_ms)) return bad_field(error, "bad 'created' time");
  } else if (name == "reply") {
    m.reply = value;
  } else if (name == "trail") {
    if (!parse_trail(value, m.trail)) return bad_field(error, "bad 'trail'");
  } else if (name == "corr") {
    if (!valid_message_id(value)) return bad_field(error, "bad correlation id");
    m.correlation = value;
  } else if (name == "also") {
    if (!parse_also(value, m.also)) return bad_field(error, "bad 'also'");
  } else {
    return FieldRead::other;
  }
  return FieldRead::read;
}

// h:KEY, a header.
FieldRead read_header_field(const std::string& name, const std::string& value, Message& m, DecodeError& error) {
  if (!name.starts_with(header_prefix)) return FieldRead::other;
  auto key = std::string_view(name).substr(header_prefix.size());
  if (!valid_name(key)) return bad_field(error, "bad header name '" + name.substr(0, 70) + "'");
  m.headers.emplace_back(std::string(key), value);
  return FieldRead::read;
}

// status: ok, or failed (the failure fields then say how).
FieldRead read_status_field(const std::string& name, const std::string& value, MessageDecoding& d,
                            DecodeError& error) {
  if (name != "status") return FieldRead::other;
  if (value == "failed") d.failed = true;
  else if (value != "ok") return bad_field(error, "unknown status '" + value.substr(0, 20) + "'");
  return FieldRead::read;
}

FieldRead read_field(const std::string& name, const std::string& value, MessageDecoding& d, DecodeError& error) {
  FieldRead read = read_envelope_field(name, value, d.m.id, d.envelope, error);
  if (read == FieldRead::other) read = read_message_field(name, value, d, error);
  if (read == FieldRead::other) read = read_header_field(name, value, d.m, error);
  if (read == FieldRead::other) read = read_status_field(name, value, d, error);
  if (read == FieldRead::other) read = read_failure_field(name, value, d.failure, error);
  if (read == FieldRead::other) read = read_fan_field(name, value, d.fan, error);
  return read;
}

}  // namespace

std::optional<Message> decode(const Fields& fields, DecodeError& error) {
  MessageDecoding d;
  for (const auto& [name, value] : fields)
    if (read_field(name, value, d, error) == FieldRead::bad) return std::nullopt;
  // (Unknown fields are ignored: a newer minor writer may add some.)
  bool whole = all_present({{d.envelope.have_v, "v"},
                            {d.envelope.have_id, "id"},
                            {d.have_route, "route"},
                            {d.have_payload, "payload"}},
                           error) &&
               fan_complete(d.fan, error);
  if (!whole) return std::nullopt;
  d.m.rc = d.failure.rc;
  if (d.failed) d.m.failure = std::move(d.failure);
  d.m.fan = std::move(d.fan);
  return std::move(d.m);
}

namespace {

// encode() with the payload given apart, so it can be moved in.
Fields encode_with(const Message& m, IdField id_at, std::string payload) {
  Fields f;
  f.reserve(10 + m.headers.size());
  f.emplace_back("v", std::string(protocol_version));
  if (id_at == IdField::second) f.emplace_back("id", m.id);
  f.emplace_back("route", join_route(m.route));
  if (!m.from.empty()) f.emplace_back("from", m.from);
  if (m.created_ms != 0) f.emplace_back("created", std::to_string(m.created_ms));
  if (!m.reply.empty()) f.emplace_back("reply", m.reply);
  if (m.rc != 0 || m.failure) f.emplace_back("rc", std::to_string(m.failure ? m.failure->rc : m.rc));
  if (!m.trail.empty()) f.emplace_back("trail", format_trail(m.trail));
  for (const auto& [k, v] : m.headers) f.emplace_back(std::string(header_prefix) + k, v);
  if (m.fan) {
    f.emplace_back("fan", m.fan->group);
    f.emplace_back("fan.n", std::to_string(m.fan->n));
    f.emplace_back("fan.i", std::to_string(m.fan->index));
  }
  if (!m.correlation.empty()) f.emplace_back("corr", m.correlation);
  if (!m.also.empty()) {
    std::string also;
    for (const auto& [reply, id] : m.also) also += (also.empty() ? "" : "\n") + reply + " " + id;
    f.emplace_back("also", also);
  }
  if (m.failure) {
    f.emplace_back("status", "failed");
    f.emplace_back("hop", m.failure->hop);
    f.emplace_back("attempts", std::to_string(m.failure->attempts));
    f.emplace_back("error", m.failure->error);
    f.emplace_back("stderr", m.failure->stderr_tail);
  }
  if (id_at == IdField::before_payload) f.emplace_back("id", m.id);
  f.emplace_back("payload", std::move(payload));
  return f;
}

}  // namespace

Fields encode(const Message& m, IdField id_at) { return encode_with(m, id_at, m.payload); }

Fields encode(Message&& m, IdField id_at) {
  std::string payload = std::move(m.payload);
  m.payload.clear();
  return encode_with(m, id_at, std::move(payload));
}

std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

namespace {
std::uint64_t process_random() {
  static const std::uint64_t value = [] {
    std::random_device rd;
    return (std::uint64_t{rd()} << 32) ^ rd() ^ static_cast<std::uint64_t>(getpid());
  }();
  return value;
}
}  // namespace

std::string new_message_id() {
  static std::atomic<std::uint64_t> counter{0};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%011llx-%06llx-%llx", static_cast<unsigned long long>(now_ms()),
                static_cast<unsigned long long>(process_random() & 0xffffff),
                static_cast<unsigned long long>(counter.fetch_add(1)));
  return buf;
}

std::string new_consumer_name() {
  char buf[32];
  std::snprintf(buf, sizeof buf, ":%d:%04llx", static_cast<int>(getpid()),
                static_cast<unsigned long long>((process_random() >> 24) & 0xffff));
  return host_name() + buf;
}

}  // namespace tobus
