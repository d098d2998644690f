"""`smtpfault send` in each TLS mode and against odd servers: every wait is bounded and every
outcome (a refusal, an odd or malformed reply, a close) is said in words."""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from aiosmtpd_target import make_certificate
from scripted_server import ScriptedServer
from tls_breaker import TlsBreaker
from smtpfault_server import SmtpfaultServer, assert_not_sent, binary_path, refusing_port
from smtpfault_server import server_environment
from smtpfault_server import run_binary as run


class WithServer(unittest.TestCase):
    """One smtpfault server with a user for AUTH, shared by the class's tests."""

    @classmethod
    def setUpClass(cls):
        cls.server = SmtpfaultServer("--set", "auth.users=alice:secret").start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.cleanup()


class SendCommand(WithServer):

    def send(self, *flags, data=None):
        args = ["send", "--from", "alice@example.com", "--to", "bob@example.com", *flags]
        return run(*args, stdin=data)

    def test_plain_starttls_and_implicit_tls_with_auth(self):
        srv = self.server
        modes = [
            ["--server", "127.0.0.1:%d" % srv.port],
            ["--server", "127.0.0.1:%d" % srv.port, "--starttls", "--auth", "alice:secret"],
            ["--server", "127.0.0.1:%d" % srv.tls_port, "--tls", "--auth", "alice:secret"],
        ]
        for i, flags in enumerate(modes):
            with self.subTest(flags=flags):
                body = "Subject: mode %d\n\nline one\n.dot line\n" % i
                r = self.send(*flags, "--data", "-", data=body)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertIn("delivered", r.stdout)
                msg = srv.wait_for_messages(i + 1)[-1]
                # LF becomes CRLF, the leading dot survives the stuffing round trip.
                self.assertEqual(msg.data, body.replace("\n", "\r\n").encode())
                self.assertEqual(msg.meta["session"]["tls"], i > 0)
                if i > 0:
                    self.assertEqual(msg.meta["session"]["auth_user"], "alice")
                    # The transcript says TLS is up, on either port.
                    self.assertIn("*: TLS established TLSv1.3", r.stdout + r.stderr)
        self.assertNotIn("secret", "\n".join(srv.transcript()))

    def test_verify_checks_the_chain_and_the_host_name(self):
        ca = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "certs", "test-ca.pem")
        here = ["--server", "127.0.0.1:%d" % self.server.port, "--starttls"]
        r = self.send(*here, "--ca", ca)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.send(*here, "--verify")   # the test CA is not trusted by default
        self.assertEqual(r.returncode, 1)
        self.assertIn("TLS handshake failed: unable to get local issuer certificate (the "
                      "system's CAs do not vouch for it: give --ca FILE, e.g. "
                      "fixtures/certs/test-ca.pem for smtpfault's own certificate)", r.stderr)
        # The certificate is for 127.0.0.1, localhost, ::1 and smtpfault.test: not 127.0.0.2.
        other = SmtpfaultServer("--listen", "127.0.0.2:0").start()
        try:
            line = next(l for l in other.banner if "listening: smtp  127.0.0.2:" in l)
            r = self.send("--server", line.split()[-1], "--starttls", "--ca", ca)
            self.assertEqual(r.returncode, 1)
            self.assertIn("TLS handshake failed: IP address mismatch", r.stderr)
            self.assertNotIn("--ca FILE", r.stderr)   # the CA was given: no hint
        finally:
            other.stop()
            other.cleanup()

    def test_a_certificate_check_without_tls_is_a_usage_error(self):
        # It would check nothing and send the message in the clear.
        for flag in (["--verify"], ["--ca", "/dev/null"]):
            r = self.send("--server", "127.0.0.1:%d" % self.server.port, *flag)
            self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
            self.assertIn("%s checks the server's certificate, but no TLS was asked for: add "
                          "--starttls or --tls" % flag[0], r.stderr)
            self.assertEqual(r.stdout, "")

    def test_rejected_credentials_exit_1(self):
        r = self.send("--server", "127.0.0.1:%d" % self.server.port, "--auth", "alice:wrong")
        self.assertEqual(r.returncode, 1)
        self.assertIn("535", r.stderr)

    def test_unreachable_server_exit_1_with_reason(self):
        with refusing_port() as port:
            r = self.send("--server", "127.0.0.1:%d" % port)
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot connect", r.stderr)

    def test_json_log_lines_and_none(self):
        r = self.send("--server", "127.0.0.1:%d" % self.server.port, "--log-format", "json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        lines = [json.loads(l) for l in r.stdout.splitlines()]   # every line is JSON
        self.assertTrue(all("ts" in l for l in lines), lines)
        said = [{k: l[k] for k in ("dir", "text")} for l in lines if "dir" in l]
        self.assertTrue(any(l["dir"] == "C" and
                            re.fullmatch(r"MAIL FROM:<alice@example.com> SIZE=\d+", l["text"])
                            for l in said), said)
        self.assertEqual({k: lines[-1][k] for k in ("delivered", "accepted", "recipients")},
                         {"delivered": True, "accepted": 1, "recipients": 1})
        r = self.send("--server", "127.0.0.1:%d" % self.server.port, "--log-format", "none")
        self.assertEqual((r.returncode, r.stdout), (0, "delivered\n"), r.stderr)
        with refusing_port() as port:
            r = self.send("--server", "127.0.0.1:%d" % port, "--log-format", "json")
        self.assertEqual(r.returncode, 1)
        last = json.loads(r.stdout.splitlines()[-1])
        self.assertEqual(last["delivered"], False)
        self.assertIn("Connection refused", last["error"])
        r = self.send("--log-format", "yaml")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--log-format: expected text, json or none, got 'yaml'", r.stderr)

    def test_missing_from_is_a_usage_error(self):
        r = run("send", "--to", "bob@example.com")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--from is required", r.stderr)

    def test_a_data_file_that_cannot_be_read_says_why(self):
        r = run("send", "--from", "a@example.com", "--to", "b@example.com", "--data",
                "/nonexistent/message.eml")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--data /nonexistent/message.eml: cannot open file: No such file or "
                      "directory", r.stderr)

    def test_a_data_source_without_end_is_refused_not_a_crash(self):
        # /dev/zero once took all memory and ended in std::bad_alloc (abort, status 134).
        r = run("send", "--from", "a@example.com", "--to", "b@example.com", "--data", "/dev/zero")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--data /dev/zero: larger than 256 MiB", r.stderr)

    def test_a_line_break_in_a_command_value_is_a_usage_error(self):
        # A CR/LF in --helo once went on the wire as two commands ("EHLO h", "NOOP").
        for flag, value in (("--helo", "h\r\nNOOP"), ("--from", "a@b.test\r\nRSET"),
                            ("--to", "c@d.test\nQUIT")):
            args = {"--helo": "h", "--from": "a@b.test", "--to": "c@d.test"}
            args[flag] = value
            r = run("send", *[x for kv in args.items() for x in kv])
            self.assertEqual(r.returncode, 2, (flag, r.stderr))
            self.assertIn(flag + ": a CR, LF or NUL would end the command early", r.stderr)
        r = run("send", "--from", "a@b.test", "--to", "c@d.test", "--helo", "")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--helo: empty; EHLO needs a name", r.stderr)


