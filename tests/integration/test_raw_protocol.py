"""Protocol features driven over a raw socket, byte by byte: BDAT/CHUNKING, LMTP, PIPELINING,
STARTTLS (pipelined plaintext discarded, state reset, not offered twice), HELO vs EHLO codes."""

import re
import time
import unittest

from fault_case import data_segments_in, read_to_eof
from smtpfault_server import ServerTestCase, server_with_scenario


def lmtp_to_data(c, rcpts):
    """LHLO, MAIL and an accepted RCPT per recipient, then DATA's 354: ready for the text."""
    c.cmd("LHLO client.test", expect=250)
    c.cmd("MAIL FROM:<sender@example.com>", expect=250)
    for r in rcpts:
        c.cmd("RCPT TO:<%s>" % r, expect=250)
    c.cmd("DATA", expect=354)


class ChunkingTest(ServerTestCase):
    def open_transaction(self, c, rcpts=("rcpt@example.com",)):
        c.ehlo()
        c.cmd("MAIL FROM:<sender@example.com>", expect=250)
        for r in rcpts:
            c.cmd("RCPT TO:<%s>" % r, expect=250)

    def test_ehlo_advertises_chunking(self):
        with self.server.connect() as c:
            self.assertIn("CHUNKING", c.ehlo().lines)

    def test_several_chunks_then_bdat_0_last(self):
        chunks = [b"Subject: bdat\r\n\r\nfirst chunk\r\n",
                  b"a chunk with an SMTP end marker inside:\r\n.\r\n",
                  b".leading dot is not stuffing in BDAT\r\n..\r\n",
                  b"no line end at the chunk end",
                  b" - continued\r\n"]
        with self.server.connect() as c:
            self.open_transaction(c)
            total = 0
            for chunk in chunks:
                c.send(b"BDAT %d\r\n" % len(chunk) + chunk)
                total += len(chunk)
                r = c.expect(250)
                self.assertEqual(r.lines, ["2.0.0 %d octets received" % total])
            done = c.cmd("BDAT 0 LAST", expect=250)
            c.cmd("QUIT", expect=221)
        msg = self.server.message(done.queued_id)
        self.assertEqual(msg.data, b"".join(chunks))
        self.assertTrue(msg.meta["via_bdat"])
        # A line "." is content in BDAT, and noted: a relay passing it on with DATA would end there.
        self.assertEqual(msg.anomalies, [("dot_line", 71)])

    def test_pipelined_chunks_with_last(self):
        body = b"Subject: one write\r\n\r\n.\r\n\r\n.\r\nbinary \x00\x01\xff ok\r\n"
        with self.server.connect() as c:
            c.ehlo()
            half = len(body) // 2
            c.send(b"MAIL FROM:<sender@example.com> BODY=8BITMIME\r\n"
                   b"RCPT TO:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
                   + b"BDAT %d\r\n" % half + body[:half]
                   + b"BDAT %d LAST\r\n" % (len(body) - half) + body[half:])
            c.expect(250)
            c.expect(250)
            c.expect(250)
            c.expect(250)
            done = c.expect(250)
            self.assertIsNotNone(done.queued_id)
        msg = self.server.message(done.queued_id)
        self.assertEqual(msg.data, body)
        self.assertEqual(msg.recipients, ["a@example.com", "b@example.com"])

    def test_data_after_bdat_is_refused(self):
        with self.server.connect() as c:
            self.open_transaction(c)
            c.send(b"BDAT 5\r\nhello")
            c.expect(250)
            r = c.cmd("DATA", expect=503)
            self.assertTrue(r.lines[0].startswith("5.5.1"), r)
            c.send(b"BDAT 7 LAST\r\n world\n")
            done = c.expect(250)
        msg = self.server.message(done.queued_id)
        self.assertEqual(msg.data, b"hello world\n")

    def test_bdat_without_rcpt_swallows_the_chunk(self):
        with self.server.connect() as c:
            c.ehlo()
            c.cmd("MAIL FROM:<sender@example.com>", expect=250)
            # The chunk must be read and dropped, not parsed as commands.
            c.send(b"BDAT 12 LAST\r\nQUIT\r\nRSET\r\n")
            r = c.expect(503)
            self.assertEqual(r.lines, ["5.5.1 Need RCPT command"])
            self.assertEqual(c.cmd("NOOP").code, 250)
        self.assert_still_serving("bdat-rejected")


