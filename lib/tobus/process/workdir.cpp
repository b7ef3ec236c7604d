// Per-job work dirs (--workdir): their names, their listing, the safety checks of the base, and
// the descriptor-relative operations JobRun uses to read and remove them.
#include "tobus/process/workdir.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "tobus/process/service_detail.hpp"
#include "tobus/util/json.hpp"

namespace tobus {
namespace {

namespace fs = std::filesystem;
using namespace service_detail;

constexpr int max_depth = 64;

// A name as JSON can carry it: odd bytes of a name that is not UTF-8 become the text \xNN.
std::string printable_name(const std::string& name) {
  if (is_utf8(name)) return name;
  std::string out;
  static const char hex[] = "0123456789abcdef";
  for (unsigned char c : name) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// Walks `dirfd` (relative names under `prefix`) into `out`, at most Listing::max_scanned entries.
void walk(int dirfd, const std::string& prefix, int depth, std::vector<Listing::File>& out,
          std::size_t& count) {
  DIR* d = fdopendir(dirfd);
  if (!d) {
    close(dirfd);
    return;
  }
  std::vector<std::string> subdirs;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    if (count >= Listing::max_scanned) break;
    struct stat st {};
    if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // gone meanwhile
    ++count;
    if (S_ISDIR(st.st_mode)) {
      out.push_back({prefix + name + "/", 0});
      subdirs.push_back(name);
    } else {
      out.push_back({prefix + name, static_cast<std::uint64_t>(st.st_size)});
    }
  }
  if (depth < max_depth) {
    for (const auto& sub : subdirs) {
      if (count >= Listing::max_scanned) break;
      int fd = openat(dirfd, sub.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd >= 0) walk(fd, prefix + sub + "/", depth + 1, out, count);
    }
  }
  closedir(d);
}

Listing list_fd(int fd) {
  Listing l;
  if (fd < 0) return l;
  std::vector<Listing::File> all;
  walk(fd, "", 0, all, l.count);
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  if (all.size() > Listing::max_listed) all.resize(Listing::max_listed);
  l.files = std::move(all);
  l.truncated = l.count > l.files.size();
  return l;
}

}  // namespace

namespace service_detail {

std::string absolute(const std::string& path) {
  if (path.empty() || path.front() == '/') return path;
  std::error_code ec;
  auto abs = fs::absolute(path, ec);
  if (ec) return path;
  std::string out = abs.lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

// The listing of the open dir `dirfd` (read through a descriptor of its own).
Listing list_at(int dirfd) { return list_fd(openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)); }

// Why a --workdir base with the status `st` is no safe place for job dirs; empty when it is. Whoever
// can rename entries in it could swap a job dir for one of theirs, its `output` a symlink to a file
// of ours: so it is ours (or root's), and writable by nobody else unless sticky (as /tmp is).
std::string base_problem(const std::string& path, const struct stat& st) {
  if (S_ISLNK(st.st_mode)) return "--workdir '" + path + "' is a symlink: name the directory itself";
  if (!S_ISDIR(st.st_mode)) return "--workdir '" + path + "' is not a directory";
  if (st.st_uid != geteuid() && st.st_uid != 0)
    return "--workdir '" + path + "' belongs to another user (uid " + std::to_string(st.st_uid) +
           "), who could replace the job dirs in it";
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return "--workdir '" + path + "' is writable by others (mode " + mode +
           ") and not sticky: chmod go-w or chmod +t it";
  }
  return {};
}

// Opens `path` (relative, no '..': check_result_path) under the open dir `dirfd` for reading, one
// component at a time, following no symlink. -1 and errno when it cannot.
int open_beneath(int dirfd, const std::string& path) {
  int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  std::size_t start = 0;
  while (fd >= 0) {
    auto slash = path.find('/', start);
    std::string part = path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    bool last = slash == std::string::npos;
    int next = -1;
    if (part.empty() || part == ".") {
      if (last) {
        close(fd);
        errno = EISDIR;
        return -1;
      }
      start = slash + 1;
      continue;
    }
    next = openat(fd, part.c_str(),
                  last ? O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC
                       : O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int e = errno;
    close(fd);
    errno = e;
    if (last || next < 0) return next;
    fd = next;
    start = slash + 1;
  }
  return -1;
}

// Removes everything in the open dir `fd` (taking it over), relative to it: subdirectories are
// opened with O_NOFOLLOW and a symlink is removed, never followed. The first error, empty if none.
std::string empty_dir(int fd, int depth) {
  DIR* d = fdopendir(fd);
  if (!d) {
    std::string why = std::strerror(errno);
    close(fd);
    return why;
  }
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    std::string_view name = e->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  std::string error;
  auto note = [&](const std::string& name, int e) {
    if (error.empty()) error = "'" + name + "': " + std::strerror(e);
  };
  for (const auto& name : names) {
    struct stat st {};
    if (fstatat(dirfd(d), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT) note(name, errno);
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      if (depth >= 256) {
        note(name, ELOOP);
        continue;
      }
      int sub = openat(dirfd(d), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0) {
        note(name, errno);
        continue;
      }
      std::string why = empty_dir(sub, depth + 1);
      if (!why.empty()) {
        if (error.empty()) error = why;
        continue;
      }
      if (unlinkat(dirfd(d), name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) note(name, errno);
    } else if (unlinkat(dirfd(d), name.c_str(), 0) != 0 && errno != ENOENT) {
      note(name, errno);
    }
  }
  closedir(d);
  return error;
}

}  // namespace service_detail

std::string job_dir_name(std::string_view message_id, int attempt) {
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  for (std::size_t i = 0; i < message_id.size(); ++i) {
    char c = message_id[i];
    if (name_char(c) || (c == '.' && i > 0)) {
      out += c;
    } else {
      auto u = static_cast<unsigned char>(c);
      out += '%';
      out += hex[u >> 4];
      out += hex[u & 15];
    }
  }
  if (out.size() > 160) {
    // FNV-1a over the whole id keeps shortened names distinct.
    std::uint64_t h = 14695981039346656037ull;
    for (char c : message_id) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    out.resize(120);
    out += '~';
    for (int shift = 60; shift >= 0; shift -= 4) out += hex[(h >> shift) & 15];
  }
  return out + "." + std::to_string(attempt);
}

Listing list_dir(const std::string& dir) { return list_fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); }

std::string Listing::json(std::size_t max_bytes) const {
  std::vector<std::string> items;
  std::size_t total = 64;  // {"count":...,"truncated":...,"files":[]}
  bool cut = truncated;
  for (const auto& f : files) {
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    std::string name = printable_name(f.name);
    w.StartObject();
    w.Key("name");
    w.String(name.data(), static_cast<rapidjson::SizeType>(name.size()));
    w.Key("size");
    w.Uint64(f.size);
    w.EndObject();
    if (total + sb.GetSize() + 1 > max_bytes) {
      cut = true;
      break;
    }
    total += sb.GetSize() + 1;
    items.emplace_back(sb.GetString(), sb.GetSize());
  }
  std::string out =
      "{\"count\":" + std::to_string(count) + ",\"truncated\":" + (cut ? "true" : "false") + ",\"files\":[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += items[i];
  }
  return out + "]}";
}

}  // namespace tobus
