// A loaded scenario: one sandboxed Lua state shared by every session, so scenario-wide state
// (greylisting tables, counters) lives in ordinary Lua variables. Calls are serialised by a
// mutex; a hook that sleeps yields, releasing the state for other sessions meanwhile.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "fault/action.hpp"
#include "proto/expected.hpp"
#include "script/expectations.hpp"
#include "script/lua_bridge.hpp"
#include "script/lua_sandbox.hpp"
#include "session/server_session.hpp"

namespace smtpfault::script {

// A seed drawn at random when none was given: below 2^53, so that a JSON reader that holds
// numbers as doubles (JavaScript, jq) keeps every digit of it, and the run can be replayed.
std::uint64_t random_seed();

struct scenario_options {
  std::uint64_t seed = 0;
  double time_scale = 1.0;  // multiplies every delay, sleep and window
  sandbox_limits limits;
  std::map<std::string, std::string> params;  // the scenario's `params` (scenario_params)
  std::string module_folder;  // where require() finds modules: the file's folder (load_named)
};

// What a hook call came to: an action, a pause (smtp.sleep), or an error.
struct hook_outcome {
  enum class status { done, sleeping, failed } st = status::done;
  fault::action action;
  std::chrono::milliseconds sleep{0};
  std::string error;         // "file:line: message"
  bool interrupted = false;  // failed only because the process is stopping
};

// Per-session Lua data: the `s` table and a hook coroutine that may be suspended.
class session_binding {
 public:
  ~session_binding();
  session_binding(const session_binding&) = delete;
  session_binding& operator=(const session_binding&) = delete;

 private:
  friend class scenario;
  explicit session_binding(std::shared_ptr<class scenario> owner) : owner_(std::move(owner)) {}
  std::shared_ptr<class scenario> owner_;
  int table_ref_ = -2;  // LUA_NOREF
  session_table_state table_state_;
  int thread_ref_ = -2;
  struct lua_State* co_ = nullptr;
  run_usage used_;           // by the running hook call, across its sleeps
  std::ptrdiff_t lent_ = 0;  // room lent to the running hook for its message (lua_sandbox::lend)
  session::hook running_ = session::hook::connect;
  std::function<void(std::string)> log_;
  // Where the running hook call last made an action and what it was ("file:line:", "reply
  // 550"): a call that then returns nothing forgot its `return`.
  std::string made_at_, made_name_;
};

// "seed: 1234 (replay with --seed 1234)": what serve prints for the scenario it starts.
inline std::string seed_text(std::uint64_t seed) {
  const auto text = std::to_string(seed);
  return "seed: " + text + " (replay with --seed " + text + ")";
}

// The keys of a params table, in order.
inline std::vector<std::string> param_keys(const std::map<std::string, std::string>& params) {
  std::vector<std::string> keys;
  for (const auto& [key, value] : params)
    keys.push_back(key);
  return keys;
}

// Ends the load error of a client script given where a server scenario belongs; `check`
// looks for it to check such a file as the client script it is.
inline constexpr std::string_view client_script_hint =
    " -- this looks like a client script: smtpfault run runs those (and smtpfault check --client "
    "checks them)";

class scenario : public std::enable_shared_from_this<scenario> {
 public:
  // Loads Lua text; errors read "file:line: message" and carry a hint where one helps.
  static proto::expected<std::shared_ptr<scenario>, std::string> load(std::string code,
                                                                      std::string chunkname,
                                                                      scenario_options opts);
  // A .lua path, or the name of a built-in scenario.
  static proto::expected<std::shared_ptr<scenario>, std::string> load_named(
      const std::string& name_or_path, scenario_options opts);

  std::uint32_t hooks() const { return hooks_; }
  const std::string& name() const { return name_; }
  const scenario_options& options() const { return opts_; }
  // Loaded again from where it came from (its file and modules, read again; or the text it was
  // given) with the same options and run: its own state (its tables, smtp.now(), the random
  // numbers) as at its start.
  proto::expected<std::shared_ptr<scenario>, std::string> restarted() const;
  std::string seed_text() const { return script::seed_text(opts_.seed); }

