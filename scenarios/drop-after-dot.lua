-- drop-after-dot: on the first connection the message is accepted and then lost: the connection closes after the final dot without a reply.
--
-- What it does: connection 1: reads the whole message, then closes without answering and
-- does not keep the message; later connections are normal.
-- What it targets: RFC 5321 6.1 and 4.1.1.4: without the reply the client cannot know whether
-- the message was taken; it must treat it as not delivered (and accept a possible duplicate)
-- rather than report success or silently drop it.
-- What a correct mailer does: logs the outcome as uncertain, sends the message again on a new
-- connection and reports success once a 250 comes back.

function on_message(s, msg)
  if smtp.once("lose") then return smtp.lose() end
end

expect {
  exit = "success",
  check = function(run)
    if #run.sessions < 2 then
      return false, "expected the message sent again after the connection was lost after the final dot; the client did not retry"
    end
    if run.delivered ~= 1 then return false, "expected one stored message, got " .. run.delivered end
    return true
  end,
}
