"""swaks against the real server: plain, STARTTLS, AUTH PLAIN/LOGIN/CRAM-MD5, PIPELINING.

Every case checks the captured .eml byte for byte against the DATA swaks was given. The data
files end with a closing "." line, so swaks sends them as they are (apart from dot-stuffing,
which the server undoes) and appends nothing.
"""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

from smtpfault_server import ServerTestCase

USER, PASSWORD = "alice", "s3cret-pw"

BODY = (b"From: Sender <sender@example.com>\r\n"
        b"To: Rcpt <rcpt@example.com>\r\n"
        b"Subject: swaks %s\r\n"
        b"\r\n"
        b".a line that swaks must dot-stuff\r\n"
        b"..two dots\r\n"
        b"tab\there, trailing space \r\n"
        b"\r\n"
        b"last line\r\n")


class SwaksTest(ServerTestCase):
    SERVER_ARGS = ("--set", "auth.users=%s:%s" % (USER, PASSWORD))

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="swaks-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def body(self, tag):
        return BODY % tag.encode()

    def swaks(self, tag, *extra, rcpts=("rcpt@example.com",), expect_rc=0):
        body = self.body(tag)
        path = os.path.join(self.tmp, tag + ".eml")
        with open(path, "wb") as f:
            f.write(body + b".\r\n")
        before = set(self.server.message_ids())
        cmd = ["swaks", "--server", "%s:%d" % (self.server.host, self.server.port),
               "--helo", "swaks.test", "--from", "sender@example.com",
               "--to", ",".join(rcpts), "--data", "@" + path, "--timeout", "10"] + list(extra)
        run = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        out = run.stdout.decode("utf-8", "replace")
        self.assertEqual(run.returncode, expect_rc, "swaks output:\n" + out + run.stderr.decode())
        if expect_rc != 0:
            return out, None
        queued = re.findall(r"250 2\.0\.0 Ok: queued as (\S+)", out)
        self.assertEqual(len(queued), 1, out)
        msg = self.server.message(queued[0])
        self.assertNotIn(msg.id, before)
        self.assertEqual(msg.data, body, "stored .eml differs from what swaks sent")
        self.assertEqual(msg.meta["mail_from"], "sender@example.com")
        self.assertEqual(msg.recipients, list(rcpts))
        self.assertEqual(msg.session["helo"], "swaks.test")
        self.assertEqual(msg.anomalies, [])
        return out, msg

    def test_plain(self):
        out, msg = self.swaks("plain")
        self.assertIn(" -> ..a line that swaks must dot-stuff", out)   # stuffed on the wire
        self.assertFalse(msg.session["tls"])
        self.assertEqual(msg.session["auth_user"], "")
        self.assertFalse(msg.meta["via_bdat"])

    def test_starttls(self):
        out, msg = self.swaks("starttls", "-tls")
        self.assertIn("STARTTLS", out)
        self.assertTrue(msg.session["tls"])
        self.assertRegex(msg.session["tls_version"], r"^TLSv1\.[23]$")

    def test_implicit_tls(self):
        body = self.body("tlsc")
        path = os.path.join(self.tmp, "tlsc.eml")
        with open(path, "wb") as f:
            f.write(body + b".\r\n")
        run = subprocess.run(
            ["swaks", "--server", "%s:%d" % (self.server.host, self.server.tls_port), "-tlsc",
             "--from", "sender@example.com", "--to", "rcpt@example.com", "--data", "@" + path],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        out = run.stdout.decode("utf-8", "replace")
        self.assertEqual(run.returncode, 0, out)
        msg = self.server.message(re.search(r"queued as (\S+)", out).group(1))
        self.assertEqual(msg.data, body)
        self.assertTrue(msg.session["tls"])

    def check_auth(self, mech, tls):
        extra = ["--auth", mech, "--auth-user", USER, "--auth-password", PASSWORD]
        if tls:
            extra.append("-tls")
        out, msg = self.swaks("auth-%s-%s" % (mech.lower(), "tls" if tls else "plain"), *extra)
        self.assertIn("235 2.7.0 Authentication successful", out)
        self.assertEqual(msg.session["auth_user"], USER)
        self.assertEqual(msg.session["auth_mechanism"], mech)
        self.assertEqual(msg.session["tls"], tls)

    def test_auth_plain_over_starttls(self):
        self.check_auth("PLAIN", tls=True)

    def test_auth_login_over_starttls(self):
        self.check_auth("LOGIN", tls=True)

    def test_auth_cram_md5_over_starttls(self):
        self.check_auth("CRAM-MD5", tls=True)

    def test_auth_plain_without_tls(self):
        self.check_auth("PLAIN", tls=False)

    def test_auth_login_without_tls(self):
        self.check_auth("LOGIN", tls=False)

    def test_auth_cram_md5_without_tls(self):
        self.check_auth("CRAM-MD5", tls=False)

    def test_auth_wrong_password_is_rejected(self):
        before = self.server.message_ids()
        out, _ = self.swaks("auth-bad", "--auth", "PLAIN", "--auth-user", USER,
                            "--auth-password", "wrong", expect_rc=28)
        self.assertIn("535 5.7.8", out)
        self.assertEqual(self.server.message_ids(), before)

    def test_pipelining(self):
        rcpts = ("one@example.com", "two@example.com", "three@example.com")
        out, msg = self.swaks("pipeline", "--pipeline", rcpts=rcpts)
        # With PIPELINING swaks writes MAIL, every RCPT and DATA before reading any reply.
        lines = [l.strip() for l in out.splitlines()]
        mail = next(i for i, l in enumerate(lines) if l.startswith("-> MAIL FROM"))
        first_reply = next(i for i, l in enumerate(lines) if "250 2.1.0" in l)
        sent = [l for l in lines[mail:first_reply] if l.startswith("->")]
        self.assertEqual([s.split()[1] for s in sent], ["MAIL", "RCPT", "RCPT", "RCPT", "DATA"],
                         out)
        self.assertEqual(msg.recipients, list(rcpts))


if __name__ == "__main__":
    unittest.main(verbosity=2)
