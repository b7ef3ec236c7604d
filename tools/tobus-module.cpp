// tobus-module: attaches a named module and runs its handler for each message.
#include <cctype>
#include <string>
#include <string_view>
#include <vector>

#include "tobus/tobus.hpp"

int main(int argc, char** argv) {
  tobus::Program program("tobus-module", "Attach module NAME to the bus and run COMMAND for each message.");
  auto& app = program.app();
  tobus::ModuleOptions options;
  std::vector<std::string> command;
  app.add_option("NAME", options.name, "The module's name (the hop in a route)")->required();
  app.add_option("COMMAND", command,
                 "Handler run per message: payload on stdin, stdout is the result (none: pass-through)");
  app.add_option("-j,--jobs", options.jobs, "Handlers running at a time")
      ->type_name("N")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--retries", options.retries, "Retries after exit code 75 (EX_TEMPFAIL)")
      ->type_name("N")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  program.add_duration("--backoff", options.backoff, "First retry delay, doubling each retry");
  tobus::Millis timeout{0};
  program.add_duration("--timeout", timeout, "Kill a handler's process group after this long (0: never)");
  program.add_duration("--claim-after", options.claim_after,
                       "Take over entries a dead instance left pending this long");
  bool lines = false, framed = false;
  auto* lines_opt = app.add_flag("--lines", lines,
                                 "COMMAND is a co-process: started once, one line per message in and out");
  app.add_flag("--framed", framed, "COMMAND is a co-process speaking length-prefixed frames (binary-safe)")
      ->excludes(lines_opt);
  app.add_option("--reload-on", options.reload_on, "Reload the co-process when PATH changes (repeatable)")
      ->type_name("PATH")
      ->allow_extra_args(false);
  app.add_option("--type", options.types, "Join TYPE: an @TYPE hop (or tobus-send --publish) copies messages here")
      ->type_name("TYPE")
      ->allow_extra_args(false);
  int join = -1;
  tobus::JoinOptions join_options;
  std::string join_format = "lines", on_branch_fail = "fail";
  auto* join_opt = app.add_option("--join", join,
                                  "Run the handler once per group: the copies of a fan-out, or with N, N messages "
                                  "sharing a --correlation id")
                       ->expected(0, 1)
                       ->default_str("0")
                       ->type_name("N")
                       ->check(CLI::Range(0, 100000));
  app.add_option("--join-format", join_format, "How a group's payloads are combined: lines or json")
      ->type_name("FORMAT")
      ->check(CLI::IsMember({"lines", "json"}))
      ->needs(join_opt)
      ->capture_default_str();
  program.add_duration("--join-timeout", join_options.timeout, "Give up waiting for a group's parts after this long")
      ->needs(join_opt);
  app.add_option("--on-branch-fail", on_branch_fail,
                 "When a branch fails: fail the group, or ignore it and join what arrived")
      ->type_name("POLICY")
      ->check(CLI::IsMember({"fail", "ignore"}))
      ->needs(join_opt)
      ->capture_default_str();

  // `--join` takes an optional N, and CLI11 would take a following `--` as part of it: spell
  // `--join` and `--join N` as --join=0 and --join=N before it parses.
  std::vector<std::string> args;
  std::vector<char*> fixed;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") {
      args.insert(args.end(), argv + i, argv + argc);
      break;
    }
    if (a == "--join") {
      bool number = i + 1 < argc && argv[i + 1][0] != '\0' &&
                    std::string_view(argv[i + 1]).find_first_not_of("0123456789") == std::string_view::npos;
      a = number ? "--join=" + std::string(argv[++i]) : "--join=0";
    }
    args.push_back(a);
  }
  for (auto& a : args) fixed.push_back(a.data());
  fixed.push_back(nullptr);

  return program.run(static_cast<int>(args.size()), fixed.data(), [&] {
    options.command = command;
    if (timeout.count() > 0) options.timeout = timeout;
    if ((lines || framed) && command.empty())
      throw tobus::Error(tobus::ErrorKind::usage, "--lines and --framed need a COMMAND to run as a co-process");
    if (!options.reload_on.empty() && !lines && !framed)
      throw tobus::Error(tobus::ErrorKind::usage, "--reload-on needs --lines or --framed");
    options.mode = lines ? tobus::ModuleOptions::Mode::lines
                   : framed ? tobus::ModuleOptions::Mode::framed
                            : tobus::ModuleOptions::Mode::per_message;
    for (const auto& t : options.types)
      if (!tobus::valid_name(t))
        throw tobus::Error(tobus::ErrorKind::usage, "bad --type '" + t + "': names are 1-64 of A-Z a-z 0-9 _ . -");
    if (join >= 0) {
      join_options.correlated = join;
      join_options.format = join_format == "json" ? tobus::JoinFormat::json : tobus::JoinFormat::lines;
      join_options.on_branch_fail =
          on_branch_fail == "ignore" ? tobus::BranchFailPolicy::ignore : tobus::BranchFailPolicy::fail;
      options.join = join_options;
    }
    return tobus::run_module(program, options);
  });
}
