"""The HTTP API's messages and sessions (SPEC section 6) while smtplib sends: listing,
filters and pagination, detail and raw bytes, long-poll wait, deletion, retention, sessions and
transcripts."""

import json
import os
import smtplib
import socket
import subprocess
import threading
import time
import unittest
import urllib.parse
from email.message import EmailMessage

from smtpfault_server import SmtpfaultServer
from http_api_case import ApiTestCase, curl, message_bytes, smtp_send


class MimeTest(ApiTestCase):
    """What a mailer's multipart message holds, read over the API without a MIME library."""

    def test_text_html_and_attachments_are_decoded(self):
        m = EmailMessage()
        m["From"], m["To"], m["Subject"] = "a@example.com", "b@example.com", "Grüße"
        m["X-Smtpfault-Test"] = self.tag
        m.set_content("Hallo Jürgen,\nyour link: https://x.test/reset/42\n", charset="iso-8859-1",
                      cte="quoted-printable")
        m.add_alternative("<p>Hallo J&uuml;rgen</p>\n", subtype="html")
        pdf = b"%PDF-1.4\x00\xff\xfe binary"
        m.add_attachment(pdf, maintype="application", subtype="pdf", filename="Rechnung März.pdf")
        msg_id = smtp_send(self.server, m.as_bytes().replace(b"\n", b"\r\n"))

        status, _, body = self.api("GET", "/api/v1/messages/" + msg_id)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["text"], "Hallo Jürgen,\r\nyour link: https://x.test/reset/42\r\n")
        self.assertEqual(body["html"], "<p>Hallo J&uuml;rgen</p>\r\n")
        self.assertEqual(body["mime_problems"], [])
        parts = {p["part"]: p for p in body["parts"]}
        self.assertEqual(sorted(parts), ["1.1", "1.2", "2"])
        self.assertEqual((parts["1.1"]["content_type"], parts["1.1"]["charset"],
                          parts["1.1"]["encoding"]), ("text/plain", "iso-8859-1",
                                                      "quoted-printable"))
        attachment = parts["2"]
        self.assertEqual((attachment["filename"], attachment["attachment"], attachment["size"]),
                         ("Rechnung März.pdf", True, len(pdf)))

        # The attachment itself, with curl as a test would fetch it.
        code, raw = curl(self.server, "-D", "-", self.server.api_url(
            "/api/v1/messages/%s/parts/2" % msg_id), token=self.server.api_token)
        self.assertEqual(code, 200)
        head, _, data = raw.partition(b"\r\n\r\n")
        self.assertEqual(data, pdf)
        self.assertIn(b"Content-Type: application/pdf", head)
        self.assertIn(b"filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf", head)
        self.assertIn(b"X-Content-Type-Options: nosniff", head)

    def test_a_part_cannot_add_response_headers_or_render_on_the_apis_origin(self):
        raw = ("Subject: split\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
               "--b\r\nContent-Type: text/plain; charset*=''utf-8%0D%0ASet-Cookie:%20sid=evil"
               "%0D%0A%0D%0A<script>x</script>\r\n\r\nhello\r\n"
               "--b\r\nContent-Type: text/html\r\n\r\n<script>alert(1)</script>\r\n"
               "--b--\r\n").encode()
        msg_id = smtp_send(self.server, raw)
        for part in ("1", "2"):
            code, got = curl(self.server, "-D", "-", self.server.api_url(
                "/api/v1/messages/%s/parts/%s" % (msg_id, part)), token=self.server.api_token)
            self.assertEqual(code, 200)
            head = got.partition(b"\r\n\r\n")[0].lower()
            self.assertNotIn(b"set-cookie", head)
            self.assertIn(b"content-disposition: attachment", head)
            self.assertIn(b"content-security-policy: sandbox", head)
        # The charset that carried the line breaks is left out, the type kept.
        code, got = curl(self.server, "-D", "-", self.server.api_url(
            "/api/v1/messages/%s/parts/1" % msg_id), token=self.server.api_token)
        self.assertIn(b"content-type: text/plain\r\n", got.partition(b"\r\n\r\n")[0].lower()
                      + b"\r\n")
        status, _, err = self.api("GET", "/api/v1/messages/%s/parts/7" % msg_id)
        self.assertEqual((status, err["field"]), (404, "part"), err)

    def test_a_plain_message_is_one_part_and_broken_mime_is_said(self):
        plain = smtp_send(self.server, message_bytes("plain", test=self.tag, body="just text"))
        _, _, body = self.api("GET", "/api/v1/messages/" + plain)
        self.assertEqual(body["text"], "just text\r\n")
        self.assertIsNone(body["html"])
        self.assertEqual([p["part"] for p in body["parts"]], ["1"])
        broken = smtp_send(self.server, (
            "Subject: broken\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
            "--b\r\nContent-Transfer-Encoding: base64\r\nContent-Type: text/plain\r\n\r\n"
            "not*base64\r\n").encode())
        _, _, body = self.api("GET", "/api/v1/messages/" + broken)
        self.assertEqual(body["mime_problems"], [
            "part 1: not valid base64",
            "the message: no closing boundary \"--b--\": its last part runs to the end"])
        self.assertIsNone(body["text"])

    def test_a_header_section_past_the_fields_listed_says_so(self):
        many = "".join("X-H%d: v\r\n" % i for i in range(1200))
        mid = smtp_send(self.server, (many + "Subject: late\r\n\r\nbody\r\n").encode())
        _, _, body = self.api("GET", "/api/v1/messages/" + mid)
        self.assertEqual(len(body["headers"]), 1000)
        self.assertIsNone(body["subject"])   # after the 1,000th: not read, and said
        self.assertEqual(body["mime_problems"][0],
                         "over 1000 header fields: the rest are not listed, and subject, test "
                         "and the filters do not see them")


