// What a custom check (`expect { check = function(run) ... end }`) is given of a run.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "harness.hpp"

namespace smtpfault::script::testing {
namespace {

using namespace std::chrono_literals;

// Times come as seconds of scenario time since the first session started: real seconds
// divided by the time scale, so a check compares them with the scenario's own windows.
TEST(custom_checks, times_are_scenario_seconds_since_the_first_session) {
  driver d(R"(
expect {
  check = function(run)
    local a, b = run.sessions[1], run.sessions[2]
    return false, string.format("%.1f %.1f %.1f %.1f %.1f", a.started, a.ended,
      a.exchanges[1].at, b.started, b.exchanges[1].at)
  end,
}
)");
  ASSERT_TRUE(d.loaded());
  run_outcome run;
  run.time_scale = 0.5;
  const std::chrono::system_clock::time_point t0{std::chrono::seconds{1'700'000'000}};
  auto& a = run.sessions.emplace_back();
  a.id = "000001";
  a.started = t0;
  a.ended = t0 + 2s;
  a.exchanges.push_back({"MAIL FROM:<a@b>", "MAIL", 421, "421 4.7.0 later", 2, t0 + 1s, {}});
  auto& b = run.sessions.emplace_back();
  b.id = "000002";
  b.started = t0 + 3s;
  b.ended = t0 + 4s;
  b.exchanges.push_back({"MAIL FROM:<a@b>", "MAIL", 250, "250 ok", 2, t0 + 3500ms, {}});
  auto results = d.sc().run_checks(run);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_FALSE(results[0].passed);
  EXPECT_FALSE(results[0].script_error) << results[0].detail;
  EXPECT_EQ(results[0].detail, "0.0 4.0 2.0 6.0 7.0");
}

// exit as a list is read as one status per run, numbers as their text.
TEST(custom_checks, an_exit_status_per_run_is_read_in_order) {
  driver d("expect { runs = 3, exit = { 'failure', 75, 'success' } }\n");
  ASSERT_TRUE(d.loaded());
  EXPECT_EQ(d.sc().expected().exit, (std::vector<std::string>{"failure", "75", "success"}));
  driver one("expect { exit = 3 }\n");
  ASSERT_TRUE(one.loaded());
  EXPECT_EQ(one.sc().expected().exit, (std::vector<std::string>{"3"}));
}

// Under runs = n, each session says which run of the command it came with.
TEST(custom_checks, each_session_names_its_run) {
  driver d(R"(
expect {
  check = function(run)
    return false, run.sessions[1].run .. " " .. run.sessions[2].run .. " " .. run.sessions[3].run
  end,
}
)");
  ASSERT_TRUE(d.loaded());
  run_outcome run;
  const std::chrono::system_clock::time_point t0{std::chrono::seconds{1'700'000'000}};
  for (auto at : {t0 + 1s, t0 + 2s, t0 + 6s})
    run.sessions.emplace_back().started = at;
  run.run_starts = {t0, t0 + 5s};
  auto results = d.sc().run_checks(run);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].detail, "1 1 2");
}

// A session the client left while a reply was held back says so; one it left otherwise not.
TEST(custom_checks, a_session_says_whether_the_client_left_while_a_reply_was_held) {
  driver d(R"(
expect {
  check = function(run)
    return false, tostring(run.sessions[1].left_while_held) .. " "
      .. tostring(run.sessions[2].left_while_held)
  end,
}
)");
  ASSERT_TRUE(d.loaded());
  run_outcome run;
  auto& held = run.sessions.emplace_back();
  held.client_closed = true;
  held.reply_held = true;
  run.sessions.emplace_back().client_closed = true;
  auto results = d.sc().run_checks(run);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].detail, "true false");
}

// A stored message has its header fields and subject, as on_message's msg has them.
TEST(custom_checks, a_message_has_its_headers_and_subject) {
  driver d(R"(
expect {
  check = function(run)
    local m = run.messages[1]
    return false, m.headers["message-id"] .. " " .. m.subject .. " " .. m.headers.subject
  end,
}
)");
  ASSERT_TRUE(d.loaded());
  run_outcome run;
  auto stored = std::make_shared<capture::stored_message>();
  stored->msg.data =
      "Message-ID: <1@example.com>\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n\r\nhi\r\n";
  run.stored.push_back(stored);
  auto results = d.sc().run_checks(run);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].detail, "<1@example.com> Grüße =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=");
}

