---@meta
-- LuaLS (lua-language-server) annotations for smtpfault scenarios: completion, hover docs and
-- type checks in the editor. Never loaded by smtpfault itself. Point your editor at lua/ (for
-- example "workspace.library": ["/path/to/smtpfault/lua"] in .luarc.json).

---The smtpfault scenario API.
---@class smtp
smtp = {}

-- Types ---------------------------------------------------------------------------------------

---A reply code from 100 to 599 (SMTP itself sends 2yz to 5yz).
---@alias smtp.code integer

---An enhanced status code such as "4.7.1" (RFC 3463).
---@alias smtp.enhanced string

---Reply text: one line, or a list of lines for a multi-line reply.
---@alias smtp.text string|string[]

---@alias smtp.malformed_kind
---| "mixed_codes"   # lines of one reply carry different codes
---| "missing_space" # "250OK": no separator after the code
---| "long_line"     # one reply line far over the 512-octet limit
---| "garbage"       # not a reply at all

---@alias smtp.starttls_mode
---| "close_after_220" # "220 Ready", then close before any handshake
---| "abort_handshake" # "220 Ready", read the ClientHello, then reset
---| "inject"          # plaintext sent in the same segment as the 220 (CVE-2011-0411 style)

---@alias smtp.certificate_kind
---| "self_signed"
---| "expired"
---| "wrong_host"
---| "unknown_ca"

---A fault the server performs instead of (or on top of) its default behaviour. Build one with
---the `smtp.*` constructors and return it from a hook; methods chain.
---@class smtp.action
local action = {}

---Send the reply `seconds` late (scaled by --time-scale).
---Example: `return smtp.reply(250):delay(2)`
---@param seconds number
---@return smtp.action
function action:delay(seconds) end

---Write the reply `bytes` octets at a time, waiting `every` seconds between writes.
---Example: `return smtp.reply(250):trickle(1, 0.1)`
---@param bytes integer
---@param every number seconds
---@return smtp.action
function action:trickle(bytes, every) end

---Write the reply in pieces cut at these octet offsets.
---Example: `return smtp.reply(250):split(2, 5)`
---@param ... integer
---@return smtp.action
function action:split(...) end

---Close the connection after the reply.
---Example: `return smtp.reply(421, "4.3.0", "Bye"):close()`
---@return smtp.action
function action:close() end

---Reset the connection (TCP RST) after the reply.
---Example: `return smtp.reply(554):reset()`
---@return smtp.action
function action:reset() end

---The session object, the first argument of every hook.
---@class smtp.session
---@field id string session id, as in the log
---@field client string the peer, "127.0.0.1:51234" or "[::1]:51234"
---@field client_ip string the peer's address
---@field client_port integer the peer's port
---@field helo string the HELO/EHLO name ("" before)
---@field tls boolean TLS is active (STARTTLS or implicit)
---@field tls_version string e.g. "TLSv1.3" ("" without TLS)
---@field auth_user string the authenticated user ("" when not)
---@field lmtp boolean the server runs in LMTP mode
---@field implicit_tls boolean the client came to the implicit-TLS (smtps) port (on_starttls runs there before the handshake)
---@field early_talker boolean the client sent something while the greeting was held back (a delay or a sleep in on_connect)
---@field messages integer messages accepted in this session so far
---@field run integer? under `smtpfault test`, the run of the command going on when the session connected (from 1); nil under serve
---@field mail_from string sender of the current transaction ("" when none); in on_message, the message's
---@field rcpts string[] accepted recipients of the current transaction; in on_message, the message's
---@field commands table<string, integer> how often each command was seen: `s.commands.MAIL`, `s.commands.UNKNOWN`
---@field state table your own data, kept as long as the session

---@class smtp.auth
---@field mechanism string "PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"
---@field user string
---@field password string the password, or the CRAM-MD5 digest / OAuth token
---@field authzid string authorization identity ("" when none)

