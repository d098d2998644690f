// How a session ends on the server's own account: the final replies (all 421 but a failed
// start's 451) for too many connections, the timeouts and a shutdown, each followed by a close.
#include <string>
#include <string_view>
#include <utility>

#include "session/server_session.hpp"

namespace smtpfault::session {

void server_session::final_reply(int code, const char* enhanced, std::string text) {
  if (mode_ == mode::closed) return;
  // Always with the enhanced code: these endings are what users grep their logs for. A 421
  // names the server (RFC 5321 3.8); the scenario error is worded as at any other step.
  proto::reply r(code, enhanced,
                 code == 421 ? opts_.hostname + " " + std::move(text) : std::move(text));
  log_reply(r);
  actions_.emplace_back(send_reply{std::move(r), nullptr});
  close();
}

void server_session::reject_busy(clock::time_point now) {
  now_ = now;
  final_reply(421, "4.7.0", "Too many connections, try again later");
}

void server_session::fail_at_start(clock::time_point now) {
  now_ = now;
  final_reply(451, "4.3.0", "Requested action aborted: scenario error");
}

void server_session::on_idle_timeout(clock::time_point now) {
  now_ = now;
  final_reply(421, "4.4.2", "Idle timeout, closing connection");
}

void server_session::on_command_timeout(clock::time_point now) {
  now_ = now;
  final_reply(421, "4.4.2", "Timeout waiting for the rest of a command line, closing connection");
}

void server_session::on_data_timeout(clock::time_point now) {
  now_ = now;
  final_reply(421, "4.4.2", "Timeout waiting for the rest of the message, closing connection");
}

namespace {
constexpr std::string_view shutting_down = "Service shutting down, closing connection";
}

void server_session::on_shutdown(clock::time_point now) {
  now_ = now;
  final_reply(421, "4.3.2", std::string(shutting_down));
}

proto::reply server_session::shutdown_reply(clock::time_point now) {
  now_ = now;
  proto::reply r(421, "4.3.2", opts_.hostname + " " + std::string(shutting_down));
  log_reply(r);
  mode_ = mode::closed;
  return r;
}

}  // namespace smtpfault::session
