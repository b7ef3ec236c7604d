#include "tobus/process/service.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "tobus/core/error.hpp"

namespace fs = std::filesystem;
using namespace tobus;

namespace {

// A temp dir removed at the end of the test case.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/tobus-service-test.XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

void write_file(const std::string& path, const std::string& text, mode_t mode = 0644) {
  std::ofstream(path, std::ios::binary) << text;
  chmod(path.c_str(), mode);
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

std::vector<std::string> base_env() { return {"PATH=/usr/local/bin:/usr/bin:/bin"}; }

JobResult run_job(const ServiceOptions& o, std::vector<std::string> argv, std::string input,
                  std::vector<std::string>* log = nullptr, std::string job_id = "m1.1") {
  JobRun job(o, JobSpec{std::move(argv), base_env(), std::move(input), std::move(job_id)},
             [log](std::string_view line) {
               if (log) log->emplace_back(line);
             });
  return job.wait();
}

}  // namespace

TEST_CASE("service names") {
  CHECK(valid_service_name("upper"));
  CHECK(valid_service_name("a.b-c_D9"));
  CHECK(valid_service_name(std::string(64, 'x')));
  CHECK_FALSE(valid_service_name(std::string(65, 'x')));
  CHECK_FALSE(valid_service_name(""));
  CHECK_FALSE(valid_service_name("."));
  CHECK_FALSE(valid_service_name(".."));
  CHECK_FALSE(valid_service_name(".hidden"));
  CHECK_FALSE(valid_service_name("../x"));
  CHECK_FALSE(valid_service_name("a/b"));
  CHECK_FALSE(valid_service_name("a b"));
  CHECK_FALSE(valid_service_name("a;rm"));
}

TEST_CASE("the args header") {
  std::string error;
  auto a = parse_args_header(R"J(["-n", "two words", "$(rm -rf /)", "é"])J", error);
  REQUIRE(a);
  CHECK(*a == std::vector<std::string>{"-n", "two words", "$(rm -rf /)", "é"});
  CHECK(parse_args_header("[]", error)->empty());
  CHECK_FALSE(parse_args_header("[1]", error));
  CHECK(error == "element 0 is not a string");
  CHECK_FALSE(parse_args_header(R"({"a":"b"})", error));
  CHECK(error == "not a JSON array of strings");
  CHECK_FALSE(parse_args_header("-n 5", error));
  CHECK(error.starts_with("not JSON: "));
  CHECK_FALSE(parse_args_header(R"(["a\u0000b"])", error));
  CHECK(error == "element 0 holds a NUL byte");
  std::string many = "[";
  for (int i = 0; i < 1025; ++i) many += std::string(i ? "," : "") + "\"x\"";
  CHECK_FALSE(parse_args_header(many + "]", error));
  CHECK_FALSE(parse_args_header(std::string(100000, '['), error));
  CHECK(error == "JSON nested deeper than 32 levels");
}

TEST_CASE("pick a service from the pool") {
  TempDir pool;
  Headers h{{"service", "up"}};

  auto p = pick(pool.path, h);
  CHECK(p.rc == rc_not_found);
  CHECK(p.error == "unknown service 'up': no '" + (pool / "up") + "'");

  // Added while "running": the very next pick sees it.
  write_file(pool / "up", "#!/bin/sh\ntr a-z A-Z\n", 0644);
  p = pick(pool.path, h);
  CHECK(p.rc == rc_not_found);
  CHECK(p.error == "service 'up' is not executable: '" + (pool / "up") + "'");
  chmod((pool / "up").c_str(), 0755);
  p = pick(pool.path, h);
  REQUIRE(p.ok());
  CHECK(p.argv == std::vector<std::string>{pool / "up"});

  h.emplace_back("args", R"(["-x", "a b"])");
  p = pick(pool.path, h);
  REQUIRE(p.ok());
  CHECK(p.argv == std::vector<std::string>{pool / "up", "-x", "a b"});

  p = pick(pool.path, Headers{{"service", "up"}, {"args", "-x"}});
  CHECK(p.rc == rc_bad_data);
  CHECK(p.error.starts_with("bad 'args' header of service 'up': not JSON"));

  p = pick(pool.path, Headers{{"service", "../up"}});
  CHECK(p.rc == rc_bad_data);
  CHECK(p.error.starts_with("bad service name '../up'"));
  CHECK(pick(pool.path, Headers{{"service", ".."}}).rc == rc_bad_data);
  CHECK(pick(pool.path, Headers{{"service", "/bin/sh"}}).rc == rc_bad_data);
  CHECK(pick(pool.path, Headers{}).rc == rc_bad_data);

  // A symlink to a service of the pool is that service; one leading out of the pool is not run.
  fs::create_symlink("up", pool / "alias");
  p = pick(pool.path, Headers{{"service", "alias"}});
  REQUIRE(p.ok());
  CHECK(p.argv == std::vector<std::string>{pool / "alias"});
  fs::create_symlink("/bin/true", pool / "out");
  p = pick(pool.path, Headers{{"service", "out"}});
  CHECK(p.rc == rc_not_found);
  CHECK(p.error.starts_with("service 'out' leads out of the pool: '" + (pool / "out") + "' is a symlink to '/"));

  fs::create_directory(pool / "adir");
  p = pick(pool.path, Headers{{"service", "adir"}});
  CHECK(p.rc == rc_not_found);
  CHECK(p.error.find("is not a file") != std::string::npos);

  // A relative pool gives an absolute path: the handler runs in its work dir.
  std::string cwd = fs::current_path();
  fs::current_path(pool.path);
  p = pick(".", h);
  fs::current_path(cwd);
  REQUIRE(p.ok());
  CHECK(p.argv.front() == pool / "up");
}

TEST_CASE("job dir names") {
  CHECK(job_dir_name("1a2b-c3-0", 1) == "1a2b-c3-0.1");
  CHECK(job_dir_name("order.17", 3) == "order.17.3");
  CHECK(job_dir_name("a/b", 1) == "a%2Fb.1");
  CHECK(job_dir_name("..", 2) == "%2E..2");
  CHECK(job_dir_name(".x", 1) == "%2Ex.1");
  CHECK(job_dir_name("a%2Fb", 1) == "a%252Fb.1");  // distinct from "a/b"
  CHECK(job_dir_name("a b*?", 1) == "a%20b%2A%3F.1");
  std::string long_id(200, 'x'), other = long_id;
  other.back() = 'y';
  auto n1 = job_dir_name(long_id, 1), n2 = job_dir_name(other, 1);
  CHECK(n1.size() < 160);
  CHECK(n1 != n2);
  CHECK(n1.ends_with(".1"));
  std::set<std::string> names;
  for (const char* id : {"a.1", "a", "a.1.1", "a_1"})
    for (int attempt : {1, 11}) names.insert(job_dir_name(id, attempt));
  CHECK(names.size() == 8);
}

TEST_CASE("keep policy and result path") {
  CHECK(parse_keep_workdir("always") == KeepWorkdir::always);
  CHECK(parse_keep_workdir("failed") == KeepWorkdir::failed);
  CHECK(parse_keep_workdir("never") == KeepWorkdir::never);
  CHECK_FALSE(parse_keep_workdir("sometimes"));
  CHECK_NOTHROW(check_result_path("result.json"));
  CHECK_NOTHROW(check_result_path("out/r.txt"));
  CHECK_NOTHROW(check_result_path("..x"));
  CHECK_THROWS_AS(check_result_path("/etc/passwd"), Error);
  CHECK_THROWS_AS(check_result_path("../x"), Error);
  CHECK_THROWS_AS(check_result_path("a/../../x"), Error);
  CHECK_THROWS_AS(check_result_path(".."), Error);
  CHECK_THROWS_AS(check_result_path(""), Error);
  CHECK_THROWS_AS(check_result_path("dir/"), Error);
}

TEST_CASE("service options checked at startup") {
  TempDir d;
  ServiceOptions o;
  CHECK_NOTHROW(check_service_options(o, true));
  o.pool = d / "missing";
  CHECK_THROWS_WITH_AS(check_service_options(o, false), ("--pool '" + o.pool + "' is not a directory").c_str(), Error);
  o.pool = d.path;
  CHECK_NOTHROW(check_service_options(o, false));
  CHECK_THROWS_WITH_AS(check_service_options(o, true),
                       "--pool and COMMAND exclude each other: the pool holds the commands", Error);
  o.pool.clear();
  o.on_change = "true";
  CHECK_THROWS_WITH_AS(check_service_options(o, true),
                       "--before, --on-change, --after and --result need --workdir", Error);
  write_file(d / "file", "");
  o.workdir = d / "file";
  CHECK_THROWS_WITH_AS(check_service_options(o, true), ("--workdir '" + o.workdir + "' is not a directory").c_str(),
                       Error);
  // A base others could write is no place for job dirs, unless it is sticky.
  fs::create_directory(d / "open");
  chmod((d / "open").c_str(), 0777);
  o.workdir = d / "open";
  CHECK_THROWS_WITH_AS(check_service_options(o, true),
                       ("--workdir '" + o.workdir + "' is writable by others (mode 0777) and not sticky: chmod go-w or chmod +t it").c_str(),
                       Error);
  chmod((d / "open").c_str(), 01777);
  CHECK_NOTHROW(check_service_options(o, true));
  fs::create_directory_symlink(d / "open", d / "link");
  o.workdir = d / "link";
  CHECK_THROWS_WITH_AS(check_service_options(o, true),
                       ("--workdir '" + o.workdir + "' is a symlink: name the directory itself").c_str(), Error);
  o.workdir = d / "made-later";  // made by the first job
  CHECK_NOTHROW(check_service_options(o, true));
  o.watch_interval = Millis(0);
  CHECK_THROWS_WITH_AS(check_service_options(o, true), "--watch-interval 0s is too short: 10ms at least", Error);
  o.watch_interval = Millis(10);
  CHECK_NOTHROW(check_service_options(o, true));
  o.result = "../r";
  CHECK_THROWS_AS(check_service_options(o, true), Error);
}

TEST_CASE("listing a work dir and detecting change") {
  TempDir d;
  Listing empty = list_dir(d.path);
  CHECK(empty.count == 0);
  CHECK(empty.json() == R"({"count":0,"truncated":false,"files":[]})");
  CHECK(list_dir(d / "missing").count == 0);

  write_file(d / "b", "12345");
  write_file(d / "a", "");
  fs::create_directory(d / "sub");
  write_file(d / "sub/c", "xy");
  Listing l = list_dir(d.path);
  CHECK(l.count == 4);
  REQUIRE(l.files.size() == 4);
  CHECK(l.files[0] == Listing::File{"a", 0});
  CHECK(l.files[1] == Listing::File{"b", 5});
  CHECK(l.files[2] == Listing::File{"sub/", 0});
  CHECK(l.files[3] == Listing::File{"sub/c", 2});
  CHECK(l.json() == R"({"count":4,"truncated":false,"files":[{"name":"a","size":0},{"name":"b","size":5},)"
                    R"({"name":"sub/","size":0},{"name":"sub/c","size":2}]})");

  CHECK(list_dir(d.path) == l);  // nothing changed
  write_file(d / "b", "123456");
  CHECK_FALSE(list_dir(d.path) == l);  // a size
  l = list_dir(d.path);
  fs::rename(d / "a", d / "a2");
  CHECK_FALSE(list_dir(d.path) == l);  // a name
  l = list_dir(d.path);
  write_file(d / "sub/e", "");
  CHECK_FALSE(list_dir(d.path) == l);  // a new file in a subdirectory

  // A symlink is listed, not followed.
  fs::create_directory_symlink("/", d / "root");
  CHECK(list_dir(d.path).count == 6);

  // Odd bytes in names still make valid JSON.
  write_file(d / "bad\xff\x01", "");
  auto j = list_dir(d.path).json();
  CHECK(j.find(R"("name":"bad\\xff\u0001")") != std::string::npos);
}

TEST_CASE("listing is bounded") {
  TempDir d;
  for (int i = 0; i < 1100; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "f%04d", i);
    write_file(d / name, "x");
  }
  Listing l = list_dir(d.path);
  CHECK(l.count == 1100);
  CHECK(l.files.size() == Listing::max_listed);
  CHECK(l.truncated);
  CHECK(l.files.front().name == "f0000");
  CHECK(l.files.back().name == "f0999");
  auto j = l.json(2000);
  CHECK(j.size() <= 2000);
  CHECK(j.starts_with(R"({"count":1100,"truncated":true,"files":[{"name":"f0000","size":1})"));
  CHECK(j.ends_with("}]}"));
}

