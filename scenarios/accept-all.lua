-- accept-all: the default; every command gets the server's normal, successful reply.
--
-- What it does: nothing of its own; the server's limits still hold, as a real server's do (a
-- message with a text line over RFC 5321's 1000 octets gets "500 5.5.2 Line too long" after
-- its data: limits.text_line).
--
-- What it targets: the happy path every mailer must get right before anything else.
-- What a correct mailer does: delivers the message intact, a line of it that begins with "."
-- sent with the dot doubled (RFC 5321 4.5.2; the server takes one away, so an undoubled one
-- is lost, and a line of only "." would end the message there), ends the session with QUIT
-- and reports success (exit status 0).

expect { delivered = 1, dot_stuffing = true, quit = true, exit = "success" }
