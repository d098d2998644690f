"""The deadlines of a session: the idle timeout, the deadline of one command line, and a client
that goes away (or stops sending) while the server pauses."""

import datetime
import os
import smtplib
import socket
import ssl
import time
import unittest

from smtpfault_server import TEST_CA, ServerTestCase


def assert_cut_off(test, c, reply, elapsed, at_least, at_most):
    """The server ended the session with 421 4.4.2 between at_least and at_most seconds."""
    test.assertTrue(reply.lines[0].startswith("4.4.2 "), reply)
    test.assertGreater(elapsed, at_least)
    test.assertLess(elapsed, at_most)
    test.assertTrue(c.closed_by_peer(2.0))


class IdleTimeoutTest(ServerTestCase):
    SERVER_ARGS = ("--idle-timeout", "1")

    def test_idle_client_gets_421_4_4_2(self):
        with self.server.connect() as c:
            c.ehlo()
            start = time.monotonic()
            r = c.expect(421, timeout=3)
            assert_cut_off(self, c, r, time.monotonic() - start, 0.8, 2.0)

    def test_idle_in_data_gets_421(self):
        with self.server.connect() as c:
            c.ehlo()
            c.cmd("MAIL FROM:<sender@example.com>", expect=250)
            c.cmd("RCPT TO:<rcpt@example.com>", expect=250)
            c.cmd("DATA", expect=354)
            c.send(b"Subject: stalled\r\n\r\npartial")
            r = c.expect(421, timeout=3)
            self.assertTrue(r.lines[0].startswith("4.4.2 "), r)
        self.assertEqual(self.server.message_ids(), [])

    def test_activity_keeps_the_session_alive(self):
        with self.server.connect() as c:
            c.ehlo()
            # Commands every ~0.4 s for ~1.6 s: longer than the timeout in total, never idle.
            # The spacing is the pacing of the client under test, not a wait for the server.
            for _ in range(4):
                r = c.cmd("NOOP")
                self.assertEqual(r.code, 250)
                self.assertTrue(c.nothing_pending(0.4))
            c.cmd("QUIT", expect=221)


class CommandTimeoutTest(ServerTestCase):
    """command_timeout bounds one command line from its first octet, however steadily it drips
    (the idle deadline alone restarts with every octet)."""
    SERVER_ARGS = ("--command-timeout", "1", "--idle-timeout", "30")

    def drip_until_closed(self, c, octets, seconds=4.0):
        """Sends one octet every 0.2 s (the client's pacing, never idle for the server's 30 s)
        until the server answers; returns (reply, seconds since the first octet)."""
        start = time.monotonic()
        for octet in octets:
            c.send(octet)
            if not c.nothing_pending(0.2):
                break
            if time.monotonic() - start > seconds:
                break
        return c.expect(421, timeout=1), time.monotonic() - start

    def test_a_dripped_command_line_is_cut_off(self):
        with self.server.connect() as c:
            c.ehlo()
            r, elapsed = self.drip_until_closed(c, [bytes([b]) for b in b"NOOP and on and on" * 4])
            assert_cut_off(self, c, r, elapsed, 0.8, 2.5)

    def test_an_over_long_line_being_dropped_is_cut_off_too(self):
        with self.server.connect() as c:
            c.ehlo()
            c.send(b"NOOP " + b"x" * 600)   # past the 512-octet limit: dropped as it arrives
            r, elapsed = self.drip_until_closed(c, [b"y"] * 40)
            assert_cut_off(self, c, r, elapsed, 0.8, 2.5)

    def test_a_dripped_auth_response_is_cut_off_too(self):
        with self.server.connect() as c:
            c.ehlo()
            c.cmd("AUTH LOGIN", expect=334)
            r, elapsed = self.drip_until_closed(c, [b"Y"] * 40)
            assert_cut_off(self, c, r, elapsed, 0.8, 2.5)

    def test_steady_complete_commands_are_never_cut_off(self):
        with self.server.connect() as c:
            c.ehlo()
            # Each read ends inside the next command: "NOOP\r\nNO", "OP\r\nNO", ... for 2 s.
            c.send(b"NO")
            for _ in range(10):
                c.send(b"OP\r\nNO")
                self.assertEqual(c.expect(250, timeout=1).code, 250)
                time.sleep(0.2)   # the client's pacing
            c.send(b"OP\r\n")
            c.expect(250, timeout=1)
            c.cmd("QUIT", expect=221)


