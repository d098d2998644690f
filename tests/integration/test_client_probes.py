"""`smtpfault run` with each built-in probe, against smtpfault's own server (strict default mode:
every probe passes) and against aiosmtpd 1.4.3 from Debian (python3-aiosmtpd
1.4.3-1.1+deb12u1, which carries the fixes for CVE-2024-27305 and CVE-2024-34083), whose
per-probe results are asserted as observed. Postfix's smtpd is not used: it cannot run without
its master process, queue and root-owned directories, so not unprivileged on a loopback port.
"""

import glob
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from smtpfault_server import (ServerTestCase, SmtpfaultServer, binary_path, server_environment,
                              server_with_scenario)
from aiosmtpd_target import AiosmtpdTarget, make_certificate
from lenient_server import LenientServer
from tls_breaker import TlsBreaker

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def run_probe(name, port, *extra, timeout=5):
    """Runs a probe with --json; returns (exit status, report dict, failed step names, stdout)."""
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        p = subprocess.run([binary_path(), "run", name, "--target", "127.0.0.1:%d" % port,
                            "--json", path, "--timeout", str(timeout), "--seed", "7", *extra],
                           capture_output=True, text=True, timeout=120,
                           env=server_environment())
        with open(path) as f:
            doc = json.load(f)
    finally:
        os.unlink(path)
    failed = [s["name"] for s in doc["steps"] if not s["passed"] and not s["skipped"]]
    return p.returncode, doc["report"], failed, p.stdout + p.stderr


