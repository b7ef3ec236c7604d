#include "tobus/redis/redis.hpp"

// sds.h, unlike hiredis.h, does not declare its functions extern "C", and hiredis.h includes it
// before its own extern "C": included first, here, it is.
extern "C" {
#include <hiredis/sds.h>
}
#include <hiredis/hiredis.h>
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>

#include "tobus/core/error.hpp"
#include "tobus/process/signals.hpp"
#include "tobus/redis/tls.hpp"

namespace tobus {
namespace {

// A command at least this large is written straight from the caller's buffers: hiredis would
// format a copy of it and copy that again into its output buffer.
constexpr std::size_t direct_write_min = std::size_t{1} << 20;
// A reply at least this large frees hiredis's read buffer once taken.
constexpr std::size_t release_buffer_min = std::size_t{1} << 20;
// What one read takes from the socket, as hiredis reads it (and a TLS record's most).
constexpr std::size_t read_chunk = 16 * 1024;

}  // namespace

bool ReplyView::is_error() const { return r_ && r_->type == REDIS_REPLY_ERROR; }
bool ReplyView::is_nil() const { return !r_ || r_->type == REDIS_REPLY_NIL; }
bool ReplyView::is_array() const { return r_ && r_->type == REDIS_REPLY_ARRAY; }
bool ReplyView::is_integer() const { return r_ && r_->type == REDIS_REPLY_INTEGER; }
bool ReplyView::is_string() const {
  return r_ && (r_->type == REDIS_REPLY_STRING || r_->type == REDIS_REPLY_STATUS);
}
std::string_view ReplyView::str() const {
  if (!r_ || !(r_->type == REDIS_REPLY_STRING || r_->type == REDIS_REPLY_STATUS ||
               r_->type == REDIS_REPLY_ERROR))
    return {};
  return {r_->str, r_->len};
}
long long ReplyView::integer() const { return is_integer() ? r_->integer : 0; }
std::size_t ReplyView::size() const { return is_array() ? r_->elements : 0; }
ReplyView ReplyView::operator[](std::size_t i) const {
  return ReplyView(i < size() ? r_->element[i] : nullptr);
}

Reply::Reply(redisReply* r) : ReplyView(r) {}
Reply::Reply(Reply&& other) noexcept : ReplyView(std::exchange(other.r_, nullptr)) {}
Reply& Reply::operator=(Reply&& other) noexcept {
  if (this != &other) {
    if (r_) freeReplyObject(const_cast<redisReply*>(r_));
    r_ = std::exchange(other.r_, nullptr);
  }
  return *this;
}
Reply::~Reply() {
  if (r_) freeReplyObject(const_cast<redisReply*>(r_));
}

Connection::Connection(redisContext* c, RedisAddress address) : c_(c), address_(std::move(address)) {}
Connection::Connection(Connection&& other) noexcept
    : c_(std::exchange(other.c_, nullptr)),
      address_(std::move(other.address_)),
      tls_(std::move(other.tls_)),
      answered_(other.answered_) {}
Connection& Connection::operator=(Connection&& other) noexcept {
  if (this != &other) {
    tls_.reset();  // before the socket it uses is closed
    if (c_) redisFree(c_);
    c_ = std::exchange(other.c_, nullptr);
    address_ = std::move(other.address_);
    tls_ = std::move(other.tls_);
    answered_ = other.answered_;
  }
  return *this;
}
Connection::~Connection() {
  tls_.reset();
  if (c_) redisFree(c_);
}

void Connection::fail(const char* doing) { fail(doing, c_ && c_->errstr[0] ? c_->errstr : "connection closed"); }

void Connection::fail(const char* doing, const std::string& why) {
  // A TLS port closes a plain connection at its first command, without a word: say what it may be.
  std::string hint = !answered_ && !tls_ && address_.kind == RedisAddress::Kind::tcp
                         ? " (if that port speaks TLS, use rediss://)"
                         : "";
  throw RedisError("lost connection to Redis at '" + address_.display() + "' while " + doing + ": " + why + hint);
}

Connection Connection::open(const RedisAddress& address, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  redisContext* c = address.kind == RedisAddress::Kind::unix_socket
                        ? redisConnectUnixWithTimeout(address.path.c_str(), tv)
                        : redisConnectWithTimeout(address.host.c_str(), address.port, tv);
  if (c == nullptr) throw RedisError("cannot connect to '" + address.display() + "': out of memory");
  if (c->err) {
    std::string why = c->errstr;
    redisFree(c);
    throw RedisError("cannot connect to '" + address.display() + "': " + why);
  }
  Connection conn(c, address);
  if (address.tls) {
    try {
      conn.tls_ = TlsSession::handshake(c->fd, address.host, address.tls_options, timeout);
    } catch (const TlsFailure& e) {
      throw RedisError("cannot connect to '" + address.display() + "': " + e.what());
    }
  }
  // The connect timeout also became the socket's read timeout; clear it: waits use poll().
  timeval none{};
  redisSetTimeout(c, none);
  if (address.kind == RedisAddress::Kind::tcp) redisEnableKeepAlive(c);
  auto setup = [&](std::initializer_list<std::string_view> args, const char* what) {
    Reply r = conn.command(args);
    if (r.is_error())
      throw RedisError("cannot " + std::string(what) + " at '" + address.display() +
                       "': " + std::string(r.str()));
  };
  if (!address.password.empty()) {
    if (address.user.empty()) setup({"AUTH", address.password}, "authenticate");
    else setup({"AUTH", address.user, address.password}, "authenticate");
  }
  if (address.db != 0) setup({"SELECT", std::to_string(address.db)}, "select the database");
  return conn;
}

Reply Connection::command(std::span<const std::string_view> args) {
  append(args);
  return read_reply();
}

void Connection::append(std::span<const std::string_view> args) {
  std::size_t bytes = 0;
  for (auto a : args) bytes += a.size();
  if (bytes >= direct_write_min) {
    write_direct(args);
    return;
  }
  // hiredis wants parallel arrays; small commands stay on the stack.
  constexpr std::size_t small = 32;
  const char* argv_small[small];
  std::size_t len_small[small];
  std::vector<const char*> argv_big;
  std::vector<std::size_t> len_big;
  const char** argv = argv_small;
  std::size_t* lens = len_small;
  if (args.size() > small) {
    argv_big.resize(args.size());
    len_big.resize(args.size());
    argv = argv_big.data();
    lens = len_big.data();
  }
  for (std::size_t i = 0; i < args.size(); ++i) {
    argv[i] = args[i].data();
    lens[i] = args[i].size();
  }
  if (redisAppendCommandArgv(c_, static_cast<int>(args.size()), argv, lens) != REDIS_OK)
    fail("sending a command");
}

void Connection::write_direct(std::span<const std::string_view> args) {
  flush();  // what was appended before goes first
  // The protocol's framing (*N, then $LEN before each argument) in one string; the arguments'
  // bytes are sent from where they are.
  std::string frame = "*" + std::to_string(args.size()) + "\r\n";
  std::vector<std::size_t> ends;  // where each argument's header ends in `frame`
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (i > 0) frame += "\r\n";  // the previous argument's end
    frame += "$" + std::to_string(args[i].size()) + "\r\n";
    ends.push_back(frame.size());
  }
  frame += "\r\n";
  std::vector<iovec> iov;
  std::size_t at = 0;
  for (std::size_t i = 0; i < args.size(); ++i) {
    iov.push_back({frame.data() + at, ends[i] - at});
    if (!args[i].empty()) iov.push_back({const_cast<char*>(args[i].data()), args[i].size()});
    at = ends[i];
  }
  iov.push_back({frame.data() + at, frame.size() - at});
  if (tls_) {
    try {
      for (const iovec& v : iov) tls_->write(static_cast<const char*>(v.iov_base), v.iov_len);
    } catch (const TlsFailure& e) {
      fail("sending a command", e.what());
    }
    return;
  }
  std::size_t next = 0;  // the first iovec not yet sent whole
  while (next < iov.size()) {
    msghdr msg{};
    msg.msg_iov = iov.data() + next;
    msg.msg_iovlen = std::min<std::size_t>(iov.size() - next, IOV_MAX);
    ssize_t n = sendmsg(c_->fd, &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{c_->fd, POLLOUT, 0};
      poll(&p, 1, -1);
      continue;
    }
    if (n <= 0)
      throw RedisError("lost connection to Redis at '" + address_.display() + "' while sending a command: " +
                       (n < 0 ? std::strerror(errno) : "connection closed"));
    for (auto left = static_cast<std::size_t>(n); left > 0;) {
      std::size_t step = std::min(left, iov[next].iov_len);
      iov[next].iov_base = static_cast<char*>(iov[next].iov_base) + step;
      iov[next].iov_len -= step;
      left -= step;
      if (iov[next].iov_len == 0) ++next;
    }
    while (next < iov.size() && iov[next].iov_len == 0) ++next;
  }
}