class SendAgainstOddServers(unittest.TestCase):
    """`send` as a careful mailer: plaintext injected with the STARTTLS 220 is thrown away
    (RFC 3207, CVE-2011-0411), and a server that refuses EHLO gets HELO (RFC 5321 3.2)."""

    def start(self, scenario):
        srv = SmtpfaultServer("--scenario", scenario).start()
        self.addCleanup(srv.cleanup)
        self.addCleanup(srv.stop)
        return srv

    def send(self, srv, *flags, data=None):
        return run("send", "--server", "127.0.0.1:%d" % srv.port, "--from", "a@example.com",
                   "--to", "b@example.com", *flags, stdin=data)

    def test_plaintext_injected_before_the_handshake_is_discarded(self):
        srv = self.start("starttls-injection")
        r = self.send(srv, "--starttls")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"discarded \d+ octet\(s\) that came after the 220")
        self.assertIn("delivered", r.stdout)
        self.assertTrue(srv.wait_for_messages(1)[0].meta["session"]["tls"])

    def test_a_handshake_the_server_breaks_is_not_blamed_on_a_certificate_never_checked(self):
        # OpenSMTPD 6.8 with OpenSSL 3 aborts every handshake after sending its certificate.
        # Without --verify that certificate was never judged: OpenSSL's verdict on it (no CA
        # vouches for it) is not why the handshake failed, and --ca would not help; for send and
        # run.
        tmp = tempfile.mkdtemp(prefix="smtpfault-tls-")
        self.addCleanup(shutil.rmtree, tmp, True)
        cert, key = make_certificate(tmp)
        breaker = TlsBreaker(cert, key)
        self.addCleanup(breaker.close)
        target = "127.0.0.1:%d" % breaker.port
        r = run("send", "--server", target, "--starttls", "--from", "a@example.com",
                "--to", "b@example.com")
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 1, out)
        self.assertIn("TLS handshake failed: sslv3 alert handshake failure", out)
        self.assertNotIn("issuer", out)
        self.assertNotIn("--ca FILE", out)
        script = os.path.join(tmp, "tls.lua")
        with open(script, "w") as f:
            f.write('connect {}\ngreeting()\nehlo("client.test")\nstarttls {}\n')
        r = run("run", script, "--target", target, "--timeout", "5")
        out = r.stdout + r.stderr
        self.assertIn("TLS handshake with 127.0.0.1 failed: sslv3 alert handshake failure", out)
        self.assertNotIn("issuer", out)

    def test_a_utf8_header_to_a_server_without_smtputf8_is_not_sent(self):
        # RFC 6532: raw UTF-8 in a header field needs SMTPUTF8; 8BITMIME covers only the body.
        srv = self.start("no-smtputf8")
        r = self.send(srv, "--to", "c@example.com", "--data", "-",
                      data="To: b@example.com\nSubject: caf\u00e9\n\nascii body\n")
        assert_not_sent(self, srv, r, "the header field 'Subject' is not ASCII, which needs "
                        "SMTPUTF8 (RFC 6532), and the server did not offer it")
        # Encoded words say it in ASCII: that goes, its UTF-8 body with BODY=8BITMIME.
        r = self.send(srv, "--data", "-",
                      data="Subject: =?utf-8?q?caf=C3=A9?=\n\nna\u00efve\n")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"C: MAIL FROM:<a@example.com> SIZE=\d+ BODY=8BITMIME\n")

    def test_an_8bit_message_to_a_server_without_8bitmime_is_not_sent(self):
        # RFC 6152 3: 8-bit data only to a server that offers 8BITMIME; send converts nothing.
        srv = self.start("no-8bitmime")
        r = self.send(srv, "--data", "-", data="Subject: plain\n\nna\u00efve\n")
        assert_not_sent(self, srv, r, "the message has 8-bit octets, which need 8BITMIME (RFC "
                        "6152), and the server did not offer it")
        r = self.send(srv, "--data", "-", data="Subject: plain\n\nascii only\n")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"C: MAIL FROM:<a@example.com> SIZE=\d+\n")
        self.assertEqual(len(srv.wait_for_messages(1)), 1)

    def test_a_refusing_greeting_gets_no_tls_hint(self):
        # The server answered in plain text: the port is not an implicit-TLS one.
        srv = self.start("greeting-421")
        r = self.send(srv)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("greeting: server replied 421 4.3.2", r.stderr)
        self.assertNotIn("--tls", r.stderr)

    def test_a_multi_line_refusal_is_quoted_whole(self):
        srv = self.start("multiline-replies")
        r = run("send", "--server", "127.0.0.1:%d" % srv.port, "--from", "", "--to",
                "one@example.com", "--to", "two@example.com")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("two@example.com: server replied 550 5.1.1 The email account that you "
                      "tried to reach does not exist. / Please try", r.stderr)
        # A null sender still gets a From: header with a mailbox in it.
        msg = srv.wait_for_messages(1)[0]
        self.assertIn(b"From: MAILER-DAEMON@smtpfault.client\r\n", msg.data)

    def test_every_outcome_lists_the_refused_recipients(self):
        srv = self.start("magic-addresses")

        def send(*rcpts, log_format="text"):
            to = [a for rcpt in rcpts for a in ("--to", rcpt + "@x.test")]
            r = run("send", "--server", "127.0.0.1:%d" % srv.port, "--from", "a@x.test", *to,
                    "--log-format", log_format)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            return r if log_format == "text" else json.loads(r.stdout.splitlines()[-1])

        # Every recipient refused: the JSON once had no "refused" at all.
        last = send("rcpt-550", "rcpt-554", log_format="json")
        self.assertEqual((last["delivered"], last["accepted"], last["refused"]),
                         (False, 0, ["rcpt-550@x.test", "rcpt-554@x.test"]), last)
        # A refusal, then a failure after it (DATA 421): neither output once named rcpt-550.
        r = send("rcpt-550", "data-421")
        self.assertRegex(r.stderr, r"not delivered: DATA: server replied 421 .*; refused before: "
                         r"rcpt-550@x.test: server replied 550 5.1.1")
        last = send("rcpt-550", "data-421", log_format="json")
        self.assertEqual((last["delivered"], last["accepted"], last["refused"]),
                         (False, 0, ["rcpt-550@x.test"]), last)
        self.assertIn("refused before: rcpt-550@x.test: server replied 550", last["error"])

    def test_a_refused_ehlo_falls_back_to_helo(self):
        srv = self.start("ehlo-unsupported")
        r = self.send(srv)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("C: HELO smtpfault.client", r.stdout)
        self.assertEqual(len(srv.wait_for_messages(1)), 1)
        # STARTTLS needs EHLO: refused, and the session still ends with QUIT.
        r = self.send(srv, "--starttls")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("STARTTLS needs EHLO, which the server refused", r.stderr)
        self.assertIn("C: QUIT", r.stdout)

    def test_a_starttls_refusal_says_it_was_not_offered(self):
        srv = self.start("starttls-stripped")
        r = self.send(srv, "--starttls")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("(the server's EHLO reply did not offer STARTTLS)", r.stderr)


