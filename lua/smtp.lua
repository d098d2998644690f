-- The pure-Lua half of the scenario API, first part: the fault actions and their chaining. The
-- host defines the `smtp` table with its C functions (sleep, now, random, chance, log, ip_in)
-- before this file runs; lua/smtp_helpers.lua runs next and adds the helpers, expect{} and the
-- typo checks. Actions are plain tables with the `smtp.action` metatable; the host reads their
-- fields when a hook returns one.

local smtp = smtp
-- The library's own references: a scenario may use these names for globals of its own
-- (`type = "greylist"`) without breaking every helper.
local type, error, pairs, ipairs, tostring = type, error, pairs, ipairs, tostring
local setmetatable, getmetatable = setmetatable, getmetatable
local string, table, math = string, table, math
local rawnext = next  -- the sandbox's pairs sorts keys: copying an action needs no order
local Action = {}
Action.__index = Action
Action.__name = "smtp.action"

local function fail(level, fmt, ...)
  error(string.format(fmt, ...), level + 1)
end

local function check_type(value, want, argn, fname, level)
  if value == smtp and argn == 1 then
    fail(level + 1, "smtp:%s(...) passes the smtp table as argument #1: call smtp.%s(...) with a dot",
      fname, fname)
  end
  if type(value) ~= want then
    fail(level + 1, "bad argument #%d to smtp.%s (%s expected, got %s)", argn, fname, want, type(value))
  end
end

local function check_seconds(value, argn, fname, level)
  check_type(value, "number", argn, fname, level + 1)
  if value ~= value then
    fail(level + 1, "bad argument #%d to smtp.%s (seconds must be a number, not NaN (0/0))", argn, fname)
  end
  if value < 0 then
    fail(level + 1, "bad argument #%d to smtp.%s (seconds must be >= 0)", argn, fname)
  end
  if value == math.huge then
    fail(level + 1, "bad argument #%d to smtp.%s (seconds must be finite; smtp.hang() never answers)",
      argn, fname)
  end
  -- The session holds its connection meanwhile: a wait past a day is a slip, not a test.
  if value > 86400 then
    fail(level + 1, "bad argument #%d to smtp.%s (seconds must be at most 86400, a day; smtp.hang()"
      .. " never answers)", argn, fname)
  end
end

