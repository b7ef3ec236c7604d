#include <doctest/doctest.h>

#include <cstdlib>
#include <ctime>

#include "tobus/core/error.hpp"
#include "tobus/util/json.hpp"
#include "tobus/watch/watch.hpp"

using namespace tobus;

namespace {

const Keys keys("ns");

Entry entry(std::string id, Fields fields) {
  Entry e;
  e.id = std::move(id);
  e.fields = std::move(fields);
  return e;
}

// Times in the tests are UTC.
struct Utc {
  Utc() {
    setenv("TZ", "UTC", 1);
    tzset();
  }
} utc;

Event sample() {
  Event e;
  e.kind = EventKind::handled;
  e.stream = "ns:bus";
  e.entry = "1000-2";
  e.time_ms = 3723004;  // 01:02:03.004
  e.module = "upper";
  e.message.id = "m1";
  e.message.route = {"rev", "b"};
  e.message.from = "upper";
  e.message.headers = {{"lang", "en"}, {"k", "v"}};
  e.message.payload = std::string("HI\0\n", 4);
  e.rc = 0;
  e.duration_ms = 12;
  e.attempts = 2;
  e.error = "why";
  e.stderr_tail = "err\n";
  return e;
}

}  // namespace

TEST_CASE("escaping keeps printable text and shows everything else") {
  CHECK(escape_bytes("plain text") == "plain text");
  CHECK(escape_bytes("a\"b\\c") == "a\\\"b\\\\c");
  CHECK(escape_bytes("l1\nl2\r\t") == "l1\\nl2\\r\\t");
  CHECK(escape_bytes(std::string("\0\x1b\x7f", 3)) == "\\x00\\x1b\\x7f");
  CHECK(escape_bytes("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80") == "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");
  CHECK(escape_bytes("\xff\xfe") == "\\xff\\xfe");
  CHECK(escape_bytes("\xc3") == "\\xc3");              // truncated character
  CHECK(escape_bytes("\xc0\xaf") == "\\xc0\\xaf");     // overlong
  CHECK(escape_bytes("\xc2\x85") == "\\xc2\\x85");     // a C1 control
  CHECK(escape_bytes("\xc2\xa0") == "\xc2\xa0");       // no-break space is printable
}

TEST_CASE("a preview is quoted, and says how long a cut payload was") {
  CHECK(preview("") == "\"\"");
  CHECK(preview("hello") == "\"hello\"");
  CHECK(preview(std::string(64, 'a')) == "\"" + std::string(64, 'a') + "\"");
  CHECK(preview(std::string(65, 'a')) == "\"" + std::string(64, 'a') + "\"... (65 bytes)");
  CHECK(preview("abcdef", 3) == "\"abc\"... (6 bytes)");
  // Not inside a character: "é" is two bytes, the cut backs up before it.
  CHECK(preview("ab\xc3\xa9z", 3) == "\"ab\"... (5 bytes)");
  CHECK(preview("\xff\xff\xff\xff", 2) == "\"\\xff\\xff\"... (4 bytes)");
}

TEST_CASE("nearest-rank percentiles") {
  CHECK(!percentile({}, 50));
  CHECK(percentile({7}, 50) == 7);
  CHECK(percentile({7}, 99) == 7);
  std::vector<std::int64_t> v;
  for (int i = 100; i >= 1; --i) v.push_back(i);
  CHECK(percentile(v, 50) == 50);
  CHECK(percentile(v, 99) == 99);
  CHECK(percentile(v, 100) == 100);
  CHECK(percentile({1, 2, 3, 1000}, 50) == 2);
  CHECK(percentile({1, 2, 3, 1000}, 99) == 1000);
}

TEST_CASE("event and payload-mode names") {
  for (auto k : {EventKind::sent, EventKind::routed, EventKind::handled, EventKind::failed, EventKind::dead,
                 EventKind::delivered, EventKind::done})
    CHECK(parse_event_name(event_name(k)) == k);
  CHECK(!parse_event_name("nope"));
  CHECK(parse_payload_mode("none") == PayloadMode::none);
  CHECK(parse_payload_mode("full") == PayloadMode::full);
  CHECK(!parse_payload_mode("all"));
}

