#include "tobus/cli/config.hpp"

#include <algorithm>
#include <cctype>
#include <istream>
#include <map>
#include <memory>
#include <string_view>

#include "tobus/cli/cli.hpp"

namespace tobus {
namespace {

// A config file is a few lines an administrator wrote; more than this is a mistake (a binary, a
// log given by error), not something to hold in memory.
constexpr std::size_t max_config_bytes = 1 << 20;

// Options a config file does not set: reading another file, and what prints and exits.
bool refused_key(std::string_view key) {
  return key == "config" || key == "help" || key == "version" || key == "_options";
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool valid_key(std::string_view key) {
  return !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

// Reads the file's lines one value at a time; every error names the line it is on.
class Reader {
 public:
  Reader(const std::string& path, const std::string& text) : path_(path), text_(text) {}

  [[noreturn]] void fail(const std::string& why) const {
    throw CLI::ConfigError(path_ + ":" + std::to_string(line_) + ": " + why);
  }

  int line() const { return line_; }
  bool at_end() const { return at_ >= text_.size(); }

  // The next line, without its end; empty at the end of the file.
  std::string_view next_line() {
    ++line_;
    std::size_t end = std::min(text_.find('\n', at_), text_.size());
    std::string_view l(text_.data() + at_, end - at_);
    at_ = end + 1;
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    return l;
  }

  // A quoted string at the start of `s` ("..." with \\ \" \n \t escapes, or '...' as it is);
  // `s` is left after its closing quote.
  std::string quoted(std::string_view& s) const {
    char quote = s.front();
    std::string out;
    for (std::size_t i = 1; i < s.size(); ++i) {
      char c = s[i];
      if (c == quote) {
        s.remove_prefix(i + 1);
        return out;
      }
      if (c == '\\' && quote == '"') {
        if (++i == s.size()) break;
        switch (s[i]) {
          case '\\': out += '\\'; break;
          case '"': out += '"'; break;
          case 'n': out += '\n'; break;
          case 't': out += '\t'; break;
          default: fail(std::string("unknown escape '\\") + s[i] + "' in a quoted string (use \\\\ \\\" \\n \\t)");
        }
        continue;
      }
      out += c;
    }
    fail(std::string("a string opened with ") + quote + " is not closed on its line");
  }

  // What may follow a value on its line: blanks, then nothing or a # comment.
  void end_of_value(std::string_view rest) const {
    rest = trim(rest);
    if (!rest.empty() && rest.front() != '#')
      fail("unexpected '" + std::string(rest.substr(0, 20)) + "' after the value (quote a value with spaces)");
  }

  // An array's elements: quoted strings separated by commas, over as many lines as it takes up to
  // its closing ']'. `s` is what follows the '['.
  std::vector<std::string> array(std::string_view s) {
    std::vector<std::string> out;
    bool want_value = true;
    for (;;) {
      s = trim(s);
      if (s.empty() || s.front() == '#') {
        if (at_end()) fail("an array opened with [ is not closed with ]");
        s = next_line();
        continue;
      }
      if (s.front() == ']') {
        end_of_value(s.substr(1));
        return out;
      }
      if (s.front() == ',') {
        if (want_value) fail("an array has an empty element (two commas, or a comma first)");
        want_value = true;
        s.remove_prefix(1);
        continue;
      }
      if (!want_value) fail("the elements of an array are separated by commas");
      if (s.front() != '"' && s.front() != '\'')
        fail("the elements of an array are quoted strings: \"word\"");
      out.push_back(quoted(s));
      want_value = false;
    }
  }

 private:
  const std::string& path_;
  const std::string& text_;
  std::size_t at_ = 0;
  int line_ = 0;
};

// The option `key` names in `app`: a long option, or a positional by its name in lower case.
const CLI::Option* option_for(const CLI::App& app, const std::string& key) {
  for (const CLI::Option* opt : app.get_options()) {
    const auto& longs = opt->get_lnames();
    if (std::find(longs.begin(), longs.end(), key) != longs.end()) return opt;
    if (opt->get_positional() && longs.empty() && opt->get_snames().empty()) {
      std::string name = opt->get_name();
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
      if (name == key) return opt;
    }
  }
  return nullptr;
}

// The options the last config file read set ("--jobs", "COMMAND"), and where: for the errors CLI11
// finds in their values once they are applied. One program reads one config file.
std::map<std::string, std::string>& origins() {
  static std::map<std::string, std::string> where;
  return where;
}

class ConfigFormat : public CLI::Config {
 public:
  explicit ConfigFormat(const CLI::App& app) : app_(app) {}

  std::string to_config(const CLI::App*, bool, bool, std::string) const override { return {}; }

  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    const CLI::Option* opt = app_.get_config_ptr();
    std::string path = opt && !opt->results().empty() ? opt->results().back() : "config";
    std::string text(max_config_bytes + 1, '\0');
    input.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(input.gcount()));
    if (text.size() > max_config_bytes)
      throw CLI::ConfigError(path + ": larger than " + std::to_string(max_config_bytes) + " bytes: not a config file");
    if (text.find('\0') != std::string::npos) throw CLI::ConfigError(path + ": has a NUL byte: not a config file");
    std::vector<CLI::ConfigItem> items;
    origins().clear();
    for (auto& [item, line] : parse_config(app_, path, text)) {
      // An option the command line gave wins (CLI11 leaves it as it is): its errors are not ours.
      const CLI::Option* opt = app_.get_option_no_throw(item.name);
      if (!opt) opt = app_.get_option_no_throw("--" + item.name);
      if (opt && opt->count() > 0) continue;
      origins()[opt && !opt->get_lnames().empty() ? "--" + opt->get_lnames().front() : item.name] =
          path + ":" + std::to_string(line) + ": ";
      items.push_back(std::move(item));
    }
    return items;
  }

 private:
  const CLI::App& app_;
};

}  // namespace

std::vector<ConfigEntry> parse_config(const CLI::App& app, const std::string& path, const std::string& text) {
  std::vector<ConfigEntry> entries;
  std::map<std::string, int> seen;  // key: the line it was given on
  Reader r(path, text);
  while (!r.at_end()) {
    std::string_view l = trim(r.next_line());
    if (l.empty() || l.front() == '#') continue;
    if (l.front() == '[') r.fail("sections ([...]) are not used: write KEY = VALUE lines");
    std::size_t eq = l.find('=');
    if (eq == std::string_view::npos) r.fail("expected KEY = VALUE, got '" + std::string(l.substr(0, 40)) + "'");
    std::string key(trim(l.substr(0, eq)));
    if (!valid_key(key)) r.fail("bad key '" + key + "': a key is a long option without its dashes (jobs, timeout)");
    int key_line = r.line();
    const CLI::Option* opt = refused_key(key) ? nullptr : option_for(app, key);
    if (!opt) {
      if (refused_key(key)) r.fail("'" + key + "' cannot be set in a config file");
      r.fail("unknown key '" + key + "': not an option of " + app.get_name() + " (see its --help)");
    }
    if (auto before = seen.find(key); before != seen.end())
      r.fail("'" + key + "' is given twice (first on line " + std::to_string(before->second) +
             "); several values are written " + key + " = [\"a\", \"b\"]");
    seen[key] = key_line;

    std::string_view rest = trim(l.substr(eq + 1));
    if (rest.empty()) r.fail("'" + key + "' has no value (a flag is written " + key + " = true)");
    std::vector<std::string> values;
    bool is_array = rest.front() == '[';
    if (is_array) {
      values = r.array(rest.substr(1));
    } else if (rest.front() == '"' || rest.front() == '\'') {
      values.push_back(r.quoted(rest));
      r.end_of_value(rest);
    } else {
      // A bare value runs to the end of the line, or to a blank followed by '#'.
      std::size_t comment = rest.npos;
      for (std::size_t i = 1; i < rest.size(); ++i)
        if (rest[i] == '#' && std::isspace(static_cast<unsigned char>(rest[i - 1]))) {
          comment = i;
          break;
        }
      values.emplace_back(trim(rest.substr(0, comment)));
    }

    bool flag = opt->get_expected_max() == 0;
    if (flag) {
      if (is_array || values.size() != 1 ||
          (values[0] != "true" && values[0] != "false" &&
           values[0].find_first_not_of("0123456789") != std::string::npos))
        r.fail("'" + key + "' is a flag: its value is true or false");
    } else if (values.size() > 1 && opt->get_items_expected_max() <= 1) {
      r.fail("'" + key + "' takes one value, not an array");
    }
    if (values.empty()) continue;  // command = []: none
    ConfigEntry entry;
    entry.item.name = opt->get_positional() && opt->get_lnames().empty() ? opt->get_name() : key;
    entry.item.inputs = std::move(values);
    entry.line = key_line;
    entries.push_back(std::move(entry));
  }
  return entries;
}

CLI::Option* add_config_option(Program& program) {
  CLI::App& app = program.app();
  app.config_formatter(std::make_shared<ConfigFormat>(app));
  auto* opt = app.set_config("--config", "", "Read options from PATH: KEY = VALUE lines (a service's config file)");
  opt->type_name("PATH");
  return opt;
}

std::string config_origin(const std::string& what) {
  for (const auto& [name, where] : origins())
    if (what.starts_with(name + ":") || what.starts_with(name + " ")) return where;
  return {};
}

}  // namespace tobus
