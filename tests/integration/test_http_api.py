"""The HTTP API (SPEC section 6) driven by curl and python urllib while real SMTP clients
(smtplib, swaks) send: listing and filters, raw bytes, long-poll wait, scenario switch, N-shot
fault rules, bad requests, the bearer token, expectations, metrics and `smtpfault healthcheck`.
"""

import json
import os
import smtplib
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse
import uuid

from smtpfault_server import ServerTestCase, SmtpfaultServer, binary_path, server_environment


def smtp_send(server, raw, mail_from="sender@example.com", rcpts=("rcpt@example.com",)):
    """Sends raw message bytes (CRLF line ends) with smtplib; returns the queued id."""
    with smtplib.SMTP(server.host, server.port, timeout=10) as s:
        s.ehlo("client.test")
        s.mail(mail_from)
        for r in rcpts:
            code, _ = s.rcpt(r)
            if code != 250:
                raise AssertionError("RCPT %s got %d" % (r, code))
        code, reply = s.data(raw)
        if code != 250:
            raise AssertionError("DATA got %d %r" % (code, reply))
        return reply.decode().rsplit(" ", 1)[-1]


def message_bytes(subject, test=None, body="hello"):
    head = "From: a@example.com\r\nTo: b@example.com\r\nSubject: %s\r\n" % subject
    if test:
        head += "X-Smtpfault-Test: %s\r\n" % test
    return (head + "\r\n" + body + "\r\n").encode()


def rcpt_reply(server, rcpt, mail_from="sender@example.com"):
    """One transaction up to RCPT with a raw client; returns the RCPT reply code."""
    with server.connect() as c:
        c.ehlo()
        c.cmd("MAIL FROM:<%s>" % mail_from, expect=250)
        code = c.cmd("RCPT TO:<%s>" % rcpt).code
        c.cmd("QUIT")
        return code


def curl(server, *args, token=None):
    cmd = ["curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}"]
    if token:
        cmd += ["-H", "Authorization: Bearer " + token]
    out = subprocess.run(cmd + list(args), capture_output=True, timeout=20, check=True).stdout
    body, _, code = out.rpartition(b"\n")
    return int(code), body


class ApiTestCase(ServerTestCase):
    """One server with its API per test class (SERVER_ARGS, TOKEN)."""

    def setUp(self):
        # Each test sees its own rules and messages; tags keep them apart anyway.
        self.api("DELETE", "/api/v1/faults")
        self.tag = uuid.uuid4().hex[:12]

    def api(self, method, path, body=None, **kw):
        return self.server.api(method, path, body, **kw)

    def assert_error(self, status, body, expect_status, field=None):
        self.assertEqual(status, expect_status, body)
        self.assertIsInstance(body, dict, body)
        self.assertIn("error", body)
        if field is not None:
            self.assertEqual(body.get("field"), field, body)
            if expect_status == 400:
                self.assertIn(field, body["error"])


