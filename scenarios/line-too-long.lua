-- line-too-long: lines over 1000 octets get "500 5.5.2 Line too long" after the dot; unstuffed leading dots are flagged.
--
-- What it does: the server's own limit (RFC 5321 4.5.3.1.6: 1000 octets per text line
-- including CR LF) refuses a message with a longer line with 500 5.5.2 after the final dot,
-- and notes every line that starts with a single "." (a dot the client did not double).
-- What it targets: RFC 5321 4.5.2 (dot-stuffing) and 4.5.3.1.6; RFC 5322 2.1.1 (998
-- characters); swiftmailer/swiftmailer#989 (long lines sent raw); clients that do not
-- dot-stuff lose the dot, or end the message early on a line with a lone ".".
-- What a correct mailer does: encodes long lines (quoted-printable or base64) or folds them,
-- doubles leading dots, and delivers.

expect { delivered = 1, dot_stuffing = true, line_length = true, quit = true, exit = "success" }
