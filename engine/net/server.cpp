#include "net/server.hpp"

#include <charconv>
#include <cstdio>
#include <iterator>
#include <stdexcept>
#include <unordered_set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "net/connection.hpp"
#include "net/exception_text.hpp"

namespace smtpfault::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct server::listener {
  tcp::acceptor acceptor;
  bool implicit_tls;
  std::size_t worker;  // the I/O thread that accepts here and runs the sessions
  bool primary;        // the first of the acceptors sharing one address
};

struct server::worker {
  asio::io_context& ctx;
  asio::executor_work_guard<asio::io_context::executor_type> guard;
  std::unordered_set<connection*> live;  // touched only on ctx's thread
};

namespace {

void log_exception(std::exception_ptr e) {
  if (auto what = exception_text(e))
    std::fprintf(stderr, "smtpfault: internal error in a session: %s\n", what->c_str());
}

// "00002a": session ids are the accept count in hex, at least six digits.
std::string session_id(unsigned long long n) {
  char digits[16];
  auto end = std::to_chars(digits, std::end(digits), n, 16).ptr;
  std::string id(digits, end);
  if (id.size() < 6) id.insert(0, 6 - id.size(), '0');
  return id;
}

std::runtime_error listen_failure(const tcp::endpoint& ep, const boost::system::error_code& ec) {
  return std::runtime_error("cannot listen on " + endpoint_text(ep) + ": " + ec.message());
}

// A socket bound to ep on ctx, not yet listening.
tcp::acceptor bound_socket(asio::io_context& ctx, const tcp::endpoint& ep, bool reuse_port) {
  tcp::acceptor a(ctx);
  boost::system::error_code ec;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
  using reuse_port_option = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
  if (!ec && reuse_port) a.set_option(reuse_port_option(true), ec);
  if (!ec && ep.address().is_v6()) a.set_option(asio::ip::v6_only(true), ec);
  if (!ec) a.bind(ep, ec);
  if (ec) throw listen_failure(ep, ec);
  return a;
}

}  // namespace

server::server(server_config cfg, tls_contexts& tls, capture::message_store& store,
               transcript_log& log)
    : cfg_(std::move(cfg)), tls_(tls), store_(store), log_(log) {
  cfg_.session.auth = &cfg_.auth;
  unsigned n = cfg_.threads == 0 ? 1 : cfg_.threads;
  for (unsigned i = 0; i < n; ++i) {
    contexts_.push_back(std::make_unique<asio::io_context>(1));
    workers_.push_back(std::make_unique<worker>(
        worker{*contexts_.back(), asio::make_work_guard(*contexts_.back()), {}}));
  }
}

server::~server() = default;

// One acceptor per I/O thread on every address (SO_REUSEPORT): the kernel spreads connections
// over the threads, and a session starts on the thread that accepted it, with no hand-off.
void server::bind() {
  auto open_setting = [&](const std::vector<tcp::endpoint>& eps, bool tls, const char* key) {
    for (const auto& ep : eps) {
      try {
        open_everywhere(ep, tls);
      } catch (const std::runtime_error& e) {
        throw listen_error(e.what(), key);
      }
    }
  };
  open_setting(cfg_.listen, false, "listen");
  open_setting(cfg_.tls_listen, true, "tls_listen");
  for (auto& l : listeners_)
    start_accepting(*l);
  bound_ = true;
}

void server::open_everywhere(const tcp::endpoint& ep, bool tls) {
  ensure_port_free(ep);
  auto bound = open_listener(ep, tls, 0);  // port 0 becomes a real port here, shared by the others
  for (std::size_t w = 1; w < contexts_.size(); ++w)
    open_listener(bound, tls, w);
}

tcp::endpoint server::open_listener(const tcp::endpoint& ep, bool tls, std::size_t worker) {
  auto a = bound_socket(*contexts_[worker], ep, contexts_.size() > 1);
  boost::system::error_code ec;
  a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw listen_failure(ep, ec);
  auto bound = a.local_endpoint();
  listeners_.push_back(
      std::make_unique<listener>(listener{std::move(a), tls, worker, worker == 0}));
  return bound;
}

// SO_REUSEPORT would also let this server join a port another process (of the same user)
// already listens on, splitting the mail between the two without a word. A socket without it
// cannot bind a port in use, so one is bound first, and closed before the real ones bind.
// Another smtpfault starting at the same instant could pass that probe too: the claim
// (port_claim.hpp), held for the server's life, lets only one of the two through.
void server::ensure_port_free(const tcp::endpoint& ep) {
  if (contexts_.size() == 1 || ep.port() == 0) return;
  port_claim claim(ep);
  if (claim.taken()) throw listen_failure(ep, make_error_code(boost::system::errc::address_in_use));
  bound_socket(*contexts_[0], ep, false);
  claims_.push_back(std::move(claim));
}

std::vector<std::string> server::describe_listeners() const {
  std::vector<std::string> out;
  for (const auto& l : listeners_) {
    if (!l->primary) continue;
    const bool lmtp = cfg_.session.lmtp;
    out.push_back(
        std::string(l->implicit_tls ? (lmtp ? "lmtps " : "smtps ") : (lmtp ? "lmtp  " : "smtp  ")) +
        endpoint_text(l->acceptor.local_endpoint()));
  }
  return out;
}

std::vector<tcp::endpoint> server::plain_endpoints() const {
  std::vector<tcp::endpoint> out;
  for (const auto& l : listeners_)
    if (l->primary && !l->implicit_tls) out.push_back(l->acceptor.local_endpoint());
  return out;
}

