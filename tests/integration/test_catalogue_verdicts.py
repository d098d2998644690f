"""Catalogue scenarios judging particular mailers: a mailer is judged by what it asked for (one
recipient passes greylist), and a verdict names what the mailer did wrong or did not exercise."""

import os
import re
import textwrap
import unittest

from catalogue_case import (CONNECTED, PYTHON, TIME_SCALE, judge_mailer, run_test, scratch_folder, 
                            verdicts)
from smtpfault_server import write_file


class OneRecipientMailer(unittest.TestCase):
    """The catalogue judges what the mailer asked for, not careful.py's recipient count: a mailer
    that sends to one recipient and retries properly passes greylist."""

    MAILER = (
        "import os, smtplib, time\n"
        "for attempt in range(40):\n"
        "    try:\n"
        "        s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
        "        s.sendmail('a@x.test', ['only@y.test'], b'Subject: one\\r\\n\\r\\nhi\\r\\n')\n"
        "        s.quit()\n"
        "        break\n"
        "    except smtplib.SMTPRecipientsRefused:\n"
        "        s.quit()\n"
        "        time.sleep(0.25)\n")

    def run_one(self, scenario):
        return judge_mailer(self, scenario, self.MAILER, "--time-scale", TIME_SCALE)

    def test_a_fault_on_the_second_recipient_is_reported_as_not_exercised(self):
        # Such a scenario cannot judge a mailer that sends to one recipient: not a PASS.
        for scenario in ("partial-recipients", "multiline-replies", "too-many-recipients",
                         "auth-535", "auth-538"):
            status, r, output = self.run_one(scenario)
            self.assertEqual((status, r["verdict"]), (1, "FAIL"), scenario + output)
            self.assertIn("not exercised", r["reason"], scenario)

    def test_greylist_with_one_recipient(self):
        status, r, output = judge_mailer(self, "greylist", self.MAILER, "--time-scale", TIME_SCALE)
        self.assertEqual((status, r["verdict"]), (0, "PASS"), r["reason"] + output)

    def test_greylist_names_retries_that_all_came_too_early(self):
        # Two recipients, each refused on each retry: still two retries, not four.
        impatient = ("import os, smtplib, sys, time\n"
                     "for attempt in range(3):\n"
                     "    s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
                     "    try:\n"
                     "        s.sendmail('a@x.test', ['one@y.test', 'two@y.test'], b'Subject: one\\r\\n\\r\\nhi\\r\\n')\n"
                     "        s.quit()\n"
                     "        sys.exit(0)\n"
                     "    except smtplib.SMTPRecipientsRefused:\n"
                     "        s.quit()\n"
                     "        time.sleep(0.05)\n"
                     "sys.exit(1)\n")
        status, r, output = judge_mailer(self, "greylist", impatient, "--time-scale", TIME_SCALE)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("retried too early: 2 retries came within the 60 s window", r["reason"])

    def test_a_retry_after_the_window_that_fails_later_is_not_called_too_early(self):
        # It came back in time and its recipient was taken; the message itself was refused.
        # The class's mailer, retrying properly, with a line too long in its message.
        late = self.MAILER.replace("b'Subject: one\\r\\n\\r\\nhi\\r\\n'",
                                   "b'Subject: one\\r\\n\\r\\n' + b'x' * 2000 + b'\\r\\n'")
        self.assertNotEqual(late, self.MAILER)
        status, r, output = judge_mailer(self, "greylist", late, "--time-scale", TIME_SCALE)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertNotIn("retried too early", r["reason"])
        self.assertRegex(r["reason"], r"session \d+ came back after the window and its "
                         r"recipients were accepted, but no message was delivered \('500 5.5.2 "
                         r"Line too long \(limit 1000 octets\)' to <end of data>\)")

    def test_a_recipient_new_to_the_greylist_after_the_window_is_named(self):
        # A client that stops at the first refused RCPT reaches the 2nd recipient only when the
        # 1st is past the window: "its recipients were accepted" was said of it.
        stops_at_first = ("import os, smtplib, sys, time\n"
                          "for attempt in range(4):\n"
                          "    s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
                          "    s.ehlo()\n"
                          "    s.mail('a@x.test')\n"
                          "    if s.rcpt('one@y.test')[0] == 250 and s.rcpt('two@y.test')[0] == 250:\n"
                          "        s.data(b'Subject: x\\r\\n\\r\\nhi\\r\\n')\n"
                          "        s.quit()\n"
                          "        sys.exit(0)\n"
                          "    s.quit()\n"
                          "    time.sleep(1.3 if attempt == 0 else 0.05)\n"
                          "sys.exit(1)\n")
        status, r, output = judge_mailer(self, "greylist", stops_at_first, "--time-scale", TIME_SCALE)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertRegex(r["reason"], r"session \d+ came back after the window and 1 recipient was "
                         r"accepted, but two@y.test met the greylist there for the first time "
                         r"\(each recipient is greylisted by itself\)")

    def test_a_retry_on_the_same_connection_after_the_window_passes(self):
        # A connection cache (OpenSMTPD, Postfix's) waits the 451 out on the connection it
        # holds: RSET, a pause past the window, and the message again. A retry all the same.
        same = (CONNECTED + "s.ehlo()\n"
                "for attempt in range(3):\n"
                "    try:\n"
                "        s.sendmail('a@x.test', ['b@y.test'], b'Subject: x\\r\\n\\r\\nhi\\r\\n')\n"
                "        break\n"
                "    except smtplib.SMTPRecipientsRefused:\n"
                "        s.rset()\n"
                "        time.sleep(1.5)\n"
                "s.quit()\n")
        status, r, output = judge_mailer(self, "greylist", "import time\n" + same,
                                         "--time-scale", TIME_SCALE)
        self.assertEqual((status, r["verdict"]), (0, "PASS"), r["reason"] + output)
        checks = {c["name"]: c for c in r["checks"]}
        self.assertRegex(checks["retried_after_4xx"]["detail"],
                         r"^retried after 7\d\.\d\d s \(scenario time\) on the same connection "
                         r"\(session 000001, transcript line \d+\)$")

    def test_a_retry_on_the_same_connection_inside_the_window_is_too_early(self):
        same = (CONNECTED + "s.ehlo()\n"
                "for attempt in range(3):\n"
                "    try:\n"
                "        s.sendmail('a@x.test', ['b@y.test'], b'Subject: x\\r\\n\\r\\nhi\\r\\n')\n"
                "        break\n"
                "    except smtplib.SMTPRecipientsRefused:\n"
                "        s.rset()\n"
                "s.quit()\n"
                "raise SystemExit(75)\n")
        status, r, output = judge_mailer(self, "greylist", same, "--time-scale", TIME_SCALE)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("the client asked again on the same connection at once", r["reason"])
        checks = {c["name"]: c for c in r["checks"]}
        self.assertIn("retried too early: 2 retries came within the 60 s window",
                      checks["check"]["detail"])


