"""msmtp against the real server: STARTTLS and implicit TLS with AUTH from an msmtprc file.

msmtp reads the message on stdin; given CRLF line ends it sends them unchanged (dot-stuffed),
so the stored .eml must equal its input byte for byte.
"""

import os
import shutil
import subprocess
import tempfile
import unittest

from smtpfault_server import ServerTestCase

USER, PASSWORD = "dave", "msmtp-pw"

# Date and Message-ID are present so msmtp adds no headers of its own (set_*_header auto).
MESSAGE = (b"Date: Sun, 1 Mar 2026 10:00:00 +0000\r\n"
           b"Message-ID: <msmtp-%s@example.com>\r\n"
           b"From: dave@example.com\r\n"
           b"To: rcpt@example.com\r\n"
           b"Subject: msmtp %s\r\n"
           b"\r\n"
           b"line one\r\n"
           b".dot-led line\r\n"
           b"\r\n"
           b"bye\r\n")


class MsmtpTest(ServerTestCase):
    SERVER_ARGS = ("--set", "auth.users=%s:%s" % (USER, PASSWORD))

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="msmtp-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def rc(self, port, auth, tls_starttls=True, password=PASSWORD):
        path = os.path.join(self.tmp, "msmtprc")
        with open(path, "w") as f:
            f.write("defaults\n"
                    "tls on\n"
                    "tls_certcheck off\n"
                    "tls_starttls %s\n"
                    "timeout 10\n"
                    "logfile %s\n"
                    "\n"
                    "account test\n"
                    "host %s\n"
                    "port %d\n"
                    "domain msmtp.test\n"
                    "from dave@example.com\n"
                    "auth %s\n"
                    "user %s\n"
                    "password %s\n"
                    "\n"
                    "account default : test\n"
                    % ("on" if tls_starttls else "off", os.path.join(self.tmp, "log"),
                       self.server.host, port, auth, USER, password))
        os.chmod(path, 0o600)   # msmtp refuses a password in a world-readable file
        return path

    def msmtp(self, rc, body, *args, expect_rc=0):
        run = subprocess.run(["msmtp", "-C", rc] + list(args), input=body,
                             capture_output=True, timeout=30)
        self.assertEqual(run.returncode, expect_rc, run.stderr.decode("utf-8", "replace"))
        return run

    def deliver(self, tag, auth, tls_starttls=True, recipients_from_headers=False):
        port = self.server.port if tls_starttls else self.server.tls_port
        rc = self.rc(port, auth, tls_starttls)
        body = MESSAGE % (tag.encode(), tag.encode())
        before = set(self.server.message_ids())
        if recipients_from_headers:
            self.msmtp(rc, body, "-t")
        else:
            self.msmtp(rc, body, "rcpt@example.com", "second@example.com")
        new = [m for m in self.server.wait_for_messages(len(before) + 1) if m.id not in before]
        self.assertEqual(len(new), 1)
        msg = new[0]
        self.assertEqual(msg.data, body, "stored .eml differs from msmtp's input")
        self.assertEqual(msg.meta["mail_from"], "dave@example.com")
        self.assertTrue(msg.session["tls"])
        self.assertEqual(msg.session["auth_user"], USER)
        self.assertEqual(msg.session["helo"], "msmtp.test")
        return msg

    def test_starttls_auth_plain(self):
        msg = self.deliver("plain", "plain")
        self.assertEqual(msg.session["auth_mechanism"], "PLAIN")
        self.assertEqual(msg.recipients, ["rcpt@example.com", "second@example.com"])

    def test_starttls_auth_login_recipients_from_headers(self):
        msg = self.deliver("login", "login", recipients_from_headers=True)
        self.assertEqual(msg.session["auth_mechanism"], "LOGIN")
        self.assertEqual(msg.recipients, ["rcpt@example.com"])

    def test_starttls_auth_cram_md5(self):
        msg = self.deliver("cram", "cram-md5")
        self.assertEqual(msg.session["auth_mechanism"], "CRAM-MD5")

    def test_implicit_tls_auth_plain(self):
        msg = self.deliver("smtps", "plain", tls_starttls=False)
        self.assertEqual(msg.session["auth_mechanism"], "PLAIN")

    def test_wrong_password_is_refused(self):
        rc = self.rc(self.server.port, "plain", password="wrong")
        before = self.server.message_ids()
        # Exit 77 is EX_NOPERM, msmtp's status for refused authentication.
        run = self.msmtp(rc, MESSAGE % (b"bad", b"bad"), "rcpt@example.com", expect_rc=77)
        self.assertIn(b"535", run.stderr)
        self.assertEqual(self.server.message_ids(), before)


if __name__ == "__main__":
    unittest.main(verbosity=2)
