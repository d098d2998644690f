// The ESMTP extensions a session advertises; scenarios can hide any of them.
#pragma once

#include <cstdint>
#include <string>
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
};

class extension_set {
 public:
  static extension_set all() { return extension_set(0x1ff); }
  bool has(extension e) const { return bits_ & static_cast<std::uint16_t>(e); }
  void add(extension e) { bits_ |= static_cast<std::uint16_t>(e); }
  void remove(extension e) { bits_ &= ~static_cast<std::uint16_t>(e); }

 private:
  explicit extension_set(std::uint16_t bits) : bits_(bits) {}
  std::uint16_t bits_;
};

}  // namespace smtpfault::session
