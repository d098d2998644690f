"""Every fault action of the scenario API, observed on the wire from a real socket.

The scenario (scenarios/fault_actions.lua) picks the fault from the EHLO name, so each case
opens its own session: `EHLO <fault>` and then the command the fault applies to. Replies are
checked byte for byte; timing faults within generous bounds; segmentation through the kernel's
own count of data segments received (TCP_INFO), not through sleeps.
"""

import base64
import os
import shutil
import socket
import ssl
import struct
import subprocess
import time
import unittest

from smtpfault_server import ServerTestCase, SmtpfaultServer

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS = os.path.join(HERE, "scenarios")
FAULTS = os.path.join(SCENARIOS, "fault_actions.lua")
TEST_CA = os.path.join(HERE, "..", "..", "fixtures", "certs", "test-ca.pem")

SENDER = "sender@example.com"
MAIL = "MAIL FROM:<%s>" % SENDER
MAIL_OK = b"250 2.1.0 Sender <sender@example.com> OK\r\n"
NOOP_OK = b"250 2.0.0 Ok\r\n"
READY_TLS = b"220 2.0.0 Ready to start TLS\r\n"
# RFC 3207 4.2: after the handshake the client knows no extensions until its next EHLO, so the
# server leaves out enhanced status codes (RFC 2034).
NOOP_OK_AFTER_TLS = b"250 Ok\r\n"
EHLO_KEYWORDS = ["PIPELINING", "SIZE 10485760", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES",
                 "CHUNKING", "DSN", "STARTTLS", "AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2"]


# --- reading helpers: every wait has a deadline ---------------------------------------------

def read_bytes(c, n, timeout=5.0):
    """Exactly n octets (fewer only if the server closes first)."""
    deadline = time.monotonic() + timeout
    while len(c.buf) < n:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("only %d of %d octets within %.1fs: %r"
                                 % (len(c.buf), n, timeout, c.buf[:200]))
        c.sock.settimeout(remaining)
        chunk = c.sock.recv(65536)
        if not chunk:
            break
        c.buf += chunk
    data, c.buf = c.buf[:n], c.buf[n:]
    return data


def read_to_eof(c, timeout=5.0):
    """Everything until the server closes the connection (a FIN, not a reset)."""
    deadline = time.monotonic() + timeout
    data, c.buf = c.buf, b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("the server did not close within %.1fs; got %r"
                                 % (timeout, data[:200]))
        c.sock.settimeout(remaining)
        chunk = c.sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def timed_chunks(c, until, timeout=5.0):
    """recv() until `until` octets arrived; returns [(seconds since start, chunk)]."""
    start = time.monotonic()
    chunks, total = [], 0
    while total < until:
        remaining = start + timeout - time.monotonic()
        if remaining <= 0:
            raise AssertionError("only %d of %d octets within %.1fs" % (total, until, timeout))
        c.sock.settimeout(remaining)
        chunk = c.sock.recv(65536)
        if not chunk:
            raise AssertionError("server closed after %d of %d octets" % (total, until))
        chunks.append((time.monotonic() - start, chunk))
        total += len(chunk)
    return chunks


# struct tcp_info (linux/tcp.h): tcpi_data_segs_in, segments that carried data, is at 152.
TCPI_DATA_SEGS_IN = 152


def data_segments_in(sock):
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    if len(info) < TCPI_DATA_SEGS_IN + 4:
        return None
    return struct.unpack_from("I", info, TCPI_DATA_SEGS_IN)[0]


def ehlo_bytes(name, keywords):
    lines = ["smtpfault.test greets " + name] + list(keywords)
    out = b""
    for i, l in enumerate(lines):
        out += ("250%s%s\r\n" % (" " if i == len(lines) - 1 else "-", l)).encode()
    return out


def auth_plain(user, password="pw"):
    return "AUTH PLAIN " + base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()
                                            ).decode()


def session_id_of(server, c, timeout=5.0):
    port = c.sock.getsockname()[1]
    line = server.wait_for_line(r" \*: connect from 127\.0\.0\.1:%d$" % port, timeout)
    return line.split()[1]


class FaultCase(ServerTestCase):
    SERVER_ARGS = ("--scenario", FAULTS)

    def session(self, fault):
        """A fresh session whose EHLO name selects the fault."""
        c = self.server.connect()
        self.addCleanup(c.close)
        c.ehlo(fault)
        self.assertEqual(c.buf, b"")
        return c

    def exact(self, c, line, expected, noop=NOOP_OK):
        """Sends a command, checks the exact reply octets, then proves nothing else followed:
        the next NOOP's reply is the very next thing on the wire."""
        c.send(line + "\r\n")
        self.assertEqual(read_bytes(c, len(expected)), expected)
        c.send("NOOP\r\n")
        self.assertEqual(read_bytes(c, len(noop)), noop)

    def closes_after(self, c, line, expected):
        c.send(line + "\r\n")
        self.assertEqual(read_to_eof(c), expected)


