// tobus-send: pipes payloads from stdin (or -m) into the bus; --wait prints the results.
#include <unistd.h>

#include <map>

#include "tobus/process/signals.hpp"
#include "tobus/tobus.hpp"

int main(int argc, char** argv) {
  tobus::Program program("tobus-send", "Send messages along a route; with --wait, print their results.");
  auto& app = program.app();
  tobus::SendOptions o;
  std::string route, id;
  std::vector<std::string> headers;
  bool null = false, whole = false, json = false;
  app.add_option("-t,--to", route, "Route: comma-separated module names (required unless --json records carry one)")
      ->type_name("ROUTE");
  app.add_option("-m,--message", o.messages, "A payload (repeatable); without it, stdin is read")
      ->type_name("TEXT")
      ->allow_extra_args(false);
  auto* null_opt = app.add_flag("-0,--null", null, "Payloads on stdin are NUL-delimited");
  auto* whole_opt = app.add_flag("-s,--whole", whole, "All of stdin is one payload")->excludes(null_opt);
  app.add_flag("--json", json,
               "Stdin holds JSON envelopes, one per line (tobus-watch --json); results print as JSON lines")
      ->excludes(null_opt)
      ->excludes(whole_opt);
  tobus::add_size_option(app, "--max-payload", [&o](std::uint64_t n) { o.max_payload = static_cast<std::size_t>(n); },
                         "Refuse a payload larger than N bytes (default 64M)");
  app.add_option("-H,--header", headers, "A header KEY=VALUE (repeatable)")->type_name("KEY=VALUE")->allow_extra_args(false);
  app.add_option("--id", id, "Message id (several messages: ID.1, ID.2, ...)")->type_name("ID");
  std::string publish;
  app.add_option("--publish", publish, "Copy each message to every module of TYPE (the route's first hop @TYPE)")
      ->type_name("TYPE");
  app.add_option("--correlation", o.correlation, "Correlation id: messages sharing one are joined by tobus-module --join N")
      ->type_name("ID");
  auto* wait_opt = app.add_flag("-w,--wait", o.wait, "Wait for each result and print it, in input order");
  program.add_duration("--timeout", o.timeout, "With --wait: give up on a message after this long");
  app.add_flag("--print-id", o.print_id, "Print each message id (without --wait)")->excludes(wait_opt);
  bool progress = false, no_progress = false;
  auto* progress_opt =
      app.add_flag("--progress", progress, "Show a progress line on stderr even when it is not a terminal");
  app.add_flag("--no-progress", no_progress, "Never show the progress line")->excludes(progress_opt);

  return program.run(argc, argv, [&] {
    tobus::signals::ignore_sigpipe();
    if (route.empty() && publish.empty() && !json)
      throw tobus::Error(tobus::ErrorKind::usage, "--to (or --publish) is required");
    if (!publish.empty()) route = "@" + publish + (route.empty() ? "" : "," + route);
    if (!route.empty()) o.route = tobus::parse_route(route);
    if (!o.correlation.empty() && !tobus::valid_message_id(o.correlation))
      throw tobus::Error(tobus::ErrorKind::usage, "bad --correlation '" + o.correlation + "': 1-200 printable characters, no spaces");
    if (json && !o.messages.empty())
      throw tobus::Error(tobus::ErrorKind::usage, "--json reads stdin: it excludes --message");
    o.framing = json ? tobus::Framing::json
                : null ? tobus::Framing::null
                : whole ? tobus::Framing::whole
                        : tobus::Framing::lines;
    o.progress = progress ? tobus::Progress::always : no_progress ? tobus::Progress::never : tobus::Progress::automatic;
    std::map<std::string, std::string> env_names;  // TOBUS_HEADER_X → the header that is it
    for (const auto& h : headers) {
      auto& [key, value] = o.headers.emplace_back(tobus::parse_header_option(h));
      auto [it, fresh] = env_names.emplace(tobus::header_env_name(key), key);
      if (!fresh && it->second != key)
        throw tobus::Error(tobus::ErrorKind::usage, "headers '" + it->second + "' and '" + key + "' are both " +
                                                        it->first + " to a handler: use one");
    }
    if (!id.empty() && !tobus::valid_message_id(id))
      throw tobus::Error(tobus::ErrorKind::usage, "bad --id '" + id + "': 1-200 printable characters, no spaces");
    o.id = id;
    o.report = program.reporter();
    return tobus::send_messages(program.redis_address(), program.keys(), o, STDIN_FILENO, STDOUT_FILENO);
  });
}
