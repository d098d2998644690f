// GET /healthz (the process answers), /readyz (SMTP listeners bound, not stopping) and
// /metrics in the Prometheus text exposition format.
#include <string>

#include <boost/json/object.hpp>

#include "control/router.hpp"

namespace smtpfault::control {

namespace {

struct prometheus {
  std::string out;

  void family(const char* name, const char* type, const char* help) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  }
  void sample(const char* name, std::uint64_t v, const std::string& labels = {}) {
    out += name;
    if (!labels.empty()) out += "{" + labels + "}";
    out += " " + std::to_string(v) + "\n";
  }
  void one(const char* name, const char* type, const char* help, std::uint64_t v) {
    family(name, type, help);
    sample(name, v);
  }
};

}  // namespace

boost::asio::awaitable<response> get_healthz(api_context&, api_request&) {
  co_return json_response(200, boost::json::object{{"status", "ok"}});
}

boost::asio::awaitable<response> get_readyz(api_context& ctx, api_request&) {
  bool ready = ctx.server.ready();
  co_return json_response(ready ? 200 : 503,
                          boost::json::object{{"status", ready ? "ready" : "not ready"}});
}

boost::asio::awaitable<response> get_metrics(api_context& ctx, api_request&) {
  auto& m = ctx.server.metrics();
  prometheus p;
  p.one("smtpfault_sessions_total", "counter", "SMTP sessions accepted and served.",
        m.sessions.get());
  p.one("smtpfault_sessions_refused_total", "counter",
        "Connections refused with 421 4.7.0 over the connection cap.", m.sessions_refused.get());
  p.one("smtpfault_sessions_active", "gauge", "SMTP sessions open now.",
        ctx.server.active_connections());
  p.one("smtpfault_messages_total", "counter", "Messages accepted and stored since start.",
        ctx.store.stored_total());
  p.one("smtpfault_messages_stored", "gauge", "Messages held in memory (the API's view).",
        ctx.store.message_count());
  p.one("smtpfault_received_bytes_total", "counter", "Octets read from SMTP clients.",
        m.bytes_received.get());
  p.one("smtpfault_sent_bytes_total", "counter", "Octets written to SMTP clients.",
        m.bytes_sent.get());
  p.family("smtpfault_tls_handshakes_total", "counter",
           "Server TLS handshakes (STARTTLS and implicit TLS) by result.");
  p.sample("smtpfault_tls_handshakes_total", m.tls_handshakes.get(), "result=\"ok\"");
  p.sample("smtpfault_tls_handshakes_total", m.tls_handshake_failures.get(), "result=\"failed\"");
  p.one("smtpfault_lua_errors_total", "counter",
        "Scenario hook calls that failed (the session got 451 4.3.0; after on_disconnect, none).",
        m.lua_errors.get());
  p.one("smtpfault_fault_rules_fired_total", "counter", "API fault rules that matched.",
        m.rules_fired.get());
  p.one("smtpfault_fault_rules", "gauge", "API fault rules in force.",
        ctx.server.rules().list().size());
  p.family("smtpfault_faults_applied_total", "counter",
           "Fault actions applied (scenario hooks and API rules), by kind.");
  for (std::size_t i = 0; i < net::fault_kind_count; ++i) {
    auto k = static_cast<net::fault_kind>(i);
    p.sample("smtpfault_faults_applied_total", m.faults[i].get(),
             "kind=\"" + std::string(net::fault_kind_name(k)) + "\"");
  }
  co_return text_response(200, std::move(p.out), "text/plain; version=0.0.4; charset=utf-8");
}

}  // namespace smtpfault::control
