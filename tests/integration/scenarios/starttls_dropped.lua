-- STARTTLS is advertised and answered with 220, then the connection closes before the handshake.
function on_starttls(s)
  return smtp.starttls("close_after_220")
end
