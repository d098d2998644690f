// A client scenario (`smtpfault run`): a sequential Lua script run as one coroutine in the
// sandbox. Every API call that needs the network yields a client_op; the driver (net/
// script_client) performs it and resumes the script with an op_result. This class does no I/O,
// so a conversation can be played against it in a unit test without sockets.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "proto/expected.hpp"
#include "proto/reply.hpp"
#include "script/lua_sandbox.hpp"

namespace smtpfault::script {

struct client_target {
  std::string host;  // "" = none given: connect{} must name one
  std::uint16_t port = 0;
  std::string tls_host;  // implicit TLS (connect{tls=true}); "" = same as host
  std::uint16_t tls_port = 0;
};

struct client_options {
  std::uint64_t seed = 0;
  client_target target;
  std::chrono::milliseconds timeout{30'000};  // default deadline of every wait
  std::map<std::string, std::string> params;  // --param KEY=VALUE, the script's `params`
  sandbox_limits limits{64 * 1024 * 1024, 200'000'000, 50'000'000};
  std::string module_folder;  // where require() finds modules: the file's folder (load_named)
};

// What the script asks the driver to do next.
struct client_op {
  enum class kind {
    connect,        // host, port, tls, verify, ca_file, sni, may_fail
    write,          // bytes (all at once, or chunk octets every `every` when chunk > 0)
    read_reply,     // the next reply
    tls_handshake,  // client handshake on a connected socket (after STARTTLS's 220)
    wait_closed,    // reads (keeping what arrives) until the server closes, or the timeout
    shutdown_send,  // half-close: FIN, keep reading
    reset,          // RST
    close,
    sleep,
    give_up,   // the target cannot be used as the script needs (bytes: why): ends the run
    finish,    // skip(bytes: why): a skipped step, and the run ends as finished
    check_ca,  // ca_file can be loaded: else a script error, before anything is sent for it
  } what = kind::sleep;
  int conn = 0;
  std::string host;
  std::uint16_t port = 0;
  bool tls = false;
  bool verify = false;
  std::string ca_file;
  std::string sni;
  bool may_fail = false;  // connect/handshake failures come back to the script, else end the run
  bool buffered = false;  // read_reply: only a reply already received, without waiting
  std::string bytes;
  std::size_t chunk = 0;
  std::chrono::milliseconds every{0};
  std::chrono::milliseconds timeout{0};  // sleep length for sleep; for waits 0 = the default
  std::string label;                     // the transcript shows this instead of the bytes (secrets)
};

struct op_result {
  bool ok = true;
  std::string error;  // "timeout", "closed", "reset", "malformed reply: ...", or a sentence
  int conn = 0;       // connect: the new connection's id
  std::optional<proto::reply> reply;
  std::size_t sent = 0;  // write: octets written before any failure
  double elapsed = 0;    // seconds the operation took
  std::string tls_version;
  // Connections the server closed or reset since the last result ("closed"/"reset"): each
  // connection's `closed` field follows the server without another read.
  std::vector<std::pair<int, std::string>> ended;
};

// One verdict: an expectation on a reply, or a check().
struct client_step {
  bool passed = false;
  bool skipped = false;  // skip(reason): nothing to judge here; passed is false
  std::string name;
  std::string detail;
  std::string where;   // "file:line:" of the script line
  int conn = 0;        // 0 when not about one connection
  double seconds = 0;  // since the step before (or the start): the exchange it judges
};

// One report(key, value): the value as text (a table as Lua would write it) and, for --json,
// what it was, so that a number stays a number there.
struct client_report {
  enum class kind { text, integer, number, boolean, nil };
  std::string key;
  std::string text;
  kind type = kind::text;
  long long integer = 0;  // when type is integer (or boolean: 1 for true)
  double number = 0;      // when type is number
  bool operator==(const client_report&) const = default;
};

struct script_step {
  enum class status { op, finished, failed } st = status::finished;
  client_op op;
  std::string error;  // failed: "file:line: message"
};

class client_script {
 public:
  static proto::expected<std::unique_ptr<client_script>, std::string> load(
      const std::string& code, const std::string& chunkname, client_options opts);
  // A path, or the name of a built-in client scenario.
  static proto::expected<std::unique_ptr<client_script>, std::string> load_named(
      const std::string& name_or_path, client_options opts);
  ~client_script();
  client_script(const client_script&) = delete;
  client_script& operator=(const client_script&) = delete;

  script_step start();
  script_step resume(const op_result& r);

  const std::string& name() const { return name_; }
  // The coroutine the script runs as: the only one whose yields reach the driver.
  lua_State* thread() const { return co_; }
  // "file:line:" of the script line now waiting for the network (or running), "" when none.
  std::string position() const { return co_ ? lua_position(co_) : std::string(); }
  const client_options& options() const { return opts_; }
  const std::vector<client_step>& steps() const { return steps_; }
  // report(key, value) calls, in order; a key reported again keeps its place.
  const std::vector<client_report>& reports() const { return reports_; }
  // What `check` can find without running the script (which runs as it connects): a module
  // it requires by a literal name that is missing or does not compile, and a call of a name
  // that is neither the script's, its modules' nor the library's, but close to one of the
  // library's ("x.lua:2: expct is not defined (did you mean 'expect'?)"). Looked for when
  // asked: `run` does not pay for it.
  std::optional<std::string> check_without_running();
  // "file:line" of the script line now waiting (position() without its colon), "" when none.
  std::string where() const {
    auto p = position();
    if (!p.empty()) p.pop_back();
    return p;
  }

  // For the C functions of the API. Steps and reports are kept outside Lua's state, so their
  // text counts against the script's memory limit here: whether `octets` more would pass it.
  bool keeps_too_much(std::size_t octets) const {
    return kept_octets_ + octets + entry_overhead > opts_.limits.memory_bytes;
  }
  void add_step(client_step s) {
    kept_octets_ += entry_overhead + s.name.size() + s.detail.size() + s.where.size();
    const auto now = std::chrono::steady_clock::now();
    s.seconds = std::chrono::duration<double>(now - last_step_at_).count();
    last_step_at_ = now;
    steps_.push_back(std::move(s));
  }
  void add_report(client_report r);

 private:
  client_script(std::string name, client_options opts);
  std::optional<std::string> init(const std::string& code);
  script_step after(const run_result& r);

  std::string name_;
  client_options opts_;
  lua_sandbox sandbox_;
  struct lua_State* co_ = nullptr;
  int thread_ref_ = -2;  // LUA_NOREF
  run_usage used_;       // by the script, across its network calls and sleeps
  bool started_ = false;
  std::chrono::steady_clock::time_point last_step_at_ = std::chrono::steady_clock::now();
  std::vector<client_step> steps_;
  std::vector<client_report> reports_;
  std::string source_;  // the script's text, for check_without_running()
  // What steps and reports hold: their text, and about what each costs beside it.
  static constexpr std::size_t entry_overhead = 128;
  std::size_t kept_octets_ = 0;
};

// client_op::kind as the Lua library names it ("connect", "write", ...).
const char* op_name(client_op::kind k);

}  // namespace smtpfault::script
