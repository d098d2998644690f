-- DATA gets its 354, then the connection is reset while the message arrives; and a DATA that
-- names "hang" in its session's HELO is never answered.
function on_data(s)
  if s.helo == "hang.test" then return smtp.hang() end
  return smtp.reply(354, "go ahead"):reset()
end
