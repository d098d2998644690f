-- greeting-slow: a tarpit; the 220 greeting comes 40 seconds after the connection is accepted.
--
-- What it does: delays the greeting by 40 s of scenario time, as tarpitting and overloaded
-- servers do (postscreen's greet action, spam filters' "greet pause").
-- What it targets: RFC 5321 4.5.3.2.1 (a client must wait at least 5 minutes for the greeting);
-- jakartaee/mail-api#10 (socket leaked on a slow greeting), nodemailer#1099 and
-- Jinnrry/PMail#361 (no timeout: hangs forever, or a 10 s timeout gives up too early); early
-- talkers that send EHLO before the greeting (rejected by postscreen).
-- What a correct mailer does: waits for the greeting without talking first, then delivers
-- normally and ends with QUIT.

function on_connect(s)
  return smtp.delay(40)
end

expect {
  delivered = 1,
  quit = true,
  exit = "success",
  check = function(run)
    for _, s in ipairs(run.sessions) do
      if s.early_talker then
        return false, "session " .. s.id .. " talked before the greeting: a client waits for the 220"
          .. " (RFC 5321 3.1); postscreen-like servers reject such clients"
      end
    end
    return true
  end,
}