-- A table of options, or nil: each key one the function takes, with a value of its type, so that
-- a misspelt option is an error rather than one silently left at its default.
local function check_options(opts, known, argn, fname, level)
  if opts == nil then return end
  if type(opts) ~= "table" then
    fail(level + 1, "bad argument #%d to smtp.%s (table of options expected, got %s)", argn, fname,
      type(opts))
  end
  local names = {}
  for name in pairs(known) do names[#names + 1] = name end
  table.sort(names)
  for k, v in pairs(opts) do
    if known[k] == nil then
      local hint = type(k) == "string" and smtp._suggest(k, names)
      fail(level + 1, "smtp.%s: no option '%s'%s; %s", fname, tostring(k),
        hint and (" (did you mean '" .. hint .. "'?)") or "",
        #names > 0 and ("it takes " .. table.concat(names, ", ")) or "it takes none here")
    end
    if type(v) ~= known[k] then
      fail(level + 1, "smtp.%s: option %s must be a %s, not %s", fname, k, known[k], type(v))
    end
  end
end

local made = smtp._made
local function action(fields)
  made(fields.name)
  return setmetatable(fields, Action)
end

local function is_enhanced(s)
  return type(s) == "string" and s:match("^[245]%.%d%d?%d?%.%d%d?%d?$") ~= nil
end

-- reply(code), reply(code, text), reply(code, enhanced, text), text may be a list of lines.
local function reply_fields(fname, level, code, a, b)
  check_type(code, "number", 1, fname, level + 1)
  if code ~= math.floor(code) or code < 100 or code > 599 then
    fail(level + 1, "bad argument #1 to smtp.%s (a reply code from 100 to 599 expected, got %s)", fname, tostring(code))
  end
  local enhanced, text = "", nil
  -- "5.1" or "5.1.1.1" is a mistyped enhanced code, not a reply text.
  if b ~= nil or is_enhanced(a) or (type(a) == "string" and a:match("^%d[%d.]*%.[%d.]*$")) then
    enhanced, text = a, b
    if enhanced ~= nil and enhanced ~= "" and not is_enhanced(enhanced) then
      fail(level + 1, "bad argument #2 to smtp.%s (enhanced status code like \"4.7.1\" expected, got %q)", fname, tostring(enhanced))
    end
  else
    text = a
  end
  if text == nil then text = smtp._default_text(math.floor(code)) end
  local lines
  if type(text) == "table" and #text == 0 and next(text) ~= nil then
    -- smtp.reply(550, rcpt): a table handed to a hook, not a list of lines.
    fail(level + 1, "bad argument #%d to smtp.%s (string or list of strings expected, got a table with named fields)", b ~= nil and 3 or 2, fname)
  end
  if type(text) == "table" then
    lines = {}
    for i, l in ipairs(text) do
      if type(l) ~= "string" then
        fail(level + 1, "bad argument to smtp.%s (reply line %d is a %s, not a string)", fname, i, type(l))
      end
      lines[i] = l
    end
    if #lines == 0 then
      fail(level + 1, "bad argument to smtp.%s (a list of reply lines needs at least one; \"\" for an empty text)", fname)
    end
  else
    check_type(text, "string", b ~= nil and 3 or 2, fname, level + 1)
    lines = { text }
  end
  for _, l in ipairs(lines) do
    -- Plain finds: a pattern would charge a step per octet of a long text to the budget.
    if l:find("\r", 1, true) or l:find("\n", 1, true) or l:find("\0", 1, true) then
      fail(level + 1, "bad argument to smtp.%s (reply text must not contain CR, LF or NUL: give a list of lines for a multiline reply, or use smtp.raw for exact octets)", fname)
    end
  end
  return { code = math.floor(code), enhanced = enhanced or "", lines = lines }
end

--- Reply with any code, enhanced code and text (one line or a list of lines).
function smtp.reply(code, enhanced_or_text, text)
  local f = reply_fields("reply", 2, code, enhanced_or_text, text)
  f.name = "reply " .. f.code
  return action(f)
end

--- Reply, then close the connection.
function smtp.reply_then_close(code, enhanced_or_text, text)
  local f = reply_fields("reply_then_close", 2, code, enhanced_or_text, text)
  f.name = "reply " .. f.code .. " then close"
  f.ending = "close_after"
  return action(f)
end

--- LMTP: after the final dot, one reply per recipient in RCPT order (RFC 2033 4.2). Each item is
--- an smtp.reply(...) or false for that recipient's normal reply: { false, smtp.reply(552, "5.2.2",
--- "Mailbox full") } refuses the message for the second recipient only. The message is stored
--- when one recipient or more accepts it. A 421 among them closes the connection after the last
--- reply. Over SMTP (one reply for all) it changes nothing.
function smtp.each_recipient(replies)
  check_type(replies, "table", 1, "each_recipient", 2)
  local n = 0
  for k, v in pairs(replies) do
    if math.type(k) ~= "integer" or k < 1 or k > 100000 then
      fail(2, "bad argument #1 to smtp.each_recipient (a list in RCPT order, not a key %s)", tostring(k))
    end
    if v ~= false and not (getmetatable(v) == Action and v.code) then
      fail(2, "bad argument #1 to smtp.each_recipient (item %d must be smtp.reply(...) or false, not a %s)", k, type(v))
    end
    -- Only each item's reply is sent: a delay or an ending on one item would be lost silently.
    for key in pairs(v or {}) do
      if key ~= "code" and key ~= "enhanced" and key ~= "lines" and key ~= "name" then
        fail(2, "bad argument #1 to smtp.each_recipient (item %d is more than a reply: put :delay(), :close() and the like on smtp.each_recipient{...} itself)", k)
      end
    end
    if k > n then n = k end
  end
  return action { name = "each recipient", each_recipient = replies, each_count = n }
end

--- Keep the default reply but send it after `seconds`.
function smtp.delay(seconds)
  check_seconds(seconds, 1, "delay", 2)
  return action { name = "delay", delay_seconds = seconds }
end

--- Keep the default reply but send it `bytes` octets at a time, every `every` seconds.
function smtp.trickle(bytes, every)
  check_type(bytes, "number", 1, "trickle", 2)
  check_seconds(every, 2, "trickle", 2)
  if not (bytes >= 1) or bytes == math.huge then  -- NaN compares false
    fail(2, "bad argument #1 to smtp.trickle (at least 1 byte)")
  end
  return action { name = "trickle", trickle_bytes = math.floor(bytes), trickle_every = every }
end

-- The offsets of smtp.split and action:split, checked.
local function split_offsets(fname, level, ...)
  local at = { ... }
  if #at == 0 then fail(level + 1, "%s needs at least one offset", fname) end
  for i, v in ipairs(at) do
    check_type(v, "number", i, fname:gsub("^smtp%.", ""), level + 1)
    -- Cuts at the same place, or backwards, would write nothing between them.
    if not math.tointeger(v) or v < 1 or (i > 1 and v <= at[i - 1]) then
      fail(level + 1, "bad argument #%d to %s (offsets are whole octet counts from 1, each past the one before; got %s)", i, fname, tostring(v))
    end
  end
  return at
