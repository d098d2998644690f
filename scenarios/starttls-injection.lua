-- starttls-injection: the 220 to STARTTLS carries plaintext "replies" in the same segment, to be read after the handshake.
--
-- What it does: answers STARTTLS with "220 Ready" followed, in the same TCP segment, by
-- "250-smtpfault.test\r\n250 AUTH PLAIN LOGIN\r\n". A client that keeps its read buffer
-- across the handshake later reads these unencrypted lines as the server's reply to its
-- EHLO over TLS, and is out of step from then on (every reply belongs to the previous
-- command). The TLS session itself is normal.
-- What it targets: STARTTLS response injection, the client side of CVE-2011-0411; "NO
-- STARTTLS" (USENIX Security 2021: more than 40 bugs, 3 of 28 clients clean); the
-- fake-mail-server Buffering/B_1 case.
-- What a correct mailer does: discards anything buffered before the handshake, sends EHLO
-- over TLS and reads the real reply, then delivers normally. Aborting instead is safe too (a
-- TLS library that reads the plaintext as a TLS record fails the handshake: curl, msmtp); what
-- must not happen is a TLS session that goes out of step: e.g. DATA answered 354 by the
-- server but read as the reply to an earlier RCPT, and the message never sent.

function on_starttls(s)
  return smtp.starttls("inject", { data = "250-smtpfault.test\r\n250 AUTH PLAIN LOGIN\r\n" })
end

expect {
  delivered = { max = 1 },
  no_plaintext_auth = true,
  no_plaintext_after_tls_failure = true,
  -- Pipelining MAIL, RCPT and DATA is fine (PIPELINING is offered); going on behind EHLO, as
  -- a client that took the injected lines for its reply does, fails this one.
  pipelining = true,
  check = function(run)
    if not smtp.seen(run, "STARTTLS") then
      return false, "not exercised: the client never sent STARTTLS (implicit TLS, or none); this"
        .. " scenario is about STARTTLS"
    end
    -- A client out of step may take a shifted reply for the message's 250 (libESMTP 1.1 does):
    -- an exit status of 0 with nothing delivered is a lost message reported as sent.
    local lost = ""
    for _, code in ipairs(run.exit_codes) do
      if code == 0 and run.delivered == 0 then
        lost = "; and the command exited 0 with nothing delivered: a lost message reported as sent"
        break
      end
    end
    for _, s in ipairs(run.sessions) do
      local after_tls, first = false, nil
      for _, x in ipairs(s.exchanges) do
        if x.verb == "STARTTLS" then after_tls = true
        elseif after_tls and not first and x.verb ~= "" then first = x end
      end
      if first and first.verb ~= "EHLO" and first.verb ~= "HELO" then
        return false, "expected EHLO first after the handshake; session " .. s.id .. " sent '"
          .. first.command .. "' (it took the injected text for the EHLO reply)" .. lost
      end
      local last = s.exchanges[#s.exchanges]
      if s.tls and last and last.verb == "DATA" and last.code == 354 then
        return false, "after the handshake session " .. s.id .. " got '354' to DATA but never sent the message:"
          .. " the client read the injected plaintext as replies and got out of step" .. lost
      end
      -- Went on after the handshake (AUTH, MAIL, ...), was refused nothing, yet delivered
      -- nothing: it was reading the replies to earlier commands.
      local went_on, refused = nil, false
      after_tls = false
      for _, x in ipairs(s.exchanges) do
        if x.verb == "STARTTLS" then after_tls = true
        elseif after_tls then
          -- The server's own words for a command it could not place (a line that is no base64
          -- where AUTH waits for some, MAIL before EHLO): a client in step sends none of these
          -- here, one reading the replies to earlier commands does. The reply after the data
          -- judges the message (a 500 to a line too long), not the order of commands.
          if x.verb ~= "" and (x.code == 500 or x.code == 501 or x.code == 503) then
            return false, "after the handshake session " .. s.id .. " got '" .. x.reply
              .. "' to '" .. x.command .. "': the client read the injected plaintext as replies"
              .. " and got out of step" .. lost
          end
          if x.code >= 400 then refused = true end
          local v = x.verb
          if not went_on and (v == "AUTH" or v == "MAIL" or v == "RCPT" or v == "DATA" or v == "BDAT") then
            went_on = x
          end
        end
      end
      if s.tls and went_on and not refused and s.delivered == 0 then
        return false, "after the handshake session " .. s.id .. " went on ('" .. went_on.command
          .. "'), was refused nothing and delivered nothing: the client read the injected plaintext"
          .. " as replies and got out of step" .. lost
      end
    end
    if run.delivered == 0 and not smtp.seen(run, "MAIL") then
      -- A handshake that failed after the plaintext may have read it as a record (curl, msmtp,
      -- GnuTLS's clients); a close after the certificate looks the same as refusing that.
      local failed_handshake = nil
      for _, s in ipairs(run.sessions) do
        if not s.tls and not failed_handshake then
          for _, x in ipairs(s.exchanges) do
            if x.verb == "STARTTLS" and x.code == 220 then failed_handshake = s.id end
          end
        end
      end
      return true, "not judged: the client delivered nothing, and sent no MAIL on any of its "
        .. #run.sessions .. " connection(s); giving up is safe here (no reply was misread), and a"
        .. " mailer that discards what came before the handshake can deliver"
        .. (failed_handshake and ("; the TLS handshake of session " .. failed_handshake
          .. " failed after the injected plaintext, as a TLS library that reads it as a record"
          .. " fails; if the mailer also stops at the handshake under accept-all, it refuses the"
          .. " certificate instead (give it $SMTP_CA_FILE to trust)") or "")
    end
    return true
  end,
}
