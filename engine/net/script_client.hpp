// The driver of client scenarios (`smtpfault run`): one coroutine runs the script's
// conversation, performing each operation the script yields (connect, write, read a reply, TLS
// handshake, ...) with a deadline, and resuming the script with the outcome as a value.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "script/client_script.hpp"

namespace smtpfault::net {

// Everything one connection saw: "C: ..." sent, "S: ..." received, "*: ..." events.
struct connection_transcript {
  int id = 0;
  std::string peer;  // "127.0.0.1:2525"
  std::vector<std::string> lines;
};

struct client_run_result {
  // finished: the script ran to its end (its verdicts are in the script's steps);
  // script_error: a Lua error ("file:line: message"); target_error: a connection or TLS
  // handshake the script did not mark may_fail could not be made (or STARTTLS was refused);
  // interrupted: SIGINT or SIGTERM arrived (signal says which) and the run stopped there.
  enum class ending { finished, script_error, target_error, interrupted } how = ending::finished;
  int signal = 0;
  std::string error;
  std::vector<connection_transcript> connections;
  double seconds = 0;
};

// on_line(conn, line) sees each transcript line as it happens (conn 0: not about a connection).
// SIGINT and SIGTERM end the run where it is, as `interrupted`: the caller still reports.
client_run_result run_client_script(script::client_script& script,
                                    const std::function<void(int, std::string_view)>& on_line);

}  // namespace smtpfault::net
