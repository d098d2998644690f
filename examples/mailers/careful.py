#!/usr/bin/python3
"""careful.py: a well-behaved mailer, the reference client for the built-in scenario catalogue.

    smtpfault test --time-scale 0.02 --scenarios scenarios/ -- /usr/bin/python3 examples/mailers/careful.py

Sends ONE message from sender@example.com to rcpt1@, rcpt2@ and rcpt3@example.com through the
server at $SMTP_HOST:$SMTP_PORT (Debian python3, standard library only). Every scenario in
scenarios/ expects what this script does, so it is also a readable statement of "correct":

- The message is built with the email package (policy SMTP): CRLF line ends, folded headers,
  an RFC 2047 encoded UTF-8 subject and a quoted-printable body, so it is 7-bit clean, has no
  line over 78 octets although the text has a 1500-character line, and needs neither 8BITMIME
  nor SMTPUTF8. The body has a line starting with "."; smtplib dot-stuffs it.
- TLS is required. EHLO (HELO when EHLO is refused, which leaves no way to STARTTLS), then
  STARTTLS with the certificate verified against ../../fixtures/certs/test-ca.pem for the name
  "localhost". When STARTTLS is not offered, refused with 5xx or the certificate does not verify,
  the script QUITs and exits 1 without retrying: nothing is sent in plaintext. A 4xx to STARTTLS
  or a broken handshake is temporary: retry later, still never in plaintext.
- AUTH ($SMTP_USER and $SMTP_PASSWORD, else "careful" and "secret") only over TLS and only
  when advertised; smtplib's login() falls back to the next mechanism on 504/535. 4xx: retry
  later; 5xx: give up.
- SIZE: when advertised, MAIL carries SIZE=n, and a message larger than the limit is not sent
  (exit 1).
- Replies are read one at a time (no pipelining). Timeouts are long (RFC 5321 4.5.3.2: 5 minutes
  per command, 10 for the reply after the final dot), except 2 s for the reply to QUIT: the
  message is delivered by then.
- Temporary failures are retried with a fresh connection: a 4xx at the greeting, EHLO,
  STARTTLS, AUTH, MAIL, RCPT, DATA or after the dot, a 421 or a dropped connection, an
  unreadable reply. Backoff 0.3, 0.6, 1.2, 2.4, 4.8 s (fixed and short so that tests run with
  `--time-scale` stay fast; a real mailer queues for minutes), at most 6 attempts.
- A connection lost after the final dot but before the reply is an uncertain outcome (RFC 5321
  6.1): logged as such and retried, which may duplicate the message but never loses it.
- 5xx is permanent: no retry. A recipient refused with 5xx is reported on stderr and the others
  still get the message (exit 0 when at least one recipient got it). A 452 to RCPT means "too
  many recipients" (RFC 5321 4.5.3.1.10): the remaining recipients go in a following
  transaction on the same connection.
- Every session ends with QUIT.

Exit status: 0 delivered (to at least one recipient), 1 not delivered.
"""

import email.policy
import os
import smtplib
import ssl
import sys
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

HOST = os.environ.get("SMTP_HOST", "127.0.0.1")
PORT = int(os.environ.get("SMTP_PORT", "25"))
CA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures", "certs",
                       "test-ca.pem")
TLS_NAME = "localhost"
SENDER = "sender@example.com"
RECIPIENTS = ["rcpt1@example.com", "rcpt2@example.com", "rcpt3@example.com"]
USER = os.environ.get("SMTP_USER", "careful")
PASSWORD = os.environ.get("SMTP_PASSWORD", "secret")
# Seconds between attempts (len + 1 attempts), about 9 s in all: sized for a catalogue run with
# --time-scale 0.02, where greylisting's 60 s window takes 1.2 s. A real mailer waits minutes.
BACKOFF = [0.3, 0.6, 1.2, 2.4, 4.8]
COMMAND_TIMEOUT = 300                  # RFC 5321 4.5.3.2.2 - .5
FINAL_TIMEOUT = 600                    # RFC 5321 4.5.3.2.6
QUIT_TIMEOUT = 2


def log(text):
    print("careful: " + text, file=sys.stderr, flush=True)


