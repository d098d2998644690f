"""`smtpfault run` itself: exit statuses and messages for script errors and failed
expectations, the transcript and verdicts on the terminal, the client API against the real
server, `check` and `list` for client scripts."""

import json
import os
import socket
import subprocess
import unittest
import xml.etree.ElementTree as ET

from smtpfault_server import SmtpfaultServer, binary_path, server_environment
from client_run_case import ClientRunCase
from scripted_server import ScriptedServer


class RunCommandTest(ClientRunCase):
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

    def test_a_wait_with_no_command_awaiting_a_reply_says_so(self):
        # The EHLO was answered: a stray expect after it is the script's, not the server's.
        path = self.script("""
            connect {}
            greeting()
            ehlo("a.test")
            expect(250, {timeout = 0.3})
        """, "stray.lua")
        p = self.run_client(path)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("FAIL %s:5: expect 250 with no command awaiting a reply (the last, "
                      "'EHLO a.test', was answered): no reply within 0.3s" % path, p.stdout)

    def test_a_message_ended_with_bare_lf_is_still_being_read(self):
        # LF "." LF ends no message (RFC 5321 4.1.1.4): the server is right to wait for more,
        # and the verdict says so instead of blaming it.
        path = self.script(r"""
            connect {}
            greeting()
            ehlo("a.test")
            send("MAIL FROM:<a@x.test>") expect(250)
            send("RCPT TO:<b@x.test>") expect(250)
            data("Subject: lf\n\nline\n", {line_ending = "\n", timeout = 0.5})
        """, "barelf.lua")
        p = self.run_client(path)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn('C: <20 octets of message data, ending "\\n.\\n">', p.stdout)
        self.assertIn("expect 250 to the end of data: no reply within 0.5s; the message ended "
                      "with \"\\n.\\n\", not CRLF \".\" CRLF, which alone ends one (RFC 5321 "
                      "4.1.1.4): a server still reading it is right", p.stdout)

    def test_json_log_lines(self):
        path = self.script("""
            connect {}
            expect(220)
            send("NOOP")
            expect(550)
            report("n", 1)
        """, "lines.lua")
        p = self.run_client(path, "--log-format", "json")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        lines = [json.loads(l) for l in p.stdout.splitlines()]   # every line is JSON
        self.assertTrue(all("ts" in l for l in lines), lines)
        self.assertEqual((lines[0]["run"], lines[0]["seed"] > 0), (path, True))
        self.assertIn({"connection": 1, "dir": "C", "text": "NOOP"},
                      [{k: l[k] for k in ("connection", "dir", "text")}
                       for l in lines if "dir" in l])
        failed = [l for l in lines if l.get("step") == "fail"]
        self.assertEqual([(l["where"], l["name"]) for l in failed],
                         [(path + ":5", "expect 550 to 'NOOP'")])
        self.assertIn({"report": "n", "value": 1},
                      [{k: l[k] for k in ("report", "value")} for l in lines if "report" in l])
        self.assertEqual({k: lines[-1][k] for k in ("verdict", "passed", "failed")},
                         {"verdict": "fail", "passed": 1, "failed": 1})
        p = self.run_client(path, "--log-format", "none")
        self.assertNotIn("C: NOOP", p.stdout)
        self.assertIn("FAIL", p.stdout)

    def test_printed_reports_tell_nil_from_an_empty_string(self):
        path = self.script('report("empty", "")\nreport("none", nil)\nreport("text", "a")\n',
                           "reports.lua")
        p = self.run_client(path, "--quiet")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn('  empty: ""\n  none: nil\n  text: a\n', p.stdout)

    def test_a_raw_step_is_named_with_its_octets_escaped_once(self):
        path = self.script(r"""
            connect {}
            expect(220)
            raw("NOOP\r\n")
            expect(250)
        """)
        p = subprocess.run([binary_path(), "run", path, "--target",
                            "127.0.0.1:%d" % self.server.port, "--quiet"],
                           capture_output=True, text=True, timeout=60, env=server_environment())
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn(r"expect 250 to raw 'NOOP\r\n': got 250", p.stdout)

    def test_a_quiet_run_that_could_not_connect_prints_no_empty_steps(self):
        path = self.script(r"""
            connect {}
            expect(220)
        """)
        with socket.socket() as s:   # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        p = subprocess.run([binary_path(), "run", path, "--target", "127.0.0.1:%d" % port,
                            "--quiet"], capture_output=True, text=True, timeout=60,
                           env=server_environment())
        self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
        self.assertNotIn("\n\n\n", p.stdout)
        self.assertIn("\n\nerror (cannot connect to 127.0.0.1:%d" % port, p.stdout)

    def test_a_target_gone_after_a_failed_expectation_is_exit_3(self):
        # A server that stops taking connections after a failed step (one that crashed on it)
        # is the finding to look at first: exit 3, as documented, with the failure still shown.
        with socket.socket() as s:   # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        path = self.script(r"""
            connect {}
            expect(554, { name = "greeting refused" })
            connect { port = %d }
        """ % port)
        p = self.run_client(path)
        self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
        self.assertIn("greeting refused", p.stdout)
        self.assertIn("cannot connect to 127.0.0.1:%d" % port, p.stdout + p.stderr)

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

    def test_a_script_error_caused_by_a_failure_keeps_the_failure(self):
        srv = ScriptedServer([], then_close=True)   # greets, then closes before the EHLO reply
        self.addCleanup(srv.close)
        path = self.script("""
            connect {}
            expect(220)
            local r = ehlo("client.test")
            check(r.extensions.STARTTLS, "STARTTLS is offered")
        """, "closed.lua")
        p = self.run_client(path, target="127.0.0.1:%d" % srv.port)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"fail \(\S*closed.lua:5: attempt to index a nil value "
                                   r"\(local 'r'\)\): 1 passed, 1 failed")
        self.assertRegex(p.stderr, r"script error after a failed expectation: \S*closed.lua:5: "
                                   r"attempt to index")

    def test_ehlo_keywords_are_read_in_any_case(self):
        # RFC 5321 2.4: keywords are case-insensitive; the table's keys are upper case.
        path = self.script("""
            connect {}
            expect(220)
            local r = ehlo("client.test")
            check(r.extensions.size ~= nil and r.extensions.size == r.extensions.SIZE,
              "size in lower case", tostring(r.extensions.size))
            check(r.extensions.Pipelining ~= nil, "Pipelining in mixed case")
            check(r.extensions.xnothing == nil, "no such keyword")
            quit()
        """, "case.lua")
        p = self.run_client(path)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_a_malformed_pattern_is_named_at_the_scripts_line(self):
        path = self.script('connect {}\nexpect(220)\nsend("NOOP")\nexpect("[")\n', "pat.lua")
        p = self.run_client(path)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("""pat.lua:4: expect: pattern "[": malformed pattern (missing ']')""",
                      p.stderr)
        self.assertNotIn("client.lua", p.stderr)   # the library's own file stays out of it

    def test_authzid_with_a_mechanism_other_than_plain_is_the_scripts_mistake(self):
        path = self.script('connect {}\nexpect(220)\nehlo()\n'
                           'auth("LOGIN", "u", "p", { authzid = "boss" })\n', "authzid.lua")
        p = self.run_client(path)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("authzid.lua:4: auth: authzid is for PLAIN only, not LOGIN", p.stderr)
        self.assertNotIn("AUTH LOGIN", p.stdout)   # nothing went out

    def test_a_refused_data_returns_its_reply_as_expect_does(self):
        srv = ScriptedServer([b"250 ok\r\n"] * 3 + [b"421 4.3.0 closing\r\n"])
        self.addCleanup(srv.close)
        path = self.script("""
            connect {} expect(220) ehlo()
            send("MAIL FROM:<a@x.test>") expect(250)
            send("RCPT TO:<b@x.test>") expect(250)
            local r, err = data("Subject: x\\n\\nhi\\n", { timeout = 2 })
            report("data", tostring(r and r.code) .. " " .. tostring(err))
        """)
        p = self.run_client(path, target="127.0.0.1:%d" % srv.port)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("data: 421 unexpected reply", p.stdout)

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
        # Without --client, a file that calls the client functions is checked as a client
        # script, and said to be one: the shipped probes' folder passes as it is.
        probes = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                              "scenarios", "client")
        p = check(probes)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("probe-bdat.lua (a client script)", p.stdout)
        # A call of a name that is neither the script's nor the library's, close to one of the
        # library's, is found without running the script.
        typo = self.script("connect {}\nexpct(220)\n", "typo.lua")
        p = check("--client", typo)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("typo.lua:2: expct is not defined (did you mean 'expect'?)", p.stderr)
        # So is print, which the sandbox leaves out: found before a run that connects.
        printing = self.script('connect {}\nexpect(220)\nprint("hello")\n', "printing.lua")
        p = check("--client", printing)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("printing.lua:3: print is not available in a client script: "
                      "report(key, value) adds to the report", p.stderr)
        writing = self.script('connect {}\nexpect(220)\nio.write("x")\n', "writing.lua")
        p = check("--client", writing)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("writing.lua:3: io is not available in the sandbox", p.stderr)
        # Only a file that stops at connect() is taken for a client script: a scenario calling
        # a client function elsewhere keeps its own error.
        scenario = self.script("function on_rcpt(s, r) end\nsleep(1)\n", "sleepy.lua")
        p = check(scenario)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("sleepy.lua:2: attempt to call a nil value (global 'sleep')", p.stderr)
        self.assertNotIn("ok", p.stdout)

    def test_unknown_probe_and_bad_flags(self):
        p = self.run_client("probe-nonexistent")
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown client scenario 'probe-nonexistent'", p.stderr)
        self.assertIn("probe-smuggling", p.stderr)
        p = self.run_client("probe-conformance", target="no-port")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--target", p.stderr)
        # Port 0 is "any port" to a listener; as a target it names no server.
        p = self.run_client("probe-conformance", target="127.0.0.1:0")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--target: bad address '127.0.0.1:0' (the port must be a number from 1 to "
                      "65535)", p.stderr)
        p = self.run_client("probe-conformance", "--junit", "/proc/no-such-dir/x.xml")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--junit /proc/no-such-dir/x.xml: cannot make the directory "
                      "/proc/no-such-dir", p.stderr)

    def test_an_ipv6_target_is_written_with_brackets(self):
        with socket.socket(socket.AF_INET6) as s:   # bound, not listening: refuses
            s.bind(("::1", 0))
            port = s.getsockname()[1]
            p = self.run_client("probe-conformance", target="[::1]:%d" % port)
        self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
        self.assertIn("cannot connect to [::1]:%d: Connection refused" % port, p.stderr)

    def test_a_line_ending_data_does_not_know_is_named_in_words(self):
        path = self.script('connect {}\nexpect(220)\ndata("x", { line_ending = "\\r\\r" })\n',
                           "ending.lua")
        p = self.run_client(path)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("ending.lua:3: data: line_ending must be one of CR LF, LF or CR", p.stderr)

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

    def test_a_want_that_can_never_match_is_the_scripts_mistake(self):
        for want, says in [("25", "want a reply code (200-599) or a class (2-5), not 25"),
                           ("{}", "the list of wanted replies is empty"),
                           ("{250, 7}", "not 7"), ("2.5", "not 2.5")]:
            path = self.script("connect {}\nexpect(%s)\n" % want, name="want.lua")
            p = self.run_client(path)
            self.assertEqual(p.returncode, 2, want + p.stdout + p.stderr)
            self.assertIn("want.lua:2: expect: ", p.stderr)
            self.assertIn(says, p.stderr)

    def test_the_lua_limits_of_the_configuration_apply_to_a_client_script(self):
        path = self.script('local body = string.rep("x", 80 * 1024 * 1024)\n'
                           'report("size", #body)\n', name="big.lua")
        p = self.run_client(path)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        # The limit, and where to raise it.
        self.assertIn("big.lua:1: memory limit exceeded (67108864 octets; lua.memory or "
                      "SMTPFAULT_LUA_MEMORY sets it)", p.stderr)
        config = self.script("[lua]\nmemory = 268435456\n", name="lua.toml")
        p = self.run_client(path, "--config", config)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("size: 83886080", p.stdout)
        loop = self.script("local n = 0 for i = 1, 1e6 do n = n + i end\n", name="loop.lua")
        env = dict(server_environment(), SMTPFAULT_LUA_INSTRUCTIONS="1000")
        p = subprocess.run([binary_path(), "run", loop, "--target", "127.0.0.1:1"],
                           capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("loop.lua:1: instruction limit exceeded", p.stderr)

    def test_a_wrong_argument_is_named_with_its_type(self):
        for call, says in [
                ('connect {} expect(220) ehlo{name = "x.test"}',
                 "ehlo: the name must be a string, not a table (options come second"),
                ('connect {port = "%d"}' % self.server.port,
                 'port must be a whole number from 1 to 65535, not the string "%d"'
                 % self.server.port),
                ('connect {} sleep("1")', 'must be a number >= 0, not the string "1"'),
                ('connect {host = "127.0.0.1:25"}',
                 'connect: host "127.0.0.1:25" has a port in it: pass {host = "127.0.0.1", '
                 'port = 25}'),
                ('connect {tls = true, sni = false}',
                 "connect: sni must be a host name (a non-empty string), not false")]:
            path = self.script(call + "\n", name="args.lua")
            p = self.run_client(path)
            self.assertEqual(p.returncode, 2, call + p.stdout + p.stderr)
            self.assertIn("args.lua:1: ", p.stderr)
            self.assertIn(says, p.stderr)

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

    def test_list_shows_the_probes(self):
        p = subprocess.run([binary_path(), "list"], capture_output=True, text=True, timeout=30,
                           env=server_environment())
        for name in ["probe-smuggling", "probe-starttls-injection", "probe-slowloris",
                     "probe-long-lines", "probe-pipelining", "probe-auth-limits", "probe-bdat",
                     "probe-early-talker", "probe-conformance"]:
            self.assertIn(name, p.stdout)


if __name__ == "__main__":
    unittest.main()
