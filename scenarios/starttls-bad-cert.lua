-- starttls-bad-cert: STARTTLS (or the implicit-TLS port) presents a bad certificate; the command runs four times, once per kind, and a fifth time with the good one.
--
-- What it does: the command under test runs 5 times against the same server; every
-- connection of run N presents, in order: an expired certificate, one for the wrong host
-- (wrong-host.invalid), a self-signed one, one from an unknown CA, and in run 5 the good
-- certificate, so a mailer that retries meets the same certificate again. The good one is
-- signed by the test CA, which the mailer is expected to trust ($SMTP_CA_FILE, or what
-- `smtpfault ca` prints): run 5 tells a mailer that verifies from one that refuses every
-- certificate. Under serve, where there are no runs, connection N presents the N-th, in turn.
-- What it targets: clients that do not verify the certificate or the host name (STARTTLS is
-- then worthless against an active attacker): python smtplib before 3.x with no context,
-- PHPMailer's "verify_peer => false" advice, Go's InsecureSkipVerify, Nodemailer's
-- "rejectUnauthorized: false".
-- What a correct mailer does: the handshake fails with a verification error (OpenSSL says
-- "certificate has expired", "Hostname mismatch", "self-signed certificate", "self-signed
-- certificate in certificate chain" or "unable to get local issuer certificate"); it sends nothing, does not fall back to plaintext, does not retry (a bad
-- certificate is a configuration problem) and reports the failure each time; with the good
-- certificate it delivers.

local kinds = { "expired", "wrong_host", "self_signed", "unknown_ca" }