redisReply* Connection::parse_reply() {
  std::size_t buffered = c_->reader->len;
  void* r = nullptr;
  if (redisGetReplyFromReader(c_, &r) != REDIS_OK) fail("parsing a reply");
  if (r != nullptr) answered_ = true;
  // hiredis keeps its read buffer as large as the largest reply until more data arrives. After a
  // large reply, with nothing left in it, it goes now: a large payload is not held twice.
  if (r != nullptr && buffered >= release_buffer_min && c_->reader->len == 0) {
    redisReaderFree(c_->reader);
    c_->reader = redisReaderCreate();
    if (c_->reader == nullptr) {
      freeReplyObject(r);
      throw RedisError("out of memory reading from Redis at '" + address_.display() + "'");
    }
  }
  return static_cast<redisReply*>(r);
}

Reply Connection::read_reply() {
  // As redisGetReply does it: a reply already read, else send what is appended and read on.
  if (redisReply* r = parse_reply()) return Reply(r);
  flush();
  for (;;) {
    receive(true);
    if (redisReply* r = parse_reply()) return Reply(r);
  }
}

int Connection::fd() const { return c_->fd; }

void Connection::flush() {
  if (!tls_) {
    int done = 0;
    while (!done) {
      if (redisBufferWrite(c_, &done) != REDIS_OK) fail("sending a command");
    }
    return;
  }
  sds out = c_->obuf;
  if (sdslen(out) == 0) return;
  try {
    tls_->write(out, sdslen(out));
  } catch (const TlsFailure& e) {
    fail("sending a command", e.what());
  }
  // As hiredis does after a write: a large buffer goes, a small one is kept for the next command.
  if (sdsAllocSize(out) > read_chunk) {
    sdsfree(out);
    c_->obuf = sdsempty();
    if (c_->obuf == nullptr) throw RedisError("out of memory writing to Redis at '" + address_.display() + "'");
  } else {
    sdsclear(out);
  }
}

