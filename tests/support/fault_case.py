"""Shared by the fault-action suites: the scenario that picks a fault from the EHLO name,
exact replies and helpers that read from a socket with deadlines, and FaultCase."""

import base64
import os
import socket
import struct
import time

from smtpfault_server import ServerTestCase

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS = os.path.join(HERE, "..", "integration", "scenarios")
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
