// tobus-watch: watches the bus without taking anything from it: a live tap of every hop event,
// the journey of one message (--trace), per-module figures (--stats), Prometheus metrics over
// HTTP (--serve).
#include <unistd.h>

#include "tobus/process/signals.hpp"
#include "tobus/tobus.hpp"
#include "tobus/watch/watch.hpp"

int main(int argc, char** argv) {
  tobus::Program program("tobus-watch",
                         "Watch the bus's traffic without taking any of it: one record per hop event, "
                         "the journey of one message, or per-module figures.");
  auto& app = program.app();
  tobus::WatchOptions o;
  std::vector<std::string> headers, events;
  std::string grep, payload;
  bool json = false, failed = false;
  tobus::Millis timeout{0}, since{0};

  auto* module_opt = app.add_option("--module", o.filter.modules, "Only events at this module (repeatable)")
                         ->type_name("NAME");
  auto* id_opt = app.add_option("--id", o.filter.id, "Only events of the message with this id")->type_name("ID");
  auto* header_opt = app.add_option("-H,--header", headers, "Only messages with this header (repeatable: all of them)")
                         ->type_name("KEY=VALUE");
  auto* grep_opt = app.add_option("--grep", grep, "Only messages whose payload matches this regular expression")
                       ->type_name("TEXT");
  auto* failed_opt = app.add_flag("--failed", failed, "Only failures and dead letters");
  auto* event_opt = app.add_option("--event", events, "Only these events: sent, routed, handled, failed, dead, "
                                                      "delivered, done (repeatable, or comma-separated)")
                        ->type_name("TEXT")
                        ->delimiter(',');
  auto* json_opt = app.add_flag("--json", json, "JSON Lines: one object per record");
  auto* format_opt = app.add_option("--format", o.format, "Print each event by this template of %-tokens")
                         ->type_name("TEXT")
                         ->excludes(json_opt);
  auto* payload_opt = app.add_option("--payload", payload, "How much payload to show: none, preview, full")
                          ->type_name("TEXT")
                          ->check(CLI::IsMember({"none", "preview", "full"}))
                          ->excludes(format_opt);
  auto* count_opt = app.add_option("-c,--count", o.count, "Exit after this many records (with --stats: snapshots)")
                        ->type_name("N");
  auto* timeout_opt = program.add_duration("--timeout", timeout,
                                           "Give up after this long, exit 124 if not done (0: never)");
  auto* since_opt = program.add_duration("--since", since, "Start this far back in the retained history (0: now)");
  auto* trace_opt = app.add_option("--trace", o.trace, "Show the whole journey of the message with this id")
                        ->type_name("ID");
  auto* stats_opt = app.add_flag("--stats", o.stats, "Show per-module figures, refreshed every --interval");
  auto* interval_opt = program.add_duration("--interval", o.interval, "With --stats: time between snapshots");
  std::string serve;
  auto* serve_opt = app.add_option("--serve", serve, "Serve Prometheus metrics over HTTP at /metrics on this "
                                                     "address (default address 127.0.0.1)")
                        ->type_name("ADDRESS");
  // For the completions: the event names, and the tokens of tobus::Formatter (tobus-watch(1),
  // FORMAT; a docs test holds the page, this list and the formatter in step).
  std::vector<std::string> event_names;
  for (int k = 0; k <= static_cast<int>(tobus::EventKind::done); ++k)
    event_names.emplace_back(tobus::event_name(static_cast<tobus::EventKind>(k)));
  program.publish_choices(event_opt, tobus::Choices::list, event_names);
  program.publish_choices(format_opt, tobus::Choices::tokens,
                          {"%e", "%t", "%T", "%m", "%i", "%r", "%d", "%a", "%c", "%p", "%P", "%h", "%R", "%f",
                           "%E", "%X", "%s", "%S", "%%"});
  trace_opt->excludes(stats_opt)->excludes(format_opt)->excludes(count_opt);
  for (auto* filter : {module_opt, id_opt, header_opt, grep_opt, failed_opt, event_opt}) trace_opt->excludes(filter);
  for (auto* other : {format_opt, id_opt, header_opt, grep_opt, failed_opt, event_opt, timeout_opt, payload_opt})
    stats_opt->excludes(other);
  interval_opt->needs(stats_opt);
  // The server writes no records: none of the options about records go with it.
  for (auto* other : {trace_opt, stats_opt, module_opt, id_opt, header_opt, grep_opt, failed_opt, event_opt, json_opt,
                      format_opt, payload_opt, count_opt, timeout_opt, since_opt})
    serve_opt->excludes(other);

  return program.run(argc, argv, [&] {
    tobus::signals::ignore_sigpipe();
    using tobus::Error, tobus::ErrorKind;
    for (const auto& h : headers) o.filter.headers.push_back(tobus::parse_header_option(h));
    for (const auto& name : events) {
      auto kind = tobus::parse_event_name(name);
      if (!kind)
        throw Error(ErrorKind::usage, "bad --event '" + name +
                                          "': one of sent, routed, handled, failed, dead, delivered, done");
      o.filter.events.push_back(*kind);
    }
    if (grep_opt->count() > 0) o.filter.grep.emplace(grep);
    o.filter.failed_only = failed;
    if (!o.trace.empty() && !tobus::valid_message_id(o.trace))
      throw Error(ErrorKind::usage, "bad --trace '" + o.trace + "': 1-200 printable characters, no spaces");
    if (count_opt->count() > 0 && o.count < 1) throw Error(ErrorKind::usage, "--count must be at least 1");
    if (o.interval.count() == 0) throw Error(ErrorKind::usage, "--interval must be more than 0");
    o.output = json ? tobus::WatchOutput::json
                    : format_opt->count() > 0 ? tobus::WatchOutput::format : tobus::WatchOutput::line;
    if (o.output == tobus::WatchOutput::format) tobus::Formatter check(o.format);  // a bad token is usage
    if (!payload.empty()) o.payload = tobus::parse_payload_mode(payload);
    if (timeout.count() > 0) o.timeout = timeout;
    if (since.count() > 0) o.since = since;
    o.report = program.reporter();
    if (serve_opt->count() > 0) {
      o.serve = tobus::parse_serve_address(serve);
      // Served until SIGINT or SIGTERM, then ended by that signal as the other programs are.
      tobus::signals::install();
      int rc = 0;
      try {
        rc = tobus::run_watch(program.redis_address(), program.keys(), o, STDOUT_FILENO);
      } catch (const tobus::RedisError&) {
        // Stopped while reconnecting to a lost Redis: the stop is what ended it.
        if (tobus::signals::stop_count() > 0) tobus::signals::reraise_stop();
        throw;
      }
      if (tobus::signals::stop_count() > 0) tobus::signals::reraise_stop();
      return rc;
    }
    return tobus::run_watch(program.redis_address(), program.keys(), o, STDOUT_FILENO);
  });
}
