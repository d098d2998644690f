-- malformed-replies: a garbage greeting, then a multi-line greeting whose codes disagree (220- ... 421), then a 2 KB reply line.
--
-- What it does: connection 1: the greeting is binary garbage, not a reply; connection 2: the
-- greeting is "220-..." followed by "421 4.3.2 ...", and the connection closes. Its lines
-- disagree, which RFC 5321 4.2.1 forbids: every line of a reply carries the same code, and a
-- client may act on whichever line it reads. So taking the 220 is no fault here (the client
-- then finds the connection closed), and neither is reading on for a last "220 " line (Go's
-- net/textproto does: it then meets the close); waiting on an open connection would be.
-- Connection 3 and later: normal, except that MAIL is answered with a reply line of over 2048
-- octets (four times the 512-octet limit of RFC 5321 4.5.3.1.5).
-- What it targets: vert-x3/vertx-mail-client#81 (a mixed-code reply: which line a client acts
-- on is its own choice, so only that it survives, comes back and delivers is judged),
-- emersion/go-smtp#80 (no bound on reply lines), OpenSMTPD CVE-2020-8794 (a long reply line
-- overflowing the client); parsers that crash on garbage.
-- What a correct mailer does: does not crash or hang; treats the unreadable greeting and the
-- closed connection as temporary, reconnects, tolerates the long line, and delivers once.

function on_connect(s)
  local n = smtp.count("connection")
  s.state.n = n
  if n == 1 then return smtp.malformed("garbage") end
  if n == 2 then
    return smtp.raw("220-smtpfault.test ESMTP\r\n421 4.3.2 Too busy after all, try again later\r\n"):close()
  end
end

function on_mail(s, mail)
  if s.state.n >= 3 then return smtp.malformed("long_line", 250, "2.1.0", "Sender ok") end
end

expect {
  exit = "success",
  check = function(run)
    if #run.sessions < 3 then
      -- A client still waiting on a greeting it could not read: how long, in real seconds.
      -- Only of the garbage greeting's connection: the server closes the second itself.
      local last, waited = run.sessions[#run.sessions], ""
      if last and #run.sessions == 1 and #last.exchanges <= 1 then
        local seconds = (last.ended - last.started) * run.time_scale
        -- The kill at --timeout closes the connection too: that close is not the client's.
        local killed = run.exit_codes[last.run or #run.exit_codes] == -1
        -- Closed within half a second: it read the garbage and gave up, it did not wait.
        local why = (last.client_closed and not killed and seconds < 0.5)
          and "it gave up on the unreadable greeting at once and did not come back"
          or "waiting for a greeting it could read?"
        waited = string.format("; it sent nothing on session %s after its greeting, and %s %.1f s"
          .. " after it began (%s)", last.id, killed and "the run was killed at --timeout"
          or last.client_closed and "closed it" or "it was still open when the run ended",
          seconds, why)
      end
      return false, "expected new connections after the garbage and the mixed-code greetings; the client made "
        .. #run.sessions .. " connection(s)" .. waited
    end
    if run.delivered == 0 then
      -- Connections the client left right after the long reply line to MAIL: it refused to
      -- read the line (OpenSMTPD: "line too long"), rather than lost step.
      local left = {}
      for _, s in ipairs(run.sessions) do
        for i, x in ipairs(s.exchanges) do
          local after = s.exchanges[i + 1]
          if x.verb == "MAIL" and #x.reply > 2048 and (not after or after.verb == "QUIT") then
            left[#left + 1] = s.id
          end
        end
      end
      if #left > 0 then
        return false, "expected the message delivered once, got 0: the client left " .. #left
          .. " connection(s) right after the reply line of over 2048 octets to MAIL (session"
          .. (#left > 1 and "s " or " ") .. table.concat(left, ", ") .. "), so it will not read such a line; RFC 5321 4.5.3.1"
          .. " asks that such limits not be imposed where possible (4.5.3.1.5's 512 octets is"
          .. " the server's to keep), and a mailer that cannot read it never delivers here"
      end
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
