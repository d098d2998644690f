-- probe-long-lines: command lines of 511, 512 and 513 octets and message text lines of 999, 1000 and 1001 octets, checking the RFC 5321 limits are honoured (and with enforce=true, enforced).
--
-- What it does: sends NOOP commands padded to 511, 512 and 513 octets (CRLF included), then
-- three messages each with one text line of 999, 1000 and 1001 octets (CRLF included). A server
-- that refuses a short "NOOP x" has its command lines reported "not measured" instead: its
-- refusals would say nothing about their length.
-- What it targets: RFC 5321 4.5.3.1.4 (command line 512 octets) and 4.5.3.1.6 (text line 1000
-- octets); off-by-one errors at the limit; Exim CVE-2019-16928 (long EHLO heap overflow); a
-- server that accepts unbounded lines can be made to buffer without limit.
-- What a correct server does: accepts lines up to the limit and stays in step for the next
-- command. Where it enforces the limits, it answers 500 to a longer command line and does not
-- accept a message with a longer text line (500/552/554).
-- Refusing a longer line is the server's choice, not an RFC requirement (RFC 5321 4.5.3.1:
-- "implementation techniques that impose no limits on the length of these objects should be
-- used"): it is reported, and judged only with --param enforce=true.
-- Report keys: "command_511" ... "text_1001": the reply code; "after_513" when the server closed
-- the connection after the 513-octet line (the text lines then go on a new one).
-- Params: from, rcpt, helo, enforce (true: a line over a limit must be refused), starttls and ca
-- (STARTTLS first, for a server that requires it; ca verifies its certificate).

local from = params.from or "probe@smtpfault.test"
local rcpt = params.rcpt or "rcpt@example.com"
-- Whether a line over the limit must be refused: the server's policy, judged only when asked.
local enforce = params.enforce == "true"
if params.enforce ~= nil and params.enforce ~= "true" and params.enforce ~= "false" then
  error("--param enforce=" .. params.enforce .. ": expected true or false", 0)
end

local function noop_of(total)
  return "NOOP " .. string.rep("x", total - 7)  -- + CRLF = total
end

local helo = params.helo or "long-lines.smtpfault.test"

connect {}
greeting()
ehlo(helo, { starttls = starttls_from_params() })
-- The command lines are NOOPs padded with an argument. A server that refuses NOOP with any
-- argument (OpenSMTPD 6.8 answers "NOOP x" 500) would have its refusals read as a line limit.
send("NOOP x")
local short = reply()
if short and short.code ~= 250 then
  local why = "not measured: NOOP with an argument is refused even when short ('NOOP x' got "
    .. short.code .. " " .. (short.lines[1] or "") .. "; probe-conformance judges that)"
  for _, n in ipairs { 511, 512, 513 } do
    report("command_" .. n, why)
  end
else
  for _, n in ipairs { 511, 512 } do
    send(noop_of(n))
    local r = expect(250, { name = n .. "-octet command line is accepted" })
    report("command_" .. n, r and r.code or "no reply")
  end
  send(noop_of(513))
  local r, err = reply()
  report("command_513", r and r.code or err)
  if enforce then
    check(r and r.code == 500, "513-octet command line is refused with 500",
      r and (r.code .. " " .. (r.lines[1] or "")) or err)
  end
  -- Closing after a refused line is the server's right; answering out of step is not.
  send("NOOP")
  local after, after_err = reply()
  if after_err == "closed" or after_err == "reset" then
    report("after_513", "the server closed the connection")
  else
    check(after and after.code == 250, "in step after the long command line",
      after and (after.code .. " " .. (after.lines[1] or "")) or after_err)
  end
end

-- A server may end the connection at an over-long command (its right): the text lines are
-- measured on a new one.
if connection().closed then
  connect {}
  greeting()
  ehlo(helo, { starttls = starttls_from_params() })
end

for _, n in ipairs { 999, 1000, 1001 } do
  -- A refused transaction stops the probe: the message's lines would go out as commands.
  send_or_skip("MAIL FROM:<" .. from .. ">", 250, "give a sender it takes with --param from=ADDR")
  send_or_skip("RCPT TO:<" .. rcpt .. ">", 250, "give a recipient it takes with --param rcpt=ADDR")
  send_or_skip("DATA", 354, "nothing to probe")
  local line = "Subject: " .. n .. "-octet text line\r\n\r\n" .. string.rep("t", n - 2) .. "\r\n"
  raw(line .. ".\r\n")
  local d, derr = reply()
  report("text_" .. n, d and d.code or derr)
  if n <= 1000 then
    check(d and d.code == 250, n .. "-octet text line is accepted", d and d.code or derr)
  elseif enforce then
    check(d and d.code >= 500, n .. "-octet text line is refused", d and (d.code .. " " .. (d.lines[1] or "")) or derr)
  end
  send("RSET")
  expect(250)
end
quit()
