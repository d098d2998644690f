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

-- A message with no line to fold and none to stuff passes without having been put to the test;
-- one with an encoded body may have had long lines (they are folded now), so it is not told so.
-- Only a small message is looked at: each octet a check reads counts against its instruction
-- limit, and one of 64 KB or more is unlikely to hold neither.
local function exercises(data)
  if #data >= 65536 then return true end
  local text = "\n" .. data:lower()
  if text:find("\n%.") or text:find("\ncontent%-transfer%-encoding:%s*quoted%-printable")
      or text:find("\ncontent%-transfer%-encoding:%s*base64") then
    return true
  end
  for line in data:gmatch("[^\n]*") do
    if #line > 998 then return true end
  end
  return false
end

expect {
  delivered = 1,
  dot_stuffing = true,
  line_length = true,
  quit = true,
  exit = "success",
  check = function(run)
    for _, m in ipairs(run.messages) do
      if exercises(m.data) then return true end
    end
    if #run.messages == 0 then return true end
    return true, "not exercised: no line of the message was over 998 characters, started with"
      .. " \".\" or was encoded, so neither the line limit nor dot-stuffing was put to the test"
  end,
}
