-- auth-538: AUTH before TLS gets "538 5.7.11 Encryption required"; after STARTTLS it works.
--
-- What it does: refuses any AUTH command on a connection without TLS, before the client sends
-- any credential, with 538 5.7.11. Over TLS, AUTH succeeds.
-- What it targets: RFC 4954 section 6 (538: encryption required for the mechanism); mailers
-- that authenticate before (or without) STARTTLS and expose the password.
-- What a correct mailer does: upgrades with STARTTLS before AUTH, so it never sees the 538,
-- and delivers.

function on_command(s, cmd)
  if cmd.verb == "AUTH" and not s.tls then
    return smtp.reply(538, "5.7.11", "Encryption required for requested authentication mechanism")
  end
end

expect {
  starttls_before_auth = true,
  delivered = 1,
  quit = true,
  exit = "success",
  check = function(run)
    for _, s in ipairs(run.sessions) do
      for _, x in ipairs(s.exchanges) do
        if x.verb == "AUTH" then return true end
      end
    end
    return false, "not exercised: the client never sent AUTH; this scenario is about when it does"
  end,
}
