-- Each recipient is refused with a seeded coin flip: the same seed, the same refusals. At RSET
-- the recipients of the session are logged in a pairs() loop: the same order every run too.
local seen = {}
function on_rcpt(s, rcpt)
  seen[rcpt.address] = true
  if smtp.chance(0.5) then
    return smtp.reply(450, "4.2.0", "Mailbox busy, try later")
  end
end

function on_command(s, cmd)
  if cmd.verb == "RSET" then
    for address in pairs(seen) do smtp.log("seen " .. address) end
  end
end
