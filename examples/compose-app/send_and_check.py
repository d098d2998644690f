"""The example application of docker-compose.yml: sends mail to smtpfault, then uses the HTTP
API to steer a fault and to check what arrived. Standard library only."""

import json
import os
import smtplib
import sys
import urllib.request
import uuid

HOST = os.environ.get("SMTP_HOST", "127.0.0.1")
PORT = int(os.environ.get("SMTP_PORT", "2525"))
API = "http://" + os.environ.get("SMTPFAULT_API", "127.0.0.1:8025")
TAG = uuid.uuid4().hex[:8]   # X-Smtpfault-Test: keeps parallel test runs apart


def api(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    # The server's token, when it has one (SMTPFAULT_API_TOKEN in docker-compose.yml).
    if os.environ.get("SMTPFAULT_API_TOKEN"):
        headers["Authorization"] = "Bearer " + os.environ["SMTPFAULT_API_TOKEN"]
    req = urllib.request.Request(API + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def send(rcpt, subject):
    msg = "From: app@example.com\r\nTo: %s\r\nSubject: %s\r\nX-Smtpfault-Test: %s\r\n\r\nhi\r\n" % (
        rcpt, subject, TAG)
    with smtplib.SMTP(HOST, PORT, timeout=30) as s:
        s.sendmail("app@example.com", [rcpt], msg.encode())


def main():
    send("alice@example.com", "welcome")
    status, found = api("GET", "/api/v1/messages/wait?count=1&timeout=10&test=" + TAG)
    assert status == 200, found
    print("delivered:", found["messages"][0]["subject"])

    # Bob's next RCPT gets 451 once: a correct mailer reports (or retries) the temporary failure.
    # Rules are global: the address pattern keeps this one to this run's own recipient.
    bob = "bob-%s@example.com" % TAG
    api("POST", "/api/v1/faults", {"match": {"on": "RCPT", "address": bob}, "times": 1,
                                   "action": {"reply": {"code": 451, "enhanced": "4.7.1",
                                                        "text": "try again later"}}})
    try:
        send(bob, "second")
        print("unexpected: the 451 was not reported", file=sys.stderr)
        return 1
    except smtplib.SMTPRecipientsRefused as e:
        print("temporary failure reported:", e.recipients)
    send(bob, "second, retried")
    status, found = api("GET", "/api/v1/messages/wait?count=2&timeout=10&test=" + TAG)
    assert status == 200, found
    print("all good:", [m["subject"] for m in found["messages"]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
