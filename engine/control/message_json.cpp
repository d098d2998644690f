#include "control/message_json.hpp"

#include <algorithm>
#include <cctype>

#include <boost/json/array.hpp>

#include "net/fault_rules.hpp"
#include "proto/glob.hpp"
#include "proto/header_words.hpp"
#include "proto/utf8.hpp"

namespace smtpfault::control {

namespace json = boost::json;

namespace {

bool icontains(std::string_view hay, std::string_view needle) {
  auto it = std::search(hay.begin(), hay.end(), needle.begin(), needle.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
  return it != hay.end() || needle.empty();  // search finds "" at the end of an empty hay
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
                      {"acknowledged", m.acknowledged()},
                      {"session_id", m.msg.facts.session_id}};
}

namespace {

// The message's MIME parts, and its first plain and HTML text that is no attachment, decoded
// (the transfer encoding, then the charset, to UTF-8): what the mailer wrote, without a MIME
// library in the test.
void add_mime_fields(json::object& o, std::string_view data) {
  const auto mime = proto::mime_parts(data);
  json::array parts, problems;
  std::optional<std::string> text, html;
  for (const auto& p : mime.parts) {
    const auto body = data.substr(p.body_offset, p.body_length);
    const auto decoded = proto::decode_transfer(body, p.transfer_encoding);
    json::object part{{"part", p.path},
                      {"content_id", p.content_id},
                      {"content_type", p.content_type},
                      {"charset", p.charset},
                      {"encoding", p.transfer_encoding},
                      {"disposition", p.disposition},
                      {"filename", p.filename},
                      {"attachment", p.attachment()},
                      {"size", decoded ? decoded->size() : body.size()}};
    if (!decoded) problems.emplace_back("part " + p.path + ": not valid " + p.transfer_encoding);
    parts.push_back(std::move(part));
    if (!decoded || p.attachment()) continue;
    auto& slot = p.content_type == "text/plain" ? text : html;
    if (slot || (p.content_type != "text/plain" && p.content_type != "text/html")) continue;
    if (auto utf8 = proto::text_as_utf8(*decoded, p.charset)) {
      slot = std::move(*utf8);
    } else {
      slot = proto::utf8_repaired(*decoded);
      problems.emplace_back("part " + p.path + ": charset " + p.charset +
                            " is not one the server converts: its octets are shown as UTF-8");
    }
  }
  for (const auto& why : mime.problems)
    problems.emplace_back(why);
  // One cap for the reader's problems and the decoding's, as documented.
  constexpr std::size_t max_problems = 20;
  if (problems.size() > max_problems + 1) {
    problems.resize(max_problems);
    problems.emplace_back("and more problems, not listed");
  }
  o["text"] = optional_string(text);
  o["html"] = optional_string(html);
  o["parts"] = std::move(parts);
  o["mime_problems"] = std::move(problems);
}

}  // namespace

json::object message_detail(const capture::stored_message& m) {
  json::object o = capture::message_metadata(m);
  auto headers = parse_headers(m.msg.data, max_header_fields + 1);
  const bool cut = headers.size() > max_header_fields;
  if (cut) headers.resize(max_header_fields);
  json::array h;
  for (const auto& f : headers)
    h.push_back(json::object{{"name", f.name}, {"value", f.value}});
  o["subject"] = optional_string(subject_of(headers));
  o["test"] = optional_string(header_value(headers, "X-Smtpfault-Test"));
  o["headers"] = std::move(h);
  add_mime_fields(o, m.msg.data);
  if (cut) {
    auto& problems = o["mime_problems"].as_array();
    problems.insert(problems.begin(),
                    json::string("over " + std::to_string(max_header_fields) +
                                 " header fields: the rest are not listed, and subject, test "
                                 "and the filters do not see them"));
  }
  return o;
}

std::optional<message_part> find_part(std::string_view data, std::string_view path) {
  for (const auto& p : proto::mime_parts(data).parts) {
    if (p.path != path) continue;
    const auto body = data.substr(p.body_offset, p.body_length);
    // Octets that do not decode are served as they were sent rather than not at all.
    auto octets = proto::decode_transfer(body, p.transfer_encoding).value_or(std::string(body));
    // The header is built from tokens only (RFC 2045 5.1): a type or charset the sender wrote
    // with a line break in it (a bare CR, an RFC 2231 %0D%0A) must not add response headers.
    const auto token = [](std::string_view t) {
      return !t.empty() && std::all_of(t.begin(), t.end(), [](unsigned char c) {
        return std::isalnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) !=
                                      std::string_view::npos;
      });
    };
    const auto slash = p.content_type.find('/');
    const bool valid_type = slash != std::string::npos &&
                            token(std::string_view(p.content_type).substr(0, slash)) &&
                            token(std::string_view(p.content_type).substr(slash + 1));
    std::string type = valid_type ? p.content_type : "application/octet-stream";
    if (valid_type && token(p.charset)) type += "; charset=" + p.charset;
    return message_part{std::move(type), p.filename, std::move(octets)};
  }
  return std::nullopt;
}

json::object session_summary(const capture::session_record& r) {
  const auto& f = r.facts;
  json::object o{{"id", f.session_id},       {"client", f.client_address},
                 {"helo", f.helo},           {"tls", f.tls},
                 {"auth_user", f.auth_user}, {"lmtp", f.lmtp},
                 {"entries", r.written()},   {"open", r.open}};
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
