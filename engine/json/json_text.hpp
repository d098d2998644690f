// JSON text as people read it. Boost.JSON writes every double in scientific notation ("1E-1",
// "1.5E0"); the API, the reports and the logs show seconds and delays, so numbers are written in
// their shortest plain form ("0.1", "1.5", "2.0") instead; and a string that is not UTF-8 (a
// command's output, octets off the wire) has each stray octet written as U+FFFD, where Boost
// would copy it and make the document unreadable. Everything else is Boost's own output.
#pragma once

#include <boost/json/value.hpp>

#include <string>

namespace smtpfault::json {

std::string json_text(const boost::json::value& v);

}  // namespace smtpfault::json
