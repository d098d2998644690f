-- idle-421: idle connections get an unsolicited "421 4.4.2 Timeout"; the first connection meets it at MAIL.
--
-- What it does: every connection that stays idle for 60 s (scenario time) receives an
-- unsolicited "421 4.4.2 Error: timeout exceeded" and is closed, like Postfix's smtpd_timeout.
-- On the first connection the server behaves as if the client had been idle too long just
-- before its MAIL: the MAIL is answered with that 421 and the connection closes (what a pooled
-- connection sees when the server timed it out in the meantime).
-- What it targets: lettre/lettre#743, symfony/symfony#36301, symfony/symfony#54169 (the
-- unsolicited 421 read as the reply to the next command: "expected 354, got 250"),
-- emersion/go-smtp#185: pooled or slow clients that do not handle a server-side timeout.
-- What a correct mailer does: treats the 421 as temporary, reconnects and delivers once.

local IDLE = 60

function on_connect(s)
  s.state.first = smtp.once("first connection")
  return smtp.unsolicited(IDLE, 421, "4.4.2", "smtpfault.test Error: timeout exceeded")
end

function on_mail(s, mail)
  if s.state.first then
    return smtp.reply(421, "4.4.2", "smtpfault.test Error: timeout exceeded")
  end
end

expect {
  retried_after_4xx = true,
  exit = "success",
  check = function(run)
    if run.delivered ~= 1 then return false, "expected the message delivered once after reconnecting, got " .. run.delivered end
    return true
  end,
}
