-- greeting-multiline: the greeting is a three-line "220-" reply.
--
-- What it does: sends the greeting as "220-...", "220-...", "220 ..." (a legal multi-line
-- reply, RFC 5321 4.2.1), like servers that put a banner or policy text in the greeting.
-- What it targets: dbzhang800/QtMail#1 and nim-lang/smtp#24 (the client read only the first
-- line, then took the rest as the reply to EHLO and got out of step).
-- What a correct mailer does: reads the whole reply up to the line with a space after the code,
-- then goes on normally and delivers.

function on_connect(s)
  return smtp.reply(220, {
    "smtpfault.test ESMTP at your service",
    "Unsolicited bulk mail is not welcome here",
    "ready",
  })
end

expect { delivered = 1, quit = true, exit = "success" }
