"""Malformed and hostile input over a raw socket: line limits, bare LF/CR, NUL, bad base64,
recipient limits, out-of-order commands. After each case the server must answer as specified,
keep running and still deliver the next client's message intact (assert_still_serving).
"""

import base64
import unittest

from smtpfault_server import ServerTestCase


def bare_lf_offsets(data):
    return [i for i, b in enumerate(data) if b == 0x0A and (i == 0 or data[i - 1] != 0x0D)]


class LineLimitTest(ServerTestCase):
    def test_command_line_of_512_octets_is_accepted(self):
        line = b"NOOP " + b"x" * (512 - 2 - 5)
        self.assertEqual(len(line + b"\r\n"), 512)
        with self.server.connect() as c:
            c.ehlo()
            c.send(line + b"\r\n")
            self.assertEqual(c.expect(250).lines, ["2.0.0 Ok"])
        self.assert_still_serving("512")

    def test_command_line_of_513_octets_is_refused(self):
        line = b"NOOP " + b"x" * (513 - 2 - 5)
        self.assertEqual(len(line + b"\r\n"), 513)
        with self.server.connect() as c:
            c.ehlo()
            c.send(line + b"\r\n")
            r = c.expect(500)
            self.assertTrue(r.lines[0].startswith("5.5.2 "), r)
            # Nothing of the long line leaks into the next command.
            self.assertEqual(c.cmd("NOOP").lines, ["2.0.0 Ok"])
            c.cmd("MAIL FROM:<sender@example.com>", expect=250)
        self.assert_still_serving("513")

    def test_endless_command_line_is_refused_once(self):
        with self.server.connect() as c:
            c.ehlo()
            c.send(b"MAIL FROM:<" + b"a" * 200_000 + b"@example.com>\r\n")
            r = c.expect(500)
            self.assertTrue(r.lines[0].startswith("5.5.2 "), r)
            self.assertEqual(c.cmd("NOOP").lines, ["2.0.0 Ok"])
        self.assert_still_serving("endless")

    def data_with_line(self, length):
        """A message whose second body line is `length` octets including its CRLF."""
        return (b"Subject: long line\r\n\r\n" + b"y" * (length - 2) + b"\r\nafter\r\n")

    def test_text_line_of_1000_octets_is_accepted(self):
        body = self.data_with_line(1000)
        with self.server.connect() as c:
            c.ehlo()
            c.cmd("MAIL FROM:<sender@example.com>", expect=250)
            c.cmd("RCPT TO:<rcpt@example.com>", expect=250)
            c.cmd("DATA", expect=354)
            c.send(body + b".\r\n")
            done = c.expect(250)
        self.assertEqual(self.server.message(done.queued_id).data, body)

    def test_text_line_of_1001_octets_is_rejected_after_the_dot(self):
        body = self.data_with_line(1001)
        before = self.server.message_ids()
        with self.server.connect() as c:
            c.ehlo()
            c.cmd("MAIL FROM:<sender@example.com>", expect=250)
            c.cmd("RCPT TO:<rcpt@example.com>", expect=250)
            c.cmd("DATA", expect=354)
            c.send(body)
            # No reply before the end of data: the client is still sending.
            self.assertTrue(c.nothing_pending(0.2))
            c.send(b".\r\n")
            r = c.expect(500)
            self.assertTrue(r.lines[0].startswith("5.5.2 "), r)
            # The transaction is gone; a new one in the same session works.
            c.cmd("RCPT TO:<rcpt@example.com>", expect=503)
            c.cmd("MAIL FROM:<sender@example.com>", expect=250)
        self.assertEqual(self.server.message_ids(), before)
        self.assert_still_serving("1001")


