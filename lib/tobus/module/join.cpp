#include "tobus/module/join.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <map>
#include <set>

#include "tobus/core/error.hpp"
#include "tobus/util/json.hpp"

namespace tobus {
namespace {

// Stores a part and acknowledges its inbox entry atomically: the part is durable before the
// entry is gone. KEYS: join hash, inbox. ARGV: group of the inbox, entry id, part name, packed
// part, expected parts, now, the group's name.
constexpr std::string_view add_lua = R"lua(
if redis.call('HEXISTS', KEYS[1], 'done') == 1 then
  -- A late duplicate of a part of a group already handled: dropped.
  redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
  return 0
end
if redis.call('HSETNX', KEYS[1], 'part:' .. ARGV[3], ARGV[4]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'count', 1)
end
redis.call('HSETNX', KEYS[1], 'n', ARGV[5])
redis.call('HSETNX', KEYS[1], 'created', ARGV[6])
redis.call('HSETNX', KEYS[1], 'group', ARGV[7])
redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
return 1
)lua";

// Hands the joined result on and forgets the group's parts in one step, leaving a marker so a
// late duplicate of a part does not start the group again. KEYS: bus, join hash, lock.
// ARGV: how long the marker lives (ms), then the result entry's fields.
constexpr std::string_view done_lua = R"lua(
local ttl = table.remove(ARGV, 1)
redis.call('XADD', KEYS[1], '*', unpack(ARGV))
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('HSET', KEYS[2], 'done', '1')
redis.call('PEXPIRE', KEYS[2], ttl)
return 1
)lua";

const Script& add_script() {
  static const Script s{std::string(add_lua)};
  return s;
}
const Script& done_script() {
  static const Script s{std::string(done_lua)};
  return s;
}

std::string padded(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%06d", i);
  return buf;
}

long long to_ll(std::string_view s) {
  long long v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

std::string combine(const std::vector<Message>& parts, JoinFormat format) {
  std::string out;
  if (format == JoinFormat::lines) {
    for (std::size_t i = 0; i < parts.size(); ++i) {
      if (i) out += '\n';
      out += parts[i].payload;
    }
    return out;
  }
  out = "[";
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i) out += ',';
    const std::string& p = parts[i].payload;
    out += is_utf8(p) ? json_string(p) : "{\"payload_base64\":\"" + base64_encode(p) + "\"}";
  }
  return out + "]";
}

}  // namespace

std::string pack_fields(const Fields& fields) {
  std::string out;
  for (const auto& [k, v] : fields) {
    out += std::to_string(k.size()) + ':' + k;
    out += std::to_string(v.size()) + ':' + v;
  }
  return out;
}

std::optional<Fields> unpack_fields(std::string_view packed) {
  Fields out;
  auto take = [&packed](std::string& into) {
    auto colon = packed.find(':');
    if (colon == std::string_view::npos || colon > 12) return false;
    std::size_t n = 0;
    auto [p, ec] = std::from_chars(packed.data(), packed.data() + colon, n);
    if (ec != std::errc() || p != packed.data() + colon || n > packed.size() - colon - 1) return false;
    into.assign(packed.substr(colon + 1, n));
    packed.remove_prefix(colon + 1 + n);
    return true;
  };
  while (!packed.empty()) {
    std::string k, v;
    if (!take(k) || !take(v)) return std::nullopt;
    out.emplace_back(std::move(k), std::move(v));
  }
  return out;
}

bool Joiner::joins(const Message& m) const {
  return options_.correlated > 0 ? !m.correlation.empty() : m.fan.has_value();
}

std::optional<ReadyGroup> Joiner::add(Connection& c, const std::string& inbox, const Entry& entry, const Message& m) {
  std::string group = options_.correlated > 0 ? "corr:" + m.correlation : m.fan->group;
  std::string part = options_.correlated > 0 ? m.id : padded(m.fan->index);
  int expected = options_.correlated > 0 ? options_.correlated : m.fan->n;
  std::string key = keys_.join(module_, group);
  Reply r = add_script().eval(c, {key, inbox},
                              {Keys::module_group, entry.id, part, pack_fields(entry.fields),
                               std::to_string(expected), std::to_string(now_ms()), group});
  if (r.is_error()) throw_reply_error(r, "store a part of group '" + group + "'");
  return evaluate(c, key);
}