class PipeliningNoteTest(ServerTestCase):
    def test_pipelining_is_noted_once_a_session_not_per_read(self):
        # Commands written without waiting, two per write, reach the server with another
        # behind them in every read (how many per read otherwise depends on the scheduler):
        # that is still one note, not one per read.
        with self.server.connect() as c:
            c.ehlo()
            sid = self.server.session_of(c)
            c.send(b"MAIL FROM:<a@x.test>\r\n")
            for i in range(0, 300, 2):
                c.send(b"RCPT TO:<r%d@y.test>\r\nRCPT TO:<r%d@y.test>\r\n" % (i, i + 1))
            c.send(b"RSET\r\n")
            for _ in range(302):
                self.assertLess(c.reply(timeout=5).code, 500)
            c.cmd("QUIT", expect=221)
        lines = self.server.finished_session(sid)
        notes = [l for l in lines if "client pipelined commands" in l]
        self.assertEqual(len(notes), 1, notes[:5])

    def test_a_bdat_chunk_in_the_write_of_its_command_is_not_pipelining(self):
        # RFC 3030: the chunk follows the command at once; clients write both together.
        with self.server.connect() as c:
            c.ehlo()
            sid = self.server.session_of(c)
            c.cmd("MAIL FROM:<a@x.test>", expect=250)
            c.cmd("RCPT TO:<b@y.test>", expect=250)
            c.send(b"BDAT 9\r\nSubject: ")
            self.assertEqual(c.reply(timeout=5).code, 250)
            c.send(b"BDAT 6 LAST\r\nhi\r\n\r\n")
            self.assertEqual(c.reply(timeout=5).code, 250)
            c.cmd("QUIT", expect=221)
        lines = self.server.finished_session(sid)
        self.assertFalse([l for l in lines if "client pipelined commands" in l], lines)


class LmtpTest(ServerTestCase):
    LMTP = True

    def test_greeting_and_lhlo(self):
        with self.server.connect() as c:
            self.assertRegex(c.greeting.lines[0], r"^\S+ LMTP smtpfault ready$")
            r = c.cmd("EHLO client.test", expect=500)
            self.assertEqual(r.lines, ["This is an LMTP server: use LHLO"])   # no LHLO yet
            c.cmd("HELO client.test", expect=500)
            r = c.cmd("LHLO client.test", expect=250)
            self.assertIn("PIPELINING", r.lines)

    def test_one_reply_per_recipient_after_data(self):
        rcpts = ["one@example.com", "two@example.com", "three@example.com"]
        body = b"Subject: lmtp\r\n\r\nper-recipient replies\r\n"
        with self.server.connect() as c:
            lmtp_to_data(c, rcpts)
            c.send(body + b".\r\n")
            replies = [c.expect(250) for _ in rcpts]
            ids = {r.queued_id for r in replies}
            self.assertEqual(len(ids), 1, replies)
            # Exactly three: the next reply belongs to the next command.
            r = c.cmd("NOOP", expect=250)
            self.assertEqual(r.lines, ["2.0.0 Ok"])
        msg = self.server.message(ids.pop())
        self.assertEqual(msg.data, body)
        self.assertEqual(msg.recipients, rcpts)
        self.assertTrue(msg.session["lmtp"])

    def test_bdat_in_lmtp_also_replies_per_recipient(self):
        body = b"Subject: lmtp bdat\r\n\r\nchunked\r\n"
        with self.server.connect() as c:
            c.cmd("LHLO client.test", expect=250)
            c.cmd("MAIL FROM:<sender@example.com>", expect=250)
            c.cmd("RCPT TO:<a@example.com>", expect=250)
            c.cmd("RCPT TO:<b@example.com>", expect=250)
            c.send(b"BDAT %d LAST\r\n" % len(body) + body)
            first, second = c.expect(250), c.expect(250)
            self.assertEqual(first.queued_id, second.queued_id)
        self.assertEqual(self.server.message(first.queued_id).data, body)