TEST_CASE("message environment") {
  Message m;
  m.id = "m1";
  m.route = {"a", "b", "c"};
  m.from = "src";
  m.headers = {{"content-type", "text/plain"}, {"x", "1"}};
  auto env = message_env(m, 2);
  CHECK(env == std::vector<std::string>{"TOBUS_ID=m1", "TOBUS_FROM=src", "TOBUS_ROUTE=b,c", "TOBUS_ATTEMPT=2",
                                        "TOBUS_HEADER_CONTENT_TYPE=text/plain", "TOBUS_HEADER_X=1"});
}

TEST_CASE("templates") {
  TempDir d;
  for (const char* lang : {"sh", "python"}) {
    std::string name = std::string("t-") + lang;
    auto path = write_template(d.path, name, lang);
    CHECK(path == d / name);
    struct stat st {};
    REQUIRE(stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0755);
    std::string text = read_file(path);
    for (const char* word : {"TOBUS_ID", "TOBUS_MODULE", "TOBUS_FROM", "TOBUS_ROUTE", "TOBUS_ATTEMPT",
                             "TOBUS_REDIS", "TOBUS_NAMESPACE", "TOBUS_HEADER_", "TOBUS_JOB",
                             "tobus-state set \"$TOBUS_JOB\" progress=40", "exit 0", "75", "stdin", "stdout"})
      CHECK_MESSAGE(text.find(word) != std::string::npos, lang, " template lacks ", word);
    // Never overwritten.
    write_file(path, "mine");
    CHECK_THROWS_WITH_AS(write_template(d.path, name, lang),
                         ("'" + path + "' exists, not overwriting it").c_str(), Error);
    CHECK(read_file(path) == "mine");
  }
  CHECK_THROWS_AS(write_template(d.path, "x", "perl"), Error);
  CHECK_THROWS_AS(write_template(d.path, "../x", "sh"), Error);
}

