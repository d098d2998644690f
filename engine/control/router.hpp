// The route table of the HTTP API: method + path pattern -> handler. Patterns hold literal
// segments and "{id}" placeholders; the first matching route wins. docs/api.yaml documents every
// route listed in router.cpp (a test compares the two).
#pragma once

#include <string>
#include <vector>

#include "control/api_context.hpp"
#include "control/api_types.hpp"

namespace smtpfault::control {

using handler = boost::asio::awaitable<response> (*)(api_context&, api_request&);

struct route {
  http::verb method;
  const char* pattern;
  handler fn;
  bool open = false;   // answers without the bearer token (health checks)
  bool query = false;  // reads query parameters; elsewhere any is refused (400), not ignored
};

const std::vector<route>& routes();

// Finds the route, checks the token and runs the handler; 404/405/401 as JSON errors.
boost::asio::awaitable<response> dispatch(api_context& ctx, api_request& req,
                                          std::string_view authorization);

// Handlers, by file.
boost::asio::awaitable<response> get_healthz(api_context&, api_request&);
boost::asio::awaitable<response> get_readyz(api_context&, api_request&);
boost::asio::awaitable<response> get_metrics(api_context&, api_request&);
boost::asio::awaitable<response> list_messages(api_context&, api_request&);
boost::asio::awaitable<response> delete_messages(api_context&, api_request&);
boost::asio::awaitable<response> wait_messages(api_context&, api_request&);
boost::asio::awaitable<response> get_message(api_context&, api_request&);
boost::asio::awaitable<response> get_message_raw(api_context&, api_request&);
boost::asio::awaitable<response> get_message_part(api_context&, api_request&);
boost::asio::awaitable<response> list_sessions(api_context&, api_request&);
boost::asio::awaitable<response> delete_sessions(api_context&, api_request&);
boost::asio::awaitable<response> get_session(api_context&, api_request&);
boost::asio::awaitable<response> get_scenario(api_context&, api_request&);
boost::asio::awaitable<response> put_scenario(api_context&, api_request&);
boost::asio::awaitable<response> list_faults(api_context&, api_request&);
boost::asio::awaitable<response> add_fault(api_context&, api_request&);
boost::asio::awaitable<response> delete_faults(api_context&, api_request&);
boost::asio::awaitable<response> delete_fault(api_context&, api_request&);
boost::asio::awaitable<response> get_fault(api_context&, api_request&);
boost::asio::awaitable<response> get_expectations(api_context&, api_request&);

}  // namespace smtpfault::control
