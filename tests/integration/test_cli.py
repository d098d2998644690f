"""The command line: --help and --version everywhere, smtpfault send in each TLS mode, several
listeners on IPv4 and IPv6, JSON logs with escaped wire bytes, environment configuration."""

import json
import os
import re
import smtplib
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import xml.etree.ElementTree as ET

from scripted_server import ScriptedServer
from smtpfault_server import (SmtpfaultServer, binary_path, sanitized_build, server_environment,
                              write_file)

COMMANDS = ["serve", "send", "check", "list", "test", "run", "healthcheck"]


def run(*args, env=None, timeout=30, stdin=None):
    return subprocess.run([binary_path(), *args], capture_output=True, text=True, timeout=timeout,
                          env=server_environment(env), input=stdin)


def ipv6_loopback_available():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class HelpAndVersion(unittest.TestCase):
    def test_every_command_has_help_and_version(self):
        version = run("--version")
        self.assertEqual(version.returncode, 0)
        self.assertRegex(version.stdout, r"^smtpfault \d+\.\d+\.\d+")
        for cmd in COMMANDS:
            with self.subTest(cmd=cmd):
                h = run(cmd, "--help")
                self.assertEqual(h.returncode, 0, h.stderr)
                self.assertIn("usage: smtpfault " + cmd, h.stdout)
                self.assertEqual(run(cmd, "-h").stdout, h.stdout)
                v = run(cmd, "--version")
                self.assertEqual(v.returncode, 0, v.stderr)
                self.assertEqual(v.stdout, version.stdout)

    def test_serve_help_keeps_its_options_in_a_column_of_80(self):
        # Its options are made from the configuration keys, some with long names.
        text = run("serve", "--help").stdout
        self.assertEqual([l for l in text.splitlines() if len(l) > 80], [])
        self.assertIn("  --api-request-timeout\n                       seconds the HTTP API", text)

    def test_unknown_command_and_option_are_usage_errors(self):
        self.assertEqual(run("frobnicate").returncode, 2)
        r = run("serve", "--no-such-flag", "1")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--no-such-flag", r.stderr)