TEST_CASE("templates run as handlers") {
  TempDir d;
  ServiceOptions o;
  for (const char* lang : {"sh", "python"}) {
    if (std::string(lang) == "python" && find_program("python3").empty()) {
      MESSAGE("python3 not installed: the python template is not run");
      continue;
    }
    auto path = write_template(d.path, std::string("h-") + lang, lang);
    auto r = run_job(o, {path}, std::string("payload\0with nul\n", 17));
    CHECK_MESSAGE(r.rc == 0, lang, ": ", r.error, r.stderr_tail);
    CHECK(r.payload == std::string("payload\0with nul\n", 17));
  }
}

TEST_CASE("a job without a work dir is one process") {
  ServiceOptions o;
  auto r = run_job(o, {"/bin/sh", "-c", "tr a-z A-Z; echo note >&2"}, "abc");
  CHECK(r.rc == 0);
  CHECK(r.payload == "ABC");
  CHECK(r.stderr_tail == "note\n");
  r = run_job(o, {"/bin/sh", "-c", "echo boom >&2; exit 3"}, "abc");
  CHECK(r.rc == 3);
  CHECK(r.payload.empty());
  CHECK(r.error.empty());  // the module words it
  r = run_job(o, {"/nonexistent/handler"}, "abc");
  CHECK(r.rc == 127);
  CHECK(r.error == "cannot run '/nonexistent/handler': No such file or directory");
}

