#include "script/lua_sandbox.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <ctime>
#include <stdexcept>
#include <string_view>
#include <vector>

#include <lua.hpp>

#include "proto/bounded_text.hpp"
#include "proto/duration.hpp"
#include "proto/near_miss.hpp"
#include "script/counted_library.hpp"
#include "script/guarded_xpcall.hpp"
#include "script/lua_error_hints.hpp"
#include "script/lua_modules.hpp"
#include "script/lua_patterns.hpp"
#include "script/ordered_pairs.hpp"

namespace smtpfault::script {

namespace {

constexpr int count_step = 1000;  // instructions between budget checks
// Lua restarts the count at each resumption, so a loop that waits (smtp.sleep, a client's
// network call) within count_step instructions would never be counted: each wait counts as
// this many instructions instead, and such a loop reaches the limit too.
constexpr std::uint64_t wait_cost = 100;

// Globals of the base library that could reach the file system or load bytecode.
// warn writes to stderr only when switched on, which a script cannot see: gone, as print is.
// require is the sandbox's own (lua_modules.hpp), set after these are removed.
constexpr const char* removed_globals[] = {
    "dofile", "loadfile", "collectgarbage", "require", "module", "print", "warn"};

int safe_load(lua_State* L) {
  // load(chunk [, chunkname [, mode [, env]]]) with mode forced to text.
  luaL_checkany(L, 1);
  if (!lua_isstring(L, 1)) return luaL_error(L, "load: only strings can be loaded here");
  std::size_t len = 0;
  const char* s = lua_tolstring(L, 1, &len);
  const char* name = luaL_optstring(L, 2, "=(load)");
  // A mode without 't' asks for bytecode only, which is never loaded here: as Lua answers a
  // text chunk under mode "b", not the text run all the same.
  if (std::string_view mode = luaL_optstring(L, 3, "bt"); mode.find('t') == mode.npos) {
    lua_pushnil(L);
    lua_pushfstring(L,
                    "attempt to load a text chunk (mode is '%s'; binary chunks are not "
                    "available in the sandbox)",
                    mode.data());
    return 2;
  }
  int status = lua_sandbox::of(L).compile(L, std::string_view(s, len), name);
  if (status != LUA_OK) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  if (!lua_isnoneornil(L, 4)) {
    lua_pushvalue(L, 4);
    if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
  }
  return 1;
}

// setmetatable without __gc: a finalizer runs whenever the collector gets to it, also between
// hooks, outside any instruction or memory limit, so one that loops would hang its thread.
int setmetatable_without_gc(lua_State* L) {
  // The checks setmetatable makes, here, so that their errors name it.
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_argexpected(L, lua_isnoneornil(L, 2) || lua_istable(L, 2), 2, "nil or table");
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL) {
      return luaL_error(L,
                        "setmetatable: __gc finalizers are not available in the sandbox (they "
                        "would run outside the limits of any hook)");
    }
    lua_pop(L, 1);
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

// As the lua command reads a file: a UTF-8 byte order mark (editors on Windows write one) and
// a first line starting with '#' ("#!/usr/bin/env lua") are skipped; the line stays counted.
std::string_view skip_file_prefix(std::string_view code, std::string& rewritten) {
  if (code.starts_with("\xEF\xBB\xBF")) code.remove_prefix(3);
  if (!code.starts_with('#')) return code;
  const auto eol = code.find('\n');
  rewritten = eol == std::string_view::npos ? std::string() : std::string(code.substr(eol));
  return rewritten;
}

}  // namespace

void lua_sandbox::closer::operator()(lua_State* L) const {
  lua_close(L);
}

lua_sandbox::lua_sandbox(sandbox_limits limits)
    : limits_(limits),
      time_limit_reason_(
          "time limit exceeded: ran for over " +
          proto::seconds_text(std::chrono::duration<double>(limits.run_time).count()) +
          " s (waits not counted; a loop of work on long strings?)"),
      compile_limit_reason_(
          "time limit exceeded while compiling (over " +
          proto::seconds_text(std::chrono::duration<double>(limits.run_time).count()) +
          " s: text made to be slow to compile?)"),
      memory_limit_reason_("memory limit exceeded (" + std::to_string(limits.memory_bytes) +
                           " octets; lua.memory or SMTPFAULT_LUA_MEMORY sets it)") {
  L_.reset(lua_newstate(&lua_sandbox::allocate, this));
  if (!L_) throw std::runtime_error("cannot create a Lua state");
  *static_cast<lua_sandbox**>(lua_getextraspace(L_.get())) = this;
  open_safe_libraries();
  // Hooks leave short-lived tables and strings behind on every command: the generational
  // collector frees those young objects without walking the scenario's long-lived state.
  lua_gc(L_.get(), LUA_GCGEN, 0, 0);
  // Threads created later inherit this hook.
  set_hook(L_.get(), count_step);
}

lua_sandbox::~lua_sandbox() = default;

lua_sandbox& lua_sandbox::of(lua_State* L) {
  return **static_cast<lua_sandbox**>(lua_getextraspace(L));
}

void lua_sandbox::open_safe_libraries() {
  lua_State* L = L_.get();
  const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},        {LUA_TABLIBNAME, luaopen_table},
                           {LUA_STRLIBNAME, luaopen_string}, {LUA_MATHLIBNAME, luaopen_math},
                           {LUA_UTF8LIBNAME, luaopen_utf8},  {LUA_COLIBNAME, luaopen_coroutine}};
  for (const auto& lib : libs) {
    luaL_requiref(L, lib.name, lib.func, 1);
    lua_pop(L, 1);
  }
  for (const char* name : removed_globals) {
    lua_pushnil(L);
    lua_setglobal(L, name);
  }
  lua_pushcfunction(L, safe_load);
  lua_setglobal(L, "load");
  lua_pushcfunction(L, lua_require);
  lua_setglobal(L, "require");
  install_ordered_pairs(L, &lua_sandbox::charge_loop_steps);
  install_counted_library(L, &lua_sandbox::charge_loop_steps);
  install_guarded_xpcall(L, [](lua_State* T) { return of(T).killed_; });
  lua_getglobal(L, "setmetatable");
  lua_pushcclosure(L, setmetatable_without_gc, 1);
  lua_setglobal(L, "setmetatable");
  // string.dump would hand out bytecode, which load refuses anyway; remove it for clarity.
  lua_getglobal(L, "string");
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  // Lua's own find, match, gmatch and gsub match inside C, where the count hook never fires: a
  // pattern that backtracks would hang the thread. These charge their steps to the budget.
  install_bounded_patterns(L, -1, &lua_sandbox::charge_pattern_steps);
  lua_pop(L, 1);
}

