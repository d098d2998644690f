---@meta
-- LuaLS (lua-language-server) annotations for client scenarios (`smtpfault run`): completion,
-- hover docs and type checks. Never loaded by smtpfault. See docs/client-scenarios.md.
-- Network calls block the script (they yield to the host) until done or until their deadline;
-- outcomes are values: a reply, or nil and "timeout" | "closed" | "reset" | "malformed reply: ...".

---A reply from the server.
---@class client.reply
---@field code integer          # 250
---@field enhanced string?      # "2.1.0" when the reply carries one
---@field lines string[]        # text of each line, without code and enhanced code
---@field text string           # the lines joined with "\n"
---@field extensions table<string, string>? # ehlo() only: keyword -> parameters ("SIZE" -> "10240000"; keys upper case, read in any case)

---What expect() accepts: a code (250), a class (2 means 2xx), a Lua pattern matched against
---"CODE[ ENHANCED][ text]" of each line ("220" when a line has no text), or a list of these.
---@alias client.want integer|string|(integer|string)[]

---@class client.label_options
---@field label string?   # shown in the transcript (and the verdicts' names) instead of the octets

---@class client.timeout_options
---@field timeout number?  # seconds (default --timeout)

---@class client.wait_options: client.timeout_options
---@field name string?     # the verdict's name

---@class client.ehlo_options: client.wait_options
---@field expect client.want? # default 250
---@field starttls (boolean|client.starttls_options)? # then STARTTLS and EHLO again over TLS; the reply is the second EHLO's

---@class client.tls_options: client.timeout_options
---@field verify boolean?  # check the certificate chain and host name (default false)
---@field ca string?       # PEM file of trusted CAs (e.g. fixtures/certs/test-ca.pem)
---@field sni string?      # server name sent and verified (default: host)
---@field may_fail boolean? # a failure (to connect, a handshake, a refused STARTTLS) returns nil, err instead of ending the run (exit 3)

---@class client.starttls_options: client.tls_options
---@field expect client.want? # the reply wanted to STARTTLS (default 220)

---@class client.connect_options: client.tls_options
---@field host string?     # default: --target (or --tls-target when tls)
---@field port integer?
---@field tls boolean?     # implicit TLS (RFC 8314) from the first byte

---@class client.data_options: client.wait_options
---@field line_ending "\r\n"|"\n"|"\r"|nil # line ending of the body and the terminator
---@field raw boolean?        # send body exactly as given: no conversion, stuffing or terminator
---@field expect client.want? # the final reply wanted (default 250)
---@field expect_354 client.want?

---@class client.bdat_options: client.wait_options
---@field last boolean?       # "BDAT n LAST"
---@field size integer?       # announce this size instead of #chunk
---@field expect client.want? # default 250
---@field no_reply boolean?   # do not read a reply

---@class client.auth_options: client.wait_options
---@field expect client.want? # default 235
---@field authzid string?     # PLAIN only

---A connection; the global functions of the same names act on the most recent one.
---@class client.connection
---@field id integer
---@field host string
---@field port integer
---@field tls boolean
---@field tls_version string?
---@field closed false|"closed"|"reset"|"tls failed" # set once the server has gone (or TLS did)
local Connection = {}

---The next reply, without a verdict. Example: `local r, err = c:reply({ timeout = 2 })`
---@param opts client.wait_options?
---@return client.reply? reply
---@return string? err
function Connection:reply(opts) end

---The next reply, with a verdict: passes when it matches `want`. Returns the reply (even when
---it did not match) and nil, or the error: "unexpected reply", "timeout", "closed", "reset".
---Example: `c:expect(250)`, `c:expect({ 450, 451 })`, `c:expect("^250 .*queued")`
---@param want client.want
---@param opts client.wait_options?
---@return client.reply? reply
---@return string? err
function Connection:expect(want, opts) end

---expect(220) for the greeting; with no reply within the timeout (a tarpit) the script ends
---there, skipped after that failed step, since every later wait would run to its deadline too.
---@param opts client.wait_options?
---@return client.reply? reply
---@return string? err
function Connection:greeting(opts) end

