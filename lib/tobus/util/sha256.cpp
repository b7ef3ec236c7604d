#include "tobus/util/sha256.hpp"

#include <openssl/evp.h>

#include "tobus/core/error.hpp"

namespace tobus {

// OpenSSL's digest: the library links it for TLS already.
std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr) != 1)
    throw Error(ErrorKind::failed, "cannot compute a SHA-256 digest (OpenSSL)");
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * size);
  for (unsigned int i = 0; i < size; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

}  // namespace tobus
