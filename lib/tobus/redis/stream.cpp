#include "tobus/redis/stream.hpp"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <unordered_map>

#include "tobus/core/error.hpp"
#include "tobus/process/signals.hpp"

namespace tobus {

std::vector<Entry> parse_entries(ReplyView list) {
  std::vector<Entry> out;
  out.reserve(list.size());
  for (std::size_t i = 0; i < list.size(); ++i) {
    ReplyView e = list[i];
    if (!e.is_array() || e.size() < 2 || !e[1].is_array()) continue;
    Entry entry;
    entry.id = std::string(e[0].str());
    ReplyView kv = e[1];
    entry.fields.reserve(kv.size() / 2);
    for (std::size_t j = 0; j + 1 < kv.size(); j += 2)
      entry.fields.emplace_back(std::string(kv[j].str()), std::string(kv[j + 1].str()));
    out.push_back(std::move(entry));
  }
  return out;
}

void ensure_group(Connection& c, std::string_view stream, std::string_view group) {
  Reply r = c.command({"XGROUP", "CREATE", stream, group, "0", "MKSTREAM"});
  if (r.is_error() && !r.str().starts_with("BUSYGROUP"))
    throw_reply_error(r, "create group '" + std::string(group) + "' on '" + std::string(stream) + "'");
}

void GroupConsumer::start_read(Connection& c, int count, std::chrono::milliseconds block,
                               bool own_pending) {
  std::string n = std::to_string(count);
  std::string b = std::to_string(block.count());
  c.append({"XREADGROUP", "GROUP", group_, consumer_, "COUNT", n, "BLOCK", b, "STREAMS", stream_,
            own_pending ? "0" : ">"});
  c.flush();
}

std::vector<Entry> GroupConsumer::finish_read(Connection& c, const Reply& reply) {
  if (reply.is_error()) {
    if (reply.str().starts_with("NOGROUP")) {
      ensure_group(c, stream_, group_);
      return {};
    }
    throw_reply_error(reply, "read '" + stream_ + "'");
  }
  if (reply.is_nil() || reply.size() == 0) return {};
  // [[stream, [entries]]]
  return parse_entries(reply[0][1]);
}

std::vector<Entry> GroupConsumer::reclaim(Connection& c, std::chrono::milliseconds min_idle,
                                          int count) {
  Reply r = c.command({"XAUTOCLAIM", stream_, group_, consumer_, std::to_string(min_idle.count()),
                       claim_cursor_, "COUNT", std::to_string(count)});
  if (r.is_error()) {
    if (r.str().starts_with("NOGROUP")) ensure_group(c, stream_, group_);
    claim_cursor_ = "0-0";
    return {};
  }
  claim_cursor_ = std::string(r[0].str());
  if (claim_cursor_.empty()) claim_cursor_ = "0-0";
  auto entries = parse_entries(r[1]);
  if (entries.empty()) return entries;
  // XAUTOCLAIM does not say how often an entry was delivered; XPENDING does.
  Reply p = c.command({"XPENDING", stream_, group_, entries.front().id, entries.back().id,
                       std::to_string(entries.size() + 16), consumer_});
  std::unordered_map<std::string_view, long long> counts;
  for (std::size_t i = 0; i < p.size(); ++i) counts[p[i][0].str()] = p[i][3].integer();
  for (auto& e : entries) {
    auto it = counts.find(e.id);
    e.deliveries = it == counts.end() ? 2 : it->second;
  }
  return entries;
}

void GroupConsumer::refresh(Connection& c, std::span<const std::string> ids) {
  if (ids.empty()) return;
  Args args{"XCLAIM", stream_, group_, consumer_, "0"};
  for (const auto& id : ids) args.push_back(id);
  args.push_back("JUSTID");
  c.command(args);
}

void GroupConsumer::append_ack(Connection& c, std::span<const std::string> ids) {
  Args args{"XACK", stream_, group_};
  for (const auto& id : ids) args.push_back(id);
  c.append(args);
}

namespace {

// The id just after `id` ("ms-seq" → "ms-(seq+1)").
std::string next_id(std::string_view id) {
  auto dash = id.find('-');
  unsigned long long ms = 0, seq = 0;
  std::from_chars(id.data(), id.data() + dash, ms);
  std::from_chars(id.data() + dash + 1, id.data() + id.size(), seq);
  if (seq == ~0ULL) return std::to_string(ms + 1) + "-0";
  return std::to_string(ms) + "-" + std::to_string(seq + 1);
}

}  // namespace

bool id_less(std::string_view a, std::string_view b) {
  auto parts = [](std::string_view id) {
    unsigned long long ms = 0, seq = 0;
    auto dash = id.find('-');
    std::from_chars(id.data(), id.data() + std::min(dash, id.size()), ms);
    if (dash != std::string_view::npos) std::from_chars(id.data() + dash + 1, id.data() + id.size(), seq);
    return std::pair(ms, seq);
  };
  return parts(a) < parts(b);
}

std::int64_t entry_ms(std::string_view id) {
  std::int64_t ms = 0;
  std::from_chars(id.data(), id.data() + std::min(id.find('-'), id.size()), ms);
  return ms;
}

void trim_acknowledged(Connection& c, std::string_view stream, std::string_view group,
                       std::chrono::milliseconds retain) {
  // Everything at or below last-delivered-id and below the oldest pending entry was acknowledged.
  // Read last-delivered first: deliveries after it only add pending entries above it.
  Reply groups = c.command({"XINFO", "GROUPS", stream});
  if (!groups.is_array()) return;
  std::string last;
  bool found = false;
  for (std::size_t i = 0; i < groups.size() && !found; ++i) {
    ReplyView g = groups[i];
    std::string_view name;
    std::string_view delivered;
    for (std::size_t j = 0; j + 1 < g.size(); j += 2) {
      if (g[j].str() == "name") name = g[j + 1].str();
      if (g[j].str() == "last-delivered-id") delivered = g[j + 1].str();
    }
    if (name == group) {
      found = true;
      last = std::string(delivered);
    }
  }
  if (!found || last.empty() || last == "0-0") return;
  // Another group on the same stream (someone's own reader) keeps its entries too.
  if (groups.size() != 1) return;
  Reply pending = c.command({"XPENDING", stream, group});
  if (!pending.is_array() || pending.size() < 2) return;
  std::string minid = pending[0].integer() > 0 ? std::string(pending[1].str()) : next_id(last);
  if (retain.count() > 0) {
    std::string oldest_kept = std::to_string(std::max<long long>(0, now_ms() - retain.count())) + "-0";
    if (id_less(oldest_kept, minid)) minid = oldest_kept;
  }
  c.command({"XTRIM", stream, "MINID", minid});
}

long long client_id(Connection& c) {
  Reply r = c.command({"CLIENT", "ID"});
  return r.is_integer() ? r.integer() : -1;
}

bool unblock_client(const RedisAddress& address, long long id) {
  if (id < 0) return false;
  try {
    auto c = Connection::open(address, std::chrono::seconds(1));
    return !c.command({"CLIENT", "UNBLOCK", std::to_string(id)}).is_error();
  } catch (const Error&) {
    return false;
  }
}

std::optional<Reply> await_reply(Connection& c, long long id) {
  bool unblocked = false;
  std::unique_ptr<Reply> reply;
  for (;;) {
    if (c.take_reply(reply)) return std::move(*reply);
    pollfd fds[2] = {{c.fd(), POLLIN, 0}, {signals::fd(), POLLIN, 0}};
    int n = poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw RedisError("poll failed");
    }
    if (fds[1].revents) {
      signals::drain();
      if (signals::stop_count() > 0 && !unblocked) {
        unblocked = true;
        // Refused (an ACL without CLIENT UNBLOCK): the read is abandoned rather than waited out.
        if (!unblock_client(c.address(), id)) return std::nullopt;
      }
    }
    if (fds[0].revents) c.read_available();
  }
}

}  // namespace tobus