class ProbesAgainstSmtpfault(ServerTestCase):
    """The strict default server passes every probe."""

    @classmethod
    def setUpClass(cls):
        cls.server = SmtpfaultServer().start()

    def probe(self, name, *extra):
        code, report, failed, out = run_probe(name, self.server.port, *extra)
        self.assertEqual(failed, [], out)
        self.assertEqual(code, 0, out)
        return report

    def test_smuggling_no_variant_ends_the_data(self):
        report = self.probe("probe-smuggling")
        self.assertEqual(len(report), 7)
        for variant, result in report.items():
            self.assertEqual(result, "not end of data", variant)
        # The canaries were never delivered as messages of their own.
        messages = self.server.messages()
        self.assertGreaterEqual(len(messages), 7)
        for m in messages:
            self.assertFalse(m.data.startswith(b"Subject: smuggled canary"), m.data[:80])

    def test_starttls_injection_is_discarded(self):
        self.assertEqual(self.probe("probe-starttls-injection"), {"injection": "discarded"})

    def test_long_lines_limits_are_enforced(self):
        for extra in [(), ("--param", "enforce=true")]:
            self.assertEqual(self.probe("probe-long-lines", *extra), {
                "command_511": 250, "command_512": 250, "command_513": 500,
                "text_999": 250, "text_1000": 250, "text_1001": 500})

    def test_enforce_takes_true_or_false(self):
        code, report, failed, out = run_probe("probe-long-lines", self.server.port,
                                              "--param", "enforce=yes")
        self.assertEqual(code, 2, out)
        self.assertIn("--param enforce=yes: expected true or false", out)

    def test_pipelining_groups_stay_in_step(self):
        self.assertEqual(self.probe("probe-pipelining"),
                         {"pipelining": "offered", "group1": "250 250 501 354",
                          "group2": "250 250 501 503"})

    def test_auth_limits(self):
        report = self.probe("probe-auth-limits", "--param", "enforce=true")
        self.assertTrue(report["auth_12288"].startswith("501"), report)
        self.assertTrue(report["auth_12289"].startswith("500"), report)
        self.assertTrue(report["bad_base64"].startswith("501"), report)
        self.assertTrue(report["cancel"].startswith("501"), report)

    def test_bdat_edge_cases(self):
        report = self.probe("probe-bdat")
        self.assertEqual(report["chunking"], "offered")
        self.assertTrue(report["bdat_0_last"].startswith("250"), report)
        self.assertEqual(report["marker_in_chunk"], "kept as data")
        self.assertTrue(report["data_after_bdat"].startswith("503"), report)
        self.assertTrue(report["huge_size"].startswith("5"), report)
        self.assertTrue(report["after_reset"].startswith("220"), report)

    def test_early_talker(self):
        self.assertEqual(self.probe("probe-early-talker"), {"early_ehlo": "answered in order"})

    def test_conformance(self):
        self.probe("probe-conformance")

    def test_slowloris_others_are_served(self):
        report = self.probe("probe-slowloris", "--param", "duration=1.5", "--param", "every=0.25")
        self.assertEqual(report["others_served"], "2 of 2")
        self.assertTrue(report["slow_client"].startswith("held for"), report)

    def test_slowloris_lasts_about_its_duration_also_when_short(self):
        # "NOOP \r\n" is 7 drips at least: at one a second that was 6 s for a 1 s duration.
        report = self.probe("probe-slowloris", "--param", "duration=1", "--param", "every=1")
        held = float(report["slow_client"].split()[2].rstrip("s,"))
        self.assertLess(held, 3, report)

    def test_slowloris_cut_off_with_421_passes_max_hold(self):
        # 421 and a close is the standard cut-off (Postfix's, and this server's own).
        server = SmtpfaultServer("--command-timeout", "1").start()
        try:
            code, report, failed, out = run_probe(
                "probe-slowloris", server.port, "--param", "duration=4", "--param", "every=0.5",
                "--param", "max_hold=2")
            self.assertEqual((code, failed), (0, []), out)
            self.assertTrue(report["slow_client"].endswith("with 421"), report)
        finally:
            server.stop()
            server.cleanup()

    def test_slowloris_silence_is_not_a_cut_off(self):
        # A server that never answers the dripped command and never closes holds the client:
        # max_hold must fail, and the report must not say "cut off".
        silent = server_with_scenario(
            self, 'function on_command(s, cmd)\n'
                  '  if cmd.verb == "NOOP" and cmd.argument ~= "" then return smtp.hang() end\n'
                  'end\n')
        code, report, failed, out = run_probe(
            "probe-slowloris", silent.port, "--param", "duration=2", "--param", "every=0.1",
            "--param", "max_hold=60", timeout=2)
        self.assertEqual(code, 1, out)
        self.assertIn("the server cuts a slow client within 60s", failed, out)
        self.assertIn("the dripped command gets its reply, or the connection is closed", failed)
        self.assertIn("neither answered nor closed", report["slow_client"])
        self.assertRegex(report["others_served"], r"^(\d+) of \1$", out)
        self.assertIn("the server cuts a slow client within 60s: held for", out)
        self.assertIn("still open", out)

    def test_starttls_injection_is_discarded_also_when_a_hook_decides_starttls(self):
        # A hook consulted about STARTTLS (or every command) leaves the pipelined plaintext
        # unread while it decides: it must still be dropped before the handshake.
        for hook in ("function on_starttls(s) return nil end",
                     "function on_command(s, cmd) return nil end"):
            hooked = server_with_scenario(self, hook + "\n")
            code, report, failed, out = run_probe("probe-starttls-injection", hooked.port)
            self.assertEqual((code, failed, report), (0, [], {"injection": "discarded"}), out)
            hooked.wait_for_line(r"discarded \d+ octets of plaintext pipelined after STARTTLS")

    def test_a_probe_with_nothing_to_probe_is_skipped_not_passed(self):
        bare = server_with_scenario(
            self, 'function on_ehlo(s, name) return smtp.hide("AUTH", "STARTTLS") end\n')
        for probe, report in [("probe-auth-limits", {"auth": "not offered"}),
                              ("probe-starttls-injection", {"injection": "STARTTLS not offered"})]:
            code, got, failed, out = run_probe(probe, bare.port)
            self.assertEqual((code, failed, got), (0, [], report), out)
            self.assertIn("skipped: ", out)
            self.assertIn("C: QUIT", out)
        # STARTTLS refused for now (454): nothing was probed either.
        refusing = SmtpfaultServer("--scenario", "starttls-454").start()
        self.addCleanup(refusing.cleanup)
        self.addCleanup(refusing.stop)
        code, got, failed, out = run_probe("probe-starttls-injection", refusing.port)
        self.assertEqual((code, failed), (0, []), out)
        self.assertIn("skipped: ", out)
        self.assertTrue(got["injection"].startswith("STARTTLS refused: 454"), got)

    def test_silence_where_a_reply_is_needed_fails_the_probe(self):
        # A server that never answers has shown nothing: no probe may read its silence as a
        # disconnect, a defence or a message kept inside the data.
        cases = [
            ("probe-smuggling", "function on_message(s, msg) return smtp.hang() end",
             "timeout (no reply to the message)"),
            ("probe-early-talker", "function on_ehlo(s, name) return smtp.hang() end",
             "no reply (timeout)"),
            ("probe-starttls-injection",
             'function on_command(s, cmd)\n'
             '  if cmd.verb == "XSMTPFAULT-MARKER" then return smtp.hang() end\nend',
             "no reply inside TLS (timeout)"),
        ]
        for probe, hook, outcome in cases:
            silent = server_with_scenario(self, hook + "\n")
            code, report, failed, out = run_probe(probe, silent.port, timeout=1)
            self.assertEqual(code, 1, out)
            self.assertTrue(failed, out)
            self.assertEqual(set(report.values()), {outcome}, out)

    def test_a_server_that_greets_and_then_hangs_costs_each_probe_one_timeout(self):
        # A stuck milter or policy service: the greeting comes, then nothing. Every step waited
        # out its own --timeout (a run of the nine probes took 5 minutes at --timeout 3); the
        # EHLO that gets no reply now ends each probe, and its "AUTH not offered" never comes.
        stuck = server_with_scenario(self, "function on_command(s, cmd) return smtp.hang() end\n")
        outputs = {}
        for probe in ("probe-auth-limits", "probe-conformance", "probe-pipelining"):
            started = time.monotonic()
            code, report, failed, out = run_probe(probe, stuck.port, timeout=0.5)
            self.assertEqual(code, 1, out)
            # One wait in full (conformance's MAIL before EHLO), then only a look for a late reply.
            self.assertLess(time.monotonic() - started, 3, out)
            self.assertIn("the rest of the script was not run", out)
            self.assertNotIn("not offered", out)
            outputs[probe] = out
        # The step after the unanswered MAIL is named after its own command, and says why it did
        # not wait.
        out = outputs["probe-conformance"]
        self.assertIn("expect 250 to 'EHLO conformance.smtpfault.test': not waited for: the "
                      "server has not answered 'MAIL FROM:<probe@smtpfault.test>' (no reply within "
                      "0.5s), nor anything since; pass {timeout = N} to wait again", out)

    def test_a_server_that_never_greets_ends_each_probe_at_its_first_greeting(self):
        # A tarpit: every later step would wait out its own timeout as well (one probe run took
        # 42 of them), and nothing after a missing greeting can be judged.
        tarpit = server_with_scenario(self, "function on_connect(s) return smtp.hang() end\n")
        probes = sorted(os.path.basename(p)[:-4] for p in glob.glob(
            os.path.join(ROOT, "scenarios", "client", "probe-*.lua")))
        self.assertGreaterEqual(len(probes), 9)
        for probe in probes:
            code, report, failed, out = run_probe(probe, tarpit.port, timeout=0.3)
            self.assertEqual(code, 1, out)
            if probe == "probe-early-talker":   # it talks first: its one wait is for that reply
                self.assertEqual(len(failed), 1, out)
                continue
            self.assertEqual(len(failed), 1, out)
            self.assertIn("220", failed[0], out)
            self.assertIn("no greeting within 0.3s: the rest of the script was not run", out)

    def test_a_bad_probe_parameter_is_named(self):
        code, report, failed, out = run_probe("probe-slowloris", self.server.port,
                                              "--param", "duration=abc")
        self.assertEqual(code, 2, out)
        self.assertIn("--param duration=abc: expected a number greater than 0", out)

    def test_a_param_no_probe_reads_is_noted_with_the_one_meant(self):
        code, _, failed, out = run_probe("probe-long-lines", self.server.port,
                                         "--param", "enfrce=true", "--param", "starttls=false")
        self.assertEqual((code, failed), (0, []), out)
        self.assertIn("note: --param enfrce is named by no script given, so it changes nothing "
                      "(did you mean 'enforce'?)", out)
        # starttls is read for the probe by the library's starttls_from_params().
        self.assertNotIn("--param starttls is", out)