class Temporary(Exception):
    """Try again later, on a new connection."""


class Permanent(Exception):
    """Give up: retrying cannot help."""


def reply_text(code, msg):
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", "replace")
    return "%s %s" % (code, " ".join(msg.split()))


def fail(what, code, msg):
    """Raise Temporary for 4xx (and unreadable replies), Permanent for 5xx."""
    text = "%s: %s" % (what, reply_text(code, msg))
    if 500 <= code <= 599:
        raise Permanent(text)
    raise Temporary(text)


def build_message():
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = "Careful Sender <%s>" % SENDER
    msg["To"] = ", ".join(RECIPIENTS)
    msg["Subject"] = "smtpfault check: Grüße aus Köln"
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="example.com")
    long_line = "".join("%04d " % i for i in range(300))      # 1500 characters
    body = ("Hello,\n\n"
            ".this line starts with a dot (smtplib doubles it on the wire)\n"
            "UTF-8: Grüße, naïve café, 日本語, ✓\n"
            + long_line + "\n\n-- \ncareful.py\n")
    msg.set_content(body, charset="utf-8", cte="quoted-printable")
    # policy SMTP: CRLF line ends, headers folded at 78 columns, RFC 2047 for the subject.
    return msg.as_bytes()


class Delivery:
    def __init__(self, data):
        self.data = data
        self.pending = list(RECIPIENTS)   # not yet delivered nor refused for good
        self.delivered = []
        self.refused = {}                 # recipient -> reply

    def attempt(self):
        """One connection. Returns normally when nothing is left to do on it."""
        s = smtplib.SMTP(timeout=COMMAND_TIMEOUT)
        try:
            self.session(s)
        finally:
            quit_quietly(s)

    def session(self, s):
        code, msg = s.connect(HOST, PORT)
        if code != 220:
            if code == 554 or code == 521:
                fail("greeting", code, msg)
            if 500 <= code <= 599:
                fail("greeting", code, msg)
            raise Temporary("greeting: %s" % reply_text(code, msg))
        self.hello(s)
        if not s.has_extn("starttls"):
            raise Permanent("the server does not offer STARTTLS; refusing to send in plaintext")
        code, msg = s.docmd("STARTTLS")
        if code != 220:
            fail("STARTTLS refused", code, msg)
        # Anything the server sent after the 220 in plaintext sits in smtplib's buffer: drop it
        # (a STARTTLS response injection must not be read as a reply once TLS is up).
        s.file = None
        context = ssl.create_default_context(cafile=CA_FILE)
        try:
            s.sock = context.wrap_socket(s.sock, server_hostname=TLS_NAME)
        except ssl.SSLCertVerificationError as e:
            raise Permanent("TLS certificate rejected: %s" % e.verify_message)
        except (ssl.SSLError, OSError) as e:
            raise Temporary("TLS handshake failed: %s" % e)
        s.helo_resp = s.ehlo_resp = None
        s.esmtp_features = {}
        s.does_esmtp = False
        self.hello(s)
        if s.has_extn("auth"):
            try:
                s.login(USER, PASSWORD)
            except smtplib.SMTPAuthenticationError as e:
                fail("AUTH", e.smtp_code, e.smtp_error)
            except smtplib.SMTPServerDisconnected:
                raise
            except smtplib.SMTPException as e:
                raise Permanent("AUTH: %s" % e)
        size_limit = 0
        if s.has_extn("size"):
            try:
                size_limit = int(s.esmtp_features["size"] or 0)
            except ValueError:
                size_limit = 0
        if size_limit and len(self.data) > size_limit:
            raise Permanent("the message has %d octets; the server accepts at most %d (SIZE)"
                            % (len(self.data), size_limit))
        while self.pending:
            self.transaction(s, size_limit)

    def hello(self, s):
        code, msg = s.ehlo()
        if code == 250:
            return
        if 400 <= code <= 499 or code < 0:
            fail("EHLO", code, msg)
        log("EHLO refused (%s); trying HELO" % reply_text(code, msg))
        code, msg = s.helo()
        if code != 250:
            fail("HELO", code, msg)

    def transaction(self, s, size_limit):
        options = ["SIZE=%d" % len(self.data)] if size_limit or s.has_extn("size") else []
        code, msg = s.mail(SENDER, options)
        if code != 250:
            fail("MAIL FROM", code, msg)
        accepted, later, temporary = [], [], None
        for i, rcpt in enumerate(self.pending):
            code, msg = s.rcpt(rcpt)
            if code in (250, 251):
                accepted.append(rcpt)
            elif code == 452:
                # Too many recipients: the rest go in the next transaction (RFC 5321 4.5.3.1.10).
                later = self.pending[i:]
                break
            elif 400 <= code <= 499:
                temporary = temporary or "RCPT TO:<%s>: %s" % (rcpt, reply_text(code, msg))
                later.append(rcpt)
            elif code == 421 or code < 0:
                fail("RCPT TO:<%s>" % rcpt, code, msg)
            else:
                self.refused[rcpt] = reply_text(code, msg)
                log("recipient %s refused: %s" % (rcpt, self.refused[rcpt]))
        if not accepted:
            s.rset()
            self.pending = later
            if later:
                raise Temporary(temporary or "no recipient accepted in this transaction")
            return
        try:
            s.sock.settimeout(FINAL_TIMEOUT)
            code, msg = s.data(self.data)
        except smtplib.SMTPDataError as e:
            # DATA itself refused: the message text was not sent.
            s.sock.settimeout(COMMAND_TIMEOUT)
            if 500 <= e.smtp_code <= 599:
                for r in accepted:
                    self.refused[r] = reply_text(e.smtp_code, e.smtp_error)
                self.pending = later
                log("DATA refused: %s" % reply_text(e.smtp_code, e.smtp_error))
                s.rset()
                if later:
                    raise Temporary(temporary or "recipients left for later")
                return
            fail("DATA", e.smtp_code, e.smtp_error)
        except (smtplib.SMTPServerDisconnected, OSError) as e:
            raise Temporary("connection lost during or after the message text; the outcome is "
                            "uncertain, sending again (%s)" % (e or type(e).__name__))
        s.sock.settimeout(COMMAND_TIMEOUT)
        if code == 250:
            self.delivered += accepted
            self.pending = later
            log("delivered to %s: %s" % (", ".join(accepted), reply_text(code, msg)))
            if temporary:
                raise Temporary(temporary)
            return
        if 500 <= code <= 599:
            for r in accepted:
                self.refused[r] = reply_text(code, msg)
            self.pending = later
            log("message refused after the final dot: %s" % reply_text(code, msg))
            if later:
                raise Temporary(temporary or "recipients left for later")
            return
        fail("end of data", code, msg)