// The addresses of To: and Cc: never asked for, where the recipients ended at a refusal: in a
// session whose RCPTs went on past it, or with no refusal, a shorter envelope is no mistake.
TEST(custom_checks, unasked_names_the_recipients_never_asked_after_a_refusal) {
  driver d(R"(
expect {
  check = function(run) return false, "[" .. table.concat(smtp.unasked(run), " ") .. "]" end,
}
)");
  ASSERT_TRUE(d.loaded());
  const auto t0 = std::chrono::system_clock::time_point{std::chrono::seconds{1'700'000'000}};
  auto session_with = [&](std::string id, int last_code) {
    capture::session_summary s;
    s.id = std::move(id);
    s.exchanges.push_back({"MAIL FROM:<s@example.com>", "MAIL", 250, "250 ok", 1, t0, {}});
    s.exchanges.push_back({"RCPT TO:<a@example.com>", "RCPT", 250, "250 ok", 2, t0, {}});
    s.exchanges.push_back({"RCPT TO:<B@example.com>", "RCPT", last_code, "x", 3, t0, {}});
    s.exchanges.push_back({"DATA", "DATA", 354, "354 go", 4, t0, {}});
    return s;
  };
  auto message_of = [](std::string session) {
    auto m = std::make_shared<capture::stored_message>();
    m->msg.facts.session_id = std::move(session);
    m->msg.data =
        "To: \"A\" <a@example.com>, b@example.com,\r\n c@example.com\r\nCc: "
        "<d@example.com>; a@example.com\r\n\r\nhi\r\n";
    return m;
  };
  run_outcome run;
  run.sessions.push_back(session_with("000001", 550));
  run.stored.push_back(message_of("000001"));
  EXPECT_EQ(d.sc().run_checks(run)[0].detail, "[c@example.com d@example.com]");
  run.sessions[0] = session_with("000001", 250);
  EXPECT_EQ(d.sc().run_checks(run)[0].detail, "[]");
}

TEST(custom_checks, seen_takes_a_verb_in_any_case) {
  driver d(R"(
expect {
  check = function(run)
    return false, tostring(smtp.seen(run, "rcpt", 250)) .. " " .. tostring(smtp.seen(run, "Mail"))
  end,
}
)");
  ASSERT_TRUE(d.loaded());
  run_outcome run;
  run.sessions.emplace_back().exchanges.push_back(
      {"rcpt to:<a@b>", "RCPT", 250, "250 ok", 2, {}, {}});
  EXPECT_EQ(d.sc().run_checks(run)[0].detail, "true false");
}

// A check that sleeps is the scenario's mistake, named where it paused like any other.
TEST(custom_checks, a_check_that_sleeps_is_an_error_at_its_line) {
  driver d(R"(
expect {
  check = function(run)
    smtp.sleep(0.1)
    return true
  end,
}
)");
  ASSERT_TRUE(d.loaded());
  auto results = d.sc().run_checks(run_outcome{});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_TRUE(results[0].script_error);
  EXPECT_NE(results[0].detail.find(":4: custom check yielded; checks cannot sleep"),
            std::string::npos)
      << results[0].detail;
}

// Which run crashed is the runner's to tell (a shell's 139 too): a check reads it, per run.
TEST(custom_checks, each_run_says_the_signal_that_ended_it) {
  driver d(R"(
expect { check = function(run) return false, table.concat(run.exit_signals, " ") end }
)");
  ASSERT_TRUE(d.loaded());
  run_outcome run;
  run.exit_codes = {0, 139, 1};
  run.exit_signals = {0, 11};  // the runner's list may be shorter: 0 for the rest
  EXPECT_EQ(d.sc().run_checks(run)[0].detail, "0 11 0");
}

// A message stored whose 250 never reached its client is one the client will send again.
TEST(custom_checks, a_message_says_whether_its_reply_reached_the_client) {
  driver d(R"(
expect {
  check = function(run)
    return false, tostring(run.messages[1].acknowledged) .. " " .. tostring(run.messages[2].acknowledged)
  end,
}
)");
  ASSERT_TRUE(d.loaded());
  run_outcome run;
  for (bool unacknowledged : {false, true}) {
    auto m = std::make_shared<capture::stored_message>();
    m->unacknowledged = unacknowledged;
    run.stored.push_back(std::move(m));
  }
  auto results = d.sc().run_checks(run);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].detail, "true false");
}

