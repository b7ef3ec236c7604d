#include "tobus/core/dead_letter.hpp"

#include <string_view>

#include "tobus/util/text.hpp"

namespace tobus {
namespace {

std::optional<std::int64_t> number(std::string_view s) {
  std::int64_t v = 0;
  if (!to_int(s, v)) return std::nullopt;
  return v;
}

Fields encode_into(Fields f, const DeadLetter& d) {
  f.reserve(f.size() + 8);
  f.emplace_back("dead.reason", d.reason);
  f.emplace_back("dead.stream", d.stream);
  f.emplace_back("dead.entry", d.source_entry);
  if (d.at) f.emplace_back("dead.at", std::to_string(*d.at));
  if (d.rc) {
    f.emplace_back("dead.hop", d.hop);
    f.emplace_back("dead.rc", std::to_string(*d.rc));
    f.emplace_back("dead.attempts", std::to_string(d.attempts.value_or(0)));
    f.emplace_back("dead.stderr", d.stderr_tail);
  }
  return f;
}

}  // namespace

std::string DeadLetter::message_id() const {
  for (const auto& [k, v] : original)
    if (k == "id" && valid_message_id(v)) return v;
  return {};
}

DeadLetter make_dead_letter(Fields original, std::string stream, std::string source_entry,
                            std::string reason, std::int64_t at_ms, const Failure* failure) {
  DeadLetter d;
  d.original = std::move(original);
  d.reason = std::move(reason);
  d.stream = std::move(stream);
  d.source_entry = std::move(source_entry);
  d.at = at_ms;
  if (failure) {
    d.hop = failure->hop;
    d.rc = failure->rc;
    d.attempts = failure->attempts;
    d.stderr_tail = failure->stderr_tail;
  }
  return d;
}

Fields encode(const DeadLetter& d) { return encode_into(d.original, d); }

Fields encode(DeadLetter&& d) { return encode_into(std::move(d.original), d); }

DeadLetter decode_dead_letter(const Fields& fields) {
  DeadLetter d;
  std::size_t split = fields.size();
  for (std::size_t i = fields.size(); i-- > 0;)
    if (fields[i].first == "dead.reason") {
      split = i;
      break;
    }
  d.original.assign(fields.begin(), fields.begin() + static_cast<std::ptrdiff_t>(split));
  for (std::size_t i = split; i < fields.size(); ++i) {
    const auto& [k, v] = fields[i];
    if (k == "dead.reason") d.reason = v;
    else if (k == "dead.stream") d.stream = v;
    else if (k == "dead.entry") d.source_entry = v;
    else if (k == "dead.at") d.at = number(v);
    else if (k == "dead.hop") d.hop = v;
    else if (k == "dead.rc") d.rc = number(v);
    else if (k == "dead.attempts") d.attempts = number(v);
    else if (k == "dead.stderr") d.stderr_tail = v;
  }
  return d;
}

}  // namespace tobus
