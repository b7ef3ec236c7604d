#pragma once
// TLS to Redis (rediss://) over OpenSSL; hiredis 0.14 has none. A Connection (redis.cpp) keeps
// hiredis for building commands and parsing replies and moves its bytes through a TlsSession
// instead of the socket. The socket is made non-blocking: a session reads only what has arrived
// when asked to (a poll() that saw the socket readable may have seen a record that carries no
// data), and waits with poll() when it must, so timeouts and poll()-driven waits work as for
// plain TCP.

#include <chrono>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>

#include "tobus/redis/url.hpp"

typedef struct ssl_st SSL;

namespace tobus {

// Why a TLS step failed, in words (the Connection adds where): "certificate has expired".
class TlsFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class TlsSession {
 public:
  // Handshakes over the connected socket `fd` within `timeout`, verifying the server's certificate
  // against `options` for the name `host` (the URL's, unless options.server_name), and presenting
  // the client certificate, if one is set. Throws TlsFailure; Error(usage) when a file `options`
  // names cannot be used.
  static std::unique_ptr<TlsSession> handshake(int fd, const std::string& host, const TlsOptions& options,
                                               std::chrono::milliseconds timeout);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Up to `size` bytes of the server's data. Without `block`, 0 when none has arrived; with it,
  // waits for some. Throws TlsFailure when the connection is closed or broken.
  std::size_t read(char* buf, std::size_t size, bool block);
  // Data already decrypted and not yet read (poll() cannot see it).
  bool pending() const;
  // All of `size` bytes, waiting as long as the socket needs. Throws TlsFailure.
  void write(const char* data, std::size_t size);

 private:
  TlsSession(SSL* ssl, int fd) : ssl_(ssl), fd_(fd) {}
  [[noreturn]] void fail(int result, const char* doing);
  SSL* ssl_;
  int fd_;
  bool broken_ = false;
  bool answered_ = false;  // the server has sent data since the handshake
};

}  // namespace tobus
