"""Hostile input in volume: endless and 1 MiB lines, invalid UTF-8, early talkers, AUTH line
limits, absurd BDAT sizes, 100,000 pipelined RCPTs, two floods of pipelined NOOPs sharing a
thread and a 1 MB folded header block (TLS garbage, resets and slowloris sockets are in
test_hostile_connections.py).

Each case checks the reply the server owes, that its memory (VmRSS) stays within a bound, and
that other clients are still served. Waits are on events (a reply, a transcript line, a count)
with deadlines.
"""

import base64
import json
import os
import socket
import threading
import time
import unittest

from raw_client import RawClient
from volume_case import MB, SLOW, VolumeCase, reset, rss_kb


class LongLineTest(VolumeCase):
    def test_endless_line_of_20_mb_stays_bounded(self):
        chunk = b"x" * (64 * 1024)
        peak = rss_kb(self.server)
        with self.server.connect() as c:
            c.ehlo()
            c.send(b"NOOP ")
            for i in range(20 * MB // len(chunk)):
                c.send(chunk)
                if i % 16 == 0:
                    peak = max(peak, rss_kb(self.server))
                if i == 160:
                    # Halfway through, another client is served as usual.
                    self.assert_greeted_quickly()
                    self.assert_still_serving("during-endless-line")
            # No reply while the line never ends; one 500 once the LF finally comes.
            self.assertTrue(c.nothing_pending(0.2))
            c.send(b"\r\n")
            r = c.expect(500)
            self.assertTrue(r.lines[0].startswith("5.5.2 "), r)
            self.assertEqual(c.cmd("NOOP").lines, ["2.0.0 Ok"])
            peak = max(peak, rss_kb(self.server))
        self.assert_bounded("20 MB line", peak)
        self.assert_still_serving("after-endless-line")

    def test_one_mib_command_line(self):
        with self.server.connect() as c:
            c.ehlo()
            c.send(b"MAIL FROM:<" + b"a" * MB + b"@example.com>\r\n")
            r = c.expect(500)
            self.assertTrue(r.lines[0].startswith("5.5.2 "), r)
            c.cmd("MAIL FROM:<sender@example.com>", expect=250)
        self.assert_bounded("1 MiB command line", rss_kb(self.server))
        self.assert_still_serving("1mib-command")

    def test_one_mib_text_line_in_data(self):
        before = self.server.message_ids()
        with self.server.connect() as c:
            self.open_transaction(c)
            c.cmd("DATA", expect=354)
            c.send(b"Subject: wide\r\n\r\n" + b"y" * MB + b"\r\n.\r\n")
            r = c.expect(500)
            self.assertTrue(r.lines[0].startswith("5.5.2 "), r)
            c.cmd("NOOP", expect=250)
        self.assertEqual(self.server.message_ids(), before)
        self.assert_still_serving("1mib-text")

    def test_one_mib_line_in_auth_exchange(self):
        with self.server.connect() as c:
            c.ehlo()
            c.cmd("AUTH LOGIN", expect=334)
            c.send(b"A" * MB + b"\r\n")
            r = c.expect(500)
            self.assertTrue(r.lines[0].startswith("5.5.6 "), r)
            c.cmd("NOOP", expect=250)
        self.assert_still_serving("1mib-auth")


class Utf8AndEarlyTalkerTest(VolumeCase):
    def test_invalid_utf8_in_commands_and_addresses(self):
        with self.server.connect() as c:
            # A HELO name is not checked (as in Postfix by default), but it is echoed as sent.
            r = c.cmd(b"EHLO \xff\xfe.example", expect=250)
            self.assertTrue(r.lines[0].startswith("smtpfault.test greets "), r)
            r = c.cmd(b"N\xc3\x28OP", expect=500)
            self.assertEqual(r.lines, ["5.5.1 Command unrecognized"])
            # RFC 6532: an address with ill-formed UTF-8 is no address, even with SMTPUTF8.
            for bad in (b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\x80", b"\xf8\x88\x80\x80\x80"):
                r = c.cmd(b"MAIL FROM:<" + bad + b"@example.com> SMTPUTF8", expect=501)
                self.assertTrue(r.lines[0].startswith("5.1.7 "), (bad, r))
            # 8-bit is no xtext (RFC 3461 4), but in ORCPT's utf-8 type (RFC 6533).
            c.cmd(b"MAIL FROM:<j\xc3\xb6rg@example.com> SMTPUTF8 ENVID=\xc3", expect=501)
            c.cmd(b"MAIL FROM:<j\xc3\xb6rg@example.com> SMTPUTF8", expect=250)
            r = c.cmd(b"RCPT TO:<a@\xed\xa0\x80.example>", expect=501)
            self.assertTrue(r.lines[0].startswith("5.1.3 "), r)
            c.cmd(b"RCPT TO:<\xe2\x82\xac@example.com> ORCPT=utf-8;\xfe", expect=250)
            c.cmd("DATA", expect=354)
            body = b"Subject: \xff\xfe raw octets\r\n\r\n\xc3\x28 \xed\xa0\x80\r\n"
            c.send(body + b".\r\n")
            done = c.expect(250)
        # The .eml keeps every octet; the .json is valid UTF-8 JSON, wire junk as U+FFFD.
        with open(os.path.join(self.server.store, done.queued_id + ".json"), "rb") as f:
            raw = f.read()
        meta = json.loads(raw.decode("utf-8"))
        self.assertEqual(meta["mail_from"], "j\u00f6rg@example.com")
        self.assertEqual(meta["recipients"][0]["address"], "\u20ac@example.com")
        self.assertEqual(meta["session"]["helo"], "\ufffd\ufffd.example")
        self.assertEqual(meta["recipients"][0]["params"]["ORCPT"], "utf-8;\ufffd")
        self.assertEqual(self.server.message(done.queued_id).data, body)
        # The API serves the same message as valid JSON.
        status, _, api = self.server.api("GET", "/api/v1/messages/" + done.queued_id)
        self.assertEqual(status, 200)
        self.assertEqual(api["session"]["helo"], "\ufffd\ufffd.example")
        self.assert_still_serving("utf8")

    def test_client_talks_before_the_greeting(self):
        # Recorded behaviour: the server always sends its 220 first (it never reads before
        # greeting), then answers the early commands in order, as if they were pipelined, and
        # notes "client pipelined commands". It does not reject early talkers.
        sock = socket.create_connection((self.server.host, self.server.port), timeout=5)
        sock.sendall(b"EHLO early.example\r\nMAIL FROM:<early@example.com>\r\n")
        c = RawClient(sock, 5)
        sid = self.server.session_of(c)
        c.expect(220)
        c.expect(250)
        c.expect(250)
        c.cmd("QUIT", expect=221)
        c.close()
        lines = self.server.finished_session(sid)
        self.assertTrue(any("client pipelined commands" in l for l in lines), lines)
        self.assert_still_serving("early-talker")

    def test_early_talker_during_a_delayed_greeting(self):
        status, _, rule = self.server.api("POST", "/api/v1/faults", {
            "match": {"on": "connect"}, "action": {"delay": 1}, "times": 1})
        self.assertEqual(status, 201, rule)
        sock = socket.create_connection((self.server.host, self.server.port), timeout=5)
        # Commands while the server holds its greeting back: kept in the socket buffer, then
        # answered in order after the 220.
        sock.sendall(b"EHLO early.example\r\n" + b"NOOP\r\n" * 2000)
        c = RawClient(sock, 5)
        start = time.monotonic()
        c.expect(220, timeout=4)
        self.assertGreater(time.monotonic() - start, 0.5)
        c.expect(250)
        for _ in range(2000):
            c.expect(250)
        c.cmd("QUIT", expect=221)
        c.close()
        self.assert_still_serving("early-talker-delayed")


class AuthLineTest(VolumeCase):
    def test_auth_line_of_12288_octets_fits_and_12289_does_not(self):
        with self.server.connect() as c:
            c.ehlo()
            # The longest valid base64 that fits the limit: decoded, accepted (any credentials).
            ident = b"\x00user\x00" + b"p" * (12272 * 3 // 4 - 6)
            token = base64.b64encode(ident)
            self.assertEqual(len(token), 12272)
            line = b"AUTH PLAIN " + token + b"\r\n"
            self.assertLessEqual(len(line), 12288)
            c.send(line)
            c.expect(235)
        for total, code, enhanced in ((12288, 501, "5.5.2"), (12289, 500, "5.5.6")):
            with self.server.connect() as c:
                c.ehlo()
                # 12288 octets are read and decoded (bad base64: 501); one more is too long.
                line = b"AUTH PLAIN " + b"Q" * (total - 2 - 11) + b"\r\n"
                self.assertEqual(len(line), total)
                c.send(line)
                r = c.expect(code)
                self.assertTrue(r.lines[0].startswith(enhanced + " "), (total, r))
                c.cmd("AUTH LOGIN", expect=334)
                c.send(b"Q" * (total - 2) + b"\r\n")
                r = c.expect(code)
                self.assertTrue(r.lines[0].startswith(enhanced + " "), (total, r))
                c.cmd("NOOP", expect=250)
        self.assert_still_serving("auth-12288")

    def test_bad_base64_variants(self):
        variants = [b"dXNlcg=", b"dXNlcg", b"====", b"dX=Ncg==", b"dXNl cg==", b"dXNlcg==\x00",
                    b"dXNlcg==dXNl", b"d\xffNlcg==", b"dXNlch==", b"dXNlcg=x", b"*x", b"-_-_"]
        with self.server.connect() as c:
            c.ehlo()
            for v in variants[:6]:
                r = c.cmd(b"AUTH PLAIN " + v, expect=501)
                self.assertTrue(r.lines[0].startswith("5.5."), (v, r))
        with self.server.connect() as c:
            c.ehlo()
            for v in variants[6:]:
                c.cmd("AUTH LOGIN", expect=334)
                r = c.cmd(v, expect=501)
                self.assertTrue(r.lines[0].startswith("5.5.2 "), (v, r))
            c.cmd("NOOP", expect=250)
        self.assert_still_serving("bad-base64")


class BdatSizeTest(VolumeCase):
    def test_sizes_beyond_63_bits_are_a_syntax_error_and_close(self):
        for size in (2 ** 63, 2 ** 64, 10 ** 30):
            with self.server.connect() as c:
                self.open_transaction(c)
                c.send(b"BDAT %d LAST\r\n" % size)
                r = c.expect(501)
                self.assertEqual(r.lines, ["5.5.4 Syntax: BDAT <size> [LAST]"], size)
                # The chunk cannot be skipped, so the session cannot continue: it is closed,
                # after a 421 (RFC 5321 3.8).
                r = c.expect(421)
                self.assertIn("Malformed BDAT, closing connection", r.lines[0], size)
                self.assertTrue(c.closed_by_peer(2.0), size)
        self.assertTrue(self.server.alive())
        self.assert_still_serving("bdat-2^64")

    def test_largest_size_is_read_with_memory_capped_at_the_message_limit(self):
        before = self.server.message_ids()
        peak = rss_kb(self.server)
        with self.server.connect() as c:
            self.open_transaction(c)
            c.send(b"BDAT %d LAST\r\n" % (2 ** 63 - 1))
            chunk = b"z" * (64 * 1024)
            # 24 MB: the server reads on (RFC 3030) but keeps at most the 10 MB SIZE limit.
            for i in range(24 * MB // len(chunk)):
                c.send(chunk)
                if i % 32 == 0:
                    peak = max(peak, rss_kb(self.server))
            self.assertTrue(c.nothing_pending(0.2))
            sid = self.server.session_of(c)
            reset(c.sock)
        self.server.finished_session(sid)
        self.assertEqual(self.server.message_ids(), before)
        self.assert_bounded("BDAT 2^63-1 with 24 MB sent", peak)
        self.assert_still_serving("bdat-max")


def reply_lines(client, count, deadline):
    """Yields batches of single-line replies (bytes, no CRLF) until count have come; splitting
    whole buffers keeps 100,000 replies cheap to read."""
    got = 0
    buf = client.buf
    client.buf = b""
    while got < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("only %d of %d replies before the deadline" % (got, count))
        client.sock.settimeout(remaining)
        chunk = client.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("server closed after %d of %d replies" % (got, count))
        buf += chunk
        *lines, buf = buf.split(b"\r\n")
        got += len(lines)
        yield lines
    client.buf = buf


class RecipientFloodTest(VolumeCase):
    def test_100000_pipelined_recipients(self):
        n = 100_000
        limit = 1000   # the default limits.max_recipients
        codes = {}
        peak = [rss_kb(self.server)]
        with self.server.connect(timeout=30) as c:
            c.ehlo()
            burst = (b"MAIL FROM:<sender@example.com>\r\n"
                     + b"".join(b"RCPT TO:<u%06d@example.com>\r\n" % i for i in range(n)))
            sent = threading.Event()

            def writer():
                view = memoryview(burst)
                for off in range(0, len(view), 256 * 1024):
                    c.sock.sendall(view[off:off + 256 * 1024])
                sent.set()

            start = time.monotonic()
            t = threading.Thread(target=writer, daemon=True)
            t.start()
            replies = []
            checked_midway = False
            for batch in reply_lines(c, n + 1, deadline=start + 30 * SLOW):
                replies.extend(batch)
                for line in batch:
                    codes[line[:3]] = codes.get(line[:3], 0) + 1
                peak[0] = max(peak[0], rss_kb(self.server))
                if not checked_midway and len(replies) > n // 2:
                    checked_midway = True
                    self.assert_greeted_quickly()
            elapsed = time.monotonic() - start
            t.join(10)
            self.assertTrue(sent.is_set())
            self.assertEqual(codes, {b"250": limit + 1, b"452": n - limit})
            self.assertEqual(replies[limit], b"250 2.1.5 Recipient <u%06d@example.com> OK"
                             % (limit - 1))
            self.assertEqual(replies[limit + 1], b"452 4.5.3 Too many recipients")
            self.assertEqual(replies[-1], b"452 4.5.3 Too many recipients")
            self.assertLess(elapsed, 30 * SLOW, "100,000 RCPTs took %.1fs" % elapsed)
            c.cmd("DATA", expect=354)
            c.send(b"Subject: flood\r\n\r\nfirst thousand\r\n.\r\n")
            done = c.expect(250)
        msg = self.server.message(done.queued_id)
        self.assertEqual(len(msg.recipients), limit)
        self.assertEqual(msg.recipients[-1], "u%06d@example.com" % (limit - 1))
        self.assert_bounded("100,000 RCPTs", max(peak[0], rss_kb(self.server)))
        self.assert_still_serving("rcpt-flood")


class PipelinedFloodTest(VolumeCase):
    """Two clients on the server's one I/O thread pipeline 20,000 NOOPs each: the thread takes
    their lines in turns of a few hundred, where one read (64 KiB, 10,922 NOOPs) would hold it
    40-90 ms for one client while the other, new clients and a SIGTERM wait."""

    SERVER_ARGS = ("--set", "threads=1")
    N = 20_000
    LONGEST_TURN = 1024   # lines of one session while the other has some waiting

    def flood(self, client, start, errors):
        try:
            start.wait(10)
            writer = threading.Thread(target=client.sock.sendall, args=(b"NOOP\r\n" * self.N,),
                                      daemon=True)
            writer.start()
            codes = set()
            for batch in reply_lines(client, self.N, deadline=time.monotonic() + 30 * SLOW):
                codes.update(line[:3] for line in batch)
            writer.join(10)
            if codes != {b"250"}:
                errors.append("replies other than 250: %r" % codes)
        except Exception as e:   # reported by the test's own thread
            errors.append(repr(e))

    def test_two_floods_on_one_thread_take_turns(self):
        a, b = self.server.connect(timeout=30), self.server.connect(timeout=30)
        with a, b:
            sessions = [self.server.session_of(c) for c in (a, b)]
            for c in (a, b):
                c.ehlo()
            errors = []
            start = threading.Barrier(2)
            floods = [threading.Thread(target=self.flood, args=(c, start, errors))
                      for c in (a, b)]
            for f in floods:
                f.start()
            for f in floods:
                f.join(60 * SLOW)
            self.assertEqual(errors, [])
        # The replies are out before the thread's transcript lines are flushed to stdout and
        # read here (under ASan the last few dozen lag): wait for them, with a deadline.
        deadline = time.monotonic() + 10 * SLOW
        while True:
            order = [line.split()[1] for line in self.server.transcript()
                     if line.endswith(" C: NOOP") and line.split()[1] in sessions]
            if len(order) >= 2 * self.N or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(len(order), 2 * self.N)
        # From the later session's first line to the earlier one's last, both had lines
        # waiting: the longest stretch of one session alone there.
        both_from = max(order.index(s) for s in sessions)
        both_to = min(len(order) - order[::-1].index(s) for s in sessions)
        self.assertLess(both_from, both_to,
                        "all %d lines of %s were taken before the first of the other"
                        % (self.N, order[0]))
        longest, run = 0, 0
        for i in range(both_from, both_to):
            run = run + 1 if order[i] == order[i - 1] else 1
            longest = max(longest, run)
        self.assertLessEqual(longest, self.LONGEST_TURN,
                             "one session had %d lines in a row" % longest)
        self.assert_still_serving("pipelined-floods")


class FoldedHeaderTest(VolumeCase):
    def deliver(self, body):
        with self.server.connect(timeout=20) as c:
            self.open_transaction(c)
            c.cmd("DATA", expect=354)
            c.send(body + b".\r\n")
            done = c.expect(250)
        return done.queued_id

    def test_one_megabyte_of_folded_header_lines(self):
        # One header field folded 100,000 times, with growing indentation ("nested"), then a
        # block of 20,000 short fields: 1.4 MB of header, no blank line until the end.
        folded = b"X-Folded: start\r\n" + b"".join(
            b"%s fold %06d\r\n" % (b" " * (1 + i % 7), i) for i in range(100_000))
        many = b"".join(b"X-H%05d: v\r\n" % i for i in range(20_000))
        body = b"Subject: folded\r\n" + folded + many + b"\r\nbody\r\n"
        self.assertGreater(len(folded), MB)
        message_id = self.deliver(body)
        self.assertEqual(self.server.message(message_id).data, body)
        start = time.monotonic()
        status, _, api = self.server.api("GET", "/api/v1/messages/" + message_id, timeout=20)
        self.assertEqual(status, 200)
        self.assertLess(time.monotonic() - start, 5.0 * SLOW)
        self.assertEqual(api["subject"], "folded")
        self.assert_bounded("1 MB folded header", rss_kb(self.server))
        self.assert_still_serving("folded")

    def test_header_block_that_never_ends(self):
        # A single header line of 2 MB is a text line over the limit: 500 after the dot.
        before = self.server.message_ids()
        with self.server.connect() as c:
            self.open_transaction(c)
            c.cmd("DATA", expect=354)
            c.send(b"X-Long: " + b"h" * (2 * MB) + b"\r\n\r\nb\r\n.\r\n")
            r = c.expect(500)
            self.assertTrue(r.lines[0].startswith("5.5.2 "), r)
        self.assertEqual(self.server.message_ids(), before)
        self.assert_still_serving("header-never-ends")


if __name__ == "__main__":
    unittest.main(verbosity=2)
