"""No acknowledged message is ever lost: 20 clients send 2,000 unique messages to `serve --store
DIR`; SIGTERM arrives after about 1,000 acknowledgements. Every message that got a 250 must be
in DIR byte for byte, with its .json; nothing may be half-written; the server exits 0 within 1 s;
clients cut off see 421 4.3.2 or a closed connection, never a 250 for a message not stored.
"""

import json
import os
import random
import shutil
import signal
import socket
import threading
import time
import unittest

from raw_client import RawClient
from smtpfault_server import SmtpfaultServer, server_with_scenario

CLIENTS = 20
TOTAL = 2000
SIGTERM_AFTER = 1000
PER_SESSION = 10   # messages per connection before a client reconnects


def message_bytes(rng, message_id):
    """A unique message (already dot-stuffed: no line starts with '.'), 1-40 body lines."""
    lines = [b"X-No-Loss-Id: " + message_id.encode(),
             b"Subject: no-loss " + message_id.encode(), b""]
    for n in range(rng.randint(1, 40)):
        width = rng.randint(0, 200)
        lines.append(b"%s line %d %s" % (message_id.encode(), n,
                                        bytes(rng.choice(b"abcxyz 0123") for _ in range(width))))
    return b"\r\n".join(lines) + b"\r\n"


class CutOff(Exception):
    """The server answered something other than the expected code (421 on shutdown)."""

    def __init__(self, reply, context):
        super().__init__("%s answered %r" % (context, reply))
        self.reply = reply
        self.context = context


def step(client, line, code):
    r = client.cmd(line) if line is not None else client.reply()
    if r.code != code:
        raise CutOff(r, line or "end of data")
    return r


class Outcome:
    def __init__(self):
        self.lock = threading.Condition()
        self.acked = {}      # queued id -> (message id, bytes)
        self.cut = []        # how each client was cut off: "421 ..." or "closed: ..."
        self.failures = []   # anything a client should never see


class UnwritableStoreTest(unittest.TestCase):
    def refused_by_the_store(self, c):
        """A whole message whose files cannot be written: its answer is 451 4.3.0."""
        c.ehlo()
        c.cmd("MAIL FROM:<a@example.com>", expect=250)
        c.cmd("RCPT TO:<b@example.com>", expect=250)
        c.cmd("DATA", expect=354)
        c.send(b"Subject: lost?\r\n\r\nbody\r\n.\r\n")
        self.assertEqual(c.expect(451).lines[0][:5], "4.3.0")

    def test_a_message_that_cannot_be_written_is_refused_and_the_reason_logged(self):
        with SmtpfaultServer() as server:
            shutil.rmtree(server.store)   # the volume went away, or is not writable
            c = server.connect()
            self.refused_by_the_store(c)
            line = server.wait_for_line(r"message not stored: ")
            self.assertIn("cannot create %s/" % server.store, line)
            self.assertIn(".eml.tmp: No such file or directory", line)
            c.close()

    def test_a_scenarios_own_250_does_not_acknowledge_a_message_that_was_not_stored(self):
        # The scenario's 250 replaced the store's 451: a message acknowledged and then lost.
        server = server_with_scenario(
            self, 'function on_message(s, m) return smtp.reply(250, "2.0.0", "scenario says ok") '
                  'end\n')
        shutil.rmtree(server.store)
        c = server.connect()
        self.addCleanup(c.close)
        self.refused_by_the_store(c)
        server.wait_for_line(r"the scenario's reply is not sent: the message could not be stored")


class HookAsleepAtStopTest(unittest.TestCase):
    """SIGTERM while a hook sleeps: the 421 answers, not the default reply the hook never chose
    (a 250 to a recipient it meant to refuse, a message stored and never acknowledged)."""

    def stop_while_asleep(self, hook, refusal, conversation):
        """Runs `conversation` against a scenario whose `hook` sleeps 30 s before it would answer
        `refusal`, stops the server meanwhile and checks the client hears 421 4.3.2 and a close;
        returns the stopped server."""
        server = server_with_scenario(self, """
function %s(s, arg)
  smtp.log("asleep")
  smtp.sleep(30)
  return smtp.reply(%s, "decided after the sleep")
end
""" % (hook, refusal))
        c = server.connect()
        self.addCleanup(c.close)
        conversation(c)
        server.wait_for_line(r"asleep")
        server.proc.send_signal(signal.SIGTERM)
        reply = c.reply()
        self.assertEqual((reply.code, reply.lines[0][:6]), (421, "4.3.2 "), reply)
        self.assertTrue(c.closed_by_peer(2.0))
        # Exited on that one signal: stop() would send another to a server still stopping.
        server.proc.wait(5)
        server.stop()
        return server

    def test_a_recipient_is_not_given_the_default_250(self):
        server = self.stop_while_asleep(
            "on_rcpt", '550, "5.1.1"',
            lambda c: (c.ehlo(), c.cmd("MAIL FROM:<a@example.com>", expect=250),
                       c.send(b"RCPT TO:<b@example.com>\r\n")))
        self.assertEqual([l for l in server.transcript() if "S: 250 Recipient" in l], [])
        server.wait_for_line(r"hook not finished: the server is stopping")

    def test_a_message_is_neither_stored_nor_acknowledged(self):
        def conversation(c):
            c.ehlo()
            c.cmd("MAIL FROM:<a@example.com>", expect=250)
            c.cmd("RCPT TO:<b@example.com>", expect=250)
            c.cmd("DATA", expect=354)
            c.send(b"Subject: held\r\n\r\nbody\r\n.\r\n")
        server = self.stop_while_asleep("on_message", '554, "5.7.1"', conversation)
        self.assertEqual(os.listdir(server.store), [])
        self.assertEqual([l for l in server.transcript() if "queued as" in l], [])
        server.wait_for_line(r"hook not finished: the server is stopping")