TEST_CASE("work dir layout, --result and keep policies") {
  TempDir base;
  ServiceOptions o;
  o.workdir = base / "work";
  o.keep = KeepWorkdir::always;
  auto r =
      run_job(o, {"/bin/sh", "-c", "pwd; printf %s \"$TOBUS_WORKDIR\" >where; cat input >copy; tr a-z A-Z"},
              "abc", nullptr, "m1.1");
  std::string dir = base / "work/m1.1";
  CHECK(r.rc == 0);
  CHECK(r.payload == dir + "\nABC");
  CHECK(read_file(dir + "/input") == "abc");
  CHECK(read_file(dir + "/output") == dir + "\nABC");
  CHECK(read_file(dir + "/where") == dir);
  CHECK(read_file(dir + "/copy") == "abc");

  o.result = "out/result.txt";
  r = run_job(o, {"/bin/sh", "-c", "mkdir out; echo log; printf R >out/result.txt"}, "x", nullptr, "m2.1");
  CHECK(r.rc == 0);
  CHECK(r.payload == "R");
  CHECK(read_file(base / "work/m2.1/output") == "log\n");

  r = run_job(o, {"/bin/sh", "-c", "echo no result"}, "x", nullptr, "m3.1");
  CHECK(r.rc == 1);
  CHECK(r.error == "no result file 'out/result.txt' in the work dir '" + (base / "work/m3.1") + "'");
  r = run_job(o, {"/bin/sh", "-c", "mkdir -p out/result.txt"}, "x", nullptr, "m3.2");
  CHECK(r.rc == 1);
  CHECK(r.error.find("is not a regular file") != std::string::npos);
  o.result.clear();

  o.keep = KeepWorkdir::failed;
  CHECK(run_job(o, {"/bin/true"}, "x", nullptr, "ok.1").rc == 0);
  CHECK_FALSE(fs::exists(base / "work/ok.1"));
  CHECK(run_job(o, {"/bin/false"}, "x", nullptr, "bad.1").rc == 1);
  CHECK(fs::exists(base / "work/bad.1/input"));
  o.keep = KeepWorkdir::never;
  CHECK(run_job(o, {"/bin/false"}, "x", nullptr, "bad.2").rc == 1);
  CHECK_FALSE(fs::exists(base / "work/bad.2"));
  o.keep = KeepWorkdir::always;
  CHECK(run_job(o, {"/bin/true"}, "x", nullptr, "ok.2").rc == 0);
  CHECK(fs::exists(base / "work/ok.2/output"));

  // A name already taken (an earlier run of the same attempt, the same message at once) is never
  // reused: the job gets a dir of its own, private.
  write_file(base / "work/ok.2/stale", "old");
  CHECK(run_job(o, {"/bin/true"}, "x", nullptr, "ok.2").rc == 0);
  CHECK(fs::exists(base / "work/ok.2/stale"));
  CHECK(fs::exists(base / "work/ok.2-2/output"));
  struct stat st {};
  REQUIRE(stat((base / "work/ok.2-2").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0700);
  REQUIRE(stat((base / "work/ok.2-2/input").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
}

TEST_CASE("callbacks run in order, with the listing") {
  TempDir base;
  ServiceOptions o;
  o.workdir = base / "work";
  o.keep = KeepWorkdir::always;
  o.watch_interval = Millis(50);
  std::string log = base / "log";
  o.before = "echo \"before $TOBUS_EVENT $TOBUS_LISTING\" >>" + log;
  o.on_change = "echo \"change $TOBUS_LISTING\" >>" + log;
  o.after = "echo \"after rc=$TOBUS_RC $TOBUS_LISTING\" >>" + log;
  auto r =
      run_job(o, {"/bin/sh", "-c", "sleep 0.3; echo 1 >a; sleep 0.3; echo 22 >b; sleep 0.3; exit 4"}, "in");
  CHECK(r.rc == 4);
  std::string expected =
      "before before {\"count\":1,\"truncated\":false,\"files\":[{\"name\":\"input\",\"size\":2}]}\n"
      "change "
      "{\"count\":3,\"truncated\":false,\"files\":[{\"name\":\"a\",\"size\":2},{\"name\":\"input\",\"size\":"
      "2},"
      "{\"name\":\"output\",\"size\":0}]}\n"
      "change "
      "{\"count\":4,\"truncated\":false,\"files\":[{\"name\":\"a\",\"size\":2},{\"name\":\"b\",\"size\":3},"
      "{\"name\":\"input\",\"size\":2},{\"name\":\"output\",\"size\":0}]}\n"
      "after rc=4 "
      "{\"count\":4,\"truncated\":false,\"files\":[{\"name\":\"a\",\"size\":2},{\"name\":\"b\",\"size\":3},"
      "{\"name\":\"input\",\"size\":2},{\"name\":\"output\",\"size\":0}]}\n";
  CHECK(read_file(log) == expected);
}

TEST_CASE("a failing --before fails the job, the handler does not run") {
  TempDir base;
  ServiceOptions o;
  o.workdir = base / "work";
  o.before = "echo nope >&2; exit 9";
  o.after = "echo \"after $TOBUS_RC\" >" + (base / "after");
  std::vector<std::string> log;
  auto r = run_job(o, {"/bin/sh", "-c", "touch ran"}, "x", &log);
  CHECK(r.rc == 9);
  CHECK(r.error == "--before exited with 9");
  CHECK_FALSE(fs::exists(base / "work/m1.1/ran"));
  CHECK(read_file(base / "after") == "after 9\n");
  CHECK(log == std::vector<std::string>{"--before: nope"});
}

TEST_CASE("callbacks are bounded; --on-change and --after failures are only logged") {
  TempDir base;
  ServiceOptions o;
  o.workdir = base / "work";
  o.callback_timeout = Millis(200);
  o.kill_after = Millis(100);
  o.before = "trap '' TERM; sleep 30";
  std::vector<std::string> log;
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_job(o, {"/bin/true"}, "x", &log);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
  CHECK(r.rc == 124);
  CHECK(r.error == "--before timed out after 200ms");

  o.before.clear();
  o.watch_interval = Millis(20);
  o.on_change = "exit 5";
  o.after = "exit 6";
  log.clear();
  r = run_job(o, {"/bin/sh", "-c", "sleep 0.1; touch x; sleep 0.1"}, "x", &log);
  CHECK(r.rc == 0);
  CHECK(log ==
        std::vector<std::string>{"--on-change exited with 5, ignoring", "--after exited with 6, ignoring"});
}

TEST_CASE("the listing for the job's state record") {
  TempDir base;
  ServiceOptions o;
  o.workdir = base / "work";
  o.watch_interval = Millis(20);
  JobRun job(o, JobSpec{{"/bin/sh", "-c", "sleep 0.2; touch x; sleep 0.2"}, base_env(), "in", "j.1"}, {});
  auto first = job.take_listing();
  REQUIRE(first);
  CHECK(first->find("\"input\"") != std::string::npos);
  CHECK(job.handler_pid() > 0);
  std::vector<std::string> seen;
  std::vector<pollfd> fds;
  while (!job.done()) {
    fds.clear();
    job.add_pollfds(fds);
    poll(fds.data(), fds.size(), 10);
    job.handle(fds, 0);
    job.tick(true);
    if (auto l = job.take_listing()) seen.push_back(*l);
  }
  REQUIRE_FALSE(seen.empty());
  CHECK(seen.back().find("\"x\"") != std::string::npos);
  CHECK_FALSE(job.take_listing());
  CHECK(job.take_result().rc == 0);
}