class ReplyTest(FaultCase):
    def test_any_code_with_enhanced_code(self):
        self.exact(self.session("reply-one"), MAIL, b"299 2.9.9 Any code goes\r\n")

    def test_multi_line(self):
        self.exact(self.session("reply-multi"), MAIL,
                   b"550-5.1.1 No such sender\r\n"
                   b"550-5.1.1 see https://example.com/why\r\n"
                   b"550 5.1.1 bye\r\n")

    def test_without_enhanced_code_refuses_without_state_change(self):
        c = self.session("reply-plain")
        self.exact(c, MAIL, b"451 Try again later\r\n")
        # The refused MAIL started no transaction.
        c.cmd("RCPT TO:<rcpt@example.com>", expect=503)

    def test_default_text_for_the_code(self):
        self.exact(self.session("reply-default-text"), MAIL,
                   b"452 Requested action not taken: insufficient system storage\r\n")

    def test_reply_then_close(self):
        self.closes_after(self.session("reply-then-close"), MAIL, b"250 2.1.0 Ok, and bye\r\n")

    def test_reply_then_reset(self):
        c = self.session("reply-then-reset")
        c.send(MAIL + "\r\n")
        self.assertEqual(read_bytes(c, 22), b"451 4.3.0 Going away\r\n")
        with self.assertRaises(ConnectionResetError):
            read_to_eof(c)


class DelayTest(FaultCase):
    def test_delay(self):
        c = self.session("delay")
        start = time.monotonic()
        c.send(MAIL + "\r\n")
        self.assertEqual(read_bytes(c, len(MAIL_OK)), MAIL_OK)
        elapsed = time.monotonic() - start
        self.assertGreaterEqual(elapsed, 0.3)
        self.assertLess(elapsed, 2.0)

    def test_trickle(self):
        # smtp.trickle(1, 0.02): one octet every 20 ms, so 41 octets take 40 pauses.
        c = self.session("trickle")
        segs = data_segments_in(c.sock)
        c.send(MAIL + "\r\n")
        chunks = timed_chunks(c, len(MAIL_OK))
        self.assertEqual(b"".join(ch for _, ch in chunks), MAIL_OK)
        self.assertGreater(len(chunks), 10, chunks)
        self.assertGreaterEqual(chunks[-1][0], (len(MAIL_OK) - 1) * 0.02 * 0.9)
        if segs is not None:
            self.assertGreater(data_segments_in(c.sock) - segs, 10)

    def test_split(self):
        # smtp.split(3, 10): three writes back to back. A reader may see them merged, so the
        # evidence is the kernel's count of data segments (Nagle may merge the last two).
        c = self.session("split")
        segs = data_segments_in(c.sock)
        c.send(MAIL + "\r\n")
        chunks = timed_chunks(c, len(MAIL_OK))
        self.assertEqual(b"".join(ch for _, ch in chunks), MAIL_OK)
        boundaries, at = set(), 0
        for _, ch in chunks[:-1]:
            at += len(ch)
            boundaries.add(at)
        self.assertLessEqual(boundaries, {3, 10}, "pieces cut elsewhere: %r" % chunks)
        if segs is None:
            self.skipTest("TCP_INFO has no tcpi_data_segs_in on this kernel")
        self.assertIn(data_segments_in(c.sock) - segs, (2, 3))

    def test_unsplit_reply_is_one_segment(self):
        # The control for test_split: without a fault the reply is one write, one segment.
        c = self.session("none")
        segs = data_segments_in(c.sock)
        if segs is None:
            self.skipTest("TCP_INFO has no tcpi_data_segs_in on this kernel")
        c.send(MAIL + "\r\n")
        self.assertEqual(read_bytes(c, len(MAIL_OK)), MAIL_OK)
        self.assertEqual(data_segments_in(c.sock) - segs, 1)


class ScaledDelayTest(FaultCase):
    SERVER_ARGS = ("--scenario", FAULTS, "--time-scale", "0.01")

    def test_five_seconds_scaled_to_fifty_ms(self):
        c = self.session("delay5")
        start = time.monotonic()
        c.send(MAIL + "\r\n")
        self.assertEqual(read_bytes(c, len(MAIL_OK)), MAIL_OK)
        elapsed = time.monotonic() - start
        self.assertGreaterEqual(elapsed, 0.04)
        self.assertLess(elapsed, 1.0)


