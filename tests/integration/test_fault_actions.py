"""Every fault action of the scenario API, observed on the wire from a real socket: replies,
delays and trickles, malformed replies, endings, connection limits (STARTTLS, certificate, AUTH
and policy faults are in test_fault_policies.py).

The scenario (scenarios/fault_actions.lua) picks the fault from the EHLO name, so each case
opens its own session: `EHLO <fault>` and then the command the fault applies to. Replies are
checked byte for byte; timing faults within generous bounds; segmentation through the kernel's
own count of data segments received (TCP_INFO), not through sleeps.
"""

import os
import socket
import time
import unittest

from fault_case import (FAULTS, MAIL, MAIL_OK, NOOP_OK, SCENARIOS, FaultCase, data_segments_in,
                        read_bytes, read_to_eof, session_id_of, timed_chunks)
from smtpfault_server import server_with_scenario



def to_message_text(c):
    """MAIL, RCPT and DATA, each accepted: the client may now send the message text."""
    c.cmd(MAIL, expect=250)
    c.cmd("RCPT TO:<rcpt@example.com>", expect=250)
    c.cmd("DATA", expect=354)

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
        # The transcript has the reply where it was decided; when it left is noted after.
        sid = session_id_of(self.server, c)
        sent = self.server.wait_for_line(r" %s \*: reply sent, \d+\.\d\d s after" % sid)
        self.assertGreaterEqual(float(sent.split("reply sent, ")[1].split()[0]), 0.3)

    def test_trickle(self):
        # smtp.trickle(1, 0.02): one octet every 20 ms, so 41 octets take 40 pauses.
        c = self.session("trickle")
        segs = data_segments_in(c.sock)
        c.send(MAIL + "\r\n")
        chunks = timed_chunks(c, len(MAIL_OK))
        self.assertEqual(b"".join(ch for _, ch in chunks), MAIL_OK)
        self.assertGreater(len(chunks), 10, chunks)
        self.assertGreaterEqual(chunks[-1][0], (len(MAIL_OK) - 1) * 0.02 * 0.9)
        sid = session_id_of(self.server, c)
        self.server.wait_for_line(r" %s \*: reply trickled out, \d+\.\d\d s after" % sid)
        if segs is not None:
            self.assertGreater(data_segments_in(c.sock) - segs, 10)

    def test_trickle_sends_its_first_piece_at_once(self):
        # smtp.trickle(20, 0.6): the pause comes between pieces, not before the first one.
        c = self.session("trickle-slow")
        c.send(MAIL + "\r\n")
        chunks = timed_chunks(c, len(MAIL_OK))
        self.assertEqual(b"".join(ch for _, ch in chunks), MAIL_OK)
        self.assertLess(chunks[0][0], 0.3, chunks)
        self.assertEqual(len(chunks[0][1]), 20, chunks)
        self.assertGreaterEqual(chunks[-1][0], 0.6 * 0.9, chunks)

    def test_split(self):
        # smtp.split(3, 10): three writes back to back. A reader may see them merged, so the
        # evidence is the kernel's count of data segments: three, also for a client that delays
        # its ACKs (Nagle's algorithm would hold the 2nd piece for that ACK and merge the rest).
        c = self.session("split")
        segs = data_segments_in(c.sock)
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
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
        self.assertEqual(data_segments_in(c.sock) - segs, 3)

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
        c = self.session("missing-space")
        self.exact(c, MAIL, b"2502.1.0 Ok\r\n")
        # The transcript shows what the client got, not the reply it stands for.
        sid = session_id_of(self.server, c)
        self.server.wait_for_line(r" %s S: 2502\.1\.0 Ok$" % sid)

    def test_long_line(self):
        expected = b"250 2.1.0 Ok " + b"x" * 2048 + b"\r\n"
        self.assertGreater(len(expected) - 2, 512)   # RFC 5321 4.5.3.1.5: 512 with CRLF
        self.exact(self.session("long-line"), MAIL, expected)

    def test_garbage(self):
        c = self.session("garbage")
        self.exact(c, MAIL, b"\x16\x03\x01\x00\xff garbage \x01\x02\x03 not an SMTP reply\r\n")
        sid = session_id_of(self.server, c)
        self.server.wait_for_line(
            r" %s S: \\x16\\x03\\x01\\x00\\xff garbage \\x01\\x02\\x03 not an SMTP reply$" % sid)

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

    def test_unsolicited_reply_waits_for_silence(self):
        # A client that keeps talking is not idle: every command starts the 0.3 s over.
        c = self.session("unsolicited")
        start = time.monotonic()
        for _ in range(6):
            time.sleep(0.15)
            c.cmd("NOOP", expect=250)
        self.assertGreater(time.monotonic() - start, 0.85)
        quiet = time.monotonic()
        self.assertEqual(read_to_eof(c), b"421 4.4.2 idle\r\n")
        self.assertGreaterEqual(time.monotonic() - quiet, 0.25)

    def test_unsolicited_421_comes_inside_the_message_text_and_keeps_nothing(self):
        # It was once dropped without a word when the client paused after DATA's 354.
        c = self.session("unsolicited")
        sid = session_id_of(self.server, c)
        before = self.server.message_ids()
        to_message_text(c)
        c.send("Subject: stalled\r\n\r\nhalf a mess")
        start = time.monotonic()
        self.assertEqual(read_to_eof(c), b"421 4.4.2 idle\r\n")
        self.assertGreaterEqual(time.monotonic() - start, 0.25)
        lines = self.server.finished_session(sid)
        self.assertTrue(any("unsolicited reply inside the message text" in l for l in lines),
                        lines)
        self.assertEqual(self.server.message_ids(), before)

    def test_an_unsolicited_reply_that_keeps_the_session_waits_out_the_message(self):
        c = self.session("unsolicited-keep")
        to_message_text(c)
        c.send("Subject: stalled\r\n\r\nslow")
        self.assertTrue(c.nothing_pending(0.6), c.buf)  # not read as the message's answer
        # The silence starts when the server writes the message's 250, after this send; the
        # time the client takes to read that 250 (long on a busy machine) is part of it.
        start = time.monotonic()
        c.send("\r\n.\r\n")
        c.expect(250)
        r = c.expect(250)
        self.assertEqual(r.lines, ["2.0.0 still here"])
        self.assertGreaterEqual(time.monotonic() - start, 0.25)
        c.cmd("NOOP", expect=250)

    def test_silence_for_an_unsolicited_reply_counts_from_its_held_reply(self):
        # The EHLO reply it came with is held 0.6 s; the 421 once followed it at once.
        c = self.session("unsolicited-late")
        after_reply = time.monotonic()
        self.assertEqual(read_to_eof(c), b"421 4.4.2 idle\r\n")
        self.assertGreaterEqual(time.monotonic() - after_reply, 0.25)

    def test_quit_from_a_client_that_half_closed_is_a_plain_end(self):
        # QUIT and the end of input together (as `nc -N` sends them), in a session older than
        # the once-a-second look at a paused client: a 221 and a plain end, not a client that
        # "closed while the server paused" (the QUIT's close is not a pause).
        c = self.session("none")
        sid = session_id_of(self.server, c)
        time.sleep(1.1)
        c.send("QUIT\r\n")
        c.sock.shutdown(socket.SHUT_WR)
        self.assertTrue(read_to_eof(c).startswith(b"221 "))
        lines = self.server.finished_session(sid)
        self.assertFalse([l for l in lines if "paused" in l or "closed" in l], lines)

    def test_accept_then_lose(self):
        c = self.session("lose")
        sid = session_id_of(self.server, c)
        before = self.server.message_ids()
        to_message_text(c)
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


class DisconnectHookTest(unittest.TestCase):
    def test_a_sleep_in_on_disconnect_lets_the_rest_of_the_hook_run(self):
        server = server_with_scenario(self, """
local ended = 0
function on_connect(s) smtp.log("sessions ended before: " .. ended) end
function on_disconnect(s) smtp.sleep(30); ended = ended + 1 end
""")
        for _ in range(2):
            with server.connect() as c:
                sid = session_id_of(server, c)
                c.cmd("QUIT", expect=221)
            start = time.monotonic()
            server.finished_session(sid)
            self.assertLess(time.monotonic() - start, 10, "the sleep did not hold the session")
        with server.connect() as c:
            sid = session_id_of(server, c)
            c.cmd("QUIT", expect=221)
        self.assertTrue(any("sessions ended before: 2" in l for l in server.finished_session(sid)))


if __name__ == "__main__":
    unittest.main(verbosity=2)