def fd_links(pid):
    """What each open descriptor of process pid points at; one closed meanwhile is left out."""
    folder = "/proc/%d/fd" % pid
    links = []
    for name in os.listdir(folder):
        try:
            links.append(os.readlink(os.path.join(folder, name)))
        except OSError:
            pass
    return links


class MessagesTest(ApiTestCase):
    def test_a_plus_in_an_address_filter_is_a_plus(self):
        # Written by hand (curl) or encoded as %2B by a form encoder, a plus-address is found;
        # read as a form's space, it would match nothing.
        mid = smtp_send(self.server, message_bytes("plus", test=self.tag),
                        mail_from="bounce+%s@shop.test" % self.tag,
                        rcpts=("a+%s@x.test" % self.tag,))
        for query in ("to=a+%s@x.test", "to=a%%2B%s@x.test", "from=bounce+%s@shop.test",
                      "to=a+%s@*"):
            _, _, body = self.api("GET", "/api/v1/messages?" + query % self.tag)
            self.assertEqual([m["id"] for m in body["messages"]], [mid], query)
        # The subject keeps a form's spaces.
        _, _, body = self.api("GET", "/api/v1/messages?subject=pl+&test=" + self.tag)
        self.assertEqual(body["total"], 0)

    def test_list_filters_and_pagination(self):
        ids = [smtp_send(self.server, message_bytes("Invoice %d" % i, test=self.tag),
                         mail_from="billing%d@shop.test" % i, rcpts=("%s-%d@x.test" % (self.tag, i),))
               for i in range(3)]
        smtp_send(self.server, message_bytes("unrelated", test="other-" + self.tag))

        status, _, body = self.api("GET", "/api/v1/messages?test=" + self.tag)
        self.assertEqual(status, 200)
        self.assertEqual([m["id"] for m in body["messages"]], ids)
        self.assertEqual(body["total"], 3)
        first = body["messages"][0]
        self.assertEqual(first["subject"], "Invoice 0")
        self.assertEqual(first["mail_from"], "billing0@shop.test")
        self.assertEqual(first["recipients"], ["%s-0@x.test" % self.tag])

        _, _, body = self.api("GET", "/api/v1/messages?to=%s-1@x.test" % self.tag)
        self.assertEqual([m["id"] for m in body["messages"]], [ids[1]])
        _, _, body = self.api("GET", "/api/v1/messages?to=%s-*@X.TEST" % self.tag)
        self.assertEqual(body["total"], 3, "to= is a case-insensitive glob")
        _, _, body = self.api("GET", "/api/v1/messages?from=billing2@shop.test&test=" + self.tag)
        self.assertEqual([m["id"] for m in body["messages"]], [ids[2]])
        _, _, body = self.api("GET", "/api/v1/messages?subject=invoice%201&test=" + self.tag)
        self.assertEqual([m["id"] for m in body["messages"]], [ids[1]])

        _, _, body = self.api("GET", "/api/v1/messages?limit=2&offset=1&test=" + self.tag)
        self.assertEqual((body["total"], body["offset"], body["count"]), (3, 1, 2))
        self.assertEqual([m["id"] for m in body["messages"]], ids[1:])

        received = first["received"]
        _, _, body = self.api("GET", "/api/v1/messages?test=%s&since=%s" % (self.tag, received))
        self.assertGreaterEqual(body["total"], 1)
        _, _, body = self.api("GET", "/api/v1/messages?test=%s&since=2999-01-01T00:00:00Z" % self.tag)
        self.assertEqual(body["total"], 0)
        # A date alone is its midnight, UTC.
        for since, total in (("2999-01-01", 0), ("2000-01-01", 3)):
            status, _, body = self.api("GET", "/api/v1/messages?test=%s&since=%s" % (self.tag, since))
            self.assertEqual((status, body.get("total")), (200, total), body)
        # from= alone is the null reverse-path: a bounce, and none of these.
        _, _, body = self.api("GET", "/api/v1/messages?from=&test=" + self.tag)
        self.assertEqual(body["total"], 0)
        bounce = smtp_send(self.server, message_bytes("Undelivered", test=self.tag), mail_from="",
                           rcpts=("%s-bounce@x.test" % self.tag,))
        _, _, body = self.api("GET", "/api/v1/messages?from=&test=" + self.tag)
        self.assertEqual([m["id"] for m in body["messages"]], [bounce])

    def test_an_encoded_subject_is_shown_and_found_as_its_text(self):
        # Mailers send a non-ASCII subject as RFC 2047 words; the API decodes them.
        import email.message
        import email.policy
        m = email.message.EmailMessage(policy=email.policy.SMTP)
        m["From"], m["To"] = "a@example.com", "b@example.com"
        m["Subject"] = "Grüße aus Köln"
        m["X-Smtpfault-Test"] = self.tag
        m.set_content("hallo")
        raw = m.as_bytes()
        self.assertIn(b"=?utf-8?", raw)
        with smtplib.SMTP(self.server.host, self.server.port, timeout=10) as c:
            c.sendmail("a@example.com", ["b@example.com"], raw)
        _, _, body = self.api("GET", "/api/v1/messages?subject=%s&test=%s" % (
            urllib.parse.quote("aus Köln"), self.tag))
        self.assertEqual(body["total"], 1, body)
        self.assertEqual(body["messages"][0]["subject"], "Grüße aus Köln")
        _, _, detail = self.api("GET", "/api/v1/messages/" + body["messages"][0]["id"])
        self.assertEqual(detail["subject"], "Grüße aus Köln")
        subject = [h["value"] for h in detail["headers"] if h["name"] == "Subject"]
        self.assertIn("=?utf-8?", subject[0], "the headers stay as they were sent")

    def test_detail_and_raw_bytes_equal_what_was_sent(self):
        raw = message_bytes("Raw check", test=self.tag, body="line one\r\n.dot line\r\n\tend")
        mid = smtp_send(self.server, raw, rcpts=("a-%s@x.test" % self.tag, "b@x.test"))

        status, hdrs, body = self.api("GET", "/api/v1/messages/%s/raw" % mid)
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["Content-Type"], "message/rfc822")
        self.assertEqual(body, raw)

        code, curl_body = curl(self.server, self.server.api_url("/api/v1/messages/%s/raw" % mid))
        self.assertEqual((code, curl_body), (200, raw))

        status, _, d = self.api("GET", "/api/v1/messages/" + mid)
        self.assertEqual(status, 200)
        self.assertEqual(d["id"], mid)
        self.assertEqual(d["size"], len(raw))
        self.assertEqual([r["address"] for r in d["recipients"]], ["a-%s@x.test" % self.tag, "b@x.test"])
        self.assertEqual(d["mail_from"], "sender@example.com")
        self.assertEqual(d["subject"], "Raw check")
        self.assertEqual(d["test"], self.tag)
        self.assertIn({"name": "X-Smtpfault-Test", "value": self.tag}, d["headers"])
        self.assertEqual(d["session"]["helo"], "client.test")
        self.assertFalse(d["session"]["tls"])
        self.assertIn("id", d["session"])

    def test_tls_and_auth_facts(self):
        to = "tls-%s@x.test" % self.tag
        run = subprocess.run(["swaks", "--server", "%s:%d" % (self.server.host, self.server.port),
                              "--tls", "--auth", "PLAIN", "--auth-user", "alice",
                              "--auth-password", "secret", "--from", "a@x.test", "--to", to],
                             capture_output=True, timeout=30)
        self.assertEqual(run.returncode, 0, run.stdout.decode(errors="replace"))
        _, _, body = self.api("GET", "/api/v1/messages?to=" + to)
        _, _, d = self.api("GET", "/api/v1/messages/" + body["messages"][0]["id"])
        self.assertTrue(d["session"]["tls"])
        self.assertTrue(d["session"]["tls_version"].startswith("TLS"))
        self.assertEqual(d["session"]["auth_user"], "alice")
        self.assertEqual(d["session"]["auth_mechanism"], "PLAIN")

    def test_wait_returns_promptly_when_the_message_arrives(self):
        to = "wait-%s@x.test" % self.tag
        result = {}

        def waiter():
            result["status"], _, result["body"] = self.api(
                "GET", "/api/v1/messages/wait?count=1&to=%s&timeout=20" % to, timeout=30)
            result["at"] = time.monotonic()

        t = threading.Thread(target=waiter)
        t.start()
        # The wait is parked before the message exists: the answer must come from the arrival.
        self.assertTrue(t.is_alive())
        sent_at = time.monotonic()
        smtp_send(self.server, message_bytes("wake up"), rcpts=(to,))
        t.join(25)
        self.assertFalse(t.is_alive())
        self.assertEqual(result["status"], 200, result)
        self.assertEqual(result["body"]["messages"][0]["recipients"], [to])
        self.assertLess(result["at"] - sent_at, 2.0)

    def wait_for_one_held(self, to, action, times=None):
        """A rule holding the 250 to messages for `to`, and a running wait for one of them:
        (the waiting thread, the dict its status and body land in)."""
        rule = {"match": {"on": "message", "address": to}, "action": action}
        if times is not None:
            rule["times"] = times
        status, _, _ = self.api("POST", "/api/v1/faults", rule)
        self.assertEqual(status, 201)
        result = {}

        def waiter():
            result["status"], _, result["body"] = self.api(
                "GET", "/api/v1/messages/wait?count=1&to=%s&timeout=20" % to, timeout=30)

        t = threading.Thread(target=waiter)
        t.start()
        return t, result

    def test_wait_gives_a_reply_about_to_go_its_moment(self):
        # The message is stored before its 250 is queued; here the 250 is held 0.05 s. The wait
        # finds the message at once, and gives the reply that moment rather than report the
        # message as not acknowledged.
        to = "ack-%s@x.test" % self.tag
        t, result = self.wait_for_one_held(to, {"delay": 0.05})
        smtp_send(self.server, message_bytes("acknowledged"), rcpts=(to,))
        t.join(25)
        self.assertEqual(result["status"], 200, result)
        self.assertTrue(result["body"]["messages"][0]["acknowledged"], result)

    def test_a_wait_answers_with_the_messages_that_met_its_count(self):
        # The first message's 250 is held 0.15 s, inside the wait's moment for it; a second
        # message stored meanwhile is not added: a wait for one answers with one.
        to = "count-%s@x.test" % self.tag
        t, result = self.wait_for_one_held(to, {"delay": 0.15}, times=1)
        time.sleep(0.2)  # parked before the messages come
        first = threading.Thread(
            target=lambda: smtp_send(self.server, message_bytes("first"), rcpts=(to,)))
        first.start()
        time.sleep(0.05)  # the first is stored, its 250 held
        smtp_send(self.server, message_bytes("second"), rcpts=(to,))
        first.join(10)
        t.join(25)
        self.assertEqual(result["status"], 200, result)
        self.assertEqual([m["subject"] for m in result["body"]["messages"]], ["first"], result)

    def test_wait_counts_and_returns_at_once_when_already_there(self):
        for i in range(2):
            smtp_send(self.server, message_bytes("n%d" % i, test=self.tag))
        start = time.monotonic()
        status, _, body = self.api("GET", "/api/v1/messages/wait?count=2&test=%s&timeout=10" % self.tag)
        self.assertEqual(status, 200)
        self.assertEqual(body["total"], 2)
        self.assertLess(time.monotonic() - start, 2.0)

    def test_wait_times_out_with_408(self):
        start = time.monotonic()
        code, body = curl(self.server, self.server.api_url(
            "/api/v1/messages/wait?count=1&to=nobody-%s@x.test&timeout=0.5" % self.tag))
        elapsed = time.monotonic() - start
        self.assertEqual(code, 408, body)
        self.assertIn("timeout", json.loads(body)["error"])
        self.assertGreaterEqual(elapsed, 0.45)
        self.assertLess(elapsed, 5)
        # RFC 9110 15.5.9: a 408 says the connection closes (browsers retry a 408 otherwise).
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.server.api_port, timeout=5)
        conn.request("GET", "/api/v1/messages/wait?count=1&to=nobody-%s@x.test&timeout=0.1"
                     % self.tag)
        reply = conn.getresponse()
        reply.read()
        self.assertEqual((reply.status, reply.getheader("Connection")), (408, "close"))
        conn.close()

    def test_a_wait_whose_client_left_lets_go_of_its_connection(self):
        # Each would otherwise hold a descriptor until its own timeout (up to 300 s): enough of
        # them, opened and dropped, would leave the server none for SMTP clients.
        server = SmtpfaultServer().start()
        try:
            # Sockets only: a sanitizer's runtime opens files of its own now and then.
            fds = lambda: sum(1 for link in fd_links(server.proc.pid) if link.startswith("socket:"))
            before = fds()
            socks = []
            for _ in range(20):
                s = socket.create_connection(("127.0.0.1", server.api_port), timeout=5)
                s.sendall(b"GET /api/v1/messages/wait?count=5&timeout=300 HTTP/1.1\r\n"
                          b"Host: x\r\n\r\n")
                socks.append(s)
            # Accepted and waiting: under a sanitizer on a busy machine that takes a while.
            deadline = time.monotonic() + 10
            while fds() < before + 20 and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertGreaterEqual(fds(), before + 20)
            for s in socks:
                s.close()
            deadline = time.monotonic() + 5
            while fds() > before and time.monotonic() < deadline:
                time.sleep(0.1)
            self.assertEqual(fds(), before)
            status, _, _ = server.api("GET", "/healthz")
            self.assertEqual(status, 200)
        finally:
            server.stop(expect_exit=0)
            server.cleanup()

    def test_a_wait_pending_at_sigterm_is_answered_503_and_the_server_exits_at_once(self):
        server = SmtpfaultServer().start()
        try:
            result = {}

            def waiter():
                result["status"], result["headers"], result["body"] = server.api(
                    "GET", "/api/v1/messages/wait?count=2&timeout=60", timeout=30)

            t = threading.Thread(target=waiter)
            t.start()
            smtp_send(server, message_bytes("one of two"))
            # The wait is parked (one message of two) before the signal.
            server.wait_for_line(r"session ended")
            time.sleep(0.2)
            self.assertTrue(t.is_alive())
            start = time.monotonic()
            server.stop(expect_exit=0)
            stopped = time.monotonic() - start
            t.join(10)
        finally:
            server.cleanup()
        self.assertFalse(t.is_alive())
        self.assertEqual(result["status"], 503, result)
        self.assertEqual(result["body"]["error"], "the server is stopping: 1 of 2 matching message(s)")
        self.assertEqual(result["headers"].get("Connection"), "close")
        self.assertLess(stopped, 2.0)

    def test_delete_all_messages(self):
        server = SmtpfaultServer().start()
        try:
            smtp_send(server, message_bytes("gone soon"))
            status, _, body = server.api("DELETE", "/api/v1/messages")
            self.assertEqual((status, body["deleted"]), (200, 1))
            _, _, body = server.api("GET", "/api/v1/messages")
            self.assertEqual(body["total"], 0)
            # The files in --store stay: DELETE only empties the API's view.
            self.assertEqual(len(server.message_ids()), 1)
        finally:
            server.stop()
            server.cleanup()

    def test_memory_keeps_the_newest_within_the_retain_limits(self):
        server = SmtpfaultServer("--set", "retain.messages=3", "--set", "retain.sessions=2").start()
        try:
            ids = [smtp_send(server, message_bytes("n%d" % i)) for i in range(5)]
            _, _, body = server.api("GET", "/api/v1/messages")
            self.assertEqual([m["id"] for m in body["messages"]], ids[2:])
            # Waiting for more than the store keeps could only time out: refused at once.
            status, _, body = server.api("GET", "/api/v1/messages/wait?count=4&timeout=30")
            self.assertEqual((status, body.get("field")), (400, "count"), body)
            self.assertIn("keeps only the newest 3 message(s) (retain.messages)", body["error"])
            status, _, body = server.api("GET", "/api/v1/messages/wait?count=3&timeout=0")
            self.assertEqual((status, body["total"]), (200, 3), body)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:   # records land when each QUIT is handled
                _, _, sessions = server.api("GET", "/api/v1/sessions")
                if sessions["total"] == 2:
                    break
                time.sleep(0.02)
            self.assertEqual(sessions["total"], 2, sessions)
            self.assertEqual(len(server.message_ids()), 5, "files in --store all stay")
        finally:
            server.stop()
            server.cleanup()

        server = SmtpfaultServer("--set", "retain.message_bytes=1000").start()
        try:
            ids = [smtp_send(server, message_bytes("b%d" % i, body="x" * 300)) for i in range(4)]
            _, _, body = server.api("GET", "/api/v1/messages")
            self.assertEqual([m["id"] for m in body["messages"]], ids[2:], "two fit in 1000 octets")
            # A wait counts the messages that arrive while it waits, also those the byte budget
            # then forgets: three came, two were waited for.
            result = {}

            def waiter():
                result["status"], _, result["body"] = server.api(
                    "GET", "/api/v1/messages/wait?count=2&test=late&timeout=20", timeout=30)

            t = threading.Thread(target=waiter)
            t.start()
            time.sleep(0.3)   # parked before the messages come
            for i in range(3):
                smtp_send(server, message_bytes("l%d" % i, body="x" * 900, test="late"))
            t.join(25)
            self.assertEqual(result["status"], 200, result)
            self.assertEqual(result["body"]["total"], 2, result)
        finally:
            server.stop()
            server.cleanup()

    def test_sessions_and_transcript(self):
        mid = smtp_send(self.server, message_bytes("transcript"), rcpts=("s-%s@x.test" % self.tag,))
        _, _, d = self.api("GET", "/api/v1/messages/" + mid)
        sid = d["session"]["id"]
        deadline = time.monotonic() + 5
        while True:   # the session record lands when the client's QUIT has been handled
            status, _, s = self.api("GET", "/api/v1/sessions/" + sid)
            if (status == 200 and not s["open"]) or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        self.assertEqual(status, 200, s)
        texts = [(e["dir"], e["text"]) for e in s["transcript"]]
        self.assertIn(("client", "rcpt TO:<s-%s@x.test>" % self.tag), texts)  # smtplib's case
        self.assertTrue(any(d == "server" and t.startswith("250") for d, t in texts))
        _, _, listing = self.api("GET", "/api/v1/sessions?limit=1000")
        self.assertIn(sid, [x["id"] for x in listing["sessions"]])
        # since= keeps the sessions that started then or later, as the expectations' since does.
        started = s["started"]
        _, _, listing = self.api("GET", "/api/v1/sessions?limit=1000&since=" + started)
        self.assertIn(sid, [x["id"] for x in listing["sessions"]])
        _, _, listing = self.api("GET", "/api/v1/sessions?since=2999-01-01T00:00:00Z")
        self.assertEqual(listing["total"], 0, listing)
        status, _, body = self.api("GET", "/api/v1/sessions?since=yesterday")
        self.assertEqual((status, body["field"]), (400, "since"), body)
        self.assertIn("query parameter since: expected an ISO 8601 time", body["error"])


    def test_entries_count_what_was_kept_and_dropped_not_the_note_between(self):
        with self.server.connect() as c:
            c.ehlo()
            c.send(b"NOOP\r\n" * 700)
            for _ in range(700):
                c.expect(250)
            sid = self.server.session_of(c)
            c.cmd("QUIT", expect=221)
        self.server.finished_session(sid)
        _, _, detail = self.api("GET", "/api/v1/sessions/" + sid)
        dropped = detail["dropped_entries"]
        self.assertGreater(dropped, 0, detail["entries"])
        notes = [e for e in detail["transcript"] if "transcript entries dropped here" in e["text"]]
        self.assertEqual(len(notes), 1)
        self.assertEqual(detail["entries"], len(detail["transcript"]) - 1 + dropped)

    def test_open_sessions_are_seen_while_they_last(self):
        with self.server.connect() as c:
            c.ehlo()
            c.cmd("MAIL FROM:<open-%s@x.test>" % self.tag, expect=250)
            sid = self.server.session_of(c)
            _, _, listing = self.api("GET", "/api/v1/sessions?state=open")
            mine = [x for x in listing["sessions"] if x["id"] == sid]
            self.assertEqual(len(mine), 1, listing)
            self.assertTrue(mine[0]["open"])
            self.assertNotIn("ended", mine[0])
            _, _, finished = self.api("GET", "/api/v1/sessions?limit=1000")
            self.assertNotIn(sid, [x["id"] for x in finished["sessions"]])
            status, _, detail = self.api("GET", "/api/v1/sessions/" + sid)
            self.assertEqual(status, 200, detail)
            self.assertIn(("client", "MAIL FROM:<open-%s@x.test>" % self.tag),
                          [(e["dir"], e["text"]) for e in detail["transcript"]])
            c.cmd("QUIT", expect=221)
        self.server.finished_session(sid)
        _, _, listing = self.api("GET", "/api/v1/sessions?state=all&limit=1000")
        mine = [x for x in listing["sessions"] if x["id"] == sid]
        self.assertEqual([x["open"] for x in mine], [False])
        self.check_state_is_validated()

    def test_an_open_session_in_the_middle_of_data_says_how_much_text_arrived(self):
        with self.server.connect() as c:
            c.ehlo()
            c.cmd("MAIL FROM:<mid-%s@x.test>" % self.tag, expect=250)
            c.cmd("RCPT TO:<mid@x.test>", expect=250)
            c.cmd("DATA", expect=354)
            sid = self.server.session_of(c)
            c.send(b"Subject: partial\r\n\r\nhello\r\n")
            deadline = time.monotonic() + 5
            while True:   # read by the server a moment after it was sent
                _, _, detail = self.api("GET", "/api/v1/sessions/" + sid)
                last = detail["transcript"][-1]
                if "27 octets" in last["text"] or time.monotonic() > deadline:
                    break
                time.sleep(0.02)
            self.assertEqual((last["dir"], last["text"]),
                             ("event", "receiving the message text: 27 octets kept so far"), detail)
            c.cmd(".", expect=250)
            c.cmd("QUIT", expect=221)
        # Once the session has ended, its transcript has no such line.
        self.server.finished_session(sid)
        _, _, detail = self.api("GET", "/api/v1/sessions/" + sid)
        self.assertFalse(any("so far" in e["text"] for e in detail["transcript"]), detail)

    def check_state_is_validated(self):
        status, _, body = self.api("GET", "/api/v1/sessions?state=closed")
        self.assertEqual(status, 400, body)
        self.assertEqual(body["field"], "state")
        self.assertEqual(body["error"], "query parameter state: must be finished, open or all, "
                                        "got 'closed'")


class WaitPastOnePageTest(ApiTestCase):
    def test_the_newest_thousand_are_returned_with_the_one_waited_for(self):
        with smtplib.SMTP(self.server.host, self.server.port, timeout=30) as s:
            s.ehlo("client.test")
            for i in range(1002):
                s.sendmail("a@example.com", ["b@example.com"], message_bytes("n%d" % i))
        status, _, body = self.api("GET", "/api/v1/messages/wait?count=1&timeout=0")
        self.assertEqual(status, 200, body)
        self.assertEqual((body["total"], body["offset"], body["count"]), (1002, 2, 1000))
        self.assertEqual(body["messages"][-1]["subject"], "n1001")
        self.assertEqual(body["messages"][0]["subject"], "n2")


if __name__ == "__main__":
    unittest.main()
