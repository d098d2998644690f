-- DATA and BDAT for the client API: a message's text after its 354, or chunks, and the
-- replies that judge them. lua/client.lua runs first and hands over what they share (host._*);
-- errors name the script's line, as there.

local host = client
local default_timeout = target.timeout
local type, tostring, tonumber, string, math = type, tostring, tonumber, string, math
local Conn, fail, judge, waiting = host._Conn, host._fail, host._judge, host._waiting
local conn_of, opts_table = host._conn_of, host._opts_table
local op = host._conn_op  -- client._op, with what the outcome says of the connections
local awaiting, write, reply_summary = host._names.awaiting, host._write, host._reply_summary

local endings = { ["\r\n"] = true, ["\n"] = true, ["\r"] = true }

-- A message or chunk the server stopped reading: the step that waits for its reply fails,
-- rather than the next command's (a failed write alone is no verdict).
local function stopped_reading(self, o, what, sent)
  self.queue, self.last = nil, what
  return judge(self, o.expect or 250, nil, string.format(
    "the server stopped reading: %d octets went out within %gs", sent or 0,
    o.timeout or default_timeout), o)
end

-- DATA, 354, the body (line endings converted to line_ending, dot-stuffed, terminated), and
-- the final reply. With raw = true the body goes out exactly as given, nothing added.
function Conn:data(body, o)
  conn_of(self, "data")
  if type(body) ~= "string" then fail("data: body must be a string, not a %s", type(body)) end
  o = opts_table(o, "data")
  local eol = o.line_ending or "\r\n"
  -- Named in words: an error's backslashes would be shown escaped again ("\\r\\n").
  if not endings[eol] then fail("data: line_ending must be one of CR LF, LF or CR") end
  self:send("DATA")
  -- A refused DATA comes back as expect() gives it: the reply (or nil) and why.
  local r, err = self:expect(o.expect_354 or 354, { timeout = o.timeout })
  -- A refusal, expected (expect_354 = {354, 421}) or not, ends it there: the message sent
  -- anyway would be read as commands, and every reply after it matched to the wrong one.
  if err or r.code ~= 354 then return r, err end
  -- A reply that came with the 354, before any of the message went out, answers nothing sent;
  -- taken for the reply to the message, it would put every later reply one command out.
  local early = op { op = "read_reply", conn = self.id, buffered = true }
  if early.reply or (early.err and early.err ~= "none") then
    host._step(false, "no reply before the message", early.reply and ("got " ..
      reply_summary(early.reply) .. " with the 354, before any of the message went out")
      or early.err, self.id)
  end
  local bytes = o.raw and body or host._encode_data(body, eol)
  -- Only CRLF "." CRLF ends a message (RFC 5321 4.1.1.4): a server still reading one that ends
  -- otherwise is right, and a timeout waiting for its reply says so.
  local label = string.format("<%d octets of message data>", #bytes)
  if bytes:sub(-5) ~= "\r\n.\r\n" and bytes ~= ".\r\n" then
    local tail = bytes:sub(-3):gsub("\r", "\\r"):gsub("\n", "\\n")
    self.message_unended = "the message ended with \"" .. tail .. "\", not CRLF \".\" CRLF, which"
      .. " alone ends one (RFC 5321 4.1.1.4): a server still reading it is right; for bare line"
      .. " ends in the text only, end it with \"\\r\\n.\\r\\n\" and raw = true"
    -- The transcript shows no message text: how this one ended is what a reader needs.
    label = string.format("<%d octets of message data, ending \"%s\">", #bytes, bytes:sub(-3))
  end
  awaiting(self, "the end of data", true)
  local ok, werr, sent = write(self, bytes, label, o.timeout)
  if not ok and werr == "timeout" then return stopped_reading(self, o, "the end of data", sent) end
  -- A server that closed meanwhile may have said why first: the verdict shows that reply.
  return self:expect(o.expect or 250, waiting(o))
end

-- BDAT: "BDAT <size> [LAST]" and the chunk in one write, then the reply.
function Conn:bdat(chunk, o)
  conn_of(self, "bdat")
  if type(chunk) ~= "string" then fail("bdat: chunk must be a string") end
  o = opts_table(o, "bdat")
  local cmd = "BDAT " .. tostring(o.size or #chunk) .. (o.last and " LAST" or "")
  awaiting(self, "'" .. cmd .. "'")
  local size = math.tointeger(tonumber(o.size))
  self.chunk_left = size and size > #chunk and size - #chunk or nil
  local ok, err, sent = write(self, cmd .. "\r\n" .. chunk,
    cmd .. "\r\n" .. string.format("<%d octets of chunk data>", #chunk), o.timeout)
  if o.no_reply then
    if not ok then return nil, err end
    return true
  end
  if not ok and err == "timeout" then return stopped_reading(self, o, "'" .. cmd .. "'", sent) end
  return self:expect(o.expect or 250, waiting(o))
end
