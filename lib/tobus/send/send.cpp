#include "tobus/send/send.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "tobus/core/error.hpp"
#include "tobus/core/message.hpp"
#include "tobus/core/result.hpp"
#include "tobus/redis/redis.hpp"
#include "tobus/redis/stream.hpp"
#include "tobus/util/io.hpp"
#include "tobus/util/json.hpp"
#include "tobus/util/size.hpp"
#include "tobus/util/text.hpp"

namespace tobus {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t max_pipeline = 1024;

std::string_view delimiter(Framing f) {
  switch (f) {
    case Framing::lines: return "\n";
    case Framing::null: return std::string_view("\0", 1);
    case Framing::whole: return "";
    case Framing::json: return "\n";
  }
  return "\n";
}

// The progress line on stderr: count, rate, and with --wait done, failed and in flight; with a
// known input size a percentage and an ETA. Redrawn in place four times a second.
class ProgressLine {
 public:
  ProgressLine(Progress mode, std::size_t total_bytes, bool waiting)
      : total_(total_bytes), waiting_(waiting), start_(Clock::now()) {
    bool tty = isatty(STDERR_FILENO) == 1;
    enabled_ = mode == Progress::always || (mode == Progress::automatic && tty);
    redraw_ = tty;
    if (enabled_) thread_ = std::thread([this, mode] { loop(mode == Progress::always); });
  }
  ~ProgressLine() { finish(); }
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  std::atomic<std::size_t> sent{0}, done{0}, failed{0}, bytes{0};

  void finish() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    if (drawn_) draw(true);
  }

 private:
  void loop(bool at_once) {
    std::unique_lock lock(mu_);
    // Short sends stay quiet: the line appears once a send has taken a second.
    if (!at_once && cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; })) return;
    while (!stop_) {
      draw(false);
      cv_.wait_for(lock, std::chrono::milliseconds(250), [this] { return stop_; });
    }
  }

  void draw(bool last) {
    drawn_ = true;
    double secs = std::chrono::duration<double>(Clock::now() - start_).count();
    std::size_t n = sent.load();
    std::string line = "sent " + std::to_string(n) + " (" + std::to_string(static_cast<long long>(secs > 0 ? n / secs : 0)) + "/s)";
    if (waiting_) {
      std::size_t d = done.load(), f = failed.load();
      line += "  done " + std::to_string(d) + "  failed " + std::to_string(f) + "  in flight " +
              std::to_string(n >= d + f ? n - d - f : 0);
    }
    if (total_ > 0) {
      double frac = std::min(1.0, static_cast<double>(bytes.load()) / static_cast<double>(total_));
      line += "  " + std::to_string(static_cast<int>(frac * 100)) + "%";
      if (frac > 0.01 && frac < 1.0 && !last)
        line += "  ETA " + format_duration(Millis(static_cast<long long>(secs * (1 - frac) / frac) * 1000));
    }
    std::string out = redraw_ ? "\r\033[K" + line : line + "\n";
    if (last && redraw_) out += "\n";
    [[maybe_unused]] auto w = write(STDERR_FILENO, out.data(), out.size());
  }

  std::size_t total_;
  bool waiting_;
  Clock::time_point start_;
  bool enabled_ = false, redraw_ = false, drawn_ = false, stop_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread thread_;
};

struct Slot {
  std::string id;
  Clock::time_point sent;
  enum class State { pending, done, failed } state = State::pending;
  std::string output;  // the framed result(s) to print
  // A fan-out without a join downstream: every copy's result, printed in copy order.
  int copies_expected = 0;
  std::map<int, std::string> copies;
};

// The results side of --wait: a thread reads the reply stream and prints in input order.
class Waiter {
 public:
  Waiter(const RedisAddress& address, std::string key, int out_fd, Framing framing, Millis timeout,
         ProgressLine& progress, const Reporter& report)
      : address_(address), conn_(connect_with_retry(address, Millis(0))), key_(std::move(key)), out_fd_(out_fd), delim_(delimiter(framing)),
        json_(framing == Framing::json), timeout_(timeout), progress_(progress), report_(report) {}

