// The key registry shared by settings.cpp (which owns the table) and loader.cpp (which reads
// sources). Internal to engine/config: other layers use loader.hpp.
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/settings.hpp"
#include "proto/near_miss.hpp"

namespace smtpfault::config::detail {

inline constexpr std::string_view env_prefix = "SMTPFAULT_";

enum class kind { string, boolean, unsigned_int, number, address, address_list, users, name_list };

// Alternatives in the same order as `kind`.
using value = std::variant<std::string, bool, std::uint64_t, double, endpoint,
                           std::vector<endpoint>, std::vector<auth_user>, std::vector<std::string>>;

struct key_desc {
  std::string_view path;
  kind type;
  std::string_view help;
  void (*set)(settings&, value&&);
  std::string (*show)(const settings&) = nullptr;  // the value as a user writes it, for --help
  std::uint64_t min = 0;                           // unsigned_int bounds
  std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
  bool positive = false;                              // number must be > 0
  std::span<const std::string_view> choices = {};     // string must be one of these; empty = any
  double most = 0;                                    // number must be at most this; 0 = no bound
  double least = 0;                                   // number must be at least this; 0 = no bound
  std::string (*rule)(const std::string&) = nullptr;  // a string's own check: "" = acceptable
};

std::span<const key_desc> all_keys();
const key_desc* find_key(std::string_view path);
const key_desc* find_env(std::string_view name);  // name = "SMTPFAULT_..."
bool is_section(std::string_view path);           // "tls", "limits", "auth"

// "limits.command_line" -> "SMTPFAULT_LIMITS_COMMAND_LINE"
std::string env_name(std::string_view path);
std::string_view type_word(kind k);    // for --help: "address list"
std::string_view expectation(kind k);  // for type errors: "an array of address strings"

// Range and choice rules shared by every source; empty = acceptable, else the reason.
std::string check(const key_desc& d, const value& v);

// " (did you mean 'x'?)" when a candidate is close enough to be a plausible typo, else "".
using proto::did_you_mean;
std::vector<std::string> path_candidates();  // key paths and section names
std::string quoted(std::string_view text);

}  // namespace smtpfault::config::detail
