#pragma once
// Internal to the service framework (not installed): what its files share. The text helpers are
// defined in pool.cpp, the path and work-dir helpers in workdir.cpp.

#include <sys/stat.h>

#include <string>
#include <string_view>

#include "tobus/process/workdir.hpp"

namespace tobus::service_detail {

inline constexpr int rc_timeout = 124;  // as timeout(1)
inline constexpr int rc_tempfail = 75;  // EX_TEMPFAIL

inline bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

// One line for a log or a description: \\ \n \r \t and \xNN for other control bytes.
std::string one_line(std::string_view s);

// `path` made absolute and normal (no trailing '/'); as given when it is empty or that fails.
std::string absolute(const std::string& path);

// The listing of the open dir `dirfd` (read through a descriptor of its own).
Listing list_at(int dirfd);

// Why a --workdir base with the status `st` is no safe place for job dirs; empty when it is.
std::string base_problem(const std::string& path, const struct stat& st);

// Opens `path` (relative, no '..': check_result_path) under the open dir `dirfd` for reading, one
// component at a time, following no symlink. -1 and errno when it cannot.
int open_beneath(int dirfd, const std::string& path);

// Removes everything in the open dir `fd` (taking it over), relative to it: subdirectories are
// opened with O_NOFOLLOW and a symlink is removed, never followed. The first error, empty if none.
std::string empty_dir(int fd, int depth);

}  // namespace tobus::service_detail
