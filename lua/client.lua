-- The client-scenario API of `smtpfault run`: a sequential script plays an SMTP client against
-- a server. Every call that touches the network yields to the host (client._op), which does the
-- I/O with a deadline and resumes the script with the outcome, so scripts read as if blocking.
-- Outcomes are values: a reply, or nil and "timeout" / "closed" / "reset" / "malformed ...".
-- Errors here name the script's line that called the library (host._where), not the library's
-- own, also for a script that catches them with pcall.

local host = client
local default_timeout = target.timeout
-- The library's own references: a script may use these names for globals of its own.
local type, error, pairs, ipairs, tostring = type, error, pairs, ipairs, tostring
local setmetatable, getmetatable, rawget = setmetatable, getmetatable, rawget
local string, table, math = string, table, math

local function fail(fmt, ...)
  local where, message = host._where(), string.format(fmt, ...)
  error(where ~= "" and where .. " " .. message or message, 0)
end

-- The connections by id, for the news an outcome brings: which ones the server has ended.
local by_id = setmetatable({}, { __mode = "v" })

local function op(t)
  local r = host._op(t)
  if r.ended then
    for id, why in pairs(r.ended) do
      local c = by_id[id]
      if c and not c.closed then c.closed = why end
    end
  end
  return r
end

-- A value as an error message shows it: a string quoted, so that "1" is not taken for 1.
local function value_text(v)
  if type(v) == "string" then return string.format("the string %q", v) end
  return tostring(v)
end

-- A wait longer than this is a slip, not a test (as smtp.sleep on the server side).
local a_day = 86400

local function check_number(v, what, min, max)
  -- NaN compares false with everything, and infinity is no count of octets or seconds.
  if type(v) ~= "number" or v ~= v or v == math.huge or v < (min or 0) then
    fail("%s must be a number >= %s, not %s", what, tostring(min or 0), value_text(v))
  end
  if max and v > max then fail("%s must be at most %d (a day), not %s", what, max, value_text(v)) end
  return v
end

-- The options each function takes (some pass them on: ehlo's to expect, starttls's to
-- tls_handshake); a misspelt one ("prot") is an error, not a silent default.
local wait = "name timeout "
local tls_opts = "ca may_fail sni timeout verify "
local known_options = {}
for fn, names in pairs {
  connect = tls_opts .. "host port tls", reply = wait, expect = wait,
  send = "label", raw = "label", tls_handshake = tls_opts, starttls = tls_opts .. "expect",
  ehlo = wait .. "expect starttls", auth = wait .. "expect authzid",
  data = wait .. "expect expect_354 line_ending raw", bdat = wait .. "expect last no_reply size",
  wait_closed = "timeout", expect_closed = wait, quit = wait, greeting = wait,
} do
  known_options[fn] = {}
  for name in names:gmatch("%S+") do known_options[fn][name] = true end
end

-- What a function passes on to expect: only the options expect takes.
local function waiting(o)
  return { name = o.name, timeout = o.timeout }
end