  void add(const std::string& id) {
    std::lock_guard lock(mu_);
    index_.emplace(id, slots_.size());
    Slot slot;
    slot.id = id;
    slot.sent = Clock::now();
    slots_.push_back(std::move(slot));
  }
  void input_done() {
    std::lock_guard lock(mu_);
    input_done_ = true;
  }
  ~Waiter() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    if (thread_.joinable()) thread_.join();
  }
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;

  void start() { thread_ = std::thread([this] { run(); }); }
  void join() {
    if (thread_.joinable()) thread_.join();
    if (error_) std::rethrow_exception(error_);
  }
  bool timed_out() const { return timed_out_; }
  bool any_failed() const { return failed_ > 0; }
  // Ids still without a result.
  std::vector<std::string> pending() const {
    std::vector<std::string> out;
    for (const auto& s : slots_)
      if (s.state == Slot::State::pending) out.push_back(s.id);
    return out;
  }

 private:
  void run() {
    try {
      loop();
    } catch (...) {
      error_ = std::current_exception();
    }
  }

  void loop() {
    std::string last = "0-0";
    for (;;) {
      {
        std::lock_guard lock(mu_);
        if (stop_) return;
        print_ready(false);
        if (input_done_ && next_ == slots_.size()) return;
        if (next_ < slots_.size() && Clock::now() > slots_[next_].sent + timeout_) {
          timed_out_ = true;
          print_ready(true);
          return;
        }
      }
      std::optional<Reply> read;
      try {
        read.emplace(conn_.command({"XREAD", "COUNT", "1000", "BLOCK", "200", "STREAMS", key_, last}));
      } catch (const RedisError& e) {
        // The results wait in the reply stream: read on after the last one seen, once connected
        // again (RedisError when that fails within the budget).
        report_.warn("{}, reconnecting", e.what());
        conn_ = connect_with_retry(address_, reconnect_budget);
        continue;
      }
      Reply& r = *read;
      if (r.is_error()) throw_reply_error(r, "read '" + key_ + "'");
      if (r.is_nil() || r.size() == 0) continue;
      auto entries = parse_entries(r[0][1]);
      read.reset();  // the entries hold copies: a large payload is not kept twice
      std::lock_guard lock(mu_);
      for (auto& e : entries) {
        last = e.id;
        record(e.fields);
      }
    }
  }

  void record(Fields& fields) {
    DecodeError why;
    auto result = decode_result(fields, why);
    if (!result) return;  // not a result the bus wrote: nothing to print
    const std::string& id = result->id;
    auto it = index_.find(id);
    if (it == index_.end()) return;
    Slot& s = slots_[it->second];
    if (s.state != Slot::State::pending) return;  // a hop ran twice: print once
    bool done = result->done();
    std::string frame;
    if (done) {
      std::string& bytes = result->payload;
      frame = json_ ? JsonObject().add("id", id).add("status", "done").add_payload(bytes).str() + "\n"
                    : std::move(bytes) + std::string(delim_);
    } else {
      const Failure& f = *result->failure;
      ++failed_;
      ++progress_.failed;
      // Under --json a failure is a record too (and still a line on stderr).
      if (json_)
        frame = JsonObject()
                    .add("id", id)
                    .add("status", "failed")
                    .add("hop", f.hop)
                    .add("rc", static_cast<std::int64_t>(f.rc))
                    .add("error", f.error)
                    .add("stderr", f.stderr_tail)
                    .str() +
                "\n";
      // The handler's last stderr line says most; the reason stands in when it wrote none.
      std::string line = last_line(f.stderr_tail);
      report_.error("message {} failed at hop '{}' (rc {}): {}", id, f.hop, f.rc, line.empty() ? f.error : line);
    }
    int n = result->fan ? result->fan->n : 0;
    if (n > 1) {
      // One copy of a fan-out: the message is done when every copy is.
      s.copies_expected = n;
      if (!s.copies.emplace(result->fan->index, std::move(frame)).second) return;
      if (static_cast<int>(s.copies.size()) < n) return;
      for (auto& [i, f] : s.copies) s.output += f;
      s.copies.clear();
      s.state = Slot::State::done;
    } else {
      // A plain result, or a join's: it stands for the whole message.
      s.copies.clear();
      s.output = std::move(frame);
      s.state = done ? Slot::State::done : Slot::State::failed;
    }
    if (done) ++progress_.done;
  }

  // Prints the results that are next in input order; `skip_pending` passes over the late ones.
  void print_ready(bool skip_pending) {
    std::string out;
    for (; next_ < slots_.size(); ++next_) {
      Slot& s = slots_[next_];
      if (s.state == Slot::State::pending && !skip_pending) break;
      if (s.output.size() > (1 << 20)) {
        // A large result is written from where it is, not copied into `out`.
        write_output(out_fd_, out);
        out.clear();
        write_output(out_fd_, s.output);
      } else {
        out += s.output;
      }
      std::string().swap(s.output);
      if (out.size() > (1 << 20)) {
        write_output(out_fd_, out);
        out.clear();
      }
    }
    if (!out.empty()) write_output(out_fd_, out);
  }

  const RedisAddress& address_;
  Connection conn_;
  std::string key_;
  int out_fd_;
  std::string_view delim_;
  bool json_;
  Millis timeout_;
  ProgressLine& progress_;
  const Reporter& report_;
  std::mutex mu_;
  std::vector<Slot> slots_;
  std::unordered_map<std::string, std::size_t> index_;
  std::size_t next_ = 0;
  bool input_done_ = false;
  bool timed_out_ = false;
  bool stop_ = false;
  int failed_ = 0;
  std::exception_ptr error_;
  std::thread thread_;
};

