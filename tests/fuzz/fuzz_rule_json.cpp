// Fault rules as POST /api/v1/faults reads them: any JSON body gives a rule or a 400 naming a
// field, never a crash. And a rule taken is taken again as the API echoes it (clients re-post
// what GET /faults returned), with the same echo: reading a rule is a fixed point after once.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <boost/json/serialize.hpp>

#include "control/request_reader.hpp"
#include "control/rule_json.hpp"

namespace {

// The echo without what the server adds (its id and counters).
boost::json::object as_posted(const smtpfault::net::fault_rule& r) {
  auto o = smtpfault::control::rule_json(r);
  o.erase("id");
  o.erase("fired");
  o.erase("remaining");
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto body = smtpfault::control::parse_json_object(input);
  if (!body) return 0;
  auto rule = smtpfault::control::parse_rule(*body);
  if (!rule) {
    if (rule.error().message.empty()) std::abort();  // a refusal always says why
    return 0;
  }
  const auto echo = as_posted(*rule);
  auto again = smtpfault::control::parse_rule(echo);
  if (!again) std::abort();
  if (boost::json::serialize(as_posted(*again)) != boost::json::serialize(echo)) std::abort();
  return 0;
}
