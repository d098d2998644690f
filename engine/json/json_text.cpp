#include "json/json_text.hpp"

#include <boost/json/serialize.hpp>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <string_view>
#include <utility>

#include "proto/utf8.hpp"

namespace smtpfault::json {

namespace {

namespace bj = boost::json;

// UTF-8 without C1 or bidirectional controls: what Boost's writer may copy as it is.
bool valid_text(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (static_cast<unsigned char>(s[i]) < 0x80) continue;
    const std::size_t n = proto::showable_sequence_length(s, i);
    if (n == 0) return false;
    i += n - 1;
  }
  return true;
}

// Whether Boost's writer would get v wrong: a double (scientific notation), a string that is
// not UTF-8 (Boost copies its octets as they are, and the document is no longer JSON), or one
// with controls that a terminal showing the log line would act on (Boost copies them too).
bool needs_own_writer(const bj::value& v) {
  switch (v.kind()) {
    case bj::kind::double_:
      return true;
    case bj::kind::string:
      return !valid_text(v.get_string());
    case bj::kind::array:
      for (const auto& e : v.get_array())
        if (needs_own_writer(e)) return true;
      return false;
    case bj::kind::object:
      for (const auto& kv : v.get_object())
        if (!valid_text(kv.key()) || needs_own_writer(kv.value())) return true;
      return false;
    default:
      return false;
  }
}

// A string with each octet that is not UTF-8 written as U+FFFD, and the C1 and bidirectional
// controls as \u escapes: the same text to a JSON reader, inert in a terminal.
std::string string_text(std::string_view s) {
  if (valid_text(s)) return bj::serialize(bj::string_view(s.data(), s.size()));
  const auto repaired = proto::valid_utf8(s) ? std::string(s) : proto::utf8_repaired(s);
  const auto quoted = bj::serialize(bj::string_view(repaired.data(), repaired.size()));
  std::string out;
  out.reserve(quoted.size() + 16);
  for (std::size_t i = 0; i < quoted.size(); ++i) {
    const auto c = static_cast<unsigned char>(quoted[i]);
    if (c < 0x80 || proto::showable_sequence_length(quoted, i) != 0) {
      const std::size_t n = c < 0x80 ? 1 : proto::utf8_sequence_length(quoted, i);
      out.append(quoted, i, n);
      i += n - 1;
      continue;
    }
    // Every such control is a two- or three-octet sequence of the BMP.
    const std::size_t n = proto::utf8_sequence_length(quoted, i);
    const auto b = [&](std::size_t k) { return static_cast<unsigned>(quoted[i + k]) & 0x3Fu; };
    const unsigned code =
        n == 2 ? ((c & 0x1Fu) << 6) | b(1) : ((c & 0x0Fu) << 12) | (b(1) << 6) | b(2);
    char escape[8];
    std::snprintf(escape, sizeof escape, "\\u%04x", code);
    out += escape;
    i += n - 1;
  }
  return out;
}

// The shortest text that reads back as the same double, kept a number with a fraction ("2.0",
// not "2") so that readers which tell integers from reals see what was meant.
void append_double(std::string& out, double d) {
  if (!std::isfinite(d)) {  // JSON has no infinity or NaN
    out += "null";
    return;
  }
  char buf[32];
  const auto end = std::to_chars(buf, buf + sizeof buf, d).ptr;
  const std::string_view text(buf, static_cast<std::size_t>(end - buf));
  out += text;
  if (text.find_first_of(".e") == std::string_view::npos) out += ".0";
}

void append(std::string& out, const bj::value& v) {
  switch (v.kind()) {
    case bj::kind::double_:
      append_double(out, v.get_double());
      return;
    case bj::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v.get_array()) {
        if (!std::exchange(first, false)) out += ',';
        append(out, e);
      }
      out += ']';
      return;
    }
    case bj::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& kv : v.get_object()) {
        if (!std::exchange(first, false)) out += ',';
        out += string_text(kv.key());
        out += ':';
        append(out, kv.value());
      }
      out += '}';
      return;
    }
    case bj::kind::string:
      out += string_text(v.get_string());
      return;
    default:
      out += bj::serialize(v);
  }
}

}  // namespace

std::string json_text(const bj::value& v) {
  // Most documents (log lines, message metadata) need neither: Boost's writer as it is.
  if (!needs_own_writer(v)) return bj::serialize(v);
  std::string out;
  append(out, v);
  return out;
}

}  // namespace smtpfault::json
