// --log-format of the client commands (run, send): their transcript and results as text lines,
// as JSON lines (one object per line, as serve's log), or, for the transcript, not at all.
#pragma once

#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace smtpfault::app {

enum class output_format { text, json, none };

// "text", "json" or "none"; an error names the flag's origin and the choices.
std::optional<std::string> parse_output_format(std::string_view origin, std::string_view value,
                                               output_format& out);

// Prints one JSON line: "ts" (now) first, then the object's fields.
void print_json_line(const boost::json::object& fields);

// A client transcript line ("C: EHLO x", "*: connected ...") as "dir" and "text" fields;
// `connection` is added when there is one (run numbers them, send has one).
boost::json::object transcript_fields(std::string_view line, std::optional<int> connection);

}  // namespace smtpfault::app
