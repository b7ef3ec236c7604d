#pragma once
// Reading a stream as one consumer of a group: blocking reads, reclaiming the entries of dead
// consumers, keeping our own entries from being reclaimed, and trimming what every reader acked.

#include <chrono>
#include <cstdint>
#include <optional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "tobus/core/message.hpp"
#include "tobus/redis/redis.hpp"

namespace tobus {

struct Entry {
  std::string id;      // stream entry id
  Fields fields;
  long long deliveries = 1;  // times the group delivered it, this one included
};

// Entries of an XREADGROUP/XRANGE/XAUTOCLAIM reply: [[id, [field, value, ...]], ...].
// Entries whose data is gone (nil) are skipped.
std::vector<Entry> parse_entries(ReplyView list);

// XGROUP CREATE stream group 0 MKSTREAM; an existing group is fine.
void ensure_group(Connection& c, std::string_view stream, std::string_view group);

// An entry delivered this many times without an ack is dead-lettered.
inline constexpr long long max_deliveries = 10;

class GroupConsumer {
 public:
  GroupConsumer(std::string stream, std::string group, std::string consumer)
      : stream_(std::move(stream)), group_(std::move(group)), consumer_(std::move(consumer)) {}

  const std::string& stream() const { return stream_; }
  const std::string& group() const { return group_; }
  const std::string& consumer() const { return consumer_; }

  // Appends XREADGROUP for up to `count` new entries, blocking up to `block`, and sends it.
  // `own_pending` reads this consumer's own unacked entries instead (after a reconnect).
  void start_read(Connection& c, int count, std::chrono::milliseconds block, bool own_pending = false);
  // The entries of that read's reply. A missing group (the stream was deleted) is recreated.
  std::vector<Entry> finish_read(Connection& c, const Reply& reply);

  // Claims entries idle for `min_idle` from any consumer (XAUTOCLAIM), with delivery counts.
  std::vector<Entry> reclaim(Connection& c, std::chrono::milliseconds min_idle, int count);
  // Resets the idle time of entries we still work on, so nobody reclaims them.
  void refresh(Connection& c, std::span<const std::string> ids);
  // XACK, pipelined by the caller or not.
  void append_ack(Connection& c, std::span<const std::string> ids);

 private:
  std::string stream_, group_, consumer_;
  std::string claim_cursor_ = "0-0";
};

// Trims `stream` below the oldest entry `group` has not acknowledged (XTRIM MINID), keeping
// acknowledged entries younger than `retain` as history (for tobus-watch).
void trim_acknowledged(Connection& c, std::string_view stream, std::string_view group,
                       std::chrono::milliseconds retain = std::chrono::milliseconds(0));

// Stream ids compared as ids ("9-1" < "10-0"); malformed ones count as 0-0.
bool id_less(std::string_view a, std::string_view b);
// The milliseconds part of a stream id: when the entry was added (0 when malformed).
std::int64_t entry_ms(std::string_view id);

// Waits for the reply to what was sent on `c`. While waiting, a stop signal (SIGINT/SIGTERM)
// unblocks the server-side wait with CLIENT UNBLOCK from a second connection, so a blocking read
// returns at once. When it cannot (no CLIENT ID or CLIENT UNBLOCK under the user's ACL), the read
// is abandoned: nullopt, and whatever it would still deliver stays pending under this consumer
// (reclaimed by another after --claim-after).
std::optional<Reply> await_reply(Connection& c, long long client_id);

// CLIENT ID of the connection, or -1 when not allowed.
long long client_id(Connection& c);
// CLIENT UNBLOCK id, from a fresh connection; false when that is refused or fails.
bool unblock_client(const RedisAddress& address, long long id);

}  // namespace tobus
