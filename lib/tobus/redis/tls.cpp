#include "tobus/redis/tls.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>

#include "tobus/core/error.hpp"

namespace tobus {
namespace {

using clock = std::chrono::steady_clock;

// OpenSSL's reason for the last failure, as "wrong version number", and its queue emptied.
std::string openssl_reason() {
  unsigned long e = 0, last = 0;
  while ((e = ERR_get_error()) != 0) last = e;
  if (last == 0) return {};
  const char* reason = ERR_reason_error_string(last);
  if (reason != nullptr) return reason;
  char buf[256];
  ERR_error_string_n(last, buf, sizeof buf);
  return buf;
}

[[noreturn]] void unusable(const char* what, const std::string& path) {
  std::string why = openssl_reason();
  throw Error(ErrorKind::usage, std::string("cannot use ") + what + " '" + path + "': " +
                                    (why.empty() ? "not in PEM format" : why));
}

// One context per set of options, made on first use and kept: loading a CA bundle for every
// connection would cost more than the handshake.
SSL_CTX* context_for(const TlsOptions& o) {
  static std::mutex mutex;
  static std::map<std::tuple<std::string, std::string, std::string, bool>, SSL_CTX*> contexts;
  std::lock_guard lock(mutex);
  auto key = std::make_tuple(o.ca, o.cert, o.key, o.insecure);
  if (auto it = contexts.find(key); it != contexts.end()) return it->second;
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) throw TlsFailure("cannot make a TLS context: " + openssl_reason());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  try {
    if (o.insecure) {
      SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    } else {
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
      struct stat st{};
      bool dir = !o.ca.empty() && stat(o.ca.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
      int ok = o.ca.empty() ? SSL_CTX_set_default_verify_paths(ctx)
                            : SSL_CTX_load_verify_locations(ctx, dir ? nullptr : o.ca.c_str(), dir ? o.ca.c_str() : nullptr);
      if (ok != 1) unusable("the TLS CA certificates", o.ca.empty() ? "(the system's)" : o.ca);
    }
    if (!o.cert.empty() && SSL_CTX_use_certificate_chain_file(ctx, o.cert.c_str()) != 1)
      unusable("the TLS client certificate", o.cert);
    if (!o.key.empty() && SSL_CTX_use_PrivateKey_file(ctx, o.key.c_str(), SSL_FILETYPE_PEM) != 1)
      unusable("the TLS client key", o.key);
    if (!o.cert.empty() && !o.key.empty() && SSL_CTX_check_private_key(ctx) != 1)
      throw Error(ErrorKind::usage, "the TLS client key '" + o.key + "' is not the key of the certificate '" + o.cert + "'");
  } catch (...) {
    SSL_CTX_free(ctx);
    throw;
  }
  contexts.emplace(key, ctx);
  return ctx;
}

bool is_ip_address(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// Waits until `fd` is ready for `events`, until `deadline` (none: max()). False when it passed.
bool wait_ready(int fd, short events, clock::time_point deadline) {
  for (;;) {
    int ms = -1;
    if (deadline != clock::time_point::max()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
      if (left <= 0) return false;
      ms = static_cast<int>(std::min<long long>(left, INT_MAX));
    }
    pollfd p{fd, events, 0};
    int n = poll(&p, 1, ms);
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return true;  // let the TLS call report what is wrong with the socket
  }
}

}  // namespace

std::unique_ptr<TlsSession> TlsSession::handshake(int fd, const std::string& host, const TlsOptions& options,
                                                  std::chrono::milliseconds timeout) {
  SSL_CTX* ctx = context_for(options);
  SSL* ssl = SSL_new(ctx);
  if (ssl == nullptr) throw TlsFailure("cannot start TLS: " + openssl_reason());
  std::unique_ptr<TlsSession> session(new TlsSession(ssl, fd));
  const std::string& name = options.server_name.empty() ? host : options.server_name;
  if (!is_ip_address(name)) SSL_set_tlsext_host_name(ssl, name.c_str());  // SNI takes names only
  if (!options.insecure) {
    int ok = is_ip_address(name) ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str())
                                 : SSL_set1_host(ssl, name.c_str());
    if (ok != 1) throw TlsFailure("cannot check the server's certificate for '" + name + "'");
  }
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 || SSL_set_fd(ssl, fd) != 1)
    throw TlsFailure(std::string("cannot start TLS: ") + std::strerror(errno));
  auto deadline = clock::now() + timeout;
  for (;;) {
    ERR_clear_error();
    int r = SSL_connect(ssl);
    if (r == 1) return session;
    int err = SSL_get_error(ssl, r);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
      if (long v = SSL_get_verify_result(ssl); v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH)
        throw TlsFailure("the server's TLS certificate is not for '" + name + "' (--tls-server-name names another)");
      else if (v != X509_V_OK)
        throw TlsFailure(std::string("the server's TLS certificate is refused: ") + X509_verify_cert_error_string(v));
      session->fail(r, "the TLS handshake");
    }
    if (!wait_ready(fd, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline))
      throw TlsFailure("the TLS handshake timed out (if that port is plain Redis, use redis://)");
  }
}

