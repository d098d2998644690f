"""A client that always sends the same bytes and prints the replies it got that carry
something the server made up: a CRAM-MD5 challenge and a queue id."""
import os, socket
s = socket.create_connection((os.environ["SMTP_HOST"], int(os.environ["SMTP_PORT"])))
f = s.makefile("rb")
def reply():
    lines = []
    while True:
        l = f.readline().decode().rstrip("\r\n"); lines.append(l)
        if l[3:4] != "-": return lines
def cmd(c):
    s.sendall(c.encode() + b"\r\n"); return reply()
reply()
cmd("EHLO det.test")
print(cmd("AUTH CRAM-MD5")[0]); print(cmd("*")[0])
cmd("MAIL FROM:<a@x.test>"); cmd("RCPT TO:<b@y.test>"); cmd("DATA")
s.sendall(b"Subject: det\r\n\r\nhi\r\n.\r\n"); print(reply()[0]); cmd("QUIT")
