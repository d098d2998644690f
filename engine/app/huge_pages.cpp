#include "app/huge_pages.hpp"

#include <sys/auxv.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <string_view>

namespace smtpfault::app {

namespace {
// Set for the restarted process: one restart at most, whatever glibc made of the tunables.
// (Not SMTPFAULT_*: those are configuration keys.)
constexpr const char* restarted_marker = "_SMTPFAULT_HUGE_PAGE_RESTART";
}  // namespace

void restart_with_huge_page_heap(char** argv) {
  if (std::getenv(restarted_marker)) {
    ::unsetenv(restarted_marker);
    return;
  }
  // setuid or file capabilities: glibc ignores most tunables there; do not restart at all.
  if (::getauxval(AT_SECURE) != 0) return;
  constexpr std::string_view tunable = "glibc.malloc.hugetlb";
  const char* current = std::getenv("GLIBC_TUNABLES");
  std::string value = current ? current : "";
  if (value.find(tunable) != std::string::npos) return;
  value += value.empty() ? "" : ":";
  value += std::string(tunable) + "=1";
  if (::setenv("GLIBC_TUNABLES", value.c_str(), 1) != 0) return;
  ::setenv(restarted_marker, "1", 1);
  // By the file's own name: the process name is taken from it, and pgrep -x, ps -C and killall
  // look for "smtpfault", not "exe". /proc/self/exe is the fallback (e.g. a replaced binary).
  char path[4096];
  ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  if (n > 0) {
    path[n] = '\0';
    ::execv(path, argv);
  }
  ::execv("/proc/self/exe", argv);
  // No /proc (or no exec): run on as we are, with the environment as it was.
  current ? ::setenv("GLIBC_TUNABLES", current, 1) : ::unsetenv("GLIBC_TUNABLES");
  ::unsetenv(restarted_marker);
}

}  // namespace smtpfault::app
