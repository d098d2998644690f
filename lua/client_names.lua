-- How `smtpfault run` names the reply each command is to get, so that a verdict says which
-- command it judges ("expect 250 to 'NOOP'"). Replies come in the order of the commands: each
-- reply read answers the oldest name waiting, however many commands went out before it; once
-- none waits, further replies keep the last name. A connection keeps its names waiting in
-- self.queue (the oldest at self.queue_at). Loaded before lua/client.lua, which takes these as
-- host._names.

local host = client
local type, string, table, math = type, string, table, math

local names = {}

-- A line as a name shows it: control octets escaped, a long one shortened.
function names.shown(line)
  if #line > 60 then line = line:sub(1, 57) .. "..." end
  return (line:gsub("[%c]", function(ch)
    return ch == "\r" and "\\r" or ch == "\n" and "\\n" or string.format("\\x%02x", ch:byte())
  end))
end

local shown = names.shown

-- At most this much of a line is copied or kept: enough for its name (shown() shortens a longer
-- one) and to tell DATA apart, so that a raw() of megabytes is scanned without a copy of it. A
-- line this long or longer is taken for no DATA (DATA has no argument, at most a few spaces).
local head_size = 64

local function name_of(entry)
  return type(entry) == "table" and entry.name or entry
end

-- Whether a line without its line end is the DATA command (RFC 5321 4.1.1.4: no argument).
local function is_data(line)
  return #line < head_size and line:upper():find("^DATA *$") ~= nil
end

