-- drop-mid-data: on the first connection DATA gets its 354 and then a TCP reset while the message text arrives.
--
-- What it does: connection 1: "354", then the connection is reset (ECONNRESET/EPIPE for the
-- client, in the middle of writing the message); a mailer that sends the text with BDAT
-- (CHUNKING) gets the reset on its first BDAT command, while the chunk arrives. Later
-- connections are normal.
-- What it targets: symfony/symfony#39597, apache/james-project#1888: the broken pipe escaped
-- as an unhandled error or was reported as success.
-- What a correct mailer does: treats the reset as a temporary failure and sends the message
-- again on a new connection.

function on_data(s)
  if smtp.once("reset") then
    return smtp.reply(354, "End data with <CR><LF>.<CR><LF>"):reset()
  end
end

function on_command(s, cmd)
  if cmd.verb == "BDAT" and smtp.once("reset") then return smtp.reset() end
end

expect {
  exit = "success",
  check = function(run)
    if #run.sessions < 2 then
      return false, "expected the message sent again after the connection reset during DATA (or BDAT); the client did not retry"
    end
    if run.delivered ~= 1 then return false, "expected one stored message, got " .. run.delivered end
    return true
  end,
}
