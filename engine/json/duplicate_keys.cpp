#include "json/duplicate_keys.hpp"

#include <boost/json/basic_parser_impl.hpp>

#include <cstdint>
#include <set>
#include <vector>

namespace smtpfault::json {

namespace {

namespace bj = boost::json;
using error_code = boost::system::error_code;

// Each open object keeps the keys seen so far; arrays keep nothing, but hold the place of an
// object's key in the path ("rules.action").
struct key_checker {
  constexpr static std::size_t max_object_size = std::size_t(-1);
  constexpr static std::size_t max_array_size = std::size_t(-1);
  constexpr static std::size_t max_key_size = std::size_t(-1);
  constexpr static std::size_t max_string_size = std::size_t(-1);

  struct level {
    bool object = false;
    std::set<std::string, std::less<>> keys;
    std::string key;  // the key whose value is being read
  };
  std::vector<level> open;
  std::string partial;
  std::optional<std::string> duplicate;

  std::string path_to(const std::string& key) const {
    std::string out;
    for (const auto& l : open) {
      if (!l.object || &l == &open.back()) continue;
      out += l.key + ".";
    }
    return out + key;
  }

  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }
  bool on_object_begin(error_code&) {
    open.push_back({true, {}, {}});
    return true;
  }
  bool on_object_end(std::size_t, error_code&) {
    open.pop_back();
    return true;
  }
  bool on_array_begin(error_code&) {
    open.push_back({false, {}, {}});
    return true;
  }
  bool on_array_end(std::size_t, error_code&) {
    open.pop_back();
    return true;
  }
  bool on_key_part(bj::string_view s, std::size_t, error_code&) {
    partial.append(s.data(), s.size());
    return true;
  }
  bool on_key(bj::string_view s, std::size_t, error_code& ec) {
    partial.append(s.data(), s.size());
    auto& l = open.back();
    l.key = std::move(partial);
    partial.clear();
    if (!l.keys.insert(l.key).second) {
      duplicate = path_to(l.key);
      ec = bj::error::syntax;  // stops the parse: one is enough
      return false;
    }
    return true;
  }
  bool on_string_part(bj::string_view, std::size_t, error_code&) { return true; }
  bool on_string(bj::string_view, std::size_t, error_code&) { return true; }
  bool on_number_part(bj::string_view, error_code&) { return true; }
  bool on_int64(std::int64_t, bj::string_view, error_code&) { return true; }
  bool on_uint64(std::uint64_t, bj::string_view, error_code&) { return true; }
  bool on_double(double, bj::string_view, error_code&) { return true; }
  bool on_bool(bool, error_code&) { return true; }
  bool on_null(error_code&) { return true; }
  bool on_comment_part(bj::string_view, error_code&) { return true; }
  bool on_comment(bj::string_view, error_code&) { return true; }
};

}  // namespace

std::optional<std::string> first_duplicate_key(std::string_view text) {
  bj::basic_parser<key_checker> parser{bj::parse_options{}};
  error_code ec;
  parser.write_some(false, text.data(), text.size(), ec);
  return parser.handler().duplicate;
}

}  // namespace smtpfault::json
