-- The pure-Lua half of the scenario API. The host defines the `smtp` table with its C functions
-- (sleep, now, random, chance, log, ip_in) before this file runs; this file adds the fault
-- actions, the helpers and the typo checks. Actions are plain tables with the `smtp.action`
-- metatable; the host reads their fields when a hook returns one.

local smtp = smtp
-- The library's own references: a scenario may use these names for globals of its own
-- (`type = "greylist"`) without breaking every helper.
local type, error, pairs, ipairs, tostring = type, error, pairs, ipairs, tostring
local setmetatable, getmetatable = setmetatable, getmetatable
local string, table, math = string, table, math
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
  if value < 0 or value ~= value then
    fail(level + 1, "bad argument #%d to smtp.%s (seconds must be >= 0)", argn, fname)
  end
  if value == math.huge then
    fail(level + 1, "bad argument #%d to smtp.%s (seconds must be finite; smtp.hang() never answers)",
      argn, fname)
  end
end

local function action(fields)
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
  if type(text) == "table" then
    lines = {}
    for i, l in ipairs(text) do
      check_type(l, "string", 3, fname, level + 1)
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
  return action { name = "accept then lose", ending = "close" }
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
  local function is_opts(v) return type(v) == "table" and v.close ~= nil and v[1] == nil end
  if opts == nil and is_opts(text) then text, opts = nil, text end
  if opts == nil and text == nil and is_opts(enhanced_or_text) then
    enhanced_or_text, opts = nil, enhanced_or_text
  end
  local f = reply_fields("unsolicited", 2, code or 421, enhanced_or_text, text)
  f.after = after
  f.close = not (type(opts) == "table" and opts.close == false)
  return action { name = "unsolicited " .. f.code, unsolicited = f }
end

local starttls_modes = { close_after_220 = true, abort_handshake = true, inject = true }

--- STARTTLS faults: "close_after_220", "abort_handshake" or "inject" (with opts.data).
function smtp.starttls(mode, opts)
  check_type(mode, "string", 1, "starttls", 2)
  if not starttls_modes[mode] then
    fail(2, "bad argument #1 to smtp.starttls (close_after_220, abort_handshake or inject expected, got %q)", mode)
  end
  local a = action { name = "starttls " .. mode, starttls = mode }
  if mode == "inject" then
    local data = type(opts) == "table" and opts.data or "250 2.0.0 injected\r\n"
    check_type(data, "string", 2, "starttls", 2)
    a.inject = data
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

--- In on_ehlo: leave these keywords out of the EHLO reply (and turn the extensions off).
local hideable = { PIPELINING = true, SIZE = true, ["8BITMIME"] = true, SMTPUTF8 = true,
                   ENHANCEDSTATUSCODES = true, CHUNKING = true, DSN = true, STARTTLS = true,
                   AUTH = true }

function smtp.hide(...)
  local words = { ... }
  for i, w in ipairs(words) do
    check_type(w, "string", i, "hide", 2)
    if not hideable[w:upper()] then
      fail(2, "bad argument #%d to smtp.hide (%q is not an extension the server advertises: " ..
        "PIPELINING, SIZE, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES, CHUNKING, DSN, STARTTLS, " ..
        "AUTH; to refuse a command such as VRFY, reply to it in on_command)", i, w)
    end
  end
  return action { name = "hide " .. table.concat(words, " "), hide = words }
end

--- In on_ehlo: advertise exactly these keywords.
function smtp.extensions(list)
  check_type(list, "table", 1, "extensions", 2)
  for i, w in ipairs(list) do
    check_type(w, "string", i, "extensions", 2)
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

function Action:delay(seconds)
  check_self(self, "delay", 2)
  check_seconds(seconds, 1, "action:delay", 2)
  -- Fields are not named like the methods: a.delay would hide the method, and a second
  -- :delay() would call a number.
  self.delay_seconds = seconds
  return self
end
function Action:trickle(bytes, every)
  check_self(self, "trickle", 2)
  check_type(bytes, "number", 1, "action:trickle", 2)
  if not (bytes >= 1) or bytes == math.huge then
    fail(2, "bad argument #1 to action:trickle (at least 1 octet at a time)")
  end
  check_seconds(every, 2, "action:trickle", 2)
  self.trickle_bytes, self.trickle_every = math.floor(bytes), every
  return self
end
function Action:split(...)
  check_self(self, "split", 2)
  self.split_at = split_offsets("action:split", 2, ...)
  return self
end
function Action:close()
  check_self(self, "close", 2)
  self.ending = "close_after"
  return self
end
function Action:reset()
  check_self(self, "reset", 2)
  self.ending = "reset"
  return self
end

-- Helpers ------------------------------------------------------------------------------------

local counters = {}

--- Adds one to a scenario-wide counter and returns the new value.
function smtp.count(key)
  key = key == nil and "" or tostring(key)
  local n = (counters[key] or 0) + 1
  counters[key] = n
  return n
