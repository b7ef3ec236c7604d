#pragma once
// How library code tells what happened without ending the call: a reconnection, a dead letter it
// wrote, a co-process it restarted, a record it skipped. The library never logs. The programs hand
// it a Reporter that logs to stderr through spdlog (Program::reporter() in cli.hpp), tests hand it
// one that records, and a default-made Reporter says nothing.

#include <spdlog/fmt/fmt.h>

#include <functional>
#include <string_view>
#include <utility>

namespace tobus {

enum class Severity { debug, info, warn, error };

class Reporter {
 public:
  using Sink = std::function<void(Severity, std::string_view)>;

  Reporter() = default;
  // Reports below `least` are dropped before they are formatted.
  explicit Reporter(Sink sink, Severity least = Severity::debug) : sink_(std::move(sink)), least_(least) {}

  explicit operator bool() const { return static_cast<bool>(sink_); }
  bool enabled(Severity s) const { return sink_ && s >= least_; }

  template <class... A>
  void debug(fmt::format_string<A...> format, A&&... args) const {
    emit(Severity::debug, format, std::forward<A>(args)...);
  }
  template <class... A>
  void info(fmt::format_string<A...> format, A&&... args) const {
    emit(Severity::info, format, std::forward<A>(args)...);
  }
  template <class... A>
  void warn(fmt::format_string<A...> format, A&&... args) const {
    emit(Severity::warn, format, std::forward<A>(args)...);
  }
  template <class... A>
  void error(fmt::format_string<A...> format, A&&... args) const {
    emit(Severity::error, format, std::forward<A>(args)...);
  }

 private:
  template <class... A>
  void emit(Severity s, fmt::format_string<A...> format, A&&... args) const {
    if (enabled(s)) sink_(s, fmt::format(format, std::forward<A>(args)...));
  }

  Sink sink_;
  Severity least_ = Severity::debug;
};

}  // namespace tobus