class SendBoundsEveryWait(unittest.TestCase):
    """--timeout bounds each wait of `send`, not only the replies: a TLS handshake the server
    never answers, and a message the server stops reading."""

    def send(self, srv, *flags, timeout="1"):
        started = time.monotonic()
        r = run("send", "--server", "127.0.0.1:%d" % srv.port, "--from", "a@example.com",
                "--to", "b@example.com", "--timeout", timeout, *flags, timeout=30)
        return r, time.monotonic() - started

    def test_a_handshake_never_answered(self):
        srv = ScriptedServer([b"250-scripted\r\n250 STARTTLS\r\n", b"220 go ahead\r\n"])
        self.addCleanup(srv.close)
        r, took = self.send(srv, "--starttls")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("TLS handshake failed: no answer within the timeout", r.stderr)
        self.assertLess(took, 10)

    def test_a_slow_reader_that_keeps_reading_gets_the_whole_message(self):
        # --timeout is for each bit of progress: 24 MB at about 5 MB/s takes seconds more than
        # the 2 s timeout (what the kernel buffers, a few MB, the reader drains within it).
        srv = SlowReader()
        self.addCleanup(srv.close)
        with tempfile.NamedTemporaryFile("w", suffix=".eml", delete=False) as f:
            f.write("Subject: big\n\n" + ("x" * 998 + "\n") * 24000)
        self.addCleanup(os.unlink, f.name)
        r, took = self.send(srv, "--data", f.name, timeout="2")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertGreater(took, 3)

    def test_a_message_the_server_stops_reading(self):
        srv = ScriptedServer([b"250 scripted\r\n", b"250 ok\r\n", b"250 ok\r\n",
                              b"354 go ahead\r\n"])
        self.addCleanup(srv.close)
        with tempfile.NamedTemporaryFile("w", suffix=".eml", delete=False) as f:
            f.write("Subject: big\n\n" + ("x" * 998 + "\n") * 40000)   # 40 MB: past any buffer
        self.addCleanup(os.unlink, f.name)
        r, took = self.send(srv, "--data", f.name)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("message: timeout writing to the server: it stopped reading", r.stderr)
        self.assertLess(took, 10)