// smtp.message_counts knows a message by its Message-ID (any case, folded or not), else by its
// recipients and body: a retransmission is a repeat, a pooled sender's next message is not, nor
// the same message sent on to a recipient who did not get it.
TEST(custom_checks, message_counts_tells_repeats_from_other_messages) {
  driver d(R"(
expect {
  check = function(run)
    local distinct, repeats = smtp.message_counts(run)
    local said = { tostring(distinct) }
    for _, r in ipairs(repeats) do
      said[#said + 1] = tostring(r.id) .. " x" .. r.times .. " in " .. table.concat(r.sessions, ",")
    end
    return false, table.concat(said, "; ")
  end,
}
)");
  ASSERT_TRUE(d.loaded());
  run_outcome run;
  auto add = [&run](std::string session, std::string data, std::string rcpt) {
    auto m = std::make_shared<capture::stored_message>();
    m->msg.facts.session_id = std::move(session);
    m->msg.data = std::move(data);
    session::recipient r;
    r.address.local_part = std::move(rcpt);
    r.address.domain = "example.com";
    m->msg.env.recipients.push_back(r);
    run.stored.push_back(std::move(m));
  };
  add("000001", "Message-ID: <a@x>\r\nSubject: one\r\n\r\nbody\r\n", "b");
  add("000002", "Subject: one\r\nmessage-id:\r\n <a@x>\r\n\r\nbody again\r\n", "b");
  add("000002", "Message-ID: <b@x>\r\nSubject: two\r\n\r\nbody\r\n", "b");
  add("000003", "Date: 1\r\n\r\nno id\r\n", "c");
  add("000004", "Date: 2\r\n\r\nno id\r\n", "C");
  add("000004", "Date: 3\r\n\r\nno id\r\n", "d");
  // Sent again to the recipient a 452 put off: one message, to each recipient once.
  add("000005", "Message-ID: <c@x>\r\n\r\nsplit\r\n", "e");
  add("000006", "Message-ID: <c@x>\r\n\r\nsplit\r\n", "f");
  const auto results = d.sc().run_checks(run);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].detail, "5; <a@x> x2 in 000001,000002; nil x2 in 000003,000004");
  // Each repeat says itself in words, for a scenario's reason.
  driver said(R"(
expect { check = function(run) local _, r = smtp.message_counts(run) return false, r[1].said .. "; " .. r[2].said end }
)");
  ASSERT_TRUE(said.loaded());
  EXPECT_EQ(said.sc().run_checks(run)[0].detail,
            "the one with Message-ID <a@x> was delivered 2 times to b@example.com (sessions "
            "000001, 000002); one (the same recipients and body) was delivered 2 times to "
            "c@example.com (sessions 000003, 000004)");
}

// A pass may carry a note ("not exercised: ..."), which the runner adds to the PASS's reason.
TEST(custom_checks, a_pass_keeps_its_note) {
  driver d("expect { check = function(run) return true, 'not exercised: one message' end }\n");
  ASSERT_TRUE(d.loaded());
  const auto results = d.sc().run_checks(run_outcome{});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_TRUE(results[0].passed);
  EXPECT_EQ(results[0].detail, "not exercised: one message");
}