---@class smtp.address
---@field address string "user@example.com" ("" for the null sender)
---@field local_part string
---@field domain string
---@field params table<string, string|true> ESMTP parameters by upper-case keyword: `params.SIZE`

---@class smtp.chunk
---@field size integer octets in this BDAT chunk
---@field last boolean BDAT ... LAST

---@class smtp.message
---@field data string the message as received, after dot-unstuffing
---@field size integer octets of data
---@field mail_from string
---@field recipients string[]
---@field headers table<string, string> first value of each header, by lower-case name, unfolded
---@field subject string|nil
---@field anomalies smtp.anomaly[] what the API lists as anomalies, in the order found

---@class smtp.anomaly
---@field kind "bare_cr"|"bare_lf"|"nul"|"long_line"|"unstuffed_dot"|"undeclared_8bit"|"dot_line"
---@field offset integer octets from the start of the data on the wire

---@class smtp.command
---@field verb string upper-case verb, as sent for unknown commands
---@field argument string everything after the verb
---@field known boolean the server knows the verb
---@field bare_lf true|nil the line ended in LF without CR (RFC 5321 2.3.8); nil when it ended with CRLF

---What `expect { ... }` accepts; every field is optional.
---@class smtp.expectations
---@field delivered? integer|{min: integer?, max: integer?} messages delivered
---@field quit? boolean the client ends sessions with QUIT
---@field starttls_before_auth? boolean
---@field no_plaintext_auth? boolean no AUTH without TLS
---@field no_plaintext_after_tls_failure? boolean no plaintext fallback after a failed STARTTLS, in that session or a later one
---@field retried_after_4xx? boolean
---@field retry_delay? number|{min: number?, max: number?} seconds between a 4xx and the retry
---@field no_retry_after_5xx? boolean
---@field dot_stuffing? boolean lines starting with "." are stuffed
---@field line_length? boolean lines stay within RFC 5321 limits
---@field line_endings? boolean every line ends with CRLF; no CR or LF alone (RFC 5321 2.3.8)
---@field pipelining? boolean PIPELINING order is respected
---@field exit? "success"|"failure"|integer exit status of the command under test
---@field runs? integer how many times the command runs against one server
---@field run_gap? number seconds between runs
---@field check? fun(run: table): boolean, string? a custom check

-- Host functions ------------------------------------------------------------------------------

---Pause this hook (this session only; other sessions go on). Scaled by --time-scale; at most
---86400 seconds (a day).
---Example: `smtp.sleep(2)`
---@param seconds number
function smtp.sleep(seconds) end

---Seconds of scenario time since the scenario was loaded (real time divided by the time scale).
---Example: `if smtp.now() - first_seen < 300 then ... end`
---@return number
function smtp.now() end

---A seeded random number, like math.random: () -> [0, 1), (m) -> [1, m], (m, n) -> [m, n].
---Example: `local n = smtp.random(1, 6)`
---@param m? integer
---@param n? integer
---@return number
---@overload fun(): number
---@overload fun(m: integer): integer
---@overload fun(m: integer, n: integer): integer
function smtp.random(m, n) end

---True with probability p, from the run's seed.
---Example: `if smtp.chance(0.1) then return smtp.reply(451) end`
---@param p number from 0 to 1
---@return boolean
function smtp.chance(p) end

---Write a line into the session's transcript.
---Example: `smtp.log("rcpt", rcpt.address)`
---@param ... any
function smtp.log(...) end

---True when the IP is in one of the networks (IPv4, IPv6, v4-mapped; CIDR or single address).
---Example: `if smtp.ip_in(s.client_ip, {"10.0.0.0/8", "::1"}) then ... end`
---@param ip string
---@param networks string|string[]
---@return boolean
function smtp.ip_in(ip, networks) end

-- Actions -------------------------------------------------------------------------------------

