"""The command under `smtpfault test`: each scenario's run reads the same standard input, holds
no descriptor of the runner and gets the runner's addresses whatever the environment said; a
hanging command is killed with its whole process group at --timeout, and the report says why;
a command that crashes (also behind a shell), is killed or is interrupted is reported as such,
with its last lines in the table and the start and end of a long output in the report."""

import json
import os
import signal
import subprocess
import tempfile
import time
import unittest
from xml.etree import ElementTree

from smtpfault_server import binary_path, server_environment, write_file
from catalogue_case import (PYTHON, ROOT, assert_valid_junit, run_test, scratch_folder,
                            scratch_path, verdicts)


def lines_under(output, row_start, n):
    """The n lines the table shows under the row that begins with row_start, stripped."""
    lines = output.splitlines()
    row = next(i for i, l in enumerate(lines) if l.startswith(row_start))
    return [l.strip() for l in lines[row + 1:row + 1 + n]]


class StandardInputForEveryScenario(unittest.TestCase):
    """Every scenario's command reads the same standard input from its start, as a mailer fed
    with `< mail.eml` or through a pipe expects; with --jobs too."""
    SCENARIOS = ["--scenario", "accept-all", "--scenario", "no-8bitmime", "--scenario",
                 "greeting-554"]

    def outputs(self, stdin, *flags):
        json_path = scratch_path(self, "report.json")
        status, out, err = run_test(self.SCENARIOS + [*flags, "--json", json_path, "--", "sh",
                                    "-c", "printf 'read: '; cat"], stdin=stdin, timeout=60)
        self.assertEqual(status, 1, out + err)   # the command sends no mail: each one fails
        with open(json_path, encoding="utf-8") as f:
            return [r["command_output"] for r in json.load(f)["results"]], err

    def test_a_file_is_read_from_its_start_by_each(self):
        with tempfile.TemporaryFile() as f:
            f.write(b"Subject: same for all\n")
            f.seek(0)
            got, _ = self.outputs(f)
        self.assertEqual(got, ["read: Subject: same for all\n"] * 3)

    def test_a_pipe_is_copied_for_each_also_in_parallel(self):
        r, w = os.pipe()
        os.write(w, b"piped line\n")
        os.close(w)
        with os.fdopen(r, "rb") as pipe:
            got, _ = self.outputs(pipe, "--jobs", "3")
        self.assertEqual(got, ["read: piped line\n"] * 3)

    def test_a_pipe_that_pauses_is_waited_for_and_one_without_end_is_refused(self):
        # Sent something, then paused: waited for, with a note (a producer still at work).
        feeder = subprocess.Popen(["sh", "-c", "echo late; sleep 4; echo later"],
                                  stdout=subprocess.PIPE)
        self.addCleanup(feeder.wait)
        got, err = self.outputs(feeder.stdout)
        feeder.stdout.close()
        self.assertEqual(got, ["read: late\nlater\n"] * 3)
        self.assertIn("waiting for standard input to end: every scenario's command gets all "
                      "of it", err)
        # One that goes on and on is refused, not held in memory without bound.
        p = subprocess.run([binary_path(), "test", "--scenario", "accept-all", "--", "true"],
                           env=server_environment(), cwd=ROOT, capture_output=True, timeout=60,
                           input=b"y\n" * (33 * 1024 * 1024))
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn(b"standard input goes on past 64 MiB", p.stderr)

    def test_a_pipe_that_neither_sends_nor_ends_counts_as_empty(self):
        r, w = os.pipe()
        self.addCleanup(os.close, w)
        with os.fdopen(r, "rb") as pipe:
            got, err = self.outputs(pipe)
        self.assertEqual(got, ["read: "] * 3)
        self.assertIn("standard input is a pipe that neither sent nor ended in 3 s: the "
                      "commands get none, as with </dev/null", err)


class CommandsHoldNoDescriptorOfTheRunner(unittest.TestCase):
    def test_only_stdin_stdout_and_stderr_are_open_in_the_command(self):
        # A command holding a copy of a server's socket (another scenario's connection, with
        # --jobs) would keep it open after that server closed it.
        json_path = scratch_path(self, "report.json")
        run_test(["--scenario", "accept-all", "--scenario", "greeting-554", "--jobs", "2",
                  "--json", json_path, "--", "sh", "-c", "ls /proc/$$/fd"], timeout=60)
        with open(json_path, encoding="utf-8") as f:
            outputs = [r["command_output"] for r in json.load(f)["results"]]
        self.assertEqual(outputs, ["0\n1\n2\n"] * 2)


class AddressVariablesAreTheRunners(unittest.TestCase):
    def test_listen_and_api_variables_are_not_read(self):
        # Where each scenario's server listens is the runner's choice: a value meant for
        # something else is no mistake, and the command still gets the runner's own.
        env = server_environment({"SMTPFAULT_API": "http://127.0.0.1:8025",
                                  "SMTPFAULT_LISTEN": "nonsense"})
        p = subprocess.run([binary_path(), "test", "--scenario", "accept-all", "--", "sh", "-c",
                            'echo "api=$SMTPFAULT_API"'], env=env, cwd=ROOT, capture_output=True,
                           text=True, timeout=60, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)   # it sent no mail: a FAIL
        self.assertRegex(p.stdout, r"api=127\.0\.0\.1:\d+")


