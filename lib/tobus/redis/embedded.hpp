#pragma once
// The embedded default: a private redis-server the bus starts when none is configured, with AOF
// on, its socket and data in the user's runtime and state dirs. Stopped cleanly with the bus.

#include <sys/types.h>

#include <memory>
#include <string>

#include "tobus/redis/url.hpp"

namespace tobus {

class EmbeddedRedis {
 public:
  // Starts redis-server (TOBUS_REDIS_SERVER, else redis-server on PATH) and waits until it answers.
  static std::unique_ptr<EmbeddedRedis> start(const std::string& socket, const std::string& data_dir);
  ~EmbeddedRedis();  // SIGTERM (redis fsyncs the AOF and exits), then wait
  EmbeddedRedis(const EmbeddedRedis&) = delete;
  EmbeddedRedis& operator=(const EmbeddedRedis&) = delete;

  const RedisAddress& address() const { return address_; }

 private:
  EmbeddedRedis(pid_t pid, RedisAddress address) : pid_(pid), address_(std::move(address)) {}
  pid_t pid_;
  RedisAddress address_;
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
RedisAddress find_redis(bool wait_for_bus);

}  // namespace tobus