namespace {

// math.randomseed(x [, y]) as Lua has it; without a seed, an error.
int seeded_randomseed(lua_State* L) {
  if (lua_gettop(L) == 0) {
    return luaL_error(L,
                      "math.randomseed needs a seed here: without one it takes the clock's, and "
                      "the same --seed would no longer replay the run (math.random is seeded from "
                      "--seed already)");
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 0);
  return 0;
}

}  // namespace

void lua_sandbox::seed_random(std::uint64_t seed) {
  lua_State* L = L_.get();
  lua_getglobal(L, "math");
  lua_getfield(L, -1, "randomseed");
  lua_pushvalue(L, -1);
  lua_pushinteger(L, static_cast<lua_Integer>(seed));
  lua_call(L, 1, 0);
  lua_pushcclosure(L, seeded_randomseed, 1);
  lua_setfield(L, -2, "randomseed");
  lua_pop(L, 1);
}

void lua_sandbox::set_hook(lua_State* L, int count) {
  lua_sethook(L, &lua_sandbox::on_hook, LUA_MASKCOUNT | LUA_MASKCALL, count);
}

namespace {
// Set from the signal-handling thread, read by every hook call: lock-free, and relaxed order is
// enough for a flag that only ever goes from false to true.
std::atomic<bool> interrupt_requested{false};
}  // namespace

