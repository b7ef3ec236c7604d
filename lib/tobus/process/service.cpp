#include "tobus/process/service.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <set>

#include "tobus/core/error.hpp"
#include "tobus/process/signals.hpp"
#include "tobus/util/io.hpp"
#include "tobus/util/json.hpp"
#include "tobus/util/text.hpp"

extern char** environ;

namespace tobus {
namespace {

namespace fs = std::filesystem;
using Clock = JobRun::Clock;

constexpr std::size_t max_args = 1024;
constexpr int max_depth = 64;
constexpr int rc_timeout = 124;  // as timeout(1)
constexpr int rc_tempfail = 75;  // EX_TEMPFAIL

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

const std::string* header(const Headers& headers, std::string_view name) {
  for (const auto& [k, v] : headers)
    if (k == name) return &v;
  return nullptr;
}

std::string absolute(const std::string& path) {
  if (path.empty() || path.front() == '/') return path;
  std::error_code ec;
  auto abs = fs::absolute(path, ec);
  if (ec) return path;
  std::string out = abs.lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

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

// One line for a log or a description: \\ \n \r \t and \xNN for other control bytes.
std::string one_line(std::string_view s) {
  std::string out;
  static const char hex[] = "0123456789abcdef";
  for (unsigned char c : s) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\x";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
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

void close_fd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

// How the module words a failure the framework has no better words for.
std::string describe_rc(int rc) {
  if (rc == rc_tempfail) return "the handler asked for a retry (75)";
  if (rc > 128 && rc < 128 + 65) return "handler killed by signal " + std::to_string(rc - 128);
  return "handler exited with " + std::to_string(rc);
}

}  // namespace

// --- the pool ------------------------------------------------------------------------------------

bool valid_service_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name.front() == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return name_char(c) || c == '.'; });
}

std::optional<std::vector<std::string>> parse_args_header(std::string_view json, std::string& error) {
  if (!json_depth_within(json)) {  // rapidjson recurses: 100,000 '[' would crash the module
    error = "JSON nested deeper than " + std::to_string(max_json_depth) + " levels";
    return std::nullopt;
  }
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError()) {
    error = std::string("not JSON: ") + rapidjson::GetParseError_En(doc.GetParseError()) + " at offset " +
            std::to_string(doc.GetErrorOffset());
    return std::nullopt;
  }
  if (!doc.IsArray()) {
    error = "not a JSON array of strings";
    return std::nullopt;
  }
  if (doc.Size() > max_args) {
    error = "more than " + std::to_string(max_args) + " arguments";
    return std::nullopt;
  }
  std::vector<std::string> args;
  for (rapidjson::SizeType i = 0; i < doc.Size(); ++i) {
    const auto& v = doc[i];
    if (!v.IsString()) {
      error = "element " + std::to_string(i) + " is not a string";
      return std::nullopt;
    }
    std::string a(v.GetString(), v.GetStringLength());
    if (a.find('\0') != std::string::npos) {
      error = "element " + std::to_string(i) + " holds a NUL byte";
      return std::nullopt;
    }
    args.push_back(std::move(a));
  }
  return args;
}

