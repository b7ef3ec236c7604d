#pragma once
// The integration tests' fixture: a private redis-server this executable starts on a unix socket
// in a temp dir (main.cpp), the library's loops run in threads and stopped the way the programs
// stop them, bounded waits, and a few readers of what is in Redis.

#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tobus/bus/bus.hpp"
#include "tobus/core/keys.hpp"
#include "tobus/core/message.hpp"
#include "tobus/module/module.hpp"
#include "tobus/redis/redis.hpp"
#include "tobus/redis/stream.hpp"
#include "tobus/redis/url.hpp"
#include "tobus/send/send.hpp"

namespace it {

using namespace std::chrono_literals;

// The private server: started once by main() before the tests run, stopped after them.
class RedisServer {
 public:
  // Throws std::runtime_error (with the server's log) when it does not answer PING in time.
  RedisServer();
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  const tobus::RedisAddress& address() const { return address_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  int pid_ = -1;
  tobus::RedisAddress address_;
};

// The running server (main() sets it).
const tobus::RedisAddress& address();
void set_server(RedisServer* server);

// A new connection to the server, for the test's own reads and writes.
tobus::Connection connect();

// Keys under a namespace no other test case uses.
tobus::Keys fresh_keys(const std::string& label);

// Polls `pred` until it holds or `bound` passed; whether it held. Waits never assert on how much
// happened in a fixed time: the machine may be busy, and the tests also run under ASan.
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds bound = 20s);

// The loops of the library (Bus::run, Module::run), each in a thread. stop() stops them the way
// SIGTERM stops the programs (signals::request_stop) and joins them; the destructor stops what
// still runs, so a failed REQUIRE leaves no thread behind. An exception a loop threw fails the
// test case at stop().
class Loops {
 public:
  Loops() = default;
  ~Loops();
  Loops(const Loops&) = delete;
  Loops& operator=(const Loops&) = delete;

  void bus(const tobus::Keys& keys, tobus::BusOptions options = {});
  void module(const tobus::Keys& keys, tobus::ModuleOptions options);
  void start(std::function<void()> loop);
  void stop();

 private:
  struct Running {
    std::thread thread;
    std::atomic<bool> done{false};
    std::exception_ptr error;
  };
  std::vector<std::unique_ptr<Running>> running_;
};

// --- modules and senders -------------------------------------------------------------------------

// What a handler was called with, across the module's thread and the test's.
struct Calls {
  std::mutex mu;
  std::vector<std::pair<std::string, int>> seen;  // payload, attempt
  void add(const tobus::Message& m, int attempt) {
    std::lock_guard lock(mu);
    seen.emplace_back(m.payload, attempt);
  }
  std::vector<std::pair<std::string, int>> get() {
    std::lock_guard lock(mu);
    return seen;
  }
  std::size_t size() {
    std::lock_guard lock(mu);
    return seen.size();
  }
};

// A module named `name` whose handler records each call in `calls` and forwards reply(payload)
// (the payload itself when `reply` is empty). The test sets the other options before it runs it.
tobus::ModuleOptions recording_module(std::string name, Calls& calls,
                                      std::function<std::string(const std::string& payload)> reply = {});

// What a sender waiting on its messages' results printed, and its exit code.
struct Waited {
  int rc = 0;
  std::string out;
};
// Sends `payloads` along `route` as `tobus-send --wait` does (no progress, a 20s timeout) and
// returns when every result came back or the timeout passed.
Waited send_and_wait(const tobus::Keys& keys, std::vector<std::string> route, std::vector<std::string> payloads);

// --- what is in Redis ----------------------------------------------------------------------------

std::vector<tobus::Entry> range(tobus::Connection& c, const std::string& key);
long long xlen(tobus::Connection& c, const std::string& key);
// Entries of `group` on `key` delivered and not acknowledged; -1 when the group does not exist.
long long pending(tobus::Connection& c, const std::string& key, std::string_view group);
// The value of field `name`, or "" when absent.
std::string field(const tobus::Fields& fields, std::string_view name);
// The message of an entry; fails the test when it does not decode.
tobus::Message decoded(const tobus::Entry& e);

// XADDs `m`, encoded by the library's own encode(), to `key`; the stream entry id.
std::string xadd(tobus::Connection& c, const std::string& key, const tobus::Message& m);
// A message as tobus-send makes one: from `send`, created now.
tobus::Message message(std::string id, std::vector<std::string> route, std::string payload);

// An in-memory file for what send_messages and run_watch write.
class Output {
 public:
  Output();
  ~Output();
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;
  int fd() const { return fd_; }
  std::string text() const;

 private:
  int fd_ = -1;
};

}  // namespace it
