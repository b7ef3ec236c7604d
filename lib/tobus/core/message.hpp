#pragma once
// The message model and its codec to and from stream-entry fields (docs/protocol.md, version 1).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tobus {

inline constexpr std::string_view protocol_version = "1";
// The largest payload a program sends or passes on unless told otherwise (--max-payload): well
// below Redis's 512MiB limit on one value, and what a program may hold several copies of.
inline constexpr std::size_t default_max_payload = std::size_t{64} << 20;

// A stream entry's fields in order; names and values are raw bytes.
using Fields = std::vector<std::pair<std::string, std::string>>;

struct Hop {
  std::string name;
  int rc = 0;
  std::int64_t at_ms = 0;        // when the hop finished
  std::int64_t duration_ms = 0;  // how long its handler ran
  bool operator==(const Hop&) const = default;
};

// What a module reports to the bus when a hop failed.
struct Failure {
  std::string hop;
  int rc = 0;
  int attempts = 0;
  std::string error;   // one line
  std::string stderr_tail;
  bool operator==(const Failure&) const = default;
};

// A copy made by a fan-out (`@TYPE` hop): which fan-out, how many copies, which one this is.
struct Fanout {
  std::string group;  // the bus entry id of the fan-out: unique in the namespace
  int n = 0;
  int index = 0;
  bool operator==(const Fanout&) const = default;
};

struct Message {
  std::string id;
  std::vector<std::string> route;  // hops still to go
  std::string from;
  std::int64_t created_ms = 0;
  std::string reply;  // reply stream key, or empty
  int rc = 0;
  std::vector<Hop> trail;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string payload;
  std::optional<Failure> failure;
  std::optional<Fanout> fan;
  std::string correlation;  // messages sent with one correlation id can be joined
  // Further (reply stream, message id) pairs waiting for this result: a join's other senders.
  std::vector<std::pair<std::string, std::string>> also;
  bool operator==(const Message&) const = default;
};

// Why an entry could not be decoded, in words for a dead letter's `dead.reason`.
struct DecodeError {
  std::string reason;
};

// Where `encode` puts the `id` field: second, as the bus and the modules write entries, or just
// before `payload`, as tobus-send writes new messages (a batch then shares one shape whose last
// two fields change from message to message).
enum class IdField { second, before_payload };

// Decodes an entry; on failure `error` says why and the result is empty.
std::optional<Message> decode(const Fields& fields, DecodeError& error);
// The entry's fields, in the order v, id, route, from, created, reply, rc, trail, h:*, fan,
// fan.n, fan.i, corr, also, status, hop, attempts, error, stderr, payload (optional ones only
// when set).
Fields encode(const Message& m, IdField id_at = IdField::second);
// The same, with the payload moved into the fields rather than copied (`m.payload` is left empty).
Fields encode(Message&& m, IdField id_at = IdField::second);

// Route syntax: comma-separated hop names. Throws Error(usage) naming the bad hop.
std::vector<std::string> parse_route(std::string_view text);
std::string join_route(const std::vector<std::string>& route, std::size_t from = 0);
// A trail as the `trail` field spells it, HOP:RC:MS:DURATION_MS comma-separated. parse_trail
// returns false on a malformed one.
bool parse_trail(std::string_view text, std::vector<Hop>& out);
std::string format_trail(const std::vector<Hop>& trail);
bool valid_name(std::string_view name);       // a module, type or header name
bool valid_hop(std::string_view hop);         // NAME, or @TYPE (a fan-out to every module of TYPE)
bool valid_message_id(std::string_view id);
// A header as the programs' -H option takes it, KEY=VALUE. Throws Error(usage) naming it.
std::pair<std::string, std::string> parse_header_option(std::string_view text);
// The variable a handler sees a header as: TOBUS_HEADER_ and the key upper-cased, each byte other
// than a letter or a digit as '_' (content-type → TOBUS_HEADER_CONTENT_TYPE).
std::string header_env_name(std::string_view key);

// A new message id: sortable by time, unique across processes and hosts.
std::string new_message_id();
// A new consumer or instance name: HOST:PID:RANDOM.
std::string new_consumer_name();
std::int64_t now_ms();
std::string host_name();

}  // namespace tobus
