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
  // The suspects an instance of the module runs alone right now (a hash: inbox entry id →
  // instance): entries that may be what crashes the module.
  std::string suspects(std::string_view module) const { return ns_ + ":suspect:" + std::string(module); }
  // The modules that joined type T (a set): the targets of an `@T` hop.
  std::string type(std::string_view t) const { return ns_ + ":type:" + std::string(t); }
  // A fan-out or correlation group's record: its failed branches, for the joins downstream.
  std::string group(std::string_view g) const { return ns_ + ":group:" + std::string(g); }
  // The parts a joining module collected for one group (a hash).
  std::string join(std::string_view module, std::string_view g) const {
    return ns_ + ":join:" + std::string(module) + ":" + std::string(g);
  }

  static constexpr std::string_view bus_group = "bus";
  static constexpr std::string_view module_group = "module";

 private:
  std::string ns_;
};

}  // namespace tobus
