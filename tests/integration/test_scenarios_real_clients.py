"""Scenarios against real clients (swaks, curl, Python's smtplib), and what a scenario's author
sees: seeded determinism, run-time errors, load errors.

Each scenario lives in scenarios/ next to this file and is served by its own server.
"""

import os
import re
import shutil
import smtplib
import subprocess
import tempfile
import time
import unittest

from smtpfault_server import (ServerTestCase, SmtpfaultServer, binary_path, server_environment,
                              write_file)

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS = os.path.join(HERE, "scenarios")

BODY = (b"From: <sender@example.com>\r\n"
        b"To: <rcpt@example.com>\r\n"
        b"Subject: %s\r\n"
        b"\r\n"
        b"body of %s\r\n")


def scenario(name):
    return os.path.join(SCENARIOS, name)


def line_of(path, needle):
    """1-based number of the first line of the file that contains needle."""
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if needle in line:
                return n
    raise AssertionError("%r not in %s" % (needle, path))


class ScenarioCase(ServerTestCase):
    """One server per class, serving SCENARIO with EXTRA_ARGS."""

    SCENARIO = None
    EXTRA_ARGS = ()

    @classmethod
    def setUpClass(cls):
        cls.server = SmtpfaultServer("--scenario", scenario(cls.SCENARIO),
                                     *cls.EXTRA_ARGS).start()

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="smtpfault-clients-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def body(self, tag):
        return BODY % (tag.encode(), tag.encode())

    def swaks(self, tag, *extra, to="rcpt@example.com"):
        """Runs swaks with a CRLF message; returns (exit status, transcript)."""
        path = os.path.join(self.tmp, tag + ".eml")
        with open(path, "wb") as f:
            f.write(self.body(tag) + b".\r\n")
        run = subprocess.run(
            ["swaks", "--server", "%s:%d" % (self.server.host, self.server.port),
             "--helo", "swaks.test", "--from", "sender@example.com", "--to", to,
             "--data", "@" + path, "--timeout", "10"] + list(extra),
            stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        return run.returncode, (run.stdout + run.stderr).decode("utf-8", "replace")

    def curl(self, tag, rcpt, *extra):
        """curl's SMTP upload; returns (exit status, stderr)."""
        path = os.path.join(self.tmp, tag + ".eml")
        with open(path, "wb") as f:
            f.write(self.body(tag))
        run = subprocess.run(
            ["curl", "--silent", "--show-error", "--max-time", "20",
             "smtp://%s:%d/curl.test" % (self.server.host, self.server.port),
             "--mail-from", "sender@example.com", "--mail-rcpt", rcpt,
             "--upload-file", path] + list(extra),
            stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        return run.returncode, run.stderr.decode("utf-8", "replace")

    def new_messages(self, before):
        return [m for m in self.server.messages() if m.id not in before]


class SecondMail421Test(ScenarioCase):
    SCENARIO = "second_mail_421.lua"

    def test_second_mail_of_a_session_gets_421_and_close(self):
        before = set(self.server.message_ids())
        client = smtplib.SMTP(self.server.host, self.server.port, local_hostname="smtplib.test",
                              timeout=10)
        self.addCleanup(client.close)
        self.assertEqual(client.sendmail("sender@example.com", ["rcpt@example.com"],
                                         self.body("first")), {})
        with self.assertRaises(smtplib.SMTPSenderRefused) as cm:
            client.sendmail("sender@example.com", ["rcpt@example.com"], self.body("second"))
        self.assertEqual(cm.exception.smtp_code, 421)
        self.assertIn(b"4.3.0 Too much mail for now", cm.exception.smtp_error)
        self.assertIsNone(client.sock)   # smtplib closes on 421 (RFC 5321 3.8) ...
        sid = self.server.wait_for_line(r" S: 421 4\.3\.0 Too much mail").split()[1]
        lines = self.server.finished_session(sid)   # ... and so did the server
        self.assertFalse([l for l in lines if "C: QUIT" in l], lines)
        new = self.new_messages(before)
        self.assertEqual([m.data for m in new], [self.body("first")])


class GreylistTest(ScenarioCase):
    # The 2 s window of the scenario lasts 0.1 s of real time.
    SCENARIO = "greylist.lua"
    EXTRA_ARGS = ("--time-scale", "0.05")

    def test_first_attempt_451_retry_after_window_delivered(self):
        before = set(self.server.message_ids())
        first = time.monotonic()   # no later than the first RCPT, where the window starts
        rc, out = self.swaks("greylisted")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("451 4.7.1 Greylisted, try again later", out)
        self.assertEqual(self.new_messages(before), [])
        # A mailer retries until it gets through; each swaks start takes a while, and a retry
        # inside the window is refused again, so this needs no sleep.
        attempts = []
        while True:
            self.assertLess(time.monotonic() - first, 10.0, "never delivered: %r" % attempts)
            rc, out = self.swaks("greylisted")
            attempts.append((rc, out))
            if rc == 0:
                break
            self.assertIn("451 4.7.1 Greylisted, retried too early", out)
        self.assertGreaterEqual(time.monotonic() - first, 0.1)
        self.assertRegex(out, r"250 2\.0\.0 Ok: queued as \S+")
        new = self.new_messages(before)
        self.assertEqual(len(new), 1)
        self.assertEqual(new[0].data, self.body("greylisted"))
        self.assertEqual(new[0].recipients, ["rcpt@example.com"])


class StartTlsDroppedTest(ScenarioCase):
    SCENARIO = "starttls_dropped.lua"

    def test_swaks_tls_fails(self):
        before = set(self.server.message_ids())
        rc, out = self.swaks("swaks-tls", "-tls")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("220 2.0.0 Ready to start TLS", out)
        self.assertEqual(self.new_messages(before), [])

    def test_curl_ssl_reqd_fails(self):
        before = set(self.server.message_ids())
        rc, err = self.curl("curl-tls", "rcpt@example.com", "--ssl-reqd", "-k")
        self.assertNotEqual(rc, 0, err)
        self.assertIn("SSL", err)   # the handshake failed, not the SMTP dialogue
        self.assertEqual(self.new_messages(before), [])


class AuthRejectedTest(ScenarioCase):
    SCENARIO = "auth_rejected.lua"

    def test_swaks_auth_gets_535(self):
        before = set(self.server.message_ids())
        rc, out = self.swaks("auth", "--auth", "PLAIN", "--auth-user", "alice",
                             "--auth-password", "right-or-wrong")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("535 5.7.8 Authentication credentials invalid", out)
        self.assertEqual(self.new_messages(before), [])


class RelayDeniedTest(ScenarioCase):
    SCENARIO = "relay_denied.lua"

    def test_non_local_domain_refused(self):
        before = set(self.server.message_ids())
        rc, err = self.curl("relay", "someone@example.org")
        self.assertNotEqual(rc, 0, err)
        self.assertIn("554", err)
        self.assertEqual(self.new_messages(before), [])
        self.server.wait_for_line(r" C: RCPT TO:<someone@example\.org>")
        self.server.wait_for_line(r" S: 554 5\.7\.1 Relay access denied")

    def test_local_domain_accepted(self):
        before = set(self.server.message_ids())
        rc, err = self.curl("local", "someone@example.com")
        self.assertEqual(rc, 0, err)
        new = self.new_messages(before)
        self.assertEqual(len(new), 1)
        self.assertEqual(new[0].recipients, ["someone@example.com"])
        self.assertEqual(new[0].data, self.body("local"))


class SlowDataTest(ScenarioCase):
    SCENARIO = "slow_data.lua"
    EXTRA_ARGS = ("--time-scale", "0.01")

    def test_five_second_delay_scaled_to_fifty_ms(self):
        client = smtplib.SMTP(self.server.host, self.server.port, local_hostname="smtplib.test",
                              timeout=10)
        self.addCleanup(client.close)
        client.ehlo()
        self.assertEqual(client.mail("sender@example.com")[0], 250)
        self.assertEqual(client.rcpt("rcpt@example.com")[0], 250)
        start = time.monotonic()
        code, _ = client.data(self.body("slow"))   # waits for the late 354, then the 250
        elapsed = time.monotonic() - start
        self.assertEqual(code, 250)
        self.assertGreaterEqual(elapsed, 0.04)
        self.assertLess(elapsed, 1.0)
        client.quit()


class DeterminismTest(unittest.TestCase):
    RCPTS = ["r%02d@example.com" % i for i in range(10)]
    TIMESTAMP = re.compile(r"^\S+Z (\d+) ")

    def run_once(self, *seed_args):
        """One server, one session with 10 recipients; returns (reply codes, normalised
        transcript lines, banner)."""
        with SmtpfaultServer("--scenario", scenario("coin_flip.lua"), *seed_args) as srv:
            with srv.connect() as c:
                c.ehlo("determinism.test")
                c.cmd("MAIL FROM:<sender@example.com>", expect=250)
                codes = [c.cmd("RCPT TO:<%s>" % r).code for r in self.RCPTS]
                c.cmd("RSET", expect=250)
                c.cmd("QUIT", expect=221)
            sid = srv.wait_for_line(r" C: EHLO determinism\.test").split()[1]
            lines = srv.finished_session(sid)
            banner = list(srv.banner)
        return codes, [self.normalise(l) for l in lines], banner

    def normalise(self, line):
        line = self.TIMESTAMP.sub("", line)                      # time and session id
        line = re.sub(r"(connect from [^ ]*):\d+", r"\1:PORT", line)   # client port
        return re.sub(r"queued as \S+", "queued as ID", line)

    def test_same_seed_same_transcript_other_seed_differs(self):
        codes_a, lines_a, _ = self.run_once("--seed", "42")
        codes_b, lines_b, _ = self.run_once("--seed", "42")
        codes_c, lines_c, _ = self.run_once("--seed", "43")
        self.assertEqual(set(codes_a) | set(codes_c), {250, 450})
        self.assertEqual(codes_a, codes_b)
        self.assertEqual(lines_a, lines_b)
        self.assertNotEqual(codes_a, codes_c)
        self.assertNotEqual(lines_a, lines_c)
        self.assertEqual(sum(1 for l in lines_a if l.startswith("C: RCPT TO:")), 10)
        # Logged from a pairs() loop over the recipients: in the same order in both runs.
        self.assertEqual(sum(1 for l in lines_a if "seen r" in l), 10, lines_a)

    def test_banner_prints_a_seed_when_none_given(self):
        _, _, banner = self.run_once()
        seeds = [m for m in (re.search(r"seed: (\d+) \(replay with --seed (\d+)\)", l)
                             for l in banner) if m]
        self.assertEqual(len(seeds), 1, banner)
        self.assertEqual(seeds[0].group(1), seeds[0].group(2))


class ScenarioErrorTest(ScenarioCase):
    SCENARIO = "scenario_errors.lua"

    def send_to(self, local_part):
        c = self.server.connect()
        self.addCleanup(c.close)
        c.ehlo("errors.test")
        c.cmd("MAIL FROM:<sender@example.com>", expect=250)
        reply = c.cmd("RCPT TO:<%s@example.com>" % local_part)
        self.assertTrue(c.closed_by_peer(5.0))   # the session fails: 451, then close
        return reply

    def test_runtime_error_gives_451_and_file_line_in_the_log(self):
        reply = self.send_to("boom")
        self.assertEqual(reply.code, 451)
        self.assertEqual(reply.lines, ["4.3.0 Requested action aborted: scenario error"])
        line = line_of(scenario("scenario_errors.lua"), 'error("boom")')
        self.server.wait_for_line(r"scenario error: \S*scenario_errors\.lua:%d: boom$" % line)
        # The next session is served normally.
        client = smtplib.SMTP(self.server.host, self.server.port, local_hostname="after.test",
                              timeout=10)
        self.addCleanup(client.close)
        before = set(self.server.message_ids())
        self.assertEqual(client.sendmail("sender@example.com", ["fine@example.com"],
                                         self.body("after")), {})
        client.quit()
        self.assertEqual([m.data for m in self.new_messages(before)], [self.body("after")])
        self.assertTrue(self.server.alive())

    def unknown_action(self, local_part, name):
        reply = self.send_to(local_part)
        self.assertEqual(reply.code, 451)
        line = line_of(scenario("scenario_errors.lua"), 'smtp["%s"](' % name)
        return self.server.wait_for_line(r"scenario error: \S*scenario_errors\.lua:%d: "
                                         r"smtp\.%s does not exist \(did you mean smtp\.\w+\?\)"
                                         % (line, name))

    def test_unknown_action_name_is_reported_with_a_hint(self):
        self.unknown_action("typo", "rejct")

    def test_misspelt_reply_suggests_reply(self):
        self.assertIn("(did you mean smtp.reply?)", self.unknown_action("typo2", "repyl"))

    def test_rejct_suggests_reply(self):
        self.assertIn("(did you mean smtp.reply?)", self.unknown_action("typo", "rejct"))


class MemoryLimitTest(unittest.TestCase):
    """A hook that runs out of memory fails its own session; what it left behind is garbage,
    collected before it can fail the hooks after it (string.rep, table.concat and the like
    get no collection of Lua's own before they are refused)."""

    def test_the_sessions_after_a_hook_out_of_memory_are_served(self):
        folder = tempfile.mkdtemp(prefix="memory-")
        self.addCleanup(shutil.rmtree, folder, True)
        path = write_file(folder, "memory.lua", (
            "function on_helo(s, name)\n"
            "  local t = {}\n"
            "  if name == 'fill' then\n"
            "    while true do t[#t + 1] = string.rep('x', 1024 * 1024) .. #t end\n"
            "  end\n"
            "  for i = 1, 6 do t[i] = string.rep('y', 1024 * 1024) .. i end\n"
            "  return smtp.reply(250, 'used ' .. #t .. ' MiB')\n"
            "end\n"))
        with SmtpfaultServer("--scenario", path, "--set", "lua.memory=16777216") as srv:
            codes = []
            for name in ("use", "fill", "use", "use", "fill", "use"):
                with srv.connect() as c:
                    codes.append(c.cmd("HELO " + name).code)
            self.assertEqual(codes, [250, 451, 250, 250, 451, 250])


class LoadErrorTest(unittest.TestCase):
    BAD = scenario("syntax_error.lua")

    def run_binary(self, *args):
        store = tempfile.mkdtemp(prefix="smtpfault-load-")
        self.addCleanup(shutil.rmtree, store, True)
        return subprocess.run([binary_path()] + list(args), stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=10,
                              env=server_environment(), cwd=store)

    def location(self):
        return "syntax_error.lua:%d:" % line_of(self.BAD, "reply(550,,")

    def test_serve_exits_2_with_file_and_line(self):
        run = self.run_binary("serve", "--scenario", self.BAD, "--listen", "127.0.0.1:0",
                              "--tls-listen", "127.0.0.1:0", "--store", ".")
        err = run.stderr.decode("utf-8", "replace")
        self.assertEqual(run.returncode, 2, err)
        self.assertIn(self.location(), err)

    def test_check_exits_1_with_file_and_line(self):
        run = self.run_binary("check", self.BAD)
        err = run.stderr.decode("utf-8", "replace")
        self.assertEqual(run.returncode, 1, err)
        self.assertIn(self.location(), err)

    def test_check_names_a_misspelt_api_call_inside_a_hook(self):
        folder = tempfile.mkdtemp(prefix="smtpfault-typo-")
        self.addCleanup(shutil.rmtree, folder, True)
        path = write_file(folder, "typo.lua",
                          '-- smtp.rejct(1) in a comment, and "smtp.rejct" in a string, are fine\n'
                          'local relay = "smtp.example.com"\n'
                          'function on_mail(s, m)\n'
                          '  if m.address == "x@y" then return smtp.rejct(554) end\n'
                          'end\n')
        run = self.run_binary("check", path)
        err = run.stderr.decode("utf-8", "replace")
        self.assertEqual(run.returncode, 1, err)
        self.assertIn("typo.lua:4: smtp.rejct does not exist (did you mean smtp.reply?)", err)

    def test_check_accepts_every_other_scenario_here(self):
        good = sorted(os.path.join(SCENARIOS, n) for n in os.listdir(SCENARIOS)
                      if n.endswith(".lua") and n != "syntax_error.lua")
        run = self.run_binary("check", *good)
        self.assertEqual(run.returncode, 0, run.stderr.decode("utf-8", "replace"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
