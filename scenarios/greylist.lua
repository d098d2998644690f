-- greylist: the first attempt per (client, sender, recipient) gets "451 4.7.1 Greylisted"; a retry 60 s or more later is accepted.
--
-- What it does: classic greylisting (postgrey, rspamd): each new triple is refused with 451
-- 4.7.1 and remembered; retries before the window of 60 s (scenario time; the parameter
-- `window` sets another) are refused again; later ones are accepted.
-- What it targets: eleith/emailjs#202, postalserver/postal#238, stalwartlabs/stalwart#1108:
-- mailers that treat the 451 as final and drop the message, or retry immediately in a tight
-- loop and never get past the window.
-- What a correct mailer does: keeps the message, retries later with backoff and delivers it
-- once, to every recipient.

-- Seconds of scenario time; scenario_params window=N sets another (SMTPFAULT_SCENARIO_PARAMS).
local WINDOW = smtp.param_number("window", 60)
-- More retries than this inside the window (scenario time) count as a tight loop: a mailer
-- that backs off makes a few (every 5 s or more often, for a whole minute, is hammering).
local MOST_EARLY = 10
local first_seen = {}

function on_rcpt(s, rcpt)
  local key = s.client_ip .. "|" .. s.mail_from .. "|" .. rcpt.address:lower()
  local t = first_seen[key]
  if not t then
    first_seen[key] = smtp.now()
    return smtp.reply(451, "4.7.1", "Greylisted, please try again in " .. WINDOW .. " seconds")
  end
  if smtp.now() - t < WINDOW then
    return smtp.reply(451, "4.7.1", "Greylisted, retried too early")
  end
end

-- Why a session that got past the window delivered nothing: its last refusal, and whether
-- some of its recipients met the greylist for the first time there (each is greylisted by
-- itself, so a client that stops at the first refused RCPT reaches the next one only then).
local function came_back_undelivered(past)
  -- From the transaction that got past the window: what came before it on the same
  -- connection (a connection cache's first attempt) was the greylisting itself.
  local xs, start = past.exchanges, 1
  for i, x in ipairs(xs) do
    if x.verb == "MAIL" then start = i end
    if x.verb == "RCPT" and x.code >= 200 and x.code < 300 then break end
  end
  local last, data = nil, false
  local taken, new_ones = 0, {}
  for i = start, #xs do
    local x = xs[i]
    if x.code >= 400 then last = x end
    if x.verb == "DATA" or x.verb == "BDAT" then data = true end
    if x.verb == "RCPT" and x.code >= 200 and x.code < 300 then taken = taken + 1 end
    if x.verb == "RCPT" and x.reply:find("please try again", 1, true) then
      new_ones[#new_ones + 1] = x.command:match("<([^>]*)>") or x.command
    end
  end
  local earlier = false  -- an attempt before on the same connection
  for i = 1, start - 1 do
    if xs[i].verb == "RCPT" then earlier = true end
  end
  local head = "session " .. past.id .. (earlier and " retried on the same connection after the"
    .. " window" or " came back after the window")
  -- What stopped it: the last refusal, else that it never sent or finished the message.
  local why = last and "('" .. last.reply .. "' to " .. last.command .. ")"
    or (data and "(the message was never finished)" or "(it sent no DATA)")
  if #new_ones == 0 then
    return head .. " and its recipients were accepted, but no message was delivered " .. why
  end
  return head .. " and " .. taken .. " recipient" .. (taken == 1 and " was" or "s were")
    .. " accepted, but " .. table.concat(new_ones, ", ") .. " met the greylist there for the"
    .. " first time (each recipient is greylisted by itself) and no message was delivered "
    .. why .. ": the client must deliver to the accepted"
    .. " recipients and retry the others later, or retry them all later"
end

expect {
  retried_after_4xx = true,
  exit = "success",
  check = function(run)
    -- A retry that met "retried too early" (once a transaction, however many recipients: a
    -- connection cache retries on the connection it holds), and the first session that got
    -- past the window (a recipient accepted).
    local early, past = 0, nil
    for _, session in ipairs(run.sessions) do
      local too_early, accepted = false, false
      for _, x in ipairs(session.exchanges) do
        if x.verb == "MAIL" and too_early then
          early, too_early = early + 1, false
        end
        too_early = too_early or x.reply:find("retried too early", 1, true) ~= nil
        accepted = accepted or (x.verb == "RCPT" and x.code >= 200 and x.code < 300)
      end
      if too_early then early = early + 1 end
      if accepted and not past then past = session end
    end
    if early > MOST_EARLY then
      return false, "retried in a tight loop: " .. early .. " retries came within the " .. WINDOW
        .. " s window (scenario time); a mailer that backs off makes a few"
    end
    if run.delivered == 0 and early > 0 and not past then
      -- A mailer that did retry, but only inside the window, is told so: it gave up too soon.
      return false, "retried too early: " .. early .. " retr" .. (early == 1 and "y" or "ies")
        .. " came within the " .. WINDOW .. " s window (scenario time) and none after it; nothing was"
        .. " delivered"
    end
    if run.delivered == 0 and past then
      return false, came_back_undelivered(past)
    end
    if run.delivered ~= 1 then
      return false, "expected the message delivered once after the greylisting window, got " .. run.delivered
    end
    local missing = smtp.undelivered(run)
    if #missing > 0 then
      return false, "expected every recipient delivered after the greylisting window; never delivered: "
        .. table.concat(missing, ", ")
    end
    return true
  end,
}