TEST_CASE("every --format token") {
  Event e = sample();
  CHECK(Formatter("%e|%t|%T|%m|%i|%r|%d|%a").format(e) == "handled|3723004|01:02:03.004|upper|m1|0|12|2");
  CHECK(Formatter("%p").format(e) == std::string("HI\0\n", 4));
  CHECK(Formatter("%P").format(e) == "\"HI\\x00\\n\"");
  CHECK(Formatter("%h|%R|%f|%E|%X|%s|%S").format(e) == "lang=en,k=v|rev,b|upper|why|err\n|1000-2|ns:bus");
  CHECK(Formatter("100%% \\n\\t\\r\\\\\\0.").format(e) == std::string("100% \n\t\r\\\0.", 11));
  CHECK(Formatter("").format(e).empty());
  CHECK(Formatter("plain").format(e) == "plain");
  Event bare;  // what an event does not have prints as nothing
  bare.kind = EventKind::sent;
  CHECK(Formatter("[%r][%d][%a][%m][%h]").format(bare) == "[][][][][]");
}

TEST_CASE("a bad --format is a usage error naming the token") {
  for (const char* bad : {"%z", "abc%", "\\q", "x\\"}) {
    CAPTURE(bad);
    try {
      Formatter f(bad);
      FAIL("no error");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::usage);
    }
  }
  try {
    Formatter f("%i %z");
  } catch (const Error& e) {
    CHECK(std::string(e.what()) == "bad --format token '%z'");
  }
}

TEST_CASE("the readable line") {
  Event e = sample();
  CHECK(format_line(e, PayloadMode::preview, false) ==
        "01:02:03.004 handled   upper m1 rc=0 12ms attempts=2 \"HI\\x00\\n\"\n");
  CHECK(format_line(e, PayloadMode::none, false) == "01:02:03.004 handled   upper m1 rc=0 12ms attempts=2\n");
  e.message.payload = std::string(100, 'x');
  CHECK(format_line(e, PayloadMode::full, false).ends_with(" \"" + std::string(100, 'x') + "\"\n"));
  CHECK(format_line(e, PayloadMode::preview, true).starts_with("01:02:03.004 \x1b[32mhandled\x1b[0m   upper"));
  Event s;
  s.kind = EventKind::sent;
  s.time_ms = 0;
  s.message.id = "m2";
  s.message.route = {"a", "b"};
  s.message.payload = "p";
  CHECK(format_line(s, PayloadMode::preview, false) == "00:00:00.000 sent      - m2 route=a,b \"p\"\n");
  s.kind = EventKind::failed;
  s.module = "b";
  s.rc = 3;
  s.duration_ms = 5;
  s.attempts = 1;
  s.error = "handler exited with 3";
  CHECK(format_line(s, PayloadMode::none, false) ==
        "00:00:00.000 failed    b m2 rc=3 5ms attempts=1 error=\"handler exited with 3\"\n");
}

