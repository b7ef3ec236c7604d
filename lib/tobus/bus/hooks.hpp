#pragma once
// Bus hooks from the shell (tobus-bus --on-receive, --on-send): commands run as co-processes
// that see each message's envelope as one JSON line, with "event" set to "receive" or "send"
// (and "key", where a send went). A receive hook answers each line with one line of JSON:
// {"action":"pass"}, {"action":"drop","reason":"..."} or {"action":"reroute","route":["a","b"]}.
// A send hook only observes: its output is read and thrown away. See docs/coprocess.md.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tobus/bus/bus.hpp"
#include "tobus/core/report.hpp"
#include "tobus/util/duration.hpp"

namespace tobus {

struct ShellHookOptions {
  std::string on_receive;        // a command line for /bin/sh -c; empty: no receive hook
  std::string on_send;           // likewise
  Millis timeout{1000};          // a receive hook's answer, or room in a send hook's input
  std::vector<std::string> env;  // KEY=VALUE set for the hooks on top of this process's own
  // Where what happens along the way is told (a reconnection, a skipped entry); silent by default.
  Reporter report;
};

// Starts the hooks (throws Error(failed) when one cannot start) and returns the callbacks that
// feed them. A hook that dies, hangs or answers nonsense never stalls the bus: after at most
// `timeout` the message passes, one warning is logged, and the hook is restarted.
BusHooks shell_hooks(const ShellHookOptions& options);

// What a receive hook's answer asks for. `route` may be an array of hops or a comma-separated
// string; a drop's `reason` is optional.
struct HookVerdict {
  enum class Action { pass, drop, reroute };
  Action action = Action::pass;
  std::string reason;
  std::vector<std::string> route;
};

// nullopt, with `error` saying why, when `line` is not a valid answer.
std::optional<HookVerdict> parse_hook_answer(std::string_view line, std::string& error);

}  // namespace tobus
