// The client side of `smtpfault healthcheck`: GET /readyz with a deadline, no curl needed.
#pragma once

#include <chrono>
#include <string>

#include <boost/asio/ip/tcp.hpp>

#include "proto/expected.hpp"

namespace smtpfault::control {

// The HTTP status of GET path on ep, or an error message (connect refused, timeout, ...).
proto::expected<unsigned, std::string> probe(const boost::asio::ip::tcp::endpoint& ep,
                                             const std::string& path, const std::string& token,
                                             std::chrono::milliseconds timeout);

}  // namespace smtpfault::control
