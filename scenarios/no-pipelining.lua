-- no-pipelining: PIPELINING is not advertised; a client that sends commands without waiting for each reply fails.
--
-- What it does: hides PIPELINING from the EHLO reply and notes every command that came before
-- the reply to the one before it (the pipelining expectation).
-- What it targets: RFC 2920 (pipelining is an extension: a client may send a group of commands
-- without waiting only to a server that advertised it) and RFC 5321 4.3.1 (otherwise each
-- command waits for its reply); Postfix's reject_unauth_pipelining (commonly set in
-- smtpd_data_restrictions, as docker-mailserver does) rejects clients that send commands ahead
-- of time without knowing the server pipelines: mailers that always write MAIL, RCPT and DATA
-- in one go pass against a permissive test server and fail against a real one.
-- What a correct mailer does: sends each command and waits for its reply, and delivers.

function on_ehlo(s, name)
  return smtp.hide("PIPELINING")
end

expect { delivered = 1, pipelining = true, quit = true, exit = "success" }