class MagicAddressWordsTest(ServerTestCase):
    """magic-addresses over SMTP: a code answers in the words of the command it answers."""
    SERVER_ARGS = ("--scenario", "magic-addresses")

    def mail_started(self):
        """A connection that has said EHLO and MAIL FROM, closed when the test ends."""
        c = self.server.connect()
        self.addCleanup(c.close)
        c.cmd("EHLO client.test", expect=250)
        c.cmd("MAIL FROM:<a@x.test>", expect=250)
        return c

    def test_a_refused_data_is_a_failed_transaction_and_a_refused_rcpt_a_relay_refusal(self):
        c = self.mail_started()
        self.assertEqual(c.cmd("RCPT TO:<rcpt-554@example.com>", expect=554).text,
                         "5.7.1 Relay access denied")
        c.cmd("RCPT TO:<data-554@example.com>", expect=250)
        self.assertEqual(c.cmd("DATA", expect=554).text, "5.0.0 Transaction failed")

    def test_a_quoted_local_part_is_the_same_magic_address(self):
        # RFC 5321 4.1.2: "rcpt-550"@x and rcpt-550@x name one mailbox.
        c = self.mail_started()
        c.cmd('RCPT TO:<"rcpt-550"@example.com>', expect=550)
        c.cmd('RCPT TO:<"rcpt\\-451"@example.com>', expect=451)
        c.cmd('RCPT TO:<"plain user"@example.com>', expect=250)

    def test_the_first_recipient_with_a_data_fault_decides_at_data(self):
        c = self.mail_started()
        c.cmd("RCPT TO:<drop-mid-data@example.com>", expect=250)
        c.cmd("RCPT TO:<data-554@example.com>", expect=250)
        c.cmd("DATA", expect=354)
        try:
            c.send(b"Subject: cut\r\n\r\n")
        except ConnectionError:
            pass   # the reset may come before the text is written
        self.assertTrue(c.closed_by_peer(timeout=5))
        c = self.mail_started()
        c.cmd("RCPT TO:<data-554@example.com>", expect=250)
        c.cmd("RCPT TO:<drop-mid-data@example.com>", expect=250)
        c.cmd("DATA", expect=554)
        c.cmd("RSET", expect=250)


class Starttls454CountsConnections(ServerTestCase):
    """starttls-454 refuses the first two connections, however often each asks."""
    SERVER_ARGS = ("--scenario", "starttls-454")

    def test_a_second_starttls_on_one_connection_is_not_a_second_connection(self):
        with self.server.connect() as c:
            c.ehlo()
            c.cmd("STARTTLS", expect=454)
            c.cmd("STARTTLS", expect=454)
            c.cmd("QUIT", expect=221)
        with self.server.connect() as c:
            c.ehlo()
            c.cmd("STARTTLS", expect=454)
            c.cmd("QUIT", expect=221)
        with self.server.connect() as c:
            c.ehlo()
            c.cmd("STARTTLS", expect=220)


