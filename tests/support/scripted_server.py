"""A server for hostile-server tests: it greets, answers each line it reads with the next of a
list of replies (any octets), then stops reading and says nothing more, or closes."""

import socket
import threading


class ScriptedServer:
    """A server that answers each line it reads with the next of `replies`, then stops reading
    and says nothing more (it never closes while the test runs), or closes if then_close."""

    def __init__(self, replies, then_close=False, greeting=b"220 scripted\r\n"):
        self.then_close = then_close
        self.greeting = greeting
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.replies = replies
        self.conns = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        conn, _ = self.sock.accept()
        self.conns.append(conn)
        conn.sendall(self.greeting)
        f = conn.makefile("rb")
        try:
            for reply in self.replies:
                if not f.readline():
                    return
                conn.sendall(reply)
            if self.then_close:
                conn.close()
        except OSError:
            pass   # the client went away

    def close(self):
        for c in self.conns + [self.sock]:
            c.close()
