"""aiosmtpd (Debian's python3-aiosmtpd) as a third-party target for the client probes.

Run as a program: `aiosmtpd_target.py CERT KEY [IDLE_TIMEOUT [require-tls]]` serves on an
ephemeral loopback port with STARTTLS (the certificate given), AUTH offered in plaintext with an
authenticator that refuses everyone, and a handler that accepts and discards every message;
with `require-tls`, it requires STARTTLS before anything else (530, RFC 3207 4), as a careful
submission service sets it.
It prints "listening 127.0.0.1 PORT" once ready and stops when stdin closes.
Used from tests as `AiosmtpdTarget`, a context manager.
"""

import os
import re
import ssl
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
CA_DIR = os.path.join(HERE, "..", "..", "fixtures", "certs")


def make_certificate(directory):
    """A localhost certificate signed by the smtpfault test CA, made with the openssl CLI."""
    key = os.path.join(directory, "server.key")
    csr = os.path.join(directory, "server.csr")
    crt = os.path.join(directory, "server.pem")
    ext = os.path.join(directory, "san.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run = lambda *a: subprocess.run(a, check=True, capture_output=True, timeout=30)
    run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=localhost")
    run("openssl", "x509", "-req", "-in", csr, "-CA", os.path.join(CA_DIR, "test-ca.pem"),
        "-CAkey", os.path.join(CA_DIR, "test-ca.key"), "-CAcreateserial", "-CAserial",
        os.path.join(directory, "ca.srl"), "-days", "2", "-extfile", ext, "-out", crt)
    return crt, key


class AiosmtpdTarget:
    """This file run under Debian's python3 as a child process; .port once started."""

    def __init__(self, cert, key, idle_timeout=300, require_tls=False):
        self.args = [sys.executable, os.path.abspath(__file__), cert, key, str(idle_timeout)]
        if require_tls:
            self.args.append("require-tls")
        self.proc = None
        self.port = None

    def __enter__(self):
        self.proc = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        found = {}

        def first_line():
            found["line"] = self.proc.stdout.readline()

        t = threading.Thread(target=first_line, daemon=True)
        t.start()
        t.join(15)
        m = re.match(r"listening 127\.0\.0\.1 (\d+)", found.get("line", ""))
        if not m:
            self.__exit__(None, None, None)
            raise RuntimeError("aiosmtpd did not start: %r" % found.get("line"))
        self.port = int(m.group(1))
        return self

    def __exit__(self, *exc):
        if self.proc is not None:
            try:
                self.proc.stdin.close()
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
            self.proc.stdout.close()
            self.proc = None
        return False


def serve(cert, key, idle_timeout, require_tls=False):
    import asyncio
    from aiosmtpd.smtp import SMTP, AuthResult

    class Sink:
        async def handle_DATA(self, server, session, envelope):
            return "250 OK"

    def refuse_everyone(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=False, handled=False)

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def main():
        loop = asyncio.get_running_loop()

        def factory():
            return SMTP(Sink(), hostname="aiosmtpd.test", tls_context=context,
                        require_starttls=require_tls, auth_require_tls=require_tls,
                        authenticator=refuse_everyone, timeout=idle_timeout)

        server = await loop.create_server(factory, host="127.0.0.1", port=0)
        port = server.sockets[0].getsockname()[1]
        print("listening 127.0.0.1 %d" % port, flush=True)
        await loop.run_in_executor(None, sys.stdin.read)
        server.close()

    asyncio.run(main())


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 300,
          len(sys.argv) > 4 and sys.argv[4] == "require-tls")