-- The lines of a message sent by hand get no reply of their own, only its final ".": the
-- message starts when DATA goes out (a script may send it before reading the 354), and a
-- refusal of that DATA, or no reply to it in time, ends it again. A DATA's entry in the queue
-- is a table, so that its reply knows it answers one. line_end: the DATA line's own, which may
-- be the first CRLF of the CRLF "." CRLF that ends an empty message.
local function awaiting(self, name, ends_data, starts_data, line_end)
  if self.in_data then
    if not ends_data then return end
    self.in_data, self.data_entry = false, nil
  end
  local entry = name
  if starts_data then
    entry = { name = name }
    self.in_data, self.data_entry, self.tail = true, entry, line_end or "\r\n"
  end
  local q = self.queue
  if not q then q, self.queue_at = {}, 1 end
  q[#q + 1] = entry
  self.queue = q
end

-- For what is no line of its own: "the end of data" (ends_data), a BDAT chunk.
names.awaiting = awaiting

-- The message's end in text from pos: where its CRLF "." CRLF ends, else nil (self.tail, the
-- last octets of the message, then takes in those of text). Only that sequence ends the data
-- (RFC 5321 4.1.1.4): a "." after a bare LF or CR is text of the message. Plain finds, and
-- copies of a few octets only, so that a message of megabytes costs about its length.
local function message_end(self, text, pos)
  local tail = self.tail
  local at = (tail .. text:sub(pos, pos + 4)):find("\r\n.\r\n", 1, true)
  if at then return pos + at + 3 - #tail end
  at = text:find("\r\n.\r\n", pos, true)
  if at then return at + 4 end
  self.tail = (tail .. text:sub(math.max(pos, #text - 3))):sub(-4)
end

-- Whether all n octets go to the rest of a BDAT chunk that bdat{size=...} announced larger than
-- what it sent: chunk data gets no reply of its own (the BDAT command's answers the chunk).
local function completes_chunk(self, n)
  local left = self.chunk_left
  if not left then return false end
  self.chunk_left = left > n and left - n or nil
  return n <= left
end

-- One command line sent (send, pipeline): kind "" or "pipelined "; label is what the transcript
-- shows for it. A command begun by raw() without its line end goes on here. Inside a message,
-- a line of it, or its end.
function names.line_sent(self, kind, line, label)
  if completes_chunk(self, #line + 2) then return end
  if self.in_data then
    if message_end(self, line, 1) or message_end(self, "\r\n", 1) then
      awaiting(self, kind .. "'" .. shown(label or line) .. "'", true)
    end
    return
  end
  local before = self.unended
  self.unended = nil
  local command = before and (before.head .. line:sub(1, head_size)) or line
  awaiting(self, (before and "raw '" or kind .. "'") ..
    shown(label or (before and before.label) or command) .. "'", false, is_data(command))
end

-- The part of a message in bytes from pos: through its end, which gets a name, or all of it.
-- Returns where what follows it begins.
local function message_part(self, kind, bytes, pos, label)
  local last = message_end(self, bytes, pos)
  if not last then return #bytes + 1 end
  awaiting(self, kind .. " '" .. shown(label or ".\r\n") .. "'", true)
  return last + 1
end

-- The command line in bytes from pos, named by its first octets (or the label), or the piece of
-- one that has no line end yet, which the next write goes on with. Returns where what follows
-- it begins.
local function command_part(self, kind, bytes, pos, label)
  local eol = bytes:find("\n", pos, true)
  local head = bytes:sub(pos, math.min(eol or #bytes, pos + head_size - 1))
  local before = self.unended
  if before then
    head, label = (before.head .. head):sub(1, head_size), label or before.label
  end
  if not eol then
    self.unended = { head = head, label = label }
    return #bytes + 1
  end
  self.unended = nil
  local line_end = head:match("\r?\n$")  -- nil when the head is only the start of a long line
  awaiting(self, kind .. " '" .. shown(label or head) .. "'", false,
    line_end ~= nil and is_data(head:sub(1, -#line_end - 1)), line_end)
  return eol + 1
end

-- Octets written as they are (raw, slow): each line a command of its own, a message's lines
-- none but its end, so that DATA, a message and its "." in one write are told apart; a last
-- piece without its line end is a command still being written, which the next write goes on
-- with (raw("NO") raw("OP\r\n") is one NOOP). A label stands for the octets: each command
-- in them, and a message's end, is named after it.
function names.octets_sent(self, kind, bytes, label)
  if completes_chunk(self, #bytes) then return end
  local pos = 1
  while pos <= #bytes do
    pos = (self.in_data and message_part or command_part)(self, kind, bytes, pos, label)
  end
end

-- The first reply on a connection is the server's greeting (RFC 5321 3.1), also when the
-- script sent commands before reading it: their replies come after it.
local greeting = { greeting = true }

-- The entry the next reply answers, taken from the queue (self.last names it from now on).
function names.take(self)
  if not self.greeted then
    self.greeted = true
    return greeting
  end
  local q = self.queue
  if q then
    -- Taken from the front by an index, not table.remove(q, 1): a pipeline of thousands of
    -- commands would move the rest of the list down for each reply.
    local at = self.queue_at
    local entry = q[at]
    self.last = name_of(entry) or self.last
    if at >= #q then self.queue = nil else self.queue_at = at + 1 end
    return entry
  end
  if self.unended then
    -- A reply to a command still without its line end (a server's timeout, say).
    local u = self.unended
    local entry = { name = "raw '" .. shown(u.label or u.head) .. "' (no CRLF)", unended = true }
    self.last = entry.name
    return entry
  end
end

-- A reply with this code came for entry.
function names.answered(self, entry, code)
  if type(entry) ~= "table" then
    if code == 354 then  -- DATA written in a way not told apart
      self.in_data, self.tail, self.unended = true, "\r\n", nil
    end
  elseif entry.unended then
    self.unended = nil  -- answered: what follows is another command
  elseif code ~= 354 and self.data_entry == entry then
    -- DATA refused: what was sent after it went to the server as commands.
    self.in_data, self.data_entry = false, nil
  end
end

-- No reply came in time: one that comes late still answers this command, not the next.
function names.missed(self, entry)
  if entry == greeting then self.greeted = nil end  -- the greeting still comes first
  if not entry or (type(entry) == "table" and (entry.unended or entry.greeting)) then return end
  if self.data_entry == entry then self.in_data, self.data_entry = false, nil end
  if self.queue and self.queue_at > 1 then
    self.queue_at = self.queue_at - 1
    self.queue[self.queue_at] = entry
  elseif self.queue then
    table.insert(self.queue, 1, entry)
  else
    self.queue, self.queue_at = { entry }, 1
  end
end

-- After a TLS handshake: nothing sent before it gets a reply inside it.
function names.forget(self)
  self.queue, self.unended, self.in_data, self.data_entry = nil, nil, false, nil
end

-- The newest command still waiting for its reply, else the one answered last.
function names.newest(self)
  return self.queue and name_of(self.queue[#self.queue]) or self.last
end

host._names = names
