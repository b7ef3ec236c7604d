// The service pool (--pool): picking the executable a message's `service` header names, with the
// `args` header as its arguments.
#include "tobus/process/pool.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "tobus/process/service_detail.hpp"
#include "tobus/util/json.hpp"

namespace tobus {
namespace service_detail {

// One line for a log or a description: \\ \n \r \t and \xNN for other control bytes.
std::string one_line(std::string_view s) {
  std::string out;
  static const char hex[] = "0123456789abcdef";
  for (unsigned char c : s) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\x";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

}  // namespace service_detail

namespace {

using namespace service_detail;

constexpr std::size_t max_args = 1024;

const std::string* header(const Headers& headers, std::string_view name) {
  for (const auto& [k, v] : headers)
    if (k == name) return &v;
  return nullptr;
}

}  // namespace

bool valid_service_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name.front() == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return name_char(c) || c == '.'; });
}

std::optional<std::vector<std::string>> parse_args_header(std::string_view json, std::string& error) {
  if (!json_depth_within(json)) {  // rapidjson recurses: 100,000 '[' would crash the module
    error = "JSON nested deeper than " + std::to_string(max_json_depth) + " levels";
    return std::nullopt;
  }
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError()) {
    error = std::string("not JSON: ") + rapidjson::GetParseError_En(doc.GetParseError()) + " at offset " +
            std::to_string(doc.GetErrorOffset());
    return std::nullopt;
  }
  if (!doc.IsArray()) {
    error = "not a JSON array of strings";
    return std::nullopt;
  }
  if (doc.Size() > max_args) {
    error = "more than " + std::to_string(max_args) + " arguments";
    return std::nullopt;
  }
  std::vector<std::string> args;
  for (rapidjson::SizeType i = 0; i < doc.Size(); ++i) {
    const auto& v = doc[i];
    if (!v.IsString()) {
      error = "element " + std::to_string(i) + " is not a string";
      return std::nullopt;
    }
    std::string a(v.GetString(), v.GetStringLength());
    if (a.find('\0') != std::string::npos) {
      error = "element " + std::to_string(i) + " holds a NUL byte";
      return std::nullopt;
    }
    args.push_back(std::move(a));
  }
  return args;
}

ServicePick pick(const std::string& pool_dir, const Headers& headers) {
  const std::string* name = header(headers, "service");
  if (!name) return {{}, rc_bad_data, "no 'service' header: the module runs services from its pool"};
  if (!valid_service_name(*name))
    return {{},
            rc_bad_data,
            "bad service name '" + one_line(name->substr(0, 80)) +
                "': names are 1-64 of A-Z a-z 0-9 _ . -, not starting with '.'"};
  std::string pool = absolute(pool_dir);
  std::string path = pool + "/" + *name;
  struct stat st {};
  // A symlink in the pool may lead to another file of the pool, never out of it.
  if (lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    std::unique_ptr<char, decltype(&free)> real(realpath(path.c_str(), nullptr), &free);
    std::unique_ptr<char, decltype(&free)> real_pool(realpath(pool.c_str(), nullptr), &free);
    if (real && real_pool) {
      std::string target = real.get(), under = real_pool.get();
      if (under != "/") under += '/';
      if (!target.starts_with(under))
        return {{}, rc_not_found, "service '" + *name + "' leads out of the pool: '" + path + "' is a symlink to '" +
                                      target + "'"};
    }
  }
  if (stat(path.c_str(), &st) != 0)
    return {{}, rc_not_found, "unknown service '" + *name + "': no '" + path + "'"};
  if (!S_ISREG(st.st_mode))
    return {{}, rc_not_found, "service '" + *name + "' is not a file: '" + path + "'"};
  if (access(path.c_str(), X_OK) != 0)
    return {{}, rc_not_found, "service '" + *name + "' is not executable: '" + path + "'"};
  ServicePick p;
  p.argv.push_back(path);
  if (const std::string* args = header(headers, "args")) {
    std::string why;
    auto parsed = parse_args_header(*args, why);
    if (!parsed) return {{}, rc_bad_data, "bad 'args' header of service '" + *name + "': " + why};
    p.argv.insert(p.argv.end(), parsed->begin(), parsed->end());
  }
  return p;
}

}  // namespace tobus
