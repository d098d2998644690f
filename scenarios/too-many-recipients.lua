-- too-many-recipients: at most 2 recipients per transaction; the 3rd and later get "452 4.5.3 Too many recipients".
--
-- What it does: answers RCPT with 452 4.5.3 once a transaction has 2 recipients. (Real servers
-- use 50 to 1000, RFC 5321 asks for at least 100; 2 makes a three-recipient message hit it.)
-- What it targets: RFC 5321 4.5.3.1.10 (the client should send the refused recipients in a
-- following transaction); jakartaee/mail-api#20, emersion/go-smtp#195, axllent/mailpit#205:
-- the whole message failed, or the extra recipients were silently dropped, or the 452 was
-- taken as permanent.
-- What a correct mailer does: sends the message to the first two, then a second transaction
-- (the same connection or a new one) for the rest; every recipient gets it exactly once.

local LIMIT = 2

function on_rcpt(s, rcpt)
  if #s.rcpts >= LIMIT then
    return smtp.reply(452, "4.5.3", "Too many recipients")
  end
end

expect {
  quit = true,
  exit = "success",
  check = function(run)
    -- Every address the mailer asked for, and how many RCPTs met the limit.
    -- asked: address -> "refused" once a RCPT for it got 452, else "accepted".
    local asked, refused = {}, 0
    for _, s in ipairs(run.sessions) do
      for _, x in ipairs(s.exchanges) do
        if x.verb == "RCPT" then
          local a = x.command:match("<(.-)>")
          if a and x.code == 452 then asked[a:lower()] = "refused"
          elseif a and not asked[a:lower()] then asked[a:lower()] = "accepted" end
          if x.code == 452 then refused = refused + 1 end
        end
      end
    end
    local got = {}
    for _, m in ipairs(run.messages) do
      for _, r in ipairs(m.recipients) do
        local k = r:lower()
        got[k] = (got[k] or 0) + 1
        if got[k] > 1 then return false, "expected every recipient once; " .. r .. " got the message twice or more" end
      end
    end
    if not next(asked) then
      return false, "not exercised: the client sent no RCPT (it stopped before naming a"
        .. " recipient); the limit of " .. LIMIT .. " per transaction comes at RCPT"
    end
    if refused == 0 then
      return false, "not exercised: no RCPT met the limit of " .. LIMIT
        .. " per transaction; the mailer must send to at least " .. (LIMIT + 1)
    end
    local missing = { accepted = {}, refused = {} }
    for a, how in pairs(asked) do
      if not got[a] then table.insert(missing[how], a) end
    end
    table.sort(missing.accepted)
    table.sort(missing.refused)
    if #missing.accepted > 0 then
      return false, "the message never went to recipients the server accepted: "
        .. table.concat(missing.accepted, ", ") .. " (a 452 for another must not stop the transaction)"
    end
    if #missing.refused > 0 then
      return false, "expected the recipients refused with 452 to get the message in a following transaction; "
        .. #missing.refused .. " never got it: " .. table.concat(missing.refused, ", ")
    end
    return true
  end,
}
