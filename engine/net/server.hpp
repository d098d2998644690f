// The listening side: acceptors for plain and implicit-TLS ports, a pool of I/O threads (one
// io_context each, so a session never changes thread), the connection cap and graceful stop.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "capture/message_store.hpp"
#include "net/fault_rules.hpp"
#include "net/metrics.hpp"
#include "net/port_claim.hpp"
#include "net/tls_context.hpp"
#include "net/transcript_log.hpp"
#include "script/scenario.hpp"
#include "session/server_session.hpp"

namespace smtpfault::net {

struct server_config {
  std::vector<boost::asio::ip::tcp::endpoint> listen;
  std::vector<boost::asio::ip::tcp::endpoint> tls_listen;
  session::server_options session;
  session::auth_policy auth;
  std::chrono::milliseconds idle_timeout{300'000};
  std::chrono::milliseconds command_timeout{60'000};
  std::chrono::milliseconds data_timeout{3'600'000};
  std::chrono::milliseconds tls_handshake_timeout{30'000};
  std::size_t max_connections = 1000;
  unsigned threads = 1;
  std::size_t max_transcript_entries = 1000;
};

class connection;

// A listener that could not be bound, with the setting that asked for it ("listen" or
// "tls_listen"), so that a default the user never gave can be named as such.
struct listen_error : std::runtime_error {
  listen_error(const std::string& what, std::string k)
      : std::runtime_error(what), key(std::move(k)) {}
  std::string key;
};

class server {
 public:
  server(server_config cfg, tls_contexts& tls, capture::message_store& store, transcript_log& log);
  ~server();

  // Binds every listener; throws std::runtime_error naming the address on failure.
  void bind();
  // "smtp 127.0.0.1:2525" / "smtps 127.0.0.1:2465" for each bound listener.
  std::vector<std::string> describe_listeners() const;
  std::vector<boost::asio::ip::tcp::endpoint> plain_endpoints() const;
  std::vector<boost::asio::ip::tcp::endpoint> tls_endpoints() const;

  // Runs the I/O threads until stop() completes; the calling thread is one of them.
  void run();
  // The server's own log (banner lines, notes): thread-safe, a whole line per call.
  transcript_log& log() { return log_; }
  // Thread-safe: stop accepting, answer open sessions 421 4.3.2, return from run() within 1 s.
  void stop();

  boost::asio::io_context& main_context() { return *contexts_.front(); }
  // The scenario new sessions run; sessions keep the one they started with.
  void set_scenario(std::shared_ptr<script::scenario> sc);
  std::shared_ptr<script::scenario> current_scenario() const;
  std::size_t active_connections() const { return active_.load(); }
  // Listeners bound and not stopping: what GET /readyz reports.
  bool ready() const { return bound_.load() && !stopping_.load(); }
  bool lmtp() const { return cfg_.session.lmtp; }

  server_metrics& metrics() { return metrics_; }
  fault_rules& rules() { return rules_; }
  // Adds a rule (returns its id); sessions already open match it from their next command.
  std::string add_rule(fault_rule r);
  // Snapshots of the sessions open now, each taken on its own I/O thread; empty once stopping.
  boost::asio::awaitable<std::vector<capture::session_record>> open_sessions();

 private:
  friend class connection;
  struct listener;
  struct worker;

  void open_everywhere(const boost::asio::ip::tcp::endpoint& ep, bool tls);
  boost::asio::ip::tcp::endpoint open_listener(const boost::asio::ip::tcp::endpoint& ep, bool tls,
                                               std::size_t worker);
  void ensure_port_free(const boost::asio::ip::tcp::endpoint& ep);
  void start_accepting(listener& l);
  void run_io(boost::asio::io_context& ctx);
  void on_connection_end(worker& w, connection* c);
  void finish_stop();

  server_config cfg_;
  tls_contexts& tls_;
  mutable std::mutex scenario_mu_;
  std::shared_ptr<script::scenario> scenario_;
  capture::message_store& store_;
  transcript_log& log_;
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<std::unique_ptr<worker>> workers_;
  // One per shared port; declared first so that it outlives the listeners.
  std::vector<port_claim> claims_;
  std::vector<std::unique_ptr<listener>> listeners_;
  // Sessions not yet ended; stop() waits for none to be left.
  std::atomic<std::size_t> active_{0};
  // Sessions counted against max_connections. A session gives its slot back before its
  // "session ended" line, so whoever reads that line may connect again at once.
  std::atomic<std::size_t> slots_held_{0};
  // Connections over the cap on an implicit-TLS port, in the handshake that carries their 421;
  // more than max_tls_refusals at once are closed without one, so that a flood of connections
  // that never finish a handshake holds no more than that many past the cap.
  std::atomic<std::size_t> tls_refusals_{0};
  static constexpr std::size_t max_tls_refusals = 32;
  std::atomic<std::uint64_t> session_counter_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> bound_{false};
  server_metrics metrics_;
  fault_rules rules_;
  bool stopped_ = false;                              // main thread only
  std::unique_ptr<boost::asio::steady_timer> force_;  // main thread only
  // Armed by stop(), touched only on the main context; cancelled once the last session ends.
  std::unique_ptr<boost::asio::steady_timer> force_stop_;
};

}  // namespace smtpfault::net
