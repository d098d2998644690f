-- every-command: a benchmark scenario whose hook runs on every command and decides something.
--
-- It counts commands per verb across sessions and answers VRFY itself; everything else keeps
-- the default reply. Used by bench/run.sh to measure the cost of Lua on the hot path.
local counts = {}

function on_command(s, cmd)
  counts[cmd.verb] = (counts[cmd.verb] or 0) + 1
  if cmd.verb == "VRFY" then
    return smtp.reply(252, "2.1.5", "Cannot verify, will accept")
  end
  if cmd.verb == "RCPT" and cmd.argument:find("reject-me", 1, true) then
    return smtp.reply(550, "5.1.1", "No such user")
  end
end
