// tobus-module: attaches a named module and runs its handler for each message.
#include <unistd.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tobus/process/service.hpp"
#include "tobus/tobus.hpp"
#include "tobus/util/io.hpp"

int main(int argc, char** argv) {
  tobus::Program program("tobus-module", "Attach module NAME to the bus and run COMMAND for each message.");
  auto& app = program.app();
  tobus::ModuleOptions options;
  std::vector<std::string> command;
  auto& s = options.service;
  app.add_option("NAME", options.name, "The module's name (the hop in a route)");
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

  // The service framework (docs/service.md).
  app.add_option("--pool", s.pool, "Run DIR/SERVICE, named by each message's 'service' header, args from 'args'")
      ->type_name("DIR");
  app.add_option("--workdir", s.workdir, "Run each job in DIR/<job-id>/: the payload in input, stdout in output")
      ->type_name("DIR");
  app.add_option("--result", s.result, "The result is this file of the job's work dir, not stdout")
      ->type_name("PATH");
  std::string keep = "failed";
  app.add_option("--keep-workdir", keep, "Keep work dirs: always, failed or never")
      ->type_name("POLICY")
      ->check(CLI::IsMember({"always", "failed", "never"}))
      ->capture_default_str();
  app.add_option("--before", s.before, "Shell command run in the work dir before each job")->type_name("CMD");
  app.add_option("--on-change", s.on_change, "Shell command run whenever the work dir's listing changes")
      ->type_name("CMD");
  app.add_option("--after", s.after, "Shell command run after each job, with TOBUS_RC")->type_name("CMD");
  program.add_duration("--watch-interval", s.watch_interval, "List a running job's work dir this often");
  program.add_duration("--kill-after", s.kill_after, "SIGKILL a handler this long after --timeout's SIGTERM");
  tobus::add_size_option(app, "--max-output", [&s](std::uint64_t n) { s.max_output = static_cast<std::size_t>(n); },
                         "Fail a handler that writes more than N bytes (16M, ...) on stdout");
  tobus::add_size_option(app, "--max-payload", [&options](std::uint64_t n) { options.max_payload = static_cast<std::size_t>(n); },
                         "Fail a message whose result is larger than N bytes (default 64M)");
  tobus::add_size_option(app, "--max-memory", [&s](std::uint64_t n) { s.max_memory = n; },
                         "Limit a handler's address space to N bytes (512M, ...; RLIMIT_AS)");
  std::string init, lang = "sh";
  auto* init_opt = app.add_option("--init", init, "Write a handler template NAME and exit")->type_name("NAME");
  app.add_option("--lang", lang, "The template's language: sh or python")
      ->type_name("NAME")
      ->check(CLI::IsMember({"sh", "python"}))
      ->needs(init_opt)
      ->capture_default_str();
  bool once = false, dry_run = false;
  std::string message, to;
  std::vector<std::string> headers;
  auto* once_opt = app.add_flag("--once", once, "Run the handler on one message here, without a bus, and say what would be sent");
  app.add_flag("--dry-run", dry_run, "With --once: describe the outcome on stdout instead of printing the result")
      ->needs(once_opt);
  auto* message_opt =
      app.add_option("-m,--message", message, "With --once: the payload (default: standard input)")->needs(once_opt);
  app.add_option("-H,--header", headers, "With --once: a header KEY=VALUE (repeatable)")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false)
      ->needs(once_opt);
  app.add_option("-t,--to", to, "With --once: the hops after this module")->type_name("ROUTE")->needs(once_opt);

  // Sections of --help, as in the man page.
  for (const char* name : {"--pool", "--workdir", "--result", "--keep-workdir", "--before", "--on-change", "--after",
                           "--watch-interval", "--kill-after", "--max-output", "--max-payload", "--max-memory"})
    app.get_option(name)->group("Services, work dirs and limits");
  for (const char* name : {"--init", "--lang", "--once", "--dry-run", "--message", "--header", "--to"})
    app.get_option(name)->group("Developing a handler");

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
    if (!init.empty()) {
      tobus::write_output(STDOUT_FILENO, tobus::write_template(s.pool.empty() ? "." : s.pool, init, lang) + "\n");
      return 0;
    }
    if (options.name.empty()) throw tobus::Error(tobus::ErrorKind::usage, "NAME is required");
    s.keep = *tobus::parse_keep_workdir(keep);
    if (once) {
      tobus::OnceOptions o;
      o.module = options.name;
      o.command = command;
      if (lines || framed || join >= 0)
        throw tobus::Error(tobus::ErrorKind::usage, "--once runs a per-message handler: not with --lines, --framed or --join");
      o.payload = message_opt->count() > 0 ? message : tobus::read_all(STDIN_FILENO, "standard input");
      for (const auto& h : headers) o.headers.push_back(tobus::parse_header_option(h));
      if (!to.empty()) o.route = tobus::parse_route(to);
      o.dry_run = dry_run;
      o.service = s;
      if (timeout.count() > 0) o.service.timeout = timeout;
      return tobus::run_once(o);
    }
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
