// CoProcess against real processes (cat, sed -u, the example framed handlers, handlers that die,
// misbehave or are edited on disk), driven by a small poll() loop like the module's.
#include "tobus/process/coprocess.hpp"

#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tobus/bus/hooks.hpp"
#include "tobus/core/error.hpp"
#include "tobus/process/runner.hpp"

extern char** environ;

namespace {

// "m" + std::to_string(i), built by appending: the concatenation trips GCC 12's false
// -Wrestrict at -O3 (a release build).
std::string numbered(char prefix, std::uint64_t i) {
  std::string s(1, prefix);
  s += std::to_string(i);
  return s;
}

using tobus::CoProcess;
using tobus::CoProcessOptions;
using tobus::CoResult;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

const std::string source_dir = TOBUS_SOURCE_DIR;

std::vector<std::string> this_env() {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) env.emplace_back(*e);
  return env;
}

CoProcessOptions options(std::vector<std::string> argv,
                         CoProcessOptions::Mode mode = CoProcessOptions::Mode::lines) {
  CoProcessOptions o;
  std::string path = tobus::find_program(argv.at(0));
  REQUIRE_MESSAGE(!path.empty(), argv[0] << " not found");
  argv[0] = path;
  o.argv = std::move(argv);
  o.env = this_env();
  o.mode = mode;
  return o;
}

// One turn of a caller's loop: poll what the co-process wants, pump it, tick it.
void turn(CoProcess& co, milliseconds most = milliseconds(50)) {
  std::vector<pollfd> fds;
  co.add_pollfds(fds);
  auto now = Clock::now();
  auto wait = std::min<long long>(
      most.count(),
      std::max<long long>(
          0, std::chrono::duration_cast<milliseconds>(co.wake_at() - now).count() + 1));
  int n = poll(fds.data(), fds.size(), static_cast<int>(wait));
  if (n > 0) co.handle(fds, 0);
  if (Clock::now() >= co.wake_at()) co.tick();
}

bool run_until(CoProcess& co, const std::function<bool()>& done,
               milliseconds limit = milliseconds(20'000)) {
  auto deadline = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    turn(co);
  }
  return true;
}

// Streams `payloads` through `co`, keeping it as busy as it allows and resubmitting what comes
// back as a retry. `pace` (messages per millisecond, 0: as fast as it goes) spreads them out: a
// paced stream takes at least payloads/pace ms however slow the machine is, since time lost to a
// busy machine is not made up in a burst (at most 32 messages of credit). `each` sees every final
// result in the order they came. Returns the final result of each tag.
struct Stream {
  std::map<std::uint64_t, CoResult> final;
  std::vector<std::uint64_t> order;
  int retries = 0;
};

Stream stream(CoProcess& co, const std::vector<std::string>& payloads, double pace = 0,
              const std::function<void(const CoResult&)>& each = {},
              milliseconds limit = milliseconds(60'000)) {
  Stream s;
  std::vector<std::uint64_t> todo;
  for (std::size_t i = payloads.size(); i-- > 0;) todo.push_back(i);
  auto last = Clock::now();
  auto deadline = last + limit;
  double credit = 1;
  while (s.final.size() < payloads.size() && Clock::now() < deadline) {
    auto now = Clock::now();
    credit = std::min(32.0, credit + std::chrono::duration<double, std::milli>(now - last).count() * pace);
    last = now;
    while (!todo.empty() && co.can_submit()) {
      if (pace > 0 && credit < 1) break;
      std::uint64_t tag = todo.back();
      todo.pop_back();
      co.submit(tag, payloads[tag]);
      credit -= 1;
    }
    turn(co, milliseconds(pace > 0 ? 1 : 50));
    for (auto& r : co.take_results()) {
      if (r.rc == 75) {
        ++s.retries;
        todo.push_back(r.tag);
        continue;
      }
      if (each) each(r);
      s.order.push_back(r.tag);
      s.final[r.tag] = std::move(r);
    }
  }
  return s;
}

std::vector<std::string> numbered(std::size_t n, const std::string& prefix = "message ") {
  std::vector<std::string> v;
  for (std::size_t i = 0; i < n; ++i) v.push_back(prefix + std::to_string(i));
  return v;
}

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "tobus-coprocess.XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

void write_file(const std::string& path, const std::string& text, bool executable = false) {
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << text;
  }
  if (executable) std::filesystem::permissions(path, std::filesystem::perms::owner_all);
}

