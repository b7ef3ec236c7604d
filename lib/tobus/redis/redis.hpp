#pragma once
// The only code that touches hiredis. A move-only Connection owns a context; replies are owned by
// Reply; commands go as argv with explicit lengths (binary-safe) and can be pipelined. Over TLS
// (rediss://) hiredis still builds the commands and parses the replies; the bytes go through a
// TlsSession (tls.hpp) instead of the socket.

#include <chrono>
#include <cstddef>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tobus/redis/url.hpp"

struct redisContext;
struct redisReply;

namespace tobus {

class TlsSession;

// A read-only view of a reply node; valid while the Reply that owns it lives.
class ReplyView {
 public:
  explicit ReplyView(const redisReply* r) : r_(r) {}
  bool is_error() const;
  bool is_nil() const;
  bool is_array() const;
  bool is_integer() const;
  bool is_string() const;  // a bulk string or a status
  std::string_view str() const;  // string, status or error text; empty otherwise
  long long integer() const;     // 0 unless an integer
  std::size_t size() const;      // elements of an array; 0 otherwise
  ReplyView operator[](std::size_t i) const;

 protected:
  const redisReply* r_;
};

class Reply : public ReplyView {
 public:
  explicit Reply(redisReply* r);
  Reply(Reply&& other) noexcept;
  Reply& operator=(Reply&& other) noexcept;
  Reply(const Reply&) = delete;
  Reply& operator=(const Reply&) = delete;
  ~Reply();
};

using Args = std::vector<std::string_view>;

class Connection {
 public:
  // Connects, authenticates and selects the database; throws RedisError naming the address.
  static Connection open(const RedisAddress& address, std::chrono::milliseconds timeout);

  Connection(Connection&& other) noexcept;
  Connection& operator=(Connection&& other) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // One round trip. Error replies are returned, not thrown; a broken connection throws RedisError.
  Reply command(std::span<const std::string_view> args);
  Reply command(std::initializer_list<std::string_view> args) {
    return command(std::span<const std::string_view>(args.begin(), args.size()));
  }

  // Pipelining: append N commands, then read N replies in order. A large command (a megabyte or
  // more) is sent at once, from the arguments' own bytes, after what was appended before it.
  void append(std::span<const std::string_view> args);
  void append(std::initializer_list<std::string_view> args) {
    append(std::span<const std::string_view>(args.begin(), args.size()));
  }
  Reply read_reply();

  // For waiting on a reply with poll(): send what was appended, then feed what the socket has.
  int fd() const;
  void flush();
  void read_available();               // what the socket has now (may be nothing); throws when it is closed
  bool take_reply(std::unique_ptr<Reply>& out);  // a complete reply from what was read, if any

  const RedisAddress& address() const { return address_; }

 private:
  Connection(redisContext* c, RedisAddress address);
  [[noreturn]] void fail(const char* doing);
  [[noreturn]] void fail(const char* doing, const std::string& why);
  void write_direct(std::span<const std::string_view> args);  // a large command, without copies
  void receive(bool block);   // feeds what the socket has to the reader; with `block`, waits for some
  redisReply* parse_reply();  // a complete reply from what was read, or null
  redisContext* c_ = nullptr;
  RedisAddress address_;
  std::unique_ptr<TlsSession> tls_;  // rediss://
  bool answered_ = false;            // a reply came: the server speaks our protocol
};

// An error reply turned into the library's error: "cannot DOING: TEXT", of kind `denied` when
// the server refused it to this user (NOPERM: an ACL), else `failed`. For replies a caller does
// not handle itself.
[[noreturn]] void throw_reply_error(const ReplyView& r, const std::string& doing);
bool is_denied(const ReplyView& r);  // NOPERM

// How long a program's loop keeps trying to reconnect after losing Redis before it gives up.
inline constexpr std::chrono::milliseconds reconnect_budget = std::chrono::seconds(30);

// A Lua script, run by the SHA-1 the server gives it (SCRIPT LOAD, once per process): EVALSHA, and
// EVAL when the server answers NOSCRIPT (restarted, SCRIPT FLUSH: nothing ran, so running it again is
// safe for any script). Where SCRIPT LOAD is refused (an ACL), plain EVAL. Safe to share between
// threads; each call uses the caller's connection.
class Script {
 public:
  explicit Script(std::string text) : text_(std::move(text)) {}
  Script(const Script&) = delete;
  Script& operator=(const Script&) = delete;

  const std::string& text() const { return text_; }

  // One round trip (two after NOSCRIPT). The reply as Connection::command gives it.
  Reply eval(Connection& c, const Args& keys, const Args& argv) const;

  // Pipelining: prepare() before appending anything (it may make a round trip), append() each
  // call, read the replies, and eval() again each that is_noscript(): those did not run.
  void prepare(Connection& c) const;
  void append(Connection& c, const Args& keys, const Args& argv) const;
  static bool is_noscript(const ReplyView& r);

 private:
  std::string sha(Connection& c) const;  // loads it on first use; empty when SCRIPT LOAD is refused
  Args call(bool by_sha, const std::string& sha, const std::string& nkeys, const Args& keys,
            const Args& argv) const;

  std::string text_;
  mutable std::mutex mutex_;
  mutable std::string sha_;
  mutable bool refused_ = false;
};

// Tries to connect until `budget` is spent, waiting 100ms doubling to 2s between tries;
// throws the last RedisError then. A budget of zero tries once.
Connection connect_with_retry(const RedisAddress& address, std::chrono::milliseconds budget);

// True when something answers PING at `address` within a short time.
bool redis_answers(const RedisAddress& address);

}  // namespace tobus
