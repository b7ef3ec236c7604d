#pragma once
// Per-job work dirs (tobus-module --workdir, docs/service.md): the name of a job's dir and the
// listing of what the job wrote in it. JobRun (job_run.hpp) makes, watches and removes them.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tobus {

// The name of a job's work dir: the message id with every byte outside A-Z a-z 0-9 _ - (and a
// leading '.') written %XX, long ids shortened with a hash, then '.' and the attempt. Distinct ids
// and attempts give distinct names. JobRun makes NAME, or NAME-2 ... NAME-9 (then NAME-<random>)
// when that is taken: two deliveries of one message at once never share a dir.
std::string job_dir_name(std::string_view message_id, int attempt);

// A work dir's contents: every file and directory under it (recursively, symlinks not followed),
// names relative to it (directories end with '/'), sorted, the first max_listed of them.
struct Listing {
  struct File {
    std::string name;
    std::uint64_t size = 0;
    bool operator==(const File&) const = default;
  };
  std::size_t count = 0;                            // entries found (the walk stops at max_scanned)
  std::vector<File> files;                          // the first max_listed by name
  bool truncated = false;                           // count > files.size()
  bool operator==(const Listing&) const = default;  // the change detection of the watcher

  // {"count":N,"truncated":false,"files":[{"name":"input","size":5},...]}; names that are not
  // UTF-8 get \xNN for their odd bytes. Files are left out (and truncated set) to stay within
  // `max_bytes`, so it always fits an environment variable.
  std::string json(std::size_t max_bytes = 100'000) const;

  static constexpr std::size_t max_listed = 1000;
  static constexpr std::size_t max_scanned = 100'000;
};
Listing list_dir(const std::string& dir);  // an unreadable or missing dir lists as empty

}  // namespace tobus
