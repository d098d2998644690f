"""Shared by the hostile-input volume suites: /proc readings of the server (VmRSS, open
descriptors), event waits with deadlines, RST closes, and VolumeCase, a server test case whose
checks bound memory and the greeting time of the next client."""

import os
import socket
import struct
import time

from smtpfault_server import ServerTestCase, sanitized_build

MB = 1024 * 1024
RSS_SLACK_KB = 30 * 1024   # how far a case may push the server's resident memory


# make sanitize runs this file too: ASan's quarantine holds freed memory on purpose, so memory
# bounds are only checked on normal builds, and time bounds are stretched.
SANITIZED = sanitized_build()
SLOW = 4 if SANITIZED else 1


def status_field(pid, name):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    raise AssertionError("%s missing from /proc/%d/status" % (name, pid))


def rss_kb(server):
    return status_field(server.proc.pid, "VmRSS")


def open_fds(server):
    return len(os.listdir("/proc/%d/fd" % server.proc.pid))


def wait_until(predicate, timeout, what):
    """Polls predicate (a cheap /proc or transcript read) until true; fails after timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(0.05)


def reset(sock):
    """Closes with an RST (SO_LINGER 0)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class VolumeCase(ServerTestCase):
    def setUp(self):
        self.rss_before = rss_kb(self.server)

    def assert_bounded(self, label, peak_kb):
        if SANITIZED:
            return
        self.assertLess(peak_kb - self.rss_before, RSS_SLACK_KB,
                        "%s: RSS went from %d kB to %d kB" % (label, self.rss_before, peak_kb))

    def assert_greeted_quickly(self, limit=1.0):
        start = time.monotonic()
        with self.server.connect(greeting=False) as c:
            c.expect(220, timeout=limit + 2)
            elapsed = time.monotonic() - start
            c.cmd("QUIT", expect=221)
        self.assertLess(elapsed, limit * SLOW, "greeting took %.2fs" % elapsed)

    def open_transaction(self, c):
        c.ehlo()
        c.cmd("MAIL FROM:<sender@example.com>", expect=250)
        c.cmd("RCPT TO:<rcpt@example.com>", expect=250)
