-- probe-auth-limits: AUTH lines of 12288 and 12289 octets, invalid base64 and the "*" cancel, checking RFC 4954's limits and error replies (the upper one with enforce=true).
--
-- What it does: after EHLO (and STARTTLS first when the server offers it but no AUTH in
-- plaintext), sends an AUTH PLAIN line of exactly 12288 octets (CRLF included; the base64 is
-- of the wrong length on purpose), one of 12289 octets, "AUTH PLAIN" with invalid base64, and
-- "AUTH LOGIN" answered with "*".
-- What it targets: RFC 4954 section 4 (AUTH lines up to 12288 octets; "*" cancels with 501;
-- invalid base64 gets 501); Exim CVE-2018-6789 (base64 decoder off-by-one), CVE-2023-42114..6;
-- servers that apply the 512-octet command limit to AUTH, or no limit at all.
-- What a correct server does: the 12288-octet line is not refused as too long (a 501/535 is
-- fine), bad base64 gets 501, "*" gets 501, and the server stays in step (NOOP 250). Where it
-- enforces the limit, the 12289-octet line is refused (500) or the connection is closed; RFC
-- 4954 only sets what a server must take, so that is judged only with --param enforce=true.
-- Report keys: "auth_12288", "auth_12289", "bad_base64", "cancel": the reply codes; "auth":
-- "not offered" when absent. A STARTTLS that is refused or fails ends the run (exit 3).
-- Params: helo, enforce (true: a line over the limit must be refused), starttls and ca (STARTTLS
-- first; ca verifies the certificate).

local helo = params.helo or "auth-probe.smtpfault.test"
-- Whether an AUTH line over the limit must be refused: the server's policy, judged if asked.
local enforce = params.enforce == "true"
if params.enforce ~= nil and params.enforce ~= "true" and params.enforce ~= "false" then
  error("--param enforce=" .. params.enforce .. ": expected true or false", 0)
end

local function code_of(r, err)
  return r and (r.code .. " " .. (r.lines[1] or "")) or err
end

local c = connect {}
local tls = starttls_from_params()
greeting()
local e = ehlo(helo, { starttls = tls })
if e and not e.extensions.AUTH and e.extensions.STARTTLS and not tls then
  -- AUTH may be offered over TLS alone (OpenSMTPD does so): a STARTTLS that is refused or
  -- fails leaves nothing to probe, and ends the run as a target that could not be used (exit
  -- 3, with the handshake's reason), not as one that offers no AUTH. A new connection (after
  -- one an over-long line ended) goes over TLS too.
  tls = {}
  starttls(tls)
  e = ehlo(helo)
end
if not (e and e.extensions.AUTH) then
  report("auth", "not offered")
  quit()
  skip("AUTH not offered: nothing to probe")
end

local prefix = "AUTH PLAIN "
send(prefix .. string.rep("A", 12288 - #prefix - 2))
local r, err = reply()
report("auth_12288", code_of(r, err))
check(r and r.code ~= 500, "a 12288-octet AUTH line is not refused as too long", code_of(r, err)
  .. ((r and r.code ~= 500) and "" or " (RFC 4954 4: a server takes AUTH lines of up to 12288"
    .. " octets, CRLF included, for large SASL responses such as XOAUTH2 tokens: raise its"
    .. " AUTH line limit to that)"))
if r and r.code == 334 then send("*") reply() end
-- The next line must reach a live connection: one the 12288-octet line ended proves nothing.
if c.closed then
  c = connect {}
  greeting()
  ehlo(helo, { starttls = tls })
end

send(prefix .. string.rep("A", 12289 - #prefix - 2))
r, err = reply()
report("auth_12289", code_of(r, err))
if enforce then
  check((r and r.code == 500) or err == "closed" or err == "reset",
    "a 12289-octet AUTH line is refused with 500", code_of(r, err))
end
if c.closed then
  c = connect {}
  greeting()
  ehlo(helo, { starttls = tls })
end

send("AUTH PLAIN !!!not*base64!!!")
r, err = reply()
report("bad_base64", code_of(r, err))
check(r and r.code == 501, "invalid base64 gets 501", code_of(r, err))

send("AUTH LOGIN")
-- Only a 334 opens an exchange that "*" can cancel; after any other reply "*" is a command.
local challenge, unexpected = expect(334)
if challenge and not unexpected then
  send("*")
  r, err = reply()
  report("cancel", code_of(r, err))
  check(r and r.code == 501, "'*' cancels the exchange with 501", code_of(r, err))
end
send("NOOP")
expect(250, { name = "in step after the AUTH probes" })
quit()
