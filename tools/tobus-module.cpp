// tobus-module: attaches a named module and runs its handler for each message.
#include <unistd.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tobus/cli/config.hpp"
#include "tobus/process/service.hpp"
#include "tobus/tobus.hpp"
#include "tobus/util/io.hpp"

namespace {

// What the command line sets beyond ModuleOptions: the values main() checks and turns into
// options once they are parsed, and the options it asks about (--message given, or not).
struct Cli {
  tobus::ModuleOptions options;
  std::vector<std::string> command;
  tobus::Millis timeout{0};
  bool lines = false, framed = false;
  int join = -1;
  tobus::JoinOptions join_options;
  std::string join_format = "lines", on_branch_fail = "fail";
  std::string keep = "failed";
  std::string init, lang = "sh";
  bool once = false, dry_run = false;
  std::string message, to;
  std::vector<std::string> headers;
  CLI::Option* message_opt = nullptr;
};

// The module's own options: what it runs, how often and how long, co-processes, types and joins.
void add_module_options(tobus::Program& program, Cli& cli) {
  auto& app = program.app();
  auto& options = cli.options;
  app.add_option("NAME", options.name, "The module's name (the hop in a route)");
  app.add_option("COMMAND", cli.command,
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
  program.add_duration("--timeout", cli.timeout, "Kill a handler's process group after this long (0: never)");
  program.add_duration("--claim-after", options.claim_after,
                       "Take over entries a dead instance left pending this long");
  auto* lines_opt = app.add_flag("--lines", cli.lines,
                                 "COMMAND is a co-process: started once, one line per message in and out");
  app.add_flag("--framed", cli.framed, "COMMAND is a co-process speaking length-prefixed frames (binary-safe)")
      ->excludes(lines_opt);
  app.add_option("--reload-on", options.reload_on, "Reload the co-process when PATH changes (repeatable)")
      ->type_name("PATH")
      ->allow_extra_args(false);
  app.add_option("--type", options.types, "Join TYPE: an @TYPE hop (or tobus-send --publish) copies messages here")
      ->type_name("TYPE")
      ->allow_extra_args(false);
  auto* join_opt = app.add_option("--join", cli.join,
                                  "Run the handler once per group: the copies of a fan-out, or with N, N messages "
                                  "sharing a --correlation id")
                       ->expected(0, 1)
                       ->default_str("0")
                       ->type_name("N")
                       ->check(CLI::Range(0, 100000));
  app.add_option("--join-format", cli.join_format, "How a group's payloads are combined: lines or json")
      ->type_name("FORMAT")
      ->check(CLI::IsMember({"lines", "json"}))
      ->needs(join_opt)
      ->capture_default_str();
  program
      .add_duration("--join-timeout", cli.join_options.timeout, "Give up waiting for a group's parts after this long")
      ->needs(join_opt);
  app.add_option("--on-branch-fail", cli.on_branch_fail,
                 "When a branch fails: fail the group, or ignore it and join what arrived")
      ->type_name("POLICY")
      ->check(CLI::IsMember({"fail", "ignore"}))
      ->needs(join_opt)
      ->capture_default_str();
  app.add_flag("--pass-redis-password", options.pass_redis_password,
               "Give handlers the Redis password in TOBUS_REDIS (by default it is left out)");
}

// The two sections of --help after the module's own, as in the man page: the service framework
// (docs/service.md), and writing a handler (--init, --once).
void add_service_and_developing_options(tobus::Program& program, Cli& cli) {
  auto& app = program.app();
  auto& options = cli.options;
  auto& s = options.service;
  app.add_option("--pool", s.pool, "Run DIR/SERVICE, named by each message's 'service' header, args from 'args'")
      ->type_name("DIR");
  app.add_option("--workdir", s.workdir, "Run each job in DIR/<job-id>/: the payload in input, stdout in output")
      ->type_name("DIR");
  app.add_option("--result", s.result, "The result is this file of the job's work dir, not stdout")
      ->type_name("PATH");
  app.add_option("--keep-workdir", cli.keep, "Keep work dirs: always, failed or never")
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
  auto* init_opt = app.add_option("--init", cli.init, "Write a handler template NAME and exit")->type_name("NAME");
  app.add_option("--lang", cli.lang, "The template's language: sh or python")
      ->type_name("NAME")
      ->check(CLI::IsMember({"sh", "python"}))
      ->needs(init_opt)
      ->capture_default_str();
  auto* once_opt = app.add_flag("--once", cli.once, "Run the handler on one message here, without a bus, and say what would be sent");
  app.add_flag("--dry-run", cli.dry_run, "With --once: describe the outcome on stdout instead of printing the result")
      ->needs(once_opt);
  cli.message_opt = app.add_option("-m,--message", cli.message, "With --once: the payload (default: standard input)")
                        ->needs(once_opt);
  app.add_option("-H,--header", cli.headers, "With --once: a header KEY=VALUE (repeatable)")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false)
      ->needs(once_opt);
  app.add_option("-t,--to", cli.to, "With --once: the hops after this module")->type_name("ROUTE")->needs(once_opt);

  for (const char* name : {"--pool", "--workdir", "--result", "--keep-workdir", "--before", "--on-change", "--after",
                           "--watch-interval", "--kill-after", "--max-output", "--max-payload", "--max-memory"})
    app.get_option(name)->group("Services, work dirs and limits");
  for (const char* name : {"--init", "--lang", "--once", "--dry-run", "--message", "--header", "--to"})
    app.get_option(name)->group("Developing a handler");
}

// `--join` takes an optional N, and CLI11 would take a following `--` as part of it (the start of
// COMMAND's own arguments): spell `--join` and `--join N` as --join=0 and --join=N before it
// parses. Arguments after `--` are left as they are. Returns the strings; argv_of() points at them.
std::vector<std::string> spell_join_out(int argc, char** argv) {
  std::vector<std::string> args;
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
  return args;
}

// A NULL-terminated argv pointing into `args`, which must outlive it.
std::vector<char*> argv_of(std::vector<std::string>& args) {
  std::vector<char*> fixed;
  for (auto& a : args) fixed.push_back(a.data());
  fixed.push_back(nullptr);
  return fixed;
}

// --once: runs the handler on one message here, without a bus.
int run_once_here(Cli& cli) {
  auto& s = cli.options.service;
  tobus::OnceOptions o;
  o.module = cli.options.name;
  o.command = cli.command;
  if (cli.lines || cli.framed || cli.join >= 0)
    throw tobus::Error(tobus::ErrorKind::usage,
                       "--once runs a per-message handler: not with --lines, --framed or --join");
  o.payload = cli.message_opt->count() > 0 ? cli.message : tobus::read_all(STDIN_FILENO, "standard input");
  for (const auto& h : cli.headers) o.headers.push_back(tobus::parse_header_option(h));
  if (!cli.to.empty()) o.route = tobus::parse_route(cli.to);
  o.dry_run = cli.dry_run;
  o.service = s;
  if (cli.timeout.count() > 0) o.service.timeout = cli.timeout;
  return tobus::run_once(o);
}

// The job once the options are parsed: --init, --once, or attach the module and run it.
int run_job(tobus::Program& program, Cli& cli) {
  auto& options = cli.options;
  auto& s = options.service;
  if (!cli.init.empty()) {
    tobus::write_output(STDOUT_FILENO, tobus::write_template(s.pool.empty() ? "." : s.pool, cli.init, cli.lang) + "\n");
    return 0;
  }
  if (options.name.empty()) throw tobus::Error(tobus::ErrorKind::usage, "NAME is required");
  s.keep = *tobus::parse_keep_workdir(cli.keep);
  if (cli.once) return run_once_here(cli);
  options.command = cli.command;
  if (cli.timeout.count() > 0) options.timeout = cli.timeout;
  if ((cli.lines || cli.framed) && cli.command.empty())
    throw tobus::Error(tobus::ErrorKind::usage, "--lines and --framed need a COMMAND to run as a co-process");
  if (!options.reload_on.empty() && !cli.lines && !cli.framed)
    throw tobus::Error(tobus::ErrorKind::usage, "--reload-on needs --lines or --framed");
  options.mode = cli.lines ? tobus::ModuleOptions::Mode::lines
                 : cli.framed ? tobus::ModuleOptions::Mode::framed
                              : tobus::ModuleOptions::Mode::per_message;
  for (const auto& t : options.types)
    if (!tobus::valid_name(t))
      throw tobus::Error(tobus::ErrorKind::usage, "bad --type '" + t + "': names are 1-64 of A-Z a-z 0-9 _ . -");
  if (cli.join >= 0) {
    cli.join_options.correlated = cli.join;
    cli.join_options.format = cli.join_format == "json" ? tobus::JoinFormat::json : tobus::JoinFormat::lines;
    cli.join_options.on_branch_fail =
        cli.on_branch_fail == "ignore" ? tobus::BranchFailPolicy::ignore : tobus::BranchFailPolicy::fail;
    options.join = cli.join_options;
  }
  return tobus::run_module(program, options);
}

}  // namespace

int main(int argc, char** argv) {
  tobus::Program program("tobus-module", "Attach module NAME to the bus and run COMMAND for each message.");
  Cli cli;
  add_module_options(program, cli);
  add_service_and_developing_options(program, cli);
  tobus::add_config_option(program);
  std::vector<std::string> args = spell_join_out(argc, argv);
  std::vector<char*> fixed = argv_of(args);
  return program.run(static_cast<int>(args.size()), fixed.data(), [&] { return run_job(program, cli); });
}