end

--- Keep the default reply but write it in pieces, cut at the given octet offsets.
function smtp.split(...)
  return action { name = "split", split_at = split_offsets("smtp.split", 2, ...) }
end

--- Send these exact octets instead of a reply.
function smtp.raw(bytes)
  check_type(bytes, "string", 1, "raw", 2)
  return action { name = "raw reply", raw = bytes }
end

local malformed_kinds = { mixed_codes = true, missing_space = true, long_line = true, garbage = true }

--- A deliberately broken reply: "mixed_codes", "missing_space", "long_line" or "garbage".
function smtp.malformed(kind, code, enhanced_or_text, text)
  check_type(kind, "string", 1, "malformed", 2)
  if not malformed_kinds[kind] then
    fail(2, "bad argument #1 to smtp.malformed (one of mixed_codes, missing_space, long_line, garbage expected, got %q)", kind)
  end
  local f = reply_fields("malformed", 2, code or 250, enhanced_or_text, text)
  f.name = "malformed reply (" .. kind .. ")"
  f.malformed = kind
  return action(f)
end

--- Close the connection without replying (after the final dot: accept then lose).
function smtp.close()
  return action { name = "close without reply", ending = "close" }
end
smtp.drop = smtp.close

--- Accept the message, then close without the 250 (and do not keep it).
function smtp.lose()
  return action { name = "accept then lose", ending = "lose" }
end

--- Abort the connection with a TCP reset (the client sees ECONNRESET).
function smtp.reset()
  return action { name = "reset", ending = "reset" }
end

--- Never answer again.
function smtp.hang()
  return action { name = "hang", ending = "hang" }
end

--- An unsolicited reply once the session has been idle `after` seconds (closes by default).
function smtp.unsolicited(after, code, enhanced_or_text, text, opts)
  check_seconds(after, 1, "unsolicited", 2)
  -- The options may come right after the code or the text: smtp.unsolicited(1, 421, {close=false}).
  local function is_opts(v) return type(v) == "table" and v[1] == nil end
  if opts == nil and is_opts(text) then text, opts = nil, text end
  if opts == nil and text == nil and is_opts(enhanced_or_text) then
    enhanced_or_text, opts = nil, enhanced_or_text
  end
  check_options(opts, { close = "boolean" }, 5, "unsolicited", 2)
  local f = reply_fields("unsolicited", 2, code or 421, enhanced_or_text, text)
  f.after = after
  f.close = not (opts and opts.close == false)
  if not f.close and f.code == 421 then
    fail(2, "smtp.unsolicited: a 421 always closes the connection (RFC 5321 3.8), so {close=false} cannot keep the session; use another code")
  end
  -- Named as what it waits for: the transcript notes it when it is given, not when it is sent.
  return action { name = string.format("unsolicited %d armed, to come after %g s of silence", f.code, after), unsolicited = f }
end

local starttls_modes = { close_after_220 = true, abort_handshake = true, inject = true }

--- STARTTLS faults: "close_after_220", "abort_handshake" or "inject" (with opts.data).
function smtp.starttls(mode, opts)
  check_type(mode, "string", 1, "starttls", 2)
  if not starttls_modes[mode] then
    fail(2, "bad argument #1 to smtp.starttls (close_after_220, abort_handshake or inject expected, got %q)", mode)
  end
  check_options(opts, mode == "inject" and { data = "string" } or {}, 2, "starttls", 2)
  local a = action { name = "starttls " .. mode, starttls = mode }
  if mode == "inject" then
    a.inject = opts and opts.data or "250 2.0.0 injected\r\n"
  end
  return a
end

local certificate_kinds = { self_signed = true, expired = true, wrong_host = true, unknown_ca = true }

--- Present a bad certificate at STARTTLS: "self_signed", "expired", "wrong_host", "unknown_ca".
function smtp.certificate(kind)
  check_type(kind, "string", 1, "certificate", 2)
  if not certificate_kinds[kind] then
    fail(2, "bad argument #1 to smtp.certificate (self_signed, expired, wrong_host or unknown_ca expected, got %q)", kind)
  end
  return action { name = "certificate " .. kind, certificate = kind }
end

--- In on_ehlo: leave these keywords out of the EHLO reply (and turn the extensions off), or
--- answer VRFY or HELP with 502 as commands not implemented.
local hideable = { PIPELINING = true, SIZE = true, ["8BITMIME"] = true, SMTPUTF8 = true,
                   ENHANCEDSTATUSCODES = true, CHUNKING = true, DSN = true, STARTTLS = true,
                   AUTH = true, VRFY = true, HELP = true }

