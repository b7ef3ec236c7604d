// svc-driver: the service framework's functions from the shell, for tests/service/*.sh, until
// tobus-module carries them (--once, --init, --pool ...). Subcommands:
//   once [OPTIONS] [-- COMMAND...]   run_once(); then fails (98) if any child process is left
//   serve [OPTIONS]                  run_once --dry-run for each stdin line "SERVICE [ARGS-JSON]"
//   list DIR                         the listing JSON of DIR
//   init DIR NAME [LANG]             write_template()
//   dirname ID ATTEMPT               job_dir_name()
#include <dirent.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <sstream>

#include "tobus/core/error.hpp"
#include "tobus/process/service.hpp"
#include "tobus/util/duration.hpp"

namespace {

// Children of this process still there (running or zombie): none may be left after a job.
int children_left() {
  int n = 0;
  DIR* d = opendir("/proc/self/task");
  if (!d) return 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream f(std::string("/proc/self/task/") + e->d_name + "/children");
    std::string pid;
    while (f >> pid) ++n;
  }
  closedir(d);
  return n;
}

tobus::Millis duration(const std::string& text, const std::string& what) {
  auto d = tobus::parse_duration(text);
  if (!d) throw tobus::Error(tobus::ErrorKind::usage, "bad " + what + " '" + text + "'");
  return *d;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("svc-driver: the service framework from the shell");
  app.require_subcommand(1);
  tobus::OnceOptions o;
  o.module = "svc";
  std::vector<std::string> headers;
  std::string route, keep = "failed", watch = "1s", cb_timeout = "10s", timeout, kill_after = "2s";
  auto service_options = [&](CLI::App* sub) {
    sub->add_option("-n,--name", o.module);
    sub->add_option("-H,--header", headers);
    sub->add_option("-t,--to", route);
    sub->add_option("--pool", o.service.pool);
    sub->add_option("--workdir", o.service.workdir);
    sub->add_option("--result", o.service.result);
    sub->add_option("--keep-workdir", keep);
    sub->add_option("--before", o.service.before);
    sub->add_option("--on-change", o.service.on_change);
    sub->add_option("--after", o.service.after);
    sub->add_option("--watch-interval", watch);
    sub->add_option("--callback-timeout", cb_timeout);
    sub->add_option("--timeout", timeout);
    sub->add_option("--kill-after", kill_after);
    sub->add_option("--max-output", o.service.max_output);
    sub->add_option("--max-memory", o.service.max_memory);
  };
  auto* once = app.add_subcommand("once");
  service_options(once);
  once->add_option("-m,--message", o.payload);
  once->add_flag("--dry-run", o.dry_run);
  auto* serve = app.add_subcommand("serve");
  service_options(serve);
  std::string dir, name, lang = "sh", id;
  int attempt = 1;
  auto* list = app.add_subcommand("list");
  list->add_option("DIR", dir)->required();
  auto* init = app.add_subcommand("init");
  init->add_option("DIR", dir)->required();
  init->add_option("NAME", name)->required();
  init->add_option("LANG", lang);
  auto* dirname = app.add_subcommand("dirname");
  dirname->add_option("ID", id)->required();
  dirname->add_option("ATTEMPT", attempt)->required();
  // COMMAND comes after "--", as with tobus-module.
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) != "--") continue;
    o.command.assign(argv + i + 1, argv + argc);
    argc = i;
    break;
  }
  CLI11_PARSE(app, argc, argv);

  try {
    if (*list) {
      std::cout << tobus::list_dir(dir).json() << "\n";
      return 0;
    }
    if (*init) {
      std::cout << tobus::write_template(dir, name, lang) << "\n";
      return 0;
    }
    if (*dirname) {
      std::cout << tobus::job_dir_name(id, attempt) << "\n";
      return 0;
    }
    for (const auto& h : headers) {
      auto eq = h.find('=');
      if (eq == std::string::npos) throw tobus::Error(tobus::ErrorKind::usage, "bad header '" + h + "'");
      o.headers.emplace_back(h.substr(0, eq), h.substr(eq + 1));
    }
    if (!route.empty()) o.route = tobus::parse_route(route);
    auto k = tobus::parse_keep_workdir(keep);
    if (!k) throw tobus::Error(tobus::ErrorKind::usage, "bad --keep-workdir '" + keep + "'");
    o.service.keep = *k;
    o.service.watch_interval = duration(watch, "--watch-interval");
    o.service.callback_timeout = duration(cb_timeout, "--callback-timeout");
    o.service.kill_after = duration(kill_after, "--kill-after");
    if (!timeout.empty()) o.service.timeout = duration(timeout, "--timeout");
    if (*once) {
      int rc = tobus::run_once(o);
      if (int n = children_left(); n > 0) {
        std::cerr << "svc-driver: " << n << " child process(es) left\n";
        return 98;
      }
      return rc;
    }
    // serve: one message per line, all in this one process.
    std::string line;
    o.dry_run = true;
    auto base = o.headers;
    while (std::getline(std::cin, line)) {
      std::istringstream in(line);
      std::string service, args;
      in >> service;
      std::getline(in >> std::ws, args);
      o.headers = base;
      o.headers.emplace_back("service", service);
      if (!args.empty()) o.headers.emplace_back("args", args);
      o.payload = line;
      int rc = tobus::run_once(o);
      std::cout << "rc " << rc << "\n" << std::flush;
    }
    return 0;
  } catch (const tobus::Error& e) {
    std::cerr << "svc-driver: error: " << e.what() << "\n";
    return e.exit_code();
  }
}