---A step the rest of the script needs: sends the line and expects `want`; a refusal or no reply
---fails that step and ends the script there as skipped (after QUIT for a refusal), `advice`
---saying what to change after a refusal. Returns the reply when it matched.
---Example: `send_or_skip("RCPT TO:<" .. rcpt .. ">", 250, "give a recipient it takes with --param rcpt=ADDR")`
---@param line string
---@param want client.want
---@param advice string
---@return client.reply? reply
function Connection:send_or_skip(line, want, advice) end

---A command line; CRLF is added. Returns true, or nil and "closed"/"reset"/"timeout".
---@param line string
---@param opts client.label_options?
---@return true? ok
---@return string? err
function Connection:send(line, opts) end

---Bytes exactly as given: no CRLF added, no line ending conversion, no dot-stuffing.
---Example: `c:raw("body\n.\nMAIL FROM:<x@y>\r\n")`
---@param bytes string
---@param opts client.label_options?
---@return true? ok
---@return string? err
function Connection:raw(bytes, opts) end

---Several command lines in one write (RFC 2920). Example: `c:pipeline { "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA" }`
---@param lines string[]
---@return true? ok
---@return string? err
function Connection:pipeline(lines) end

---Sends bytes n octets at a time, waiting `every` seconds between writes (slowloris).
---@param bytes string
---@param n integer
---@param every number seconds
---@return true? ok
---@return string? err
---@return integer sent
---@return number elapsed
function Connection:slow(bytes, n, every) end

---The TLS handshake alone (after sending STARTTLS yourself); octets received before it are discarded.
---@param opts client.tls_options?
---@return true? ok
---@return string? err
function Connection:tls_handshake(opts) end

---STARTTLS, expect 220, then the handshake.
---@param opts client.starttls_options?
---@return true? ok
---@return string? err
function Connection:starttls(opts) end

---EHLO (default name "smtpfault.client") and expect 250; the reply has `extensions`.
---@param name string?
---@param opts client.ehlo_options?
---@return client.reply? reply
---@return string? err
function Connection:ehlo(name, opts) end

---AUTH with PLAIN, LOGIN, CRAM-MD5 or XOAUTH2 (password = the token); secrets are masked in
---the transcript. Returns the final reply like expect().
---@param mechanism "PLAIN"|"LOGIN"|"CRAM-MD5"|"XOAUTH2"
---@param user string
---@param password string
---@param opts client.auth_options?
---@return client.reply? reply
---@return string? err
function Connection:auth(mechanism, user, password, opts) end

---DATA, expect 354, the body (line endings converted, dot-stuffed, terminated), expect 250.
---Example: `c:data("Subject: x\n\nbody\n")`, `c:data(body, { line_ending = "\n" })`
---@param body string
---@param opts client.data_options?
---@return client.reply? reply
---@return string? err
function Connection:data(body, opts) end

---"BDAT <size> [LAST]" and the chunk in one write, then the reply (RFC 3030).
---@param chunk string
---@param opts client.bdat_options?
---@return client.reply? reply
---@return string? err
function Connection:bdat(chunk, opts) end

---QUIT and expect 221.
---@param opts client.wait_options?
---@return client.reply? reply
---@return string? err
function Connection:quit(opts) end

---Shuts down the sending side (FIN) and keeps reading.
---@return boolean ok
function Connection:half_close() end

---Closes with an RST (SO_LINGER 0).
function Connection:reset() end

---Closes the connection.
function Connection:close() end

---Reads until the server closes (true) or the timeout (false); what arrives stays readable.
---@param opts client.timeout_options?
---@return boolean closed
---@return number waited seconds
function Connection:wait_closed(opts) end

---wait_closed() with a verdict.
---@param opts client.wait_options?
---@return boolean closed
function Connection:expect_closed(opts) end

---Opens a connection and makes it the current one. A failure ends the run with exit 3 unless
---`may_fail` is set. Example: `local c = connect { tls = true, verify = true, ca = "ca.pem" }`
---@param opts client.connect_options?
---@return client.connection? conn
---@return string? err
function connect(opts) end

