-- probe-early-talker: sends EHLO before the server's greeting and checks that the greeting still comes first and the conversation stays in order.
--
-- What it does: connects and writes "EHLO" at once, without waiting for the 220; reads the
-- replies; then NOOP. Early talkers are a classic spam-bot signature (Postfix postscreen's
-- "pregreet" test; Postfix 3.9 flags unauthenticated pipelining).
-- What it targets: RFC 5321 4.3.1 (the client waits for the greeting) from the server's side:
-- a server must not answer a command before its greeting, must not drop or reorder replies,
-- and may reject the early talker (554, or close).
-- What a correct server does: 220 (or 554) first; then either answers the EHLO in order or
-- rejects/closes. Report key "early_ehlo": "answered in order", "rejected: ...", "closed (...)"
-- or "no reply (timeout)"; silence is not a disconnect and fails.
-- Params: helo.

local helo = params.helo or "early-talker.smtpfault.test"

connect {}
send("EHLO " .. helo)
local greeting, err = reply()
check(greeting and (greeting.code == 220 or greeting.code == 554),
  "the greeting (220 or 554) is the first reply", greeting and greeting.code or err)
if not greeting then
  report("early_ehlo", err == "timeout" and "no greeting (timeout)" or "closed before the greeting")
  return
end
local r, rerr = reply()
if rerr == "timeout" then
  report("early_ehlo", "no reply (timeout)")
  check(false, "the early EHLO is answered, rejected or disconnected", "no reply within the timeout")
  return
end
if not r then
  report("early_ehlo", "closed (" .. rerr .. ")")
  check(true, "the early talker is disconnected")
  return
end
if r.code == 250 then
  report("early_ehlo", "answered in order")
  check(#r.lines >= 1, "the early EHLO gets its own reply after the greeting")
  send("NOOP")
  expect(250, { name = "in step after the early EHLO" })
  quit()
else
  report("early_ehlo", "rejected: " .. r.code .. " " .. (r.lines[1] or ""))
  check(r.code >= 500, "the early EHLO is rejected with a 5xx", r.code)
end
