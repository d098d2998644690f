"""A server that offers STARTTLS and breaks every handshake after sending its certificate, as
OpenSMTPD 6.8 does with OpenSSL 3 ("internal error"): here a TLS 1.2 server that demands a
client certificate the client does not have. Its EHLO offers STARTTLS and no AUTH, as
OpenSMTPD's does before TLS."""

import ssl

from loopback_server import LoopbackServer


class TlsBreaker(LoopbackServer):
    def __init__(self, cert, key):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        self.ctx.load_cert_chain(cert, key)
        self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.ctx.load_verify_locations(cert)
        super().__init__()

    def session(self, conn):
        with conn:
            try:
                f = conn.makefile("rb")
                conn.sendall(b"220 breaker ESMTP\r\n")
                f.readline()
                conn.sendall(b"250-breaker\r\n250 STARTTLS\r\n")
                f.readline()
                conn.sendall(b"220 go ahead\r\n")
                self.ctx.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError):
                pass   # the handshake broke, as it is meant to