class ProbesAgainstAiosmtpd(unittest.TestCase):
    """aiosmtpd 1.4.3 as Debian ships it, with STARTTLS and AUTH offered."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="smtpfault-aiosmtpd-")
        cert, key = make_certificate(cls.tmp)
        cls.target = AiosmtpdTarget(cert, key).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.target.__exit__(None, None, None)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def probe(self, name, *extra):
        return run_probe(name, self.target.port, *extra)

    def test_smuggling_every_variant_stays_inside_the_message(self):
        # The Debian package has the CVE-2024-27305 fix: lines end only at CRLF.
        code, report, failed, out = self.probe("probe-smuggling")
        self.assertEqual(code, 0, out)
        self.assertEqual(set(report.values()), {"not end of data"}, report)
        self.assertEqual(len(report), 7)

    def test_starttls_injection_is_discarded(self):
        # And the CVE-2024-34083 fix: plaintext buffered before the handshake is dropped.
        code, report, failed, out = self.probe("probe-starttls-injection")
        self.assertEqual((code, report), (0, {"injection": "discarded"}), out)

    def test_long_lines_are_accepted_past_the_rfc_limits(self):
        # aiosmtpd allows every command the longest per-command limit (512 + 26 for SIZE + 10
        # for BODY) and text lines of 1001 octets without the CRLF counted as RFC 5321 does.
        # The RFC sets what a server must take, not a most: that passes unless enforce=true.
        code, report, failed, out = self.probe("probe-long-lines")
        self.assertEqual((code, failed), (0, []), out)
        self.assertEqual(report, {"command_511": 250, "command_512": 250, "command_513": 250,
                                  "text_999": 250, "text_1000": 250, "text_1001": 250})
        code, report, failed, out = self.probe("probe-long-lines", "--param", "enforce=true")
        self.assertEqual(code, 1, out)
        self.assertEqual(failed, ["513-octet command line is refused with 500",
                                  "1001-octet text line is refused"])

    def test_pipelining_works_but_is_not_advertised(self):
        # PIPELINING is optional: not offering it is reported, not failed, as CHUNKING is.
        code, report, failed, out = self.probe("probe-pipelining")
        self.assertEqual((code, failed), (0, []), out)
        self.assertEqual(report, {"pipelining": "not offered", "group1": "250 250 501 354",
                                  "group2": "250 250 501 503"})

    def test_auth_lines_are_held_to_the_command_limit(self):
        code, report, failed, out = self.probe("probe-auth-limits")
        self.assertEqual(code, 1, out)
        self.assertEqual(report, {"auth_12288": "500 Command line too long",
                                  "auth_12289": "500 Command line too long",
                                  "bad_base64": "501 Can't decode base64",
                                  "cancel": "501 Auth aborted"})
        self.assertEqual(failed, ["a 12288-octet AUTH line is not refused as too long"])
        self.assertIn("500 Command line too long (RFC 4954 4: a server takes AUTH lines of up to "
                      "12288 octets", out)

    def test_bdat_is_not_supported(self):
        code, report, failed, out = self.probe("probe-bdat")
        self.assertEqual(code, 0, out)
        self.assertEqual(report, {"chunking": "not offered",
                                  "bdat_without_chunking":
                                      '500 Error: command "BDAT" not recognized'})

    def test_early_talker_is_answered_in_order(self):
        code, report, failed, out = self.probe("probe-early-talker")
        self.assertEqual((code, report), (0, {"early_ehlo": "answered in order"}), out)

    def test_conformance(self):
        code, report, failed, out = self.probe("probe-conformance")
        self.assertEqual((code, failed), (0, []), out)

    def test_slowloris_is_held_and_others_served(self):
        # Its idle timeout restarts on every octet received: a drip is never cut off.
        code, report, failed, out = self.probe("probe-slowloris", "--param", "duration=1.5",
                                               "--param", "every=0.25")
        self.assertEqual(code, 0, out)
        self.assertEqual(report["others_served"], "2 of 2")
        self.assertTrue(report["slow_client"].startswith("held for"), report)
        self.assertTrue(report["slow_client"].endswith("command answered 250"), report)


class ProbesAgainstAServerThatRequiresTls(unittest.TestCase):
    """aiosmtpd with require_starttls: 530 to MAIL before STARTTLS (RFC 3207 4)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="smtpfault-aiosmtpd-tls-")
        cert, key = make_certificate(cls.tmp)
        cls.target = AiosmtpdTarget(cert, key, require_tls=True).__enter__()
        cls.tls = ("--param", "starttls=true", "--param",
                   "ca=" + os.path.join(ROOT, "fixtures", "certs", "test-ca.pem"))

    @classmethod
    def tearDownClass(cls):
        cls.target.__exit__(None, None, None)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_without_starttls_a_probe_stops_at_the_530_and_names_the_param(self):
        code, _, failed, out = run_probe("probe-smuggling", self.target.port)
        self.assertEqual(failed, ["expect 250 to 'MAIL FROM:<probe@smtpfault.test>'"], out)
        self.assertIn("the server requires STARTTLS first: the probes take --param starttls=true",
                      out)

    def test_with_starttls_the_probes_judge_the_server_over_tls(self):
        code, report, failed, out = run_probe("probe-smuggling", self.target.port, *self.tls)
        self.assertEqual((code, failed), (0, []), out)
        self.assertEqual(set(report.values()), {"not end of data"}, out)
        self.assertIn("TLS established", out)
        # Its checks start where STARTTLS leaves the session: no EHLO yet.
        code, _, failed, out = run_probe("probe-conformance", self.target.port, *self.tls)
        self.assertEqual((code, failed), (0, []), out)
        for probe in ("probe-long-lines", "probe-bdat", "probe-auth-limits"):
            code, _, failed, out = run_probe(probe, self.target.port, *self.tls)
            self.assertNotIn("MAIL FROM", " ".join(failed), out)
            self.assertNotIn("got 530", out)

    def test_a_starttls_param_that_is_no_boolean_is_named(self):
        code, _, _, out = run_probe("probe-smuggling", self.target.port, "--param", "starttls=yes")
        self.assertEqual(code, 2, out)
        self.assertIn("--param starttls must be true or false, not the string \"yes\"", out)