end

--- True exactly on the n-th call with this key (scenario-wide).
local function check_count(n, fname)
  check_type(n, "number", 1, fname, 3)
  if n < 1 or n ~= math.floor(n) then
    fail(3, "bad argument #1 to smtp.%s (a whole number from 1 expected, got %s)", fname, tostring(n))
  end
end

function smtp.nth(n, key)
  check_count(n, "nth")
  return smtp.count("nth:" .. tostring(key or "")) == n
end

--- True on the first call with this key only.
function smtp.once(key)
  return smtp.count("once:" .. tostring(key or "")) == 1
end

--- True on every n-th call with this key.
function smtp.every(n, key)
  check_count(n, "every")
  return smtp.count("every:" .. tostring(key or "")) % n == 0
end

--- The domain of an address, lower-cased ("" when there is none).
-- "<a@b.example>" as the path appears in a command line: the address inside the brackets.
local function unbracketed(address)
  return address:match("^%s*<(.*)>%s*$") or address
end

function smtp.domain(address)
  check_type(address, "string", 1, "domain", 2)
  local d = unbracketed(address):match("@([^@]*)$")
  return d and d:lower() or ""
end

--- The local part of an address.
function smtp.local_part(address)
  check_type(address, "string", 1, "local_part", 2)
  address = unbracketed(address)
  return address:match("^(.*)@[^@]*$") or address
end