class DataAnomalyTest(ServerTestCase):
    def deliver_raw(self, body):
        with self.server.connect() as c:
            c.ehlo()
            c.cmd("MAIL FROM:<sender@example.com>", expect=250)
            c.cmd("RCPT TO:<rcpt@example.com>", expect=250)
            c.cmd("DATA", expect=354)
            c.send(body + b".\r\n")
            done = c.expect(250)
            c.cmd("QUIT", expect=221)
        return self.server.message(done.queued_id)

    def test_bare_lf_is_recorded_and_never_ends_data(self):
        body = (b"Subject: bare LF\r\n\r\n"
                b"line one\nline two\n.\n"          # "\n.\n" must not end the data
                b"still the body\r\n"
                b"x\n.\r\n"                          # nor "\n.\r\n"
                b"end\r\n")
        msg = self.deliver_raw(body)
        self.assertEqual(msg.data, body)
        kinds = [k for k, _ in msg.anomalies]
        self.assertEqual(kinds, ["bare_lf"] * 4, msg.anomalies)
        self.assertEqual([o for _, o in msg.anomalies], bare_lf_offsets(body))
        self.server.wait_for_line(r"\*: anomaly: bare_lf at offset %d" % bare_lf_offsets(body)[0])
        self.assert_still_serving("bare-lf")

    def test_bare_cr_is_recorded(self):
        # The line ".\r.\r\r\n" starts with a dot, so on the wire it is stuffed; "\r\n.\r"
        # must not be taken for the end of data either.
        body = b"Subject: bare CR\r\n\r\nover\rwritten\r\n.\r.\r\r\nend\r\n"
        wire = body.replace(b"\r\n.\r", b"\r\n..\r")
        msg = self.deliver_raw(wire)
        self.assertEqual(msg.data, body)
        self.assertTrue(msg.anomalies)
        self.assertEqual({k for k, _ in msg.anomalies}, {"bare_cr"})

    def test_nul_bytes_are_stored_and_recorded(self):
        body = b"Subject: NUL\r\n\r\nbefore\x00after\r\n\x00\x00\r\n"
        msg = self.deliver_raw(body)
        self.assertEqual(msg.data, body)
        self.assertEqual([k for k, _ in msg.anomalies], ["nul"] * 3)
        self.assertEqual([o for _, o in msg.anomalies],
                         [i for i, b in enumerate(body) if b == 0])
        self.assert_still_serving("nul")

    def test_escaped_in_transcript(self):
        with self.server.connect() as c:
            c.ehlo()
            c.send(b"NOOP a\x00b\rc\r\n")
            c.expect(250)
        line = self.server.wait_for_line(r"C: NOOP a")
        self.assertNotIn("\x00", line)
        self.assertNotIn("\r", line)
        # Kept, and reported as anomalies, as in a message's text.
        self.server.wait_for_line(r"\*: anomaly: nul in the command line at offset 6")
        self.server.wait_for_line(r"\*: anomaly: bare_cr in the command line at offset 8")


class AuthInputTest(ServerTestCase):
    def test_bad_base64_initial_response(self):
        with self.server.connect() as c:
            c.ehlo()
            r = c.cmd("AUTH PLAIN !!!not-base64!!!", expect=501)
            self.assertTrue(r.lines[0].startswith("5.5.2 "), r)
            # The session is back in command mode and a correct AUTH works (accept-any).
            token = base64.b64encode(b"\x00user\x00pw").decode()
            c.cmd("AUTH PLAIN " + token, expect=235)
        self.assert_still_serving("b64-initial")

    def test_bad_base64_in_login_exchange(self):
        with self.server.connect() as c:
            c.ehlo()
            c.cmd("AUTH LOGIN", expect=334)
            r = c.cmd("%%%%", expect=501)
            self.assertTrue(r.lines[0].startswith("5.5.2 "), r)
            c.cmd("NOOP", expect=250)
        self.assert_still_serving("b64-login")

    def test_auth_cancelled(self):
        with self.server.connect() as c:
            c.ehlo()
            c.cmd("AUTH CRAM-MD5", expect=334)
            c.cmd("*", expect=501)
            c.cmd("NOOP", expect=250)
        self.assert_still_serving("auth-cancelled")

    def test_auth_response_is_masked_in_transcript(self):
        secret = base64.b64encode(b"\x00masked-user\x00very-secret").decode()
        with self.server.connect() as c:
            c.ehlo()
            c.cmd("AUTH PLAIN " + secret, expect=235)
            c.cmd("QUIT", expect=221)
        self.server.wait_for_line(r"\*: AUTH PLAIN succeeded for masked-user")
        self.assertFalse(any(secret in l for l in self.server.transcript()))


