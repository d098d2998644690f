"""The HTTP API's scenario endpoints (SPEC section 6): switching the scenario for the next
session, refusing a bad script with file and line, and the expectations' verdicts."""

import json
import smtplib
import os
import tempfile
import time
import unittest

from smtpfault_server import SmtpfaultServer
from http_api_case import ApiTestCase, message_bytes, rcpt_reply, smtp_send


class ScenarioTest(ApiTestCase):
    def tearDown(self):
        self.api("PUT", "/api/v1/scenario", {"name": "accept-all"})

    def test_switch_takes_effect_for_the_next_session(self):
        open_before = self.server.connect()
        open_before.ehlo()
        status, _, body = self.api("PUT", "/api/v1/scenario", {
            "source": 'function on_rcpt(s, r)\n  return smtp.reply(550, "5.7.1", "denied by api")\nend\n',
            "seed": 42})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["seed"], 42)
        self.assertEqual(body["hooks"], ["rcpt"])
        # The log says so with the seed, as the banner does at start.
        self.server.wait_for_line(r"scenario api\.lua loaded over the API; seed: 42 "
                                  r"\(replay with --seed 42\)")
        self.assertEqual(rcpt_reply(self.server, "x@y.test"), 550)
        # A session that was already open keeps the scenario it started with.
        open_before.cmd("MAIL FROM:<a@b.test>", expect=250)
        open_before.cmd("RCPT TO:<c@d.test>", expect=250)
        open_before.close()

        status, _, body = self.api("PUT", "/api/v1/scenario", {"name": "magic-addresses"})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["name"], "magic-addresses")   # as asked for, not its source path
        self.assertEqual(self.api("GET", "/api/v1/scenario")[2]["name"], "magic-addresses")
        self.assertEqual(rcpt_reply(self.server, "x@y.test"), 250)

    def test_bad_script_gets_422_with_file_line_and_the_old_scenario_stays(self):
        self.api("PUT", "/api/v1/scenario", {
            "source": 'function on_rcpt(s, r) return smtp.reply(451, "4.7.1", "later") end\n'})
        status, _, body = self.api("PUT", "/api/v1/scenario", {
            "name": "broken.lua", "source": "-- fine\nfunction on_mail(s, m)\n  x = = 1\nend\n"})
        self.assert_error(status, body, 422, "source")
        self.assertRegex(body["error"], r"^broken\.lua:3: ")
        self.assertEqual(rcpt_reply(self.server, "x@y.test"), 451)

        status, _, body = self.api("PUT", "/api/v1/scenario", {"name": "no-such-scenario"})
        self.assert_error(status, body, 422, "name")
        self.assertEqual(rcpt_reply(self.server, "x@y.test"), 451)

    def test_a_path_that_is_not_a_lua_file_is_refused_without_reading_it(self):
        # A syntax error quotes the script; through the API that must not become a way to read
        # other files of the server's.
        fd, secret = tempfile.mkstemp(suffix=".env")
        with os.fdopen(fd, "w") as f:
            f.write("DB_PASSWORD hunter2\n")
        try:
            for name in (secret, secret + "\u0000.lua"):   # the file system stops at a NUL
                status, _, body = self.api("PUT", "/api/v1/scenario", {"name": name})
                self.assert_error(status, body, 400, "name")
                self.assertIn("a path ending in .lua", body["error"])
                self.assertNotIn("hunter2", json.dumps(body))
        finally:
            os.unlink(secret)

    def test_expectations_report_current_verdicts(self):
        self.api("PUT", "/api/v1/scenario", {"source": "expect { delivered = 1, quit = true }\n"})
        _, _, before = self.api("GET", "/api/v1/expectations")
        self.assertFalse(before["passed"])
        smtp_send(self.server, message_bytes("expected"))
        now = self.verdict_once_settled()
        self.assertTrue(now["passed"], now)
        self.assertEqual(sorted(c["name"] for c in now["checks"]), ["delivered", "quit"])
        self.assertNotIn("not_judged", now)
        # exit needs a command: left out, and said to be.
        self.api("PUT", "/api/v1/scenario", {"source": 'expect { quit = true, exit = "success" }\n'})
        _, _, body = self.api("GET", "/api/v1/expectations")
        self.assertEqual(body["not_judged"], ["exit"], body)
        self.assertNotIn("exit", [c["name"] for c in body["checks"]])

    def test_a_scenario_without_expect_is_judged_as_under_test(self):
        # Under smtpfault test it expects exit = "success" and a client that connects: here
        # the exit status is not judged, and said not to be, and the connection is.
        self.api("PUT", "/api/v1/scenario", {"source": "function on_helo(s, name) end\n"})
        _, _, before = self.api("GET", "/api/v1/expectations")
        self.assertFalse(before["passed"], before)
        self.assertEqual(before["not_judged"], ["exit"], before)
        self.assertEqual([c["name"] for c in before["checks"]], ["connected"], before)
        smtp_send(self.server, message_bytes("no expect"))
        now = self.verdict_once_settled()
        self.assertTrue(now["passed"], now)
        self.assertEqual(now["checks"], [], now)
        self.assertEqual(now["not_judged"], ["exit"], now)

    def test_a_custom_check_that_cannot_run_is_marked_an_error(self):
        self.api("PUT", "/api/v1/scenario",
                 {"source": "expect { quit = true, check = function(run) return run.x.y end }\n"})
        _, _, body = self.api("GET", "/api/v1/expectations")
        checks = {c["name"]: c for c in body["checks"]}
        self.assertIs(checks["check"].get("error"), True, body)
        self.assertIn("api.lua:1:", checks["check"]["detail"])
        self.assertNotIn("error", checks["quit"])

    def test_a_hook_that_failed_leads_the_checks_as_an_error(self):
        self.api("PUT", "/api/v1/scenario",
                 {"source": "function on_rcpt(s, r)\n"
                            "  if r.address:find('other') then error('second') end\n"
                            "  local x = nil; return x.y\n"
                            "end\n"
                            "expect { delivered = 1 }\n", "name": "boom.lua"})
        for rcpt in ("rcpt@example.com", "rcpt@example.com", "other@example.com"):
            with self.assertRaisesRegex(AssertionError, "RCPT %s got 451" % rcpt):
                smtp_send(self.server, message_bytes("refused by a broken hook"), rcpts=(rcpt,))
        deadline = time.monotonic() + 5
        while True:   # the session is judged once it has ended, a moment after the client left
            _, _, body = self.api("GET", "/api/v1/expectations")
            if body["sessions"] == 3 or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        self.assertFalse(body["passed"])
        first = body["checks"][0]
        self.assertEqual((first["name"], first["passed"], first.get("error")),
                         ("scenario", False, True), body)
        # Each distinct error once, with where it happened: not only the first.
        self.assertRegex(first["detail"], r"^boom\.lua:3: attempt to index a nil value "
                                          r"\(local 'x'\) \(session \d+ and 1 more\); "
                                          r"boom\.lua:2: second \(session \d+\)$")
        self.assertNotIn("error", body["checks"][1])   # delivered: a verdict, though a wrong one

    def test_accept_all_is_judged_by_its_built_in_expectations(self):
        # accept-all runs without a Lua state, yet its checks are those `smtpfault test` uses.
        status, _, body = self.api("PUT", "/api/v1/scenario", {"name": "accept-all"})
        self.assertEqual((status, body["name"]), (200, "accept-all"))
        _, _, before = self.api("GET", "/api/v1/expectations")
        self.assertIn("delivered", [c["name"] for c in before["checks"]])
        self.assertFalse(before["passed"], before)
        smtp_send(self.server, message_bytes("accepted"))
        now = self.verdict_once_settled()
        self.assertTrue(now["passed"], now)
        self.assertEqual(now["name"], "accept-all")
        self.assertEqual(sorted(c["name"] for c in now["checks"]), ["delivered", "dot_stuffing", "quit"])

    def verdict_once_settled(self):
        """The expectations' verdict once it passes, or after 5 s: some checks are judged on
        finished sessions, and the client's session ends a moment after its message is stored."""
        deadline = time.monotonic() + 5
        while True:
            _, _, now = self.api("GET", "/api/v1/expectations")
            if now["passed"] or time.monotonic() > deadline:
                return now
            time.sleep(0.02)

    def test_delivered_counts_messages_the_api_no_longer_shows(self):
        self.api("PUT", "/api/v1/scenario", {"source": "expect { delivered = 1 }\n"})
        smtp_send(self.server, message_bytes("counted"))
        status, _, _ = self.api("DELETE", "/api/v1/messages")
        self.assertEqual(status, 200)
        now = self.verdict_once_settled()
        self.assertTrue(now["passed"], now)
        self.assertEqual(now["messages"], 1)
        # Forgetting the sessions is a clean slate for every expectation, deliveries included,
        # and "since" says from when.
        self.api("DELETE", "/api/v1/sessions")
        _, _, after = self.api("GET", "/api/v1/expectations")
        self.assertEqual(after["messages"], 0, after)
        self.assertFalse(after["passed"], after)
        self.assertGreater(after["since"], now["since"])

    def test_the_seed_the_server_was_given_is_shown_with_accept_all(self):
        server = SmtpfaultServer("--seed", "7").start()
        try:
            _, _, body = server.api("GET", "/api/v1/scenario")
            self.assertEqual((body["name"], body["seed"]), ("accept-all", 7))
            self.assertEqual(body["params"], {})   # as any scenario shows them
            _, _, body = server.api("PUT", "/api/v1/scenario", {"name": "greylist"})
            self.assertEqual(body["seed"], 7)
        finally:
            server.stop()
            server.cleanup()
        # A seed drawn at random stays below 2^53: JSON readers keep every digit of it. With
        # accept-all too, the run has one, printed and shown.
        server = SmtpfaultServer().start()
        try:
            _, _, body = server.api("GET", "/api/v1/scenario")
            self.assertTrue(any("seed: %d (replay with --seed %d)" % (body["seed"], body["seed"])
                                in l for l in server.banner), server.banner)
            self.assertEqual(body["time_scale"], 1)
            _, _, body = server.api("PUT", "/api/v1/scenario", {"name": "greylist",
                                                                 "time_scale": 0.01})
            self.assertLess(body["seed"], 2 ** 53)
            self.assertEqual(body["time_scale"], 0.01)
            _, _, body = server.api("GET", "/api/v1/scenario")
            self.assertEqual((body["name"], body["time_scale"]), ("greylist", 0.01))
            # The command line's rule: above 0, however little, and at most 1000000.
            status, _, body = server.api("PUT", "/api/v1/scenario", {"name": "greylist",
                                                                     "time_scale": 1e-7})
            self.assertEqual((status, body.get("time_scale")), (200, 1e-7), body)
            for bad in (0, -1, 2e6):
                status, _, body = server.api("PUT", "/api/v1/scenario", {"name": "greylist",
                                                                         "time_scale": bad})
                self.assertEqual(status, 400, body)
                self.assertIn("time_scale: must be greater than 0 and at most 1000000", str(body))
            # A value just past the limit is shown as it is, not rounded to the limit.
            status, _, body = server.api("PUT", "/api/v1/scenario", {"name": "greylist",
                                                                     "time_scale": 1000001})
            self.assertIn("at most 1000000, got 1000001", str(body))
            # "" is accept-all, as the scenario key takes it; it gets the seed asked for.
            status, _, body = server.api("PUT", "/api/v1/scenario", {"name": "", "seed": 9})
            self.assertEqual((status, body["name"], body["seed"]), (200, "accept-all", 9), body)
            server.wait_for_line(r"scenario accept-all loaded over the API; seed: 9 ")
        finally:
            server.stop()
            server.cleanup()

    def test_a_directory_is_not_a_scenario(self):
        with tempfile.TemporaryDirectory(suffix=".lua") as folder:
            status, _, body = self.api("PUT", "/api/v1/scenario", {"name": folder})
            self.assert_error(status, body, 422, "name")
            self.assertIn("is a directory", body["error"])