function smtp.hide(...)
  local words = { ... }
  for i, w in ipairs(words) do
    check_type(w, "string", i, "hide", 2)
    if not hideable[w:upper()] then
      fail(2, "bad argument #%d to smtp.hide (%q is not an extension or command the server " ..
        "can hide: PIPELINING, SIZE, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES, CHUNKING, DSN, " ..
        "STARTTLS, AUTH, VRFY, HELP; to refuse any other command, reply to it in on_command)", i, w)
    end
  end
  return action { name = "hide " .. table.concat(words, " "), hide = words }
end

--- In on_ehlo: advertise exactly these keywords.
function smtp.extensions(list)
  check_type(list, "table", 1, "extensions", 2)
  for i, w in ipairs(list) do
    if type(w) ~= "string" then
      fail(2, "bad argument #1 to smtp.extensions (keyword %d is a %s, not a string)", i, type(w))
    end
    if w:find("[\r\n%z]") then
      fail(2, "bad argument #1 to smtp.extensions (keyword %d holds a CR, LF or NUL)", i)
    end
  end
  return action { name = "extensions", extensions = list }
end

--- For AUTH: the text of the next 334 challenge, sent as is (use it for empty, huge or bad ones).
function smtp.challenge(text)
  check_type(text, "string", 1, "challenge", 2)
  return action { name = "auth challenge", challenge = text }
end

-- Chaining: smtp.reply(421, "4.3.0", "bye"):close(), smtp.reply(250):delay(2):trickle(1, 0.1)
local function check_self(self, method, level)
  if getmetatable(self) ~= Action then
    fail(level + 1, "%s is a method of an action: write smtp.reply(...):%s(...), with a colon",
      method, method)
  end
end

-- smtp.close(), smtp.hang(), smtp.reset() and smtp.lose() send no reply: :close() and :reset()
-- there would bring the normal reply back, and :trickle() and :split() would pace nothing.
local function ends_without_reply(self)
  local e = self.ending
  return (e == "close" or e == "hang" or e == "reset" or e == "lose") and self.code == nil
    and self.raw == nil and self.malformed == nil and self.each_recipient == nil
end
local function check_no_ending(self, method, level)
  if ends_without_reply(self) then
    fail(level + 1, "action:%s() on %s, which already ends the connection without a reply:"
      .. " return it alone, or chain :%s() onto a reply, e.g. smtp.reply(421, \"4.3.2\", \"bye\"):%s()",
      method, self.name, method, method)
  end
end
local function check_sends_a_reply(self, method, level)
  if ends_without_reply(self) then
    fail(level + 1, "action:%s() on %s, which sends no reply to pace", method, self.name)
  end
end

-- A method returns a new action and leaves the one it was called on as it was: an action kept
-- in a variable (local REJECT = smtp.reply(550)) and varied in one hook (REJECT:delay(1)) must
-- not change for every later use, in every session.
local function varied(self, changes)
  local copy = {}
  for k, v in rawnext, self do copy[k] = v end
  for k, v in rawnext, changes do copy[k] = v end
  return setmetatable(copy, Action)
end

function Action:delay(seconds)
  check_self(self, "delay", 2)
  check_seconds(seconds, 1, "action:delay", 2)
  -- Fields are not named like the methods: a.delay would hide the method, and a second
  -- :delay() would call a number.
  return varied(self, { delay_seconds = seconds })
end
function Action:trickle(bytes, every)
  check_self(self, "trickle", 2)
  check_sends_a_reply(self, "trickle", 2)
  check_type(bytes, "number", 1, "action:trickle", 2)
  if not (bytes >= 1) or bytes == math.huge then
    fail(2, "bad argument #1 to action:trickle (at least 1 octet at a time)")
  end
  check_seconds(every, 2, "action:trickle", 2)
  return varied(self, { trickle_bytes = math.floor(bytes), trickle_every = every })
end
function Action:split(...)
  check_self(self, "split", 2)
  check_sends_a_reply(self, "split", 2)
  return varied(self, { split_at = split_offsets("action:split", 2, ...) })
end
function Action:close()
  check_self(self, "close", 2)
  check_no_ending(self, "close", 2)
  return varied(self, { ending = "close_after" })
end
function Action:reset()
  check_self(self, "reset", 2)
  check_no_ending(self, "reset", 2)
  return varied(self, { ending = "reset" })
end

-- For lua/smtp_helpers.lua, which checks its arguments the same way. Names with an underscore
-- are the library's own: they get no typo hints and no wrapping by the host.
smtp._fail = fail
smtp._check_type = check_type
smtp._action_metatable = Action
