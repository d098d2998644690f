"""A server open to SMTP smuggling, as aiosmtpd was before CVE-2024-27305: a line ends at LF
alone (a CR before it is dropped), so `<LF>.<LF>` ends the data. It answers unknown commands
with a chosen reply, so that probes can be held to what a server says, not to 500.

pipelining_refused: as OpenSMTPD 6.8 does, input already waiting when a command or a message
ends gets "500 ... Pipelining not supported" in place of its reply, and the connection closes.
noop_argument_refused: as OpenSMTPD 6.8 does, NOOP with an argument gets 500.
command_limit: a command line longer than this (CRLF included) gets 500 and the connection
closes. end_of_data_delay: seconds before a message's reply, as a slow filter takes."""

import select
import time

from loopback_server import LoopbackServer

PIPELINING_REFUSED = b"500 5.5.1 Invalid command: Pipelining not supported"
NOOP_ARGUMENT_REFUSED = b"500 5.5.4 Invalid command arguments: command does not accept arguments."


class LenientServer(LoopbackServer):
    def __init__(self, unknown_reply=b"550 5.5.1 unrecognized command", pipelining_refused=False,
                 noop_argument_refused=False, command_limit=None, end_of_data_delay=0):
        self.unknown_reply = unknown_reply
        self.pipelining_refused = pipelining_refused
        self.noop_argument_refused = noop_argument_refused
        self.command_limit = command_limit
        self.end_of_data_delay = end_of_data_delay
        self.messages = []
        super().__init__()

    def session(self, conn):
        with conn:
            try:
                self.converse(conn)
            except OSError:
                pass   # the client went away

    def converse(self, conn):
        conn.sendall(b"220 lenient ESMTP\r\n")
        pending = bytearray()
        in_data, lines = False, []
        while True:
            end = pending.find(b"\n")
            if end < 0:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                pending += chunk
                continue
            line = bytes(pending[:end]).rstrip(b"\r")
            del pending[:end + 1]
            if in_data:
                if line != b".":
                    lines.append(line)
                    continue
                in_data = False
                if self.pipelining_refused and self.waiting(conn, pending):
                    conn.sendall(PIPELINING_REFUSED + b"\r\n")
                    return
                self.messages.append(b"\n".join(lines))
                lines = []
                time.sleep(self.end_of_data_delay)
                conn.sendall(b"250 queued\r\n")
                continue
            if self.command_limit and len(line) + 2 > self.command_limit:
                conn.sendall(b"500 5.5.1 Line too long\r\n")
                return
            if self.pipelining_refused and self.waiting(conn, pending):
                conn.sendall(PIPELINING_REFUSED + b"\r\n")
                return
            verb = line.split(b" ")[0].upper()
            if verb == b"DATA":
                in_data = True
                conn.sendall(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            elif verb == b"NOOP" and self.noop_argument_refused and line.strip().upper() != b"NOOP":
                conn.sendall(NOOP_ARGUMENT_REFUSED + b"\r\n")
            elif verb in (b"EHLO", b"HELO", b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                conn.sendall(b"250 ok\r\n")
            else:
                conn.sendall(self.unknown_reply + b"\r\n")

    @staticmethod
    def waiting(conn, pending):
        """Input that came with the line just read, or before its answer."""
        return bool(pending) or bool(select.select([conn], [], [], 0)[0])