---Reply with any code, enhanced code and text (one line or a list of lines).
---Example: `return smtp.reply(451, "4.7.1", "Greylisted, try again later")`
---@param code smtp.code
---@param enhanced_or_text? smtp.enhanced|smtp.text
---@param text? smtp.text
---@return smtp.action
function smtp.reply(code, enhanced_or_text, text) end

---Reply, then close the connection.
---Example: `return smtp.reply_then_close(421, "4.3.2", "Shutting down")`
---@param code smtp.code
---@param enhanced_or_text? smtp.enhanced|smtp.text
---@param text? smtp.text
---@return smtp.action
function smtp.reply_then_close(code, enhanced_or_text, text) end

---LMTP, in on_message: one reply per recipient in RCPT order; `false` keeps that recipient's
---normal reply. The message is stored when one recipient or more accepts it.
---Example: `return smtp.each_recipient { false, smtp.reply(552, "5.2.2", "Mailbox full") }`
---@param replies (smtp.action|false)[]
---@return smtp.action
function smtp.each_recipient(replies) end

---Keep the default reply but send it `seconds` late (at most 86400, a day).
---Example: `return smtp.delay(5)`
---@param seconds number
---@return smtp.action
function smtp.delay(seconds) end

---Keep the default reply but send it `bytes` octets at a time, every `every` seconds.
---Example: `return smtp.trickle(1, 0.2)`
---@param bytes integer
---@param every number seconds
---@return smtp.action
function smtp.trickle(bytes, every) end

---Keep the default reply but write it in pieces cut at these octet offsets.
---Example: `return smtp.split(1, 4)`
---@param ... integer
---@return smtp.action
function smtp.split(...) end

---Send exactly these octets instead of a reply (CR LF is not added).
---Example: `return smtp.raw("250-unterminated\r\n")`
---@param bytes string
---@return smtp.action
function smtp.raw(bytes) end

---A deliberately broken reply.
---Example: `return smtp.malformed("mixed_codes", 250, {"first", "second"})`
---@param kind smtp.malformed_kind
---@param code? smtp.code default 250
---@param enhanced_or_text? smtp.enhanced|smtp.text
---@param text? smtp.text
---@return smtp.action
function smtp.malformed(kind, code, enhanced_or_text, text) end

---Close the connection without a reply (in on_message: accept then lose).
---Example: `return smtp.close()`
---@return smtp.action
function smtp.close() end

---Same as smtp.close().
---Example: `return smtp.drop()`
---@return smtp.action
function smtp.drop() end

---In on_message: close after the final dot without a reply; nothing is stored.
---Example: `function on_message(s, msg) return smtp.lose() end`
---@return smtp.action
function smtp.lose() end

---Abort the connection with a TCP reset (the client sees ECONNRESET).
---Example: `return smtp.reset()`
---@return smtp.action
function smtp.reset() end

---Never answer again (the connection closes silently at the idle timeout).
---Example: `return smtp.hang()`
---@return smtp.action
function smtp.hang() end

---Once the session has been idle `after` seconds, send this reply unasked (closes by default).
---Example: `return smtp.unsolicited(30, 421, "4.4.2", "Idle too long")`
---@param after number seconds
---@param code? smtp.code default 421
---@param enhanced_or_text? smtp.enhanced|smtp.text
---@param text? smtp.text
---@param opts? {close: boolean}
---@return smtp.action
function smtp.unsolicited(after, code, enhanced_or_text, text, opts) end

---In on_starttls: a STARTTLS fault.
---Example: `return smtp.starttls("inject", {data = "250 2.0.0 injected\r\n"})`
---@param mode smtp.starttls_mode
---@param opts? {data: string} for "inject": the plaintext to send after the 220
---@return smtp.action
function smtp.starttls(mode, opts) end

---In on_starttls: present a bad certificate.
---Example: `return smtp.certificate("expired")`
---@param kind smtp.certificate_kind
---@return smtp.action
function smtp.certificate(kind) end