class LmtpPerRecipientFaultTest(ServerTestCase):
    """smtp.each_recipient (here through magic-addresses): after the dot, each recipient gets a
    reply of its own; the message is stored when one or more accepts it."""
    LMTP = True
    SERVER_ARGS = ("--scenario", "magic-addresses")

    def transaction(self, rcpts, body):
        with self.server.connect() as c:
            lmtp_to_data(c, rcpts)
            c.send(body + b".\r\n")
            replies = [c.reply() for _ in rcpts]
            c.cmd("NOOP", expect=250)   # exactly one reply per recipient
        return replies

    def test_one_recipient_refused_the_others_delivered(self):
        before = len(self.server.message_ids())
        replies = self.transaction(["ok@example.com", "message-552@example.com",
                                    "ok2@example.com"], b"Subject: each\r\n\r\nhi\r\n")
        self.assertEqual([r.code for r in replies], [250, 552, 250])
        self.assertEqual(replies[1].text, "5.3.4 Message exceeds fixed maximum message size")
        self.assertEqual(replies[0].queued_id, replies[2].queued_id)
        self.assertEqual(len(self.server.message_ids()), before + 1)
        self.assertEqual(self.server.message(replies[0].queued_id).recipients,
                         ["ok@example.com", "ok2@example.com"])

    def test_every_recipient_refused_stores_nothing(self):
        before = len(self.server.message_ids())
        replies = self.transaction(["message-452@example.com", "message-554@example.com"],
                                   b"Subject: none\r\n\r\nhi\r\n")
        self.assertEqual([r.code for r in replies], [452, 554])
        self.assertEqual(len(self.server.message_ids()), before)
        # A code answers in the words of the command it answers: 554 to the message is a failed
        # transaction, not RCPT's relay refusal.
        self.assertEqual(replies[1].text, "5.0.0 Transaction failed")
        self.assertEqual(replies[0].text, "4.3.1 Insufficient system storage")


    def test_the_first_magic_recipient_still_decides(self):
        # drop-after-dot comes first: the connection is lost, nobody gets a reply.
        before = len(self.server.message_ids())
        with self.server.connect() as c:
            lmtp_to_data(c, ["drop-after-dot@example.com", "message-552@example.com"])
            c.send(b"Subject: lost\r\n\r\nhi\r\n.\r\n")
            self.assertTrue(c.closed_by_peer(timeout=5))
        self.assertEqual(len(self.server.message_ids()), before)


class RepliesWrittenApartAreNotHeldBack(unittest.TestCase):
    def test_a_scenarios_reply_per_recipient_arrives_at_once(self):
        # Written one by one, the second and third waited for the client's delayed ACK under
        # Nagle's algorithm: 40 ms each time, on every try.
        server = server_with_scenario(
            self, 'function on_message(s, m) return smtp.reply(552, "5.3.4", "too big") end\n',
            lmtp=True)
        gaps = []
        for _ in range(5):
            with server.connect() as c:
                lmtp_to_data(c, ["a@example.com", "b@example.com", "c@example.com"])
                c.send(b"Subject: x\r\n\r\nhi\r\n.\r\n")
                c.expect(552)
                first = time.monotonic()
                c.expect(552)
                c.expect(552)
                gaps.append(time.monotonic() - first)
        self.assertLess(sorted(gaps)[2], 0.02, gaps)


class LmtpEachRecipientWithAnEnding(unittest.TestCase):
    """smtp.each_recipient with :close(): every recipient's reply goes out, then the close."""

    def test_every_reply_comes_before_the_close_and_smtp_ignores_it(self):
        scenario = ('function on_message(s, msg)\n'
                    '  return smtp.each_recipient({ false, smtp.reply(552, "5.2.2", "Full") })'
                    ':close()\nend\n')
        lmtp = server_with_scenario(self, scenario, lmtp=True)
        with lmtp.connect() as c:
            c.cmd("LHLO client.test", expect=250)
            c.cmd("MAIL FROM:<sender@example.com>", expect=250)
            for r in ("a@example.com", "b@example.com", "c@example.com"):
                c.cmd("RCPT TO:<%s>" % r, expect=250)
            c.cmd("DATA", expect=354)
            c.send(b"Subject: each\r\n\r\nhi\r\n.\r\n")
            self.assertEqual([c.reply().code for _ in range(3)], [250, 552, 250])
            self.assertTrue(c.closed_by_peer(timeout=5))
        # Over SMTP the list changes nothing: the normal reply, as a HELO client gets it.
        smtp = server_with_scenario(self, scenario)
        with smtp.connect() as c:
            c.cmd("HELO client.test", expect=250)
            c.cmd("MAIL FROM:<sender@example.com>", expect=250)
            c.cmd("RCPT TO:<a@example.com>", expect=250)
            c.cmd("DATA", expect=354)
            c.send(b"Subject: smtp\r\n\r\nhi\r\n.\r\n")
            r = c.expect(250)
            self.assertTrue(r.lines[0].startswith("Ok: queued as"), r.lines)