void lua_sandbox::interrupt_all() {
  interrupt_requested.store(true, std::memory_order_relaxed);
}

bool lua_sandbox::interrupting() {
  return interrupt_requested.load(std::memory_order_relaxed);
}

void lua_sandbox::on_hook(lua_State* L, lua_Debug* ar) {
  auto& self = of(L);
  if (self.budget_ == 0) return;  // no guarded run active (e.g. a finalizer)
  const bool counted = ar->event == LUA_HOOKCOUNT;
  if (counted) {
    self.spent_ += count_step;
    if (!self.killed_ && self.memory_refused()) self.stop_run(L, self.memory_limit_reason_.c_str());
    if (!self.killed_ && self.spent_ > self.budget_) {
      self.stop_run(L, endless_loop_reason);
    }
  }
  // Also before every call: a library function's work on a long string (upper, rep, sort,
  // utf8.len ...) is one instruction however long it takes, so a loop of such calls would
  // otherwise see the clock only every count_step instructions, thousands of calls apart.
  if (!self.killed_ && (self.overdue_ || self.past_deadline())) {
    self.stop_run(L, self.time_limit_reason_.c_str());
  }
  if (!self.killed_ && interrupt_requested.load(std::memory_order_relaxed)) {
    self.stop_run(L, interrupted_reason);
  }
  if (self.killed_) {
    // From now on fire on every instruction, so a pcall that caught the error cannot go on.
    set_hook(L, 1);
    luaL_error(L, "%s", self.kill_reason_);
  }
  // After a refusal that a retry made good, the count goes back to its usual step.
  if (counted) set_hook(L, count_step);
}

void lua_sandbox::charge(lua_State* L, std::uint64_t instructions, const char* over_budget) {
  if (budget_ == 0) return;  // no guarded run active
  spent_ += instructions;
  if (!killed_ && spent_ > budget_) stop_run(L, over_budget);
  if (!killed_ && past_deadline()) stop_run(L, time_limit_reason_.c_str());
  if (killed_) {
    set_hook(L, 1);
    luaL_error(L, "%s", kill_reason_);
  }
}

// A step is about as much work as an instruction.
void lua_sandbox::charge_pattern_steps(lua_State* L, std::uint64_t steps) {
  of(L).charge(L, steps,
               "instruction limit exceeded in a string pattern: each octet it looks at counts "
               "as an instruction, so a long subject (a big message) costs as much as a pattern "
               "that backtracks ('.-.-b'); lua.instructions raises the limit");
}

void lua_sandbox::charge_loop_steps(lua_State* L, std::uint64_t steps) {
  of(L).charge(L, steps, endless_loop_reason);
}

void lua_sandbox::stop_run(lua_State* L, const char* reason) {
  killed_ = true;
  kill_reason_ = reason;
  // The run's own coroutine fails at its next instruction too, should L be one the script made
  // and the error be caught on the way out of it.
  if (armed_ && armed_ != L) set_hook(armed_, 1);
  // (The memory limit cannot do the same: the allocator may not walk the stack.)
  try {
    kill_where_ = lua_position(L);
  } catch (const std::exception&) {
    // No position then: an exception must not unwind through Lua's C frames.
  }
}

std::chrono::nanoseconds lua_sandbox::coarse_now() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
  return std::chrono::seconds(t.tv_sec) + std::chrono::nanoseconds(t.tv_nsec);
}

void lua_sandbox::disarm() {
  budget_ = 0;
  armed_ = nullptr;
  killed_ = false;
  refused_ = {};
}

