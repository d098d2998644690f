"""`smtpfault run` against its target: a refused target, certificate checks over implicit TLS
and STARTTLS, handshake failures, and servers that misbehave (a refusal full of escape
sequences, an early close, a write cut short, a flood of reply lines)."""

import datetime
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

from scripted_server import ScriptedServer
from smtpfault_server import SmtpfaultServer, binary_path, refusing_port, server_environment
from client_run_case import ClientRunCase, ScriptAgainstAServer

CA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures", "certs",
                  "test-ca.pem")


class TargetTest(ClientRunCase):
    def test_refused_target_exits_3_with_the_reason(self):
        with refusing_port() as port:
            p = self.run_client("probe-conformance", target="127.0.0.1:%d" % port)
        self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
        self.assertIn("cannot connect to 127.0.0.1:%d: Connection refused" % port, p.stderr)
        # The summary on stdout says why too, not only "error", and which line was trying.
        self.assertRegex(p.stdout, r"error \(cannot connect to 127.0.0.1:%d: Connection refused, "
                                   r"at scenarios/client/probe-conformance.lua:\d+\): 0 passed"
                         % port)

    def test_may_fail_connect_comes_back_as_a_value(self):
        with refusing_port() as port:
            path = self.script("""
                local c, err = connect { port = %d, may_fail = true }
                check(c == nil, "refused", err)
                check(err:find("Connection refused") ~= nil, "the reason is given", err)
            """ % port)
            p = self.run_client(path)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_tls_verification_failure_exits_3(self):
        path = self.script("""
            connect { port = %d, tls = true, verify = true }
            expect(220)
        """ % self.server.tls_port)
        p = self.run_client(path)
        self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
        self.assertRegex(p.stderr, r"TLS handshake with 127.0.0.1 failed: unable to get local "
                                   r"issuer certificate, at \S*client.lua:2\n")

    def test_a_name_the_certificate_does_not_carry_says_so(self):
        path = self.script("""
            connect { tls = true, verify = true, ca = %r, sni = "wrong.example" }
            expect(220)
        """ % CA)
        p = self.run_client(path, "--tls-target", "127.0.0.1:%d" % self.server.tls_port)
        self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
        # The name checked is named too: it is not the address connected to.
        self.assertIn("TLS handshake with 127.0.0.1 (as wrong.example) failed: hostname mismatch",
                      p.stderr)

    def test_a_connection_whose_handshake_failed_says_so_when_read(self):
        path = self.script("""
            local c = connect {}
            expect(220)
            ehlo()
            local ok, err, reason = c:starttls { may_fail = true, verify = true }
            check(not ok, "the test CA is not trusted by default")
            report("starttls", tostring(err) .. " / " .. tostring(reason))
            report("closed", tostring(c.closed))
            local sent, serr = c:send("NOOP")
            report("send", tostring(serr))
            local r, rerr = c:reply { timeout = 2 }
            report("after", tostring(rerr))
        """, name="after_tls.lua")
        js = os.path.join(self.tmp.name, "after_tls.json")
        p = self.run_client(path, "--json", js)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        with open(js) as f:
            report = json.load(f)["report"]
        # The documented outcome everywhere, and the reason beside it where it happened.
        self.assertEqual(report["starttls"], "tls failed / unable to get local issuer certificate")
        self.assertEqual(report["closed"], "tls failed")
        self.assertEqual(report["send"], "tls failed")
        self.assertEqual(report["after"], "tls failed")

    def test_tls_verified_with_the_test_ca(self):
        path = self.script("""
            local c = connect { tls = true, verify = true, ca = %r }
            check(c.tls_version ~= nil, "TLS is up", c.tls_version)
            expect(220)
            ehlo()
            quit()
        """ % CA)
        p = self.run_client(path, "--tls-target", "127.0.0.1:%d" % self.server.tls_port)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("TLS established TLSv1.3", p.stdout)
        # The first line names the port the script used, not only the plain one.
        self.assertIn("(implicit TLS 127.0.0.1:%d)" % self.server.tls_port, p.stdout.splitlines()[0])

    def test_starttls_with_verification(self):
        path = self.script("""
            connect {}
            expect(220)
            ehlo()
            starttls { verify = true, ca = %r, sni = "localhost" }
            local r = ehlo()
            check(r.extensions.STARTTLS == nil, "STARTTLS is not offered again")
            auth("PLAIN", "user", "secret")
            quit()
        """ % CA)
        p = self.run_client(path)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("AUTH PLAIN ****", p.stdout)
        self.assertNotIn("secret", p.stdout)

    def test_a_refused_starttls_ends_the_run_before_anything_goes_out_in_plaintext(self):
        refusing = SmtpfaultServer("--scenario", "starttls-454").start()
        try:
            target = "127.0.0.1:%d" % refusing.port
            path = self.script("""
                connect {}
                expect(220)
                ehlo()
                starttls {}
                auth("PLAIN", "user", "secret")
                quit()
            """, name="refused-starttls.lua")
            p = self.run_client(path, target=target)
            self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
            out = p.stdout + p.stderr
            self.assertIn("STARTTLS to 127.0.0.1 failed: refused with 454 4.7.0", out)
            self.assertNotIn("C: AUTH", out)
            # With may_fail the refusal is the script's to handle: an outcome, not a verdict.
            path = self.script("""
                connect {}
                expect(220)
                ehlo()
                local ok, err, r = starttls { may_fail = true }
                report("starttls", tostring(ok) .. " " .. err .. " " .. r.code)
                quit()
            """, name="refused-starttls-may-fail.lua")
            p = self.run_client(path, target=target)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("nil unexpected reply 454", p.stdout)
            self.assertIn("C: QUIT", p.stdout)
            self.assertNotIn("FAIL", p.stdout)
        finally:
            refusing.stop(expect_exit=0)
            refusing.cleanup()

    def test_a_ca_file_that_cannot_be_loaded_is_the_scripts_mistake(self):
        path = self.script("""
            connect {}
            expect(220)
            ehlo()
            starttls { verify = true, ca = "no/such-ca.pem", may_fail = true }
            quit()
        """)
        p = self.run_client(path)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)   # not 3: the target is fine
        self.assertIn("client.lua:5: cannot load CA file no/such-ca.pem (relative to ", p.stderr)
        # Found before the STARTTLS went out, not after the server had switched to TLS.
        self.assertNotIn("C: STARTTLS", p.stdout)

    def test_a_ca_file_that_cannot_be_loaded_stops_an_implicit_tls_connect_before_it(self):
        path = self.script("""
            connect { tls = true, verify = true, ca = "no/such-ca.pem" }
        """)
        p = self.run_client(path, "--tls-target", "127.0.0.1:%d" % self.server.port)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("client.lua:2: cannot load CA file no/such-ca.pem (relative to ", p.stderr)
        self.assertNotIn("connected from local port", p.stdout)


