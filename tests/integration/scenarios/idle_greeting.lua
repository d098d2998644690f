-- A normal greeting, then 421 unasked once the client has been silent for 0.3 s.
function on_connect(s)
  return smtp.unsolicited(0.3, 421, "4.4.2", "idle")
end
