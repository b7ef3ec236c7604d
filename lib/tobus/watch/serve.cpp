// The HTTP server of tobus-watch --serve (serve.hpp) on cpp-httplib, Debian's libcpp-httplib-dev:
// a small, bounded thread pool, short timeouts and small requests, for a read-only endpoint.

#include "tobus/watch/serve.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <httplib.h>
#include <thread>

#include "tobus/core/error.hpp"
#include "tobus/util/text.hpp"

namespace tobus {

namespace {

constexpr std::size_t server_threads = 4;      // scrapes are serialised anyway; a page or two more
constexpr time_t io_timeout_s = 10;            // a client that stalls longer is dropped
constexpr std::size_t max_request_body = 4096;  // GET only: nothing to upload

bool ipv4(const std::string& s) {
  in_addr a{};
  return inet_pton(AF_INET, s.c_str(), &a) == 1;
}

bool ipv6(const std::string& s) {
  in6_addr a{};
  return inet_pton(AF_INET6, s.c_str(), &a) == 1;
}

}  // namespace

std::string ServeAddress::display() const {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

ServeAddress parse_serve_address(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return Error(ErrorKind::usage, "bad --serve '" + escape_text(text) + "': " + why);
  };
  ServeAddress a;
  std::string_view port = text;
  auto colon = text.rfind(':');
  if (colon != std::string_view::npos) {
    std::string host(text.substr(0, colon));
    port = text.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
      if (!ipv6(host)) throw bad("'" + host + "' is not an IPv6 address");
    } else if (host == "localhost") {
      host = "127.0.0.1";
    } else if (!ipv4(host)) {
      throw bad(host.find(':') != std::string::npos ? "an IPv6 address goes in brackets: [ADDR]:PORT"
                                                    : "ADDR is an IPv4 address, [IPv6] or localhost");
    }
    a.host = host;
  }
  int n = 0;
  if (port.empty() || !to_int(port, n) || n < 0 || n > 65535) throw bad("PORT is a number from 0 to 65535");
  a.port = n;
  return a;
}

struct HttpServer::Impl {
  httplib::Server server;
  std::thread thread;
  int port = 0;
};

HttpServer::HttpServer() : impl_(std::make_unique<Impl>()) {
  auto& s = impl_->server;
  s.new_task_queue = [] { return new httplib::ThreadPool(server_threads); };
  s.set_read_timeout(io_timeout_s, 0);
  s.set_write_timeout(io_timeout_s, 0);
  s.set_keep_alive_timeout(5);
  s.set_keep_alive_max_count(100);
  s.set_payload_max_length(max_request_body);
  // httplib's default adds SO_REUSEPORT, with which a second server binds the same port and the
  // kernel shares the scrapes between them: a port in use must be an error. SO_REUSEADDR only
  // lets a restart bind while old connections linger in TIME_WAIT.
  s.set_socket_options([](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  s.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 404) res.set_content("not found\n", "text/plain; charset=utf-8");
    else res.set_content(std::to_string(res.status) + "\n", "text/plain; charset=utf-8");
  });
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::get(const std::string& path, std::function<HttpReply()> handler) {
  // httplib's patterns are regular expressions: the path is matched as literal text.
  std::string pattern;
  for (char c : path) {
    if (std::strchr(".^$|()[]{}*+?\\", c)) pattern += '\\';
    pattern += c;
  }
  auto& s = impl_->server;
  s.Get(pattern, [handler](const httplib::Request&, httplib::Response& res) {
    HttpReply r = handler();
    res.status = r.status;
    res.set_header("Cache-Control", "no-store");
    res.set_content(std::move(r.body), r.content_type.c_str());
  });
  // Read-only: every other method on a known path is 405, with what is allowed.
  auto refuse = [](const httplib::Request&, httplib::Response& res) {
    res.status = 405;
    res.set_header("Allow", "GET, HEAD");
    res.set_content("method not allowed: GET or HEAD only\n", "text/plain; charset=utf-8");
  };
  s.Post(pattern, refuse);
  s.Put(pattern, refuse);
  s.Patch(pattern, refuse);
  s.Delete(pattern, refuse);
}

void HttpServer::start(const ServeAddress& where) {
  auto& s = impl_->server;
  errno = 0;
  bool bound = where.port == 0 ? (impl_->port = s.bind_to_any_port(where.host)) > 0
                               : s.bind_to_port(where.host, where.port);
  if (!bound) {
    int err = errno;
    throw Error(ErrorKind::failed, "cannot listen on " + where.display() + ": " +
                                       (err != 0 ? std::string(std::strerror(err)) : "cannot bind there"));
  }
  if (where.port != 0) impl_->port = where.port;
  impl_->thread = std::thread([this] { impl_->server.listen_after_bind(); });
  // stop() stops only a server that runs: wait for it to, so a stop right after the start is kept.
  for (int i = 0; i < 5000 && !s.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

int HttpServer::port() const { return impl_->port; }

void HttpServer::stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  impl_->server.stop();
  impl_->thread.join();
}

}  // namespace tobus