class HostileServers(unittest.TestCase):
    """What a server says reaches the terminal escaped, also where the run quotes it in its
    own words (a refused STARTTLS ends the run, quoting the refusal); a server that closes
    early fails a probe's checks, not the probe."""

    def test_escape_sequences_in_a_refusal_stay_escaped(self):
        srv = ScriptedServer([b"250-scripted\r\n250 STARTTLS\r\n",
                              b"454 4.7.0 \x1b]0;PWNED\x07\x1b[2J \xc2\x9b2J \xe2\x80\xae no tls\r\n"])
        self.addCleanup(srv.close)
        script = os.path.join(tempfile.mkdtemp(prefix="hostile-"), "st.lua")
        with open(script, "w") as f:
            f.write("connect {}\nexpect(220)\nehlo('x')\nstarttls {}\n")
        r = subprocess.run([binary_path(), "run", script, "--target",
                            "127.0.0.1:%d" % srv.port, "--timeout", "2"],
                           capture_output=True, timeout=60, env=server_environment())
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        for stream in (r.stdout, r.stderr):
            for raw in (b"\x1b", b"\x07", b"\xc2\x9b", b"\xe2\x80\xae"):
                self.assertNotIn(raw, stream)
        self.assertIn(b"\\x1b]0;PWNED\\x07", r.stderr)
        self.assertIn(b"\\x1b]0;PWNED\\x07", r.stdout)

    def test_writes_after_the_server_closed_fail_at_once(self):
        srv = ScriptedServer([], then_close=True)
        self.addCleanup(srv.close)
        script = os.path.join(tempfile.mkdtemp(prefix="hostile-"), "rounds.lua")
        with open(script, "w") as f:
            f.write("connect {}\nreply()\nfor i = 1, 4 do\n  send('NOOP')\n  reply()\nend\n")
        r = subprocess.run([binary_path(), "run", script, "--target", "127.0.0.1:%d" % srv.port,
                            "--timeout", "1"],
                           capture_output=True, text=True, timeout=60, env=server_environment())
        # The first write after the close may still go out; once one has failed, every later
        # one fails the same at once instead of waiting for its deadline.
        self.assertIn("write failed after 0 octets: closed", r.stdout)
        self.assertNotIn("timeout", r.stdout)

    def test_conformance_does_not_credit_a_close_that_came_instead_of_221(self):
        srv = ScriptedServer([], then_close=True)
        self.addCleanup(srv.close)
        r = subprocess.run([binary_path(), "run", "probe-conformance", "--target",
                            "127.0.0.1:%d" % srv.port, "--timeout", "1"],
                           capture_output=True, text=True, timeout=60, env=server_environment())
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("FAIL scenarios/client/probe-conformance.lua", r.stdout)
        self.assertNotIn("ok   scenarios/client/probe-conformance.lua:39: the server closes the "
                         "connection after 221", r.stdout)
        self.assertRegex(r.stdout, r"FAIL \S+:\d+: the server closes the connection after 221")

    def test_probe_pipelining_against_a_server_that_closes_fails_without_a_script_error(self):
        srv = ScriptedServer([b"250-scripted\r\n250 PIPELINING\r\n"], then_close=True)
        self.addCleanup(srv.close)
        r = subprocess.run([binary_path(), "run", "probe-pipelining", "--target",
                            "127.0.0.1:%d" % srv.port, "--timeout", "2"],
                           capture_output=True, text=True, timeout=60, env=server_environment())
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("FAIL", r.stdout)
        self.assertNotIn("script error", r.stderr)

    def test_a_reply_cut_short_by_a_close_is_shown_in_the_transcript(self):
        srv = ScriptedServer([b"250-first\r\n250-SIZE"], then_close=True)
        self.addCleanup(srv.close)
        folder = tempfile.mkdtemp(prefix="hostile-")
        self.addCleanup(shutil.rmtree, folder, True)
        script = os.path.join(folder, "cut.lua")
        with open(script, "w") as f:
            f.write("connect {} expect(220) ehlo() reply()\n")
        r = subprocess.run([binary_path(), "run", script,
                            "--target", "127.0.0.1:%d" % srv.port, "--timeout", "5"],
                           capture_output=True, text=True, timeout=60, env=server_environment())
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("[1] *: the reply was cut short: 1 line of a multi-line reply and "
                      "'250-SIZE' without its line end came before the close", r.stdout)
        self.assertEqual(r.stdout.count("cut short"), 1, r.stdout)   # once, not per read

    def test_a_write_cut_short_says_how_far_it_got(self):
        srv = ScriptedServer([])   # greets, then reads nothing
        self.addCleanup(srv.close)
        script = os.path.join(tempfile.mkdtemp(prefix="hostile-"), "big.lua")
        with open(script, "w") as f:
            f.write("local c = connect {}\nc:expect(220)\n"
                    "local ok, err, sent = c:raw(string.rep('x', 20 * 1024 * 1024))\n"
                    "report('outcome', tostring(err) .. ' ' .. tostring(sent))\n")
        r = subprocess.run([binary_path(), "run", script, "--target", "127.0.0.1:%d" % srv.port,
                            "--timeout", "1"], capture_output=True, text=True, timeout=60,
                           env=server_environment())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        sent = int(re.search(r"outcome: timeout (\d+)", r.stdout).group(1))
        # What the kernel took before the server's window and the buffers filled up.
        self.assertGreater(sent, 0, r.stdout)
        self.assertLess(sent, 20 * 1024 * 1024)
        self.assertIn("write failed after %d octets: timeout" % sent, r.stdout)