class CredentialsForTheCommand(unittest.TestCase):
    # Logs in with what it is given, over TLS, and delivers: as an app configured by SMTP_USER.
    MAILER = ("import os, smtplib, ssl\n"
              "s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
              "s.starttls(context=ssl.create_default_context(cafile=os.environ['SMTP_CA_FILE']))\n"
              "print('user=' + os.environ['SMTP_USER'])\n"
              "s.login(os.environ['SMTP_USER'], os.environ['SMTP_PASSWORD'])\n"
              "s.sendmail('a@x.test', ['b@y.test'], b'Subject: x\\r\\n\\r\\nhi\\r\\n')\n"
              "s.quit()\n")

    def test_a_pair_by_default_and_the_first_configured_user_when_there_are_users(self):
        json_path = scratch_path(self, "auth.json")
        status, out, err = run_test(["--scenario", "accept-all", "--json", json_path, "--",
                                     PYTHON, "-c", self.MAILER], timeout=60)
        self.assertEqual(status, 0, out + err)
        self.assertIn("user=mailer@smtpfault.test", verdicts(json_path)["accept-all"]["command_output"])
        # Only these users are taken now: the first one's pair is what the command gets.
        status, out, err = run_test(["--scenario", "accept-all", "--set", "auth.users=ann:pw-ann",
                                     "--set", "auth.users=bob:pw-bob", "--json", json_path, "--",
                                     PYTHON, "-c", self.MAILER], timeout=60)
        self.assertEqual(status, 0, out + err)
        result = verdicts(json_path)["accept-all"]
        self.assertIn("user=ann", result["command_output"])
        self.assertIn("235", result["transcript"])


class SessionsDeletedDuringARun(unittest.TestCase):
    def test_the_restarted_scenario_keeps_the_run_number(self):
        # DELETE /api/v1/sessions loads the scenario again; s.run still says which run it is.
        tmp = scratch_folder(self)
        scenario = write_file(tmp, "runs.lua",
                              "function on_mail(s, mail)\n"
                              "  return smtp.reply(250, '2.1.0', 'run=' .. tostring(s.run))\n"
                              "end\n"
                              "expect { runs = 2, exit = 'success' }\n")
        mailer = ("import os, smtplib, urllib.request\n"
                  "urllib.request.urlopen(urllib.request.Request('http://%s/api/v1/sessions' % "
                  "os.environ['SMTPFAULT_API'], method='DELETE')).read()\n"
                  "s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
                  "s.ehlo(); print(s.mail('a@x.test')); s.quit()\n")
        json_path = os.path.join(tmp, "report.json")
        status, out, err = run_test(["--scenario", scenario, "--json", json_path, "--",
                                     PYTHON, "-c", mailer], timeout=60)
        self.assertEqual(status, 0, out + err)
        output = verdicts(json_path)["runs"]["command_output"]
        self.assertIn("(250, b'2.1.0 run=1')", output)
        self.assertIn("(250, b'2.1.0 run=2')", output)


