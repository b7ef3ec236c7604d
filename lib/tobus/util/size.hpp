#pragma once
// Sizes as users write them: 4096, 512K, 16M, 1G (powers of 1024; a bare number is bytes).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tobus {

// nullopt when `text` is not a size (empty, negative, unknown suffix, above 2^62 bytes).
// Suffixes K, M, G, T, upper or lower case, with an optional B or iB: 16M = 16MiB = 16777216.
std::optional<std::uint64_t> parse_size(std::string_view text);

// The shortest exact spelling: 512, 4K, 16M, 1G.
std::string format_size(std::uint64_t bytes);

}  // namespace tobus
