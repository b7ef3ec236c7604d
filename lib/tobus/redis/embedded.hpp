#pragma once
// The embedded default: a private redis-server the bus starts when none is configured, with AOF
// on, its socket and data in the user's runtime and state dirs. Stopped cleanly with the bus.

#include <sys/types.h>

#include <memory>
#include <string>

#include "tobus/core/report.hpp"
#include "tobus/redis/url.hpp"

namespace tobus {

class EmbeddedRedis {
 public:
  // Starts redis-server (TOBUS_REDIS_SERVER, else redis-server on PATH) and waits until it answers.
  // What happens to it (its directories made private, its stop) is told to `report`.
  static std::unique_ptr<EmbeddedRedis> start(const std::string& socket, const std::string& data_dir,
                                              Reporter report = {});
  ~EmbeddedRedis();  // SIGTERM (redis fsyncs the AOF and exits), then wait
  EmbeddedRedis(const EmbeddedRedis&) = delete;
  EmbeddedRedis& operator=(const EmbeddedRedis&) = delete;

  const RedisAddress& address() const { return address_; }

 private:
  EmbeddedRedis(pid_t pid, RedisAddress address, Reporter report)
      : pid_(pid), address_(std::move(address)), report_(std::move(report)) {}
  pid_t pid_;
  RedisAddress address_;
  Reporter report_;
};

// The socket and data directory of the embedded redis-server (TOBUS_SOCKET, TOBUS_DATA_DIR,
// XDG_RUNTIME_DIR, XDG_STATE_HOME).
std::string default_socket_path();
std::string default_data_dir();

// Where Redis is when no URL is configured: the embedded bus's socket if it answers, else
// 127.0.0.1:6379. With nothing answering, waits up to 5s for a bus that is starting (unless
// `wait_for_bus` is false). Connecting is the caller's business.
// Unconfigured places are trusted only when they are the user's (trusted_dir.hpp): a socket
// elsewhere throws Error(failed); so does a server on 127.0.0.1:6379 of another user's, or,
// without `wait_for_bus`, it is passed over with a warning for the embedded socket (where
// tobus-bus then starts its own).
// Waiting, and a server passed over, are told to `report`.
RedisAddress find_redis(bool wait_for_bus, const Reporter& report = {});

}  // namespace tobus
