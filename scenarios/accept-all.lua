-- accept-all: the default; every command gets the server's normal, successful reply.
--
-- What it targets: the happy path every mailer must get right before anything else.
-- What a correct mailer does: delivers the message, ends the session with QUIT and reports
-- success (exit status 0).

expect { delivered = 1, quit = true, exit = "success" }
