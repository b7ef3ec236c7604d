#include <doctest/doctest.h>

#include "tobus/core/error.hpp"
#include "tobus/redis/url.hpp"

using tobus::parse_redis_url;
using Kind = tobus::RedisAddress::Kind;

TEST_CASE("redis URLs") {
  auto a = parse_redis_url("redis://127.0.0.1:6380/2");
  CHECK(a.kind == Kind::tcp);
  CHECK(a.host == "127.0.0.1");
  CHECK(a.port == 6380);
  CHECK(a.db == 2);
  CHECK(a.user.empty());

  auto b = parse_redis_url("redis://alice:s%40cret@redis.example:7000");
  CHECK(b.user == "alice");
  CHECK(b.password == "s@cret");
  CHECK(b.port == 7000);
  CHECK(b.db == 0);
  CHECK(b.display() == "redis://alice:***@redis.example:7000/0");
  CHECK(parse_redis_url(b.url()).password == "s@cret");

  auto c = parse_redis_url("redis://[::1]:6379/0");
  CHECK(c.host == "::1");

  auto d = parse_redis_url("redis://localhost");
  CHECK(d.port == 6379);
}

TEST_CASE("unix socket URLs") {
  auto a = parse_redis_url("unix:///run/redis/redis.sock?db=3");
  CHECK(a.kind == Kind::unix_socket);
  CHECK(a.path == "/run/redis/redis.sock");
  CHECK(a.db == 3);
  CHECK(parse_redis_url(a.url()).db == 3);
  CHECK(parse_redis_url("unix:///tmp/r.sock").db == 0);
}

TEST_CASE("bad URLs name the problem") {
  for (const char* bad : {"", "http://x", "redis://", "redis://h:0", "redis://h:70000", "redis://h:x",
                          "redis://h/abc", "unix://relative.sock", "unix:///s?db=x", "unix:///s?foo=1",
                          "redis://a:%zz@h"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(parse_redis_url(bad), tobus::Error);
  }
  try {
    parse_redis_url("redis://h:99999");
  } catch (const tobus::Error& e) {
    CHECK(e.kind() == tobus::ErrorKind::usage);
    CHECK(std::string(e.what()).find("port") != std::string::npos);
  }
}

TEST_CASE("a bad URL's error never shows its password") {
  auto message = [](const char* url) {
    try {
      parse_redis_url(url);
    } catch (const tobus::Error& e) {
      return std::string(e.what());
    }
    return std::string("(parsed)");
  };
  CHECK(message("redis://:S3cret@h:x") == "invalid Redis URL 'redis://:***@h:x': bad port 'x'");
  CHECK(message("redis://al:S3cret@h:0") == "invalid Redis URL 'redis://al:***@h:0': bad port '0'");
  CHECK(message("redis://S3cret@h:0") == "invalid Redis URL 'redis://***@h:0': bad port '0'");
  CHECK(message("redis://:S3@cr:et@:1") == "invalid Redis URL 'redis://:***@:1': no host");
  CHECK(message("redis://:%zzS3cret@h") == "invalid Redis URL 'redis://:***@h': bad %-escape");
  CHECK(message("unix:///s?password=S3cret&db=x") ==
        "invalid Redis URL 'unix:///s?password=***&db=x': bad database 'x'");
  CHECK(message("unix:///s?db=x&password=S3cret") == "invalid Redis URL 'unix:///s?db=x&password=***': bad database 'x'");
  CHECK(message("http://u:S3cret@h") == "invalid Redis URL 'http://u:***@h': expected redis://…, rediss://… or unix://…");
}

TEST_CASE("with the password from elsewhere, redis://NAME@host names the user") {
  auto bare = parse_redis_url("redis://alice@redis.example:7000");
  CHECK(bare.user.empty());
  CHECK(bare.password == "alice");  // redis-cli -u reads it so
  auto user = parse_redis_url("redis://alice@redis.example:7000", true);
  CHECK(user.user == "alice");
  CHECK(user.password.empty());
  CHECK(parse_redis_url("redis://alice:@h", true).user == "alice");
  CHECK(parse_redis_url("unix:///r.sock?user=alice", true).user == "alice");
}

TEST_CASE("without_password keeps the place and the user, and its URL holds no password") {
  auto a = parse_redis_url("redis://alice:s3cr%3At@redis.example:7000/2").without_password();
  CHECK(a.user == "alice");
  CHECK(a.password.empty());
  CHECK(a.url().find("s3cr") == std::string::npos);
  auto back = parse_redis_url(a.url());
  CHECK(back.user == "alice");
  CHECK(back.host == "redis.example");
  CHECK(back.port == 7000);
  CHECK(back.db == 2);
  auto u = parse_redis_url("unix:///r.sock?user=bob&password=pw&db=1").without_password();
  CHECK(u.url() == "unix:///r.sock?db=1&user=bob");
}

TEST_CASE("rediss:// URLs are TLS, and say so again in display() and url()") {
  auto a = parse_redis_url("rediss://alice:pw@redis.example:6380/3");
  CHECK(a.tls);
  CHECK(a.host == "redis.example");
  CHECK(a.port == 6380);
  CHECK(a.db == 3);
  CHECK(a.display() == "rediss://alice:***@redis.example:6380/3");
  CHECK(parse_redis_url(a.url()).tls);
  CHECK(parse_redis_url(a.url()).password == "pw");
  CHECK_FALSE(parse_redis_url("redis://redis.example").tls);
  CHECK(parse_redis_url("rediss://redis.example").port == 6379);
  CHECK_THROWS_AS(parse_redis_url("redisss://redis.example"), tobus::Error);
}

TEST_CASE("redis_environment: TOBUS_REDIS without the password unless asked, and the TLS settings") {
  auto a = parse_redis_url("rediss://alice:pw@redis.example:6380/0");
  a.tls_options.ca = "/etc/tobus/ca.pem";
  a.tls_options.server_name = "redis.internal";
  a.tls_options.insecure = true;
  auto env = tobus::redis_environment(a, false);
  REQUIRE(env.size() == 4);
  CHECK(env[0] == "TOBUS_REDIS=rediss://alice:@redis.example:6380/0");
  CHECK(env[1] == "TOBUS_TLS_CA=/etc/tobus/ca.pem");
  CHECK(env[2] == "TOBUS_TLS_SERVER_NAME=redis.internal");
  CHECK(env[3] == "TOBUS_TLS_INSECURE=1");
  CHECK(tobus::redis_environment(a, true)[0] == "TOBUS_REDIS=rediss://alice:pw@redis.example:6380/0");

  auto plain = parse_redis_url("redis://:pw@127.0.0.1:6379");
  plain.tls_options.ca = "/ignored.pem";  // not rediss://: no TLS settings told
  env = tobus::redis_environment(plain, false);
  REQUIRE(env.size() == 1);
  CHECK(env[0] == "TOBUS_REDIS=redis://127.0.0.1:6379/0");
}