class MessagesTest(ApiTestCase):
    def test_list_filters_and_pagination(self):
        ids = [smtp_send(self.server, message_bytes("Invoice %d" % i, test=self.tag),
                         mail_from="billing%d@shop.test" % i, rcpts=("%s-%d@x.test" % (self.tag, i),))
               for i in range(3)]
        smtp_send(self.server, message_bytes("unrelated", test="other-" + self.tag))

        status, _, body = self.api("GET", "/api/v1/messages?test=" + self.tag)
        self.assertEqual(status, 200)
        self.assertEqual([m["id"] for m in body["messages"]], ids)
        self.assertEqual(body["total"], 3)
        first = body["messages"][0]
        self.assertEqual(first["subject"], "Invoice 0")
        self.assertEqual(first["mail_from"], "billing0@shop.test")
        self.assertEqual(first["recipients"], ["%s-0@x.test" % self.tag])

        _, _, body = self.api("GET", "/api/v1/messages?to=%s-1@x.test" % self.tag)
        self.assertEqual([m["id"] for m in body["messages"]], [ids[1]])
        _, _, body = self.api("GET", "/api/v1/messages?to=%s-*@X.TEST" % self.tag)
        self.assertEqual(body["total"], 3, "to= is a case-insensitive glob")
        _, _, body = self.api("GET", "/api/v1/messages?from=billing2@shop.test&test=" + self.tag)
        self.assertEqual([m["id"] for m in body["messages"]], [ids[2]])
        _, _, body = self.api("GET", "/api/v1/messages?subject=invoice%201&test=" + self.tag)
        self.assertEqual([m["id"] for m in body["messages"]], [ids[1]])

        _, _, body = self.api("GET", "/api/v1/messages?limit=2&offset=1&test=" + self.tag)
        self.assertEqual((body["total"], body["offset"], body["count"]), (3, 1, 2))
        self.assertEqual([m["id"] for m in body["messages"]], ids[1:])

        received = first["received"]
        _, _, body = self.api("GET", "/api/v1/messages?test=%s&since=%s" % (self.tag, received))
        self.assertGreaterEqual(body["total"], 1)
        _, _, body = self.api("GET", "/api/v1/messages?test=%s&since=2999-01-01T00:00:00Z" % self.tag)
        self.assertEqual(body["total"], 0)

    def test_an_encoded_subject_is_shown_and_found_as_its_text(self):
        # Mailers send a non-ASCII subject as RFC 2047 words; the API decodes them.
        import email.message
        import email.policy
        m = email.message.EmailMessage(policy=email.policy.SMTP)
        m["From"], m["To"] = "a@example.com", "b@example.com"
        m["Subject"] = "Grüße aus Köln"
        m["X-Smtpfault-Test"] = self.tag
        m.set_content("hallo")
        raw = m.as_bytes()
        self.assertIn(b"=?utf-8?", raw)
        with smtplib.SMTP(self.server.host, self.server.port, timeout=10) as c:
            c.sendmail("a@example.com", ["b@example.com"], raw)
        _, _, body = self.api("GET", "/api/v1/messages?subject=%s&test=%s" % (
            urllib.parse.quote("aus Köln"), self.tag))
        self.assertEqual(body["total"], 1, body)
        self.assertEqual(body["messages"][0]["subject"], "Grüße aus Köln")
        _, _, detail = self.api("GET", "/api/v1/messages/" + body["messages"][0]["id"])
        self.assertEqual(detail["subject"], "Grüße aus Köln")
        subject = [h["value"] for h in detail["headers"] if h["name"] == "Subject"]
        self.assertIn("=?utf-8?", subject[0], "the headers stay as they were sent")

    def test_detail_and_raw_bytes_equal_what_was_sent(self):
        raw = message_bytes("Raw check", test=self.tag, body="line one\r\n.dot line\r\n\tend")
        mid = smtp_send(self.server, raw, rcpts=("a-%s@x.test" % self.tag, "b@x.test"))

        status, hdrs, body = self.api("GET", "/api/v1/messages/%s/raw" % mid)
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["Content-Type"], "message/rfc822")
        self.assertEqual(body, raw)

        code, curl_body = curl(self.server, self.server.api_url("/api/v1/messages/%s/raw" % mid))
        self.assertEqual((code, curl_body), (200, raw))

        status, _, d = self.api("GET", "/api/v1/messages/" + mid)
        self.assertEqual(status, 200)
        self.assertEqual(d["id"], mid)
        self.assertEqual(d["size"], len(raw))
        self.assertEqual([r["address"] for r in d["recipients"]], ["a-%s@x.test" % self.tag, "b@x.test"])
        self.assertEqual(d["mail_from"], "sender@example.com")
        self.assertEqual(d["subject"], "Raw check")
        self.assertEqual(d["test"], self.tag)
        self.assertIn({"name": "X-Smtpfault-Test", "value": self.tag}, d["headers"])
        self.assertEqual(d["session"]["helo"], "client.test")
        self.assertFalse(d["session"]["tls"])
        self.assertIn("id", d["session"])

    def test_tls_and_auth_facts(self):
        to = "tls-%s@x.test" % self.tag
        run = subprocess.run(["swaks", "--server", "%s:%d" % (self.server.host, self.server.port),
                              "--tls", "--auth", "PLAIN", "--auth-user", "alice",
                              "--auth-password", "secret", "--from", "a@x.test", "--to", to],
                             capture_output=True, timeout=30)
        self.assertEqual(run.returncode, 0, run.stdout.decode(errors="replace"))
        _, _, body = self.api("GET", "/api/v1/messages?to=" + to)
        _, _, d = self.api("GET", "/api/v1/messages/" + body["messages"][0]["id"])
        self.assertTrue(d["session"]["tls"])
        self.assertTrue(d["session"]["tls_version"].startswith("TLS"))
        self.assertEqual(d["session"]["auth_user"], "alice")
        self.assertEqual(d["session"]["auth_mechanism"], "PLAIN")

    def test_wait_returns_promptly_when_the_message_arrives(self):
        to = "wait-%s@x.test" % self.tag
        result = {}

        def waiter():
            result["status"], _, result["body"] = self.api(
                "GET", "/api/v1/messages/wait?count=1&to=%s&timeout=20" % to, timeout=30)
            result["at"] = time.monotonic()

        t = threading.Thread(target=waiter)
        t.start()
        # The wait is parked before the message exists: the answer must come from the arrival.
        self.assertTrue(t.is_alive())
        sent_at = time.monotonic()
        smtp_send(self.server, message_bytes("wake up"), rcpts=(to,))
        t.join(25)
        self.assertFalse(t.is_alive())
        self.assertEqual(result["status"], 200, result)
        self.assertEqual(result["body"]["messages"][0]["recipients"], [to])
        self.assertLess(result["at"] - sent_at, 2.0)

    def test_wait_counts_and_returns_at_once_when_already_there(self):
        for i in range(2):
            smtp_send(self.server, message_bytes("n%d" % i, test=self.tag))
        start = time.monotonic()
        status, _, body = self.api("GET", "/api/v1/messages/wait?count=2&test=%s&timeout=10" % self.tag)
        self.assertEqual(status, 200)
        self.assertEqual(body["total"], 2)
        self.assertLess(time.monotonic() - start, 2.0)

    def test_wait_times_out_with_408(self):
        start = time.monotonic()
        code, body = curl(self.server, self.server.api_url(
            "/api/v1/messages/wait?count=1&to=nobody-%s@x.test&timeout=0.5" % self.tag))
        elapsed = time.monotonic() - start
        self.assertEqual(code, 408, body)
        self.assertIn("timeout", json.loads(body)["error"])
        self.assertGreaterEqual(elapsed, 0.45)
        self.assertLess(elapsed, 5)
        # RFC 9110 15.5.9: a 408 says the connection closes (browsers retry a 408 otherwise).
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.server.api_port, timeout=5)
        conn.request("GET", "/api/v1/messages/wait?count=1&to=nobody-%s@x.test&timeout=0.1"
                     % self.tag)
        reply = conn.getresponse()
        reply.read()
        self.assertEqual((reply.status, reply.getheader("Connection")), (408, "close"))
        conn.close()

    def test_a_wait_pending_at_sigterm_is_answered_503_and_the_server_exits_at_once(self):
        server = SmtpfaultServer().start()
        try:
            result = {}

            def waiter():
                result["status"], result["headers"], result["body"] = server.api(
                    "GET", "/api/v1/messages/wait?count=2&timeout=60", timeout=30)

            t = threading.Thread(target=waiter)
            t.start()
            smtp_send(server, message_bytes("one of two"))
            # The wait is parked (one message of two) before the signal.
            server.wait_for_line(r"session ended")
            time.sleep(0.2)
            self.assertTrue(t.is_alive())
            start = time.monotonic()
            server.stop(expect_exit=0)
            stopped = time.monotonic() - start
            t.join(10)
        finally:
            server.cleanup()
        self.assertFalse(t.is_alive())
        self.assertEqual(result["status"], 503, result)
        self.assertEqual(result["body"]["error"], "the server is stopping: 1 of 2 matching message(s)")
        self.assertEqual(result["headers"].get("Connection"), "close")
        self.assertLess(stopped, 2.0)

    def test_delete_all_messages(self):
        server = SmtpfaultServer().start()
        try:
            smtp_send(server, message_bytes("gone soon"))
            status, _, body = server.api("DELETE", "/api/v1/messages")
            self.assertEqual((status, body["deleted"]), (200, 1))
            _, _, body = server.api("GET", "/api/v1/messages")
            self.assertEqual(body["total"], 0)
            # The files in --store stay: DELETE only empties the API's view.
            self.assertEqual(len(server.message_ids()), 1)
        finally:
            server.stop()
            server.cleanup()

    def test_memory_keeps_the_newest_within_the_retain_limits(self):
        server = SmtpfaultServer("--set", "retain.messages=3", "--set", "retain.sessions=2").start()
        try:
            ids = [smtp_send(server, message_bytes("n%d" % i)) for i in range(5)]
            _, _, body = server.api("GET", "/api/v1/messages")
            self.assertEqual([m["id"] for m in body["messages"]], ids[2:])
            # Waiting for more than the store keeps could only time out: refused at once.
            status, _, body = server.api("GET", "/api/v1/messages/wait?count=4&timeout=30")
            self.assertEqual((status, body.get("field")), (400, "count"), body)
            self.assertIn("keeps only the newest 3 message(s) (retain.messages)", body["error"])
            status, _, body = server.api("GET", "/api/v1/messages/wait?count=3&timeout=0")
            self.assertEqual((status, body["total"]), (200, 3), body)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:   # records land when each QUIT is handled
                _, _, sessions = server.api("GET", "/api/v1/sessions")
                if sessions["total"] == 2:
                    break
                time.sleep(0.02)
            self.assertEqual(sessions["total"], 2, sessions)
            self.assertEqual(len(server.message_ids()), 5, "files in --store all stay")
        finally:
            server.stop()
            server.cleanup()

        server = SmtpfaultServer("--set", "retain.message_bytes=1000").start()
        try:
            ids = [smtp_send(server, message_bytes("b%d" % i, body="x" * 300)) for i in range(4)]
            _, _, body = server.api("GET", "/api/v1/messages")
            self.assertEqual([m["id"] for m in body["messages"]], ids[2:], "two fit in 1000 octets")
        finally:
            server.stop()
            server.cleanup()

    def test_sessions_and_transcript(self):
        mid = smtp_send(self.server, message_bytes("transcript"), rcpts=("s-%s@x.test" % self.tag,))
        _, _, d = self.api("GET", "/api/v1/messages/" + mid)
        sid = d["session"]["id"]
        deadline = time.monotonic() + 5
        while True:   # the session record lands when the client's QUIT has been handled
            status, _, s = self.api("GET", "/api/v1/sessions/" + sid)
            if (status == 200 and not s["open"]) or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        self.assertEqual(status, 200, s)
        texts = [(e["dir"], e["text"]) for e in s["transcript"]]
        self.assertIn(("client", "rcpt TO:<s-%s@x.test>" % self.tag), texts)  # smtplib's case
        self.assertTrue(any(d == "server" and t.startswith("250") for d, t in texts))
        _, _, listing = self.api("GET", "/api/v1/sessions?limit=1000")
        self.assertIn(sid, [x["id"] for x in listing["sessions"]])


    def test_open_sessions_are_seen_while_they_last(self):
        with self.server.connect() as c:
            c.ehlo()
            c.cmd("MAIL FROM:<open-%s@x.test>" % self.tag, expect=250)
            sid = self.server.session_of(c)
            _, _, listing = self.api("GET", "/api/v1/sessions?state=open")
            mine = [x for x in listing["sessions"] if x["id"] == sid]
            self.assertEqual(len(mine), 1, listing)
            self.assertTrue(mine[0]["open"])
            self.assertNotIn("ended", mine[0])
            _, _, finished = self.api("GET", "/api/v1/sessions?limit=1000")
            self.assertNotIn(sid, [x["id"] for x in finished["sessions"]])
            status, _, detail = self.api("GET", "/api/v1/sessions/" + sid)
            self.assertEqual(status, 200, detail)
            self.assertIn(("client", "MAIL FROM:<open-%s@x.test>" % self.tag),
                          [(e["dir"], e["text"]) for e in detail["transcript"]])
            c.cmd("QUIT", expect=221)
        self.server.finished_session(sid)
        _, _, listing = self.api("GET", "/api/v1/sessions?state=all&limit=1000")
        mine = [x for x in listing["sessions"] if x["id"] == sid]
        self.assertEqual([x["open"] for x in mine], [False])
        self.check_state_is_validated()

    def check_state_is_validated(self):
        status, _, body = self.api("GET", "/api/v1/sessions?state=closed")
        self.assertEqual(status, 400, body)
        self.assertEqual(body["field"], "state")


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
        self.assertEqual(sorted(c["name"] for c in now["checks"]), ["delivered", "quit"])

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


