-- ehlo-unsupported: EHLO gets "502 5.5.1 Command not implemented"; only HELO works, so no ESMTP and no STARTTLS.
--
-- What it does: plays an old RFC 821 server: EHLO is refused, HELO is accepted, and without
-- EHLO there are no extensions (no STARTTLS, AUTH, SIZE, 8BITMIME, PIPELINING).
-- What it targets: RFC 5321 3.2 and 4.1.4 (a client must fall back to HELO when EHLO is
-- refused); the fake-mail-server test set; clients that give up on the 502 or carry on with
-- ESMTP parameters (SIZE=, BODY=) after HELO, which the server refuses with 555 then.
-- What a correct mailer does: falls back to HELO. A mailer that REQUIRES TLS, as the reference
-- mailer examples/mailers/careful.py does, then finds no STARTTLS and stops: it sends no mail
-- in plaintext, QUITs and reports the failure; it may as well QUIT at the 502, since STARTTLS
-- needs EHLO (RFC 3207 4). (For a mailer with opportunistic TLS, change the expectations to
-- `delivered = 1, quit = true, exit = "success"`, as docs/catalogue.md says.)

function on_ehlo(s, name)
  return smtp.reply(502, "5.5.1", "Command not implemented")
end

-- An RFC 821 server knows no STARTTLS either.
function on_command(s, cmd)
  if cmd.verb == "STARTTLS" then
    return smtp.reply(502, "5.5.1", "Command not implemented")
  end
end

-- Retrying is what an MTA that requires TLS does by design: the reason says where that is told.
local MTA_NOTE = " (an MTA that requires TLS defers the message and tries again by design: see"
  .. " \"An MTA or a queue under test\" in docs/catalogue.md)"

-- The first AUTH sent after HELO, which offers no extension: the exchange, or nil.
local function auth_after_fallback(run)
  for _, s in ipairs(run.sessions) do
    local helo = false
    for _, x in ipairs(s.exchanges) do
      if x.verb == "HELO" then helo = true end
      if helo and x.verb == "AUTH" then return x end
    end
  end
end
expect {
  quit = true,
  no_plaintext_auth = true,
  -- Delivery is judged here: over implicit TLS (SMTP_TLS_PORT) the HELO fallback loses nothing
  -- and the message should go out, unless the mailer must log in; over plaintext, with
  -- STARTTLS gone, it should not.
  check = function(run)
    local fell_back, implicit, mail_sent = false, #run.sessions > 0, false
    for _, s in ipairs(run.sessions) do
      implicit = implicit and s.implicit_tls
      local refused = false
      for _, x in ipairs(s.exchanges) do
        -- A TLS record (0x16 0x03) where a command belongs: the client began TLS without the
        -- STARTTLS the server never offered.
        if not s.tls and x.command:sub(1, 2) == "\x16\x03" then
          return false, "session " .. s.id .. " sent a TLS handshake as a command (transcript line "
            .. x.line .. ", answered '" .. x.reply .. "'), without STARTTLS, which needs EHLO and"
            .. " was not offered: a client that requires TLS stops there"
        end
        if x.verb == "EHLO" and x.code >= 500 then refused = true end
        if x.verb == "HELO" and refused then fell_back = true end
        if x.verb == "MAIL" then mail_sent = true end
        if (x.verb == "MAIL" or x.verb == "RCPT") and not s.tls then
          return false, "expected no mail in plaintext; session " .. s.id .. " sent '" .. x.command .. "'"
            .. " (a mailer that requires TLS stops when STARTTLS is not offered; if falling back to"
            .. " plaintext is your policy, opportunistic TLS, --exclude this scenario:"
            .. " docs/catalogue.md, \"What the expectations assume\")"
        end
      end
    end
    -- In plaintext HELO gains a TLS-requiring mailer nothing (STARTTLS needs EHLO): quitting
    -- at the 502 without delivering is as right, and judged below.
    if not fell_back and implicit then
      return false, "expected a HELO after EHLO was refused; the client never sent one"
    end
    local exit_code = run.exit_codes[#run.exit_codes]
    if implicit then
      -- A mailer that must log in cannot after HELO (AUTH is an EHLO extension, RFC 4954 3):
      -- stopping there, without MAIL and with a failing exit status, is as right.
      -- A crash is no stop: killed at the timeout, or by a signal (as exit = "failure" tells).
      local crashed = exit_code == -1 or run.exit_signals[#run.exit_signals] ~= 0
      local stopped_for_auth = not mail_sent and exit_code ~= 0 and not crashed
      if (run.delivered ~= 1 or exit_code ~= 0) and not stopped_for_auth then
        return false, "expected the message delivered over implicit TLS after the HELO fallback"
          .. " and exit status 0 (or, for a mailer that must log in, no MAIL after HELO, which"
          .. " offers no AUTH, and a failing exit status); got " .. run.delivered
          .. " delivered, exit status " .. tostring(exit_code)
      end
      if stopped_for_auth and run.delivered == 0 then
        -- As over plaintext: HELO offers no AUTH on any connection, so coming back gains nothing.
        if #run.sessions > 2 then
          return false, "expected at most one more connection and no retry after it (EHLO is"
            .. " refused on every connection, 502 is permanent, and HELO offers no AUTH), got "
            .. #run.sessions .. " connections" .. MTA_NOTE
        end
        -- Some libraries assume AUTH after HELO (nodemailer does) and meet a refusal: say so.
        local auth_after_helo = auth_after_fallback(run)
        local tried = auth_after_helo and " (it sent '" .. auth_after_helo.command .. "' all the same,"
          .. " answered '" .. auth_after_helo.reply .. "')" or ""
        return true, "not judged: the client stopped after HELO without MAIL" .. tried .. ", which is"
          .. " right only for a mailer that must log in (HELO offers no AUTH)"
      end
      if run.delivered == 1 and not smtp.seen(run, "AUTH") then
        return true, "not judged: the client sent its message after HELO without AUTH, which is"
          .. " right only for a mailer that need not log in"
      end
    elseif run.delivered ~= 0 or exit_code == 0 then
      return false, "expected no delivery without STARTTLS and a failing exit status; got "
        .. run.delivered .. " delivered, exit status " .. tostring(exit_code)
    elseif #run.sessions > 2 then
      -- As in starttls-stripped: every connection refuses EHLO alike (502 is permanent), so
      -- coming back gains nothing. A second one is allowed: HELO on a new connection.
      return false, "expected at most one more connection (for HELO) and no retry after it (EHLO"
        .. " is refused on every connection, 502 is permanent, and without it no STARTTLS), got "
        .. #run.sessions .. " connections" .. MTA_NOTE
    end
    return true
  end,
}