class DataWithoutItsReply(ScriptAgainstAServer):

    def test_commands_after_a_data_that_got_no_reply_in_time_are_commands(self):
        # No 354 in time: what the script sends next is no message of the DATA's.
        srv = ScriptedServer([b"", b"250 2.0.0 first\r\n", b"250 2.0.0 second\r\n"])
        self.addCleanup(srv.close)
        r = self.run_script(srv, "connect {} expect(220)\n"
                                 "send('DATA') expect(354, {timeout = 0.3})\n"
                                 "send('RSET') send('NOOP') expect(250) expect(250)\n")
        steps = re.findall(r"^(ok|FAIL) +\S+ (expect .+?): ", r.stdout, re.M)
        self.assertEqual(steps[1:], [("FAIL", "expect 354 to 'DATA'"),
                                     ("ok", "expect 250 to 'DATA'"),   # late: the DATA's name
                                     ("ok", "expect 250 to 'RSET'")], r.stdout)

    def test_a_close_right_after_the_354_is_no_reply_before_the_message(self):
        srv = ScriptedServer([b"354 go ahead\r\n"], then_close=True)
        self.addCleanup(srv.close)
        r = self.run_script(srv, "connect {} expect(220) data('Subject: x\\n\\nhi\\n')\n")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertNotIn("no reply before the message", r.stdout)
        # The message may reach the closed socket first, whose kernel answers it with a reset.
        self.assertRegex(r.stdout, r"FAIL \S+ expect 250 to the end of data: the (server closed|"
                                   r"connection was reset)")