TEST_CASE("bus entries: sent, handled, failed, and the end of a journey") {
  auto sent = events_from_entry(keys, "ns:bus",
                                entry("5-0", {{"v", "1"}, {"id", "m"}, {"route", "a,b"}, {"from", "send"},
                                              {"payload", "x"}}));
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].kind == EventKind::sent);
  CHECK(sent[0].module.empty());
  CHECK(sent[0].time_ms == 5);
  CHECK(sent[0].entry == "5-0");
  CHECK(sent[0].stream == "ns:bus");
  CHECK(!sent[0].rc);

  auto handled = events_from_entry(
      keys, "ns:bus",
      entry("6-0", {{"v", "1"}, {"id", "m"}, {"route", "b"}, {"from", "a"}, {"trail", "a:0:6:4"}, {"payload", "X"}}));
  REQUIRE(handled.size() == 1);
  CHECK(handled[0].kind == EventKind::handled);
  CHECK(handled[0].module == "a");
  CHECK(handled[0].rc == 0);
  CHECK(handled[0].duration_ms == 4);

  auto last = events_from_entry(keys, "ns:bus",
                                entry("7-0", {{"v", "1"}, {"id", "m"}, {"route", ""}, {"from", "b"},
                                              {"trail", "a:0:6:4,b:0:7:1"}, {"reply", "ns:reply:s"},
                                              {"payload", "Y"}}));
  REQUIRE(last.size() == 2);
  CHECK(last[0].kind == EventKind::handled);
  CHECK(last[0].duration_ms == 1);
  CHECK(last[1].kind == EventKind::delivered);
  CHECK(last[1].module.empty());
  CHECK(last[1].message.payload == "Y");
  CHECK(last[1].entry == "7-0");

  auto done = events_from_entry(keys, "ns:bus",
                                entry("7-1", {{"v", "1"}, {"id", "m"}, {"route", ""}, {"from", "b"},
                                              {"trail", "b:0:7:1"}, {"payload", "Y"}}));
  REQUIRE(done.size() == 2);
  CHECK(done[1].kind == EventKind::done);

  // A reply key outside the namespace is dead-lettered by the bus: no delivered event.
  auto bad_reply = events_from_entry(keys, "ns:bus",
                                     entry("7-2", {{"v", "1"}, {"id", "m"}, {"route", ""}, {"from", "b"},
                                                   {"trail", "b:0:7:1"}, {"reply", "other:key"}, {"payload", ""}}));
  CHECK(bad_reply.size() == 1);

  auto failed = events_from_entry(
      keys, "ns:bus",
      entry("8-0", {{"v", "1"}, {"id", "m"}, {"route", ""}, {"from", "b"}, {"rc", "3"}, {"trail", "a:0:6:4,b:3:8:2"},
                    {"status", "failed"}, {"hop", "b"}, {"attempts", "2"}, {"error", "handler exited with 3"},
                    {"stderr", "no\n"}, {"payload", "X"}}));
  REQUIRE(failed.size() == 1);
  CHECK(failed[0].kind == EventKind::failed);
  CHECK(failed[0].module == "b");
  CHECK(failed[0].rc == 3);
  CHECK(failed[0].duration_ms == 2);
  CHECK(failed[0].attempts == 2);
  CHECK(failed[0].error == "handler exited with 3");
  CHECK(failed[0].stderr_tail == "no\n");

  CHECK(events_from_entry(keys, "ns:bus", entry("9-0", {{"id", "junk"}, {"payload", "x"}})).empty());
  CHECK(events_from_entry(keys, "other:bus", entry("5-0", {{"v", "1"}, {"id", "m"}, {"route", "a"}, {"payload", ""}}))
            .empty());
}

TEST_CASE("inbox and dead-letter entries") {
  auto routed = events_from_entry(keys, "ns:in:upper",
                                  entry("5-3", {{"v", "1"}, {"id", "m"}, {"route", "upper,b"}, {"payload", "x"}}));
  REQUIRE(routed.size() == 1);
  CHECK(routed[0].kind == EventKind::routed);
  CHECK(routed[0].module == "upper");

  auto dead = events_from_entry(
      keys, "ns:dead",
      entry("9-0", {{"v", "1"}, {"id", "m"}, {"route", ""}, {"from", "b"}, {"trail", "b:3:8:2"}, {"status", "failed"},
                    {"hop", "b"}, {"rc", "3"}, {"payload", "X"}, {"dead.reason", "handler exited with 3"},
                    {"dead.stream", "ns:bus"}, {"dead.entry", "8-0"}, {"dead.at", "9"}, {"dead.hop", "b"},
                    {"dead.rc", "3"}, {"dead.attempts", "1"}, {"dead.stderr", "no\n"}}));
  REQUIRE(dead.size() == 1);
  CHECK(dead[0].kind == EventKind::dead);
  CHECK(dead[0].module == "b");
  CHECK(dead[0].rc == 3);
  CHECK(dead[0].attempts == 1);
  CHECK(dead[0].error == "handler exited with 3");
  CHECK(dead[0].stderr_tail == "no\n");
  CHECK(dead[0].duration_ms == 2);

  // Undecodable: what can be read of it, and the module from the inbox it was taken from.
  auto junk = events_from_entry(keys, "ns:dead",
                                entry("9-1", {{"id", "j1"}, {"payload", "raw"}, {"dead.reason", "missing field 'v'"},
                                              {"dead.stream", "ns:in:x"}, {"dead.entry", "1-0"}}));
  REQUIRE(junk.size() == 1);
  CHECK(junk[0].message.id == "j1");
  CHECK(junk[0].message.payload == "raw");
  CHECK(junk[0].module == "x");
  CHECK(junk[0].error == "missing field 'v'");
  CHECK(!junk[0].rc);
}

