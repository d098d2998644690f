-- pipelining-failure: in the first transaction every RCPT gets "451 4.3.0" and DATA gets "554 5.5.1 Error: no valid recipients".
--
-- What it does: PIPELINING is advertised. The first transaction (the first MAIL the server
-- gets): every recipient is refused temporarily, and the DATA that a pipelining client has
-- already sent in the same group is answered 554 5.5.1; a client that then writes the message
-- text anyway gets each line answered as an unknown command; a pipelined BDAT gets the
-- server's own 503 5.5.1, its chunk read and dropped (RFC 3030 2). Later transactions, on the
-- same connection (a connection cache's retry) or a new one, are normal.
-- What it targets: RFC 2920 3.1 (the client must check each reply of the group, and must not
-- send the text after a refused DATA); swiftmailer/swiftmailer#1265, nodemailer#265 (pooled
-- connections mixed up recipients after a failed group), MailKit#1221.
-- What a correct mailer does: notices that no recipient was accepted, sends no message text,
-- resets (RSET or QUIT), retries later and delivers once.

function on_mail(s, mail)
  s.state.first = smtp.once("first transaction")
end

function on_rcpt(s, rcpt)
  if s.state.first then return smtp.reply(451, "4.3.0", "Temporary lookup failure") end
end

function on_data(s)
  if #s.rcpts == 0 then return smtp.reply(554, "5.5.1", "Error: no valid recipients") end
end

expect {
  pipelining = true,
  retried_after_4xx = true,
  exit = "success",
  check = function(run)
    for _, s in ipairs(run.sessions) do
      for i, x in ipairs(s.exchanges) do
        if x.verb == "DATA" and x.code ~= 354 then
          local nxt = s.exchanges[i + 1]
          if nxt and nxt.verb ~= "RSET" and nxt.verb ~= "QUIT" then
            return false, "expected RSET or QUIT after the refused DATA ('" .. x.reply .. "'); session "
              .. s.id .. " sent '" .. nxt.command .. "'"
          end
        end
      end
    end
    if run.delivered ~= 1 then return false, "expected the message delivered once after the retry, got " .. run.delivered end
    return true
  end,
}