std::string built_in(const std::string& name) {
  std::ifstream in(std::string(SMTPFAULT_SOURCE_DIR) + "/scenarios/" + name + ".lua");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// malformed-replies: a mailer that delivered on the third connection and still exited 1 read
// the 2 KB reply line to MAIL in pieces and went out of step (PHPMailer reads 515 octets at a
// time); the reason says so, where it used to leave only "exit: expected success".
TEST(custom_checks, malformed_replies_names_a_delivery_its_mailer_reported_as_failed) {
  driver d(built_in("malformed-replies"));
  ASSERT_TRUE(d.loaded());
  run_outcome run;
  for (const char* id : {"000001", "000002", "000003"}) {
    auto& s = run.sessions.emplace_back();
    s.id = id;
    s.exchanges.push_back({"<no command>", "", 0, "", 1, {}, {}});
  }
  run.sessions[1].exchanges[0].code = 421;
  run.sessions[2].delivered = 1;
  run.messages = 1;
  run.exit_codes = {0};
  auto results = d.sc().run_checks(run);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_TRUE(results[0].passed) << results[0].detail;
  run.exit_codes = {1};
  results = d.sc().run_checks(run);
  EXPECT_FALSE(results[0].passed);
  EXPECT_EQ(results[0].detail.rfind("the message was delivered, yet the command reported failure "
                                    "(exit 1): after the reply line of over 2048 octets to MAIL",
                                    0),
            0u)
      << results[0].detail;
}

// size-limit: a message lost before the limit (a handshake that failed, a refused login) and
// reported as sent is not said to be over it; one refused with 552 is.
TEST(custom_checks, size_limit_blames_the_limit_only_where_the_server_refused_for_it) {
  driver d(built_in("size-limit"));
  ASSERT_TRUE(d.loaded());
  run_outcome run;
  auto& s = run.sessions.emplace_back();
  s.id = "000001";
  s.exchanges.push_back({"EHLO x", "EHLO", 250, "250 ok", 2, {}, {}});
  s.exchanges.push_back({"STARTTLS", "STARTTLS", 220, "220 go", 4, {}, {}});
  run.exit_codes = {0};
  auto results = d.sc().run_checks(run);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].detail, "the message was not delivered, but the command reported success");
  s.exchanges.push_back({"MAIL FROM:<a@b> SIZE=9000", "MAIL", 552, "552 5.3.4 too big", 6, {}, {}});
  EXPECT_EQ(d.sc().run_checks(run)[0].detail,
            "the message was not delivered (over the SIZE limit), but the command reported "
            "success");
}

// relay-denied: a message sent whole to the accepted recipient and refused after its data (a
// line too long) names that refusal, not the relay's.
TEST(custom_checks, relay_denied_names_a_refusal_after_the_data) {
  driver d(built_in("relay-denied"));
  ASSERT_TRUE(d.loaded());
  run_outcome run;
  auto& s = run.sessions.emplace_back();
  s.id = "000001";
  s.exchanges.push_back({"RCPT TO:<a@smtpfault.test>", "RCPT", 250, "250 ok", 3, {}, {}});
  s.exchanges.push_back({"RCPT TO:<b@example.com>", "RCPT", 554, "554 5.7.1 no", 4, {}, {}});
  s.exchanges.push_back({"DATA", "DATA", 354, "354 go", 5, {}, {}});
  s.exchanges.push_back({"<end of data>", "", 0, "", 6, {}, {}});
  run.exit_codes = {1};
  auto results = d.sc().run_checks(run);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_NE(results[0].detail.find("the client did not complete the message"), std::string::npos)
      << results[0].detail;
  s.exchanges.back().code = 500;
  s.exchanges.back().reply = "500 5.5.2 Line too long";
  EXPECT_EQ(d.sc().run_checks(run)[0].detail,
            "expected the message delivered to the recipient in smtpfault.test ('RCPT "
            "TO:<a@smtpfault.test>' got 250); the client sent it, and the server refused it after "
            "its data ('500 5.5.2 Line too long', session 000001): that refusal, not the relay's, "
            "stopped it");
}

