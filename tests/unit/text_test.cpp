#include <doctest/doctest.h>

#include <cstdint>
#include <string>

#include "tobus/util/text.hpp"

using namespace tobus;

TEST_CASE("to_int takes the whole text or nothing") {
  std::int64_t v = 0;
  CHECK(to_int("42", v));
  CHECK(v == 42);
  CHECK(to_int("-7", v));
  CHECK(v == -7);
  CHECK_FALSE(to_int("", v));
  CHECK_FALSE(to_int("4x", v));
  CHECK_FALSE(to_int(" 4", v));
  CHECK_FALSE(to_int("+4", v));
  CHECK_FALSE(to_int("99999999999999999999", v));  // does not fit
  int small = 0;
  CHECK_FALSE(to_int("3000000000", small));
  unsigned u = 0;
  CHECK_FALSE(to_int("-1", u));
  CHECK(to_int("0190c8a1f2e", v, 16));
  CHECK(v == 0x0190c8a1f2e);
  CHECK_FALSE(to_int("0x10", v, 16));
}

TEST_CASE("escape_text and escape_bytes: one line of printable text") {
  CHECK(escape_text("plain text") == "plain text");
  CHECK(escape_text("a\nb\tc\rd\\e") == "a\\nb\\tc\\rd\\\\e");
  CHECK(escape_text(std::string("\0\x01\x1b\x7f", 4)) == "\\x00\\x01\\x1b\\x7f");
  CHECK(escape_text("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") == "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  CHECK(escape_text("a\xff" "b\xc3") == "a\\xffb\\xc3");  // not UTF-8, truncated
  CHECK(escape_text("\xc0\xaf") == "\\xc0\\xaf");         // overlong
  CHECK(escape_text("\xed\xa0\x80") == "\\xed\\xa0\\x80"); // surrogate
  CHECK(escape_text("\xc3(") == "\\xc3(");                // a bad sequence: only its first byte
  CHECK(escape_text("\xc2\x85") == "\\xc2\\x85");         // a C1 control
  CHECK(escape_text("\xc2\xa0") == "\xc2\xa0");           // no-break space is printable
  // The only difference: a double quote.
  CHECK(escape_text("say \"hi\"") == "say \"hi\"");
  CHECK(escape_bytes("say \"hi\"") == "say \\\"hi\\\"");
  CHECK(escape_bytes("a\n\xff\xc2\x85") == "a\\n\\xff\\xc2\\x85");
}

TEST_CASE("last_line: the last line with text") {
  CHECK(last_line("") == "");
  CHECK(last_line("\n\n") == "");
  CHECK(last_line("only") == "only");
  CHECK(last_line("only\n") == "only");
  CHECK(last_line("first\nsecond\n") == "second");
  CHECK(last_line("first\nsecond\n\n\n") == "second");
  CHECK(last_line("first\n\nthird") == "third");
  CHECK(last_line("\nx") == "x");
  CHECK(last_line("a\r\nb\r\n") == "b\r");  // only newlines end lines
}

TEST_CASE("age_text: the largest whole unit") {
  CHECK(age_text(-5) == "0s");
  CHECK(age_text(0) == "0s");
  CHECK(age_text(999) == "0s");
  CHECK(age_text(59'999) == "59s");
  CHECK(age_text(60'000) == "1m");
  CHECK(age_text(3'599'999) == "59m");
  CHECK(age_text(3'600'000) == "1h");
  CHECK(age_text(86'399'999) == "23h");
  CHECK(age_text(86'400'000) == "1d");
  CHECK(age_text(10 * 86'400'000LL) == "10d");
}

TEST_CASE("table_lines: columns two spaces apart") {
  CHECK(table_lines({}).empty());
  CHECK(table_lines({{"NAME", "STATUS"}, {"a", "up"}, {"longer", "down"}}) ==
        std::vector<std::string>{"NAME    STATUS", "a       up", "longer  down"});
  // The last cell gets no trailing spaces; a ragged row is fine.
  CHECK(table_lines({{"a", "b"}, {"ccc"}}) == std::vector<std::string>{"a    b", "ccc"});
  // Right-aligned from the second column on.
  CHECK(table_lines({{"MODULE", "INBOX", "SEEN"}, {"m", "12345", "3s"}}, 1) ==
        std::vector<std::string>{"MODULE  INBOX  SEEN", "m       12345    3s"});
  CHECK(table_lines({{"x"}}, 0) == std::vector<std::string>{"x"});
}

TEST_CASE("quote: escaped, in single quotes, at most 200 bytes") {
  CHECK(quote("job:1") == "'job:1'");
  CHECK(quote("a\nb") == "'a\\nb'");
  CHECK(quote(std::string(300, 'x')) == "'" + std::string(200, 'x') + "'");
}