void Connection::read_available() { receive(false); }

void Connection::receive(bool block) {
  if (!tls_) {
    // hiredis reads once; a blocking socket waits for data.
    if (redisBufferRead(c_) != REDIS_OK) fail("reading a reply");
    return;
  }
  char buf[read_chunk];
  try {
    // Everything already decrypted goes to the reader: poll() would not see it.
    for (std::size_t n = tls_->read(buf, sizeof buf, block); n > 0;
         n = tls_->pending() ? tls_->read(buf, sizeof buf, false) : 0)
      if (redisReaderFeed(c_->reader, buf, n) != REDIS_OK) fail("reading a reply", "out of memory");
  } catch (const TlsFailure& e) {
    fail("reading a reply", e.what());
  }
}

bool Connection::take_reply(std::unique_ptr<Reply>& out) {
  redisReply* r = parse_reply();
  if (r == nullptr) return false;
  out = std::make_unique<Reply>(r);
  return true;
}

// NOPERM; inside a script, Redis 7.0 says ERR "The user executing the script can't ...".
bool is_denied(const ReplyView& r) {
  return r.is_error() &&
         (r.str().starts_with("NOPERM") || r.str().find("The user executing the script can't") != std::string_view::npos);
}

void throw_reply_error(const ReplyView& r, const std::string& doing) {
  throw Error(is_denied(r) ? ErrorKind::denied : ErrorKind::failed, "cannot " + doing + ": " + std::string(r.str()));
}

