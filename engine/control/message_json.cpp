#include "control/message_json.hpp"

#include <algorithm>
#include <cctype>

#include <boost/json/array.hpp>

#include "net/fault_rules.hpp"
#include "proto/glob.hpp"
#include "proto/header_words.hpp"

namespace smtpfault::control {

namespace json = boost::json;

namespace {

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool icontains(std::string_view hay, std::string_view needle) {
  auto it = std::search(hay.begin(), hay.end(), needle.begin(), needle.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
  return it != hay.end();
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

json::array recipients_of(const capture::stored_message& m) {
  json::array to;
  for (const auto& r : m.msg.env.recipients)
    to.emplace_back(r.address.address());
  return to;
}

json::value optional_string(const std::optional<std::string>& s) {
  return s ? json::value(*s) : json::value(nullptr);
}

const char* direction_name(session::direction d) {
  switch (d) {
    case session::direction::client:
      return "client";
    case session::direction::server:
      return "server";
    case session::direction::event:
      return "event";
  }
  return "?";
}

}  // namespace

std::vector<header_field> parse_headers(std::string_view data, std::size_t max_fields) {
  std::vector<header_field> out;
  while (!data.empty() && out.size() <= max_fields) {
    auto eol = data.find('\n');
    std::string_view line = data.substr(0, eol);
    data = eol == std::string_view::npos ? std::string_view() : data.substr(eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;  // end of the header section
    if ((line.front() == ' ' || line.front() == '\t') && !out.empty()) {
      // RFC 5322 2.2.3: unfolding removes the line break only; the whitespace stays.
      out.back().value += line;
      continue;
    }
    auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) continue;  // not a field: skip it
    out.push_back(
        {std::string(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1)))});
  }
  if (out.size() > max_fields) out.resize(max_fields);
  for (auto& f : out)
    f.value = std::string(trim(f.value));  // "Subject:" then a folded line: no leading space
  return out;
}

std::optional<std::string> header_value(const std::vector<header_field>& h, std::string_view name) {
  for (const auto& f : h)
    if (iequal(f.name, name)) return f.value;
  return std::nullopt;
}

namespace {

// The subject as its author wrote it: RFC 2047 words (how mailers send non-ASCII) decoded.
std::optional<std::string> subject_of(const std::vector<header_field>& h) {
  auto s = header_value(h, "Subject");
  if (s) *s = proto::decode_encoded_words(*s);
  return s;
}

}  // namespace

bool message_filter::matches(const capture::stored_message& m) const {
  const auto& msg = m.msg;
  if (since && msg.received < *since) return false;
  if (from && !proto::glob_match(*from, msg.env.mail_from.address())) return false;
  if (to && std::none_of(msg.env.recipients.begin(), msg.env.recipients.end(), [&](const auto& r) {
        return proto::glob_match(*to, r.address.address());
      })) {
    return false;
  }
  if (!subject && !test) return true;
  auto headers = parse_headers(msg.data);
  if (subject && !icontains(subject_of(headers).value_or(""), *subject)) return false;
  if (test && header_value(headers, "X-Smtpfault-Test") != *test) return false;
  return true;
}

json::object message_summary(const capture::stored_message& m) {
  auto headers = parse_headers(m.msg.data);
  return json::object{{"id", m.id},
                      {"received", session::format_timestamp(m.msg.received)},
                      {"size", m.msg.data.size()},
                      {"mail_from", m.msg.env.mail_from.address()},
                      {"recipients", recipients_of(m)},
                      {"subject", optional_string(subject_of(headers))},
                      {"test", optional_string(header_value(headers, "X-Smtpfault-Test"))},
                      {"acknowledged", !m.unacknowledged.load(std::memory_order_relaxed)},
                      {"session_id", m.msg.facts.session_id}};
}

json::object message_detail(const capture::stored_message& m) {
  json::object o = capture::message_metadata(m);
  auto headers = parse_headers(m.msg.data);
  json::array h;
  for (const auto& f : headers)
    h.push_back(json::object{{"name", f.name}, {"value", f.value}});
  o["subject"] = optional_string(subject_of(headers));
  o["test"] = optional_string(header_value(headers, "X-Smtpfault-Test"));
  o["headers"] = std::move(h);
  return o;
}

json::object session_summary(const capture::session_record& r) {
  const auto& f = r.facts;
  json::object o{{"id", f.session_id},
                 {"client", f.client_address},
                 {"helo", f.helo},
                 {"tls", f.tls},
                 {"auth_user", f.auth_user},
                 {"lmtp", f.lmtp},
                 {"entries", r.entries.size() + r.dropped},
                 {"open", r.open}};
  if (!r.entries.empty()) {
    o["started"] = session::format_timestamp(r.entries.front().at);
    if (!r.open) o["ended"] = session::format_timestamp(r.entries.back().at);
  }
  return o;
}

json::object session_detail(const capture::session_record& r) {
  json::object o = session_summary(r);
  const auto& f = r.facts;
  o["tls_version"] = f.tls_version;
  o["tls_cipher"] = f.tls_cipher;
  o["auth_mechanism"] = f.auth_mechanism;
  o["dropped_entries"] = r.dropped;
  json::array t;
  for (const auto& e : r.entries) {
    t.push_back(json::object{
        {"at", session::format_timestamp(e.at)}, {"dir", direction_name(e.dir)}, {"text", e.text}});
  }
  o["transcript"] = std::move(t);
  return o;
}

}  // namespace smtpfault::control