std::vector<tcp::endpoint> server::tls_endpoints() const {
  std::vector<tcp::endpoint> out;
  for (const auto& l : listeners_)
    if (l->primary && l->implicit_tls) out.push_back(l->acceptor.local_endpoint());
  return out;
}

void server::start_accepting(listener& l) {
  auto accept_loop = [this, &l]() -> asio::awaitable<void> {
    auto& ctx = *contexts_[l.worker];
    tcp::endpoint peer;
    while (!stopping_) {
      // The peer comes with the accept, so no getpeername per connection.
      auto [ec, sock] = co_await l.acceptor.async_accept(peer, as_value);
      if (ec) {
        if (stopping_ || ec == asio::error::operation_aborted) break;
        // Out of descriptors or a transient accept error: pause instead of spinning.
        asio::steady_timer pause(ctx, std::chrono::milliseconds(50));
        co_await pause.async_wait(as_value);
        continue;
      }
      // Taken in one step: the other I/O threads accept at the same time.
      std::size_t held = slots_held_.load();
      bool over_cap = true;
      while (held < cfg_.max_connections) {
        if (slots_held_.compare_exchange_weak(held, held + 1)) {
          over_cap = false;
          ++active_;
          break;
        }
      }
      (over_cap ? metrics_.sessions_refused : metrics_.sessions).add();
      const bool tls_refusal = over_cap && l.implicit_tls;
      if (tls_refusal && tls_refusals_.fetch_add(1) >= max_tls_refusals) {
        tls_refusals_.fetch_sub(1);
        boost::system::error_code ignored;
        sock.close(ignored);
        continue;
      }
      worker& w = *workers_[l.worker];
      asio::co_spawn(
          ctx,
          [this, &w, s = std::move(sock), tls = l.implicit_tls, over_cap, tls_refusal,
           sid = session_id(++session_counter_), client = endpoint_text(peer),
           sc = current_scenario()]() mutable -> asio::awaitable<void> {
            auto c = std::make_shared<connection>(*this, std::move(s), tls, std::move(sid),
                                                  std::move(client), std::move(sc));
            w.live.insert(c.get());
            if (stopping_) c->shutdown();
            co_await c->run(over_cap);
            w.live.erase(c.get());
            if (!over_cap) on_connection_end(w, c.get());
            if (tls_refusal) tls_refusals_.fetch_sub(1);
          },
          log_exception);
    }
  };
  asio::co_spawn(*contexts_[l.worker], accept_loop, log_exception);
}

std::string server::add_rule(fault_rule r) {
  auto id = rules_.add(std::move(r));
  for (auto& w : workers_) {
    asio::post(w->ctx, [wk = w.get()] {
      for (auto* c : wk->live)
        c->rules_appeared();
    });
  }
  return id;
}

asio::awaitable<std::vector<capture::session_record>> server::open_sessions() {
  std::vector<capture::session_record> out;
  for (auto& w : workers_) {
    // A stopped I/O thread would never run the snapshot: nothing is open then anyway.
    if (stopping_) break;
    auto part = co_await asio::co_spawn(
        w->ctx,
        [wk = w.get()]() -> asio::awaitable<std::vector<capture::session_record>> {
          std::vector<capture::session_record> v;
          for (const auto* c : wk->live)
            v.push_back(c->snapshot());
          co_return v;
        },
        asio::use_awaitable);
    for (auto& r : part)
      out.push_back(std::move(r));
  }
  co_return out;
}

void server::on_connection_end(worker&, connection*) {
  if (--active_ == 0 && stopping_) asio::post(main_context(), [this] { finish_stop(); });
}

// On the main thread: once no session is left, let every I/O thread run out of work.
void server::finish_stop() {
  if (active_ != 0 || stopped_) return;
  stopped_ = true;
  if (force_) force_->cancel();
  for (auto& w : workers_)
    asio::post(w->ctx, [wk = w.get()] { wk->guard.reset(); });
}

void server::set_scenario(std::shared_ptr<script::scenario> sc) {
  std::lock_guard lock(scenario_mu_);
  scenario_ = std::move(sc);
}

std::shared_ptr<script::scenario> server::current_scenario() const {
  std::lock_guard lock(scenario_mu_);
  return scenario_;
}

// One I/O thread's loop: the transcript lines a handler wrote go out together when it returns.
// Without a log there is nothing to flush, and run() spares each handler run_one()'s own set-up.
void server::run_io(asio::io_context& ctx) {
  if (!log_.enabled()) {
    ctx.run();
    return;
  }
  transcript_log::defer_flushes_on_this_thread();
  while (ctx.run_one() > 0)
    log_.flush_pending();
}

void server::run() {
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < contexts_.size(); ++i) {
    threads.emplace_back([this, ctx = contexts_[i].get()] { run_io(*ctx); });
  }
  run_io(main_context());
  for (auto& t : threads)
    t.join();
}

void server::stop() {
  if (stopping_.exchange(true)) return;
  for (auto& l : listeners_) {
    asio::post(*contexts_[l->worker], [acc = &l->acceptor] {
      boost::system::error_code ignored;
      acc->close(ignored);
    });
  }
  asio::post(main_context(), [this] {
    // Sessions get a moment to send their 421; after that everything stops regardless.
    force_ = std::make_unique<asio::steady_timer>(main_context(), std::chrono::milliseconds(800));
    force_->async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      for (auto& ctx : contexts_)
        ctx->stop();
    });
    finish_stop();
  });
  for (auto& w : workers_) {
    asio::post(w->ctx, [wk = w.get()] {
      for (auto* c : wk->live)
        c->shutdown();
    });
  }
}

}  // namespace smtpfault::net
