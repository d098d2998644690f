// The JSON form of fault rules (POST /api/v1/faults) and of fault actions. Action fields mirror
// what Lua hooks return (lua/smtp.lua), so a rule reads like the scenario line it replaces:
//   {"match": {"on": "RCPT", "address": "*@slow.test"},
//    "action": {"reply": {"code": 451, "enhanced": "4.7.1", "text": "Try later"}},
//    "times": 2}
#pragma once

#include <boost/json/object.hpp>

#include "control/api_types.hpp"
#include "fault/action.hpp"
#include "net/fault_rules.hpp"

namespace smtpfault::control {

result<fault::action> parse_action(const boost::json::object& o, const std::string& prefix);
result<net::fault_rule> parse_rule(const boost::json::object& o);
boost::json::object rule_json(const net::fault_rule& r);

}  // namespace smtpfault::control