class AuthLimitsBehindABrokenStarttls(unittest.TestCase):
    def test_a_failed_handshake_is_a_target_that_could_not_be_used_not_one_without_auth(self):
        # OpenSMTPD offers AUTH over TLS alone: with its handshake broken there is nothing to
        # probe, and "AUTH not offered" would be false.
        tmp = tempfile.mkdtemp(prefix="smtpfault-breaker-")
        self.addCleanup(shutil.rmtree, tmp, True)
        breaker = TlsBreaker(*make_certificate(tmp))
        self.addCleanup(breaker.close)
        p = subprocess.run([binary_path(), "run", "probe-auth-limits", "--target",
                            "127.0.0.1:%d" % breaker.port, "--timeout", "5"],
                           capture_output=True, text=True, timeout=120, env=server_environment())
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 3, out)
        self.assertIn("TLS handshake with 127.0.0.1 failed: sslv3 alert handshake failure", out)
        self.assertNotIn("not offered", out)

class ProbesAgainstServersThatEndOrStall(unittest.TestCase):
    def test_long_lines_measures_the_text_on_a_new_connection_after_a_close(self):
        # Ending the connection at an over-long command is the server's right.
        server = LenientServer(command_limit=512)
        self.addCleanup(server.close)
        code, report, failed, out = run_probe("probe-long-lines", server.port)
        self.assertEqual((code, failed), (0, []), out)
        self.assertEqual(report, {"command_511": 250, "command_512": 250, "command_513": 500,
                                  "after_513": "the server closed the connection",
                                  "text_999": 250, "text_1000": 250, "text_1001": 250})

    def test_smuggling_catches_a_late_answer_to_a_variant_sent_alone(self):
        # A slow filter answers the message after the probe's 2 s: the smuggled commands it
        # then reads as commands show where the data ended.
        ended_at_lf = {"lf-dot-lf", "lf-dot-crlf", "crlf-dot-lf"}
        server = LenientServer(pipelining_refused=True, end_of_data_delay=2.5)
        self.addCleanup(server.close)
        code, report, failed, out = run_probe("probe-smuggling", server.port)
        self.assertEqual(code, 1, out)
        for variant in ended_at_lf:
            self.assertTrue(report[variant].startswith(
                "END OF DATA (smuggled commands answered, late) (the variant sent alone"),
                (variant, report))
        self.assertEqual(sorted(failed),
                         sorted("variant %s does not end the data" % v for v in ended_at_lf))