class RepliesWithoutText(unittest.TestCase):
    def test_a_pattern_sees_no_space_after_a_reply_without_text(self):
        # RFC 5321 4.2: Reply-code [ SP textstring ]. "220" is matched as "220", not "220 ".
        srv = ScriptedServer([b"250 2.0.0\r\n"], greeting=b"220\r\n")
        self.addCleanup(srv.close)
        folder = tempfile.mkdtemp(prefix="no-text-")
        self.addCleanup(shutil.rmtree, folder, True)
        script = os.path.join(folder, "no-text.lua")
        with open(script, "w") as f:
            f.write('connect {} expect("^220$") send("NOOP") expect("^250 2%.0%.0$")\n')
        r = subprocess.run([binary_path(), "run", script, "--target", "127.0.0.1:%d" % srv.port,
                            "--timeout", "5"],
                           capture_output=True, text=True, timeout=60, env=server_environment())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("pass: 2 passed, 0 failed", r.stdout)


class TranscriptAsItHappens(ScriptAgainstAServer):
    """The transcript shows what the server sent when it came: also while the script sleeps,
    what the script never reads, and the close after the replies that came before it."""

    def test_a_reply_is_logged_when_it_comes_even_if_never_read(self):
        srv = ScriptedServer([])
        self.addCleanup(srv.close)
        r = self.run_script(srv, "connect {}\nsleep(1)\n", "--log-format", "json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        lines = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
        connected = next(l for l in lines if l.get("text", "").startswith("connected from"))
        greeting = next(l for l in lines if l.get("dir") == "S")
        self.assertEqual(greeting["text"], "220 scripted")
        gap = (datetime.datetime.fromisoformat(greeting["ts"].replace("Z", "+00:00")) -
               datetime.datetime.fromisoformat(connected["ts"].replace("Z", "+00:00")))
        self.assertLess(gap.total_seconds(), 0.5, lines)   # not stamped after the sleep

    def test_the_close_comes_after_the_replies_sent_before_it(self):
        srv = ScriptedServer([b"250 ok\r\n421 4.3.2 bye\r\n"], then_close=True)
        self.addCleanup(srv.close)
        r = self.run_script(srv, "local c = connect {} expect(220) send('NOOP')\n" +
                            self.UNTIL_CLOSED + "expect(250)\n")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        shown = [l for l in r.stdout.splitlines() if l.startswith("[1] ")]
        self.assertEqual(shown[-4:], ["[1] C: NOOP", "[1] S: 250 ok", "[1] S: 421 4.3.2 bye",
                                      "[1] *: connection closed by the server"], r.stdout)

    def test_closed_follows_the_server_without_another_read(self):
        srv = ScriptedServer([b"421 4.3.2 bye\r\n"], then_close=True)
        self.addCleanup(srv.close)
        r = self.run_script(srv, "local c = connect {} expect(220) send('NOOP') expect(421)\n" +
                            self.UNTIL_CLOSED + "report('closed', c.closed)\n")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("closed: closed", r.stdout)

    def test_a_close_after_more_replies_than_are_read_ahead_is_seen(self):
        # 3,000 unread replies, then the close: waiting for it must not stop at the replies.
        listener = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(listener.close)

        def serve():
            conn, _ = listener.accept()
            conn.sendall(b"220 hi\r\n" + b"250 more\r\n" * 3000)
            conn.close()

        threading.Thread(target=serve, daemon=True).start()
        srv = type("Target", (), {"port": listener.getsockname()[1]})
        r = self.run_script(srv, "connect {} expect_closed {timeout = 10} expect(220)\n")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"ok +\S+ server closes the connection: closed after")

    def test_a_timeout_shows_the_part_of_a_reply_that_came(self):
        srv = ScriptedServer([], greeting=b"220-first\r\n220 no end")
        self.addCleanup(srv.close)
        r = self.run_script(srv, "connect {} expect(220, {timeout = 0.5})\n")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("[1] *: no reply within 0.5s (came so far: 1 line of a multi-line reply "
                      "and '220 no end' without its line end)", r.stdout)


class QuotedWireText(unittest.TestCase):
    def test_a_verdict_quotes_the_server_as_the_transcript_does(self):
        # The text report escaped the library's escapes again: '\\xff' for '\xff'.
        listener = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(listener.close)

        def serve():
            c, _ = listener.accept()
            with c:
                c.sendall(b"22\xff0 garb\\age\x1b[31m\r\n")
                c.recv(100)

        threading.Thread(target=serve, daemon=True).start()
        script = os.path.join(tempfile.mkdtemp(prefix="quoted-"), "quoted.lua")
        with open(script, "w") as f:
            f.write("connect {} expect(220)\n")
        r = subprocess.run([binary_path(), "run", script, "--target",
                            "127.0.0.1:%d" % listener.getsockname()[1], "--timeout", "5"],
                           capture_output=True, text=True, timeout=60, env=server_environment())
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        quoted = "'22\\xff0 garb\\\\age\\x1b[31m'"
        self.assertIn("S: <malformed reply: reply line does not start with a three-digit code "
                      "and SP or '-': %s>" % quoted, r.stdout)
        self.assertIn("quoted.lua:1: expect 220 (greeting): malformed reply: reply line "
                      "does not start with a three-digit code and SP or '-': %s" % quoted,
                      r.stdout)


