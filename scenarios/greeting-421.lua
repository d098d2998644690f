-- greeting-421: the first two connections get "421 4.3.2" as greeting and are closed; the third is served.
--
-- What it does: a server that is shutting down, overloaded or in maintenance answers the
-- connection with 421 4.3.2 instead of 220 and closes it. From the third connection on the
-- greeting is normal.
-- What it targets: RFC 5321 3.8 (421 at any time means "try again later"); nodemailer#855
-- (a 421 greeting surfaced as an unhandled error instead of a temporary failure).
-- What a correct mailer does: treats the 421 as temporary, reconnects and
-- delivers the message once, ending with QUIT.

function on_connect(s)
  if smtp.count("connection") <= 2 then
    return smtp.reply(421, "4.3.2", "System not accepting network messages, try again later")
  end
end

expect {
  -- On the delivering connection: the server closed the refused ones itself.
  quit = true,
  retried_after_4xx = true,
  exit = "success",
  delivered = 1,
}
