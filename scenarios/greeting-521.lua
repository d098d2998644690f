-- greeting-521: the greeting is "521 5.3.2 does not accept mail" and the connection closes.
--
-- What it does: a host that never accepts mail (RFC 7504, the "null MX" style refusal)
-- answers 521 and closes the connection right away.
-- What it targets: RFC 7504 section 3 (521 is permanent: "the client must not retry"); mailers
-- that treat any failed connection as temporary and keep queueing.
-- What a correct mailer does: gives up without retrying and reports the failure.

function on_connect(s)
  return smtp.reply(521, "5.3.2", "smtpfault.test does not accept mail")
end

expect { delivered = 0, no_retry_after_5xx = true, exit = "failure" }
