-- For the tests of a client that gives up while the server takes its time: MAIL from
-- slow@x.test gets its reply 30 s late, from brief@x.test 2 s late, from busy@x.test a 421
-- (which closes) 30 s late; RCPT to forever@x.test sleeps in a loop that never ends.
function on_mail(s, mail)
  if mail.address == "slow@x.test" then
    return smtp.reply(250, "2.1.0", "Ok, at last"):delay(30)
  elseif mail.address == "brief@x.test" then
    return smtp.reply(250, "2.1.0", "Ok, at last"):delay(2)
  elseif mail.address == "busy@x.test" then
    return smtp.reply(421, "4.7.0", "Busy"):delay(30)
  end
end

function on_rcpt(s, rcpt)
  while rcpt.address == "forever@x.test" do
    smtp.sleep(0.05)
  end
end
