-- slow-final-reply: the 250 after the final dot comes 75 seconds late.
--
-- What it does: accepts the message, then waits 75 s (scenario time; the parameter `delay` sets
-- another) before the 250, as a server scanning the message or writing it to a slow queue does.
-- What it targets: RFC 5321 4.5.3.2.6 (wait at least 10 minutes for the reply to the final
-- dot); postalserver/postal#295 (a 30 s timeout made the client send one message 9 times).
-- What a correct mailer does: waits for the reply, delivers once and does not send again.

-- Seconds of scenario time; scenario_params delay=N sets another (a mailer's own timeout).
local DELAY = smtp.param_number("delay", 75, 0, false, 86400)  -- a day at most, as smtp.delay

function on_message(s, msg)
  return smtp.delay(DELAY)
end

expect { delivered = 1, quit = true, exit = "success" }
