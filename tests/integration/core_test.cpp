// The at-least-once core against a real redis-server: the bus routing, a module handling and
// acknowledging, retries and dead letters, joins, the --wait collector, the tap, redelivery.
// Each test case has a namespace of its own; assertions are on what is in Redis and what the API
// returns.

#include <doctest/doctest.h>

#include <algorithm>
#include <future>
#include <map>
#include <set>
#include <sstream>

#include "harness.hpp"
#include "tobus/core/error.hpp"
#include "tobus/send/send.hpp"
#include "tobus/watch/watch.hpp"

using namespace tobus;
using it::Calls;
using it::eventually;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

TEST_CASE("the bus routes a batch to the inboxes of its hops and acknowledges it") {
  Keys keys = it::fresh_keys("route");
  Connection c = it::connect();
  std::vector<std::string> alpha, beta;
  for (int i = 0; i < 5; ++i) {
    alpha.push_back("a" + std::to_string(i));
    it::xadd(c, keys.bus(), it::message(alpha.back(), {"alpha"}, "to alpha " + std::to_string(i)));
  }
  for (int i = 0; i < 3; ++i) {
    beta.push_back("b" + std::to_string(i));
    it::xadd(c, keys.bus(), it::message(beta.back(), {"beta", "alpha"}, "to beta " + std::to_string(i)));
  }
  // A fan-out: a copy for every member of the type, in name order.
  for (const char* member : {"m2", "m1", "m3"}) c.command({"SADD", keys.type("T"), member});
  std::string fan_entry = it::xadd(c, keys.bus(), it::message("f", {"@T", "after"}, "to all"));

  it::Loops loops;
  loops.bus(keys);
  REQUIRE(eventually([&] {
    return it::xlen(c, keys.inbox("alpha")) == 5 && it::xlen(c, keys.inbox("beta")) == 3 &&
           it::xlen(c, keys.inbox("m1")) == 1 && it::xlen(c, keys.inbox("m2")) == 1 &&
           it::xlen(c, keys.inbox("m3")) == 1;
  }));
  REQUIRE(eventually([&] { return it::pending(c, keys.bus(), Keys::bus_group) == 0; }));
  loops.stop();

  auto in_alpha = it::range(c, keys.inbox("alpha"));
  REQUIRE(in_alpha.size() == 5);
  for (std::size_t i = 0; i < in_alpha.size(); ++i) {
    Message m = it::decoded(in_alpha[i]);
    CHECK(m.id == alpha[i]);
    CHECK(m.route == std::vector<std::string>{"alpha"});
    CHECK(m.payload == "to alpha " + std::to_string(i));
  }
  auto in_beta = it::range(c, keys.inbox("beta"));
  REQUIRE(in_beta.size() == 3);
  for (std::size_t i = 0; i < in_beta.size(); ++i) {
    Message m = it::decoded(in_beta[i]);
    CHECK(m.id == beta[i]);
    // The bus forwards; the module takes its own hop off the route.
    CHECK(m.route == std::vector<std::string>{"beta", "alpha"});
  }
  int index = 0;
  for (const char* member : {"m1", "m2", "m3"}) {
    auto entries = it::range(c, keys.inbox(member));
    REQUIRE(entries.size() == 1);
    Message m = it::decoded(entries[0]);
    CHECK(m.id == "f");
    CHECK(m.route == std::vector<std::string>{member, "after"});
    CHECK(m.payload == "to all");
    REQUIRE(m.fan.has_value());
    CHECK(m.fan->group == fan_entry);
    CHECK(m.fan->n == 3);
    CHECK(m.fan->index == index++);
  }
  // Every inbox has its module group, created before the first entry, so a module attaching
  // later gets everything.
  for (const char* module : {"alpha", "beta", "m1"}) CHECK(it::pending(c, keys.inbox(module), Keys::module_group) == 0);
  CHECK(it::xlen(c, keys.dead()) == 0);
  // The bus entries stay as acknowledged history (for tobus-watch) until --retain passes.
  CHECK(it::xlen(c, keys.bus()) == 9);
}

