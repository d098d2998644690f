// The ESMTP extensions a session advertises, and the optional commands it answers; scenarios
// can hide any of them.
#pragma once

#include <cctype>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace smtpfault::session {

enum class extension : std::uint16_t {
  pipelining = 1 << 0,
  size = 1 << 1,
  eightbitmime = 1 << 2,
  smtputf8 = 1 << 3,
  enhancedstatuscodes = 1 << 4,
  chunking = 1 << 5,
  dsn = 1 << 6,
  starttls = 1 << 7,
  auth = 1 << 8,
  // Commands no EHLO keyword names: hidden, they get 502 as commands not implemented.
  vrfy = 1 << 9,
  help = 1 << 10,
};

class extension_set {
 public:
  static extension_set all() { return extension_set(0x7ff); }
  bool has(extension e) const { return bits_ & static_cast<std::uint16_t>(e); }
  void add(extension e) { bits_ |= static_cast<std::uint16_t>(e); }
  void remove(extension e) { bits_ &= ~static_cast<std::uint16_t>(e); }

 private:
  explicit extension_set(std::uint16_t bits) : bits_(bits) {}
  std::uint16_t bits_;
};

// The extension an EHLO keyword names ("AUTH PLAIN" names AUTH), any case; nullopt for one the
// server does not advertise.
inline constexpr std::pair<const char*, extension> extension_keywords[] = {
    {"PIPELINING", extension::pipelining},
    {"SIZE", extension::size},
    {"8BITMIME", extension::eightbitmime},
    {"SMTPUTF8", extension::smtputf8},
    {"ENHANCEDSTATUSCODES", extension::enhancedstatuscodes},
    {"CHUNKING", extension::chunking},
    {"DSN", extension::dsn},
    {"STARTTLS", extension::starttls},
    {"AUTH", extension::auth}};

inline constexpr std::pair<const char*, extension> hideable_commands[] = {
    {"VRFY", extension::vrfy}, {"HELP", extension::help}};

template <std::size_t n>
std::optional<extension> named_in(const std::pair<const char*, extension> (&table)[n],
                                  std::string_view keyword) {
  std::string word(keyword.substr(0, keyword.find(' ')));
  for (auto& c : word)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const auto& [name, ext] : table)
    if (word == name) return ext;
  return std::nullopt;
}

inline std::optional<extension> extension_named(std::string_view keyword) {
  return named_in(extension_keywords, keyword);
}

// What smtp.hide and a rule's "hide" take: an EHLO keyword, or VRFY or HELP.
inline std::optional<extension> hideable_named(std::string_view keyword) {
  if (auto e = extension_named(keyword)) return e;
  return named_in(hideable_commands, keyword);
}

// The names hideable_named knows, for an error that lists them.
inline std::string hideable_names() {
  std::string names;
  for (const auto& [name, ext] : extension_keywords)
    names += (names.empty() ? "" : ", ") + std::string(name);
  for (const auto& [name, ext] : hideable_commands)
    names += ", " + std::string(name);
  return names;
}

}  // namespace smtpfault::session
