// Reporter: what library code tells the program, filtered by severity before it is formatted.
#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

#include "tobus/core/report.hpp"

using tobus::Reporter;
using tobus::Severity;

namespace {

// Formats as a side effect, so a test sees whether a dropped report was formatted at all.
struct Counted {
  int* formatted;
};

}  // namespace

template <>
struct fmt::formatter<Counted> : fmt::formatter<std::string> {
  auto format(const Counted& c, format_context& ctx) const {
    ++*c.formatted;
    return fmt::formatter<std::string>::format("counted", ctx);
  }
};

TEST_CASE("a default Reporter says nothing and formats nothing") {
  Reporter silent;
  int formatted = 0;
  silent.warn("{}", Counted{&formatted});
  silent.error("{}", Counted{&formatted});
  CHECK_FALSE(static_cast<bool>(silent));
  CHECK_FALSE(silent.enabled(Severity::error));
  CHECK(formatted == 0);
}

TEST_CASE("reports at or above the least severity reach the sink, formatted") {
  std::vector<std::pair<Severity, std::string>> seen;
  Reporter report([&](Severity s, std::string_view text) { seen.emplace_back(s, std::string(text)); },
                  Severity::warn);
  int formatted = 0;
  report.debug("not {}", Counted{&formatted});
  report.info("not {}", Counted{&formatted});
  report.warn("cannot write {} entr{} to '{}'", 3, "ies", "tobus:bus");
  report.error("{}", Counted{&formatted});
  CHECK(formatted == 1);
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].first == Severity::warn);
  CHECK(seen[0].second == "cannot write 3 entries to 'tobus:bus'");
  CHECK(seen[1].first == Severity::error);
  CHECK(seen[1].second == "counted");
}

TEST_CASE("copies report to the same sink") {
  int calls = 0;
  Reporter report([&](Severity, std::string_view) { ++calls; });
  Reporter copy = report;
  copy.debug("x");
  report.info("y");
  CHECK(calls == 2);
}
