-- multiline-replies: the EHLO reply trickles in small pieces, MAIL and the final reply are multi-line, and the 2nd RCPT gets a 4-line 550.
--
-- What it does: writes the EHLO reply 16 octets at a time every 0.2 s; answers MAIL with a
-- 3-line 250, the second recipient with a 4-line "550 5.1.1" and the message with a 2-line 250.
-- What it targets: RFC 5321 4.2.1; emersion/go-smtp#120 (a reply split across reads parsed as
-- two), golang/go#10230 (a multi-line error left lines unread, so every later reply on the
-- connection belonged to the previous command), muquit/mailsend#57.
-- What a correct mailer does: reads each reply up to its last line, stays in step, delivers to
-- the two accepted recipients and reports the refused one.

function on_ehlo(s, name)
  return smtp.trickle(16, 0.2)
end

function on_mail(s, mail)
  s.state.rcpt_n = 0
  return smtp.reply(250, "2.1.0", { "Sender ok", "Policy: be nice", "Go on" })
end

function on_rcpt(s, rcpt)
  s.state.rcpt_n = (s.state.rcpt_n or 0) + 1
  if s.state.rcpt_n == 2 then
    return smtp.reply(550, "5.1.1", {
      "The email account that you tried to reach does not exist.",
      "Please try double-checking the recipient's email address",
      "for typos or unnecessary spaces.",
      "https://smtpfault.test/help/bounce",
    })
  end
end

function on_message(s, msg)
  return smtp.reply(250, "2.0.0", { "Ok", "queued as MULTI1" })
end

expect {
  quit = true,
  pipelining = true,
  no_retry_after_5xx = true,
  exit = "success",
  check = function(run)
    if not smtp.seen(run, "RCPT", 550) then
      if not smtp.seen(run, "RCPT") then
        return false, "not exercised: the client sent no RCPT (it stopped before naming a"
          .. " recipient); the 4-line 550 goes to the 2nd recipient of a transaction"
      end
      return false, "not exercised: the 4-line 550 goes to the 2nd recipient of a transaction; "
        .. "the mailer must send to at least two"
    end
    if run.delivered == 0 then
      -- RSET or QUIT right after the 550: the message given up on purpose (most likely);
      -- anything else may be a client that lost step.
      local next_verb
      for _, s in ipairs(run.sessions) do
        for j, x in ipairs(s.exchanges) do
          if x.verb == "RCPT" and x.code == 550 and not next_verb then
            next_verb = s.exchanges[j + 1] and s.exchanges[j + 1].verb or "nothing"
          end
        end
      end
      if next_verb == "RSET" or next_verb == "QUIT" then
        return false, "expected one message; the client answered the 4-line 550 to the 2nd"
          .. " recipient with " .. next_verb .. ", giving up the whole message: one refused"
          .. " recipient must not stop the others"
      end
      local text_refused, in_session = smtp.refused_message(run)
      if text_refused then
        return false, "expected one message; the client sent it, and the server refused it after"
          .. " its data ('" .. text_refused.reply .. "', session " .. in_session .. "): that"
          .. " refusal, not the 4-line 550, stopped it"
      end
      return false, "expected one message; after the 4-line 550 to the 2nd recipient the client "
        .. (smtp.seen(run, "DATA") and "did not complete the message" or "sent no DATA")
        .. " (either it gives up a whole message for one refused recipient, or it misread the"
        .. " multi-line reply and lost step; its output tells which)"
    end
    if run.delivered ~= 1 then return false, "expected one message, got " .. run.delivered end
    local missing = smtp.undelivered(run)
    if #missing > 0 then
      return false, "expected the message for every accepted recipient; never delivered: "
        .. table.concat(missing, ", ")
    end
    local unasked = smtp.unasked(run)
    if #unasked > 0 then
      return false, "the client named no recipient after the 4-line 550: " .. table.concat(unasked, ", ")
        .. " (in the message's To: or Cc:) got no RCPT, and so no message (one refused recipient"
        .. " must not stop the others)"
    end
    for _, code in ipairs(run.exit_codes) do
      if code ~= 0 then
        return false, "every reply was read in step and the message went to the accepted recipients,"
          .. " yet the command reported failure (exit " .. code .. "): the one refused recipient"
          .. " (the 4-line 550) must not fail the whole message (see partial-recipients)"
      end
    end
    return true
  end,
}