class WaitPastOnePageTest(ApiTestCase):
    def test_the_newest_thousand_are_returned_with_the_one_waited_for(self):
        with smtplib.SMTP(self.server.host, self.server.port, timeout=30) as s:
            s.ehlo("client.test")
            for i in range(1002):
                s.sendmail("a@example.com", ["b@example.com"], message_bytes("n%d" % i))
        status, _, body = self.api("GET", "/api/v1/messages/wait?count=1&timeout=0")
        self.assertEqual(status, 200, body)
        self.assertEqual((body["total"], body["offset"], body["count"]), (1002, 2, 1000))
        self.assertEqual(body["messages"][-1]["subject"], "n1001")
        self.assertEqual(body["messages"][0]["subject"], "n2")


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


class FaultRulesTest(ApiTestCase):
    def test_n_shot_rule_fires_exactly_n_times(self):
        target = "steer-%s@x.test" % self.tag
        status, _, rule = self.api("POST", "/api/v1/faults", {
            "match": {"on": "RCPT", "address": "steer-*@x.test"},
            "action": {"reply": {"code": 451, "enhanced": "4.7.1", "text": "try later"}},
            "times": 2})
        self.assertEqual(status, 201, rule)
        self.assertEqual((rule["times"], rule["fired"], rule["remaining"]), (2, 0, 2))
        self.assertEqual(rcpt_reply(self.server, "other@x.test"), 250, "address must match")
        codes = [rcpt_reply(self.server, target) for _ in range(4)]
        self.assertEqual(codes, [451, 451, 250, 250])
        _, _, listing = self.api("GET", "/api/v1/faults")
        self.assertEqual(listing["rules"], [])

    def test_a_rule_applies_to_a_session_opened_before_any_rule_existed(self):
        self.api("DELETE", "/api/v1/faults")
        with self.server.connect() as c:
            c.ehlo()
            c.cmd("MAIL FROM:<early@x.test>", expect=250)
            status, _, _ = self.api("POST", "/api/v1/faults", {
                "match": {"on": "RCPT"}, "action": {"reply": {"code": 451, "text": "later"}}})
            self.assertEqual(status, 201)
            deadline = time.monotonic() + 5   # the open session learns of it on its own thread
            while True:
                code = c.cmd("RCPT TO:<r@x.test>").code
                if code == 451 or time.monotonic() > deadline:
                    break
                time.sleep(0.02)
            self.assertEqual(code, 451)
            c.cmd("QUIT")

    def test_a_rule_on_an_x_verb_answers_it(self):
        self.api("DELETE", "/api/v1/faults")
        status, _, _ = self.api("POST", "/api/v1/faults", {
            "match": {"on": "xclient"}, "action": {"reply": {"code": 550, "text": "no XCLIENT"}}})
        self.assertEqual(status, 201)
        try:
            with self.server.connect() as c:
                c.ehlo()
                self.assertEqual(c.cmd("XCLIENT NAME=spike.test").code, 550)
                self.assertEqual(c.cmd("XFORWARD NAME=spike.test").code, 500)  # no rule: unknown
                c.cmd("QUIT")
        finally:
            self.api("DELETE", "/api/v1/faults")

    def test_a_reply_given_by_its_code_alone_gets_the_codes_usual_text(self):
        self.api("POST", "/api/v1/faults", {"match": {"on": "MAIL", "address": "*-%s@x.test" % self.tag},
                                            "action": {"reply": {"code": 451}}})
        self.api("POST", "/api/v1/faults", {"match": {"on": "RCPT", "address": "*-%s@x.test" % self.tag},
                                            "action": {"reply": {"code": 550, "text": ""}}})
        try:
            with self.server.connect() as c:
                c.ehlo()
                r = c.cmd("MAIL FROM:<m-%s@x.test>" % self.tag, expect=451)
                self.assertEqual(r.lines, ["Requested action aborted: local error in processing"])
                c.cmd("MAIL FROM:<a@b.test>", expect=250)
                r = c.cmd("RCPT TO:<r-%s@x.test>" % self.tag, expect=550)
                self.assertEqual(r.lines, [""])   # "text": "" asks for none
        finally:
            self.api("DELETE", "/api/v1/faults")

    def test_rule_until_deleted_and_first_match_wins(self):
        _, _, forever = self.api("POST", "/api/v1/faults", {
            "match": {"on": "rcpt"}, "action": {"reply": {"code": 550, "text": "no"}}, "times": 0})
        self.api("POST", "/api/v1/faults", {
            "match": {"on": "rcpt"}, "action": {"reply": {"code": 452, "text": "never"}}})
        self.assertEqual([rcpt_reply(self.server, "x@y.test") for _ in range(3)], [550] * 3)
        _, _, listing = self.api("GET", "/api/v1/faults")
        self.assertEqual([r["fired"] for r in listing["rules"]], [3, 0])
        status, _, _ = self.api("DELETE", "/api/v1/faults/" + forever["id"])
        self.assertEqual(status, 200)
        self.assertEqual(rcpt_reply(self.server, "x@y.test"), 452)
        status, _, body = self.api("DELETE", "/api/v1/faults/" + forever["id"])
        self.assert_error(status, body, 404, "id")

    def test_client_network_connect_and_message_phases(self):
        self.api("POST", "/api/v1/faults", {
            "match": {"on": "MAIL", "client": "10.0.0.0/8"}, "action": {"reply": {"code": 421}}})
        self.assertEqual(rcpt_reply(self.server, "x@y.test"), 250, "127.0.0.1 is not in 10/8")
        self.api("DELETE", "/api/v1/faults")

        self.api("POST", "/api/v1/faults", {
            "match": {"on": "connect", "client": "127.0.0.1"},
            "action": {"reply": {"code": 554, "enhanced": "5.3.2", "text": "not today"}}})
        c = self.server.connect(greeting=False)
        self.assertEqual(c.reply().code, 554)
        c.close()

        self.api("POST", "/api/v1/faults", {
            "match": {"on": "message", "address": "*-%s@x.test" % self.tag},
            "action": {"reply": {"code": 552, "enhanced": "5.3.4", "text": "too big today"}}})
        with self.assertRaises(AssertionError) as e:
            smtp_send(self.server, message_bytes("refused"), rcpts=("m-%s@x.test" % self.tag,))
        self.assertIn("552", str(e.exception))
        smtp_send(self.server, message_bytes("accepted"), rcpts=("m-%s@x.test" % self.tag,))

    def test_rule_with_delay_and_ending(self):
        self.api("POST", "/api/v1/faults", {
            "match": {"on": "DATA"},
            "action": {"reply": {"code": 421, "enhanced": "4.3.0", "text": "bye"},
                       "delay": 0.2, "ending": "close_after"}})
        # Seconds read as written, not as Boost's "2E-1".
        req = urllib.request.Request(self.server.api_url("/api/v1/faults"))
        if self.server.api_token:
            req.add_header("Authorization", "Bearer " + self.server.api_token)
        with urllib.request.urlopen(req, timeout=10) as r:
            self.assertIn('"delay":0.2,', r.read().decode())
        with self.server.connect() as c:
            c.ehlo()
            c.cmd("MAIL FROM:<a@b.test>", expect=250)
            c.cmd("RCPT TO:<c@d.test>", expect=250)
            start = time.monotonic()
            c.cmd("DATA", expect=421)
            self.assertGreaterEqual(time.monotonic() - start, 0.18)
            self.assertTrue(c.closed_by_peer(timeout=5))
        # The transcript says what the rule did, in the request's words.
        self.server.wait_for_line(r"fault: rule r\d+: reply 421, delay 0\.2, ending close_after")
        _, _, metrics = self.api("GET", "/metrics")
        text = metrics.decode()
        self.assertRegex(text, r'smtpfault_faults_applied_total\{kind="delay"\} [1-9]')
        self.assertRegex(text, r"smtpfault_fault_rules_fired_total [1-9]")


