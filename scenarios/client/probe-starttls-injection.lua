-- probe-starttls-injection: sends "STARTTLS\r\nRSET\r\n" in one segment and checks that the server discards the plaintext RSET instead of running it inside the TLS session.
--
-- What it does: EHLO, then STARTTLS with an RSET pipelined behind it in the same TCP segment,
-- the TLS handshake (certificate not checked), and then an unknown command as a marker. A server
-- that kept its plaintext input buffer across the handshake answers the injected RSET inside
-- TLS, so the first reply after the handshake is a 250 instead of the marker's 5xx.
-- What it targets: CVE-2011-0411 (Postfix, and many other servers: "STARTTLS command
-- injection"); aiosmtpd CVE-2024-34083; RFC 3207 section 4.2 and RFC 2920 (STARTTLS must be
-- the last command of a pipelined group, anything after it is discarded).
-- What a correct server does: discards the pipelined plaintext (or refuses the STARTTLS with a
-- 5xx, or closes); never answers the RSET within TLS. A 4xx to STARTTLS, or none offered,
-- leaves nothing to probe: skipped. Report key "injection": "discarded", "EXECUTED (...)",
-- "STARTTLS refused: ...", "STARTTLS not offered" or "no reply inside TLS (...)": a server that
-- answers nothing after the handshake has shown nothing, and fails.

local helo = params.helo or "starttls-probe.smtpfault.test"

connect {}
greeting()
local r = ehlo(helo)
if not (r and r.extensions.STARTTLS) then
  report("injection", "STARTTLS not offered")
  quit()
  skip("STARTTLS not offered: nothing to inject into")
end
raw("STARTTLS\r\nRSET\r\n")
local ready, err = reply()
if not ready or ready.code ~= 220 then
  local what = ready and (ready.code .. " " .. (ready.lines[1] or "")) or err
  report("injection", "STARTTLS refused: " .. what)
  -- A 5xx to a STARTTLS with plaintext behind it is a defence; a temporary refusal (or none)
  -- leaves nothing probed.
  if ready and ready.code >= 500 then
    check(true, "STARTTLS with pipelined plaintext refused", what)
    return
  end
  skip("STARTTLS not available now (" .. what .. "): nothing to inject into")
end
local ok, err, reason = tls_handshake { may_fail = true }
if not ok then
  local why = reason or err
  report("injection", "handshake failed: " .. why)
  check(false, "TLS handshake after the injected STARTTLS", why)
  return
end
send("XSMTPFAULT-MARKER")
local first, first_err = reply()
if not first then
  report("injection", "no reply inside TLS (" .. first_err .. ")")
  check(false, "the server answers inside TLS", first_err)
  return
end
local executed = first.code < 400
report("injection", executed and ("EXECUTED (" .. first.code .. " to the injected RSET inside TLS)")
  or "discarded")
check(not executed, "plaintext pipelined after STARTTLS is discarded",
  "first reply inside TLS: " .. first.code .. " " .. (first.lines[1] or ""))
if executed then reply() end
ehlo(helo)
quit()
