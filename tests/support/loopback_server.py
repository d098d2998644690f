"""A threaded test server on a free loopback port: each connection gets session(conn) on a
thread of its own, until close()."""

import socket
import threading


class LoopbackServer:
    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.session, args=(conn,), daemon=True).start()

    def session(self, conn):
        raise NotImplementedError

    def close(self):
        self.sock.close()
