// Captured messages: list with filters and pagination, one message, its raw octets, delete all,
// and the long-poll wait that returns as soon as enough matching messages exist.
#include <algorithm>
#include <memory>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json/array.hpp>

#include "control/message_json.hpp"
#include "control/request_reader.hpp"
#include "control/router.hpp"
#include "net/as_value.hpp"
#include "proto/duration.hpp"

namespace smtpfault::control {

namespace json = boost::json;
namespace asio = boost::asio;
using stored_list = std::vector<std::shared_ptr<const capture::stored_message>>;

namespace {

constexpr std::uint64_t max_limit = 1000;

// Reads to, from, subject, test and since into a filter.
message_filter read_filter(query_reader& q, std::optional<api_error>& err) {
  message_filter f;
  f.to = q.string("to");
  // Every recipient has an address: an empty filter (to=$UNSET_VARIABLE) could only time out.
  if (f.to && f.to->empty() && !err) {
    err = api_error{400, "query parameter to: empty (leave it out to match any recipient)", "to"};
  }
  f.from = q.string("from");
  // A form's '+' is a space, which no address holds: "to=a+tag@x" written by hand (curl) is
  // the plus-address, and one a form encoder wrote has its '+' as %2B, unchanged by this.
  for (auto* address : {&f.to, &f.from})
    if (*address) std::replace((*address)->begin(), (*address)->end(), ' ', '+');
  f.subject = q.string("subject");
  // Every subject holds the empty string: subject=$UNSET_VARIABLE would match the first message
  // that came, whatever it was.
  if (f.subject && f.subject->empty() && !err) {
    err = api_error{400, "query parameter subject: empty (leave it out to match any subject)",
                    "subject"};
  }
  f.test = q.string("test");
  f.since = q.time("since");
  return f;
}

stored_list matching(const capture::message_store& store, const message_filter& f) {
  stored_list out;
  for (auto& m : store.messages())
    if (f.matches(*m)) out.push_back(std::move(m));
  return out;
}

json::object page(const stored_list& all, std::uint64_t offset, std::uint64_t limit) {
  json::array items;
  for (std::uint64_t i = offset; i < all.size() && i < offset + limit; ++i)
    items.push_back(message_summary(*all[i]));
  return json::object{{"total", all.size()},
                      {"offset", offset},
                      {"count", items.size()},
                      {"messages", std::move(items)}};
}

// Removes the store listener, and the timer from those the API's stop wakes, when the waiting
// request ends, however it ends.
struct subscription {
  api_context& ctx;
  asio::steady_timer& wake;
  std::uint64_t token;
  ~subscription() {
    ctx.store.unsubscribe(token);
    ctx.long_polls.erase(&wake);
  }
};

std::string found_text(std::size_t found, std::size_t count) {
  return std::to_string(found) + " of " + std::to_string(count) + " matching message(s)";
}

}  // namespace

asio::awaitable<response> list_messages(api_context& ctx, api_request& req) {
  std::optional<api_error> err;
  query_reader q(req, err);
  auto filter = read_filter(q, err);
  auto limit = q.integer("limit", 1, max_limit).value_or(100);
  auto offset = q.integer("offset", 0, UINT64_MAX).value_or(0);
  q.finish();
  if (err) co_return error_response(*err);
  co_return json_response(200, page(matching(ctx.store, filter), offset, limit));
}

asio::awaitable<response> delete_messages(api_context& ctx, api_request&) {
  auto n = ctx.store.message_count();
  ctx.store.clear_messages();
  co_return json_response(200, json::object{{"deleted", n}});
}

asio::awaitable<response> get_message(api_context& ctx, api_request& req) {
  auto m = ctx.store.find_message(req.params.at(0));
  if (!m) co_return error_response({404, "no message with id '" + req.params[0] + "'", "id"});
  co_return json_response(200, message_detail(*m));
}

asio::awaitable<response> get_message_raw(api_context& ctx, api_request& req) {
  auto m = ctx.store.find_message(req.params.at(0));
  if (!m) co_return error_response({404, "no message with id '" + req.params[0] + "'", "id"});
  co_return text_response(200, m->msg.data, "message/rfc822");
}

asio::awaitable<response> get_message_part(api_context& ctx, api_request& req) {
  auto m = ctx.store.find_message(req.params.at(0));
  if (!m) co_return error_response({404, "no message with id '" + req.params[0] + "'", "id"});
  auto part = find_part(m->msg.data, req.params.at(1));
  if (!part) {
    co_return error_response({404,
                              "message '" + req.params[0] + "' has no part '" + req.params[1] +
                                  "' (its \"parts\" in GET /api/v1/messages/" + req.params[0] +
                                  " list them)",
                              "part"});
  }
  auto res = text_response(200, std::move(part->octets), part->content_type);
  // What a mailer sent is no page of the API's: a browser neither renders it there (an HTML
  // part's script would run with the API's origin) nor guesses another type.
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Content-Security-Policy", "sandbox");
  res.set(http::field::content_disposition, "attachment");
  if (!part->filename.empty()) {
    // RFC 6266: the name as UTF-8 (filename*), and a plain one with only safe characters.
    std::string plain, encoded;
    for (unsigned char c : part->filename) {
      plain += (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') ? static_cast<char>(c) : '_';
      const bool safe = std::isalnum(c) || c == '.' || c == '-' || c == '_';
      if (safe) {
        encoded += static_cast<char>(c);
      } else {
        char hex[4];
        std::snprintf(hex, sizeof hex, "%%%02X", c);
        encoded += hex;
      }
    }
    res.set(http::field::content_disposition,
            "attachment; filename=\"" + plain + "\"; filename*=UTF-8''" + encoded);
  }
  co_return res;
}

// Waits on a timer that a new message cancels: no polling, and a message stored between the
// check and the wait still wakes it (the cancel is posted to this thread, so it runs only once
// the coroutine is suspended in async_wait).
constexpr std::chrono::seconds client_look{1};
// How long a wait that found its messages gives their replies to be queued, and how often it
// looks meanwhile.
constexpr std::chrono::milliseconds ack_grace{200};
constexpr std::chrono::milliseconds ack_look{2};

// What GET /messages/wait waits for: which messages, how many, and for how long (seconds).
struct wait_request {
  message_filter filter;
  std::uint64_t count = 1;
  double timeout = 0;
};

std::optional<api_error> read_wait_request(api_context& ctx, api_request& req, wait_request& w) {
  std::optional<api_error> err;
  query_reader q(req, err);
  w.filter = read_filter(q, err);
  w.count = q.integer("count", 1, max_limit).value_or(1);
  const auto max_wait = static_cast<double>(ctx.options.max_wait.count());
  w.timeout = q.number("timeout", 0, max_wait).value_or(std::min(30.0, max_wait));
  q.finish();
  const auto kept = ctx.store.max_messages();
  if (!err && w.count > kept) {
    err = api_error{400,
                    "query parameter count: " + std::to_string(w.count) +
                        " can never be found, as the store keeps only the newest " +
                        std::to_string(kept) + " message(s) (retain.messages)",
                    "count"};
  }
  return err;
}

asio::awaitable<response> wait_messages(api_context& ctx, api_request& req) {
  wait_request w;
  if (auto err = read_wait_request(ctx, req, w)) co_return error_response(*err);

  auto ex = co_await asio::this_coro::executor;
  auto wake = std::make_shared<asio::steady_timer>(ex);
  std::weak_ptr<asio::steady_timer> weak = wake;
  subscription sub{ctx, *wake, ctx.store.subscribe([weak, ex] {
                     asio::post(ex, [weak] {
                       if (auto t = weak.lock()) t->cancel();
                     });
                   })};
  ctx.long_polls.insert(wake.get());
  const auto deadline = std::chrono::steady_clock::now() + proto::millis_from_seconds(w.timeout);
  // Each message is matched once: a wake looks only at those stored since the last one (with
  // many waiting, a rescan of every kept message per new one slowed the whole API down).
  // A message that matched stays counted when retention forgets it: it did arrive.
  stored_list found;
  std::uint64_t seen = 0;
  std::uint64_t clears = ~std::uint64_t{0};  // no such count: the first look takes all
  std::optional<std::chrono::steady_clock::time_point> ack_grace_end;
  for (;;) {
    // Once the count is met the answer is those messages: one that comes during the moment
    // given to their replies is not added, so a wait for 2 does not answer with 3 by chance.
    if (!ack_grace_end) {
      auto news = ctx.store.messages_after(seen, clears);
      if (news.from_start) found.clear();
      for (auto& m : news.messages)
        if (w.filter.matches(*m)) found.push_back(std::move(m));
      seen = news.newest;
      clears = news.clears;
    }
    // Past the page's 1,000, the newest ones: the message waited for is among them.
    const auto offset = found.size() > max_limit ? found.size() - max_limit : 0;
    // A message is stored before its 250 is queued (nothing acknowledged is lost): one found
    // in between would show "acknowledged": false for a reply about to go. Its session is
    // given a moment; a reply a scenario holds back stays false, as documented.
    if (found.size() >= w.count) {
      const auto now = std::chrono::steady_clock::now();
      const bool pending = std::any_of(found.begin() + offset, found.end(), [](const auto& m) {
        return m->reply_pending.load(std::memory_order_relaxed) &&
               !m->unacknowledged.load(std::memory_order_relaxed);
      });
      if (!ack_grace_end) ack_grace_end = now + ack_grace;
      if (!pending || now >= std::min(*ack_grace_end, deadline)) {
        co_return json_response(200, page(found, offset, max_limit));
      }
      wake->expires_at(std::min({*ack_grace_end, deadline, now + ack_look}));
      co_await wake->async_wait(net::as_value);
      continue;
    }
    if (ctx.stopping) {
      co_return error_response(
          {503, "the server is stopping: " + found_text(found.size(), w.count), ""});
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      co_return error_response({408,
                                "timeout: " + found_text(found.size(), w.count) + " after " +
                                    proto::seconds_text(w.timeout) + " s",
                                ""});
    }
    // Looked at once a second: a client that left must not hold its connection (a descriptor,
    // a store listener) until the timeout, up to max_wait; enough of them would exhaust the
    // server's descriptors.
    wake->expires_at(std::min(deadline, std::chrono::steady_clock::now() + client_look));
    co_await wake->async_wait(net::as_value);
    if (req.client_gone && req.client_gone()) {
      co_return error_response({499, "the client closed the connection while it waited", ""});
    }
  }
}

}  // namespace smtpfault::control
