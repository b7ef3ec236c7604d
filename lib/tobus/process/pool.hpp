#pragma once
// The service pool (tobus-module --pool DIR, docs/service.md): the executable a message's
// `service` header names in DIR, with its `args` header as the arguments; and the exit codes the
// framework gives a job it cannot run.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tobus/core/message.hpp"

namespace tobus {

using Headers = std::vector<std::pair<std::string, std::string>>;

inline constexpr int rc_bad_data = 65;    // EX_DATAERR: a bad `service` or `args` header
inline constexpr int rc_not_found = 127;  // as a shell: no such service, or not executable

// 1-64 of A-Z a-z 0-9 _ . -, not starting with '.' (so never '.', '..' or a hidden file).
bool valid_service_name(std::string_view name);

struct ServicePick {
  std::vector<std::string> argv;  // DIR/NAME and the args; empty when the pick failed
  int rc = 0;                     // 0; rc_not_found (unknown, not executable); rc_bad_data
  std::string error;              // why it failed, one line
  bool ok() const { return rc == 0; }
};

// The service the header `service` names in `pool_dir`, with the header `args` (a JSON array of
// strings) as its arguments. Looked up on every call: a service dropped into the pool is picked
// up at once. Never throws.
ServicePick pick(const std::string& pool_dir, const Headers& headers);
inline ServicePick pick(const std::string& pool_dir, const Message& message) {
  return pick(pool_dir, message.headers);
}

// The `args` header: a JSON array of at most 1024 strings without NUL bytes; nullopt and `error`
// otherwise.
std::optional<std::vector<std::string>> parse_args_header(std::string_view json, std::string& error);

}  // namespace tobus
