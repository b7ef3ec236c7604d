#include <doctest/doctest.h>

#include <cstdint>

#include "tobus/bus/router.hpp"
#include "tobus/core/dead_letter.hpp"

using namespace tobus;

namespace {
Fields names_of(const Fields& f) {
  Fields out;
  for (const auto& [k, v] : f) out.emplace_back(k, k == "dead.at" ? std::string("AT") : v);
  return out;
}
const Fields original{{"v", "1"}, {"id", "m1"}, {"route", ""}, {"status", "failed"},
                      {"payload", std::string("p\0q", 3)}};
}  // namespace

TEST_CASE("the router's dead letter: the original fields, then dead.* in their order") {
  Keys k("ns");
  Write plain = dead_letter(k, original, "ns:bus", "5-0", "missing field 'v'");
  CHECK(plain.key == "ns:dead");
  CHECK_FALSE(plain.is_reply);
  Fields want = original;
  want.insert(want.end(), {{"dead.reason", "missing field 'v'"}, {"dead.stream", "ns:bus"},
                           {"dead.entry", "5-0"}, {"dead.at", "AT"}});
  CHECK(names_of(plain.fields) == want);

  Failure f{"b", 3, 2, "handler exited with 3", "oops\n"};
  Write failed = dead_letter(k, original, "ns:bus", "6-0", "handler exited with 3", &f);
  want = original;
  want.insert(want.end(), {{"dead.reason", "handler exited with 3"}, {"dead.stream", "ns:bus"},
                           {"dead.entry", "6-0"}, {"dead.at", "AT"}, {"dead.hop", "b"}, {"dead.rc", "3"},
                           {"dead.attempts", "2"}, {"dead.stderr", "oops\n"}});
  CHECK(names_of(failed.fields) == want);
}

TEST_CASE("encode then decode_dead_letter is the identity") {
  Failure f{"b", -1, 0, "", std::string("a\0b", 3)};
  DeadLetter d = make_dead_letter(original, "ns:in:b", "7-1", "r", 1234, &f);
  Fields fields = encode(d);
  REQUIRE(fields.size() == original.size() + 8);
  CHECK(fields[original.size() + 3] == std::pair<std::string, std::string>{"dead.at", "1234"});
  DeadLetter back = decode_dead_letter(fields);
  CHECK(back.original == original);
  CHECK(back.reason == "r");
  CHECK(back.stream == "ns:in:b");
  CHECK(back.source_entry == "7-1");
  CHECK(back.at == 1234);
  CHECK(back.hop == "b");
  CHECK(back.rc == -1);
  CHECK(back.attempts == 0);
  CHECK(back.stderr_tail == std::string("a\0b", 3));
  CHECK(back.message_id() == "m1");
  CHECK(encode(back) == fields);
  CHECK(encode(std::move(back)) == fields);

  // Without a failed hop: no dead.hop, dead.rc, dead.attempts, dead.stderr.
  DeadLetter plain = decode_dead_letter(encode(make_dead_letter(original, "ns:bus", "1-0", "r", 5)));
  CHECK_FALSE(plain.rc);
  CHECK_FALSE(plain.attempts);
  CHECK(plain.hop.empty());
  CHECK(encode(plain).size() == original.size() + 4);
}

TEST_CASE("a dead letter of a dead letter: the last dead.reason starts the dead.* fields") {
  DeadLetter inner = make_dead_letter(original, "ns:bus", "1-0", "inner", 1);
  Fields inner_fields = encode(inner);
  Failure f{"x", 9, 1, "", ""};
  Fields outer = encode(make_dead_letter(inner_fields, "ns:in:x", "2-0", "outer", 2, &f));
  DeadLetter d = decode_dead_letter(outer);
  CHECK(d.original == inner_fields);
  CHECK(d.reason == "outer");
  CHECK(d.stream == "ns:in:x");
  CHECK(d.source_entry == "2-0");
  CHECK(d.at == 2);
  CHECK(d.rc == 9);
  CHECK(d.hop == "x");
  CHECK(decode_dead_letter(d.original).reason == "inner");

  // Duplicate dead.* fields after the last dead.reason: the last one counts.
  DeadLetter dup = decode_dead_letter({{"dead.reason", "a"}, {"dead.hop", "h1"}, {"dead.reason", "b"},
                                       {"dead.hop", "h2"}, {"dead.hop", "h3"}});
  CHECK(dup.original == Fields{{"dead.reason", "a"}, {"dead.hop", "h1"}});
  CHECK(dup.reason == "b");
  CHECK(dup.hop == "h3");
}

TEST_CASE("malformed dead letters decode to what can be read, never fail") {
  // No dead.reason: everything is the original entry.
  DeadLetter none = decode_dead_letter({{"id", "j"}, {"dead.hop", "h"}, {"dead.rc", "3"}});
  CHECK(none.original.size() == 3);
  CHECK(none.reason.empty());
  CHECK(none.hop.empty());
  CHECK_FALSE(none.rc);
  CHECK(none.message_id() == "j");

  // Missing fields stay empty; numbers that do not parse stay unset.
  DeadLetter bad = decode_dead_letter({{"id", "has space"}, {"dead.reason", "r"}, {"dead.rc", "x"},
                                       {"dead.attempts", "1e3"}, {"dead.at", ""}, {"dead.unknown", "?"}});
  CHECK(bad.original.size() == 1);
  CHECK(bad.message_id().empty());
  CHECK(bad.reason == "r");
  CHECK(bad.stream.empty());
  CHECK(bad.source_entry.empty());
  CHECK_FALSE(bad.rc);
  CHECK_FALSE(bad.attempts);
  CHECK_FALSE(bad.at);
  for (const char* n : {" 1", "1 ", "+1", "99999999999999999999", "0x10", "-"})
    CHECK_FALSE(decode_dead_letter({{"dead.reason", "r"}, {"dead.rc", n}}).rc);
  CHECK(decode_dead_letter({{"dead.reason", "r"}, {"dead.rc", "-9223372036854775808"}}).rc == INT64_MIN);

  // Empty, and a big entry of nothing but dead.reason.
  DeadLetter empty = decode_dead_letter({});
  CHECK(empty.original.empty());
  CHECK(empty.reason.empty());
  Fields many(100000, {"dead.reason", "r"});
  DeadLetter big = decode_dead_letter(many);
  CHECK(big.original.size() == many.size() - 1);
  CHECK(big.reason == "r");
}
