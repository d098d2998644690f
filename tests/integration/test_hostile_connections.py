"""Hostile connections: TLS garbage on both ports, resets in the states the resilience suite
leaves out, and 2,000 slowloris sockets. Each case checks the reply or the close the server owes,
that its memory and descriptors stay bounded, and that other clients are still served. The only
pacing is the slowloris drip, which is the client's behaviour.
"""

import random
import resource
import select
import socket
import ssl
import time
import unittest

from raw_client import RawClient
from smtpfault_server import ServerTestCase, SmtpfaultServer
from volume_case import (RSS_SLACK_KB, SANITIZED, SLOW, VolumeCase, open_fds, reset, rss_kb,
                         wait_until)


def client_hello_bytes():
    """A real TLS ClientHello, taken from Python's TLS engine through a memory BIO."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


class TlsGarbageTest(VolumeCase):
    SERVER_ARGS = ("--tls-handshake-timeout", "2")

    def garbage_inputs(self):
        rng = random.Random(20240601)   # fixed seed: the same garbage on every run
        hello = client_hello_bytes()
        mangled = bytearray(hello)
        for _ in range(40):
            mangled[rng.randrange(5, len(mangled))] = rng.randrange(256)
        return [
            ("random bytes", rng.randbytes(4096)),
            ("random record body", b"\x16\x03\x01\x01\x00" + rng.randbytes(256)),
            ("ClientHello with random octets", bytes(mangled)),
            ("ClientHello claiming 16 MB", b"\x16\x03\x01\x00\x40\x01\xff\xff\xff" + hello[9:]),
            ("SSLv2 hello", b"\x80\x2e\x01\x00\x02\x00\x15" + rng.randbytes(46)),
            ("plaintext SMTP", b"EHLO not-tls\r\n" * 50),
        ]

    def expect_handshake_failure(self, sock, sid, label):
        sock.settimeout(5)
        try:
            while sock.recv(4096):
                pass   # an alert may come back; then the server must close
        except socket.timeout:
            self.fail("%s: server kept the connection open" % label)
        except ConnectionError:
            pass
        sock.close()
        lines = self.server.finished_session(sid)
        self.assertTrue(any("TLS handshake failed" in l for l in lines), (label, lines))

    def test_garbage_after_starttls(self):
        for label, junk in self.garbage_inputs():
            c = self.server.connect()
            sid = self.server.session_of(c)
            c.ehlo()
            c.cmd("STARTTLS", expect=220)
            c.send(junk)
            self.expect_handshake_failure(c.sock, sid, label)
        self.assertTrue(self.server.alive())
        self.assert_still_serving("starttls-garbage")

    def test_garbage_on_the_implicit_tls_port(self):
        for label, junk in self.garbage_inputs():
            sock = socket.create_connection((self.server.host, self.server.tls_port), timeout=5)
            c = RawClient(sock, 5)
            sid = self.server.session_of(c)
            sock.sendall(junk)
            self.expect_handshake_failure(sock, sid, label)
        self.assertTrue(self.server.alive())
        # A real TLS client is still served on that port.
        with self.server.connect(tls=True) as c:
            c.ehlo()
            c.cmd("QUIT", expect=221)
        self.assert_still_serving("implicit-garbage")

    def test_incomplete_hello_meets_the_handshake_deadline(self):
        sock = socket.create_connection((self.server.host, self.server.tls_port), timeout=5)
        c = RawClient(sock, 5)
        sid = self.server.session_of(c)
        start = time.monotonic()
        sock.sendall(client_hello_bytes()[:20])   # and then nothing
        lines = self.server.finished_session(sid, timeout=6)
        elapsed = time.monotonic() - start
        self.assertTrue(any("TLS handshake failed: timeout" in l for l in lines), lines)
        self.assertGreater(elapsed, 1.5)
        self.assertLess(elapsed, 4.5)
        sock.close()


class ResetTest(VolumeCase):
    """Resets (RST) in the states test_resilience.py does not cover."""

    def assert_reset_handled(self, sid, before):
        lines = self.server.finished_session(sid, timeout=6)
        self.assertTrue(any(m in l for l in lines for m in
                            ("client closed the connection", "write failed",
                             "TLS handshake failed")), lines)
        self.assertEqual(self.server.message_ids(), before)
        self.assertTrue(self.server.alive())
        self.assert_still_serving()

    def test_reset_during_starttls_handshake(self):
        before = self.server.message_ids()
        c = self.server.connect()
        sid = self.server.session_of(c)
        c.ehlo()
        c.cmd("STARTTLS", expect=220)
        c.send(client_hello_bytes())
        # Wait for the ServerHello (the server is now mid-handshake), then reset.
        r, _, _ = select.select([c.sock], [], [], 5)
        self.assertTrue(r, "no ServerHello")
        self.assertTrue(c.sock.recv(1)[:1] == b"\x16")
        reset(c.sock)
        self.assert_reset_handled(sid, before)

    def test_reset_during_implicit_tls_handshake(self):
        before = self.server.message_ids()
        sock = socket.create_connection((self.server.host, self.server.tls_port), timeout=5)
        sid = self.server.session_of(RawClient(sock, 5))
        sock.sendall(client_hello_bytes())
        r, _, _ = select.select([sock], [], [], 5)
        self.assertTrue(r, "no ServerHello")
        reset(sock)
        self.assert_reset_handled(sid, before)

    def test_reset_inside_a_tls_session_mid_data(self):
        before = self.server.message_ids()
        c = self.server.connect(tls=True)
        sid = self.server.session_of(c)
        self.open_transaction(c)
        c.cmd("DATA", expect=354)
        c.send(b"Subject: over TLS\r\n\r\nhalf")
        reset(c.sock)
        self.assert_reset_handled(sid, before)

    def test_reset_mid_auth_exchange(self):
        before = self.server.message_ids()
        c = self.server.connect()
        sid = self.server.session_of(c)
        c.ehlo()
        c.cmd("AUTH LOGIN", expect=334)
        c.cmd("dXNlcg==", expect=334)
        c.send(b"cGFz")   # half a password line
        reset(c.sock)
        self.assert_reset_handled(sid, before)

    def add_rule(self, rule):
        status, _, body = self.server.api("POST", "/api/v1/faults", rule)
        self.assertEqual(status, 201, body)
        self.addCleanup(self.server.api, "DELETE", "/api/v1/faults/%s" % body["id"])

    def test_reset_while_a_reply_is_delayed(self):
        self.add_rule({"match": {"on": "NOOP"}, "action": {"delay": 1.5}, "times": 1})
        before = self.server.message_ids()
        c = self.server.connect()
        sid = self.server.session_of(c)
        c.ehlo()
        c.send(b"NOOP\r\n")
        self.server.wait_for_line(r" %s C: NOOP" % sid)
        reset(c.sock)
        # While that session waits out its delay, others are served.
        self.assert_greeted_quickly()
        self.assert_reset_handled(sid, before)

    def test_reset_while_a_reply_trickles(self):
        self.add_rule({"match": {"on": "NOOP"},
                       "action": {"reply": {"code": 250, "text": "t" * 200},
                                  "trickle": {"bytes": 1, "every": 0.05}},
                       "times": 1})
        before = self.server.message_ids()
        c = self.server.connect()
        sid = self.server.session_of(c)
        c.ehlo()
        c.send(b"NOOP\r\n")
        self.assertEqual(c.sock.recv(1), b"2")   # the trickle has started
        reset(c.sock)
        self.assert_reset_handled(sid, before)

    def test_reset_with_unread_replies_backed_up(self):
        before = self.server.message_ids()
        c = self.server.connect()
        sid = self.server.session_of(c)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.ehlo()
        # EHLO replies are long: 4 MB of pipelined EHLOs back the server's writes up.
        c.sock.setblocking(False)
        try:
            for _ in range(4000):
                c.sock.send(b"EHLO x\r\n" * 128)
        except BlockingIOError:
            pass
        reset(c.sock)
        self.assert_reset_handled(sid, before)


class SlowlorisTest(ServerTestCase):
    """2,000 connections dripping one byte per second; a normal client is still served; once
    they stop, the idle deadline closes them all and memory and descriptors come back down."""

    SOCKETS = 2000
    IDLE = 3

    @classmethod
    def setUpClass(cls):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        need = cls.SOCKETS + 200
        if hard != resource.RLIM_INFINITY and hard < need:
            raise AssertionError("RLIMIT_NOFILE hard limit %d < %d needed" % (hard, need))
        # The server starts with a soft limit of 1024, too few for 2,000 sessions: it must
        # raise its own soft limit to the hard limit at start-up.
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, soft), hard))
        try:
            cls.server = SmtpfaultServer("--idle-timeout", str(cls.IDLE),
                                         "--max-connections", str(cls.SOCKETS + 100)).start()
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY
                                                        else max(soft, need), hard))

    def test_server_raised_its_descriptor_limit(self):
        with open("/proc/%d/limits" % self.server.proc.pid) as f:
            row = next(l for l in f if l.startswith("Max open files"))
        soft, hard = row.split()[3:5]
        if hard == "unlimited":   # not a valid soft limit for descriptors: 2^20 is taken
            self.assertGreaterEqual(int(soft), 1 << 20, row)
        else:
            self.assertEqual(soft, hard, row)

    def test_2000_slowloris_connections(self):
        server = self.server
        # Warm up first: each I/O thread sets up its reactor (3 descriptors) on first use.
        for _ in range(16):
            self.normal_delivery()
        rss0, fds0 = rss_kb(server), open_fds(server)
        first = self.slowloris_wave(fds0)
        second = self.slowloris_wave(fds0)
        print("\nslowloris: RSS %d kB at rest; wave 1 peak %d kB, after %d kB; wave 2 peak %d kB, "
              "after %d kB; greeting under load %.3fs / %.3fs; fds %d at rest, %d after"
              % (rss0, first["peak"], first["after"], second["peak"], second["after"],
                 first["greet"], second["greet"], fds0, open_fds(server)))
        for wave in (first, second):
            self.assertLess(wave["greet"], 1.0 * SLOW,
                            "greeting took %.2fs under slowloris" % wave["greet"])
            self.assertGreater(wave["closed_with_421"], self.SOCKETS * 0.95)
        self.assertLessEqual(open_fds(server), fds0)
        if not SANITIZED:
            self.assertLess(first["peak"] - rss0, 64 * 1024, "2,000 idle sessions cost > 64 MB")
            # The allocator keeps freed pages, so RSS settles above the resting value once; a
            # second wave of 2,000 sessions must then reuse that memory rather than add to it.
            self.assertLess(first["after"] - rss0, RSS_SLACK_KB)
            self.assertLess(second["after"] - first["after"], 4 * 1024)
        self.assertTrue(server.alive())

    def slowloris_wave(self, fds0):
        server = self.server
        socks = []
        result = {}
        try:
            for _ in range(self.SOCKETS):
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex((server.host, server.port))
                socks.append(s)
            # (The resting count may still include the last warm-up socket: a little slack.)
            wait_until(lambda: open_fds(server) >= fds0 + self.SOCKETS - 2, 15,
                       "the server to accept %d connections" % self.SOCKETS)
            drip = b"EHLO slow.example\r\n"
            peak = rss_kb(server)
            # Four rounds of one byte per socket, a second apart: the drip itself, not a wait.
            for second in range(4):
                round_start = time.monotonic()
                for s in socks:
                    try:
                        s.send(drip[second:second + 1])
                    except BlockingIOError:
                        pass
                if second == 1:
                    result["greet"] = self.normal_delivery()
                peak = max(peak, rss_kb(server))
                time.sleep(max(0.0, 1.0 - (time.monotonic() - round_start)))
            result["peak"] = peak
            # Then silence: the idle deadline ends every one of them.
            wait_until(lambda: open_fds(server) <= fds0, self.IDLE + 10,
                       "the idle deadline to close the slowloris sockets")
            # Each socket holds its 220, then "421 4.4.2", then end of file.
            closed = 0
            for s in socks:
                received = b""
                try:
                    while True:
                        data = s.recv(65536)
                        if not data:
                            break
                        received += data
                except (BlockingIOError, ConnectionError):
                    pass
                closed += b"\r\n421 4.4.2 " in received
            result["closed_with_421"] = closed
        finally:
            for s in socks:
                s.close()
        result["after"] = rss_kb(server)
        return result

    def normal_delivery(self):
        start = time.monotonic()
        with self.server.connect(greeting=False) as c:
            c.expect(220, timeout=5)
            greet_time = time.monotonic() - start
            c.ehlo()
            c.cmd("MAIL FROM:<sender@example.com>", expect=250)
            c.cmd("RCPT TO:<rcpt@example.com>", expect=250)
            c.cmd("DATA", expect=354)
            c.send(b"Subject: beside slowloris\r\n\r\ndelivered\r\n.\r\n")
            done = c.expect(250)
            c.cmd("QUIT", expect=221)
        self.assertEqual(self.server.message(done.queued_id).data,
                         b"Subject: beside slowloris\r\n\r\ndelivered\r\n")
        return greet_time


if __name__ == "__main__":
    unittest.main(verbosity=2)