class MalformedTest(FaultCase):
    def test_mixed_codes(self):
        self.exact(self.session("mixed-codes"), MAIL,
                   b"251-2.1.0 first\r\n251-2.1.0 second\r\n250 2.1.0 last\r\n")

    def test_missing_space(self):
        self.exact(self.session("missing-space"), MAIL, b"2502.1.0 Ok\r\n")

    def test_long_line(self):
        expected = b"250 2.1.0 Ok " + b"x" * 2048 + b"\r\n"
        self.assertGreater(len(expected) - 2, 512)   # RFC 5321 4.5.3.1.5: 512 with CRLF
        self.exact(self.session("long-line"), MAIL, expected)

    def test_garbage(self):
        self.exact(self.session("garbage"), MAIL,
                   b"\x16\x03\x01\x00\xff garbage \x01\x02\x03 not an SMTP reply\r\n")

    def test_raw_bytes(self):
        # No CR LF added, bare LF and NUL kept.
        c = self.session("raw")
        c.send(MAIL + "\r\n")
        self.assertEqual(read_bytes(c, 25), b"250-raw\n\x00bytes\r\n250 as is")
        c.send("NOOP\r\n")
        self.assertEqual(read_bytes(c, len(NOOP_OK)), NOOP_OK)


class EndingTest(FaultCase):
    def test_close_without_reply(self):
        self.closes_after(self.session("close"), MAIL, b"")

    def test_reset(self):
        c = self.session("reset")
        c.send(MAIL + "\r\n")
        with self.assertRaises(ConnectionResetError):
            read_to_eof(c)

    def test_hang(self):
        c = self.session("hang")
        c.send(MAIL + "\r\n")
        self.assertTrue(c.nothing_pending(1.0), c.buf)
        # Still open: more commands are read and ignored.
        c.send("NOOP\r\n")
        self.assertFalse(c.closed_by_peer(0.3))
        self.assertEqual(c.buf, b"")

    def test_unsolicited_reply_while_idle(self):
        c = self.session("unsolicited")
        start = time.monotonic()
        data = read_to_eof(c)
        elapsed = time.monotonic() - start
        self.assertEqual(data, b"421 4.4.2 idle\r\n")
        self.assertGreaterEqual(elapsed, 0.25)
        self.assertLess(elapsed, 2.0)

    def test_accept_then_lose(self):
        c = self.session("lose")
        sid = session_id_of(self.server, c)
        before = self.server.message_ids()
        c.cmd(MAIL, expect=250)
        c.cmd("RCPT TO:<rcpt@example.com>", expect=250)
        c.cmd("DATA", expect=354)
        c.send(b"Subject: lost\r\n\r\nnever stored\r\n.\r\n")
        self.assertEqual(read_to_eof(c), b"")
        lines = self.server.finished_session(sid)
        self.assertTrue(any("fault: accept then lose" in l for l in lines), lines)
        self.assertEqual(self.server.message_ids(), before)


class HangIdleTimeoutTest(FaultCase):
    SERVER_ARGS = ("--scenario", FAULTS, "--idle-timeout", "1")

    def test_hang_ends_silently_at_idle_timeout(self):
        c = self.session("hang")
        sid = session_id_of(self.server, c)
        start = time.monotonic()
        c.send(MAIL + "\r\n")
        self.assertEqual(read_to_eof(c, timeout=5.0), b"")   # no 421, just the close
        self.assertGreaterEqual(time.monotonic() - start, 0.9)
        lines = self.server.finished_session(sid)
        self.assertFalse([l for l in lines if " S: 421" in l], lines)


class IdleGreetingTest(FaultCase):
    SERVER_ARGS = ("--scenario", os.path.join(SCENARIOS, "idle_greeting.lua"))

    def test_unsolicited_from_on_connect(self):
        c = self.server.connect()
        self.addCleanup(c.close)
        start = time.monotonic()
        self.assertEqual(read_to_eof(c), b"421 4.4.2 idle\r\n")
        self.assertGreaterEqual(time.monotonic() - start, 0.25)


class ConnectionLimitTest(FaultCase):
    SERVER_ARGS = ("--scenario", os.path.join(SCENARIOS, "connection_limit.lua"))

    def test_third_connection_gets_421(self):
        first, second = self.server.connect(), self.server.connect()
        self.addCleanup(first.close)
        self.addCleanup(second.close)
        third = self.server.connect(greeting=False)
        self.addCleanup(third.close)
        self.assertEqual(read_to_eof(third), b"421 4.7.0 Too many connections\r\n")
        third_sid = session_id_of(self.server, third)
        first_sid = session_id_of(self.server, first)
        first.cmd("QUIT", expect=221)
        self.server.finished_session(first_sid)
        self.server.finished_session(third_sid)
        # One slot is free again (on_disconnect ran for both): the next client is served.
        with self.server.connect() as fourth:
            fourth.ehlo()
        second.ehlo()


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
        # Unlisted extensions are off: no ENHANCEDSTATUSCODES, so no enhanced code.
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

    def test_default_ehlo_for_reference(self):
        c = self.server.connect()
        self.addCleanup(c.close)
        c.send("EHLO plain\r\n")
        expected = ehlo_bytes("plain", EHLO_KEYWORDS)
        self.assertEqual(read_bytes(c, len(expected)), expected)


if __name__ == "__main__":
    unittest.main(verbosity=2)
