#include <doctest/doctest.h>

#include "tobus/bus/router.hpp"
#include "tobus/core/result.hpp"

using namespace tobus;

namespace {
Message finished() {
  Message m;
  m.id = "m1";
  m.reply = "ns:reply:me";
  m.rc = 0;
  m.trail = {{"a", 0, 10, 1}, {"b", 0, 12, 2}};
  m.headers = {{"lang", "en"}};
  m.payload = std::string("ok\0", 3);
  return m;
}
using F = std::pair<std::string, std::string>;
}  // namespace

TEST_CASE("the result entry the router writes, field by field in order") {
  Keys k("ns");
  Message m = finished();
  auto d = route(k, m, encode(m), false, "1-0");
  REQUIRE(d.writes.size() == 1);
  CHECK(d.writes[0].fields == Fields{F{"v", "1"}, F{"id", "m1"}, F{"status", "done"}, F{"rc", "0"},
                                     F{"trail", "a:0:10:1,b:0:12:2"}, F{"payload", std::string("ok\0", 3)}});

  Message copy = finished();
  copy.fan = Fanout{"9-0", 3, 2};
  copy.failure = Failure{"b", 4, 2, "handler exited with 4", "no\n"};
  d = route(k, copy, encode(copy), false, "2-0");
  REQUIRE(d.writes.size() == 3);  // the dead letter, the group's record, the result
  CHECK(d.writes[2].fields == Fields{F{"v", "1"}, F{"id", "m1"}, F{"status", "failed"}, F{"hop", "b"},
                                     F{"rc", "4"}, F{"attempts", "2"}, F{"error", "handler exited with 4"},
                                     F{"stderr", "no\n"}, F{"trail", "a:0:10:1,b:0:12:2"}, F{"fan", "9-0"},
                                     F{"fan.n", "3"}, F{"fan.i", "2"}, F{"payload", ""}});
  CHECK(encode_result(copy) == d.writes[2].fields);
}

TEST_CASE("encode_result then decode_result") {
  Message m = finished();
  Fields f = encode_result(m);
  DecodeError why;
  auto r = decode_result(f, why);
  REQUIRE(r);
  CHECK(r->done());
  CHECK(r->id == "m1");
  CHECK(r->rc == 0);
  CHECK(r->trail == m.trail);
  CHECK_FALSE(r->fan);
  CHECK(r->payload == m.payload);

  m.rc = 7;
  m.fan = Fanout{"9-0", 2, 1};
  m.failure = Failure{"b", 7, 3, "handler exited with 7", "x\ny\n"};
  f = encode_result(m);
  r = decode_result(f, why);
  REQUIRE(r);
  CHECK_FALSE(r->done());
  CHECK(r->failure == m.failure);
  CHECK(r->rc == 7);
  CHECK(r->fan == m.fan);
  CHECK(r->payload.empty());
}

TEST_CASE("decode_result refuses malformed entries and says why") {
  const Fields good = encode_result(finished());
  auto refused = [&](Fields f, std::string_view why) {
    DecodeError e;
    bool none = !decode_result(f, e);
    CHECK_MESSAGE(none, why);
    CHECK_MESSAGE(e.reason.find(why) != std::string::npos, e.reason);
  };
  auto with = [&](std::string name, std::string value) {
    Fields f = good;
    bool replaced = false;
    for (auto& [k, v] : f)
      if (k == name) v = value, replaced = true;
    if (!replaced) f.emplace_back(std::move(name), std::move(value));
    return f;
  };
  auto without = [&](const std::string& name) {
    Fields f;
    for (const auto& kv : good)
      if (kv.first != name) f.push_back(kv);
    return f;
  };
  refused(without("v"), "missing field 'v'");
  refused(without("id"), "missing field 'id'");
  refused(without("status"), "missing field 'status'");
  refused(with("v", "2"), "protocol version");
  refused(with("id", "has space"), "bad message id");
  refused(with("id", std::string(201, 'x')), "bad message id");
  refused(with("status", "ok"), "unknown status");
  refused(with("rc", "x"), "bad 'rc'");
  refused(with("rc", "99999999999"), "bad 'rc'");
  refused(with("rc", ""), "bad 'rc'");
  refused(with("attempts", "1.5"), "bad 'attempts'");
  refused(with("trail", "a:0"), "bad 'trail'");
  refused(with("fan.n", "0"), "bad 'fan.n'");
  refused(with("fan.i", "-1"), "bad 'fan.i'");
  refused(with("fan.n", "2"), "incomplete fan-out");  // no group, no index
  Fields out_of_range = with("fan", "g");
  out_of_range.emplace_back("fan.n", "2");
  out_of_range.emplace_back("fan.i", "2");
  refused(out_of_range, "incomplete fan-out");

  // Unknown fields are ignored; a missing payload is an empty one; a repeated field: the last wins.
  DecodeError e;
  Fields lenient = without("payload");
  lenient.emplace_back("x-new", "1");
  lenient.emplace_back("status", "failed");
  auto r = decode_result(lenient, e);
  REQUIRE(r);
  CHECK(r->payload.empty());
  CHECK_FALSE(r->done());
}
