"""A line-level SMTP client for the tests: the exact bytes a test gives go out, and replies
come back parsed (code and lines), each read with a deadline."""

import re
import select
import socket
import ssl
import struct
import time

QUEUED_RE = re.compile(r"queued as (\S+)")


class Reply:
    def __init__(self, code, lines):
        self.code = code
        self.lines = lines   # text after "NNN-" / "NNN "

    @property
    def text(self):
        return "\n".join(self.lines)

    @property
    def queued_id(self):
        m = QUEUED_RE.search(self.text)
        return m.group(1) if m else None

    def __repr__(self):
        return "Reply(%d, %r)" % (self.code, self.lines)


class RawClient:
    """A line-level SMTP client on a plain socket: exact bytes out, parsed replies in."""

    def __init__(self, sock, timeout):
        self.sock = sock
        self.timeout = timeout
        self.buf = b""
        self.sock.settimeout(timeout)
        self.local_port = sock.getsockname()[1]

    @classmethod
    def connect(cls, host, port, tls=False, timeout=5.0, greeting=True):
        sock = socket.create_connection((host, port), timeout=timeout)
        client = cls(sock, timeout)
        if tls:
            client.wrap_tls()
        if greeting:
            client.greeting = client.expect(220)
        return client

    def wrap_tls(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")
        self.sock.settimeout(self.timeout)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def cmd(self, line, expect=None):
        self.send(line.encode("utf-8") + b"\r\n" if isinstance(line, str) else line + b"\r\n")
        return self.reply() if expect is None else self.expect(expect)

    def read_line(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\r\n" not in self.buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout("no complete reply line; buffered %r" % self.buf)
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection; buffered %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def reply(self, timeout=None):
        lines = []
        while True:
            line = self.read_line(timeout)
            if len(line) < 3 or not line[:3].isdigit():
                raise AssertionError("malformed reply line %r" % line)
            lines.append(line[4:])
            if len(line) == 3 or line[3] == " ":
                return Reply(int(line[:3]), lines)

    def expect(self, code, timeout=None):
        r = self.reply(timeout)
        if r.code != code:
            raise AssertionError("expected %d, got %r" % (code, r))
        return r

    def ehlo(self, name="client.test"):
        return self.cmd("EHLO " + name, expect=250)

    def closed_by_peer(self, timeout=None):
        """True once the server closes (EOF or reset) within the timeout; False on timeout."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionError, ssl.SSLError):
                return True
            if not chunk:
                return True
            self.buf += chunk

    def nothing_pending(self, timeout=0.3):
        """True if no bytes arrive within `timeout` (used only to prove an absence)."""
        if self.buf:
            return False
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return True
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return True
        self.buf += chunk
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def reset(self):
        """Closes with an RST instead of a FIN (SO_LINGER 0): the rudest disconnect."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