TEST_CASE("within a millisecond, cause comes before effect") {
  Fields base{{"v", "1"}, {"id", "m"}, {"payload", "x"}};
  auto with = [&](Fields extra) {
    Fields f = base;
    for (auto& kv : extra) f.push_back(kv);
    return f;
  };
  std::vector<Event> events;
  // As one XREAD reply might group them: per stream, and sequence numbers unrelated across streams.
  for (auto& e : events_from_entry(keys, "ns:bus", entry("10-5", with({{"route", ""}, {"from", "a"}, {"trail", "a:0:10:0"}}))))
    events.push_back(e);
  for (auto& e : events_from_entry(keys, "ns:bus", entry("10-7", with({{"route", "a"}, {"from", "send"}}))))
    events.push_back(e);
  for (auto& e : events_from_entry(keys, "ns:in:a", entry("10-0", with({{"route", "a"}, {"from", "send"}}))))
    events.push_back(e);
  sort_events(events);
  REQUIRE(events.size() == 4);
  CHECK(events[0].kind == EventKind::sent);
  CHECK(events[1].kind == EventKind::routed);
  CHECK(events[2].kind == EventKind::handled);
  CHECK(events[3].kind == EventKind::done);
}

TEST_CASE("filters") {
  Event e = sample();
  WatchFilter f;
  CHECK(f.matches(e));
  f.modules = {"x", "upper"};
  CHECK(f.matches(e));
  f.modules = {"x"};
  CHECK(!f.matches(e));
  f = {};
  f.id = "m1";
  CHECK(f.matches(e));
  f.id = "m";
  CHECK(!f.matches(e));
  f = {};
  f.headers = {{"lang", "en"}, {"k", "v"}};
  CHECK(f.matches(e));
  f.headers = {{"lang", "fr"}};
  CHECK(!f.matches(e));
  f.headers = {{"missing", ""}};
  CHECK(!f.matches(e));
  f = {};
  f.grep.emplace("^HI\\x00");
  CHECK(f.matches(e));
  f.grep.emplace("^I");
  CHECK(!f.matches(e));
  f = {};
  f.failed_only = true;
  CHECK(!f.matches(e));
  e.kind = EventKind::dead;
  CHECK(f.matches(e));
  f = {};
  f.events = {EventKind::sent, EventKind::dead};
  CHECK(f.matches(e));
  e.kind = EventKind::routed;
  CHECK(!f.matches(e));
}