class HammeringOnTheSameConnection(unittest.TestCase):
    """A retry on the same connection counts after a pause; asking again at once does not."""

    def test_pipelining_failure_fails_a_mailer_that_asks_again_at_once(self):
        mailer = (CONNECTED + "for attempt in range(3):\n"
                  "    try:\n"
                  "        s.sendmail('a@x.test', ['b@y.test'], b'Subject: x\\r\\n\\r\\nhi\\r\\n')\n"
                  "        break\n"
                  "    except smtplib.SMTPException:\n"
                  "        s.rset()\n"
                  "s.quit()\n")
        status, r, output = judge_mailer(self, "pipelining-failure", mailer,
                                         "--time-scale", TIME_SCALE)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertRegex(r["reason"], r"^retried_after_4xx: .*the client asked again on the same "
                                      r"connection at once \('mail FROM:<a@x\.test> size=18', 0\.\d\d s of "
                                      r"scenario time later")

    def test_auth_454_fails_an_auth_retried_at_once_then_skipped(self):
        mailer = (CONNECTED + "s.starttls()\ns.ehlo()\n"
                  "for _ in range(2):\n"
                  "    print(s.docmd('AUTH PLAIN', 'AHUAcA=='))\n"
                  "s.sendmail('a@x.test', ['b@y.test'], b'Subject: x\\r\\n\\r\\nhi\\r\\n')\n"
                  "s.quit()\n")
        status, r, output = judge_mailer(self, "auth-454", mailer, "--time-scale", TIME_SCALE)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("the client went on without AUTH on the same connection", r["reason"])

    def test_auth_454_fails_a_delivery_without_authenticating_after_a_real_retry(self):
        # AUTH again after a pause (a retry), still 454 on this connection, then the message
        # unauthenticated: the scenario's own check names it.
        mailer = (CONNECTED + "import time\ns.starttls()\ns.ehlo()\n"
                  "print(s.docmd('AUTH PLAIN', 'AHUAcA=='))\ntime.sleep(0.2)\n"
                  "print(s.docmd('AUTH PLAIN', 'AHUAcA=='))\n"
                  "s.sendmail('a@x.test', ['b@y.test'], b'Subject: x\\r\\n\\r\\nhi\\r\\n')\n"
                  "s.quit()\n")
        status, r, output = judge_mailer(self, "auth-454", mailer, "--time-scale", TIME_SCALE)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertRegex(r["reason"], r"^check: expected MAIL only after a successful AUTH; session "
                                      r"000001 sent 'mail FROM:<a@x\.test> size=18' without authenticating")

    def test_greylist_names_a_retry_on_the_same_connection_that_sent_no_data(self):
        mailer = (CONNECTED + "import time\ns.ehlo()\n"
                  "s.mail('a@x.test'); s.rcpt('r1@example.com'); s.rset()\n"
                  "time.sleep(1.5)\n"
                  "s.mail('a@x.test'); s.rcpt('r1@example.com'); s.rset()\n"
                  "s.quit()\nraise SystemExit(75)\n")
        status, r, output = judge_mailer(self, "greylist", mailer, "--time-scale", TIME_SCALE)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("check: session 000001 retried on the same connection after the window and "
                      "its recipients were accepted, but no message was delivered (it sent no "
                      "DATA)", r["reason"])


class AuthNotExercised(unittest.TestCase):
    def test_the_scenarios_own_words_come_before_the_general_ones(self):
        # auth-454's check names the AUTH it waited for; retried_after_4xx could only say that
        # no 4xx was sent at all.
        mailer = (CONNECTED + "s.starttls()\n"
                  "s.sendmail('a@x.test', ['b@y.test'], b'Subject: x\\r\\n\\r\\nhi\\r\\n')\n"
                  "s.quit()\n")
        status, r, output = judge_mailer(self, "auth-454", mailer)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertTrue(r["reason"].startswith("check: not exercised: the client never sent AUTH"),
                        r["reason"])

class AuthSkippedAfterA454(unittest.TestCase):
    def test_mail_without_authenticating_is_no_retry(self):
        # dma does this: "SMTP login not available. Trying without." after the 454.
        mailer = (CONNECTED + "s.starttls()\ns.ehlo()\n"
                  "try:\n    s.login('u', 'p')\nexcept smtplib.SMTPException:\n    pass\n"
                  "s.sendmail('a@x.test', ['b@y.test'], b'Subject: x\\r\\n\\r\\nhi\\r\\n')\n"
                  "s.quit()\n")
        status, r, output = judge_mailer(self, "auth-454", mailer)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertRegex(r["reason"], r"^retried_after_4xx: expected a new attempt after '454 "
                                      r"4\.7\.0 Temporary authentication failure' \(session 000001, "
                                      r"transcript line \d+\); the client went on without AUTH on "
                                      r"the same connection \('mail FROM:<a@x\.test>")


class EhloUnsupportedTlsWithoutStarttls(unittest.TestCase):
    def test_a_tls_handshake_sent_as_a_command_is_named(self):
        mailer = ("import os, socket\n"
                  "s = socket.create_connection((os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT'])))\n"
                  "f = s.makefile('rb')\nf.readline()\n"
                  "s.sendall(b'EHLO me\\r\\n'); f.readline()\n"
                  "s.sendall(b'\\x16\\x03\\x01\\x01$\\x01\\x00\\x01 \\x03\\x03abc\\r\\n'); f.readline()\n"
                  "s.sendall(b'QUIT\\r\\n'); f.readline()\n"
                  "raise SystemExit(75)\n")
        status, r, output = judge_mailer(self, "ehlo-unsupported", mailer)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("check: session 000001 sent a TLS handshake as a command (transcript line 7, "
                      "answered '500 Command unrecognized'), without STARTTLS", r["reason"])

    def test_a_retrying_mta_is_pointed_at_the_docs(self):
        mailer = ("import os, smtplib\n"
                  "for _ in range(3):\n"
                  "    s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
                  "    s.ehlo(); s.quit()\n"
                  "raise SystemExit(75)\n")
        for scenario in ("ehlo-unsupported", "starttls-stripped"):
            status, r, output = judge_mailer(self, scenario, mailer)
            self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
            self.assertIn("(an MTA that requires TLS defers the message and tries again by design: "
                          "see \"An MTA or a queue under test\" in docs/catalogue.md)", r["reason"])


