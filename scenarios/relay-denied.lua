-- relay-denied: only smtpfault.test (and its subdomains) is local; RCPT to any other domain gets "554 5.7.1 Relay access denied".
--
-- What it does: the server relays for nobody, authenticated or not: recipients outside
-- smtpfault.test (and its subdomains) are refused with 554 5.7.1. <Postmaster> with no domain
-- is taken, as RFC 5321 4.5.1 asks of every server.
-- What it targets: an open-relay check from the mailer's side: the wrong smarthost, a missing
-- or ignored AUTH, a sender address the account may not use. Mailers that retry a 5xx, or
-- report success because MAIL FROM was accepted.
-- What a correct mailer does: does not send DATA without an accepted recipient, does not
-- retry, QUITs and reports the failure with the server's text. When some recipients are in
-- smtpfault.test and others are not, it sends the message to the accepted ones and reports
-- success, as under partial-recipients.

function on_rcpt(s, rcpt)
  if rcpt.domain == "" and rcpt.local_part:lower() == "postmaster" then
    return
  end
  if not smtp.domain_in(rcpt.address, { "smtpfault.test" }) then
    return smtp.reply(554, "5.7.1", "<" .. rcpt.address .. ">: Relay access denied")
  end
end

-- Whether any recipient got 250: a list that mixes local and remote domains is a partial
-- refusal, not a failed message.
local function accepted_recipient(run)
  for _, s in ipairs(run.sessions) do
    for _, x in ipairs(s.exchanges) do
      if x.verb == "RCPT" and x.code >= 200 and x.code < 300 then return x.command end
    end
  end
end

-- Every recipient refused: nothing may be delivered, and the command must report a failure
-- (a crash or the timeout is not a report).
local function judge_all_refused(run)
  if run.delivered > 0 then
    return false, "expected nothing delivered (every recipient was refused), got " .. run.delivered
  end
  for i, code in ipairs(run.exit_codes) do
    if code == 0 then
      return false, "every recipient was refused, yet the command reported success (exit 0)"
    end
    if code == -1 or run.exit_signals[i] ~= 0 then
      return false, "every recipient was refused and the command did not report it: "
        .. (code == -1 and "it was killed at the timeout" or "it was killed by a signal (exit " .. code .. ")")
    end
  end
  return true
end

-- Some recipients accepted: the message goes to them once, and the command reports success.
local function judge_partial(run, accepted)
  local text_refused, in_session = smtp.refused_message(run)
  if run.delivered == 0 and text_refused then
    return false, "expected the message delivered to the recipient in smtpfault.test ('" .. accepted
      .. "' got 250); the client sent it, and the server refused it after its data ('"
      .. text_refused.reply .. "', session " .. in_session .. "): that refusal, not the relay's,"
      .. " stopped it"
  end
  if run.delivered == 0 then
    return false, "expected the message delivered to the recipient in smtpfault.test ('" .. accepted
      .. "' got 250) beside the refused one; the client " .. (smtp.seen(run, "DATA")
      and "did not complete the message" or "sent no DATA") .. " (one refused recipient must not stop"
      .. " the others)"
  end
  if run.delivered > #run.exit_codes then
    return false, "expected the message once per run, got " .. run.delivered
  end
  local missing = smtp.undelivered(run)
  if #missing > 0 then
    return false, "expected the message for every accepted recipient; never delivered: "
      .. table.concat(missing, ", ")
  end
  for _, code in ipairs(run.exit_codes) do
    if code ~= 0 then
      return false, "the message went to the accepted recipients, yet the command reported failure"
        .. " (exit " .. code .. "): a refused recipient beside accepted ones is a partial refusal"
    end
  end
  -- As partial-recipients says: whether the mailer told its caller is not on the wire.
  return true, "not judged: whether the mailer told its caller that the recipients outside"
    .. " smtpfault.test were refused (its output is in the report)"
end

expect {
  quit = true,
  no_retry_after_5xx = true,
  pipelining = true,
  check = function(run)
    if not smtp.seen(run, "RCPT", 554) then
      if not smtp.seen(run, "RCPT") then
        return false, "not exercised: the client sent no RCPT (it stopped before naming a"
          .. " recipient); the relay refusal comes at RCPT to a domain other than smtpfault.test"
      end
      -- A RCPT refused for another reason (501 bad syntax, 503 out of order) never reached the
      -- relay check.
      for _, s in ipairs(run.sessions) do
        for _, x in ipairs(s.exchanges) do
          if x.verb == "RCPT" and (x.code < 200 or x.code >= 300) then
            return false, "not exercised: no RCPT reached the relay check; '" .. x.command
              .. "' got " .. (x.code == 0 and "no reply" or "'" .. x.reply .. "'")
          end
        end
      end
      return false, "not exercised: every recipient was in smtpfault.test, which this server takes"
        .. " mail for; send to another domain"
    end
    local accepted = accepted_recipient(run)
    if accepted then return judge_partial(run, accepted) end
    return judge_all_refused(run)
  end,
}