class ReplyBeforeTheMessage(unittest.TestCase):
    def test_a_reply_that_comes_with_the_354_is_a_failure_not_the_messages_reply(self):
        # It was taken for the reply to the message, and the real one for the next command's.
        listener = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(listener.close)

        def serve():
            c, _ = listener.accept()
            with c:
                f = c.makefile("rb")
                c.sendall(b"220 hi\r\n")
                f.readline()
                c.sendall(b"250 ok\r\n")
                f.readline()
                c.sendall(b"354 go\r\n250 early\r\n")
                while f.readline() not in (b"", b".\r\n"):
                    pass
                c.sendall(b"250 final\r\n")
                f.readline()
                c.sendall(b"221 bye\r\n")

        threading.Thread(target=serve, daemon=True).start()
        script = os.path.join(tempfile.mkdtemp(prefix="early-"), "early.lua")
        with open(script, "w") as f:
            f.write('connect {} expect(220) ehlo("a.test")\nlocal r = data("hello\\n")\n'
                    'report("final", r and r.text or "nil")\nquit()\n')
        r = subprocess.run([binary_path(), "run", script, "--target",
                            "127.0.0.1:%d" % listener.getsockname()[1], "--timeout", "5"],
                           capture_output=True, text=True, timeout=60, env=server_environment())
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("no reply before the message: got 250 early with the 354, before any of "
                      "the message went out", r.stdout)
        self.assertRegex(r.stdout, r"ok .*expect 250 to the end of data: got 250 final")
        self.assertIn("final: final", r.stdout)


class FloodingServer(unittest.TestCase):
    """A server that never stops sending: every wait still ends at its deadline, and what piles
    up is bounded (the run ended only when the server stopped, growing by gigabytes)."""

    def test_a_flood_of_continuation_lines_ends_at_the_timeout_one_line_at_its_bound(self):
        import threading
        for payload in (b"220-still greeting\r\n" * 3000, b"A" * 65536):
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen(4)
            stop = threading.Event()

            def serve():
                while not stop.is_set():
                    try:
                        listener.settimeout(0.2)
                        c, _ = listener.accept()
                    except OSError:
                        continue
                    try:
                        c.sendall(b"220 ")
                        while not stop.is_set():
                            c.sendall(payload)
                    except OSError:
                        pass
                    finally:
                        c.close()

            t = threading.Thread(target=serve, daemon=True)
            t.start()
            try:
                script = os.path.join(tempfile.mkdtemp(prefix="flood-"), "flood.lua")
                with open(script, "w") as f:
                    f.write("local c = connect()\nc:expect(220)\nc:send('NOOP')\nc:expect(250)\n")
                r = subprocess.run([binary_path(), "run", script, "--target",
                                    "127.0.0.1:%d" % listener.getsockname()[1], "--timeout", "1"],
                                   capture_output=True, text=True, timeout=60,
                                   env=server_environment())
                self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                self.assertIn("FAIL", r.stdout)
                if b"\n" not in payload:
                    # Not silence: a line with no end in sight, for run and for send. Said once;
                    # the read after it waits its deadline for the rest of the line to go by.
                    endless = "a reply line longer than 65536 octets, still without its end"
                    self.assertIn("expect 220 (greeting): malformed reply: " + endless, r.stdout)
                    self.assertIn("expect 250 to 'NOOP': no reply within 1s", r.stdout)
                    self.assertRegex(r.stdout, r"came so far: \d+ octets of an over-long line")
                    # Said when the line passes the bound, not at the deadline: with a timeout
                    # of 300 s the run still ends within the subprocess's 60 s.
                    with open(script, "w") as f:
                        f.write("local c = connect()\nc:expect(220)\n")
                    r = subprocess.run([binary_path(), "run", script, "--target",
                                        "127.0.0.1:%d" % listener.getsockname()[1], "--timeout",
                                        "300"], capture_output=True, text=True, timeout=60,
                                       env=server_environment())
                    self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                    self.assertIn(endless, r.stdout)
                    s = subprocess.run([binary_path(), "send", "--server", "127.0.0.1:%d"
                                        % listener.getsockname()[1], "--from", "a@x.test", "--to",
                                        "b@x.test", "--timeout", "1"], capture_output=True,
                                       text=True, timeout=60, env=server_environment())
                    self.assertEqual(s.returncode, 1, s.stdout + s.stderr)
                    self.assertIn("greeting: malformed reply: " + endless, s.stderr)
                    s = subprocess.run([binary_path(), "send", "--server", "127.0.0.1:%d"
                                        % listener.getsockname()[1], "--from", "a@x.test", "--to",
                                        "b@x.test", "--timeout", "300"], capture_output=True,
                                       text=True, timeout=60, env=server_environment())
                    self.assertIn("greeting: malformed reply: " + endless, s.stderr)
            finally:
                stop.set()
                t.join(5)
                listener.close()


