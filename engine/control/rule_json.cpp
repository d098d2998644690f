#include "control/rule_json.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "control/request_reader.hpp"
#include "json/json_text.hpp"
#include "proto/duration.hpp"
#include "proto/near_miss.hpp"
#include "session/extensions.hpp"

namespace smtpfault::control {

namespace json = boost::json;

namespace {

constexpr double max_seconds = 3600;

template <class E, std::size_t N>
std::optional<E> choose(object_reader& r, std::string_view key,
                        const std::pair<const char*, E> (&table)[N]) {
  auto s = r.string(key);
  if (!s) return std::nullopt;
  std::string allowed;
  for (const auto& [name, value] : table) {
    if (*s == name) return value;
    allowed += (allowed.empty() ? "" : ", ") + std::string(name);
  }
  r.invalid(key, "'" + *s + "' is not one of " + allowed);
  return std::nullopt;
}

// CR or LF would end the reply line early, and NUL is no text (as in the Lua API); exact
// octets, broken ones included, go in "raw".
bool breaks_a_line(const std::string& s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos;
}

// {"code": 451, "enhanced": "4.7.1", "text": "..."} or "lines": [...] for a multi-line reply.
std::optional<proto::reply> read_reply(object_reader& r) {
  auto code = r.integer("code", 100, 599);
  if (!code && r.ok()) r.required("code", "is required (100 to 599)");
  proto::reply rep;
  rep.code = static_cast<int>(code.value_or(0));
  rep.enhanced = r.string("enhanced").value_or("");
  auto text = r.string("text");
  auto lines = r.strings("lines");
  if (text && lines) r.invalid("lines", "give either text or lines, not both");
  if (lines && lines->empty()) r.invalid("lines", "needs at least one line");
  // A code alone gets the code's usual text; "text": "" asks for none.
  rep.lines = lines ? *lines
                    : std::vector<std::string>{
                          text.value_or(std::string(proto::default_reply_text(rep.code)))};
  for (const auto& l : rep.lines)
    if (breaks_a_line(l)) r.invalid(text ? "text" : "lines", "must not contain CR, LF or NUL");
  if (!rep.enhanced.empty() && !proto::is_enhanced_code(rep.enhanced)) {
    r.invalid("enhanced", "expected an enhanced status code like \"4.7.1\" (RFC 3463)");
  }
  if (!r.ok()) return std::nullopt;
  return rep;
}

void read_endings(object_reader& r, fault::action& a) {
  static const std::pair<const char*, fault::ending> endings[] = {
      {"close", fault::ending::close_without_reply},
      {"close_after", fault::ending::close_after_reply},
      {"reset", fault::ending::reset},
      {"hang", fault::ending::hang}};
  static const std::pair<const char*, fault::malformed_kind> malformed[] = {
      {"mixed_codes", fault::malformed_kind::mixed_codes},
      {"missing_space", fault::malformed_kind::missing_space},
      {"long_line", fault::malformed_kind::long_line},
      {"garbage", fault::malformed_kind::garbage}};
  if (auto e = choose(r, "ending", endings)) a.end = *e;
  if (auto m = choose(r, "malformed", malformed)) a.malformed = *m;
}

void read_tls(object_reader& r, fault::action& a) {
  static const std::pair<const char*, fault::starttls_mode> modes[] = {
      {"close_after_220", fault::starttls_mode::close_after_220},
      {"abort_handshake", fault::starttls_mode::abort_handshake},
      {"inject", fault::starttls_mode::inject_plaintext}};
  if (auto m = choose(r, "starttls", modes)) a.tls_mode = *m;
  if (auto c = choose(r, "certificate", fault::certificate_kinds)) a.certificate = *c;
  a.inject = r.string("inject").value_or("");
  if (!a.inject.empty() && a.tls_mode != fault::starttls_mode::inject_plaintext) {
    r.invalid("inject", "is the plaintext of \"starttls\": \"inject\"; give that too");
  }
  a.auth_challenge = r.string("challenge");
}

// Rounded up: a delay asked for is never 0 ms (0.0004 s would make an empty action).
fault::millis millis_of(double seconds) {
  return proto::millis_from_seconds(seconds, true);
}

void read_timing(object_reader& r, fault::action& a, std::optional<api_error>& err) {
  if (auto d = r.number("delay", 0, max_seconds)) a.delay = millis_of(*d);
  if (const json::object* t = r.object("trickle")) {
    object_reader tr(*t, r.path("trickle"), err);
    auto bytes = tr.integer("bytes", 1, 1 << 20);
    if (!bytes && tr.ok()) tr.required("bytes", "is required (at least 1)");
    auto every = tr.number("every", 0, max_seconds);
    tr.finish();
    a.trickle_bytes = bytes.value_or(0);
    a.trickle_every = millis_of(every.value_or(0));
  }
  if (auto cuts = r.integers("split")) {
    if (cuts->empty()) r.invalid("split", "needs at least one offset");
    for (auto c : *cuts) {
      // Cuts that write nothing between them: backwards, repeated, before the first octet.
      if (c < 1 || (!a.split_at.empty() && static_cast<std::size_t>(c) <= a.split_at.back())) {
        r.invalid("split", "offsets are octet counts from 1, each past the one before");
        break;
      }
      a.split_at.push_back(static_cast<std::size_t>(c));
    }
  }
}

// LMTP, at "message": [{"code": 552, ...}, null, ...], one reply per recipient in RCPT order.
void read_each_recipient(object_reader& r, fault::action& a, std::optional<api_error>& err) {
  const json::array* list = r.array("each_recipient");
  if (!list) return;
  if (list->empty()) r.invalid("each_recipient", "needs at least one reply (or null)");
  for (std::size_t i = 0; i < list->size() && r.ok(); ++i) {
    const auto& v = (*list)[i];
    if (v.is_null()) {
      a.each_recipient.emplace_back();
    } else if (const auto* o = v.if_object()) {
      object_reader item(*o, r.path("each_recipient") + "[" + std::to_string(i) + "]", err);
      a.each_recipient.push_back(read_reply(item));
      item.finish();
    } else {
      r.invalid("each_recipient", "item " + std::to_string(i) + " must be a reply object or null");
    }
  }
}

void read_unsolicited(object_reader& r, fault::action& a, std::optional<api_error>& err) {
  const json::object* u = r.object("unsolicited");
  if (!u) return;
  object_reader ur(*u, r.path("unsolicited"), err);
  fault::unsolicited_reply out;
  if (auto rep = read_reply(ur)) out.reply = *rep;
  out.after = millis_of(ur.number("after", 0, max_seconds).value_or(0));
  out.close = ur.boolean("close").value_or(true);
  if (!out.close && out.reply.code == 421) {
    ur.invalid("close", "a 421 always closes the connection (RFC 5321 3.8); use another code");
  }
  ur.finish();
  a.unsolicited = std::move(out);
}

// A rule's action as the transcript names it, in the request's own words: "reply 451",
// "delay 1", "reply 421, delay 0.2, ending close_after".
std::string summary_of(const json::object& o, const fault::action& a) {
  std::string out;
  for (const auto& [key, v] : o) {
    if (key == "name") continue;
    out += (out.empty() ? "" : ", ") + std::string(key);
    // Short choices are shown; octets to send (raw, inject, challenge) only by their key.
    const bool choice = key == "ending" || key == "malformed" || key == "starttls" ||
                        key == "certificate" || key == "delay";
    if (key == "reply" && a.reply) {
      out += " " + std::to_string(a.reply->code);
    } else if (choice && v.is_string()) {
      out += " " + std::string(v.get_string());
    } else if (choice && v.is_number()) {
      out += " " + smtpfault::json::json_text(v);
    }
  }
  return out;
}

}  // namespace

result<fault::action> parse_action(const json::object& o, const std::string& prefix) {
  std::optional<api_error> err;
  object_reader r(o, prefix, err);
  fault::action a;
  a.name = r.string("name").value_or("");
  if (const json::object* rep = r.object("reply")) {
    object_reader rr(*rep, r.path("reply"), err);
    a.reply = read_reply(rr);
    rr.finish();
  }
  a.raw = r.string("raw");
  // raw is the reply's exact octets: a reply beside it would be dropped without a word.
  if (a.raw && a.reply) r.invalid("raw", "replaces the reply octet for octet; give raw or reply");
  read_endings(r, a);
  read_timing(r, a, err);
  a.extensions = r.strings("extensions");
  for (const auto& k : a.extensions.value_or(std::vector<std::string>{})) {
    if (breaks_a_line(k)) r.invalid("extensions", "must not contain CR, LF or NUL");
  }
  a.hide = r.strings("hide").value_or(std::vector<std::string>{});
  for (const auto& k : a.hide) {
    // A misspelt keyword would make a rule that fires and changes nothing.
    if (!session::hideable_named(k) || k.find(' ') != std::string::npos) {
      r.invalid("hide", "'" + k + "' is not an extension or command the server can hide: " +
                            session::hideable_names());
    }
  }
  read_tls(r, a);
  read_unsolicited(r, a, err);
  read_each_recipient(r, a, err);
  r.finish();
  if (err) return proto::unexpected{*err};
  if (a.is_default()) {
    return fail(400, prefix + ": an empty action changes nothing; give reply, delay, ending, ...",
                prefix);
  }
  if (a.name.empty()) a.name = summary_of(o, a);
  return a;
}

namespace {

std::vector<std::string> verb_names() {
  std::vector<std::string> out;
  for (int v = 0; v < static_cast<int>(proto::verb::unknown); ++v)
    out.emplace_back(proto::verb_name(static_cast<proto::verb>(v)));
  return out;
}

std::string verb_list() {
  std::string out;
  for (const auto& name : verb_names())
    out += (out.empty() ? "" : ", ") + name;
  return out;
}

// match.on: connect, message, * or a verb; a misspelt verb ("RCTP") would make a rule that
// never fires, so only the known ones and X-verbs are taken.
void read_match_on(object_reader& mr, net::rule_match& match) {
  auto on = mr.string("on");
  if (!on) return;
  std::string up = *on;
  for (auto& c : up)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  bool word = !up.empty() && up.size() <= 32 && std::all_of(up.begin(), up.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-';
  });
  if (up == "CONNECT" || up == "MESSAGE") {
    match.on = up == "CONNECT" ? "connect" : "message";
  } else if (up == "*" || (word && (proto::verb_named(up) != proto::verb::unknown ||
                                    (up.front() == 'X' && up.size() > 1)))) {
    match.on = up;
  } else {
    auto names = verb_names();
    names.insert(names.end(), {"CONNECT", "MESSAGE"});
    mr.invalid("on", "must be connect, message, *, an SMTP verb (" + verb_list() +
                         ") or an X-verb such as XCLIENT" + proto::did_you_mean(up, names));
  }
}

void read_match(const json::object& m, net::rule_match& match, std::optional<api_error>& err) {
  object_reader mr(m, "match", err);
  read_match_on(mr, match);
  if (auto address = mr.string("address")) {
    const auto& on = match.on;
    if (address->empty()) {
      mr.invalid("address",
                 "must not be empty (leave it out to match any address; \"<>\" is the null "
                 "sender)");
    } else if (*address == "<>" && on != "*" && on != "MAIL") {
      mr.invalid("address", "\"<>\", the null sender, matches only with on MAIL or *");
    } else if (*address != "<>" && address->find_first_of("<>") != std::string::npos) {
      // The pattern is matched against the address alone: brackets would never match.
      mr.invalid("address",
                 "is matched without angle brackets: write a@example.com, not "
                 "<a@example.com> (\"<>\" alone is the null sender)");
    } else if (on != "*" && on != "MAIL" && on != "RCPT" && on != "message") {
      mr.invalid("address", "matches only with on MAIL, RCPT, message or *, where there is one");
    }
    match.address = *address;
  }
  if (auto c = mr.string("client")) {
    auto net = net::ip_network::parse(*c);
    if (net)
      match.client = *net;
    else
      mr.invalid("client", net.error());
  }
  mr.finish();
}

// An action that cannot act where the rule matches would fire, be used up and change nothing.
std::optional<proto::unexpected<api_error>> misplaced_action(const net::fault_rule& rule) {
  const auto& act = rule.action;
  // Certificates and handshake faults act at STARTTLS (and before the handshake on the
  // implicit-TLS port).
  const bool tls_fault = act.certificate != fault::certificate_kind::normal ||
                         act.tls_mode != fault::starttls_mode::normal;
  if (tls_fault && rule.match.on != "STARTTLS") {
    return fail(400,
                "match.on: certificate and starttls act at STARTTLS (on the implicit-TLS port, "
                "before its handshake): match on \"STARTTLS\"",
                "match.on");
  }
  if (act.auth_challenge && rule.match.on != "AUTH") {
    return fail(400, "match.on: challenge is the next 334 of an AUTH exchange: match on \"AUTH\"",
                "match.on");
  }
  // Per-recipient replies answer the final dot.
  if (!act.each_recipient.empty() && rule.match.on != "message") {
    return fail(400, "match.on: each_recipient answers the final dot: match on \"message\"",
                "match.on");
  }
  if (!act.each_recipient.empty() &&
      (act.reply || act.raw || act.malformed != fault::malformed_kind::none)) {
    return fail(400,
                "action.each_recipient: gives the replies itself; leave out reply, raw and "
                "malformed",
                "action.each_recipient");
  }
  return std::nullopt;
}

// 451.0 and 4.51e2 are read as the integer 451: echoed as given, a client that decodes the
// documented integer (Go's int) would fail on the rule it was just told was made.
void whole_numbers_as_integers(json::value& v) {
  if (v.is_double()) {
    const double d = v.get_double();
    if (d == std::floor(d) && std::abs(d) < 9.0e15) v = static_cast<std::int64_t>(d);
  } else if (v.is_array()) {
    for (auto& e : v.get_array())
      whole_numbers_as_integers(e);
  } else if (v.is_object()) {
    for (auto& kv : v.get_object())
      whole_numbers_as_integers(kv.value());
  }
}

}  // namespace

