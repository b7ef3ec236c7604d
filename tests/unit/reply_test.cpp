// Reply parsing, fed raw protocol bytes through hiredis's own reader: no server needed.
#include <doctest/doctest.h>
#include <hiredis/hiredis.h>

#include <string>

#include "tobus/redis/redis.hpp"
#include "tobus/redis/stream.hpp"

using namespace tobus;

namespace {
Reply parse(const std::string& bytes) {
  redisReader* r = redisReaderCreate();
  REQUIRE(redisReaderFeed(r, bytes.data(), bytes.size()) == REDIS_OK);
  void* out = nullptr;
  REQUIRE(redisReaderGetReply(r, &out) == REDIS_OK);
  redisReaderFree(r);
  REQUIRE(out != nullptr);
  return Reply(static_cast<redisReply*>(out));
}
}  // namespace

TEST_CASE("XREADGROUP entries with binary values") {
  std::string payload("a\0b", 3);
  Reply r = parse("*1\r\n*2\r\n$8\r\ntobus:in\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*4\r\n$1\r\nv\r\n$1\r\n1\r\n$7\r\npayload\r\n$3\r\n" +
                  payload + "\r\n");
  auto entries = parse_entries(r[0][1]);
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].id == "1-0");
  REQUIRE(entries[0].fields.size() == 2);
  CHECK(entries[0].fields[1].second == payload);
}

TEST_CASE("deleted entries (nil fields) are skipped") {
  Reply r = parse("*2\r\n*2\r\n$3\r\n1-0\r\n*-1\r\n*2\r\n$3\r\n2-0\r\n*0\r\n");
  auto entries = parse_entries(r);
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].id == "2-0");
}

TEST_CASE("views over errors, nil and integers") {
  Reply e = parse("-NOGROUP no such group\r\n");
  CHECK(e.is_error());
  CHECK(e.str() == "NOGROUP no such group");
  Reply n = parse("*-1\r\n");
  CHECK(n.is_nil());
  CHECK(n.size() == 0);
  CHECK(n[3].is_nil());  // out of range is nil, never a crash
  Reply i = parse(":42\r\n");
  CHECK(i.integer() == 42);
  CHECK(i.str().empty());
}

TEST_CASE("stream ids compare as ids, not as text") {
  CHECK(id_less("9-1", "10-0"));
  CHECK(id_less("10-1", "10-2"));
  CHECK(!id_less("10-2", "10-2"));
  CHECK(!id_less("11-0", "10-99"));
}