class MessageCutOffTest(ClientRunCase):
    """A server that goes away while the message is being sent, or stops reading it, fails the
    step that waits for the message's reply: never a pass, nor a failure of the next command."""
    SERVER_ARGS = ("--scenario", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                              "scenarios", "reset_after_354.lua"))

    def run_message(self, body_lua, *args, helo="a.test"):
        path = self.script("""
            connect {} expect(220) ehlo("%s")
            send("MAIL FROM:<a@x.test>") expect(250)
            send("RCPT TO:<b@x.test>") expect(250)
            local r, err = data(%s, {timeout = 1})
            report("data", tostring(r and r.code) .. " " .. tostring(err))
        """ % (helo, body_lua))
        return self.run_client(path, "--timeout", "5", *args)

    def test_a_reset_while_a_large_message_goes_out_fails_its_step(self):
        p = self.run_message('"Subject: big\\n\\n" .. string.rep("0123456789abcdef\\n", 400000)')
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("FAIL", p.stdout)
        self.assertIn("expect 250 to the end of data: the connection was reset", p.stdout)
        self.assertIn("write failed after", p.stdout)

    def test_a_reset_after_a_small_message_fails_its_step_too(self):
        # The kernel reports a reset once, to the write or to the read that meets it first:
        # a few runs, so that both orders come up; each must say "reset", never "closed".
        for body in ('"Subject: small\\n\\nhi\\n"', 'string.rep("line\\n", 10)',
                     'string.rep("line of text\\n", 50000)') * 2:
            p = self.run_message(body)
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            self.assertIn("expect 250 to the end of data: the connection was reset", p.stdout)
            self.assertIn("data: nil reset", p.stdout)

    def test_the_timeout_of_data_covers_the_wait_for_354(self):
        p = self.run_message('"Subject: t\\n\\nhi\\n"', helo="hang.test")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("expect 354 to 'DATA': no reply within 1s", p.stdout)

    def test_a_server_that_stops_reading_the_message_fails_its_step(self):
        srv = ScriptedServer([b"250 ok\r\n", b"250 ok\r\n", b"250 ok\r\n", b"354 go\r\n"])
        self.addCleanup(srv.close)
        path = self.script("""
            connect {} expect(220) ehlo("a.test")
            send("MAIL FROM:<a@x.test>") expect(250)
            send("RCPT TO:<b@x.test>") expect(250)
            data(string.rep("x", 20 * 1024 * 1024), {timeout = 1})
        """, name="stuck.lua")
        started = time.monotonic()
        p = self.run_client(path, "--timeout", "5", target="127.0.0.1:%d" % srv.port)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"FAIL .*expect 250 to the end of data: the server stopped "
                                   r"reading: \d+ octets went out within 1s")
        # data's own timeout bounds the write (the run's 5 s did, while the verdict said 1 s).
        self.assertLess(time.monotonic() - started, 4.0)