class TlsRulesTest(ApiTestCase):
    CA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures",
                      "certs", "test-ca.pem")

    def handshake(self):
        """A verifying handshake on the implicit-TLS port: "" or OpenSSL's reason."""
        ctx = ssl.create_default_context(cafile=self.CA)
        with socket.create_connection((self.server.host, self.server.tls_port), timeout=5) as s:
            try:
                with ctx.wrap_socket(s, server_hostname="localhost") as t:
                    t.recv(64)
                    return ""
            except ssl.SSLCertVerificationError as e:
                return e.verify_message

    def test_a_certificate_rule_acts_on_starttls_and_before_the_implicit_handshake(self):
        # Anywhere else it would fire, be used up and change nothing: refused.
        for on in ("connect", "EHLO", "*"):
            status, _, body = self.api("POST", "/api/v1/faults", {
                "match": {"on": on}, "action": {"certificate": "wrong_host"}})
            self.assertEqual(status, 400, (on, body))
            self.assertEqual(body["field"], "match.on")
        status, _, body = self.api("POST", "/api/v1/faults", {
            "match": {"on": "STARTTLS"}, "action": {"certificate": "expired"}})
        self.assertEqual(status, 201, body)
        self.assertEqual(self.handshake(), "certificate has expired")
        self.assertEqual(self.handshake(), "", "the rule was for one handshake")

    def test_a_starttls_reply_rule_is_left_for_a_starttls_command(self):
        self.api("POST", "/api/v1/faults", {"match": {"on": "STARTTLS"}, "action": {
            "reply": {"code": 454, "enhanced": "4.7.0", "text": "TLS not available"}}})
        self.assertEqual(self.handshake(), "", "the implicit-TLS port has no reply to give")
        with self.server.connect() as c:
            c.ehlo()
            c.cmd("STARTTLS", expect=454)