TlsSession::~TlsSession() {
  // Tell the server this end closes (close_notify), unless the connection is broken: one try,
  // without waiting for its answer.
  if (!broken_) SSL_shutdown(ssl_);
  SSL_free(ssl_);  // the socket is hiredis's to close
}

void TlsSession::fail(int result, const char* doing) {
  broken_ = true;
  int err = SSL_get_error(ssl_, result);
  int saved = errno;
  std::string why = openssl_reason();
  bool refused_us = false;  // the server ended the connection, or said no with an alert
  if (why == "wrong version number" || why == "packet length too long") {
    why = "the server does not speak TLS there (" + why + "; if that port is plain Redis, use redis://)";
  } else if (err == SSL_ERROR_ZERO_RETURN || (why.empty() && err == SSL_ERROR_SYSCALL)) {
    why = saved != 0 && err == SSL_ERROR_SYSCALL ? std::strerror(saved) : "the server closed the connection";
    refused_us = true;
  } else if (why.find("alert") != std::string::npos) {
    refused_us = true;
  } else if (why.empty()) {
    why = "TLS error " + std::to_string(err);
  }
  // TLS 1.3 ends the handshake before the server has checked the client: one without a
  // certificate learns that it needed one at its first command.
  if (refused_us && !answered_ && SSL_get_certificate(ssl_) == nullptr)
    why += " (no client certificate was given: does the server want one? --tls-cert, --tls-key)";
  throw TlsFailure(std::string(doing) + ": " + why);
}

std::size_t TlsSession::read(char* buf, std::size_t size, bool block) {
  for (;;) {
    ERR_clear_error();
    errno = 0;
    int n = SSL_read(ssl_, buf, static_cast<int>(std::min<std::size_t>(size, INT_MAX)));
    if (n > 0) {
      answered_ = true;
      return static_cast<std::size_t>(n);
    }
    int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_WANT_READ && !block) return 0;
    if (err == SSL_ERROR_WANT_READ) wait_ready(fd_, POLLIN, clock::time_point::max());
    else if (err == SSL_ERROR_WANT_WRITE) wait_ready(fd_, POLLOUT, clock::time_point::max());
    else fail(n, "TLS read");
  }
}

bool TlsSession::pending() const { return SSL_pending(ssl_) > 0; }

void TlsSession::write(const char* data, std::size_t size) {
  while (size > 0) {
    ERR_clear_error();
    errno = 0;
    int n = SSL_write(ssl_, data, static_cast<int>(std::min<std::size_t>(size, INT_MAX)));
    if (n > 0) {
      data += n;
      size -= static_cast<std::size_t>(n);
      continue;
    }
    int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_WANT_WRITE) wait_ready(fd_, POLLOUT, clock::time_point::max());
    else if (err == SSL_ERROR_WANT_READ) wait_ready(fd_, POLLIN, clock::time_point::max());
    else fail(n, "TLS write");
  }
}

}  // namespace tobus