void lua_sandbox::arm(lua_State* L, std::uint64_t budget, std::chrono::nanoseconds ran_before) {
  budget_ = budget;
  spent_ = 0;
  armed_ = L;
  killed_ = false;
  overdue_ = false;
  refused_ = {};
  run_started_ = now();
  deadline_ = run_started_ + limits_.run_time - ran_before;
  kill_reason_ = nullptr;
  kill_where_.clear();
  set_hook(L, count_step);
}

bool lua_sandbox::is_library(const char* source) const {
  for (const auto& lib : library_sources_)
    if (lib == source) return true;
  return false;
}

function_lines lines_of(lua_State* L, int ref) {
  lua_Debug ar;
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  lua_getinfo(L, ">S", &ar);  // pops the function
  return {std::string(ar.short_src) + ":" + std::to_string(ar.linedefined) + ":", ar.linedefined,
          ar.lastlinedefined};
}

std::string lua_position(lua_State* co) {
  const lua_sandbox& sandbox = lua_sandbox::of(co);
  std::string fallback;
  lua_Debug ar;
  for (int level = 0; lua_getstack(co, level, &ar); ++level) {
    if (!lua_getinfo(co, "Sl", &ar) || ar.currentline <= 0) continue;
    std::string where = std::string(ar.short_src) + ":" + std::to_string(ar.currentline) + ":";
    if (!sandbox.is_library(ar.source)) return where;
    if (fallback.empty()) fallback = where;
  }
  return fallback;
}

bool lua_sandbox::met_memory_limit(int status) const {
  return kill_reason_ == memory_limit_reason_.c_str() || status == LUA_ERRMEM || memory_refused();
}

std::string lua_sandbox::describe_error(lua_State* L, int status) {
  std::string msg;
  if (killed_ && kill_reason_) {
    msg = kill_reason_;
  } else if (met_memory_limit(status)) {
    msg = memory_limit_reason_;
  } else if (std::size_t length = 0; const char* s = lua_tolstring(L, -1, &length)) {
    // Kept with the session and written to its transcript: bounded like smtp.log's lines.
    msg = proto::bounded_text(std::string_view(s, length));
  } else {
    // error({code = 1}): what was raised, and how to say what went wrong instead.
    msg = std::string("error object is a ") + luaL_typename(L, -1) +
          ", not a string (error(\"text\") says what went wrong)";
  }
  // Errors raised from C functions, and argument checks in library chunks, carry no position
  // or one inside the library; add the scenario's own.
  std::string where = killed_ && !kill_where_.empty() ? kill_where_ : lua_position(L);
  bool in_library = false;
  for (const auto& lib : library_sources_)
    in_library = in_library || msg.rfind(lib.substr(1) + ":", 0) == 0;
  if (!where.empty() && msg.rfind(where, 0) != 0 &&
      (in_library || msg.find(".lua:") == std::string::npos)) {
    msg = where + " " + msg;
  }
  return msg + error_hint(L, msg);
}

namespace {

// The error a failed load left on L's stack, popped. Each names the file and line, but for the
// parser's own limit ("C stack overflow", from nesting too deep) and a compiled chunk.
std::string load_error(lua_State* L, const std::string& chunkname) {
  std::string msg = lua_tostring(L, -1) ? lua_tostring(L, -1) : "cannot load";
  lua_pop(L, 1);
  // Only those: the others start with the chunk's name, which Lua may have shortened.
  if (msg == "C stack overflow") return chunkname + ": " + msg + " (expressions nested too deep)";
  if (msg.starts_with("attempt to load a binary chunk")) {
    return chunkname + ": " + msg + " (compiled Lua is refused: give the source text)";
  }
  return msg;
}

}  // namespace

