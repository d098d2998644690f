"""curl's SMTP client against the real server: STARTTLS (--ssl-reqd) and implicit TLS (smtps://).

curl sends an upload file as it is (no LF to CRLF conversion without --crlf), dot-stuffing
lines that start with "."; the stored .eml must equal the file byte for byte.
"""

import os
import shutil
import subprocess
import tempfile
import unittest

from smtpfault_server import ServerTestCase

MESSAGE = (b".a first line that starts with a dot\r\n"
           b"From: curl <sender@example.com>\r\n"
           b"To: <rcpt@example.com>\r\n"
           b"Subject: curl upload %s\r\n"
           b"\r\n"
           b".\r\n"                       # a lone dot that is content, not the end
           b"..\r\n"
           b"x\r\n.y\r\n"
           b"\r\n"
           b"end\r\n")


class CurlTest(ServerTestCase):
    SERVER_ARGS = ("--set", "auth.users=carol:curl-pw")

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="curl-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def curl(self, tag, url, *extra, expect_rc=0):
        body = MESSAGE % tag.encode()
        path = os.path.join(self.tmp, tag + ".eml")
        with open(path, "wb") as f:
            f.write(body)
        before = set(self.server.message_ids())
        run = subprocess.run(
            ["curl", "--silent", "--show-error", "--max-time", "20", url, "-k",
             "--mail-from", "sender@example.com", "--mail-rcpt", "rcpt@example.com",
             "--mail-rcpt", "other@example.com", "--upload-file", path] + list(extra),
            stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        self.assertEqual(run.returncode, expect_rc, run.stderr.decode("utf-8", "replace"))
        if expect_rc != 0:
            return None
        new = [m for m in self.server.wait_for_messages(len(before) + 1)
               if m.id not in before]
        self.assertEqual(len(new), 1)
        msg = new[0]
        self.assertEqual(msg.data, body, "stored .eml differs from the uploaded file")
        self.assertEqual(msg.meta["mail_from"], "sender@example.com")
        self.assertEqual(msg.recipients, ["rcpt@example.com", "other@example.com"])
        self.assertEqual(msg.meta["mail_params"].get("SIZE"), str(len(body)))
        self.assertTrue(msg.session["tls"])
        self.assertEqual(msg.anomalies, [])
        return msg

    def test_starttls_with_ssl_reqd(self):
        msg = self.curl("starttls", "smtp://%s:%d" % (self.server.host, self.server.port),
                        "--ssl-reqd")
        lines = self.server.finished_session(msg.session["id"])
        self.assertTrue(any(l.endswith("C: STARTTLS") for l in lines), lines)

    def test_implicit_tls(self):
        msg = self.curl("smtps", "smtps://%s:%d" % (self.server.host, self.server.tls_port))
        lines = self.server.finished_session(msg.session["id"])
        self.assertTrue(any("(implicit TLS)" in l for l in lines), lines)
        self.assertFalse(any(l.endswith("C: STARTTLS") for l in lines), lines)

    def test_implicit_tls_with_auth(self):
        msg = self.curl("smtps-auth", "smtps://%s:%d" % (self.server.host, self.server.tls_port),
                        "--user", "carol:curl-pw", "--login-options", "AUTH=PLAIN")
        self.assertEqual(msg.session["auth_user"], "carol")
        self.assertEqual(msg.session["auth_mechanism"], "PLAIN")

    def test_starttls_with_bad_password_fails(self):
        before = self.server.message_ids()
        # curl exit 67: "the user name, password, or similar was not accepted".
        self.curl("bad", "smtp://%s:%d" % (self.server.host, self.server.port), "--ssl-reqd",
                  "--user", "carol:nope", expect_rc=67)
        self.assertEqual(self.server.message_ids(), before)
        self.server.wait_for_line(r"\*: AUTH \S+ failed for carol")

    def upload_lf_file(self, *extra):
        path = os.path.join(self.tmp, "lf.eml")
        with open(path, "wb") as f:
            f.write(LF_MESSAGE)
        before = set(self.server.message_ids())
        run = subprocess.run(
            ["curl", "--silent", "--show-error", "--max-time", "20",
             "smtp://%s:%d" % (self.server.host, self.server.port),
             "--mail-from", "sender@example.com", "--mail-rcpt", "rcpt@example.com",
             "--upload-file", path] + list(extra),
            stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        self.assertEqual(run.returncode, 0, run.stderr.decode("utf-8", "replace"))
        new = [m for m in self.server.wait_for_messages(len(before) + 1) if m.id not in before]
        self.assertEqual(len(new), 1)
        return new[0]

    def test_crlf_option_converts_line_ends(self):
        msg = self.upload_lf_file("--crlf")
        self.assertEqual(msg.data, LF_MESSAGE.replace(b"\n", b"\r\n"))
        self.assertEqual(msg.anomalies, [])

    def test_lf_only_file_is_kept_verbatim_and_flagged(self):
        # Without --crlf curl sends the LFs as they are (and, as the data does not end in CRLF,
        # a CRLF before the final dot); the server keeps them and reports each bare LF.
        msg = self.upload_lf_file()
        self.assertEqual(msg.data, LF_MESSAGE + b"\r\n")
        self.assertEqual(msg.anomalies,
                         [("bare_lf", i) for i, b in enumerate(LF_MESSAGE) if b == 0x0A])


LF_MESSAGE = b"Subject: unix line ends\n\n.dot at a line start\nbody\n"


if __name__ == "__main__":
    unittest.main(verbosity=2)
