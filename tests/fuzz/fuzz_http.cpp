// The HTTP API's input side: a request parsed by Beast with the server's limits, its query
// string and its JSON body read the way POST /api/v1/faults reads them (strict field readers,
// rule and action parsing), and the UTF-8 repair applied to wire data before it is served.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "control/api_types.hpp"
#include "control/request_reader.hpp"
#include "control/rule_json.hpp"
#include "json/json_text.hpp"

namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace c = smtpfault::control;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  (void)smtpfault::json::json_text(boost::json::string(input));

  http::request_parser<http::string_body> parser;
  parser.body_limit(64 * 1024);
  parser.header_limit(16 * 1024);
  parser.eager(true);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(input.data(), input.size()), ec);
  if (ec || !parser.is_done()) return 0;
  c::api_request req = c::to_api_request(parser.release());
  std::optional<c::api_error> err;
  c::query_reader q(req, err);
  (void)q.string("to");
  (void)q.integer("count", 1, 1000);
  auto body = c::parse_json_object(req.body);
  if (body) {
    (void)c::parse_rule(*body);
    (void)c::parse_action(*body, "action");
  }
  return 0;
}