class SequenceTest(ServerTestCase):
    def test_mail_before_ehlo(self):
        with self.server.connect() as c:
            r = c.cmd("MAIL FROM:<sender@example.com>", expect=503)
            # No EHLO yet, so (RFC 2034) no enhanced code on this reply.
            self.assertEqual(r.lines, ["Send EHLO/HELO first"])
            c.ehlo()
            r = c.cmd("MAIL FROM:<sender@example.com>", expect=250)
        self.assert_still_serving("mail-before-ehlo")

    def test_rcpt_without_mail(self):
        with self.server.connect() as c:
            c.ehlo()
            r = c.cmd("RCPT TO:<rcpt@example.com>", expect=503)
            self.assertTrue(r.lines[0].startswith("5.5.1 "), r)
        self.assert_still_serving("rcpt-without-mail")

    def test_data_without_rcpt(self):
        with self.server.connect() as c:
            c.ehlo()
            r = c.cmd("DATA", expect=503)
            self.assertTrue(r.lines[0].startswith("5.5.1 "), r)
            c.cmd("MAIL FROM:<sender@example.com>", expect=250)
            r = c.cmd("DATA", expect=503)
            self.assertEqual(r.lines, ["5.5.1 Need RCPT command"])
            # The body a confused client sends next is read as commands and refused.
            r = c.cmd("Subject: oops", expect=500)
            self.assertTrue(r.lines[0].startswith("5.5.1 "), r)
        self.assert_still_serving("data-without-rcpt")

    def test_unknown_command(self):
        with self.server.connect() as c:
            c.ehlo()
            r = c.cmd("XYZZY plugh", expect=500)
            self.assertEqual(r.lines, ["5.5.1 Command unrecognized"])
        self.assert_still_serving("unknown-command")

    def test_nested_mail(self):
        with self.server.connect() as c:
            c.ehlo()
            c.cmd("MAIL FROM:<sender@example.com>", expect=250)
            r = c.cmd("MAIL FROM:<other@example.com>", expect=503)
            self.assertTrue(r.lines[0].startswith("5.5.1 "), r)
        self.assert_still_serving("nested-mail")

    def test_too_many_errors_closes_the_session(self):
        with self.server.connect() as c:
            c.ehlo()
            for _ in range(19):
                c.cmd("BOGUS", expect=500)
            c.send(b"BOGUS\r\n")
            c.expect(500)
            r = c.expect(421)
            self.assertTrue(r.lines[0].startswith("4.7.0 "), r)
            self.assertTrue(c.closed_by_peer(2.0))
        self.assert_still_serving("max-errors")


class RecipientLimitDefaultTest(ServerTestCase):
    def test_150_recipients_are_accepted(self):
        rcpts = ["user%03d@example.com" % i for i in range(150)]
        body = b"Subject: 150 recipients\r\n\r\nfan out\r\n"
        with self.server.connect() as c:
            c.ehlo()
            # Pipelined in one write, the way a bulk mailer sends them.
            c.send(b"MAIL FROM:<sender@example.com>\r\n"
                   + b"".join(b"RCPT TO:<%s>\r\n" % r.encode() for r in rcpts))
            c.expect(250)
            for _ in rcpts:
                self.assertTrue(c.expect(250).lines[0].startswith("2.1.5 "))
            c.cmd("DATA", expect=354)
            c.send(body + b".\r\n")
            done = c.expect(250)
        msg = self.server.message(done.queued_id)
        self.assertEqual(msg.recipients, rcpts)
        self.assertEqual(msg.data, body)


class RecipientLimitCappedTest(ServerTestCase):
    SERVER_ARGS = ("--set", "limits.max_recipients=100")

    def test_101st_recipient_gets_452(self):
        rcpts = ["user%03d@example.com" % i for i in range(101)]
        body = b"Subject: capped\r\n\r\nfirst hundred only\r\n"
        with self.server.connect() as c:
            c.ehlo()
            c.cmd("MAIL FROM:<sender@example.com>", expect=250)
            for r in rcpts[:100]:
                c.cmd("RCPT TO:<%s>" % r, expect=250)
            r = c.cmd("RCPT TO:<%s>" % rcpts[100], expect=452)
            self.assertEqual(r.lines, ["4.5.3 Too many recipients"])
            c.cmd("DATA", expect=354)
            c.send(body + b".\r\n")
            done = c.expect(250)
        msg = self.server.message(done.queued_id)
        self.assertEqual(msg.recipients, rcpts[:100])
        self.assertEqual(msg.data, body)
        self.assert_still_serving("recipient-cap")


if __name__ == "__main__":
    unittest.main(verbosity=2)
