-- Greylisting: the first attempt per (client, sender, recipient) gets 451; a retry after the
-- window (2 s of scenario time) is accepted, an earlier one is refused again.
local WINDOW = 2
local first_seen = {}

function on_rcpt(s, rcpt)
  local key = s.client_ip .. "|" .. s.mail_from .. "|" .. rcpt.address
  local t = first_seen[key]
  if not t then
    first_seen[key] = smtp.now()
    return smtp.reply(451, "4.7.1", "Greylisted, try again later")
  end
  if smtp.now() - t < WINDOW then
    return smtp.reply(451, "4.7.1", "Greylisted, retried too early")
  end
end
