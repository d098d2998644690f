-- Every fault action, chosen by the client: the EHLO name says which fault this session gets
-- (test_fault_actions.py and test_fault_policies.py). Names that match nothing behave as a
-- normal, accepting server.

local mail_faults = {
  ["reply-one"] = function() return smtp.reply(299, "2.9.9", "Any code goes") end,
  ["reply-multi"] = function()
    return smtp.reply(550, "5.1.1", {"No such sender", "see https://example.com/why", "bye"})
  end,
  ["reply-plain"] = function() return smtp.reply(451, "Try again later") end,
  ["reply-default-text"] = function() return smtp.reply(452) end,
  ["hide-later"] = function() return smtp.hide("STARTTLS") end,
  ["delay"] = function() return smtp.delay(0.3) end,
  ["delay5"] = function() return smtp.delay(5) end,
  ["trickle"] = function() return smtp.trickle(1, 0.02) end,
  ["trickle-slow"] = function() return smtp.trickle(20, 0.6) end,
  ["split"] = function() return smtp.split(3, 10) end,
  ["mixed-codes"] = function()
    return smtp.malformed("mixed_codes", 250, "2.1.0", {"first", "second", "last"})
  end,
  ["missing-space"] = function() return smtp.malformed("missing_space", 250, "2.1.0", "Ok") end,
  ["long-line"] = function() return smtp.malformed("long_line", 250, "2.1.0", "Ok") end,
  ["garbage"] = function() return smtp.malformed("garbage") end,
  ["raw"] = function() return smtp.raw("250-raw\n\0bytes\r\n250 as is") end,
  ["close"] = function() return smtp.close() end,
  ["reply-then-close"] = function() return smtp.reply_then_close(250, "2.1.0", "Ok, and bye") end,
  ["reset"] = function() return smtp.reset() end,
  ["reply-then-reset"] = function() return smtp.reply(451, "4.3.0", "Going away"):reset() end,
  ["hang"] = function() return smtp.hang() end,
  ["size-limit"] = function(s, mail)
    local size = tonumber(mail.params.SIZE or "0") or 0
    if size > 1000 then
      return smtp.reply(552, "5.3.4", "Message size exceeds fixed limit")
    end
  end,
}

local starttls_faults = {
  ["tls-454"] = function() return smtp.reply(454, "4.7.0", "TLS not available right now") end,
  ["tls-close"] = function() return smtp.starttls("close_after_220") end,
  ["tls-abort"] = function() return smtp.starttls("abort_handshake") end,
  ["tls-inject"] = function() return smtp.starttls("inject", {data = "250 injected\r\n"}) end,
  ["cert-expired"] = function() return smtp.certificate("expired") end,
  ["cert-wrong-host"] = function() return smtp.certificate("wrong_host") end,
  ["cert-self-signed"] = function() return smtp.certificate("self_signed") end,
  ["cert-unknown-ca"] = function() return smtp.certificate("unknown_ca") end,
}

local auth_faults = {
  ["u535"] = function() return smtp.reply(535, "5.7.8", "Authentication credentials invalid") end,
  ["u534"] = function() return smtp.reply(534, "5.7.9", "Authentication mechanism is too weak") end,
  ["u538"] = function()
    return smtp.reply(538, "5.7.11", "Encryption required for requested authentication mechanism")
  end,
  ["u454"] = function() return smtp.reply(454, "4.7.0", "Temporary authentication failure") end,
}

local challenges = {
  ["chal-empty"] = "",
  ["chal-huge"] = string.rep("A", 20000),
  ["chal-bad"] = "!!!notbase64",
}

function on_ehlo(s, name)
  if name == "hide-starttls" then return smtp.hide("STARTTLS") end
  if name == "hide-pipelining-size" then return smtp.hide("PIPELINING", "SIZE") end
  if name == "hide-vrfy-help" then return smtp.hide("VRFY", "HELP") end
  if name == "hide-vrfy" then return smtp.hide("VRFY") end
  if name == "auth-plain-only" then return smtp.extensions { "AUTH PLAIN" } end
  if name == "unsolicited" then return smtp.unsolicited(0.3, 421, "4.4.2", "idle") end
  if name == "unsolicited-keep" then
    return smtp.unsolicited(0.3, 250, "2.0.0", "still here", {close = false})
  end
  if name == "unsolicited-late" then
    return smtp.unsolicited(0.3, 421, "4.4.2", "idle"):delay(0.6)
  end
end

function on_command(s, cmd)
  local text = challenges[s.helo]
  if text and cmd.verb == "AUTH" then return smtp.challenge(text) end
end

function on_starttls(s)
  local f = starttls_faults[s.helo]
  if f then return f(s) end
end

function on_auth(s, auth)
  local f = auth_faults[auth.user]
  if f then return f(s, auth) end
end

function on_mail(s, mail)
  local f = mail_faults[s.helo]
  if f then return f(s, mail) end
end

function on_rcpt(s, rcpt)
  if s.helo == "relay-domain" and not smtp.domain_in(rcpt.address, { "example.com" }) then
    return smtp.reply(554, "5.7.1", "Relay access denied")
  end
  if s.helo == "relay-network" and smtp.ip_in(s.client_ip, "127.0.0.0/8") then
    return smtp.reply(554, "5.7.1", "Relaying denied from your network")
  end
  if s.helo == "rcpt-limit" and #s.rcpts >= 2 then
    return smtp.reply(452, "4.5.3", "Too many recipients")
  end
end

function on_message(s, msg)
  if s.helo == "lose" then return smtp.lose() end
  if s.helo == "size-at-dot" then
    return smtp.reply(552, "5.3.4", "Message too big for this mailbox")
  end
end