std::optional<std::string> lua_sandbox::load_module(lua_State* L, std::string_view code,
                                                    const std::string& path,
                                                    std::string_view name) {
  std::string rewritten;
  const auto text = skip_file_prefix(code, rewritten);
  if (compile(L, text, ("@" + path).c_str()) != LUA_OK) {
    return load_error(L, path);
  }
  const auto kept = [&](const module_source& m) { return m.path == path; };
  if (keep_modules_ && std::none_of(modules_.begin(), modules_.end(), kept)) {
    modules_.push_back(
        {path, std::string(code), lua_position(L) + " require '" + std::string(name) + "':"});
  }
  return std::nullopt;
}

void lua_sandbox::keep_module_sources(bool on) {
  keep_modules_ = on;
  if (!on) modules_ = {};
}

std::optional<std::string> lua_sandbox::run_file_text(std::string_view code,
                                                      const std::string& chunkname, bool library) {
  lua_State* L = L_.get();
  if (library) library_sources_.push_back("@" + chunkname);
  std::string rewritten;
  code = skip_file_prefix(code, rewritten);
  int status = compile(L, code, ("@" + chunkname).c_str());
  if (status != LUA_OK) return load_error(L, chunkname);
  lua_State* co = lua_newthread(L);
  lua_rotate(L, -2, 1);  // thread below the function
  lua_xmove(L, co, 1);   // function onto the thread
  arm(co, limits_.load_instructions);
  int nres = 0;
  status = lua_resume(co, L, 0, &nres);
  std::optional<std::string> error;
  if (killed_ || (status != LUA_OK && status != LUA_YIELD)) {
    error = describe_error(co, status);  // (see resume)
  } else if (status == LUA_YIELD) {
    error = lua_position(co) + " smtp.sleep and other yields are only allowed inside hooks";
  } else if (!library && nres > 0 && !lua_isnil(co, -nres)) {
    error = returned_a_value(chunkname);
  }
  disarm();
  lua_pop(L, 1);  // the thread
  return error;
}

std::string returned_a_value(const std::string& chunkname) {
  return chunkname +
         ": returns a value at its top level, as a module does, not a script: a module belongs "
         "in a subfolder such as lib/ (smtpfault test --scenarios, check and run take every "
         ".lua file of a folder itself as a script)";
}

std::optional<std::string> lua_sandbox::load_text(lua_State* co, std::string_view code,
                                                  const std::string& chunkname) {
  std::string rewritten;
  code = skip_file_prefix(code, rewritten);
  int status = compile(co, code, ("@" + chunkname).c_str());
  if (status == LUA_OK) return std::nullopt;
  return load_error(co, chunkname);
}

run_result lua_sandbox::resume(lua_State* co, int nargs, run_usage& used) {
  run_result r;
  if (used.instructions > limits_.instructions || used.time >= limits_.run_time) {
    // Spent across waits: the coroutine is left as it is (a hook's next call gets a fresh
    // thread).
    r.st = run_result::status::failed;
    r.error = lua_position(co) + " " +
              (used.time >= limits_.run_time ? time_limit_reason_ : endless_loop_reason);
    return r;
  }
  arm(co, limits_.instructions, used.time);
  spent_ = used.instructions;
  int nres = 0;
  int status = lua_resume(co, L_.get(), nargs, &nres);
  if (killed_ || (status != LUA_OK && status != LUA_YIELD)) {
    // A limit hit in a coroutine of the script's own ends the run too, though the coroutine's
    // error was caught and the hook then returned before its next instruction could fail.
    r.st = run_result::status::failed;
    r.error = describe_error(co, status);
    r.interrupted = killed_ && kill_reason_ == interrupted_reason;
    ran_out_of_memory_ = met_memory_limit(status);
  } else if (status == LUA_OK) {
    r.st = run_result::status::finished;
    r.results = nres;
  } else {
    r.st = run_result::status::yielded;
    r.results = nres;
    spent_ += wait_cost;
  }
  // Between resumptions no guarded run is active: the host may allocate freely, and another
  // coroutine may be armed.
  used.instructions = spent_;
  used.time += now() - run_started_;
  disarm();
  return r;
}

}  // namespace smtpfault::script
