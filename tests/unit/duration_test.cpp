#include <doctest/doctest.h>

#include "tobus/util/duration.hpp"

using tobus::Millis;
using tobus::parse_duration;

TEST_CASE("durations parse as users write them") {
  CHECK(parse_duration("500ms") == Millis(500));
  CHECK(parse_duration("30s") == Millis(30'000));
  CHECK(parse_duration("2m") == Millis(120'000));
  CHECK(parse_duration("1h") == Millis(3'600'000));
  CHECK(parse_duration("7") == Millis(7'000));
  CHECK(parse_duration("0") == Millis(0));
}

TEST_CASE("bad durations are refused") {
  for (const char* bad : {"", "5x", "-1", "s", "1.5s", "1 s", "ms", "99999999999999999999", "1hh"})
    CHECK_MESSAGE(!parse_duration(bad), bad);
}

TEST_CASE("durations format to their shortest spelling") {
  CHECK(tobus::format_duration(Millis(1500)) == "1500ms");
  CHECK(tobus::format_duration(Millis(30'000)) == "30s");
  CHECK(tobus::format_duration(Millis(120'000)) == "2m");
  CHECK(tobus::format_duration(Millis(3'600'000)) == "1h");
  CHECK(tobus::format_duration(Millis(0)) == "0s");
}
