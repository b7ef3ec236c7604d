// Starts the private redis-server, runs the test cases against it, stops it. Exit 77 (skipped)
// when redis-server is not installed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>

#include "harness.hpp"
#include "tobus/process/signals.hpp"

int main(int argc, char** argv) {
  if (std::system("command -v redis-server >/dev/null 2>&1") != 0) {
    std::fprintf(stderr, "integration: redis-server is not installed, skipping\n");
    return 77;
  }
  // What the loops log (warnings about the failures the tests cause) goes to stderr, as in the
  // programs; info and below is noise here.
  spdlog::set_default_logger(spdlog::stderr_color_mt("integration"));
  spdlog::set_level(spdlog::level::warn);
  std::unique_ptr<it::RedisServer> server;
  try {
    server = std::make_unique<it::RedisServer>();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "integration: %s\n", e.what());
    return 1;
  }
  it::set_server(server.get());
  // The loops stop on the signal pipe, as the programs do (Loops::stop uses request_stop).
  tobus::signals::install();
  doctest::Context context(argc, argv);
  int rc = context.run();
  it::set_server(nullptr);
  return rc;
}
