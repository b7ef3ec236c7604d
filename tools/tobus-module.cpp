// tobus-module: attaches a named module and runs its handler for each message.
#include "tobus/tobus.hpp"

int main(int argc, char** argv) {
  tobus::Program program("tobus-module", "Attach module NAME to the bus and run COMMAND for each message.");
  auto& app = program.app();
  tobus::ModuleOptions options;
  std::vector<std::string> command;
  app.add_option("NAME", options.name, "The module's name (the hop in a route)")->required();
  app.add_option("COMMAND", command,
                 "Handler run per message: payload on stdin, stdout is the result (none: pass-through)");
  app.add_option("-j,--jobs", options.jobs, "Handlers running at a time")
      ->type_name("N")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--retries", options.retries, "Retries after exit code 75 (EX_TEMPFAIL)")
      ->type_name("N")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  program.add_duration("--backoff", options.backoff, "First retry delay, doubling each retry");
  tobus::Millis timeout{0};
  program.add_duration("--timeout", timeout, "Kill a handler's process group after this long (0: never)");
  program.add_duration("--claim-after", options.claim_after,
                       "Take over entries a dead instance left pending this long");

  return program.run(argc, argv, [&] {
    options.command = command;
    if (timeout.count() > 0) options.timeout = timeout;
    return tobus::run_module(program, options);
  });
}
