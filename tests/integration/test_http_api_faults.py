"""Fault rules steered over the HTTP API (SPEC section 6): N-shot and until-deleted rules on
every phase, delays and endings, and certificate and STARTTLS rules."""

import os
import socket
import ssl
import time
import unittest
import urllib.parse

from http_api_case import ApiTestCase, message_bytes, rcpt_reply, smtp_send


class FaultRulesTest(ApiTestCase):
    def test_n_shot_rule_fires_exactly_n_times(self):
        target = "steer-%s@x.test" % self.tag
        status, _, rule = self.api("POST", "/api/v1/faults", {
            "match": {"on": "RCPT", "address": "steer-*@x.test"},
            "action": {"reply": {"code": 451, "enhanced": "4.7.1", "text": "try later"}},
            "times": 2})
        self.assertEqual(status, 201, rule)
        self.assertEqual((rule["times"], rule["fired"], rule["remaining"]), (2, 0, 2))
        self.assertEqual(rcpt_reply(self.server, "other@x.test"), 250, "address must match")
        codes = [rcpt_reply(self.server, target) for _ in range(4)]
        self.assertEqual(codes, [451, 451, 250, 250])
        _, _, listing = self.api("GET", "/api/v1/faults")
        self.assertEqual(listing["rules"], [])

    def test_a_rule_applies_to_a_session_opened_before_any_rule_existed(self):
        self.api("DELETE", "/api/v1/faults")
        with self.server.connect() as c:
            c.ehlo()
            c.cmd("MAIL FROM:<early@x.test>", expect=250)
            status, _, _ = self.api("POST", "/api/v1/faults", {
                "match": {"on": "RCPT"}, "action": {"reply": {"code": 451, "text": "later"}}})
            self.assertEqual(status, 201)
            deadline = time.monotonic() + 5   # the open session learns of it on its own thread
            while True:
                code = c.cmd("RCPT TO:<r@x.test>").code
                if code == 451 or time.monotonic() > deadline:
                    break
                time.sleep(0.02)
            self.assertEqual(code, 451)
            c.cmd("QUIT")

    def test_a_rule_on_an_x_verb_answers_it(self):
        self.api("DELETE", "/api/v1/faults")
        status, _, _ = self.api("POST", "/api/v1/faults", {
            "match": {"on": "xclient"}, "action": {"reply": {"code": 550, "text": "no XCLIENT"}}})
        self.assertEqual(status, 201)
        try:
            with self.server.connect() as c:
                c.ehlo()
                self.assertEqual(c.cmd("XCLIENT NAME=spike.test").code, 550)
                self.assertEqual(c.cmd("XFORWARD NAME=spike.test").code, 500)  # no rule: unknown
                c.cmd("QUIT")
        finally:
            self.api("DELETE", "/api/v1/faults")

    def test_a_reply_given_by_its_code_alone_gets_the_codes_usual_text(self):
        self.api("POST", "/api/v1/faults", {"match": {"on": "MAIL", "address": "*-%s@x.test" % self.tag},
                                            "action": {"reply": {"code": 451}}})
        self.api("POST", "/api/v1/faults", {"match": {"on": "RCPT", "address": "*-%s@x.test" % self.tag},
                                            "action": {"reply": {"code": 550, "text": ""}}})
        try:
            with self.server.connect() as c:
                c.ehlo()
                r = c.cmd("MAIL FROM:<m-%s@x.test>" % self.tag, expect=451)
                self.assertEqual(r.lines, ["Requested action aborted: local error in processing"])
                c.cmd("MAIL FROM:<a@b.test>", expect=250)
                r = c.cmd("RCPT TO:<r-%s@x.test>" % self.tag, expect=550)
                self.assertEqual(r.lines, [""])   # "text": "" asks for none
        finally:
            self.api("DELETE", "/api/v1/faults")

    def test_rule_until_deleted_and_first_match_wins(self):
        _, _, forever = self.api("POST", "/api/v1/faults", {
            "match": {"on": "rcpt"}, "action": {"reply": {"code": 550, "text": "no"}}, "times": 0})
        self.api("POST", "/api/v1/faults", {
            "match": {"on": "rcpt"}, "action": {"reply": {"code": 452, "text": "never"}}})
        self.assertEqual([rcpt_reply(self.server, "x@y.test") for _ in range(3)], [550] * 3)
        _, _, listing = self.api("GET", "/api/v1/faults")
        self.assertEqual([r["fired"] for r in listing["rules"]], [3, 0])
        # One rule by its id, as the listing has it.
        status, _, one = self.api("GET", "/api/v1/faults/" + forever["id"])
        self.assertEqual((status, one), (200, listing["rules"][0]))
        status, _, _ = self.api("DELETE", "/api/v1/faults/" + forever["id"])
        self.assertEqual(status, 200)
        self.assertEqual(rcpt_reply(self.server, "x@y.test"), 452)
        status, _, body = self.api("DELETE", "/api/v1/faults/" + forever["id"])
        self.assert_error(status, body, 404, "id")
        status, _, body = self.api("GET", "/api/v1/faults/" + forever["id"])
        self.assert_error(status, body, 404, "id")

    def test_client_network_connect_and_message_phases(self):
        self.api("POST", "/api/v1/faults", {
            "match": {"on": "MAIL", "client": "10.0.0.0/8"}, "action": {"reply": {"code": 421}}})
        self.assertEqual(rcpt_reply(self.server, "x@y.test"), 250, "127.0.0.1 is not in 10/8")
        self.api("DELETE", "/api/v1/faults")

        self.api("POST", "/api/v1/faults", {
            "match": {"on": "connect", "client": "127.0.0.1"},
            "action": {"reply": {"code": 554, "enhanced": "5.3.2", "text": "not today"}}})
        c = self.server.connect(greeting=False)
        self.assertEqual(c.reply().code, 554)
        c.close()

        self.api("POST", "/api/v1/faults", {
            "match": {"on": "message", "address": "*-%s@x.test" % self.tag},
            "action": {"reply": {"code": 552, "enhanced": "5.3.4", "text": "too big today"}}})
        with self.assertRaises(AssertionError) as e:
            smtp_send(self.server, message_bytes("refused"), rcpts=("m-%s@x.test" % self.tag,))
        self.assertIn("552", str(e.exception))
        smtp_send(self.server, message_bytes("accepted"), rcpts=("m-%s@x.test" % self.tag,))

    def test_rule_with_delay_and_ending(self):
        self.api("POST", "/api/v1/faults", {
            "match": {"on": "DATA"},
            "action": {"reply": {"code": 421, "enhanced": "4.3.0", "text": "bye"},
                       "delay": 0.2, "ending": "close_after"}})
        # Seconds read as written, not as Boost's "2E-1".
        req = urllib.request.Request(self.server.api_url("/api/v1/faults"))
        if self.server.api_token:
            req.add_header("Authorization", "Bearer " + self.server.api_token)
        with urllib.request.urlopen(req, timeout=10) as r:
            self.assertIn('"delay":0.2,', r.read().decode())
        with self.server.connect() as c:
            c.ehlo()
            c.cmd("MAIL FROM:<a@b.test>", expect=250)
            c.cmd("RCPT TO:<c@d.test>", expect=250)
            start = time.monotonic()
            c.cmd("DATA", expect=421)
            self.assertGreaterEqual(time.monotonic() - start, 0.18)
            self.assertTrue(c.closed_by_peer(timeout=5))
        # The transcript says what the rule did, in the request's words.
        self.server.wait_for_line(r"fault: rule r\d+: reply 421, delay 0\.2, ending close_after")
        _, _, metrics = self.api("GET", "/metrics")
        text = metrics.decode()
        self.assertRegex(text, r'smtpfault_faults_applied_total\{kind="delay"\} [1-9]')
        self.assertRegex(text, r"smtpfault_fault_rules_fired_total [1-9]")