class EhloUnsupported(unittest.TestCase):
    """ehlo-unsupported: a mailer that falls back to HELO and then sends its mail in plaintext
    fails, however it ends; and STARTTLS after HELO is refused like EHLO."""

    MAILER = (
        "import os, smtplib, sys\n"
        "s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
        "print(s.ehlo()[0], s.helo()[0], s.docmd('STARTTLS')[0])\n"
        "s.mail('sender@example.com'); s.rcpt('rcpt1@example.com'); s.quit()\n"
        "sys.exit(1)\n")

    def test_plaintext_mail_after_the_fallback_fails(self):
        status, r, output = judge_mailer(self, "ehlo-unsupported", self.MAILER)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("expected no mail in plaintext", r["reason"])
        # Plaintext may be the mailer's policy: the reason says how to set the scenario aside.
        self.assertIn("if falling back to plaintext is your policy, opportunistic TLS, --exclude "
                      "this scenario", r["reason"])
        self.assertIn("502 250 502", r["command_output"])

    def test_a_tls_requiring_mailer_may_quit_at_the_502(self):
        # STARTTLS needs EHLO (RFC 3207 4): HELO would gain such a mailer nothing.
        quits = ("import os, smtplib, sys\n"
                 "s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
                 "print(s.ehlo()[0]); s.quit(); sys.exit(1)\n")
        status, r, output = judge_mailer(self, "ehlo-unsupported", quits)
        self.assertEqual((status, r["verdict"]), (0, "PASS"), r["reason"] + output)
        # Quitting without reporting the failure is still wrong.
        status, r, output = judge_mailer(self, "ehlo-unsupported", quits.replace("exit(1)", "exit(0)"))
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("a failing exit status", r["reason"])
        # Coming back again and again gains nothing: every connection refuses EHLO alike.
        retries = ("import os, smtplib, sys\n"
                   "for attempt in range(4):\n"
                   "    s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
                   "    s.ehlo(); s.quit()\n"
                   "sys.exit(1)\n")
        status, r, output = judge_mailer(self, "ehlo-unsupported", retries)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertEqual(r["reason"], "check: expected at most one more connection (for HELO) "
                                      "and no retry after it (EHLO is refused on every "
                                      "connection, 502 is permanent, and without it no STARTTLS), "
                                      "got 4 connections (an MTA that requires TLS defers the "
                                      "message and tries again by design: see \"An MTA or a queue "
                                      "under test\" in docs/catalogue.md)")

    def test_over_implicit_tls_the_fallback_delivers(self):
        # Nothing is lost by HELO on the implicit-TLS port: delivering there is right, and so is
        # stopping with a failure, as a mailer that must log in does (AUTH needs EHLO, RFC 4954
        # 3; aiosmtplib refuses to go on). Not delivering and saying nothing fails.
        implicit = (
            "import os, smtplib, ssl, sys\n"
            "ctx = ssl.create_default_context(); ctx.check_hostname = False\n"
            "ctx.verify_mode = ssl.CERT_NONE\n"
            "s = smtplib.SMTP_SSL(os.environ['SMTP_HOST'], int(os.environ['SMTP_TLS_PORT']),"
            " context=ctx)\n"
            "s.ehlo_or_helo_if_needed()\n"
            "%s\n"
            "s.quit()\n")
        deliver = "s.sendmail('a@example.com', ['b@example.com'], 'Subject: x\\r\\n\\r\\nx')"
        status, r, output = judge_mailer(self, "ehlo-unsupported", implicit % deliver)
        self.assertEqual((status, r["verdict"]), (0, "PASS"), output)
        self.assertIn("not judged: the client sent its message after HELO without AUTH, which is "
                      "right only for a mailer that need not log in", r["reason"])
        stops = "s.quit(); sys.exit(1)"
        status, r, output = judge_mailer(self, "ehlo-unsupported", implicit % stops)
        self.assertEqual((status, r["verdict"]), (0, "PASS"), r["reason"] + output)
        self.assertIn("not judged: the client stopped after HELO without MAIL", r["reason"])
        # AUTH all the same, though HELO offers none (nodemailer's habit): said on the pass;
        # coming back for more of the same on new connections fails, as over plaintext.
        auth = "s.docmd('AUTH PLAIN', 'AGEAYg=='); s.quit(); sys.exit(1)"
        status, r, output = judge_mailer(self, "ehlo-unsupported", implicit % auth)
        self.assertEqual((status, r["verdict"]), (0, "PASS"), r["reason"] + output)
        self.assertIn("not judged: the client stopped after HELO without MAIL (it sent 'AUTH "
                      "PLAIN ****' all the same, answered '503", r["reason"])
        retries = ("import sys\nfor attempt in range(3):\n" +
                   textwrap.indent(implicit % "s.docmd('AUTH PLAIN', 'AGEAYg==')", "    ") +
                   "sys.exit(1)\n")
        status, r, output = judge_mailer(self, "ehlo-unsupported", retries)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("expected at most one more connection and no retry after it (EHLO is "
                      "refused on every connection, 502 is permanent, and HELO offers no AUTH), "
                      "got 3 connections", r["reason"])
        # A crash there is no stop.
        crashes = "import signal; s.quit(); os.kill(os.getpid(), signal.SIGSEGV)"
        status, r, output = judge_mailer(self, "ehlo-unsupported", implicit % crashes)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        status, r, output = judge_mailer(self, "ehlo-unsupported", implicit % "s.quit(); sys.exit(0)")
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("expected the message delivered over implicit TLS", r["reason"])
        self.assertIn("for a mailer that must log in, no MAIL after HELO", r["reason"])


class HandshakeFailOverImplicitTls(unittest.TestCase):
    def test_a_client_of_the_implicit_tls_port_is_exercised_too(self):
        # Its first handshake is aborted; reconnecting and delivering over TLS passes.
        mailer = (
            "import os, smtplib, ssl, time\n"
            "ctx = ssl.create_default_context(); ctx.check_hostname = False\n"
            "ctx.verify_mode = ssl.CERT_NONE\n"
            "for attempt in range(4):\n"
            "    try:\n"
            "        s = smtplib.SMTP_SSL(os.environ['SMTP_HOST'], int(os.environ['SMTP_TLS_PORT']),"
            " context=ctx, timeout=10)\n"
            "        break\n"
            "    except (OSError, ssl.SSLError):\n"
            "        time.sleep(0.2)\n"
            "s.sendmail('a@example.com', ['b@example.com'], 'Subject: x\\r\\n\\r\\nx')\n"
            "s.quit()\n")
        status, r, output = judge_mailer(self, "starttls-handshake-fail", mailer)
        self.assertEqual((status, r["verdict"]), (0, "PASS"), output)


class FallbackAfterACertificateRefusedLate(unittest.TestCase):
    def test_plaintext_after_closing_right_after_the_handshake_is_a_downgrade(self):
        # As Exim with GnuTLS does: the handshake completes, the certificate is judged after it
        # and refused (a close before any command over TLS), then the message goes out on a new
        # connection in plaintext, opportunistic TLS's fallback.
        mailer = (
            "import os, smtplib, ssl\n"
            "host, port = os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT'])\n"
            "ctx = ssl.create_default_context(); ctx.check_hostname = False\n"
            "ctx.verify_mode = ssl.CERT_NONE\n"
            "s = smtplib.SMTP(host, port)\n"
            "s.starttls(context=ctx)\n"
            "s.sock.close()\n"
            "s = smtplib.SMTP(host, port)\n"
            "s.sendmail('a@example.com', ['b@example.com'], 'Subject: x\\r\\n\\r\\nx')\n"
            "s.quit()\n"
            "raise SystemExit(1)\n")
        status, r, output = judge_mailer(self, "starttls-bad-cert", mailer)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertRegex(r["reason"], r"^no_plaintext_after_tls_failure: expected nothing in "
                                      r"plaintext after the client gave up on TLS \(session "
                                      r"000001, transcript line \d+: it closed right after the "
                                      r"handshake")