class ReplyNamesTest(ClientRunCase):
    """Each verdict names the command its reply answers, in the order they were sent."""

    def test_replies_read_after_several_commands_are_named_in_order(self):
        path = self.script("""
            connect {} expect(220)
            send("EHLO a.test") send("NOOP") send("HELP")
            expect(250) expect(250) expect({214, 250})
            send("DATA") expect(503)
            send("MAIL FROM:<a@x.test>") send("RCPT TO:<b@x.test>") send("DATA")
            expect(250) expect(250) expect(354)
            send("Subject: by hand") send("") send("text") send(".")
            expect(250)
            bdat("x", {no_reply = true}) bdat("y", {last = true, no_reply = true})
            expect(5) expect(5)
            quit()
        """, name="names.lua")
        p = self.run_client(path)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        names = re.findall(r"^ok +\S+ (expect .+?): got ", p.stdout, re.M)
        self.assertEqual(names, [
            "expect 220 (greeting)", "expect 250 to 'EHLO a.test'", "expect 250 to 'NOOP'",
            "expect 214|250 to 'HELP'", "expect 503 to 'DATA'",
            "expect 250 to 'MAIL FROM:<a@x.test>'", "expect 250 to 'RCPT TO:<b@x.test>'",
            "expect 354 to 'DATA'", "expect 250 to '.'", "expect 5xx to 'BDAT 1'",
            "expect 5xx to 'BDAT 1 LAST'", "expect 221 to 'QUIT'"], p.stdout)


    def test_the_rest_of_a_chunk_sent_by_hand_gets_no_reply_of_its_own(self):
        path = self.script("""
            connect {} expect(220) ehlo("a.test")
            send("MAIL FROM:<a@x.test>") expect(250)
            send("RCPT TO:<b@x.test>") expect(250)
            bdat("abc", {size = 7, last = true, no_reply = true}) raw("de") send("")
            expect(250)
            send("NOOP") expect(250)
            quit()
        """, name="chunk.lua")
        p = self.run_client(path)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        names = re.findall(r"^ok +\S+ (expect .+?): got ", p.stdout, re.M)
        self.assertEqual(names[-3:], ["expect 250 to 'BDAT 7 LAST'", "expect 250 to 'NOOP'",
                                      "expect 221 to 'QUIT'"], p.stdout)


    def test_a_message_sent_before_its_354_is_read_gets_no_names_of_its_own(self):
        path = self.script("""
            connect {} expect(220) ehlo("a.test")
            send("MAIL FROM:<a@x.test>") send("RCPT TO:<b@x.test>") expect(250) expect(250)
            send("DATA") send("Subject: x") send("") send("body") send(".") send("NOOP")
            expect(354) expect(250) expect(250)
            pipeline {"MAIL FROM:<a@x.test>", "RCPT TO:<b@x.test>", "DATA", "x", ".", "NOOP"}
            expect(250) expect(250) expect(354) expect(250) expect(250)
            send("DATA") expect(503) send("NOOP") expect(250)
            quit()
        """, name="early-body.lua")
        p = self.run_client(path)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        names = re.findall(r"^ok +\S+ (expect .+?): got ", p.stdout, re.M)
        self.assertEqual(names[4:], [
            "expect 354 to 'DATA'", "expect 250 to '.'", "expect 250 to 'NOOP'",
            "expect 250 to pipelined 'MAIL FROM:<a@x.test>'",
            "expect 250 to pipelined 'RCPT TO:<b@x.test>'", "expect 354 to pipelined 'DATA'",
            "expect 250 to pipelined '.'", "expect 250 to pipelined 'NOOP'",
            # A refused DATA ends the message it began: the next line is a command again.
            "expect 503 to 'DATA'", "expect 250 to 'NOOP'", "expect 221 to 'QUIT'"], p.stdout)

    def test_data_a_message_and_its_dot_in_one_write_are_told_apart(self):
        path = self.script("""
            connect {} expect(220) ehlo("a.test")
            send("MAIL FROM:<a@x.test>") expect(250) send("RCPT TO:<b@x.test>") expect(250)
            raw("DATA\\r\\nSubject: x\\r\\n\\r\\nhi\\r\\n.\\r\\n") expect(354) expect(250)
            send("NOOP") expect(250)
            quit()
        """, name="one-write.lua")
        p = self.run_client(path)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        names = re.findall(r"^ok +\S+ (expect .+?): got ", p.stdout, re.M)
        self.assertEqual(names[-4:], ["expect 354 to raw 'DATA\\r\\n'",
                                      "expect 250 to raw '.\\r\\n'", "expect 250 to 'NOOP'",
                                      "expect 221 to 'QUIT'"], p.stdout)

    def test_a_command_written_in_pieces_is_one_command(self):
        path = self.script("""
            connect {} expect(220)
            raw("NO") raw("OP\\r\\n") raw("HE") send("LO a.test") expect(250) expect(250)
            quit()
        """, name="pieces-names.lua")
        p = self.run_client(path)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        names = re.findall(r"^ok +\S+ (expect .+?): got ", p.stdout, re.M)
        self.assertEqual(names[1:], ["expect 250 to raw 'NOOP\\r\\n'",
                                     "expect 250 to raw 'HELO a.test'",
                                     "expect 221 to 'QUIT'"], p.stdout)


class LateReplyNamesTest(ClientRunCase):
    """A reply that comes after its step timed out answers that command, not the next one."""
    SERVER_ARGS = ("--scenario", "magic-addresses")

    def test_a_late_reply_is_named_for_the_command_it_answers(self):
        path = self.script("""
            connect {} expect(220) ehlo("a.test")
            send("MAIL FROM:<a@x.test>") expect(250)
            send("RCPT TO:<slow-1s@x.test>") expect(250)
            data("Subject: late\\n\\nhi\\n", {timeout = 0.3})
            send("NOOP") expect(250, {timeout = 5}) expect(250)
            quit()
        """, name="late.lua")
        p = self.run_client(path)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        steps = re.findall(r"^(ok|FAIL) +\S+ (expect .+?): (got \d+|no reply)", p.stdout, re.M)
        self.assertEqual(steps[-4:], [
            ("FAIL", "expect 250 to the end of data", "no reply"),
            ("ok", "expect 250 to the end of data", "got 250"),
            ("ok", "expect 250 to 'NOOP'", "got 250"),
            ("ok", "expect 221 to 'QUIT'", "got 221")], p.stdout)