class TlsRulesTest(ApiTestCase):
    CA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures",
                      "certs", "test-ca.pem")

    def handshake(self):
        """A verifying handshake on the implicit-TLS port: "" or OpenSSL's reason."""
        ctx = ssl.create_default_context(cafile=self.CA)
        with socket.create_connection((self.server.host, self.server.tls_port), timeout=5) as s:
            try:
                with ctx.wrap_socket(s, server_hostname="localhost") as t:
                    t.recv(64)
                    return ""
            except ssl.SSLCertVerificationError as e:
                return e.verify_message

    def test_a_certificate_rule_acts_on_starttls_and_before_the_implicit_handshake(self):
        # Anywhere else it would fire, be used up and change nothing: refused.
        for on in ("connect", "EHLO", "*"):
            status, _, body = self.api("POST", "/api/v1/faults", {
                "match": {"on": on}, "action": {"certificate": "wrong_host"}})
            self.assertEqual(status, 400, (on, body))
            self.assertEqual(body["field"], "match.on")
        status, _, body = self.api("POST", "/api/v1/faults", {
            "match": {"on": "STARTTLS"}, "action": {"certificate": "expired"}})
        self.assertEqual(status, 201, body)
        self.assertEqual(self.handshake(), "certificate has expired")
        self.assertEqual(self.handshake(), "", "the rule was for one handshake")

    def test_a_starttls_reply_rule_is_left_for_a_starttls_command(self):
        self.api("POST", "/api/v1/faults", {"match": {"on": "STARTTLS"}, "action": {
            "reply": {"code": 454, "enhanced": "4.7.0", "text": "TLS not available"}}})
        self.assertEqual(self.handshake(), "", "the implicit-TLS port has no reply to give")
        with self.server.connect() as c:
            c.ehlo()
            c.cmd("STARTTLS", expect=454)


if __name__ == "__main__":
    unittest.main()
