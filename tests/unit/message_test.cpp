#include <doctest/doctest.h>

#include <string>

#include "tobus/core/error.hpp"
#include "tobus/core/message.hpp"

using namespace tobus;

namespace {
Message sample() {
  Message m;
  m.id = "m-1";
  m.route = {"upper", "rev"};
  m.from = "send";
  m.created_ms = 1700000000123;
  m.reply = "tobus:reply:me";
  m.trail = {{"a", 0, 1700000000200, 12}};
  m.headers = {{"lang", "en"}, {"x", std::string("\0\xff", 2)}};
  m.payload = std::string("a\0b\xfe\n", 5);
  return m;
}
}  // namespace

TEST_CASE("encode then decode is the identity, binary payloads included") {
  Message m = sample();
  DecodeError err;
  auto back = decode(encode(m), err);
  REQUIRE(back);
  CHECK(*back == m);

  m.failure = Failure{"rev", 2, 3, "handler exited with 2", "boom\n"};
  m.rc = 2;  // a failure's rc is the message's rc
  auto failed = decode(encode(m), err);
  REQUIRE(failed);
  CHECK(*failed == m);
}

TEST_CASE("encode's field order, and tobus-send's with the id before the payload") {
  using F = std::pair<std::string, std::string>;
  Message m;
  m.id = "m-1";
  m.route = {"upper", "rev"};
  m.from = "send";
  m.created_ms = 5;
  m.reply = "ns:reply:me";
  m.headers = {{"lang", "en"}, {"b", "2"}};
  m.correlation = "c1";
  m.payload = "p";
  CHECK(encode(m) == Fields{F{"v", "1"}, F{"id", "m-1"}, F{"route", "upper,rev"}, F{"from", "send"},
                            F{"created", "5"}, F{"reply", "ns:reply:me"}, F{"h:lang", "en"}, F{"h:b", "2"},
                            F{"corr", "c1"}, F{"payload", "p"}});
  // What tobus-send writes: v route from created reply h:* corr id payload.
  CHECK(encode(m, IdField::before_payload) ==
        Fields{F{"v", "1"}, F{"route", "upper,rev"}, F{"from", "send"}, F{"created", "5"},
               F{"reply", "ns:reply:me"}, F{"h:lang", "en"}, F{"h:b", "2"}, F{"corr", "c1"}, F{"id", "m-1"},
               F{"payload", "p"}});
  DecodeError err;
  auto back = decode(encode(m, IdField::before_payload), err);
  REQUIRE(back);
  CHECK(*back == m);
}

TEST_CASE("a 16 MiB payload survives the codec") {
  Message m = sample();
  m.payload.assign(16 << 20, '\0');
  m.payload[12345] = '\x80';
  DecodeError err;
  auto back = decode(encode(m), err);
  REQUIRE(back);
  CHECK(back->payload == m.payload);
}

TEST_CASE("decode names what is wrong") {
  auto reason = [](Fields f) {
    DecodeError err;
    auto m = decode(f, err);
    CHECK(!m);
    return err.reason;
  };
  CHECK(reason({{"junk", "1"}}) == "missing field 'v'");
  CHECK(reason({{"v", "9"}, {"id", "a"}, {"route", "x"}, {"payload", ""}}) == "unknown protocol version '9'");
  CHECK(reason({{"v", "1"}, {"route", "x"}, {"payload", ""}}) == "missing field 'id'");
  CHECK(reason({{"v", "1"}, {"id", "a"}, {"payload", ""}}) == "missing field 'route'");
  CHECK(reason({{"v", "1"}, {"id", "a"}, {"route", "x"}}) == "missing field 'payload'");
  CHECK(reason({{"v", "1"}, {"id", "a"}, {"route", "a,,b"}, {"payload", ""}}) == "bad hop '' in route");
  CHECK(reason({{"v", "1"}, {"id", "a b"}, {"route", "x"}, {"payload", ""}}) == "bad message id");
  CHECK(reason({{"v", "1"}, {"id", "a"}, {"route", "x"}, {"payload", ""}, {"rc", "x"}}) == "bad 'rc'");
  CHECK(reason({{"v", "1"}, {"id", "a"}, {"route", "x"}, {"payload", ""}, {"trail", "a:0"}}) == "bad 'trail'");
  CHECK(reason({{"v", "1"}, {"id", "a"}, {"route", "x"}, {"payload", ""}, {"h:a b", "1"}}) ==
        "bad header name 'h:a b'");
  CHECK(reason({{"v", "1"}, {"id", "a"}, {"route", "x"}, {"payload", ""}, {"status", "odd"}}) ==
        "unknown status 'odd'");
}

TEST_CASE("an empty route is a finished journey, and unknown fields are ignored") {
  DecodeError err;
  auto m = decode({{"v", "1"}, {"id", "a"}, {"route", ""}, {"payload", "p"}, {"future", "x"}}, err);
  REQUIRE(m);
  CHECK(m->route.empty());
}

TEST_CASE("route syntax") {
  CHECK(parse_route("upper,rev") == std::vector<std::string>{"upper", "rev"});
  CHECK(parse_route("a") == std::vector<std::string>{"a"});
  for (const char* bad : {"", ",", "a,", ",a", "a b", "a,,b", "x/y"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(parse_route(bad), Error);
  }
  CHECK(join_route({"a", "b", "c"}, 1) == "b,c");
}

TEST_CASE("ids are unique and valid") {
  auto a = new_message_id();
  auto b = new_message_id();
  CHECK(a != b);
  CHECK(valid_message_id(a));
  CHECK(!valid_message_id(""));
  CHECK(!valid_message_id(std::string(201, 'a')));
}
