-- all-recipients-rejected: every RCPT gets "550 5.1.1 No such user", and DATA without recipients gets "554 5.5.1 Error: no valid recipients" (Postfix's words).
--
-- What it does: refuses every recipient permanently; a DATA that comes anyway is answered
-- 554 5.5.1 (as Postfix does) and the message text, if sent, ends up interpreted as commands.
-- A BDAT gets the server's own 503 5.5.1 (its chunk is read and dropped, RFC 3030 2).
-- What it targets: haraka/Haraka#538, thunderbird/thunderbird-android#2388: clients that send
-- DATA and the message although no recipient was accepted, and report success; or retry
-- permanent refusals.
-- What a correct mailer does: no DATA (or stops at the 554), no retry, QUIT, failure reported.

function on_rcpt(s, rcpt)
  return smtp.reply(550, "5.1.1", "<" .. rcpt.address .. ">: Recipient address rejected: No such user")
end

function on_data(s)
  if #s.rcpts == 0 then return smtp.reply(554, "5.5.1", "Error: no valid recipients") end
end

expect {
  delivered = 0,
  quit = true,
  no_retry_after_5xx = true,
  pipelining = true,
  exit = "failure",
  check = function(run)
    -- A mailer that stopped before RCPT met no refusal: as in relay-denied, not a pass.
    if not smtp.seen(run, "RCPT") then
      return false, "not exercised: the client sent no RCPT, so no recipient was refused"
    end
    for _, s in ipairs(run.sessions) do
      for _, x in ipairs(s.exchanges) do
        if x.verb == "DATA" and x.code == 354 then
          return false, "expected no message text without an accepted recipient (session " .. s.id .. ")"
        end
      end
    end
    return true
  end,
}