class BadRequestTest(ApiTestCase):
    def check(self, method, path, body, status, field=None):
        st, _, b = self.api(method, path, body)
        self.assert_error(st, b, status, field)
        return b

    def test_a_field_given_twice_is_refused_not_half_read(self):
        b = self.check("POST", "/api/v1/faults",
                       '{"match": {"on": "RCPT", "address": "*@j4"}, "match": {"on": "MAIL"},'
                       ' "action": {"reply": {"code": 451}}}', 400, "match")
        self.assertIn("given twice", b["error"])
        self.check("PUT", "/api/v1/scenario", '{"name": "accept-all", "name": "greylist"}', 400,
                   "name")
        _, _, listing = self.api("GET", "/api/v1/faults")
        self.assertEqual(listing["rules"], [])

    def test_a_broken_percent_escape_is_refused_not_searched_for(self):
        b = self.check("GET", "/api/v1/messages?to=%ZZ", None, 400, "to")
        self.assertIn("'to=%ZZ' has a '%' not followed by two hex digits", b["error"])
        self.check("GET", "/api/v1/messages/wait?count=1&timeout=0&test=50%", None, 400, "test")
        st, _, b = self.api("GET", "/api/v1/messages?to=a%40b.test")
        self.assertEqual(st, 200, b)

    def get_in_absolute_form(self, rest):
        """The raw reply to GET http://127.0.0.1:PORT<rest>, the form some proxies send."""
        with socket.create_connection(("127.0.0.1", self.server.api_port), timeout=5) as s:
            s.sendall(b"GET http://127.0.0.1:%d%s HTTP/1.1\r\nHost: x\r\nConnection: close"
                      b"\r\n\r\n" % (self.server.api_port, rest))
            reply = b""
            while chunk := s.recv(65536):
                reply += chunk
        return reply

    def test_the_absolute_form_of_a_request_target_is_understood(self):
        # RFC 9112 3.2.2: a server must accept it; some proxies send it.
        reply = self.get_in_absolute_form(b"/api/v1/messages?limit=1")
        self.assertTrue(reply.startswith(b"HTTP/1.1 200 "), reply[:200])
        self.assertIn(b'"total"', reply)
        # With no path, the query still counts: "/?limit=1" is no endpoint, and says so.
        reply = self.get_in_absolute_form(b"?limit=1")
        self.assertTrue(reply.startswith(b"HTTP/1.1 404 "), reply[:200])

    def test_malformed_json(self):
        b = self.check("POST", "/api/v1/faults", "{not json", 400)
        self.assertIn("malformed JSON", b["error"])
        self.check("PUT", "/api/v1/scenario", "[1, 2]", 400)

    def test_unknown_fields_and_wrong_types_name_the_field(self):
        rule = {"action": {"reply": {"code": 451}}}
        self.check("POST", "/api/v1/faults", dict(rule, colour="red"), 400, "colour")
        self.check("POST", "/api/v1/faults", {"action": {"reply": {"code": "451"}}}, 400,
                   "action.reply.code")
        self.check("POST", "/api/v1/faults", {"action": {"reply": {"code": 451, "txt": "x"}}}, 400,
                   "action.reply.txt")
        for bad in ("banana", "4.7", "4.7.1 ", "4.7.1\r\n", "3.0.0", "4.7.1234"):
            self.check("POST", "/api/v1/faults",
                       {"action": {"reply": {"code": 451, "enhanced": bad}}}, 400,
                       "action.reply.enhanced")
        self.check("POST", "/api/v1/faults", {"action": {"delay": -1}}, 400, "action.delay")
        for cuts in ([500, 3], [3, 3], [0]):
            self.check("POST", "/api/v1/faults", {"action": {"split": cuts}}, 400, "action.split")
        self.check("POST", "/api/v1/faults", {"action": {"ending": "explode"}}, 400, "action.ending")
        # Fields that would be dropped without a word.
        self.check("POST", "/api/v1/faults", {"action": {"raw": "HELLO\r\n",
                                                         "reply": {"code": 250}}}, 400, "action.raw")
        b = self.check("POST", "/api/v1/faults", {"match": {"on": "STARTTLS"},
                                                  "action": {"inject": "x"}}, 400, "action.inject")
        self.assertIn('"starttls": "inject"', b["error"])
        self.check("POST", "/api/v1/faults", dict(rule, times=-1), 400, "times")
        self.check("POST", "/api/v1/faults", dict(rule, match={"client": "300.1.1.1"}), 400,
                   "match.client")
        self.check("POST", "/api/v1/faults", dict(rule, match={"on": "RC PT"}), 400, "match.on")
        # Rules that could never fire, or would fire on everything, are refused too.
        b = self.check("POST", "/api/v1/faults", dict(rule, match={"on": "RCTP"}), 400, "match.on")
        self.assertIn("RCPT", b["error"])
        self.check("POST", "/api/v1/faults", dict(rule, match={"on": "X"}), 400, "match.on")
        self.check("POST", "/api/v1/faults", dict(rule, match={"on": "connect", "address": "x*"}),
                   400, "match.address")
        self.check("POST", "/api/v1/faults", dict(rule, match={"on": "EHLO", "address": "x*"}),
                   400, "match.address")
        self.check("POST", "/api/v1/faults", dict(rule, match={"address": ""}), 400,
                   "match.address")
        b = self.check("POST", "/api/v1/faults", {"match": {"on": "EHLO"},
                                                  "action": {"hide": ["STARTTL"]}}, 400, "action.hide")
        self.assertIn("'STARTTL' is not an extension", b["error"])
        self.check("POST", "/api/v1/faults", {"match": {"on": "EHLO"},
                                              "action": {"extensions": ["FOO\r\n250 X"]}}, 400,
                   "action.extensions")
        for fine in ({"on": "xclient"}, {"on": "rcpt", "address": "*@x.test"},
                     {"address": "*@x.test"}, {"on": "message", "address": "a@x.test"}):
            status, _, body = self.api("POST", "/api/v1/faults", dict(rule, match=fine))
            self.assertEqual(status, 201, (fine, body))
        self.api("DELETE", "/api/v1/faults")
        self.check("POST", "/api/v1/faults", {"match": {"on": "RCPT"}}, 400, "action")
        self.check("POST", "/api/v1/faults", {"action": {}}, 400, "action")
        # A delay shorter than a millisecond is still a delay, not an empty action.
        status, _, body = self.api("POST", "/api/v1/faults", {"match": {"on": "RCPT"},
                                                              "action": {"delay": 0.0004}})
        self.assertEqual(status, 201, body)
        self.api("DELETE", "/api/v1/faults")
        self.check("PUT", "/api/v1/scenario", {"name": 7}, 400, "name")
        self.check("PUT", "/api/v1/scenario", {"name": "greylist", "seed": "x"}, 400, "seed")
        self.check("PUT", "/api/v1/scenario", {}, 400, "name")
        b = self.check("PUT", "/api/v1/scenario", {"name": "greylist", "source": "x = 1"}, 400,
                       "name")
        self.assertIn("must end in .lua", b["error"])

    def test_query_parameters(self):
        self.check("GET", "/api/v1/messages?limit=0", None, 400, "limit")
        self.check("GET", "/api/v1/messages?colour=red", None, 400, "colour")
        self.check("GET", "/api/v1/messages?since=yesterday", None, 400, "since")
        # "+02:00" typed into a URL arrives as " 02:00": still the offset it was meant as. An
        # hour ago in +02:00 is one hour ahead on the clock: the message must be found, which
        # it would not be were the offset read as -02:00 (three hours ahead).
        import datetime
        smtp_send(self.server, message_bytes("offset", test=self.tag))
        local = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
        _, _, found = self.api("GET", "/api/v1/messages?test=%s&since=%s+02:00"
                               % (self.tag, local.strftime("%Y-%m-%dT%H:%M:%S")))
        self.assertEqual(found["total"], 1, found)
        self.check("GET", "/api/v1/messages/wait?timeout=abc", None, 400, "timeout")
        self.check("GET", "/api/v1/messages/wait?count=0", None, 400, "count")
        # An empty recipient filter (a variable left unset) matches no message: it would only
        # ever time out.
        b = self.check("GET", "/api/v1/messages/wait?to=&timeout=30", None, 400, "to")
        self.assertIn("leave it out to match any recipient", b["error"])
        self.check("GET", "/api/v1/messages?to=", None, 400, "to")

    def test_a_query_parameter_an_endpoint_does_not_take_is_refused_not_ignored(self):
        for i in range(2):
            self.api("POST", "/api/v1/faults", {"match": {"address": "q%d-%s@x.test" % (i, self.tag)},
                                                "action": {"reply": {"code": 451}}})
        # It deleted every rule: the id in the query was read by nobody.
        self.check("DELETE", "/api/v1/faults?id=r1", None, 400, "id")
        _, _, listing = self.api("GET", "/api/v1/faults")
        self.assertEqual(len(listing["rules"]), 2)
        for path in ("/api/v1/faults?x=1", "/api/v1/scenario?x=1", "/api/v1/expectations?x=1",
                     "/metrics?x=1", "/healthz?x=1", "/api/v1/messages/some-id?x=1"):
            self.check("GET", path, None, 400, "x")
        self.check("DELETE", "/api/v1/messages?to=x", None, 400, "to")
        self.check("DELETE", "/api/v1/sessions?all=1", None, 400, "all")
        self.api("DELETE", "/api/v1/faults")

    def test_not_found_and_method_not_allowed(self):
        self.check("GET", "/api/v1/messages/no-such-id", None, 404, "id")
        self.check("GET", "/api/v1/messages/no-such-id/raw", None, 404, "id")
        self.check("GET", "/api/v1/sessions/ffffff", None, 404, "id")
        self.check("GET", "/api/v2/nothing", None, 404)
        st, hdrs, b = self.api("POST", "/api/v1/messages", {})
        self.assert_error(st, b, 405)
        self.assertIn("GET", hdrs["Allow"])
        # A method HTTP does not define is named as sent.
        st, hdrs, b = self.api("FOO", "/api/v1/messages")
        self.assert_error(st, b, 405)
        self.assertIn("FOO is not allowed on /api/v1/messages", str(b))

    def test_oversized_body_is_refused(self):
        st, _, b = self.api("PUT", "/api/v1/scenario",
                            json.dumps({"source": "-- " + "x" * (2 * 1024 * 1024)}))
        self.assert_error(st, b, 413)


