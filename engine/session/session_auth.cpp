// AUTH (RFC 4954) for server_session: PLAIN, LOGIN, CRAM-MD5 and XOAUTH2 exchanges.
#include <algorithm>

#include "proto/ascii.hpp"
#include "session/server_session.hpp"

namespace smtpfault::session {

namespace {

constexpr std::string_view login_user_prompt = "VXNlcm5hbWU6";  // "Username:"
constexpr std::string_view login_pass_prompt = "UGFzc3dvcmQ6";  // "Password:"

}  // namespace

bool auth_policy::check_password(const std::string& user, const std::string& password) const {
  if (accept_any()) return true;
  auto it = users.find(user);
  return it != users.end() && it->second == password;
}

bool auth_policy::check_cram_md5(const std::string& user, const std::string& digest,
                                 const std::string& challenge) const {
  if (accept_any()) return true;
  auto it = users.find(user);
  return it != users.end() && proto::cram_md5_digest(it->second, challenge) == digest;
}

bool auth_policy::check_token(const std::string& user, const std::string& token) const {
  return check_password(user, token);
}

void server_session::do_auth(const proto::command& cmd) {
  if (!opts_.extensions.has(extension::auth)) {
    return error_reply(502, "5.5.1", "AUTH not available");
  }
  if (!greeted_ || !extended_) return error_reply(503, "5.5.1", "Send EHLO first");
  if (!facts_.auth_user.empty()) return error_reply(503, "5.5.1", "Already authenticated");
  if (in_transaction_) return error_reply(503, "5.5.1", "AUTH not allowed during a transaction");
  // emailjs sends "AUTH  CRAM-MD5": taken, as Postfix and Exim take it, and noted.
  const auto parts = proto::split_auth_argument(cmd.argument);
  if (parts.extra_spaces) {
    note(
        "anomaly: auth_syntax: more than one space between the parts of AUTH (RFC 4954 4: one "
        "SP), taken as one",
        now_);
  }
  const std::string_view mech_name = parts.mechanism;
  auth_mech_ = proto::parse_mechanism(mech_name);
  if (auth_mech_ == proto::sasl_mechanism::unknown) {
    return error_reply(504, "5.5.4", "Unrecognized authentication type");
  }
  if (!mechanism_advertised(mech_name)) {
    // A scenario that lists "AUTH PLAIN" means a server that knows no other mechanism: a
    // client that tries one it was not offered is the fault being tested.
    note("AUTH " + std::string(proto::mechanism_name(auth_mech_)) + " was not advertised", now_);
    return error_reply(504, "5.5.4", "Mechanism not advertised");
  }
  // A scenario's challenge is for this AUTH, used or not: it must not surface in a later one.
  auto challenge = std::exchange(challenge_override_, std::nullopt);
  auth_step_ = 0;
  auth_user_.clear();
  // A challenge answers one exchange only: a digest for an earlier one must not pass.
  auth_challenge_.clear();
  if (parts.initial_response && auth_mech_ == proto::sasl_mechanism::cram_md5) {
    // RFC 4954 4: the server speaks first in CRAM-MD5, so there is nothing to respond to yet.
    return error_reply(501, "5.5.2", "CRAM-MD5 takes no initial response");
  }
  set_mode(mode::auth_response);
  if (parts.initial_response) {
    if (challenge)
      note("the scenario's AUTH challenge was not sent: the client gave an initial response", now_);
    auth_step(*parts.initial_response);
    return;
  }
  if (challenge) {
    // CRAM-MD5's digest is of the challenge the client was sent, decoded as the client does.
    if (auth_mech_ == proto::sasl_mechanism::cram_md5) {
      auth_challenge_ = proto::base64_decode(*challenge).value_or(*challenge);
    }
    reply(334, "", std::move(*challenge));
    return;
  }
  switch (auth_mech_) {
    case proto::sasl_mechanism::login:
      reply(334, "", std::string(login_user_prompt));
      break;
    case proto::sasl_mechanism::cram_md5:
      // RFC 2195 asks for a challenge never used before; the session, the attempt and the salt
      // make one, and the clock stays out of it so that a replay matches.
      auth_challenge_ =
          "<" + std::to_string(std::hash<std::string>{}(facts_.session_id) ^ opts_.challenge_salt) +
          "." + std::to_string(++challenges_) + "@" + opts_.hostname + ">";
      reply(334, "", proto::base64_encode(auth_challenge_));
      break;
    default:
      reply(334, "", "");
      break;
  }
}

bool server_session::mechanism_advertised(std::string_view name) const {
  if (!ehlo_keywords_) return true;  // the built-in list names every mechanism there is
  for (std::string_view line : *ehlo_keywords_) {
    if (!proto::istarts_with(line, "AUTH ")) continue;
    for (std::string_view rest = line.substr(5); !rest.empty();) {
      auto end = rest.find(' ');
      if (proto::iequals(rest.substr(0, end), name)) return true;
      if (end == std::string_view::npos) break;
      rest.remove_prefix(end + 1);
    }
  }
  return false;
}

std::size_t server_session::receive_auth(std::string_view input) {
  lines_.set_max_line(opts_.limits.auth_line);
  auto r = lines_.next(input);
  if (r.st == proto::line_reader::status::need_more) return r.consumed;
  ++lines_taken_;
  if (r.st == proto::line_reader::status::too_long) {
    log_.add(direction::client, "<over-long AUTH line discarded>", now_);
    // The exchange ends here (RFC 4954 4): nothing of it may decide the next AUTH.
    oauth_error_sent_ = false;
    set_mode(mode::command);
    error_reply(500, "5.5.6", "Authentication exchange line is too long");
    return r.consumed;
  }
  log_.add(direction::client, std::string(r.line == "*" ? "*" : masked_secret), now_);
  auth_step(r.line);
  return r.consumed;
}

void server_session::auth_step(std::string_view response) {
  if (oauth_error_sent_) {
    // The client's answer to the error challenge, normally an empty line: now the failure.
    oauth_error_sent_ = false;
    set_mode(mode::command);
    return error_reply(535, "5.7.8", "Username and Password not accepted");
  }
  if (response == "*") {
    set_mode(mode::command);
    return error_reply(501, "5.7.0", "Authentication cancelled");
  }
  auto decoded = proto::base64_decode(response);
  if (!decoded) {
    set_mode(mode::command);
    return error_reply(501, "5.5.2", "Cannot decode the base64 response");
  }
  std::optional<proto::sasl_credentials> cred;
  switch (auth_mech_) {
    case proto::sasl_mechanism::plain:
      cred = proto::parse_plain(*decoded);
      break;
    case proto::sasl_mechanism::xoauth2:
      cred = proto::parse_xoauth2(*decoded);
      break;
    case proto::sasl_mechanism::cram_md5:
      cred = proto::parse_cram_md5(*decoded);
      break;
    case proto::sasl_mechanism::login:
      if (auth_step_++ == 0) {
        auth_user_ = std::move(*decoded);
        // An empty user is malformed, as with the other mechanisms: the session knows its login
        // by the user's name, so one accepted without a name could log in again.
        if (!auth_user_.empty()) return reply(334, "", std::string(login_pass_prompt));
        break;
      }
      cred = proto::sasl_credentials{"", auth_user_, std::move(*decoded)};
      break;
    case proto::sasl_mechanism::unknown:
      break;
  }
  if (!cred) {
    set_mode(mode::command);
    return error_reply(501, "5.5.2", "Malformed authentication response");
  }
  auth_cred_ = std::move(*cred);
  if (wants(hook::auth)) return consult(hook::auth);
  check_credentials();
}

std::string_view server_session::auth_attempt_mechanism() const {
  return proto::mechanism_name(auth_mech_);
}

void server_session::check_credentials() {
  const auto* cred = &auth_cred_;
  const auth_policy any;
  const auth_policy& policy = opts_.auth ? *opts_.auth : any;
  bool ok = false;
  switch (auth_mech_) {
    case proto::sasl_mechanism::cram_md5:
      ok = policy.check_cram_md5(cred->user, cred->secret, auth_challenge_);
      break;
    case proto::sasl_mechanism::xoauth2:
      ok = policy.check_token(cred->user, cred->secret);
      break;
    default:
      ok = policy.check_password(cred->user, cred->secret);
      break;
  }
  // RFC 4616 2: a configured user may act only as itself; a mock that accepts anyone does not
  // ask whom the client acts for.
  if (ok && !policy.accept_any() && !cred->authzid.empty() && cred->authzid != cred->user) {
    note("AUTH " + std::string(proto::mechanism_name(auth_mech_)) + ": " + cred->user +
             " may not act as " + cred->authzid,
         now_);
    ok = false;
  }
  auth_finish(*cred, ok);
}

void server_session::auth_finish(const proto::sasl_credentials& cred, bool ok) {
  set_mode(mode::command);
  if (!ok) {
    note("AUTH " + std::string(proto::mechanism_name(auth_mech_)) + " failed for " + cred.user,
         now_);
    if (auth_mech_ == proto::sasl_mechanism::xoauth2) {
      // As Gmail and RFC 7628 do: the error as a JSON challenge first, the 535 after the
      // client has answered it. A client that takes the 334 for success is caught here.
      set_mode(mode::auth_response);
      oauth_error_sent_ = true;
      return reply(334, "",
                   proto::base64_encode(R"({"status":"401","schemes":"bearer",)"
                                        R"("scope":"https://mail.google.com/"})"));
    }
    return error_reply(535, "5.7.8", "Authentication credentials invalid");
  }
  facts_.auth_user = cred.user;
  facts_.auth_mechanism = std::string(proto::mechanism_name(auth_mech_));
  note("AUTH " + facts_.auth_mechanism + " succeeded for " + cred.user, now_);
  errors_ = 0;
  reply(235, "2.7.0", "Authentication successful");
}

}  // namespace smtpfault::session
