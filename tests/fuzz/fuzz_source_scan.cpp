// The scanners that read a scenario's or a client script's source before it runs (the dropped
// action, the params a scenario names, the calls a client script cannot have meant, the modules
// it requires): any text, unterminated strings and comments included, and every line they name
// lies within the text.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "script/source_scan.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view code(reinterpret_cast<const char*>(data), size);
  const auto lines = static_cast<std::size_t>(std::count(code.begin(), code.end(), '\n')) + 1;
  using namespace smtpfault::script;
  for (const auto& r : smtp_references(code))
    if (r.line < 1 || r.line > lines) std::abort();
  if (auto d = find_discarded_action(code); d && (d->line < 1 || d->line > lines)) std::abort();
  for (const auto& c : undefined_calls(code))
    if (c.line < 1 || c.line > lines || c.name.empty()) std::abort();
  // A required name is text of the source, on one of its lines.
  for (const auto& r : literal_requires(code))
    if (r.line < 1 || r.line > lines || code.find(r.name) == std::string_view::npos) std::abort();
  const std::vector<std::string> keys{"window", "limit", "x"};
  const auto unread = params_never_named(code, keys);
  // Only keys that were given, each at most once.
  for (const auto& k : unread)
    if (std::count(keys.begin(), keys.end(), k) != 1) std::abort();
  if (unread.size() > keys.size()) std::abort();
  return 0;
}
