"""Process-level behaviour: configuration errors, disconnects in every session state, the
connection cap and graceful SIGTERM (the session's deadlines: test_timeouts.py)."""

import os
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from smtpfault_server import (ServerTestCase, SmtpfaultServer, binary_path, sanitized_build,
                              send_message, server_environment, server_with_scenario)


class ConfigErrorTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="smtpfault-config-")
        self.addCleanup(self.tmp.cleanup)

    def serve_with(self, toml_text, *extra):
        path = os.path.join(self.tmp.name, "smtpfault.toml")
        with open(path, "w") as f:
            f.write(toml_text)
        run = subprocess.run([binary_path(), "serve", "--config", path, "--listen", "127.0.0.1:0",
                              "--tls-listen", "127.0.0.1:0", "--store", self.tmp.name] +
                             list(extra), stdin=subprocess.DEVNULL, capture_output=True,
                             timeout=10, env=server_environment())
        return path, run.returncode, run.stderr.decode("utf-8", "replace")

    def test_wrong_type_names_file_line_and_key(self):
        path, rc, err = self.serve_with('# limits\n[limits]\nmax_recipients = "lots"\n')
        self.assertEqual(rc, 2, err)
        self.assertRegex(err, r"%s:3:\d+: key 'limits\.max_recipients': " % path)

    def test_unknown_key_names_file_line_and_key(self):
        path, rc, err = self.serve_with('[limits]\ntext_line = 2000\n\nfrobnicate = 1\n')
        self.assertEqual(rc, 2, err)
        self.assertRegex(err, r"%s:4:\d+: .*'limits\.frobnicate'" % path)

    def test_toml_syntax_error_names_file_and_line(self):
        path, rc, err = self.serve_with('[limits\nmax_recipients = 5\n')
        self.assertEqual(rc, 2, err)
        self.assertRegex(err, r"%s:1:\d+: " % path)

    def test_valid_file_is_used(self):
        # The same mechanism, accepted: the cap from the file is what the server enforces.
        path = os.path.join(self.tmp.name, "good.toml")
        with open(path, "w") as f:
            f.write("[limits]\nmax_recipients = 2\n")
        with SmtpfaultServer("--config", path) as srv:
            with srv.connect() as c:
                c.ehlo()
                c.cmd("MAIL FROM:<a@example.com>", expect=250)
                c.cmd("RCPT TO:<b@example.com>", expect=250)
                c.cmd("RCPT TO:<c@example.com>", expect=250)
                c.cmd("RCPT TO:<d@example.com>", expect=452)