bool has_python() { return !tobus::find_program("python3").empty(); }

}  // namespace

TEST_CASE("lines: cat answers every message, in order, with many in flight") {
  auto o = options({"cat"});
  o.max_in_flight = 256;
  CoProcess co(o);
  auto payloads = numbered(20000);
  payloads[5] = "";  // an empty line is a message too
  auto s = stream(co, payloads);
  REQUIRE(s.final.size() == payloads.size());
  CHECK(s.retries == 0);
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    CHECK(s.final[i].rc == 0);
    CHECK(s.final[i].payload == payloads[i]);
  }
  for (std::size_t i = 0; i < s.order.size(); ++i) REQUIRE(s.order[i] == i);  // FIFO
  CHECK(co.starts() == 1);
  co.stop();
  CHECK(co.pid() == -1);
}

TEST_CASE("lines: sed -u transforms each line") {
  CoProcess co(options({"sed", "-u", "s/a/A/g"}));
  auto s = stream(co, {"banana", "cherry", "a b a"});
  REQUIRE(s.final.size() == 3);
  CHECK(s.final[0].payload == "bAnAnA");
  CHECK(s.final[1].payload == "cherry");
  CHECK(s.final[2].payload == "A b A");
}

TEST_CASE("lines: a payload with a newline fails at once and does not corrupt the stream") {
  CoProcess co(options({"cat"}));
  co.submit(1, "one");
  co.submit(2, "two\nlines");
  co.submit(3, "three");
  std::map<std::uint64_t, CoResult> got;
  REQUIRE(run_until(co, [&] {
    for (auto& r : co.take_results()) got[r.tag] = r;
    return got.size() == 3;
  }));
  CHECK(got[1].payload == "one");
  CHECK(got[2].rc == 65);
  CHECK(got[2].error.find("newline") != std::string::npos);
  CHECK(got[3].payload == "three");
}

TEST_CASE("lines: a large answer arrives whole") {
  CoProcess co(options({"cat"}));
  std::string big(3 << 20, 'x');
  auto s = stream(co, {big, "after"});
  REQUIRE(s.final.size() == 2);
  CHECK(s.final[0].payload == big);
  CHECK(s.final[1].payload == "after");
}

TEST_CASE("framed: the example shell handler, binary payloads and a failure") {
  auto o = options({source_dir + "/examples/handlers/upper.sh"}, CoProcessOptions::Mode::framed);
  CoProcess co(o);
  std::string binary("a\0b\nc\r\n\xff\xfe", 9);
  std::vector<std::string> payloads{"hello", "", binary, "fail:not today\n", "two\nlines\n"};
  auto s = stream(co, payloads);
  REQUIRE(s.final.size() == payloads.size());
  CHECK(s.final[0].payload == "HELLO");
  CHECK(s.final[1].rc == 0);
  CHECK(s.final[1].payload.empty());
  CHECK(s.final[2].payload == std::string("A\0B\nC\r\n\xff\xfe", 9));
  CHECK(s.final[3].rc == 1);
  CHECK(s.final[3].error == "not today");
  CHECK(s.final[4].payload == "TWO\nLINES\n");
  CHECK(co.starts() == 1);
}

TEST_CASE("framed: the example Python handler, many messages in flight") {
  if (!has_python()) return;
  auto o = options({"python3", source_dir + "/examples/handlers/upper.py"},
                   CoProcessOptions::Mode::framed);
  o.max_in_flight = 128;
  CoProcess co(o);
  std::vector<std::string> payloads;
  for (int i = 0; i < 2000; ++i) payloads.push_back(std::string("p\n\0", 3) + std::to_string(i));
  payloads.push_back("fail:because");
  payloads.push_back(std::string(1 << 20, 'z'));
  auto s = stream(co, payloads);
  REQUIRE(s.final.size() == payloads.size());
  for (int i = 0; i < 2000; ++i)
    REQUIRE(s.final[i].payload == std::string("P\n\0", 3) + std::to_string(i));
  CHECK(s.final[2000].rc == 1);
  CHECK(s.final[2000].error == "because");
  CHECK(s.final[2001].payload == std::string(1 << 20, 'Z'));
  for (std::size_t i = 0; i < s.order.size(); ++i) REQUIRE(s.order[i] == i);
}

