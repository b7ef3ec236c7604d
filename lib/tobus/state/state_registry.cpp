// tobus-state's verbs on the module registry, type sets and job records: modules, types, jobs.

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <map>
#include <memory>
#include <set>

#include "tobus/core/error.hpp"
#include "tobus/core/registry.hpp"
#include "tobus/state/state_verbs.hpp"
#include "tobus/util/text.hpp"

namespace tobus {

ModuleInstance parse_instance(std::string id, std::string_view json) {
  ModuleInstance in;
  in.id = std::move(id);
  // parse_flat_object is rapidjson's strict parser: junk is rejected, never trusted.
  auto obj = json.size() <= 4096 ? parse_flat_object(json) : std::nullopt;
  if (!obj) return in;
  bool have_heartbeat = false;
  for (const auto& [k, v] : *obj) {
    if (k == "host") in.host = v;
    else if (k == "pid") to_int(v, in.pid);
    else if (k == "started") to_int(v, in.started);
    else if (k == "heartbeat") have_heartbeat = to_int(v, in.heartbeat);
    else if (k == "jobs") to_int(v, in.jobs);
    else if (std::int64_t n = 0; k == "running" && to_int(v, n) && n >= 0) in.running = n;
  }
  in.known = have_heartbeat;
  return in;
}

bool instance_live(const ModuleInstance& in, std::int64_t now) {
  return in.known && now - in.heartbeat < instance_live_ms;
}

namespace state_detail {

// --- modules: collecting (shared with doctor.cpp)

namespace {
// One row per module, sorted by name: those in the registry, and those with only an inbox.
std::vector<ModuleRow> module_rows(Connection& c, const Keys& keys) {
  Reply reg = c.command({"HGETALL", keys.modules()});
  if (reg.is_error()) read_error(c, reg, keys.modules(), "hash", "read the module registry");
  std::map<std::string, ModuleRow> rows;
  for (std::size_t i = 0; i + 1 < reg.size(); i += 2) {
    ModuleRow& row = rows[std::string(reg[i].str())];
    row.name = std::string(reg[i].str());
    row.registered = true;
    RegistryRecord rec;
    if (parse_registry_json(std::string(reg[i + 1].str()), rec)) row.registry = rec;
  }
  // Inboxes of modules that never attached (a route naming a module nobody runs) show too.
  const std::string inbox_prefix = keys.inbox("");
  for (const auto& key : scan_keys(c, inbox_prefix + "*", "stream")) {
    std::string name = key.substr(inbox_prefix.size());
    if (!rows.count(name)) rows[name].name = name;
  }
  std::vector<ModuleRow> order;
  for (auto& [name, row] : rows) order.push_back(std::move(row));
  return order;
}
}  // namespace

std::vector<ModuleRow> read_modules(Connection& c, const Keys& keys) {
  std::vector<ModuleRow> rows = module_rows(c, keys);
  // Each row's live instances, inbox length and pending count, pipelined in batches.
  for (std::size_t start = 0; start < rows.size(); start += read_batch) {
    std::size_t end = std::min(rows.size(), start + read_batch);
    for (std::size_t i = start; i < end; ++i) {
      const std::string& n = rows[i].name;
      c.append({"HGETALL", keys.instances(n)});
      c.append({"XLEN", keys.inbox(n)});
      c.append({"XPENDING", keys.inbox(n), Keys::module_group});
    }
    for (std::size_t i = start; i < end; ++i) {
      ModuleRow& row = rows[i];
      Reply inst = c.read_reply(), len = c.read_reply(), pend = c.read_reply();
      if (!inst.is_error()) {
        row.instances.emplace();
        for (std::size_t k = 0; k + 1 < inst.size(); k += 2)
          row.instances->push_back(parse_instance(std::string(inst[k].str()), inst[k + 1].str()));
      }
      if (len.is_integer()) row.inbox = len.integer();
      if (pend.is_array() && pend.size() > 0) row.pending = pend[0].integer();
      else if (pend.is_error() && pend.str().starts_with("NOGROUP")) row.pending = 0;
    }
  }
  return rows;
}

ModuleStatus module_status(const ModuleRow& row, std::int64_t now) {
  ModuleStatus st;
  st.seen = row.registry ? row.registry->last_seen : 0;
  if (row.instances)
    for (const auto& in : *row.instances) {
      if (instance_live(in, now)) ++st.live;
      if (in.known) st.seen = std::max(st.seen, in.heartbeat);
    }
  st.seen_known = st.seen > 0 || !row.registered || row.registry;
  return st;
}

namespace {

using Clock = std::chrono::steady_clock;

class Registry : Verbs {
 public:
  using Verbs::Verbs;

  int run() {
    switch (o_.verb) {
      case StateVerb::modules: return modules();
      case StateVerb::types: return types();
      case StateVerb::jobs: return jobs();
      default: return exit_code::usage;
    }
  }

 private:
  // --- modules and jobs

