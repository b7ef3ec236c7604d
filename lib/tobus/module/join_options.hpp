#pragma once
// How a module joins (--join): what makes a group, how its parts are combined, how long it waits
// and what a failed branch does. Apart from join.hpp so that module.hpp, which holds these in
// ModuleOptions, does not pull in the Joiner and the Redis it works on.

#include <chrono>

namespace tobus {

enum class JoinFormat { lines, json };
enum class BranchFailPolicy { fail, ignore };

struct JoinOptions {
  int correlated = 0;  // 0: join fan-out copies; N: join N messages with one correlation id
  JoinFormat format = JoinFormat::lines;
  std::chrono::milliseconds timeout{600'000};
  BranchFailPolicy on_branch_fail = BranchFailPolicy::fail;
};

}  // namespace tobus