class SendCommand(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = SmtpfaultServer("--set", "auth.users=alice:secret").start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.cleanup()

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
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        r = self.send("--server", "127.0.0.1:%d" % port)
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot connect", r.stderr)

    def test_missing_from_is_a_usage_error(self):
        r = run("send", "--to", "bob@example.com")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--from is required", r.stderr)


class SendAgainstOddServers(unittest.TestCase):
    """`send` as a careful mailer: plaintext injected with the STARTTLS 220 is thrown away
    (RFC 3207, CVE-2011-0411), and a server that refuses EHLO gets HELO (RFC 5321 3.2)."""

    def start(self, scenario):
        srv = SmtpfaultServer("--scenario", scenario).start()
        self.addCleanup(srv.cleanup)
        self.addCleanup(srv.stop)
        return srv

    def send(self, srv, *flags):
        return run("send", "--server", "127.0.0.1:%d" % srv.port, "--from", "a@example.com",
                   "--to", "b@example.com", *flags)

    def test_plaintext_injected_before_the_handshake_is_discarded(self):
        srv = self.start("starttls-injection")
        r = self.send(srv, "--starttls")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"discarded \d+ octet\(s\) that came after the 220")
        self.assertIn("delivered", r.stdout)
        self.assertTrue(srv.wait_for_messages(1)[0].meta["session"]["tls"])

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
            f = conn.makefile("rb", buffering=0)
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
        self.assertIn("delivered to 1 of 2 recipients; refused: bad@x.test: "
                      "server replied 550 5.1.1 nope", r.stderr)
        msg = self.server.wait_for_messages(1)[0]
        self.assertEqual(msg.recipients, ["ok@y.test"])
        self.server.wait_for_line(r"C: QUIT")

    def test_the_verdict_follows_the_transcript_in_one_pipe(self):
        p = subprocess.run([binary_path(), "send", "--server", "127.0.0.1:%d" % self.server.port,
                            "--from", "alice@example.com", "--to", "bad@x.test", "--to",
                            "ok@y.test"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=30, env=server_environment())
        self.assertEqual(p.returncode, 1, p.stdout)
        lines = p.stdout.strip().splitlines()
        self.assertIn("QUIT", "\n".join(lines[:-1]))
        self.assertTrue(lines[-1].startswith("smtpfault send: delivered to 1 of 2"), lines)

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


class Listeners(unittest.TestCase):
    @unittest.skipUnless(ipv6_loopback_available(), "no IPv6 loopback in this environment")
    def test_ipv4_and_ipv6_listeners_all_serve(self):
        srv = SmtpfaultServer("--listen", "127.0.0.1:0", "--listen", "[::1]:0").start()
        try:
            ports = [l for l in srv.banner if "listening: smtp " in l]
            self.assertTrue(any("127.0.0.1" in l for l in ports), srv.banner)
            v6 = [l for l in ports if "[::1]" in l][0]
            port = int(v6.rsplit(":", 1)[1])
            with socket.create_connection(("::1", port), timeout=5) as c:
                self.assertTrue(c.recv(100).startswith(b"220 "))
        finally:
            srv.stop()
            srv.cleanup()

    @unittest.skipUnless(ipv6_loopback_available(), "no IPv6 loopback in this environment")
    def test_the_banner_suggests_the_loopback_of_a_wildcard_listeners_family(self):
        for wildcard, loopback in (("[::]", "[::1]"), ("0.0.0.0", "127.0.0.1")):
            proc = subprocess.Popen([binary_path(), "serve", "--listen", wildcard + ":0",
                                     "--tls-listen", "", "--api", ""], stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, text=True,
                                    env=server_environment())
            try:
                hint = next(l for l in proc.stdout if "try: swaks" in l)
            finally:
                proc.terminate()
                proc.wait(10)
            self.assertRegex(hint, r"--server %s:\d+ " % re.escape(loopback))

    def test_a_host_name_where_an_address_belongs_is_a_configuration_error(self):
        # No name lookups: each address key takes an IP literal or "localhost", and says so.
        for flag, key in (("--listen", "listen"), ("--tls-listen", "tls_listen"), ("--api", "api")):
            r = run("serve", flag, "mail.example:2525", timeout=10)
            self.assertEqual(r.returncode, 2, (flag, r.stderr))
            self.assertIn("%s: 'mail.example:2525' is not an IP address" % key, r.stderr)
        r = run("healthcheck", "--api", "mail.example:8025")
        self.assertEqual(r.returncode, 1)   # Docker reserves 2
        self.assertIn("api: 'mail.example:8025' is not an IP address", r.stderr)

    def test_a_port_another_server_listens_on_is_refused_with_several_threads(self):
        # Several I/O threads listen on one port with SO_REUSEPORT, which by itself would let a
        # second server join the first one's port and take half its mail.
        first = SmtpfaultServer("--threads", "2").start()
        try:
            taken = "127.0.0.1:%d" % first.port
            r = run("serve", "--threads", "2", "--listen", taken, "--tls-listen", "",
                    "--api", "", timeout=20)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("cannot listen on %s: Address already in use" % taken, r.stderr)
            with first.connect() as c:   # the first server still has its port to itself
                c.cmd("QUIT", expect=221)
        finally:
            first.stop()
            first.cleanup()

    def test_a_default_port_that_is_taken_is_named_as_a_default(self):
        # `--listen 127.0.0.1:0` alone still opens the default SMTPS port: a second such server
        # must hear that the port it cannot have is one it never asked for.
        holder = socket.socket()
        try:
            holder.bind(("127.0.0.1", 2465))
            holder.listen()
        except OSError:
            pass   # taken already: the server cannot have it either
        try:
            r = run("serve", "--listen", "127.0.0.1:0", "--api", "", timeout=20)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("cannot listen on 127.0.0.1:2465: Address already in use (tls_listen is "
                          "a default: give --tls-listen HOST:PORT, or --tls-listen '' for none)",
                          r.stderr)
            with socket.socket() as other:
                other.bind(("127.0.0.1", 0))
                other.listen()
                taken = "127.0.0.1:%d" % other.getsockname()[1]
                r = run("serve", "--listen", "127.0.0.1:0", "--api", "",
                        env={"SMTPFAULT_TLS_LISTEN": taken}, timeout=20)
                self.assertIn("cannot listen on %s: Address already in use (environment variable "
                              "SMTPFAULT_TLS_LISTEN)" % taken, r.stderr)
        finally:
            holder.close()

    def test_one_port_given_for_two_listeners_says_so(self):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        here = "127.0.0.1:%d" % port
        r = run("serve", "--listen", here, "--tls-listen", here, "--api", "", timeout=20)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("%s is given twice, for --listen and for --tls-listen: each port serves one "
                      "of them" % here, r.stderr)
        r = run("serve", "--listen", here, "--tls-listen", "", env={"SMTPFAULT_API": here},
                timeout=20)
        self.assertIn("%s is given twice, for --listen and for environment variable "
                      "SMTPFAULT_API" % here, r.stderr)

    def test_a_taken_api_port_names_where_it_was_given(self):
        with socket.socket() as other:
            other.bind(("127.0.0.1", 0))
            other.listen()
            taken = "127.0.0.1:%d" % other.getsockname()[1]
            r = run("serve", "--listen", "127.0.0.1:0", "--tls-listen", "", "--api", taken,
                    timeout=20)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("cannot listen for the HTTP API on %s: Address already in use (--api)"
                      % taken, r.stderr)

    def test_a_server_starting_at_the_same_instant_on_the_port_is_refused(self):
        # Two servers starting together can both find the port free before either listens;
        # the first to start holds a claim on it (an abstract Unix socket, per network
        # namespace like the port itself) that the second cannot take. Held here by hand.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with socket.socket(socket.AF_UNIX) as claim:
            claim.bind("\0smtpfault listen 127.0.0.1:%d" % port)
            r = run("serve", "--threads", "2", "--listen", "127.0.0.1:%d" % port,
                    "--tls-listen", "", "--api", "", timeout=20)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("cannot listen on 127.0.0.1:%d: Address already in use" % port, r.stderr)


class ServeFlagMistakes(unittest.TestCase):
    def test_a_misspelt_flag_gets_a_suggestion_and_a_bad_set_value_names_its_key(self):
        r = run("serve", "--lisen", "127.0.0.1:0", timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("unknown option --lisen (did you mean '--listen'?)", r.stderr)
        r = run("serve", "--set", "limits.text_line=abc", timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--set limits.text_line: expected an unsigned integer, got 'abc'", r.stderr)
        # One account as if it were a key of its own: the whole table is the value.
        r = run("serve", "--set", "auth.users.mail-bot=secret", timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("unknown key 'auth.users.mail-bot' ('auth.users' is one key: give all of it "
                      "as the value, e.g. auth.users=mail-bot:VALUE)", r.stderr)

    def test_a_scenario_that_cannot_be_loaded_names_where_it_was_given(self):
        with tempfile.TemporaryDirectory() as d:
            cfg = os.path.join(d, "s.toml")
            with open(cfg, "w") as f:
                f.write('hostname = "x.test"\nscenario = "mine.lua"\n')
            r = run("serve", "--config", cfg, "--listen", "127.0.0.1:0", timeout=10)
            self.assertEqual(r.returncode, 2, r.stderr)
            # A path in the file is read from where serve runs, and the message says so.
            self.assertIn("%s:2:12: key 'scenario': mine.lua: cannot open scenario: No such file"
                          % cfg, r.stderr)
            self.assertIn("(a relative path is read from the working directory, %s)"
                          % os.getcwd(), r.stderr)
        r = run("serve", "--listen", "127.0.0.1:0", env={"SMTPFAULT_SCENARIO": "nope"}, timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("environment variable SMTPFAULT_SCENARIO: unknown scenario 'nope'", r.stderr)
        r = run("serve", "--listen", "127.0.0.1:0", "--scenario", "nope", timeout=10)
        self.assertIn("--scenario: unknown scenario 'nope' (not a file; built-in", r.stderr)
        # A slip in a built-in name gets the name it was meant to be.
        r = run("test", "--scenario", "greylst", "--", "true", timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("unknown scenario 'greylst' (did you mean 'greylist'?) (not a file;",
                      r.stdout)

    def test_a_misspelt_command_gets_the_one_it_was_meant_to_be(self):
        r = run("tset", timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertTrue(r.stderr.startswith("smtpfault: unknown command 'tset' (did you mean "
                                            "'test'?)\n"), r.stderr)
        r = run("frobnicate", timeout=10)
        self.assertTrue(r.stderr.startswith("smtpfault: unknown command 'frobnicate'\n"), r.stderr)

    def test_a_store_that_cannot_be_made_is_a_configuration_error_named_where_given(self):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = os.path.join(tmp, "st.toml")
            with open(cfg, "w") as f:
                f.write('listen = ["127.0.0.1:0"]\napi = ""\nstore = "/proc/nope"\n')
            r = run("serve", "--config", cfg, timeout=10)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("%s:3:9: key 'store': /proc/nope: " % cfg, r.stderr)

    def test_certificate_files_are_checked_at_start_and_named_where_given(self):
        with tempfile.TemporaryDirectory() as d:
            rsa_key, rsa_cert, ec_key = (os.path.join(d, n) for n in ("r.key", "r.pem", "e.key"))
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                            rsa_key, "-out", rsa_cert, "-subj", "/CN=x", "-days", "2"],
                           check=True, capture_output=True, timeout=60)
            subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-out", ec_key],
                           check=True, capture_output=True, timeout=60)
            cfg = os.path.join(d, "t.toml")
            with open(cfg, "w") as f:
                f.write('[tls]\ncert = "%s"\nkey = "%s"\n'
                        % (os.path.join(d, "nope.pem"), rsa_key))
            r = run("serve", "--config", cfg, timeout=10)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("%s:2:8: key 'tls.cert': %s: No such file"
                          % (cfg, os.path.join(d, "nope.pem")), r.stderr)
            # An EC key for an RSA certificate loads into a slot of its own: every handshake
            # would fail with "no shared cipher". Refused at start instead.
            r = run("serve", "--tls-cert", rsa_cert, "--tls-key", ec_key, timeout=10)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("--tls-key: %s is not the key of the certificate in %s"
                          % (ec_key, rsa_cert), r.stderr)
            r = run("serve", "--tls-cert", rsa_cert, timeout=10)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("--tls-cert: tls.cert and tls.key go together; tls.key is not set",
                          r.stderr)
            # A directory, and a file with no PEM in it, are named as what they are.
            garbage = os.path.join(d, "garbage.key")
            with open(garbage, "wb") as f:
                f.write(bytes(range(256)))
            r = run("serve", "--tls-cert", d, "--tls-key", rsa_key, timeout=10)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("--tls-cert: %s: a directory, not a PEM file" % d, r.stderr)
            r = run("serve", "--tls-cert", rsa_cert, "--tls-key", garbage, timeout=10)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("--tls-key: %s: not a PEM file (no '-----BEGIN PRIVATE KEY-----' line "
                          "in it)" % garbage, r.stderr)

    def test_an_unknown_flag_given_last_is_called_unknown_in_every_command(self):
        for command in ("serve", "send", "test", "run", "healthcheck", "check"):
            r = run(command, "--bogus", timeout=10)
            # healthcheck: every failure is 1, since Docker reserves 2
            self.assertEqual(r.returncode, 1 if command == "healthcheck" else 2, r.stderr)
            self.assertIn("unknown option --bogus", r.stderr)
            self.assertNotIn("needs a value", r.stderr)
        r = run("serve", "--lisen", timeout=10)
        self.assertIn("unknown option --lisen (did you mean '--listen'?)", r.stderr)

    def test_a_known_flag_given_last_without_its_value_says_so(self):
        # Flags whose values are checked too: the missing value is what is reported.
        for command, flag in (("serve", "--listen"), ("serve", "--config"), ("send", "--from"),
                              ("test", "--junit"), ("run", "--junit"), ("test", "--seed"),
                              ("test", "--scenarios"), ("run", "--seed"), ("send", "--timeout"),
                              ("healthcheck", "--timeout")):
            r = run(command, flag, timeout=10)
            self.assertEqual(r.returncode, 1 if command == "healthcheck" else 2, r.stderr)
            self.assertIn("option %s needs a value" % flag, r.stderr)
            self.assertNotIn("expected", r.stderr)

    def test_check_loads_with_the_configured_lua_limits_as_serve_does(self):
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "big.lua")
            with open(path, "w") as f:
                f.write('local big = string.rep("x", 8 * 1024 * 1024)\nfunction on_connect(s) end\n')
            self.assertEqual(run("check", path).returncode, 0)
            r = run("check", path, env={"SMTPFAULT_LUA_MEMORY": str(4 * 1024 * 1024)})
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn("big.lua:1: memory limit exceeded", r.stderr)
            config = os.path.join(folder, "smtpfault.toml")
            with open(config, "w") as f:
                f.write("[lua]\nmemory = 4194304\n")
            r = run("check", "--config", config, path)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            r = run("check", path, env={"SMTPFAULT_LUA_MEMORY": "4MiB"})
            self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
            self.assertIn("SMTPFAULT_LUA_MEMORY: expected an unsigned integer", r.stderr)

    def test_a_memory_error_caught_in_a_coroutine_does_not_let_the_file_go_on(self):
        # Each round's first concatenation is the same allocation request as the refused
        # second one of the round before: it must not pass for Lua's retry of that one.
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "swallow.lua")
            with open(path, "w") as f:
                f.write('local big = string.rep("x", 24 * 1024 * 1024)\n'
                        'local caught = 0\n'
                        'local f = function() local a = big .. "a"; local b = big .. "b"; '
                        'return #a + #b end\n'
                        'coroutine.wrap(function()\n'
                        '  for i = 1, 40 do\n'
                        '    if not pcall(f) then caught = caught + 1 end\n'
                        '  end\n'
                        '  local z = big .. "c"\n'
                        'end)()\n'
                        'error("went on after " .. caught .. " caught memory errors")\n')
            r = run("check", path)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn("memory limit exceeded", r.stderr)
            self.assertNotIn("went on", r.stderr)

    def test_a_directory_given_as_a_scenario_is_refused_where_one_file_is_meant(self):
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "broken.lua"), "w") as f:
                f.write("x = = 1\n")
            for argv, status in ((("serve", "--scenario", folder, "--listen", "127.0.0.1:0",
                                   "--tls-listen", "", "--api", ""), 2),
                                 (("test", "--scenario", folder, "--", "true"), 2),
                                 (("run", folder), 2)):
                r = run(*argv, timeout=20)
                self.assertEqual(r.returncode, status, (argv, r.stdout, r.stderr))
                self.assertIn(folder + ": is a directory", r.stdout + r.stderr)
            # check takes a folder for its .lua files, as test --scenarios does.
            for argv in (("check", folder), ("check", "--client", folder)):
                r = run(*argv, timeout=20)
                self.assertEqual(r.returncode, 1, (argv, r.stdout, r.stderr))
                self.assertIn(os.path.join(folder, "broken.lua") + ":1:", r.stderr)

    def test_the_test_runner_configures_its_servers_as_serve_does(self):
        with tempfile.TemporaryDirectory() as tmp:
            scenario = write_file(tmp, "lmtp-only.lua",
                "function on_connect(s)\n"
                "  if not s.lmtp then return smtp.reply(554, '5.3.0', 'not LMTP') end\n"
                "end\nexpect { delivered = 1 }\n")
            mailer = write_file(tmp, "lmtp.py",
                "import os, smtplib\n"
                "c = smtplib.LMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
                "c.sendmail('a@x.test', ['b@y.test'], b'Subject: x\\r\\n\\r\\nhi\\r\\n')\n"
                "c.quit()\n")
            toml = write_file(tmp, "lmtp.toml", "lmtp = true\nseed = 5\n")
            command = ["test", "--scenario", scenario, "--", "/usr/bin/python3", mailer]
            r = run(*command, timeout=60)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            r = run(*command[:3], "--set", "lmtp=true", *command[3:], timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            r = run(*command[:3], "--config", toml, *command[3:], timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("seed 5", r.stderr)
            r = run(*command, env={"SMTPFAULT_LMTP": "true", "SMTPFAULT_SEED": "7"}, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("seed 7", r.stderr)
            # The scenario key too, when no --scenario names one.
            r = run("test", "--", "/usr/bin/python3", mailer, timeout=60,
                    env={"SMTPFAULT_LMTP": "true", "SMTPFAULT_SCENARIO": scenario})
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("1 scenario(s)", r.stderr)
            # A list key given twice holds both (AUTH as both users passes).
            auth = write_file(tmp, "auth.py",
                "import os, smtplib\n"
                "for user in ('ann', 'bob'):\n"
                "    c = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
                "    c.login(user, 'pw-' + user)\n"
                "    c.sendmail('a@x.test', ['b@y.test'], b'Subject: x\\r\\n\\r\\nhi\\r\\n')\n"
                "    c.quit()\n")
            r = run("test", "--scenario", "accept-all", "--set", "auth.users=ann:pw-ann",
                    "--set", "auth.users=bob:pw-bob", "--", "/usr/bin/python3", auth, timeout=60)
            # accept-all expects one message: both users got theirs through.
            self.assertIn("got 2 in 2 session(s)", r.stdout, r.stdout + r.stderr)
            r = run("test", "--set", "limits.bogus=1", "--", "true", timeout=10)
            self.assertEqual(r.returncode, 2)
            self.assertIn("--set limits.bogus: unknown key", r.stderr)

    def test_the_same_seed_gives_the_same_replies(self):
        # What the server makes up (queue ids, CRAM-MD5 challenges) comes from the seed.
        client = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixed_client.py")
        outputs = []
        with tempfile.TemporaryDirectory() as tmp:
            for seed in ("42", "42", "43"):
                report = os.path.join(tmp, "r.json")
                r = run("test", "--seed", seed, "--scenario", "accept-all", "--json", report,
                        "--", "/usr/bin/python3", client, timeout=60)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                with open(report) as f:
                    outputs.append(json.load(f)["results"][0]["command_output"])
        self.assertIn("334 ", outputs[0])
        self.assertIn("queued as", outputs[0])
        self.assertEqual(outputs[0], outputs[1])
        self.assertNotEqual(outputs[0].splitlines()[0], outputs[2].splitlines()[0])
        self.assertNotEqual(outputs[0].splitlines()[-1], outputs[2].splitlines()[-1])

    def test_a_command_that_prints_latin1_still_gets_readable_reports(self):
        client = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixed_client.py")
        with tempfile.TemporaryDirectory() as tmp:
            junit, report = os.path.join(tmp, "r.xml"), os.path.join(tmp, "r.json")
            r = run("test", "--scenario", "accept-all", "--junit", junit, "--json", report, "--",
                    "sh", "-c", "printf 'caf\\351\\n' >&2; exec /usr/bin/python3 %s" % client,
                    timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            with open(report, encoding="utf-8") as f:   # strict: a stray octet fails here
                output = json.load(f)["results"][0]["command_output"]
            self.assertIn("caf\ufffd\n", output)
            err = ET.parse(junit).getroot().find(".//system-err").text
            self.assertIn("caf\ufffd\n", err)

    def test_every_command_suggests_the_flag_a_misspelt_one_meant(self):
        for command, wrong, meant in (("send", "--form", "--from"), ("test", "--junt", "--junit"),
                                      ("run", "--targt", "--target"),
                                      ("healthcheck", "--api-tokn", "--api-token"),
                                      ("check", "--clinet", "--client")):
            r = run(command, wrong, "x", timeout=10)
            self.assertEqual(r.returncode, 1 if command == "healthcheck" else 2, r.stderr)
            self.assertIn("unknown option %s (did you mean '%s'?)" % (wrong, meant), r.stderr)

    def test_a_report_that_cannot_be_written_is_refused_before_anything_runs(self):
        with tempfile.TemporaryDirectory() as tmp:
            marker = os.path.join(tmp, "ran")
            for flag, path, why in (("--junit", os.path.join(tmp, "no", "r.xml"), "no such directory"),
                                    ("--json", tmp, "is a directory")):
                r = run("test", "--scenario", "accept-all", flag, path, "--", "touch", marker,
                        timeout=30)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn("%s %s: %s" % (flag, path, why), r.stderr)
                self.assertFalse(os.path.exists(marker), "the command ran")


class JsonLogs(unittest.TestCase):
    def test_json_lines_escape_wire_bytes_and_mask_secrets(self):
        srv = SmtpfaultServer("--log-format", "json").start()
        try:
            with srv.connect() as c:
                c.cmd("EHLO json.test", expect=250)
                c.send(b"NOOP \x00\rinjected\r\n")
                c.reply()
                c.cmd("AUTH PLAIN AGFsaWNlAHNlY3JldA==", expect=235)
                c.cmd("QUIT", expect=221)
            srv.wait_for_line(r'"text":"QUIT"')
        finally:
            srv.stop()
        lines = [l for l in srv.transcript() if l.startswith("{")]
        records = [json.loads(l) for l in lines]   # every line is one JSON object
        texts = [r.get("text", "") for r in records]
        self.assertIn("EHLO json.test", texts)
        self.assertIn("NOOP \x00\rinjected", texts)   # escaped on the wire, exact when parsed
        self.assertFalse(any("AGFsaWNlAHNlY3JldA==" in t for t in texts))
        infos = [r["info"] for r in records if "info" in r]
        self.assertTrue(any(i.startswith("listening: smtp ") for i in infos), infos)
        self.assertFalse(any(i.startswith(" ") for i in infos), infos)   # no terminal layout
        srv.cleanup()


class EnvironmentConfiguration(unittest.TestCase):
    def test_flag_beats_environment_which_beats_file(self):
        store = os.path.join(os.environ.get("TMPDIR", "/tmp"), "smtpfault-envcfg-%d" % os.getpid())
        cfg = store + ".toml"
        with open(cfg, "w") as f:
            f.write('hostname = "from-file.test"\n[limits]\nmax_recipients = 7\n')
        srv = SmtpfaultServer("--config", cfg, "--hostname", "from-flag.test",
                              env={"SMTPFAULT_HOSTNAME": "from-env.test",
                                   "SMTPFAULT_LIMITS_MAX_RECIPIENTS": "2"}).start()
        try:
            with srv.connect() as c:
                r = c.cmd("EHLO x", expect=250)
                self.assertIn("from-flag.test", r.text)
                c.cmd("MAIL FROM:<a@b.test>", expect=250)
                c.cmd("RCPT TO:<c@d.test>", expect=250)
                c.cmd("RCPT TO:<e@d.test>", expect=250)
                c.cmd("RCPT TO:<f@d.test>", expect=452)   # the environment's 2 beats the file's 7
        finally:
            srv.stop()
            srv.cleanup()
            os.unlink(cfg)

    def test_durations_and_time_scale_are_bounded_and_a_single_value_key_takes_the_last(self):
        # Far beyond a year a timer would overflow and fire at once.
        r = run("serve", "--listen", "127.0.0.1:0", "--api", "", "--idle-timeout", "1e10",
                timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--idle-timeout: must be at most 31536000, got 1e+10", r.stderr)
        # Each thread holds a listener per port: 99999 of them ran out of descriptors.
        r = run("serve", "--threads", "99999", timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--threads: must be at most 256, got 99999", r.stderr)
        r = run("test", "--scenario", "greeting-slow", "--time-scale", "inf", "--", "true")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--time-scale: expected a number above 0, at most 1000000", r.stderr)
        for value in ("1e-9", "0x10"):
            r = run("send", "--from", "a@b.test", "--to", "c@d.test", "--timeout", value)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("--timeout: expected seconds, from 0.001", r.stderr)
        # The last value given wins, in whatever spelling and whichever way it was given.
        srv = SmtpfaultServer("--hostname", "first.test", "--set", "hostname=second.test",
                              "--lmtp=false", "--set", "lmtp=true").start()
        try:
            with srv.connect(greeting=False) as c:
                self.assertIn("LMTP", c.expect(220).text)
                self.assertIn("second.test", c.cmd("LHLO x", expect=250).text)
            # The banner says LMTP, and its swaks hint speaks it.
            banner = "\n".join(srv.transcript())
            self.assertIn("listening: lmtp  127.0.0.1:", banner)
            self.assertIn("listening: lmtps 127.0.0.1:", banner)
            self.assertIn("--protocol LMTP", banner)
        finally:
            srv.stop()
            srv.cleanup()

    def test_unknown_environment_variable_is_named(self):
        r = run("serve", "--listen", "127.0.0.1:0", env={"SMTPFAULT_LISTN": "x"})
        self.assertEqual(r.returncode, 2)
        self.assertIn("SMTPFAULT_LISTN", r.stderr)


def listening_ports(pid):
    """TCP ports the process listens on: its socket inodes matched against /proc/net/tcp*."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:   # 0A = LISTEN
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


class NoApi(unittest.TestCase):
    def test_empty_api_serves_smtp_without_an_http_listener(self):
        proc = subprocess.Popen([binary_path(), "serve", "--listen", "127.0.0.1:0",
                                 "--tls-listen", "", "--api", ""], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=server_environment())
        try:
            banner = []
            for line in proc.stdout:
                banner.append(line)
                if "try:" in line:
                    break
            text = "".join(banner)
            self.assertIn("no HTTP API", text)
            self.assertNotIn("http ", text)
            port = int(text.split("listening: smtp  127.0.0.1:")[1].split()[0])
            self.assertEqual(listening_ports(proc.pid), {port})
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
                s.sendmail("a@example.com", ["b@example.com"], b"Subject: no api\r\n\r\nhi\r\n")
        finally:
            proc.terminate()
            proc.communicate(timeout=10)
        self.assertEqual(proc.returncode, 0)

    def test_healthcheck_says_there_is_no_api_to_ask(self):
        r = run("healthcheck", env={"SMTPFAULT_API": ""})
        self.assertEqual(r.returncode, 1)
        self.assertEqual(run("healthcheck", "extra").returncode, 1)
        self.assertIn("no HTTP API", r.stderr)


class ProcessName(unittest.TestCase):
    def test_the_restarted_server_is_still_called_smtpfault(self):
        # serve re-executes itself once at start-up (huge pages, below; an empty GLIBC_TUNABLES
        # makes sure it does); pgrep -x, ps -C and killall go by the process name, which must
        # not become "exe".
        srv = SmtpfaultServer(env={"GLIBC_TUNABLES": ""}).start()
        try:
            with srv.connect() as c:
                c.cmd("EHLO x", expect=250)   # the process that answers is the restarted one
            with open("/proc/%d/comm" % srv.proc.pid) as f:
                self.assertEqual(f.read().strip(), os.path.basename(binary_path())[:15])
        finally:
            srv.stop()
            srv.cleanup()


def thp_mode():
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return f.read().split("[")[1].split("]")[0]
    except (OSError, IndexError):
        return None


@unittest.skipUnless(thp_mode() == "madvise", "glibc asks for huge pages only in madvise mode")
@unittest.skipIf(sanitized_build(), "a sanitizer's allocator replaces glibc's malloc")
class HugePageHeap(unittest.TestCase):
    """serve restarts itself once with glibc.malloc.hugetlb=1 (same PID), so glibc marks the heap
    for transparent huge pages (VmFlags "hg"); the user's own hugetlb choice wins."""

    def heap_flags(self, env):
        srv = SmtpfaultServer(env=env).start()
        try:
            with srv.connect() as c:
                c.cmd("EHLO x", expect=250)   # the process that answers is the restarted one
            with open("/proc/%d/smaps" % srv.proc.pid) as f:
                lines = f.read().splitlines()
            at = next(i for i, l in enumerate(lines) if l.endswith("[heap]"))
            return next(l for l in lines[at:] if l.startswith("VmFlags:")).split()[1:]
        finally:
            srv.stop()
            srv.cleanup()

    def test_heap_on_huge_pages_with_the_users_other_tunables(self):
        self.assertIn("hg", self.heap_flags({"GLIBC_TUNABLES": ""}))
        self.assertIn("hg", self.heap_flags({"GLIBC_TUNABLES": "glibc.malloc.tcache_count=9"}))

    def test_users_own_hugetlb_choice_wins(self):
        self.assertNotIn("hg", self.heap_flags({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}))


if __name__ == "__main__":
    unittest.main()