// Where each late message waits: the stream holding it with the fewest hops left.
std::map<std::string, std::string> locate(Connection& c, const Keys& keys,
                                          const std::vector<std::string>& route,
                                          const std::vector<std::string>& ids) {
  std::map<std::string, std::pair<std::size_t, std::string>> best;  // id → (hops left + bus?, where)
  std::unordered_map<std::string, bool> wanted;
  for (const auto& id : ids) wanted[id] = true;
  bool refused = false;
  auto scan = [&](const std::string& key, bool is_bus) {
    std::string start = "-";
    for (int pages = 0; pages < 100; ++pages) {
      Reply r = c.command({"XRANGE", key, start, "+", "COUNT", "1000"});
      if (is_denied(r)) refused = true;  // a sender's ACL user need not read the bus and inboxes
      auto entries = parse_entries(r);
      for (const auto& e : entries) {
        std::string id, route_text;
        for (const auto& [k, v] : e.fields) {
          if (k == "id") id = v;
          else if (k == "route") route_text = v;
        }
        if (!wanted.contains(id)) continue;
        std::size_t hops = route_text.empty() ? 0 : 1 + static_cast<std::size_t>(std::count(route_text.begin(), route_text.end(), ','));
        std::size_t rank = hops * 2 + (is_bus ? 1 : 0);
        std::string next = route_text.substr(0, route_text.find(','));
        std::string where = is_bus ? (next.empty() ? "the bus, its route done (is tobus-bus running?)"
                                                   : "the bus, before hop '" + next + "' (is tobus-bus running?)")
                                   : "hop '" + next + "'";
        auto it = best.find(id);
        if (it == best.end() || rank < it->second.first) best[id] = {rank, where};
      }
      if (entries.size() < 1000) return;
      start = "(" + entries.back().id;
    }
  };
  scan(keys.bus(), true);
  // Hooks may reroute: look in every inbox, the route's first.
  std::vector<std::string> inboxes;
  for (const auto& hop : route) inboxes.push_back(keys.inbox(hop));
  std::string cursor = "0";
  do {
    Reply r = c.command({"SCAN", cursor, "MATCH", keys.inbox("*"), "TYPE", "stream", "COUNT", "1000"});
    if (is_denied(r)) refused = true;
    if (!r.is_array() || r.size() < 2) break;
    cursor = std::string(r[0].str());
    for (std::size_t i = 0; i < r[1].size() && inboxes.size() < 1000; ++i) {
      std::string key(r[1][i].str());
      if (std::find(inboxes.begin(), inboxes.end(), key) == inboxes.end()) inboxes.push_back(key);
    }
  } while (cursor != "0");
  for (const auto& inbox : inboxes) scan(inbox, false);
  std::map<std::string, std::string> out;
  for (const auto& [id, b] : best) out[id] = b.second;
  if (refused)
    for (const auto& id : ids) out.try_emplace(id, "a stream this Redis user may not read (its ACL)");
  return out;
}

std::vector<std::string> numbered_ids(const std::string& base, std::size_t n) {
  std::vector<std::string> ids;
  if (n == 1) return {base};
  for (std::size_t i = 1; i <= n; ++i) ids.push_back(base + "." + std::to_string(i));
  return ids;
}

}  // namespace

void PayloadReader::too_long() const {
  throw Error(ErrorKind::bad_input, "stdin: payload " + std::to_string(count_ + 1) + " is larger than " +
                                        format_size(max_) + " (--max-payload)");
}