TEST_CASE("a handler that dies every N messages: restarted, what it held retried, nothing lost") {
  // Answers 7 lines, then exits 3; what was written to it beyond them is lost with it.
  CoProcess co(options({"sh", "-c",
                        "n=0; while IFS= read -r l; do printf '%s!\\n' \"$l\"; n=$((n+1)); "
                        "[ $n -ge 7 ] && exit 3; done"}));
  auto payloads = numbered(60);
  auto s = stream(co, payloads);
  REQUIRE(s.final.size() == payloads.size());
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    CHECK(s.final[i].rc == 0);
    CHECK(s.final[i].payload == payloads[i] + "!");
  }
  CHECK(co.starts() >= 60 / 7);
  CHECK(s.retries > 0);
}

TEST_CASE("death: held messages come back as retries with the reason and the stderr tail") {
  CoProcess co(options({"sh", "-c", "read -r l; echo 'it hurts' >&2; exit 9"}));
  co.submit(1, "a");
  co.submit(2, "b");
  std::map<std::uint64_t, CoResult> got;
  REQUIRE(run_until(co, [&] {
    for (auto& r : co.take_results()) got[r.tag] = r;
    return got.size() == 2;
  }));
  for (auto tag : {1, 2}) {
    CHECK(got[tag].rc == 75);
    CHECK(got[tag].error.find("died (exited with 9)") != std::string::npos);
    CHECK(got[tag].stderr_tail.find("it hurts") != std::string::npos);
  }
}

TEST_CASE("death: restarts back off from 100ms, doubling") {
  CoProcess co(options({"sh", "-c", "exit 1"}));
  auto start = Clock::now();
  run_until(
      co, [] { return false; }, milliseconds(1600));
  // Started at 0, then after 100, 200, 400, 800ms: 5 by 1.5s; never a tight loop.
  CHECK(co.starts() >= 3);
  CHECK(co.starts() <= 6);
  CHECK(Clock::now() - start >= milliseconds(1600));
}

TEST_CASE("a co-process that closes stdout but stays alive is treated as dead") {
  CoProcess co(options({"sh", "-c", "exec >&-; exec sleep 100"}));
  pid_t first = co.pid();
  co.submit(1, "x");
  std::vector<CoResult> got;
  REQUIRE(run_until(
      co,
      [&] {
        for (auto& r : co.take_results()) got.push_back(r);
        return !got.empty();
      },
      milliseconds(3000)));
  CHECK(got[0].rc == 75);
  CHECK(got[0].error.find("closed its stdout") != std::string::npos);
  // Its process group was killed.
  REQUIRE(run_until(
      co, [&] { return kill(first, 0) != 0; }, milliseconds(3000)));
}

TEST_CASE("framed: a malformed answer header kills and restarts it; held messages are retried") {
  TempDir dir;
  std::string marker = dir.file("marker");
  // The first process started answers junk; those after it are the example handler.
  auto o = options(
      {"sh", "-c",
       "if [ ! -e \"$1\" ]; then : >\"$1\"; read -r len; echo 'not a header'; exec sleep 100; fi; "
       "exec \"$2\"",
       "sh", marker, source_dir + "/examples/handlers/upper.sh"},
      CoProcessOptions::Mode::framed);
  CoProcess co(o);
  auto s = stream(co, {"one", "two", "three"});
  REQUIRE(s.final.size() == 3);
  CHECK(s.final[0].payload == "ONE");
  CHECK(s.final[2].payload == "THREE");
  CHECK(s.retries >= 1);
  CHECK(co.starts() == 2);
}

TEST_CASE("framed: an answer with nothing asked is malformed output") {
  auto o = options({"sh", "-c", "printf '0 3\\nabc'; exec cat >/dev/null"},
                   CoProcessOptions::Mode::framed);
  CoProcess co(o);
  REQUIRE(run_until(
      co, [&] { return co.starts() >= 2; }, milliseconds(3000)));
}

TEST_CASE("reload(): drains, then restarts; nothing is failed or retried") {
  auto o = options({"cat"});
  o.max_in_flight = 1000;
  CoProcess co(o);
  pid_t first = co.pid();
  for (std::uint64_t i = 0; i < 500; ++i) co.submit(i, numbered('m', i));
  co.reload();
  CHECK_FALSE(co.can_submit());
  co.submit(1000, "after");  // held for the new process
  std::map<std::uint64_t, CoResult> got;
  REQUIRE(run_until(co, [&] {
    for (auto& r : co.take_results()) got[r.tag] = r;
    return got.size() == 501;
  }));
  for (auto& [tag, r] : got) CHECK(r.rc == 0);
  CHECK(got[1000].payload == "after");
  CHECK(co.starts() == 2);
  CHECK(co.pid() != first);
  CHECK(co.can_submit());
}

