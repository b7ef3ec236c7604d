#pragma once
// A local run of one message (tobus-module --once, docs/service.md): the handler, the pool and the
// work dir as the module would run them, with no Redis at all.

#include <string>
#include <vector>

#include "tobus/process/pool.hpp"
#include "tobus/process/service_options.hpp"

namespace tobus {

struct OnceOptions {
  std::string module;                // NAME: the hop the message is at
  std::vector<std::string> command;  // COMMAND; empty: pass-through (or the pool)
  std::string payload;               // -m
  Headers headers;                   // -H KEY=VALUE
  std::vector<std::string> route;    // the hops after this one (-t), may be empty
  bool dry_run = false;              // describe on stdout instead of printing the result
  ServiceOptions service;
};

// Runs the handler on one message here, with no Redis at all, through the same JobRun as the
// module, and reports what the module would do with the result (docs/service.md, "--once"):
// the result on `out_fd` and one verdict line on `err_fd`, or with dry_run a description on
// `out_fd`. Returns the handler's exit code (0 would send, 75 would retry, other would
// dead-letter). Throws Error(usage) for a command that is not found or a bad option.
int run_once(const OnceOptions& options, int out_fd = 1, int err_fd = 2);

}  // namespace tobus