class DisconnectTest(ServerTestCase):
    """The client vanishes at every point of a session; each time the server notes it, stores
    nothing half-received, and the next client is served normally."""

    def disconnect(self, steps, rude=False, tls=False):
        before = self.server.message_ids()
        c = self.server.connect(tls=tls, greeting=False)
        sid = self.server.session_of(c)
        steps(c)
        c.reset() if rude else c.close()
        lines = self.server.finished_session(sid)
        self.assertTrue(any("client closed the connection" in l or "TLS handshake failed" in l
                            or "write failed" in l for l in lines), lines)
        self.assertEqual(self.server.message_ids(), before)
        self.assert_still_serving()
        self.assertTrue(self.server.alive())
        return lines

    def test_after_connect(self):
        self.disconnect(lambda c: None)

    def test_after_greeting(self):
        self.disconnect(lambda c: c.expect(220))

    def test_after_ehlo(self):
        def steps(c):
            c.expect(220)
            c.ehlo()
        self.disconnect(steps)
        self.disconnect(steps, rude=True)

    def test_a_reset_behind_a_full_read_is_reported_as_a_reset(self):
        # The server is stopped while 256 octets (what fills its read of a command) and the RST
        # arrive, so one read takes the octets and the next meets the reset: it must say so,
        # not report an orderly end of input.
        c = self.server.connect()
        sid = self.server.session_of(c)
        c.ehlo()
        os.kill(self.server.proc.pid, signal.SIGSTOP)
        try:
            c.send(b"X" * 256)   # a command line not finished yet
            c.reset()
            time.sleep(0.1)
        finally:
            os.kill(self.server.proc.pid, signal.SIGCONT)
        lines = self.server.finished_session(sid)
        self.assertTrue(any("client closed the connection (Connection reset by peer)" in l
                            for l in lines), lines)

    def open_transaction(self, c, rcpt=True):
        c.expect(220)
        c.ehlo()
        c.cmd("MAIL FROM:<sender@example.com>", expect=250)
        if rcpt:
            c.cmd("RCPT TO:<rcpt@example.com>", expect=250)

    def test_after_mail(self):
        self.disconnect(lambda c: self.open_transaction(c, rcpt=False))

    def test_after_rcpt(self):
        self.disconnect(lambda c: self.open_transaction(c))
        self.disconnect(lambda c: self.open_transaction(c), rude=True)

    def test_mid_data(self):
        def steps(c):
            self.open_transaction(c)
            c.cmd("DATA", expect=354)
            c.send(b"Subject: cut off\r\n\r\nhalf a li")
        self.disconnect(steps)
        self.disconnect(steps, rude=True)

    def test_mid_data_right_after_crlf_dot(self):
        def steps(c):
            self.open_transaction(c)
            c.cmd("DATA", expect=354)
            c.send(b"Subject: almost\r\n\r\nbody\r\n.")   # one CRLF short of the end
        self.disconnect(steps)

    def test_mid_bdat_chunk(self):
        def steps(c):
            self.open_transaction(c)
            c.send(b"BDAT 100000 LAST\r\n" + b"z" * 5000)
        self.disconnect(steps)
        self.disconnect(steps, rude=True)

    def test_mid_auth(self):
        def steps(c):
            c.expect(220)
            c.ehlo()
            c.cmd("AUTH LOGIN", expect=334)
            c.cmd("dXNlcg==", expect=334)   # "user"; the password never comes
        self.disconnect(steps)

    def test_mid_starttls_handshake(self):
        def steps(c):
            c.expect(220)
            c.ehlo()
            c.cmd("STARTTLS", expect=220)
            c.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")   # a ClientHello, cut short
        lines = self.disconnect(steps)
        self.assertTrue(any("TLS handshake failed" in l for l in lines), lines)

    def test_mid_implicit_tls_handshake(self):
        before = self.server.message_ids()
        sock = socket.create_connection((self.server.host, self.server.tls_port), timeout=5)
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00")
        sock.close()
        self.server.wait_for_line(r"TLS handshake failed")
        self.assertEqual(self.server.message_ids(), before)
        self.assert_still_serving("implicit-tls-cut")

    def test_tls_garbage_on_implicit_tls_port(self):
        sock = socket.create_connection((self.server.host, self.server.tls_port), timeout=5)
        sock.sendall(b"EHLO not-tls\r\n" * 100)
        sock.settimeout(5)
        try:
            while sock.recv(4096):
                pass   # whatever alert comes back, the server must close
        except (ConnectionError, socket.timeout) as e:
            self.assertNotIsInstance(e, socket.timeout, "server kept a garbage TLS session open")
        sock.close()
        self.assert_still_serving("tls-garbage")


class ConnectionCapTest(ServerTestCase):
    SERVER_ARGS = ("--max-connections", "2")

    def setUp(self):
        # Each test counts on both slots. The 48 silent connections of another test may still
        # wait in the listen queue when it ends (a sanitizer's build is slow to accept them),
        # and one accepted after its sessions ended takes a slot for a moment: start only once
        # no session is open and no connection has come for a while.
        def counts():
            _, _, text = self.server.api("GET", "/metrics")
            text = text if isinstance(text, str) else text.decode()
            values = dict(line.split(" ", 1) for line in text.splitlines()
                          if line.startswith(("smtpfault_sessions_active ",
                                              "smtpfault_sessions_total ",
                                              "smtpfault_sessions_refused_total ")))
            return (values.get("smtpfault_sessions_active", "0").strip(),
                    values.get("smtpfault_sessions_total"),
                    values.get("smtpfault_sessions_refused_total"))
        deadline = time.monotonic() + 20
        last = None
        while time.monotonic() < deadline:
            now = counts()
            if now[0] == "0" and now == last:
                return
            last = now
            time.sleep(0.3)
        self.fail("sessions still open or arriving 20 s after the previous test: %r" % (last,))

    def test_over_the_cap_the_implicit_tls_port_answers_421_over_tls(self):
        first = self.server.connect()
        second = self.server.connect()
        with self.server.connect(tls=True, greeting=False) as third:
            r = third.expect(421)
            self.assertTrue(r.lines[0].startswith("4.7.0 "), r)
            sessions = [self.server.session_of(c) for c in (first, second, third)]
        first.close()
        second.close()
        # The slots are free only once the server has seen the sessions end; the next test
        # counts on both.
        for sid in sessions:
            self.server.finished_session(sid)

    def test_silent_connections_over_the_cap_on_the_implicit_tls_port_are_not_held(self):
        import time
        first = self.server.connect()
        second = self.server.connect()
        silent = [socket.create_connection((self.server.host, self.server.tls_port), timeout=5)
                  for _ in range(48)]
        start = time.monotonic()
        closed = []
        for sock in silent:
            sock.settimeout(max(0.1, 5 - (time.monotonic() - start)))
            try:
                closed.append(sock.recv(4096) == b"")
            except ConnectionResetError:
                closed.append(True)
            except socket.timeout:
                closed.append(False)
            sock.close()
        # At most 32 wait for a handshake that carries their 421, for 2 s rather than the
        # 30 s of tls_handshake_timeout; the rest are closed at once.
        self.assertTrue(all(closed), "%d of 48 still open after 5 s" % closed.count(False))
        sessions = [self.server.session_of(c) for c in (first, second)]
        first.close()
        second.close()
        for sid in sessions:
            self.server.finished_session(sid)

    def test_third_connection_gets_421_and_capacity_comes_back(self):
        first = self.server.connect()
        second = self.server.connect()
        with self.server.connect(greeting=False) as third:
            r = third.expect(421)
            self.assertTrue(r.lines[0].startswith("4.7.0 "), r)
            self.assertTrue(third.closed_by_peer(2.0))
        # The held sessions are unaffected.
        first.ehlo()
        second.ehlo()
        first.cmd("QUIT", expect=221)
        first.close()
        self.server.finished_session(self.server.session_of(first))
        # A slot is free again as soon as the session's "session ended" line is out: the
        # server gives the slot back before it writes that line.
        c = self.server.connect(greeting=False)
        r = c.reply()
        self.assertEqual(r.code, 220, r)
        c.ehlo()
        c.cmd("MAIL FROM:<sender@example.com>", expect=250)
        c.cmd("RCPT TO:<rcpt@example.com>", expect=250)
        c.cmd("DATA", expect=354)
        c.send(b"Subject: after cap\r\n\r\nok\r\n.\r\n")
        done = c.expect(250)
        c.close()
        second.close()
        self.assertEqual(self.server.message(done.queued_id).data,
                         b"Subject: after cap\r\n\r\nok\r\n")