TEST_CASE("reload(): what is not answered within the grace comes back as a retry") {
  auto o =
      options({"sh", "-c",
               "while IFS= read -r l; do [ \"$l\" = hang ] && exec sleep 100; echo \"$l\"; done"});
  o.drain_grace = milliseconds(300);
  CoProcess co(o);
  co.submit(1, "a");
  co.submit(2, "hang");
  co.submit(3, "b");
  REQUIRE(run_until(co, [&] { return co.in_flight() == 2; }));
  co.reload();
  std::map<std::uint64_t, CoResult> got;
  auto start = Clock::now();
  REQUIRE(run_until(
      co,
      [&] {
        for (auto& r : co.take_results()) got[r.tag] = r;
        return got.size() == 3;
      },
      milliseconds(3000)));
  CHECK(Clock::now() - start >= milliseconds(250));
  CHECK(got[1].payload == "a");
  CHECK(got[2].rc == 75);
  CHECK(got[3].rc == 75);
  CHECK(got[2].error.find("reloaded before it answered") != std::string::npos);
  co.submit(4, "c");
  REQUIRE(run_until(co, [&] {
    for (auto& r : co.take_results()) got[r.tag] = r;
    return got.count(4) == 1;
  }));
  CHECK(got[4].payload == "c");
  CHECK(co.starts() == 2);
}

TEST_CASE(
    "hot reload: a script edited on disk under load; old answers before, new after, none lost") {
  if (!has_python()) return;
  TempDir dir;
  std::string script = dir.file("handler.py");
  auto version = [](const std::string& v) {
    return "import sys\nfor line in sys.stdin:\n    sys.stdout.write('" + v +
           ":' + line)\n    sys.stdout.flush()\n";
  };
  write_file(script, version("v1"));
  auto o = options({"python3", script});
  o.max_in_flight = 32;
  CoProcess co(o);
  auto payloads = numbered(6000);
  bool edited = false;
  std::size_t answered = 0;
  std::vector<std::string> versions;
  auto s = stream(co, payloads, 2.0, [&](const CoResult& r) {
    versions.push_back(r.payload.substr(0, 2));
    if (++answered == 1000 && !edited) {
      edited = true;
      write_file(script, version("v2"));  // in place: truncated, then written
    }
  });
  REQUIRE(s.final.size() == payloads.size());
  CHECK(s.retries == 0);
  for (auto& [tag, r] : s.final) {
    REQUIRE(r.rc == 0);
    REQUIRE(r.payload.substr(3) == payloads[tag]);
  }
  auto first_v2 = std::find(versions.begin(), versions.end(), "v2");
  REQUIRE(first_v2 != versions.end());
  CHECK(first_v2 - versions.begin() >= 1000);
  CHECK(std::count(first_v2, versions.end(), "v1") == 0);
  CHECK(co.starts() == 2);
}

TEST_CASE("hot reload: a --reload-on path that changes") {
  TempDir dir;
  std::string config = dir.file("config");
  write_file(config, "one");
  auto o = options(
      {"sh", "-c", "c=$(cat \"$1\"); while IFS= read -r l; do echo \"$c:$l\"; done", "sh", config});
  CHECK(o.reload_on.empty());
  o.reload_on.push_back(config);
  CoProcess co(o);
  auto s = stream(co, {"a"});
  CHECK(s.final[0].payload == "one:a");
  std::this_thread::sleep_for(milliseconds(20));
  write_file(config, "two");
  REQUIRE(run_until(
      co, [&] { return co.starts() == 2; }, milliseconds(5000)));
  s = stream(co, {"b"});
  CHECK(s.final[0].payload == "two:b");
}

TEST_CASE("stop(): closes stdin, collects the answers, then the process is gone") {
  CoProcess co(options({"cat"}));
  pid_t pid = co.pid();
  for (std::uint64_t i = 0; i < 100; ++i) co.submit(i, "m");
  std::vector<pollfd> fds;
  co.add_pollfds(fds);  // writes them
  co.stop();
  auto got = co.take_results();
  CHECK(got.size() == 100);
  for (auto& r : got) CHECK(r.rc == 0);
  CHECK(kill(pid, 0) != 0);
  co.submit(200, "late");
  got = co.take_results();
  REQUIRE(got.size() == 1);
  CHECK(got[0].rc == 75);
}

