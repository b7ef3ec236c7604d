#include "tobus/state/state_record.hpp"

#include "tobus/core/error.hpp"
#include "tobus/util/text.hpp"

namespace tobus {
namespace {

// --- Lua scripts ---------------------------------------------------------------------------------

// Every state write first checks the types of the record and of the change stream, so a key
// written by hand is reported, not half-written (a script is not rolled back on an error).
constexpr std::string_view prelude = R"lua(
local function expect(key, want)
  local t = redis.call('TYPE', key)['ok']
  if t ~= want and t ~= 'none' then
    return redis.error_reply('WRONGTYPE ' .. key .. ' ' .. t .. ' ' .. want)
  end
end
local bad = expect(KEYS[1], 'hash') or expect(KEYS[2], 'stream')
if bad then return bad end
local event = {'XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'name', ARGV[1]}
)lua";

const Script& set_script() {
  static const Script s(std::string(prelude) + R"lua(
event[#event + 1] = 'op'; event[#event + 1] = 'set'
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  event[#event + 1] = 'field'; event[#event + 1] = ARGV[i]
  event[#event + 1] = 'value'; event[#event + 1] = ARGV[i + 1]
end
redis.call(unpack(event))
return 1
)lua");
  return s;
}

const Script& del_script() {
  static const Script s(std::string(prelude) + R"lua(
event[#event + 1] = 'op'; event[#event + 1] = 'del'
local n = 0
if #ARGV < 3 then
  n = redis.call('HLEN', KEYS[1])
  if n == 0 then return 0 end
  redis.call('DEL', KEYS[1])
else
  for i = 3, #ARGV do
    if redis.call('HDEL', KEYS[1], ARGV[i]) == 1 then
      n = n + 1
      event[#event + 1] = 'field'; event[#event + 1] = ARGV[i]
    end
  end
  if n == 0 then return 0 end
end
redis.call(unpack(event))
return n
)lua");
  return s;
}

// An absent field counts as empty: EXPECTED '' means "absent or empty".
const Script& cas_script() {
  static const Script s(std::string(prelude) + R"lua(
local found = redis.call('HGET', KEYS[1], ARGV[3])
if not found then found = '' end
if found ~= ARGV[4] then return {0, found} end
redis.call('HSET', KEYS[1], ARGV[3], ARGV[5])
event[#event + 1] = 'op'; event[#event + 1] = 'cas'
event[#event + 1] = 'field'; event[#event + 1] = ARGV[3]
event[#event + 1] = 'value'; event[#event + 1] = ARGV[5]
redis.call(unpack(event))
return {1, found}
)lua");
  return s;
}

// The new value is read back as a string: Lua numbers are doubles and would round big integers.
const Script& incr_script() {
  static const Script s(std::string(prelude) + R"lua(
local r = redis.pcall('HINCRBY', KEYS[1], ARGV[3], ARGV[4])
if type(r) == 'table' and r.err then return r end
local v = redis.call('HGET', KEYS[1], ARGV[3])
event[#event + 1] = 'op'; event[#event + 1] = 'incr'
event[#event + 1] = 'field'; event[#event + 1] = ARGV[3]
event[#event + 1] = 'value'; event[#event + 1] = v
event[#event + 1] = 'by'; event[#event + 1] = ARGV[4]
redis.call(unpack(event))
return v
)lua");
  return s;
}

std::string maxlen() { return std::to_string(state_changes_maxlen); }

}  // namespace

// --- names and keys ------------------------------------------------------------------------------

bool valid_state_name(std::string_view name) {
  if (name.empty() || name.size() > max_state_name) return false;
  for (char c : name)
    if (c <= ' ' || c > '~') return false;
  return true;
}

bool valid_state_field(std::string_view name) {
  if (name.empty() || name.size() > 200) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '.' || c == ':' || c == '@' || c == '/' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string state_key(const Keys& keys, std::string_view name) {
  return keys.ns() + ":state:" + std::string(name);
}
std::string state_changes_key(const Keys& keys) { return keys.ns() + ":state-changes"; }

[[noreturn]] void script_error(const ReplyView& r, const std::string& doing) {
  std::string_view e = r.str();
  if (e.starts_with("WRONGTYPE ")) {
    std::string words[3];
    std::size_t pos = 10;
    for (auto& w : words) {
      auto sp = e.find(' ', pos);
      w = std::string(e.substr(pos, sp == std::string_view::npos ? std::string_view::npos : sp - pos));
      pos = sp == std::string_view::npos ? e.size() : sp + 1;
    }
    throw Error(ErrorKind::bad_input,
                "cannot " + doing + ": '" + words[0] + "' holds a " + words[1] + ", not a " + words[2]);
  }
  throw_reply_error(r, doing);
}

// --- writes --------------------------------------------------------------------------------------

void state_set(Connection& c, const Keys& keys, std::string_view name, const Fields& fields) {
  std::string key = state_key(keys, name), changes = state_changes_key(keys), ml = maxlen();
  Args argv{name, ml};
  for (const auto& [f, v] : fields) {
    argv.push_back(f);
    argv.push_back(v);
  }
  Reply r = set_script().eval(c, {key, changes}, argv);
  if (r.is_error()) script_error(r, "set " + quote(name));
}

long long state_del(Connection& c, const Keys& keys, std::string_view name,
                    const std::vector<std::string>& fields) {
  std::string key = state_key(keys, name), changes = state_changes_key(keys), ml = maxlen();
  Args argv{name, ml};
  for (const auto& f : fields) argv.push_back(f);
  Reply r = del_script().eval(c, {key, changes}, argv);
  if (r.is_error()) script_error(r, "delete from " + quote(name));
  return r.integer();
}

bool state_cas(Connection& c, const Keys& keys, std::string_view name, std::string_view field,
               std::string_view expected, std::string_view desired, std::string* found) {
  std::string key = state_key(keys, name), changes = state_changes_key(keys), ml = maxlen();
  Reply r = cas_script().eval(c, {key, changes}, Args{name, ml, field, expected, desired});
  if (r.is_error()) script_error(r, "compare-and-set " + quote(name));
  if (found) *found = std::string(r[1].str());
  return r[0].integer() == 1;
}

long long state_incr(Connection& c, const Keys& keys, std::string_view name, std::string_view field,
                     long long by) {
  std::string key = state_key(keys, name), changes = state_changes_key(keys), ml = maxlen();
  std::string n = std::to_string(by);
  Reply r = incr_script().eval(c, {key, changes}, Args{name, ml, field, n});
  std::string doing = "increment " + quote(field) + " of " + quote(name);
  if (r.is_error()) {
    if (r.str().find("not an integer") != std::string_view::npos) {
      Reply v = c.command({"HGET", key, field});
      throw Error(ErrorKind::bad_input,
                  "cannot " + doing + ": its value " + quote(v.str()) + " is not an integer");
    }
    if (r.str().find("overflow") != std::string_view::npos)
      throw Error(ErrorKind::bad_input, "cannot " + doing + " by " + n + ": the result would overflow");
    script_error(r, doing);
  }
  long long v = 0;
  if (!to_int(r.str(), v)) throw Error(ErrorKind::failed, "cannot " + doing + ": unexpected reply");
  return v;
}

}  // namespace tobus