TEST_CASE("a module runs its handler, writes the result back to the bus and acknowledges") {
  Keys keys = it::fresh_keys("module");
  Connection c = it::connect();
  for (int i = 0; i < 3; ++i)
    it::xadd(c, keys.inbox("up"), it::message("u" + std::to_string(i), {"up", "next"}, "hello " + std::to_string(i)));

  Calls calls;
  ModuleOptions o = it::recording_module("up", calls, upper);
  it::Loops loops;
  loops.module(keys, o);
  REQUIRE(eventually([&] { return it::xlen(c, keys.bus()) == 3; }));
  REQUIRE(eventually([&] { return it::pending(c, keys.inbox("up"), Keys::module_group) == 0; }));
  CHECK(c.command({"HLEN", keys.instances("up")}).integer() == 1);
  loops.stop();

  auto results = it::range(c, keys.bus());
  REQUIRE(results.size() == 3);
  for (std::size_t i = 0; i < results.size(); ++i) {
    Message m = it::decoded(results[i]);
    CHECK(m.id == "u" + std::to_string(i));
    CHECK(m.payload == "HELLO " + std::to_string(i));
    CHECK(m.route == std::vector<std::string>{"next"});
    CHECK(m.from == "up");
    CHECK(m.rc == 0);
    REQUIRE(m.trail.size() == 1);
    CHECK(m.trail[0].name == "up");
    CHECK(m.trail[0].rc == 0);
    CHECK_FALSE(m.failure.has_value());
  }
  CHECK(calls.size() == 3);
  for (const auto& [payload, attempt] : calls.get()) CHECK(attempt == 1);
  // Stopped: it deregistered.
  CHECK(c.command({"HLEN", keys.instances("up")}).integer() == 0);
}

TEST_CASE("a handler asking for a retry is run again; after the last attempt the message is dead-lettered") {
  Keys keys = it::fresh_keys("retry");
  Connection c = it::connect();
  Calls calls;
  ModuleOptions o;
  o.name = "flaky";
  o.retries = 2;
  o.backoff = Millis(10);
  o.handler = [&](const Message& m, int attempt) {
    calls.add(m, attempt);
    if (m.payload == "bad") return Outcome::fail(3, "no good");
    if (m.payload == "never") return Outcome::retry("not yet");
    return attempt < 3 ? Outcome::retry("not yet") : Outcome::ok("made it");
  };
  it::Loops loops;
  loops.bus(keys);
  loops.module(keys, o);
  it::xadd(c, keys.bus(), it::message("third-time", {"flaky", "sink"}, "third time lucky"));
  it::xadd(c, keys.bus(), it::message("never", {"flaky", "sink"}, "never"));
  it::xadd(c, keys.bus(), it::message("bad", {"flaky", "sink"}, "bad"));

  REQUIRE(eventually([&] { return it::xlen(c, keys.inbox("sink")) == 1 && it::xlen(c, keys.dead()) == 2; }));
  REQUIRE(eventually([&] {
    return it::pending(c, keys.inbox("flaky"), Keys::module_group) == 0 &&
           it::pending(c, keys.bus(), Keys::bus_group) == 0;
  }));
  loops.stop();

  // Retried with the attempt counted up; a hard failure is not retried.
  std::map<std::string, std::vector<int>> attempts;
  for (const auto& [payload, attempt] : calls.get()) attempts[payload].push_back(attempt);
  CHECK(attempts["third time lucky"] == std::vector<int>{1, 2, 3});
  CHECK(attempts["never"] == std::vector<int>{1, 2, 3});
  CHECK(attempts["bad"] == std::vector<int>{1});

  auto sink = it::range(c, keys.inbox("sink"));
  REQUIRE(sink.size() == 1);
  Message ok = it::decoded(sink[0]);
  CHECK(ok.id == "third-time");
  CHECK(ok.payload == "made it");
  REQUIRE(ok.trail.size() == 1);
  CHECK(ok.trail[0].rc == 0);

  std::map<std::string, Fields> dead;
  for (const auto& e : it::range(c, keys.dead())) dead[it::field(e.fields, "id")] = e.fields;
  REQUIRE(dead.contains("never"));
  CHECK(it::field(dead["never"], "dead.hop") == "flaky");
  CHECK(it::field(dead["never"], "dead.rc") == std::to_string(rc_tempfail));
  CHECK(it::field(dead["never"], "dead.attempts") == "3");
  CHECK(it::field(dead["never"], "dead.stream") == keys.bus());
  CHECK(it::field(dead["never"], "dead.reason") == "not yet");  // the last attempt's why
  REQUIRE(dead.contains("bad"));
  CHECK(it::field(dead["bad"], "dead.hop") == "flaky");
  CHECK(it::field(dead["bad"], "dead.rc") == "3");
  CHECK(it::field(dead["bad"], "dead.attempts") == "1");
  CHECK(it::field(dead["bad"], "dead.reason") == "no good");
  // A dead letter keeps the message: it decodes, with its failure.
  Message failed = it::decoded(it::range(c, keys.dead()).front());
  REQUIRE(failed.failure.has_value());
  CHECK(failed.failure->hop == "flaky");
}