bool PayloadReader::next(std::vector<std::string>& out) {
  out.clear();
  char chunk[65536];
  for (;;) {
    if (framing_ != Framing::whole) {
      char delim = framing_ == Framing::null ? '\0' : '\n';
      std::size_t start = 0;
      for (;;) {
        auto pos = buf_.find(delim, start);
        if (pos == std::string::npos) break;
        if (pos - start > max_) {
          if (!out.empty()) break;  // those first; refused at the next call
          too_long();
        }
        out.emplace_back(buf_, start, pos - start);
        start = pos + 1;
      }
      buf_.erase(0, start);
      count_ += out.size();
      if (!out.empty()) return true;
    }
    // What is held is one payload still incomplete.
    if (buf_.size() > max_) too_long();
    if (eof_) {
      if (framing_ == Framing::whole) {
        if (buf_.empty() && done_whole_) return false;
        done_whole_ = true;
      } else if (buf_.empty()) {
        return false;
      }
      out.push_back(std::move(buf_));
      buf_.clear();
      ++count_;
      return true;
    }
    ssize_t n = read(fd_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(ErrorKind::bad_input, std::string("cannot read stdin: ") + std::strerror(errno));
    if (n == 0) eof_ = true;
    else {
      buf_.append(chunk, static_cast<std::size_t>(n));
      bytes_read_ += static_cast<std::size_t>(n);
    }
  }
}

namespace {

// One run of tobus-send: the input read in one of three ways, sent in pipelined batches of XADDs
// (resent whole after a reconnect), then with --wait the results collected and the late ones
// reported.
class Sender {
 public:
  Sender(const RedisAddress& address, const Keys& keys, const SendOptions& o, int in_fd, int out_fd)
      : address_(address), keys_(keys), o_(o), report_(o.report), in_fd_(in_fd), out_fd_(out_fd),
        conn_(connect_with_retry(address, std::chrono::milliseconds(0))),
        progress_(o.progress, input_size(), o.wait), bus_(keys.bus()) {
    if (o_.wait) {
      reply_key_ = keys_.reply(new_consumer_name());
      waiter_ = std::make_unique<Waiter>(address_, reply_key_, out_fd_, o_.framing, o_.timeout, progress_, report_);
      waiter_->start();
    }
    build_xadd();
  }
  Sender(const Sender&) = delete;
  Sender& operator=(const Sender&) = delete;

  int run() {
    try {
      send_input();
    } catch (...) {
      waiter_.reset();  // stops its thread
      throw;
    }
    // What was sent before a bad line is on its way (and waited for); the bad line ends the input.
    if (!bad_input_.empty()) report_.error("{}", bad_input_);
    int input_rc = bad_input_.empty() ? exit_code::ok : exit_code::bad_input;
    if (!waiter_) {
      progress_.finish();
      return input_rc;
    }
    return collect_results(input_rc);
  }

 private:
  // --- reading the input

  // With a regular file on stdin the progress line knows the size: a percentage and an ETA.
  std::size_t input_size() const {
    struct stat st {};
    return o_.messages.empty() && fstat(in_fd_, &st) == 0 && S_ISREG(st.st_mode) ? static_cast<std::size_t>(st.st_size)
                                                                                   : 0;
  }

  void send_input() {
    if (o_.framing == Framing::json) {
      // --json: each line an envelope. A line holds the payload JSON-escaped: up to 6 bytes for
      // each of its bytes.
      PayloadReader reader(in_fd_, Framing::lines, o_.max_payload * 6 + 65536);
      send_as_read(reader, [this](std::size_t, std::vector<std::string>& lines) { return send_json_lines(lines); });
    } else if (!o_.messages.empty() || !o_.id.empty()) {
      // Known up front (an --id numbers its messages, so it needs the count).
      std::vector<std::string> payloads = known_payloads();
      auto ids = o_.id.empty() ? fresh_ids(payloads.size()) : numbered_ids(o_.id, payloads.size());
      in_batches(payloads, [&](std::size_t first, std::vector<std::string>& part) {
        send_payloads({ids.begin() + static_cast<long>(first), ids.begin() + static_cast<long>(first + part.size())},
                      part);
        return true;
      });
    } else {
      PayloadReader reader(in_fd_, o_.framing, o_.max_payload);
      send_as_read(reader, [this](std::size_t, std::vector<std::string>& part) {
        send_payloads(fresh_ids(part.size()), part);
        return true;
      });
    }
  }

  // The -m payloads, else all of stdin read before the first is sent.
  std::vector<std::string> known_payloads() {
    std::vector<std::string> payloads = o_.messages;
    for (std::size_t i = 0; i < payloads.size(); ++i)
      if (payloads[i].size() > o_.max_payload)
        throw Error(ErrorKind::bad_input, "message " + std::to_string(i + 1) + " (-m) is larger than " +
                                              format_size(o_.max_payload) + " (--max-payload)");
    if (payloads.empty()) {
      PayloadReader reader(in_fd_, o_.framing, o_.max_payload);
      std::vector<std::string> more;
      while (reader.next(more))
        for (auto& p : more) payloads.push_back(std::move(p));
    }
    return payloads;
  }

  // Sends what `reader` yields as it arrives, until its end or until `send` returns false.
  template <class F>
  void send_as_read(PayloadReader& reader, F send) {
    std::vector<std::string> items;
    bool more = true;
    while (more && reader.next(items)) {
      more = in_batches(items, send);
      progress_.bytes = reader.bytes_read();
    }
  }

  // The one batching loop: `items` moved out in pipeline-sized parts, each handed to
  // `send(index of its first item, part)`; false when `send` said to stop.
  template <class F>
  static bool in_batches(std::vector<std::string>& items, F&& send) {
    for (std::size_t i = 0; i < items.size(); i += max_pipeline) {
      std::size_t n = std::min(max_pipeline, items.size() - i);
      std::vector<std::string> part(std::make_move_iterator(items.begin() + static_cast<long>(i)),
                                    std::make_move_iterator(items.begin() + static_cast<long>(i + n)));
      if (!send(i, part)) return false;
    }
    return true;
  }

  static std::vector<std::string> fresh_ids(std::size_t n) {
    std::vector<std::string> ids;
    for (std::size_t i = 0; i < n; ++i) ids.push_back(new_message_id());
    return ids;
  }

  // --- the --json replay

  // Sends the envelopes of `lines`: their route and id win, --to and -H fill in. False at a bad
  // line (`bad_input_` says which), after sending the lines before it.
  bool send_json_lines(std::vector<std::string>& lines) {
    std::vector<Fields> envelopes;
    std::vector<std::string> ids;
    for (auto& line : lines) {
      ++line_no_;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      std::string error, event;
      auto m = message_from_json(line, error, &event);
      // A tobus-watch record of a message on its way in (sent, routed) is sent again; the others
      // are records of results (handled, failed, dead, delivered, done): nothing to send.
      if (m && !event.empty() && event != "sent" && event != "routed") continue;
      if (m && m->route.empty()) {
        m->route = o_.route;
        if (m->route.empty()) error = "no route (give one in the record or with --to)";
      }
      if (m && m->payload.size() > o_.max_payload)
        error = "its payload is larger than " + format_size(o_.max_payload) + " (--max-payload)";
      if (!m || m->route.empty() || m->payload.size() > o_.max_payload) {
        bad_input_ = "stdin line " + std::to_string(line_no_) + ": " + error;
        break;
      }
      if (m->id.empty()) m->id = new_message_id();
      m->from = "send";
      m->created_ms = now_ms();
      m->reply = reply_key_;
      m->rc = 0;
      m->trail.clear();
      for (const auto& h : o_.headers) m->headers.push_back(h);
      if (!o_.correlation.empty()) m->correlation = o_.correlation;
      ids.push_back(m->id);
      envelopes.push_back(encode(std::move(*m)));
    }
    if (!ids.empty()) send_envelopes(ids, envelopes);
    return bad_input_.empty();
  }

  // --- sending batches

  // One XADD shape for every message: only `created` (per batch), the id and the payload change.
  void build_xadd() {
    Message shape;
    shape.route = o_.route;
    shape.from = "send";
    shape.created_ms = now_ms();
    shape.reply = reply_key_;
    shape.headers = o_.headers;
    shape.correlation = o_.correlation;
    shape_fields_ = encode(shape, IdField::before_payload);
    xadd_ = {"XADD", bus_, "*"};
    xadd_.reserve(3 + 2 * shape_fields_.size());
    for (const auto& [k, v] : shape_fields_) {
      xadd_.push_back(k);
      if (k == "created") created_at_ = xadd_.size();
      xadd_.push_back(v);
    }
    id_at_ = xadd_.size() - 3;  // id and payload come last
  }

  void send_payloads(const std::vector<std::string>& ids, const std::vector<std::string>& payloads) {
    created_ = std::to_string(now_ms());
    xadd_[created_at_] = created_;
    send_batch(ids, [&](std::size_t i) {
      xadd_[id_at_] = ids[i];
      xadd_.back() = payloads[i];
      conn_.append(xadd_);
    });
  }

  // Envelopes from --json carry their own route and headers.
  void send_envelopes(const std::vector<std::string>& ids, const std::vector<Fields>& envelopes) {
    send_batch(ids, [&](std::size_t i) {
      Args args{"XADD", bus_, "*"};
      for (const auto& [k, v] : envelopes[i]) {
        args.push_back(k);
        args.push_back(v);
      }
      conn_.append(args);
    });
  }

  // Sends one batch in one pipeline (`append(i)` queues the XADD of message i), resending it
  // whole after a reconnect (ids make a duplicate harmless: a waiting sender prints each result
  // once).
  template <class F>
  void send_batch(const std::vector<std::string>& ids, F append) {
    if (waiter_)
      for (const auto& id : ids) waiter_->add(id);
    for (;;) {
      try {
        for (std::size_t i = 0; i < ids.size(); ++i) append(i);
        for (std::size_t i = 0; i < ids.size(); ++i) {
          Reply r = conn_.read_reply();
          if (r.is_error()) throw_reply_error(r, "send to '" + bus_ + "'");
        }
        break;
      } catch (const RedisError& e) {
        reconnect(e);
      }
    }
    progress_.sent += ids.size();
    if (o_.print_id) {
      std::string out;
      for (const auto& id : ids) out += id + "\n";
      write_output(out_fd_, out);
    }
  }

  void reconnect(const RedisError& e) {
    report_.warn("{}, reconnecting", e.what());
    conn_ = connect_with_retry(address_, reconnect_budget);
  }

  // Runs `use` on the sending connection, once more after a reconnect: it sat idle while the
  // results came in, and Redis may have restarted since.
  template <class F>
  auto on_conn(F use) {
    try {
      return use();
    } catch (const RedisError& e) {
      reconnect(e);
      return use();
    }
  }

  // --- --wait: the results, and the late ones

  int collect_results(int input_rc) {
    waiter_->input_done();
    waiter_->join();
    progress_.finish();
    int rc = input_rc != exit_code::ok ? input_rc : waiter_->any_failed() ? exit_code::failed : exit_code::ok;
    if (waiter_->timed_out()) {
      report_late(waiter_->pending());
      rc = exit_code::timeout;
    }
    on_conn([&] { return conn_.command({"DEL", reply_key_}); });
    return rc;
  }

  // One line for each of the first 20 messages without a result: where it waits.
  void report_late(const std::vector<std::string>& late) {
    auto where = on_conn([&] { return locate(conn_, keys_, o_.route, late); });
    std::size_t shown = 0;
    for (const auto& id : late) {
      if (++shown > 20) {
        report_.error("... and {} more messages not done", late.size() - 20);
        break;
      }
      auto it = where.find(id);
      report_.error("message {} not done within {}: it waits at {}", id, format_duration(o_.timeout),
                    it == where.end() ? std::string("no stream it could find (in transit?)") : it->second);
    }
  }

  const RedisAddress& address_;
  const Keys& keys_;
  const SendOptions& o_;
  const Reporter& report_;
  int in_fd_, out_fd_;
  Connection conn_;
  ProgressLine progress_;
  const std::string bus_;
  std::string reply_key_;
  std::unique_ptr<Waiter> waiter_;  // with --wait; after progress_, which it counts on
  // xadd_ views these (Args are string_views): they live as long as it does.
  Fields shape_fields_;
  std::string created_;
  Args xadd_;
  std::size_t created_at_ = 0, id_at_ = 0;  // where `created` and the id go in xadd_
  std::size_t line_no_ = 0;                 // --json: lines read so far
  std::string bad_input_;                   // --json: the bad line that ended the input
};

}  // namespace

int send_messages(const RedisAddress& address, const Keys& keys, const SendOptions& o, int in_fd, int out_fd) {
  return Sender(address, keys, o, in_fd, out_fd).run();
}

}  // namespace tobus
