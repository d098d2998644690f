// The completion token of the coroutines' waits whose error comes back as a value, never thrown:
// `auto [ec, n] = co_await socket.async_read_some(buf, as_value);`
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace smtpfault::net {

inline constexpr auto as_value = boost::asio::as_tuple(boost::asio::use_awaitable);

}  // namespace smtpfault::net
