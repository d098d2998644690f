// Requests as handlers see them, responses they return, and the JSON error body every 4xx/5xx
// carries: {"error": "what is wrong", "field": "action.reply.code"}.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/value.hpp>

#include "proto/expected.hpp"

namespace smtpfault::control {

namespace http = boost::beast::http;
using response = http::response<http::string_body>;

struct api_request {
  http::verb method = http::verb::get;
  std::string method_text;  // as sent: "FOO" for a method http::verb does not know
  std::string path;
  std::vector<std::pair<std::string, std::string>> query;  // percent-decoded, in order
  // The first query item with a '%' that is not followed by two hex digits ("to=%ZZ"): a
  // query_reader refuses the request, rather than searching for the text as it stands.
  std::string badly_encoded;
  std::vector<std::string> params;  // the {id} parts of the route
  std::string body;
  unsigned version = 11;
  // Whether the client has closed its end (a long-poll looks now and then, so that one whose
  // client left does not hold its connection until its own timeout). Unset: never.
  std::function<bool()> client_gone;
};

struct api_error {
  unsigned status = 400;
  std::string message;
  std::string field;  // empty when no single field is at fault
};

template <class T>
using result = proto::expected<T, api_error>;

inline proto::unexpected<api_error> fail(unsigned status, std::string message,
                                         std::string field = {}) {
  return proto::unexpected{api_error{status, std::move(message), std::move(field)}};
}

// A Beast request as the handlers see it: path and query percent-decoded, query in order.
api_request to_api_request(http::request<http::string_body>&& req);

// Serialises body as application/json; octets that are not UTF-8 are written as U+FFFD.
response json_response(unsigned status, boost::json::value body);
response error_response(const api_error& e);
response text_response(unsigned status, std::string body, std::string_view content_type);

}  // namespace smtpfault::control