ServicePick pick(const std::string& pool_dir, const Headers& headers) {
  const std::string* name = header(headers, "service");
  if (!name) return {{}, rc_bad_data, "no 'service' header: the module runs services from its pool"};
  if (!valid_service_name(*name))
    return {{},
            rc_bad_data,
            "bad service name '" + one_line(name->substr(0, 80)) +
                "': names are 1-64 of A-Z a-z 0-9 _ . -, not starting with '.'"};
  std::string pool = absolute(pool_dir);
  std::string path = pool + "/" + *name;
  struct stat st {};
  // A symlink in the pool may lead to another file of the pool, never out of it.
  if (lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    std::unique_ptr<char, decltype(&free)> real(realpath(path.c_str(), nullptr), &free);
    std::unique_ptr<char, decltype(&free)> real_pool(realpath(pool.c_str(), nullptr), &free);
    if (real && real_pool) {
      std::string target = real.get(), under = real_pool.get();
      if (under != "/") under += '/';
      if (!target.starts_with(under))
        return {{}, rc_not_found, "service '" + *name + "' leads out of the pool: '" + path + "' is a symlink to '" +
                                      target + "'"};
    }
  }
  if (stat(path.c_str(), &st) != 0)
    return {{}, rc_not_found, "unknown service '" + *name + "': no '" + path + "'"};
  if (!S_ISREG(st.st_mode))
    return {{}, rc_not_found, "service '" + *name + "' is not a file: '" + path + "'"};
  if (access(path.c_str(), X_OK) != 0)
    return {{}, rc_not_found, "service '" + *name + "' is not executable: '" + path + "'"};
  ServicePick p;
  p.argv.push_back(path);
  if (const std::string* args = header(headers, "args")) {
    std::string why;
    auto parsed = parse_args_header(*args, why);
    if (!parsed) return {{}, rc_bad_data, "bad 'args' header of service '" + *name + "': " + why};
    p.argv.insert(p.argv.end(), parsed->begin(), parsed->end());
  }
  return p;
}

// --- work dirs -----------------------------------------------------------------------------------

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

std::vector<std::string> message_env(const Message& m, int attempt, std::vector<std::string>* shadowed) {
  std::vector<std::string> env;
  env.push_back("TOBUS_ID=" + m.id);
  env.push_back("TOBUS_FROM=" + m.from);
  env.push_back("TOBUS_ROUTE=" + join_route(m.route, 1));
  env.push_back("TOBUS_ATTEMPT=" + std::to_string(attempt));
  std::set<std::string> names;
  for (const auto& [k, v] : m.headers) {
    if (v.find('\0') != std::string::npos) continue;  // cannot be in an environment
    std::string name = header_env_name(k);
    if (!names.insert(name).second) {
      if (shadowed) shadowed->push_back(k);
      continue;
    }
    env.push_back(name + "=" + v);
  }
  return env;
}

// --- a job ---------------------------------------------------------------------------------------

struct JobRun::Callback {
  std::string option;  // --before, --on-change, --after: names it in log lines and errors
  std::unique_ptr<Process> process;
  Clock::time_point deadline = Clock::time_point::max();
  Clock::time_point drain_until = Clock::time_point::max();
  bool timed_out = false;
};

