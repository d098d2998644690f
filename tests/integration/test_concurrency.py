"""Many sessions at once on several I/O threads: every session must see exactly its own bytes.
(Reads that share one buffer across pending operations once mixed sessions' commands up.)"""

import os
import re
import tempfile
import threading
import time
import unittest

from smtpfault_server import SmtpfaultServer

CLIENTS = 40
MESSAGES_EACH = 15


class ConcurrentSessions(unittest.TestCase):
    def test_every_message_arrives_intact_under_concurrency(self):
        srv = SmtpfaultServer("--threads", "2", "--log-format", "none").start()
        errors = []
        sent = {}

        def client(n):
            try:
                for m in range(MESSAGES_EACH):
                    body = ("Subject: c%d m%d\r\n\r\n" % (n, m) + ("client %d message %d\r\n"
                            % (n, m)) * (1 + (n * 7 + m) % 40)).encode()
                    with srv.connect() as c:
                        # Pipelined burst, then the data: both framings at once.
                        c.send(b"EHLO c%d\r\nMAIL FROM:<c%d@x.test>\r\nRCPT TO:<m%d@y.test>\r\n"
                               % (n, n, m))
                        for code in (250, 250, 250):
                            c.expect(code)
                        c.cmd("DATA", expect=354)
                        c.send(body + b".\r\n")
                        done = c.expect(250)
                        c.cmd("QUIT", expect=221)
                    sent[done.queued_id] = (n, m, body)
            except Exception as e:   # noqa: BLE001 - reported below
                errors.append("client %d: %r" % (n, e))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        try:
            self.assertEqual(errors, [])
            self.assertEqual(len(sent), CLIENTS * MESSAGES_EACH)
            srv.wait_for_messages(len(sent))
            for qid, (n, m, body) in sent.items():
                msg = srv.message(qid)
                self.assertEqual(msg.data, body)
                self.assertEqual(msg.meta["mail_from"], "c%d@x.test" % n)
                self.assertEqual(msg.recipients, ["m%d@y.test" % m])
        finally:
            srv.stop()
            srv.cleanup()


class InputWhileBusy(unittest.TestCase):
    """Octets that arrive while the server is not reading (busy in a hook here) must still be
    read afterwards: the reactor is edge-triggered, so waiting first would miss them."""

    def test_command_sent_during_a_hook_sleep_is_answered(self):
        fd, path = tempfile.mkstemp(suffix=".lua")
        with os.fdopen(fd, "w") as f:
            f.write("function on_mail(s, m) smtp.sleep(0.4) end\n")
        srv = SmtpfaultServer("--scenario", path).start()
        try:
            with srv.connect() as c:
                c.cmd("EHLO busy.test", expect=250)
                c.send(b"MAIL FROM:<a@x.test>\r\n")
                time.sleep(0.15)   # the hook is sleeping now: nothing is reading the socket
                c.send(b"RCPT TO:<b@y.test>\r\n")
                self.assertEqual(c.reply(timeout=5).code, 250)
                self.assertEqual(c.reply(timeout=5).code, 250)   # hangs if RCPT is never read
                c.cmd("QUIT", expect=221)
        finally:
            srv.stop()
            srv.cleanup()
            os.unlink(path)



class HookThatSleeps(unittest.TestCase):
    """A hook that calls smtp.sleep is the one kind that suspends the session; its decision (a
    reply, the default, or an error) must still be applied once it wakes."""

    SCRIPT = (
        "function on_rcpt(s, r)\n"
        "  smtp.sleep(0.2)\n"
        "  if r.address:find('gone', 1, true) then\n"
        "    return smtp.reply(550, '5.1.1', 'gone after a pause')\n"
        "  end\n"
        "  if r.address:find('boom', 1, true) then error('boom after a pause') end\n"
        "end\n")

    def test_decision_after_a_sleep_is_applied(self):
        fd, path = tempfile.mkstemp(suffix=".lua")
        with os.fdopen(fd, "w") as f:
            f.write(self.SCRIPT)
        srv = SmtpfaultServer("--scenario", path).start()
        try:
            with srv.connect() as c:
                c.cmd("EHLO sleepy.test", expect=250)
                c.cmd("MAIL FROM:<a@x.test>", expect=250)
                for rcpt, code, words in (("gone@y.test", 550, "gone after a pause"),
                                          ("ok@y.test", 250, ""),
                                          ("boom@y.test", 451, "4.3.0")):
                    start = time.monotonic()
                    r = c.cmd("RCPT TO:<%s>" % rcpt, expect=code)
                    self.assertGreaterEqual(time.monotonic() - start, 0.19, rcpt)
                    self.assertIn(words, r.text)
                # A scenario error ends the session after its 451.
                with self.assertRaises(ConnectionError):
                    c.cmd("NOOP")
            # The error names the script and the line, as for a hook that never slept. The log
            # line may reach the reader after the client has seen the close.
            srv.wait_for_line(re.escape(path + ":6: boom after a pause"))
        finally:
            srv.stop()
            srv.cleanup()
            os.unlink(path)

if __name__ == "__main__":
    unittest.main()