TEST_CASE("a JSON record carries the envelope tobus-send --json reads") {
  Event e = sample();
  std::string line = event_json(e, PayloadMode::full);
  CHECK(line.starts_with(
      "{\"event\":\"handled\",\"time\":3723004,\"module\":\"upper\",\"stream\":\"ns:bus\",\"entry\":\"1000-2\","
      "\"duration_ms\":12,\"attempts\":2,\"error\":\"why\",\"stderr\":\"err\\n\",\"id\":\"m1\""));
  std::string error;
  auto m = message_from_json(line, error);
  REQUIRE(m);
  CHECK(m->id == "m1");
  CHECK(m->route == std::vector<std::string>{"rev", "b"});
  CHECK(m->headers == e.message.headers);
  CHECK(m->payload == e.message.payload);

  e.message.payload = std::string("\xff\x00", 2);
  line = event_json(e, PayloadMode::full);
  CHECK(line.find("\"payload_base64\":\"/wA=\"") != std::string::npos);
  m = message_from_json(line, error);
  REQUIRE(m);
  CHECK(m->payload == e.message.payload);

  line = event_json(e, PayloadMode::preview);
  CHECK(line.ends_with(",\"payload_size\":2,\"preview\":\"\\\\xff\\\\x00\"}"));
  CHECK(line.find("\"payload\"") == std::string::npos);
  CHECK(!message_from_json(line, error));  // not replayable without the payload
  line = event_json(e, PayloadMode::none);
  CHECK(line.ends_with(",\"payload_size\":2}"));
  CHECK(parse_flat_object(R"({"a":"b"})"));  // the JSON helpers link
}

TEST_CASE("a journey, as a tree and as JSON") {
  auto all = [](std::vector<Event> v, std::vector<Event> more) {
    for (auto& e : more) v.push_back(e);
    return v;
  };
  Fields f{{"v", "1"}, {"id", "m"}};
  auto fields = [&](Fields extra) {
    Fields out = f;
    for (auto& kv : extra) out.push_back(kv);
    return out;
  };
  std::vector<Event> events;
  events = all(events, events_from_entry(keys, "ns:bus", entry("100-0", fields({{"route", "a,b"}, {"from", "send"}, {"payload", "x"}}))));
  events = all(events, events_from_entry(keys, "ns:in:a", entry("101-0", fields({{"route", "a,b"}, {"from", "send"}, {"payload", "x"}}))));
  events = all(events, events_from_entry(keys, "ns:bus", entry("105-0", fields({{"route", "b"}, {"from", "a"}, {"trail", "a:0:105:4"}, {"payload", "X"}}))));
  events = all(events, events_from_entry(keys, "ns:in:b", entry("106-0", fields({{"route", "b"}, {"from", "a"}, {"trail", "a:0:105:4"}, {"payload", "X"}}))));
  Journey j("m");
  for (const auto& e : events) j.add(e);
  CHECK(!j.ended());
  CHECK(j.text(PayloadMode::preview) ==
        "m: in flight\n"
        "  sent +0ms route=a,b \"x\"\n"
        "  hop a\n"
        "    routed +1ms \"x\"\n"
        "    handled +5ms rc=0 4ms \"X\"\n"
        "  hop b\n"
        "    routed +6ms \"X\"\n");
  auto failed = events_from_entry(
      keys, "ns:bus",
      entry("110-0", fields({{"route", ""}, {"from", "b"}, {"rc", "3"}, {"trail", "a:0:105:4,b:3:110:3"}, {"status", "failed"},
                             {"hop", "b"}, {"attempts", "1"}, {"error", "handler exited with 3"}, {"stderr", "one\ntwo\n"},
                             {"payload", "X"}})));
  auto dead = events_from_entry(
      keys, "ns:dead",
      entry("111-0", fields({{"route", ""}, {"trail", "a:0:105:4,b:3:110:3"}, {"status", "failed"}, {"hop", "b"},
                             {"payload", "X"}, {"dead.reason", "handler exited with 3"}, {"dead.hop", "b"},
                             {"dead.rc", "3"}, {"dead.stderr", "one\ntwo\n"}})));
  for (const auto& e : all(failed, dead)) j.add(e);
  CHECK(j.ended());
  CHECK(j.text(PayloadMode::none) ==
        "m: dead after 11ms\n"
        "  sent +0ms route=a,b\n"
        "  hop a\n"
        "    routed +1ms\n"
        "    handled +5ms rc=0 4ms\n"
        "  hop b\n"
        "    routed +6ms\n"
        "    failed +10ms rc=3 3ms attempts=1 error=\"handler exited with 3\"\n"
        "      | one\n"
        "      | two\n"
        "  dead +11ms rc=3 reason=\"handler exited with 3\"\n");
  std::string json = j.json(PayloadMode::none);
  CHECK(json.starts_with("{\"id\":\"m\",\"end\":\"dead\",\"time\":100,\"duration_ms\":11,\"nodes\":[{\"event\":\"sent\""));
  CHECK(json.find("{\"hop\":\"a\",\"events\":[{\"event\":\"routed\"") != std::string::npos);
  CHECK(json.ends_with("}]}\n"));

  // The dead letter shows the handler's stderr when the failure report is not in the history.
  Journey only_dead("m");
  for (const auto& e : dead) only_dead.add(e);
  CHECK(only_dead.text(PayloadMode::none) ==
        "m: dead after 0ms\n"
        "  dead +0ms rc=3 reason=\"handler exited with 3\"\n"
        "    | one\n"
        "    | two\n");
}

