#include "control/api_types.hpp"

#include <boost/beast/http/field.hpp>

#include "json/json_text.hpp"
#include "proto/hex.hpp"

namespace smtpfault::control {

namespace {

// A '%' without two hex digits after it is kept as it is, and *bad set.
std::string percent_decode(std::string_view s, bool plus_is_space, bool* bad = nullptr) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && proto::hex_value(s[i + 1]) >= 0 &&
        proto::hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(proto::hex_value(s[i + 1]) * 16 + proto::hex_value(s[i + 2]));
      i += 2;
    } else {
      if (s[i] == '%' && bad) *bad = true;
      out += (plus_is_space && s[i] == '+') ? ' ' : s[i];
    }
  }
  return out;
}

}  // namespace

api_request to_api_request(http::request<http::string_body>&& req) {
  api_request r;
  r.method = req.method();
  r.method_text = std::string(req.method_string());
  r.version = req.version();
  std::string_view target = req.target();
  std::string absolute_query;
  // RFC 9112 3.2.2: a server accepts the absolute form ("http://host:8025/api/v1/..."), which
  // some proxies send.
  if (auto scheme = target.find("://");
      scheme != std::string_view::npos &&
      target.substr(0, scheme).find('/') == std::string_view::npos) {
    const auto path = target.find_first_of("/?", scheme + 3);
    if (path == std::string_view::npos) {
      target = "/";
    } else if (target[path] == '?') {
      absolute_query = "/" + std::string(target.substr(path));  // "http://h:1?x=1": "/?x=1"
      target = absolute_query;
    } else {
      target = target.substr(path);
    }
  }
  auto q = target.find('?');
  r.path = percent_decode(target.substr(0, q), false);
  if (q != std::string_view::npos) {
    std::string_view query = target.substr(q + 1);
    while (!query.empty()) {
      auto amp = query.find('&');
      std::string_view pair = query.substr(0, amp);
      query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
      if (pair.empty()) continue;
      auto eq = pair.find('=');
      bool bad = false;
      r.query.emplace_back(
          percent_decode(pair.substr(0, eq), true, &bad),
          eq == std::string_view::npos ? "" : percent_decode(pair.substr(eq + 1), true, &bad));
      if (bad && r.badly_encoded.empty()) r.badly_encoded = std::string(pair);
    }
  }
  r.body = std::move(req.body());
  return r;
}

namespace json = boost::json;

response text_response(unsigned status, std::string body, std::string_view content_type) {
  response res{static_cast<http::status>(status), 11};
  res.set(http::field::content_type, content_type);
  res.set(http::field::cache_control, "no-store");
  res.body() = std::move(body);
  return res;
}

// json_text writes octets that are not UTF-8 (wire data in a reply) as U+FFFD.
response json_response(unsigned status, json::value body) {
  return text_response(status, smtpfault::json::json_text(body) + "\n", "application/json");
}

response error_response(const api_error& e) {
  json::object o{{"error", e.message}, {"status", e.status}};
  if (!e.field.empty()) o["field"] = e.field;
  return json_response(e.status, o);
}

}  // namespace smtpfault::control
