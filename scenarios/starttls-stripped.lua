-- starttls-stripped: STARTTLS is left out of the EHLO reply, as a man in the middle stripping it would do.
--
-- What it does: hides the STARTTLS extension (and refuses the command), everything else is
-- normal, including AUTH offered in plaintext.
-- What it targets: STARTTLS stripping; CVE-2016-0772 (python/cpython#74770: smtplib went on
-- in plaintext when STARTTLS was missing), mikel/mail#694, emailjs/emailjs-smtp-client#13,
-- dahlia/upyo#36, go-gitea/gitea#7402 (credentials and mail sent in the clear).
-- What a correct mailer does, when it is configured to require TLS (careful.py is): sends
-- neither AUTH nor the message in plaintext, QUITs, does not retry (a missing STARTTLS will
-- not fix itself) and reports the failure.

function on_ehlo(s, name)
  return smtp.hide("STARTTLS")
end

expect {
  delivered = 0,
  no_plaintext_auth = true,
  quit = true,
  exit = "failure",
  check = function(run)
    local implicit = #run.sessions > 0
    for _, s in ipairs(run.sessions) do implicit = implicit and s.tls end
    if implicit then
      return false, "not exercised: every session was TLS from its start (implicit TLS); this"
        .. " scenario hides STARTTLS"
    end
    for _, s in ipairs(run.sessions) do
      for _, x in ipairs(s.exchanges) do
        if (x.verb == "MAIL" or x.verb == "RCPT" or x.verb == "DATA") and not s.tls then
          return false, "expected nothing sent without STARTTLS; session " .. s.id
            .. " sent '" .. x.command .. "' in plaintext (a mailer that requires TLS stops when"
            .. " STARTTLS is not offered; if falling back to plaintext is your policy, opportunistic"
            .. " TLS, --exclude this scenario: docs/catalogue.md, \"What the expectations assume\")"
        end
      end
    end
    -- STARTTLS sent though not offered: refused with 502, and again and again by a client that
    -- does not take no for an answer (the server ends such a session at its error limit).
    local unoffered = 0
    for _, s in ipairs(run.sessions) do
      for _, x in ipairs(s.exchanges) do
        if x.verb == "STARTTLS" then unoffered = unoffered + 1 end
      end
    end
    local sent_anyway = unoffered > 0 and string.format("; it sent STARTTLS %d time(s) though"
      .. " EHLO did not offer it (refused with 502): a client that requires TLS stops when the"
      .. " server does not offer it", unoffered) or ""
    if #run.sessions > 1 then
      return false, "expected no retry (STARTTLS will not appear by itself), got " .. #run.sessions
        .. " connections" .. sent_anyway .. " (an MTA that requires TLS defers the message and tries"
        .. " again by design: see \"An MTA or a queue under test\" in docs/catalogue.md)"
    end
    return true
  end,
}
