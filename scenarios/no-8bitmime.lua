-- no-8bitmime: 8BITMIME is not advertised; BODY=8BITMIME is refused and 8-bit octets in a message fail its check.
--
-- What it does: hides 8BITMIME (so MAIL with BODY=8BITMIME gets 555, as from an extension the
-- server does not have) and records every message that contains octets above 127, also one
-- the server refused for another reason.
-- What it targets: RFC 6152 (without 8BITMIME a client must send 7-bit data: convert to
-- quoted-printable or base64); jakartaee/mail-api#100, thunderbird/thunderbird-android#374:
-- raw UTF-8 bodies sent to 7-bit servers, mangled on the way.
-- What a correct mailer does: sends a 7-bit clean message (MIME encoded), without BODY=8BITMIME,
-- and delivers it.

function on_ehlo(s, name)
  return smtp.hide("8BITMIME")
end

expect {
  delivered = 1,
  quit = true,
  exit = "success",
  check = function(run)
    for _, m in ipairs(run.messages) do
      local at = m.data:find("[\128-\255]")
      if at then
        local line = select(2, m.data:sub(1, at):gsub("\n", "")) + 1
        return false, "expected a 7-bit message (8BITMIME is not advertised); octet " .. m.data:byte(at)
          .. " on line " .. line .. " of the message from session " .. m.session
      end
    end
    -- A message refused for another reason (a line too long) was sent 8-bit all the same.
    for _, s in ipairs(run.sessions) do
      for _, kind in ipairs(s.anomalies) do
        if kind == "undeclared_8bit" then
          local text_refused, in_session = smtp.refused_message(run)
          local why = text_refused and in_session == s.id and (": '" .. text_refused.reply .. "'")
            or " for another reason"
          return false, "expected a 7-bit message (8BITMIME is not advertised); session " .. s.id
            .. " sent one with 8-bit octets (its transcript notes undeclared_8bit), which the"
            .. " server refused" .. why
        end
      end
    end
    return true
  end,
}
