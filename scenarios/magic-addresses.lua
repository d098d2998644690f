-- magic-addresses: the recipient's local part picks the fault, so a test needs no API call.
--
-- What it does: every recipient address is looked at when it is given (RCPT), when DATA is
-- sent and after the final dot. The local part (before the @, any domain, in any case, quoted
-- or not: "rcpt-550"@x is rcpt-550@x) chooses the fault:
--
--   local part        fault
--   ----------------  --------------------------------------------------------------------
--   rcpt-NNN          RCPT refused with code NNN (rcpt-550, rcpt-451, rcpt-452, rcpt-554, ...;
--                     any 4xx/5xx whose second digit is 0 to 5, RFC 5321 4.2), enhanced code
--                     and text to match (550 5.1.1 no such user,
--                     451 4.3.0, 452 4.5.3 too many recipients, 554 5.7.1 relay denied, ...)
--   data-NNN          DATA refused with NNN (data-421 closes the connection, data-554, ...);
--                     over BDAT, the first chunk
--   message-NNN       the reply after the final dot is NNN (message-552 size, message-451, ...)
--   drop-mid-data     DATA gets its 354, then the connection is reset while the text arrives
--                     (over BDAT: reset on the first BDAT command)
--   drop-after-dot    accept then lose: the connection closes after the final dot, no reply,
--                     nothing is stored
--   greylist          the first attempt per (client, sender, recipient) gets 451 4.7.1; a
--                     retry 60 s (scenario time) or more later is accepted
--   slow-Ns           the reply after the final dot comes N seconds late (slow-5s, slow-120s;
--                     at most 86400, a day)
--   reset             RCPT is answered with a TCP reset (ECONNRESET)
--   anything else     accepted normally
--
-- A magic address with a value it cannot have (rcpt-599, message-250, slow-90000s) is refused
-- at RCPT with "553 5.1.3" saying why, rather than taken as an ordinary recipient.
--
-- Several magic recipients in one message: every RCPT fault applies to its own recipient; for
-- DATA, and again for the final dot, the first recipient (in RCPT order) with a fault for that
-- step wins. Over LMTP, which
-- answers the final dot once per recipient, message-NNN answers for its own recipient only.
--
-- What it targets: docker-compose users who cannot call the HTTP API between test steps: the
-- application under test picks its own failure through the address it sends to.
-- What a correct mailer does: per fault, see the scenario of the same name (greylist,
-- partial-recipients, data-421, drop-after-dot, ...). With ordinary recipients it delivers.

local GREYLIST_WINDOW = 60   -- seconds of scenario time
local first_seen = {}

-- What a code means depends on the command it answers: 554 to RCPT is a relay refusal, to DATA
-- or to the message a failed transaction.
local any_command = { [421] = {"4.3.0"}, [450] = {"4.2.0"}, [451] = {"4.3.0"} }
local rcpt_replies = {
  [452] = {"4.5.3", "Too many recipients"}, [550] = {"5.1.1", "No such user here"},
  [551] = {"5.1.6"}, [552] = {"5.2.2"}, [553] = {"5.1.3"}, [554] = {"5.7.1", "Relay access denied"},
}
local message_replies = {
  [452] = {"4.3.1", "Insufficient system storage"},
  [552] = {"5.3.4", "Message exceeds fixed maximum message size"},
  [554] = {"5.0.0", "Transaction failed"},
}

local function code_reply(code, fallback_text, replies)
  local known = (replies or message_replies)[code] or any_command[code] or {}
  local enhanced = known[1] or (math.floor(code / 100) .. ".0.0")
  return smtp.reply(code, enhanced, known[2] or fallback_text)
end

local function magic(address)
  local l = smtp.local_part(address)
  -- "rcpt-550"@x is the mailbox rcpt-550@x (RFC 5321 4.1.2): the quotes and escapes go.
  local quoted = l:match('^"(.*)"$')
  if quoted then l = quoted:gsub("\\(.)", "%1") end
  return l:lower()
end

-- A code a magic address may ask for: 4xx or 5xx, second digit 0 to 5 (RFC 5321 4.2).
local function fault_code(l, prefix)
  return tonumber(l:match("^" .. prefix .. "%-([45][0-5]%d)$"))
end

-- Why a magic-looking local part cannot be honoured, or nil.
local function bad_magic(l)
  local kind, digits = l:match("^(%a+)%-(%d%d%d)$")
  if (kind == "rcpt" or kind == "data" or kind == "message") and not fault_code(l, kind) then
    return l .. ": " .. digits .. " is no fault code (4xx or 5xx, second digit 0 to 5)"
  end
  local secs = tonumber(l:match("^slow%-(%d+)s$"))
  if secs and secs > 86400 then return l .. ": at most 86400 seconds (a day)" end
end

function on_rcpt(s, rcpt)
  local l = magic(rcpt.address)
  local bad = bad_magic(l)
  if bad then return smtp.reply(553, "5.1.3", bad) end
  local code = fault_code(l, "rcpt")
  if code then return code_reply(code, "Recipient refused (" .. l .. ")", rcpt_replies) end
  if l == "reset" then return smtp.reset() end
  if l == "greylist" then
    local key = s.client_ip .. "|" .. s.mail_from .. "|" .. rcpt.address:lower()
    local t = first_seen[key]
    if not t then
      first_seen[key] = smtp.now()
      return smtp.reply(451, "4.7.1", "Greylisted, try again in " .. GREYLIST_WINDOW .. " seconds")
    end
    if smtp.now() - t < GREYLIST_WINDOW then
      return smtp.reply(451, "4.7.1", "Greylisted, retried too early")
    end
  end
end

-- The first recipient (in RCPT order) with a fault for DATA decides, whichever kind it is.
local function data_fault(s)
  for _, r in ipairs(s.rcpts) do
    local l = magic(r)
    local code = fault_code(l, "data")
    if code then return l, code end
    if l == "drop-mid-data" then return l end
  end
end

function on_data(s)
  local l, code = data_fault(s)
  if code then return code_reply(code, "DATA refused (" .. l .. ")") end
  if l then return smtp.reply(354, "End data with <CR><LF>.<CR><LF>"):reset() end
end

-- A mailer that sends the text with BDAT (CHUNKING) meets the same faults: the reset comes on
-- its first BDAT command, while the chunk arrives; the refusal answers its first chunk, which
-- fails the transaction (RFC 3030 2), so no later chunk of it is looked at.
function on_command(s, cmd)
  if cmd.verb ~= "BDAT" then return end
  local l, code = data_fault(s)
  if l and not code then return smtp.reset() end
end

function on_bdat(s, chunk)
  local l, code = data_fault(s)
  if code then return code_reply(code, "DATA refused (" .. l .. ")") end
end

local function message_code(l)
  return fault_code(l, "message")
end

function on_message(s, msg)
  for _, r in ipairs(msg.recipients) do
    local l = magic(r)
    local code = message_code(l)
    if code and s.lmtp then
      -- LMTP answers each recipient: every message-NNN recipient gets its own reply.
      local each = {}
      for i, other in ipairs(msg.recipients) do
        local o = magic(other)
        each[i] = message_code(o) and code_reply(message_code(o), "Message refused (" .. o .. ")")
          or false
      end
      return smtp.each_recipient(each)
    end
    if code then return code_reply(code, "Message refused (" .. l .. ")") end
    if l == "drop-after-dot" then return smtp.lose() end
    local secs = tonumber(l:match("^slow%-(%d+)s$"))
    if secs then return smtp.delay(secs) end
  end
end

expect { delivered = 1, quit = true, exit = "success" }