local function opts_table(o, fn)
  if o == nil then return {} end
  if type(o) ~= "table" then fail("%s: options must be a table, not a %s", fn, type(o)) end
  -- A wait of 0 or less would end before it began; nil means --timeout.
  local t = rawget(o, "timeout")
  if t ~= nil and (type(t) ~= "number" or t ~= t or t <= 0 or t > a_day) then
    fail("%s: timeout must be a number of seconds > 0 and at most 86400 (a day), not %s", fn,
      value_text(t))
  end
  for k in pairs(o) do
    if not known_options[fn][k] then
      local names = {}
      for name in pairs(known_options[fn]) do names[#names + 1] = name end
      table.sort(names)
      fail("%s: unknown option %s (it takes: %s)", fn,
        type(k) == "string" and ("'" .. k .. "'") or tostring(k), table.concat(names, ", "))
    end
  end
  -- A name for TLS, or none: sni = false would otherwise mean "the host" without a word.
  local sni = rawget(o, "sni")
  if sni ~= nil and (type(sni) ~= "string" or sni == "") then
    fail("%s: sni must be a host name (a non-empty string), not %s", fn, value_text(sni))
  end
  return o
end

-- Short text of a reply for verdicts and errors: "250 2.0.0 Ok" (first line).
local function reply_summary(r)
  local first = r.lines[1] or ""
  local text = tostring(r.code) .. (r.enhanced and (" " .. r.enhanced) or "")
  if first ~= "" then text = text .. " " .. first end
  if #r.lines > 1 then text = text .. string.format(" (+%d lines)", #r.lines - 1) end
  return text
end

local function describe(want)
  if type(want) == "number" then
    return want < 10 and (tostring(want) .. "xx") or tostring(want)
  elseif type(want) == "table" then
    local parts = {}
    for i, w in ipairs(want) do parts[i] = describe(w) end
    return table.concat(parts, "|")
  end
  return "'" .. tostring(want) .. "'"
end

-- want: a code (250), a class (2 means 2xx), a Lua pattern matched against "CODE[ ENHANCED][ text]" of
-- every line, or a list of these (any may match).
local function matches(want, r)
  local kind = type(want)
  if kind == "number" then
    if want < 10 then return r.code // 100 == want end
    return r.code == want
  elseif kind == "string" then
    for _, line in ipairs(r.lines) do
      -- RFC 5321 4.2: the text is optional, and a line without one has no space after its code.
      local full = tostring(r.code) .. (r.enhanced and (" " .. r.enhanced) or "") ..
        (line ~= "" and (" " .. line) or "")
      -- A malformed pattern is the script's mistake: said with the pattern, at the script's line.
      local ok, found = pcall(string.find, full, want)
      if not ok then
        fail("expect: pattern %q: %s", want, (tostring(found):gsub("^.-:%d+: ", "")))
      end
      if found then return true end
    end
    return false
  elseif kind == "table" then
    for _, w in ipairs(want) do
      if matches(w, r) then return true end
    end
    return false
  end
  fail("expect: want a code, a class (2..5), a pattern or a list of them, not a %s", kind)
end

local function failure_text(err, timeout)
  if err == "timeout" then
    return string.format("no reply within %gs", timeout or default_timeout)
  elseif err == "closed" then
    return "the server closed the connection"
  elseif err == "reset" then
    return "the connection was reset"
  end
  return tostring(err)
end

-- Connections ----------------------------------------------------------------------------------

local Conn = {}
Conn.__index = Conn
local current = nil

local function conn_of(self, fn)
  if getmetatable(self) ~= Conn then fail("%s: call it on a connection (c:%s(...))", fn, fn) end
  -- What the script closed itself is not the server's doing: a script error, not exit 3.
  if self.closed_by_script and fn ~= "close" and fn ~= "reset" then
    fail("%s: the script %s this connection itself; connect() again", fn,
      self.closed_by_script == "reset" and "reset" or "closed")
  end
  return self
end

local names = host._names  -- lua/client_names.lua: which command each reply answers
local shown = names.shown

-- A failed handshake reads "tls failed", with the reason ("unable to get local issuer
-- certificate") as a second value; other errors pass as they are.
local function tls_failure(err)
  local reason = type(err) == "string" and err:match("^tls failed: (.*)$")
  if reason then return "tls failed", reason end
  return err
end

function connect(o)
  o = opts_table(o, "connect")
  local tls = o.tls and true or false
  local h = o.host or (tls and target.tls_host) or target.host
  local p = o.port or (tls and target.tls_port) or target.port
  -- Implicit TLS on the plain port only ever fails with a TLS error: name the missing option.
  if tls and not o.port and not target.tls_port then p = nil end
  if not h or not p then
    fail("connect: no %s: pass {host=..., port=...} or run with --%s HOST:PORT",
      tls and "implicit-TLS target" or "target", tls and "tls-target" or "target")
  end
  if type(h) ~= "string" then fail("connect: host must be a string, not %s", value_text(h)) end
  if h:match("^[^:]+:%d+$") then
    fail("connect: host %q has a port in it: pass {host = %q, port = %s}", h, h:match("^[^:]+"),
      h:match("%d+$"))
  end
  if type(p) ~= "number" or p ~= math.floor(p) or p < 1 or p > 65535 then
    fail("connect: port must be a whole number from 1 to 65535, not %s", value_text(p))
  end
  local r = op {
    op = "connect", host = h, port = p, tls = tls, verify = o.verify, ca = o.ca,
    sni = o.sni, timeout = o.timeout, may_fail = o.may_fail,
  }
  if not r.ok then return nil, tls_failure(r.err) end
  local c = setmetatable({ id = r.conn, host = h, port = p, tls = tls, last = nil,
    closed = false, tls_version = r.tls_version }, Conn)
  by_id[c.id] = c
  current = c
  return c
end

-- How long a wait on a connection whose server stopped answering looks for a reply that came
-- late, when the script gives no timeout of its own.
local stalled_look = 0.05

function Conn:reply(o)
  conn_of(self, "reply")
  o = opts_table(o, "reply")
  -- Nothing waits for a reply (all answered): said by the step that waits all the same.
  self.none_awaited = self.greeted and not self.queue and not self.unended and self.last or nil
  local entry = names.take(self)
  -- A reply that never came leaves the server not answering this connection: a later wait with
  -- no timeout of its own only looks for one that has come since, or a server that hangs would
  -- cost the whole --timeout at every step.
  local stalled = not o.timeout and self.stalled or nil
  self.short_wait = stalled
  local r = op { op = "read_reply", conn = self.id, timeout = stalled and stalled_look or o.timeout }
  if r.reply then
    self.stalled = nil
    names.answered(self, entry, r.reply.code)
    return r.reply
  end
  if r.err == "closed" or r.err == "reset" then self.closed = r.err end
  if r.err == "timeout" then
    if not stalled then
      self.stalled = { what = (type(entry) == "table" and entry.greeting) and "the greeting"
        or self.last, timeout = o.timeout or default_timeout }
    end
    names.missed(self, entry)
  end
  return nil, r.err
end

-- One step: the reply r (or why there is none) against want.
local function judge(self, want, r, err, o)
  local stalled, none_awaited = self.short_wait, self.none_awaited
  self.short_wait, self.none_awaited = nil, nil
  -- A late reply answers the command that missed it (self.last); none coming, the step is the
  -- script's wait for its newest command.
  local to = (stalled and not r) and names.newest(self) or self.last
  local name = o.name or ("expect " .. describe(want) ..
    (none_awaited and string.format(" with no command awaiting a reply (the last, %s, was answered)",
      none_awaited) or to and (" to " .. to) or " (greeting)"))
  if not r then
    local why = failure_text(err, o.timeout)
    if stalled and err == "timeout" then
      why = string.format("not waited for: the server has not answered %s (no reply within %gs),"
        .. " nor anything since; pass {timeout = N} to wait again", stalled.what, stalled.timeout)
    elseif err == "timeout" and self.message_unended then
      why = why .. "; " .. self.message_unended
    end
    self.message_unended = nil
    host._step(false, name, why, self.id)
    return nil, err
  end
  self.message_unended = nil
  local ok = matches(want, r)
  host._step(ok, name, "got " .. reply_summary(r), self.id)
  return r, (not ok) and "unexpected reply" or nil
end

-- A want that can never match is the script's mistake, found before the reply is read.
local function check_want(want, fn)
  local kind = type(want)
  if kind == "number" then
    if math.type(want) ~= "integer" or not ((want >= 2 and want <= 5) or
        (want >= 200 and want <= 599)) then
      fail("%s: want a reply code (200-599) or a class (2-5), not %s", fn, tostring(want))
    end
  elseif kind == "table" then
    if #want == 0 then fail("%s: the list of wanted replies is empty", fn) end
    for _, w in ipairs(want) do check_want(w, fn) end
  elseif kind ~= "string" then
    fail("%s: want a code, a class (2..5), a pattern or a list of them, not a %s", fn, kind)
  end
end

function Conn:expect(want, o)
  conn_of(self, "expect")
  check_want(want, "expect")
  o = opts_table(o, "expect")
  local r, err = self:reply(o)
  return judge(self, want, r, err, o)
end

local function write(self, bytes, label, timeout)
  local r = op { op = "write", conn = self.id, bytes = bytes, label = label, timeout = timeout }
  if not r.ok then
    if r.err == "closed" or r.err == "reset" then self.closed = r.err end
    return nil, r.err, r.sent
  end
  return true
end

function Conn:send(line, o)
  conn_of(self, "send")
  if type(line) ~= "string" then fail("send: line must be a string, not a %s", type(line)) end
  o = opts_table(o, "send")
  names.line_sent(self, "", line, o.label)
  return write(self, line .. "\r\n", o.label and (o.label .. "\r\n") or nil)
end

function Conn:raw(bytes, o)
  conn_of(self, "raw")
  if type(bytes) ~= "string" then fail("raw: bytes must be a string, not a %s", type(bytes)) end
  o = opts_table(o, "raw")
  names.octets_sent(self, "raw", bytes, o.label)
  return write(self, bytes, o.label)
end

function Conn:pipeline(lines)
  conn_of(self, "pipeline")
  if type(lines) ~= "table" or #lines == 0 then fail("pipeline: give a list of command lines") end
  local parts = {}
  for i, l in ipairs(lines) do
    if type(l) ~= "string" then fail("pipeline: line %d is a %s, not a string", i, type(l)) end
    parts[i] = l .. "\r\n"
  end
  for _, l in ipairs(lines) do names.line_sent(self, "pipelined ", l) end
  return write(self, table.concat(parts))
end

-- Sends `bytes` n octets at a time, one step every `every` seconds (slowloris). Returns true,
-- or nil, the error and how many octets went out.
function Conn:slow(bytes, n, every)
  conn_of(self, "slow")
  if type(bytes) ~= "string" then fail("slow: bytes must be a string") end
  check_number(n, "slow: octets per step", 1)
  check_number(every, "slow: seconds between steps", 0, a_day)
  names.octets_sent(self, "slow", bytes)
  local r = op { op = "write", conn = self.id, bytes = bytes, chunk = n, every = every }
  if not r.ok then
    if r.err == "closed" or r.err == "reset" then self.closed = r.err end
    return nil, r.err, r.sent, r.elapsed
  end
  return true, nil, r.sent, r.elapsed
end

-- The TLS handshake alone (after a 220 to STARTTLS sent by hand).
function Conn:tls_handshake(o)
  conn_of(self, "tls_handshake")
  o = opts_table(o, "tls_handshake")
  local r = op { op = "tls_handshake", conn = self.id, verify = o.verify, ca = o.ca,
    sni = o.sni or self.host, timeout = o.timeout, may_fail = o.may_fail }
  if not r.ok then
    local err, reason = tls_failure(r.err)
    if reason then self.closed = err end  -- nothing more goes over the connection
    return nil, err, reason
  end
  self.tls = true
  self.tls_version = r.tls_version
  names.forget(self)  -- what was sent before the handshake gets no reply inside it
  return true
end

-- STARTTLS, expect 220, handshake. A refused STARTTLS or a failed handshake ends the run (exit
-- 3) unless may_fail: what the script sends next (AUTH, the message) was meant to be encrypted.
function Conn:starttls(o)
  conn_of(self, "starttls")
  o = opts_table(o, "starttls")
  -- A CA file that cannot be loaded is found before STARTTLS goes out, not after its 220.
  if o.ca then op { op = "check_ca", conn = self.id, ca = o.ca } end
  self:send("STARTTLS")
  local r, err
  if o.may_fail then  -- the script handles a refusal itself: the outcome, not a verdict
    r, err = self:reply(waiting(o))
    if r and not matches(o.expect or 220, r) then err = "unexpected reply" end
  else
    r, err = self:expect(o.expect or 220, waiting(o))
  end
  if err then
    if not o.may_fail then
      op { op = "give_up", conn = self.id, bytes = "STARTTLS to " .. self.host .. " failed: " ..
        (r and ("refused with " .. reply_summary(r)) or failure_text(err, o.timeout)) }
    end
    return nil, err, r
  end
  return self:tls_handshake { ca = o.ca, may_fail = o.may_fail, sni = o.sni, timeout = o.timeout,
    verify = o.verify }
end

-- Keywords are case-insensitive (RFC 5321 2.4): r.extensions.size reads "SIZE".
local any_case = {
  __index = function(t, k)
    if type(k) == "string" then return rawget(t, k:upper()) end
  end,
}

-- Parses the EHLO keywords: r.extensions["SIZE"] == "10240000", ["PIPELINING"] == "".
local function extensions(r)
  local ext = {}
  for i = 2, #r.lines do
    local kw, rest = r.lines[i]:match("^(%S+)%s*(.*)$")
    if kw then ext[kw:upper()] = rest end
  end
  return setmetatable(ext, any_case)
end

-- expect(220) for the greeting. A server that sends none within the timeout (a tarpit) ends
-- the script there, as skipped after that failed step: every later wait would run to its
-- deadline too, and nothing after a greeting can be judged without one.
function Conn:greeting(o)
  conn_of(self, "greeting")
  o = opts_table(o, "greeting")
  local r, err = self:expect(220, o)
  if err == "timeout" then
    op { op = "finish", conn = self.id, bytes = string.format(
      "no greeting within %gs: the rest of the script was not run", o.timeout or default_timeout) }
  end
  return r, err
end

-- A step the rest of the script needs (the probe's recipient accepted, the message opened):
-- the line is sent and `want` expected; a refusal or no reply fails that step, and the script
-- ends there as skipped (after QUIT, when it was a refusal). The advice, saying what to change,
-- goes with a refusal only: a connection that ended or went silent refused nothing.
function Conn:send_or_skip(line, want, advice)
  conn_of(self, "send_or_skip")
  if type(advice) ~= "string" then fail("send_or_skip: give the advice as a string") end
  self:send(line)
  local r, err = self:expect(want)
  if not err then return r end
  -- QUIT after a refusal; a server that went silent would not answer it either.
  if r and not self.closed then self:quit() end
  -- 530 before STARTTLS (RFC 3207 4): no address the advice asks for would do.
  if r and r.code == 530 and not self.tls and (r.lines[1] or ""):upper():find("TLS", 1, true) then
    advice = "the server requires STARTTLS first: the probes take --param starttls=true (and"
      .. " --param ca=FILE to verify its certificate)"
  end
  local why = r and ("the server refused '" .. shown(line) .. "': " .. advice)
    or ("no reply to '" .. shown(line) .. "' (" .. tostring(err) .. "): nothing more to probe on it")
  op { op = "finish", conn = self.id, bytes = why }
end

-- A server that does not answer EHLO within the timeout ends the script there, as greeting()
-- does: nothing after it (which extensions are offered, any transaction) can be judged.
function Conn:ehlo(name, o)
  conn_of(self, "ehlo")
  if name ~= nil and type(name) ~= "string" then
    fail("ehlo: the name must be a string, not a %s (options come second: ehlo(\"a.test\", {expect = 250}))",
      type(name))
  end
  o = opts_table(o, "ehlo")
  local tls = o.starttls
  if tls ~= nil and tls ~= false and tls ~= true and type(tls) ~= "table" then
    fail("ehlo: starttls must be true or a table of starttls options, not %s", value_text(tls))
  end
  self:send("EHLO " .. (name or "smtpfault.client"))
  local silent = not o.timeout and self.stalled
  local r, err = self:expect(o.expect or 250, waiting(o))
  if r then r.extensions = extensions(r) end
  if err == "timeout" then
    op { op = "finish", conn = self.id, bytes = silent
      and "the server answers nothing on this connection: the rest of the script was not run"
      or string.format("no reply to EHLO within %gs: the rest of the script was not run",
        o.timeout or default_timeout) }
  end
  -- STARTTLS, then EHLO again over TLS (RFC 3207 4.2: what the server said before is forgotten).
  if tls and not err then
    local ok, tls_err = self:starttls(tls == true and {} or tls)
    if not ok then return nil, tls_err end
    return self:ehlo(name, { expect = o.expect, name = o.name, timeout = o.timeout })
  end
  return r, err
end

-- The STARTTLS options --param starttls=true asks for (the certificate verified where --param
-- ca=FILE is given), or nil: what the probes give ehlo{starttls = ...}, so that they run
-- against a server that requires TLS (RFC 3207 4: 530 to MAIL before STARTTLS).
-- (It names params.starttls and params.ca as such: run finds the keys a script's library reads.)
function starttls_from_params()
  if params.starttls == nil or params.starttls == "false" then return nil end
  if params.starttls ~= "true" then
    fail("--param starttls must be true or false, not %s", value_text(params.starttls))
  end
  return { verify = params.ca ~= nil, ca = params.ca }
end

function Conn:quit(o)
  conn_of(self, "quit")
  o = opts_table(o, "quit")  -- checked before QUIT goes out, and named as quit's
  self:send("QUIT")
  return self:expect(221, o)
end

function Conn:half_close()
  conn_of(self, "half_close")
  return op { op = "shutdown_send", conn = self.id }.ok
end

function Conn:reset()
  conn_of(self, "reset")
  op { op = "reset", conn = self.id }
  self.closed = "reset"
  self.closed_by_script = self.closed_by_script or "reset"
end

function Conn:close()
  conn_of(self, "close")
  op { op = "close", conn = self.id }
  self.closed = self.closed or "closed"
  self.closed_by_script = self.closed_by_script or "closed"
end

-- True when the server closes the connection within the timeout (data that arrives meanwhile
-- stays readable with reply()), else false; the second value is the seconds waited.
function Conn:wait_closed(o)
  conn_of(self, "wait_closed")
  o = opts_table(o, "wait_closed")
  local r = op { op = "wait_closed", conn = self.id, timeout = o.timeout }
  if r.ok then self.closed = r.err or "closed" end
  return r.ok, r.elapsed
end

function Conn:expect_closed(o)
  conn_of(self, "expect_closed")
  o = opts_table(o, "expect_closed")
  local closed, waited = self:wait_closed({ timeout = o.timeout })  -- the name is the step's
  local after = names.newest(self)
  local name = o.name or ("server closes the connection" .. (after and (" after " .. after) or ""))
  host._step(closed, name, closed and string.format("closed after %.1fs", waited)
    or string.format("still open after %gs", o.timeout or default_timeout), self.id)
  return closed
end

-- The most recent connection (the one the global functions use).
function connection()
  return current
end

-- For lua/client_message.lua, lua/client_auth.lua and lua/client_globals.lua, which run next. Names with an underscore
-- are the library's own.
host._fail = fail
host._check_number = check_number
host._a_day = a_day
host._Conn = Conn
host._conn_of = conn_of
host._opts_table = opts_table
host._conn_op = op
host._check_want = check_want
host._waiting = waiting
host._judge = judge
host._shown = shown
host._write = write
host._reply_summary = reply_summary