class MalformedRepliesWaiting(unittest.TestCase):
    def test_a_client_that_waits_on_the_garbage_greeting_is_told_so(self):
        # It reads a line, finds no reply in it, and waits for one until it gives up.
        mailer = ("import os, socket, time\n"
                  "s = socket.create_connection((os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT'])))\n"
                  "s.recv(100)\n"
                  "time.sleep(1)\n"
                  "raise SystemExit(75)\n")
        status, r, output = judge_mailer(self, "malformed-replies", mailer)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertRegex(r["reason"], r"the client made 1 connection\(s\); it sent nothing on "
                                      r"session 000001 after its greeting, and closed it 1\.\d s "
                                      r"after it began \(waiting for a greeting it could read\?\)")

    def test_a_client_that_closes_at_once_is_not_said_to_be_waiting(self):
        mailer = ("import os, socket\n"
                  "s = socket.create_connection((os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT'])))\n"
                  "s.recv(100)\n"
                  "s.close()\n"
                  "raise SystemExit(75)\n")
        status, r, output = judge_mailer(self, "malformed-replies", mailer)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertRegex(r["reason"], r"and closed it 0\.\d s after it began \(it gave up on the "
                                      r"unreadable greeting at once and did not come back\)")

    def test_a_client_that_will_not_read_the_long_line_is_told_so(self):
        # OpenSMTPD: "Bad response: line too long", the connection dropped, again and again.
        mailer = ("import os, socket\n"
                  "for n in range(4):\n"
                  "    s = socket.create_connection((os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT'])))\n"
                  "    f = s.makefile('rb')\n"
                  "    if not f.readline().startswith(b'220 '):\n"
                  "        s.close(); continue\n"
                  "    s.sendall(b'EHLO me\\r\\n')\n"
                  "    while f.readline()[3:4] == b'-': pass\n"
                  "    s.sendall(b'MAIL FROM:<a@x.test>\\r\\n')\n"
                  "    f.readline(600)\n"
                  "    s.close()\n"
                  "raise SystemExit(75)\n")
        # Closing at once, or with a QUIT first: either way it gave up on the line.
        for ending in ("", "    s.sendall(b'QUIT\\r\\n')\n"):
            status, r, output = judge_mailer(
                self, "malformed-replies", mailer.replace("    s.close()\n", ending + "    s.close()\n"))
            self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
            self.assertIn("check: expected the message delivered once, got 0: the client left 2 "
                          "connection(s) right after the reply line of over 2048 octets to MAIL "
                          "(sessions 000003, 000004)", r["reason"])

    def test_the_connection_the_server_closed_is_not_said_to_be_waiting(self):
        # Two connections, each read and left: the second one's close was the server's.
        mailer = ("import os, socket\n"
                  "for _ in range(2):\n"
                  "    s = socket.create_connection((os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT'])))\n"
                  "    s.recv(200)\n"
                  "    s.close()\n"
                  "raise SystemExit(75)\n")
        status, r, output = judge_mailer(self, "malformed-replies", mailer)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("the client made 2 connection(s)", r["reason"])
        self.assertNotIn("sent nothing", r["reason"])


class StarttlsStrippedSentAnyway(unittest.TestCase):
    def test_mail_in_plaintext_is_named_with_the_way_to_set_it_aside(self):
        mailer = ("import os, smtplib\n"
                  "s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
                  "s.sendmail('a@x.test', ['b@x.test'], 'Subject: x\\r\\n\\r\\nx')\n"
                  "s.quit()\n")
        status, r, output = judge_mailer(self, "starttls-stripped", mailer)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("expected nothing sent without STARTTLS; session 000001 sent 'mail "
                      "FROM:<a@x.test> size=15' in plaintext (a mailer that requires TLS stops when "
                      "STARTTLS is not offered; if falling back to plaintext is your policy, "
                      "opportunistic TLS, --exclude this scenario", r["reason"])

    def test_a_starttls_sent_though_not_offered_is_named(self):
        # Tries STARTTLS on each of two connections though EHLO does not offer it.
        mailer = ("import os, smtplib, sys\n"
                  "for attempt in range(2):\n"
                  "    s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
                  "    s.ehlo(); s.docmd('STARTTLS'); s.quit()\n"
                  "sys.exit(1)\n")
        status, r, output = judge_mailer(self, "starttls-stripped", mailer)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("got 2 connections; it sent STARTTLS 2 time(s) though EHLO did not offer it "
                      "(refused with 502)", r["reason"])


class MultilineRepliesGivingUp(unittest.TestCase):
    def test_a_client_that_read_the_550_and_gave_up_is_told_so(self):
        mailer = (CONNECTED + "s.ehlo()\ns.mail('a@x.test')\n"
                  "codes = [s.rcpt(r)[0] for r in ('b@y.test', 'c@y.test')]\n"
                  "if 550 in codes:\n    s.rset()\n"
                  "s.quit()\n")
        status, r, output = judge_mailer(self, "multiline-replies", mailer,
                                         "--time-scale", TIME_SCALE)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("the client answered the 4-line 550 to the 2nd recipient with RSET, giving "
                      "up the whole message", r["reason"])


    def test_a_retry_after_the_4_line_550_quotes_its_first_line(self):
        # The last line is a link; the first says what was refused.
        mailer = ("import os, smtplib\n"
                  "for _ in range(2):\n"
                  "    s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
                  "    try:\n"
                  "        s.sendmail('a@x.test', ['b@y.test', 'c@y.test'], b'Subject: x\\r\\n\\r\\nhi\\r\\n')\n"
                  "    except smtplib.SMTPException:\n"
                  "        pass\n"
                  "    s.quit()\n")
        status, r, output = judge_mailer(self, "multiline-replies", mailer,
                                         "--time-scale", TIME_SCALE)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("no_retry_after_5xx: expected no retry after '550-5.1.1 The email account "
                      "that you tried to reach does not exist. ... 550 5.1.1 "
                      "https://smtpfault.test/help/bounce' (session 000001", r["reason"])


class QuitOwedOnlyWhereTheClientCouldSendIt(unittest.TestCase):
    def test_a_session_the_server_closed_after_its_reply_owes_no_quit(self):
        # A 521 greeting closes (RFC 7504); so does a reply a scenario chained with :close().
        tmp = scratch_folder(self)
        script = write_file(tmp, "closes.lua", (
            "function on_connect(s)\n"
            "  if smtp.count('c') == 1 then return smtp.reply(521) end\nend\n"
            "function on_mail(s) return smtp.reply(554, '5.7.1', 'no'):close() end\n"
            "expect { quit = true, delivered = 0, exit = 'failure' }\n"))
        mailer = ("import os, smtplib, sys\n"
                  "for _ in range(2):\n"
                  "    try:\n"
                  "        s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
                  "        s.sendmail('a@x.test', ['b@y.test'], b'Subject: x\\r\\n\\r\\nhi\\r\\n')\n"
                  "    except (smtplib.SMTPException, OSError):\n"
                  "        pass\n"
                  "sys.exit(1)\n")
        json_path = os.path.join(tmp, "report.json")
        status, out, err = run_test(["--scenario", script, "--json", json_path, "--",
                                     PYTHON, "-c", mailer], timeout=60)
        r = verdicts(json_path)["closes"]
        self.assertEqual((status, r["verdict"]), (0, "PASS"), (r, out, err))
        checks = {c["name"]: c for c in r["checks"]}
        self.assertTrue(checks["quit"]["passed"], checks["quit"])


