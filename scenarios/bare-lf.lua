-- bare-lf: a command or message line that ends in a bare LF gets "521 5.5.2 Error: bare <LF> received" and the connection closes, as a Postfix that forbids bare newlines does.
--
-- What it does: answers a command whose line ended in LF without CR, or a message with a bare LF
-- in its text, with 521 and closes the connection: Postfix's smtpd_forbid_bare_newline = yes
-- (the December 2023 updates, set by mailcow and others; its reply also names the host). 3.9's
-- "reject" answers 550 with the same text and closes too; its default, "normalize", reads a
-- bare LF as CRLF. Lines ended with CRLF are served as usual.
-- What it targets: RFC 5321 2.3.8 (only CRLF ends a line) and 4.1.1.4, RFC 5322 2.3 (CR and LF
-- only together in a message); the SMTP smuggling fixes (CVE-2023-51764) that made strict
-- servers common: VernissageApp/VernissageServer#28 ("521 5.5.2 ... Error: bare <LF> received"
-- from Postfix), bluetiger9/SmtpClient-for-Qt#185, muquit/mailsend#52 and
-- inverse-inc/packetfence#5380 (554 and Exchange Online's 550 5.6.11): mailers whose LF line
-- ends pass a lenient test server and are refused by a strict one.
-- What a correct mailer does: ends every command and message line with CRLF, and delivers.

local BARE_LF = smtp.reply_then_close(521, "5.5.2", "Error: bare <LF> received")

function on_command(s, cmd)
  if cmd.bare_lf then return BARE_LF end
end

function on_message(s, msg)
  for _, found in ipairs(msg.anomalies) do
    if found.kind == "bare_lf" then return BARE_LF end
  end
end

expect { delivered = 1, line_endings = true, quit = true, exit = "success" }
