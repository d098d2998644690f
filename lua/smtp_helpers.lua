-- The pure-Lua half of the scenario API, second part (after lua/smtp.lua): the helpers, expect{}
-- and the typo checks, which come last because they list every name the two parts define.

local smtp = smtp
-- The library's own references, as in lua/smtp.lua.
local type, pairs, ipairs, tostring, error = type, pairs, ipairs, tostring, error
local setmetatable = setmetatable
local string, table, math = string, table, math
local fail, check_type = smtp._fail, smtp._check_type

-- Helpers ------------------------------------------------------------------------------------

--- A number from the scenario's params table: `default` when not given; a value that is no
--- number from `min` (0 by default) to `max` (a whole one with `whole`) is the scenario's
--- error, at load. A whole number is at most 2^53 in any case: past it, it is no longer exact.
function smtp.param_number(name, default, min, whole, max)
  check_type(name, "string", 1, "param_number", 2)
  local given = type(params) == "table" and params[name] or nil
  if given == nil then return default end
  local n = tonumber(given)
  min = min or 0
  local limit = max or (whole and 2^53 or math.huge)
  if not n or n ~= n or n == math.huge or n < min or n > limit or (whole and n ~= math.floor(n)) then
    local range = max and ("from " .. tostring(math.tointeger(min) or min) .. " to "
      .. tostring(math.tointeger(max) or max)) or (tostring(min) .. " or more")
    local exact = not max and n and n > limit and " (a whole number is at most 2^53)" or ""
    fail(2, "params.%s must be a%s number, %s, not %q%s", name, whole and " whole" or "", range,
      tostring(given), exact)
  end
  -- "2e3" and "2000.0" are whole, but floats: SIZE 2000.0 is no SIZE line.
  return whole and math.tointeger(n) or n
end

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
  check_type(verb, "string", 2, "seen", 2)
  verb = verb:upper()  -- exchanges carry verbs upper-case, however they were sent
  for _, s in ipairs(run.sessions or {}) do
    for _, x in ipairs(s.exchanges) do
      if x.verb == verb and (code == nil or x.code == code) then return true end
    end
  end
  return false
end

--- For custom checks: the first message whose text the server refused after its data (a 4xx or
--- 5xx to the final dot), as its exchange and its session's id; nil when none was. A message
--- refused there (a line too long) was sent whole: what stopped it is that reply.
function smtp.refused_message(run)
  check_type(run, "table", 1, "refused_message", 2)
  for _, s in ipairs(run.sessions or {}) do
    for _, x in ipairs(s.exchanges) do
      if x.command == "<end of data>" and x.code >= 400 then return x, s.id end
    end
  end
  return nil
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

