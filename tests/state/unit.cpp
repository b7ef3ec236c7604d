// Unit tests of tobus-state's pure functions: no Redis, milliseconds.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <string>

#include "tobus/state/doctor.hpp"
#include "tobus/state/state.hpp"

using namespace tobus;

TEST_CASE("valid_state_name") {
  CHECK(valid_state_name("job:42"));
  CHECK(valid_state_name("module:upper"));
  CHECK(valid_state_name("a@b/c.d-e_f:G9"));
  // Every message id tobus-send accepts names its job record (issue 11, finding 11).
  CHECK(valid_state_name("job:order#42"));
  CHECK(valid_state_name("job:" + std::string(200, 'n')));
  CHECK(valid_state_name("job:a=b*[x]'\"$!"));
  CHECK(valid_state_name(std::string(256, 'n')));
  CHECK_FALSE(valid_state_name(std::string(257, 'n')));
  CHECK_FALSE(valid_state_name(""));
  CHECK_FALSE(valid_state_name("a b"));
  CHECK_FALSE(valid_state_name("a\tb"));
  CHECK_FALSE(valid_state_name("a\x7f"));
  CHECK_FALSE(valid_state_name("caf\xc3\xa9"));
}

TEST_CASE("valid_state_field") {
  CHECK(valid_state_field("a@b/c.d-e_f:G9"));
  CHECK(valid_state_field(std::string(200, 'f')));
  CHECK_FALSE(valid_state_field(std::string(201, 'f')));
  CHECK_FALSE(valid_state_field("a#b"));
  CHECK_FALSE(valid_state_field("a=b"));
  CHECK_FALSE(valid_state_field(""));
}

TEST_CASE("escape_text keeps a value on one line") {
  CHECK(escape_text("plain text") == "plain text");
  CHECK(escape_text("a\nb\tc\rd\\e") == "a\\nb\\tc\\rd\\\\e");
  CHECK(escape_text(std::string("\0\x01\x7f", 3)) == "\\x00\\x01\\x7f");
  CHECK(escape_text("caf\xc3\xa9 \xe2\x82\xac") == "caf\xc3\xa9 \xe2\x82\xac");  // UTF-8 stays
  CHECK(escape_text("a\xff" "b\xc3") == "a\\xffb\\xc3");                     // not UTF-8: escaped
}

TEST_CASE("format_time_utc") {
  CHECK(format_time_utc(0) == "1970-01-01T00:00:00Z");
  CHECK(format_time_utc(1700000000123) == "2023-11-14T22:13:20Z");
  CHECK(format_time_utc(1700000000123, true) == "2023-11-14T22:13:20.123Z");
  CHECK(format_time_utc(1000, true) == "1970-01-01T00:00:01.000Z");
  CHECK(format_time_utc(-5) == "1970-01-01T00:00:00Z");
}

TEST_CASE("change events: parsed and printed") {
  Entry e{"1700000000123-0", {{"name", "job:1"}, {"op", "set"}, {"field", "a"}, {"value", "1 2"},
                              {"field", "b"}, {"value", "x\ny"}}};
  auto c = parse_state_change(e);
  REQUIRE(c);
  CHECK(c->name == "job:1");
  CHECK(c->fields == Fields{{"a", "1 2"}, {"b", "x\ny"}});
  CHECK(format_state_change(*c) == "job:1 set a=1 2 b=x\\ny");
  CHECK(state_change_json(*c) ==
        R"({"entry":"1700000000123-0","at":1700000000123,"name":"job:1","op":"set","fields":{"a":"1 2","b":"x\ny"}})");

  Entry d{"5-1", {{"name", "r"}, {"op", "del"}, {"field", "a"}, {"field", "b"}}};
  c = parse_state_change(d);
  REQUIRE(c);
  CHECK(format_state_change(*c) == "r del a b");
  CHECK(state_change_json(*c) == R"({"entry":"5-1","at":5,"name":"r","op":"del","deleted":["a","b"]})");

  Entry whole{"6-0", {{"name", "r"}, {"op", "del"}}};
  c = parse_state_change(whole);
  REQUIRE(c);
  CHECK(format_state_change(*c) == "r del");
  CHECK(state_change_json(*c) == R"({"entry":"6-0","at":6,"name":"r","op":"del","deleted":[]})");

  CHECK_FALSE(parse_state_change(Entry{"1-0", {{"junk", "1"}}}));
  CHECK_FALSE(parse_state_change(Entry{"1-0", {{"name", "x"}}}));
  // A value before any field is ignored, not a crash.
  c = parse_state_change(Entry{"1-0", {{"name", "x"}, {"op", "set"}, {"value", "v"}}});
  REQUIRE(c);
  CHECK(c->fields.empty());
}