---The current connection (the most recent connect()).
---@return client.connection?
function connection() end

---@param opts client.wait_options?
---@return client.reply? reply
---@return string? err
function reply(opts) end

---@param want client.want
---@param opts client.wait_options?
---@return client.reply? reply
---@return string? err
function expect(want, opts) end

---@param opts client.wait_options?
---@return client.reply? reply
---@return string? err
function greeting(opts) end

---@param line string
---@param want client.want
---@param advice string
---@return client.reply? reply
function send_or_skip(line, want, advice) end

---@param line string
---@param opts client.label_options?
---@return true? ok
---@return string? err
function send(line, opts) end

---@param bytes string
---@param opts client.label_options?
---@return true? ok
---@return string? err
function raw(bytes, opts) end

---@param lines string[]
---@return true? ok
---@return string? err
function pipeline(lines) end

---@param bytes string
---@param n integer
---@param every number
---@return true? ok
---@return string? err
---@return integer sent
---@return number elapsed
function slow(bytes, n, every) end

---@param opts client.tls_options?
---@return true? ok
---@return string? err
function tls_handshake(opts) end

---STARTTLS, expect 220, the handshake. A refused STARTTLS ends the run (exit 3) like a failed
---handshake unless `may_fail` is set; then the reply is the third value.
---@param opts client.starttls_options?
---@return true? ok
---@return string? err
---@return client.reply? refused
function starttls(opts) end

---@param name string?
---@param opts client.ehlo_options?
---@return client.reply? reply
---@return string? err
function ehlo(name, opts) end

---The STARTTLS options `--param starttls=true` asks for (verified against `--param ca=FILE`
---when given), or nil: the probes pass it as `ehlo(helo, { starttls = starttls_from_params() })`.
---@return client.starttls_options?
function starttls_from_params() end

---@param mechanism "PLAIN"|"LOGIN"|"CRAM-MD5"|"XOAUTH2"
---@param user string
---@param password string
---@param opts client.auth_options?
---@return client.reply? reply
---@return string? err
function auth(mechanism, user, password, opts) end

---@param body string
---@param opts client.data_options?
---@return client.reply? reply
---@return string? err
function data(body, opts) end

---@param chunk string
---@param opts client.bdat_options?
---@return client.reply? reply
---@return string? err
function bdat(chunk, opts) end

---@param opts client.wait_options?
---@return client.reply? reply
---@return string? err
function quit(opts) end

---@return boolean ok
function half_close() end

function reset() end

function close() end

---@param opts client.timeout_options?
---@return boolean closed
---@return number waited
function wait_closed(opts) end

---@param opts client.wait_options?
---@return boolean closed
function expect_closed(opts) end

---Nothing to judge here (the server does not offer what the script probes): ends the run as
---skipped (exit 0, a JUnit `<skipped/>`), not as a pass that proves nothing.
---Example: `if not r.extensions.AUTH then quit() skip("AUTH not offered") end`
---@param reason string
function skip(reason) end

---A verdict of the script's own: passes when cond is truthy. Returns cond.
---Example: `check(r.extensions.PIPELINING, "PIPELINING is advertised")`
---@generic T
---@param cond T
---@param message string
---@param detail any? shown after the name
---@return T
function check(cond, message, detail) end

---A named result for the report (printed, and in --json under "report"); the last value wins.
---@param key string
---@param value any
function report(key, value) end

---Pauses the script (at most 86400 seconds, a day).
---@param seconds number
function sleep(seconds) end

---Seconds on a monotonic clock; use differences.
---@return number
function now() end

---@param bytes string
---@return string
function base64_encode(bytes) end

---@param text string
---@return string? bytes nil when text is not valid base64
function base64_decode(text) end

---`--target` and `--tls-target`, and the default timeout in seconds.
---@type { host: string?, port: integer?, tls_host: string?, tls_port: integer?, timeout: number }
target = {}

---`--param KEY=VALUE` values (strings).
---@type table<string, string>
params = {}