class ServerNameIndicationTest(unittest.TestCase):
    """RFC 6066 3: the server_name a client sends is a host name, never an address."""

    def setUp(self):
        tmp = tempfile.mkdtemp(prefix="sni-")
        key, cert = os.path.join(tmp, "k.pem"), os.path.join(tmp, "c.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=mail.test", "-days",
                        "1", "-keyout", key, "-out", cert], check=True, capture_output=True)
        self.names = []
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        ctx.sni_callback = lambda sock, name, c: self.names.append(name)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(self.sock.close)
        self.script = os.path.join(tmp, "sni.lua")

        def serve():
            for _ in range(2):
                conn, _ = self.sock.accept()
                try:
                    with ctx.wrap_socket(conn, server_side=True) as tls:
                        tls.sendall(b"220 tls\r\n")
                        tls.recv(100)
                except OSError:
                    pass
        threading.Thread(target=serve, daemon=True).start()

    def test_an_address_is_not_sent_as_the_name_and_a_given_name_is(self):
        with open(self.script, "w") as f:
            f.write("connect {tls = true} expect(220) close()\n"
                    "connect {tls = true, sni = 'mail.test'} expect(220) close()\n")
        p = subprocess.run([binary_path(), "run", self.script, "--tls-target",
                            "127.0.0.1:%d" % self.sock.getsockname()[1], "--timeout", "5"],
                           capture_output=True, text=True, timeout=60, env=server_environment())
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(self.names, [None, "mail.test"])


class RefusalsEndTheirExchange(ClientRunCase):
    """A refusal that data() or auth() was told to expect ends the call there, judged by its
    expect and name: the message is not sent after a 421 to DATA, and no 334 is waited for
    after a 504 to AUTH."""
    SERVER_ARGS = ("--scenario", "data-421")

    def test_a_refused_data_sends_no_message_even_when_allowed(self):
        path = self.script("""
            connect {} expect(220) ehlo("a.test")
            send("MAIL FROM:<a@x.test>") expect(250)
            send("RCPT TO:<b@x.test>") expect(250)
            local r, err = data("hi\\n", {expect_354 = {354, 421}})
            report("data", tostring(r and r.code) .. " " .. tostring(err))
        """, name="refused_data.lua")
        p = self.run_client(path)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("data: 421 nil", p.stdout)
        self.assertNotIn("octets of message data", p.stdout)

    def test_a_mechanism_refused_at_once_is_the_outcome_of_auth(self):
        # LOGIN and CRAM-MD5 once waited for a 334 whatever expect said.
        srv = ScriptedServer([b"250 ok\r\n", b"504 5.5.4 Mechanism not available\r\n",
                              b"538 5.7.11 Encryption required\r\n"])
        self.addCleanup(srv.close)
        path = self.script("""
            connect {} expect(220) ehlo("a.test")
            local r = auth("CRAM-MD5", "alice", "pw", {expect = 504, name = "CRAM-MD5 refused"})
            report("cram", tostring(r and r.code))
            r = auth("LOGIN", "alice", "pw", {expect = 538})
            report("login", tostring(r and r.code))
        """, name="refused_auth.lua")
        p = self.run_client(path, "--timeout", "5", target="127.0.0.1:%d" % srv.port)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"ok +\S+refused_auth.lua:3: CRAM-MD5 refused: got 504")
        self.assertIn("cram: 504", p.stdout)
        self.assertIn("login: 538", p.stdout)


class RawWritesShown(ClientRunCase):
    def test_a_line_written_in_pieces_shows_where_its_crlf_is(self):
        # raw("NO") raw("OP\r\n") and raw("NOOP\r\n") once read the same in the transcript.
        path = self.script("""
            connect {} expect(220)
            raw("NO") raw("OP\\r\\n") expect(250)
            raw("NOOP\\r\\n") expect(250)
        """, name="pieces.lua")
        p = self.run_client(path)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("C: NO (no CRLF)\n", p.stdout)
        self.assertIn("C: OP\n", p.stdout)
        self.assertIn("C: NOOP\n", p.stdout)


class LongPipelines(ClientRunCase):
    def test_twenty_thousand_pipelined_commands_are_answered_in_order(self):
        # Each reply once moved the rest of the waiting names down a list: 20,000 of them
        # reached the instruction limit.
        path = self.script("""
            connect {} expect(220) ehlo("a.test")
            local lines = {}
            for i = 1, 20000 do lines[i] = "NOOP" end
            pipeline(lines)
            local ok = 0
            for i = 1, 20000 do if reply().code == 250 then ok = ok + 1 end end
            report("answered", ok)
        """, name="long_pipeline.lua")
        p = self.run_client(path, "--quiet")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("answered: 20000", p.stdout)


if __name__ == "__main__":
    unittest.main()
