// Generated at build time from lua/ and scenarios/ (see cmake/embed.cmake).
#pragma once

#include <cstddef>

namespace smtpfault::script::embedded {

struct file {
  const char* path;
  const char* text;
};

extern const file files[];
extern const std::size_t file_count;

}  // namespace smtpfault::script::embedded