class RetryAfterARefusingGreeting(unittest.TestCase):
    def test_reconnecting_after_a_521_greeting_is_a_retry(self):
        # Each new connection meets the 521 again and never gets as far as MAIL: still a retry.
        mailer = ("import os, smtplib, sys, time\n"
                  "for _ in range(3):\n"
                  "    try:\n"
                  "        smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
                  "    except (smtplib.SMTPException, OSError):\n"
                  "        time.sleep(0.05)\n"
                  "sys.exit(1)\n")
        status, r, output = judge_mailer(self, "greeting-521", mailer)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("no_retry_after_5xx: expected no retry after", r["reason"])
        self.assertIn("the client tried again in session 000002 (an MTA defers the message on a "
                      "5xx greeting by default, as Postfix does: see \"An MTA or a queue under "
                      "test\" in docs/catalogue.md)", r["reason"])


class RelayDeniedNotExercised(unittest.TestCase):
    def test_local_recipients_only_is_not_exercised(self):
        mailer = (CONNECTED + "s.sendmail('a@x.test', ['b@sub.smtpfault.test'], b'Subject: x\\r\\n\\r\\nhi\\r\\n')\n"
                  "s.quit()\n")
        status, r, output = judge_mailer(self, "relay-denied", mailer)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("not exercised: every recipient was in smtpfault.test", r["reason"])

    def test_a_client_that_names_no_recipient_is_told_so(self):
        mailer = (CONNECTED + "s.ehlo()\ns.mail('a@x.test')\ns.quit()\n")
        status, r, output = judge_mailer(self, "relay-denied", mailer)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("not exercised: the client sent no RCPT", r["reason"])

    def test_a_recipient_refused_for_its_syntax_is_named(self):
        mailer = (CONNECTED + "s.ehlo()\ns.mail('a@x.test')\ns.docmd('RCPT TO:<not an address>')\ns.quit()\n")
        status, r, output = judge_mailer(self, "relay-denied", mailer)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("not exercised: no RCPT reached the relay check; 'RCPT TO:<not an address>' "
                      "got '501", r["reason"])


class RecipientFaultsNeverReached(unittest.TestCase):
    """A mailer that stops before RCPT is told so, not that it must send to more recipients."""
    MAIL_ONLY = CONNECTED + "s.ehlo()\ns.mail('a@x.test')\ns.quit()\n"

    def test_multiline_replies_and_too_many_recipients(self):
        for scenario in ("multiline-replies", "too-many-recipients"):
            with self.subTest(scenario=scenario):
                status, r, output = judge_mailer(self, scenario, self.MAIL_ONLY)
                self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
                self.assertIn("check: not exercised: the client sent no RCPT", r["reason"])
                self.assertNotIn("must send to", r["reason"])


class QuitVariantsWithoutQuit(unittest.TestCase):
    def test_a_pass_with_quit_waived_says_no_goodbye_was_met(self):
        mailer = (CONNECTED + "s.sendmail('a@x.test', ['b@y.test'], b'Subject: x\\r\\n\\r\\nhi\\r\\n')\n"
                  "s.close()\n")
        status, r, output = judge_mailer(self, "quit-variants", mailer, "--waive", "quit",
                                         "--time-scale", TIME_SCALE)
        self.assertEqual((status, r["verdict"]), (0, "PASS"), output)
        self.assertIn("; not exercised: the client sent no QUIT, so it met none of the three "
                      "broken goodbyes (221 then a TCP reset, QUIT never answered, a close "
                      "without 221)", r["reason"])

    def test_a_quit_in_one_run_of_three_meets_only_the_first_goodbye(self):
        # Only the first of the three runs says goodbye (a file marks that it has run).
        mailer = (CONNECTED + "s.sendmail('a@x.test', ['b@y.test'], b'Subject: x\\r\\n\\r\\nhi\\r\\n')\n"
                  "s.quit() if not os.path.exists(os.environ['MARK']) else s.close()\n"
                  "open(os.environ['MARK'], 'w').close()\n")
        mark = os.path.join(scratch_folder(self), "quit-once")
        os.environ["MARK"] = mark
        self.addCleanup(os.environ.pop, "MARK")
        status, r, output = judge_mailer(self, "quit-variants", mailer, "--waive", "quit",
                                         "--time-scale", TIME_SCALE)
        self.assertEqual((status, r["verdict"]), (0, "PASS"), output)
        self.assertIn("; not exercised in full: the client sent QUIT 1 time, so it met only 221 "
                      "then a TCP reset, not QUIT never answered or a close without 221",
                      r["reason"])


class RelayDeniedMixedRecipients(unittest.TestCase):
    """A list with recipients in smtpfault.test and elsewhere is a partial refusal: the message
    goes to the local ones and the command reports success."""

    MIXED = (CONNECTED + "s.sendmail('a@x.test', ['ops@smtpfault.test', 'partner@example.com',"
             " 'dba@smtpfault.test'], b'Subject: x\\r\\n\\r\\nhi\\r\\n')\n"
             "s.quit()\n")

    def test_delivering_to_the_local_recipients_and_exiting_0_passes(self):
        status, r, output = judge_mailer(self, "relay-denied", self.MIXED)
        self.assertEqual((status, r["verdict"]), (0, "PASS"), output)
        self.assertIn("not judged: whether the mailer told its caller that the recipients outside "
                      "smtpfault.test were refused", r["reason"])

    def test_reporting_failure_for_a_partial_refusal_fails(self):
        status, r, output = judge_mailer(self, "relay-denied", self.MIXED + "raise SystemExit(1)\n")
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("yet the command reported failure (exit 1): a refused recipient beside "
                      "accepted ones is a partial refusal", r["reason"])

    def test_giving_up_the_message_for_the_refused_one_fails(self):
        mailer = (CONNECTED + "s.ehlo()\ns.mail('a@x.test')\ns.rcpt('ops@smtpfault.test')\n"
                  "s.rcpt('partner@example.com')\ns.rset()\ns.quit()\n")
        status, r, output = judge_mailer(self, "relay-denied", mailer)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("expected the message delivered to the recipient in smtpfault.test "
                      "('rcpt TO:<ops@smtpfault.test>' got 250)", r["reason"])

    def test_every_recipient_refused_and_exit_0_fails(self):
        mailer = (CONNECTED + "s.ehlo()\ns.mail('a@x.test')\ns.rcpt('partner@example.com')\n"
                  "s.quit()\n")
        status, r, output = judge_mailer(self, "relay-denied", mailer)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("every recipient was refused, yet the command reported success (exit 0)",
                      r["reason"])