TEST_CASE("parse_instance") {
  auto in = parse_instance("h:1:ab", R"({"host":"vm","pid":42,"started":10,"heartbeat":20,"jobs":4})");
  CHECK(in.known);
  CHECK(in.id == "h:1:ab");
  CHECK(in.host == "vm");
  CHECK(in.pid == 42);
  CHECK(in.heartbeat == 20);
  CHECK(in.jobs == 4);
  for (const char* junk : {"", "garbage", "[1,2]", "{\"heartbeat\":\"soon\"}", "{\"heartbeat\":1.5}",
                           "{\"heartbeat\":{}}", "{\"heartbeat\":1", "{\"host\":\"h\"}"})
    CHECK_FALSE(parse_instance("x", junk).known);
  CHECK_FALSE(parse_instance("x", std::string(5000, '{')).known);
}

namespace {
DeadLetter failed_hop() {
  Entry e{"10-0",
          {{"v", "1"}, {"id", "m1"}, {"route", "c,d"}, {"from", "b"}, {"created", "5"},
           {"reply", "ns:reply:x"}, {"rc", "3"}, {"trail", "a:0:6:1,b:3:7:1"}, {"h:lang", "en"},
           {"status", "failed"}, {"hop", "b"}, {"attempts", "2"}, {"error", "handler exited with 3"},
           {"stderr", "oops\n"}, {"payload", std::string("p\0q", 3)}, {"dead.reason", "handler exited with 3"},
           {"dead.stream", "ns:bus"}, {"dead.entry", "9-0"}, {"dead.at", "11"}, {"dead.hop", "b"},
           {"dead.rc", "3"}, {"dead.attempts", "2"}, {"dead.stderr", "oops\n"}}};
  return parse_dead_letter(e);
}
std::string field(const Fields& f, const std::string& name) {
  for (const auto& [k, v] : f)
    if (k == name) return v;
  return "<none>";
}
}  // namespace

TEST_CASE("parse_dead_letter splits the entry's fields from dead.*") {
  DeadLetter d = failed_hop();
  CHECK(d.entry == "10-0");
  CHECK(d.original.size() == 15);
  CHECK(d.original.back().first == "payload");
  CHECK(d.reason == "handler exited with 3");
  CHECK(d.stream == "ns:bus");
  CHECK(d.source_entry == "9-0");
  CHECK(d.at == 11);
  CHECK(d.hop == "b");
  CHECK(d.rc == 3);
  CHECK(d.attempts == 2);
  CHECK(d.stderr_tail == "oops\n");
  CHECK(d.message_id() == "m1");

  // Hand-written: no dead.* at all, or junk values.
  DeadLetter j = parse_dead_letter(Entry{"1-0", {{"junk", "1"}, {"dead.rc", "x"}}});
  CHECK(j.original.size() == 2);
  CHECK(j.reason.empty());
  CHECK_FALSE(j.rc);
  CHECK(j.message_id().empty());
  DeadLetter b = parse_dead_letter(Entry{"1-0", {{"id", "has space"}, {"dead.reason", "r"}, {"dead.rc", "x"}}});
  CHECK(b.message_id().empty());
  CHECK_FALSE(b.rc);
}

TEST_CASE("retry_fields") {
  std::string error;
  bool junk = true;
  DeadLetter d = failed_hop();

  SUBCASE("a failed hop goes back to that hop, then the rest of its route") {
    auto f = retry_fields(d, nullptr, error, junk);
    REQUIRE(f);
    CHECK_FALSE(junk);
    CHECK(field(*f, "id") == "m1");
    CHECK(field(*f, "route") == "b,c,d");
    CHECK(field(*f, "from") == "retry");
    CHECK(field(*f, "created") == "5");
    CHECK(field(*f, "reply") == "ns:reply:x");
    CHECK(field(*f, "h:lang") == "en");
    CHECK(field(*f, "payload") == std::string("p\0q", 3));
    CHECK(field(*f, "trail") == "a:0:6:1,b:3:7:1");
    for (const char* gone : {"status", "hop", "attempts", "error", "stderr", "rc", "dead.reason"})
      CHECK(field(*f, gone) == "<none>");
  }
  SUBCASE("--to wins") {
    std::vector<std::string> to{"x", "y"};
    auto f = retry_fields(d, &to, error, junk);
    REQUIRE(f);
    CHECK(field(*f, "route") == "x,y");
  }
  SUBCASE("no failed hop: the route it had") {
    d.hop.clear();
    auto f = retry_fields(d, nullptr, error, junk);
    REQUIRE(f);
    CHECK(field(*f, "route") == "c,d");
  }
  SUBCASE("no route left") {
    d = parse_dead_letter(Entry{"1-0", {{"v", "1"}, {"id", "e"}, {"route", ""}, {"payload", "x"}, {"dead.reason", "r"}}});
    CHECK_FALSE(retry_fields(d, nullptr, error, junk));
    CHECK_FALSE(junk);
    CHECK(error.find("no route left") != std::string::npos);
  }
  SUBCASE("junk: only with --to, and only with a payload") {
    d = parse_dead_letter(Entry{"1-0", {{"id", "j1"}, {"h:k", "v"}, {"h:bad key", "v"}, {"payload", "pp"}, {"dead.reason", "r"}}});
    CHECK_FALSE(retry_fields(d, nullptr, error, junk));
    CHECK(junk);
    CHECK(error.find("could not be decoded (bad header name") != std::string::npos);
    std::vector<std::string> to{"sink"};
    auto f = retry_fields(d, &to, error, junk);
    REQUIRE(f);
    CHECK(field(*f, "id") == "j1");
    CHECK(field(*f, "h:k") == "v");
    CHECK(field(*f, "h:bad key") == "<none>");
    CHECK(field(*f, "payload") == "pp");
    CHECK(field(*f, "route") == "sink");

    d = parse_dead_letter(Entry{"1-0", {{"id", "bad id"}, {"payload", "pp"}}});
    f = retry_fields(d, &to, error, junk);
    REQUIRE(f);
    CHECK(field(*f, "id") != "bad id");
    CHECK(valid_message_id(field(*f, "id")));

    d = parse_dead_letter(Entry{"1-0", {{"junk", "1"}}});
    CHECK_FALSE(retry_fields(d, &to, error, junk));
    CHECK(error.find("no payload") != std::string::npos);
  }
  SUBCASE("a dead.hop that is not a module name") {
    d.hop = "no such hop!";
    CHECK_FALSE(retry_fields(d, nullptr, error, junk));
    std::vector<std::string> to{"x"};
    CHECK(retry_fields(d, &to, error, junk));
  }
}

