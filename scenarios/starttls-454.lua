-- starttls-454: STARTTLS gets "454 4.7.0 TLS not available" on the first two connections; the third can upgrade.
--
-- What it does: STARTTLS is advertised but refused with 454 (a temporary failure: e.g. the
-- server cannot load its certificate) on the first two connections; later connections work.
-- What it targets: RFC 3207 section 4 (454 is temporary); twisted/twisted#10334 (the refusal
-- was ignored and the client went on in plaintext); mailers that give up for good on a 4xx.
-- What a correct mailer does: never continues in plaintext after the refusal; QUITs,
-- retries later and delivers over TLS.

function on_starttls(s)
  -- Only a STARTTLS the server would carry out counts: not the implicit-TLS port's handshake,
  -- nor one refused anyway (TLS already up, no EHLO yet).
  if s.implicit_tls or s.tls or s.helo == "" then return end
  -- Connections are counted, not commands: a client that tries STARTTLS again on the same
  -- connection is refused again there.
  if s.state.refuse_tls == nil then s.state.refuse_tls = smtp.count("starttls") <= 2 end
  if s.state.refuse_tls then
    return smtp.reply(454, "4.7.0", "TLS not available due to temporary reason")
  end
end

-- No quit = true: after a refused STARTTLS, swaks, curl and msmtp all close without QUIT (RFC
-- 5321 4.1.1.10 asks for one); a check every client fails would only hide the retry it judges.
expect {
  no_plaintext_after_tls_failure = true,
  no_plaintext_auth = true,
  exit = "success",
  check = function(run)
    if not smtp.seen(run, "STARTTLS") then
      return false, "not exercised: the client never sent STARTTLS (implicit TLS, or none); this"
        .. " scenario is about STARTTLS"
    end
    if run.delivered == 0 and #run.sessions < 3 then
      -- Said as the other retry scenarios say it: which refusal it never came back after.
      local refusal, on
      for i, s in ipairs(run.sessions) do
        for _, x in ipairs(s.exchanges) do
          if x.verb == "STARTTLS" and x.code == 454 then refusal, on = x.reply, i .. " (session " .. s.id .. ")" end
        end
      end
      return false, "expected the message delivered once over TLS after retrying; the client made "
        .. #run.sessions .. " connection(s) and never came back after '" .. (refusal or "?")
        .. "' to STARTTLS on connection " .. (on or "?") .. " (454 is temporary, RFC 3207 4: the"
        .. " first two connections are refused, the third can upgrade)"
    end
    if run.delivered ~= 1 then
      return false, "expected the message delivered once over TLS after retrying, got " .. run.delivered
        .. " in " .. #run.sessions .. " connection(s)"
    end
    if not run.messages[1].tls then return false, "expected the message sent over TLS" end
    return true
  end,
}
