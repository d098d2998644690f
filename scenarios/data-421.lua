-- data-421: on the first connection DATA gets "421 4.3.0 Service shutting down" and the connection closes.
--
-- What it does: connection 1: MAIL and RCPT are accepted, DATA (or, for a mailer that sends
-- the text with BDAT, the first chunk) gets 421 4.3.0 and the server closes; later connections
-- are normal.
-- What it targets: RFC 5321 3.8 (421 may come in reply to any command); python/cpython#132796
-- (smtplib's sendmail raised without the 421 context; callers took it as permanent).
-- What a correct mailer does: treats the 421 as temporary, reconnects and
-- delivers once.

local function shutting_down()
  if smtp.once("data") then
    return smtp.reply(421, "4.3.0", "Service shutting down, try again later")
  end
end

function on_data(s) return shutting_down() end
function on_bdat(s, chunk) return shutting_down() end

expect {
  retried_after_4xx = true,
  exit = "success",
  delivered = 1,
}
