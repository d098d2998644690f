-- Only example.com (and its subdomains) is local; every other recipient is refused.
function on_rcpt(s, rcpt)
  if not smtp.domain_in(rcpt.address, { "example.com" }) then
    return smtp.reply(554, "5.7.1", "Relay access denied")
  end
end
