-- probe-pipelining: pipelined command groups (RFC 2920), with a failing recipient and a failing DATA inside a group, checking the server answers every command in order and stays in step.
--
-- What it does: reports whether PIPELINING is advertised; sends MAIL, RCPT (good), RCPT (no
-- address) and
-- DATA in one write and expects 250, 250, 501/553, 354, then the message; then RSET, MAIL, a
-- bad RCPT and DATA in one write, expecting 250, 250, 5xx, 503/554 and no 354 (the message
-- must not be sent); then NOOP to show the server is still in step.
-- What it targets: RFC 2920 (replies in order, DATA the last of a group, 503/554 to DATA after
-- every RCPT failed); clients and servers that lose step inside a group (swiftmailer#1265,
-- nodemailer#265); servers that flush or reorder replies.
-- What a correct server does: one reply per command, in order, with the codes above. Report
-- keys: "pipelining" ("offered" or "not offered"), "group1" and "group2", the codes received
-- ("none" for a reply that never came). PIPELINING is optional (RFC 2920): a server that does
-- not offer it is judged only on the groups, which go out all the same; if it refuses the first
-- group, or closes, the probe stops there (skipped): it may.
-- Params: from, rcpt, helo, starttls and ca (STARTTLS first, for a server that requires it; ca
-- verifies its certificate).

local from = params.from or "probe@smtpfault.test"
local rcpt = params.rcpt or "rcpt@example.com"

-- The codes of the next n replies; 0 for each one that never came (the server closed, or
-- went silent), so that every check below reads a number.
local function codes(n)
  local got, gone = {}, false
  for i = 1, n do
    local r = not gone and reply() or nil
    got[i] = r and r.code or 0
    gone = gone or not r
  end
  return got
end

-- "250 250 501 354"; "none" for a reply that never came.
local function shown(got)
  local words = {}
  for i, code in ipairs(got) do
    words[i] = code == 0 and "none" or tostring(code)
  end
  return table.concat(words, " ")
end

connect {}
greeting()
local e = ehlo(params.helo or "pipelining.smtpfault.test",
  { starttls = starttls_from_params() })
local offered = e and e.extensions.PIPELINING ~= nil
-- Optional (RFC 2920), as CHUNKING is to probe-bdat: said, not failed. A server that answers
-- the groups below in order could offer it, and spare every client the round trips.
report("pipelining", offered and "offered" or "not offered")

pipeline { "MAIL FROM:<" .. from .. ">", "RCPT TO:<" .. rcpt .. ">", "RCPT TO:", "DATA" }
local g1 = codes(4)
report("group1", shown(g1))
-- A server that does not offer PIPELINING may refuse a group (OpenSMTPD answers 500 and
-- closes): that is its right, and the checks below would only count the consequences.
if not offered and (g1[1] ~= 250 or connection().closed) then
  local closed = connection().closed
  -- A refusal gets QUIT; a server that went silent would not answer it either.
  if not closed and g1[1] ~= 0 then quit() end
  skip("PIPELINING is not offered, and the server "
    .. ((g1[1] == 0 and not closed) and "did not answer the pipelined group" or "refused the pipelined group")
    .. " (" .. shown(g1) .. "), as it may: nothing more to probe")
end
check(g1[1] == 250 and g1[2] == 250, "MAIL and the good RCPT get 250 in a pipelined group", shown(g1))
check(g1[3] >= 500 and g1[3] < 600, "the bad RCPT gets a 5xx in its place", shown({ g1[3] }))
check(g1[4] == 354, "DATA gets 354 after a good recipient", shown({ g1[4] }))
if g1[4] == 354 then
  raw("Subject: pipelining probe\r\n\r\nbody\r\n.\r\n")
  expect(250)
end

pipeline { "RSET", "MAIL FROM:<" .. from .. ">", "RCPT TO:", "DATA" }
local g2 = codes(4)
report("group2", shown(g2))
check(g2[1] == 250 and g2[2] == 250, "RSET and MAIL get 250", shown(g2))
check(g2[3] >= 500, "the only RCPT fails", shown({ g2[3] }))
check(g2[4] == 503 or g2[4] == 554, "DATA without a recipient gets 503 or 554, not 354", shown({ g2[4] }))
if g2[4] == 354 then raw(".\r\n") reply() end
send("NOOP")
expect(250, { name = "still in step after the failed group" })
quit()
