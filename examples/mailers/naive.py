#!/usr/bin/python3
"""naive.py: a typical buggy mailer, to show what the scenario catalogue catches.

    smtpfault test --time-scale 0.02 --scenarios scenarios/ -- /usr/bin/python3 examples/mailers/naive.py

Sends the same message as careful.py (sender@example.com to rcpt1@, rcpt2@, rcpt3@example.com)
to $SMTP_HOST:$SMTP_PORT, with the mistakes real mailers make (Debian python3, stdlib only):

- STARTTLS only when offered, without certificate verification, and when it is missing or
  refused the script just goes on in plaintext (CVE-2016-0772 style STARTTLS stripping).
- AUTH (user "naive", password "secret") whenever AUTH is advertised, TLS or not.
- No retries: any 4xx (greeting, RCPT, DATA, a 421, greylisting) is a failure, exit 1.
- One transaction with all recipients; any refused recipient aborts the whole message (the
  accepted ones do not get it either).
- Any 2xx or 3xx to DATA is taken as "go ahead".
- The message text is written raw with sock.sendall(): a line starting with "." is not doubled
  (no dot-stuffing), the 1500-character line goes out as is (over the 1000-octet limit of
  RFC 5321 4.5.3.1.6), UTF-8 goes out as 8-bit octets whether or not 8BITMIME is advertised,
  and SIZE is ignored.
- No QUIT: the socket is simply closed.

Exit status: 0 when the reply after the final dot is 250, 1 otherwise.
"""

import os
import smtplib
import ssl
import sys

HOST = os.environ.get("SMTP_HOST", "127.0.0.1")
PORT = int(os.environ.get("SMTP_PORT", "25"))
SENDER = "sender@example.com"
RECIPIENTS = ["rcpt1@example.com", "rcpt2@example.com", "rcpt3@example.com"]


def message():
    lines = [
        "From: Naive Sender <%s>" % SENDER,
        "To: " + ", ".join(RECIPIENTS),
        "Subject: smtpfault check: Grüße aus Köln",
        "",
        "Hello,",
        "",
        ".this line starts with a dot and is sent without doubling it",
        "UTF-8: Grüße, naïve café, 日本語, ✓",
        "".join("%04d " % i for i in range(300)),
        "",
        "-- ",
        "naive.py",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def main():
    s = smtplib.SMTP(HOST, PORT, timeout=30)   # raises on anything but 220
    s.ehlo()
    if s.has_extn("starttls"):
        try:
            s.starttls(context=ssl._create_unverified_context())
        except Exception as e:   # noqa: BLE001 - the bug: carry on in plaintext
            print("naive: STARTTLS failed (%s), going on anyway" % e, file=sys.stderr)
        s.ehlo()
    if s.has_extn("auth"):
        s.login("naive", "secret")
    code, msg = s.mail(SENDER)
    if code != 250:
        raise RuntimeError("MAIL FROM: %d %s" % (code, msg))
    for r in RECIPIENTS:
        code, msg = s.rcpt(r)
        if code >= 400:
            raise RuntimeError("RCPT TO:<%s>: %d %s" % (r, code, msg))
    s.putcmd("data")
    code, msg = s.getreply()
    if code // 100 not in (2, 3):
        raise RuntimeError("DATA: %d %s" % (code, msg))
    s.sock.sendall(message() + b".\r\n")
    code, msg = s.getreply()
    s.close()   # no QUIT
    if code != 250:
        raise RuntimeError("end of data: %d %s" % (code, msg))
    print("naive: sent (%d %s)" % (code, msg.decode(errors="replace")), file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:   # noqa: BLE001
        print("naive: failed: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        sys.exit(1)