namespace {

// Events of entries for the fan-out tests: `fan` is "GROUP/I/N" or empty.
std::vector<Event> at(const std::string& stream, const std::string& id, Fields fields, const std::string& fan = "") {
  Fields f{{"v", "1"}, {"id", "f"}};
  for (auto& kv : fields) f.push_back(kv);
  if (!fan.empty()) {
    auto a = fan.find('/'), b = fan.rfind('/');
    f.emplace_back("fan", fan.substr(0, a));
    f.emplace_back("fan.i", fan.substr(a + 1, b - a - 1));
    f.emplace_back("fan.n", fan.substr(b + 1));
  }
  return events_from_entry(keys, stream, entry(id, f));
}

void add_all(Journey& j, const std::vector<Event>& events) {
  for (const auto& e : events) j.add(e);
}

}  // namespace

TEST_CASE("a fan-out's copies are lines of their own, each ending on its own") {
  Journey j("f");
  add_all(j, at("ns:bus", "100-0", {{"route", "@t"}, {"from", "send"}, {"payload", "x"}}));
  add_all(j, at("ns:in:a", "101-0", {{"route", "a"}, {"from", "send"}, {"payload", "x"}}, "100-0/0/2"));
  add_all(j, at("ns:in:b", "101-0", {{"route", "b"}, {"from", "send"}, {"payload", "x"}}, "100-0/1/2"));
  add_all(j, at("ns:bus", "104-0", {{"route", ""}, {"from", "a"}, {"trail", "a:0:104:3"}, {"payload", "A"}}, "100-0/0/2"));
  CHECK(!j.ended());  // copy 1 still goes
  add_all(j, at("ns:bus", "105-0",
                {{"route", ""}, {"from", "b"}, {"rc", "2"}, {"trail", "b:2:105:4"}, {"status", "failed"}, {"hop", "b"},
                 {"attempts", "1"}, {"error", "handler exited with 2"}, {"stderr", "nope\n"}, {"payload", "x"}},
                "100-0/1/2"));
  CHECK(!j.ended());
  auto dead = at("ns:dead", "106-0",
                 {{"route", ""}, {"from", "b"}, {"trail", "b:2:105:4"}, {"status", "failed"}, {"hop", "b"},
                  {"payload", "x"}, {"dead.reason", "handler exited with 2"}, {"dead.hop", "b"}, {"dead.rc", "2"}},
                 "100-0/1/2");
  add_all(j, dead);
  CHECK(j.ended());
  add_all(j, dead);  // a duplicate end changes nothing
  CHECK(j.ended());
  CHECK(j.text(PayloadMode::none) ==
        "f: dead after 6ms (1 dead, 1 done)\n"
        "  sent +0ms route=@t\n"
        "  fan-out: 2 copies\n"
        "    copy 0 of 2\n"
        "      hop a\n"
        "        routed +1ms\n"
        "        handled +4ms rc=0 3ms\n"
        "      done +4ms rc=0\n"
        "    copy 1 of 2\n"
        "      hop b\n"
        "        routed +1ms\n"
        "        failed +5ms rc=2 4ms attempts=1 error=\"handler exited with 2\"\n"
        "          | nope\n"
        "      dead +6ms rc=2 reason=\"handler exited with 2\"\n"
        "      dead +6ms rc=2 reason=\"handler exited with 2\"\n");
  std::string json = j.json(PayloadMode::none);
  CHECK(json.starts_with("{\"id\":\"f\",\"end\":\"dead\",\"ends\":{\"dead\":1,\"done\":1},\"time\":100,"));
  CHECK(json.find("{\"fanout\":\"100-0\",\"copies\":2,\"nodes\":[{\"copy\":0,\"of\":2,\"nodes\":[{\"hop\":\"a\"") !=
        std::string::npos);
  // The readable line and %c say which copy an event is of.
  auto copy = at("ns:in:b", "101-0", {{"route", "b"}, {"payload", "x"}}, "100-0/1/2");
  CHECK(format_line(copy[0], PayloadMode::none, false) == "00:00:00.101 routed    b f copy=1/2\n");
  CHECK(Formatter("%c").format(copy[0]) == "1/2");
  CHECK(event_json(copy[0], PayloadMode::none).find("\"fanout\":\"100-0\",\"copy\":1,\"copies\":2,") != std::string::npos);
}

