-- no-smtputf8: SMTPUTF8 is not advertised; UTF-8 in addresses or raw in headers fails its check.
--
-- What it does: hides SMTPUTF8 (a MAIL with the SMTPUTF8 parameter or a non-ASCII address is
-- refused with 553 5.6.7 / 555) and checks that the header section of every accepted message
-- is plain ASCII (RFC 2047 encoded words for non-ASCII text).
-- What it targets: RFC 6531 and RFC 6532 (without SMTPUTF8 the client must not send UTF-8
-- addresses or raw UTF-8 headers); nodemailer#1378, MailKit#649, nextcloud/mail#8165.
-- What a correct mailer does: uses ASCII addresses and encoded words in headers, and delivers.

function on_ehlo(s, name)
  return smtp.hide("SMTPUTF8")
end

expect {
  delivered = 1,
  quit = true,
  exit = "success",
  check = function(run)
    for _, m in ipairs(run.messages) do
      local head = m.data:match("^(.-)\r?\n\r?\n") or m.data
      local at = head:find("[\128-\255]")
      if at then
        local line = head:sub(1, at):match("([^\n]*)$")
        return false, "expected ASCII headers (SMTPUTF8 is not advertised); raw 8-bit text in the header '"
          .. (line:match("^([%w%-]+):") or "?") .. "' of the message from session " .. m.session
      end
    end
    return true
  end,
}
