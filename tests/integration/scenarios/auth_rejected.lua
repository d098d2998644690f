-- Every AUTH attempt fails with 535 5.7.8, whatever the credentials.
function on_auth(s, auth)
  return smtp.reply(535, "5.7.8", "Authentication credentials invalid")
end
