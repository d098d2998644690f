-- session-message-cap: one message per connection; the next MAIL on the same connection gets "421 4.7.0 Too many messages".
--
-- What it does: after a connection has delivered one message, MAIL gets 421 4.7.0 and the
-- connection closes (providers cap messages per connection: Exchange Online, Stalwart's
-- session limits; K = 1 here so that a second message on a connection hits it; the
-- parameter `messages` sets another K).
-- What it targets: stalwartlabs/stalwart#1384, knadh/smtppool#18: pooled senders that keep
-- using the closed connection, lose the messages queued on it, or take the 421 as final.
-- What a correct mailer does: opens a new connection for the next message (or after the 421)
-- and delivers every message exactly once. A mailer that sends one message per connection
-- passes without meeting the cap.

-- Messages per connection; scenario_params messages=N sets another cap.
local CAP = smtp.param_number("messages", 1, 1, true)

function on_mail(s, mail)
  if s.messages >= CAP then
    return smtp.reply(421, "4.7.0", "Too many messages in this connection, reconnect and try again")
  end
end

expect {
  quit = true,
  exit = "success",
  check = function(run)
    if run.delivered < 1 then return false, "expected the message delivered, got none" end
    local _, repeats = smtp.message_counts(run)
    if #repeats > 0 then return false, "expected every message once; " .. repeats[1].said end
    -- Each MAIL the cap refused must be delivered later, on another connection (a new one, or
    -- one of a pool that was open already). Each refusal is matched to its own later delivery:
    -- one from the same sender, and of the same SIZE= where both MAIL lines declare one (a
    -- pool that drops the refused message and sends the next one is not let off by it).
    local function sender_and_size(command)
      return (command:match("<([^>]*)>") or ""):lower(), command:upper():match("SIZE=(%d+)")
    end
    local refusals, deliveries = {}, {}
    for _, s in ipairs(run.sessions) do
      local mail
      for _, x in ipairs(s.exchanges) do
        if x.verb == "MAIL" then mail = x end
        if x.verb == "MAIL" and x.code == 421 then
          local from, size = sender_and_size(x.command)
          refusals[#refusals + 1] = { at = x.at, session = s.id, from = from, size = size, line = x.command }
        end
        if x.command == "<end of data>" and x.code == 250 and mail then
          local from, size = sender_and_size(mail.command)
          deliveries[#deliveries + 1] = { at = x.at, from = from, size = size }
        end
      end
    end
    table.sort(refusals, function(a, b) return a.at < b.at end)
    table.sort(deliveries, function(a, b) return a.at < b.at end)
    local function matches(r, d)
      return d.at > r.at and not d.taken and d.from == r.from
        and (r.size == nil or d.size == nil or r.size == d.size)
    end
    for _, r in ipairs(refusals) do
      local found
      for _, d in ipairs(deliveries) do
        if matches(r, d) then found = d break end
      end
      if not found then
        return false, "expected the message refused with 421 at MAIL in session " .. r.session
          .. " ('" .. r.line .. "') delivered on another connection; it never was (lost)"
      end
      found.taken = true
    end
    if #refusals == 0 then
      return true, "not exercised: no connection asked for more than " .. CAP
        .. " message(s), so the cap was never met"
    end
    return true
  end,
}