// malformed-replies: a run killed at --timeout while it waited on the garbage greeting did not
// close the connection itself, and is not said to have.
TEST(custom_checks, malformed_replies_tells_a_kill_from_a_close) {
  driver d(built_in("malformed-replies"));
  ASSERT_TRUE(d.loaded());
  run_outcome run;
  const std::chrono::system_clock::time_point t0{std::chrono::seconds{1'700'000'000}};
  auto& s = run.sessions.emplace_back();
  s.id = "000001";
  s.started = t0;
  s.ended = t0 + std::chrono::seconds(60);
  s.client_closed = true;
  s.exchanges.push_back({"<no command>", "", 0, "", 1, t0, {}});
  run.exit_codes = {-1};
  auto detail = d.sc().run_checks(run)[0].detail;
  EXPECT_NE(detail.find("and the run was killed at --timeout 60.0 s after it began (waiting for "
                        "a greeting it could read?)"),
            std::string::npos)
      << detail;
  run.exit_codes = {1};
  detail = d.sc().run_checks(run)[0].detail;
  EXPECT_NE(detail.find("and closed it 60.0 s after it began"), std::string::npos) << detail;
}

// reply-code-matrix over implicit TLS: the refusal after the final dot is named as that, not
// as the greeting (both exchanges have no verb).
TEST(custom_checks, reply_code_matrix_names_a_refusal_after_the_final_dot) {
  driver d(built_in("reply-code-matrix"));
  ASSERT_TRUE(d.loaded());
  run_outcome run;
  for (const char* id : {"000001", "000002", "000003"}) {
    auto& s = run.sessions.emplace_back();
    s.id = id;
    s.implicit_tls = true;
  }
  run.sessions[0].exchanges.push_back(
      {"EHLO x", "EHLO", 421, "421 4.3.0 Try again later", 2, {}, {}});
  run.sessions[1].exchanges.push_back(
      {"MAIL FROM:<a@b>", "MAIL", 451, "451 4.3.0 Local", 6, {}, {}});
  run.sessions[2].exchanges.push_back(
      {"<end of data>", "", 452, "452 4.3.1 Insufficient system storage", 9, {}, {}});
  run.exit_codes = {1};
  const auto results = d.sc().run_checks(run);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_NE(results[0].detail.find("('452 4.3.1 Insufficient system storage' to the message (after "
                                   "the final dot) on connection 3 (session 000003))"),
            std::string::npos)
      << results[0].detail;
}

// auth-mech-fallback lists the mechanisms tried, each with its last reply (a challenge's
// answer, "****", is part of its AUTH), and tells a client that fell back but did not log in
// from one that never fell back.
TEST(custom_checks, auth_mech_fallback_lists_each_mechanism_with_its_last_reply) {
  driver d(built_in("auth-mech-fallback"));
  ASSERT_TRUE(d.loaded());
  run_outcome run;
  auto& s = run.sessions.emplace_back();
  s.id = "000001";
  s.exchanges = {{"AUTH PLAIN ****", "AUTH", 534, "534 5.7.9 weak", 10, {}, {}},
                 {"AUTH LOGIN", "AUTH", 334, "334 VXNlcm5hbWU6", 11, {}, {}},
                 {"****", "AUTH", 334, "334 UGFzc3dvcmQ6", 12, {}, {}},
                 {"****", "AUTH", 535, "535 5.7.8 no", 13, {}, {}}};
  run.exit_codes = {1};
  auto results = d.sc().run_checks(run);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_NE(results[0].detail.find("the client fell back (PLAIN (534, session 000001), LOGIN (535, "
                                   "session 000001)) and did not authenticate with any"),
            std::string::npos)
      << results[0].detail;
  s.exchanges.resize(1);
  results = d.sc().run_checks(run);
  // The mechanisms it did not try, not the one refused, are the way on.
  EXPECT_NE(results[0].detail.find("the client tried PLAIN (534, session 000001) and did not fall "
                                   "back to CRAM-MD5 or LOGIN, either of which would have worked"),
            std::string::npos)
      << results[0].detail;
}

}  // namespace
}  // namespace smtpfault::script::testing