class WaivedChecks(unittest.TestCase):
    # A mailer whose library closes without QUIT (nodemailer's does, after every message).
    NO_QUIT = ("import os, smtplib\n"
               "s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
               "s.sendmail('a@x.test', ['b@y.test', 'c@y.test'], b'Subject: x\\r\\n\\r\\nhi\\r\\n')\n"
               "s.close()\n")
    SCENARIOS = ["--scenario", "accept-all", "--scenario", "no-pipelining", "--scenario",
                 "bare-lf", "--time-scale", "0.02"]

    def test_a_check_failed_everywhere_is_said_once_and_can_be_waived(self):
        json_path = scratch_path(self, "waived.json")
        status, out, err = run_test(self.SCENARIOS + ["--", PYTHON, "-c", self.NO_QUIT])
        self.assertEqual(status, 1, out + err)
        self.assertIn("quit failed in 3 scenarios: the mailer closes without QUIT (RFC 5321 "
                      "4.1.1.10); where its library cannot be changed, --waive quit sets that "
                      "aside in every scenario", out)
        junit = scratch_path(self, "waived.xml")
        status, out, err = run_test(self.SCENARIOS + ["--waive", "quit", "--json", json_path,
                                                      "--junit", junit,
                                                      "--", PYTHON, "-c", self.NO_QUIT])
        self.assertEqual(status, 0, out + err)
        self.assertNotIn("--waive quit", out)
        # JUnit has no failure to carry it on a passing case: the case's output begins with
        # it, and the suite's properties name what was waived (valid by the CI schema, which
        # has no properties inside a case).
        assert_valid_junit(self, junit)
        suite = ElementTree.parse(junit).getroot().find("testsuite")
        self.assertIn(("waived", "quit"), [(p.get("name"), p.get("value"))
                                           for p in suite.find("properties")])
        for case in suite.iter("testcase"):
            self.assertRegex(case.find("system-out").text,
                             r"^PASS: all expectations held but the waived quit\nwaived quit: "
                             r"expected QUIT before closing; [^\n]*without QUIT", case.get("name"))
        for name, result in verdicts(json_path).items():
            self.assertEqual(result["verdict"], "PASS", name)
            self.assertEqual(result["reason"], "all expectations held but the waived quit")
            quit = [c for c in result["checks"] if c["name"] == "quit"][0]
            # Still run and reported as it went.
            self.assertEqual((quit["passed"], quit.get("waived")), (False, True), quit)
            self.assertIn("without QUIT", quit["detail"])
        # A waived check decides nothing, the others still do: bare LFs fail bare-lf.
        lf = self.NO_QUIT.replace("\\r\\n", "\\n")
        status, out, err = run_test(["--scenario", "bare-lf", "--waive", "quit", "--json",
                                     json_path, "--", PYTHON, "-c", lf])
        self.assertEqual(status, 1, out + err)
        self.assertTrue(verdicts(json_path)["bare-lf"]["reason"].startswith("line_endings:"))

    def test_scenarios_failed_as_not_exercised_are_said_together(self):
        # The usual first run: one message to one recipient, which the recipient scenarios need
        # more of. Their FAILs found no fault, and the note under the table says so once.
        one = self.NO_QUIT.replace("['b@y.test', 'c@y.test']", "['b@y.test']").replace(
            "s.close()", "s.quit()")
        json_path = scratch_path(self, "unexercised.json")
        status, out, err = run_test(["--scenario", "multiline-replies", "--scenario",
                                     "too-many-recipients", "--scenario", "accept-all",
                                     "--time-scale", "0.02", "--json", json_path,
                                     "--", PYTHON, "-c", one])
        self.assertEqual(status, 1, out + err)
        note = ("2 scenarios failed as not exercised (multiline-replies, too-many-recipients): "
                "the mailer never did what they test")
        self.assertIn(note, out)
        with open(json_path, encoding="utf-8") as f:
            self.assertTrue(any(n.startswith(note) for n in json.load(f)["notes"]))

    def test_waived_checks_come_from_the_file_and_the_environment_and_are_checked(self):
        config = write_file(scratch_folder(self), "w.toml", '[test]\nwaive = ["qiut"]\n')
        status, out, err = run_test(["--config", config, "--", "true"])
        self.assertEqual(status, 2, out + err)
        self.assertIn("w.toml:2:10: key 'test.waive': 'qiut' is no check that can be "
                      "waived (did you mean 'quit'?)", err)
        # What the mailer decides is the point of its scenarios: not waived, left out.
        for decision in ("no_retry_after_5xx", "retried_after_4xx", "exit", "check"):
            status, out, err = run_test(["--waive", decision, "--", "true"])
            self.assertEqual(status, 2, out + err)
            self.assertIn("--waive: '%s' is no check that can be waived" % decision, err)
            self.assertIn("is the point of its scenarios: --exclude them instead", err)
        env = server_environment({"SMTPFAULT_TEST_WAIVE": "quit,pipelining"})
        p = subprocess.run([binary_path(), "test", "--scenario", "accept-all", "--time-scale",
                            "0.02", "--", PYTHON, "-c", self.NO_QUIT], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("all expectations held but the waived quit", p.stdout)


class StoreKey(unittest.TestCase):
    def test_the_store_key_keeps_each_scenarios_messages_in_a_folder_of_its_own(self):
        store = os.path.join(scratch_folder(self), "mail")
        for run in (1, 2):
            status, out, err = run_test(WaivedChecks.SCENARIOS[:4] + [
                "--time-scale", "0.02", "--set", "store=" + store, "--", PYTHON, "-c",
                WaivedChecks.NO_QUIT])
            self.assertEqual(status, 1, out + err)  # no QUIT: a FAIL, the messages kept
            for scenario in ("accept-all", "no-pipelining"):
                files = sorted(os.listdir(os.path.join(store, scenario)))
                # A second run adds its message beside the first one's.
                self.assertEqual([os.path.splitext(f)[1] for f in files], [".eml", ".json"] * run,
                                 files)
                with open(os.path.join(store, scenario, files[0]), "rb") as f:
                    self.assertEqual(f.read(), b"Subject: x\r\n\r\nhi\r\n")


class HangingCommand(unittest.TestCase):
    def killed_during_slow_final_reply(self, *flags):
        """slow-final-reply (the reply to the data held 75 s) with a patient swaks, killed by a
        2 s --timeout: the scenario's JSON result."""
        json_path = scratch_path(self, "report.json")
        status, out, err = run_test(
            ["--scenario", "slow-final-reply", "--timeout", "2", *flags, "--json", json_path,
             "--", "sh", "-c",
             'swaks --server "$SMTP_SERVER" --to a@x.test --timeout 300 >/dev/null'],
            timeout=60)
        self.assertEqual(status, 1, out + err)
        return verdicts(json_path)["slow-final-reply"]

    def test_a_timeout_during_a_hang_says_no_reply_comes_not_to_shrink_delays(self):
        tmp = scratch_folder(self)
        scenario = write_file(tmp, "hang.lua", "function on_rcpt(s, rcpt) return smtp.hang() end\n")
        json_path = os.path.join(tmp, "report.json")
        status, out, err = run_test(
            ["--scenario", scenario, "--timeout", "2", "--json", json_path, "--", "sh", "-c",
             'swaks --server "$SMTP_SERVER" --to a@x.test --timeout 300 >/dev/null'], timeout=60)
        self.assertEqual(status, 1, out + err)
        reason = verdicts(json_path)["hang"]["reason"]
        self.assertIn("it was waiting for the reply to 'RCPT TO:<a@x.test>' (session 000001), "
                      "which the scenario never sends (it hangs): the mailer must give up by "
                      "itself before --timeout (2 s; if its own read timeout is as long or "
                      "longer, give --timeout more to see what it does when that ends the wait)",
                      reason)
        self.assertNotIn("--time-scale", reason)

    def test_a_timeout_after_a_malformed_greeting_says_what_came_instead(self):
        # The garbage went out: "waiting for the greeting" would send the user looking for a
        # server that said nothing.
        tmp = scratch_folder(self)
        scenario = write_file(tmp, "garbled.lua",
                              'function on_connect(s) return smtp.malformed("garbage") end\n')
        json_path = os.path.join(tmp, "report.json")
        client = ("import os, socket\n"
                  "c = socket.create_connection((os.environ['SMTP_HOST'], "
                  "int(os.environ['SMTP_PORT'])))\n"
                  "while c.recv(100): pass\n")
        status, out, err = run_test(["--scenario", scenario, "--timeout", "2", "--json",
                                     json_path, "--", PYTHON, "-c", client], timeout=60)
        self.assertEqual(status, 1, out + err)
        reason = verdicts(json_path)["garbled"]["reason"]
        self.assertRegex(reason, r"; in place of the greeting it got a malformed line \('.+'\) "
                                 r"and was still waiting for a reply \(session 000001\)$")

    def test_a_timeout_of_a_silent_command_says_where_it_stopped(self):
        # Never connected; or connected, said EHLO and then nothing: the server waited for it.
        json_path = scratch_path(self, "silent.json")
        client = ("import os, smtplib, time\n"
                  "s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
                  "s.ehlo('quiet.test')\n"
                  "time.sleep(30)\n")
        # Stalled in the message text: it was sending, not waiting on the reply to DATA.
        in_data = client.replace("time.sleep", "s.mail('a@x.test'); s.rcpt('b@y.test')\n"
                                 "s.putcmd('DATA'); s.getreply()\n"
                                 "s.send(b'Subject: x\\r\\n\\r\\n' + b'y' * 100)\n"
                                 "time.sleep")
        # LF line ends, and "\n.\n" for the end: it waits for a reply to data that never ended.
        lf_data = client.replace("time.sleep", "s.mail('a@x.test'); s.rcpt('b@y.test')\n"
                                 "s.putcmd('DATA'); s.getreply()\n"
                                 "s.send(b'Subject: x\\n\\nbody\\n.\\n')\n"
                                 "time.sleep")
        # Nothing of the text at all: it stopped right after the 354.
        no_text = client.replace("time.sleep", "s.mail('a@x.test'); s.rcpt('b@y.test')\n"
                                 "s.putcmd('DATA'); s.getreply()\n"
                                 "time.sleep")
        for command, said in ((["sleep", "30"], "; it never connected to the server"),
                              ([PYTHON, "-c", no_text], "; it had sent nothing since the reply "
                               "to 'DATA' (session 000001)"),
                              ([PYTHON, "-c", in_data], "; it stopped in the middle of the "
                               "message text, 114 octets into it, and sent no more (session "
                               "000001)"),
                              ([PYTHON, "-c", lf_data], "; it stopped in the middle of the "
                               "message text, 19 octets into it, and sent no more (session "
                               "000001); its text had a bare LF (bare_lf at offset 10), and a "
                               "line \".\" after one does not end the data: only CRLF \".\" "
                               "CRLF does (RFC 5321 4.1.1.4)"),
                              ([PYTHON, "-c", client], "; it had sent nothing since the reply "
                                                       "to 'ehlo quiet.test' (session 000001)")):
            status, out, err = run_test(["--scenario", "accept-all", "--timeout", "1", "--json",
                                         json_path, "--"] + command, timeout=60)
            self.assertEqual(status, 1, out + err)
            reason = verdicts(json_path)["accept-all"]["reason"]
            self.assertEqual(reason, "timeout: the command was killed after 1 s" + said)

    def test_a_timeout_after_the_last_connection_ended_says_how_it_ended(self):
        # The command outlived its connection: the reason says who ended it, and how.
        json_path = scratch_path(self, "outlived.json")
        connect = ("import os, smtplib, socket, time\n"
                   "s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n")
        quit_then_wait = connect + "s.ehlo('x.test'); s.quit()\ntime.sleep(30)\n"
        # STARTTLS answered, then no handshake: the server gives up on it after 1 s.
        no_handshake = connect + ("s.ehlo('x.test'); print(s.docmd('STARTTLS'), flush=True)\n"
                                  "time.sleep(30)\n")
        # The first connection's greeting is a 421; the mailer neither retries nor exits.
        after_421 = ("import os, socket, time\n"
                     "c = socket.create_connection((os.environ['SMTP_HOST'], "
                     "int(os.environ['SMTP_PORT'])))\n"
                     "print(c.recv(512), flush=True)\ntime.sleep(30)\n")
        refuses_certificate = ["sh", "-c", "echo | openssl s_client -starttls smtp -connect "
                               '"$SMTP_SERVER" -verify_return_error -CAfile '
                               "/etc/ssl/certs/ca-certificates.crt; sleep 30"]
        ago = r"\d+\.\d s before"
        for scenario, client, said in (
                ("accept-all", quit_then_wait,
                 "; it had ended its last session \\(session 000001\\) with QUIT " + ago),
                ("accept-all", no_handshake,
                 "; the server had closed its last connection \\(session 000001\\) " + ago +
                 ", when the TLS handshake after 'STARTTLS' did not complete in time"),
                ("greeting-421", after_421,
                 "; the server had closed its last connection \\(session 000001\\) " + ago +
                 ", after '421 4\\.3\\.2 .*'"),
                # The client refused the certificate (an alert): not said to be the server's end.
                ("accept-all", refuses_certificate,
                 "; its last connection \\(session 000001\\) had ended " + ago + ", when the "
                 "TLS handshake after 'STARTTLS' failed: tlsv1 alert unknown ca.*")):
            command = client if isinstance(client, list) else [PYTHON, "-c", client]
            status, out, err = run_test(["--scenario", scenario, "--timeout", "3", "--set",
                                         "tls_handshake_timeout=1", "--json", json_path, "--"] +
                                        command, timeout=60)
            self.assertEqual(status, 1, out + err)
            reason = verdicts(json_path)[scenario]["reason"]
            self.assertRegex(reason, "^timeout: the command was killed after 3 s" + said +
                             ", and the command went on running$")

    def test_a_timeout_in_a_later_run_speaks_of_that_run(self):
        # quit-variants runs the command three times; the 2nd sleeps before it connects. Run
        # 1's session, ended with QUIT, is not the one to blame.
        counter = scratch_path(self, "runs")
        json_path = scratch_path(self, "later.json")
        mailer = ("n=$(( $(cat %s 2>/dev/null || echo 0) + 1 )); echo $n > %s; "
                  '[ $n -eq 2 ] && sleep 30; swaks --server "$SMTP_SERVER" --to b@y.test'
                  % (counter, counter))
        status, out, err = run_test(["--scenario", "quit-variants", "--time-scale", "0.02",
                                     "--timeout", "3", "--json", json_path, "--", "sh", "-c",
                                     mailer], timeout=90)
        self.assertEqual(status, 1, out + err)
        # Run 3's QUIT is the second, never answered: swaks waits past the timeout there too.
        self.assertEqual(verdicts(json_path)["quit-variants"]["reason"],
                         "timeout: the command was killed after 3 s; run 2 never connected to the "
                         "server; also check: run 3 (QUIT never answered) delivered the message "
                         "once and was killed at the timeout, still waiting (a read timeout of its "
                         "own, shorter than --timeout, ends that): the message was accepted at the "
                         "250 after the data, and a broken QUIT does not undo that")

    def test_a_timeout_while_the_scenario_holds_a_reply_says_so(self):
        # Killed at 2 s, the mailer was waiting for the server, and the reason says how to give
        # it the time.
        result = self.killed_during_slow_final_reply()
        reason = result["reason"]
        self.assertIn("timeout: the command was killed after 2 s; it was waiting for the reply "
                      "to '<end of data>' (session 000001)", reason)
        self.assertIn("--time-scale", reason)
        # Stored, but its 250 never left: not delivered as the client knows it.
        checks = {c["name"]: c for c in result["checks"]}
        self.assertFalse(checks["delivered"]["passed"], checks["delivered"])
        self.assertIn("got 0", checks["delivered"]["detail"])

    def test_a_held_reply_is_named_whatever_the_time_scale(self):
        # Scaled to 7.5 s, the 75 s delay still outlasts a 2 s --timeout: the reason must say
        # that the scenario held the reply, not only blame the mailer.
        reason = self.killed_during_slow_final_reply("--time-scale", "0.1")["reason"]
        self.assertIn("which the scenario was holding back: give --timeout more than its delay "
                      "(scaled by --time-scale 0.1)", reason)

    def quit_variants_with(self, goodbye):
        """quit-variants at a 3 s --timeout against an smtplib mailer without a timeout of its
        own that sends one message and then runs `goodbye`: the scenario's JSON result."""
        json_path = scratch_path(self, "report.json")
        client = ("import os, smtplib\n"
                  "s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
                  "s.sendmail('a@x.test', ['b@x.test'], b'Subject: x\\r\\n\\r\\nhi\\r\\n')\n"
                  + goodbye)
        status, out, err = run_test(
            ["--scenario", "quit-variants", "--time-scale", "0.02", "--timeout", "3",
             "--json", json_path, "--", PYTHON, "-c", client], timeout=90)
        self.assertEqual(status, 1, out + err)
        return verdicts(json_path)["quit-variants"]

    def test_the_session_named_is_the_killed_run_s(self):
        # quit-variants runs the command three times; the 2nd QUIT is never answered, and a
        # client without a timeout of its own is killed there (smtplib sends it as 'quit').
        # The 3rd run's QUIT also gets no reply (the server closes), but nothing waited on it.
        r = self.quit_variants_with("try:\n    s.quit()\nexcept Exception:\n    pass\n")
        self.assertEqual(r["exit_codes"][1], -1, r)
        self.assertIn("it was waiting for the reply to 'quit' (session 000002)", r["reason"])
        # The scenario's own check says it too, as killed rather than as a status of -1.
        check = [c["detail"] for c in r["checks"] if c["name"] == "check"]
        self.assertEqual(len(check), 1, r)
        self.assertIn("run 2 (QUIT never answered) delivered the message once and was killed at "
                      "the timeout", check[0])

    def test_a_timeout_keeps_what_another_run_did_wrong(self):
        # As above, but the 3rd run reports failure after the message was accepted (the close
        # without 221): the kill in run 2 leads, and run 3's mistake is not lost behind it.
        r = self.quit_variants_with("s.quit()\n")
        self.assertEqual(r["exit_codes"][1:], [-1, 1], r)
        self.assertRegex(r["reason"], r"^timeout: the command was killed after 3 s; it was "
                         r"waiting for the reply to 'quit' \(session 000002\).*; also check: "
                         r"run 2 \(QUIT never answered\) .*; run 3 \(a close without 221\) "
                         r"delivered the message once and exited 1")

    def test_timeout_kills_the_process_group(self):
        tmp = scratch_folder(self)
        pidfile = os.path.join(tmp, "child.pid")
        json_path = os.path.join(tmp, "report.json")
        script = "sleep 30 & echo $! > %s; sleep 30" % pidfile
        started = time.monotonic()
        status, out, err = run_test(["--scenario", "accept-all", "--timeout", "1", "--json",
                                     json_path, "--", "sh", "-c", script], timeout=60)
        elapsed = time.monotonic() - started
        self.assertEqual(status, 1, out + err)
        self.assertLess(elapsed, 15)
        with open(pidfile) as f:
            child = int(f.read().strip())
        deadline = time.monotonic() + 5
        while os.path.exists("/proc/%d" % child) and time.monotonic() < deadline:
            time.sleep(0.05)
        alive = os.path.exists("/proc/%d" % child)
        if alive:
            with open("/proc/%d/stat" % child) as f:
                alive = f.read().split(") ")[1].split()[0] != "Z"   # a zombie is dead
        self.assertFalse(alive, "the background child %d outlived the timeout" % child)
        r = verdicts(json_path)["accept-all"]
        self.assertEqual(r["verdict"], "FAIL")
        self.assertIn("timeout", r["reason"])
        self.assertEqual(r["exit_codes"], [-1])
        table_line = [l for l in out.splitlines() if l.startswith("accept-all")][0]
        self.assertIn("timeout", table_line)

    def test_what_left_the_process_group_is_ended_too(self):
        # A daemon (setsid: a session and group of its own) escapes the group's kill; it comes
        # to the runner when its parent exits, and is ended with the run of its command. The
        # second scenario's command starts only after the first's was ended and checks that.
        tmp = scratch_folder(self)
        pidfile = os.path.join(tmp, "daemon.pid")
        script = ("if [ -s {p} ]; then ! kill -0 $(cat {p}) 2>/dev/null || exit 7; "
                  "else setsid sleep 300 & echo $! > {p}; fi").format(p=pidfile)
        json_path = os.path.join(tmp, "report.json")
        status, out, err = run_test(["--scenario", "accept-all", "--scenario", "greeting-554",
                                     "--jobs", "1", "--json", json_path, "--", "sh", "-c",
                                     script], timeout=60)
        with open(pidfile) as f:
            daemon = int(f.read().strip())
        alive = os.path.exists("/proc/%d" % daemon)
        if alive:
            os.kill(daemon, signal.SIGKILL)
        self.assertFalse(alive, "the daemon %d outlived the run" % daemon)
        self.assertEqual([r["exit_codes"] for r in json.load(open(json_path))["results"]],
                         [[0], [0]], out + err)

    def test_a_delivery_left_in_the_background_is_named_in_the_reason(self):
        # It exits 0 at once and its background job, ended with it, never connects: the reason
        # says what became of it. A job already done when it exits is nothing left behind.
        tmp = scratch_folder(self)
        json_path = os.path.join(tmp, "report.json")
        said = ("; it left processes running when it exited, and they were ended with it (a "
                "delivery in the background must be waited for)")
        for script, left in [("(sleep 5; swaks --server \"$SMTP_SERVER\") & exit 0", True),
                             ("setsid sleep 5 & exit 0", True),
                             ("true & sleep 0.5; exit 0", False)]:
            status, out, err = run_test(["--scenario", "accept-all", "--json", json_path, "--",
                                         "sh", "-c", script], timeout=60)
            reason = verdicts(json_path)["accept-all"]["reason"]
            self.assertEqual(reason, "connected: expected the client to connect; it never did "
                                     "(exit status 0)" + (said if left else ""), script)

    def test_a_scenario_given_twice_is_one_junit_case(self):
        junit = scratch_path(self, "twice.xml")
        status, out, err = run_test(["--scenario", "accept-all", "--scenario", "accept-all",
                                     "--junit", junit, "--", "sh", "-c",
                                     'swaks --server "$SMTP_SERVER" --to a@x.test >/dev/null'],
                                    timeout=60)
        self.assertEqual(status, 0, out + err)
        import xml.etree.ElementTree as ET
        names = [c.get("name") for c in ET.parse(junit).getroot().iter("testcase")]
        self.assertEqual(names, ["accept-all"])

    def accept_all_with(self, mailer, *flags):
        """`test --scenario accept-all` with a Python mailer given as text: (status, the
        scenario's JSON result, output)."""
        json_path = scratch_path(self, "report.json")
        status, out, err = run_test(["--scenario", "accept-all", *flags, "--json", json_path,
                                     "--", PYTHON, "-c", mailer], timeout=60)
        return status, verdicts(json_path)["accept-all"], out + err

    def test_a_mailer_killed_in_a_command_loop_is_not_said_to_wait(self):
        # NOOP after NOOP until the kill: busy, not silent.
        loop = ("import os, smtplib\n"
                "s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
                "while True:\n"
                "    s.noop()\n")
        status, r, output = self.accept_all_with(loop, "--timeout", "1")
        self.assertEqual(status, 1, output)
        self.assertRegex(r["reason"], r"^timeout: the command was killed after 1 s; it was still "
                                      r"sending commands: its last, 'noop', came 0\.\d+ s before "
                                      r"the kill \(session 000001\), so it was going round a loop")

    def test_a_missing_quit_does_not_hide_what_the_server_noted(self):
        # Bare CRs in the text and no QUIT: mending the QUIT alone would only uncover them.
        mailer = ("import os, smtplib\n"
                  "s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
                  "s.sendmail('a@example.com', ['b@example.com'], b'Subject: x\\r\\r\\n\\r\\r\\nbody\\r\\r\\n')\n"
                  "s.close()\n")
        status, r, output = self.accept_all_with(mailer)
        self.assertEqual(status, 1, output)
        self.assertRegex(r["reason"], r"^quit: expected QUIT before closing; .*; the server also "
                                      r"noted 3 anomalies, the first: bare_cr at offset 10 ")

    def test_a_killed_mailer_is_not_credited_with_a_quit(self):
        # Its connection ends when it dies; the run must see that end, not stop the server
        # first and count the shutdown's 421 as the server ending the session.
        hang = ("import os, socket, time\n"
                "env = os.environ\n"
                "s = socket.create_connection((env['SMTP_HOST'], int(env['SMTP_PORT'])))\n"
                "s.recv(1000)\ntime.sleep(30)\n")
        status, r, output = self.accept_all_with(hang, "--timeout", "1")
        self.assertEqual(status, 1, output)
        checks = {c["name"]: c for c in r["checks"]}
        self.assertFalse(checks["quit"]["passed"], checks["quit"])
        self.assertIn("closed after the greeting (220) without QUIT", checks["quit"]["detail"])

    def test_a_crash_is_the_headline_and_exit_is_not_the_reason_given(self):
        crash = ("import os, signal, smtplib\n"
                 "s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
                 "s.ehlo()\nos.kill(os.getpid(), signal.SIGSEGV)\n")
        status, r, output = self.accept_all_with(crash)
        self.assertEqual(status, 1, output)
        self.assertTrue(r["reason"].startswith("the command was killed by signal 11"), r)
        # A mailer that delivers and then reports failure fails the baseline too.
        liar = ("import os, smtplib, sys\n"
                "s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
                "s.sendmail('a@x.test', ['b@y.test'], b'Subject: x\\r\\n\\r\\nhi\\r\\n')\n"
                "s.quit()\nsys.exit(1)\n")
        status, r, output = self.accept_all_with(liar)
        self.assertEqual(status, 1, output)
        self.assertIn("exit: expected exit status success, got 1", r["reason"])

    def test_the_table_shows_the_last_lines_a_failing_command_printed(self):
        # Often the cause (a refusal the mailer quoted); escape sequences are shown, not run.
        talker = ("import sys\nprint('line one')\nprint('\u00e9' * 300)\n"
                  "print('smtp: 500 5.5.2 Line too long \\x1b[31m \\x7f \\u009b')\n"
                  "sys.exit(26)\n")
        status, r, output = self.accept_all_with(talker)
        self.assertEqual(status, 1, output)
        # Cut at a character boundary (200 octets of two-octet characters); C0, DEL and C1
        # controls shown as '?'.
        self.assertEqual(lines_under(output, "accept-all  FAIL", 3),
                         ["| line one", "| " + "\u00e9" * 100 + "...",
                          "| smtp: 500 5.5.2 Line too long ?[31m ? ?"], output)
        self.assertIn("in --json or --junit", output)
        # A passing scenario shows no output.
        status, r, output = self.accept_all_with(
            "import os, smtplib\nprint('sent fine')\n"
            "s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
            "s.sendmail('a@x.test', ['b@y.test'], b'Subject: x\\r\\n\\r\\nhi\\r\\n')\ns.quit()\n")
        self.assertEqual(status, 0, output)
        self.assertNotIn("sent fine", output)

    def test_the_lines_shown_of_a_crash_are_its_error_not_its_stack_frames(self):
        # Ruby, Java and Node.js print the error first and its frames after it: the last lines
        # would be frames only. The frames are left out and counted.
        crash = ("import sys\nprint('delivering')\n"
                 "print(\"naive.rb:9:in `deliver': end of file reached (EOFError)\")\n"
                 "print(\"\\tfrom /usr/lib/ruby/mail/message.rb:262:in `deliver'\")\n"
                 "print('        at com.example.Mailer.send(Mailer.java:42)')\n"
                 "print('\\t... 3 more')\n"
                 "print('  at most 3 tries were made')\nsys.exit(1)\n")
        status, r, output = self.accept_all_with(crash)
        self.assertEqual(status, 1, output)
        self.assertEqual(lines_under(output, "accept-all  FAIL", 4),
                         ["| delivering",
                          "| naive.rb:9:in `deliver': end of file reached (EOFError)",
                          "|   at most 3 tries were made",
                          "| (3 stack-trace lines not shown)"], output)
        # The reports keep the output whole.
        self.assertIn("Mailer.java:42", r["command_output"])

    def test_the_lines_shown_of_a_command_run_several_times_name_their_run(self):
        # starttls-bad-cert runs the command five times; its reason may be about any of them.
        status, out, err = run_test(["--scenario", "starttls-bad-cert", "--", "sh", "-c",
                                     "echo one; echo two"], timeout=60)
        self.assertEqual(status, 1, out + err)
        self.assertEqual(lines_under(out, "starttls-bad-cert  FAIL", 3),
                         ["| --- run 5", "| one", "| two"], out)
        # The reason names run 2 of 3 (it delivered, then reported failure): its lines are the
        # ones shown, not the last run's.
        counter = scratch_path(self, "runs")
        status, out, err = run_test(
            ["--scenario", "quit-variants", "--time-scale", "0.02", "--", "sh", "-c",
             'n=$(( $(cat %s 2>/dev/null || echo 0) + 1 )); echo $n > %s; '
             'swaks --server "$SMTP_SERVER" --to b@y.test --timeout 2 >/dev/null 2>&1; '
             'echo "run $n said"; [ $n -ne 2 ]' % (counter, counter)], timeout=60)
        self.assertEqual(status, 1, out + err)
        self.assertIn("run 2 (", next(l for l in out.splitlines()
                                      if l.startswith("quit-variants  FAIL")), out)
        self.assertEqual(lines_under(out, "quit-variants  FAIL", 2),
                         ["| --- run 2", "| run 2 said"], out)

    def test_a_reason_quoting_wire_bytes_is_escaped_whole_and_the_junit_stays_xml(self):
        # As a TLS client on the plain port sends them (its ClientHello holds NULs): a NUL in the
        # quoted command once cut the table's line there, and an escape sequence reached the
        # terminal.
        talker = ("import os, socket\n"
                  "s = socket.create_connection((os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT'])))\n"
                  "s.recv(1000)\ns.sendall(b'NOOP a\\x00b\\x1b[2J\\xef\\xbf\\xbe\\r\\n')\n"
                  "s.recv(1000)\nprint('out \\ufffe')\n")
        junit = scratch_path(self, "report.xml")
        status, r, output = self.accept_all_with(talker, "--junit", junit)
        self.assertEqual(status, 1, output)
        row = next(l for l in output.splitlines() if l.startswith("accept-all  FAIL"))
        self.assertIn("closed after 'NOOP a\\x00b\\x1b[2J\\xef\\xbf\\xbe'", row)
        self.assertIn("without QUIT", row)
        self.assertNotIn("\x1b[2J", output)
        # U+FFFE is no XML character: it once made the report unreadable.
        suite = ElementTree.parse(junit).getroot().find("testsuite")
        # The same words in the table, the JSON and the JUnit report: escaped once, at the source.
        reason = row[len("accept-all  FAIL    "):]
        self.assertEqual(r["reason"], reason)
        self.assertEqual(suite.find("testcase/failure").get("message"), reason)

    def test_the_reports_keep_what_the_command_printed_and_escape_odd_names(self):
        # A CR in the command's output reaches the JUnit reader as a CR, not as a line end; a
        # scenario file's name with a control in it is escaped as the transcript's words are.
        folder = scratch_folder(self)
        odd = write_file(folder, "odd\x1bname.lua", "expect { exit = 'success' }\n")
        junit = os.path.join(folder, "report.xml")
        status, out, err = run_test(["--scenario", odd, "--junit", junit, "--", PYTHON, "-c",
                                     "print('50%\\r100%')"], timeout=60)
        self.assertEqual(status, 1, out + err)   # it never connects
        self.assertNotIn("\x1b", out + err)
        self.assertIn("odd\\x1bname  FAIL", out)
        case = ElementTree.parse(junit).getroot().find("testsuite/testcase")
        self.assertEqual(case.get("name"), "odd\\x1bname")
        self.assertEqual(case.find("system-err").text, "50%\r100%\n")

    def test_a_crash_behind_a_shell_is_a_crash_too(self):
        # A wrapper script or `sh -c` reports its child's SIGSEGV as exit status 139: greeting-521
        # expects a failure, and a segfault after the 521 must not pass as one.
        crash = ("import os, signal, socket\n"
                 "s = socket.create_connection((os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT'])))\n"
                 "s.recv(1000)\nos.kill(os.getpid(), signal.SIGSEGV)\n")
        wrapped = ["sh", "-c", '"$0" -c "$1"; status=$?; exit $status', PYTHON, crash]
        json_path = scratch_path(self, "report.json")
        status, out, err = run_test(["--scenario", "greeting-521", "--json", json_path, "--",
                                     *wrapped], timeout=60)
        self.assertEqual(status, 1, out + err)
        r = verdicts(json_path)["greeting-521"]
        self.assertEqual(r["verdict"], "FAIL", r)
        self.assertTrue(r["reason"].startswith("the command was killed by signal 11"), r)
        self.assertEqual(r["exit_codes"], [139], r)
        checks = {c["name"]: c for c in r["checks"]}
        self.assertIn("(a crash is not a reported failure)", checks["exit"]["detail"])
        # A deliberate status above 128 that is not a crash's (130 after SIGINT) stays a failure.
        status, out, err = run_test(["--scenario", "greeting-521", "--json", json_path, "--",
                                     "sh", "-c", '"$0" -c "$1"; exit 130', PYTHON,
                                     crash.replace("os.kill(os.getpid(), signal.SIGSEGV)",
                                                   "s.sendall(b'QUIT\\r\\n'); s.recv(1000)")],
                                    timeout=60)
        r = verdicts(json_path)["greeting-521"]
        self.assertEqual(r["verdict"], "PASS", (r, out, err))

    def test_an_interrupted_run_ends_the_command_and_all_it_started(self):
        # The command leads its own process group, out of reach of a Ctrl-C or a CI cancel.
        for sig, status in ((signal.SIGTERM, -signal.SIGTERM), (signal.SIGINT, -signal.SIGINT)):
            tmp = scratch_folder(self)
            pidfile = os.path.join(tmp, "pids")
            # It delivers first: what it did holds up, but the run was cut short all the same.
            # Its trap shows that it got a SIGTERM, and a moment to clean up, before the SIGKILL.
            cleaned = os.path.join(tmp, "cleaned")
            script = ("swaks --server \"$SMTP_SERVER\" --to a@x.test >/dev/null; "
                      "trap 'echo yes > %s; exit 1' TERM; "
                      "sleep 30 & echo $$ $! > %s; wait $!" % (cleaned, pidfile))
            junit = os.path.join(tmp, "report.xml")
            runner = subprocess.Popen([binary_path(), "test", "--scenario", "accept-all",
                                       "--scenario", "greylist", "--junit", junit,
                                       "--timeout", "60", "--", "sh", "-c", script],
                                      env=server_environment(), cwd=ROOT,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            deadline = time.monotonic() + 20
            while not read_text(pidfile).strip():
                self.assertLess(time.monotonic(), deadline, "the command never started")
                time.sleep(0.05)
            pids = [int(p) for p in read_text(pidfile).split()]
            runner.send_signal(sig)
            out, err = runner.communicate(timeout=20)
            self.assertEqual(runner.returncode, status)
            # What ran is reported, and the seed was printed before anything ran.
            name = signal.Signals(sig).name
            self.assertRegex(err.splitlines()[0], r"^smtpfault test: 2 scenario\(s\), seed \d+$")
            self.assertIn("interrupted by %s; the reports have what ran" % name, err)
            self.assertRegex(out, r"accept-all +ERROR +interrupted by %s" % name)
            self.assertRegex(out, r"greylist +ERROR +not run: interrupted by %s" % name)
            with open(junit) as f:
                report = f.read()
            self.assertIn('<error message="interrupted by %s"' % name, report)
            self.assertIn('<error message="not run: interrupted by %s"' % name, report)
            deadline = time.monotonic() + 5
            while any(alive(p) for p in pids) and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertFalse([p for p in pids if alive(p)], "outlived the interrupted run")
            self.assertTrue(os.path.exists(cleaned), "the command's TERM trap never ran")

    def test_the_test_ca_file_goes_with_an_interrupted_run(self):
        # Also after a second Ctrl-C, which ends the runner at once, with no destructor run.
        for signals in (1, 2):
            tmp = scratch_folder(self)
            started = os.path.join(tmp, "started")
            runner = subprocess.Popen(
                [binary_path(), "test", "--scenario", "accept-all", "--", "sh", "-c",
                 # Deaf to the SIGTERM: the runner waits a second before its SIGKILL, and
                 # the second signal comes meanwhile.
                 'trap "" TERM; echo "$SMTP_CA_FILE" > %s; sleep 30' % started],
                env=server_environment({"TMPDIR": tmp}), cwd=ROOT, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 20
            while not read_text(started).strip():
                self.assertLess(time.monotonic(), deadline, "the command never started")
                time.sleep(0.05)
            ca_file = read_text(started).strip()
            self.assertTrue(os.path.exists(ca_file), ca_file)
            for _ in range(signals):
                runner.send_signal(signal.SIGINT)
                time.sleep(0.1)
            runner.wait(timeout=20)
            self.assertFalse(os.path.exists(ca_file), "left after %d signal(s)" % signals)

    def test_a_long_output_keeps_its_end(self):
        # The mailer's last words say why it failed; a cap that kept only the start lost them.
        json_path = scratch_path(self, "report.json")
        talker = "import sys\nsys.stdout.write('x' * 3000000 + '\\nFINAL WORDS\\n')\n"
        status, out, err = run_test(["--scenario", "accept-all", "--json", json_path, "--",
                                     PYTHON, "-c", talker], timeout=60)
        output = verdicts(json_path)["accept-all"]["command_output"]
        self.assertTrue(output.startswith("xxxx"))
        self.assertIn("octets of output cut ...]", output)
        self.assertTrue(output.endswith("FINAL WORDS\n"), output[-100:])
        self.assertLess(len(output), 1024 * 1024 + 100)

    def test_an_endless_output_does_not_fill_the_disk(self):
        # What no report keeps is freed while the command runs; the file is in TMPDIR.
        tmp = scratch_folder(self)
        json_path = os.path.join(tmp, "report.json")
        talker = ("import os, sys, time\n"
                  "chunk = b'y\\n' * 65536\n"
                  "for _ in range(800): os.write(1, chunk)\n"  # 100 MiB
                  "time.sleep(0.3)\n"
                  "st = os.fstat(1)\n"
                  "print('size', st.st_size, 'allocated', st.st_blocks * 512)\n"
                  "print('file', os.readlink('/proc/self/fd/1'))\n")
        env = dict(server_environment(), TMPDIR=tmp)
        subprocess.run([binary_path(), "test", "--scenario", "accept-all", "--json", json_path,
                        "--", PYTHON, "-c", talker], env=env, capture_output=True, timeout=120)
        output = verdicts(json_path)["accept-all"]["command_output"]
        words = output.split("\n")[-3].split()
        self.assertEqual((words[0], words[1], words[2]), ("size", str(100 * 1024 * 1024),
                                                          "allocated"), output[-200:])
        self.assertLess(int(words[3]), 8 * 1024 * 1024, output[-200:])
        self.assertIn("file %s/smtpfault-output-" % tmp, output)


def alive(pid):
    """Whether the process exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def read_text(path):
    """The file's text, or "" while it does not exist yet."""
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


if __name__ == "__main__":
    unittest.main(verbosity=2)
