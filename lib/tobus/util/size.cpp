#include "tobus/util/size.hpp"

#include <array>
#include <cctype>
#include <charconv>

namespace tobus {

namespace {
constexpr std::array<char, 4> suffixes{'K', 'M', 'G', 'T'};
constexpr std::uint64_t max_bytes = std::uint64_t{1} << 62;
}  // namespace

std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::uint64_t number = 0;
  const char* first = text.data();
  const char* last = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(first, last, number);
  if (ec != std::errc() || ptr == first) return std::nullopt;
  std::string_view unit(ptr, static_cast<std::size_t>(last - ptr));
  std::uint64_t scale = 1;
  if (!unit.empty()) {
    char c = static_cast<char>(std::toupper(static_cast<unsigned char>(unit.front())));
    std::size_t power = 0;
    while (power < suffixes.size() && suffixes[power] != c) ++power;
    if (power == suffixes.size()) return std::nullopt;
    unit.remove_prefix(1);
    if (unit != "" && unit != "B" && unit != "iB" && unit != "b" && unit != "ib") return std::nullopt;
    scale = std::uint64_t{1024} << (10 * power);
  }
  if (number > max_bytes / scale) return std::nullopt;
  return number * scale;
}

std::string format_size(std::uint64_t bytes) {
  std::size_t power = 0;
  while (power < suffixes.size() && bytes != 0 && bytes % (std::uint64_t{1024} << (10 * power)) == 0) ++power;
  if (power == 0) return std::to_string(bytes);
  return std::to_string(bytes / (std::uint64_t{1024} << (10 * (power - 1)))) + suffixes[power - 1];
}

}  // namespace tobus
