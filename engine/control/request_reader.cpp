#include "control/request_reader.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>

#include <boost/json/error.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/parser.hpp>

#include "json/duplicate_keys.hpp"
#include "proto/near_miss.hpp"

namespace smtpfault::control {

namespace json = boost::json;

namespace {

const char* type_name(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      return "a number";
    case json::kind::string:
      return "a string";
    case json::kind::array:
      return "an array";
    case json::kind::object:
      return "an object";
  }
  return "?";
}

std::string number_text(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.15g", x);  // 1000001, not 1e+06
  return buf;
}

bool is_number(const json::value& v) {
  return v.is_number();
}

}  // namespace

result<json::object> parse_json_object(std::string_view body) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return fail(400, "the body is empty: send a JSON object");
  }
  boost::system::error_code ec;
  json::parse_options opts;
  opts.max_depth = 16;
  json::parser parser({}, opts);
  // Where the parser stopped, for an error a person can find in the text they sent.
  const std::size_t read = parser.write(body.data(), body.size(), ec);
  if (ec) {
    std::string why = "malformed JSON at octet " + std::to_string(read) + ": " + ec.message();
    if (body.starts_with("\xEF\xBB\xBF")) {
      why += " (a UTF-8 byte order mark starts the body; send the JSON without it)";
    } else if (read < body.size() && static_cast<unsigned char>(body[read]) >= 0x80) {
      why += " (invalid UTF-8 there)";
    }
    return fail(400, why);
  }
  json::value v = parser.release();
  if (!v.is_object())
    return fail(400, std::string("the body must be a JSON object, not ") + type_name(v));
  // Boost keeps the last of two equal keys: a rule meant for one address would become another.
  if (auto twice = smtpfault::json::first_duplicate_key(body)) {
    return fail(400, *twice + ": given twice; give each field once", *twice);
  }
  return std::move(v.as_object());
}

object_reader::object_reader(const json::object& o, std::string prefix,
                             std::optional<api_error>& err)
    : o_(o), prefix_(std::move(prefix)), err_(err) {}

std::string object_reader::path(std::string_view key) const {
  return prefix_.empty() ? std::string(key) : prefix_ + "." + std::string(key);
}

void object_reader::invalid(std::string_view key, std::string message) {
  if (!err_) err_ = api_error{400, path(key) + ": " + message, path(key)};
}

const json::value* object_reader::get(std::string_view key, const char* want,
                                      bool (*is)(const json::value&)) {
  seen_.emplace(key);
  auto it = o_.find(key);
  if (it == o_.end()) return nullptr;
  if (!is(it->value())) {
    invalid(key, std::string("must be ") + want + ", not " + type_name(it->value()));
    return nullptr;
  }
  return &it->value();
}

std::optional<std::string> object_reader::string(std::string_view key) {
  auto* v = get(key, "a string", [](const json::value& x) { return x.is_string(); });
  if (!v) return std::nullopt;
  return std::string(v->as_string());
}

std::optional<double> object_reader::number(std::string_view key, double min, double max) {
  return bounded_number(key, min, lowest::allowed, max);
}

std::optional<double> object_reader::positive(std::string_view key, double max) {
  return bounded_number(key, 0, lowest::excluded, max);
}

std::optional<double> object_reader::bounded_number(std::string_view key, double min, lowest at_min,
                                                    double max) {
  auto* v = get(key, "a number", is_number);
  if (!v) return std::nullopt;
  double x = v->to_number<double>();
  const bool allowed = at_min == lowest::allowed;
  if (!((allowed ? x >= min : x > min) && x <= max)) {
    invalid(key, (allowed ? "must be between " + number_text(min) + " and "
                          : "must be greater than " + number_text(min) + " and at most ") +
                     number_text(max) + ", got " + number_text(x));
    return std::nullopt;
  }
  return x;
}

std::optional<std::uint64_t> object_reader::integer(std::string_view key, std::uint64_t min,
                                                    std::uint64_t max) {
  auto* v = get(key, "an integer", is_number);
  if (!v) return std::nullopt;
  boost::system::error_code ec;
  auto x = v->to_number<std::uint64_t>(ec);
  if (ec || x < min || x > max) {
    invalid(key, "must be an integer from " + std::to_string(min) + " to " + std::to_string(max));
    return std::nullopt;
  }
  return x;
}

std::optional<bool> object_reader::boolean(std::string_view key) {
  auto* v = get(key, "a boolean", [](const json::value& x) { return x.is_bool(); });
  if (!v) return std::nullopt;
  return v->as_bool();
}

const json::object* object_reader::object(std::string_view key) {
  auto* v = get(key, "an object", [](const json::value& x) { return x.is_object(); });
  return v ? &v->as_object() : nullptr;
}

