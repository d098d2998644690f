#include "app/huge_pages.hpp"

#include <unistd.h>

#include <cstdlib>
#include <string>
#include <string_view>

namespace smtpfault::app {

void restart_with_huge_page_heap(char** argv) {
  constexpr std::string_view tunable = "glibc.malloc.hugetlb";
  const char* current = std::getenv("GLIBC_TUNABLES");
  std::string value = current ? current : "";
  if (value.find(tunable) != std::string::npos) return;
  value += value.empty() ? "" : ":";
  value += std::string(tunable) + "=1";
  if (::setenv("GLIBC_TUNABLES", value.c_str(), 1) != 0) return;
  ::execv("/proc/self/exe", argv);
  // No /proc (or no exec): run on as we are, with the variable left for nobody.
  current ? ::setenv("GLIBC_TUNABLES", current, 1) : ::unsetenv("GLIBC_TUNABLES");
}

}  // namespace smtpfault::app