JobRun::JobRun(const ServiceOptions& options, JobSpec spec, LineSink log)
    : options_(options), spec_(std::move(spec)), log_(std::move(log)) {
  if (!log_) log_ = [](std::string_view) {};
  signals::ignore_sigpipe();  // a handler that closes its stdin early must not kill us
  if (spec_.argv.empty()) {
    fail(rc_not_found, "no handler to run");
    return;
  }
  // The handler runs in its work dir: a relative path to it must not depend on that.
  if (spec_.argv[0].find('/') != std::string::npos) spec_.argv[0] = absolute(spec_.argv[0]);
  if (!options_.workdir.empty()) {
    if (!make_workdir()) return;
    std::string input = dir_ + "/input";
    int fd = openat(dir_fd_, "input", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && write_fully(fd, spec_.input);
    int e = errno;
    if (fd >= 0) close(fd);
    if (!ok) {
      fail(exit_code::failed, "cannot write '" + input + "': " + std::strerror(e));
      return;
    }
    spec_.env.push_back("TOBUS_WORKDIR=" + dir_);
    listing_ = list_at(dir_fd_);
    listing_dirty_ = true;
    if (!options_.before.empty()) {
      phase_ = Phase::before;
      start_callback(options_.before, "before", 0);
      return;
    }
  }
  start_handler();
}

JobRun::~JobRun() {
  close_fd(dir_fd_);
  close_fd(base_fd_);
}

bool JobRun::make_workdir() {
  std::string base = absolute(options_.workdir);
  base_fd_ = open(base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (base_fd_ < 0 && errno == ENOENT) {
    std::error_code ec;
    fs::create_directories(fs::path(base).parent_path(), ec);
    if (mkdir(base.c_str(), 0700) == 0 || errno == EEXIST)
      base_fd_ = open(base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  }
  int e = errno;
  struct stat st {};
  std::string why;
  if (base_fd_ < 0)
    why = e == ELOOP ? "--workdir '" + base + "' is a symlink: name the directory itself"
                     : "cannot open --workdir '" + base + "': " + std::strerror(e);
  else if (fstat(base_fd_, &st) != 0)
    why = "cannot open --workdir '" + base + "': " + std::strerror(errno);
  else
    why = base_problem(base, st);
  if (!why.empty()) {
    fail(exit_code::failed, why);
    return false;
  }
  // A name already taken (the same message delivered twice at once, a dir left by a module killed
  // mid-job, or one planted by someone else in a shared base) is never reused.
  std::string name = spec_.job_id.empty() ? job_dir_name(new_message_id(), 1) : spec_.job_id;
  std::random_device rd;
  for (int i = 1;; ++i) {
    std::string n = name;
    if (i > 1 && i < 10) {
      n += "-" + std::to_string(i);
    } else if (i >= 10) {
      char hex[16];
      std::snprintf(hex, sizeof hex, "-%08x", static_cast<unsigned>(rd()));
      n += hex;
    }
    if (mkdirat(base_fd_, n.c_str(), 0700) == 0) {
      dir_name_ = std::move(n);
      break;
    }
    e = errno;
    if (e != EEXIST || i == 100) {
      fail(exit_code::failed, "cannot create the work dir '" + base + "/" + n + "': " + std::strerror(e));
      return false;
    }
  }
  dir_fd_ = openat(base_fd_, dir_name_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dir_fd_ < 0 || fstat(dir_fd_, &st) != 0 || st.st_uid != geteuid()) {
    close_fd(dir_fd_);
    fail(exit_code::failed, "the work dir '" + base + "/" + dir_name_ + "' was replaced after it was made");
    return false;
  }
  dir_ = base + "/" + dir_name_;
  return true;
}

void JobRun::start_handler() {
  phase_ = Phase::handler;
  ProcessOptions po;
  po.workdir = dir_;
  po.max_output = options_.max_output;
  po.max_memory = options_.max_memory;
  po.kill_after = options_.kill_after;
  int out = -1;
  if (!dir_.empty()) {
    po.stdout_path = dir_ + "/output";
    out = openat(dir_fd_, "output", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
      int e = errno;
      fail(exit_code::failed, "cannot create '" + po.stdout_path + "': " + std::strerror(e));
      return;
    }
    po.stdout_file = out;
    po.keep_stdout = options_.result.empty();
  }
  try {
    handler_ = std::make_unique<Process>(spec_.argv, spec_.env, spec_.input, po);
  } catch (const Error& e) {
    close_fd(out);
    fail(rc_not_found, e.what());
    return;
  }
  close_fd(out);
  spec_.input = {};
  auto now = Clock::now();
  if (options_.timeout) handler_deadline_ = now + *options_.timeout;
  if (!dir_.empty()) {
    // What --before did is part of the starting point, not a change.
    Listing l = list_at(dir_fd_);
    if (!(l == listing_)) {
      listing_ = std::move(l);
      listing_dirty_ = true;
    }
    next_watch_ = now + options_.watch_interval;
  }
}

void JobRun::start_callback(const std::string& command, std::string_view event, int rc) {
  auto cb = std::make_unique<Callback>();
  cb->option = event == "change" ? "--on-change" : "--" + std::string(event);
  std::vector<std::string> env = spec_.env;
  env.push_back("TOBUS_EVENT=" + std::string(event));
  env.push_back("TOBUS_LISTING=" + listing_.json());
  if (event == "after") env.push_back("TOBUS_RC=" + std::to_string(rc));
  ProcessOptions po;
  po.workdir = dir_;
  po.stdout_to_stderr = true;
  po.kill_after = options_.kill_after;
  try {
    cb->process = std::make_unique<Process>(std::vector<std::string>{"/bin/sh", "-c", command}, env, "", po);
  } catch (const Error& e) {
    log_(cb->option + ": " + e.what());
    callback_ = std::move(cb);
    on_callback_end();
    return;
  }
  cb->deadline = Clock::now() + options_.callback_timeout;
  callback_ = std::move(cb);
}

void JobRun::on_callback_end() {
  std::unique_ptr<Callback> cb = std::move(callback_);
  int rc = !cb->process ? rc_not_found : cb->timed_out ? rc_timeout : cb->process->status();
  std::string what = cb->timed_out
                         ? cb->option + " timed out after " + format_duration(options_.callback_timeout)
                         : cb->option + " exited with " + std::to_string(rc);
  cb.reset();  // reaps it
  if (phase_ == Phase::before) {
    if (rc != 0) {
      fail(rc, what);
      return;
    }
    start_handler();
    return;
  }
  if (rc != 0) log_(what + ", ignoring");
  if (phase_ == Phase::after) finish();
}

void JobRun::on_handler_end() {
  Process& p = *handler_;
  int rc = p.status();
  std::string error;
  if (!p.failure().empty()) {
    rc = exit_code::failed;
    error = p.failure();
  } else if (timed_out_) {
    rc = rc_timeout;
    error = "timed out after " + format_duration(*options_.timeout);
  }
  result_.rc = rc;
  result_.error = std::move(error);
  result_.stderr_tail = p.stderr_tail();
  if (rc == 0 && options_.result.empty()) result_.payload = p.take_stdout();
  handler_.reset();  // reaps what is left of its group
  phase_ = Phase::settle;
  if (!dir_.empty()) next_watch_ = Clock::time_point::min();  // one last look
}

void JobRun::watch(Clock::time_point now) {
  if (dir_.empty() || now < next_watch_) return;
  next_watch_ = phase_ == Phase::handler ? now + options_.watch_interval : Clock::time_point::max();
  Listing l = list_at(dir_fd_);
  if (l == listing_) return;
  listing_ = std::move(l);
  listing_dirty_ = true;
  if (!options_.on_change.empty()) change_pending_ = true;
}

void JobRun::start_after() {
  if (result_.rc == 0 && !options_.result.empty()) {
    std::string path = dir_ + "/" + options_.result;
    int fd = open_beneath(dir_fd_, options_.result);
    struct stat st {};
    if (fd < 0) {
      result_.rc = exit_code::failed;
      result_.error = errno == ENOENT
                          ? "no result file '" + options_.result + "' in the work dir '" + dir_ + "'"
                          : "cannot read the result file '" + path + "': " + std::strerror(errno);
    } else if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      result_.rc = exit_code::failed;
      result_.error = "the result '" + path + "' is not a regular file";
    } else if (options_.max_output > 0 && static_cast<std::uint64_t>(st.st_size) > options_.max_output) {
      result_.rc = exit_code::failed;
      result_.error = "the result file '" + options_.result + "' has " + std::to_string(st.st_size) +
                      " bytes, more than the output limit of " + std::to_string(options_.max_output);
    } else {
      std::string data;
      char buf[65536];
      ssize_t n;
      while ((n = read(fd, buf, sizeof buf)) != 0) {
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        data.append(buf, static_cast<std::size_t>(n));
      }
      if (n < 0) {
        result_.rc = exit_code::failed;
        result_.error = "cannot read the result file '" + path + "': " + std::strerror(errno);
      } else {
        result_.payload = std::move(data);
      }
    }
    if (fd >= 0) close(fd);
  }
  if (dir_.empty() || options_.after.empty()) {
    finish();
    return;
  }
  phase_ = Phase::after;
  start_callback(options_.after, "after", result_.rc);
}

void JobRun::fail(int rc, std::string error) {
  result_.rc = rc;
  result_.error = std::move(error);
  result_.payload.clear();
  start_after();
}

void JobRun::finish() {
  phase_ = Phase::done;
  if (dir_.empty()) return;
  bool keep =
      options_.keep == KeepWorkdir::always || (options_.keep == KeepWorkdir::failed && result_.rc != 0);
  if (!keep) {
    // Relative to the open dirs: a symlink planted in the work dir is removed, never followed.
    std::string why = empty_dir(openat(dir_fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), 0);
    if (why.empty() && unlinkat(base_fd_, dir_name_.c_str(), AT_REMOVEDIR) != 0) why = std::strerror(errno);
    if (!why.empty()) log_("cannot remove the work dir '" + dir_ + "': " + why + ", leaving it");
  }
  close_fd(dir_fd_);
  close_fd(base_fd_);
}

void JobRun::add_pollfds(std::vector<pollfd>& fds) {
  polled_.clear();
  if (handler_ && !handler_->exited() && handler_->stdin_fd() >= 0) handler_->pump_stdin();
  if (handler_) {
    if (handler_->stdin_fd() >= 0) polled_.push_back(handler_->stdin_fd());
    if (handler_->stdout_fd() >= 0) polled_.push_back(handler_->stdout_fd());
    if (handler_->stderr_fd() >= 0) polled_.push_back(handler_->stderr_fd());
  }
  if (callback_ && callback_->process && callback_->process->stderr_fd() >= 0)
    polled_.push_back(callback_->process->stderr_fd());
  for (int fd : polled_)
    fds.push_back({fd, static_cast<short>(handler_ && fd == handler_->stdin_fd() ? POLLOUT : POLLIN), 0});
}

void JobRun::handle(const std::vector<pollfd>& fds, std::size_t first) {
  auto polled = std::move(polled_);
  polled_.clear();
  for (std::size_t i = 0; i < polled.size() && first + i < fds.size(); ++i) {
    if (!fds[first + i].revents) continue;
    int fd = polled[i];
    if (handler_ && fd == handler_->stdin_fd()) {
      handler_->pump_stdin();
    } else if (handler_ && (fd == handler_->stdout_fd() || fd == handler_->stderr_fd())) {
      handler_->pump_output(fd, log_);
    } else if (callback_ && callback_->process && fd == callback_->process->stderr_fd()) {
      const std::string& option = callback_->option;
      callback_->process->pump_output(
          fd, [&](std::string_view line) { log_(option + ": " + std::string(line)); });
    }
  }
}

void JobRun::tick(bool child_exited) {
  // Each pass moves the job on by at most one step; a step that ends at once (a callback that
  // cannot start, an empty listing change) is followed in the same call.
  for (int pass = 0; pass < 8 && phase_ != Phase::done; ++pass) {
    auto now = Clock::now();
    Phase phase = phase_;
    bool had_callback = static_cast<bool>(callback_);

    if (callback_) {
      Callback& c = *callback_;
      Process& p = *c.process;
      if (!p.exited()) {
        if (now >= c.deadline && !c.timed_out) {
          c.timed_out = true;
          p.terminate();
        }
        p.tick(now);
        if ((child_exited || c.timed_out || p.drained()) && p.reap())
          c.drain_until = now + options_.drain_grace;
      }
      if (p.exited()) {
        if (!p.drained() && now >= c.drain_until) p.close_outputs();
        if (p.drained()) on_callback_end();
      }
    }

    if (handler_ && phase_ == Phase::handler) {
      Process& p = *handler_;
      if (!p.exited()) {
        if (now >= handler_deadline_ && !timed_out_) {
          timed_out_ = true;
          p.terminate();
        }
        p.tick(now);
        if ((child_exited || timed_out_ || p.drained() || !p.failure().empty()) && p.reap())
          drain_until_ = now + options_.drain_grace;
      }
      if (p.exited()) {
        if (!p.drained() && now >= drain_until_) p.close_outputs();
        if (p.drained()) on_handler_end();
      }
    }

    if (phase_ == Phase::handler || phase_ == Phase::settle) watch(now);
    if (!callback_ && change_pending_ && (phase_ == Phase::handler || phase_ == Phase::settle)) {
      change_pending_ = false;
      start_callback(options_.on_change, "change", 0);
    }
    if (phase_ == Phase::settle && !callback_ && !change_pending_) start_after();

    if (phase_ == phase && static_cast<bool>(callback_) == had_callback) break;
  }
}

Clock::time_point JobRun::wake_at() const {
  auto wake = Clock::time_point::max();
  if (phase_ == Phase::done) return wake;
  if (handler_) {
    if (!timed_out_) wake = std::min(wake, handler_deadline_);
    wake = std::min(wake, handler_->kill_at());
    if (handler_->exited()) wake = std::min(wake, drain_until_);
  }
  if (callback_ && callback_->process) {
    if (!callback_->timed_out) wake = std::min(wake, callback_->deadline);
    wake = std::min(wake, callback_->process->kill_at());
    if (callback_->process->exited()) wake = std::min(wake, callback_->drain_until);
  }
  if (phase_ == Phase::handler || phase_ == Phase::settle) wake = std::min(wake, next_watch_);
  return wake;
}

std::optional<std::string> JobRun::take_listing() {
  if (!listing_dirty_ || dir_.empty()) return std::nullopt;
  listing_dirty_ = false;
  return listing_.json();
}

pid_t JobRun::handler_pid() const { return handler_ && !handler_->exited() ? handler_->pid() : -1; }

void JobRun::kill() {
  if (handler_) handler_->signal_group(SIGKILL);
  if (callback_ && callback_->process) callback_->process->signal_group(SIGKILL);
}

JobResult JobRun::wait(const std::function<bool()>& stop) {
  std::vector<pollfd> fds;
  while (!done()) {
    if (stop && stop()) {
      kill();
      handler_.reset();
      callback_.reset();
      phase_ = Phase::done;
      result_ = {exit_code::failed, {}, "stopped", {}};
      break;
    }
    fds.clear();
    add_pollfds(fds);
    auto now = Clock::now();
    // Without a SIGCHLD to wake it, the loop looks at its processes at least every 20ms.
    auto wake = std::min(wake_at(), now + std::chrono::milliseconds(20));
    auto ms =
        std::max<long long>(0, std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count());
    int n = poll(fds.data(), fds.size(), static_cast<int>(ms));
    if (n > 0)
      handle(fds, 0);
    else
      polled_.clear();
    tick(true);
  }
  return take_result();
}

// --- --init --------------------------------------------------------------------------------------

namespace {

constexpr std::string_view contract_text =
    R"TPL(# The contract (docs/service.md, tobus-module(1)):
#   stdin    the message's payload, bytes (with --workdir also the file ./input)
#   stdout   the result: the payload sent on to the next hop. Logs and diagnostics go to stderr.
#   exit 0   success: stdout goes on along the route
#   exit 75  a temporary failure (EX_TEMPFAIL): the module runs it again later, with backoff
#   other    failure: the message is dead-lettered with this code and the last line of stderr
#
# Environment:
#   TOBUS_ID             the message id
#   TOBUS_MODULE         this module's name
#   TOBUS_FROM           the previous hop, or the sender
#   TOBUS_ROUTE          the hops still to go after this one, comma-separated
#   TOBUS_ATTEMPT        1 on the first run, more on retries and redeliveries
#   TOBUS_REDIS          the bus's Redis URL; TOBUS_NAMESPACE its key prefix
#   TOBUS_HEADER_<NAME>  each header of the message (NAME upper-cased, other characters '_')
#   TOBUS_JOB            this job's state record: tobus-state set "$TOBUS_JOB" progress=40
#   TOBUS_WORKDIR        the job's work dir, also the current directory (tobus-module --workdir)
# Under tobus-module --once there is no bus: TOBUS_JOB and TOBUS_REDIS are empty, TOBUS_ONCE=1.
)TPL";

std::string sh_template(const std::string& name) {
  return "#!/bin/sh\n# " + name + ": a tobus handler, run once per message:\n#   tobus-module " + name +
         " ./" + name + "        or as a service in a pool: tobus-module NAME --pool DIR\n#\n" +
         std::string(contract_text) + R"TPL(
set -eu

# Sets fields of this job's state record, when there is one (not under --once).
report() {
  if [ -n "${TOBUS_JOB:-}" ]; then tobus-state set "$TOBUS_JOB" "$@" >&2 || true; fi
}

echo "handling ${TOBUS_ID:-a message} (attempt ${TOBUS_ATTEMPT:-1})" >&2
report progress=0

# The work: read the payload on stdin, write the result on stdout. Replace `cat` with yours;
# `exit 75` asks for a retry, any other failure dead-letters the message.
cat

report progress=100
)TPL";
}

std::string python_template(const std::string& name) {
  std::string contract;
  for (std::size_t start = 0; start < contract_text.size();) {
    auto nl = contract_text.find('\n', start);
    auto line = contract_text.substr(start, nl - start);
    contract += line.size() > 2 ? std::string(line.substr(2)) : std::string();
    contract += '\n';
    start = nl + 1;
  }
  return "#!/usr/bin/env python3\n\"\"\"" + name +
         ": a tobus handler, run once per message:\n    tobus-module " + name + " ./" + name +
         "        or as a service in a pool: tobus-module NAME --pool DIR\n\n" + contract +
         R"TPL("""

import os
import subprocess
import sys


class Retry(Exception):
    """Raise it to ask for a retry later (exit code 75)."""


def report(**fields):
    """Sets fields of this job's state record, when there is one (not under --once)."""
    job = os.environ.get("TOBUS_JOB")
    if not job:
        return
    args = ["tobus-state", "set", job] + [f"{k}={v}" for k, v in fields.items()]
    try:
        subprocess.run(args, stdout=sys.stderr, check=False)
    except OSError as e:
        print(f"cannot report {fields}: {e}", file=sys.stderr)


def handle(payload: bytes) -> bytes:
    """The work: replace it with yours. Any exception but Retry dead-letters the message."""
    return payload


def main() -> int:
    payload = sys.stdin.buffer.read()
    print(f"handling {os.environ.get('TOBUS_ID', 'a message')} "
          f"(attempt {os.environ.get('TOBUS_ATTEMPT', '1')})", file=sys.stderr)
    report(progress=0)
    try:
        result = handle(payload)
    except Retry as e:
        print(f"retry: {e}", file=sys.stderr)
        return 75
    sys.stdout.buffer.write(result)
    sys.stdout.flush()
    report(progress=100)
    return 0


if __name__ == "__main__":
    sys.exit(main())
)TPL";
}

}  // namespace

