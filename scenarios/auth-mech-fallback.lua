-- auth-mech-fallback: advertises CRAM-MD5, PLAIN and LOGIN; the first of them a client tries is refused (504 or 534), any other works.
--
-- What it does: advertises "AUTH CRAM-MD5 PLAIN LOGIN" but, as a server whose policy for this
-- account allows every mechanism but the one the client prefers, refuses the first of the
-- three a client tries (on any connection): CRAM-MD5 with "504 5.5.4 Mechanism not available",
-- PLAIN or LOGIN with "534 5.7.9" (the mechanism is weaker than the account's policy permits:
-- RFC 4954 6 says the client SHOULD retry with another). Either other mechanism then succeeds,
-- on the same connection or a new one. So every client that authenticates meets a refusal,
-- whichever it prefers, and one that knows a second of the three can pass (Go's net/smtp has
-- PLAIN and CRAM-MD5). Neither refusal says the credentials are wrong, as a 535 would: after
-- that, trying other mechanisms is allowed, not expected (see auth-535).
-- What it targets: jstedfast/MailKit#761, curl/curl#22832, hkdb/aerion#355,
-- cole/aiosmtplib#172 (the client tried only its preferred mechanism and gave up).
-- What a correct mailer does: after a 504 or 534 on one mechanism, tries the next advertised
-- mechanism it supports, authenticates with it and delivers.

-- The server's own list with the AUTH line replaced (or added): everything else, SMTPUTF8,
-- CHUNKING, DSN and STARTTLS included, stays as configured.
function on_ehlo(s, name)
  local keywords, found = smtp.ehlo_keywords(), false
  for i, line in ipairs(keywords) do
    if line == "AUTH" or line:find("^AUTH ") then
      keywords[i], found = "AUTH CRAM-MD5 PLAIN LOGIN", true
    end
  end
  if not found then table.insert(keywords, "AUTH CRAM-MD5 PLAIN LOGIN") end
  return smtp.extensions(keywords)
end

-- The mechanism refused: the first of the three a client tried, on whichever connection.
local refused_mechanism
local REFUSALS = {
  ["CRAM-MD5"] = smtp.reply(504, "5.5.4", "Mechanism not available"),
  PLAIN = smtp.reply(534, "5.7.9", "Authentication mechanism is too weak for this account"),
  LOGIN = smtp.reply(534, "5.7.9", "Authentication mechanism is too weak for this account"),
}

function on_command(s, cmd)
  if cmd.verb ~= "AUTH" then return end
  local mech = (cmd.argument:match("^(%S+)") or ""):upper()
  -- A mechanism left off the AUTH line above (XOAUTH2) gets 504 from the server itself.
  if not REFUSALS[mech] then return end
  refused_mechanism = refused_mechanism or mech
  if mech == refused_mechanism then return REFUSALS[mech] end
end

-- The advertised mechanisms a client did not try, any of which would have worked.
local function untried(tried)
  local left = {}
  for _, m in ipairs({ "CRAM-MD5", "PLAIN", "LOGIN" }) do
    if not tried[m] then left[#left + 1] = m end
  end
  if #left == 1 then return left[1] .. ", which would have worked" end
  return table.concat(left, " or ") .. (#left == 2 and ", either" or ", any") .. " of which would have worked"
end

expect {
  starttls_before_auth = true,
  delivered = 1,
  exit = "success",
  check = function(run)
    if not smtp.seen(run, "AUTH") then
      return false, "not exercised: the client never sent AUTH; this scenario refuses its first mechanisms"
    end
    -- In the same session or on a new connection after the refusal (sessions come in order
    -- of start).
    local refused, authenticated, tried = false, false, {}
    for _, s in ipairs(run.sessions) do
      for _, x in ipairs(s.exchanges) do
        if x.verb == "AUTH" then
          -- The command that names a mechanism; a line answering a challenge ("****") goes on
          -- with it, and its reply is the mechanism's last.
          local mech = x.command:match("^[Aa][Uu][Tt][Hh]%s+(%S+)")
          if mech then tried[#tried + 1] = { mech = mech:upper(), session = s.id } end
          if #tried > 0 then tried[#tried].code = x.code end
          if x.code == 504 or x.code == 534 then refused = true end
        end
        if x.code == 235 and refused then return true end
        authenticated = authenticated or x.code == 235
      end
    end
    if authenticated and not refused then
      return false, "not exercised: no mechanism the client tried was refused, so falling back was never put to the test"
    end
    local said, mechanisms, distinct = {}, {}, 0
    for j, t in ipairs(tried) do
      said[j] = t.mech .. " (" .. tostring(t.code) .. ", session " .. t.session .. ")"
      if not mechanisms[t.mech] then mechanisms[t.mech], distinct = true, distinct + 1 end
    end
    if distinct > 1 then
      return false, "expected a successful AUTH after a refused mechanism; the client fell back"
        .. " (" .. table.concat(said, ", ") .. ") and did not authenticate with any: after the"
        .. " refusal any credentials are taken, unless [auth.users] in the configuration restricts them"
    end
    return false, "expected a successful AUTH after a refused mechanism (534: RFC 4954 6 says to retry with another;"
      .. " 504: this server has not the mechanism for this account, so another advertised one is the way on); "
      .. "the client tried " .. table.concat(said, ", ") .. " and did not fall back to "
      .. untried(mechanisms)
  end,
}
