connect {}
expect(220)
ehlo()
local ok, err, r = pcall(starttls, {})
report("after", tostring(ok) .. " " .. tostring(err))
send("MAIL FROM:<a@b>")
