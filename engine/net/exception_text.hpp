// What a coroutine that ended by an exception threw, for the completion handler of its
// co_spawn: errors are values on every path the code expects, so this is a bug's last report.
#pragma once

#include <exception>
#include <optional>
#include <string>

namespace smtpfault::net {

// Nothing when the coroutine finished normally.
inline std::optional<std::string> exception_text(std::exception_ptr e) {
  if (!e) return std::nullopt;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return std::string(ex.what());
  } catch (...) {
    return std::string("an exception that is not a std::exception");
  }
}

}  // namespace smtpfault::net
