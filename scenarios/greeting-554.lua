-- greeting-554: the greeting is "554 5.3.2 No SMTP service here"; every command but QUIT gets 503.
--
-- What it does: the server refuses service at the greeting (RFC 5321 3.1: a 554 greeting
-- means the server will not accept mail, but it keeps the connection open and answers
-- 503 to everything until the client sends QUIT).
-- What it targets: javaee/javamail#295 (a 554 greeting reported as a confusing error, or
-- commands sent regardless); clients that retry a permanent refusal forever.
-- What a correct mailer does: gives up at once without retrying (5xx is permanent), sends
-- QUIT, and reports the failure (non-zero exit).

function on_connect(s)
  return smtp.reply(554, "5.3.2", "No SMTP service here")
end

expect { delivered = 0, quit = true, no_retry_after_5xx = true, exit = "failure" }
