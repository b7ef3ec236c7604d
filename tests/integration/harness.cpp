#include "harness.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "tobus/process/signals.hpp"

namespace it {

using tobus::Connection;
using tobus::Reply;

namespace {

RedisServer* the_server = nullptr;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

RedisServer::RedisServer() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/tobus-integration.XXXXXX";
  if (!mkdtemp(pattern.data())) throw std::runtime_error("cannot make a temp dir under " + pattern);
  dir_ = pattern;
  const std::string socket = dir_ + "/redis.sock";
  const std::string log = dir_ + "/redis.log";
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("cannot fork for redis-server");
  if (pid_ == 0) {
    // Dies with this process, however it ends.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
    }
    execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", socket.c_str(), "--unixsocketperm", "700",
           "--save", "", "--appendonly", "no", "--dir", dir_.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  address_.kind = tobus::RedisAddress::Kind::unix_socket;
  address_.path = socket;
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!tobus::redis_answers(address_)) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("redis-server exited at start: " + read_file(log));
    }
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("redis-server did not answer PING on " + socket + " within 20s: " + read_file(log));
    std::this_thread::sleep_for(20ms);
  }
}

RedisServer::~RedisServer() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

const tobus::RedisAddress& address() {
  if (!the_server) throw std::logic_error("no redis-server: main() starts it");
  return the_server->address();
}

void set_server(RedisServer* server) { the_server = server; }

Connection connect() { return Connection::open(address(), 5s); }

tobus::Keys fresh_keys(const std::string& label) {
  static int n = 0;
  return tobus::Keys("it" + std::to_string(getpid()) + "_" + std::to_string(++n) + "_" + label);
}

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds bound) {
  auto deadline = std::chrono::steady_clock::now() + bound;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
}

// --- loops ---------------------------------------------------------------------------------------

Loops::~Loops() { stop(); }

void Loops::bus(const tobus::Keys& keys, tobus::BusOptions options) {
  start([keys, options = std::move(options)] { tobus::Bus(address(), keys, options).run(); });
}

void Loops::module(const tobus::Keys& keys, tobus::ModuleOptions options) {
  start([keys, options = std::move(options)] { tobus::Module(address(), keys, options).run(); });
}

void Loops::start(std::function<void()> loop) {
  auto r = std::make_unique<Running>();
  Running* p = r.get();
  r->thread = std::thread([p, loop = std::move(loop)] {
    try {
      loop();
    } catch (...) {
      p->error = std::current_exception();
    }
    p->done = true;
  });
  running_.push_back(std::move(r));
}

namespace {

// CLIENT UNBLOCK for every client blocked in a read. The stop is one byte on the signal pipe and
// the first loop to wake drains it; another loop then sees the stop when its blocking read ends,
// which this makes at once instead of after the read's timeout.
void unblock_readers(Connection& c) {
  Reply list = c.command({"CLIENT", "LIST"});
  std::istringstream lines{std::string(list.str())};
  std::string line;
  while (std::getline(lines, line)) {
    auto flags = line.find(" flags=");
    if (!line.starts_with("id=") || flags == std::string::npos) continue;
    std::string f = line.substr(flags + 7, line.find(' ', flags + 1) - flags - 7);
    if (f.find('b') == std::string::npos) continue;
    c.command({"CLIENT", "UNBLOCK", line.substr(3, line.find(' ') - 3)});
  }
}

}  // namespace

void Loops::stop() {
  if (running_.empty()) return;
  tobus::signals::request_stop();
  {
    Connection c = connect();
    eventually(
        [&] {
          unblock_readers(c);
          for (const auto& r : running_)
            if (!r->done) return false;
          return true;
        },
        30s);
  }
  for (auto& r : running_) {
    if (!r->done) FAIL_CHECK("a loop did not stop within 30s of the stop request");
    r->thread.join();
    if (r->error) {
      try {
        std::rethrow_exception(r->error);
      } catch (const std::exception& e) {
        FAIL_CHECK("a loop ended by an exception: " << e.what());
      }
    }
  }
  running_.clear();
  tobus::signals::reset_stops();
}

// --- modules and senders -------------------------------------------------------------------------

tobus::ModuleOptions recording_module(std::string name, Calls& calls,
                                      std::function<std::string(const std::string& payload)> reply) {
  tobus::ModuleOptions o;
  o.name = std::move(name);
  o.handler = [&calls, reply = std::move(reply)](const tobus::Message& m, int attempt) {
    calls.add(m, attempt);
    return tobus::Outcome::ok(reply ? reply(m.payload) : m.payload);
  };
  return o;
}

Waited send_and_wait(const tobus::Keys& keys, std::vector<std::string> route, std::vector<std::string> payloads) {
  tobus::SendOptions s;
  s.route = std::move(route);
  s.messages = std::move(payloads);
  s.wait = true;
  s.timeout = tobus::Millis(20'000);
  s.progress = tobus::Progress::never;
  Output out;
  Waited waited;
  waited.rc = tobus::send_messages(address(), keys, s, -1, out.fd());
  waited.out = out.text();
  return waited;
}

// --- what is in Redis ----------------------------------------------------------------------------

std::vector<tobus::Entry> range(Connection& c, const std::string& key) {
  Reply r = c.command({"XRANGE", key, "-", "+"});
  REQUIRE_FALSE(r.is_error());
  return tobus::parse_entries(r);
}

long long xlen(Connection& c, const std::string& key) { return c.command({"XLEN", key}).integer(); }

long long pending(Connection& c, const std::string& key, std::string_view group) {
  Reply r = c.command({"XPENDING", key, group});
  if (r.is_error() || r.size() == 0) return -1;
  return r[0].integer();
}

std::string field(const tobus::Fields& fields, std::string_view name) {
  for (const auto& [k, v] : fields)
    if (k == name) return v;
  return {};
}

tobus::Message decoded(const tobus::Entry& e) {
  tobus::DecodeError error;
  auto m = tobus::decode(e.fields, error);
  INFO("entry " << e.id << ": " << error.reason);
  REQUIRE(m.has_value());
  return *m;
}

std::string xadd(Connection& c, const std::string& key, const tobus::Message& m) {
  tobus::Args args{"XADD", key, "*"};
  tobus::Fields fields = tobus::encode(m);
  for (const auto& [k, v] : fields) {
    args.push_back(k);
    args.push_back(v);
  }
  Reply r = c.command(args);
  REQUIRE_FALSE(r.is_error());
  return std::string(r.str());
}

tobus::Message message(std::string id, std::vector<std::string> route, std::string payload) {
  tobus::Message m;
  m.id = std::move(id);
  m.route = std::move(route);
  m.from = "send";
  m.created_ms = tobus::now_ms();
  m.payload = std::move(payload);
  return m;
}

Output::Output() : fd_(memfd_create("tobus-integration-output", MFD_CLOEXEC)) {
  if (fd_ < 0) throw std::runtime_error("memfd_create failed");
}

Output::~Output() { close(fd_); }

std::string Output::text() const {
  std::string out;
  char buf[4096];
  off_t at = 0;
  for (;;) {
    ssize_t n = pread(fd_, buf, sizeof buf, at);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    at += n;
  }
  return out;
}

}  // namespace it