-- The addresses in a delivered message's To: and Cc: fields that the client never asked for
-- with RCPT on any connection, in the order they appear, where the last RCPT before that
-- message's data was refused: a client that stopped naming recipients at a refusal leaves these
-- (Perl's Net::SMTP to() without SkipBad does). A message may rightly go to fewer addresses than
-- its fields name; one whose recipients did not end at a refusal is not looked at.
function smtp.unasked(run)
  check_type(run, "table", 1, "unasked", 2)
  local asked, stopped = {}, {}
  for _, s in ipairs(run.sessions or {}) do
    local last_rcpt_code
    for _, x in ipairs(s.exchanges) do
      local address = x.verb == "RCPT" and x.command:match("<([^>]*)>")
      if address then
        asked[address:lower()] = true
        last_rcpt_code = x.code
      elseif x.verb == "MAIL" then
        last_rcpt_code = nil
      elseif (x.verb == "DATA" or x.verb == "BDAT") and last_rcpt_code and last_rcpt_code >= 500 then
        stopped[s.id] = true
      end
    end
  end
  local left, seen = {}, {}
  for _, m in ipairs(run.messages or {}) do
    for _, field in ipairs(stopped[m.session] and { "to", "cc" } or {}) do
      -- An address is what stands between angle brackets, or a bare one between separators.
      for address in ((m.headers or {})[field] or ""):gmatch("[^%s<>,;:\"]+@[^%s<>,;:\"]+") do
        local key = address:lower()
        if not asked[key] and not seen[key] then
          seen[key] = true
          left[#left + 1] = address
        end
      end
    end
  end
  return left
end

-- What a message is known by: its Message-ID, else its recipients and body.
local function message_key(m)
  -- The header section, unfolded; a huge message is not read past its first 64 KB.
  local text = m.data:sub(1, 65536)
  local head_end = text:find("\r\n\r\n", 1, true)
  local head = ("\r\n" .. (head_end and text:sub(1, head_end + 1) or text) .. "\r\n"):gsub("\r\n[ \t]+", " ")
  local id = head:match("\r\n[Mm][Ee][Ss][Ss][Aa][Gg][Ee]%-[Ii][Dd][ \t]*:[ \t]*([^\r\n]-)[ \t]*\r\n")
  if id and id ~= "" then return "id " .. id, id end
  local recipients = {}
  for i, r in ipairs(m.recipients) do recipients[i] = r:lower() end
  table.sort(recipients)
  -- No header section ends: all of it is the text to compare.
  return "body " .. table.concat(recipients, ",") .. "\n" .. (head_end and text:sub(head_end + 4) or text), nil
end

--- For custom checks: how many different messages were accepted, and those some recipient got
--- more than once. A message is known by its Message-ID field (RFC 5322 3.6.4: a retransmission
--- keeps it), else by its recipients and body, so that a pooled sender's second message is not
--- taken for a repeat of its first. The same message sent again to other recipients (those a
--- 4xx put off, RFC 5321 4.5.3.1.10) is no repeat. Returns the count and a list of
--- {id = Message-ID or nil, times = n, recipient = the one who got it n times,
--- sessions = {ids}, said = that in words} in order of first acceptance.
function smtp.message_counts(run)
  check_type(run, "table", 1, "message_counts", 2)
  local by_key, order = {}, {}
  for _, m in ipairs(run.messages or {}) do
    local key, id = message_key(m)
    local entry = by_key[key]
    if not entry then
      entry = { id = id, got = {}, recipients = {} }
      by_key[key] = entry
      order[#order + 1] = entry
    end
    -- The sessions that delivered it to each recipient, recipients in order of first delivery.
    for _, r in ipairs(m.recipients) do
      local address = r:lower()
      local sessions = entry.got[address]
      if not sessions then
        sessions = {}
        entry.got[address] = sessions
        entry.recipients[#entry.recipients + 1] = r
      end
      sessions[#sessions + 1] = m.session
    end
  end
  local repeats = {}
  for _, entry in ipairs(order) do
    local most, whom
    for _, r in ipairs(entry.recipients) do
      local sessions = entry.got[r:lower()]
      if #sessions > 1 and (not most or #sessions > #most) then most, whom = sessions, r end
    end
    if most then
      repeats[#repeats + 1] = {
        id = entry.id, times = #most, recipient = whom, sessions = most,
        said = (entry.id and ("the one with Message-ID " .. entry.id) or "one (the same recipients and body)")
          .. " was delivered " .. #most .. " times to " .. whom .. " (sessions " .. table.concat(most, ", ") .. ")",
      }
    end
  end
  return #order, repeats
end

-- Expectations are recorded now and evaluated when a test run ends (smtpfault test).
smtp._expectations = {}
local expectation_types = {
  delivered = "number or table", quit = "boolean", starttls_before_auth = "boolean",
  no_plaintext_auth = "boolean", no_plaintext_after_tls_failure = "boolean",
  retried_after_4xx = "boolean", retry_delay = "number or table", no_retry_after_5xx = "boolean",
  dot_stuffing = "boolean", line_length = "boolean", line_endings = "boolean",
  pipelining = "boolean",
  exit = "string or number or table", runs = "number", run_gap = "number", check = "function",
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

-- A mistake in the value of expect's key k, said on the line that sets it: the call's own line
-- is where its table begins, maybe many lines above.
local function fail_key(k, level, fmt, ...)
  local place = type(k) == "string" and smtp._key_place(k)
  if place then error(place .. " " .. string.format(fmt, ...), 0) end
  fail(level + 1, fmt, ...)
end

local function check_range(k, v, whole)
  local what = whole and "a whole number of messages, 0 or more," or "a number of seconds, 0 or more,"
  local function fits(n) return type(n) == "number" and n >= 0 and (not whole or n == math.floor(n)) end
  local form = " or {min = a, max = b} of such numbers"
  if type(v) ~= "table" then
    if not fits(v) then fail_key(k, 3, "expect: %s must be %s%s, not %s", k, what, form, shown_value(v)) end
    return
  end
  for bound in pairs(v) do
    if type(bound) ~= "string" then
      fail_key(k, 3, "expect: %s = {...} takes min and max by name, not a list ({min = 1, max = 2})", k)
    end
    if bound ~= "min" and bound ~= "max" then
      local hint = smtp._suggest(bound, { "min", "max" })
      fail_key(k, 3, "expect: %s = {...} takes min and max, not '%s'%s", k, bound,
        hint and (" (did you mean '" .. hint .. "'?)") or "")
    end
  end
  if v.min == nil and v.max == nil then fail_key(k, 3, "expect: %s = {} needs min, max or both", k) end
  for _, bound in ipairs({ "min", "max" }) do
    if v[bound] ~= nil and not fits(v[bound]) then
      fail_key(k, 3, "expect: %s must be %s%s; %s is %s", k, what, form, bound, shown_value(v[bound]))
    end
  end
  if v.min and v.max and v.min > v.max then
    fail_key(k, 3, "expect: %s = {min = %s, max = %s} can never hold: min is above max", k,
      tostring(v.min), tostring(v.max))
  end
end

-- One exit status: "success", "failure" or a byte (said at the level of expect's caller).
local function check_one_exit(v, shown)
  if type(v) == "string" and v ~= "success" and v ~= "failure" then
    fail_key("exit", 4, "expect: %s must be \"success\", \"failure\" or a number, not %q",
      shown, v)
  end
  -- An exit status is a byte: 256 could never be met.
  if type(v) == "number" and not (v >= 0 and v <= 255 and v == math.floor(v)) then
    fail_key("exit", 4, "expect: %s must be a whole number from 0 to 255 (an exit status),"
      .. " not %s", shown, tostring(v))
  end
end

-- The value of key k as the blocks so far and t leave it: a key given twice keeps its later one.
local function in_effect(t, k)
  local v = t[k]
  for i = #smtp._expectations, 1, -1 do
    if v ~= nil then break end
    v = smtp._expectations[i][k]
  end
  return v
end

-- exit: one status for every run, or a list of one per run (runs = n).
local function check_exit(v)
  if type(v) ~= "table" then return check_one_exit(v, "exit") end
  if #v == 0 then
    fail_key("exit", 3, "expect: exit as a list needs one status per run, as in"
      .. " exit = { \"failure\", \"success\" }")
  end
  for i, x in ipairs(v) do
    if type(x) ~= "string" and type(x) ~= "number" then
      fail_key("exit", 3, "expect: exit[%d] must be a string or number, not a %s", i, type(x))
    end
    check_one_exit(x, "exit[" .. i .. "]")
  end
end

-- A list of exit statuses has one per run, whichever of exit and runs this block sets.
local function check_exit_per_run(t)
  local exit, runs = in_effect(t, "exit"), in_effect(t, "runs") or 1
  if type(exit) ~= "table" or #exit == runs then return end
  if t.exit ~= nil then
    fail_key("exit", 3, "expect: exit lists %d statuses, one per run, but runs = %d", #exit, runs)
  end
  fail_key("runs", 3, "expect: runs = %d, but exit lists %d statuses (one per run)", runs, #exit)
end

function expect(t)
  if smtp._hook_running() then
    fail(2, "expect: call it at the top of the scenario, not in a hook: the expectations are "
      .. "read once, when the scenario has loaded")
  end
  if type(t) ~= "table" then
    fail(2, "bad argument #1 to expect (table expected, got %s): expect { delivered = 1, ... }", type(t))
  end
  -- In a fixed order, so that a table with two mistakes reports the same one every time.
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    local v, want = t[k], expectation_types[k]
    if not want then
      local hint = smtp._suggest(tostring(k), expectation_names)
      fail_key(k, 2, "expect: unknown expectation '%s'%s", tostring(k),
        hint and (" (did you mean '" .. hint .. "'?)") or (" (known: " .. table.concat(expectation_names, ", ") .. ")"))
    end
    if not want:find(type(v), 1, true) then
      fail_key(k, 2, "expect: '%s' must be a %s, not a %s", k, want, type(v))
    end
    if k == "exit" then check_exit(v) end
    if k == "delivered" or k == "retry_delay" then check_range(k, v, k == "delivered") end
    -- Bounded as every count and wait a scenario asks for: 1000 runs of a mailer is already a
    -- load test, and a gap is a wait (a day at most).
    if k == "runs" and not (v >= 1 and v <= 1000 and v == math.floor(v)) then
      fail_key(k, 2, "expect: runs must be a whole number from 1 to 1000, not %s", tostring(v))
    end
    if k == "run_gap" and not (v >= 0 and v <= 86400) then
      fail_key(k, 2, "expect: run_gap must be a number of seconds from 0 to 86400, not %s",
        tostring(v))
    end
  end
  check_exit_per_run(t)
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

-- Protected: the host calls this __index at load to name a misspelt smtp.x, outside any limit
-- a scenario's own code runs under.
setmetatable(smtp, {
  __metatable = "the smtp library's own (protected)",
  __index = function(_, name)
    -- One of the library's own, gone: the scenario assigned over it (smtp.reply = nil).
    for _, known in ipairs(api_names) do
      if known == name then
        fail(2, "smtp.%s is nil: the scenario assigned it (smtp.%s = ...); the library's "
          .. "functions are not to be replaced", name, name)
      end
    end
    local hint = smtp._suggest(tostring(name), hint_names)
    hint = synonyms[hint] or hint
    fail(2, "smtp.%s does not exist%s", tostring(name), hint and (" (did you mean smtp." .. hint .. "?)") or "")
  end,
})