class RequestDeadlineTest(ApiTestCase):
    SERVER_ARGS = ("--api-request-timeout", "1")

    def test_a_request_that_never_ends_is_closed_at_the_deadline(self):
        with socket.create_connection(("127.0.0.1", self.server.api_port), timeout=5) as s:
            start = time.monotonic()
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")   # the blank line never comes
            self.assertEqual(s.recv(4096), b"", "closed without a reply")
            elapsed = time.monotonic() - start
        self.assertGreater(elapsed, 0.8)
        self.assertLess(elapsed, 2.5)
        status, _, _ = self.api("GET", "/healthz")   # and the API still answers others
        self.assertEqual(status, 200)


class TokenTest(ApiTestCase):
    TOKEN = "s3cret-token"

    def test_token_enforced(self):
        st, hdrs, b = self.api("GET", "/api/v1/messages", token="")
        self.assert_error(st, b, 401)
        self.assertIn("Bearer", hdrs["WWW-Authenticate"])
        st, _, b = self.api("GET", "/api/v1/messages", token="wrong")
        self.assert_error(st, b, 401)
        st, _, b = self.api("GET", "/metrics", token="")
        self.assertEqual(st, 401)
        self.assertEqual(self.api("GET", "/api/v1/messages")[0], 200)
        code, _ = curl(self.server, self.server.api_url("/api/v1/faults"), token=self.TOKEN)
        self.assertEqual(code, 200)
        code, _ = curl(self.server, "-X", "DELETE", self.server.api_url("/api/v1/faults"))
        self.assertEqual(code, 401)
        # Health checks stay open: orchestrators probe without credentials.
        self.assertEqual(self.api("GET", "/readyz", token="")[0], 200)
        # Without the token nothing else is told, not even which paths exist.
        self.assertEqual(self.api("GET", "/api/v1/nope", token="")[0], 401)
        self.assertEqual(self.api("POST", "/api/v1/messages", {}, token="")[0], 401)
        self.assertEqual(self.api("GET", "/api/v1/nope")[0], 404)

    def test_token_from_the_environment(self):
        server = SmtpfaultServer(env={"SMTPFAULT_API_TOKEN": "from-env"}).start()
        try:
            self.assertEqual(server.api("GET", "/api/v1/messages", token="")[0], 401)
            self.assertEqual(server.api("GET", "/api/v1/messages", token="from-env")[0], 200)
        finally:
            server.stop()
            server.cleanup()


