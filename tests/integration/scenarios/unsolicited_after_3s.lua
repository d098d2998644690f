-- A 421 that arrives unasked once the client has been silent for 3 s.
function on_connect(s)
  return smtp.unsolicited(3, 421, "4.4.2", "silent too long")
end
