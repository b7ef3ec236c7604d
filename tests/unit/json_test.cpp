#include <doctest/doctest.h>

#include "tobus/util/json.hpp"

using namespace tobus;

TEST_CASE("base64 round trips every byte value") {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (std::size_t n = 0; n < 6; ++n) CHECK(base64_decode(base64_encode(all.substr(0, n))) == all.substr(0, n));
  CHECK(base64_decode(base64_encode(all)) == all);
  CHECK(base64_encode("foob") == "Zm9vYg==");
  for (const char* bad : {"Zm9", "Zm9v!===", "Z===", "=Zm9", "Zm=v"}) {
    CAPTURE(bad);
    CHECK(!base64_decode(bad));
  }
}

TEST_CASE("UTF-8 validation") {
  CHECK(is_utf8("plain"));
  CHECK(is_utf8("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"));
  CHECK(!is_utf8("\xff"));
  CHECK(!is_utf8("\xc3"));          // truncated
  CHECK(!is_utf8("\xc0\xaf"));      // overlong
  CHECK(!is_utf8("\xed\xa0\x80"));  // surrogate
}

TEST_CASE("a message survives its JSON envelope, binary payload included") {
  Message m;
  m.id = "x.1";
  m.route = {"a", "b"};
  m.from = "send";
  m.headers = {{"k", "v \"quoted\""}};
  m.payload = std::string("\0\xff\n", 3);
  JsonObject o;
  o.add("event", "sent");
  std::string line = add_message(o, m).str();
  CHECK(line.find("payload_base64") != std::string::npos);
  std::string error;
  auto back = message_from_json(line, error);
  REQUIRE_MESSAGE(back, error);
  CHECK(back->id == m.id);
  CHECK(back->route == m.route);
  CHECK(back->headers == m.headers);
  CHECK(back->payload == m.payload);
}

TEST_CASE("bad envelopes say why") {
  std::string error;
  auto bad = [&](const char* json) {
    error.clear();
    CHECK(!message_from_json(json, error));
    return error;
  };
  CHECK(bad("nope").starts_with("not JSON"));
  CHECK(bad("[1]") == "not a JSON object");
  CHECK(bad(R"({"route":"a"})") == "no 'payload' or 'payload_base64'");
  CHECK(bad(R"({"route":"a,,b","payload":""})").find("bad hop") != std::string::npos);
  CHECK(bad(R"({"route":["a"],"payload_base64":"%%"})") == "'payload_base64' is not base64");
  CHECK(bad(R"({"headers":{"a b":"1"},"payload":""})") == "bad header 'a b'");
  CHECK(bad(R"({"id":"has space","payload":""})") == "bad message id");
}

TEST_CASE("JSON nested too deep is refused before any parser sees it") {
  CHECK(tobus::json_depth_within("{}"));
  CHECK(tobus::json_depth_within(R"({"a":[[1]]})", 3));
  CHECK(!tobus::json_depth_within(R"({"a":[[1]]})", 2));
  // Brackets in strings, escaped quotes included, do not count.
  CHECK(tobus::json_depth_within(R"({"a":"[[[[\"[[[["})", 1));
  std::string deep(100000, '[');
  CHECK(!tobus::json_depth_within(deep));
  std::string error;
  CHECK(!message_from_json(R"({"payload":"x","headers":)" + deep, error));
  CHECK(error == "JSON nested deeper than 32 levels");
  CHECK(!tobus::parse_flat_object(R"({"a":{"b":"c"}})"));
  CHECK(!tobus::parse_flat_object("{\"a\":" + deep));
}
