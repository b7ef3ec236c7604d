#include "tobus/redis/url.hpp"

#include <cctype>
#include <charconv>
#include <utility>

#include "tobus/core/error.hpp"

namespace tobus {
namespace {

// `url` with its password, if it has one, as ***: an error message must not print it. Malformed
// URLs are redacted too: everything between the user and the last '@' is taken for the password.
std::string redacted(std::string_view url) {
  std::string out(url);
  if (url.starts_with("unix://")) {
    for (std::size_t at = out.find("password="); at != std::string::npos; at = out.find("password=", at + 1)) {
      if (at == 0 || (out[at - 1] != '?' && out[at - 1] != '&')) continue;
      std::size_t from = at + 9, to = out.find('&', from);
      out.replace(from, to == std::string::npos ? std::string::npos : to - from, "***");
    }
    return out;
  }
  std::size_t start = out.find("://");
  std::size_t at = out.rfind('@');
  if (start == std::string::npos || at == std::string::npos || at < start + 3) return out;
  start += 3;
  std::size_t colon = out.find(':', start);
  std::size_t from = colon != std::string::npos && colon < at ? colon + 1 : start;  // a password alone
  out.replace(from, at - from, "***");
  return out;
}

[[noreturn]] void bad(std::string_view url, const std::string& why) {
  throw Error(ErrorKind::usage, "invalid Redis URL '" + redacted(url) + "': " + why);
}

int parse_int(std::string_view url, std::string_view text, int lo, int hi, const char* what) {
  int value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || value < lo || value > hi)
    bad(url, std::string("bad ") + what + " '" + std::string(text) + "'");
  return value;
}

// %XX escapes, so passwords may hold '@', ':' or '/'.
std::string percent_decode(std::string_view url, std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) bad(url, "bad %-escape");
    int value = 0;
    auto hex = text.substr(i + 1, 2);
    auto [ptr, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), value, 16);
    if (ec != std::errc() || ptr != hex.data() + 2) bad(url, "bad %-escape");
    out += static_cast<char>(value);
    i += 2;
  }
  return out;
}

}  // namespace

RedisAddress parse_redis_url(std::string_view url, bool password_elsewhere) {
  RedisAddress a;
  constexpr std::string_view redis_scheme = "redis://";
  constexpr std::string_view tls_scheme = "rediss://";
  constexpr std::string_view unix_scheme = "unix://";
  if (url.starts_with(unix_scheme)) {
    a.kind = RedisAddress::Kind::unix_socket;
    auto rest = url.substr(unix_scheme.size());
    auto q = rest.find('?');
    a.path = std::string(rest.substr(0, q));
    if (a.path.empty() || a.path[0] != '/') bad(url, "the socket path must be absolute");
    if (q != std::string_view::npos) {
      auto query = rest.substr(q + 1);
      while (!query.empty()) {
        auto amp = query.find('&');
        auto pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        auto eq = pair.find('=');
        auto key = pair.substr(0, eq);
        auto value = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
        if (key == "db") a.db = parse_int(url, value, 0, 1 << 20, "database");
        else if (key == "user") a.user = percent_decode(url, value);
        else if (key == "password") a.password = percent_decode(url, value);
        else bad(url, "unknown parameter '" + std::string(key) + "'");
      }
    }
    return a;
  }
  a.tls = url.starts_with(tls_scheme);
  if (!a.tls && !url.starts_with(redis_scheme)) bad(url, "expected redis://…, rediss://… or unix://…");
  auto rest = url.substr(a.tls ? tls_scheme.size() : redis_scheme.size());
  auto slash = rest.find('/');
  auto authority = rest.substr(0, slash);
  auto at = authority.rfind('@');
  if (at != std::string_view::npos) {
    auto userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    auto colon = userinfo.find(':');
    if (colon == std::string_view::npos && password_elsewhere) {
      a.user = percent_decode(url, userinfo);  // redis://alice@host, her password from a file
    } else if (colon == std::string_view::npos) {
      a.password = percent_decode(url, userinfo);  // redis://secret@host: a password alone
    } else {
      a.user = percent_decode(url, userinfo.substr(0, colon));
      a.password = percent_decode(url, userinfo.substr(colon + 1));
    }
  }
  std::string_view host = authority;
  if (authority.starts_with('[')) {  // [::1]:6379
    auto close = authority.find(']');
    if (close == std::string_view::npos) bad(url, "unclosed '['");
    host = authority.substr(1, close - 1);
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') bad(url, "junk after ']'");
      a.port = parse_int(url, after.substr(1), 1, 65535, "port");
    }
  } else {
    auto colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      a.port = parse_int(url, authority.substr(colon + 1), 1, 65535, "port");
    }
  }
  if (host.empty()) bad(url, "no host");
  a.host = std::string(host);
  if (slash != std::string_view::npos) {
    auto db = rest.substr(slash + 1);
    if (!db.empty()) a.db = parse_int(url, db, 0, 1 << 20, "database");
  }
  return a;
}

std::string RedisAddress::display() const {
  std::string auth;
  if (!user.empty() || !password.empty()) auth = (user.empty() ? "" : user) + (password.empty() ? "" : ":***") + "@";
  if (kind == Kind::unix_socket) return "unix://" + path + (db != 0 ? "?db=" + std::to_string(db) : "");
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return (tls ? "rediss://" : "redis://") + auth + h + ":" + std::to_string(port) + "/" + std::to_string(db);
}

RedisAddress RedisAddress::without_password() const {
  RedisAddress a = *this;
  a.password.clear();
  return a;
}

std::string RedisAddress::url() const {
  auto escape = [](const std::string& s) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
      if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
        out += static_cast<char>(c);
      } else {
        out += '%';
        out += hex[c >> 4];
        out += hex[c & 15];
      }
    }
    return out;
  };
  if (kind == Kind::unix_socket) {
    std::string q;
    auto add = [&q](const std::string& kv) { q += (q.empty() ? "?" : "&") + kv; };
    if (db != 0) add("db=" + std::to_string(db));
    if (!user.empty()) add("user=" + escape(user));
    if (!password.empty()) add("password=" + escape(password));
    return "unix://" + path + q;
  }
  std::string auth;
  if (!user.empty()) auth = escape(user) + ":" + escape(password) + "@";
  else if (!password.empty()) auth = escape(password) + "@";
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return (tls ? "rediss://" : "redis://") + auth + h + ":" + std::to_string(port) + "/" + std::to_string(db);
}

std::vector<std::string> redis_environment(const RedisAddress& address, bool with_password) {
  std::vector<std::string> env{"TOBUS_REDIS=" + (with_password ? address : address.without_password()).url()};
  if (!address.tls) return env;
  const TlsOptions& t = address.tls_options;
  const std::pair<const char*, const std::string*> files[] = {
      {"TOBUS_TLS_CA=", &t.ca}, {"TOBUS_TLS_CERT=", &t.cert}, {"TOBUS_TLS_KEY=", &t.key},
      {"TOBUS_TLS_SERVER_NAME=", &t.server_name}};
  for (auto [name, value] : files)
    if (!value->empty()) env.push_back(name + *value);
  if (t.insecure) env.emplace_back("TOBUS_TLS_INSECURE=1");
  return env;
}

}  // namespace tobus