TEST_CASE("a join makes the copies one line again") {
  Journey j("f");
  add_all(j, at("ns:bus", "100-0", {{"route", "@t,j"}, {"from", "send"}, {"payload", "x"}}));
  for (std::string i : {"0", "1"}) {
    std::string m = i == "0" ? "a" : "b";
    add_all(j, at("ns:in:" + m, "101-" + i, {{"route", m + ",j"}, {"payload", "x"}}, "100-0/" + i + "/2"));
    add_all(j, at("ns:bus", "102-" + i, {{"route", "j"}, {"from", m}, {"trail", m + ":0:102:1"}, {"payload", m}},
                  "100-0/" + i + "/2"));
    add_all(j, at("ns:in:j", "103-" + i, {{"route", "j"}, {"from", m}, {"trail", m + ":0:102:1"}, {"payload", m}},
                  "100-0/" + i + "/2"));
  }
  CHECK(!j.ended());
  add_all(j, at("ns:bus", "104-0", {{"route", ""}, {"from", "j"}, {"trail", "a:0:102:1,j:0:104:1"}, {"payload", "a\nb"}}));
  CHECK(j.ended());
  CHECK(j.text(PayloadMode::none) ==
        "f: done after 4ms\n"
        "  sent +0ms route=@t,j\n"
        "  fan-out: 2 copies\n"
        "    copy 0 of 2\n"
        "      hop a\n"
        "        routed +1ms\n"
        "        handled +2ms rc=0 1ms\n"
        "      hop j\n"
        "        routed +3ms\n"
        "    copy 1 of 2\n"
        "      hop b\n"
        "        routed +1ms\n"
        "        handled +2ms rc=0 1ms\n"
        "      hop j\n"
        "        routed +3ms\n"
        "  hop j\n"
        "    handled +4ms rc=0 1ms\n"
        "  done +4ms rc=0\n");
}

TEST_CASE("--grep patterns: ECMAScript on the payload's bytes, bad ones a usage error") {
  CHECK(PayloadPattern("b.d").found_in("abcd"));
  CHECK(!PayloadPattern("^b").found_in("abc"));
  CHECK(PayloadPattern("\\x00\\xff$").found_in(std::string("x\0\xff", 3)));
  CHECK(PayloadPattern("(?:ab)+").found_in("xabab"));
  try {
    PayloadPattern bad("(");
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::usage);
    CHECK(std::string(e.what()).starts_with("bad --grep '(': "));
  }
}