--- True when the address (or domain) is one of the domains or a subdomain of one.
function smtp.domain_in(address_or_domain, domains)
  check_type(address_or_domain, "string", 1, "domain_in", 2)
  if type(domains) == "string" then domains = { domains } end
  check_type(domains, "table", 2, "domain_in", 2)
  local d = address_or_domain:find("@", 1, true) and smtp.domain(address_or_domain) or address_or_domain:lower()
  for _, want in ipairs(domains) do
    want = want:lower()
    if d == want or d:sub(-(#want + 1)) == "." .. want then return true end
  end
  return false
end

--- Glob match on an address: "*" matches any run, "?" one character (UTF-8 included);
--- ASCII letters case-insensitive. The same glob as the API's filters and rules.
function smtp.matches(address, pattern)
  check_type(address, "string", 1, "matches", 2)
  check_type(pattern, "string", 2, "matches", 2)
  return smtp._glob_match(address, pattern)
end

--- For custom checks: true when the client sent `verb` and got `code` back at least once. A
--- scenario whose fault hits, say, the 2nd recipient only tests a mailer that sent two.
function smtp.seen(run, verb, code)
  check_type(run, "table", 1, "seen", 2)
  for _, s in ipairs(run.sessions or {}) do
    for _, x in ipairs(s.exchanges) do
      if x.verb == verb and (code == nil or x.code == code) then return true end
    end
  end
  return false
end

--- For custom checks: the recipients the client asked for (RCPT) that no delivered message has
--- and that were never refused with a 5xx, in the order first asked. A careful mailer retries a
--- recipient refused with a 4xx and sends the message to every recipient that was accepted.
function smtp.undelivered(run)
  check_type(run, "table", 1, "undelivered", 2)
  local delivered, refused, asked, order = {}, {}, {}, {}
  for _, m in ipairs(run.messages or {}) do
    for _, r in ipairs(m.recipients) do delivered[r:lower()] = true end
  end
  for _, s in ipairs(run.sessions or {}) do
    for _, x in ipairs(s.exchanges) do
      -- Refused to RCPT, or over LMTP to the data for this recipient alone.
      local address = (x.verb == "RCPT" and x.command:match("<([^>]*)>")) or x.recipient
      if address then
        local key = address:lower()
        if x.code and x.code >= 500 then refused[key] = true end
        if not asked[key] then
          asked[key] = true
          order[#order + 1] = address
        end
      end
    end
  end
  local left = {}
  for _, address in ipairs(order) do
    local key = address:lower()
    if not delivered[key] and not refused[key] then left[#left + 1] = address end
  end
  return left
end

-- Expectations are recorded now and evaluated when a test run ends (smtpfault test).
smtp._expectations = {}
local expectation_types = {
  delivered = "number or table", quit = "boolean", starttls_before_auth = "boolean",
  no_plaintext_auth = "boolean", no_plaintext_after_tls_failure = "boolean",
  retried_after_4xx = "boolean", retry_delay = "number or table", no_retry_after_5xx = "boolean",
  dot_stuffing = "boolean", line_length = "boolean", pipelining = "boolean",
  exit = "string or number", runs = "number", run_gap = "number", check = "function",
}
local expectation_names = {}
for k in pairs(expectation_types) do table.insert(expectation_names, k) end
table.sort(expectation_names)

-- delivered and retry_delay: a number, or {min = a, max = b} with at least one of them, each a
-- number 0 or more (whole for a count of messages), min not above max.
-- A value as a script wrote it: "1" quoted (a string, not the number), NaN as nan.
local function shown_value(x)
  if type(x) == "string" then return string.format("%q", x) end
  if x ~= x then return "nan" end
  return tostring(x)
end

local function check_range(k, v, whole)
  local what = whole and "a whole number of messages, 0 or more," or "a number of seconds, 0 or more,"
  local function fits(n) return type(n) == "number" and n >= 0 and (not whole or n == math.floor(n)) end
  local form = " or {min = a, max = b} of such numbers"
  if type(v) ~= "table" then
    if not fits(v) then fail(3, "expect: %s must be %s%s, not %s", k, what, form, shown_value(v)) end
    return
  end
  for bound in pairs(v) do
    if type(bound) ~= "string" then
      fail(3, "expect: %s = {...} takes min and max by name, not a list ({min = 1, max = 2})", k)
    end
    if bound ~= "min" and bound ~= "max" then
      local hint = smtp._suggest(bound, { "min", "max" })
      fail(3, "expect: %s = {...} takes min and max, not '%s'%s", k, bound,
        hint and (" (did you mean '" .. hint .. "'?)") or "")
    end
  end
  if v.min == nil and v.max == nil then fail(3, "expect: %s = {} needs min, max or both", k) end
  for _, bound in ipairs({ "min", "max" }) do
    if v[bound] ~= nil and not fits(v[bound]) then
      fail(3, "expect: %s must be %s%s; %s is %s", k, what, form, bound, shown_value(v[bound]))
    end
  end
  if v.min and v.max and v.min > v.max then
    fail(3, "expect: %s = {min = %s, max = %s} can never hold: min is above max", k,
      tostring(v.min), tostring(v.max))
  end
end

function expect(t)
  if smtp._hook_running() then
    fail(2, "expect: call it at the top of the scenario, not in a hook: the expectations are "
      .. "read once, when the scenario has loaded")
  end
  check_type(t, "table", 1, "expect", 2)
  -- In a fixed order, so that a table with two mistakes reports the same one every time.
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    local v, want = t[k], expectation_types[k]
    if not want then
      local hint = smtp._suggest(tostring(k), expectation_names)
      fail(2, "expect: unknown expectation '%s'%s", tostring(k),
        hint and (" (did you mean '" .. hint .. "'?)") or (" (known: " .. table.concat(expectation_names, ", ") .. ")"))
    end
    if not want:find(type(v), 1, true) then
      fail(2, "expect: '%s' must be a %s, not a %s", k, want, type(v))
    end
    if k == "exit" and type(v) == "string" and v ~= "success" and v ~= "failure" then
      fail(2, "expect: exit must be \"success\", \"failure\" or a number, not %q", v)
    end
    if k == "delivered" or k == "retry_delay" then check_range(k, v, k == "delivered") end
    if k == "runs" and not (v >= 1 and v == math.floor(v)) then
      fail(2, "expect: runs must be a whole number, at least 1, not %s", tostring(v))
    end
    if k == "run_gap" and not (v >= 0) then
      fail(2, "expect: run_gap must be a number of seconds, 0 or more, not %s", tostring(v))
    end
  end
  -- retry_delay times the retry that retried_after_4xx looks for; alone it checks nothing.
  if t.retry_delay ~= nil and t.retried_after_4xx ~= true then
    local earlier = false
    for _, e in ipairs(smtp._expectations) do earlier = earlier or e.retried_after_4xx == true end
    if not earlier then
      fail(2, "expect: retry_delay is checked only with retried_after_4xx = true; add it")
    end
  end
  table.insert(smtp._expectations, t)
end

-- Typo checks: a misspelt API name fails with a hint instead of "attempt to call a nil value".
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

function smtp._suggest(name, candidates)
  local best, best_d = nil, 4
  for _, c in ipairs(candidates) do
    local d = distance(name, c)
    if d < best_d then best, best_d = c, d end
  end
  return best
end

-- Words people reach for that the API spells differently ("smtp.reject" -> smtp.reply).
local synonyms = {
  reject = "reply", refuse = "reply", deny = "reply", respond = "reply", answer = "reply",
  wait = "sleep", pause = "sleep", disconnect = "close", abort = "reset", rst = "reset",
  random_chance = "chance", probability = "chance", stall = "hang", freeze = "hang",
}
local api_names = {}
for k in pairs(smtp) do
  if type(k) == "string" and k:sub(1, 1) ~= "_" then table.insert(api_names, k) end
end
table.sort(api_names)
local hint_names = {}
for _, k in ipairs(api_names) do table.insert(hint_names, k) end
for k in pairs(synonyms) do table.insert(hint_names, k) end
table.sort(hint_names)

setmetatable(smtp, {
  __index = function(_, name)
    local hint = smtp._suggest(tostring(name), hint_names)
    hint = synonyms[hint] or hint
    fail(2, "smtp.%s does not exist%s", tostring(name), hint and (" (did you mean smtp." .. hint .. "?)") or "")
  end,
})

smtp._action_metatable = Action
