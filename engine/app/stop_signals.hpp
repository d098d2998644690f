// SIGINT, SIGTERM and SIGHUP, which stop `smtpfault serve`: held back until its handler is in
// place, let through while a configuration file that may never end is read, and watched on a
// thread of their own while it serves.
#pragma once

#include <atomic>
#include <csignal>
#include <mutex>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "net/server.hpp"
#include "net/transcript_log.hpp"

namespace smtpfault::app {

// While a configuration file that may never end is read (a FIFO nobody writes, /dev/stdin on a
// terminal), a stop signal ends the process as it ends any command: held, it would hold Ctrl-C
// back for as long as the read waits. A regular file is read with the signals still held (as
// PID 1 in a container a signal let through would be lost, not a stop). Restored when it goes.
class stop_signals_let_through {
 public:
  explicit stop_signals_let_through(const std::string& file);
  ~stop_signals_let_through();
  stop_signals_let_through(const stop_signals_let_through&) = delete;
  stop_signals_let_through& operator=(const stop_signals_let_through&) = delete;

 private:
  bool let_through_ = false;
  sigset_t before_{};
};

// Signals are taken from the start, on a thread of their own: one that comes while the server
// sets itself up (the scenario, the certificates) ends it as cleanly as a later one (as PID 1 in
// a container, a signal without a handler is ignored, and `docker stop` waits its 10 s); and an
// I/O thread may be busy in a hook that computes, which the stop must reach too (it ends at its
// next instruction). SIGHUP as well: a closed terminal, a supervisor. Nothing is reloaded.
class stop_signal_watcher {
 public:
  explicit stop_signal_watcher(net::transcript_log& log);
  ~stop_signal_watcher();
  stop_signal_watcher(const stop_signal_watcher&) = delete;
  stop_signal_watcher& operator=(const stop_signal_watcher&) = delete;

  int received() const { return received_; }  // 0 until one came

  // The server a signal stops while this lives; forgotten before the server goes, on every
  // way out, since the signal thread outlives it.
  class stopping {
   public:
    stopping(stop_signal_watcher& w, net::server& srv);
    ~stopping();
    stopping(const stopping&) = delete;
    stopping& operator=(const stopping&) = delete;

   private:
    stop_signal_watcher& watcher_;
  };

 private:
  boost::asio::io_context context_;
  boost::asio::signal_set signals_;
  std::thread thread_;
  std::mutex running_mutex_;
  net::server* running_ = nullptr;  // under running_mutex_
  std::atomic<int> received_{0};
};

}  // namespace smtpfault::app
