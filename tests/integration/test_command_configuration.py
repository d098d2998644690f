"""Every flag of send, run, test and healthcheck is also a key of the TOML file ([send], [run],
[test], [healthcheck]) and an SMTPFAULT_<COMMAND>_* variable: the command line wins over the
environment, which wins over the file; mistakes name the file, line and key or the variable;
the server shares the file and ignores the commands' tables and variables."""

import functools
import os
import subprocess
import tempfile
import unittest
import xml.etree.ElementTree as ET

from smtpfault_server import (SmtpfaultServer, binary_path, run_binary, server_environment,
                              write_file)

# Each command here reads a configuration and may run a scenario: a minute before giving up.
run = functools.partial(run_binary, timeout=60)


class CommandConfiguration(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="smtpfault-cmdcfg-")
        cls.store = os.path.join(cls.tmp.name, "store")
        os.mkdir(cls.store)
        # One file for the server and the commands: serve must read past [send] and [run].
        cls.server_config = write_file(cls.tmp.name, "server.toml",
                                       'hostname = "shared.test"\n'
                                       '[send]\nfrom = "ignored-by-serve@example.com"\n'
                                       '[run]\nquiet = true\n')
        cls.server = SmtpfaultServer("--config", cls.server_config, store=cls.store,
                                     env={"SMTPFAULT_SEND_TO": "ignored@example.com"}).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop(expect_exit=0)
        finally:
            cls.server.cleanup()
            cls.tmp.cleanup()

    def config(self, name, text):
        return write_file(self.tmp.name, name, text)

    def recipients_of_last_message(self, count):
        return self.server.wait_for_messages(count)[-1].recipients

    def test_send_takes_every_option_from_the_file_then_the_environment_then_flags(self):
        cfg = self.config("send.toml",
                          '[send]\nserver = "127.0.0.1:%d"\nfrom = "file@example.com"\n'
                          'to = ["a@example.com", "b@example.com"]\nhelo = "file.client"\n'
                          'timeout = 5\n' % self.server.port)
        sent = len(self.server.message_ids())
        r = run("send", "--config", cfg)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("EHLO file.client", r.stdout)
        self.assertEqual(self.recipients_of_last_message(sent + 1),
                         ["a@example.com", "b@example.com"])
        # A variable replaces the file's list; SMTPFAULT_CONFIG names the file.
        r = run("send", env={"SMTPFAULT_CONFIG": cfg, "SMTPFAULT_SEND_TO": "c@example.com,d@example.com"})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.recipients_of_last_message(sent + 2),
                         ["c@example.com", "d@example.com"])
        # A flag replaces both.
        r = run("send", "--config", cfg, "--to", "e@example.com",
                env={"SMTPFAULT_SEND_TO": "c@example.com"})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.recipients_of_last_message(sent + 3), ["e@example.com"])
        # Booleans: STARTTLS from the environment alone.
        r = run("send", "--config", cfg, env={"SMTPFAULT_SEND_STARTTLS": "1"})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("STARTTLS", r.stdout)

    def test_mistakes_name_the_file_line_and_key_or_the_variable(self):
        cfg = self.config("bad.toml", '[send]\nfrom = "a@example.com"\ntimout = 5\n')
        r = run("send", "--config", cfg, "--to", "b@example.com")
        self.assertEqual(r.returncode, 2)
        self.assertIn("%s:3:1: unknown key 'send.timout' (did you mean 'send.timeout'?)" % cfg,
                      r.stderr)
        cfg = self.config("bad-value.toml", '[send]\n\ntimeout = "soon"\n')
        r = run("send", "--config", cfg, "--from", "a@example.com", "--to", "b@example.com")
        self.assertEqual(r.returncode, 2)
        self.assertIn("%s:3:11: key 'send.timeout': expected a number, got string" % cfg, r.stderr)
        r = run("send", "--from", "a@example.com", "--to", "b@example.com",
                env={"SMTPFAULT_SEND_SERVR": "127.0.0.1:1"})
        self.assertEqual(r.returncode, 2)
        self.assertIn("environment variable SMTPFAULT_SEND_SERVR: unknown variable (did you mean "
                      "'SMTPFAULT_SEND_SERVER'?)", r.stderr)
        r = run("run", "probe-conformance", env={"SMTPFAULT_RUN_TIMEOUT": "-1"})
        self.assertEqual(r.returncode, 2)
        self.assertIn("environment variable SMTPFAULT_RUN_TIMEOUT: expected seconds, from 0.001 "
                      "to a year (31536000), got '-1'", r.stderr)
        cfg = self.config("bad-health.toml", '[healthcheck]\ntimeout = 0\n')
        r = run("healthcheck", "--config", cfg)
        self.assertEqual(r.returncode, 1)   # Docker reserves 2
        self.assertIn("%s:2:11: key 'healthcheck.timeout': expected seconds, from 0.001" % cfg,
                      r.stderr)
        # inf is a TOML number, and would overflow a deadline.
        cfg = self.config("inf.toml", '[send]\ntimeout = inf\n')
        r = run("send", "--config", cfg, "--from", "a@example.com", "--to", "b@example.com")
        self.assertEqual(r.returncode, 2)
        self.assertIn("key 'send.timeout': expected seconds, from 0.001 to a year (31536000), "
                      "got 'inf'", r.stderr)
        # A key the command takes from the top level is pointed there.
        cfg = self.config("top.toml", '[test]\nseed = 7\n')
        r = run("test", "--config", cfg, "--", "true")
        self.assertEqual(r.returncode, 2)
        self.assertIn("key 'test.seed': the test command takes 'seed' from the top-level key "
                      "(environment variable SMTPFAULT_SEED)", r.stderr)

    def test_run_takes_its_target_params_and_reports_from_the_file(self):
        script = write_file(self.tmp.name, "client.lua",
                            'local c = connect {}\nc:expect(220)\nc:ehlo(params.name)\nc:quit()\n')
        junit = os.path.join(self.tmp.name, "run.xml")
        cfg = self.config("run.toml",
                          '[run]\ntarget = "127.0.0.1:%d"\nparam = ["name=from-file.client"]\n'
                          'quiet = true\njunit = "%s"\n' % (self.server.port, junit))
        r = run("run", script, "--config", cfg)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotRegex(r.stdout, r"(?m)^\[1\] ")  # quiet: verdicts, no transcript
        self.assertIn("'EHLO from-file.client'", r.stdout)
        ET.parse(junit)
        # Quiet off again from the environment, and the EHLO name from it too.
        r = run("run", script, "--config", cfg,
                env={"SMTPFAULT_RUN_QUIET": "false", "SMTPFAULT_RUN_PARAM": "name=env.client"})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"(?m)^\[1\] .*EHLO env\.client")

    def test_the_test_runner_takes_its_reports_and_jobs_from_configuration(self):
        junit = os.path.join(self.tmp.name, "test.xml")
        cfg = self.config("test.toml", 'seed = 7\n[test]\njobs = 2\ntimeout = 30\n')
        mailer = ["sh", "-c", '"$MAILER_BIN" send --server "$SMTP_HOST:$SMTP_PORT" '
                              '--from a@example.com --to b@example.com']
        r = run("test", "--config", cfg, "--scenario", "accept-all",
                "--scenario", "greeting-multiline", "--", *mailer,
                env={"SMTPFAULT_TEST_JUNIT": junit, "MAILER_BIN": binary_path()})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("seed 7", r.stderr)
        self.assertTrue(os.path.exists(junit), r.stderr)
        cases = ET.parse(junit).getroot().iter("testcase")
        self.assertEqual(sorted(c.get("name") for c in cases), ["accept-all", "greeting-multiline"])
        cfg = self.config("test-bad.toml", '[test]\njobs = 0\n')
        r = run("test", "--config", cfg, "--", "true")
        self.assertEqual(r.returncode, 2)
        self.assertIn("%s:2:8: key 'test.jobs': expected a whole number from 1 to 1024, got '0'"
                      % cfg, r.stderr)


    def test_the_command_line_switches_a_configured_boolean_off(self):
        cfg = self.config("tls.toml",
                          '[send]\nserver = "127.0.0.1:%d"\nfrom = "a@example.com"\n'
                          'to = "b@example.com"\nstarttls = true\n' % self.server.port)
        r = run("send", "--config", cfg)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("C: STARTTLS", r.stdout)
        for flag, env in (("--starttls=false", None), ("--starttls=no", None),
                          (None, {"SMTPFAULT_SEND_STARTTLS": "0"})):
            r = run("send", "--config", cfg, *([flag] if flag else []), env=env)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertNotIn("C: STARTTLS", r.stdout, (flag, env))
        r = run("send", "--config", cfg, "--starttls=maybe")
        self.assertEqual(r.returncode, 2)
        self.assertIn("option --starttls: expected true/false/1/0/yes/no, got 'maybe'", r.stderr)

    def test_check_takes_client_from_the_file_or_the_environment(self):
        script = self.config("probe.lua", 'connect()\nexpect(220)\n')
        r = run("check", script)   # unsaid: checked as the client script it looks like
        self.assertEqual((r.returncode, r.stdout), (0, "ok  %s (a client script)\n" % script),
                         r.stderr)
        cfg = self.config("check.toml", "[check]\nclient = true\n")
        for args, env in ((["--config", cfg], None), ([], {"SMTPFAULT_CHECK_CLIENT": "true"})):
            r = run("check", *args, script, env=env)
            self.assertEqual((r.returncode, r.stdout), (0, "ok  %s\n" % script), r.stderr)
        # --client=false undoes the file's setting: the script is again checked as what it
        # looks like, and said to be a client script.
        r = run("check", "--config", cfg, "--client=false", script)
        self.assertEqual((r.returncode, r.stdout), (0, "ok  %s (a client script)\n" % script),
                         r.stderr)
        r = run("check", script, env={"SMTPFAULT_CHECK_CLEINT": "1"})
        self.assertEqual(r.returncode, 2)
        self.assertIn("SMTPFAULT_CHECK_CLEINT: unknown variable (did you mean "
                      "'SMTPFAULT_CHECK_CLIENT'?)", r.stderr)

    def test_a_param_on_the_command_line_or_in_a_variable_replaces_only_its_own_key(self):
        script = write_file(self.tmp.name, "params.lua",
                            'report("user", params.user)\nreport("pass", params.pass)\n')
        cfg = self.config("params.toml",
                          '[run]\nparam = ["user=alice", "pass=secret"]\nquiet = true\n')
        for flags, env, user in ((["--param", "user=bob"], None, "bob"),
                                 ([], {"SMTPFAULT_RUN_PARAM": "user=carol"}, "carol")):
            r = run("run", script, "--config", cfg, *flags, env=env)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("user: " + user, r.stdout)
            self.assertIn("pass: secret", r.stdout)

    def test_scenarios_chosen_on_the_command_line_replace_the_configured_ones(self):
        folder = os.path.join(self.tmp.name, "mine")
        os.makedirs(folder, exist_ok=True)
        write_file(folder, "mine.lua", "-- accepts everything\n")
        cfg = self.config("choice.toml", 'scenario = "greylist"\n[test]\nscenarios = ["%s"]\n'
                          % folder)
        r = run("test", "--config", cfg, "--", "true")
        self.assertIn("2 scenario(s)", r.stderr)   # the table's folder and the scenario key
        self.assertIn("FAIL  mine ", r.stderr)
        self.assertIn("FAIL  greylist ", r.stderr)
        r = run("test", "--config", cfg, "--scenario", "accept-all", "--", "true")
        self.assertIn("1 scenario(s)", r.stderr)
        self.assertNotIn("mine", r.stderr)
        # A scenario key that names none is a slip in the configuration, said before anything runs.
        r = run("test", "--", "true", env={"SMTPFAULT_SCENARIO": "greylst"})
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("smtpfault test: environment variable SMTPFAULT_SCENARIO: unknown scenario "
                      "'greylst' (did you mean 'greylist'?)", r.stderr)

    def test_serve_checks_the_commands_tables_and_variables(self):
        # A server key that slid under [healthcheck] would be lost without a word.
        cfg = self.config("slid.toml", 'api = ""\n[healthcheck]\ntimeout = 3\n\nlmtp = true\n')
        r = run("serve", "--config", cfg, "--listen", "127.0.0.1:0", timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("%s:5:1: unknown key 'healthcheck.lmtp'" % cfg, r.stderr)
        r = run("serve", "--listen", "127.0.0.1:0", "--api", "", timeout=10,
                env={"SMTPFAULT_HEALTHCHECK_TIMOUT": "5"})
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("SMTPFAULT_HEALTHCHECK_TIMOUT", r.stderr)
        # Values too, not only names: the health check would fail on each of these later.
        for env, message in (({"SMTPFAULT_HEALTHCHECK_TIMEOUT": "abc"},
                              "environment variable SMTPFAULT_HEALTHCHECK_TIMEOUT: expected "
                              "seconds"),
                             ({"SMTPFAULT_SEND_TLS": "1", "SMTPFAULT_SEND_STARTTLS": "1"},
                              "exclude each other"),
                             ({"SMTPFAULT_RUN_PARAM": "novalue"},
                              "SMTPFAULT_RUN_PARAM: expected KEY=VALUE, got 'novalue'")):
            r = run("serve", "--listen", "127.0.0.1:0", "--api", "", timeout=10, env=env)
            self.assertEqual(r.returncode, 2, (env, r.stderr))
            self.assertIn(message, r.stderr)

    def test_each_layer_overrides_tls_and_starttls_together(self):
        cfg = self.config("modes.toml",
                          '[send]\nserver = "127.0.0.1:%d"\nfrom = "a@example.com"\n'
                          'to = "b@example.com"\nstarttls = true\n' % self.server.port)
        r = run("send", "--config", cfg, "--server", "127.0.0.1:%d" % self.server.tls_port, "--tls")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("C: STARTTLS", r.stdout)
        r = run("send", "--config", cfg, "--server", "127.0.0.1:%d" % self.server.tls_port,
                env={"SMTPFAULT_SEND_TLS": "1"})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # A variable switching one mode off leaves the file's other one alone.
        implicit = self.config("implicit.toml",
                               '[send]\nserver = "127.0.0.1:%d"\nfrom = "a@example.com"\n'
                               'to = "b@example.com"\ntls = true\n' % self.server.tls_port)
        r = run("send", "--config", implicit, env={"SMTPFAULT_SEND_STARTTLS": "0"})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)   # only TLS works on that port
        # The last of a repeated boolean wins.
        r = run("send", "--config", cfg, "--starttls", "--starttls=false")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("C: STARTTLS", r.stdout)

    def test_a_mistake_anywhere_in_the_file_is_reported_by_the_command_reading_it(self):
        cfg = self.config("sned.toml", '[sned]\nfrom = "a@example.com"\n')
        r = run("send", "--config", cfg, "--to", "b@example.com")
        self.assertEqual(r.returncode, 2)
        self.assertIn("%s:1:2: unknown key 'sned' (did you mean 'send'?)" % cfg, r.stderr)
        # --config '' reads no file, whatever SMTPFAULT_CONFIG names, in every command.
        elsewhere = self.config("elsewhere.toml", 'api = "127.0.0.1:1"\n')
        r = run("healthcheck", "--config", "", "--timeout", "1",
                env={"SMTPFAULT_CONFIG": elsewhere})
        self.assertNotIn("127.0.0.1:1:", r.stderr)
        self.assertIn("127.0.0.1:8025", r.stderr)
        r = run("send", "--config", "", "--server", "127.0.0.1:%d" % self.server.port,
                "--from", "a@example.com", "--to", "b@example.com",
                env={"SMTPFAULT_CONFIG": cfg})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def run_with_piped_config(self, text, *args):
        """The command with --config /dev/fd/N, a pipe holding text (as --config <(...) gives)."""
        read_end, write_end = os.pipe()
        os.write(write_end, text.encode())
        os.close(write_end)
        try:
            return subprocess.run([binary_path(), args[0], "--config", "/dev/fd/%d" % read_end,
                                   *args[1:]], capture_output=True, text=True, timeout=60,
                                  env=server_environment(), pass_fds=(read_end,))
        finally:
            os.close(read_end)

    def test_a_configuration_from_a_pipe_is_read_whole_for_every_use(self):
        # A pipe gives its content once; each later read of the file (the whole-file check,
        # the server's settings for test) must still see it.
        r = self.run_with_piped_config('[sned]\nfrom = "a@example.com"\n', "send",
                                       "--to", "b@example.com")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn(":1:2: unknown key 'sned' (did you mean 'send'?)", r.stderr)
        sent = len(self.server.message_ids())
        r = self.run_with_piped_config(
            '[send]\nserver = "127.0.0.1:%d"\nfrom = "pipe@example.com"\nto = "p@example.com"\n'
            % self.server.port, "send")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.recipients_of_last_message(sent + 1), ["p@example.com"])
        # test reads its own table, the whole file, then the server's keys (here "seed").
        r = self.run_with_piped_config('seed = 4242\n[test]\njobs = 1\n', "test",
                                       "--scenario", "accept-all", "--", "true")
        self.assertIn("(seed 4242)", r.stdout)

    def test_a_file_that_never_ends_is_refused_not_read_forever(self):
        r = run("send", "--config", "/dev/zero", "--to", "b@example.com", timeout=30)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("/dev/zero: cannot read file: larger than 16 MiB", r.stderr)


if __name__ == "__main__":
    unittest.main()
