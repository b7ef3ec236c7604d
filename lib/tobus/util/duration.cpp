#include "tobus/util/duration.hpp"

#include <charconv>
#include <cstdint>

namespace tobus {

std::optional<Millis> parse_duration(std::string_view text) {
  std::int64_t number = 0;
  const char* first = text.data();
  const char* last = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(first, last, number);
  if (ec != std::errc() || ptr == first || number < 0) return std::nullopt;
  std::string_view unit(ptr, static_cast<std::size_t>(last - ptr));
  std::int64_t scale = 0;
  if (unit.empty() || unit == "s") scale = 1000;
  else if (unit == "ms") scale = 1;
  else if (unit == "m") scale = 60'000;
  else if (unit == "h") scale = 3'600'000;
  else return std::nullopt;
  constexpr std::int64_t max_ms = std::int64_t{1} << 50;  // ~35,000 years: plenty, no overflow
  if (number > max_ms / scale) return std::nullopt;
  return Millis(number * scale);
}

std::string format_duration(Millis d) {
  auto ms = d.count();
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace tobus
