// The checks of the service framework's options (tobus-module's command line).
#include "tobus/process/service_options.hpp"

#include <sys/stat.h>

#include "tobus/core/error.hpp"
#include "tobus/process/service_detail.hpp"

namespace tobus {

using service_detail::absolute;
using service_detail::base_problem;

std::optional<KeepWorkdir> parse_keep_workdir(std::string_view text) {
  if (text == "always") return KeepWorkdir::always;
  if (text == "failed") return KeepWorkdir::failed;
  if (text == "never") return KeepWorkdir::never;
  return std::nullopt;
}

void check_result_path(std::string_view path) {
  if (path.empty()) throw Error(ErrorKind::usage, "empty --result file name");
  if (path.front() == '/')
    throw Error(ErrorKind::usage, "--result '" + std::string(path) + "' must be relative to the work dir");
  if (path.find('\0') != std::string_view::npos) throw Error(ErrorKind::usage, "--result holds a NUL byte");
  std::size_t start = 0;
  for (;;) {
    auto slash = path.find('/', start);
    auto part = path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (part == "..")
      throw Error(ErrorKind::usage, "--result '" + std::string(path) + "' must stay inside the work dir");
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (path.back() == '/')
    throw Error(ErrorKind::usage, "--result '" + std::string(path) + "' names a directory");
}

void check_service_options(const ServiceOptions& s, bool has_command) {
  if (!s.pool.empty() && has_command)
    throw Error(ErrorKind::usage, "--pool and COMMAND exclude each other: the pool holds the commands");
  if (s.workdir.empty() &&
      (!s.before.empty() || !s.on_change.empty() || !s.after.empty() || !s.result.empty()))
    throw Error(ErrorKind::usage, "--before, --on-change, --after and --result need --workdir");
  if (!s.result.empty()) check_result_path(s.result);
  if (s.watch_interval < Millis(10))
    throw Error(ErrorKind::usage, "--watch-interval " + format_duration(s.watch_interval) + " is too short: 10ms at least");
  // A typo here would fail every message: say so at once. (A missing --workdir is made.)
  struct stat st {};
  if (!s.pool.empty() && (stat(s.pool.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)))
    throw Error(ErrorKind::usage, "--pool '" + s.pool + "' is not a directory");
  if (!s.workdir.empty() && lstat(absolute(s.workdir).c_str(), &st) == 0) {
    std::string why = base_problem(s.workdir, st);
    if (!why.empty()) throw Error(ErrorKind::usage, why);
  }
}

}  // namespace tobus