Connection connect_with_retry(const RedisAddress& address, std::chrono::milliseconds budget) {
  using clock = std::chrono::steady_clock;
  auto deadline = clock::now() + budget;
  std::chrono::milliseconds wait(100);
  for (;;) {
    try {
      Connection c = Connection::open(address, std::chrono::seconds(2));
      // A server that restarted answers LOADING until its data is back: not ready yet, so tried
      // again like a server that is not there (a reader would take the error for an answer).
      if (Reply r = c.command({"PING"}); r.is_error() && r.str().starts_with("LOADING"))
        throw RedisError("Redis at '" + address.display() + "' is loading its data");
      return c;
    } catch (const RedisError&) {
      if (clock::now() + wait > deadline) throw;
    }
    // Sleep in small steps: a stop signal ends the retrying at once.
    for (auto slept = std::chrono::milliseconds(0); slept < wait; slept += std::chrono::milliseconds(50)) {
      if (signals::stop_count() > 0) throw RedisError("stopped while reconnecting to '" + address.display() + "'");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    wait = std::min(wait * 2, std::chrono::milliseconds(2000));
  }
}

bool Script::is_noscript(const ReplyView& r) { return r.is_error() && r.str().starts_with("NOSCRIPT"); }

std::string Script::sha(Connection& c) const {
  std::lock_guard lock(mutex_);
  if (sha_.empty() && !refused_) {
    Reply r = c.command({"SCRIPT", "LOAD", text_});
    if (r.is_string() && !r.is_error()) sha_ = std::string(r.str());
    else if (r.is_error() && r.str().starts_with("NOPERM")) refused_ = true;  // else: again next time
  }
  return sha_;
}

void Script::prepare(Connection& c) const { sha(c); }

Args Script::call(bool by_sha, const std::string& sha, const std::string& nkeys, const Args& keys,
                  const Args& argv) const {
  Args args{by_sha ? "EVALSHA" : "EVAL", by_sha ? std::string_view(sha) : std::string_view(text_), nkeys};
  args.insert(args.end(), keys.begin(), keys.end());
  args.insert(args.end(), argv.begin(), argv.end());
  return args;
}

Reply Script::eval(Connection& c, const Args& keys, const Args& argv) const {
  const std::string nkeys = std::to_string(keys.size());
  const std::string s = sha(c);
  if (!s.empty()) {
    Reply r = c.command(call(true, s, nkeys, keys, argv));
    if (!is_noscript(r)) return r;
  }
  return c.command(call(false, s, nkeys, keys, argv));
}

void Script::append(Connection& c, const Args& keys, const Args& argv) const {
  const std::string nkeys = std::to_string(keys.size());
  std::string s;
  {
    std::lock_guard lock(mutex_);
    s = sha_;
  }
  c.append(call(!s.empty(), s, nkeys, keys, argv));
}

bool redis_answers(const RedisAddress& address) {
  try {
    auto c = Connection::open(address, std::chrono::milliseconds(500));
    Reply r = c.command({"PING"});
    // LOADING means a server is there and will answer soon: it counts.
    return !r.is_error() || r.str().starts_with("LOADING");
  } catch (const RedisError&) {
    return false;
  }
}

}  // namespace tobus
