-- accept-all: the default; every command gets the server's normal, successful reply.
--
-- What it targets: the happy path every mailer must get right before anything else.
-- What a correct mailer does: delivers the message and ends the session with QUIT.

expect { delivered = 1, quit = true }
