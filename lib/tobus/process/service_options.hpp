#pragma once
// The options of the service framework (tobus-module's --pool, --workdir, callbacks and limits)
// and their checks, apart from the framework itself: a header that only carries them (module.hpp)
// includes this one, not service.hpp.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tobus/util/duration.hpp"

namespace tobus {

enum class KeepWorkdir { always, failed, never };
std::optional<KeepWorkdir> parse_keep_workdir(std::string_view text);  // always|failed|never
// --result FILE: relative, inside the work dir (no '..'). Throws Error(usage) naming the problem.
void check_result_path(std::string_view path);

// The module's options for its jobs (tobus-module's command line).
struct ServiceOptions {
  std::string pool;                        // --pool DIR
  std::string workdir;                     // --workdir DIR; empty: no work dirs, no watching, no callbacks
  std::string result;                      // --result FILE, relative to the job's work dir; empty: stdout
  KeepWorkdir keep = KeepWorkdir::failed;  // --keep-workdir
  std::string before, on_change, after;    // --before, --on-change, --after: /bin/sh -c CMD
  Millis watch_interval{1000};             // --watch-interval
  Millis callback_timeout{10'000};         // each callback's bound (then SIGTERM, kill_after, SIGKILL)
  std::optional<Millis> timeout;           // --timeout: of the handler
  Millis kill_after{2000};                 // --kill-after
  std::size_t max_output = 0;              // --max-output BYTES of stdout (0: no limit)
  std::uint64_t max_memory = 0;            // --max-memory BYTES, RLIMIT_AS (0: none)
  Millis drain_grace{1000};  // output held open by an escaped grandchild after the handler exited
};

// The checks tobus-module makes of these options at startup: --pool excludes a COMMAND and is a
// directory, the callbacks and --result need --workdir, which, if it exists, is a directory (not
// a symlink) owned by us or root, and writable by nobody else unless it is sticky (as /tmp is: then
// others cannot replace our job dirs in it); --result stays inside the work dir. Throws
// Error(usage).
void check_service_options(const ServiceOptions& options, bool has_command);

}  // namespace tobus