class PipeliningWhereNotOffered(unittest.TestCase):
    def test_a_refused_group_is_a_skip_not_a_cascade(self):
        # OpenSMTPD 6.8 offers no PIPELINING and answers a group 500, then closes: it may.
        server = LenientServer(pipelining_refused=True)
        self.addCleanup(server.close)
        code, report, failed, out = run_probe("probe-pipelining", server.port)
        self.assertEqual((code, failed), (0, []), out)
        self.assertEqual(report, {"pipelining": "not offered", "group1": "500 none none none"},
                         out)
        self.assertIn("skipped: PIPELINING is not offered, and the server refused the pipelined "
                      "group (500 none none none), as it may: nothing more to probe", out)

class SmugglingProbeCountsReplies(unittest.TestCase):
    """The smuggling verdict rests on how many replies came, not on the marker's reply code."""

    def test_a_strict_server_that_answers_the_marker_550_keeps_every_variant_inside(self):
        strict = server_with_scenario(self, (
            'function on_command(s, cmd)\n'
            '  if cmd.verb == "XSMTPFAULT-MARKER" then return smtp.reply(550, "5.5.1", "no") end\n'
            'end\n'))
        code, report, failed, out = run_probe("probe-smuggling", strict.port)
        self.assertEqual((code, failed), (0, []), out)
        self.assertEqual(set(report.values()), {"not end of data"}, out)
        self.assertEqual(len(report), 7)

    def test_a_server_that_ends_lines_at_lf_is_caught_whatever_it_answers_the_marker(self):
        ended_at_lf = {"lf-dot-lf", "lf-dot-crlf", "crlf-dot-lf"}
        for marker_reply in [b"500 5.5.2 unknown", b"550 5.5.1 unrecognized command"]:
            lenient = LenientServer(marker_reply)
            self.addCleanup(lenient.close)
            code, report, failed, out = run_probe("probe-smuggling", lenient.port)
            self.assertEqual(code, 1, out)
            self.assertEqual(len(report), 7, out)
            for variant, result in report.items():
                want = ("END OF DATA (smuggled message accepted)" if variant in ended_at_lf
                        else "not end of data")
                self.assertEqual(result, want, (marker_reply, variant, out))
            self.assertEqual(sorted(failed),
                             sorted("variant %s does not end the data" % v for v in ended_at_lf))
            canaries = [m for m in lenient.messages if m.startswith(b"Subject: smuggled canary")]
            self.assertEqual(len(canaries), 3)

    def test_a_server_that_refuses_input_after_a_message_is_probed_with_each_variant_alone(self):
        # OpenSMTPD 6.8: the one write gets "500 Pipelining not supported" wherever the data
        # ended, which shows nothing; the variant sent alone shows where it ended.
        ended_at_lf = {"lf-dot-lf", "lf-dot-crlf", "crlf-dot-lf"}
        lenient = LenientServer(pipelining_refused=True)
        self.addCleanup(lenient.close)
        code, report, failed, out = run_probe("probe-smuggling", lenient.port)
        self.assertEqual(code, 1, out)
        alone = (" (the variant sent alone: the one-write test got "
                 "'500 Invalid command: Pipelining not supported')")
        for variant, result in report.items():
            want = ("END OF DATA (smuggled message accepted)" if variant in ended_at_lf
                    else "not end of data")
            self.assertEqual(result, want + alone, (variant, out))
        self.assertEqual(len(report), 7, out)
        self.assertEqual(sorted(failed),
                         sorted("variant %s does not end the data" % v for v in ended_at_lf))
        canaries = [m for m in lenient.messages if m.startswith(b"Subject: smuggled canary")]
        self.assertEqual(len(canaries), 3)

    def test_a_refused_recipient_stops_the_probe_before_any_variant_is_judged(self):
        refusing = server_with_scenario(self, (
            'function on_rcpt(s, rcpt) return smtp.reply(550, "5.1.1", "no such user") end\n'))
        code, report, failed, out = run_probe("probe-smuggling", refusing.port)
        self.assertEqual(code, 1, out)
        self.assertEqual(report, {}, out)
        self.assertEqual(failed, ["expect 250 to 'RCPT TO:<rcpt@example.com>'"], out)
        self.assertIn("the server refused 'RCPT TO:<rcpt@example.com>': give a recipient it takes "
                      "with --param rcpt=ADDR", out)
        # It said goodbye first.
        self.assertIn("C: QUIT", out)
        self.assertNotIn("does not end the data", out)


