#pragma once
// --config PATH: a program's options read from a file of KEY = VALUE lines, for services
// (tobus-module@NAME.service reads /etc/tobus/modules/NAME.conf). Each KEY is a long option
// without its dashes (jobs = 4, timeout = 30s, lines = true), `name` and `command` are the
// positional NAME and COMMAND, and a VALUE is a bare word to the end of the line, a quoted string,
// or an array of quoted strings (command = ["convert", "-", "-resize", "50%", "-"]): a command is
// a list of words and never passes through a shell. The command line wins over the file, the file
// over the environment (TOBUS_REDIS, ...). The format is documented in tobus-module(1).

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace tobus {

class Program;

// One KEY = VALUE of a config file: the item CLI11 applies (named as CLI11 finds the option: its
// long name, or a positional's name) and the line it is on.
struct ConfigEntry {
  CLI::ConfigItem item;
  int line = 0;
};

// The entries of a config file `text` (read from `path`, for the messages) for `app`, one per
// key. Throws CLI::ConfigError with one line "PATH:LINE: why" for a bad line, an unknown key, a
// key given twice, several values for an option that takes one, or a flag's value other than
// true or false.
std::vector<ConfigEntry> parse_config(const CLI::App& app, const std::string& path, const std::string& text);

// Adds --config PATH to `program`, read with parse_config.
CLI::Option* add_config_option(Program& program);

// "PATH:LINE: " when a parse error `what` ("--jobs: Value 0 not in range ...") is about a value
// the config file gave (not the command line), else empty: for the error's one line.
std::string config_origin(const std::string& what);

}  // namespace tobus