class SlowReader:
    """Answers EHLO, MAIL, RCPT and DATA, then reads the message slowly but steadily (512 KiB
    every 0.1 s), answers 250, and 221 to QUIT."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        conn, _ = self.sock.accept()
        with conn:
            conn.sendall(b"220 slow\r\n")
            for reply in (b"250 slow\r\n", b"250 ok\r\n", b"250 ok\r\n", b"354 go\r\n"):
                line = b""
                while not line.endswith(b"\n"):
                    line += conn.recv(1)
                conn.sendall(reply)
            tail = b""
            while not tail.endswith(b"\r\n.\r\n"):
                chunk = conn.recv(512 * 1024)
                if not chunk:
                    return
                tail = (tail + chunk)[-5:]
                time.sleep(0.1)
            conn.sendall(b"250 ok\r\n")
            conn.recv(100)
            conn.sendall(b"221 bye\r\n")

    def close(self):
        self.sock.close()


class SendSaysWhatHappened(unittest.TestCase):
    """`send`'s error names the command that went wrong and quotes what the server said."""

    def send(self, replies, *flags, then_close=False):
        srv = ScriptedServer(replies, then_close=then_close)
        self.addCleanup(srv.close)
        r = run("send", "--server", "127.0.0.1:%d" % srv.port, "--from", "a@example.com",
                "--to", "b@example.com", "--timeout", "2", *flags)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        return r.stderr

    def test_an_odd_reply_to_data(self):
        err = self.send([b"250 scripted\r\n", b"250 ok\r\n", b"250 ok\r\n", b"250 early\r\n"])
        self.assertIn("not delivered: DATA: server replied 250 early", err)

    def test_starttls_needs_220(self):
        err = self.send([b"250-scripted\r\n250 STARTTLS\r\n", b"250 ok\r\n", b"221 bye\r\n"],
                        "--starttls")
        self.assertIn("STARTTLS: server replied 250, not 220: no TLS handshake started", err)

    def test_a_malformed_reply_is_quoted(self):
        err = self.send([b"250 scripted\r\n", b"25 what\r\n"])
        self.assertRegex(err, r"MAIL: malformed reply: .*: '25 what'")

    def test_a_close_is_said_in_words(self):
        err = self.send([b"250 scripted\r\n", b""], then_close=True)   # MAIL read, unanswered
        self.assertIn("MAIL: the server closed the connection", err)


