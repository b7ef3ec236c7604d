#pragma once
// The router: takes every message off `NS:bus` and forwards it to the next hop of its route,
// delivers results to waiting senders, dead-letters what it cannot route. Several buses on one
// namespace share the work (one consumer group).

#include <functional>
#include <string>

#include "tobus/core/keys.hpp"
#include "tobus/core/message.hpp"
#include "tobus/core/report.hpp"
#include "tobus/redis/url.hpp"
#include "tobus/util/duration.hpp"

namespace tobus {

struct BusHooks {
  // Sees each message the bus takes, and may change it (its route: a reroute). Returning false
  // drops it: the message is dead-lettered with `reason`.
  std::function<bool(Message& message, std::string& reason)> on_receive;
  // Sees each message after it was written to `key` (an inbox, a reply stream or the dead letters).
  std::function<void(const Message& message, const std::string& key)> on_send;
};

struct BusOptions {
  int batch = 256;
  Millis claim_after{15'000};
  Millis reply_ttl{3'600'000};
  Millis retain{300'000};  // acknowledged history kept on the bus and inboxes, for tobus-watch
  BusHooks hooks;
  // Where what happens along the way is told (a reconnection, a skipped entry); silent by default.
  Reporter report;
  // Called once the bus routes (its consumer group is there: a message sent from now on is
  // routed), and once when a stop began; for a service manager (tobus-bus tells systemd).
  std::function<void()> on_ready;
  std::function<void()> on_stopping;
};

class Bus {
 public:
  Bus(RedisAddress address, Keys keys, BusOptions options)
      : address_(std::move(address)), keys_(std::move(keys)), options_(std::move(options)) {}
  // Routes until SIGINT or SIGTERM (call signals::install() first). Throws RedisError when Redis
  // stays unreachable.
  void run();

 private:
  RedisAddress address_;
  Keys keys_;
  BusOptions options_;
};

}  // namespace tobus
