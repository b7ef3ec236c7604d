#include <doctest/doctest.h>

#include <string>

#include "tobus/core/error.hpp"
#include "tobus/state/acl.hpp"
#include "tobus/util/sha256.hpp"

using namespace tobus;
using Access = AclKey::Access;

TEST_CASE("sha256_hex: FIPS 180-4 vectors and every padding edge") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // 55 bytes: the length fits the last block; 56: it does not; 63, 64, 65: around a whole block.
  CHECK(sha256_hex(std::string(55, 'a')) == "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  CHECK(sha256_hex(std::string(56, 'a')) == "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
  CHECK(sha256_hex(std::string(63, 'a')) == "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34");
  CHECK(sha256_hex(std::string(64, 'a')) == "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
  CHECK(sha256_hex(std::string(65, 'a')) == "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0");
  CHECK(sha256_hex(std::string(1000, 'a')) == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
}

namespace {

AclRules rules_of(AclRole role, std::string module = {}, std::vector<std::string> types = {}) {
  return acl_rules(Keys("tb"), AclRequest{role, std::move(module), std::move(types)});
}

}  // namespace

TEST_CASE("acl: a module's user has its own inbox and records, writes to the bus and dead letters, no more") {
  auto m = rules_of(AclRole::module, "a", {"img"});
  CHECK(acl_allows(m, "xreadgroup", "tb:in:a", Access::read_write));
  CHECK(acl_allows(m, "xack", "tb:in:a", Access::write));
  CHECK(acl_allows(m, "xadd", "tb:bus", Access::write));
  CHECK(acl_allows(m, "xadd", "tb:dead", Access::write));
  CHECK(acl_allows(m, "hset", "tb:module:a", Access::write));
  CHECK(acl_allows(m, "hget", "tb:suspect:a", Access::read));
  CHECK(acl_allows(m, "sadd", "tb:type:img", Access::write));
  CHECK(acl_allows(m, "del", "tb:join:a:g1:lock", Access::write));
  CHECK(acl_allows(m, "hset", "tb:state:job:1a2b-0", Access::write));
  CHECK(acl_allows(m, "evalsha", "tb:bus", Access::read_write));  // the key a script is given
  // Another module's inbox, records, joins; reading the bus or the dead letters; other types.
  for (auto cmd : {"xrange", "xreadgroup", "xadd", "xgroup|create", "xack", "del"}) {
    CHECK_FALSE(acl_allows(m, cmd, "tb:in:b", Access::read));
    CHECK_FALSE(acl_allows(m, cmd, "tb:in:b", Access::write));
    CHECK_FALSE(acl_allows(m, cmd, "tb:in:ab", Access::write));  // a name that starts alike
  }
  CHECK_FALSE(acl_allows(m, "hgetall", "tb:module:b", Access::read));
  CHECK_FALSE(acl_allows(m, "hgetall", "tb:suspect:b", Access::read));
  CHECK_FALSE(acl_allows(m, "hgetall", "tb:state:module:b", Access::read));
  CHECK_FALSE(acl_allows(m, "hgetall", "tb:state:job:x", Access::read));
  CHECK_FALSE(acl_allows(m, "hgetall", "tb:join:ab:g", Access::read));
  CHECK_FALSE(acl_allows(m, "sadd", "tb:type:other", Access::write));
  CHECK_FALSE(acl_allows(m, "xrange", "tb:bus", Access::read));
  CHECK_FALSE(acl_allows(m, "xreadgroup", "tb:bus", Access::read_write));
  CHECK_FALSE(acl_allows(m, "xrange", "tb:reply:h:1:ab", Access::read));
  for (auto cmd : {"del", "unlink", "xtrim", "xdel", "pexpire", "expire", "rename"})
    CHECK_FALSE(acl_allows(m, cmd, "tb:dead", Access::write));
  // Another namespace is not this bus.
  CHECK_FALSE(acl_allows(m, "xadd", "tb2:bus", Access::write));
  CHECK_FALSE(acl_allows(m, "xreadgroup", "tb2:in:a", Access::read_write));
}

TEST_CASE("acl: no role may flush, configure, list keys, debug, shut down or change users") {
  for (auto role : {AclRole::bus, AclRole::module, AclRole::sender, AclRole::watcher, AclRole::admin}) {
    auto r = rules_of(role, role == AclRole::module ? "a" : "");
    CAPTURE(acl_role_name(role));
    for (auto cmd : {"flushall", "flushdb", "config", "config|set", "config|get", "keys", "debug", "shutdown", "acl",
                     "acl|setuser", "module", "client|kill", "monitor", "save", "bgsave", "replicaof", "migrate",
                     "restore", "script|flush", "function"}) {
      CHECK_FALSE(acl_allows(r, cmd, "", Access::read));
      CHECK_FALSE(acl_allows(r, cmd, "tb:bus", Access::read));
    }
    // Every grant's commands are lower case and every pattern is under the namespace.
    for (const auto& g : r.grants) {
      CHECK(!g.what.empty());
      for (const auto& c : g.commands)
        for (char ch : c) CHECK_FALSE((ch >= 'A' && ch <= 'Z'));
      for (const auto& k : g.keys) CHECK(k.pattern.starts_with("tb:"));
    }
    CHECK(r.grants.front().keys.empty());
  }
}

TEST_CASE("acl: the watcher only reads, the sender only adds to the bus and reads its replies") {
  auto w = rules_of(AclRole::watcher);
  CHECK(acl_allows(w, "xread", "tb:in:a", Access::read));
  CHECK(acl_allows(w, "hgetall", "tb:state:job:x", Access::read));
  for (const auto& g : w.grants)
    for (const auto& k : g.keys) CHECK(k.access == Access::read);
  auto s = rules_of(AclRole::sender);
  CHECK(acl_allows(s, "xadd", "tb:bus", Access::write));
  CHECK(acl_allows(s, "xread", "tb:reply:host:12:ab", Access::read));
  CHECK_FALSE(acl_allows(s, "xrange", "tb:bus", Access::read));
  CHECK_FALSE(acl_allows(s, "xadd", "tb:in:a", Access::write));
  CHECK_FALSE(acl_allows(s, "xadd", "tb:dead", Access::write));
}

TEST_CASE("acl: names and roles are checked; the rules print as ACL SETUSER and aclfile lines") {
  CHECK(parse_acl_role("module") == AclRole::module);
  CHECK_FALSE(parse_acl_role("root"));
  CHECK_THROWS_AS(rules_of(AclRole::module), Error);
  CHECK_THROWS_AS(rules_of(AclRole::module, "a*"), Error);
  CHECK_THROWS_AS(rules_of(AclRole::module, "a", {"t:x"}), Error);
  CHECK_THROWS_AS(rules_of(AclRole::bus, "a"), Error);
  CHECK_THROWS_AS(rules_of(AclRole::watcher, "", {"t"}), Error);
  CHECK(default_acl_user(Keys("tobus"), AclRole::module, "resize") == "tobus-module-resize");
  CHECK(default_acl_user(Keys("tobus"), AclRole::bus, "") == "tobus-bus");
  CHECK(valid_acl_user("tobus-bus"));
  CHECK_FALSE(valid_acl_user("a b"));
  CHECK_FALSE(valid_acl_user("a*"));
  CHECK_FALSE(valid_acl_user(""));

  auto s = rules_of(AclRole::sender);
  CHECK(acl_setuser_line("u", s, std::nullopt) ==
        "ACL SETUSER u reset off resetchannels -@all +ping +select \"(%W~tb:bus +xadd)\" \"(~tb:reply:* +xread +del)\"");
  CHECK(aclfile_line("u", s, std::string(64, 'f')) ==
        "user u reset on #" + std::string(64, 'f') +
            " resetchannels -@all +ping +select (%W~tb:bus +xadd) (~tb:reply:* +xread +del)");
}