TEST_CASE("a joining module handles N correlated parts once") {
  Keys keys = it::fresh_keys("join");
  Connection c = it::connect();
  Calls calls;
  ModuleOptions o = it::recording_module("gather", calls, [](const std::string& p) { return "joined:\n" + p; });
  o.join = JoinOptions{};
  o.join->correlated = 3;
  it::Loops loops;
  loops.bus(keys);
  loops.module(keys, o);
  for (int i = 0; i < 3; ++i) {
    Message m = it::message("part" + std::to_string(i), {"gather", "sink"}, "part " + std::to_string(i));
    m.correlation = "c1";
    it::xadd(c, keys.bus(), m);
  }
  // Another group, one part short: not handled.
  Message lone = it::message("lone", {"gather", "sink"}, "alone");
  lone.correlation = "c2";
  it::xadd(c, keys.bus(), lone);

  REQUIRE(eventually([&] { return it::xlen(c, keys.inbox("sink")) == 1; }));
  REQUIRE(eventually([&] {
    // Its parts forgotten, a marker left so a late duplicate part does not start it again.
    return c.command({"HKEYS", keys.join("gather", "corr:c1")}).size() == 1 &&
           c.command({"HEXISTS", keys.join("gather", "corr:c1"), "done"}).integer() == 1 &&
           it::pending(c, keys.inbox("gather"), Keys::module_group) == 0;
  }));
  loops.stop();

  CHECK(calls.size() == 1);
  Message joined = it::decoded(it::range(c, keys.inbox("sink")).front());
  CHECK(joined.route == std::vector<std::string>{"sink"});
  auto parts = lines_of(joined.payload);
  REQUIRE(parts.size() == 4);
  CHECK(parts[0] == "joined:");
  std::sort(parts.begin() + 1, parts.end());
  CHECK(parts[1] == "part 0");
  CHECK(parts[2] == "part 1");
  CHECK(parts[3] == "part 2");
  // The short group waits, its part stored (and its inbox entry acknowledged with it).
  CHECK(c.command({"HEXISTS", keys.join("gather", "corr:c2"), "part:lone"}).integer() == 1);
  CHECK(it::xlen(c, keys.dead()) == 0);
}

namespace {

// Modules w1 and w2 of type T, each marking the payload with its name; running when both joined.
void start_members(it::Loops& loops, const Keys& keys, Connection& c, Calls& calls) {
  for (const char* name : {"w1", "w2"}) {
    auto mark = [name = std::string(name)](const std::string& p) { return p + " from " + name; };
    ModuleOptions o = it::recording_module(name, calls, mark);
    o.types = {"T"};
    loops.module(keys, o);
  }
  REQUIRE(eventually([&] { return c.command({"SCARD", keys.type("T")}).integer() == 2; }));
}

}  // namespace

TEST_CASE("a fan-out reaches every module of the type, and a joining module merges the copies") {
  Keys keys = it::fresh_keys("fanjoin");
  Connection c = it::connect();
  Calls calls, merged;
  it::Loops loops;
  loops.bus(keys);
  start_members(loops, keys, c, calls);
  ModuleOptions o = it::recording_module("merge", merged);
  o.join = JoinOptions{};  // the copies of one fan-out
  loops.module(keys, o);
  it::xadd(c, keys.bus(), it::message("fj", {"@T", "merge", "sink"}, "p"));

  REQUIRE(eventually([&] { return it::xlen(c, keys.inbox("sink")) == 1; }));
  loops.stop();
  CHECK(calls.size() == 2);
  CHECK(merged.size() == 1);
  Message m = it::decoded(it::range(c, keys.inbox("sink")).front());
  CHECK(m.id == "fj");
  CHECK_FALSE(m.fan.has_value());
  // The copies in copy order (the members sorted by name).
  CHECK(m.payload == "p from w1\np from w2");
  CHECK(it::xlen(c, keys.dead()) == 0);
}

