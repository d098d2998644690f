"""`smtpfault run` itself: exit statuses and messages for bad targets, TLS failures, timeouts and
script errors; certificate checks; --junit and --json; the client API against the real server."""

import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import textwrap
import unittest
import xml.etree.ElementTree as ET

from scripted_server import ScriptedServer
from smtpfault_server import (SmtpfaultServer, binary_path, server_environment,
                              server_with_scenario)

CA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures", "certs",
                  "test-ca.pem")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunCommandTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = SmtpfaultServer().start()
        cls.tmp = tempfile.TemporaryDirectory(prefix="smtpfault-run-")

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop(expect_exit=0)
        finally:
            cls.server.cleanup()
            cls.tmp.cleanup()

    def script(self, text, name="client.lua"):
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            f.write(textwrap.dedent(text))
        return path

    def run_client(self, script, *args, target=None):
        target = target or "127.0.0.1:%d" % self.server.port
        return subprocess.run([binary_path(), "run", script, "--target", target, *args],
                              capture_output=True, text=True, timeout=60,
                              env=server_environment())

    def test_verdicts_reach_the_terminal_as_one_short_line_of_utf8(self):
        path = self.script(r"""
            connect {}
            expect(220)
            check(true, "odd\255name", "tab\there " .. string.rep("z", 2000))
            report("raw", "\255\1")
        """)
        p = subprocess.run([binary_path(), "run", path, "--target",
                            "127.0.0.1:%d" % self.server.port, "--quiet"],
                           capture_output=True, timeout=60, env=server_environment())
        out = p.stdout.decode("utf-8")   # strict: a stray octet fails here
        self.assertEqual(p.returncode, 0, out)
        verdict = [l for l in out.splitlines() if "odd" in l][0]
        # Escaped as the transcript escapes them: nothing reaches the terminal raw.
        self.assertIn("odd\\xffname: tab\\x09here zzz", verdict)
        self.assertRegex(verdict, r"z\.\.\. \(\d+ octets\)$")
        self.assertLess(len(verdict), 400)
        self.assertIn("raw: \\xff\\x01", out)

    def test_the_transcript_reaches_a_pipe_as_it_happens(self):
        path = self.script("""
            local c = connect {}
            c:expect(220)
            sleep(20)
        """)
        p = subprocess.Popen([binary_path(), "run", path, "--target",
                              "127.0.0.1:%d" % self.server.port], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, env=server_environment())
        try:
            import select
            seen = b""
            fd = p.stdout.fileno()  # unbuffered: a buffered readline may hide the next line
            while b"S: 220" not in seen:
                ready, _, _ = select.select([fd], [], [], 10)
                self.assertTrue(ready, "the greeting not on the pipe while the script sleeps: %r"
                                % seen)
                chunk = os.read(fd, 65536)
                self.assertTrue(chunk, "the pipe closed: %r" % seen)
                seen += chunk
        finally:
            p.kill()
            p.wait()
            p.stdout.close()

    def test_a_connection_the_script_closed_is_the_scripts_mistake(self):
        # Not the socket's "Bad file descriptor", and not the server's doing (a failed verdict,
        # or exit 3 for a STARTTLS that "failed"): a script error at the line that used it.
        for how in ("close", "reset"):
            for use in ('c:send("NOOP")', "c:starttls {}", "c:ehlo('x')", "c:tls_handshake {}"):
                path = self.script("""
                    local c = connect {}
                    c:expect(220)
                    c:%s()
                    %s
                """ % (how, use))
                p = self.run_client(path)
                self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
                self.assertRegex(p.stderr, r"client\.lua:5: \w+: the script %s this connection "
                                 r"itself; connect\(\) again" % ("reset" if how == "reset"
                                                                   else "closed"))
                self.assertNotIn("Bad file descriptor", p.stdout)

    def test_running_out_of_descriptors_is_named(self):
        import resource
        path = self.script("""
            for i = 1, 100 do
              local c, err = connect { may_fail = true }
              if not c then report("failed", err) break end
            end
        """)
        p = subprocess.run([binary_path(), "run", path, "--target",
                            "127.0.0.1:%d" % self.server.port], capture_output=True, text=True,
                           timeout=60, env=server_environment(),
                           preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40)))
        self.assertIn("failed: cannot open a socket to 127.0.0.1:%d: Too many open files"
                      % self.server.port, p.stdout, p.stdout + p.stderr)

    def test_a_refused_xoauth2_token_gets_its_error_challenge_then_535(self):
        # As Gmail does (RFC 7628 3.2.2): the server's side and the client's side of it.
        server = SmtpfaultServer("--set", "auth.users=alice:secret").start()
        try:
            path = self.script("""
                local c = connect {}
                c:expect(220)
                c:ehlo("client.test")
                c:auth("XOAUTH2", "alice", "expired", { expect = 535 })
                c:auth("XOAUTH2", "alice", "secret")
                c:quit()
            """, name="xoauth2.lua")
            p = self.run_client(path, target="127.0.0.1:%d" % server.port)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertRegex(p.stdout, r"S: 334 eyJzdGF0dXMiOiI0MDEi")
            self.assertIn("535 5.7.8 Username and Password not accepted", p.stdout)
        finally:
            server.stop(expect_exit=0)
            server.cleanup()

    def test_refused_target_exits_3_with_the_reason(self):
        port = free_port()
        p = self.run_client("probe-conformance", target="127.0.0.1:%d" % port)
        self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
        self.assertIn("cannot connect to 127.0.0.1:%d: Connection refused" % port, p.stderr)
        # The summary on stdout says why too, not only "error".
        self.assertIn("error (cannot connect to 127.0.0.1:%d: Connection refused): 0 passed"
                      % port, p.stdout)

    def test_may_fail_connect_comes_back_as_a_value(self):
        path = self.script("""
            local c, err = connect { port = %d, may_fail = true }
            check(c == nil, "refused", err)
            check(err:find("Connection refused") ~= nil, "the reason is given", err)
        """ % free_port())
        p = self.run_client(path)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_tls_verification_failure_exits_3(self):
        path = self.script("""
            connect { port = %d, tls = true, verify = true }
            expect(220)
        """ % self.server.tls_port)
        p = self.run_client(path)
        self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
        self.assertIn("TLS handshake with 127.0.0.1 failed: unable to get local issuer "
                      "certificate", p.stderr)

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

    def test_reply_timeout_is_a_failed_expectation(self):
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(1)
            path = self.script("""
                connect {}
                expect(220, { timeout = 0.5 })
            """)
            p = self.run_client(path, target="127.0.0.1:%d" % silent.getsockname()[1])
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"FAIL \S+client.lua:3: expect 220 \(greeting\): "
                                   r"no reply within 0.5s")

    def test_failed_expectation_exits_1(self):
        path = self.script("""
            connect {}
            expect(220)
            send("NOOP")
            expect(550)
        """)
        p = self.run_client(path)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"FAIL \S+client.lua:5: expect 550 to 'NOOP': got 250")

    def test_script_errors_exit_2_with_file_and_line(self):
        runtime = self.script("""
            connect {}
            expect(220)
            local x = nil
            x.field = 1
        """, "runtime.lua")
        p = self.run_client(runtime)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertRegex(p.stderr, r"runtime.lua:5: attempt to index a nil value")
        syntax = self.script("connect {\n", "syntax.lua")
        p = self.run_client(syntax)
        self.assertEqual(p.returncode, 2)
        self.assertIn("syntax.lua:", p.stderr)
        misuse = self.script("connect {}\nexpect(220)\nsend(42)\n", "misuse.lua")
        p = self.run_client(misuse)
        self.assertEqual(p.returncode, 2)
        self.assertIn("misuse.lua:3: send: line must be a string, not a number", p.stderr)
        typo = self.script("connect { prot = 25 }\n", "typo.lua")
        p = self.run_client(typo)
        self.assertEqual(p.returncode, 2)
        self.assertIn("typo.lua:1: connect: unknown option 'prot' (it takes: ca, host, may_fail,"
                      " port, sni, timeout, tls, verify)", p.stderr)
        passed_on = self.script("connect {}\nexpect(220)\nehlo('x', { expect = 250, nmae = 1 })\n",
                                "passed_on.lua")
        p = self.run_client(passed_on)
        self.assertEqual(p.returncode, 2)
        self.assertIn("passed_on.lua:3: ehlo: unknown option 'nmae'", p.stderr)
        misspelt = self.script("local c = connect {}\nc:expct(220)\n", "misspelt.lua")
        p = self.run_client(misspelt)
        self.assertEqual(p.returncode, 2)
        self.assertIn("misspelt.lua:2: attempt to call a nil value (method 'expct') (did you mean "
                      "'expect'?)", p.stderr)
        # Implicit TLS needs --tls-target (or a port): not a TLS error from the plain port.
        no_tls_target = self.script("connect { tls = true }\nexpect(220)\n", "tls.lua")
        p = self.run_client(no_tls_target)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("tls.lua:1: connect: no implicit-TLS target: pass {host=..., port=...} or "
                      "run with --tls-target HOST:PORT", p.stderr)

    def test_check_reads_client_scripts(self):
        def check(*args):
            return subprocess.run([binary_path(), "check", *args], capture_output=True, text=True,
                                  timeout=30, env=server_environment())
        p = check("probe-conformance", "probe-bdat")   # built-in client scenarios, by name
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("ok  probe-conformance", p.stdout)
        broken = self.script("connect {}\nexpect(220\n", "broken.lua")
        p = check("--client", self.script("connect {}\n", "fine.lua"), broken)
        self.assertEqual(p.returncode, 1)
        self.assertIn("ok  " + os.path.join(self.tmp.name, "fine.lua"), p.stdout)
        self.assertIn(broken + ":3: ", p.stderr)

    def test_unknown_probe_and_bad_flags(self):
        p = self.run_client("probe-nonexistent")
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown client scenario 'probe-nonexistent'", p.stderr)
        self.assertIn("probe-smuggling", p.stderr)
        p = self.run_client("probe-conformance", target="no-port")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--target", p.stderr)

    def test_closed_and_reset_are_values(self):
        path = self.script("""
            connect {}
            expect(220)
            send("QUIT")
            expect(221)
            local r, err = reply({ timeout = 5 })
            check(r == nil and err == "closed", "closed is reported", tostring(err))
            local ok, werr = send("NOOP")
            report("write_after_close", tostring(werr))
        """)
        p = self.run_client(path)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_data_line_endings_and_dot_stuffing_reach_the_server(self):
        path = self.script("""
            connect {}
            expect(220)
            ehlo()
            send("MAIL FROM:<a@example.com>")
            expect(250)
            send("RCPT TO:<b@example.com>")
            expect(250)
            local r = data("Subject: lf\\n\\n.dot\\nend", { line_ending = "\\n", expect = 5,
                                                          timeout = 2 })
            report("lf_terminator", r and r.code or "none")
        """)
        p = self.run_client(path)
        # "\\n.\\n" never ends the data on the strict server: no reply until the timeout.
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("no reply within 2s", p.stdout)

    def test_junit_and_json_reports(self):
        junit = os.path.join(self.tmp.name, "run.xml")
        js = os.path.join(self.tmp.name, "run.json")
        p = self.run_client("probe-pipelining", "--junit", junit, "--json", js, "--seed", "5",
                            "--quiet")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn("[1] C:", p.stdout)
        self.assertTrue(p.stdout.startswith("smtpfault run: probe-pipelining against "
                                            "127.0.0.1:%d (seed 5)" % self.server.port), p.stdout)
        suite = ET.parse(junit).getroot().find("testsuite")
        self.assertEqual(suite.get("failures"), "0")
        self.assertGreater(int(suite.get("tests")), 5)
        # Named after the script, so that merged reports of several runs stay apart.
        self.assertEqual(suite.get("name"), "smtpfault run probe-pipelining")
        self.assertEqual({c.get("classname") for c in suite.findall("testcase")},
                         {"smtpfault.run.probe-pipelining"})
        with open(js) as f:
            doc = json.load(f)
        self.assertEqual(doc["verdict"], "pass")
        self.assertEqual(doc["seed"], 5)
        self.assertEqual(doc["report"]["group1"], "250 250 501 354")
        self.assertIn("C: MAIL FROM:<probe@smtpfault.test>", doc["connections"][0]["transcript"])

    def test_sigterm_and_sigint_still_write_the_reports(self):
        path = self.script("""
            connect {}
            expect(220)
            sleep(60)
        """, name="sleeper.lua")
        for sig, status, name in [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT")]:
            junit = os.path.join(self.tmp.name, "stopped.xml")
            js = os.path.join(self.tmp.name, "stopped.json")
            proc = subprocess.Popen([binary_path(), "run", path, "--target",
                                     "127.0.0.1:%d" % self.server.port, "--junit", junit,
                                     "--json", js], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, env=server_environment())
            try:
                for line in proc.stdout:  # line-buffered: the greeting shows as it arrives
                    if "S: 220" in line:
                        break
                proc.send_signal(sig)
                out, err = proc.communicate(timeout=20)
            finally:
                if proc.poll() is None:
                    proc.kill()
            self.assertEqual(proc.returncode, status, out + err)
            self.assertIn("interrupted by %s after" % name, err)
            self.assertIn("waiting at %s:4" % path, err)
            error = ET.parse(junit).getroot().find("testsuite/testcase/error")
            self.assertIn("interrupted by %s" % name, error.get("message"))
            with open(js) as f:
                doc = json.load(f)
            self.assertEqual((doc["verdict"], doc["exit_code"]), ("error", status))
            self.assertEqual(doc["steps"][0]["passed"], True)
            self.assertIn("S: 220", " ".join(doc["connections"][0]["transcript"]))

    def test_a_want_that_can_never_match_is_the_scripts_mistake(self):
        for want, says in [("25", "want a reply code (200-599) or a class (2-5), not 25"),
                           ("{}", "the list of wanted replies is empty"),
                           ("{250, 7}", "not 7"), ("2.5", "not 2.5")]:
            path = self.script("connect {}\nexpect(%s)\n" % want, name="want.lua")
            p = self.run_client(path)
            self.assertEqual(p.returncode, 2, want + p.stdout + p.stderr)
            self.assertIn("want.lua:2: expect: ", p.stderr)
            self.assertIn(says, p.stderr)

    def test_a_reported_table_shows_its_contents(self):
        path = self.script("""
            report("codes", { 250, 354, group = "a b", nested = { x = 1 } })
            local big = {}
            for i = 1, 100000 do big[i] = i end
            report("big", big)
            report("odd", { "a\\nb", setmetatable({}, { __tostring = function() return "T" end }) })
            report("count", 3) report("ratio", 0.5) report("ok", false) report("none", nil)
            report("huge", math.huge) report("digits", "007") report("nan", 0/0)
        """)
        p = self.run_client(path, "--json", os.path.join(self.tmp.name, "t.json"))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        shown = '{250, 354, group = "a b", nested = {x = 1}}'
        self.assertIn("codes: " + shown, p.stdout)
        with open(os.path.join(self.tmp.name, "t.json")) as f:
            report = json.load(f)["report"]
        self.assertEqual(report["codes"], shown)
        self.assertTrue(report["big"].endswith(", 1000, ...}"), report["big"][-40:])
        self.assertEqual(report["odd"], '{"a\\nb", T}')
        # Scalars keep their type in the JSON; text stays text, and what JSON cannot hold is text.
        self.assertEqual([report[k] for k in ("count", "ratio", "ok", "none", "huge", "digits",
                                              "nan")],
                         [3, 0.5, False, None, "inf", "007", "nan"])
        self.assertIn("  count: 3\n", p.stdout)
        self.assertIn("  none: \n", p.stdout)

    def test_skip_ends_the_run_as_skipped_not_passed(self):
        path = self.script("""
            connect {}
            expect(220)
            local r = ehlo()
            if r.extensions.PIPELINING then
              quit()
              skip("PIPELINING offered: nothing to probe")
            end
            check(false, "never reached")
        """, name="skipper.lua")
        junit = os.path.join(self.tmp.name, "skip.xml")
        js = os.path.join(self.tmp.name, "skip.json")
        p = self.run_client(path, "--junit", junit, "--json", js)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("skip %s:7: skipped: PIPELINING offered: nothing to probe" % path, p.stdout)
        self.assertIn("skipped: 3 passed, 0 failed, 1 skipped", p.stdout)
        self.assertNotIn("never reached", p.stdout)
        self.assertIn("C: QUIT", p.stdout)
        suite = ET.parse(junit).getroot().find("testsuite")
        self.assertEqual(suite.get("skipped"), "1")
        skipped = suite.findall("testcase/skipped")
        self.assertEqual(len(skipped), 1)
        self.assertIn("nothing to probe", skipped[0].get("message"))
        with open(js) as f:
            doc = json.load(f)
        self.assertEqual((doc["verdict"], doc["exit_code"]), ("skipped", 0))
        self.assertTrue(doc["steps"][-1]["skipped"])

    def test_network_calls_inside_a_coroutine_of_the_script_are_refused(self):
        # Its yield would reach the script's coroutine, not the driver: the script would go on
        # with the request as a value (and a skip() would not end the run).
        for call in ('skip("x")', "expect(220)"):
            path = self.script("""
                connect {}
                local co = coroutine.wrap(function() %s end)
                co()
                check(false, "never reached")
            """ % call, name="coroutine.lua")
            p = self.run_client(path)
            self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
            self.assertIn("coroutine.lua:4: network calls and skip() cannot be made inside a "
                          "coroutine", p.stderr)
            self.assertNotIn("skip ", p.stdout)

    def test_a_nul_in_a_reply_reaches_the_verdict_and_the_reports_whole(self):
        raw = server_with_scenario(
            self, 'function on_command(s, cmd)\n'
                  '  if cmd.verb == "VRFY" then return smtp.raw("250-first\\0x\\r\\n250 second\\r\\n") end\n'
                  'end\n')
        path = self.script("""
            connect {}
            expect(220)
            send("VRFY x")
            local r = expect(250)
            report("text", r.text)
        """, name="nul.lua")
        js = os.path.join(self.tmp.name, "nul.json")
        p = self.run_client(path, "--json", js, target="127.0.0.1:%d" % raw.port)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("got 250 first\\x00x (+1 lines)", p.stdout)  # a terminal sees no NUL
        with open(js) as f:
            doc = json.load(f)
        self.assertEqual(doc["steps"][1]["detail"], "got 250 first\x00x (+1 lines)")
        self.assertEqual(doc["report"]["text"], "first\x00x\nsecond")

    def test_an_unwritable_report_is_refused_before_the_run(self):
        missing = os.path.join(self.tmp.name, "no-such-folder", "r.xml")
        p = self.run_client("probe-pipelining", "--junit", missing)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("r.xml: no such directory", p.stderr)
        self.assertNotIn("C: EHLO", p.stdout)  # nothing was sent
        # A report that can be written is not made before the run: a run killed on the way
        # leaves no empty file for CI to choke on; the finished one is renamed into place.
        junit = os.path.join(self.tmp.name, "whole.xml")
        p = self.run_client("probe-pipelining", "--junit", junit, "--json", "/dev/null")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        ET.parse(junit)
        self.assertFalse(os.path.exists(junit + ".partial"))

    def test_a_script_that_does_not_load_still_writes_its_reports(self):
        path = self.script("connect {\n", name="broken.lua")
        junit = os.path.join(self.tmp.name, "broken.xml")
        js = os.path.join(self.tmp.name, "broken.json")
        p = self.run_client(path, "--junit", junit, "--json", js)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        suite = ET.parse(junit).getroot().find("testsuite")
        self.assertEqual((suite.get("tests"), suite.get("errors")), ("1", "1"))
        self.assertIn("broken.lua:2:", suite.find("testcase").find("error").get("message"))
        with open(js) as f:
            doc = json.load(f)
        self.assertEqual((doc["verdict"], doc["exit_code"]), ("error", 2))
        self.assertIn("broken.lua:2:", doc["error"])

    def test_each_pipelined_reply_is_named_after_its_own_command(self):
        path = self.script("""
            local c = connect {}
            expect(220)
            ehlo()
            c:pipeline { "MAIL FROM:<a@x.test>", "RCPT TO:<b@x.test>", "RCPT TO:<c@x.test>" }
            expect(250)
            expect(250)
            expect(250)
            quit()
        """, name="piped.lua")
        p = self.run_client(path, "--quiet")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        for cmd in ("MAIL FROM:<a@x.test>", "RCPT TO:<b@x.test>", "RCPT TO:<c@x.test>"):
            self.assertIn("expect 250 to pipelined '%s'" % cmd, p.stdout)

    def test_report_times_are_those_of_the_steps(self):
        path = self.script("""
            local c = connect {}
            c:expect(220)
            sleep(0.3)
            check(true, "after a pause")
        """, name="timed.lua")
        junit = os.path.join(self.tmp.name, "timed.xml")
        js = os.path.join(self.tmp.name, "timed.json")
        p = self.run_client(path, "--junit", junit, "--json", js)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        suite = ET.parse(junit).getroot().find("testsuite")
        cases = {c.get("name"): float(c.get("time")) for c in suite.findall("testcase")}
        paused = [t for name, t in cases.items() if "after a pause" in name]
        self.assertEqual(len(paused), 1, cases)
        self.assertGreaterEqual(paused[0], 0.29)
        self.assertGreaterEqual(float(suite.get("time")), 0.29)
        with open(js) as f:
            steps = json.load(f)["steps"]
        self.assertGreaterEqual(steps[-1]["seconds"], 0.29)

    def test_junit_names_stay_when_the_script_is_edited(self):
        body = """
            local c = connect {}
            c:expect(220)
            check(true, "same words")
            check(true, "same words")
            check(false, "this one fails")
        """
        names = []
        for i, padding in enumerate(["", "\n\n-- lines added above move every step\n"]):
            path = self.script(padding + body, name="named%d.lua" % i)
            junit = os.path.join(self.tmp.name, "named%d.xml" % i)
            p = self.run_client(path, "--junit", junit, "--quiet")
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            cases = ET.parse(junit).getroot().find("testsuite").findall("testcase")
            names.append([c.get("name") for c in cases])
            failure = [c.find("failure") for c in cases if c.find("failure") is not None]
            self.assertEqual(len(failure), 1)
            # The place is in the failure message instead.
            self.assertRegex(failure[0].get("message"), r"named%d\.lua:\d+:" % i)
        self.assertEqual(names[0], names[1])
        self.assertIn("same words", names[0])
        self.assertIn("same words (2)", names[0])
        self.assertIn("this one fails", names[0])
        self.assertFalse([n for n in names[0] if ".lua" in n], names[0])

    def test_list_shows_the_probes(self):
        p = subprocess.run([binary_path(), "list"], capture_output=True, text=True, timeout=30,
                           env=server_environment())
        for name in ["probe-smuggling", "probe-starttls-injection", "probe-slowloris",
                     "probe-long-lines", "probe-pipelining", "probe-auth-limits", "probe-bdat",
                     "probe-early-talker", "probe-conformance"]:
            self.assertIn(name, p.stdout)



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

    def test_probe_pipelining_against_a_server_that_closes_fails_without_a_script_error(self):
        srv = ScriptedServer([b"250-scripted\r\n250 PIPELINING\r\n"], then_close=True)
        self.addCleanup(srv.close)
        r = subprocess.run([binary_path(), "run", "probe-pipelining", "--target",
                            "127.0.0.1:%d" % srv.port, "--timeout", "2"],
                           capture_output=True, text=True, timeout=60, env=server_environment())
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("FAIL", r.stdout)
        self.assertNotIn("script error", r.stderr)

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


class FloodingServer(unittest.TestCase):
    """A server that never stops sending: every wait still ends at its deadline, and what piles
    up is bounded (the run ended only when the server stopped, growing by gigabytes)."""

    def test_a_flood_of_continuation_lines_or_of_one_line_ends_at_the_timeout(self):
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
                    # Not silence: a line with no end in sight, for run and for send.
                    endless = "a reply line longer than 65536 octets, still without its end"
                    self.assertIn(endless, r.stdout)
                    self.assertNotIn("no reply within", r.stdout)
                    s = subprocess.run([binary_path(), "send", "--server", "127.0.0.1:%d"
                                        % listener.getsockname()[1], "--from", "a@x.test", "--to",
                                        "b@x.test", "--timeout", "1"], capture_output=True,
                                       text=True, timeout=60, env=server_environment())
                    self.assertEqual(s.returncode, 1, s.stdout + s.stderr)
                    self.assertIn("greeting: malformed reply: " + endless, s.stderr)
            finally:
                stop.set()
                t.join(5)
                listener.close()

if __name__ == "__main__":
    unittest.main()
