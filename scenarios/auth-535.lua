-- auth-535: every AUTH attempt gets "535 5.7.8 Authentication credentials invalid".
--
-- What it does: refuses all credentials, whatever the mechanism, over TLS as well.
-- What it targets: RFC 4954 section 6 (535 is permanent); mailers that retry bad credentials
-- in a loop (and get the account locked), or send the message without authentication.
-- What a correct mailer does: may try its other mechanisms once each (smtplib's login()
-- does), then gives up: no MAIL, QUIT, no new connection, failure reported.

function on_auth(s, auth)
  return smtp.reply(535, "5.7.8", "Authentication credentials invalid")
end

expect {
  delivered = 0,
  quit = true,
  starttls_before_auth = true,
  exit = "failure",
  check = function(run)
    local auths = 0
    for _, s in ipairs(run.sessions) do
      for _, x in ipairs(s.exchanges) do
        -- AUTH commands, not the lines that answer their challenges (verb "AUTH" too)
        if x.command:upper():find("^AUTH") then auths = auths + 1 end
      end
    end
    if auths == 0 then
      return false, "not exercised: the client never sent AUTH; this scenario refuses its credentials"
    end
    for _, s in ipairs(run.sessions) do
      for _, x in ipairs(s.exchanges) do
        if x.verb == "MAIL" then
          return false, "expected no MAIL after AUTH failed; session " .. s.id .. " sent '" .. x.command .. "'"
        end
      end
    end
    if #run.sessions > 1 then
      return false, "expected no retry after 535; the client connected " .. #run.sessions .. " times"
        .. " (a mailer that keeps the message and tries again later, as an MTA does by default,"
        .. " fails this by design: see \"An MTA or a queue under test\" in docs/catalogue.md)"
    end
    if auths > 4 then
      return false, "expected at most one attempt per advertised mechanism (4), got " .. auths .. " AUTH commands"
    end
    return true
  end,
}
