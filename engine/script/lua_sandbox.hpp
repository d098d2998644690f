// The one guarded wrapper around Lua: a state with only safe libraries, a capped allocator and
// an instruction budget, text-only loading, and calls that turn every failure into a value
// carrying "file:line: message". No other code calls lua_pcall or lua_resume.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "script/small_blocks.hpp"

struct lua_State;
struct lua_Debug;

namespace smtpfault::script {

struct sandbox_limits {
  std::size_t memory_bytes = 64 * 1024 * 1024;   // for the whole scenario state
  std::uint64_t instructions = 10'000'000;       // per hook call (all its resumptions)
  std::uint64_t load_instructions = 50'000'000;  // for running the file at load time
  // Real time one hook call (or client script) may run, its waits not counted. Instructions
  // do not measure the work of a library call on a long string (`data:upper()` on 30 MB is one
  // instruction), so a loop of few instructions could hold its thread for hours within the
  // instruction limit.
  std::chrono::milliseconds run_time{5000};
  // The clock run time is measured with; null: the coarse monotonic clock. Tests set their own.
  std::chrono::nanoseconds (*clock)() = nullptr;
};

// What one hook call (or client script) has used of its limits so far, carried across waits.
struct run_usage {
  std::uint64_t instructions = 0;
  std::chrono::nanoseconds time{};  // running, not waiting
};

// The outcome of running (part of) a coroutine.
struct run_result {
  enum class status { finished, yielded, failed } st = status::finished;
  int results = 0;           // values left on the coroutine's stack
  std::string error;         // "file:line: message" when failed
  bool interrupted = false;  // failed because the process is stopping (interrupt_all)
};

class lua_sandbox {
 public:
  explicit lua_sandbox(sandbox_limits limits);
  ~lua_sandbox();
  lua_sandbox(const lua_sandbox&) = delete;
  lua_sandbox& operator=(const lua_sandbox&) = delete;

  // The process is stopping (SIGTERM): every running hook call, in every sandbox, ends at its
  // next instruction or call with interrupted_reason, instead of running on to its limit.
  static void interrupt_all();
  static bool interrupting();
  static constexpr const char* interrupted_reason = "interrupted: the server is stopping";

  lua_State* state() const { return L_.get(); }
  const sandbox_limits& limits() const { return limits_; }
  // Seeds math.random from the run's seed; math.randomseed() without a seed (the clock's) is
  // refused from then on, since a replay with --seed could not repeat it.
  void seed_random(std::uint64_t seed);

  // Compiles text (never bytecode) and runs it on the main thread under load_instructions.
  // Leaves nothing on the stack. Returns the error message on failure. Errors are reported at
  // the line of the scenario that called into a library chunk, never inside one.
  std::optional<std::string> run_file_text(std::string_view code, const std::string& chunkname,
                                           bool library = false);
  bool is_library(const char* source) const;
  // Compiles text (never bytecode) and pushes the function onto co's stack without running it,
  // for a script that runs as a coroutine under resume(). Returns the syntax error otherwise.
  std::optional<std::string> load_text(lua_State* co, std::string_view code,
                                       const std::string& chunkname);
  // Compiles text (never bytecode) onto L's stack, as luaL_loadbufferx does, but fed to Lua's
  // parser in pieces, each of which first looks at the clock and for a stop (lua_compile.cpp):
  // the parser runs no instructions, so no hook fires while it works, and text made to be slow
  // to compile (thousands of labels in one function) would otherwise hold the thread for
  // minutes. Within a guarded run its deadline applies, else run_time from now.
  int compile(lua_State* L, std::string_view code, const char* chunkname);
  std::chrono::nanoseconds clock_now() const { return now(); }

  // Where require() finds modules: the folder of the script's file; "" (a built-in, or source
  // text) refuses every require.
  void set_module_folder(std::string folder) { module_folder_ = std::move(folder); }
  // Whether a module's top level may wait (yield): a client script's, not a scenario's.
  void allow_module_waits() { module_waits_ = true; }
  bool module_waits_allowed() const { return module_waits_; }
  const std::string& module_folder() const { return module_folder_; }
  // Compiles a module's text (never bytecode) onto L's stack. Returns the syntax error otherwise.
  std::optional<std::string> load_module(lua_State* L, std::string_view code,
                                         const std::string& path, std::string_view name);
  // While on, each module loaded keeps its text (once per path), for a scenario's checks of its
  // source at load; off forgets them (a module required inside a hook is not kept: its text
  // would stay for the state's life, or once per attempt of one that fails).
  void keep_module_sources(bool on);
  struct module_source {
    std::string path;
    std::string text;
    std::string required_as;  // "a.lua:3: require 'lib.b':", where it was required first
  };
  const std::vector<module_source>& modules() const { return modules_; }

  // Resumes coroutine co (a thread created with lua_newthread) with nargs values on its stack,
  // under the per-call limits. `used` is the caller's account of the hook call: empty to start
  // one, then carried across yields, since other coroutines may run in between.
  run_result resume(lua_State* co, int nargs, run_usage& used);

