"""What the HTTP API tests share: one server with its API per test class, and a client for
each side (smtplib for SMTP, curl and the harness's urllib client for HTTP)."""

import smtplib
import subprocess
import uuid

from smtpfault_server import ServerTestCase


def smtp_send(server, raw, mail_from="sender@example.com", rcpts=("rcpt@example.com",)):
    """Sends raw message bytes (CRLF line ends) with smtplib; returns the queued id."""
    with smtplib.SMTP(server.host, server.port, timeout=10) as s:
        s.ehlo("client.test")
        s.mail(mail_from)
        for r in rcpts:
            code, _ = s.rcpt(r)
            if code != 250:
                raise AssertionError("RCPT %s got %d" % (r, code))
        code, reply = s.data(raw)
        if code != 250:
            raise AssertionError("DATA got %d %r" % (code, reply))
        return reply.decode().rsplit(" ", 1)[-1]


def message_bytes(subject, test=None, body="hello"):
    head = "From: a@example.com\r\nTo: b@example.com\r\nSubject: %s\r\n" % subject
    if test:
        head += "X-Smtpfault-Test: %s\r\n" % test
    return (head + "\r\n" + body + "\r\n").encode()


def rcpt_reply(server, rcpt, mail_from="sender@example.com"):
    """One transaction up to RCPT with a raw client; returns the RCPT reply code."""
    with server.connect() as c:
        c.ehlo()
        c.cmd("MAIL FROM:<%s>" % mail_from, expect=250)
        code = c.cmd("RCPT TO:<%s>" % rcpt).code
        c.cmd("QUIT")
        return code


def curl(server, *args, token=None):
    cmd = ["curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}"]
    if token:
        cmd += ["-H", "Authorization: Bearer " + token]
    out = subprocess.run(cmd + list(args), capture_output=True, timeout=20, check=True).stdout
    body, _, code = out.rpartition(b"\n")
    return int(code), body


class ApiTestCase(ServerTestCase):
    """One server with its API per test class (SERVER_ARGS, TOKEN)."""

    def setUp(self):
        # Each test sees its own rules and messages; tags keep them apart anyway.
        self.api("DELETE", "/api/v1/faults")
        self.tag = uuid.uuid4().hex[:12]

    def api(self, method, path, body=None, **kw):
        return self.server.api(method, path, body, **kw)

    def assert_error(self, status, body, expect_status, field=None):
        self.assertEqual(status, expect_status, body)
        self.assertIsInstance(body, dict, body)
        self.assertIn("error", body)
        if field is not None:
            self.assertEqual(body.get("field"), field, body)
            if expect_status == 400:
                self.assertIn(field, body["error"])