// --- doctor ------------------------------------------------------------------------------------

TEST_CASE("doctor: parse_info") {
  auto info = parse_info("# Server\r\nredis_version:7.0.15\r\nodd\r\n:x\r\n\r\n# Memory\r\nused_memory:123\r\n"
                         "maxmemory_policy:noeviction\r\nrdb:a:b\r\n");
  CHECK(info.size() == 4);
  CHECK(info["redis_version"] == "7.0.15");
  CHECK(info["used_memory"] == "123");
  CHECK(info["maxmemory_policy"] == "noeviction");
  CHECK(info["rdb"] == "a:b");  // split at the first colon only
  CHECK(parse_info("").empty());
  CHECK(parse_info("no newline:at end").at("no newline") == "at end");
}

TEST_CASE("doctor: version_at_least") {
  CHECK(version_at_least("7.0.15", "6.2.0"));
  CHECK(version_at_least("6.2.0", "6.2.0"));
  CHECK(version_at_least("6.2", "6.2.0"));
  CHECK(version_at_least("10.0.0", "6.2.0"));  // numbers, not text
  CHECK_FALSE(version_at_least("6.0.16", "6.2.0"));
  CHECK_FALSE(version_at_least("5.0.14", "6.2.0"));
  CHECK_FALSE(version_at_least("", "6.2.0"));
  CHECK_FALSE(version_at_least("7.x", "6.2.0"));
  CHECK_FALSE(version_at_least("7..0", "6.2.0"));
}

TEST_CASE("doctor: lines, JSON and the exit code") {
  DoctorCheck ok{"memory", CheckStatus::ok, "used 1M", "{\"used\":1}"};
  DoctorCheck warn{"persistence", CheckStatus::warn, "could not check: x", "{}"};
  DoctorCheck fail{"dead-letters", CheckStatus::fail, "growing", "{}"};
  CHECK(format_check_line(ok) == "ok    memory: used 1M");
  CHECK(format_check_line(warn) == "WARN  persistence: could not check: x");
  CHECK(format_check_line(fail) == "FAIL  dead-letters: growing");
  CHECK(doctor_json({ok}) ==
        R"({"status":"ok","checks":[{"name":"memory","status":"ok","message":"used 1M","details":{"used":1}}]})");
  CHECK(doctor_json({ok, warn, fail}).starts_with(R"({"status":"fail","checks":[)"));
  CHECK(doctor_json({}) == R"({"status":"ok","checks":[]})");
  CHECK(doctor_exit_code({ok}, false) == 0);
  CHECK(doctor_exit_code({ok, warn}, false) == 0);
  CHECK(doctor_exit_code({ok, warn}, true) == 1);
  CHECK(doctor_exit_code({fail, ok}, false) == 1);
  CHECK(doctor_exit_code({}, true) == 0);
}

TEST_CASE("doctor: the clock check") {
  // Redis's clock at the midpoint of a 10ms round trip: in agreement.
  CHECK(judge_clock(1'000'000, 1'000'010, 1'000'005).status == CheckStatus::ok);
  CHECK(judge_clock(1'000'000, 1'000'010, 1'000'005).message ==
        "this host and Redis agree within 0ms (round trip 10ms)");
  // 3s ahead of this host: a warning, and it says which way.
  auto w = judge_clock(1'000'000, 1'000'000, 1'003'000);
  CHECK(w.status == CheckStatus::warn);
  CHECK(w.message.starts_with("this host is 3000ms behind Redis"));
  CHECK(w.details == R"({"skew_ms":3000,"round_trip_ms":0})");
  auto f = judge_clock(1'000'000, 1'000'000, 990'000);
  CHECK(f.status == CheckStatus::fail);
  CHECK(f.message.starts_with("this host is 10000ms ahead of Redis"));
  // A slow round trip excuses what it cannot measure: 1.5s off with a 2s round trip.
  CHECK(judge_clock(1'000'000, 1'002'000, 1'002'500).status == CheckStatus::ok);
}