  static std::string age(std::int64_t ms) { return ms <= 0 ? "never" : age_text(now_ms() - ms); }

  static std::string table(const std::vector<std::vector<std::string>>& rows) {
    std::string out;
    for (const auto& line : table_lines(rows)) out += line + "\n";
    return out;
  }

  // The reply to one command by `deadline`, or Error(timeout): the --names lookups serve shell
  // completions, which must never hang.
  std::unique_ptr<Reply> reply_by(Connection& c, const Args& args, Clock::time_point deadline) {
    c.append(args);
    c.flush();
    std::unique_ptr<Reply> r;
    while (!c.take_reply(r)) {
      auto left = std::chrono::ceil<Millis>(deadline - Clock::now()).count();
      if (left <= 0)
        throw Error(ErrorKind::timeout,
                    "no answer from Redis at '" + address_.display() + "' within 1s");
      pollfd p{c.fd(), POLLIN, 0};
      int n = poll(&p, 1, static_cast<int>(left));
      if (n < 0 && errno != EINTR) throw RedisError("poll failed");
      if (n > 0) c.read_available();
    }
    return r;
  }

  // Module names for completions: the registry only, bounded to a second, never a hang.
  int module_names() {
    Connection c = Connection::open(address_, std::chrono::seconds(1));
    auto r = reply_by(c, {"HKEYS", keys_.modules()}, Clock::now() + std::chrono::seconds(1));
    if (r->is_error()) read_error(c, *r, keys_.modules(), "hash", "read the module registry");
    std::vector<std::string> names;
    for (std::size_t i = 0; i < r->size(); ++i) names.emplace_back((*r)[i].str());
    std::sort(names.begin(), names.end());
    std::string text;
    for (const auto& n : names) text += escape_text(n) + "\n";
    out(text);
    return exit_code::ok;
  }

  int modules() {
    if (o_.names_only) return module_names();
    Connection c = connect();
    std::vector<ModuleRow> rows = read_modules(c, keys_);
    std::int64_t now = now_ms();
    out(o_.json ? modules_json(rows, now) : modules_table(rows, now));
    return exit_code::ok;
  }

  // --- modules: rendering

  // One JSON object per line.
  std::string modules_json(const std::vector<ModuleRow>& rows, std::int64_t now) {
    std::string text;
    for (const ModuleRow& row : rows) {
      ModuleStatus st = module_status(row, now);
      JsonObject j;
      j.add("name", row.name).add("status", st.live > 0 ? "up" : "down").add("registered", row.registered);
      std::optional<std::int64_t> first;
      if (row.registry) first = row.registry->first_seen;
      add_opt(j, "first_seen", first);
      add_opt(j, "last_seen", st.seen > 0 ? std::optional<std::int64_t>(st.seen) : std::nullopt);
      j.add("live", st.live);
      if (row.instances) {
        std::string arr = "[";
        for (const auto& in : *row.instances) {
          if (arr.size() > 1) arr += ",";
          JsonObject i;
          i.add("id", in.id).add("live", instance_live(in, now)).add("known", in.known);
          if (in.known)
            i.add("host", in.host).add("pid", in.pid).add("started", in.started)
                .add("heartbeat", in.heartbeat).add("jobs", in.jobs);
          arr += i.str();
        }
        j.add_raw("instances", arr + "]");
      } else {
        j.add_raw("instances", "null");
      }
      add_opt(j, "inbox", row.inbox);
      add_opt(j, "pending", row.pending);
      text += j.str() + "\n";
    }
    return text;
  }

  std::string modules_table(const std::vector<ModuleRow>& rows, std::int64_t now) {
    auto num = [](const std::optional<std::int64_t>& v) { return v ? std::to_string(*v) : "unknown"; };
    std::vector<std::vector<std::string>> table_rows{
        {"MODULE", "STATUS", "INSTANCES", "INBOX", "PENDING", "LAST_SEEN"}};
    for (const ModuleRow& row : rows) {
      ModuleStatus st = module_status(row, now);
      table_rows.push_back({escape_text(row.name), st.live > 0 ? "up" : "down",
                            row.instances ? std::to_string(st.live) : "unknown", num(row.inbox),
                            num(row.pending), st.seen_known ? age(st.seen) : "unknown"});
    }
    return table(table_rows);
  }

