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
#include "proto/mime.hpp"

namespace smtpfault::control {

using proto::header_field;
using proto::header_value;
// The message's header section, unfolded (proto::header_fields), up to this many fields: what
// the API lists, and where the filters look for Subject and X-Smtpfault-Test.
constexpr std::size_t max_header_fields = 1000;
inline std::vector<header_field> parse_headers(std::string_view data,
                                               std::size_t max_fields = max_header_fields) {
  return proto::header_fields(data, max_fields);
}

// One MIME part of a message, decoded: GET /api/v1/messages/{id}/parts/{part}.
struct message_part {
  std::string content_type;  // "application/pdf", "text/plain; charset=utf-8"
  std::string filename;
  std::string octets;  // the transfer encoding undone
};
// The part at path ("1", "2.1", as the message's "parts" list them), if the message has it.
std::optional<message_part> find_part(std::string_view data, std::string_view path);

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
