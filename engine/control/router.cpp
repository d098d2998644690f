#include "control/router.hpp"

#include <openssl/crypto.h>

#include "control/request_reader.hpp"

namespace smtpfault::control {

namespace {

using http::verb;

bool match(std::string_view pattern, std::string_view path, std::vector<std::string>& params) {
  params.clear();
  while (!pattern.empty() || !path.empty()) {
    if (!pattern.starts_with('/') || !path.starts_with('/')) return false;
    pattern.remove_prefix(1);
    path.remove_prefix(1);
    auto pe = pattern.find('/');
    auto se = path.find('/');
    std::string_view pseg = pattern.substr(0, pe);
    std::string_view sseg = path.substr(0, se);
    if (pseg.starts_with('{')) {
      if (sseg.empty()) return false;
      params.emplace_back(sseg);
    } else if (pseg != sseg) {
      return false;
    }
    pattern = pe == std::string_view::npos ? std::string_view() : pattern.substr(pe);
    path = se == std::string_view::npos ? std::string_view() : path.substr(se);
  }
  return true;
}

bool token_ok(const std::string& token, std::string_view authorization) {
  constexpr std::string_view scheme = "Bearer ";
  if (authorization.size() != scheme.size() + token.size()) return false;
  if (!std::equal(scheme.begin(), scheme.end(), authorization.begin(),
                  [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
    return false;
  }
  return CRYPTO_memcmp(authorization.data() + scheme.size(), token.data(), token.size()) == 0;
}

response unauthorized() {
  auto res = error_response({401, "missing or wrong bearer token (Authorization: Bearer ...)", ""});
  res.set(http::field::www_authenticate, "Bearer realm=\"smtpfault\"");
  return res;
}

}  // namespace

const std::vector<route>& routes() {
  static const std::vector<route> table = {
      {verb::get, "/healthz", get_healthz, true},
      {verb::get, "/readyz", get_readyz, true},
      {verb::get, "/metrics", get_metrics},
      {verb::get, "/api/v1/messages", list_messages, false, true},
      {verb::delete_, "/api/v1/messages", delete_messages},
      {verb::get, "/api/v1/messages/wait", wait_messages, false, true},
      {verb::get, "/api/v1/messages/{id}", get_message},
      {verb::get, "/api/v1/messages/{id}/raw", get_message_raw},
      {verb::get, "/api/v1/messages/{id}/parts/{part}", get_message_part},
      {verb::get, "/api/v1/sessions", list_sessions, false, true},
      {verb::delete_, "/api/v1/sessions", delete_sessions},
      {verb::get, "/api/v1/sessions/{id}", get_session},
      {verb::get, "/api/v1/scenario", get_scenario},
      {verb::put, "/api/v1/scenario", put_scenario},
      {verb::get, "/api/v1/faults", list_faults},
      {verb::post, "/api/v1/faults", add_fault},
      {verb::delete_, "/api/v1/faults", delete_faults},
      {verb::get, "/api/v1/faults/{id}", get_fault},
      {verb::delete_, "/api/v1/faults/{id}", delete_fault},
      {verb::get, "/api/v1/expectations", get_expectations},
  };
  return table;
}

boost::asio::awaitable<response> dispatch(api_context& ctx, api_request& req,
                                          std::string_view authorization) {
  std::string allowed;
  std::vector<std::string> params;
  // HEAD is answered like GET; the server drops the body.
  verb method = req.method == verb::head ? verb::get : req.method;
  for (const auto& r : routes()) {
    if (!match(r.pattern, req.path, params)) continue;
    if (r.method != method) {
      if (allowed.find(http::to_string(r.method)) == std::string::npos) {
        allowed += (allowed.empty() ? "" : ", ") + std::string(http::to_string(r.method));
      }
      continue;
    }
    if (!r.open && !ctx.options.token.empty() && !token_ok(ctx.options.token, authorization)) {
      co_return unauthorized();
    }
    if (!r.query) {
      // A parameter that changes nothing must not pass: DELETE /api/v1/faults?id=r1 deleted
      // every rule.
      std::optional<api_error> err;
      query_reader(req, err).finish();
      if (err) co_return error_response(*err);
    }
    req.params = std::move(params);
    co_return co_await r.fn(ctx, req);
  }
  // With a token, a caller without it learns nothing, not even which paths exist.
  if (!ctx.options.token.empty() && !token_ok(ctx.options.token, authorization)) {
    co_return unauthorized();
  }
  if (!allowed.empty()) {
    auto res = error_response(
        {405, req.method_text + " is not allowed on " + req.path + "; allowed: " + allowed, ""});
    res.set(http::field::allow, allowed);
    co_return res;
  }
  co_return error_response({404, "no such endpoint: " + req.path, ""});
}

}  // namespace smtpfault::control