TEST_CASE("send with --wait on a fan-out prints every copy's result, in copy order") {
  Keys keys = it::fresh_keys("fanwait");
  Connection c = it::connect();
  Calls calls;
  it::Loops loops;
  loops.bus(keys);
  start_members(loops, keys, c, calls);
  it::Waited waited = it::send_and_wait(keys, {"@T"}, {"x", "y"});
  loops.stop();
  CHECK(waited.rc == exit_code::ok);
  CHECK(waited.out == "x from w1\nx from w2\ny from w1\ny from w2\n");
}

TEST_CASE("send with --wait prints the results in input order, whatever order they come back in") {
  Keys keys = it::fresh_keys("wait");
  Calls calls;
  ModuleOptions o;
  o.name = "shout";
  o.retries = 20;
  o.backoff = Millis(20);
  o.handler = [&](const Message& m, int attempt) {
    // The first message comes back last: it asks for a retry until the others were handled.
    bool others_done = false;
    {
      std::lock_guard lock(calls.mu);
      others_done = std::count_if(calls.seen.begin(), calls.seen.end(),
                                  [](const auto& c) { return c.first != "first"; }) == 3;
    }
    calls.add(m, attempt);
    if (m.payload == "first" && !others_done) return Outcome::retry("later");
    return Outcome::ok(upper(m.payload));
  };
  it::Loops loops;
  loops.bus(keys);
  loops.module(keys, o);

  it::Waited waited = it::send_and_wait(keys, {"shout"}, {"first", "second", "third", "fourth"});
  loops.stop();

  CHECK(waited.rc == exit_code::ok);
  CHECK(waited.out == "FIRST\nSECOND\nTHIRD\nFOURTH\n");
  // They did come back out of order: the first was handled last.
  auto seen = calls.get();
  REQUIRE(seen.size() >= 5);
  CHECK(seen.front().first == "first");
  CHECK(seen.back().first == "first");
  CHECK(seen.back().second >= 2);
  // The reply stream is gone with the sender.
  Connection c = it::connect();
  CHECK(c.command({"KEYS", keys.reply_prefix() + "*"}).size() == 0);
}

TEST_CASE("send with --wait reports a failed message and still prints the others") {
  Keys keys = it::fresh_keys("waitfail");
  ModuleOptions o;
  o.name = "picky";
  o.handler = [](const Message& m, int) {
    return m.payload == "bad" ? Outcome::fail(2, "refused") : Outcome::ok(m.payload + "!");
  };
  it::Loops loops;
  loops.bus(keys);
  loops.module(keys, o);
  it::Waited waited = it::send_and_wait(keys, {"picky"}, {"a", "bad", "b"});
  loops.stop();
  CHECK(waited.rc == exit_code::failed);
  CHECK(waited.out == "a!\nb!\n");
}

