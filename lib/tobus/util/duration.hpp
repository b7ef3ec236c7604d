#pragma once
// Durations as users write them: 500ms, 30s, 2m, 1h; a bare number is seconds.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace tobus {

using Millis = std::chrono::milliseconds;

// nullopt when `text` is not a duration (empty, negative, unknown unit, overflow).
std::optional<Millis> parse_duration(std::string_view text);

// The shortest exact spelling: 1500ms, 30s, 2m, 1h.
std::string format_duration(Millis d);

}  // namespace tobus
