// A statement that makes an action and drops it: `smtp.reply(550)` without `return` does
// nothing, and the scenario would seem to run while testing nothing. Found in the source when
// the scenario loads, so that the slip is named at its line before any client comes.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace smtpfault::script {

struct discarded_action {
  std::size_t line = 0;
  std::string call;  // "smtp.reply"
};

// The first statement in code that begins with a call of an action constructor (smtp.reply,
// smtp.close, ...). Comments and long strings are skipped; a call whose value is used (after
// `return`, `=`, `(`, `,` ...) is not a statement.
std::optional<discarded_action> find_discarded_action(std::string_view code);

}  // namespace smtpfault::script