TEST_CASE("the tap sees the traffic without taking any of it") {
  Keys keys = it::fresh_keys("tap");
  Connection c = it::connect();
  std::vector<std::string> ids = {"t0", "t1", "t2"};
  for (const auto& id : ids) it::xadd(c, keys.bus(), it::message(id, {"tapped"}, "p-" + id));

  WatchOptions w;
  w.output = WatchOutput::format;
  w.format = "%e %i %m\n";
  w.since = Millis(600'000);
  w.timeout = Millis(20'000);

  // No bus yet: the tap reads the waiting messages from the retained history.
  {
    WatchOptions sent = w;
    sent.filter.events = {EventKind::sent};
    sent.count = 3;
    it::Output out;
    CHECK(run_watch(it::address(), keys, sent, out.fd()) == exit_code::ok);
    CHECK(lines_of(out.text()) == std::vector<std::string>{"sent t0 ", "sent t1 ", "sent t2 "});
  }
  // ... and took nothing: no group, no consumer, every entry still there.
  CHECK(c.command({"XINFO", "GROUPS", keys.bus()}).size() == 0);
  CHECK(it::xlen(c, keys.bus()) == 3);

  // A tap running while the bus and the module work sees the handling.
  WatchOptions handled = w;
  handled.filter.events = {EventKind::handled};
  handled.count = 3;
  it::Output out;
  auto tap = std::async(std::launch::async, [&] { return run_watch(it::address(), keys, handled, out.fd()); });

  Calls calls;
  ModuleOptions o = it::recording_module("tapped", calls);
  it::Loops loops;
  loops.bus(keys);
  loops.module(keys, o);
  REQUIRE(tap.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  CHECK(tap.get() == exit_code::ok);
  auto lines = lines_of(out.text());
  std::sort(lines.begin(), lines.end());
  CHECK(lines == std::vector<std::string>{"handled t0 tapped", "handled t1 tapped", "handled t2 tapped"});
  // The module got every message the tap saw.
  REQUIRE(eventually([&] { return calls.size() == 3; }));
  loops.stop();
  CHECK(calls.size() == 3);
}

TEST_CASE("an entry a crashed module read but never acknowledged is claimed after claim-after") {
  Keys keys = it::fresh_keys("claim");
  Connection c = it::connect();
  const std::string inbox = keys.inbox("worker");
  REQUIRE_FALSE(c.command({"XGROUP", "CREATE", inbox, Keys::module_group, "0", "MKSTREAM"}).is_error());
  it::xadd(c, inbox, it::message("orphan", {"worker", "sink"}, "left behind"));
  // A consumer of the group reads it and dies before acknowledging.
  tobus::Reply read = c.command({"XREADGROUP", "GROUP", Keys::module_group, "crashed", "COUNT", "10", "STREAMS", inbox, ">"});
  REQUIRE(read.size() == 1);
  auto read_at = std::chrono::steady_clock::now();
  REQUIRE(it::pending(c, inbox, Keys::module_group) == 1);

  Calls calls;
  ModuleOptions o = it::recording_module("worker", calls, [](const std::string& p) { return "picked up: " + p; });
  o.claim_after = Millis(300);
  it::Loops loops;
  loops.module(keys, o);
  REQUIRE(eventually([&] { return it::xlen(c, keys.bus()) == 1; }));
  auto done_at = std::chrono::steady_clock::now();
  REQUIRE(eventually([&] { return it::pending(c, inbox, Keys::module_group) == 0; }));
  loops.stop();

  // Not before it was idle for claim-after; its second delivery.
  CHECK(done_at - read_at >= std::chrono::milliseconds(300));
  REQUIRE(calls.size() == 1);
  CHECK(calls.get()[0] == std::pair<std::string, int>{"left behind", 2});
  Message m = it::decoded(it::range(c, keys.bus()).front());
  CHECK(m.id == "orphan");
  CHECK(m.payload == "picked up: left behind");
  CHECK(m.route == std::vector<std::string>{"sink"});
}

TEST_CASE("an entry a crashed bus read but never acknowledged is claimed and routed after claim-after") {
  Keys keys = it::fresh_keys("busclaim");
  Connection c = it::connect();
  REQUIRE_FALSE(c.command({"XGROUP", "CREATE", keys.bus(), Keys::bus_group, "0", "MKSTREAM"}).is_error());
  it::xadd(c, keys.bus(), it::message("orphan", {"next"}, "left behind"));
  tobus::Reply read =
      c.command({"XREADGROUP", "GROUP", Keys::bus_group, "crashed", "COUNT", "10", "STREAMS", keys.bus(), ">"});
  REQUIRE(read.size() == 1);
  REQUIRE(it::pending(c, keys.bus(), Keys::bus_group) == 1);

  BusOptions o;
  o.claim_after = Millis(300);
  it::Loops loops;
  loops.bus(keys, o);
  REQUIRE(eventually([&] { return it::xlen(c, keys.inbox("next")) == 1; }));
  REQUIRE(eventually([&] { return it::pending(c, keys.bus(), Keys::bus_group) == 0; }));
  loops.stop();

  Message m = it::decoded(it::range(c, keys.inbox("next")).front());
  CHECK(m.id == "orphan");
  CHECK(m.payload == "left behind");
  CHECK(it::xlen(c, keys.dead()) == 0);
}
