"""TLS between the command and the runner's servers: the test CA the command is given, and a
handshake the mailer's own TLS stops (no common version, the certificate refused with an alert,
by closing after it as Node.js does, or right after the handshake), which leads the reason and
fails even a scenario whose checks held, except where the scenario made the certificate bad."""

import json
import os
import re
import unittest
from xml.etree import ElementTree

from smtpfault_server import TEST_CA, write_file
from catalogue_case import PYTHON, run_test, scratch_folder, scratch_path, verdicts

# A mailer that does not trust the test CA and refuses the certificate the way Node.js does:
# it checks the server's certificate itself and closes the connection, without a TLS alert.
# Here OpenSSL works on memory buffers and the alert it writes is never sent.
SILENT_REFUSAL = """import os, socket, ssl
s = socket.create_connection((os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT'])))
def reply():
    text = b''
    while not any(l[3:4] == b' ' for l in text.split(b'\\r\\n')):
        text += s.recv(4096)
reply()
s.sendall(b'EHLO x\\r\\n'); reply()
s.sendall(b'STARTTLS\\r\\n'); reply()
incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname='localhost')
while True:
    try:
        tls.do_handshake()
        break
    except ssl.SSLWantReadError:
        s.sendall(outgoing.read())
        incoming.write(s.recv(65536))
    except ssl.SSLCertVerificationError as e:
        print('refused:', e.verify_message)
        break
s.close()
raise SystemExit(1)
"""

# The start of a mailer whose TLS 1.2 handshake completes whatever the certificate, as Node.js's
# does over TLS 1.2 before it checks the certificate itself.
TLS12_ANY_CERTIFICATE = """import os, smtplib, socket, ssl, struct, time
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
"""

# One that checks only once the handshake is done: the handshake completes, and it closes
# before its first command over TLS.
CLOSES_AFTER_HANDSHAKE = TLS12_ANY_CERTIFICATE + """s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))
s.ehlo()
s.docmd('STARTTLS')
ctx.wrap_socket(s.sock).close()
raise SystemExit(1)
"""

REFUSED = (r"most likely the client refused the server's certificate: it does not trust the "
           r"test CA, or the name it checks is not one the certificate holds \(localhost, "
           r"127\.0\.0\.1, ::1, smtpfault\.test\), or it matches host names only and was given "
           r"an address \(Jakarta Mail, Haskell's tls and s-nail do\); give the mailer "
           r"\$SMTP_CA_FILE to "
           r"trust "
           r"\(docs/catalogue\.md says how for each: Node\.js takes it from NODE_EXTRA_CA_CERTS "
           r"set inside the command, Java from a trust store made of it\) and \$SMTP_HOST to "
           r"connect to, or localhost for a client that matches names only")


class TestCaForTheCommand(unittest.TestCase):
    def test_the_command_can_verify_the_server_with_smtpfault_ca_file(self):
        # swaks verifies the certificate with the file the runner gives, which is gone after.
        json_path = scratch_path(self, "ca.json")
        status, out, err = run_test(
            ["--scenario", "accept-all", "--json", json_path, "--", "sh", "-c",
             'echo "ca=$SMTP_CA_FILE"; swaks --server "$SMTP_SERVER" --to b@y.test '
             '--tls --tls-verify --tls-ca-path "$SMTP_CA_FILE"'], timeout=60)
        self.assertEqual(status, 0, out + err)
        result = verdicts(json_path)["accept-all"]
        self.assertEqual(result["verdict"], "PASS")
        path = re.search(r"ca=(\S+)", result["command_output"]).group(1)
        self.assertFalse(os.path.exists(path), path)

    def test_no_ca_file_when_the_servers_have_a_certificate_of_their_own(self):
        # (Any certificate and key will do: here the CA's own.)
        status, out, err = run_test(
            ["--scenario", "accept-all", "--set", "tls.cert=" + TEST_CA, "--set",
             "tls.key=" + TEST_CA[:-len(".pem")] + ".key", "--", "sh", "-c",
             'echo "ca=[${SMTP_CA_FILE-unset}]"'],
            timeout=60)
        self.assertIn("ca=[unset]", out + err)


