#include "tobus/util/text.hpp"

#include <algorithm>

#include "tobus/util/json.hpp"

namespace tobus {
namespace {

std::string escape(std::string_view s, bool quote) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() + 2);
  auto byte = [&](unsigned char c) {
    out += "\\x";
    out += hex[c >> 4];
    out += hex[c & 15];
  };
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '"':
          if (quote) out += "\\\"";
          else out += '"';
          break;
        default:
          if (c < 0x20 || c == 0x7f) byte(c);
          else out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    std::size_t n = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (n && i + n <= s.size() && is_utf8(s.substr(i, n))) {
      // C1 controls (U+0080 to U+009F) are not printable either.
      bool c1 = n == 2 && c == 0xc2 && static_cast<unsigned char>(s[i + 1]) < 0xa0;
      if (!c1) {
        out.append(s.substr(i, n));
        i += n;
        continue;
      }
      for (std::size_t k = 0; k < n; ++k) byte(static_cast<unsigned char>(s[i + k]));
      i += n;
      continue;
    }
    byte(c);
    ++i;
  }
  return out;
}

}  // namespace

std::string escape_text(std::string_view s) { return escape(s, false); }
std::string escape_bytes(std::string_view s) { return escape(s, true); }

std::string quote(std::string_view s) { return "'" + escape_text(s.substr(0, 200)) + "'"; }

std::string last_line(std::string_view text) {
  auto end = text.find_last_not_of('\n');
  if (end == std::string_view::npos) return {};
  auto start = text.rfind('\n', end);
  start = start == std::string_view::npos ? 0 : start + 1;
  return std::string(text.substr(start, end - start + 1));
}

std::string age_text(std::int64_t ms) {
  if (ms < 0) ms = 0;
  if (ms < 60'000) return std::to_string(ms / 1000) + "s";
  if (ms < 3'600'000) return std::to_string(ms / 60'000) + "m";
  if (ms < 86'400'000) return std::to_string(ms / 3'600'000) + "h";
  return std::to_string(ms / 86'400'000) + "d";
}

std::vector<std::string> table_lines(const std::vector<std::vector<std::string>>& rows, std::size_t right_from) {
  std::vector<std::size_t> width;
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  std::vector<std::string> lines;
  lines.reserve(rows.size());
  for (const auto& r : rows) {
    std::string line;
    for (std::size_t i = 0; i < r.size(); ++i) {
      if (i) line += "  ";
      std::string pad(width[i] - r[i].size(), ' ');
      if (i >= right_from) line += pad + r[i];
      else line += i + 1 == r.size() ? r[i] : r[i] + pad;
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

}  // namespace tobus