class DataTimeoutTest(ServerTestCase):
    """data_timeout bounds one message text (DATA up to its dot, or a BDAT chunk) as a whole,
    however steadily it drips (the idle deadline alone restarts with every read)."""
    SERVER_ARGS = ("--data-timeout", "1", "--idle-timeout", "30")

    def open_envelope(self, c):
        c.ehlo()
        c.cmd("MAIL FROM:<sender@example.com>", expect=250)
        c.cmd("RCPT TO:<rcpt@example.com>", expect=250)

    def drip(self, c, chunk, seconds=4.0):
        """Sends chunk every 0.2 s (never idle for the server's 30 s) until the server answers;
        returns (reply, seconds since the first chunk)."""
        start = time.monotonic()
        while c.nothing_pending(0.2) and time.monotonic() - start < seconds:
            c.send(chunk)
        return c.expect(421, timeout=1), time.monotonic() - start

    def test_a_dripped_message_is_cut_off_and_not_stored(self):
        with self.server.connect() as c:
            self.open_envelope(c)
            c.cmd("DATA", expect=354)
            r, elapsed = self.drip(c, b"a line of a message that never ends\r\n")
            assert_cut_off(self, c, r, elapsed, 0.7, 2.5)
            self.assertIn("rest of the message", r.text)
        self.assertEqual(self.server.message_ids(), [])

    def test_a_dripped_bdat_chunk_is_cut_off(self):
        with self.server.connect() as c:
            self.open_envelope(c)
            c.send(b"BDAT 100000 LAST\r\n")
            r, elapsed = self.drip(c, b"x" * 10)
            assert_cut_off(self, c, r, elapsed, 0.7, 2.5)
        self.assertEqual(self.server.message_ids(), [])

    def test_each_message_has_a_deadline_of_its_own(self):
        with self.server.connect() as c:
            # Three messages of 0.6 s each in one session: 1.8 s in all, none past its 1 s.
            for n in range(3):
                if n == 0:
                    self.open_envelope(c)
                else:
                    c.cmd("MAIL FROM:<sender@example.com>", expect=250)
                    c.cmd("RCPT TO:<rcpt@example.com>", expect=250)
                c.cmd("DATA", expect=354)
                for _ in range(3):
                    c.send(b"Subject: paced\r\n")
                    self.assertTrue(c.nothing_pending(0.2))  # the client's pacing
                c.cmd(".", expect=250)
            c.cmd("QUIT", expect=221)
        self.assertEqual(len(self.server.message_ids()), 3)