class GreetingSlowEarlyTalker(unittest.TestCase):
    MAILER = (
        "import os, socket\n"
        "s = socket.create_connection((os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT'])))\n"
        "f = s.makefile('rb')\n"
        "def reply():\n"
        "    while True:\n"
        "        line = f.readline()\n"
        "        if line[3:4] != b'-': return line\n"
        "s.sendall(b'EHLO early.test\\r\\n')   # before the greeting\n"
        "reply(); reply()\n"
        "for c in (b'MAIL FROM:<a@x.test>', b'RCPT TO:<b@y.test>', b'DATA'):\n"
        "    s.sendall(c + b'\\r\\n'); reply()\n"
        "s.sendall(b'Subject: early\\r\\n\\r\\nhi\\r\\n.\\r\\n'); reply()\n"
        "s.sendall(b'QUIT\\r\\n'); reply()\n")

    def test_a_client_that_talks_first_fails(self):
        status, r, output = judge_mailer(self, "greeting-slow", self.MAILER, "--time-scale", TIME_SCALE)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("talked before the greeting", r["reason"])


class Greeting421Quit(unittest.TestCase):
    def test_delivering_after_the_421s_without_quit_fails(self):
        mailer = ("import os, smtplib, time, sys\n"
                  "for i in range(10):\n"
                  "    try:\n"
                  "        s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
                  "    except smtplib.SMTPConnectError:\n"
                  "        time.sleep(0.05); continue\n"
                  "    s.sendmail('a@x.test', ['b@y.test'], b'Subject: x\\r\\n\\r\\nx\\r\\n')\n"
                  "    %s; sys.exit(0)\n"
                  "sys.exit(1)\n")
        status, r, output = judge_mailer(self, "greeting-421", mailer % "s.quit()",
                                         "--time-scale", TIME_SCALE)
        self.assertEqual((status, r["verdict"]), (0, "PASS"), r["reason"] + output)
        status, r, output = judge_mailer(self, "greeting-421", mailer % "s.close()",
                                         "--time-scale", TIME_SCALE)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("quit: expected QUIT before closing", r["reason"])
        # The line the reason names is found in the report's transcript as SESSION:LINE.
        session, line = re.search(r"session (\d+) closed .* \(transcript line (\d+)\)",
                                  r["reason"]).groups()
        named = [l for l in r["transcript"].splitlines() if " %s:%s " % (session, line) in l]
        self.assertEqual(len(named), 1, r["transcript"])
        self.assertIn("*: message of", named[0])


# A client that reads the 220 to STARTTLS alone, drops the plaintext injected behind it and makes
# the handshake: what a mailer that is not fooled does. It then speaks over `t` (reading `f` with
# reply()).
STARTTLS_PAST_THE_INJECTION = (
    "import os, select, socket, ssl, sys\n"
    "s = socket.create_connection((os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT'])))\n"
    "def reply(f):\n"
    "    while True:\n"
    "        line = f.readline()\n"
    "        if line[3:4] != b'-': return int(line[:3])\n"
    "plain = s.makefile('rb', buffering=0)\n"
    "reply(plain); s.sendall(b'EHLO client.test\\r\\n'); reply(plain)\n"
    "s.sendall(b'STARTTLS\\r\\n')\n"
    "got = b''\n"
    "while not got.endswith(b'\\n'): got += s.recv(1)\n"
    "while select.select([s], [], [], 0.2)[0]: s.recv(4096)   # the injected plaintext\n"
    "ctx = ssl.create_default_context(); ctx.check_hostname = False\n"
    "ctx.verify_mode = ssl.CERT_NONE\n"
    "t = ctx.wrap_socket(s); f = t.makefile('rb')\n"
)


class StarttlsInjectionWithPipelining(unittest.TestCase):
    """PIPELINING is offered with the injection: a client that pipelines MAIL, RCPT and DATA after
    a proper EHLO over TLS is correct; one that goes on behind EHLO took the injection for its
    reply."""

    MAILER = STARTTLS_PAST_THE_INJECTION + (
        "WAIT = %s\n"
        "if WAIT:\n"
        "    t.sendall(b'EHLO client.test\\r\\n'); reply(f)\n"
        "    t.sendall(b'MAIL FROM:<a@x.test>\\r\\nRCPT TO:<b@y.test>\\r\\nDATA\\r\\n')\n"
        "    codes = [reply(f), reply(f), reply(f)]\n"
        "else:   # as if the injected lines had been the reply to EHLO\n"
        "    t.sendall(b'EHLO client.test\\r\\nMAIL FROM:<a@x.test>\\r\\n')\n"
        "    codes = [reply(f), reply(f)]\n"
        "    t.sendall(b'RCPT TO:<b@y.test>\\r\\nDATA\\r\\n'); codes += [reply(f), reply(f)]\n"
        "    codes = codes[1:]\n"
        "if codes != [250, 250, 354]: sys.exit('refused: %%r' %% codes)\n"
        "t.sendall(b'Subject: pipelined\\r\\n\\r\\nhi\\r\\n.\\r\\n')\n"
        "if reply(f) != 250: sys.exit('message refused')\n"
        "t.sendall(b'QUIT\\r\\n'); reply(f)\n")

    def test_pipelining_after_a_proper_ehlo_passes(self):
        status, r, output = judge_mailer(self, "starttls-injection", self.MAILER % "True")
        self.assertEqual((status, r["verdict"]), (0, "PASS"), r["reason"] + output)

    def test_going_on_behind_ehlo_fails(self):
        status, r, output = judge_mailer(self, "starttls-injection", self.MAILER % "False")
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("wait for the reply to EHLO before sending more (RFC 2920 3.1: EHLO ends a"
                      " pipelined group)", r["reason"])


class StarttlsInjectionMessageRefused(unittest.TestCase):
    """A client in step whose message is refused for what it holds (a line too long) is judged
    by line-too-long, not taken for one that read the injection as replies."""

    MAILER = STARTTLS_PAST_THE_INJECTION + (
        "t.sendall(b'EHLO client.test\\r\\n'); reply(f)\n"
        "for c in [b'MAIL FROM:<a@x.test>', b'RCPT TO:<b@y.test>', b'DATA']:\n"
        "    t.sendall(c + b'\\r\\n'); reply(f)\n"
        "t.sendall(b'Subject: long\\r\\n\\r\\n' + b'x' * 2000 + b'\\r\\n.\\r\\n')\n"
        "code = reply(f)\n"
        "t.sendall(b'QUIT\\r\\n'); reply(f)\n"
        "sys.exit('refused: %d' % code)\n")

    def test_a_refused_message_is_not_called_out_of_step(self):
        status, r, output = judge_mailer(self, "starttls-injection", self.MAILER)
        self.assertNotIn("out of step", r["reason"], output)
        self.assertEqual((status, r["verdict"]), (0, "PASS"), r["reason"] + output)


