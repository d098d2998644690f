-- The client API's global functions besides connect() and connection() (lua/client.lua, which
-- runs first): verdicts and reports, sleep and now, base64, and the conversation-style globals
-- that act on the most recent connection. Errors are raised without a position, as there.

local host = client
local type, tostring, pairs, ipairs = type, tostring, pairs, ipairs
local getmetatable = getmetatable
local string, table, math = string, table, math
local fail, check_number = host._fail, host._check_number
local a_day = host._a_day  -- the longest wait, as the library's timeouts
local connection = connection

local op = host._conn_op

-- The id of the most recent connection, 0 before the first.
local function current_id()
  local c = connection()
  return c and c.id or 0
end

-- Verdicts and reports --------------------------------------------------------------------------

-- Nothing to judge (the server does not offer what the script probes): the run ends here as
-- skipped (exit 0, a JUnit <skipped/>), not as a pass that proves nothing.
function skip(reason)
  if type(reason) ~= "string" then fail("skip: give the reason as a string") end
  op { op = "finish", bytes = reason, conn = current_id() }
end

-- A table as it would be written in Lua ({250, 354, group = "a"}): array part first, then the
-- other keys sorted; nested tables to a depth of 4, a table met again as "{...}", a table with
-- __tostring as that says; at most 1,000 values in all, so a huge table cannot flood the report.
local function rendered(v, depth, state)
  if type(v) == "string" then
    return depth == 0 and v or (string.format("%q", v):gsub("\\\n", "\\n"))
  end
  local mt = type(v) == "table" and getmetatable(v)
  if type(v) ~= "table" or (type(mt) == "table" and mt.__tostring) then return tostring(v) end
  if state.seen[v] or depth >= 4 then return "{...}" end
  state.seen[v] = true
  local parts, n = {}, #v
  local function add(text)
    state.values = state.values + 1
    if state.values > 1000 then return false end
    parts[#parts + 1] = text
    return true
  end
  local complete = true
  for i = 1, n do
    if not add(rendered(v[i], depth + 1, state)) then complete = false break end
  end
  local keys = {}
  for k in pairs(v) do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    if not complete then break end
    local name = (type(k) == "string" and k:match("^[%a_][%w_]*$")) and k
      or ("[" .. rendered(k, depth + 1, state) .. "]")
    complete = add(name .. " = " .. rendered(v[k], depth + 1, state))
  end
  if not complete then parts[#parts + 1] = "..." end
  state.seen[v] = nil
  return "{" .. table.concat(parts, ", ") .. "}"
end

-- A table as detail is written as report() writes one, not as an address that differs per run.
function check(cond, message, detail)
  if type(detail) == "table" then
    detail = rendered(detail, 0, { seen = {}, values = 0 })
  end
  host._step(cond and true or false, tostring(message or "check"),
    detail ~= nil and tostring(detail) or (cond and "" or "did not hold"),
    current_id())
  return cond
end

function report(key, value)
  if type(key) ~= "string" then fail("report: key must be a string") end
  host._report(key, value,
    type(value) == "table" and rendered(value, 0, { seen = {}, values = 0 }) or nil)
end

function sleep(seconds)
  check_number(seconds, "sleep: seconds", 0, a_day)
  op { op = "sleep", timeout = seconds }
end

-- Seconds on a monotonic clock (differences only).
function now()
  return host._now()
end

base64_encode = function(s) return host._base64_encode(s) end
base64_decode = function(s) return host._base64_decode(s) end

-- The conversation-style globals act on the most recent connection.
for _, name in ipairs { "reply", "expect", "send", "raw", "pipeline", "slow", "tls_handshake",
  "starttls", "ehlo", "auth", "data", "bdat", "quit", "half_close", "reset", "close",
  "wait_closed", "expect_closed", "greeting", "send_or_skip" } do
  _G[name] = function(...)
    local c = connection()
    if not c then fail("%s: no connection yet; call connect() first", name) end
    return c[name](c, ...)
  end
end
