-- AUTH for the client API: PLAIN, LOGIN, CRAM-MD5 and XOAUTH2, each as its exchange of
-- challenges. lua/client.lua runs first and hands over what the two share (host._*); errors
-- name the script's line, as there.

local host = client
local type, tostring = type, tostring
local Conn, fail, judge, waiting = host._Conn, host._fail, host._judge, host._waiting
local shown, conn_of, opts_table = host._shown, host._conn_of, host._opts_table
local check_want = host._check_want

local function b64(s) return host._base64_encode(s) end

local auth_steps = {}

-- The answer to one step of a challenge exchange. A 334 goes on (done false). Anything else
-- (a 504 for a mechanism not offered, a 454, a 538) or nothing within the call's timeout ends
-- the exchange, and is its outcome: judged by the call's expect and name (done true).
local function challenge_or_outcome(self, o)
  local r, err = self:reply({ timeout = o.timeout })
  if r and r.code == 334 then
    r, err = judge(self, 334, r, err, { timeout = o.timeout })
    return r, err, false
  end
  r, err = judge(self, o.expect or 235, r, err, waiting(o))
  return r, err, true
end

function auth_steps.PLAIN(self, user, password, o)
  local token = b64((o.authzid or "") .. "\0" .. user .. "\0" .. password)
  self:send("AUTH PLAIN " .. token, { label = "AUTH PLAIN ****" })
  return self:expect(o.expect or 235, waiting(o))
end

function auth_steps.LOGIN(self, user, password, o)
  self:send("AUTH LOGIN")
  local r, err, done = challenge_or_outcome(self, o)
  if done then return r, err end
  self:send(b64(user))
  r, err, done = challenge_or_outcome(self, o)
  if done then return r, err end
  self:send(b64(password), { label = "****" })
  return self:expect(o.expect or 235, waiting(o))
end

auth_steps["CRAM-MD5"] = function(self, user, password, o)
  self:send("AUTH CRAM-MD5")
  local r, err, done = challenge_or_outcome(self, o)
  if done then return r, err end
  local challenge = host._base64_decode(r.lines[1] or "")
  if not challenge then
    host._step(false, "CRAM-MD5 challenge is base64", "got '" .. shown(r.lines[1] or "") .. "'",
      self.id)
    self:send("*")
    return self:expect(501, { timeout = o.timeout })
  end
  self:send(b64(user .. " " .. host._cram_md5(password, challenge)), { label = "****" })
  return self:expect(o.expect or 235, waiting(o))
end

function auth_steps.XOAUTH2(self, user, token, o)
  local blob = b64("user=" .. user .. "\1auth=Bearer " .. token .. "\1\1")
  self:send("AUTH XOAUTH2 " .. blob, { label = "AUTH XOAUTH2 ****" })
  local r, err = self:reply({ timeout = o.timeout })
  if r and r.code == 334 then
    -- A refused token: the error comes as a JSON challenge first (RFC 7628, Gmail), and the
    -- result after an empty answer.
    self:send("", { label = "(empty answer to the error challenge)" })
    self.queue[#self.queue] = "'AUTH XOAUTH2 ****' (after its error challenge)"
    r, err = self:reply({ timeout = o.timeout })
  end
  return judge(self, o.expect or 235, r, err, waiting(o))
end

function Conn:auth(mechanism, user, password, o)
  conn_of(self, "auth")
  o = opts_table(o, "auth")
  local steps = auth_steps[tostring(mechanism):upper()]
  if not steps then
    fail("auth: unknown mechanism '%s' (PLAIN, LOGIN, CRAM-MD5, XOAUTH2)", tostring(mechanism))
  end
  if type(user) ~= "string" or type(password) ~= "string" then
    fail("auth: user and password must be strings")
  end
  if o.expect ~= nil then check_want(o.expect, "auth") end  -- before the credentials go out
  -- Only PLAIN carries an authorization identity; elsewhere it would be dropped without a word.
  if o.authzid ~= nil and steps ~= auth_steps.PLAIN then
    fail("auth: authzid is for PLAIN only, not %s", tostring(mechanism):upper())
  end
  return steps(self, user, password, o)
end