result<net::fault_rule> parse_rule(const json::object& o) {
  std::optional<api_error> err;
  object_reader r(o, "", err);
  net::fault_rule rule;
  if (const json::object* m = r.object("match")) read_match(*m, rule.match, err);
  rule.times = r.integer("times", 0, 1'000'000'000).value_or(1);
  const json::object* action = r.object("action");
  if (!action && r.ok()) r.required("action", "is required");
  r.finish();
  if (err) return proto::unexpected{*err};
  auto a = parse_action(*action, "action");
  if (!a) return proto::unexpected{a.error()};
  rule.action = std::move(*a);
  if (auto misplaced = misplaced_action(rule)) return *misplaced;
  json::value echoed = *action;
  whole_numbers_as_integers(echoed);
  rule.source = json::serialize(echoed);
  return rule;
}

json::object rule_json(const net::fault_rule& r) {
  json::object match{{"on", r.match.on}};
  if (!r.match.address.empty()) match["address"] = r.match.address;
  if (r.match.client) match["client"] = r.match.client->to_string();
  boost::system::error_code ec;
  json::value action = json::parse(r.source, ec);
  json::object o{{"id", r.id},
                 {"match", std::move(match)},
                 {"action", std::move(action)},
                 {"times", r.times},
                 {"fired", r.fired}};
  if (r.times != 0) o["remaining"] = r.times - r.fired;
  return o;
}

}  // namespace smtpfault::control