TEST_CASE("observer mode: a message is done once written; output is discarded") {
  TempDir dir;
  std::string log = dir.file("log");
  auto o = options(
      {"sh", "-c", "while IFS= read -r l; do echo \"$l\" >>\"$1\"; echo noise; done", "sh", log});
  o.answers = false;
  CoProcess co(o);
  for (std::uint64_t i = 0; i < 50; ++i) co.submit(i, numbered('e', i));
  REQUIRE(run_until(co, [&] {
    std::ifstream f(log);
    std::string line;
    int n = 0;
    while (std::getline(f, line)) ++n;
    return n == 50 && co.in_flight() == 0;
  }));
  CHECK(co.take_results().empty());
}

TEST_CASE("a program that cannot be started throws") {
  CoProcessOptions o;
  o.argv = {"/nonexistent/handler"};
  CHECK_THROWS_AS(CoProcess{o}, tobus::Error);
}

TEST_CASE("restart(): kills a hung process now and starts a new one") {
  CoProcess co(options({"sh", "-c", "exec sleep 100"}));
  co.submit(1, "x");
  co.restart("gave no answer");
  auto got = co.take_results();
  REQUIRE(got.size() == 1);
  CHECK(got[0].rc == 75);
  CHECK(got[0].error.find("gave no answer") != std::string::npos);
  CHECK(co.starts() == 2);
  CHECK(co.running());
}

TEST_CASE("throughput: cat through a co-process beats a process per message tenfold") {
  auto o = options({"cat"});
  o.max_in_flight = 256;
  CoProcess co(o);
  auto payloads = numbered(50000);
  auto start = Clock::now();
  auto s = stream(co, payloads);
  double co_rate = static_cast<double>(s.final.size()) /
                   std::chrono::duration<double>(Clock::now() - start).count();
  REQUIRE(s.final.size() == payloads.size());
  // The one-process-per-message rate: cat spawned for each of 200 messages.
  start = Clock::now();
  for (int i = 0; i < 200; ++i) {
    tobus::Process p({tobus::find_program("cat")}, this_env(), "m");
    while (!p.reap()) {
      std::vector<pollfd> fds;
      if (p.stdin_fd() >= 0) fds.push_back({p.stdin_fd(), POLLOUT, 0});
      if (p.stdout_fd() >= 0) fds.push_back({p.stdout_fd(), POLLIN, 0});
      if (p.stderr_fd() >= 0) fds.push_back({p.stderr_fd(), POLLIN, 0});
      poll(fds.data(), fds.size(), fds.empty() ? 0 : 10);
      p.pump_stdin();
      if (p.stdout_fd() >= 0) p.pump_output(p.stdout_fd(), [](std::string_view) {});
      if (p.stderr_fd() >= 0) p.pump_output(p.stderr_fd(), [](std::string_view) {});
    }
  }
  double spawn_rate = 200 / std::chrono::duration<double>(Clock::now() - start).count();
  MESSAGE("co-process: " << static_cast<long>(co_rate)
                         << "/s, a process per message: " << static_cast<long>(spawn_rate) << "/s");
  CHECK(co_rate >= 10 * spawn_rate);
}

TEST_CASE("hook answers") {
  std::string error;
  auto v = tobus::parse_hook_answer(R"({"action":"pass"})", error);
  REQUIRE(v);
  CHECK(v->action == tobus::HookVerdict::Action::pass);
  v = tobus::parse_hook_answer(R"({"action":"drop","reason":"spam"})", error);
  REQUIRE(v);
  CHECK(v->action == tobus::HookVerdict::Action::drop);
  CHECK(v->reason == "spam");
  v = tobus::parse_hook_answer(R"({"action":"reroute","route":["a","b.c"]})", error);
  REQUIRE(v);
  CHECK(v->route == std::vector<std::string>{"a", "b.c"});
  v = tobus::parse_hook_answer(R"({"action":"reroute","route":"x,y"})", error);
  REQUIRE(v);
  CHECK(v->route == std::vector<std::string>{"x", "y"});
  for (const char* bad :
       {"", "pass", "[]", R"({"action":1})", R"({"action":"explode"})", R"({"action":"reroute"})",
        R"({"action":"reroute","route":[]})", R"({"action":"reroute","route":["a,b"]})",
        R"({"action":"reroute","route":["bad hop"]})", R"({"action":"drop","reason":5})"}) {
    CAPTURE(bad);
    error.clear();
    CHECK_FALSE(tobus::parse_hook_answer(bad, error));
    CHECK_FALSE(error.empty());
  }
}
