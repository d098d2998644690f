// Standard input for the commands `smtpfault test` runs, one per scenario: each reads the same
// octets from the start, as if it were the only one (`smtpfault test -- msmtp -t < mail.eml`).
#pragma once

#include <optional>
#include <string>

namespace smtpfault::app {

// Decides, once and before the first command starts, what every command reads:
// - a file (`< mail.eml`): the file itself, from its start, for each;
// - a pipe (`printf ... | smtpfault test ...`): what it carried up to its end, read first
//   (a pipe that sends nothing and does not end within 3 s counts as empty);
// - a terminal: nothing (/dev/null), so that no run waits for a key press;
// - anything else (/dev/null itself): passed on as it is.
// Returns what went wrong reading a pipe, if anything.
std::optional<std::string> share_standard_input();

// A new descriptor (close-on-exec, read from its start) for one command's standard input; -1:
// leave the command this process's own; -2: it could not be opened (shared_input_error says
// why, at once). The caller closes the descriptor once the command started.
int open_shared_input();
std::string shared_input_error();

}  // namespace smtpfault::app
