-- Each recipient is refused with a seeded coin flip: the same seed, the same refusals.
function on_rcpt(s, rcpt)
  if smtp.chance(0.5) then
    return smtp.reply(450, "4.2.0", "Mailbox busy, try later")
  end
end