std::string write_template(const std::string& dir, const std::string& name, const std::string& lang) {
  if (!valid_service_name(name))
    throw Error(ErrorKind::usage, "bad handler name '" + name +
                                      "': names are 1-64 of A-Z a-z 0-9 _ . -, not starting with '.'");
  std::string text;
  if (lang == "sh")
    text = sh_template(name);
  else if (lang == "python")
    text = python_template(name);
  else
    throw Error(ErrorKind::usage, "unknown language '" + lang + "': sh or python");
  std::string path = (dir.empty() ? std::string(".") : dir) + "/" + name;
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
  if (fd < 0 && errno == EEXIST) throw Error(ErrorKind::failed, "'" + path + "' exists, not overwriting it");
  if (fd < 0) throw Error(ErrorKind::failed, "cannot create '" + path + "': " + std::strerror(errno));
  bool ok = write_fully(fd, text);
  int e = errno;
  // The mode given to open() passes through the umask; a handler must be executable.
  fchmod(fd, 0755);
  close(fd);
  if (!ok) {
    unlink(path.c_str());
    throw Error(ErrorKind::failed, "cannot write '" + path + "': " + std::strerror(e));
  }
  return path;
}

// --- --once --------------------------------------------------------------------------------------

int run_once(const OnceOptions& o, int out_fd, int err_fd) {
  if (!valid_name(o.module))
    throw Error(ErrorKind::usage, "bad module name '" + o.module + "': names are 1-64 of A-Z a-z 0-9 _ . -");
  check_service_options(o.service, !o.command.empty());
  Message m;
  m.id = new_message_id();
  m.route.push_back(o.module);
  m.route.insert(m.route.end(), o.route.begin(), o.route.end());
  m.created_ms = now_ms();
  m.headers = o.headers;
  m.payload = o.payload;

  std::vector<std::string> argv;
  JobResult r;
  bool run = false;
  if (!o.service.pool.empty()) {
    ServicePick p = pick(o.service.pool, m);
    if (p.ok()) {
      argv = std::move(p.argv);
      run = true;
    } else {
      r = {p.rc, {}, p.error, {}};
    }
  } else if (!o.command.empty()) {
    std::string path = find_program(o.command.front());
    if (path.empty())
      throw Error(ErrorKind::usage, "cannot run '" + o.command.front() + "': command not found");
    argv = o.command;
    argv.front() = path;
    run = true;
  } else {
    r.payload = m.payload;  // no handler: pass-through, as the module does
  }

  if (run) {
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e)
      if (!std::string_view(*e).starts_with("TOBUS_")) env.emplace_back(*e);
    env.push_back("TOBUS_MODULE=" + o.module);
    for (const char* v : {"TOBUS_REDIS=", "TOBUS_NAMESPACE=", "TOBUS_JOB=", "TOBUS_ONCE=1"})
      env.emplace_back(v);
    auto more = message_env(m, 1);
    env.insert(env.end(), more.begin(), more.end());
    signals::install();
    become_subreaper();
    JobRun job(o.service, JobSpec{argv, env, m.payload, job_dir_name(m.id, 1)},
               [err_fd](std::string_view line) { write_fully(err_fd, std::string(line) + "\n"); });
    r = job.wait([] { return signals::stop_count() > 0; });
    if (signals::stop_count() > 0) signals::reraise_stop();
  }

  std::string verdict;
  std::string error = r.error;
  if (r.rc == 0) {
    verdict = "would send to the bus: route " +
              (o.route.empty() ? std::string("ends here") : join_route(o.route)) + ", rc 0";
  } else {
    if (error.empty()) error = describe_rc(r.rc);
    std::string tail = last_line(r.stderr_tail);
    std::string detail = error + (tail.empty() ? "" : ": " + one_line(tail));
    verdict = (r.rc == rc_tempfail ? "would retry: " : "would dead-letter: ") + detail;
  }

  if (!o.dry_run) {
    if (r.rc == 0) write_fully(out_fd, r.payload);
    write_fully(err_fd, verdict + "\n");
  } else {
    std::string d = verdict + "\n";
    d += "id: " + m.id + "\n";
    if (r.rc == 0) {
      d += "route: " + (o.route.empty() ? std::string("(ends here)") : join_route(o.route)) + "\n";
      d += "from: " + o.module + "\n";
    } else {
      d += "hop: " + o.module + "\n";
    }
    d += "rc: " + std::to_string(r.rc) + "\n";
    for (const auto& [k, v] : m.headers) d += "header " + k + ": " + one_line(v) + "\n";
    if (r.rc == 0) {
      d += "payload: " + std::to_string(r.payload.size()) + " bytes: " + one_line(r.payload) + "\n";
    } else {
      d += "error: " + one_line(error) + "\n";
      if (!r.stderr_tail.empty()) d += "stderr: " + one_line(r.stderr_tail) + "\n";
    }
    write_fully(out_fd, d);
  }
  return r.rc < 0 || r.rc > 255 ? exit_code::failed : r.rc;
}

}  // namespace tobus
