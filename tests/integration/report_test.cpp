// What the loops report reaches the Reporter they were given, and nothing goes to a log of the
// library's own: the bus tells about a type member no module could be, once.

#include <doctest/doctest.h>

#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "harness.hpp"

using namespace tobus;
using it::eventually;

namespace {

// A Reporter's sink, written from a loop's thread and read from the test's.
struct Reports {
  std::mutex mu;
  std::vector<std::pair<Severity, std::string>> seen;
  Reporter reporter() {
    return Reporter([this](Severity s, std::string_view text) {
      std::lock_guard lock(mu);
      seen.emplace_back(s, std::string(text));
    });
  }
  int count(Severity s, const std::string& needle) {
    std::lock_guard lock(mu);
    int n = 0;
    for (const auto& [severity, text] : seen) n += severity == s && text.find(needle) != std::string::npos;
    return n;
  }
};

}  // namespace

TEST_CASE("the bus reports what it passes over to its Reporter, once per cause") {
  Keys keys = it::fresh_keys("report");
  Connection c = it::connect();
  for (const char* member : {"good", "bad name"}) c.command({"SADD", keys.type("T"), member});
  Reports reports;
  BusOptions o;
  o.report = reports.reporter();
  it::Loops loops;
  loops.bus(keys, o);
  REQUIRE(eventually([&] { return reports.count(Severity::info, "routing on") == 1; }));
  it::xadd(c, keys.bus(), it::message("r1", {"@T"}, "one"));
  it::xadd(c, keys.bus(), it::message("r2", {"@T"}, "two"));
  // Both copies for the good member arrive; the bad one gets none, and is reported once.
  REQUIRE(eventually([&] { return it::xlen(c, keys.inbox("good")) == 2; }));
  loops.stop();
  CHECK(reports.count(Severity::warn, "type 'T' has a member that is not a module name, 'bad name'") == 1);
  CHECK(it::xlen(c, keys.inbox("bad name")) == 0);
  CHECK(reports.count(Severity::info, "stopped") == 1);
}
