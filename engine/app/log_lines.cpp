#include "app/log_lines.hpp"

#include <chrono>
#include <cstdio>

#include "json/json_text.hpp"
#include "session/transcript.hpp"

namespace smtpfault::app {

std::optional<std::string> parse_output_format(std::string_view origin, std::string_view value,
                                               output_format& out) {
  if (value == "text") {
    out = output_format::text;
  } else if (value == "json") {
    out = output_format::json;
  } else if (value == "none") {
    out = output_format::none;
  } else {
    return std::string(origin) + ": expected text, json or none, got '" + std::string(value) + "'";
  }
  return std::nullopt;
}

void print_json_line(const boost::json::object& fields) {
  boost::json::object o{{"ts", session::format_timestamp(std::chrono::system_clock::now())}};
  for (const auto& [k, v] : fields)
    o[k] = v;
  const std::string line = json::json_text(o) + "\n";
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

boost::json::object transcript_fields(std::string_view line, std::optional<int> connection) {
  boost::json::object o;
  if (connection) o["connection"] = *connection;
  // "C: ...", "S: ...", "*: ...", "C(slow): ...": the tag before the first ": ".
  const auto colon = line.find(": ");
  if (colon != std::string_view::npos && colon <= 8) {
    o["dir"] = line.substr(0, colon);
    o["text"] = line.substr(colon + 2);
  } else {
    o["text"] = line;
  }
  return o;
}

}  // namespace smtpfault::app
