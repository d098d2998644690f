-- size-limit: advertises "SIZE 2000"; MAIL with a larger SIZE= and any larger message get "552 5.3.4".
--
-- What it does: a deliberately small limit of 2000 octets (so that an ordinary test message
-- with a long line exceeds it; the parameter `limit` sets another) is advertised in EHLO; MAIL
-- FROM with SIZE=n over the limit is
-- refused with 552 5.3.4, and a message over it is refused after the final dot with 552 5.3.4.
-- What it targets: RFC 1870 (SIZE); PHPMailer#98, dahlia/upyo#43, Cocoanetics/SwiftMail#120:
-- the limit ignored, the whole message uploaded only to be refused at the end, or the 552
-- retried forever.
-- What a correct mailer does: compares its message with the advertised SIZE and does not send
-- a larger one (or sends SIZE= with MAIL and stops at the 552); no retry; QUIT; failure
-- reported. A message within the limit is delivered and reported as sent.

-- Octets; scenario_params limit=N sets another.
local LIMIT = smtp.param_number("limit", 2000, 1, true)
-- What EHLO says: LIMIT, or the server's own limits.max_message_size where that is smaller
-- (the server refuses a larger message itself, so promising more would be a false SIZE).
local advertised = LIMIT

local function too_big()
  return smtp.reply(552, "5.3.4", "Message size exceeds fixed limit of " .. advertised .. " octets")
end

-- The server's own list with only the SIZE line changed: SMTPUTF8, CHUNKING, DSN and the
-- rest stay as configured, so that the limit is the one thing this scenario tests.
function on_ehlo(s, name)
  local keywords, found = smtp.ehlo_keywords(), false
  for i, line in ipairs(keywords) do
    local own = line:match("^SIZE%s*(%d*)$")
    if own then
      local n = tonumber(own)  -- "SIZE" or "SIZE 0": no fixed limit of its own
      advertised = (n and n > 0) and math.min(LIMIT, n) or LIMIT
      keywords[i], found = "SIZE " .. advertised, true
    end
  end
  if not found then table.insert(keywords, "SIZE " .. LIMIT) end
  return smtp.extensions(keywords)
end

function on_mail(s, mail)
  local size = tonumber(mail.params.SIZE or "")
  if size and size > advertised then return too_big() end
end

function on_message(s, msg)
  if msg.size > advertised then return too_big() end
end

expect {
  quit = true,
  no_retry_after_5xx = true,
  check = function(run)
    -- Every failure at once: sending the message anyway and then reporting success are two
    -- mistakes, and mending the first should not only uncover the second.
    local wrong = {}
    local refused_for_size = smtp.seen(run, "MAIL", 552)
    for _, s in ipairs(run.sessions) do
      for _, x in ipairs(s.exchanges) do
        if x.command == "<end of data>" and x.code == 552 and #wrong == 0 then
          refused_for_size = true
          wrong[1] = "expected a message over the advertised SIZE " .. advertised .. " not to be sent; session "
            .. s.id .. " sent it anyway and got '" .. x.reply .. "'"
        end
      end
    end
    for _, code in ipairs(run.exit_codes) do
      if run.delivered == 0 and code == 0 then
        -- Not delivered for the limit only where the server said so: a mailer stopped earlier
        -- (a failed TLS handshake, a refused login) never reached it.
        wrong[#wrong + 1] = (#wrong > 0 and "and " or "") .. "the message was not delivered"
          .. (refused_for_size and " (over the SIZE limit)" or "")
          .. ", but the command reported success"
        break
      end
      if run.delivered > 0 and code ~= 0 then
        wrong[#wrong + 1] = "the message was delivered, but the command reported failure (exit " .. code .. ")"
        break
      end
    end
    if #wrong > 0 then return false, table.concat(wrong, "; ") end
    if not smtp.seen(run, "MAIL") then
      -- After an EHLO reply with SIZE, a mailer that compares its message with the limit sends
      -- no MAIL for one too large: the point of this scenario, not a miss.
      if smtp.seen(run, "EHLO", 250) then
        return true, "not judged: the client sent no MAIL after the EHLO reply offered SIZE "
          .. advertised .. ": it refused a larger message by itself, as a mailer that compares"
          .. " its size does, or stopped for another reason (its output tells which)"
      end
      return true, "not exercised: the client sent no MAIL, so it never met the limit"
    end
    if run.delivered > 0 and not smtp.seen(run, "MAIL", 552) then
      return true, "not exercised: every message was within the advertised SIZE " .. advertised
        .. " (send a larger one, or lower the limit: --set scenario_params=limit=N)"
    end
    return true
  end,
}