class CommandTimeoutAroundHooksTest(ServerTestCase):
    SERVER_ARGS = ("--command-timeout", "1", "--idle-timeout", "30", "--scenario",
                   os.path.join(os.path.dirname(os.path.abspath(__file__)), "scenarios",
                                "slow_mail_hook.lua"))

    def test_a_line_begun_during_a_hook_pause_gets_its_full_deadline(self):
        with self.server.connect() as c:
            c.ehlo()
            c.send(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b")   # RCPT begins while the hook sleeps
            c.expect(250, timeout=5)                        # MAIL, after the 1.5 s pause
            self.assertTrue(c.nothing_pending(0.5), "no 421: the pause did not count")
            c.send(b"@y.test>\r\n")
            self.assertEqual(c.expect(250, timeout=2).code, 250)
            c.cmd("QUIT", expect=221)


class CommandTimeoutWithUnsolicitedReplyTest(CommandTimeoutTest):
    """A pending unsolicited reply waits for silence; it does not lift the deadline of a line
    that a client keeps dripping octet by octet (each octet starts that silence over). The
    other cases of CommandTimeoutTest run here too."""
    SERVER_ARGS = CommandTimeoutTest.SERVER_ARGS + (
        "--scenario", os.path.join(os.path.dirname(os.path.abspath(__file__)), "scenarios",
                                   "unsolicited_after_3s.lua"))

    def test_a_dripped_command_line_is_cut_off(self):
        with self.server.connect() as c:
            c.ehlo()
            r, elapsed = self.drip_until_closed(c, [bytes([b]) for b in b"NOOP and on and on" * 4])
            assert_cut_off(self, c, r, elapsed, 0.8, 2.5)
            self.assertIn("command line", " ".join(r.lines))   # not the scenario's 421


class ClientGoneDuringAPauseTest(ServerTestCase):
    """A client that gives up while a scenario delays a reply, or while a hook sleeps, is let go
    within about a second: its session ends and its socket is not left in CLOSE-WAIT for as long
    as the delay or the sleep would have lasted."""
    SERVER_ARGS = ("--idle-timeout", "60", "--scenario",
                   os.path.join(os.path.dirname(os.path.abspath(__file__)), "scenarios",
                                "slow_to_answer.lua"))

    def assert_let_go(self, sender, rcpt=None):
        c = self.server.connect()
        c.ehlo()
        sid = self.server.session_of(c)
        c.send(b"MAIL FROM:<%s>\r\n" % sender)
        if rcpt:
            c.expect(250)
            c.send(b"RCPT TO:<%s>\r\n" % rcpt)
        time.sleep(0.3)
        self.assertTrue(c.nothing_pending(0.1))
        start = time.monotonic()
        c.close()
        self.server.finished_session(sid, timeout=5)
        self.assertLess(time.monotonic() - start, 2.5)
        entries = self.server.session_lines(sid)
        lines = "\n".join(entries)
        self.assertIn("client closed the connection (while the server paused)", lines)
        # Noted when it came, about 0.3 s after the last command, not at the next of the
        # pause's once-a-second looks: a mailer's timeout is read off these times.
        def at(entry):
            return datetime.datetime.fromisoformat(entry.split()[0].replace("Z", "+00:00"))
        sent = [e for e in entries if " C: " in e][-1]
        closed = next(e for e in entries if "client closed the connection" in e)
        self.assertLess((at(closed) - at(sent)).total_seconds(), 0.8, lines)

    def test_during_a_delayed_reply(self):
        self.assert_let_go(b"slow@x.test")

    def test_during_a_hook_that_sleeps_for_ever(self):
        self.assert_let_go(b"a@x.test", b"forever@x.test")

    def closed_over_tls_during_a_delay(self, before_close=b""):
        """A TLS client whose MAIL is held back sends before_close, then its close_notify (as a
        client that gives up cleanly does: Java's sockets do) and its FIN: the session's lines."""
        ctx = ssl.create_default_context(cafile=TEST_CA)
        s = smtplib.SMTP(self.server.host, self.server.port, timeout=10)
        s.starttls(context=ctx)
        s.ehlo()
        port = s.sock.getsockname()[1]
        sid = self.server.wait_for_line(r" \*: connect from [^ ]*:%d\b" % port).split()[1]
        s.putcmd("MAIL FROM:<slow@x.test>")
        time.sleep(0.3)
        if before_close:
            s.send(before_close)
        s.sock.settimeout(0.5)
        try:
            s.sock.unwrap()
        except (OSError, ssl.SSLError):
            pass
        s.close()   # the socket and smtplib's reader of it: the FIN goes only when both are shut
        closed_at = datetime.datetime.now(datetime.timezone.utc)
        start = time.monotonic()
        entries = self.server.finished_session(sid, timeout=5)
        self.assertLess(time.monotonic() - start, 3)   # not the 30 s of the delay
        # The close_notify came 0.5 s before the FIN (unwrap waits that long for the server's):
        # the close is noted when it came, not at the pause's next once-a-second look.
        ended = next(e for e in entries if "session ended" in e)
        noted = datetime.datetime.fromisoformat(ended.split()[0].replace("Z", "+00:00"))
        self.assertLess((noted - closed_at).total_seconds(), 0.35, entries)
        return "\n".join(entries)

    def test_a_tls_client_that_closes_during_a_delay_left_while_its_reply_was_held(self):
        # Its close_notify waits unread, so "nothing unread" cannot tell: what waits is read, and
        # it is the close alone. The held reply was never sent, and the transcript says so.
        lines = self.closed_over_tls_during_a_delay()
        self.assertIn("client closed the connection (while the server paused)", lines)
        self.assertIn("reply not sent: the client left while it was held back", lines)
        self.assertNotIn("the pause ends", lines)

    def test_commands_before_a_tls_close_during_a_delay_are_read_after_it(self):
        # A command before the close_notify (an RSET after a read timeout): the pause ends, and
        # the command is taken as sent after the held reply.
        lines = self.closed_over_tls_during_a_delay(b"RSET\r\n")
        self.assertIn("the client closed its TLS connection while the server paused, after "
                      "sending more: the pause ends, and what it sent before is read", lines)
        self.assertRegex(lines, r"C: RSET")

    def test_a_client_that_half_closes_after_its_commands_is_still_answered(self):
        # FIN after QUIT (nc -N): not a client that left; its commands wait to be read.
        c = self.server.connect()
        c.ehlo()
        c.send(b"MAIL FROM:<brief@x.test>\r\nQUIT\r\n")
        c.sock.shutdown(socket.SHUT_WR)
        self.assertEqual(c.reply(timeout=5).code, 250)
        self.assertEqual(c.reply(timeout=5).code, 221)
        c.close()


class InputEndedDuringAPauseTest(ServerTestCase):
    """A client that closed with commands still unanswered may be gone or may be reading (a
    half-close): it gets the idle timeout, not the rest of the delay (here 30 s)."""
    SERVER_ARGS = ("--idle-timeout", "1", "--scenario",
                   os.path.join(os.path.dirname(os.path.abspath(__file__)), "scenarios",
                                "slow_to_answer.lua"))

    def test_the_session_ends_at_the_idle_timeout(self):
        c = self.server.connect()
        c.ehlo()
        sid = self.server.session_of(c)
        c.send(b"MAIL FROM:<slow@x.test>\r\nRCPT TO:<b@x.test>\r\n")
        time.sleep(0.3)
        start = time.monotonic()
        c.close()
        self.server.finished_session(sid, timeout=10)
        self.assertLess(time.monotonic() - start, 5)
        lines = "\n".join(self.server.session_lines(sid))
        self.assertIn("client closed the connection (its input ended, then the idle timeout "
                      "passed while the server paused)", lines)


if __name__ == "__main__":
    unittest.main()
