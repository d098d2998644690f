-- probe-bdat: CHUNKING edge cases: BDAT 0 LAST, an end-of-data marker inside a chunk, BDAT mixed with DATA, an oversized BDAT size and a disconnect mid-chunk.
--
-- What it does: with CHUNKING advertised: a transaction whose only chunk is "BDAT 0 LAST"; a
-- chunk containing "\r\n.\r\nMAIL FROM:..." (must stay data); a BDAT chunk followed by DATA in
-- the same transaction (503); a BDAT with an absurd size (refused, no allocation); and a
-- connection reset in the middle of a chunk, after which a new connection must be served.
-- Without CHUNKING it only checks that BDAT is refused.
-- What it targets: RFC 3030 (BDAT 0 LAST is valid; BDAT and DATA do not mix); Exim
-- CVE-2017-16943 and CVE-2017-16944 (BDAT use-after-free and endless loop), Exim 4.99.3 BDAT
-- use-after-free; smuggling through chunk contents.
-- What a correct server does: 250 to BDAT 0 LAST, exactly one 250 per chunk regardless of its
-- contents, 503 to DATA after BDAT, 5xx to the huge size, and no harm from a half chunk.
-- Report keys: "chunking", "bdat_0_last", "marker_in_chunk", "data_after_bdat", "huge_size",
-- "after_reset".
-- Params: from, rcpt, helo, starttls and ca (STARTTLS first, for a server that requires it; ca
-- verifies its certificate).

local from = params.from or "probe@smtpfault.test"
local rcpt = params.rcpt or "rcpt@example.com"
local helo = params.helo or "bdat-probe.smtpfault.test"

local function text(r, err)
  return r and (r.code .. " " .. (r.lines[1] or "")) or err
end

local function transaction()
  send("MAIL FROM:<" .. from .. ">")
  expect(250)
  send("RCPT TO:<" .. rcpt .. ">")
  expect(250)
end

connect {}
greeting()
local e = ehlo(helo, { starttls = starttls_from_params() })
if not (e and e.extensions.CHUNKING) then
  report("chunking", "not offered")
  send("BDAT 5 LAST")
  local r, err = reply()
  report("bdat_without_chunking", text(r, err))
  check(r and r.code >= 500, "BDAT is refused when CHUNKING is not offered", text(r, err))
  send("NOOP")
  reply()
  quit()
  return
end
report("chunking", "offered")

transaction()
local r, err = bdat("", { last = true, expect = 250, name = "BDAT 0 LAST completes the message" })
report("bdat_0_last", text(r, err))

transaction()
local body = "Subject: bdat probe\r\n\r\nline\r\n.\r\nMAIL FROM:<canary@smtpfault.test>\r\n"
bdat(body, { expect = 250, name = "a chunk holding CRLF.CRLF and a command is one chunk" })
r, err = bdat("", { last = true, expect = 250 })
send("XSMTPFAULT-MARKER")
local n, nerr = reply()
local in_step = n and (n.code == 500 or n.code == 502)
report("marker_in_chunk", in_step and "kept as data" or ("out of step: " .. text(n, nerr)))
check(in_step, "CRLF.CRLF inside a chunk is data, not a command boundary",
  "reply to the marker command: " .. text(n, nerr))

transaction()
bdat("first chunk\r\n", { expect = 250 })
send("DATA")
r, err = reply()
report("data_after_bdat", text(r, err))
check(r and r.code == 503, "DATA after BDAT in one transaction gets 503", text(r, err))
bdat("last\r\n", { last = true, expect = { 250, 5 } })

send("RSET")
expect(250)
transaction()
send("BDAT 99999999999999999999")
r, err = reply()
report("huge_size", text(r, err))
check((r and r.code >= 500) or err == "closed", "an absurd BDAT size is refused", text(r, err))
close()

connect {}
greeting()
ehlo(helo, { starttls = starttls_from_params() })
transaction()
raw("BDAT 1000\r\nonly forty octets of the thousand promised\r\n")
reset()
connect {}
r, err = expect(220, { name = "a new connection is served after a reset mid-chunk" })
report("after_reset", text(r, err))
ehlo(helo, { starttls = starttls_from_params() })
quit()
