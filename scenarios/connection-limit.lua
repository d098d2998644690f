-- connection-limit: at most 2 connections at a time, and the first connection finds the server full: "421 4.7.0 Error: too many connections from <address>".
--
-- What it does: counts open connections; over 2 at once, the greeting is
-- "421 4.7.0 Error: too many connections from 127.0.0.1" and the connection closes (Postfix's
-- smtpd_client_connection_count_limit). The very first connection is refused the same way, as
-- if other clients held every slot.
-- What it targets: NetSendo/NetSendo#21 and bulk senders that open many parallel connections
-- and take the 421 as a hard bounce; RFC 5321 3.8.
-- What a correct mailer does: treats the 421 as temporary, reconnects (and limits
-- its parallel connections), and delivers once.

local LIMIT = 2
local open = 0

function on_connect(s)
  open = open + 1
  s.state.counted = true
  if open > LIMIT or smtp.once("server full") then
    return smtp.reply(421, "4.7.0", "Error: too many connections from " .. s.client_ip)
  end
end

function on_disconnect(s)
  if s.state.counted then open = open - 1 end
end

expect {
  retried_after_4xx = true,
  exit = "success",
  check = function(run)
    if run.delivered ~= 1 then return false, "expected the message delivered once after the 421, got " .. run.delivered end
    -- The first refusal is the scenario's own ("server full"); any other one was a connection
    -- over the limit.
    local refused = 0
    for _, s in ipairs(run.sessions) do
      local greeting = s.exchanges[1]
      if greeting and greeting.code == 421 then refused = refused + 1 end
    end
    if refused > 1 then
      return false, "expected at most " .. LIMIT .. " connections at once; " .. (refused - 1)
        .. " more were refused as over the limit"
    end
    return true
  end,
}