---In on_ehlo: leave these keywords out of the EHLO reply and turn the extensions off; "VRFY"
---and "HELP" make those commands answer 502 (not implemented).
---Example: `return smtp.hide("STARTTLS", "PIPELINING")`
---@param ... string
---@return smtp.action
function smtp.hide(...) end

---In a hook: the EHLO lines the session would advertise now, a new list each call.
---Example: `local k = smtp.ehlo_keywords() table.insert(k, "XCLIENT NAME ADDR") return smtp.extensions(k)`
---@return string[]
function smtp.ehlo_keywords() end

---In on_ehlo: advertise exactly these lines; extensions not listed are off, and so are AUTH
---mechanisms left off the AUTH line (AUTH with one of them gets 504 5.5.4).
---Example: `return smtp.extensions({"PIPELINING", "AUTH PLAIN"})`
---@param list string[]
---@return smtp.action
function smtp.extensions(list) end

---For AUTH (in on_command): the text of the next 334 challenge, sent as is.
---Example: `return smtp.challenge("not base64!")`
---@param text string
---@return smtp.action
function smtp.challenge(text) end

-- Helpers -------------------------------------------------------------------------------------

---A number from the `params` table (scenario_params): `default` when it is not given; a value
---that is not a number from `min` (default 0) to `max` (none by default; a whole number is at
---most 2^53) and, with `whole`, a whole one, stops the load with an error naming the parameter.
---Example: `local WINDOW = smtp.param_number("window", 60, 0, false, 86400)`
---@param name string
---@param default number
---@param min? number
---@param whole? boolean
---@param max? number
---@return number
function smtp.param_number(name, default, min, whole, max) end

---Add one to a scenario-wide counter and return the new value.
---Example: `if smtp.count("mail") > 3 then ... end`
---@param key? any
---@return integer
function smtp.count(key) end

---True exactly on the n-th call with this key (scenario-wide).
---Example: `if smtp.nth(3, "message") then return smtp.reply(421) end`
---@param n integer
---@param key? any
---@return boolean
function smtp.nth(n, key) end

---True on the first call with this key only.
---Example: `if smtp.once(rcpt.address) then return smtp.reply(451) end`
---@param key? any
---@return boolean
function smtp.once(key) end

---True on every n-th call with this key.
---Example: `if smtp.every(2, "rcpt") then return smtp.reply(452) end`
---@param n integer
---@param key? any
---@return boolean
function smtp.every(n, key) end

---The domain of an address, lower-cased ("" when there is none).
---Example: `smtp.domain("Bob@Example.COM") --> "example.com"`
---@param address string
---@return string
function smtp.domain(address) end

---The part of an address before the last "@".
---Example: `smtp.local_part("bob@example.com") --> "bob"`
---@param address string
---@return string
function smtp.local_part(address) end

---True when the address (or domain) is in one of the domains or a subdomain; case-insensitive.
---Example: `smtp.domain_in(rcpt.address, {"example.com"})`
---@param address_or_domain string
---@param domains string|string[]
---@return boolean
function smtp.domain_in(address_or_domain, domains) end

---Case-insensitive glob match: "*" matches any run, "?" one character.
---Example: `smtp.matches(rcpt.address, "*@example.*")`
---@param address string
---@param pattern string
---@return boolean
function smtp.matches(address, pattern) end

---In a custom check: true when the client sent `verb` and got `code` back at least once; without
---a code, when it sent `verb` at all.
---@param run table the run a custom check receives
---@param verb string e.g. "RCPT"
---@param code? integer e.g. 550
---@return boolean
function smtp.seen(run, verb, code) end

---In a custom check: the first message whose text the server refused after its data (a 4xx or
---5xx to the final dot), as its exchange and its session's id; nil when none was.
---@param run table the run a custom check receives
---@return table|nil exchange
---@return string|nil session
function smtp.refused_message(run) end

