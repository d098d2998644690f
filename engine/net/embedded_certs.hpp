// Generated at build time from fixtures/certs (see cmake/embed.cmake).
#pragma once

#include <cstddef>

namespace smtpfault::net::embedded {

struct file {
  const char* path;
  const char* text;
};

extern const file files[];
extern const std::size_t file_count;

}  // namespace smtpfault::net::embedded
