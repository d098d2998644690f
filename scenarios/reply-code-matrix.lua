-- reply-code-matrix: each new connection meets the next unusual reply code at another step; the fourth is served with odd-but-valid codes.
--
-- What it does: walks a matrix of replies a mailer rarely sees, one temporary refusal per
-- connection, then a connection whose replies are all successful but unusual:
--
--   connection  step          reply
--   ----------  ------------  ---------------------------------------------------------
--   1           EHLO          421 4.3.0 (the server closes)
--   2           STARTTLS      454 4.7.0 TLS not available due to temporary reason
--   3           MAIL          451 4.3.0 local error in processing
--   4 and on    RCPT          251 2.1.5 "User not local; will forward" for the 2nd recipient
--               DATA          354 with an unusual text
--               final dot     a multi-line 250
--               QUIT          500 5.5.1 instead of 221, then the server closes
--
-- A client of the implicit-TLS port (SMTP_TLS_PORT) sends no STARTTLS, so there connection 2
-- meets the MAIL refusal and connection 3 a "452 4.3.1 Insufficient system storage" after the
-- final dot (RFC 5321 4.2.2; a 4xx there means the message was not taken).
--
-- The other cells of the matrix have scenarios of their own: greeting 421/554/521
-- (greeting-*), EHLO 502 (ehlo-unsupported), STARTTLS 5xx/missing (starttls-*), RCPT 4xx/5xx
-- (greylist, partial-recipients, relay-denied, too-many-recipients), DATA and end-of-data
-- 4xx/5xx (data-421, size-limit, line-too-long), QUIT (quit-variants).
-- What it targets: the fake-mail-server test set (testcases/smtp) and clients that hard-code
-- "250 or fail" at each step, treat every unexpected code as fatal, or every code as success.
-- What a correct mailer does: treats every 4xx as temporary and reconnects, never continues
-- in plaintext after the refused STARTTLS, accepts 251 as success, delivers the message
-- exactly once, and does not care how QUIT is answered once the message is accepted.

function on_connect(s)
  s.state.cell = smtp.count("connection")
end

function on_ehlo(s, name)
  if s.state.cell == 1 then return smtp.reply(421, "4.3.0", "Try again later") end
end

function on_starttls(s)
  if s.state.cell == 2 then return smtp.reply(454, "4.7.0", "TLS not available due to temporary reason") end
end

-- Connection 2's refusal comes at MAIL on the implicit-TLS port, which has no STARTTLS.
local function mail_cell(s)
  return s.implicit_tls and 2 or 3
end

function on_mail(s, mail)
  if s.state.cell == mail_cell(s) then return smtp.reply(451, "4.3.0", "Local error in processing") end
end

function on_rcpt(s, rcpt)
  if s.state.cell >= 4 and #s.rcpts == 1 then
    return smtp.reply(251, "2.1.5", "User not local; will forward to <" .. rcpt.address .. ">")
  end
end

function on_data(s)
  if s.state.cell >= 4 then return smtp.reply(354, "Go ahead, end with a dot on a line by itself") end
end

function on_message(s, msg)
  if s.state.cell == 3 and s.implicit_tls then
    return smtp.reply(452, "4.3.1", "Insufficient system storage")
  end
  if s.state.cell >= 4 then
    return smtp.reply(250, "2.0.0", { "Message accepted", "for delivery", "queued as MATRIX1" })
  end
end

function on_command(s, cmd)
  if cmd.verb == "QUIT" and s.state.cell >= 4 then
    return smtp.reply_then_close(500, "5.5.1", "Command unrecognized")
  end
end

expect {
  no_plaintext_after_tls_failure = true,
  check = function(run)
    local last, last_on  -- the refusal that got no new connection after it
    for i, s in ipairs(run.sessions) do
      for _, x in ipairs(s.exchanges) do
        if x.code >= 400 and x.code < 500 then last, last_on = x, i end
      end
    end
    if #run.sessions < 4 and run.delivered == 1 then
      -- It came back after each refusal it met, but met fewer than three.
      local on = "?"
      for i, s in ipairs(run.sessions) do
        if s.delivered > 0 then on = i .. " (session " .. s.id .. ")" end
      end
      local implicit = run.sessions[1].implicit_tls
      return false, "not exercised: the client delivered on connection " .. on
        .. ", before the matrix's 4th" .. ((implicit or smtp.seen(run, "STARTTLS")) and ""
          or " (connection 2 refuses STARTTLS, which the client never sent; the matrix needs a"
            .. " mailer that uses STARTTLS, or one on the implicit-TLS port)")
    end
    if #run.sessions < 4 then
      local to = last and (last.verb ~= "" and last.verb
        or last.command == "<end of data>" and "the message (after the final dot)" or "the greeting")
      local after = last and ("'" .. last.reply .. "' to " .. to .. " on connection " .. last_on
        .. " (session " .. run.sessions[last_on].id .. ")") or "none seen"
      -- A client that tried the refused command again and again on that connection.
      local again = 0
      if last and last.verb ~= "" then
        for _, x in ipairs(run.sessions[last_on].exchanges) do
          if x.verb == last.verb and x.code >= 400 and x.code < 500 then again = again + 1 end
        end
      end
      return false, "expected a new connection after each temporary refusal, until the 4th is served; the client made "
        .. #run.sessions .. " connection(s) and did not come back after the last refusal (" .. after .. ")"
        .. (again > 1 and ("; it sent " .. last.verb .. " " .. again .. " times on connection "
          .. last_on .. ", refused each time: that connection refuses it for good") or "")
    end
    if run.delivered ~= 1 then
      return false, "expected the message delivered exactly once after the 4xx replies, got "
        .. run.delivered .. " in " .. #run.sessions .. " connection(s)"
    end
    if not smtp.seen(run, "RCPT", 251) then
      return false, "not exercised: the 251 goes to the 2nd recipient of a transaction; "
        .. "the mailer must send to at least two"
    end
    local missing = smtp.undelivered(run)
    if #missing > 0 then
      return false, "expected every recipient delivered (251 is a success too); never delivered: "
        .. table.concat(missing, ", ")
    end
    for _, code in ipairs(run.exit_codes) do
      if code ~= 0 then return false, "expected exit status 0 (the message was accepted), got " .. code end
    end
    return true
  end,
}