class UnacknowledgedTest(unittest.TestCase):
    """A message stored whose 250 never reached the client (it left while the reply was held
    back) is marked, in the API and in its .json: that client will send it again."""

    def send(self, c, subject, helo):
        c.cmd("EHLO " + helo, expect=250)
        c.cmd("MAIL FROM:<a@example.com>", expect=250)
        c.cmd("RCPT TO:<b@example.com>", expect=250)
        c.cmd("DATA", expect=354)
        c.send(b"Subject: " + subject + b"\r\n\r\nbody\r\n.\r\n")

    def test_a_message_whose_250_never_left_is_marked(self):
        # Held back for 3 s; the client is looked at once a second meanwhile.
        server = server_with_scenario(
            self, 'function on_message(s, m)\n'
                  '  if s.helo == "impatient" then return smtp.delay(3) end\n'
                  'end\n')
        impatient = server.connect()
        self.send(impatient, b"gave up", "impatient")
        impatient.close()   # before the held-back 250
        server.wait_for_line(r"its reply was never written")
        patient = server.connect()
        self.addCleanup(patient.close)
        self.send(patient, b"waited", "patient")
        patient.expect(250)
        patient.cmd("QUIT", expect=221)
        server.wait_for_line(r"session ended", start=len(server.transcript()) - 1)
        status, _, body = server.api("GET", "/api/v1/messages")
        self.assertEqual(status, 200, body)
        acknowledged = {m["subject"]: m["acknowledged"] for m in body["messages"]}
        self.assertEqual(acknowledged, {"gave up": False, "waited": True})
        on_disk = {m.data.split(b"\r\n")[0]: m.meta["acknowledged"] for m in server.messages()}
        self.assertEqual(on_disk, {b"Subject: gave up": False, b"Subject: waited": True})
        first = body["messages"][0]["id"]
        status, _, detail = server.api("GET", "/api/v1/messages/" + first)
        self.assertEqual(detail["acknowledged"], False)

    def test_a_message_whose_250_is_still_held_back_is_not_acknowledged_yet(self):
        # A test that waits for the message and reads `acknowledged` while the scenario holds
        # the 250 must not be told its client has it.
        server = server_with_scenario(self, "function on_message(s, m) return smtp.delay(2) end\n")
        c = server.connect()
        self.addCleanup(c.close)
        self.send(c, b"held", "held")
        status, _, body = server.api("GET", "/api/v1/messages/wait?count=1&timeout=5")
        self.assertEqual(status, 200, body)
        self.assertEqual([m["acknowledged"] for m in body["messages"]], [False])
        c.expect(250)
        status, _, body = server.api("GET", "/api/v1/messages")
        self.assertEqual([m["acknowledged"] for m in body["messages"]], [True])

    def test_a_client_that_left_in_the_last_second_of_the_hold_is_not_answered(self):
        # The client is looked at once a second while the reply is held; one that leaves
        # after the last look must not count as answered (the kernel takes the write anyway).
        server = server_with_scenario(self, "function on_message(s, m) return smtp.delay(1.5) end\n")
        c = server.connect()
        self.send(c, b"left late", "late")
        time.sleep(1.2)
        c.close()
        server.wait_for_line(r"its reply was never written", timeout=5)
        self.assertEqual([m.meta["acknowledged"] for m in server.messages()], [False])

    def test_a_250_dropped_for_the_stop_is_marked_on_disk(self):
        server = server_with_scenario(self, "function on_message(s, m) return smtp.delay(30) end\n")
        c = server.connect()
        self.addCleanup(c.close)
        self.send(c, b"held at the stop", "held")
        server.wait_for_line(r"fault: delay")
        server.proc.send_signal(signal.SIGTERM)
        self.assertEqual(c.reply().code, 421)
        server.proc.wait(5)
        server.stop()
        self.assertEqual([m.meta["acknowledged"] for m in server.messages()], [False])


