// Finished SMTP sessions and their transcripts.
#include <boost/json/array.hpp>

#include "control/message_json.hpp"
#include "control/request_reader.hpp"
#include "control/router.hpp"

namespace smtpfault::control {

namespace json = boost::json;
namespace asio = boost::asio;

asio::awaitable<response> list_sessions(api_context& ctx, api_request& req) {
  std::optional<api_error> err;
  query_reader q(req, err);
  auto limit = q.integer("limit", 1, 1000).value_or(100);
  auto offset = q.integer("offset", 0, UINT64_MAX).value_or(0);
  q.finish();
  if (err) co_return error_response(*err);
  auto all = ctx.store.sessions();
  json::array items;
  for (std::uint64_t i = offset; i < all.size() && i < offset + limit; ++i)
    items.push_back(session_summary(*all[i]));
  co_return json_response(200, json::object{{"total", all.size()},
                                            {"offset", offset},
                                            {"count", items.size()},
                                            {"sessions", std::move(items)}});
}

asio::awaitable<response> delete_sessions(api_context& ctx, api_request& req) {
  std::optional<api_error> err;
  query_reader(req, err).finish();
  if (err) co_return error_response(*err);
  auto n = ctx.store.sessions().size();
  ctx.store.clear_sessions();
  ctx.stored_before = ctx.store.stored_total();  // expectations start from a clean slate
  co_return json_response(200, json::object{{"deleted", n}});
}

asio::awaitable<response> get_session(api_context& ctx, api_request& req) {
  auto s = ctx.store.find_session(req.params.at(0));
  if (!s) {
    co_return error_response({404,
                              "no finished session with id '" + req.params[0] +
                                  "' (open sessions are listed once they end)",
                              "id"});
  }
  co_return json_response(200, session_detail(*s));
}

}  // namespace smtpfault::control
