-- late-reply: the reply to the first RCPT comes 90 seconds late; a client that stops waiting must not go on with that connection.
--
-- What it does: holds the 250 to the first RCPT of the first connection for 90 s (scenario
-- time; `scenario_params delay=N` sets another, such as a little more than the mailer's own
-- read timeout), within the 5 minutes RFC 5321 4.5.3.2.3 gives a client for it. PIPELINING is
-- not offered, so the client must wait for each reply before its next command (RFC 5321
-- 4.3.1). A client whose read times out first and that then goes on with the same connection
-- (RSET, MAIL, the next message) gets the late 250 as the reply to its next command, and is one
-- reply behind from there.
-- What it targets: symfony/symfony#54169 and #53647 (after a read timeout the transport sent
-- RSET on the same connection, which read the late reply: "Expected response code 354 but got
-- code 250"; mended by closing the connection, symfony/symfony#65352),
-- swiftmailer/swiftmailer#828 (MAIL sent again on the same connection after a timeout).
-- What a correct mailer does: waits for the reply, or, once its own timeout ends the wait,
-- sends nothing more on that connection (a QUIT at most) and sends the message again on a new
-- one; delivers each message once. A mailer that waits passes with a note that its timeout was
-- never met.

-- Seconds of scenario time; scenario_params delay=N sets another.
local DELAY = smtp.param_number("delay", 90, 0, false, 86400)  -- a day at most, as smtp.delay

function on_ehlo(s, name)
  return smtp.hide("PIPELINING")
end

function on_rcpt(s, rcpt)
  if smtp.once("late reply") then return smtp.delay(DELAY) end
end

expect {
  exit = "success",
  check = function(run)
    for _, s in ipairs(run.sessions) do
      -- A command that came while a reply was held back; a QUIT is a mailer closing up.
      local sent = s.sent_while_held_command
      if sent and not sent:upper():find("^QUIT") then
        return false, "the client sent '" .. sent .. "' on session " .. s.id .. " while the reply to "
          .. s.sent_while_held .. " was held back (transcript line " .. s.sent_while_held_at
          .. "): without PIPELINING it must wait for each reply, and once its own timeout ends"
          .. " the wait the connection is out of step (the late reply answers the next command);"
          .. " close it and send again on a new one (symfony/symfony#54169)"
      end
    end
    local distinct, repeats = smtp.message_counts(run)
    if #repeats > 0 then return false, "expected each message delivered once; " .. repeats[1].said end
    if distinct == 0 then
      local first = run.sessions[1]
      if first and first.left_while_held and #run.sessions == 1 then
        local held = first.exchanges[#first.exchanges]
        return false, string.format("expected the message delivered, got none: the client gave"
          .. " up waiting for the reply to '%s' after %.1f s (session %s) and did not send the"
          .. " message again on a new connection", held.command,
          (first.ended - held.at) * run.time_scale, first.id)
      end
      return false, "expected the message delivered, got none"
    end
    if #run.sessions == 1 then
      -- Real seconds, whatever --time-scale: a read timeout is the mailer's own, in real time.
      local waited = DELAY * run.time_scale
      if waited >= 90 then
        return true, string.format("not exercised: the client waited the whole %g s for the late"
          .. " reply, so its read timeout is longer (RFC 5321 4.5.3.2.3 asks for 5 minutes) or it"
          .. " has none", waited)
      end
      -- The delay is scenario time: under --time-scale it must be the read timeout divided by
      -- the scale to outlast it.
      return true, string.format("not exercised: the client waited the whole %g s for the late"
        .. " reply%s; to outlast its read timeout T, give --set scenario_params=delay=N with N a"
        .. " little more than T%s (and --timeout room for it)", waited, run.time_scale ~= 1
          and string.format(" (%g s of scenario time at --time-scale %g)", DELAY, run.time_scale)
          or "", run.time_scale ~= 1 and string.format(" / %g, or run it without --time-scale",
            run.time_scale) or "")
    end
    return true
  end,
}