-- The certificate of run (or turn) n: the bad ones, then the good one.
local function kind_for(n)
  return kinds[(n - 1) % (#kinds + 1) + 1] or "good"
end

function on_starttls(s)
  -- A STARTTLS refused anyway (TLS already up, no EHLO yet) starts no handshake and takes no
  -- certificate's turn; the implicit-TLS port's handshakes do.
  if s.tls or (s.helo == "" and not s.implicit_tls) then return end
  local kind = kind_for(s.run or smtp.count("starttls"))
  if kind ~= "good" then return smtp.certificate(kind) end
end

-- Retrying is what an MTA that requires TLS does by design: the reason says where that is told.
local MTA_NOTE = " (an MTA that requires TLS defers the message and tries again by design: see"
  .. " \"An MTA or a queue under test\" in docs/catalogue.md)"

expect {
  runs = 5,
  delivered = 1,
  no_plaintext_after_tls_failure = true,
  exit = { "failure", "failure", "failure", "failure", "success" },
  check = function(run)
    -- The implicit-TLS port (SMTP_TLS_PORT) presents the same certificates, in the same turn.
    local implicit = false
    for _, s in ipairs(run.sessions) do implicit = implicit or s.implicit_tls end
    if not smtp.seen(run, "STARTTLS") and not implicit then
      return false, "not exercised: the client used no TLS at all (neither STARTTLS nor the"
        .. " implicit-TLS port); this scenario is about verifying the server's certificate"
    end
    -- Each run's own certificate under test; by turn under serve (GET /api/v1/expectations),
    -- which runs no command.
    local by_run = #run.exit_codes > 0
    local kind_of = {}
    local n = 0
    for _, s in ipairs(run.sessions) do
      if s.implicit_tls then
        n = n + 1
        kind_of[s.id] = kind_for(by_run and s.run or n)
      end
      for _, x in ipairs(s.exchanges) do
        if x.verb == "STARTTLS" and x.code == 220 then
          n = n + 1
          kind_of[s.id] = kind_for(by_run and s.run or n)
        end
      end
    end
    -- A session of a run the kill at --timeout ended: what the client would have done is untold.
    local function killed(s)
      return s.run and run.exit_codes[s.run] == -1
    end
    -- Every bad certificate the client went on after, with the first command past it: all of
    -- them means it verifies nothing.
    local accepted, first, went_on = {}, nil, {}
    local function add(list, kind)
      if not list[kind] then
        list[kind] = true
        list[#list + 1] = kind
      end
    end
    for _, s in ipairs(run.sessions) do
      for _, x in ipairs(s.exchanges) do
        if s.tls and (x.verb == "AUTH" or x.verb == "MAIL" or x.verb == "RCPT") then
          went_on[s.id] = true
          if kind_of[s.id] ~= "good" then
            first = first or ("'" .. x.verb .. "' (session " .. s.id
              .. (s.run and ", run " .. s.run or "") .. ")")
            add(accepted, kind_of[s.id] or "?")
          end
          break
        end
      end
    end
    -- A run killed at --timeout after its handshake (libESMTP 1.1 hangs after most TLS 1.3
    -- handshakes) never showed whether the client goes on: that certificate is untold.
    local untold = {}
    for _, s in ipairs(run.sessions) do
      local kind = kind_of[s.id] or "?"
      if s.tls and killed(s) and not went_on[s.id] and kind ~= "good" then
        add(untold, kind)
      end
    end
    local untold_note = #untold == 0 and "" or ("; the run for the " .. table.concat(untold, ", ")
      .. " certificate was killed at --timeout after the handshake, so whether the client would"
      .. " have gone on is not known")
    if #accepted == 0 and #untold > 0 then
      return false, "not exercised" .. untold_note:gsub("^; ", ": ")
    end
    if #accepted == #kinds then
      return false, "the client accepted every bad certificate (" .. table.concat(accepted, ", ")
        .. ") and went on, first with " .. first .. ": it verifies none of them (chain, expiry"
        .. " and host name alike); trust the test CA ($SMTP_CA_FILE under smtpfault test, or what"
        .. " smtpfault ca prints) and turn verification on; where both are done, the library"
        .. " ignores them on this path (emailjs 5 does after STARTTLS)"
    elseif #accepted > 0 then
      -- The host name alone: a check many libraries leave off by default.
      local name_only = #accepted == 1 and accepted[1] == "wrong_host" and #untold == 0
      return false, "the client accepted a bad certificate (" .. table.concat(accepted, ", ")
        .. ") and went on with " .. first .. (name_only and ": it verifies the chain but not the"
          .. " host name (Jakarta Mail leaves that off until mail.smtp.ssl.checkserveridentity"
          .. " is true; swaks does not check it; docs/catalogue.md)" or "") .. untold_note
    end
    -- Which run retried, and against which certificate: the one to look at.
    local per_run, first_of = {}, {}
    for _, s in ipairs(run.sessions) do
      if s.run then
        per_run[s.run] = (per_run[s.run] or 0) + 1
        first_of[s.run] = first_of[s.run] or s.id
      end
    end
    for r = 1, #kinds do
      if (per_run[r] or 0) > 1 then
        return false, "expected one connection per run (no retry after a certificate error); run "
          .. r .. " (the " .. (kind_of[first_of[r]] or "?") .. " certificate) made " .. per_run[r]
          .. " connections, " .. #run.sessions .. " in all" .. MTA_NOTE
      end
    end
    if not by_run and #run.sessions > #kinds + 1 then
      return false, "expected one connection per certificate (no retry after a certificate"
        .. " error), got " .. #run.sessions .. MTA_NOTE
    end
    -- Stopping at the good certificate as well says nothing about the bad ones: a client that
    -- trusts no certificate at all, or cannot complete a handshake, would pass the runs above.
    for _, s in ipairs(run.sessions) do
      if kind_of[s.id] == "good" and not went_on[s.id] and not killed(s) then
        return false, "the client went no further with the good certificate either (session "
          .. s.id .. (s.run and ", run " .. s.run or "") .. ": signed by the test CA, for"
          .. " localhost, 127.0.0.1 and ::1 among others): one that stops at every handshake"
          .. " shows nothing by stopping at the bad ones; where it refused the certificate, give"
          .. " it $SMTP_CA_FILE to trust (docs/catalogue.md says how for each mailer)"
      end
    end
    return true
  end,
}
