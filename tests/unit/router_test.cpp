#include <doctest/doctest.h>

#include "tobus/bus/router.hpp"

using namespace tobus;

namespace {
std::string field(const Fields& f, const std::string& name) {
  for (const auto& [k, v] : f)
    if (k == name) return v;
  return "<none>";
}
Message msg(std::vector<std::string> route, std::string reply = "") {
  Message m;
  m.id = "id1";
  m.route = std::move(route);
  m.reply = std::move(reply);
  m.payload = std::string(1, 'p');  // (= "p" trips GCC 12's false -Wrestrict at -O3)
  return m;
}
}  // namespace

TEST_CASE("a message with hops left goes to the first hop's inbox, unchanged") {
  Keys k("ns");
  Message m = msg({"upper", "rev"});
  Fields raw = encode(m);
  auto d = route(k, m, raw, false, "1-0");
  REQUIRE(d.writes.size() == 1);
  CHECK(d.writes[0].key == "ns:in:upper");
  CHECK(d.writes[0].fields == raw);
  CHECK(d.next_hop == "upper");
}

TEST_CASE("a finished journey goes to the reply stream, or ends when nobody waits") {
  Keys k("ns");
  Message m = msg({}, "ns:reply:me");
  auto d = route(k, m, encode(m), false, "1-0");
  REQUIRE(d.writes.size() == 1);
  CHECK(d.writes[0].key == "ns:reply:me");
  CHECK(d.writes[0].is_reply);
  CHECK(field(d.writes[0].fields, "status") == "done");
  CHECK(field(d.writes[0].fields, "payload") == "p");

  Message quiet = msg({});
  CHECK(route(k, quiet, encode(quiet), false, "1-0").writes.empty());
}

TEST_CASE("a failure is dead-lettered and the sender told") {
  Keys k("ns");
  Message m = msg({"rev"}, "ns:reply:me");
  m.failure = Failure{"upper", 2, 1, "handler exited with 2", "boom\n"};
  Fields raw = encode(m);
  auto d = route(k, m, raw, false, "5-0");
  REQUIRE(d.writes.size() == 2);
  CHECK(d.writes[0].key == "ns:dead");
  CHECK(field(d.writes[0].fields, "dead.reason") == "handler exited with 2");
  CHECK(field(d.writes[0].fields, "dead.rc") == "2");
  CHECK(field(d.writes[0].fields, "dead.entry") == "5-0");
  CHECK(field(d.writes[0].fields, "dead.stderr") == "boom\n");
  CHECK(d.writes[1].key == "ns:reply:me");
  CHECK(field(d.writes[1].fields, "status") == "failed");
  CHECK(field(d.writes[1].fields, "hop") == "upper");
}

TEST_CASE("a reply key outside the namespace is refused") {
  Keys k("ns");
  Message m = msg({}, "other:key");
  auto d = route(k, m, encode(m), false, "1-0");
  REQUIRE(d.writes.size() == 1);
  CHECK(d.writes[0].key == "ns:dead");
  CHECK(field(d.writes[0].fields, "dead.reason").find("not under 'ns:reply:'") != std::string::npos);
}

TEST_CASE("a message changed by a hook is re-encoded") {
  Keys k("ns");
  Message m = msg({"old"});
  Fields raw = encode(m);
  m.route = {"new"};
  auto d = route(k, m, raw, true, "1-0");
  CHECK(d.writes[0].key == "ns:in:new");
  CHECK(field(d.writes[0].fields, "route") == "new");
}
