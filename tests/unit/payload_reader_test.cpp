#include <doctest/doctest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tobus/send/send.hpp"

using namespace tobus;

namespace {
std::vector<std::string> read_all(const std::string& input, Framing f) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  REQUIRE(write(fds[1], input.data(), input.size()) == static_cast<ssize_t>(input.size()));
  close(fds[1]);
  PayloadReader reader(fds[0], f);
  std::vector<std::string> all, some;
  while (reader.next(some)) all.insert(all.end(), some.begin(), some.end());
  close(fds[0]);
  return all;
}
}  // namespace

TEST_CASE("lines: newline-delimited, a last line without newline counts, empty lines too") {
  CHECK(read_all("a\nb\n", Framing::lines) == std::vector<std::string>{"a", "b"});
  CHECK(read_all("a\n\nb", Framing::lines) == std::vector<std::string>{"a", "", "b"});
  CHECK(read_all("", Framing::lines).empty());
}

TEST_CASE("NUL-delimited and whole") {
  CHECK(read_all(std::string("a\nb\0c\0", 6), Framing::null) == std::vector<std::string>{"a\nb", "c"});
  CHECK(read_all(std::string("x\0y\n", 4), Framing::whole) == std::vector<std::string>{std::string("x\0y\n", 4)});
  CHECK(read_all("", Framing::whole) == std::vector<std::string>{""});
}
