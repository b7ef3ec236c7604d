#include "tobus/bus/hooks.hpp"

#include <poll.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <memory>

#include "tobus/core/error.hpp"
#include "tobus/process/coprocess.hpp"
#include "tobus/process/runner.hpp"
#include "tobus/util/json.hpp"

namespace tobus {
namespace {

using Clock = CoProcess::Clock;
using std::chrono::milliseconds;

// Unwritten events a send hook may fall behind by before the bus waits for it.
constexpr std::size_t send_backlog = 4096;

std::vector<std::string> hook_env(const ShellHookOptions& o, std::string_view event) {
  std::vector<std::string> extra = o.env;
  extra.push_back("TOBUS_HOOK=" + std::string(event));
  std::vector<std::string> env = inherited_environment([&extra](std::string_view kv) {
    auto name = kv.substr(0, kv.find('=') + 1);
    // The password reaches a hook only in TOBUS_REDIS, and only when it was let have it.
    if (name == "TOBUS_REDIS_PASSWORD=" || name == "TOBUS_REDIS_PASSWORD_FILE=") return true;
    return std::any_of(extra.begin(), extra.end(), [&](const std::string& x) { return x.starts_with(name); });
  });
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

CoProcessOptions hook_options(const ShellHookOptions& o, const std::string& command,
                              std::string_view event) {
  CoProcessOptions co;
  co.argv = {"/bin/sh", "-c", command};
  co.env = hook_env(o, event);
  co.mode = CoProcessOptions::Mode::lines;
  co.name = std::string(event) + " hook";
  co.max_in_flight = event == "send" ? send_backlog : 1;
  co.answers = event != "send";
  co.drain_grace = o.timeout;
  co.report = o.report;
  return co;
}

// Pumps `co` (at least once, without waiting when `deadline` has passed) until `done` or
// `deadline`, whichever comes first.
template <typename Done>
void pump_until(CoProcess& co, Clock::time_point deadline, const Done& done) {
  std::vector<pollfd> fds;
  for (;;) {
    auto now = Clock::now();
    if (now >= co.wake_at()) co.tick();
    if (done()) return;
    fds.clear();
    co.add_pollfds(fds);
    auto until = std::min(deadline, co.wake_at());
    auto wait =
        until <= now ? 0 : std::chrono::duration_cast<milliseconds>(until - now).count() + 1;
    int n = poll(fds.data(), fds.size(), static_cast<int>(wait));
    if (n < 0 && errno != EINTR) return;
    if (n > 0) co.handle(fds, 0);
    if (done() || Clock::now() >= deadline) return;
  }
}

// Sees each message the bus takes; one JSON line out, one back, within the timeout.
class ReceiveHook {
 public:
  explicit ReceiveHook(const ShellHookOptions& o)
      : co_(hook_options(o, o.on_receive, "receive")), timeout_(o.timeout), report_(o.report) {}

  bool operator()(Message& m, std::string& reason) {
    if (Clock::now() >= co_.wake_at()) co_.tick();
    co_.take_results();  // late answers of messages that already passed
    if (!co_.running()) {
      report_.debug("receive hook is not running, passing {}", m.id);
      return true;
    }
    JsonObject line;
    line.add("event", "receive");
    add_message(line, m);
    std::uint64_t tag = ++tag_;
    co_.submit(tag, line.str());
    std::optional<CoResult> answer;
    auto take = [&] {
      for (auto& r : co_.take_results())
        if (r.tag == tag) answer = std::move(r);
      return answer.has_value();
    };
    pump_until(co_, Clock::now() + timeout_, take);
    if (!answer) {
      report_.warn(
          "receive hook gave no answer for {} within {}, passing it and restarting the hook", m.id,
          format_duration(timeout_));
      co_.restart("gave no answer within " + format_duration(timeout_));
      return true;
    }
    if (answer->rc != 0) return true;  // it died before it answered; that was logged
    std::string error;
    auto verdict = parse_hook_answer(answer->payload, error);
    if (!verdict) {
      report_.warn("receive hook: {} in its answer for {}, passing it", error, m.id);
      return true;
    }
    switch (verdict->action) {
      case HookVerdict::Action::pass:
        return true;
      case HookVerdict::Action::drop:
        reason = verdict->reason;
        return false;
      case HookVerdict::Action::reroute:
        m.route = std::move(verdict->route);
        return true;
    }
    return true;
  }

 private:
  CoProcess co_;
  Millis timeout_;
  Reporter report_;
  std::uint64_t tag_ = 0;
};

// Sees each message the bus wrote, where it went; waits only when the hook falls far behind.
class SendHook {
 public:
  explicit SendHook(const ShellHookOptions& o)
      : co_(hook_options(o, o.on_send, "send")), timeout_(o.timeout), report_(o.report) {}

  void operator()(const Message& m, const std::string& key) {
    if (Clock::now() >= co_.wake_at()) co_.tick();
    co_.take_results();  // events lost with a dead hook; that was logged
    if (!co_.running()) return;
    JsonObject line;
    line.add("event", "send");
    line.add("key", key);
    add_message(line, m);
    co_.submit(++tag_, line.str());
    // Write what the pipe takes and read what the hook printed, without waiting.
    pump_until(co_, Clock::now(), [] { return false; });
    if (co_.can_submit()) return;
    pump_until(co_, Clock::now() + timeout_, [&] { return co_.can_submit() || !co_.running(); });
    if (co_.running() && !co_.can_submit()) {
      report_.warn("send hook stayed {} event(s) behind for {}, dropping them and restarting it",
                   co_.in_flight(), format_duration(timeout_));
      co_.restart("did not read its input within " + format_duration(timeout_));
      co_.take_results();
    }
  }

 private:
  CoProcess co_;
  Millis timeout_;
  Reporter report_;
  std::uint64_t tag_ = 0;
};

}  // namespace

std::optional<HookVerdict> parse_hook_answer(std::string_view line, std::string& error) {
  if (!json_depth_within(line)) {
    error = "JSON nested deeper than " + std::to_string(max_json_depth) + " levels";
    return std::nullopt;
  }
  rapidjson::Document d;
  d.Parse(line.data(), line.size());
  if (d.HasParseError() || !d.IsObject()) {
    error = "not a JSON object";
    return std::nullopt;
  }
  auto action = d.FindMember("action");
  if (action == d.MemberEnd() || !action->value.IsString()) {
    error = "no \"action\"";
    return std::nullopt;
  }
  std::string_view what(action->value.GetString(), action->value.GetStringLength());
  HookVerdict v;
  if (what == "pass") {
    v.action = HookVerdict::Action::pass;
  } else if (what == "drop") {
    v.action = HookVerdict::Action::drop;
    if (auto r = d.FindMember("reason"); r != d.MemberEnd()) {
      if (!r->value.IsString()) {
        error = "\"reason\" is not a string";
        return std::nullopt;
      }
      v.reason.assign(r->value.GetString(), r->value.GetStringLength());
    }
  } else if (what == "reroute") {
    v.action = HookVerdict::Action::reroute;
    auto r = d.FindMember("route");
    std::string text;
    if (r == d.MemberEnd()) {
      error = "reroute without a \"route\"";
      return std::nullopt;
    }
    if (r->value.IsString()) {
      text.assign(r->value.GetString(), r->value.GetStringLength());
    } else if (r->value.IsArray()) {
      for (const auto& hop : r->value.GetArray()) {
        std::string_view h =
            hop.IsString() ? std::string_view(hop.GetString(), hop.GetStringLength()) : "";
        if (h.empty() || h.find(',') != std::string_view::npos) {
          error = "a hop of \"route\" is not a name";
          return std::nullopt;
        }
        if (!text.empty()) text += ',';
        text += h;
      }
    } else {
      error = "\"route\" is neither an array nor a string";
      return std::nullopt;
    }
    try {
      v.route = parse_route(text);
    } catch (const Error& e) {
      error = e.what();
      return std::nullopt;
    }
  } else {
    error = "unknown action '" + std::string(what.substr(0, 40)) + "'";
    return std::nullopt;
  }
  return v;
}

BusHooks shell_hooks(const ShellHookOptions& options) {
  BusHooks hooks;
  // BusHooks holds copyable callbacks; the co-processes they feed are shared.
  if (!options.on_receive.empty()) {
    auto hook = std::make_shared<ReceiveHook>(options);
    hooks.on_receive = [hook](Message& m, std::string& reason) { return (*hook)(m, reason); };
  }
  if (!options.on_send.empty()) {
    auto hook = std::make_shared<SendHook>(options);
    hooks.on_send = [hook](const Message& m, const std::string& key) { (*hook)(m, key); };
  }
  return hooks;
}

}  // namespace tobus
