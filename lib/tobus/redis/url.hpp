#pragma once
// Where Redis is: redis://[user:password@]host:port/db, rediss://… (TLS) or unix:///path.sock?db=N.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tobus {

// What a TLS connection (rediss://) trusts and presents. Paths are absolute (a handler runs in a
// directory of its own and is told them: redis_environment).
struct TlsOptions {
  std::string ca;           // a PEM file or a directory of CA certificates; empty: the system's
  std::string cert;         // the client's certificate (PEM, may hold its chain), with `key`
  std::string key;          // its private key (PEM)
  std::string server_name;  // the name the server's certificate must carry; empty: the URL's host
  bool insecure = false;    // no verification of the server (--tls-insecure): encrypted, not trusted
  bool any() const { return !ca.empty() || !cert.empty() || !key.empty() || !server_name.empty() || insecure; }
};

struct RedisAddress {
  enum class Kind { tcp, unix_socket };
  Kind kind = Kind::tcp;
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string path;  // unix socket
  int db = 0;
  std::string user;  // empty: the default user
  std::string password;
  bool tls = false;  // rediss://
  TlsOptions tls_options;

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

// What a handler, service or hook is told of where Redis is: TOBUS_REDIS (its password only when
// `with_password`) and, for rediss://, the TOBUS_TLS_* settings, as NAME=VALUE strings.
std::vector<std::string> redis_environment(const RedisAddress& address, bool with_password);

}  // namespace tobus