class ExpectationsPastRetentionTest(ApiTestCase):
    SERVER_ARGS = ("--retain-sessions", "2")

    def test_verdicts_over_forgotten_sessions_say_they_are_incomplete(self):
        self.api("PUT", "/api/v1/scenario", {"source": "expect { quit = true }\n"})
        smtp_send(self.server, message_bytes("one"))
        _, _, body = self.api("GET", "/api/v1/expectations")
        self.assertTrue(body["complete"], body)
        self.assertNotIn("note", body)
        for text in ("two", "three"):
            smtp_send(self.server, message_bytes(text))
        deadline = time.monotonic() + 5
        while True:   # the third session is recorded a moment after its message
            _, _, body = self.api("GET", "/api/v1/expectations")
            if not body["complete"] or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertFalse(body["complete"], body)
        self.assertIn("forgotten to retain.sessions: the checks judge only the 2 kept", body["note"])
        # A new run (the sessions deleted) starts complete again.
        self.api("DELETE", "/api/v1/sessions")
        _, _, body = self.api("GET", "/api/v1/expectations")
        self.assertTrue(body["complete"], body)


class CleanSlateTest(ApiTestCase):
    """DELETE /api/v1/sessions starts the scenario's own state again: the next test case's first
    attempt is a first attempt, not the last test's retry."""
    SERVER_ARGS = ("--scenario", "greylist")

    def rcpt_text(self):
        with self.server.connect() as c:
            c.ehlo()
            c.cmd("MAIL FROM:<sender@example.com>", expect=250)
            reply = c.cmd("RCPT TO:<a@y.test>")
            c.cmd("QUIT")
            return "%d %s" % (reply.code, reply.text)

    def test_deleting_the_sessions_restarts_the_scenario(self):
        self.assertIn("please try again", self.rcpt_text())
        self.assertIn("retried too early", self.rcpt_text())
        status, _, body = self.api("DELETE", "/api/v1/sessions")
        self.assertEqual(status, 200, body)
        self.assertNotIn("note", body)
        self.server.wait_for_line(r"scenario greylist restarted with the sessions deleted over "
                                  r"the API; seed: \d+")
        self.assertIn("please try again", self.rcpt_text())
        deadline = time.monotonic() + 5
        while True:   # the session is recorded a moment after its QUIT
            _, _, now = self.api("GET", "/api/v1/expectations")
            if now["sessions"] == 1 or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        self.assertEqual(now["sessions"], 1, now)
        self.assertNotIn("retried too early", json.dumps(now))
        _, _, scenario = self.api("GET", "/api/v1/scenario")
        self.assertEqual(scenario["name"], "greylist")


