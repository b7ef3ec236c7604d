#pragma once
// Putting messages on the bus: payloads from arguments or stdin, pipelined; with `wait`, each
// result printed in input order, framed like the input, so a remote route works as a filter.

#include <string>
#include <utility>
#include <vector>

#include "tobus/core/keys.hpp"
#include "tobus/core/message.hpp"
#include "tobus/core/report.hpp"
#include "tobus/redis/url.hpp"
#include "tobus/util/duration.hpp"

namespace tobus {

// json: one JSON envelope per line (what `tobus-watch --json` writes).
enum class Framing { lines, null, whole, json };

enum class Progress { automatic, always, never };

struct SendOptions {
  std::vector<std::string> route;
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<std::string> messages;  // from -m; empty: read `in_fd`
  Framing framing = Framing::lines;
  std::string id;  // empty: generated
  std::string correlation;  // messages with one correlation id can be joined (tobus-module --join N)
  bool wait = false;
  Millis timeout{30'000};
  bool print_id = false;
  Progress progress = Progress::automatic;  // a progress line on stderr (automatic: on a terminal)
  std::size_t max_payload = default_max_payload;  // a longer payload is bad input (exit 4)
  // Where what happens along the way is told (a reconnection, a skipped entry); silent by default.
  Reporter report;
};

// Splits input into payloads as it arrives.
class PayloadReader {
 public:
  // A payload longer than `max` throws Error(bad_input): it is never held whole.
  PayloadReader(int fd, Framing framing, std::size_t max = default_max_payload)
      : fd_(fd), framing_(framing), max_(max) {}
  // Blocks until at least one payload is complete or the input ended; false at the end.
  bool next(std::vector<std::string>& out);
  std::size_t bytes_read() const { return bytes_read_; }

 private:
  int fd_;
  Framing framing_;
  std::size_t max_;
  std::size_t count_ = 0;  // payloads returned so far
  void too_long() const;
  std::string buf_;
  bool eof_ = false;
  bool done_whole_ = false;
  std::size_t bytes_read_ = 0;
};

// Sends, waits if asked, and returns the exit code: 0, 1 (a message failed) or 124 (timeout).
int send_messages(const RedisAddress& address, const Keys& keys, const SendOptions& options,
                  int in_fd, int out_fd);

}  // namespace tobus
