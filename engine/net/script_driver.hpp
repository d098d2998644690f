// The driver of client scenarios, shared by its two source files: script_client.cpp (the run,
// connecting, TLS, writing) and script_reading.cpp (each connection read as its octets come).
// Other code uses net/script_client.hpp.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "net/script_client.hpp"
#include "net/transport.hpp"
#include "proto/reply_stream.hpp"

namespace smtpfault::net::script_run {

using script::client_op;
using script::op_result;
using steady = std::chrono::steady_clock;

// Replies read ahead of the script at most: a server that floods waits in its own send buffer.
constexpr std::size_t max_ready_replies = 1024;

// How an I/O error reads to a script: "closed", "reset", or the system's words.
std::string classify(const error_code& ec);
op_result failed(std::string error);

inline double seconds_since(steady::time_point t) {
  return std::chrono::duration<double>(steady::now() - t).count();
}

class driver {
 public:
  driver(asio::io_context& ctx, script::client_script& s,
         const std::function<void(int, std::string_view)>& on_line)
      : ctx_(ctx), script_(s), on_line_(on_line) {}

  asio::awaitable<void> run();
  // Ends every connection's reading and closes it: at the end of the run, also one that ended
  // with an internal error (else io_context::run() would wait for the servers to close).
  void stop_all();
  // An exception out of the run or a reader: the run ends there, as a script error.
  void internal_error(std::exception_ptr e);
  client_run_result result;

 private:
  // Each connection is read as its octets come, not when the script asks, so that the
  // transcript shows what arrived when it arrived (also while the script sleeps, and what it
  // never reads); the script takes the replies from `ready`.
  struct conn {
    explicit conn(asio::io_context& ctx)
        : io(tcp::socket(ctx)),
          arrived(ctx, steady::time_point::max()),
          room(ctx, steady::time_point::max()) {}
    int id = 0;
    transport io;
    proto::reply_stream replies;
    std::deque<proto::reply_stream::result> ready;  // whole replies (or malformed ones) not taken
    asio::steady_timer arrived;      // cancelled after each read: wakes the script to look again
    asio::steady_timer room;         // cancelled when the script takes a reply: wakes the reader
    unsigned reader = 0;             // the reading that is current; an older one stops (STARTTLS)
    bool waiting_for_close = false;  // wait_closed: read on past a full `ready`, unparsed
    std::unique_ptr<asio::ssl::context> tls;
    std::string host;
    std::string closed;       // "closed" or "reset" once the server has gone
    bool ended_here = false;  // the script closed or reset it: every later call says "closed"
    // Why a write failed for good (the server reset or closed): every later write fails the
    // same at once. The reactor does not try a socket again after EPIPE, so a write would
    // otherwise wait for its deadline.
    std::string write_failed;
  };

  bool finished_early_ = false;  // the script called skip()

  asio::awaitable<op_result> perform(const client_op& op);
  void skip(const client_op& op);
  void end_here(conn& c, bool reset);
  void give_up(std::string why);
  asio::awaitable<op_result> do_connect(const client_op& op);
  asio::awaitable<std::string> open_socket(conn& c, const client_op& op);
  asio::awaitable<op_result> do_handshake(conn& c, const client_op& op);
  std::optional<op_result> ca_refused(int conn_id, const std::string& ca_file);
  op_result ca_failure(int conn_id, const std::string& why);
  asio::awaitable<op_result> do_write(conn& c, const client_op& op);
  asio::awaitable<op_result> do_read(conn& c, const client_op& op);
  asio::awaitable<op_result> do_wait_closed(conn& c, const client_op& op);
  asio::awaitable<bool> pause(std::chrono::milliseconds d);
  asio::awaitable<std::string> write_until(conn& c, std::string_view bytes, steady::time_point dl,
                                           std::size_t& sent);
  void start_reading(conn& c);
  asio::awaitable<void> read_loop(conn& c, unsigned reader);
  void take_replies(conn& c);
  void note_end(conn& c, const error_code& ec);
  void settle_reset(conn& c);
  asio::awaitable<bool> wait_for_news(conn& c, steady::time_point deadline);
  steady::time_point deadline_of(const client_op& op) const;
  std::string timeout_text(const client_op& op) const;
  void log(int id, std::string line);
  void log_reply(int id, const proto::reply& r);

  asio::io_context& ctx_;
  script::client_script& script_;
  const std::function<void(int, std::string_view)>& on_line_;
  std::map<int, std::unique_ptr<conn>> conns_;
  bool stopping_ = false;  // the run is over: the closes that follow are its own
  std::vector<std::pair<int, std::string>> ended_;  // for the next result (op_result::ended)
};

}  // namespace smtpfault::net::script_run