class LmtpEachRecipientWith421(unittest.TestCase):
    """A 421 for one recipient: every recipient still gets its reply, then the server closes
    (RFC 5321 3.8: 421 says the channel is closing)."""

    def answers(self, action):
        lmtp = server_with_scenario(
            self, 'function on_message(s, msg)\n  return %s\nend\n' % action, lmtp=True)
        with lmtp.connect() as c:
            lmtp_to_data(c, ["a@example.com", "b@example.com", "c@example.com"])
            c.send(b"Subject: each\r\n\r\nhi\r\n.\r\n")
            codes = [c.reply().code for _ in range(3)]
            self.assertTrue(c.closed_by_peer(timeout=5))
        return codes

    def test_the_server_closes_after_the_last_reply(self):
        each = 'smtp.each_recipient({ false, smtp.reply(421, "4.3.0", "Bye") })'
        self.assertEqual(self.answers(each), [250, 421, 250])
        # Also with a delay on the list: the 421 still waits for the last reply.
        self.assertEqual(self.answers(each + ":delay(0.1)"), [250, 421, 250])

    def test_a_421_for_the_message_answers_every_recipient_first(self):
        self.assertEqual(self.answers('smtp.reply(421, "4.3.0", "Going down")'), [421] * 3)


class LmtpPerRecipientRuleTest(ServerTestCase):
    """The same through an API rule on "message", for docker-compose users."""
    LMTP = True

    def test_a_rule_answers_each_recipient(self):
        status, _, body = self.server.api("POST", "/api/v1/faults", {
            "match": {"on": "RCPT"}, "action": {"each_recipient": [None]}})
        self.assertEqual((status, body.get("field")), (400, "match.on"), body)
        status, _, body = self.server.api("POST", "/api/v1/faults", {
            "match": {"on": "message"},
            "action": {"each_recipient": [None, {"code": 452, "enhanced": "4.2.2",
                                                 "text": "Mailbox full"}]}})
        self.assertEqual(status, 201, body)
        with self.server.connect() as c:
            lmtp_to_data(c, ["a@example.com", "b@example.com"])
            c.send(b"Subject: rule\r\n\r\nhi\r\n.\r\n")
            first, second = c.reply(), c.reply()
        self.assertEqual((first.code, second.code), (250, 452))
        self.assertEqual(second.lines, ["4.2.2 Mailbox full"])
        # b was refused: the message is not b's, and a wait for b's mail must not find it.
        self.assertEqual(self.server.message(first.queued_id).recipients, ["a@example.com"])
        status, _, body = self.server.api("GET", "/api/v1/messages/wait?to=b@example.com&timeout=0.2")
        self.assertEqual(status, 408, body)


class EachRecipientOverSmtpTest(ServerTestCase):
    def test_rules_that_could_change_nothing_are_refused(self):
        # Over SMTP the message has one reply; a challenge is only ever sent to AUTH.
        for rule, field, says in [
                ({"match": {"on": "message"}, "action": {"each_recipient": [None]}},
                 "action.each_recipient", "one reply per recipient is LMTP's"),
                ({"match": {"on": "NOOP"}, "action": {"challenge": "x"}}, "match.on",
                 "challenge is the next 334 of an AUTH exchange")]:
            status, _, body = self.server.api("POST", "/api/v1/faults", rule)
            self.assertEqual((status, body.get("field")), (400, field), body)
            self.assertIn(says, body["error"])
        status, _, body = self.server.api("GET", "/api/v1/faults")
        self.assertEqual(body["rules"], [])
        status, _, body = self.server.api("POST", "/api/v1/faults", {
            "match": {"on": "AUTH"}, "action": {"challenge": "x"}})
        self.assertEqual(status, 201, body)


