// The parts of the module split out of its Worker, against a real redis-server: the suspect ledger
// (NS:suspect:NAME, docs/protocol.md) and the records a module keeps (module:NAME, job:ID, its
// instance's heartbeat). The Worker's use of them is covered by core_test.cpp and the e2e tests.

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "harness.hpp"
#include "tobus/core/report.hpp"
#include "tobus/module/records.hpp"
#include "tobus/module/suspects.hpp"
#include "tobus/state/state_record.hpp"

using namespace tobus;

namespace {

// A Reporter that keeps what it was told.
struct Told {
  std::vector<std::pair<Severity, std::string>> lines;
  Reporter reporter() {
    return Reporter([this](Severity s, std::string_view text) { lines.emplace_back(s, std::string(text)); });
  }
};

std::string hget(Connection& c, const std::string& key, const std::string& field) {
  Reply r = c.command({"HGET", key, field});
  return r.is_string() ? std::string(r.str()) : std::string("(nil)");
}

}  // namespace

TEST_CASE("the suspect ledger counts the instances that ended running an entry alone") {
  Keys keys = it::fresh_keys("suspects");
  Connection c = it::connect();
  Told told;
  Reporter report = told.reporter();
  SuspectLedger ours(keys, "m", "me", report);
  const std::string key = keys.suspects("m");

  CHECK(ours.lone_ends(c, "1-1") == 0);  // never recorded

  // Recorded by us: nobody ended yet. Recorded by another instance: it ended.
  ours.record(c, "1-1", "msg-1", 2, 0);
  CHECK(hget(c, key, "1-1") == "0 me");
  CHECK(ours.lone_ends(c, "1-1") == 0);
  SuspectLedger theirs(keys, "m", "other", report);
  CHECK(theirs.lone_ends(c, "1-1") == 1);
  CHECK_FALSE(SuspectLedger::exhausted(1));
  theirs.record(c, "1-1", "msg-1", 3, 1);
  CHECK(hget(c, key, "1-1") == "1 other");
  CHECK(ours.lone_ends(c, "1-1") == 2);
  CHECK(SuspectLedger::exhausted(2));
  CHECK(SuspectLedger::exhausted_reason(2) ==
        "tobus-module ended 2 times while running it alone (does its handler crash the module?)");
  REQUIRE(told.lines.size() == 2);
  CHECK(told.lines[0].first == Severity::info);
  CHECK(told.lines[0].second == "msg-1: delivered 2 times, run alone in case it is what ends the module");

  // A count past max_lone_ends is capped; a record not in its format is ignored.
  c.command({"HSET", key, "2-1", "99 other"});
  CHECK(ours.lone_ends(c, "2-1") == max_lone_ends + 1);
  for (const char* junk : {"x other", "1", "-1 other", "1x other"}) {
    c.command({"HSET", key, "3-1", junk});
    CHECK(ours.lone_ends(c, "3-1") == 0);
  }

  // Done with: deleted at the next flush, not before.
  ours.done_with("1-1");
  ours.done_with("2-1");
  CHECK(hget(c, key, "1-1") == "1 other");
  ours.flush(c);
  CHECK(hget(c, key, "1-1") == "(nil)");
  CHECK(hget(c, key, "2-1") == "(nil)");
  CHECK(hget(c, key, "3-1") != "(nil)");
  ours.flush(c);  // nothing left to delete: no command

  // A record Redis refuses is said, and the suspect runs anyway.
  c.command({"DEL", key});
  c.command({"SET", key, "not a hash"});
  told.lines.clear();
  ours.record(c, "4-1", "msg-4", 2, 0);
  REQUIRE(told.lines.size() == 2);
  CHECK(told.lines[0].first == Severity::warn);
  CHECK(told.lines[0].second.starts_with("msg-4: cannot record it as run alone in '" + key + "': WRONGTYPE"));
}

TEST_CASE("a module's records: heartbeat, counts in module:NAME, job:ID, detach") {
  Keys keys = it::fresh_keys("records");
  Connection c = it::connect();
  ModuleOptions options;
  options.name = "rec";
  options.jobs = 3;
  ModuleRecords records(keys, options, "rec-1");
  records.mark_started();
  records.count("a", 0, "");
  records.count("b", 0, "");
  records.count("c", 2, "");
  records.count("d", 1, "boom");
  records.count_retry();
  records.heartbeat(c, 2);

  const std::string module = state_key(keys, "module:rec");
  CHECK(hget(c, module, "status") == "running");
  CHECK(hget(c, module, "done") == "2");
  CHECK(hget(c, module, "failed") == "2");
  CHECK(hget(c, module, "retried") == "1");
  CHECK(hget(c, module, "last_failure") == "d: boom");
  std::string beat = hget(c, keys.instances("rec"), "rec-1");
  CHECK(beat.find("\"jobs\":3") != std::string::npos);
  CHECK(beat.find("\"started\":") != std::string::npos);
  CHECK(beat.find("\"running\":2}") != std::string::npos);

  // Counts are added, not set, at the next heartbeat.
  records.count("e", 0, "");
  records.heartbeat(c, 0);
  CHECK(hget(c, module, "done") == "3");
  CHECK(hget(c, module, "failed") == "2");

  records.job_queued(c, "j1", 2, 12345);
  const std::string job = state_key(keys, "job:j1");
  CHECK(hget(c, job, "status") == "queued");
  CHECK(hget(c, job, "attempt") == "2");
  CHECK(hget(c, job, "retry_at") == "12345");
  records.job_pid(c, "j1", 4242);
  CHECK(hget(c, job, "pid") == "4242");
  records.job_files(c, "j1", "[]");
  CHECK(hget(c, job, "files") == "[]");
  records.job_ended(c, "j1", 0, 2);
  CHECK(hget(c, job, "status") == "done");
  CHECK(hget(c, job, "rc") == "0");
  Reply ttl = c.command({"PTTL", job});
  CHECK(ttl.integer() > 0);

  // The last instance to leave says "stopped".
  records.detach(c);
  CHECK(hget(c, keys.instances("rec"), "rec-1") == "(nil)");
  CHECK(hget(c, module, "status") == "stopped");
}
