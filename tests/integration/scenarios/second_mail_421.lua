-- The 2nd MAIL FROM of every session gets 421 and the connection closes.
function on_mail(s, mail)
  if s.commands.MAIL == 2 then
    return smtp.reply(421, "4.3.0", "Too much mail for now")
  end
end