---In a custom check: the recipients the client asked for (RCPT) that no delivered message has and
---that were never refused with a 5xx, in the order first asked.
---@param run table the run a custom check receives
---@return string[]
function smtp.undelivered(run) end

---In a custom check: the addresses in a delivered message's To: and Cc: fields that the client
---never asked for with RCPT, in the order they appear, where the last RCPT before that message's
---data was refused (a client that stopped naming recipients at a refusal leaves these).
---@param run table the run a custom check receives
---@return string[]
function smtp.unasked(run) end

---In a custom check: how many different messages were accepted, and the ones some recipient got
---more than once, each {id = its Message-ID or nil, times = n, recipient = who got it n times,
---sessions = {session ids}, said = that in words, for a reason}. A message is known by its
---Message-ID field, else by its recipients and body; sent again to other recipients, it is no
---repeat.
---@param run table the run a custom check receives
---@return integer distinct
---@return table[] repeats
function smtp.message_counts(run) end

---Record expectations about the client under test, checked when `smtpfault test` ends.
---Example: `expect { delivered = 1, retried_after_4xx = true }`
---@param t smtp.expectations
function expect(t) end

-- Hooks: define the ones you need as globals; returning nothing keeps the default. -------------

---Before the greeting.
---Example: `function on_connect(s) return smtp.reply(554, "No service") end`
---@param s smtp.session
---@return smtp.action|nil
function on_connect(s) end

---HELO.
---Example: `function on_helo(s, name) return smtp.reply(550, "5.7.1", "Go away") end`
---@param s smtp.session
---@param name string
---@return smtp.action|nil
function on_helo(s, name) end

---EHLO or LHLO.
---Example: `function on_ehlo(s, name) return smtp.hide("STARTTLS") end`
---@param s smtp.session
---@param name string
---@return smtp.action|nil
function on_ehlo(s, name) end

---STARTTLS.
---Example: `function on_starttls(s) return smtp.certificate("expired") end`
---@param s smtp.session
---@return smtp.action|nil
function on_starttls(s) end

---AUTH, once the credentials are decoded and before they are checked.
---Example: `function on_auth(s, auth) return smtp.reply(535, "5.7.8", "Bad credentials") end`
---@param s smtp.session
---@param auth smtp.auth
---@return smtp.action|nil
function on_auth(s, auth) end

---MAIL FROM.
---Example: `function on_mail(s, mail) return smtp.reply(552, "5.3.4", "Too big") end`
---@param s smtp.session
---@param mail smtp.address
---@return smtp.action|nil
function on_mail(s, mail) end

---RCPT TO.
---Example: `function on_rcpt(s, rcpt) return smtp.reply(451, "4.7.1", "Greylisted") end`
---@param s smtp.session
---@param rcpt smtp.address
---@return smtp.action|nil
function on_rcpt(s, rcpt) end

---DATA (the action changes the 354).
---Example: `function on_data(s) return smtp.delay(10) end`
---@param s smtp.session
---@return smtp.action|nil
function on_data(s) end

---After each BDAT chunk.
---Example: `function on_bdat(s, chunk) if chunk.last then return smtp.reply(554) end end`
---@param s smtp.session
---@param chunk smtp.chunk
---@return smtp.action|nil
function on_bdat(s, chunk) end

---After the final dot (or BDAT LAST), before the message is stored.
---Example: `function on_message(s, msg) return smtp.lose() end`
---@param s smtp.session
---@param msg smtp.message
---@return smtp.action|nil
function on_message(s, msg) end

---Every command, known or not, before the specific hook.
---Example: `function on_command(s, cmd) if cmd.verb == "XFOO" then return smtp.reply(250) end end`
---@param s smtp.session
---@param cmd smtp.command
---@return smtp.action|nil
function on_command(s, cmd) end

---The session ended (bookkeeping only; the action is ignored).
---Example: `function on_disconnect(s) sessions_done = (sessions_done or 0) + 1 end`
---@param s smtp.session
function on_disconnect(s) end