def quit_quietly(s):
    try:
        if s.sock is not None:
            s.sock.settimeout(QUIT_TIMEOUT)
            s.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        s.close()


def main():
    data = build_message()
    d = Delivery(data)
    for attempt in range(len(BACKOFF) + 1):
        try:
            d.attempt()
            break
        except Permanent as e:
            log("permanent failure, not retrying: %s" % e)
            for r in d.pending:
                d.refused[r] = str(e)
            d.pending = []
            break
        except (Temporary, smtplib.SMTPException, OSError) as e:
            if isinstance(e, smtplib.SMTPResponseException):
                what = "temporary failure: %s" % reply_text(e.smtp_code, e.smtp_error)
            elif isinstance(e, Temporary):
                what = "temporary failure: %s" % e
            else:
                what = "temporary failure: %s: %s" % (type(e).__name__, e)
            if not d.pending:
                break
            if attempt == len(BACKOFF):
                log(what + "; giving up after %d attempts" % (attempt + 1))
                break
            log(what + "; retrying in %.1f s" % BACKOFF[attempt])
            time.sleep(BACKOFF[attempt])
    for r, why in d.refused.items():
        log("NOT delivered to %s: %s" % (r, why))
    for r in d.pending:
        log("NOT delivered to %s: temporary failures, gave up" % r)
    if d.delivered:
        log("done: delivered to %d of %d recipient(s)" % (len(d.delivered), len(RECIPIENTS)))
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
