#pragma once
// Where Redis is: redis://[user:password@]host:port/db or unix:///path.sock?db=N.

#include <optional>
#include <string>
#include <string_view>

namespace tobus {

struct RedisAddress {
  enum class Kind { tcp, unix_socket };
  Kind kind = Kind::tcp;
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string path;  // unix socket
  int db = 0;
  std::string user;  // empty: the default user
  std::string password;

  // The URL again, with the password masked: safe to log.
  std::string display() const;
  // The URL again, password included: for TOBUS_REDIS in a handler's environment.
  std::string url() const;
};

// Throws Error(usage) naming what is wrong with `url`.
RedisAddress parse_redis_url(std::string_view url);

}  // namespace tobus
