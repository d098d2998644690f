-- starttls-handshake-fail: STARTTLS gets 220, then the handshake is aborted (1st connection) or the server closes (2nd); the third works.
--
-- What it does: connection 1: "220 Ready", the ClientHello is read and the connection is
-- reset; connection 2: "220 Ready" and the connection closes before any TLS; connection 3
-- and later: normal TLS.
-- What it targets: clients that fall back to plaintext on the same or a new connection when
-- the handshake fails (a downgrade an attacker can provoke), or crash on the reset.
-- What a correct mailer does: treats the failed handshake as a temporary network failure, never
-- sends anything in plaintext after STARTTLS, reconnects and delivers over TLS.

function on_starttls(s)
  local n = smtp.count("starttls")
  if n == 1 then return smtp.starttls("abort_handshake") end
  if n == 2 then return smtp.starttls("close_after_220") end
end

expect {
  no_plaintext_after_tls_failure = true,
  no_plaintext_auth = true,
  exit = "success",
  check = function(run)
    -- On the implicit-TLS port the first handshake is aborted too (a 220 to close after has
    -- no place there): a client of that port is exercised as well.
    local implicit = false
    for _, s in ipairs(run.sessions) do implicit = implicit or s.implicit_tls end
    if not smtp.seen(run, "STARTTLS") and not implicit then
      return false, "not exercised: the client used no TLS (neither STARTTLS nor the"
        .. " implicit-TLS port); this scenario breaks its handshakes"
    end
    if run.delivered == 0 and #run.sessions < 3 then
      -- Said as starttls-454 says it: which broken handshake it never came back after.
      local last = run.sessions[#run.sessions]
      local how = last and (last.implicit_tls and "its TLS handshake was aborted"
        or (#run.sessions == 1 and "the server aborted the TLS handshake after '220' to STARTTLS"
          or "the server closed the connection after '220' to STARTTLS"))
      return false, "expected the message delivered once over TLS after the failed handshakes;"
        .. " the client made " .. #run.sessions .. " connection(s) and never came back after "
        .. (how or "?") .. " on connection " .. #run.sessions .. " (session " .. (last and last.id or "?")
        .. "): a failed handshake is a temporary network failure, worth another connection"
        .. " (the third can upgrade)"
    end
    if run.delivered ~= 1 then
      return false, "expected the message delivered once over TLS after the failed handshakes, got "
        .. run.delivered .. " in " .. #run.sessions .. " connection(s)"
    end
    for _, s in ipairs(run.sessions) do
      if not s.tls and s.delivered > 0 then return false, "expected no delivery in plaintext (session " .. s.id .. ")" end
    end
    return true
  end,
}