class LmtpEachRecipientTooManyTest(ServerTestCase):
    LMTP = True

    def test_replies_beyond_the_recipients_are_noted_not_sent(self):
        status, _, body = self.server.api("POST", "/api/v1/faults", {
            "match": {"on": "message"},
            "action": {"each_recipient": [None, {"code": 452}, {"code": 550}]}})
        self.assertEqual(status, 201, body)
        with self.server.connect() as c:
            lmtp_to_data(c, ["a@example.com", "b@example.com"])
            c.send(b"Subject: two\r\n\r\nhi\r\n.\r\n")
            self.assertEqual([c.reply().code, c.reply().code], [250, 452])
            c.cmd("NOOP", expect=250)
            sid = self.server.session_of(c)
        # Read from the server's output as it comes: the line may trail the replies a moment.
        self.server.wait_for_line(r"%s \*: .*each_recipient gave 3 replies for 2 recipient\(s\)"
                                  % sid)


class PipeliningTest(ServerTestCase):
    def test_replies_come_in_command_order(self):
        body = b"Subject: pipelined\r\n\r\nall in one write\r\n"
        with self.server.connect() as c:
            c.send(b"EHLO client.test\r\n"
                   b"MAIL FROM:<sender@example.com>\r\n"
                   b"RCPT TO:<a@example.com>\r\n"
                   b"RCPT TO:<bad address>\r\n"
                   b"NOOP\r\n"
                   b"VRFY someone\r\n"
                   b"RCPT TO:<b@example.com>\r\n"
                   b"DATA\r\n" + body + b".\r\n"
                   b"MAIL FROM:<second@example.com>\r\n"
                   b"RSET\r\n"
                   b"QUIT\r\n")
            got = []
            while True:
                r = c.reply()
                got.append((r.code, r.lines[0]))
                if r.code == 221:
                    break
        self.assertEqual([code for code, _ in got],
                         [250, 250, 250, 501, 250, 252, 250, 354, 250, 250, 250, 221], got)
        self.assertIn("greets client.test", got[0][1])
        self.assertTrue(got[1][1].startswith("2.1.0"))
        self.assertTrue(got[3][1].startswith("5.1.3"))
        self.assertEqual(got[4][1], "2.0.0 Ok")
        queued = re.search(r"queued as (\S+)", got[8][1]).group(1)
        msg = self.server.message(queued)
        self.assertEqual(msg.data, body)
        self.assertEqual(msg.recipients, ["a@example.com", "b@example.com"])

    def test_replies_to_one_pipelined_write_leave_in_one_segment(self):
        # RFC 2920: the end of one message, a whole second transaction and QUIT sent at once;
        # the server answers all of them with one write, so the client reads one segment.
        with self.server.connect() as c:
            c.ehlo()
            c.cmd("MAIL FROM:<sender@example.com>", expect=250)
            c.cmd("RCPT TO:<a@example.com>", expect=250)
            c.cmd("DATA", expect=354)
            before = data_segments_in(c.sock)
            if before is None:
                self.skipTest("TCP_INFO without tcpi_data_segs_in")
            c.send(b"first\r\n.\r\n"
                   b"MAIL FROM:<sender@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"
                   b"second\r\n.\r\nQUIT\r\n")
            wire = read_to_eof(c)
            self.assertEqual(re.findall(rb"(?m)^(\d{3}) ", wire),
                             [b"250", b"250", b"250", b"354", b"250", b"221"], wire)
            self.assertEqual(data_segments_in(c.sock) - before, 1, wire)

    def test_helo_session_has_no_enhanced_codes(self):
        with self.server.connect() as c:
            self.assertRegex(c.greeting.lines[0], r"^\S+ ESMTP smtpfault ready$")
            r = c.cmd("HELO client.test", expect=250)
            self.assertEqual(len(r.lines), 1)
            r = c.cmd("MAIL FROM:<sender@example.com>", expect=250)
            self.assertNotRegex(r.lines[0], r"^\d\.\d+\.\d+ ")
            r = c.cmd("RCPT TO:<rcpt@example.com>", expect=250)
            self.assertNotRegex(r.lines[0], r"^\d\.\d+\.\d+ ")
            r = c.cmd("FROB", expect=500)
            self.assertNotRegex(r.lines[0], r"^\d\.\d+\.\d+ ")

    def test_ehlo_keywords(self):
        with self.server.connect() as c:
            r = c.ehlo()
        for kw in ("PIPELINING", "SIZE 10485760", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES",
                   "CHUNKING", "DSN", "STARTTLS", "AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2"):
            self.assertIn(kw, r.lines[1:])