class ClientWithoutACommonTlsVersion(unittest.TestCase):
    def test_the_handshake_that_failed_is_the_headline_and_fails_even_what_held(self):
        # A TLS 1.1 client: the server takes 1.2 and 1.3, so nothing after STARTTLS happens.
        json_path = scratch_path(self, "tls11.json")
        status, out, err = run_test(
            ["--scenario", "accept-all", "--scenario", "starttls-bad-cert", "--json", json_path,
             "--", "sh", "-c", "echo QUIT | openssl s_client -starttls smtp -connect "
             '"$SMTP_SERVER" -tls1_1 -cipher DEFAULT@SECLEVEL=0; exit 1'], timeout=60)
        self.assertEqual(status, 1, out + err)
        results = verdicts(json_path)
        said = (r"the TLS handshake failed in session 000001 \(transcript line \d+: unsupported "
                r"protocol[^)]*\)\): the client offered no TLS version the server takes \(1\.2 "
                r"and later, tls\.min_version\)")
        self.assertRegex(results["accept-all"]["reason"],
                         "^" + said + r"; so nothing past the handshake was exercised \(exit: ")
        # No mail, no plaintext, but only because it could not get in: with the good
        # certificate of run 5 neither.
        self.assertEqual(results["starttls-bad-cert"]["verdict"], "FAIL")
        self.assertRegex(results["starttls-bad-cert"]["reason"],
                         "^" + said + r"; so nothing past the "
                         r"handshake was exercised \(check: the client went no further with the "
                         r"good certificate either \(session 000005, run 5: ")

    def test_a_failed_first_try_is_no_mismatch_once_tls_worked(self):
        # TLS 1.1 first, then a retry that gets TLS 1.3 and delivers: nothing to report.
        json_path = scratch_path(self, "fallback.json")
        status, out, err = run_test(
            ["--scenario", "accept-all", "--json", json_path, "--", "sh", "-c",
             "echo QUIT | openssl s_client -starttls smtp -connect \"$SMTP_SERVER\" -tls1_1 "
             "-cipher DEFAULT@SECLEVEL=0; swaks --server \"$SMTP_SERVER\" --to b@y.test --tls"],
            timeout=60)
        self.assertEqual(status, 0, out + err)
        self.assertNotIn("TLS handshake failed", verdicts(json_path)["accept-all"]["reason"])

    def test_tls_min_version_lets_a_legacy_client_in(self):
        json_path = scratch_path(self, "tls10.json")
        status, out, err = run_test(
            ["--scenario", "accept-all", "--set", "tls.min_version=1.0", "--json", json_path,
             "--", "sh", "-c", "echo QUIT | openssl s_client -starttls smtp -connect "
             '"$SMTP_SERVER" -tls1 -cipher DEFAULT@SECLEVEL=0; exit 1'], timeout=60)
        self.assertEqual(status, 1, out + err)   # it sends no mail
        result = verdicts(json_path)["accept-all"]
        self.assertRegex(result["transcript"], r"TLS established: TLSv1 ")
        self.assertNotIn("TLS handshake failed", result["reason"])


