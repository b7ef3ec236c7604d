#pragma once
// SHA-256 (OpenSSL's), for the password hashes of Redis ACL rules (`#HEX`): the password itself
// is then never printed. Not for anything that needs a constant-time comparison.

#include <string>
#include <string_view>

namespace tobus {

// The digest of `data` as 64 lower-case hex digits.
std::string sha256_hex(std::string_view data);

}  // namespace tobus
