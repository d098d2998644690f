"""The command line: --help and --version everywhere, mistakes in flags and files named where
they were given, JSON logs with escaped wire bytes, environment configuration."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest
import xml.etree.ElementTree as ET

from smtpfault_server import TEST_CA, SmtpfaultServer, binary_path, server_environment, write_file
from smtpfault_server import run_binary as run


COMMANDS = ["serve", "send", "check", "list", "test", "run", "healthcheck", "ca"]


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

    def test_the_command_list_is_one_column(self):
        text = run("--help").stdout
        entries = [l for l in text.splitlines() if re.match(r"  \S+ +\S", l)]
        self.assertEqual({l.split()[0] for l in entries} & set(COMMANDS), set(COMMANDS))
        self.assertIn("--version", {l.split()[0] for l in entries})
        # Where each description starts: one column for commands and options alike.
        self.assertEqual({re.match(r"  \S+ +", l).end() for l in entries}, {15}, text)

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


class TestCa(unittest.TestCase):
    def test_ca_prints_the_bundled_test_ca(self):
        # The one the made certificate is signed by, for a user without the repository.
        r = run("ca")
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(TEST_CA, encoding="ascii") as f:
            self.assertEqual(r.stdout, f.read())
        bad = run("ca", "--out")
        self.assertEqual(bad.returncode, 2)
        self.assertIn("unknown option '--out'", bad.stderr)


class ServeFlagMistakes(unittest.TestCase):
    def test_a_misspelt_flag_gets_a_suggestion_and_a_bad_set_value_names_its_key(self):
        r = run("serve", "--lisen", "127.0.0.1:0", timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("unknown option --lisen (did you mean '--listen'?)", r.stderr)
        # A key's own name without its table: the flag that ends in it, not a near spelling.
        r = run("serve", "--cert", "c.pem", timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("unknown option --cert (did you mean '--tls-cert'?)", r.stderr)
        # Where other tools list their tests, the catalogue's own command.
        r = run("test", "--list", timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("unknown option --list (the scenarios are listed by 'smtpfault list')",
                      r.stderr)
        r = run("serve", "--set", "limits.text_line=abc", timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--set limits.text_line: expected an unsigned integer, got 'abc'", r.stderr)
        # One account as if it were a key of its own: the whole table is the value.
        r = run("serve", "--set", "auth.users.mail-bot=secret", timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("unknown key 'auth.users.mail-bot' ('auth.users' is one key: give all of it "
                      "as the value, e.g. auth.users=mail-bot:VALUE)", r.stderr)

    def test_a_scenario_parameter_nothing_reads_is_said_to_change_nothing(self):
        server = SmtpfaultServer("--scenario", "greylist", "--scenario-params", "windw=5",
                                 "--scenario-params", "window=3").start()
        try:
            banner = "\n".join(server.banner)
            self.assertIn("note: scenario parameter 'windw' is not read by greylist (its source "
                          "never names it), so it changes nothing (did you mean 'window'?)", banner)
            self.assertNotIn("parameter 'window'", banner)
        finally:
            server.stop()
            server.cleanup()
        r = run("test", "--scenario", "greylist", "--scenario", "size-limit", "--set",
                "scenario_params=limit=900", "--set", "scenario_params=windw=5", "--", "true")
        # limit is read by size-limit alone, and that is enough; windw by none.
        self.assertIn("smtpfault test: note: scenario parameter 'windw' is named by none of the "
                      "scenarios run, so it changed nothing (did you mean 'window'?)", r.stderr)
        self.assertNotIn("'limit'", r.stderr)
        # A key near none of theirs is only said to be unread.
        r = run("test", "--scenario", "greylist", "--set", "scenario_params=zzz=5", "--", "true")
        self.assertIn("smtpfault test: note: scenario parameter 'zzz' is named by none of the "
                      "scenarios run, so it changed nothing (misspelt?)", r.stderr)

    def test_a_scenario_without_its_flag_is_refused_not_served_as_accept_all(self):
        r = run("serve", "greylist", "--listen", "127.0.0.1:0", "--tls-listen", "", "--api", "",
                timeout=10)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("unexpected argument 'greylist' (a scenario is given as --scenario "
                      "greylist)", r.stderr)
        self.assertNotIn("serving", r.stdout)

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
        # A slip in a built-in name gets the name it was meant to be, before anything runs.
        r = run("test", "--scenario", "greylst", "--", "true", timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("smtpfault test: --scenario: unknown scenario 'greylst' (did you mean "
                      "'greylist'?) (not a file;", r.stderr)
        self.assertNotIn("seed", r.stderr)
        self.assertEqual(r.stdout, "")
        r = run("test", "--scenario", "gone.lua", "--", "true", timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("smtpfault test: --scenario: gone.lua: cannot open scenario: No such file",
                      r.stderr)

    def test_a_misspelt_command_gets_the_one_it_was_meant_to_be(self):
        r = run("tset", timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertTrue(r.stderr.startswith("smtpfault: unknown command 'tset' (did you mean "
                                            "'test'?)\n"), r.stderr)
        r = run("frobnicate", timeout=10)
        self.assertTrue(r.stderr.startswith("smtpfault: unknown command 'frobnicate'\n"), r.stderr)

    def config_file(self, name, text):
        """A configuration file of the test's own, removed when it ends."""
        folder = tempfile.mkdtemp(prefix="smtpfault-cli-")
        self.addCleanup(shutil.rmtree, folder, True)
        return write_file(folder, name, text)

    def test_a_store_that_cannot_be_made_is_a_configuration_error_named_where_given(self):
        cfg = self.config_file("st.toml",
                               'listen = ["127.0.0.1:0"]\napi = ""\nstore = "/proc/nope"\n')
        r = run("serve", "--config", cfg, timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("%s:3:9: key 'store': /proc/nope: " % cfg, r.stderr)

    def test_a_listener_that_is_no_ip_address_is_named_where_given(self):
        cfg = self.config_file("ip.toml", 'api = ""\ntls_listen = []\nlisten = ["999.1.1.1:25"]\n')
        r = run("serve", "--config", cfg, timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("%s:3:10: key 'listen': '999.1.1.1:25' is not an IP address" % cfg, r.stderr)
        r = run("serve", "--listen", "127.0.0.1:0", "--tls-listen", "", "--api", "mail.test:80",
                timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--api: 'mail.test:80' is not an IP address", r.stderr)

    def test_a_server_with_nothing_to_listen_on_is_refused(self):
        r = run("serve", "--listen", "", "--tls-listen", "", "--api", "127.0.0.1:0", timeout=10)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("nothing to listen on: listen and tls_listen are both empty (--listen, "
                      "--tls-listen)", r.stderr)

    def test_an_empty_listener_string_in_the_file_is_none_as_in_flags(self):
        cfg = self.config_file("none.toml", 'listen = "127.0.0.1:0"\ntls_listen = ""\napi = ""\n')
        p = subprocess.Popen([binary_path(), "serve", "--config", cfg], text=True,
                             env=server_environment(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            banner = []
            for line in p.stdout:  # the banner ends with where messages are kept
                banner.append(line)
                if "messages " in line:
                    break
        finally:
            p.terminate()
            p.communicate(timeout=10)
        listening = [l.split()[1] for l in banner if "listening:" in l]
        self.assertEqual(listening, ["smtp"], "".join(banner))

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
            # An encrypted key: OpenSSL would ask a terminal for its passphrase and wait there.
            encrypted = os.path.join(d, "encrypted.key")
            subprocess.run(["openssl", "pkey", "-in", rsa_key, "-aes256", "-passout", "pass:pw",
                            "-out", encrypted], check=True, capture_output=True, timeout=60)
            r = run("serve", "--tls-cert", rsa_cert, "--tls-key", encrypted, timeout=10)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("--tls-key: %s is encrypted (it asks for a passphrase), which the "
                          "server cannot give" % encrypted, r.stderr)
            self.assertNotIn("pass phrase", r.stdout + r.stderr)

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

    def test_none_and_an_address_for_one_listener_are_refused_as_typed(self):
        # They were joined into ",ADDR" and refused as "empty item in list".
        r = run("serve", "--api", "", "--tls-listen", "", "--tls-listen", "127.0.0.1:1",
                timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--tls-listen '' (none) and --tls-listen 127.0.0.1:1 contradict each "
                      "other: give one", r.stderr)
        r = run("serve", "--api", "", "--tls-listen", "", "--set", "tls_listen=127.0.0.1:1",
                timeout=10)
        self.assertIn("--tls-listen '' (none) and --set tls_listen 127.0.0.1:1 contradict",
                      r.stderr)

    def test_a_flag_followed_by_another_flag_says_its_value_is_missing(self):
        # "--listen --tls-listen X" took --tls-listen for the address and X for a scenario.
        r = run("serve", "--listen", "--tls-listen", "127.0.0.1:1", timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("option --listen needs a value (--tls-listen after it is an option; a "
                      "value that starts with -- is given as --listen=VALUE)", r.stderr)
        r = run("test", "--junit", "--", "true", timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("option --junit needs a value (-- after it ends the options", r.stderr)

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
                                 (("test", "--scenario", folder, "--", "true"), 2)):
                r = run(*argv, timeout=20)
                self.assertEqual(r.returncode, status, (argv, r.stdout, r.stderr))
                self.assertIn(folder + ": is a directory", r.stdout + r.stderr)
            # Named by a bare word, a folder here is said to be one, not an unknown built-in.
            r = subprocess.run([binary_path(), "serve", "--scenario", os.path.basename(folder)],
                               cwd=os.path.dirname(folder), capture_output=True, text=True,
                               timeout=20, env=server_environment())
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("'%s': that is a directory here, not a scenario file (smtpfault test "
                          "--scenarios DIR" % os.path.basename(folder), r.stderr)
            # check takes a folder for its .lua files, as test --scenarios does, and run too.
            for argv, status in ((("check", folder), 1), (("check", "--client", folder), 1),
                                 (("run", folder), 2)):
                r = run(*argv, timeout=20)
                self.assertEqual(r.returncode, status, (argv, r.stdout, r.stderr))
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
            a_file = os.path.join(tmp, "file")
            open(a_file, "w").close()
            # /proc takes no new file even from root, whom access(2) lets through.
            for flag, path, why in (("--junit", os.path.join(a_file, "no", "r.xml"),
                                     "cannot make the directory %s/no" % a_file),
                                    ("--json", tmp, "is a directory"),
                                    ("--json", "/proc/r.json", "cannot create a file in /proc"),
                                    ("--json", "-", "a report goes to a file (standard output"
                                                    " has the table)")):
                r = run("test", "--scenario", "accept-all", flag, path, "--", "touch", marker,
                        timeout=30)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn("%s %s: %s" % (flag, path, why), r.stderr)
                self.assertFalse(os.path.exists(marker), "the command ran")
                # smtpfault run finds it out before it connects, too.
                r = run("run", "probe-conformance", "--target", "127.0.0.1:1", flag, path,
                        timeout=30)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn("%s %s: %s" % (flag, path, why), r.stderr)
                self.assertNotIn("connect", r.stderr + r.stdout)

    def test_a_reports_missing_folder_is_made(self):
        with tempfile.TemporaryDirectory() as tmp:
            junit = os.path.join(tmp, "reports", "ci", "smtpfault.xml")
            json_report = os.path.join(tmp, "json", "r.json")
            r = run("test", "--scenario", "accept-all", "--junit", junit, "--json", json_report,
                    "--", "true", timeout=30)
            self.assertEqual(r.returncode, 1, r.stderr)  # `true` sends no mail
            self.assertIn("<testsuite", open(junit, encoding="utf-8").read())
            with open(json_report, encoding="utf-8") as f:
                self.assertEqual(json.load(f)["results"][0]["scenario"], "accept-all")


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
        # Every command: send and run use none of the server's variables, but a slip in one
        # (or in theirs) is still named, not ignored.
        for cmd in (["send", "--server", "127.0.0.1:1", "--from", "a@x.test", "--to", "b@x.test"],
                    ["run", "probe-bdat", "--target", "127.0.0.1:1"],
                    ["check", "accept-all"], ["test", "--", "true"]):
            with self.subTest(cmd=cmd[0]):
                r = run(*cmd, env={"SMTPFAULT_SEDN_TO": "b@x.test"}, timeout=20)
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                self.assertIn("environment variable SMTPFAULT_SEDN_TO: unknown variable",
                              r.stderr)


if __name__ == "__main__":
    unittest.main()