class StarttlsInjectionAuthOutOfStep(unittest.TestCase):
    """Out of step at AUTH (swaks with --auth-user): the client answers the 334 with what it
    meant for another reply, the server cannot decode it (501) and the client gives up. The
    refusal is the desync's doing, not a reason to pass."""

    MAILER = STARTTLS_PAST_THE_INJECTION + (
        "t.sendall(b'EHLO client.test\\r\\n'); reply(f)\n"
        "t.sendall(b'AUTH LOGIN\\r\\n'); reply(f)\n"
        "t.sendall(b'MAIL FROM:<a@x.test>\\r\\n')   # meant for another reply\n"
        "code = reply(f)\n"
        "t.sendall(b'QUIT\\r\\n'); reply(f)\n"
        "sys.exit('AUTH failed: %d' % code)\n")

    def test_a_refusal_of_what_the_server_could_not_decode_fails(self):
        status, r, output = judge_mailer(self, "starttls-injection", self.MAILER)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("got '501 5.5.2 Cannot decode the base64 response' to '****': the client"
                      " read the injected plaintext as replies and got out of step", r["reason"])


def one_message_then_quit(timeout, when_it_fails="s.close()"):
    """A mailer's code: one message with smtplib (a read timeout of `timeout` s, None for
    none), then QUIT, and `when_it_fails` if the goodbye goes wrong."""
    return ("import os, smtplib\n"
            "s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']), timeout=%r)\n"
            "s.sendmail('a@x.test', ['b@y.test'], b'Subject: x\\r\\n\\r\\nx\\r\\n')\n"
            "try:\n"
            "    s.quit()\n"
            "except (smtplib.SMTPException, OSError):\n"
            "    %s\n" % (timeout, when_it_fails))


class QuitVariantsResend(unittest.TestCase):
    def test_sending_again_after_a_broken_quit_is_named(self):
        # Takes the reset, the silence or the close at QUIT for a failed send, and sends again.
        mailer = ("import os, smtplib, socket\n"
                  "for attempt in range(3):\n"
                  "    s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']), timeout=1)\n"
                  "    s.sendmail('a@x.test', ['b@y.test'], b'Subject: x\\r\\n\\r\\nx\\r\\n')\n"
                  "    try:\n"
                  "        s.quit()\n"
                  "        break\n"
                  "    except (smtplib.SMTPException, OSError):\n"
                  "        s.close()\n")
        status, r, output = judge_mailer(self, "quit-variants", mailer, "--time-scale", TIME_SCALE)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertRegex(r["reason"], r"^check: expected the message once per run; run [1-3] "
                                      r"delivered it [2-9] times \(sessions [0-9]+, [0-9]+")
        self.assertIn("a broken QUIT does not undo that", r["reason"])

    def test_a_long_wait_for_the_missing_221_is_noted_on_the_pass(self):
        # Right at every goodbye, but it gives the unanswered QUIT 6 s; real seconds are said
        # whatever --time-scale is.
        mailer = one_message_then_quit(timeout=6)
        status, r, output = judge_mailer(self, "quit-variants", mailer, "--time-scale", TIME_SCALE)
        self.assertEqual((status, r["verdict"]), (0, "PASS"), output)
        self.assertRegex(r["reason"], r"; not judged: run 2 waited [67] s for the 221 that never "
                                      r"came before it closed; the message was accepted")
        self.assertNotIn("run 1", r["reason"])
        self.assertNotIn("run 3", r["reason"])

    def test_a_run_that_reported_failure_says_how_long_it_waited(self):
        mailer = one_message_then_quit(timeout=1, when_it_fails="raise SystemExit(1)")
        status, r, output = judge_mailer(self, "quit-variants", mailer, "--time-scale", TIME_SCALE)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("run 2 (QUIT never answered) delivered the message once and exited 1 after "
                      "waiting 1 s for the 221", r["reason"])

    def test_a_check_only_connection_before_each_message_moves_the_rotation(self):
        # Two QUITs a run (a verify() connection, then the message's): the goodbyes are the
        # server's rotation over QUITs, not one per run, and a close without 221 is no hang.
        mailer = ("import os, smtplib\n"
                  "h, p = os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT'])\n"
                  "def bye(c):\n"
                  "    try:\n"
                  "        c.quit()\n"
                  "    except (smtplib.SMTPException, OSError):\n"
                  "        c.close()\n"
                  "v = smtplib.SMTP(h, p, timeout=2); v.ehlo(); bye(v)\n"
                  "s = smtplib.SMTP(h, p, timeout=2)\n"
                  "s.sendmail('a@x.test', ['b@y.test'], b'Subject: x\\r\\n\\r\\nx\\r\\n')\n"
                  "bye(s)\n")
        status, r, output = judge_mailer(self, "quit-variants", mailer, "--time-scale", TIME_SCALE)
        self.assertEqual((status, r["verdict"]), (0, "PASS"), r["reason"] + output)

    def test_a_mailer_let_go_by_the_idle_timeout_never_gave_up(self):
        # No timeout of its own: the server's idle timeout (2 s here) ended the hung QUIT.
        mailer = one_message_then_quit(timeout=None)
        status, r, output = judge_mailer(self, "quit-variants", mailer, "--time-scale", TIME_SCALE,
                                         "--set", "idle_timeout=2")
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertRegex(r["reason"], r"^check: run 2 \(QUIT never answered\) never gave up waiting"
                                      r" for the 221: the server closed the connection at its idle"
                                      r" timeout, 2 s after QUIT \(session 00000[0-9a-f]\)")
        self.assertIn("the server closed the hung connection: the idle timeout (2 s) passed with "
                      "the client still waiting", r["transcript"])


# A mailer that connects, QUITs at once and reports a failure: it meets no scenario's fault.
STOPS_AT_ONCE = CONNECTED + "s.quit()\nraise SystemExit(1)\n"


class SizeLimitMistakes(unittest.TestCase):
    def test_sending_over_the_limit_and_reporting_success_are_both_said(self):
        # MAIL without SIZE=, a message over 2,000 octets, and exit 0 after its 552.
        mailer = CONNECTED + ("s.ehlo(); s.mail('a@x.test'); s.rcpt('b@y.test')\n"
                              "try:\n"
                              "    s.data(b'Subject: big\\r\\n\\r\\n' + b'x' * 3000 + b'\\r\\n')\n"
                              "except smtplib.SMTPException:\n"
                              "    pass\n"
                              "s.quit()\n")
        status, r, output = judge_mailer(self, "size-limit", mailer)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertRegex(r["reason"], r"^check: expected a message over the advertised SIZE 2000 "
                                      r"not to be sent; session 000001 sent it anyway and got "
                                      r"'552 [^']*'; and the message was not delivered \(over the "
                                      r"SIZE limit\), but the command reported success$")

    def test_a_mailer_that_sent_no_mail_did_not_meet_the_limit(self):
        status, r, output = judge_mailer(self, "size-limit", STOPS_AT_ONCE)
        self.assertEqual((status, r["verdict"]), (0, "PASS"), output)
        self.assertIn("not exercised: the client sent no MAIL", r["reason"])

    def test_a_mailer_that_heeded_size_is_not_called_unexercised(self):
        # careful.py: EHLO, SIZE 2000 against its 2125 octets, no MAIL, exit 1.
        mailer = CONNECTED + "s.ehlo()\ns.quit()\nraise SystemExit(1)\n"
        status, r, output = judge_mailer(self, "size-limit", mailer)
        self.assertEqual((status, r["verdict"]), (0, "PASS"), output)
        self.assertIn("not judged: the client sent no MAIL after the EHLO reply offered SIZE 2000: "
                      "it refused a larger message by itself", r["reason"])
        self.assertNotIn("not exercised", r["reason"])