class StartTlsTest(ServerTestCase):
    def test_plaintext_pipelined_after_starttls_is_discarded(self):
        with self.server.connect() as c:
            sid = self.server.session_of(c)
            c.ehlo()
            c.send(b"STARTTLS\r\nRSET\r\n")   # one segment: RSET rides along in plaintext
            r = c.expect(220)
            self.assertEqual(r.lines, ["2.0.0 Ready to start TLS"])
            c.wrap_tls()
            r = c.cmd("EHLO client.test", expect=250)
            # Had RSET been acted on, its "250 2.0.0 Ok" would have come first.
            self.assertIn("greets client.test", r.lines[0])
            r = c.cmd("NOOP", expect=250)
            self.assertEqual(r.lines, ["2.0.0 Ok"])
            c.cmd("QUIT", expect=221)
        self.server.wait_for_line(r" %s \*: discarded 6 octets of plaintext pipelined "
                                  r"after STARTTLS" % sid)
        lines = self.server.finished_session(sid)
        self.assertFalse(any(l.endswith("C: RSET") for l in lines), lines)

    def test_starttls_not_offered_again_and_state_reset(self):
        with self.server.connect() as c:
            c.ehlo()
            c.cmd("MAIL FROM:<before-tls@example.com>", expect=250)
            c.cmd("STARTTLS", expect=220)
            c.wrap_tls()
            # RFC 3207 4.2: the handshake forgets EHLO and the open transaction.
            r = c.cmd("MAIL FROM:<sender@example.com>", expect=503)
            r = c.ehlo()
            self.assertNotIn("STARTTLS", r.lines)
            self.assertIn("AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2", r.lines)
            r = c.cmd("STARTTLS", expect=503)
            self.assertEqual(r.lines, ["5.5.1 TLS already active"])
            c.cmd("MAIL FROM:<sender@example.com>", expect=250)
            c.cmd("RCPT TO:<rcpt@example.com>", expect=250)
            c.cmd("DATA", expect=354)
            body = b"Subject: inside TLS\r\n\r\nok\r\n"
            c.send(body + b".\r\n")
            done = c.expect(250)
        msg = self.server.message(done.queued_id)
        self.assertEqual(msg.data, body)
        self.assertEqual(msg.meta["mail_from"], "sender@example.com")
        self.assertTrue(msg.session["tls"])

    def test_starttls_before_ehlo_or_after_helo_is_refused_like_auth(self):
        # Only EHLO's reply offers STARTTLS (RFC 3207 4); it was once carried out unoffered.
        with self.server.connect() as c:
            r = c.cmd("STARTTLS", expect=503)
            self.assertEqual(r.lines, ["Send EHLO first"])  # no enhanced code before EHLO
            c.cmd("HELO client.test", expect=250)
            c.cmd("STARTTLS", expect=503)
            c.ehlo()
            c.cmd("STARTTLS", expect=220)
            c.wrap_tls()
            c.ehlo()

    def test_implicit_tls_port_does_not_offer_starttls(self):
        with self.server.connect(tls=True) as c:
            r = c.ehlo()
            self.assertNotIn("STARTTLS", r.lines)
            c.cmd("STARTTLS", expect=503)


if __name__ == "__main__":
    unittest.main(verbosity=2)
