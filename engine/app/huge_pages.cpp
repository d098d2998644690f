#include "app/huge_pages.hpp"

#include <sys/auxv.h>
#include <sys/prctl.h>
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
    // Executed through /proc/self/exe, the process is named "exe"; pgrep -x, ps -C and killall
    // look for the name it was started by.
    if (argv[0]) {
      std::string_view name = argv[0];
      name = name.substr(name.rfind('/') + 1);
      ::prctl(PR_SET_NAME, std::string(name).c_str());
    }
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
  // The very file this process runs, even if its path now names another (a rebuild, an upgrade).
  ::execv("/proc/self/exe", argv);
  // No /proc (or no exec): run on as we are, with the environment as it was.
  current ? ::setenv("GLIBC_TUNABLES", current, 1) : ::unsetenv("GLIBC_TUNABLES");
  ::unsetenv(restarted_marker);
}

}  // namespace smtpfault::app