class ScenarioParamsTest(ApiTestCase):
    """scenario_params fill the scenario's params table: greylist's window here, set on the
    command line, and replaced by a PUT's params."""
    SERVER_ARGS = ("--scenario", "greylist", "--scenario-params", "window=0.4")

    def test_the_window_comes_from_the_parameters(self):
        self.assertEqual(rcpt_reply(self.server, "a@y.test"), 451)
        time.sleep(0.5)   # past the 0.4 s window, in real time: no time scale
        self.assertEqual(rcpt_reply(self.server, "a@y.test"), 250)
        status, _, body = self.api("GET", "/api/v1/scenario")
        self.assertEqual(body["params"], {"window": "0.4"})
        self.assertEqual(body["unread_params"], [])
        # A key the scenario never names is said to change nothing, not taken in silence.
        status, _, body = self.api("PUT", "/api/v1/scenario",
                                   {"name": "greylist", "params": {"windw": 5}})
        self.assertEqual((status, body["unread_params"]), (200, ["windw"]), body)

        status, _, body = self.api("PUT", "/api/v1/scenario",
                                   {"name": "greylist", "params": {"window": 0}})
        self.assertEqual((status, body.get("params")), (200, {"window": "0"}), body)
        self.assertEqual(rcpt_reply(self.server, "b@y.test"), 451)
        self.assertEqual(rcpt_reply(self.server, "b@y.test"), 250)

        # A number is taken as its text as a person writes it, not in JSON's exponent form.
        for number, text in ((0.5, "0.5"), (5.0, "5"), (1e2, "100"), (7, "7")):
            status, _, body = self.api("PUT", "/api/v1/scenario",
                                       {"name": "greylist", "params": {"window": number}})
            self.assertEqual((status, body.get("params")), (200, {"window": text}), body)
        status, _, body = self.api("PUT", "/api/v1/scenario",
                                   '{"name": "greylist", "params": {"window": 1e400}}')
        self.assertEqual((status, body["error"]),
                         (400, "params: 'window' is a number too large to write down"), body)
        # accept-all shows what it was given (and reads none of it).
        status, _, body = self.api("PUT", "/api/v1/scenario",
                                   {"name": "accept-all", "params": {"window": 5},
                                    "time_scale": 0.5})
        self.assertEqual((status, body["params"], body["unread_params"], body["time_scale"]),
                         (200, {"window": "5"}, ["window"], 0.5), body)
        _, _, body = self.api("GET", "/api/v1/scenario")
        self.assertEqual((body["name"], body["params"]), ("accept-all", {"window": "5"}), body)

        for params, says in (({"1x": "2"}, "must be a name"), ({"window": [1]}, "string or a number"),
                             ({"window": "soon"}, "params.window must be a number")):
            status, _, body = self.api("PUT", "/api/v1/scenario",
                                       {"name": "greylist", "params": params})
            self.assertIn(status, (400, 422), body)
            self.assertIn(says, body["error"])
            self.assertEqual(body["field"], "params", body)   # not the name, which was right


