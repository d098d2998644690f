#include "app/stop_signals.hpp"

#include <pthread.h>
#include <sys/stat.h>

#include "app/commands.hpp"
#include "script/lua_sandbox.hpp"

namespace smtpfault::app {

namespace {

constexpr int stop_signals[] = {SIGINT, SIGTERM, SIGHUP};

const char* signal_name(int sig) {
  return sig == SIGINT ? "SIGINT" : sig == SIGHUP ? "SIGHUP" : "SIGTERM";
}

sigset_t stop_signal_set() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : stop_signals)
    sigaddset(&set, sig);
  return set;
}

}  // namespace

void hold_stop_signals(bool hold) {
  const sigset_t set = stop_signal_set();
  pthread_sigmask(hold ? SIG_BLOCK : SIG_UNBLOCK, &set, nullptr);
}

stop_signals_let_through::stop_signals_let_through(const std::string& file) {
  struct stat st {};
  if (file.empty() || (::stat(file.c_str(), &st) == 0 && S_ISREG(st.st_mode))) return;
  let_through_ = true;
  const sigset_t set = stop_signal_set();
  pthread_sigmask(SIG_UNBLOCK, &set, &before_);
}

stop_signals_let_through::~stop_signals_let_through() {
  if (let_through_) pthread_sigmask(SIG_SETMASK, &before_, nullptr);
}

stop_signal_watcher::stop_signal_watcher(net::transcript_log& log) : signals_(context_) {
  for (int sig : stop_signals)
    signals_.add(sig);
  signals_.async_wait([this, &log](boost::system::error_code ec, int sig) {
    if (ec) return;
    received_ = sig;
    log.info(std::string("received ") + signal_name(sig) + ", shutting down");
    script::lua_sandbox::interrupt_all();
    std::lock_guard lock(running_mutex_);
    if (running_) running_->stop();
  });
  thread_ = std::thread([this] { context_.run(); });
  hold_stop_signals(false);  // held since main(): one that came meanwhile is handled now
}

stop_signal_watcher::~stop_signal_watcher() {
  context_.stop();
  thread_.join();
}

stop_signal_watcher::stopping::stopping(stop_signal_watcher& w, net::server& srv) : watcher_(w) {
  std::lock_guard lock(watcher_.running_mutex_);
  watcher_.running_ = &srv;
}

stop_signal_watcher::stopping::~stopping() {
  std::lock_guard lock(watcher_.running_mutex_);
  watcher_.running_ = nullptr;
}

}  // namespace smtpfault::app
