// Strict readers for request bodies and query strings: unknown fields, wrong types and values
// out of range become an api_error naming the field ("action.reply.code", "query parameter
// count"). Each reader keeps the first error; callers check error() once at the end.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>

#include "control/api_types.hpp"

namespace smtpfault::control {

// Parses a request body that must be one JSON object.
result<boost::json::object> parse_json_object(std::string_view body);

class object_reader {
 public:
  // prefix: the dotted path of this object in the request ("" at the top, "action", ...).
  object_reader(const boost::json::object& o, std::string prefix, std::optional<api_error>& err);

  std::optional<std::string> string(std::string_view key);
  std::optional<double> number(std::string_view key, double min, double max);
  // Above 0 (however little) and at most max: the command line's rule for time scales.
  std::optional<double> positive(std::string_view key, double max);
  std::optional<std::uint64_t> integer(std::string_view key, std::uint64_t min, std::uint64_t max);
  std::optional<bool> boolean(std::string_view key);
  const boost::json::object* object(std::string_view key);
  const boost::json::array* array(std::string_view key);
  std::optional<std::vector<std::string>> strings(std::string_view key);
  std::optional<std::vector<std::uint64_t>> integers(std::string_view key);
  bool has(std::string_view key) const { return o_.contains(key); }

  // Rejects keys nobody asked for; call after reading every field.
  void finish();
  // Records a problem with one field (e.g. a value outside a set).
  void invalid(std::string_view key, std::string message);
  // A field that must be there and is not: said by finish(), after an unknown field, which is
  // most often the same field misspelt ("actoin").
  void required(std::string_view key, std::string message);
  std::string path(std::string_view key) const;
  bool ok() const { return !err_; }

 private:
  const boost::json::value* get(std::string_view key, const char* want,
                                bool (*is)(const boost::json::value&));
  // Whether min itself is in range; max always is.
  enum class lowest { allowed, excluded };
  std::optional<double> bounded_number(std::string_view key, double min, lowest at_min, double max);

  const boost::json::object& o_;
  std::string prefix_;
  std::optional<api_error>& err_;
  std::set<std::string, std::less<>> seen_;
  std::optional<std::pair<std::string, std::string>> missing_;  // key, message
};

// Query parameters, with the same strictness.
class query_reader {
 public:
  query_reader(const api_request& r, std::optional<api_error>& err) : r_(r), err_(err) {}

  std::optional<std::string> string(std::string_view key);
  std::optional<std::uint64_t> integer(std::string_view key, std::uint64_t min, std::uint64_t max);
  std::optional<double> number(std::string_view key, double min, double max);
  // An ISO 8601 time or seconds since the epoch (parse_time).
  std::optional<std::chrono::system_clock::time_point> time(std::string_view key);
  void finish();
  // A value the endpoint cannot take: "query parameter state: must be ..." (the first wins).
  void invalid(std::string_view key, std::string message);

 private:
  const api_request& r_;
  std::optional<api_error>& err_;
  std::set<std::string, std::less<>> seen_;
};

// "2026-11-29T06:52:23Z" (fraction and offset optional) or seconds since the epoch.
std::optional<std::chrono::system_clock::time_point> parse_time(std::string_view text);

}  // namespace smtpfault::control
