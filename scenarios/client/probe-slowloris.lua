-- probe-slowloris: drips a command a few octets at a time while other clients connect, and reports whether the server cut the slow client off and whether it kept serving others.
--
-- What it does: opens a connection, then sends "NOOP ..." octets_per_step octets every `every`
-- seconds for about `duration` seconds; every few steps a second connection does a full
-- greeting/NOOP/QUIT to show the server still serves others. At the end the slow command must
-- get its reply (250, or any other: a refusal of NOOP's argument still shows the drip was read
-- to its end), or the server must have closed the connection (a per-command deadline or a
-- minimum data rate, as Postfix's smtpd_per_request_deadline / smtpd_min_data_rate).
-- What it targets: slowloris-style resource exhaustion; the "every wait has a deadline" and
-- "never hang" rules; one slow client must not stall others (a server that reads a command
-- with blocking I/O, or serialises sessions, fails here).
-- What a correct server does: serves other clients normally throughout, and either answers the
-- completed command or closes the slow connection. With --param max_hold=SECONDS the probe
-- also requires the server to cut the drip within that many seconds. `every` sets the pace; a
-- drip too short or too long for one command line goes faster or slower so that it still lasts
-- about `duration`. Report keys:
-- "slow_client" ("cut off after Ns" or "held for Ns"), "others_served".
-- Params: duration (default 10), every (1), octets_per_step (1), max_hold (none).

local function number_param(name, default, whole)
  local text = params[name] or default
  local n = text and tonumber(text)
  if text and (not n or n <= 0 or (whole and not math.tointeger(n))) then
    error(string.format("--param %s=%s: expected a %s greater than 0", name, text,
      whole and "whole number" or "number"), 0)
  end
  return whole and n and math.tointeger(n) or n
end
local duration = number_param("duration", "10")
local every = number_param("every", "1")
local per_step = number_param("octets_per_step", "1", true)
local max_hold = number_param("max_hold", nil)

local slow = connect {}
-- Each wait for a reply: 5 s, or --timeout when shorter.
local wait = math.min(5, target.timeout)
slow:greeting()
local steps = math.max(1, math.floor(duration / every))
local command = "NOOP " .. string.rep("z", math.max(0, math.min(steps * per_step - 7, 400))) .. "\r\n"
-- The command is at least "NOOP \r\n" and at most 407 octets (within the 512 of RFC 5321
-- 4.5.3.1.4): where that is more or fewer steps than duration / every, the pace changes so that
-- the drip still lasts about `duration`.
local pace = duration / math.max(1, math.ceil(#command / per_step) - 1)
local started = now()
local served, tried = 0, 0
local pos = 1
while pos <= #command do
  local ok = slow:raw(command:sub(pos, pos + per_step - 1))
  if not ok then break end
  pos = pos + per_step
  if (pos // per_step) % 3 == 0 then
    tried = tried + 1
    local other = connect { may_fail = true }
    if other then
      local g = other:expect(220, { timeout = wait, name = "another client is greeted during the drip" })
      if g then
        other:send("NOOP")
        if other:expect(250, { timeout = wait, name = "another client is served during the drip" }) then
          served = served + 1
        end
        other:send("QUIT")
        other:reply({ timeout = wait })
      end
      other:close()
    end
  end
  if pos <= #command then sleep(pace) end
  if slow.closed then break end
end
local held = now() - started
local answer, err = slow:reply({ timeout = wait })
-- A 421 is the server closing the channel (RFC 5321 3.8): a cut-off that says so, as Postfix's
-- and smtpfault's own are.
-- Silence is no cut-off: a server that neither answers nor closes is holding the connection.
local cut = (answer and answer.code == 421) or err == "closed" or err == "reset"
if answer and answer.code == 421 then
  report("slow_client", string.format("cut off after %.1fs with 421", held))
  check(true, "the slow connection ends cleanly", "421 " .. (answer.lines[1] or ""))
elseif answer then
  -- Any reply shows the drip was read to its end; a refusal is no hold (a server that refuses
  -- NOOP with an argument, as OpenSMTPD 6.8 does, answers 500).
  check(true, "the dripped command gets its reply", answer.code .. " " .. (answer.lines[1] or "")
    .. (answer.code == 250 and "" or " (a reply all the same; probe-conformance judges a NOOP"
      .. " with an argument)"))
  report("slow_client", string.format("held for %.1fs, command answered %d", held, answer.code))
elseif cut then
  report("slow_client", string.format("cut off after %.1fs (%s)", held, err))
  check(true, "the slow connection ends cleanly", err)
else
  report("slow_client", string.format("held for %.1fs, then neither answered nor closed (%s)", held, err))
  check(false, "the dripped command gets its reply, or the connection is closed", err)
end
report("others_served", string.format("%d of %d", served, tried))
check(served == tried, "other clients are served while one drips", served .. " of " .. tried)
if max_hold then
  check(cut and held <= max_hold + every,
    "the server cuts a slow client within " .. max_hold .. "s",
    cut and string.format("cut after %.1fs", held)
      or string.format(answer and "held for %.1fs and answered" or "held for %.1fs, still open", held))
end