class ProbesAgainstAServerThatRefusesNoopArguments(unittest.TestCase):
    """OpenSMTPD 6.8 answers "NOOP x" 500: the padded NOOPs of probe-long-lines and
    probe-slowloris must not read that as a line limit or a hold."""

    @classmethod
    def setUpClass(cls):
        cls.server = LenientServer(noop_argument_refused=True)

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def test_long_command_lines_are_not_measured_and_never_judged(self):
        for extra in [(), ("--param", "enforce=true")]:
            code, report, failed, out = run_probe("probe-long-lines", self.server.port, *extra)
            for n in (511, 512, 513):
                self.assertTrue(report["command_%d" % n].startswith(
                    "not measured: NOOP with an argument is refused even when short ('NOOP x' "
                    "got 500 Invalid command arguments"), (extra, report))
            self.assertNotIn("command line is refused", out)
            self.assertNotIn("command line is accepted", out)
            self.assertEqual(failed, ["1001-octet text line is refused"] if extra else [], out)

    def test_a_refused_drip_is_still_a_reply(self):
        code, report, failed, out = run_probe("probe-slowloris", self.server.port,
                                              "--param", "duration=3", "--param", "every=0.25")
        self.assertEqual((code, failed), (0, []), out)
        self.assertTrue(report["slow_client"].endswith("command answered 500"), report)
        self.assertIn("(a reply all the same; probe-conformance judges a NOOP with an argument)",
                      out)

    def test_conformance_names_the_refused_argument(self):
        code, report, failed, out = run_probe("probe-conformance", self.server.port)
        self.assertIn("NOOP with an argument gets 250 (RFC 5321 4.1.1.9: the argument is "
                      "ignored)", failed)
        # DATA before RCPT got 354 here: the probe ended that message, and what follows was
        # answered as commands, not taken for message text.
        self.assertIn("DATA before RCPT gets 503 or 554", failed)
        self.assertNotIn("RSET gets 250", failed)
        self.assertNotIn("not waited for", out)


if __name__ == "__main__":
    unittest.main()