std::optional<ReadyGroup> Joiner::evaluate(Connection& c, const std::string& key) {
  Reply all = c.command({"HGETALL", key});
  if (!all.is_array() || all.size() == 0) return std::nullopt;  // handled meanwhile
  std::map<std::string, std::string> parts;
  long long n = 0, count = 0, created = 0;
  std::string group;
  for (std::size_t i = 0; i + 1 < all.size(); i += 2) {
    std::string_view f = all[i].str();
    if (f.starts_with("part:")) parts.emplace(f.substr(5), all[i + 1].str());
    else if (f == "n") n = to_ll(all[i + 1].str());
    else if (f == "count") count = to_ll(all[i + 1].str());
    else if (f == "created") created = to_ll(all[i + 1].str());
    else if (f == "group") group = all[i + 1].str();
    else if (f == "done") return std::nullopt;  // handled already
  }
  if (n < 1 || parts.empty()) return std::nullopt;
  std::map<std::string, std::string> failed;
  if (!group.empty()) {
    Reply g = c.command({"HGETALL", keys_.group(group)});
    for (std::size_t i = 0; i + 1 < g.size(); i += 2)
      if (g[i].str().starts_with("failed:")) failed.emplace(g[i].str().substr(7), g[i + 1].str());
  }
  bool complete = count >= n;
  bool short_of_failed = !failed.empty() && count + static_cast<long long>(failed.size()) >= n;
  bool timed_out = now_ms() - created >= options_.timeout.count();
  if (!complete && !short_of_failed && !timed_out) return std::nullopt;

  ReadyGroup ready;
  ready.key = key;
  ready.lock = key + ":lock";
  Reply lock = c.command({"SET", ready.lock, owner_, "PX", std::to_string(lock_ttl_.count()), "NX"});
  if (lock.is_nil() || lock.is_error()) return std::nullopt;  // another instance has it

  std::vector<Message> messages;
  std::set<std::string> present;
  for (const auto& [name, packed] : parts) {
    auto fields = unpack_fields(packed);
    DecodeError error;
    auto m = fields ? decode(*fields, error) : std::nullopt;
    if (!m) continue;  // written by hand: ignored, counted as missing
    present.insert(name);
    messages.push_back(std::move(*m));
  }
  if (messages.empty()) {
    c.command({"DEL", key, ready.lock});
    return std::nullopt;
  }
  ready.parts = static_cast<int>(messages.size());
  ready.expected = static_cast<int>(n);
  if (options_.correlated == 0) {
    for (int i = 0; i < n; ++i)
      if (!present.contains(padded(i))) ready.missing.push_back(std::to_string(i));
  } else {
    for (const auto& [branch, why] : failed) ready.missing.push_back(branch);
  }
  Message joined = messages.front();
  joined.fan.reset();
  joined.correlation.clear();
  std::set<std::pair<std::string, std::string>> waiting{{joined.reply, joined.id}};
  for (const auto& m : messages) {
    for (const auto& pair : m.also) waiting.insert(pair);
    if (!m.reply.empty() && waiting.insert({m.reply, m.id}).second) joined.also.emplace_back(m.reply, m.id);
  }
  joined.payload = combine(messages, options_.format);
  bool partial = ready.parts < n;
  if (partial && options_.on_branch_fail == BranchFailPolicy::fail) {
    std::string why = timed_out && failed.empty()
                          ? "join timed out with " + std::to_string(ready.parts) + " of " + std::to_string(n) + " parts"
                          : "a branch failed (" + failed.begin()->first + ": " + failed.begin()->second + ")";
    joined.failure = Failure{module_, -1, 0, why, {}};
    joined.rc = -1;
  }
  ready.message = std::move(joined);
  return ready;
}

std::vector<ReadyGroup> Joiner::sweep(Connection& c) {
  std::vector<ReadyGroup> out;
  Reply r = c.command({"SCAN", sweep_cursor_, "MATCH", keys_.join(module_, "*"), "TYPE", "hash", "COUNT", "200"});
  if (!r.is_array() || r.size() < 2) return out;
  sweep_cursor_ = std::string(r[0].str());
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < r[1].size(); ++i) keys.emplace_back(r[1][i].str());
  for (const auto& key : keys)
    if (auto g = evaluate(c, key)) out.push_back(std::move(*g));
  return out;
}

void Joiner::refresh(Connection& c, const ReadyGroup& g) {
  c.command({"PEXPIRE", g.lock, std::to_string(lock_ttl_.count())});
}

void Joiner::finish(Connection& c, const ReadyGroup& g, const Message& result) {
  // Duplicates come from redeliveries, within minutes; a day covers them with room to spare.
  std::string ttl = std::to_string(std::max<long long>(options_.timeout.count() * 2, 24LL * 3600 * 1000));
  const std::string bus = keys_.bus();  // Args holds views: the strings must outlive it
  Args argv{ttl};
  Fields fields = encode(result);
  for (const auto& [k, v] : fields) {
    argv.push_back(k);
    argv.push_back(v);
  }
  Reply r = done_script().eval(c, {bus, g.key, g.lock}, argv);
  if (r.is_error()) throw_reply_error(r, "hand on the joined result");
}

std::vector<std::string> Joiner::env(const ReadyGroup& g) {
  std::string missing;
  for (const auto& m : g.missing) missing += (missing.empty() ? "" : ",") + m;
  return {"TOBUS_JOIN_PARTS=" + std::to_string(g.parts), "TOBUS_JOIN_EXPECTED=" + std::to_string(g.expected),
          "TOBUS_JOIN_MISSING=" + missing};
}

}  // namespace tobus
