-- Does not load: a stray comma in the call below (the test finds its line by the ",,").
function on_mail(s, mail)
  if mail.address == "x@example.com" then
    return smtp.reply(550,, "5.1.1", "No such sender")
  end
end