  // Under `smtpfault test`: the run of the command going on from now (1, 2, ...); sessions that
  // open from then on see it as s.run. 0 (no s.run) under serve.
  void begin_run(unsigned run) { current_run_.store(run, std::memory_order_relaxed); }
  // log receives smtp.log() lines and is kept for the session.
  std::unique_ptr<session_binding> open_session(std::function<void(std::string)> log);
  hook_outcome start(session_binding& b, session::hook h, const session::server_session& s);
  // Goes on with a hook that slept; the session table first takes what changed meanwhile.
  hook_outcome resume(session_binding& b, const session::server_session& s);

  // What `expect { ... }` declared, and the custom checks it named, run after a test run.
  const expectations& expected() const { return expected_; }
  // Parameters given (scenario_params) that the scenario's source never names: a misspelt
  // key ("windw=5") would otherwise change nothing without a word.
  const std::vector<std::string>& unread_params() const { return unread_params_; }
  // The keys its source (and its modules) could read, for a "did you mean" on those; only
  // looked for when parameters were given.
  const std::vector<std::string>& named_params() const { return named_params_; }
  std::vector<check_result> run_checks(const run_outcome& run);

  std::size_t memory_in_use() const;
  // Seconds of scenario time since load (real time divided by the time scale).
  double now() const;
  double next_random();       // uniform in [0, 1), from the scenario's seed
  std::uint64_t next_bits();  // 64 random bits, from the same generator
  // smtp.log(): goes to the transcript of the session whose hook is running.
  void log_from_script(std::string text);
  // smtp._made(): the script made an action (smtp.reply and friends) at L's position.
  void note_action_made(lua_State* L, const char* name);
  bool hook_running() const { return current_ != nullptr; }
  // smtp._key_place(key), while the scenario loads: "name.lua:7:", the line that sets key in a
  // table that the scenario's current call (expect { ... }) began to build on an earlier line.
  std::optional<std::string> key_place(lua_State* L, std::string_view key) const;
  // smtp.ehlo_keywords(): what the session of the running hook would advertise; nullopt
  // outside a hook.
  std::optional<std::vector<std::string>> ehlo_keywords() const;
  // The Lua thread the running hook was started on (null between hooks): a coroutine the
  // script made itself is another one.
  lua_State* hook_thread() const;

 private:
  friend class session_binding;
  scenario(std::string name, scenario_options opts);
  std::optional<std::string> init(std::string_view code);
  std::optional<std::string> check_loaded_code(int api_ref, std::string_view code);
  void read_param_names(std::string_view code);
  void note_param_names(std::string_view text);
  std::optional<std::string> check_hook_modules(std::string_view code);
  std::optional<std::string> take_hooks(std::string_view code);
  hook_outcome finish_run(session_binding& b, const run_result& r);
  void release(session_binding& b);
  void take_back_room(session_binding& b);
  std::optional<std::string> read_expectations();
  std::string bad_return_text(int function_ref, struct lua_State* co, const std::string& what,
                              const std::string& why) const;

  std::string name_;
  std::string origin_;  // the name or path load_named was given; "" for text
  // The scenario's text: the line of an expect{} key's mistake, of a hook's bad `return`.
  std::string source_;
  std::vector<std::string> unread_params_;
  std::vector<std::string> named_params_;
  scenario_options opts_;
  lua_sandbox sandbox_;
  mutable std::mutex mu_;
  std::uint32_t hooks_ = 0;
  std::array<int, session::hook_count> hook_refs_;
  std::chrono::steady_clock::time_point started_;
  std::uint64_t rng_[4];
  session_binding* current_ = nullptr;  // whose hook is running (for smtp.log)
  const session::server_session* current_session_ = nullptr;  // and its session
  // Hook threads of sessions that ended, each finished with an empty stack, for the next
  // sessions to run their hooks on (a thread per connection was garbage on every connection).
  struct idle_thread {
    struct lua_State* co;
    int ref;
  };
  std::vector<idle_thread> idle_threads_;
  expectations expected_;
  std::atomic<unsigned> current_run_{0};
};

}  // namespace smtpfault::script
