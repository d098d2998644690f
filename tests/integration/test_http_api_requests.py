"""The HTTP API as an HTTP server (SPEC section 6): bad requests name the field, the request
deadline, the bearer token, health, readiness and metrics, `smtpfault healthcheck`, and
`smtpfault test` handing the API to the command under test."""

import json
import socket
import subprocess
import threading
import time
import unittest

from smtpfault_server import (SmtpfaultServer, binary_path, refusing_port, send_message,
                              server_environment)
from http_api_case import ApiTestCase, curl, message_bytes, smtp_send


class BadRequestTest(ApiTestCase):
    def check(self, method, path, body, status, field=None):
        st, _, b = self.api(method, path, body)
        self.assert_error(st, b, status, field)
        return b

    def test_a_field_given_twice_is_refused_not_half_read(self):
        b = self.check("POST", "/api/v1/faults",
                       '{"match": {"on": "RCPT", "address": "*@j4"}, "match": {"on": "MAIL"},'
                       ' "action": {"reply": {"code": 451}}}', 400, "match")
        self.assertIn("given twice", b["error"])
        self.check("PUT", "/api/v1/scenario", '{"name": "accept-all", "name": "greylist"}', 400,
                   "name")
        _, _, listing = self.api("GET", "/api/v1/faults")
        self.assertEqual(listing["rules"], [])

    def test_a_broken_percent_escape_is_refused_not_searched_for(self):
        b = self.check("GET", "/api/v1/messages?to=%ZZ", None, 400, "to")
        self.assertIn("'to=%ZZ' has a '%' not followed by two hex digits", b["error"])
        self.check("GET", "/api/v1/messages/wait?count=1&timeout=0&test=50%", None, 400, "test")
        st, _, b = self.api("GET", "/api/v1/messages?to=a%40b.test")
        self.assertEqual(st, 200, b)

    def get_in_absolute_form(self, rest):
        """The raw reply to GET http://127.0.0.1:PORT<rest>, the form some proxies send."""
        with socket.create_connection(("127.0.0.1", self.server.api_port), timeout=5) as s:
            s.sendall(b"GET http://127.0.0.1:%d%s HTTP/1.1\r\nHost: x\r\nConnection: close"
                      b"\r\n\r\n" % (self.server.api_port, rest))
            reply = b""
            while chunk := s.recv(65536):
                reply += chunk
        return reply

    def test_the_absolute_form_of_a_request_target_is_understood(self):
        # RFC 9112 3.2.2: a server must accept it; some proxies send it.
        reply = self.get_in_absolute_form(b"/api/v1/messages?limit=1")
        self.assertTrue(reply.startswith(b"HTTP/1.1 200 "), reply[:200])
        self.assertIn(b'"total"', reply)
        # With no path, the query still counts: "/?limit=1" is no endpoint, and says so.
        reply = self.get_in_absolute_form(b"?limit=1")
        self.assertTrue(reply.startswith(b"HTTP/1.1 404 "), reply[:200])

    def test_a_client_that_expects_100_continue_gets_it_before_it_sends_the_body(self):
        # RFC 9110 10.1.1: without the 100, curl waits a second before it sends the body.
        body = b'{"action": {"delay": 0.1}, "match": {"on": "NOOP"}, "times": 1}'
        with socket.create_connection(("127.0.0.1", self.server.api_port), timeout=5) as s:
            s.sendall(b"POST /api/v1/faults HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                      b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body))
            first = s.recv(65536)
            self.assertTrue(first.startswith(b"HTTP/1.1 100 Continue\r\n"), first)
            s.sendall(body)
            reply = first
            while chunk := s.recv(65536):
                reply += chunk
        self.assertIn(b"HTTP/1.1 201 ", reply)
        status, _, rules = self.api("GET", "/api/v1/faults")
        for r in rules["rules"]:
            self.api("DELETE", "/api/v1/faults/" + r["id"])

    def raw_exchange(self, request):
        """Everything the API answers to request, read until it closes the connection."""
        with socket.create_connection(("127.0.0.1", self.server.api_port), timeout=5) as s:
            s.sendall(request)
            reply = b""
            while chunk := s.recv(65536):
                reply += chunk
        return reply

    def test_a_body_whose_length_cannot_be_known_is_refused_not_run_as_a_request(self):
        # RFC 9112 6.3: with a transfer coding other than a final chunked, the body's length is
        # unknown; read as empty, the body would be the connection's next request.
        send_message(self.server, b"Subject: kept\r\n\r\nkept\r\n")
        _, _, before = self.api("GET", "/api/v1/messages")
        smuggled = b"DELETE /api/v1/messages HTTP/1.1\r\nHost: x\r\n\r\n"
        for coding, version, status in ((b"identity", b"1.1", 400), (b"gzip", b"1.1", 400),
                                        (b"gzip, chunked", b"1.1", 501),
                                        (b"chunked", b"1.0", 400)):
            reply = self.raw_exchange(b"PUT /api/v1/scenario HTTP/" + version + b"\r\nHost: x\r\n"
                                      b"Transfer-Encoding: " + coding + b"\r\n\r\n" + smuggled)
            head, _, body = reply.partition(b"\r\n\r\n")
            self.assertTrue(head.startswith(b"HTTP/1.1 %d " % status), (coding, reply))
            self.assertIn(b"Connection: close", head)
            self.assertIn("Transfer-Encoding", json.loads(body)["error"])
            self.assertEqual(reply.count(b"HTTP/1.1 "), 1, reply)
        _, _, after = self.api("GET", "/api/v1/messages")
        self.assertEqual(after["total"], before["total"], after)
        self.assertGreater(after["total"], 0)
        # Chunked alone is read as it always was.
        body = b'{"name": "accept-all"}'
        reply = self.raw_exchange(b"PUT /api/v1/scenario HTTP/1.1\r\nHost: x\r\nConnection: close"
                                  b"\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n"
                                  % (len(body), body))
        self.assertTrue(reply.startswith(b"HTTP/1.1 200 "), reply)

    def test_a_url_too_long_is_said_to_be_one(self):
        status, _, body = self.api("GET", "/api/v1/messages?to=" + "a" * 20000)
        self.assertEqual(status, 431, body)
        self.assertIn("a long URL counts", body["error"])

    def test_malformed_json(self):
        b = self.check("POST", "/api/v1/faults", "{not json", 400)
        self.assertEqual(b["error"], "malformed JSON at octet 1: syntax error")
        # Where it stopped, and why when the octets themselves are the reason.
        b = self.check("POST", "/api/v1/faults", b'{"a":"\xff\xfe"}', 400)
        self.assertEqual(b["error"], "malformed JSON at octet 6: syntax error (invalid UTF-8 there)")
        b = self.check("POST", "/api/v1/faults", b"\xef\xbb\xbf{}", 400)
        self.assertIn("a UTF-8 byte order mark starts the body", b["error"])
        self.check("PUT", "/api/v1/scenario", "[1, 2]", 400)
        # No body at all is said to be that, not an incomplete JSON text at octet 0.
        b = self.check("PUT", "/api/v1/scenario", "", 400)
        self.assertEqual(b["error"], "the body is empty: send a JSON object")

    def test_unknown_fields_and_wrong_types_name_the_field(self):
        rule = {"action": {"reply": {"code": 451}}}
        self.check("POST", "/api/v1/faults", dict(rule, colour="red"), 400, "colour")
        self.check("POST", "/api/v1/faults", {"action": {"reply": {"code": "451"}}}, 400,
                   "action.reply.code")
        self.check("POST", "/api/v1/faults", {"action": {"reply": {"code": 451, "txt": "x"}}}, 400,
                   "action.reply.txt")
        for bad in ("banana", "4.7", "4.7.1 ", "4.7.1\r\n", "3.0.0", "4.7.1234"):
            self.check("POST", "/api/v1/faults",
                       {"action": {"reply": {"code": 451, "enhanced": bad}}}, 400,
                       "action.reply.enhanced")
        self.check("POST", "/api/v1/faults", {"action": {"delay": -1}}, 400, "action.delay")
        for cuts in ([500, 3], [3, 3], [0]):
            self.check("POST", "/api/v1/faults", {"action": {"split": cuts}}, 400, "action.split")
        self.check("POST", "/api/v1/faults", {"action": {"ending": "explode"}}, 400, "action.ending")
        # Fields that would be dropped without a word.
        self.check("POST", "/api/v1/faults", {"action": {"raw": "HELLO\r\n",
                                                         "reply": {"code": 250}}}, 400, "action.raw")
        b = self.check("POST", "/api/v1/faults", {"match": {"on": "STARTTLS"},
                                                  "action": {"inject": "x"}}, 400, "action.inject")
        self.assertIn('"starttls": "inject"', b["error"])
        self.check("POST", "/api/v1/faults", dict(rule, times=-1), 400, "times")
        self.check("POST", "/api/v1/faults", dict(rule, match={"client": "300.1.1.1"}), 400,
                   "match.client")
        self.check("POST", "/api/v1/faults", dict(rule, match={"on": "RC PT"}), 400, "match.on")
        # Rules that could never fire, or would fire on everything, are refused too.
        b = self.check("POST", "/api/v1/faults", dict(rule, match={"on": "RCTP"}), 400, "match.on")
        self.assertIn("RCPT", b["error"])
        self.check("POST", "/api/v1/faults", dict(rule, match={"on": "X"}), 400, "match.on")
        self.check("POST", "/api/v1/faults", dict(rule, match={"on": "connect", "address": "x*"}),
                   400, "match.address")
        self.check("POST", "/api/v1/faults", dict(rule, match={"on": "EHLO", "address": "x*"}),
                   400, "match.address")
        self.check("POST", "/api/v1/faults", dict(rule, match={"address": ""}), 400,
                   "match.address")
        b = self.check("POST", "/api/v1/faults", {"match": {"on": "EHLO"},
                                                  "action": {"hide": ["STARTTL"]}}, 400, "action.hide")
        self.assertIn("'STARTTL' is not an extension", b["error"])
        self.check("POST", "/api/v1/faults", {"match": {"on": "EHLO"},
                                              "action": {"extensions": ["FOO\r\n250 X"]}}, 400,
                   "action.extensions")
        for fine in ({"on": "xclient"}, {"on": "rcpt", "address": "*@x.test"},
                     {"address": "*@x.test"}, {"on": "message", "address": "a@x.test"}):
            status, _, body = self.api("POST", "/api/v1/faults", dict(rule, match=fine))
            self.assertEqual(status, 201, (fine, body))
        self.api("DELETE", "/api/v1/faults")
        self.check("POST", "/api/v1/faults", {"match": {"on": "RCPT"}}, 400, "action")
        self.check("POST", "/api/v1/faults", {"action": {}}, 400, "action")
        # A delay shorter than a millisecond is still a delay, not an empty action.
        status, _, body = self.api("POST", "/api/v1/faults", {"match": {"on": "RCPT"},
                                                              "action": {"delay": 0.0004}})
        self.assertEqual(status, 201, body)
        self.api("DELETE", "/api/v1/faults")
        self.check("PUT", "/api/v1/scenario", {"name": 7}, 400, "name")
        self.check("PUT", "/api/v1/scenario", {"name": "greylist", "seed": "x"}, 400, "seed")
        self.check("PUT", "/api/v1/scenario", {}, 400, "name")
        b = self.check("PUT", "/api/v1/scenario", {"name": "greylist", "source": "x = 1"}, 400,
                       "name")
        self.assertIn("must end in .lua", b["error"])

    def test_query_parameters(self):
        self.check("GET", "/api/v1/messages?limit=0", None, 400, "limit")
        self.check("GET", "/api/v1/messages?colour=red", None, 400, "colour")
        self.check("GET", "/api/v1/messages?since=yesterday", None, 400, "since")
        # "+02:00" typed into a URL arrives as " 02:00": still the offset it was meant as. An
        # hour ago in +02:00 is one hour ahead on the clock: the message must be found, which
        # it would not be were the offset read as -02:00 (three hours ahead).
        import datetime
        smtp_send(self.server, message_bytes("offset", test=self.tag))
        local = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
        _, _, found = self.api("GET", "/api/v1/messages?test=%s&since=%s+02:00"
                               % (self.tag, local.strftime("%Y-%m-%dT%H:%M:%S")))
        self.assertEqual(found["total"], 1, found)
        self.check("GET", "/api/v1/messages/wait?timeout=abc", None, 400, "timeout")
        self.check("GET", "/api/v1/messages/wait?count=0", None, 400, "count")
        # An empty recipient filter (a variable left unset) matches no message: it would only
        # ever time out.
        b = self.check("GET", "/api/v1/messages/wait?to=&timeout=30", None, 400, "to")
        self.assertIn("leave it out to match any recipient", b["error"])
        self.check("GET", "/api/v1/messages?to=", None, 400, "to")
        # Every subject holds the empty string: subject= would take the first message to come.
        b = self.check("GET", "/api/v1/messages/wait?subject=&timeout=30", None, 400, "subject")
        self.assertIn("leave it out to match any subject", b["error"])

    def test_a_query_parameter_an_endpoint_does_not_take_is_refused_not_ignored(self):
        for i in range(2):
            self.api("POST", "/api/v1/faults", {"match": {"address": "q%d-%s@x.test" % (i, self.tag)},
                                                "action": {"reply": {"code": 451}}})
        # It deleted every rule: the id in the query was read by nobody.
        self.check("DELETE", "/api/v1/faults?id=r1", None, 400, "id")
        _, _, listing = self.api("GET", "/api/v1/faults")
        self.assertEqual(len(listing["rules"]), 2)
        for path in ("/api/v1/faults?x=1", "/api/v1/scenario?x=1", "/api/v1/expectations?x=1",
                     "/metrics?x=1", "/healthz?x=1", "/api/v1/messages/some-id?x=1"):
            self.check("GET", path, None, 400, "x")
        self.check("DELETE", "/api/v1/messages?to=x", None, 400, "to")
        self.check("DELETE", "/api/v1/sessions?all=1", None, 400, "all")
        # The refusal lists what the endpoint does take.
        st, _, b = self.api("GET", "/api/v1/messages/wait?limit=1")
        self.assertEqual(st, 400, b)
        self.assertEqual(b["error"], "query parameter limit: unknown parameter (this endpoint "
                                     "takes count, from, since, subject, test, timeout, to)")
        # A slip gets a "did you mean", in the query and in a rule's fields and verb alike.
        st, _, b = self.api("GET", "/api/v1/messages?subjct=x")
        self.assertEqual(b["error"], "query parameter subjct: unknown parameter (did you mean "
                                     "'subject'?) (this endpoint takes from, limit, offset, since, "
                                     "subject, test, to)")
        st, _, b = self.api("POST", "/api/v1/faults", {"match": {"on": "RCPT"},
                                                       "action": {"replly": {"code": 451}}})
        self.assertEqual((st, b["error"]), (400, "action.replly: unknown field (did you mean "
                                                 "'reply'?)"))
        # A required field misspelt is named as the unknown one, not as missing.
        for body, error in (({"actoin": {}}, "actoin: unknown field (did you mean 'action'?)"),
                            ({"action": {"reply": {"cdoe": 451}}},
                             "action.reply.cdoe: unknown field (did you mean 'code'?)"),
                            ({"action": {"trickle": {"byts": 1}}},
                             "action.trickle.byts: unknown field (did you mean 'bytes'?)"),
                            ({}, "action: is required"),
                            ({"action": {"reply": {}}}, "action.reply.code: is required (100 to 599)")):
            st, _, b = self.api("POST", "/api/v1/faults", body)
            self.assertEqual((st, b["error"]), (400, error), body)
        st, _, b = self.api("POST", "/api/v1/faults", {"match": {"on": "RCTP"},
                                                       "action": {"reply": {"code": 451}}})
        self.assertEqual(st, 400, b)
        self.assertTrue(b["error"].endswith("(did you mean 'RCPT'?)"), b)
        st, _, b = self.api("GET", "/healthz?x=1")
        self.assertIn("(this endpoint takes none)", b["error"])
        st, _, b = self.api("GET", "/api/v1/messages?=x")
        self.assertEqual((st, b["error"]), (400, "query string: a parameter with no name ('=x')"))
        self.api("DELETE", "/api/v1/faults")

    def test_not_found_and_method_not_allowed(self):
        self.check("GET", "/api/v1/messages/no-such-id", None, 404, "id")
        self.check("GET", "/api/v1/messages/no-such-id/raw", None, 404, "id")
        self.check("GET", "/api/v1/sessions/ffffff", None, 404, "id")
        self.check("GET", "/api/v2/nothing", None, 404)
        st, hdrs, b = self.api("POST", "/api/v1/messages", {})
        self.assert_error(st, b, 405)
        self.assertIn("GET", hdrs["Allow"])
        # A method HTTP does not define is named as sent.
        st, hdrs, b = self.api("FOO", "/api/v1/messages")
        self.assert_error(st, b, 405)
        self.assertIn("FOO is not allowed on /api/v1/messages", str(b))

    def test_oversized_body_is_refused(self):
        st, _, b = self.api("PUT", "/api/v1/scenario",
                            json.dumps({"source": "-- " + "x" * (2 * 1024 * 1024)}))
        self.assert_error(st, b, 413)


class RequestDeadlineTest(ApiTestCase):
    SERVER_ARGS = ("--api-request-timeout", "1")

    @staticmethod
    def read_to_eof(s):
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return data
            data += chunk

    def test_a_request_that_never_ends_gets_408_at_the_deadline(self):
        with socket.create_connection(("127.0.0.1", self.server.api_port), timeout=5) as s:
            start = time.monotonic()
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")   # the blank line never comes
            answer = self.read_to_eof(s)
            elapsed = time.monotonic() - start
        self.assertGreater(elapsed, 0.8)
        self.assertLess(elapsed, 2.5)
        head, _, body = answer.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 408 "), answer)
        self.assertIn(b"Connection: close", head)
        self.assertEqual(json.loads(body)["error"], "request not complete within 1 s")
        status, _, _ = self.api("GET", "/healthz")   # and the API still answers others
        self.assertEqual(status, 200)

    def test_an_idle_connection_is_closed_without_a_word(self):
        with socket.create_connection(("127.0.0.1", self.server.api_port), timeout=5) as s:
            start = time.monotonic()
            self.assertEqual(self.read_to_eof(s), b"")
            self.assertLess(time.monotonic() - start, 2.5)


class TokenTest(ApiTestCase):
    TOKEN = "s3cret-token"

    def test_token_enforced(self):
        st, hdrs, b = self.api("GET", "/api/v1/messages", token="")
        self.assert_error(st, b, 401)
        self.assertIn("Bearer", hdrs["WWW-Authenticate"])
        st, _, b = self.api("GET", "/api/v1/messages", token="wrong")
        self.assert_error(st, b, 401)
        st, _, b = self.api("GET", "/metrics", token="")
        self.assertEqual(st, 401)
        self.assertEqual(self.api("GET", "/api/v1/messages")[0], 200)
        code, _ = curl(self.server, self.server.api_url("/api/v1/faults"), token=self.TOKEN)
        self.assertEqual(code, 200)
        code, _ = curl(self.server, "-X", "DELETE", self.server.api_url("/api/v1/faults"))
        self.assertEqual(code, 401)
        # Health checks stay open: orchestrators probe without credentials.
        self.assertEqual(self.api("GET", "/readyz", token="")[0], 200)
        # Without the token nothing else is told, not even which paths exist.
        self.assertEqual(self.api("GET", "/api/v1/nope", token="")[0], 401)
        self.assertEqual(self.api("POST", "/api/v1/messages", {}, token="")[0], 401)
        self.assertEqual(self.api("GET", "/api/v1/nope")[0], 404)

    def test_token_from_the_environment(self):
        server = SmtpfaultServer(env={"SMTPFAULT_API_TOKEN": "from-env"}).start()
        try:
            self.assertEqual(server.api("GET", "/api/v1/messages", token="")[0], 401)
            self.assertEqual(server.api("GET", "/api/v1/messages", token="from-env")[0], 200)
        finally:
            server.stop()
            server.cleanup()


class HealthTest(ApiTestCase):
    def test_health_ready_and_metrics(self):
        self.assertEqual(self.api("GET", "/healthz")[2], {"status": "ok"})
        self.assertEqual(self.api("GET", "/readyz")[2], {"status": "ready"})
        smtp_send(self.server, message_bytes("metrics"))
        st, hdrs, body = self.api("GET", "/metrics")
        self.assertEqual(st, 200)
        self.assertTrue(hdrs["Content-Type"].startswith("text/plain"))
        text = body.decode()
        for name in ("smtpfault_sessions_total", "smtpfault_messages_total",
                     "smtpfault_received_bytes_total", "smtpfault_sent_bytes_total",
                     'smtpfault_tls_handshakes_total{result="ok"}', "smtpfault_lua_errors_total",
                     'smtpfault_faults_applied_total{kind="reply"}'):
            self.assertRegex(text, r"(?m)^%s \d+$" % name.replace("{", r"\{").replace("}", r"\}"))
        self.assertRegex(text, r"(?m)^smtpfault_messages_total [1-9]")
        self.assertIn("# TYPE smtpfault_sessions_total counter", text)

    def test_healthcheck_command(self):
        ok = subprocess.run([binary_path(), "healthcheck", "--api", "127.0.0.1:%d" % self.server.api_port],
                            capture_output=True, timeout=10)
        self.assertEqual(ok.returncode, 0, ok.stderr)
        with refusing_port() as port:
            bad = subprocess.run([binary_path(), "healthcheck", "--api", "127.0.0.1:%d" % port,
                                  "--timeout", "1"], capture_output=True, timeout=10)
        self.assertEqual(bad.returncode, 1)
        self.assertIn(b"127.0.0.1", bad.stderr)
        self.assertIn(b"cannot connect", bad.stderr)
        # Something listens but never answers: the deadline, said as such.
        with socket.socket() as mute:
            mute.bind(("127.0.0.1", 0))
            mute.listen()
            slow = subprocess.run([binary_path(), "healthcheck", "--api",
                                   "127.0.0.1:%d" % mute.getsockname()[1], "--timeout", "0.5"],
                                  capture_output=True, text=True, timeout=10)
        self.assertEqual(slow.returncode, 1)
        self.assertIn("no answer within 0.5 s", slow.stderr)
        # The SMTP port given by mistake: said so, with what answered.
        smtp = subprocess.run([binary_path(), "healthcheck", "--api",
                               "127.0.0.1:%d" % self.server.port, "--timeout", "2"],
                              capture_output=True, text=True, timeout=10)
        self.assertEqual(smtp.returncode, 1)
        self.assertIn("no HTTP reply (it began '220 ", smtp.stderr)
        self.assertIn("'): is this the API's port, not an SMTP one?", smtp.stderr)

    def test_healthcheck_reads_the_status_line_of_any_http_server(self):
        cases = [
            # (what the peer answers, exit status, what stderr must say)
            (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n", 0, ""),
            (b"HTTP/1.0 200\r\n\r\n", 0, ""),  # no reason phrase
            (b"HTTP/1.1 503 Service Unavailable\r\n\r\n", 1, "not ready (HTTP 503)"),
            (b"", 1, "the server closed the connection unanswered"),
            (b"HTTP/1.1 2", 1, "no HTTP reply (it began 'HTTP/1.1 2')"),
            (b"HTTP/2 200\r\n\r\n", 1, "no HTTP reply (it began 'HTTP/2 200')"),
            (b"\x1b]0;title\x07\r\n", 1, "no HTTP reply (it began '\\x1b]0;title\\x07')"),
        ]
        for answer, status, words in cases:
            with self.subTest(answer=answer):
                request, r = self.probe_peer(answer, "--api-token", "s3cret")
                self.assertEqual(r.returncode, status, r.stderr)
                self.assertIn(words, r.stderr)
                self.assertTrue(request.startswith(b"GET /readyz HTTP/1.1\r\n"), request)
                self.assertIn(b"\r\nConnection: close\r\n", request)
                self.assertIn(b"\r\nAuthorization: Bearer s3cret\r\n", request)
                self.assertTrue(request.endswith(b"\r\n\r\n"), request)

    def probe_peer(self, answer, *flags):
        """Runs healthcheck against a one-shot peer that reads the request and sends `answer`;
        returns (the request, the completed process)."""
        got = []
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            port = listener.getsockname()[1]

            def serve():
                conn, _ = listener.accept()
                with conn:
                    data = b""
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    got.append(data)
                    conn.sendall(answer)

            peer = threading.Thread(target=serve)
            peer.start()
            r = subprocess.run([binary_path(), "healthcheck", "--api", "127.0.0.1:%d" % port,
                                "--timeout", "5"] + list(flags),
                               capture_output=True, text=True, timeout=20)
            peer.join(10)
        self.assertEqual(len(got), 1)
        host = b"\r\nHost: 127.0.0.1:%d\r\n" % port
        self.assertIn(host, got[0])
        return got[0], r


class TestCommandApiTest(unittest.TestCase):
    def test_the_command_reaches_the_api_through_SMTPFAULT_API(self):
        script = ('curl -sf "http://$SMTPFAULT_API/readyz" >/dev/null && '
                  'swaks --server "$SMTP_SERVER" --to api@x.test >/dev/null && '
                  'curl -sf "http://$SMTPFAULT_API/api/v1/messages/wait?to=api@x.test&timeout=10"')
        run = subprocess.run([binary_path(), "test", "--scenario", "accept-all", "--", "sh", "-c",
                              script], capture_output=True, timeout=60,
                             env=server_environment())
        self.assertEqual(run.returncode, 0, run.stdout.decode(errors="replace"))


if __name__ == "__main__":
    unittest.main()
