#pragma once
// Key and group names under a namespace (docs/protocol.md, "Keys").

#include <string>
#include <string_view>

namespace tobus {

class Keys {
 public:
  explicit Keys(std::string ns) : ns_(std::move(ns)) {}
  const std::string& ns() const { return ns_; }
  std::string bus() const { return ns_ + ":bus"; }
  std::string inbox(std::string_view module) const { return ns_ + ":in:" + std::string(module); }
  std::string dead() const { return ns_ + ":dead"; }
  std::string reply(std::string_view sender) const { return ns_ + ":reply:" + std::string(sender); }
  std::string reply_prefix() const { return ns_ + ":reply:"; }
  std::string modules() const { return ns_ + ":modules"; }
  std::string instances(std::string_view module) const { return ns_ + ":module:" + std::string(module); }

  static constexpr std::string_view bus_group = "bus";
  static constexpr std::string_view module_group = "module";

 private:
  std::string ns_;
};

}  // namespace tobus