class SendRefusals(unittest.TestCase):
    """`send` behaves as a mailer should when recipients are refused: it tries every one,
    delivers to those accepted, names the refused ones with their codes, and ends with QUIT."""

    def setUp(self):
        fd, self.script = tempfile.mkstemp(suffix=".lua")
        with os.fdopen(fd, "w") as f:
            f.write("function on_rcpt(s, r)\n"
                    "  if r.address:find('bad', 1, true) then\n"
                    "    return smtp.reply(550, '5.1.1', 'nope')\n"
                    "  end\n"
                    "  if r.address:find('shut', 1, true) then\n"
                    "    return smtp.reply_then_close(421, '4.3.2', 'closing')\n"
                    "  end\n"
                    "end\n")
        self.server = SmtpfaultServer("--scenario", self.script).start()

    def tearDown(self):
        self.server.stop()
        self.server.cleanup()
        os.unlink(self.script)

    def send(self, *rcpts):
        to = [a for r in rcpts for a in ("--to", r)]
        return run("send", "--server", "127.0.0.1:%d" % self.server.port,
                   "--from", "alice@example.com", *to)

    def test_a_refused_recipient_does_not_stop_the_others(self):
        r = self.send("bad@x.test", "ok@y.test")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        # Delivered means to every recipient, as the JSON's "delivered" says: this was not.
        self.assertIn("not delivered to every recipient (1 of 2 accepted it); refused: "
                      "bad@x.test: server replied 550 5.1.1 nope", r.stderr)
        msg = self.server.wait_for_messages(1)[0]
        self.assertEqual(msg.recipients, ["ok@y.test"])
        self.server.wait_for_line(r"C: QUIT")
        # As JSON, which ones were refused is data, not only a part of the error's text.
        to = ["--to", "bad@x.test", "--to", "ok@y.test", "--to", "bad2@x.test"]
        r = run("send", "--server", "127.0.0.1:%d" % self.server.port, "--from",
                "alice@example.com", "--log-format", "json", *to)
        last = json.loads(r.stdout.strip().splitlines()[-1])
        self.assertEqual((last["delivered"], last["accepted"], last["recipients"],
                          last["refused"]), (False, 1, 3, ["bad@x.test", "bad2@x.test"]), last)

    def test_the_verdict_follows_the_transcript_in_one_pipe(self):
        p = subprocess.run([binary_path(), "send", "--server", "127.0.0.1:%d" % self.server.port,
                            "--from", "alice@example.com", "--to", "bad@x.test", "--to",
                            "ok@y.test"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=30, env=server_environment())
        self.assertEqual(p.returncode, 1, p.stdout)
        lines = p.stdout.strip().splitlines()
        self.assertIn("QUIT", "\n".join(lines[:-1]))
        self.assertTrue(lines[-1].startswith("smtpfault send: not delivered to every recipient "
                                             "(1 of 2"), lines)

    def test_a_421_ends_the_attempt_and_keeps_what_came_before(self):
        r = self.send("bad@x.test", "shut@x.test", "ok@y.test")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("shut@x.test: server replied 421 4.3.2 closing; refused before: "
                      "bad@x.test: server replied 550 5.1.1 nope", r.stderr)
        self.server.wait_for_line(r"session ended")
        lines = self.server.transcript()
        self.assertFalse(any("C: QUIT" in l or "ok@y.test" in l for l in lines), lines)

    def test_no_recipient_accepted_ends_with_quit(self):
        r = self.send("bad@x.test")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("not delivered: no recipient accepted: bad@x.test: "
                      "server replied 550 5.1.1 nope", r.stderr)
        self.server.wait_for_line(r"C: QUIT")
        self.assertFalse(any("client closed the connection" in l
                             for l in self.server.transcript()), self.server.transcript())


class SendEnvelopeAndFlags(WithServer):
    """`send` asks for the extensions its message needs (SMTPUTF8, 8BITMIME, SIZE), takes
    addresses as users write them, and finds mistakes in its flags before connecting."""

    def send(self, *flags, data=None, to="bob@example.com"):
        return run("send", "--server", "127.0.0.1:%d" % self.server.port,
                   "--from", "alice@example.com", "--to", to, *flags, stdin=data)

    def mail_line(self, stdout):
        return next(l for l in stdout.splitlines() if l.startswith("C: MAIL FROM:"))

    def test_a_non_ascii_address_is_sent_with_smtputf8(self):
        before = len(self.server.messages())
        r = self.send(to="j\u00f6rg@b\u00fccher.example")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(" SMTPUTF8", self.mail_line(r.stdout))
        msg = self.server.wait_for_messages(before + 1)[-1]
        self.assertEqual(msg.recipients, ["j\u00f6rg@b\u00fccher.example"])

    def test_an_8bit_message_is_declared_and_its_size_given(self):
        before = len(self.server.messages())
        body = "Subject: caf\u00e9\n\nna\u00efve\n"
        r = self.send("--data", "-", data=body)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        mail = self.mail_line(r.stdout)
        msg = self.server.wait_for_messages(before + 1)[-1]
        self.assertIn(" SIZE=%d" % len(msg.data), mail)
        self.assertIn(" BODY=8BITMIME", mail)
        self.assertIn(" SMTPUTF8", mail)   # the Subject: header is UTF-8 (RFC 6532)
        r = self.send("--data", "-", data="Subject: plain\n\nascii only\n")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        mail = self.mail_line(r.stdout)
        self.assertRegex(mail, r" SIZE=\d+$")

    def test_size_is_what_the_server_keeps(self):
        # RFC 1870 4: the CRLF that send adds to a last line without one counts; the dots that
        # stuffing adds do not.
        for body in ("Subject: no end\n\nlast line", "Subject: dots\n\n.one\n..two\n.\nend"):
            with self.subTest(body=body):
                before = len(self.server.messages())
                r = self.send("--data", "-", data=body)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                msg = self.server.wait_for_messages(before + 1)[-1]
                self.assertRegex(self.mail_line(r.stdout), r" SIZE=%d( |$)" % len(msg.data))
                self.assertIn("C: <%d octets of message data>" % len(msg.data), r.stdout)

    def test_a_non_ascii_address_to_a_server_without_smtputf8_is_not_sent(self):
        srv = ScriptedServer([b"250-scripted\r\n250 8BITMIME\r\n", b"221 bye\r\n"])
        self.addCleanup(srv.close)
        r = run("send", "--server", "127.0.0.1:%d" % srv.port, "--from", "a@example.com",
                "--to", "j\u00f6rg@example.com", "--timeout", "2")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("is not ASCII, which needs SMTPUTF8 (RFC 6531), and the server did not "
                      "offer it", r.stderr)
        self.assertNotIn("C: MAIL", r.stdout)
        self.assertIn("C: QUIT", r.stdout)

    def test_addresses_in_angle_brackets_are_taken_as_written(self):
        r = run("send", "--server", "127.0.0.1:%d" % self.server.port,
                "--from", "<alice@example.com>", "--to", "<bob@example.com>")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("C: MAIL FROM:<alice@example.com>", r.stdout)
        self.assertIn("C: RCPT TO:<bob@example.com>", r.stdout)
        r = run("send", "--server", "127.0.0.1:%d" % self.server.port,
                "--from", "<>", "--to", "<>")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("--to: empty; a recipient needs an address", r.stderr)

    def test_an_address_that_cannot_be_a_path_is_a_usage_error(self):
        # 'a@x.test> SIZE=1' once went out as "MAIL FROM:<a@x.test> SIZE=1> SIZE=226", and into
        # the From: header; ' d@x.test ' as "RCPT TO:< d@x.test >".
        for flag, value in (("--from", "a@x.test> SIZE=1"), ("--to", " d@x.test "),
                            ("--to", "<d@x.test"), ("--from", "a b@x.test"), ("--to", "d")):
            with self.subTest(flag=flag, value=value):
                args = {"--from": "a@x.test", "--to": "b@x.test", flag: value}
                r = run("send", "--server", "127.0.0.1:%d" % self.server.port,
                        *[x for kv in args.items() for x in kv])
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                self.assertIn("%s: bad address syntax in '%s' (RFC 5321 4.1.2: local@domain; a "
                              "space, '<' or '>' only inside a quoted local part)" % (flag, value),
                              r.stderr)
                self.assertEqual(r.stdout, "")
        # A quoted local part may hold a space, as the server's parser allows.
        before = len(self.server.messages())
        r = self.send(to='"b o b"@example.com')
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn('C: RCPT TO:<"b o b"@example.com>', r.stdout)
        self.assertEqual(self.server.wait_for_messages(before + 1)[-1].recipients,
                         ['"b o b"@example.com'])

    def test_an_empty_user_is_a_usage_error(self):
        r = self.send("--starttls", "--auth", ":secret")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("--auth: the user name before ':' is empty", r.stderr)
        self.assertEqual(r.stdout, "")

    def test_a_ca_file_that_is_not_pem_is_a_usage_error(self):
        fd, path = tempfile.mkstemp(suffix=".pem")
        os.write(fd, b"not a certificate\n")
        os.close(fd)
        self.addCleanup(os.unlink, path)
        r = self.send("--starttls", "--ca", path)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("--ca: cannot load CA file " + path, r.stderr)
        self.assertEqual(r.stdout, "")
        # One that is not there says so, as --data does.
        r = self.send("--starttls", "--ca", path + ".missing")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("--ca %s.missing: cannot read: No such file or directory" % path, r.stderr)

    def test_each_default_message_has_its_own_message_id(self):
        before = len(self.server.messages())
        for _ in range(2):
            r = self.send()
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        ids = [re.search(rb"Message-ID: (<[^>]+>)", m.data).group(1)
               for m in self.server.wait_for_messages(before + 2)[-2:]]
        self.assertNotEqual(ids[0], ids[1])

    def test_a_message_ending_in_a_bare_cr_gets_one_line_end(self):
        before = len(self.server.messages())
        r = self.send("--data", "-", data="Subject: cr\n\nlast line\r")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        msg = self.server.wait_for_messages(before + 1)[-1]
        self.assertTrue(msg.data.endswith(b"last line\r\n"), msg.data)

    def test_a_wrong_port_for_the_tls_mode_gets_a_hint(self):
        r = run("send", "--server", "127.0.0.1:%d" % self.server.tls_port, "--from", "a@x.test",
                "--to", "b@x.test", "--timeout", "1")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("(nothing came: a port that serves no SMTP, an HTTP API's for one, is "
                      "silent too; if this port takes implicit TLS, as 465 does, it waits for a "
                      "TLS handshake first: add --tls)", r.stderr)
        r = run("send", "--server", "127.0.0.1:%d" % self.server.port, "--from", "a@x.test",
                "--to", "b@x.test", "--tls", "--timeout", "5")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("(the server answered without TLS: a plain SMTP port takes --starttls or "
                      "no TLS)", r.stderr)

    def test_the_implicit_tls_hint_only_when_no_text_came(self):
        # Text where the greeting belongs, whole or half-sent, is a server talking in the clear.
        for greeting in (b"HTTP/1.1 400 Bad Request\r\n\x00\xff\xfegarbage\r\n",
                         b"220-first line\r\n220-second"):
            with self.subTest(greeting=greeting):
                srv = ScriptedServer([], greeting=greeting)
                self.addCleanup(srv.close)
                r = run("send", "--server", "127.0.0.1:%d" % srv.port, "--from", "a@x.test",
                        "--to", "b@x.test", "--timeout", "1")
                self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                self.assertIn("not delivered: greeting: ", r.stderr)
                self.assertNotIn("--tls", r.stderr)
        # A TLS record (an alert, then the close) is what a TLS port may send instead.
        srv = ScriptedServer([], then_close=True, greeting=b"\x15\x03\x03\x00\x02\x02\x32")
        self.addCleanup(srv.close)
        r = run("send", "--server", "127.0.0.1:%d" % srv.port, "--from", "a@x.test", "--to",
                "b@x.test", "--timeout", "5")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("waits for a TLS handshake first: add --tls)", r.stderr)

    def test_credentials_are_not_sent_where_auth_is_not_offered(self):
        # OpenSMTPD offers AUTH over TLS alone, and logs a refused AUTH line, base64 and all.
        # An AUTH= line (before RFC 4954) offers it too.
        srv = ScriptedServer([b"250-scripted\r\n250 AUTH=LOGIN PLAIN\r\n", b"235 ok\r\n",
                              b"421 enough\r\n"])
        self.addCleanup(srv.close)
        r = run("send", "--server", "127.0.0.1:%d" % srv.port, "--from", "a@example.com",
                "--to", "b@example.com", "--auth", "u:secret", "--timeout", "2")
        self.assertIn("C: AUTH PLAIN ****", r.stdout, r.stderr)
        for ehlo, hint in [(b"250-scripted\r\n250 STARTTLS\r\n", " before TLS: add --starttls"),
                           (b"250 scripted\r\n", "")]:
            srv = ScriptedServer([ehlo, b"221 bye\r\n"])
            self.addCleanup(srv.close)
            r = run("send", "--server", "127.0.0.1:%d" % srv.port, "--from", "a@example.com",
                    "--to", "b@example.com", "--auth", "u:secret", "--timeout", "2")
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertNotIn("AUTH PLAIN", r.stdout)
            self.assertEqual(r.stdout.splitlines()[-2:], ["C: QUIT", "S: 221 bye"])
            self.assertIn("AUTH: the server did not offer it%s (the credentials were not sent)"
                          % hint, r.stderr)

    def test_a_message_over_the_declared_size_is_not_sent(self):
        # RFC 1870 6.1: OpenSMTPD declares SIZE and refuses a larger message only at its end.
        srv = ScriptedServer([b"250-scripted\r\n250 SIZE 100\r\n", b"221 bye\r\n"])
        self.addCleanup(srv.close)
        r = run("send", "--server", "127.0.0.1:%d" % srv.port, "--from", "a@example.com",
                "--to", "b@example.com", "--data", "-", "--timeout", "2",
                stdin="Subject: big\n\n" + "x" * 200 + "\n")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertNotIn("MAIL FROM", r.stdout)
        self.assertRegex(r.stderr, r"the message is \d+ octets, over the SIZE 100 the server "
                         r"declared \(RFC 1870 6.1\)")
        # Exactly the declared size goes; one octet more does not.
        size = int(re.search(r"the message is (\d+) octets", r.stderr).group(1))
        for declared, sent in [(size, True), (size - 1, False)]:
            srv = ScriptedServer([b"250-scripted\r\n250 SIZE  %d\r\n" % declared,
                                  b"421 enough\r\n"])
            self.addCleanup(srv.close)
            r = run("send", "--server", "127.0.0.1:%d" % srv.port, "--from", "a@example.com",
                    "--to", "b@example.com", "--data", "-", "--timeout", "2",
                    stdin="Subject: big\n\n" + "x" * 200 + "\n")
            self.assertEqual("MAIL FROM" in r.stdout, sent, (declared, r.stdout + r.stderr))
        # SIZE 0 declares no limit: that message goes.
        srv = ScriptedServer([b"250-scripted\r\n250 SIZE 0\r\n", b"421 enough\r\n"])
        self.addCleanup(srv.close)
        r = run("send", "--server", "127.0.0.1:%d" % srv.port, "--from", "a@example.com",
                "--to", "b@example.com", "--data", "-", "--timeout", "2",
                stdin="Subject: big\n\n" + "x" * 200 + "\n")
        self.assertRegex(r.stdout, r"C: MAIL FROM:<a@example.com> SIZE=\d+\n", r.stderr)
        self.assertNotIn("over the SIZE", r.stderr)

    def test_a_334_to_auth_plain_is_cancelled_before_quit(self):
        srv = ScriptedServer([b"250-scripted\r\n250 AUTH PLAIN\r\n", b"334 \r\n",
                              b"501 5.7.0 cancelled\r\n", b"221 bye\r\n"])
        self.addCleanup(srv.close)
        r = run("send", "--server", "127.0.0.1:%d" % srv.port, "--from", "a@example.com",
                "--to", "b@example.com", "--auth", "u:p", "--timeout", "2")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[-4:], ["C: *", "S: 501 5.7.0 cancelled", "C: QUIT", "S: 221 bye"])
        self.assertIn("AUTH: server replied 334 (it asked for more than AUTH PLAIN's "
                      "credentials; cancelled with *)", r.stderr)


if __name__ == "__main__":
    unittest.main()
