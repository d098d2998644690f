#include "script/scenario.hpp"

#include <lua.hpp>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <random>
#include <string_view>
#include <vector>

#include "proto/command.hpp"
#include "proto/duration.hpp"
#include "proto/near_miss.hpp"
#include "script/catalogue.hpp"
#include "script/lua_bridge.hpp"
#include "script/lua_checks.hpp"
#include "script/lua_fields.hpp"
#include "script/lua_modules.hpp"
#include "script/scenario_checks.hpp"
#include "script/source_scan.hpp"

namespace smtpfault::script {

namespace {

std::uint64_t splitmix64(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::uint64_t rotl(std::uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

// The first line from `from` on (and within a table's reach, 200 lines) where `key = ` is
// written, or 0: expect { ... } reports a mistake on the line that sets it.
std::size_t key_line(std::string_view code, std::string_view key, std::size_t from) {
  const auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  std::size_t line = 1;
  for (std::size_t start = 0; start < code.size() && line < from + 200; ++line) {
    const auto end = std::min(code.find('\n', start), code.size());
    auto text = code.substr(start, end - start);
    start = end + 1;
    if (line < from) continue;
    text = text.substr(0, text.find("--"));  // a key in a comment is not set
    for (auto at = text.find(key); at != std::string_view::npos; at = text.find(key, at + 1)) {
      if (at > 0 && word(text[at - 1])) continue;
      auto rest = text.substr(at + key.size());
      if (!rest.empty() && word(rest[0])) continue;
      rest.remove_prefix(std::min(rest.find_first_not_of(" \t"), rest.size()));
      if (rest.starts_with('=') && !rest.starts_with("==")) return line;
    }
  }
  return 0;
}

}  // namespace

scenario::scenario(std::string name, scenario_options opts)
    : name_(std::move(name)),
      opts_(opts),
      sandbox_(opts.limits),
      started_(std::chrono::steady_clock::now()) {
  std::uint64_t s = opts.seed;
  for (auto& r : rng_)
    r = splitmix64(s);
  for (auto& r : hook_refs_)
    r = LUA_NOREF;
}

double scenario::next_random() {
  return static_cast<double>(next_bits() >> 11) * 0x1.0p-53;
}

std::uint64_t scenario::next_bits() {
  // xoshiro256**
  std::uint64_t result = rotl(rng_[1] * 5, 7) * 9;
  std::uint64_t t = rng_[1] << 17;
  rng_[2] ^= rng_[0];
  rng_[3] ^= rng_[1];
  rng_[1] ^= rng_[2];
  rng_[0] ^= rng_[3];
  rng_[2] ^= t;
  rng_[3] = rotl(rng_[3], 45);
  return result;
}

double scenario::now() const {
  std::chrono::duration<double> real = std::chrono::steady_clock::now() - started_;
  return real.count() / opts_.time_scale;
}

std::optional<std::string> scenario::key_place(lua_State* L, std::string_view key) const {
  if (key.empty()) return std::nullopt;
  // The scenario's own frame: the call it is making began on this line.
  const std::string source = "@" + name_;
  lua_Debug ar;
  std::size_t call_line = 0;
  for (int level = 1; call_line == 0 && lua_getstack(L, level, &ar); ++level) {
    if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0 && source == ar.source) {
      call_line = static_cast<std::size_t>(ar.currentline);
    }
  }
  if (call_line == 0) return std::nullopt;
  const auto line = key_line(source_, key, call_line);
  return name_ + ":" + std::to_string(line ? line : call_line) + ":";
}

std::optional<std::vector<std::string>> scenario::ehlo_keywords() const {
  if (!current_session_) return std::nullopt;
  return current_session_->advertised_keywords();
}

void scenario::log_from_script(std::string text) {
  if (current_ && current_->log_) current_->log_(std::move(text));
}

void scenario::note_action_made(lua_State* L, const char* name) {
  // Made while loading (a table of replies for later) is no slip; the outermost action of a
  // statement is made last, so the last one made names what the hook meant to return.
  if (!current_) return;
  current_->made_at_ = lua_position(L);
  current_->made_name_ = name;
}

std::size_t scenario::memory_in_use() const {
  std::lock_guard lock(mu_);
  return sandbox_.memory_in_use();
}

std::optional<std::string> scenario::init(std::string_view code) {
  lua_State* L = sandbox_.state();
  register_c_api(L, this);
  sandbox_.set_module_folder(opts_.module_folder);
  // As a client script's: values as given, strings; a scenario turns them into what it needs.
  set_params_global(L, opts_.params);
  // math.random draws from the scenario's seed too.
  sandbox_.seed_random(opts_.seed);
  if (auto err = run_library(sandbox_, helper_library())) return err;
  keep_caller_frames(L);
  lua_getglobal(L, "smtp");
  const int api = luaL_ref(L, LUA_REGISTRYINDEX);
  source_ = code;
  // Source text has no folder to find modules in: a require inside a hook would fail every
  // session, so it is refused now, where the one who sent the text hears of it.
  if (opts_.module_folder.empty()) {
    for (const auto& r : literal_requires(code)) {
      if (auto path = module_path("", r.name); !path) {
        return name_ + ":" + std::to_string(r.line) + ": " + path.error();
      }
    }
  }
  sandbox_.keep_module_sources(true);
  auto ran = sandbox_.run_file_text(code, name_);
  if (auto err = std::move(ran)) {
    // A client script (smtpfault run) given where a server scenario belongs.
    for (const char* name : {"connect", "target", "report", "send", "ehlo", "starttls", "auth",
                             "quit", "sleep", "starttls_from_params"}) {
      if (err->find(std::string("(global '") + name + "')") != std::string::npos) {
        return *err + std::string(client_script_hint);
      }
    }
    return err;
  }
  if (auto err = check_loaded_code(api, code)) return err;
  if (auto err = read_expectations()) return name_ + ": " + *err;
  read_param_names(code);
  if (auto err = check_hook_modules(code)) return *err;
  if (unread_params_.empty()) named_params_.clear();  // no key to find a near miss for
  sandbox_.keep_module_sources(false);
  return take_hooks(code);
}

// What loading alone cannot tell: the smtp table replaced, a misspelt or local hook, a hook
// defined twice, a call into what the sandbox leaves out; in the scenario and its modules.
std::optional<std::string> scenario::check_loaded_code(int api_ref, std::string_view code) {
  lua_State* L = sandbox_.state();
  if (auto err = check_api_kept(L, api_ref, code, name_)) return *err;
  if (auto err = check_hook_names(L, code, name_)) return *err;
  if (auto err = check_local_hooks(L, code, name_)) return *err;
  if (auto err = check_hook_parameters(L)) return *err;
  std::vector<std::pair<std::string, std::string_view>> files{{name_, code}};
  for (const auto& m : sandbox_.modules())
    files.emplace_back(m.path, m.text);
  if (auto err = check_duplicate_hooks(L, files)) return *err;
  if (auto err = check_calls(L, code, name_)) return *err;
  // The modules it required are scenario code too.
  for (const auto& m : sandbox_.modules())
    if (auto err = check_calls(L, m.text, m.path)) return m.required_as + " " + *err;
  return std::nullopt;
}

// The parameters given that no code reads, and the names it reads (for a near miss's hint).
void scenario::read_param_names(std::string_view code) {
  unread_params_ = params_never_named(code, param_keys(opts_.params));
  note_param_names(code);
  // A parameter a module reads is read too.
  for (const auto& m : sandbox_.modules()) {
    unread_params_ = params_never_named(m.text, unread_params_);
    note_param_names(m.text);
  }
}

// The hooks the scenario defines, kept by reference; one defined as no function is a mistake.
std::optional<std::string> scenario::take_hooks(std::string_view code) {
  lua_State* L = sandbox_.state();
  for (session::hook h : all_hooks) {
    raw_global(L, (std::string("on_") + session::hook_name(h)).c_str());
    if (lua_isfunction(L, -1)) {
      hooks_ |= session::hook_bit(h);
      hook_refs_[static_cast<std::size_t>(h)] = luaL_ref(L, LUA_REGISTRYINDEX);
    } else if (!lua_isnil(L, -1)) {
      const std::string hook_fn = std::string("on_") + session::hook_name(h);
      const auto line = assignment_line(code, hook_fn);
      std::string err = name_ + (line ? ":" + std::to_string(line) : "") + ": " + hook_fn +
                        " must be a function, not a " + luaL_typename(L, -1);
      lua_pop(L, 1);
      return err;
    } else {
      lua_pop(L, 1);
    }
  }
  return std::nullopt;
}

// A module required only inside a hook is read when the hook first runs: it is looked for and
// compiled now (not run), so that a missing or broken one fails the load, not every session
// with 451, and its calls and parameters are checked as a top-level module's are.
std::optional<std::string> scenario::check_hook_modules(std::string_view code) {
  std::vector<std::string> loaded;
  for (const auto& m : sandbox_.modules())
    loaded.push_back(m.path);
  auto modules = compile_literal_requires(sandbox_, code, name_);
  if (!modules) return modules.error();
  for (const auto& m : *modules) {
    if (std::find(loaded.begin(), loaded.end(), m.path) != loaded.end()) continue;
    if (auto err = check_calls(sandbox_.state(), m.text, m.path)) return m.required_as + " " + *err;
    unread_params_ = params_never_named(m.text, unread_params_);
    note_param_names(m.text);
  }
  return std::nullopt;
}

// The keys a text could read, kept while some given key is read by nothing seen so far: what
// that key may have been meant as.
void scenario::note_param_names(std::string_view text) {
  if (unread_params_.empty()) return;
  for (auto& n : params_maybe_named(text))
    named_params_.push_back(std::move(n));
}

std::uint64_t random_seed() {
  std::random_device device;
  const std::uint64_t bits = (std::uint64_t{device()} << 32) | device();
  return bits & ((std::uint64_t{1} << 53) - 1);
}

proto::expected<std::shared_ptr<scenario>, std::string> scenario::load(std::string code,
                                                                       std::string chunkname,
                                                                       scenario_options opts) {
  std::shared_ptr<scenario> sc(new scenario(std::move(chunkname), opts));
  if (auto err = sc->init(code)) return proto::unexpected{*err};
  return sc;
}

proto::expected<std::shared_ptr<scenario>, std::string> scenario::load_named(
    const std::string& name_or_path, scenario_options opts) {
  auto source = find_scenario_source(name_or_path);
  if (!source) return proto::unexpected{source.error()};
  opts.module_folder = source->folder;
  auto sc = load(std::move(source->code), std::move(source->chunkname), opts);
  if (sc) (*sc)->origin_ = name_or_path;
  return sc;
}

proto::expected<std::shared_ptr<scenario>, std::string> scenario::restarted() const {
  // A file is read again with its modules: the text kept and modules read anew would be a
  // mixture nobody wrote.
  auto fresh = origin_.empty() ? load(source_, name_, opts_) : load_named(origin_, opts_);
  if (fresh) (*fresh)->begin_run(current_run_.load(std::memory_order_relaxed));
  return fresh;
}

std::unique_ptr<session_binding> scenario::open_session(std::function<void(std::string)> log) {
  std::unique_ptr<session_binding> b(new session_binding(shared_from_this()));
  b->log_ = std::move(log);
  std::lock_guard lock(mu_);
  lua_State* L = sandbox_.state();
  lua_createtable(L, 0, 16);
  lua_newtable(L);
  lua_setfield(L, -2, "state");
  if (const unsigned run = current_run_.load(std::memory_order_relaxed); run > 0) {
    lua_pushinteger(L, static_cast<lua_Integer>(run));
    lua_setfield(L, -2, "run");
  }
  b->table_ref_ = luaL_ref(L, LUA_REGISTRYINDEX);
  return b;
}

hook_outcome scenario::start(session_binding& b, session::hook h,
                             const session::server_session& s) {
  std::lock_guard lock(mu_);
  lua_State* L = sandbox_.state();
  // A new Lua thread per call would be garbage on every command: reuse the session's.
  if (!b.co_ || lua_status(b.co_) != LUA_OK || lua_gettop(b.co_) != 0) {
    release(b);
    if (!idle_threads_.empty()) {
      b.co_ = idle_threads_.back().co;
      b.thread_ref_ = idle_threads_.back().ref;
      idle_threads_.pop_back();
    } else {
      b.co_ = lua_newthread(L);
      b.thread_ref_ = luaL_ref(L, LUA_REGISTRYINDEX);
    }
  }
  b.running_ = h;
  if (h == session::hook::message) {
    // The text, and the header fields made from it.
    b.lent_ = 2 * static_cast<std::ptrdiff_t>(s.pending_message().data.size());
    sandbox_.lend(b.lent_);
  }
  lua_State* co = b.co_;
  lua_rawgeti(co, LUA_REGISTRYINDEX, hook_refs_[static_cast<std::size_t>(h)]);
  update_session_table(co, b.table_ref_, s, h, b.table_state_);
  lua_rawgeti(co, LUA_REGISTRYINDEX, b.table_ref_);
  int nargs = 1 + push_hook_arguments(co, h, s);
  current_ = &b;
  current_session_ = &s;
  b.used_ = {};
  b.made_at_.clear();
  auto r = sandbox_.resume(co, nargs, b.used_);
  return finish_run(b, r);
}

lua_State* scenario::hook_thread() const {
  return current_ ? current_->co_ : nullptr;
}

hook_outcome scenario::resume(session_binding& b, const session::server_session& s) {
  std::lock_guard lock(mu_);
  update_session_table(sandbox_.state(), b.table_ref_, s, b.running_, b.table_state_);
  current_ = &b;
  current_session_ = &s;
  auto r = sandbox_.resume(b.co_, 0, b.used_);
  return finish_run(b, r);
}

hook_outcome scenario::finish_run(session_binding& b, const run_result& r) {
  current_ = nullptr;
  current_session_ = nullptr;
  hook_outcome out;
  lua_State* co = b.co_;
  auto hook_fn = [&b] { return std::string("on_") + session::hook_name(b.running_); };
  if (r.st == run_result::status::failed) {
    out.st = hook_outcome::status::failed;
    out.error = r.error;
    out.interrupted = r.interrupted;
  } else if (r.st == run_result::status::yielded) {
    if (r.results == 2 && lua_touserdata(co, -2) == sleep_sentinel()) {
      out.st = hook_outcome::status::sleeping;
      double secs = lua_tonumber(co, -1) * opts_.time_scale;
      out.sleep = proto::millis_from_seconds(secs);
      lua_pop(co, 2);
      return out;  // the coroutine stays alive for resume()
    }
    out.st = hook_outcome::status::failed;
    out.error = lua_position(co) + " " + hook_fn() + " yielded; use smtp.sleep() to pause";
  } else {
    auto a = to_action(co, r.results > 0 ? -r.results : 0, opts_.time_scale);
    const bool returned_nothing = r.results == 0 || lua_isnil(co, -r.results);
    if (a && returned_nothing && !b.made_at_.empty() && b.log_) {
      // Kept for a branch not taken (`local r = smtp.reply(550) if bad then return r end`), or
      // a slip that loading could not see: the transcript says which, the default goes on.
      b.log_(b.made_at_ + " " + hook_fn() + " made an action (" + b.made_name_ +
             ") and returned nothing: the server's own reply goes out");
    }
    if (a) {
      out.action = std::move(*a);
    } else {
      out.st = hook_outcome::status::failed;
      out.error = bad_return_text(hook_refs_[static_cast<std::size_t>(b.running_)], co,
                                  hook_fn() + " ", a.error());
    }
  }
  take_back_room(b);
  if (r.st == run_result::status::finished && out.st == hook_outcome::status::done) {
    lua_settop(co, 0);  // a finished coroutine with an empty stack runs the next hook call
  } else {
    release(b);
  }
  sandbox_.collect_if_crowded();
  return out;
}

// Which `return` it was is gone with the call: the only one the function has, else the
// function's lines and those of its returns ("on_rcpt (lines 3-11, returns on lines 5, 9)").
std::string scenario::bad_return_text(int function_ref, lua_State* co, const std::string& what,
                                      const std::string& why) const {
  const auto lines = lines_of(co, function_ref);
  const auto returns = return_lines(source_, lines.first, lines.last);
  if (returns.size() == 1) return name_ + ":" + std::to_string(returns[0]) + ": " + what + why;
  std::string where = "(lines " + std::to_string(lines.first) + "-" + std::to_string(lines.last);
  for (std::size_t i = 0; i < returns.size(); ++i)
    where += (i ? ", " : ", returns on lines ") + std::to_string(returns[i]);
  return lines.position + " " + what + where + ") " + why;
}

std::optional<std::string> scenario::read_expectations() {
  return parse_expectations(sandbox_.state(), expected_);
}

std::vector<check_result> scenario::run_checks(const run_outcome& run) {
  std::lock_guard lock(mu_);
  return run_custom_checks(sandbox_, expected_.checks, run);
}

void scenario::take_back_room(session_binding& b) {
  sandbox_.lend(-b.lent_);
  b.lent_ = 0;
}

void scenario::release(session_binding& b) {
  if (b.thread_ref_ != LUA_NOREF) {
    luaL_unref(sandbox_.state(), LUA_REGISTRYINDEX, b.thread_ref_);
    b.thread_ref_ = LUA_NOREF;
    b.co_ = nullptr;
  }
}

session_binding::~session_binding() {
  std::lock_guard lock(owner_->mu_);
  // Enough for the sessions that come and go at once; a burst's surplus goes to the collector.
  constexpr std::size_t most_idle_threads = 64;
  auto& idle = owner_->idle_threads_;
  if (co_ && lua_status(co_) == LUA_OK && lua_gettop(co_) == 0 && idle.size() < most_idle_threads) {
    idle.push_back({co_, thread_ref_});
    co_ = nullptr;
    thread_ref_ = LUA_NOREF;
  }
  owner_->take_back_room(*this);  // a session that ended while its on_message slept
  owner_->release(*this);
  luaL_unref(owner_->sandbox_.state(), LUA_REGISTRYINDEX, table_ref_);
}

}  // namespace smtpfault::script
