"""A server open to SMTP smuggling, as aiosmtpd was before CVE-2024-27305: a line ends at LF
alone (a CR before it is dropped), so `<LF>.<LF>` ends the data. It answers unknown commands
with a chosen reply, so that probes can be held to what a server says, not to 500."""

import socket
import threading


class LenientServer:
    def __init__(self, unknown_reply=b"550 5.5.1 unrecognized command"):
        self.unknown_reply = unknown_reply
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.messages = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.session, args=(conn,), daemon=True).start()

    def session(self, conn):
        f = conn.makefile("rb")
        with conn:
            try:
                conn.sendall(b"220 lenient ESMTP\r\n")
                in_data, lines = False, []
                for raw in f:
                    line = raw.rstrip(b"\n").rstrip(b"\r")
                    if in_data:
                        if line == b".":
                            self.messages.append(b"\n".join(lines))
                            in_data, lines = False, []
                            conn.sendall(b"250 queued\r\n")
                        else:
                            lines.append(line)
                        continue
                    verb = line.split(b" ")[0].upper()
                    if verb == b"DATA":
                        in_data = True
                        conn.sendall(b"354 go ahead\r\n")
                    elif verb == b"QUIT":
                        conn.sendall(b"221 bye\r\n")
                        return
                    elif verb in (b"EHLO", b"HELO", b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                        conn.sendall(b"250 ok\r\n")
                    else:
                        conn.sendall(self.unknown_reply + b"\r\n")
            except OSError:
                pass   # the client went away

    def close(self):
        self.sock.close()
