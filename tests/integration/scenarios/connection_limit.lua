-- At most two sessions at a time: a scenario-wide counter, up in on_connect, down in
-- on_disconnect (which runs for every session, the refused ones included).
local active = 0

function on_connect(s)
  active = active + 1
  if active > 2 then
    return smtp.reply(421, "4.7.0", "Too many connections")
  end
end

function on_disconnect(s)
  active = active - 1
end