  // Adds work done inside a C function (a string pattern's matching steps, the keys pairs()
  // sorts) to the guarded run's spent instructions; past its budget, stops the run as the
  // instruction limit does, for the reason given (raises a Lua error, and every further
  // instruction fails). Outside a guarded run there is no limit.
  void charge(lua_State* L, std::uint64_t instructions, const char* over_budget);

  std::size_t memory_in_use() const { return used_; }
  // Between runs: a full collection after a run that met the memory limit, and when the state
  // is near its limit and has grown since the last one (see the definition for why Lua's own
  // collector is not enough there).
  void collect_if_crowded();
  // Room beyond the memory limit for octets the host hands to a running hook (a message's
  // text): the script did not make them, and many sessions' messages at once must not fail
  // a scenario that only looks at their size. lend(-n) takes the room back.
  void lend(std::ptrdiff_t octets) { lent_ += octets; }
  static lua_sandbox& of(lua_State* L);

 private:
  static constexpr const char* endless_loop_reason =
      "instruction limit exceeded (possible endless loop)";
  // In lua_sandbox_memory.cpp.
  static void* allocate(void* ud, void* ptr, std::size_t osize, std::size_t nsize);
  void* resize(void* ptr, std::size_t old, std::size_t nsize);
  void release(void* ptr, std::size_t size);
  // One hook for both events: every count_step instructions (the budget, the memory limit's
  // refusals, the clock) and before every call (the clock only).
  static void set_hook(lua_State* L, int count);
  static void on_hook(lua_State* L, lua_Debug* ar);
  static void charge_pattern_steps(lua_State* L, std::uint64_t steps);
  // Work of a loop inside C (pairs() sorting its keys, table.move ...), as instructions.
  static void charge_loop_steps(lua_State* L, std::uint64_t steps);
  void stop_run(lua_State* L, const char* reason);
  // From the allocator, which may not read the stack: the error's own position stands.
  void stop_for_memory();
  bool past_deadline() const { return now() > deadline_; }
  std::chrono::nanoseconds now() const { return limits_.clock ? limits_.clock() : coarse_now(); }
  // The clock is read at the start and end of every run, before every call, every count_step
  // instructions, in charge() and on large allocations: the coarse clock costs a fraction of
  // the precise one (no system call), and a few milliseconds do not matter to a limit of
  // seconds.
  static std::chrono::nanoseconds coarse_now();
  void open_safe_libraries();
  // Starts a guarded run with this many instructions, and what is left of the run time.
  void arm(lua_State* L, std::uint64_t budget, std::chrono::nanoseconds ran_before = {});
  // Ends the guarded run: until the next, nothing is refused or stopped.
  void disarm();
  std::string describe_error(lua_State* L, int status);
  bool met_memory_limit(int status) const;

  struct closer {
    void operator()(lua_State* L) const;
  };
  sandbox_limits limits_;
  std::string time_limit_reason_;
  std::string compile_limit_reason_;  // the same limit, met while Lua's parser ran
  // "memory limit exceeded (67108864 octets; ...)": the limit, and where it is set.
  std::string memory_limit_reason_;
  std::size_t used_ = 0;
  std::size_t collected_to_ = 0;    // used_ after collect_if_crowded's last full collection
  bool ran_out_of_memory_ = false;  // the last run that failed met the memory limit
  std::ptrdiff_t lent_ = 0;         // see lend()
  std::uint64_t budget_ = 0;
  std::uint64_t spent_ = 0;
  lua_State* armed_ = nullptr;  // the coroutine of the guarded run
  bool killed_ = false;
  struct refused_request {
    void* ptr = nullptr;
    std::size_t osize = 0;
    std::size_t nsize = 0;
    bool operator==(const refused_request&) const = default;
  };
  refused_request refused_;  // an allocation refused for the memory limit, not yet retried
  bool memory_refused() const { return refused_ != refused_request{}; }
  std::chrono::nanoseconds run_started_{};  // of the guarded run, on now()'s clock
  std::chrono::nanoseconds deadline_{};
  bool overdue_ = false;  // past deadline_, noticed where the stack cannot be read
  const char* kill_reason_ = nullptr;
  // Where the instruction limit was reached: a pcall may catch that error, and the error that
  // then ends the run comes from the next line run, not from the loop.
  std::string kill_where_;
  std::vector<std::string> library_sources_;  // "@lua/smtp.lua"
  std::string module_folder_;
  bool keep_modules_ = false;
  bool module_waits_ = false;
  std::vector<module_source> modules_;
  small_blocks blocks_;  // declared before L_: closing the state gives its blocks back here
  std::unique_ptr<lua_State, closer> L_;
};

// The error of a scenario or client script whose top level returned a value: a module, most
// likely, in a folder whose every .lua file is taken for a script.
std::string returned_a_value(const std::string& chunkname);

// "file:line:" of the innermost scenario function on co's stack (library chunks are skipped
// unless nothing else is there), or "" when there is none.
std::string lua_position(lua_State* co);

// Where the function kept in the registry under ref is written: position "file:12:" (its first
// line), and its first and last lines.
struct function_lines {
  std::string position;
  int first = 0;
  int last = 0;
};
function_lines lines_of(lua_State* L, int ref);

}  // namespace smtpfault::script
