// The TOML parser's node types by name, for messages ("expected a string, got integer").
// Internal to engine/config; includes toml++, so only the files that parse TOML take it.
#pragma once

#include <string_view>

#include <toml++/toml.h>

namespace smtpfault::config::detail {

inline std::string_view toml_type(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string:
      return "string";
    case toml::node_type::integer:
      return "integer";
    case toml::node_type::floating_point:
      return "float";
    case toml::node_type::boolean:
      return "boolean";
    case toml::node_type::table:
      return "table";
    case toml::node_type::array:
      return "array";
    case toml::node_type::date:
      return "date";
    case toml::node_type::time:
      return "time";
    case toml::node_type::date_time:
      return "date-time";
    default:
      return "nothing";
  }
}

}  // namespace smtpfault::config::detail
