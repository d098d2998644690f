-- malformed-replies: a garbage greeting, then a multi-line greeting whose codes disagree (220- ... 421), then a 2 KB reply line.
--
-- What it does: connection 1: the greeting is binary garbage, not a reply; connection 2: the
-- greeting is "220-..." followed by "421 4.3.2 ..." (mixed codes: the last line decides), and
-- the connection stays open: a command other than QUIT, sent as if greeted, gets the 421 again
-- and the close, and fails the check;
-- connection 3 and later: normal, except that MAIL is answered with a reply line of over 2048 octets
-- (four times the 512-octet limit of RFC 5321 4.5.3.1.5).
-- What it targets: vert-x3/vertx-mail-client#81 (the first line's 220 taken and the 421
-- ignored), emersion/go-smtp#80 (no bound on reply lines), OpenSMTPD CVE-2020-8794 (a long
-- reply line overflowing the client); parsers that crash on garbage.
-- What a correct mailer does: does not crash or hang; treats the unreadable and the 421
-- greeting as temporary, reconnects, tolerates the long line, and delivers once.

function on_connect(s)
  local n = smtp.count("connection")
  s.state.n = n
  if n == 1 then return smtp.malformed("garbage") end
  if n == 2 then
    -- Left open: a client that took the first line's 220 shows itself with its next command.
    return smtp.raw("220-smtpfault.test ESMTP\r\n421 4.3.2 Too busy after all, try again later\r\n")
  end
end

function on_command(s, cmd)
  if s.state.n == 2 and cmd.verb ~= "QUIT" then
    return smtp.reply_then_close(421, "4.3.2", "Too busy, as the greeting said")
  end
end

function on_mail(s, mail)
  if s.state.n >= 3 then return smtp.malformed("long_line", 250, "2.1.0", "Sender ok") end
end

expect {
  exit = "success",
  check = function(run)
    local second = run.sessions[2]
    for j = 2, second and #second.exchanges or 0 do
      local x = second.exchanges[j]
      if x.verb ~= "QUIT" then
        return false, "connection 2's greeting ended in a 421 line (\"220-\" first, \"421 \" last: the "
          .. "last line's code is the reply's, RFC 5321 4.2.1); the client sent '" .. x.command
          .. "' as if it had been greeted (transcript: session " .. second.id .. ")"
      end
    end
    if #run.sessions < 3 then
      return false, "expected new connections after the garbage and the 421 greetings; the client made "
        .. #run.sessions .. " connection(s)"
    end
    if run.delivered ~= 1 then return false, "expected the message delivered once, got " .. run.delivered end
    for _, code in ipairs(run.exit_codes) do
      if code ~= 0 then
        return false, "the message was delivered, yet the command reported failure (exit " .. code
          .. "): after the reply line of over 2048 octets to MAIL, a client that reads replies in"
          .. " pieces of a fixed size takes the rest of that line for the next reply and is out of"
          .. " step from there (emersion/go-smtp#80)"
      end
    end
    return true
  end,
}
