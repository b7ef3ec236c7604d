#pragma once
// The embedded default: a private redis-server the bus starts when none is configured, with AOF
// on, its socket and data in the user's runtime and state dirs. Stopped cleanly with the bus.

#include <sys/types.h>

#include <memory>
#include <string>

#include "tobus/url.hpp"

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

}  // namespace tobus
