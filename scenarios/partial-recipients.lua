-- partial-recipients: every second recipient of a transaction gets "550 5.1.1 No such user"; the others are accepted.
--
-- What it does: RCPT number 2, 4, ... of each transaction is refused with 550 5.1.1; the rest
-- get 250, so the transaction goes on with some recipients.
-- What it targets: MailKit#309, laminas/laminas-mail#41, PHPMailer#139 and #3089,
-- jakartaee/mail-api#172: one bad address aborted the whole message (the good recipients got
-- nothing), or the refusal was not reported, or the client retried the permanent refusal.
-- What a correct mailer does: sends the message to the accepted recipients, reports the refused
-- one, does not retry it, ends with QUIT and reports success (the message went out). Whether
-- it reported the refusal to its caller is not on the wire: a pass says it was not judged
-- (Django's send_mail, for one, drops the list of refused recipients smtplib returns).

-- Count RCPTs per transaction: MAIL starts a new count.
function on_mail(s, mail)
  s.state.n = 0
end

function on_rcpt(s, rcpt)
  s.state.n = (s.state.n or 0) + 1
  if s.state.n % 2 == 0 then
    return smtp.reply(550, "5.1.1", "<" .. rcpt.address .. ">: Recipient address rejected: No such user")
  end
end

expect {
  no_retry_after_5xx = true,
  quit = true,
  check = function(run)
    local m = run.messages[1]
    if not m then
      local refused, data = nil, false
      for _, s in ipairs(run.sessions) do
        for _, x in ipairs(s.exchanges) do
          if x.verb == "RCPT" and x.code == 550 and not refused then refused = x.reply end
          if x.verb == "DATA" then data = true end
        end
      end
      -- Without a refusal nothing was put to the test: the mailer stopped before it (a
      -- failed TLS handshake, a refused login) or sent to one recipient only.
      if not refused then
        return false, "not exercised: no recipient was refused (the 2nd of a transaction is), "
          .. "and no message was delivered"
      end
      local text_refused, in_session = smtp.refused_message(run)
      if text_refused then
        return false, "expected the message delivered to the accepted recipients; the client sent"
          .. " it, and the server refused it after its data ('" .. text_refused.reply .. "', session "
          .. in_session .. "): that refusal, not the one of '" .. refused .. "', stopped it"
      end
      return false, "expected the message delivered to the accepted recipients; after '" .. refused
        .. "' the client " .. (data and "did not complete the message" or "sent no DATA")
        .. " (one refused recipient must not stop the others)"
    end
    if #run.messages > 1 then return false, "expected one message, got " .. #run.messages end
    if not smtp.seen(run, "RCPT", 550) then
      return false, "not exercised: the 2nd recipient of a transaction is the one refused; "
        .. "the mailer must send to at least two"
    end
    local missing = smtp.undelivered(run)
    if #missing > 0 then
      return false, "expected the message for every accepted recipient; never delivered: "
        .. table.concat(missing, ", ")
    end
    local unasked = smtp.unasked(run)
    if #unasked > 0 then
      return false, "the client named no recipient after the refused one: " .. table.concat(unasked, ", ")
        .. " (in the message's To: or Cc:) got no RCPT, and so no message (one refused recipient"
        .. " must not stop the others; Perl's Net::SMTP to() does this without SkipBad)"
    end
    for _, code in ipairs(run.exit_codes) do
      if code ~= 0 then
        return false, "expected exit status 0 (the message went out to the accepted recipients), got " .. code
      end
    end
    -- Whether the mailer told its caller which recipient was refused is not on the wire.
    local refused
    for _, s in ipairs(run.sessions) do
      for _, x in ipairs(s.exchanges) do
        if x.verb == "RCPT" and x.code == 550 then refused = refused or x.command:match("<([^>]*)>") end
      end
    end
    return true, "not judged: whether the mailer told its caller that " .. (refused or "the 2nd recipient")
      .. " was refused (its output is in the report)"
  end,
}