class NoLossTest(unittest.TestCase):
    def setUp(self):
        self.server = SmtpfaultServer().start()
        self.addCleanup(self.server.cleanup)
        self.out = Outcome()
        self.next_index = 0

    def claim(self):
        """The next message number to send, or None when all 2,000 are handed out."""
        with self.out.lock:
            if self.next_index >= TOTAL:
                return None
            self.next_index += 1
            return self.next_index - 1

    def client(self, worker):
        rng = random.Random(worker)
        out = self.out
        c = None
        try:
            while True:
                if c is None:
                    c = RawClient.connect(self.server.host, self.server.port, timeout=10,
                                          greeting=False)
                    step(c, None, 220)
                    step(c, "EHLO client%02d.test" % worker, 250)
                    sent_here = 0
                index = self.claim()
                if index is None:
                    step(c, "QUIT", 221)
                    return
                message_id = "w%02d-m%04d" % (worker, index)
                data = message_bytes(rng, message_id)
                step(c, "MAIL FROM:<%s@sender.test>" % message_id, 250)
                step(c, "RCPT TO:<rcpt-%s@example.com>" % message_id, 250)
                step(c, "DATA", 354)
                c.send(data + b".\r\n")
                r = step(c, None, 250)
                with out.lock:
                    out.acked[r.queued_id] = (message_id, data)
                    out.lock.notify_all()
                sent_here += 1
                if sent_here == PER_SESSION:
                    step(c, "QUIT", 221)
                    c.close()
                    c = None
        except CutOff as e:
            with out.lock:
                if e.reply.code == 421 and e.reply.lines[0].startswith("4.3.2 "):
                    out.cut.append("421 4.3.2")
                else:
                    out.failures.append("worker %d: %s" % (worker, e))
        except (ConnectionError, OSError) as e:
            if isinstance(e, socket.timeout):
                with out.lock:
                    out.failures.append("worker %d: no reply in time: %r" % (worker, e))
            else:
                with out.lock:
                    out.cut.append("closed: %s" % type(e).__name__)
        except AssertionError as e:
            with out.lock:
                out.failures.append("worker %d: %s" % (worker, e))
        finally:
            if c is not None:
                c.close()

    def test_sigterm_midway_loses_no_acknowledged_message(self):
        threads = [threading.Thread(target=self.client, args=(w,), daemon=True)
                   for w in range(CLIENTS)]
        for t in threads:
            t.start()
        with self.out.lock:
            if not self.out.lock.wait_for(lambda: len(self.out.acked) >= SIGTERM_AFTER
                                          or self.out.failures, timeout=60):
                self.fail("only %d acknowledgements in 60 s" % len(self.out.acked))
            self.assertEqual(self.out.failures, [])
            acked_at_signal = len(self.out.acked)
        start = time.monotonic()
        self.server.proc.send_signal(signal.SIGTERM)
        rc = self.server.proc.wait(timeout=5)
        exit_time = time.monotonic() - start
        for t in threads:
            t.join(15)
            self.assertFalse(t.is_alive(), "a client hangs after the server exited")
        self.server.stop(expect_exit=None)

        out = self.out
        print("\nno-loss: %d acknowledged at SIGTERM, %d in all; exit %r after %.3fs; clients cut "
              "off: %s" % (acked_at_signal, len(out.acked), rc, exit_time,
                           {k: out.cut.count(k) for k in sorted(set(out.cut))}))
        self.assertEqual(rc, 0, self.server.stderr_text)
        self.assertLess(exit_time, 1.0)
        self.assertEqual(out.failures, [])
        self.assertLess(len(out.acked), TOTAL, "SIGTERM came too late to cut anything off")
        self.assertEqual(len(out.cut), CLIENTS, out.cut)

        store = self.server.store
        names = os.listdir(store)
        self.assertEqual([n for n in names if not n.endswith((".eml", ".json"))], [],
                         "temporary or stray files left behind")
        emls = {n[:-4] for n in names if n.endswith(".eml")}
        jsons = {n[:-5] for n in names if n.endswith(".json")}
        self.assertEqual(emls, jsons, "every .eml needs its .json and the other way round")
        # Every acknowledged message is there, byte for byte, with matching metadata.
        for queued_id, (message_id, data) in out.acked.items():
            self.assertIn(queued_id, emls, "acknowledged %s (%s) is missing" % (queued_id,
                                                                               message_id))
            with open(os.path.join(store, queued_id + ".eml"), "rb") as f:
                self.assertEqual(f.read(), data, queued_id)
        sent = {}
        for queued_id in emls:
            with open(os.path.join(store, queued_id + ".json"), "rb") as f:
                meta = json.loads(f.read().decode("utf-8"))
            self.assertEqual(meta["id"], queued_id)
            with open(os.path.join(store, queued_id + ".eml"), "rb") as f:
                data = f.read()
            self.assertEqual(meta["size"], len(data))
            message_id = data.split(b"\r\n", 1)[0].split(b": ", 1)[1].decode()
            self.assertEqual(meta["mail_from"], message_id + "@sender.test")
            self.assertEqual([r["address"] for r in meta["recipients"]],
                             ["rcpt-%s@example.com" % message_id])
            sent[message_id] = queued_id
        # Stored but never acknowledged (cut between the fsync and the 250) is allowed: the
        # client will send it again. Each message is stored at most once.
        self.assertEqual(len(sent), len(emls))
        unacked = len(emls) - len(out.acked)
        self.assertGreaterEqual(unacked, 0)
        self.assertLessEqual(unacked, CLIENTS)


if __name__ == "__main__":
    unittest.main(verbosity=2)
