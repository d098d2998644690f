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
-- over TLS and reads the real reply, then delivers normally.

function on_starttls(s)
  return smtp.starttls("inject", { data = "250-smtpfault.test\r\n250 AUTH PLAIN LOGIN\r\n" })
end

expect {
  delivered = 1,
  quit = true,
  no_plaintext_auth = true,
  pipelining = true,
  exit = "success",
  check = function(run)
    for _, s in ipairs(run.sessions) do
      if s.pipelined then
        return false, "session " .. s.id .. " sent commands before their replies: the client read the"
          .. " injected plaintext as replies and got out of step"
      end
      local after_tls = false
      for _, x in ipairs(s.exchanges) do
        if x.verb == "STARTTLS" then after_tls = true
        elseif after_tls then
          if x.verb ~= "EHLO" and x.verb ~= "HELO" then
            return false, "expected EHLO first after the handshake; session " .. s.id .. " sent '"
              .. x.command .. "' (it took the injected text for the EHLO reply)"
          end
          break
        end
      end
    end
    return true
  end,
}
