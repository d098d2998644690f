-- relay-denied: only smtpfault.test (and its subdomains) is local; RCPT to any other domain gets "554 5.7.1 Relay access denied".
--
-- What it does: the server relays for nobody, authenticated or not: recipients outside
-- smtpfault.test (and its subdomains) are refused with 554 5.7.1. <Postmaster> with no domain
-- is taken, as RFC 5321 4.5.1 asks of every server.
-- What it targets: an open-relay check from the mailer's side: the wrong smarthost, a missing
-- or ignored AUTH, a sender address the account may not use. Mailers that retry a 5xx, or
-- report success because MAIL FROM was accepted.
-- What a correct mailer does: does not send DATA without an accepted recipient, does not
-- retry, QUITs and reports the failure with the server's text.

function on_rcpt(s, rcpt)
  if rcpt.domain == "" and rcpt.local_part:lower() == "postmaster" then
    return
  end
  if not smtp.domain_in(rcpt.address, { "smtpfault.test" }) then
    return smtp.reply(554, "5.7.1", "<" .. rcpt.address .. ">: Relay access denied")
  end
end

expect {
  delivered = 0,
  quit = true,
  no_retry_after_5xx = true,
  pipelining = true,
  exit = "failure",
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
    return true
  end,
}
