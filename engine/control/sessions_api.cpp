// SMTP sessions and their transcripts: finished ones from the store, open ones as snapshots.
#include <boost/json/array.hpp>

#include "control/message_json.hpp"
#include "control/request_reader.hpp"
#include "control/router.hpp"
#include "script/catalogue.hpp"

namespace smtpfault::control {

namespace json = boost::json;
namespace asio = boost::asio;

asio::awaitable<response> list_sessions(api_context& ctx, api_request& req) {
  std::optional<api_error> err;
  query_reader q(req, err);
  auto limit = q.integer("limit", 1, 1000).value_or(100);
  auto offset = q.integer("offset", 0, UINT64_MAX).value_or(0);
  const auto state = q.string("state").value_or("finished");
  // Started at or after: the expectations' "since" gives the sessions its verdicts judge.
  const auto since = q.time("since");
  if (state != "finished" && state != "open" && state != "all") {
    q.invalid("state", "must be finished, open or all, got '" + state + "'");
  }
  q.finish();
  if (err) co_return error_response(*err);
  // Finished first, in the order they ended; then the open ones.
  std::vector<std::shared_ptr<const capture::session_record>> all;
  if (state != "open") all = ctx.store.sessions();
  if (state != "finished") {
    for (auto& r : co_await ctx.server.open_sessions())
      all.push_back(std::make_shared<const capture::session_record>(std::move(r)));
  }
  if (since) {
    std::erase_if(
        all, [&](const auto& s) { return s->entries.empty() || s->entries.front().at < *since; });
  }
  json::array items;
  for (std::uint64_t i = offset; i < all.size() && i < offset + limit; ++i)
    items.push_back(session_summary(*all[i]));
  co_return json_response(200, json::object{{"total", all.size()},
                                            {"offset", offset},
                                            {"count", items.size()},
                                            {"sessions", std::move(items)}});
}

asio::awaitable<response> delete_sessions(api_context& ctx, api_request&) {
  auto n = ctx.store.sessions().size();
  ctx.store.clear_sessions();
  // Expectations start from a clean slate, and say so with their "since".
  ctx.stored_before = ctx.store.stored_total();
  ctx.scenario_since = std::chrono::system_clock::now();
  json::object out{{"deleted", n}};
  // The slate includes the scenario's own memory (greylist's first attempts, a counter): else
  // the next test's first session would meet the last test's state. Sessions going on keep
  // the state they began with.
  if (auto sc = ctx.server.current_scenario()) {
    auto fresh = sc->restarted();
    if (fresh) {
      ctx.server.set_scenario(*fresh);
      ctx.server.log().info("scenario " + script::shown_name(sc->name()) +
                            " restarted with the sessions deleted over the API; " +
                            sc->seed_text());
    } else {
      out["note"] = "the scenario kept its state: loading it again failed: " + fresh.error();
      ctx.server.log().info("scenario " + script::shown_name(sc->name()) +
                            " kept its state: loading it again for the sessions deleted over the "
                            "API failed: " +
                            fresh.error());
    }
  }
  co_return json_response(200, std::move(out));
}

asio::awaitable<response> get_session(api_context& ctx, api_request& req) {
  const auto& id = req.params.at(0);
  if (auto s = ctx.store.find_session(id)) co_return json_response(200, session_detail(*s));
  for (const auto& r : co_await ctx.server.open_sessions()) {
    if (r.facts.session_id == id) co_return json_response(200, session_detail(r));
  }
  co_return error_response({404, "no session with id '" + id + "' (or it was forgotten)", "id"});
}

}  // namespace smtpfault::control
