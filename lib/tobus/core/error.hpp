#pragma once
// The one error type of the library. It carries a kind; only run() in cli.cpp turns the kind into
// an exit code and a message on stderr, so each failure is reported once.

#include <stdexcept>
#include <string>

namespace tobus {

// Exit codes shared by every program, documented in tobus(7).
namespace exit_code {
inline constexpr int ok = 0;
inline constexpr int failed = 1;     // the work failed, or the answer is no
inline constexpr int usage = 2;      // bad command line
inline constexpr int redis = 3;      // Redis unreachable
inline constexpr int bad_input = 4;  // malformed input data
inline constexpr int denied = 5;     // Redis refused a command or key to this user (ACL: NOPERM)
inline constexpr int timeout = 124;  // as timeout(1)
}  // namespace exit_code

enum class ErrorKind { failed, usage, redis, bad_input, denied, timeout };

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }
  int exit_code() const;

 private:
  ErrorKind kind_;
};

// A lost or refused Redis connection. Loops catch it to reconnect; run() maps it to exit 3.
class RedisError : public Error {
 public:
  explicit RedisError(const std::string& message) : Error(ErrorKind::redis, message) {}
};

inline int Error::exit_code() const {
  switch (kind_) {
    case ErrorKind::failed: return exit_code::failed;
    case ErrorKind::usage: return exit_code::usage;
    case ErrorKind::redis: return exit_code::redis;
    case ErrorKind::bad_input: return exit_code::bad_input;
    case ErrorKind::denied: return exit_code::denied;
    case ErrorKind::timeout: return exit_code::timeout;
  }
  return exit_code::failed;
}

}  // namespace tobus
