-- probe-conformance: a basic RFC 5321 conformance sweep: greeting, EHLO and HELO, command order, null sender, postmaster, unknown commands, case-insensitive verbs, RSET, NOOP, VRFY and QUIT.
--
-- What it does: on a few connections: MAIL before EHLO, RCPT before MAIL, DATA before RCPT,
-- an unknown verb, a complete transaction with the null sender to postmaster (at the domain of
-- --param rcpt) in lower case, RSET, NOOP with and without an argument, VRFY, HELO after EHLO,
-- and QUIT (221 and the close).
-- What it targets: RFC 5321 3.3 and 4.1.4 (command order, 503), 4.1.1.1 (EHLO/HELO), 4.2.4
-- (500/502 for unknown commands), 4.1.1.9 (NOOP's argument ignored), 4.5.1 (postmaster must be
-- accepted), 4.1.1.2 and 6.1 (the
-- null reverse-path), 2.4 (verbs are case-insensitive), 4.1.1.10 (QUIT: 221, then close),
-- 4.2 (well-formed replies, checked on every reply).
-- What a correct server does: every check below holds.
-- Params: helo, rcpt (a deliverable address besides postmaster), starttls and ca (each connection
-- goes over STARTTLS first, for a server that requires it, and the checks start from the state
-- it leaves, no EHLO yet, RFC 3207 4.2; ca verifies the certificate).

local helo = params.helo or "conformance.smtpfault.test"
local rcpt = params.rcpt or "rcpt@example.com"
local domain = rcpt:match("@(.+)$") or "example.com"

-- EHLO and STARTTLS where --param starttls=true asks: the server then forgets the EHLO.
local function secure()
  local tls = starttls_from_params()
  if tls then
    ehlo(helo)
    starttls(tls)
  end
end

-- 1: command order
connect {}
greeting({ name = "greeting is 220" })
secure()
send("MAIL FROM:<probe@smtpfault.test>")
expect(503, { name = "MAIL before EHLO gets 503" })
ehlo(helo)
send("RCPT TO:<" .. rcpt .. ">")
expect(503, { name = "RCPT before MAIL gets 503" })
send("MAIL FROM:<probe@smtpfault.test>")
expect(250)
send("DATA")
local data_reply = expect({ 503, 554 }, { name = "DATA before RCPT gets 503 or 554" })
-- A server that opened a message anyway reads every command after it as text: end it, so that
-- the checks below are answered as commands again.
if data_reply and data_reply.code == 354 then
  raw(".\r\n", { label = "<end of the message DATA opened>" })
  reply()
end
send("XUNKNOWN-VERB argument")
expect({ 500, 502 }, { name = "an unknown command gets 500 or 502" })
send("RSET")
expect(250, { name = "RSET gets 250" })
send("NOOP")
expect(250, { name = "NOOP gets 250" })
-- "NOOP [ SP String ]": a server SHOULD ignore the string. One that refuses it also refuses the
-- padded NOOPs of probe-long-lines and probe-slowloris.
send("NOOP conformance")
expect(250, { name = "NOOP with an argument gets 250 (RFC 5321 4.1.1.9: the argument is ignored)" })
send("VRFY postmaster")
expect({ 250, 251, 252, 502, 550, 553 }, { name = "VRFY gets 250, 251, 252, 502 or 55x" })
-- Closing is judged after a 221 only: a server that closed before it did not answer QUIT.
local _, no_221 = quit()
local closed = no_221 == nil and connection():wait_closed({ timeout = math.min(5, target.timeout) })
check(closed, "the server closes the connection after 221", closed and "closed"
  or no_221 and "QUIT got no 221" or "still open after the 221 (RFC 5321 4.1.1.10: the"
  .. " receiver sends 221 and then closes the transmission channel)")

-- 2: null sender, postmaster, lower case
connect {}
greeting()
secure()
send("ehlo " .. helo)
expect(250, { name = "lower-case ehlo is accepted" })
send("mail from:<>")
expect(250, { name = "the null reverse-path <> is accepted" })
send("rcpt to:<postmaster@" .. domain .. ">")
-- The domain is --param rcpt's: a server that refuses postmaster at example.com may only not be
-- example.com's. Without a recipient there is no message to send.
local _, refused = expect(250, { name = "postmaster@" .. domain .. " is accepted (RFC 5321 4.5.1;"
  .. " --param rcpt=ADDR sets the domain)" })
if not refused then
  data("Subject: conformance probe\r\n\r\n.leading dot\r\nbody\r\n", { name = "a dot-stuffed message is accepted" })
end
send("HELO " .. helo)
expect(250, { name = "HELO after EHLO gets 250" })
quit()