  // The types modules joined: the sets NS:type:TYPE, whose members are the modules.
  int types() {
    const std::string prefix = keys_.type("");
    std::set<std::string> found;
    std::string cursor = "0";
    if (o_.names_only) {
      // For completions: bounded to a second in all, however many keys there are.
      auto deadline = Clock::now() + std::chrono::seconds(1);
      Connection c = Connection::open(address_, std::chrono::seconds(1));
      do {
        auto r = reply_by(c, {"SCAN", cursor, "MATCH", prefix + "*", "COUNT", "1000", "TYPE", "set"}, deadline);
        if (r->is_error()) throw_reply_error(*r, "list keys");
        cursor = std::string((*r)[0].str());
        for (std::size_t i = 0; i < (*r)[1].size(); ++i) found.emplace((*r)[1][i].str());
      } while (cursor != "0");
      std::string text;
      for (const auto& key : found) text += escape_text(key.substr(prefix.size())) + "\n";
      out(text);
      return exit_code::ok;
    }
    Connection c = connect();
    found = scan_keys(c, prefix + "*", "set");
    std::vector<std::string> names(found.begin(), found.end());
    std::vector<std::vector<std::string>> members(names.size());
    for (std::size_t start = 0; start < names.size(); start += read_batch) {
      std::size_t end = std::min(names.size(), start + read_batch);
      for (std::size_t i = start; i < end; ++i) c.append({"SMEMBERS", names[i]});
      for (std::size_t i = start; i < end; ++i) {
        Reply r = c.read_reply();
        if (r.is_error()) continue;  // changed type since the scan
        for (std::size_t k = 0; k < r.size(); ++k) members[i].emplace_back(r[k].str());
        std::sort(members[i].begin(), members[i].end());
      }
    }
    std::vector<std::vector<std::string>> rows{{"TYPE", "MODULES"}};
    std::string text;
    for (std::size_t i = 0; i < names.size(); ++i) {
      std::string type = names[i].substr(prefix.size());
      if (members[i].empty()) continue;  // emptied since the scan
      if (o_.json) {
        JsonObject j;
        j.add("type", type).add("modules", members[i]);
        text += j.str() + "\n";
      } else {
        std::string list;
        for (const auto& m : members[i]) list += (list.empty() ? "" : ",") + escape_text(m);
        rows.push_back({escape_text(type), list});
      }
    }
    out(o_.json ? text : table(rows));
    return exit_code::ok;
  }

  int jobs() {
    Connection c = connect();
    StateList l = state_list(c, keys_, "job:*");
    for (const auto& s : l.skipped) o_.report.warn("ignoring {}", s);
    struct Job {
      std::string id;
      std::map<std::string, std::string> f;
      std::int64_t when = 0;
    };
    std::vector<Job> jobs;
    for (std::size_t start = 0; start < l.names.size(); start += read_batch) {
      std::size_t end = std::min(l.names.size(), start + read_batch);
      std::vector<std::string> keys;
      for (std::size_t i = start; i < end; ++i) keys.push_back(state_key(keys_, l.names[i]));
      for (const auto& k : keys) c.append({"HGETALL", k});
      for (std::size_t i = start; i < end; ++i) {
        Reply r = c.read_reply();
        if (r.is_error() || r.size() == 0) continue;  // changed type or gone since the scan
        Job j;
        j.id = l.names[i].substr(4);
        for (std::size_t k = 0; k + 1 < r.size(); k += 2)
          j.f[std::string(r[k].str())] = std::string(r[k + 1].str());
        if (!o_.module.empty() && j.f["module"] != o_.module) continue;
        j.when = int_of(j.f["started"]).value_or(int_of(j.f["finished"]).value_or(0));
        jobs.push_back(std::move(j));
      }
    }
    std::sort(jobs.begin(), jobs.end(), [](const Job& a, const Job& b) {
      return a.when != b.when ? a.when > b.when : a.id < b.id;
    });
    static const char* numeric[] = {"attempt", "rc", "started", "finished"};
    std::vector<std::vector<std::string>> rows{
        {"JOB", "STATUS", "MODULE", "ATTEMPT", "RC", "STARTED", "FINISHED", "HOST", "PID"}};
    std::string text;
    for (auto& j : jobs) {
      if (o_.json) {
        JsonObject o;
        o.add("job", j.id);
        for (const char* k : {"status", "module"}) add_opt(o, k, j.f[k]);
        for (const char* k : numeric) {
          const std::string& v = j.f[k];
          if (auto n = int_of(v)) o.add(k, *n);
          else add_opt(o, k, v);  // malformed: the text as it is
        }
        add_opt(o, "host", j.f["host"]);
        if (auto n = int_of(j.f["pid"])) o.add("pid", *n);
        else add_opt(o, "pid", j.f["pid"]);
        text += o.str() + "\n";
      } else {
        auto cell = [&](const char* k) { return j.f[k].empty() ? std::string("-") : escape_text(j.f[k]); };
        auto time = [&](const char* k) {
          auto n = int_of(j.f[k]);
          return n ? format_time_utc(*n) : cell(k);
        };
        rows.push_back({escape_text(j.id), cell("status"), cell("module"), cell("attempt"), cell("rc"),
                        time("started"), time("finished"), cell("host"), cell("pid")});
      }
    }
    out(o_.json ? text : table(rows));
    return exit_code::ok;
  }
};

}  // namespace

int run_registry_verb(const RedisAddress& address, const Keys& keys, const StateOptions& o, int out) {
  return Registry(address, keys, o, out).run();
}

}  // namespace state_detail
}  // namespace tobus
