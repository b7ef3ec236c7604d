// The config file format of --config (cli/config.hpp): what each line becomes, and the one-line
// errors, with the line they are on.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tobus/cli/config.hpp"

namespace {

struct Fixture {
  CLI::App app{"test", "tobus-module"};
  std::string name;
  std::vector<std::string> command, types;
  int jobs = 1;
  bool lines = false;
  Fixture() {
    app.add_option("NAME", name);
    app.add_option("COMMAND", command);
    app.add_option("-j,--jobs", jobs);
    app.add_option("--type", types)->allow_extra_args(false);
    app.add_flag("--lines", lines);
    app.set_config("--config");
  }
  std::vector<tobus::ConfigEntry> parse(const std::string& text) { return tobus::parse_config(app, "m.conf", text); }
  std::string error(const std::string& text) {
    try {
      parse(text);
    } catch (const CLI::ConfigError& e) {
      return e.what();
    }
    return "no error";
  }
};

}  // namespace

TEST_CASE("config: keys are long options or positionals, values bare, quoted or arrays") {
  Fixture f;
  auto e = f.parse(
      "# comment\n"
      "\n"
      "name = resize   # a bare value ends at a blank and #\n"
      "jobs=4\n"
      "command = [\"sh\", \"-c\", 'a \"b\" #c', \"x\\ty\\n\\\\\",\n"
      "  # a comment inside the array\n"
      "  \"last\",\n"
      "]\n"
      "type = \"one two\"  # quoted\n"
      "lines = true\r\n");
  REQUIRE(e.size() == 5);
  CHECK(e[0].item.name == "NAME");
  CHECK(e[0].item.inputs == std::vector<std::string>{"resize"});
  CHECK(e[0].line == 3);
  CHECK(e[1].item.name == "jobs");
  CHECK(e[1].item.inputs == std::vector<std::string>{"4"});
  CHECK(e[2].item.name == "COMMAND");
  CHECK(e[2].item.inputs == std::vector<std::string>{"sh", "-c", "a \"b\" #c", "x\ty\n\\", "last"});
  CHECK(e[2].line == 5);
  CHECK(e[3].item.inputs == std::vector<std::string>{"one two"});
  CHECK(e[4].item.name == "lines");
  CHECK(e[4].item.inputs == std::vector<std::string>{"true"});
  CHECK(f.parse("command = []\n").empty());
  CHECK(f.parse("name = a#b\n")[0].item.inputs == std::vector<std::string>{"a#b"});
}

TEST_CASE("config: a bad file is one error naming the file and the line") {
  Fixture f;
  CHECK(f.error("jobz = 1") == "m.conf:1: unknown key 'jobz': not an option of tobus-module (see its --help)");
  CHECK(f.error("\njobs = 1\njobs = 2") ==
        "m.conf:3: 'jobs' is given twice (first on line 2); several values are written jobs = [\"a\", \"b\"]");
  CHECK(f.error("jobs = [\"1\", \"2\"]") == "m.conf:1: 'jobs' takes one value, not an array");
  CHECK(f.error("lines = yes") == "m.conf:1: 'lines' is a flag: its value is true or false");
  CHECK(f.error("lines = [\"true\"]") == "m.conf:1: 'lines' is a flag: its value is true or false");
  CHECK(f.error("command = [\"a\",\n\"b\"\n") == "m.conf:2: an array opened with [ is not closed with ]");
  CHECK(f.error("command = [\"a\" \"b\"]") == "m.conf:1: the elements of an array are separated by commas");
  CHECK(f.error("command = [\"a\",, \"b\"]") ==
        "m.conf:1: an array has an empty element (two commas, or a comma first)");
  CHECK(f.error("command = [a]") == "m.conf:1: the elements of an array are quoted strings: \"word\"");
  CHECK(f.error("name = \"a") == "m.conf:1: a string opened with \" is not closed on its line");
  CHECK(f.error("name = \"a\" b") == "m.conf:1: unexpected 'b' after the value (quote a value with spaces)");
  CHECK(f.error("name = \"a\\q\"") == "m.conf:1: unknown escape '\\q' in a quoted string (use \\\\ \\\" \\n \\t)");
  CHECK(f.error("name =") == "m.conf:1: 'name' has no value (a flag is written name = true)");
  CHECK(f.error("just words") == "m.conf:1: expected KEY = VALUE, got 'just words'");
  CHECK(f.error("[section]") == "m.conf:1: sections ([...]) are not used: write KEY = VALUE lines");
  CHECK(f.error("bad key = 1") ==
        "m.conf:1: bad key 'bad key': a key is a long option without its dashes (jobs, timeout)");
  CHECK(f.error("config = other.conf") == "m.conf:1: 'config' cannot be set in a config file");
  CHECK(f.error("help = true") == "m.conf:1: 'help' cannot be set in a config file");
}
