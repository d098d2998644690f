"""STARTTLS, certificate, AUTH and policy faults of the scenario API, observed on the wire from
a real socket (and through openssl s_client), one session per case: `EHLO <fault>` selects the
fault (scenarios/fault_actions.lua).
"""

import os
import smtplib
import socket
import ssl
import subprocess
import tempfile
import unittest

from fault_case import (EHLO_KEYWORDS, MAIL, NOOP_OK_AFTER_TLS, READY_TLS, TEST_CA, FaultCase,
                        auth_plain, ehlo_bytes, read_bytes, session_id_of)
from smtpfault_server import SmtpfaultServer, server_with_scenario, write_file


class StartTlsTest(FaultCase):
    def verifying_context(self):
        return ssl.create_default_context(cafile=TEST_CA)

    def handshake(self, fault, ctx=None):
        c = self.session(fault)
        c.cmd("STARTTLS", expect=220)
        self.assertEqual(c.buf, b"")
        ctx = ctx or self.verifying_context()
        c.sock = ctx.wrap_socket(c.sock, server_hostname="localhost")   # closed by cleanup
        return c, c.sock

    def verify_error(self, fault):
        with self.assertRaises(ssl.SSLCertVerificationError) as cm:
            self.handshake(fault)
        return str(cm.exception)

    def test_not_advertised(self):
        c = self.server.connect()
        self.addCleanup(c.close)
        c.send("EHLO hide-starttls\r\n")
        keywords = [k for k in EHLO_KEYWORDS if k != "STARTTLS"]
        expected = ehlo_bytes("hide-starttls", keywords)
        self.assertEqual(read_bytes(c, len(expected)), expected)
        self.exact(c, "STARTTLS", b"502 5.5.1 STARTTLS not available\r\n")

    def test_hidden_from_another_hook_takes_effect_at_the_next_ehlo_and_says_so(self):
        c = self.session("hide-later")   # on_mail returns smtp.hide("STARTTLS")
        c.cmd(MAIL, expect=250)
        sid = session_id_of(self.server, c)
        self.server.wait_for_line(r" %s \*: the EHLO keywords change from the next EHLO on" % sid)
        c.send("EHLO hide-later\r\n")
        keywords = [k for k in EHLO_KEYWORDS if k != "STARTTLS"]
        expected = ehlo_bytes("hide-later", keywords)
        self.assertEqual(read_bytes(c, len(expected)), expected)

    def test_454(self):
        c = self.session("tls-454")
        self.exact(c, "STARTTLS", b"454 4.7.0 TLS not available right now\r\n")
        c.cmd(MAIL, expect=250)   # still a plaintext session

    def test_220_then_close(self):
        self.closes_after(self.session("tls-close"), "STARTTLS", READY_TLS)

    def test_handshake_abort(self):
        c = self.session("tls-abort")
        c.cmd("STARTTLS", expect=220)
        ctx = self.verifying_context()
        with self.assertRaises((ssl.SSLError, ConnectionError)):
            ctx.wrap_socket(c.sock, server_hostname="localhost")

    def test_handshake_abort_seen_by_openssl_s_client(self):
        run = subprocess.run(
            ["openssl", "s_client", "-starttls", "smtp", "-name", "tls-abort",
             "-connect", "%s:%d" % (self.server.host, self.server.port), "-CAfile", TEST_CA],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
        out = (run.stdout + run.stderr).decode("utf-8", "replace")
        self.assertNotEqual(run.returncode, 0, out)
        self.assertIn("no peer certificate available", out)
        self.assertIn("Cipher is (NONE)", out)

    def test_plaintext_injected_after_220(self):
        c = self.session("tls-inject")
        c.send("STARTTLS\r\n")
        c.sock.settimeout(5.0)
        first = c.sock.recv(65536)   # one read: both arrived in the same segment
        self.assertEqual(first, READY_TLS + b"250 injected\r\n")
        c.sock = self.verifying_context().wrap_socket(c.sock, server_hostname="localhost")
        c.send("NOOP\r\n")
        self.assertEqual(read_bytes(c, len(NOOP_OK_AFTER_TLS)), NOOP_OK_AFTER_TLS)

    def test_normal_certificate_verifies(self):
        c, tls = self.handshake("cert-normal")
        self.assertIn(tls.version(), ("TLSv1.2", "TLSv1.3"))
        self.assertEqual(dict(x[0] for x in tls.getpeercert()["issuer"])["commonName"],
                         self.ca_common_name())
        c.send("NOOP\r\n")
        self.assertEqual(read_bytes(c, len(NOOP_OK_AFTER_TLS)), NOOP_OK_AFTER_TLS)

    def test_certificate_expired(self):
        self.assertIn("certificate has expired", self.verify_error("cert-expired"))

    def test_certificate_wrong_host(self):
        self.assertRegex(self.verify_error("cert-wrong-host"),
                         r"Hostname mismatch|IP address mismatch|doesn't match")

    def test_certificate_self_signed(self):
        self.assertRegex(self.verify_error("cert-self-signed"),
                         r"self-signed certificate|self signed certificate")

    def test_certificate_unknown_ca_fails_verification(self):
        err = self.verify_error("cert-unknown-ca")
        self.assertNotIn("expired", err)
        self.assertNotIn("mismatch", err)

    def test_certificate_unknown_ca_message(self):
        self.assertIn("unable to get local issuer certificate",
                      self.verify_error("cert-unknown-ca"))

    @staticmethod
    def ca_common_name():
        info = ssl._ssl._test_decode_cert(TEST_CA)
        return dict(x[0] for x in info["subject"])["commonName"]


class ImplicitTlsTest(unittest.TestCase):
    """On the implicit-TLS port the handshake comes first: on_starttls is asked before it."""

    def test_on_starttls_chooses_the_certificate_and_can_abort_the_handshake(self):
        with tempfile.TemporaryDirectory() as tmp:
            scenario = write_file(tmp, "implicit.lua",
                "local n = 0\n"
                "function on_starttls(s)\n"
                "  n = n + 1\n"
                "  if n == 1 then return smtp.certificate('expired') end\n"
                "  if n == 2 then return smtp.starttls('abort_handshake') end\n"
                "  if n == 3 then return smtp.reply(454, '4.7.0', 'ignored here') end\n"
                "  if n == 4 then error('broken on purpose') end\n"
                "end\n")
            server = SmtpfaultServer("--scenario", scenario).start()
            try:
                ctx = ssl.create_default_context(cafile=TEST_CA)

                def connect():
                    sock = socket.create_connection((server.host, server.tls_port), timeout=5)
                    return ctx.wrap_socket(sock, server_hostname="localhost")

                with self.assertRaises(ssl.SSLCertVerificationError) as e:
                    connect()
                self.assertIn("certificate has expired", str(e.exception))
                with self.assertRaises((ssl.SSLError, ConnectionError)):
                    connect()
                # A reply has no STARTTLS to answer: the session goes on as usual.
                with connect() as tls:
                    self.assertTrue(tls.recv(100).startswith(b"220 "))
                server.wait_for_line("fault before the implicit TLS handshake: certificate expired")
                server.wait_for_line("reply 454 has nothing to act on here")
                # A hook that fails there answers as a failed hook does everywhere: 451 4.3.0.
                with connect() as tls:
                    self.assertEqual(tls.recv(100),
                                     b"451 4.3.0 Requested action aborted: scenario error\r\n")
                server.wait_for_line(r"scenario error: .*implicit\.lua:7: broken on purpose")
            finally:
                server.stop(expect_exit=0)
                server.cleanup()

    def test_s_implicit_tls_tells_the_smtps_port_from_starttls(self):
        server = server_with_scenario(self,
            "function on_starttls(s)\n"
            "  smtp.log('starttls asked: implicit_tls=' .. tostring(s.implicit_tls))\n"
            "end\n")
        ctx = ssl.create_default_context(cafile=TEST_CA)
        sock = socket.create_connection((server.host, server.tls_port), timeout=5)
        with ctx.wrap_socket(sock, server_hostname="localhost") as tls:
            self.assertTrue(tls.recv(100).startswith(b"220 "))
        server.wait_for_line("starttls asked: implicit_tls=true")
        with smtplib.SMTP(server.host, server.port, timeout=5) as c:
            c.starttls(context=ctx)
        server.wait_for_line("starttls asked: implicit_tls=false")


class AuthTest(FaultCase):
    def test_535(self):
        self.exact(self.session("auth"), auth_plain("u535"),
                   b"535 5.7.8 Authentication credentials invalid\r\n")

    def test_534(self):
        self.exact(self.session("auth"), auth_plain("u534"),
                   b"534 5.7.9 Authentication mechanism is too weak\r\n")

    def test_538(self):
        self.exact(self.session("auth"), auth_plain("u538"),
                   b"538 5.7.11 Encryption required for requested authentication mechanism\r\n")

    def test_454(self):
        self.exact(self.session("auth"), auth_plain("u454"),
                   b"454 4.7.0 Temporary authentication failure\r\n")

    def test_other_users_authenticate(self):
        self.exact(self.session("auth"), auth_plain("alice"),
                   b"235 2.7.0 Authentication successful\r\n")

    def test_mechanism_not_advertised(self):
        c = self.server.connect()
        self.addCleanup(c.close)
        c.send("EHLO auth-plain-only\r\n")
        expected = ehlo_bytes("auth-plain-only", ["AUTH PLAIN"])
        self.assertEqual(read_bytes(c, len(expected)), expected)
        # A mechanism left off the AUTH line is refused as one the server does not know, and
        # the client can go on with the one offered. Unlisted extensions are off: no
        # ENHANCEDSTATUSCODES, so no enhanced code.
        for mechanism in ("AUTH LOGIN", "AUTH CRAM-MD5", "auth xoauth2 dG9rZW4="):
            self.exact(c, mechanism, b"504 Mechanism not advertised\r\n", noop=b"250 Ok\r\n")
        self.exact(c, auth_plain("alice"), b"235 Authentication successful\r\n",
                   noop=b"250 Ok\r\n")

    def challenge(self, fault, expected):
        c = self.session(fault)
        c.send("AUTH LOGIN\r\n")
        self.assertEqual(read_bytes(c, len(expected)), expected)
        c.cmd("*", expect=501)   # the client cancels; the session goes on
        c.cmd("NOOP", expect=250)

    def test_empty_challenge(self):
        self.challenge("chal-empty", b"334 \r\n")

    def test_huge_challenge(self):
        self.challenge("chal-huge", b"334 " + b"A" * 20000 + b"\r\n")

    def test_invalid_challenge(self):
        self.challenge("chal-bad", b"334 !!!notbase64\r\n")


class ScenarioChallengeTest(unittest.TestCase):
    """smtp.challenge: the challenge is the one a CRAM-MD5 digest is checked against, and it
    belongs to one AUTH: never shown in a later one."""

    SCENARIO = (
        'function on_command(s, cmd)\n'
        '  if cmd.verb == "AUTH" and cmd.argument:upper():find("^CRAM") then\n'
        '    return smtp.challenge("PDEyMzQ1QHNtdHBmYXVsdC50ZXN0Pg==")\n'   # <12345@smtpfault.test>
        '  end\n'
        '  if cmd.verb == "AUTH" and cmd.argument:upper():find("^PLAIN") then\n'
        '    return smtp.challenge("UExBSU4=")\n'
        '  end\n'
        'end\n'
        'function on_rcpt(s, rcpt) return smtp.challenge("RlJPTS1SQ1BU") end\n')

    def setUp(self):
        self.server = server_with_scenario(self, self.SCENARIO, "--set", "auth.users=alice:secret")

    def test_cram_md5_is_checked_against_the_scenarios_challenge(self):
        with smtplib.SMTP("127.0.0.1", self.server.port, timeout=10) as s:
            s.ehlo()
            s.user, s.password = "alice", "secret"
            code, _ = s.auth("CRAM-MD5", s.auth_cram_md5)
            self.assertEqual(code, 235)
        with smtplib.SMTP("127.0.0.1", self.server.port, timeout=10) as s:
            s.ehlo()
            s.user, s.password = "alice", "wrong"
            with self.assertRaises(smtplib.SMTPAuthenticationError):
                s.auth("CRAM-MD5", s.auth_cram_md5)

    def test_a_challenge_not_sent_does_not_surface_in_a_later_auth(self):
        c = self.server.connect()
        self.addCleanup(c.close)
        c.ehlo()
        # An initial response: the PLAIN challenge is not sent, and is gone with this AUTH.
        c.cmd("AUTH PLAIN AGFsaWNlAHdyb25n", expect=535)
        self.assertEqual(c.cmd("AUTH LOGIN", expect=334).text, "VXNlcm5hbWU6")
        c.cmd("*", expect=501)
        # One made at RCPT waits for the next AUTH, and is used there once.
        c.cmd("MAIL FROM:<a@example.com>", expect=250)
        c.cmd("RCPT TO:<b@example.com>", expect=250)
        c.cmd("RSET", expect=250)
        self.assertEqual(c.cmd("AUTH LOGIN", expect=334).text, "RlJPTS1SQ1BU")
        c.cmd("*", expect=501)
        self.assertEqual(c.cmd("AUTH LOGIN", expect=334).text, "VXNlcm5hbWU6")


class WaitingFaultsFromOnConnectTest(unittest.TestCase):
    """EHLO keywords chosen at the greeting hold from the first EHLO on."""

    def test_hide_and_extensions_returned_by_on_connect(self):
        server = server_with_scenario(
            self, 'function on_connect(s)\n'
                  '  if smtp.count("connections") == 1 then return smtp.hide("AUTH", "VRFY") end\n'
                  '  return smtp.extensions { "PIPELINING" }\n'
                  'end\n')
        with server.connect() as c:
            keywords = [line.split()[0] for line in c.ehlo().lines[1:]]
            self.assertNotIn("AUTH", keywords)
            self.assertIn("STARTTLS", keywords)
            c.cmd("AUTH PLAIN AGEAYg==", expect=502)
            c.cmd("VRFY postmaster", expect=502)
        with server.connect() as c:
            keywords = [line.split()[0] for line in c.ehlo().lines[1:]]
            self.assertEqual(keywords, ["PIPELINING"])
            c.cmd("AUTH PLAIN AGEAYg==", expect=502)


class CommandHookShapingTest(unittest.TestCase):
    """An on_command action that leaves the reply alone (a delay) lets the specific hook choose
    the reply, and shapes it."""

    def test_a_delay_from_on_command_and_a_refusal_from_on_rcpt(self):
        server = server_with_scenario(
            self, 'function on_command(s, cmd) return smtp.delay(0.3) end\n'
                  'function on_rcpt(s, rcpt)\n'
                  '  if rcpt.address:find("^nobody@") then return smtp.reply(550, "5.1.1", "No such user") end\n'
                  'end\n')
        import time
        with server.connect() as c:
            c.ehlo()
            c.cmd("MAIL FROM:<a@example.com>", expect=250)
            for address, code in (("bob", 250), ("nobody", 550)):
                start = time.monotonic()
                r = c.cmd("RCPT TO:<%s@example.com>" % address, expect=code)
                self.assertGreaterEqual(time.monotonic() - start, 0.28, address)
            self.assertEqual(r.text, "5.1.1 No such user")


class AdvertisedSizeTest(unittest.TestCase):
    """A SIZE line in smtp.extensions is the limit the session keeps to."""

    def test_the_advertised_size_is_enforced(self):
        server = server_with_scenario(
            self, 'function on_ehlo(s, name) return smtp.extensions { "PIPELINING", "SIZE 100" } end\n')
        with server.connect() as c:
            self.assertEqual(c.ehlo().lines[1:], ["PIPELINING", "SIZE 100"])
            c.cmd("MAIL FROM:<a@example.com> SIZE=500", expect=552)
            c.cmd("MAIL FROM:<a@example.com> SIZE=80", expect=250)
            c.cmd("RCPT TO:<b@example.com>", expect=250)
            c.cmd("DATA", expect=354)
            c.send(b"Subject: too big\r\n\r\n" + b"x" * 300 + b"\r\n.\r\n")
            c.expect(552)
        self.assertEqual(server.message_ids(), [])


class PolicyTest(FaultCase):
    def test_relay_denied_by_recipient_domain(self):
        c = self.session("relay-domain")
        c.cmd(MAIL, expect=250)
        c.cmd("RCPT TO:<rcpt@example.com>", expect=250)
        c.cmd("RCPT TO:<rcpt@mx.example.com>", expect=250)
        self.exact(c, "RCPT TO:<rcpt@example.org>", b"554 5.7.1 Relay access denied\r\n")

    def test_relay_denied_by_client_network(self):
        c = self.session("relay-network")
        c.cmd(MAIL, expect=250)
        self.exact(c, "RCPT TO:<rcpt@example.com>",
                   b"554 5.7.1 Relaying denied from your network\r\n")

    def test_size_552_at_mail(self):
        c = self.session("size-limit")
        self.exact(c, MAIL + " SIZE=5000", b"552 5.3.4 Message size exceeds fixed limit\r\n")
        c.cmd(MAIL + " SIZE=500", expect=250)

    def test_size_552_at_end_of_data(self):
        c = self.session("size-at-dot")
        before = self.server.message_ids()
        c.cmd(MAIL, expect=250)
        c.cmd("RCPT TO:<rcpt@example.com>", expect=250)
        c.cmd("DATA", expect=354)
        self.exact(c, "Subject: big\r\n\r\ntoo big\r\n.",
                   b"552 5.3.4 Message too big for this mailbox\r\n")
        self.assertEqual(self.server.message_ids(), before)

    def test_too_many_recipients_452(self):
        c = self.session("rcpt-limit")
        c.cmd(MAIL, expect=250)
        c.cmd("RCPT TO:<one@example.com>", expect=250)
        c.cmd("RCPT TO:<two@example.com>", expect=250)
        self.exact(c, "RCPT TO:<three@example.com>", b"452 4.5.3 Too many recipients\r\n")
        # The refused recipient was not added.
        c.cmd("DATA", expect=354)
        c.send(b"Subject: two\r\n\r\nonly two\r\n.\r\n")
        msg = self.server.message(c.expect(250).queued_id)
        self.assertEqual(msg.recipients, ["one@example.com", "two@example.com"])

    def test_hidden_extensions(self):
        c = self.server.connect()
        self.addCleanup(c.close)
        c.send("EHLO hide-pipelining-size\r\n")
        keywords = [k for k in EHLO_KEYWORDS if k.split()[0] not in ("PIPELINING", "SIZE")]
        expected = ehlo_bytes("hide-pipelining-size", keywords)
        self.assertEqual(read_bytes(c, len(expected)), expected)
        # Hidden means off: SIZE= is now an unknown parameter.
        self.exact(c, MAIL + " SIZE=100", b"555 5.5.4 Unsupported parameter SIZE\r\n")

    def test_hidden_commands(self):
        c = self.server.connect()
        self.addCleanup(c.close)
        c.send("EHLO hide-vrfy-help\r\n")
        expected = ehlo_bytes("hide-vrfy-help", EHLO_KEYWORDS)
        self.assertEqual(read_bytes(c, len(expected)), expected, "no EHLO keyword names them")
        self.exact(c, "VRFY postmaster", b"502 5.5.1 VRFY not implemented\r\n")
        self.exact(c, "HELP", b"502 5.5.1 HELP not implemented\r\n")
        # VRFY hidden alone: HELP answers and no longer lists it.
        c = self.server.connect()
        self.addCleanup(c.close)
        c.send("EHLO hide-vrfy\r\n")
        read_bytes(c, len(ehlo_bytes("hide-vrfy", EHLO_KEYWORDS)))
        c.send("HELP\r\n")
        reply = c.reply()
        self.assertEqual(reply.code, 214)
        self.assertIn("RSET NOOP QUIT HELP", reply.text)

    def test_default_ehlo_for_reference(self):
        c = self.server.connect()
        self.addCleanup(c.close)
        c.send("EHLO plain\r\n")
        expected = ehlo_bytes("plain", EHLO_KEYWORDS)
        self.assertEqual(read_bytes(c, len(expected)), expected)


class EndingWithADelayTest(unittest.TestCase):
    """:delay() chained on a close or a reset without a reply holds the ending back, as it holds
    back a reply."""

    def closed_after(self, action):
        import time
        srv = server_with_scenario(self, "function on_rcpt(s, rcpt)\n  return %s\nend\n" % action)
        with srv.connect() as c:
            c.ehlo()
            c.cmd("MAIL FROM:<a@x.test>", expect=250)
            c.send(b"RCPT TO:<b@x.test>\r\n")
            start = time.monotonic()
            self.assertTrue(c.closed_by_peer(timeout=10))
            return time.monotonic() - start

    def test_a_close_and_a_reset_come_late(self):
        self.assertLess(self.closed_after("smtp.close()"), 0.5)
        self.assertGreaterEqual(self.closed_after("smtp.close():delay(1)"), 0.9)
        self.assertGreaterEqual(self.closed_after("smtp.reset():delay(1)"), 0.9)


class EarlyTalkerInHooksTest(unittest.TestCase):
    """s.early_talker: a client that speaks while the greeting is held back can be refused from
    a hook, the way Postfix's postscreen refuses pregreet clients."""

    def test_a_delayed_greeting_then_554_to_the_early_talker(self):
        server = server_with_scenario(
            self, 'function on_connect(s) return smtp.delay(0.4) end\n'
                  'function on_ehlo(s, name)\n'
                  '  if s.early_talker then return smtp.reply(554, "5.7.1", "Talked first") end\n'
                  'end\n')
        with server.connect(greeting=False) as c:
            c.send("EHLO early.example\r\n")
            c.expect(220)
            self.assertEqual(c.expect(554).text, "5.7.1 Talked first")
        with server.connect() as c:
            c.cmd("EHLO polite.example", expect=250)

    def test_on_connect_sleeps_then_looks(self):
        server = server_with_scenario(
            self, 'function on_connect(s)\n'
                  '  smtp.sleep(0.4)\n'
                  '  if s.early_talker then return smtp.reply(554, "5.7.1", "Pregreet") end\n'
                  'end\n')
        with server.connect(greeting=False) as c:
            c.send("EHLO early.example\r\n")
            self.assertEqual(c.expect(554).text, "5.7.1 Pregreet")
        with server.connect() as c:
            c.cmd("EHLO polite.example", expect=250)


class FaultCertificatesWithOwnCertificate(unittest.TestCase):
    """With a certificate of one's own, the faults carry its names: a client that trusts the test
    CA too meets the fault alone, an expired certificate and not also a wrong host."""

    def test_an_expired_certificate_names_the_hosts_of_ones_own(self):
        with tempfile.TemporaryDirectory() as tmp:
            key, cert = os.path.join(tmp, "own.key"), os.path.join(tmp, "own.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                            key, "-out", cert, "-subj", "/CN=mine.test", "-days", "2",
                            "-addext", "subjectAltName=DNS:mine.test,IP:10.9.8.7"],
                           check=True, capture_output=True, timeout=60)
            scenario = write_file(tmp, "expired.lua",
                                  "function on_starttls(s) return smtp.certificate('expired') end\n")
            server = SmtpfaultServer("--tls-cert", cert, "--tls-key", key,
                                     "--scenario", scenario).start()
            try:
                ctx = ssl.create_default_context(cafile=TEST_CA)
                ctx.load_verify_locations(cafile=cert)
                sock = socket.create_connection((server.host, server.tls_port), timeout=5)
                with self.assertRaises(ssl.SSLCertVerificationError) as e:
                    ctx.wrap_socket(sock, server_hostname="mine.test")
                sock.close()
                self.assertIn("certificate has expired", str(e.exception))
            finally:
                server.stop()
                server.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