const json::array* object_reader::array(std::string_view key) {
  auto* v = get(key, "an array", [](const json::value& x) { return x.is_array(); });
  return v ? &v->as_array() : nullptr;
}

std::optional<std::vector<std::string>> object_reader::strings(std::string_view key) {
  auto* a = array(key);
  if (!a) return std::nullopt;
  std::vector<std::string> out;
  for (std::size_t i = 0; i < a->size(); ++i) {
    if (!(*a)[i].is_string()) {
      invalid(std::string(key) + "[" + std::to_string(i) + "]", "must be a string");
      return std::nullopt;
    }
    out.emplace_back((*a)[i].as_string());
  }
  return out;
}

std::optional<std::vector<std::uint64_t>> object_reader::integers(std::string_view key) {
  auto* a = array(key);
  if (!a) return std::nullopt;
  std::vector<std::uint64_t> out;
  for (std::size_t i = 0; i < a->size(); ++i) {
    boost::system::error_code ec;
    auto x = (*a)[i].is_number() ? (*a)[i].to_number<std::uint64_t>(ec) : 0;
    if (!(*a)[i].is_number() || ec) {
      invalid(std::string(key) + "[" + std::to_string(i) + "]", "must be a non-negative integer");
      return std::nullopt;
    }
    out.push_back(x);
  }
  return out;
}

void object_reader::required(std::string_view key, std::string message) {
  if (!missing_) missing_.emplace(std::string(key), std::move(message));
}

void object_reader::finish() {
  for (const auto& kv : o_) {
    if (!seen_.contains(kv.key())) {
      // Every field the object takes has been asked for by now: the near miss is among them.
      invalid(kv.key(),
              "unknown field" + proto::did_you_mean(kv.key(), {seen_.begin(), seen_.end()}));
      return;
    }
  }
  if (missing_) invalid(missing_->first, std::move(missing_->second));
}

// ---- query ----

void query_reader::invalid(std::string_view key, std::string message) {
  if (!err_) {
    err_ = api_error{400, "query parameter " + std::string(key) + ": " + message, std::string(key)};
  }
}

std::optional<std::string> query_reader::string(std::string_view key) {
  seen_.emplace(key);
  std::optional<std::string> out;
  for (const auto& [k, v] : r_.query) {
    if (k != key) continue;
    if (out) invalid(key, "given more than once");
    out = v;
  }
  return out;
}

std::optional<std::uint64_t> query_reader::integer(std::string_view key, std::uint64_t min,
                                                   std::uint64_t max) {
  auto s = string(key);
  if (!s) return std::nullopt;
  std::uint64_t x = 0;
  auto [ptr, ec] = std::from_chars(s->data(), s->data() + s->size(), x);
  if (s->empty() || ec != std::errc{} || ptr != s->data() + s->size() || x < min || x > max) {
    invalid(key, "must be an integer from " + std::to_string(min) + " to " + std::to_string(max) +
                     ", got '" + *s + "'");
    return std::nullopt;
  }
  return x;
}

std::optional<std::chrono::system_clock::time_point> query_reader::time(std::string_view key) {
  auto s = string(key);
  if (!s) return std::nullopt;
  auto t = parse_time(*s);
  if (!t) {
    invalid(key,
            "expected an ISO 8601 time such as 2026-01-31T12:00:00Z or seconds since the epoch, "
            "got '" +
                *s + "'");
  }
  return t;
}

std::optional<double> query_reader::number(std::string_view key, double min, double max) {
  auto s = string(key);
  if (!s) return std::nullopt;
  double x = 0;
  auto [ptr, ec] = std::from_chars(s->data(), s->data() + s->size(), x);
  if (s->empty() || ec != std::errc{} || ptr != s->data() + s->size() || !(x >= min && x <= max)) {
    invalid(key, "must be a number from " + number_text(min) + " to " + number_text(max) +
                     ", got '" + *s + "'");
    return std::nullopt;
  }
  return x;
}

void query_reader::finish() {
  if (!r_.badly_encoded.empty()) {
    const auto eq = r_.badly_encoded.find('=');
    invalid(
        r_.badly_encoded.substr(0, eq),
        "'" + r_.badly_encoded + "' has a '%' not followed by two hex digits (write %25 for %)");
    return;
  }
  for (const auto& [k, v] : r_.query) {
    if (k.empty()) {  // "?=x" or "?&": a value with no name before its '='
      if (!err_) err_ = api_error{400, "query string: a parameter with no name ('=" + v + "')", ""};
      return;
    }
    if (!seen_.contains(k)) {
      // Every parameter the endpoint takes has been asked for by now: those are the ones.
      std::string known;
      for (const auto& name : seen_)
        known += (known.empty() ? "" : ", ") + name;
      invalid(k, known.empty()
                     ? "unknown parameter (this endpoint takes none)"
                     : "unknown parameter" + proto::did_you_mean(k, {seen_.begin(), seen_.end()}) +
                           " (this endpoint takes " + known + ")");
      return;
    }
  }
}

