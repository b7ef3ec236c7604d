#pragma once
// The HTTP server of tobus-watch --serve: read-only GET routes on cpp-httplib (kept out of this
// header). It serves what it is given; the routes (the index, /metrics) are set up by run_watch.
// A route is a function called for each request on one of the server's threads: it must be
// thread-safe. Streaming routes (Server-Sent Events for a dashboard) plug in the same way, with
// httplib's chunked content provider behind a route kind of their own.

#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace tobus {

// Where to listen: [ADDR:]PORT. ADDR is an IPv4 address, an IPv6 address in brackets or
// `localhost`; without it, 127.0.0.1: all interfaces only when asked (0.0.0.0, [::]).
struct ServeAddress {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: any free port
  std::string display() const;  // HOST:PORT, [HOST]:PORT for IPv6
};
// Throws Error(usage) naming the text and what is wrong with it.
ServeAddress parse_serve_address(std::string_view text);

struct HttpReply {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

class HttpServer {
 public:
  HttpServer();
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // GET (and HEAD) of exactly `path`. Any other path is 404, any other method 405.
  void get(const std::string& path, std::function<HttpReply()> handler);
  // Binds and starts serving on threads of its own. Throws Error(failed) with one line saying
  // where and why (the address is in use or not on this host).
  void start(const ServeAddress& where);
  int port() const;  // the bound port (useful after port 0)
  void stop();       // stops serving and joins its threads; also done by the destructor

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tobus