class ShutdownTest(unittest.TestCase):
    def test_sigterm_during_a_delayed_reply_or_a_sleeping_hook_answers_421(self):
        # The reply still waiting out its delay gives way to the 421: not a bare close.
        scenario = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scenarios",
                                "slow_to_answer.lua")
        srv = SmtpfaultServer("--scenario", scenario).start()
        self.addCleanup(srv.cleanup)
        delayed = srv.connect()
        delayed.ehlo()
        delayed.send(b"MAIL FROM:<slow@x.test>\r\n")
        closing = srv.connect()   # its delayed reply would itself have closed the session
        closing.ehlo()
        closing.send(b"MAIL FROM:<busy@x.test>\r\n")
        sleeping = srv.connect()
        sleeping.ehlo()
        sleeping.cmd("MAIL FROM:<a@x.test>", expect=250)
        sleeping.send(b"RCPT TO:<forever@x.test>\r\n")
        time.sleep(0.3)
        start = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        for c in (delayed, closing):
            r = c.expect(421, timeout=3)
            self.assertTrue(r.lines[0].startswith("4.3.2 "), r)
            self.assertTrue(c.closed_by_peer(2))
        replies = [sleeping.reply(timeout=3).code]   # the hook's default answer, then the 421
        if replies[0] != 421:
            replies.append(sleeping.reply(timeout=3).code)
        self.assertEqual(replies[-1], 421, replies)
        self.assertEqual(srv.proc.wait(timeout=3), 0)
        self.assertLess(time.monotonic() - start, 2.0)
        delayed.close()
        closing.close()
        sleeping.close()

    def test_sigterm_during_a_trickled_reply_finishes_it_then_answers_421(self):
        # One octet a second: without the stop the reply would take over half a minute.
        srv = server_with_scenario(
            self, 'function on_mail(s, mail)\n'
                  '  return smtp.reply(250, "2.1.0", "Sender fine"):trickle(1, 1)\n'
                  'end\n')
        c = srv.connect()
        c.ehlo()
        c.send(b"MAIL FROM:<a@x.test>\r\n")
        time.sleep(0.5)
        srv.proc.send_signal(signal.SIGTERM)
        r = c.reply(timeout=3)
        self.assertEqual((r.code, r.lines), (250, ["2.1.0 Sender fine"]))
        r = c.expect(421, timeout=3)
        self.assertTrue(r.lines[0].startswith("4.3.2 "), r)
        self.assertEqual(srv.proc.wait(timeout=3), 0)
        c.close()

    def test_sigterm_during_a_hook_that_computes_answers_421_at_once(self):
        # One I/O thread, busy in a hook that would run to its 5 s limit: the stop still comes
        # within a second, with 421 for that session and for an idle one on the same thread.
        srv = server_with_scenario(
            self, 'function on_rcpt(s, rcpt)\n'
                  '  local x = ("x"):rep(1e6)\n'
                  '  while true do x = x:upper():lower() end\n'
                  'end\n', "--threads", "1")
        idle = srv.connect()
        idle.ehlo()
        busy = srv.connect()
        busy.ehlo()
        busy.cmd("MAIL FROM:<a@x.test>", expect=250)
        busy.send(b"RCPT TO:<spin@x.test>\r\n")
        time.sleep(0.5)
        start = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        for c in (busy, idle):
            r = c.expect(421, timeout=3)
            self.assertTrue(r.lines[0].startswith("4.3.2 "), r)
        self.assertEqual(srv.proc.wait(timeout=3), 0)
        self.assertLess(time.monotonic() - start, 1.5)
        idle.close()
        busy.close()

    def test_sigterm_answers_421_and_exits_0_within_1s(self):
        srv = SmtpfaultServer().start()
        self.addCleanup(srv.cleanup)
        acked = send_message(srv, b"Subject: before shutdown\r\n\r\nkept\r\n")
        idle = srv.connect()
        idle.ehlo()
        in_tx = srv.connect()
        in_tx.ehlo()
        in_tx.cmd("MAIL FROM:<sender@example.com>", expect=250)
        in_tx.cmd("RCPT TO:<rcpt@example.com>", expect=250)
        in_data = srv.connect()
        in_data.ehlo()
        in_data.cmd("MAIL FROM:<sender@example.com>", expect=250)
        in_data.cmd("RCPT TO:<rcpt@example.com>", expect=250)
        in_data.cmd("DATA", expect=354)
        in_data.send(b"Subject: interrupted\r\n\r\nhal")
        start = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        for name, c in (("idle", idle), ("in transaction", in_tx), ("in DATA", in_data)):
            try:
                r = c.expect(421, timeout=2)
            except (ConnectionError, OSError) as e:
                srv.proc.wait(timeout=2)
                rc = srv.stop(expect_exit=None)
                self.fail("%s session got no 421: %r; exit status %r, stderr %r\ntranscript:\n%s"
                          % (name, e, rc, srv.stderr_text, "\n".join(srv.transcript())))
            self.assertTrue(r.lines[0].startswith("4.3.2 "), r)
            self.assertIn("shutting down", r.text)
        rc = srv.proc.wait(timeout=2)
        elapsed = time.monotonic() - start
        self.assertEqual(rc, 0, srv.stderr_text)
        self.assertLess(elapsed, 1.0)
        for c in (idle, in_tx, in_data):
            self.assertTrue(c.closed_by_peer(1.0))
            c.close()
        srv.stop()
        # Everything acknowledged with 250 is in the store; the interrupted message is not.
        self.assertEqual(srv.message_ids(), [acked.id])
        self.assertEqual(srv.message(acked.id).data, b"Subject: before shutdown\r\n\r\nkept\r\n")
        self.assertTrue(any("received SIGTERM" in l for l in srv.transcript()))

    def test_sigterm_with_a_client_that_never_reads(self):
        # No transcript on stdout: at two lines per NOOP, this harness reading them through a
        # pipe took most of the time measured (2.5 s of 2.7 under TSan), not the server.
        srv = SmtpfaultServer("--log-format", "none").start()
        self.addCleanup(srv.cleanup)
        c = srv.connect()
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        # Flood commands without reading replies until the server's writes back up.
        c.sock.setblocking(False)
        try:
            for _ in range(20000):
                c.sock.send(b"NOOP\r\n" * 100)
        except (BlockingIOError, ssl.SSLWantWriteError):
            pass
        start = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        rc = srv.proc.wait(timeout=5)
        self.assertEqual(rc, 0, srv.stderr_text)
        # The session finishes the batch of commands it is in before its 421; a sanitizer build
        # takes ten times as long over one (0.5-0.7 s for 64 KiB of NOOPs under TSan).
        self.assertLess(time.monotonic() - start, 3.5 if sanitized_build() else 1.0)
        c.close()
        srv.stop()

    def test_sigterm_with_no_sessions(self):
        srv = SmtpfaultServer().start()
        self.addCleanup(srv.cleanup)
        start = time.monotonic()
        srv.stop(expect_exit=0)
        # Nothing to flush: the exit must not wait out the grace period meant for sessions.
        self.assertLess(time.monotonic() - start, 0.5)
        self.assertTrue(any("stopped; 0 message(s) captured" in l for l in srv.transcript()))

    def test_the_last_line_counts_every_message_captured_even_those_deleted(self):
        srv = SmtpfaultServer().start()
        self.addCleanup(srv.cleanup)
        for i in range(2):
            with smtplib.SMTP(srv.host, srv.port, timeout=10) as c:
                c.sendmail("a@example.com", ["b@example.com"], b"Subject: %d\r\n\r\nhi\r\n" % i)
        status, _, _ = srv.api("DELETE", "/api/v1/messages")
        self.assertIn(status, (200, 204))
        srv.stop(expect_exit=0)
        self.assertTrue(any("stopped; 2 message(s) captured" in l for l in srv.transcript()),
                        srv.transcript()[-3:])


if __name__ == "__main__":
    unittest.main(verbosity=2)