class ClientThatRefusesTheTestCertificate(unittest.TestCase):
    def test_the_refusal_leads_the_reason_but_not_where_the_scenario_made_the_certificate_bad(self):
        # swaks verifying against the system's CAs only, as a mailer not given $SMTP_CA_FILE.
        json_path = scratch_path(self, "untrusted.json")
        status, out, err = run_test(
            ["--scenario", "accept-all", "--scenario", "starttls-bad-cert", "--json", json_path,
             "--", "sh", "-c", 'swaks --server "$SMTP_SERVER" --to b@y.test --tls --tls-verify'],
            timeout=90)
        self.assertEqual(status, 1, out + err)
        results = verdicts(json_path)
        self.assertRegex(
            results["accept-all"]["reason"],
            r"^the TLS handshake failed in session 000001 \(transcript line \d+: [^)]*alert "
            r"unknown ca[^)]*\)\): the client refused the server's certificate: it does not "
            r"trust the test CA; give the mailer \$SMTP_CA_FILE to trust \(docs/catalogue\.md\); "
            r"so nothing past the handshake was exercised \(exit: ")
        # There refusing the bad certificates is right, and each session's note says which one
        # it met; but it refused the good one of run 5 as well, so those refusals prove nothing.
        bad_cert = results["starttls-bad-cert"]
        self.assertEqual(bad_cert["verdict"], "FAIL", bad_cert["reason"])
        self.assertRegex(
            bad_cert["reason"],
            r"^the TLS handshake failed in session 000005 \(transcript line \d+: [^)]*alert "
            r"unknown ca[^)]*\)\): the client refused the server's certificate: it does not "
            r"trust the test CA; give the mailer \$SMTP_CA_FILE to trust \(docs/catalogue\.md\); "
            r"so nothing past the handshake was exercised \(check: the client went no further "
            r"with the good certificate either \(session 000005, run 5: signed by the test CA")
        self.assertIn("the certificate was the scenario's expired one", bad_cert["transcript"])

    def test_a_name_the_certificate_lacks_is_named_as_a_cause(self):
        # The test CA trusted, but another name checked: OpenSSL's client says "bad certificate".
        mailer = write_file(scratch_folder(self), "wrong_name.py", (
            "import os, smtplib, ssl\n"
            "ctx = ssl.create_default_context(cafile=os.environ['SMTP_CA_FILE'])\n"
            "s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
            "s.ehlo()\n"
            "s.docmd('STARTTLS')\n"
            "s.sock = ctx.wrap_socket(s.sock, server_hostname='mail.example.com')\n"))
        json_path = scratch_path(self, "wrong-name.json")
        status, out, err = run_test(["--scenario", "accept-all", "--json", json_path, "--",
                                     PYTHON, mailer], timeout=60)
        self.assertEqual(status, 1, out + err)
        self.assertRegex(
            verdicts(json_path)["accept-all"]["reason"],
            r"^the TLS handshake failed in session 000001 \(transcript line \d+: [^)]*alert bad "
            r"certificate[^)]*\)\): the client refused the server's certificate: it does not "
            r"trust the test CA, or the name it checks is not one the certificate holds "
            r"\(localhost, 127\.0\.0\.1, ::1, smtpfault\.test\), or it matches host names only ")

    def test_a_mailer_that_went_on_in_plaintext_was_not_stopped_by_the_refusal(self):
        json_path = scratch_path(self, "fallback.json")
        status, out, err = run_test(
            ["--scenario", "accept-all", "--json", json_path, "--", "sh", "-c",
             'swaks --server "$SMTP_SERVER" --to b@y.test --tls --tls-verify; '
             'swaks --server "$SMTP_SERVER" --to b@y.test'], timeout=60)
        self.assertEqual(status, 0, out + err)
        result = verdicts(json_path)["accept-all"]
        self.assertEqual(result["verdict"], "PASS", result["reason"])
        self.assertNotIn("not exercised", result["reason"])
        self.assertNotIn("TLS handshake failed", result["reason"])


