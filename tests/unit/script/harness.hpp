// Test driver for scenarios: loads Lua text as "test.lua", opens a session binding on a real
// server_session and runs hooks the way net/connection_decisions.cpp does, without sockets or
// timers.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "script/scenario.hpp"
#include "session/server_session.hpp"
#include "session/transcript.hpp"

namespace smtpfault::script::testing {

using session::hook;
using status = hook_outcome::status;
inline const session::server_session::clock::time_point t0{std::chrono::seconds{1'700'000'000}};

// Small limits so tests that hit them finish fast.
inline scenario_options quick_options(std::uint64_t seed = 1) {
  scenario_options o;
  o.seed = seed;
  o.limits.memory_bytes = 16 * 1024 * 1024;
  o.limits.instructions = 2'000'000;
  o.limits.load_instructions = 2'000'000;
  return o;
}

// The load error, or "" when the scenario loaded.
inline std::string load_error(std::string code, scenario_options opts = quick_options()) {
  auto sc = scenario::load(std::move(code), "test.lua", opts);
  return sc ? std::string() : sc.error();
}

class driver {
 public:
  explicit driver(std::string code, scenario_options opts = quick_options()) {
    auto sc = scenario::load(std::move(code), "test.lua", opts);
    if (!sc) {
      ADD_FAILURE() << "load failed: " << sc.error();
      return;
    }
    scenario_ = *sc;
    open_session();
  }

  bool loaded() const { return scenario_ != nullptr; }
  scenario& sc() { return *scenario_; }
  session::server_session& session() { return *session_; }
  const std::vector<std::string>& script_log() const { return script_log_; }
  const session::transcript& transcript() const { return *log_; }

  // A fresh session (and binding) on the same scenario, as for the next connection.
  void open_session(std::string client = "127.0.0.1:40000") {
    if (!scenario_) return;
    binding_.reset();
    session::session_facts f;
    f.session_id = "s" + std::to_string(++sessions_);
    f.client_address = std::move(client);
    log_ = std::make_unique<session::transcript>(f.session_id, 10000);
    session::server_options o;
    o.hooks = scenario_->hooks();
    o.lmtp = lmtp_;
    session_ = std::make_unique<session::server_session>(o, f, *log_);
    binding_ = scenario_->open_session(
        [this](std::string line) { script_log_.push_back(std::move(line)); });
  }

  // The session speaks LMTP (RFC 2033) from now on: a fresh one.
  void use_lmtp() {
    lmtp_ = true;
    open_session();
  }

  // One hook call, exactly as start() reports it (a sleep is not resumed).
  hook_outcome start(hook h) {
    if (!scenario_) return failed("not loaded");
    return scenario_->start(*binding_, h, *session_);
  }
  hook_outcome resume() {
    if (!scenario_) return failed("not loaded");
    return scenario_->resume(*binding_, *session_);
  }
  // A hook call with every sleep resumed at once; sleeps are collected in slept().
  hook_outcome run(hook h) {
    auto out = start(h);
    while (out.st == status::sleeping) {
      slept_.push_back(out.sleep);
      out = resume();
    }
    return out;
  }
  const std::vector<std::chrono::milliseconds>& slept() const { return slept_; }

  // Feeds client bytes; each hook the session consults runs to completion and its outcome is
  // kept in outcomes(). Returns the replies the session wrote.
  std::string send(std::string_view bytes) {
    std::string out;
    if (!scenario_) return out;
    while (!bytes.empty() && !session_->closed()) {
      std::size_t used = session_->receive(bytes, t0);
      bytes.remove_prefix(used);
      bool progressed = pump(out);
      if (used == 0 && !progressed) break;
    }
    pump(out);
    return out;
  }
  // Starts the session (greeting; on_connect when defined).
  std::string greet() {
    std::string out;
    if (!scenario_) return out;
    session_->start(t0);
    pump(out);
    return out;
  }
  const std::vector<std::pair<hook, hook_outcome>>& outcomes() const { return outcomes_; }

 private:
  static hook_outcome failed(std::string why) {
    hook_outcome o;
    o.st = status::failed;
    o.error = std::move(why);
    return o;
  }

  bool pump(std::string& out) {
    bool any = false;
    while (auto a = session_->next_action()) {
      any = true;
      if (auto* r = std::get_if<session::send_reply>(&*a)) {
        out += std::to_string(r->reply.code) + " " + r->reply.lines.back() + "\n";
      } else if (auto* h = std::get_if<session::consult_hook>(&*a)) {
        auto o = run(h->which);
        outcomes_.emplace_back(h->which, o);
        session_->on_decision(o.st == status::done ? o.action : fault::action{}, t0);
      } else if (std::holds_alternative<session::deliver_message>(*a)) {
        session_->on_stored("id-1", t0);
      } else if (std::holds_alternative<session::start_tls>(*a)) {
        session_->on_tls_established("TLSv1.3", "TLS_AES_128_GCM_SHA256", t0);
      }
    }
    return any;
  }

  std::shared_ptr<scenario> scenario_;
  std::unique_ptr<session::transcript> log_;
  std::unique_ptr<session::server_session> session_;
  std::unique_ptr<session_binding> binding_;
  std::vector<std::string> script_log_;
  std::vector<std::chrono::milliseconds> slept_;
  std::vector<std::pair<hook, hook_outcome>> outcomes_;
  int sessions_ = 0;
  bool lmtp_ = false;
};

// The action a one-line on_connect hook returns: `return <expr>`.
inline hook_outcome connect_returning(const std::string& expr,
                                      scenario_options opts = quick_options()) {
  driver d("function on_connect(s)\n  return " + expr + "\nend\n", opts);
  return d.start(hook::connect);
}

// The first line of the reply a hook call decided on ("default" for none, "error: ..." when it
// failed).
inline std::string text_of(const hook_outcome& o) {
  if (o.st == status::failed) return "error: " + o.error;
  return o.action.reply ? o.action.reply->lines.at(0) : "default";
}

// The error hook h failed with, "" when it did not fail.
inline std::string hook_failure(driver& d, hook h) {
  const auto o = d.start(h);
  return o.st == status::failed ? o.error : "";
}

inline std::string connect_failure(driver& d) {
  return hook_failure(d, hook::connect);
}

// Runs `return <expr>` inside a hook and hands back tostring() of the value (or "error: ...").
inline std::string eval(const std::string& expr, const std::string& prelude = "") {
  driver d(prelude + "\nfunction on_connect(s)\n  return smtp.reply(250, tostring(" + expr +
           "))\nend\n");
  auto o = d.start(hook::connect);
  if (o.st == status::failed) return "error: " + o.error;
  return o.action.reply ? o.action.reply->lines.at(0) : "no reply";
}

}  // namespace smtpfault::script::testing
