#pragma once
// Small text helpers the programs share: numbers from text, bytes made printable, the last line of
// a process's stderr, ages and plain-text tables. Pure functions, no I/O.

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace tobus {

// The whole of `s` as an integer in `base` (no sign for unsigned types, no spaces, no rest); false,
// and `out` unspecified, when it is not one or does not fit.
template <typename Int>
bool to_int(std::string_view s, Int& out, int base = 10) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out, base);
  return ec == std::errc() && ptr == s.data() + s.size() && !s.empty();
}

// Bytes made readable on one line: \\ \n \r \t, and \xNN for other control bytes (C0, DEL and the
// C1 controls U+0080 to U+009F) and for bytes that are not UTF-8; printable UTF-8 is kept.
std::string escape_text(std::string_view s);
// The same, and a double quote as \", for text shown between double quotes.
std::string escape_bytes(std::string_view s);

// For messages: 'TEXT', escaped (escape_text), at most its first 200 bytes.
std::string quote(std::string_view s);

// The last line of `text` that is followed by no other text: trailing newlines are ignored, so
// "a\nb\n\n" gives "b". Empty when `text` has no line. For a process's stderr, which says most last.
std::string last_line(std::string_view text);

// A duration as its largest whole unit: 59s, 1m, 23h, 2d (negative: 0s).
std::string age_text(std::int64_t ms);

// `rows` as lines of columns two spaces apart, each column as wide as its widest cell. Columns
// before `right_from` are left-aligned (the last cell of a line gets no trailing spaces), the others
// right-aligned. The lines have no newline.
std::vector<std::string> table_lines(const std::vector<std::vector<std::string>>& rows,
                                     std::size_t right_from = std::numeric_limits<std::size_t>::max());

}  // namespace tobus
