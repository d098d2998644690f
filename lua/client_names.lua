-- How `smtpfault run` names the reply each command is to get, so that a verdict says which
-- command it judges ("expect 250 to 'NOOP'"). Replies come in the order of the commands: each
-- reply read answers the oldest name waiting, however many commands went out before it; once
-- none waits, further replies keep the last name. A connection keeps its names waiting in
-- self.queue (the oldest at self.queue_at). Loaded before lua/client.lua, which takes these as
-- host._names.

local host = client
local type, string, table = type, string, table

local names = {}

-- A line as a name shows it: control octets escaped, a long one shortened.
function names.shown(line)
  if #line > 60 then line = line:sub(1, 57) .. "..." end
  return (line:gsub("[%c]", function(ch)
    return ch == "\r" and "\\r" or ch == "\n" and "\\n" or string.format("\\x%02x", ch:byte())
  end))
end

local shown = names.shown

local function name_of(entry)
  return type(entry) == "table" and entry.name or entry
end

-- Whether a line is the DATA command (RFC 5321 4.1.1.4: no argument).
local function is_data(line)
  return line:upper():find("^DATA *$") ~= nil
end

-- The lines of a message sent by hand get no reply of their own, only its final ".": the
-- message starts when DATA goes out (a script may send it before reading the 354), and a
-- refusal of that DATA, or no reply to it in time, ends it again. A DATA's entry in the queue
-- is a table, so that its reply knows it answers one.
local function awaiting(self, name, ends_data, starts_data)
  if self.in_data then
    if not ends_data then return end
    self.in_data, self.data_entry = false, nil
  end
  local entry = name
  if starts_data then
    entry = { name = name }
    self.in_data, self.data_entry = true, entry
  end
  local q = self.queue
  if not q then q, self.queue_at = {}, 1 end
  q[#q + 1] = entry
  self.queue = q
end

-- For what is no line of its own: "the end of data" (ends_data), a BDAT chunk.
names.awaiting = awaiting

-- Whether all n octets go to the rest of a BDAT chunk that bdat{size=...} announced larger than
-- what it sent: chunk data gets no reply of its own (the BDAT command's answers the chunk).
local function completes_chunk(self, n)
  local left = self.chunk_left
  if not left then return false end
  self.chunk_left = left > n and left - n or nil
  return n <= left
end

-- One command line sent (send, pipeline): kind "" or "pipelined "; label is what the transcript
-- shows for it. A command begun by raw() without its line end goes on here.
function names.line_sent(self, kind, line, label)
  if completes_chunk(self, #line + 2) then return end
  local before = self.unended
  self.unended = nil
  local command = before and (before .. line) or line
  awaiting(self, (before and "raw '" or kind .. "'") .. shown(label or command) .. "'",
    command == ".", is_data(command))
end

-- Octets written as they are (raw, slow): each line a command of its own (a message's lines
-- none), so that DATA, a message and its "." in one write are told apart; a last piece without
-- its line end is a command still being written, which the next write goes on with
-- (raw("NO") raw("OP\r\n") is one NOOP). With a label, which stands for the octets, one name.
function names.octets_sent(self, kind, bytes, label)
  if completes_chunk(self, #bytes) then return end
  if label then
    awaiting(self, kind .. " '" .. shown(label) .. "'", bytes:find("^%.\r?\n") ~= nil or
      bytes:find("\n%.\r?\n") ~= nil, is_data((bytes:match("([^\r\n]*)\r?\n$") or "")))
    return
  end
  local text = (self.unended or "") .. bytes
  self.unended = nil
  local pos = 1
  while pos <= #text do
    local eol = text:find("\n", pos, true)
    if not eol then
      self.unended = text:sub(pos)
      return
    end
    local line = text:sub(pos, eol)
    local bare = line:gsub("\r?\n$", "")
    awaiting(self, kind .. " '" .. shown(line) .. "'", bare == ".", is_data(bare))
    pos = eol + 1
  end
end

-- The entry the next reply answers, taken from the queue (self.last names it from now on).
function names.take(self)
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
    local entry = { name = "raw '" .. shown(self.unended) .. "' (no CRLF)", unended = true }
    self.last = entry.name
    return entry
  end
end

-- A reply with this code came for entry.
function names.answered(self, entry, code)
  if type(entry) ~= "table" then
    if code == 354 then self.in_data = true end  -- DATA written in a way not told apart
  elseif entry.unended then
    self.unended = nil  -- answered: what follows is another command
  elseif code ~= 354 and self.data_entry == entry then
    -- DATA refused: what was sent after it went to the server as commands.
    self.in_data, self.data_entry = false, nil
  end
end

-- No reply came in time: one that comes late still answers this command, not the next.
function names.missed(self, entry)
  if not entry or (type(entry) == "table" and entry.unended) then return end
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