class NotExercisedBeforeRcpt(unittest.TestCase):
    def test_all_recipients_rejected_without_any_rcpt_is_not_exercised(self):
        status, r, output = judge_mailer(self, "all-recipients-rejected",
                                         STOPS_AT_ONCE)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertEqual(r["reason"], "check: not exercised: the client sent no RCPT, so no "
                                      "recipient was refused")

    def test_a_mailer_that_stopped_before_any_refusal_is_not_exercised_in_partial_recipients(self):
        # Stopped before RCPT (here, before MAIL): no refusal to quote, nothing put to the test.
        status, r, output = judge_mailer(self, "partial-recipients",
                                         STOPS_AT_ONCE)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertEqual(r["reason"], "check: not exercised: no recipient was refused (the 2nd of "
                                      "a transaction is), and no message was delivered")


class GaveUpWaiting(unittest.TestCase):
    def test_a_timeout_shorter_than_the_rfc_asks_is_the_headline(self):
        # A 1 s timeout against a greeting held 40 s: the missing QUIT and delivery are how it
        # ended; the wait it cut short is what the reason leads with.
        mailer = ("import os, smtplib\n"
                  "s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']), timeout=1)\n")
        status, r, output = judge_mailer(self, "greeting-slow", mailer)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertRegex(r["reason"], r"^the client gave up waiting: it closed session 000001 "
                                      r"1\.[0-2] s into the wait for the greeting, which the "
                                      r"scenario held back; RFC 5321 4\.5\.3\.2\.1 has a client "
                                      r"wait 5 minutes for it; exit: ")
        # It owed no QUIT: the 220 the transcript shows where the delay began never went out.
        quit = next(c for c in r["checks"] if c["name"] == "quit")
        self.assertTrue(quit["passed"], quit)


    def test_texts_sent_again_after_giving_up_on_the_final_reply_are_counted_as_copies(self):
        # A timeout shorter than slow-final-reply's hold, and the whole message sent again each
        # time: what a slow server would deliver three times over.
        mailer = ("import os, smtplib, sys\n"
                  "for attempt in range(3):\n"
                  "    try:\n"
                  "        s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']),"
                  " timeout=0.5)\n"
                  "        s.sendmail('a@x.test', ['b@y.test'], 'Subject: t\\r\\n\\r\\nhi\\r\\n')\n"
                  "        s.quit()\n"
                  "        sys.exit(0)\n"
                  "    except (OSError, smtplib.SMTPException):\n"
                  "        s.close()\n"
                  "sys.exit(1)\n")
        status, r, output = judge_mailer(self, "slow-final-reply", mailer, "--time-scale", "0.1")
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertRegex(r["reason"], r"^the client gave up waiting: it closed session 000001 "
                                      r"0\.[5-9] s into the wait for the reply to '<end of "
                                      r"data>', .*; it sent the message text 3 times in all, each "
                                      r"left without a 250: a server that was only slow would "
                                      r"deliver 3 copies; exit: ")
        delivered = next(c for c in r["checks"] if c["name"] == "delivered")
        self.assertIn("; 3 more texts came in full but no 250 to them reached the client",
                      delivered["detail"])


class LongSessions(unittest.TestCase):
    """A pooled sender's session runs to thousands of lines: the checks see all of them, the
    report shows its start and end."""

    def test_a_refusal_in_the_middle_of_a_long_session_is_judged(self):
        # 150 messages, one to a domain relay-denied refuses, 100 more; then the refused one
        # again on a new connection: the retry relay-denied exists to catch.
        mailer = ("import os, smtplib\n"
                  "def connect():\n"
                  "    return smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
                  "s = connect()\n"
                  "rcpts = ['u%d@smtpfault.test' % i for i in range(150)] + ['bob@example.com']\n"
                  "rcpts += ['v%d@smtpfault.test' % i for i in range(100)]\n"
                  "for r in rcpts:\n"
                  "    try:\n"
                  "        s.sendmail('a@smtpfault.test', [r], b'Subject: x\\r\\n\\r\\nx\\r\\n')\n"
                  "    except smtplib.SMTPRecipientsRefused:\n"
                  "        pass\n"
                  "s.quit()\n"
                  "s = connect()\n"
                  "try:\n"
                  "    s.sendmail('a@smtpfault.test', ['bob@example.com'], b'Subject: x\\r\\n\\r\\nx\\r\\n')\n"
                  "except smtplib.SMTPRecipientsRefused:\n"
                  "    pass\n"
                  "s.quit()\n")
        folder = scratch_folder(self)
        junit = os.path.join(folder, "report.xml")
        status, r, output = judge_mailer(self, "relay-denied", mailer, "--junit", junit)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertRegex(r["reason"], r"^no_retry_after_5xx: expected no retry after '554 5\.7\.1 "
                                      r"<bob@example\.com>: Relay access denied' \(session "
                                      r"[0-9]+, transcript line [0-9]{4}\)")
        with open(junit, encoding="utf-8") as f:
            report = f.read()
        self.assertRegex(report, r"\.\.\. [0-9]+ lines of session [0-9]+ not shown here "
                                 r"\(the checks saw them\)")


class LineLengthByTheRfc(unittest.TestCase):
    """line_length judges the mailer by RFC 5321's 1000 octets, also when the server was told
    to take longer lines (so that the message gets through and can be looked at)."""

    def test_a_long_line_the_server_took_still_fails_the_check(self):
        folder = scratch_folder(self)
        scenario = write_file(folder, "lines.lua", "expect { line_length = true }\n")
        mailer = CONNECTED + ("s.sendmail('a@x.test', ['b@x.test'], "
                              "b'Subject: long\\r\\n\\r\\n' + b'y' * %d + b'\\r\\n')\n"
                              "s.quit()\n")
        for limit in ("0", "2000"):
            json_path = os.path.join(folder, "report.json")
            status, out, err = run_test(["--scenario", scenario, "--set",
                                         "limits.text_line=" + limit, "--json", json_path, "--",
                                         PYTHON, "-c", mailer % 1500], timeout=60)
            r = verdicts(json_path)["lines"]
            self.assertEqual((status, r["verdict"]), (1, "FAIL"), out + err)
            self.assertRegex(r["reason"], r"^line_length: expected no lines over RFC 5321's "
                                          r"1000 octets; message \S+ of session [0-9]+ has one")
            status, out, err = run_test(["--scenario", scenario, "--set",
                                         "limits.text_line=" + limit, "--json", json_path, "--",
                                         PYTHON, "-c", mailer % 998], timeout=60)
            self.assertEqual((status, verdicts(json_path)["lines"]["verdict"]), (0, "PASS"),
                             out + err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