class HealthTest(ApiTestCase):
    def test_health_ready_and_metrics(self):
        self.assertEqual(self.api("GET", "/healthz")[2], {"status": "ok"})
        self.assertEqual(self.api("GET", "/readyz")[2], {"status": "ready"})
        smtp_send(self.server, message_bytes("metrics"))
        st, hdrs, body = self.api("GET", "/metrics")
        self.assertEqual(st, 200)
        self.assertTrue(hdrs["Content-Type"].startswith("text/plain"))
        text = body.decode()
        for name in ("smtpfault_sessions_total", "smtpfault_messages_total",
                     "smtpfault_received_bytes_total", "smtpfault_sent_bytes_total",
                     'smtpfault_tls_handshakes_total{result="ok"}', "smtpfault_lua_errors_total",
                     'smtpfault_faults_applied_total{kind="reply"}'):
            self.assertRegex(text, r"(?m)^%s \d+$" % name.replace("{", r"\{").replace("}", r"\}"))
        self.assertRegex(text, r"(?m)^smtpfault_messages_total [1-9]")
        self.assertIn("# TYPE smtpfault_sessions_total counter", text)

    def test_healthcheck_command(self):
        ok = subprocess.run([binary_path(), "healthcheck", "--api", "127.0.0.1:%d" % self.server.api_port],
                            capture_output=True, timeout=10)
        self.assertEqual(ok.returncode, 0, ok.stderr)
        with socket_on_free_port() as port:
            bad = subprocess.run([binary_path(), "healthcheck", "--api", "127.0.0.1:%d" % port,
                                  "--timeout", "1"], capture_output=True, timeout=10)
        self.assertEqual(bad.returncode, 1)
        self.assertIn(b"127.0.0.1", bad.stderr)
        self.assertIn(b"cannot connect", bad.stderr)
        # Something listens but never answers: the deadline, said as such.
        with socket.socket() as mute:
            mute.bind(("127.0.0.1", 0))
            mute.listen()
            slow = subprocess.run([binary_path(), "healthcheck", "--api",
                                   "127.0.0.1:%d" % mute.getsockname()[1], "--timeout", "0.5"],
                                  capture_output=True, text=True, timeout=10)
        self.assertEqual(slow.returncode, 1)
        self.assertIn("no answer within 0.5 s", slow.stderr)
        # The SMTP port given by mistake: said so, with what answered.
        smtp = subprocess.run([binary_path(), "healthcheck", "--api",
                               "127.0.0.1:%d" % self.server.port, "--timeout", "2"],
                              capture_output=True, text=True, timeout=10)
        self.assertEqual(smtp.returncode, 1)
        self.assertIn("no HTTP reply (it began '220 ", smtp.stderr)
        self.assertIn("'): is this the API's port, not an SMTP one?", smtp.stderr)

    def test_healthcheck_reads_the_status_line_of_any_http_server(self):
        cases = [
            # (what the peer answers, exit status, what stderr must say)
            (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n", 0, ""),
            (b"HTTP/1.0 200\r\n\r\n", 0, ""),  # no reason phrase
            (b"HTTP/1.1 503 Service Unavailable\r\n\r\n", 1, "not ready (HTTP 503)"),
            (b"", 1, "the server closed the connection unanswered"),
            (b"HTTP/1.1 2", 1, "no HTTP reply (it began 'HTTP/1.1 2')"),
            (b"HTTP/2 200\r\n\r\n", 1, "no HTTP reply (it began 'HTTP/2 200')"),
            (b"\x1b]0;title\x07\r\n", 1, "no HTTP reply (it began '\\x1b]0;title\\x07')"),
        ]
        for answer, status, words in cases:
            with self.subTest(answer=answer):
                request, r = self.probe_peer(answer, "--api-token", "s3cret")
                self.assertEqual(r.returncode, status, r.stderr)
                self.assertIn(words, r.stderr)
                self.assertTrue(request.startswith(b"GET /readyz HTTP/1.1\r\n"), request)
                self.assertIn(b"\r\nConnection: close\r\n", request)
                self.assertIn(b"\r\nAuthorization: Bearer s3cret\r\n", request)
                self.assertTrue(request.endswith(b"\r\n\r\n"), request)

    def probe_peer(self, answer, *flags):
        """Runs healthcheck against a one-shot peer that reads the request and sends `answer`;
        returns (the request, the completed process)."""
        got = []
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            port = listener.getsockname()[1]

            def serve():
                conn, _ = listener.accept()
                with conn:
                    data = b""
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    got.append(data)
                    conn.sendall(answer)

            peer = threading.Thread(target=serve)
            peer.start()
            r = subprocess.run([binary_path(), "healthcheck", "--api", "127.0.0.1:%d" % port,
                                "--timeout", "5"] + list(flags),
                               capture_output=True, text=True, timeout=20)
            peer.join(10)
        self.assertEqual(len(got), 1)
        host = b"\r\nHost: 127.0.0.1:%d\r\n" % port
        self.assertIn(host, got[0])
        return got[0], r


class TestCommandApiTest(unittest.TestCase):
    def test_the_command_reaches_the_api_through_SMTPFAULT_API(self):
        script = ('curl -sf "http://$SMTPFAULT_API/readyz" >/dev/null && '
                  'swaks --server "$SMTP_SERVER" --to api@x.test >/dev/null && '
                  'curl -sf "http://$SMTPFAULT_API/api/v1/messages/wait?to=api@x.test&timeout=10"')
        run = subprocess.run([binary_path(), "test", "--scenario", "accept-all", "--", "sh", "-c",
                              script], capture_output=True, timeout=60,
                             env=server_environment())
        self.assertEqual(run.returncode, 0, run.stdout.decode(errors="replace"))


class socket_on_free_port:
    """A port nothing listens on (bound, not listening, so connects are refused)."""

    def __enter__(self):
        import socket
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return self.sock.getsockname()[1]

    def __exit__(self, *exc):
        self.sock.close()


if __name__ == "__main__":
    unittest.main()
