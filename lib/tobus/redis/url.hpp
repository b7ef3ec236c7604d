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
  // The URL again, password included (TOBUS_REDIS for a handler that was let have it).
  std::string url() const;
  // The same place and user without the password: what handlers, services and hooks are told
  // unless they were let have the password (docs/security.md).
  RedisAddress without_password() const;
};

// Throws Error(usage) naming what is wrong with `url`. `password_elsewhere`: the password comes
// from a file or the environment, so a bare redis://NAME@host names the user (without it, NAME is
// a password alone, as redis-cli -u reads it).
RedisAddress parse_redis_url(std::string_view url, bool password_elsewhere = false);

}  // namespace tobus
