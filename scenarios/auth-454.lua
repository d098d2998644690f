-- auth-454: AUTH gets "454 4.7.0 Temporary authentication failure" on the first connection; later ones succeed.
--
-- What it does: the authentication backend is briefly unavailable: every AUTH on the first
-- connection gets 454 4.7.0; from the second connection on AUTH works.
-- What it targets: RFC 4954 section 6 (454 is temporary); mailers that treat every AUTH
-- failure as "wrong password" and give up, or alert the user to change it.
-- What a correct mailer does: retries later on a new connection, authenticates (over TLS)
-- and delivers once.

function on_connect(s)
  s.state.n = smtp.count("connection")
end

function on_auth(s, auth)
  if s.state.n == 1 then
    return smtp.reply(454, "4.7.0", "Temporary authentication failure")
  end
end

expect {
  starttls_before_auth = true,
  quit = true,
  retried_after_4xx = true,
  exit = "success",
  check = function(run)
    if not smtp.seen(run, "AUTH") then
      return false, "not exercised: the client never sent AUTH; this scenario answers it with 454"
    end
    -- A mailer with credentials waits the 454 out and logs in; one that sends unauthenticated
    -- instead would meet a refused relay at a real server.
    for _, s in ipairs(run.sessions) do
      local logged_in = false
      for _, x in ipairs(s.exchanges) do
        if x.verb == "AUTH" and x.code >= 200 and x.code < 300 then logged_in = true end
        if x.verb == "MAIL" and not logged_in then
          return false, "expected MAIL only after a successful AUTH; session " .. s.id .. " sent '"
            .. x.command .. "' without authenticating (a real server would refuse the relay)"
        end
      end
    end
    if run.delivered ~= 1 then
      return false, "expected the message delivered once after the retry, got " .. run.delivered
    end
    return true
  end,
}