class BuiltInParamsTest(ApiTestCase):
    """The built-ins that take parameters read them: the message cap, the size limit and the
    final reply's delay, set by a PUT's params; a value they cannot use is refused at load."""

    def put(self, name, params):
        status, _, body = self.api("PUT", "/api/v1/scenario", {"name": name, "params": params})
        self.assertEqual(status, 200, body)

    def test_session_message_cap_takes_messages(self):
        self.put("session-message-cap", {"messages": 2})
        with smtplib.SMTP("127.0.0.1", self.server.port, timeout=10) as c:
            for i in range(2):
                c.sendmail("a@x.test", ["b@x.test"], message_bytes("capped %d" % i))
            self.assertEqual(c.mail("a@x.test")[0], 421)   # the third on this connection

    def test_size_limit_takes_limit(self):
        self.put("size-limit", {"limit": 500.0})   # whole, though a float: SIZE 500, not 500.0
        with smtplib.SMTP("127.0.0.1", self.server.port, timeout=10) as c:
            c.ehlo("client.test")
            self.assertEqual(c.esmtp_features.get("size"), "500")
            self.assertEqual(c.mail("a@x.test", ["SIZE=501"])[0], 552)

    def test_slow_final_reply_takes_delay(self):
        self.put("slow-final-reply", {"delay": 0.3})
        with smtplib.SMTP("127.0.0.1", self.server.port, timeout=10) as c:
            start = time.monotonic()
            c.sendmail("a@x.test", ["b@x.test"], message_bytes("late"))
            self.assertGreaterEqual(time.monotonic() - start, 0.3)

    def test_a_value_the_scenario_cannot_use_is_refused(self):
        for name, params, says in (
                ("session-message-cap", {"messages": 0},
                 'params.messages must be a whole number, 1 or more, not "0"'),
                ("size-limit", {"limit": "big"}, 'params.limit must be a whole number, 1 or more'),
                ("slow-final-reply", {"delay": -1},
                 'params.delay must be a number, from 0 to 86400'),
                # Past what a wait may be (a day), or an exact whole number (2^53).
                ("slow-final-reply", {"delay": 86401},
                 'params.delay must be a number, from 0 to 86400, not "86401"'),
                ("size-limit", {"limit": "99999999999999999999"},
                 'not "99999999999999999999" (a whole number is at most 2^53)')):
            status, _, body = self.api("PUT", "/api/v1/scenario", {"name": name, "params": params})
            self.assertEqual(status, 422, body)
            self.assertIn(says, body["error"])


if __name__ == "__main__":
    unittest.main()
