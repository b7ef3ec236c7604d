#include <doctest/doctest.h>

#include <cstdint>

#include "tobus/util/size.hpp"

using tobus::format_size;
using tobus::parse_size;

TEST_CASE("sizes parse as users write them") {
  CHECK(parse_size("0") == 0u);
  CHECK(parse_size("4096") == 4096u);
  CHECK(parse_size("512K") == 512u * 1024);
  CHECK(parse_size("512k") == 512u * 1024);
  CHECK(parse_size("16M") == 16u << 20);
  CHECK(parse_size("16MiB") == 16u << 20);
  CHECK(parse_size("16MB") == 16u << 20);
  CHECK(parse_size("1G") == std::uint64_t{1} << 30);
  CHECK(parse_size("2T") == std::uint64_t{2} << 40);
}

TEST_CASE("bad sizes are refused") {
  for (const char* bad : {"", "-1", "M", "1.5M", "1 M", "1X", "1MM", "1Mi", "99999999999999999999", "4194305T"})
    CHECK_MESSAGE(!parse_size(bad), bad);
}

TEST_CASE("sizes print in their shortest exact spelling") {
  CHECK(format_size(0) == "0");
  CHECK(format_size(1000) == "1000");
  CHECK(format_size(4096) == "4K");
  CHECK(format_size(16u << 20) == "16M");
  CHECK(format_size((16u << 20) + 1024) == "16385K");
  CHECK(format_size(std::uint64_t{3} << 40) == "3T");
  CHECK(parse_size(format_size(123456789)) == 123456789u);
}
