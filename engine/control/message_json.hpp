// Messages and sessions as the API shows them, and the header parsing behind the filters.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>

#include "capture/message_store.hpp"

namespace smtpfault::control {

struct header_field {
  std::string name;
  std::string value;  // unfolded, leading whitespace removed
};

// The header section (up to the first empty line), unfolded; at most max_fields fields.
std::vector<header_field> parse_headers(std::string_view data, std::size_t max_fields = 1000);
// The first field of that name (case-insensitive), if any.
std::optional<std::string> header_value(const std::vector<header_field>& h, std::string_view name);

// Filters of GET /api/v1/messages and /wait; an empty optional matches everything.
struct message_filter {
  std::optional<std::string> to;       // glob on any recipient
  std::optional<std::string> from;     // glob on the MAIL FROM address
  std::optional<std::string> subject;  // case-insensitive substring of Subject
  std::optional<std::string> test;     // exact X-Smtpfault-Test value
  std::optional<std::chrono::system_clock::time_point> since;  // received at or after

  bool matches(const capture::stored_message& m) const;
};

boost::json::object message_summary(const capture::stored_message& m);
boost::json::object message_detail(const capture::stored_message& m);
boost::json::object session_summary(const capture::session_record& r);
boost::json::object session_detail(const capture::session_record& r);

}  // namespace smtpfault::control
