"""Python's smtplib against the real server: STARTTLS + AUTH, SMTPUTF8, 8BITMIME, dot lines.

Messages are passed to smtplib as bytes with CRLF line ends, which it sends unchanged apart from
dot-stuffing, so the stored .eml must equal them exactly.
"""

import smtplib
import ssl
import unittest

from smtpfault_server import ServerTestCase, SmtpfaultServer, verified_starttls

USER, PASSWORD = "bob", "py-secret"


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class SmtplibTest(ServerTestCase):
    SERVER_ARGS = ("--set", "auth.users=%s:%s" % (USER, PASSWORD))

    def smtp(self):
        s = smtplib.SMTP(self.server.host, self.server.port, local_hostname="smtplib.test",
                         timeout=10)
        self.addCleanup(s.close)
        return s

    def deliver(self, s, from_addr, to_addrs, body, **kw):
        """sendmail, then find the message the server stored for it (by the queue id)."""
        code, text = s.mail(from_addr, kw.get("mail_options", ()))
        self.assertEqual(code, 250, text)
        for rcpt in to_addrs:
            code, text = s.rcpt(rcpt)
            self.assertEqual(code, 250, text)
        code, text = s.data(body)
        self.assertEqual(code, 250, text)
        queued = text.decode().rsplit(" ", 1)[-1]
        msg = self.server.message(queued)
        self.assertEqual(msg.data, body, "stored .eml differs from the bytes sent")
        self.assertEqual(msg.meta["mail_from"], from_addr)
        self.assertEqual(msg.recipients, list(to_addrs))
        return msg

    def test_starttls_and_login(self):
        s = self.smtp()
        s.ehlo()
        self.assertTrue(s.has_extn("starttls"))
        code, _ = s.starttls(context=tls_context())
        self.assertEqual(code, 220)
        s.ehlo()
        self.assertFalse(s.has_extn("starttls"), "STARTTLS must not be offered inside TLS")
        self.assertEqual(s.login(USER, PASSWORD)[0], 235)
        body = b"Subject: smtplib login\r\n\r\nafter STARTTLS and AUTH\r\n"
        msg = self.deliver(s, "bob@example.com", ["rcpt@example.com"], body)
        self.assertTrue(msg.session["tls"])
        self.assertEqual(msg.session["auth_user"], USER)
        self.assertEqual(msg.session["helo"], "smtplib.test")
        s.quit()

    def test_each_auth_mechanism(self):
        for mech in ("PLAIN", "LOGIN", "CRAM-MD5"):
            with self.subTest(mech=mech):
                s = self.smtp()
                s.starttls(context=tls_context())
                s.ehlo()
                s.user, s.password = USER, PASSWORD
                authobject = getattr(s, "auth_" + mech.lower().replace("-", "_"))
                code, text = s.auth(mech, authobject, initial_response_ok=(mech == "PLAIN"))
                self.assertEqual(code, 235, text)
                body = ("Subject: %s\r\n\r\nbody\r\n" % mech).encode()
                msg = self.deliver(s, "bob@example.com", ["rcpt@example.com"], body)
                self.assertEqual(msg.session["auth_mechanism"], mech)
                s.quit()

    def test_login_with_wrong_password(self):
        s = self.smtp()
        s.ehlo()
        with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
            s.login(USER, "wrong")
        self.assertEqual(cm.exception.smtp_code, 535)
        self.assertIn(b"5.7.8", cm.exception.smtp_error)
        # The session stays usable after a failed AUTH.
        self.assertEqual(s.noop()[0], 250)
        s.quit()

    def test_smtputf8_addresses(self):
        s = self.smtp()
        s.ehlo()
        self.assertTrue(s.has_extn("smtputf8"))
        body = ("From: 用户@例子.广告\r\nTo: 收件人@例子.广告\r\nSubject: ünïcødé\r\n\r\n"
                "Grüße, 你好\r\n").encode("utf-8")
        msg = self.deliver(s, "用户@例子.广告", ["收件人@例子.广告"], body,
                           mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        self.assertIn("SMTPUTF8", msg.meta["mail_params"])
        s.quit()

    def test_non_ascii_address_without_smtputf8_gets_553(self):
        s = self.smtp()
        s.ehlo()
        s.command_encoding = "utf-8"   # smtplib would refuse to encode it otherwise
        code, text = s.mail("用户@例子.广告")
        self.assertEqual(code, 553, text)
        self.assertIn(b"5.6.7", text)
        self.assertEqual(s.mail("ascii@example.com")[0], 250)
        code, text = s.rcpt("收件人@例子.广告")
        self.assertEqual(code, 553, text)
        self.assertIn(b"5.6.7", text)
        # The transaction is still open and a valid recipient completes it.
        self.assertEqual(s.rcpt("rcpt@example.com")[0], 250)
        body = b"Subject: after 553\r\n\r\nok\r\n"
        code, text = s.data(body)
        self.assertEqual(code, 250, text)
        msg = self.server.message(text.decode().rsplit(" ", 1)[-1])
        self.assertEqual(msg.data, body)
        self.assertEqual(msg.recipients, ["rcpt@example.com"])
        s.quit()

    def test_8bit_body(self):
        s = self.smtp()
        s.ehlo()
        self.assertTrue(s.has_extn("8bitmime"))
        body = (b"Subject: 8bit\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
                b"Content-Transfer-Encoding: 8bit\r\n\r\n"
                b"caf\xe9 cr\xe8me br\xfbl\xe9e\r\n\xff\xfe\x80\x81 every high octet\r\n"
                + bytes(range(0x80, 0x100)) + b"\r\n")
        msg = self.deliver(s, "bob@example.com", ["rcpt@example.com"], body,
                           mail_options=["BODY=8BITMIME"])
        self.assertEqual(msg.meta["mail_params"], {"BODY": "8BITMIME"})
        self.assertEqual(msg.anomalies, [])
        s.quit()

    def test_lines_starting_with_dots(self):
        s = self.smtp()
        s.ehlo()
        body = (b"Subject: dots\r\n\r\n"
                b".\r\n"
                b"..\r\n"
                b"...\r\n"
                b".leading\r\n"
                b"middle . dot\r\n"
                b". space\r\n"
                b".\r\n")
        msg = self.deliver(s, "bob@example.com", ["rcpt@example.com"], body)
        self.assertEqual(msg.meta["size"], len(body))
        s.quit()

    def test_sendmail_with_several_recipients(self):
        s = self.smtp()
        body = b"Subject: many\r\n\r\nfan out\r\n"
        refused = s.sendmail("bob@example.com", ["a@example.com", "b@example.com",
                                                 "c@example.com"], body)
        self.assertEqual(refused, {})
        s.quit()
        msgs = [m for m in self.server.messages() if m.data == body]
        self.assertEqual(len(msgs), 1)
        self.assertEqual(msgs[0].recipients, ["a@example.com", "b@example.com", "c@example.com"])


class CertificateNamesTest(unittest.TestCase):
    """The certificate made at start-up verifies against the test CA under the hostname, the
    loopback names and whatever tls.names adds (a compose service name, say)."""

    def test_extra_names_verify_and_others_do_not(self):
        with SmtpfaultServer("--tls-names", "smtpfault, 10.9.8.7") as server:
            for name in ("smtpfault", "10.9.8.7", "smtpfault.test", "localhost"):
                self.assertEqual(verified_starttls(server, name), 250, name)
            with self.assertRaisesRegex(ssl.SSLCertVerificationError, "mismatch"):
                verified_starttls(server, "other.example")
        with SmtpfaultServer() as server:
            with self.assertRaisesRegex(ssl.SSLCertVerificationError, "mismatch"):
                verified_starttls(server, "smtpfault")
        # A hostname that is no DNS name cannot smuggle names into the certificate.
        with SmtpfaultServer("--hostname", "h.example,IP:9.9.9.9") as server:
            with self.assertRaisesRegex(ssl.SSLCertVerificationError, "mismatch"):
                verified_starttls(server, "9.9.9.9")
            self.assertEqual(verified_starttls(server, "localhost"), 250)


class TlsCloseTest(ServerTestCase):
    """After QUIT's 221 a TLS session ends with close_notify (RFC 8446 6.1): a client that
    reads on sees a clean end, not a truncated stream (OpenSSL 3's "unexpected eof")."""

    def test_quit_over_implicit_tls_ends_with_close_notify(self):
        import socket
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF   # python sets it: truncation would pass
        raw = socket.create_connection((self.server.host, self.server.tls_port), timeout=5)
        with ctx.wrap_socket(raw, suppress_ragged_eofs=False) as s:
            s.sendall(b"EHLO client.test\r\nQUIT\r\n")
            received = b""
            while True:
                chunk = s.recv(4096)   # an SSLError here: closed without close_notify
                if not chunk:
                    break
                received += chunk
        self.assertIn(b"\r\n221 ", received)

    def test_a_client_that_closes_first_gets_close_notify_back(self):
        import socket
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
        raw = socket.create_connection((self.server.host, self.server.tls_port), timeout=5)
        s = ctx.wrap_socket(raw, suppress_ragged_eofs=False)
        self.assertTrue(s.recv(4096).startswith(b"220 "))
        plain = s.unwrap()   # sends close_notify, waits for the server's: an error without it
        plain.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