namespace {

// The fields "YYYY-MM-DDThh:mm:ss" gave, as read: timegm would roll 2026-13-45 over into 2027,
// but out-of-range fields are a mistake, not a date.
bool fields_in_range(const std::tm& tm) {
  static constexpr int days_in[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const int year = tm.tm_year;
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (tm.tm_mon < 1 || tm.tm_mon > 12) return false;
  const int days = days_in[tm.tm_mon - 1] + (tm.tm_mon == 2 && leap ? 1 : 0);
  return tm.tm_mday >= 1 && tm.tm_mday <= days && tm.tm_hour >= 0 && tm.tm_hour <= 23 &&
         tm.tm_min >= 0 && tm.tm_min <= 59 && tm.tm_sec >= 0 && tm.tm_sec <= 60;
}

// What follows the time: "Z" (or nothing), or an offset "+hh:mm", "+hhmm" or "+hh" ("-" too),
// as seconds east of UTC.
std::optional<long> utc_offset(std::string_view rest) {
  if (rest == "Z" || rest == "z" || rest.empty()) return 0;
  // A space is a "+" that a query string decoded (since=...T08:27:00+02:00 typed into curl).
  const char sign = rest[0];
  if (sign != '+' && sign != '-' && sign != ' ') return std::nullopt;
  std::string digits(rest.substr(1));
  if (digits.size() == 5 && digits[2] == ':') digits.erase(2, 1);
  if (digits.size() != 2 && digits.size() != 4) return std::nullopt;
  for (char c : digits)
    if (c < '0' || c > '9') return std::nullopt;
  const int hh = (digits[0] - '0') * 10 + (digits[1] - '0');
  const int mm = digits.size() == 4 ? (digits[2] - '0') * 10 + (digits[3] - '0') : 0;
  if (hh > 23 || mm > 59) return std::nullopt;
  return (sign == '-' ? -1 : 1) * (hh * 3600L + mm * 60L);
}

}  // namespace

std::optional<std::chrono::system_clock::time_point> parse_time(std::string_view text) {
  using namespace std::chrono;
  double secs = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), secs);
  if (!text.empty() && ec == std::errc{} && ptr == text.data() + text.size()) {
    // "inf" and "nan" read as numbers too: neither is a time.
    if (!std::isfinite(secs) || secs < 0) return std::nullopt;
    if (secs > 9e9) return system_clock::time_point::max();
    return system_clock::time_point(duration_cast<system_clock::duration>(duration<double>(secs)));
  }
  std::tm tm{};
  int consumed = 0;
  std::string s(text);
  // A date alone (ISO 8601's calendar date, YYYY-MM-DD) is its midnight, UTC.
  const auto digit = [&](std::size_t i) { return s[i] >= '0' && s[i] <= '9'; };
  if (s.size() == 10 && s[4] == '-' && s[7] == '-' && digit(0) && digit(1) && digit(2) &&
      digit(3) && digit(5) && digit(6) && digit(8) && digit(9)) {
    return parse_time(s + "T00:00:00Z");
  }
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &consumed) != 5) {
    return std::nullopt;
  }
  // Seconds may be left out (ISO 8601's reduced precision, "2026-01-31T12:00Z").
  if (s[static_cast<std::size_t>(consumed)] == ':') {
    int more = 0;
    if (std::sscanf(s.c_str() + consumed, ":%2d%n", &tm.tm_sec, &more) != 1) return std::nullopt;
    consumed += more;
  }
  if (!fields_in_range(tm)) return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  double frac = 0;
  std::string_view rest = std::string_view(s).substr(static_cast<std::size_t>(consumed));
  if (rest.starts_with('.')) {
    std::size_t n = 1;
    while (n < rest.size() && rest[n] >= '0' && rest[n] <= '9')
      ++n;
    std::from_chars(rest.data(), rest.data() + n, frac);
    rest.remove_prefix(n);
  }
  const auto offset = utc_offset(rest);
  if (!offset) return std::nullopt;
  // The fields are in range and the year has four digits: timegm cannot fail, and its -1 is
  // 1969-12-31T23:59:59Z itself.
  std::time_t t = timegm(&tm);
  // system_clock counts nanoseconds: beyond the year 2262 it overflows, so clamp far futures.
  if (t > 9'000'000'000) return system_clock::time_point::max();
  auto tp = system_clock::from_time_t(t) - seconds(*offset);
  return tp + duration_cast<system_clock::duration>(duration<double>(frac));
}

}  // namespace smtpfault::control