class ClientThatRefusesTheCertificateWithoutAWord(unittest.TestCase):
    def test_a_close_after_the_certificate_leads_the_reason_and_fails_what_held(self):
        json_path = scratch_path(self, "silent.json")
        junit = scratch_path(self, "silent.xml")
        status, out, err = run_test(
            ["--scenario", "accept-all", "--scenario", "size-limit", "--scenario",
             "starttls-bad-cert", "--scenario", "no-8bitmime", "--time-scale", "0.02", "--json",
             json_path, "--junit", junit, "--", PYTHON, "-c", SILENT_REFUSAL], timeout=90)
        self.assertEqual(status, 1, out + err)
        # Said once under the table; CI views group the scenarios it stopped by one failure type.
        self.assertIn("the mailer's TLS stopped it at the handshake in 4 scenarios, before they "
                      "could test anything (each reason says how): mend that first\n", out)
        # Its closes after the certificate are no habit of closing without QUIT.
        self.assertNotIn("quit failed in", out)
        # The table gives the cause and its advice once; the reports give each in full.
        self.assertEqual(out.count("give the mailer $SMTP_CA_FILE"), 1, out)
        self.assertRegex(out, r"\nno-8bitmime +FAIL +the TLS handshake failed in session 000001 "
                              r"\([^\n]*\): as under accept-all; so nothing past the handshake")
        types = {case.get("name"): case.find("failure").get("type")
                 for case in ElementTree.parse(junit).getroot().iter("testcase")
                 if case.find("failure") is not None}
        self.assertEqual(types, dict.fromkeys(["accept-all", "size-limit", "starttls-bad-cert",
                                               "no-8bitmime"], "tls handshake"))
        # Both reports keep the note, for a CI that shows no terminal.
        suite = ElementTree.parse(junit).getroot().find("testsuite")
        notes = [p.get("value") for p in suite.find("properties")
                 if p.get("name").startswith("note ")]
        with open(json_path, encoding="utf-8") as f:
            self.assertEqual(json.load(f)["notes"], notes)
        self.assertEqual(len(notes), 1, notes)
        self.assertTrue(notes[0].startswith("the mailer's TLS stopped it at the handshake in 4 "
                                            "scenarios"), notes)
        results = verdicts(json_path)
        said = (r"the TLS handshake failed in session 000001 \(transcript line \d+: stream "
                r"truncated; the client closed the connection after the server's certificate, "
                r"without a TLS alert\): " + REFUSED)
        self.assertRegex(results["accept-all"]["reason"],
                         "^" + said + r"; so nothing past the handshake was exercised \(exit: ")
        # size-limit's checks hold for a mailer that sends nothing: not a pass for this one.
        self.assertEqual(results["size-limit"]["verdict"], "FAIL")
        self.assertRegex(results["size-limit"]["reason"],
                         "^" + said + r"; so nothing past the handshake was exercised \(all "
                         r"expectations held\)$")
        # Where the scenario made the certificate bad, closing on it is right; but it closed on
        # the good certificate of run 5 too, so those closes prove nothing.
        bad = results["starttls-bad-cert"]
        self.assertEqual(bad["verdict"], "FAIL", bad["reason"])
        self.assertRegex(bad["reason"], r"^the TLS handshake failed in session 000005 \(")
        self.assertIn("(check: the client went no further with the good certificate either "
                      "(session 000005, run 5:", bad["reason"])
        self.assertRegex(bad["transcript"], r"TLS handshake failed: stream truncated; the client "
                         r"closed the connection after the server's certificate, without a TLS "
                         r"alert; the certificate was the scenario's expired one")

    def test_a_close_after_injected_plaintext_is_not_said_to_refuse_the_certificate(self):
        # starttls-injection put plaintext before the handshake: a GnuTLS client (mailutils)
        # reads it as a record and closes after the certificate, as a refusal would look.
        json_path = scratch_path(self, "injected.json")
        status, out, err = run_test(["--scenario", "starttls-injection", "--json", json_path,
                                     "--", PYTHON, "-c", SILENT_REFUSAL], timeout=60)
        self.assertEqual(status, 0, out + err)
        result = verdicts(json_path)["starttls-injection"]
        self.assertEqual(result["verdict"], "PASS", result["reason"])
        self.assertNotIn("refused the server's certificate", result["reason"])
        self.assertIn("the TLS handshake of session 000001 failed after the injected plaintext",
                      result["reason"])

    def test_a_client_that_never_begins_the_handshake_is_not_said_to_refuse_it(self):
        # STARTTLS, then a close before any ClientHello: the certificate never went out.
        mailer = SILENT_REFUSAL.replace("incoming, outgoing", "s.close(); raise SystemExit(1)\n"
                                        "incoming, outgoing")
        json_path = scratch_path(self, "no-hello.json")
        status, out, err = run_test(["--scenario", "accept-all", "--json", json_path, "--",
                                     PYTHON, "-c", mailer], timeout=60)
        self.assertEqual(status, 1, out + err)
        result = verdicts(json_path)["accept-all"]
        self.assertNotIn("certificate", result["reason"])
        self.assertNotIn("after the server's certificate", result["transcript"])

    def test_a_close_right_after_the_handshake_leads_also_when_quit_is_waived(self):
        json_path = scratch_path(self, "after.json")
        status, out, err = run_test(
            ["--scenario", "accept-all", "--scenario", "starttls-bad-cert", "--time-scale",
             "0.02", "--waive", "quit", "--json", json_path, "--", PYTHON, "-c",
             CLOSES_AFTER_HANDSHAKE], timeout=90)
        self.assertEqual(status, 1, out + err)
        results = verdicts(json_path)
        reason = results["accept-all"]["reason"]
        self.assertRegex(reason, r"^session 000001 closed right after the TLS handshake "
                         r"\(transcript line \d+\), before any command over TLS: " + REFUSED +
                         r"; so nothing past the handshake was exercised \(exit: ")
        # A close right after a bad certificate is a refusal as far as the wire tells, and the
        # note after the handshake names the certificate; after the good one of run 5 it is the
        # headline.
        bad = results["starttls-bad-cert"]
        self.assertEqual(bad["verdict"], "FAIL", bad["reason"])
        self.assertRegex(bad["reason"], r"^session 000005 closed right after the TLS handshake")
        self.assertIn("TLS certificate: the scenario's expired one", bad["transcript"])

    def test_a_pass_notes_auth_sent_in_plaintext_where_starttls_was_offered(self):
        # accept-all judges no TLS: a mailer that logs in in the clear still passes it, and the
        # pass says so (libESMTP goes on in plaintext when it cannot load its CA file).
        plain = """import os, smtplib, ssl
s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))
if os.environ.get('TLS'):
    s.starttls(context=ssl.create_default_context(cafile=os.environ['SMTP_CA_FILE']))
s.login(os.environ['SMTP_USER'], os.environ['SMTP_PASSWORD'])
s.sendmail('a@example.com', ['b@example.com'], 'Subject: x\\r\\n\\r\\nx\\r\\n')
s.quit()
"""
        for tls, note in [("", True), ("1", False)]:
            json_path = scratch_path(self, "plain-auth.json")
            status, out, err = run_test(["--scenario", "accept-all", "--json", json_path, "--",
                                         "env", "TLS=" + tls, PYTHON, "-c", plain], timeout=60)
            self.assertEqual(status, 0, out + err)
            reason = verdicts(json_path)["accept-all"]["reason"]
            self.assertEqual("AUTH went in plaintext in session 000001" in reason, note, reason)
            self.assertEqual("although EHLO offered STARTTLS: a mailer that requires TLS would "
                             "not send it" in reason, note, reason)

    def test_starttls_injection_says_when_a_lost_message_was_reported_as_sent(self):
        # Out of step after the handshake, and exit 0 with nothing delivered (libESMTP 1.1 takes
        # a shifted reply for the message's 250).
        mailer = """import os, socket, ssl
s = socket.create_connection((os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT'])))
def reply(f):
    while True:
        line = f.readline()
        if line[3:4] != b'-':
            return line
f = s.makefile('rb')
reply(f)
s.sendall(b'EHLO x\\r\\n'); reply(f)
s.sendall(b'STARTTLS\\r\\n'); reply(f)
t = ssl.create_default_context(cafile=os.environ['SMTP_CA_FILE']).wrap_socket(
    s, server_hostname='localhost')
g = t.makefile('rb')
t.sendall(b'EHLO x\\r\\n'); reply(g)
t.sendall(b'DATA\\r\\n'); reply(g)
"""
        json_path = scratch_path(self, "lost.json")
        status, out, err = run_test(["--scenario", "starttls-injection", "--json", json_path,
                                     "--", PYTHON, "-c", mailer], timeout=60)
        self.assertEqual(status, 1, out + err)
        reason = verdicts(json_path)["starttls-injection"]["reason"]
        self.assertIn("got out of step; and the command exited 0 with nothing delivered: a lost "
                      "message reported as sent", reason)

    def test_a_mailer_that_hangs_after_the_handshake_refused_nothing(self):
        # libESMTP 1.1 hangs after most TLS 1.3 handshakes: the kill at --timeout closes the
        # connection right after the handshake, which is no refusal of the certificate.
        mailer = CLOSES_AFTER_HANDSHAKE.replace("ctx.wrap_socket(s.sock).close()",
                                                "t = ctx.wrap_socket(s.sock)\ntime.sleep(60)")
        json_path = scratch_path(self, "hangs.json")
        # Three scenarios: the run's note on TLS stops counts three or more.
        status, out, err = run_test(["--scenario", "accept-all", "--scenario", "greylist",
                                     "--scenario", "data-421", "--time-scale", "0.02",
                                     "--timeout", "2", "--json", json_path, "--", PYTHON, "-c",
                                     mailer], timeout=60)
        self.assertEqual(status, 1, out + err)
        for name, result in verdicts(json_path).items():
            self.assertTrue(result["reason"].startswith("timeout: the command was killed after "
                                                        "2 s"), (name, result["reason"]))
            self.assertIsNone(result.get("kind"), name)
            self.assertNotIn("refused the server's certificate", result["reason"])
        self.assertNotIn("TLS stopped it", out + err)

    def test_starttls_bad_cert_claims_nothing_of_certificates_whose_runs_hung(self):
        # Goes on after the wrong-host certificate and hangs after every other handshake: that
        # it checks the chain is not known, since it never showed what it does after those.
        mailer = TLS12_ANY_CERTIFICATE + """s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))
s.ehlo()
s.starttls(context=ctx)
if b'wrong-host' not in s.sock.getpeercert(binary_form=True):
    time.sleep(60)
s.ehlo()
s.sendmail('a@example.com', ['b@example.com'], 'Subject: x\\r\\n\\r\\nx\\r\\n')
"""
        json_path = scratch_path(self, "hung-runs.json")
        status, out, err = run_test(["--scenario", "starttls-bad-cert", "--time-scale", "0.02",
                                     "--timeout", "2", "--json", json_path, "--", PYTHON, "-c",
                                     mailer], timeout=90)
        self.assertEqual(status, 1, out + err)
        check = [c for c in verdicts(json_path)["starttls-bad-cert"]["checks"]
                 if c["name"] == "check"][0]
        self.assertIn("the client accepted a bad certificate (wrong_host)", check["detail"])
        self.assertNotIn("verifies the chain", check["detail"])
        self.assertIn("the run for the expired, self_signed, unknown_ca certificate was killed "
                      "at --timeout after the handshake", check["detail"])

    def test_a_client_that_leaves_for_the_implicit_tls_greeting_refused_nothing(self):
        # Over implicit TLS the greeting comes after the handshake: leaving at a 554 one, the
        # CA trusted, is about the greeting.
        mailer = ("import os, smtplib, ssl\n"
                  "ctx = ssl.create_default_context(cafile=os.environ['SMTP_CA_FILE'])\n"
                  "try:\n"
                  "    smtplib.SMTP_SSL(os.environ['SMTP_HOST'], int(os.environ['SMTP_TLS_PORT']),"
                  " context=ctx)\n"
                  "except smtplib.SMTPConnectError as e:\n"
                  "    print('refused:', e)\n"
                  "raise SystemExit(1)\n")
        json_path = scratch_path(self, "implicit-554.json")
        status, out, err = run_test(["--scenario", "greeting-554", "--waive", "quit", "--json",
                                     json_path, "--", PYTHON, "-c", mailer], timeout=60)
        result = verdicts(json_path)["greeting-554"]
        self.assertRegex(result["transcript"], r"TLS established(.*\n)+.* S: 554 5\.3\.2 ")
        self.assertEqual((status, result["verdict"]), (0, "PASS"), result["reason"])
        self.assertNotIn("certificate", result["reason"])

    def test_a_reset_right_after_the_implicit_tls_handshake_is_a_refusal_whatever_the_greeting(self):
        # Node.js over TLS 1.2 refuses the certificate once the handshake is done, and drops the
        # connection with the greeting unread: a reset, where a client that read it closes.
        mailer = (TLS12_ANY_CERTIFICATE +
                  "raw = socket.create_connection((os.environ['SMTP_HOST'],"
                  " int(os.environ['SMTP_TLS_PORT'])))\n"
                  "tls = ctx.wrap_socket(raw)\n"
                  "time.sleep(0.2)\n"
                  "tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))\n"
                  "tls.close()\n"
                  "raise SystemExit(1)\n")
        json_path = scratch_path(self, "implicit-reset.json")
        status, out, err = run_test(["--scenario", "greeting-554", "--json", json_path, "--",
                                     PYTHON, "-c", mailer], timeout=60)
        result = verdicts(json_path)["greeting-554"]
        self.assertIn("client closed the connection (Connection reset by peer)",
                      result["transcript"])
        self.assertEqual(result["verdict"], "FAIL", result["reason"])
        self.assertRegex(result["reason"], r"^session 000001 closed right after the TLS handshake "
                         r"\(transcript line \d+\), before any command over TLS: most likely")

    def test_the_quit_check_hint_is_not_said_twice(self):
        json_path = scratch_path(self, "after-quit.json")
        status, out, err = run_test(["--scenario", "accept-all", "--json", json_path, "--",
                                     PYTHON, "-c", CLOSES_AFTER_HANDSHAKE], timeout=60)
        self.assertEqual(status, 1, out + err)
        reason = verdicts(json_path)["accept-all"]["reason"]
        self.assertEqual(reason.count("refus"), 1, reason)
        self.assertIn("quit: expected QUIT before closing", reason)


if __name__ == "__main__":
    unittest.main()
