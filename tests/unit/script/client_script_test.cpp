// Client scenarios without sockets: the script yields operations, the test plays the server's
// part by resuming with results, as net/script_client does over a real connection.
#include "script/client_script.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "script/catalogue.hpp"
#include "script/scenario.hpp"

namespace smtpfault::script {
namespace {

using kind = client_op::kind;
using status = script_step::status;

client_options quick() {
  client_options o;
  o.target.host = "127.0.0.1";
  o.target.port = 2525;
  o.limits.instructions = 2'000'000;
  o.limits.load_instructions = 2'000'000;
  o.limits.memory_bytes = 16 * 1024 * 1024;
  return o;
}

op_result reply_result(int code, std::vector<std::string> lines, std::string enhanced = "") {
  op_result r;
  r.reply = proto::reply(code, std::move(enhanced), std::move(lines));
  return r;
}

op_result connected(int id = 1) {
  op_result r;
  r.conn = id;
  return r;
}

op_result error_result(std::string e) {
  op_result r;
  r.ok = false;
  r.error = std::move(e);
  return r;
}

std::unique_ptr<client_script> load(const std::string& code, client_options o = quick()) {
  auto s = client_script::load(code, "client.lua", o);
  EXPECT_TRUE(s) << (s ? "" : s.error());
  return s ? std::move(*s) : nullptr;
}

TEST(client_script, a_conversation_yields_operations_in_order) {
  auto s = load(R"(
    connect {}
    expect(220)
    send("EHLO x")
    local r = expect(250)
    check(r.lines[2] == "PIPELINING", "second line")
  )");
  auto st = s->start();
  ASSERT_EQ(st.st, status::op) << st.error;
  EXPECT_EQ(st.op.what, kind::connect);
  EXPECT_EQ(st.op.host, "127.0.0.1");
  EXPECT_EQ(st.op.port, 2525);
  st = s->resume(connected());
  ASSERT_EQ(st.op.what, kind::read_reply);
  EXPECT_EQ(st.op.conn, 1);
  st = s->resume(reply_result(220, {"ready"}));
  ASSERT_EQ(st.op.what, kind::write);
  EXPECT_EQ(st.op.bytes, "EHLO x\r\n");
  st = s->resume(op_result{});
  ASSERT_EQ(st.op.what, kind::read_reply);
  st = s->resume(reply_result(250, {"hi", "PIPELINING"}));
  ASSERT_EQ(st.st, status::finished) << st.error;
  ASSERT_EQ(s->steps().size(), 3u);
  EXPECT_TRUE(s->steps()[0].passed);
  EXPECT_EQ(s->steps()[0].where, "client.lua:3:");
  EXPECT_EQ(s->steps()[1].name, "expect 250 to 'EHLO x'");
  EXPECT_EQ(s->steps()[2].name, "second line");
  EXPECT_TRUE(s->steps()[2].passed);
}

TEST(client_script, a_wrong_code_or_a_close_is_a_failed_step_not_an_error) {
  auto s = load(R"(
    connect {}
    local r, err = expect(220)
    report("first", err)
    r, err = expect({2, "^5%d%d 5%.7"})
    report("second", err)
  )");
  s->start();
  s->resume(connected());
  auto st = s->resume(reply_result(554, {"go away"}, "5.7.1"));
  ASSERT_EQ(st.op.what, kind::read_reply);
  st = s->resume(error_result("closed"));
  ASSERT_EQ(st.st, status::finished) << st.error;
  ASSERT_EQ(s->steps().size(), 2u);
  EXPECT_FALSE(s->steps()[0].passed);
  EXPECT_EQ(s->steps()[0].detail, "got 554 5.7.1 go away");
  EXPECT_EQ(s->steps()[1].detail, "the server closed the connection");
  EXPECT_EQ(s->reports()[0].key, "first");
  EXPECT_EQ(s->reports()[0].text, "unexpected reply");
  EXPECT_EQ(s->reports()[1].text, "closed");
}

TEST(client_script, data_dot_stuffs_with_the_chosen_line_ending) {
  auto s = load(R"(
    connect {}
    data(".a\nb", { line_ending = "\r" })
  )");
  s->start();
  auto st = s->resume(connected());
  EXPECT_EQ(st.op.bytes, "DATA\r\n");
  st = s->resume(op_result{});
  st = s->resume(reply_result(354, {"go"}));
  // First a look for a reply that came with the 354 (none here), without waiting.
  ASSERT_EQ(st.op.what, kind::read_reply);
  EXPECT_TRUE(st.op.buffered);
  op_result none;  // nothing buffered: the early-reply look finds no reply
  none.ok = false;
  none.error = "none";
  st = s->resume(none);
  ASSERT_EQ(st.op.what, kind::write);
  EXPECT_EQ(st.op.bytes, "..a\rb\r.\r");
}

TEST(client_script, auth_login_sends_base64_and_masks_the_password) {
  auto s = load(R"(
    connect {}
    auth("LOGIN", "user", "pass")
  )");
  s->start();
  auto st = s->resume(connected());
  EXPECT_EQ(st.op.bytes, "AUTH LOGIN\r\n");
  s->resume(op_result{});
  st = s->resume(reply_result(334, {"VXNlcm5hbWU6"}));
  EXPECT_EQ(st.op.bytes, "dXNlcg==\r\n");
  s->resume(op_result{});
  st = s->resume(reply_result(334, {"UGFzc3dvcmQ6"}));
  EXPECT_EQ(st.op.bytes, "cGFzcw==\r\n");
  EXPECT_EQ(st.op.label, "****\r\n");
}

TEST(client_script, pipeline_is_one_write_and_slow_carries_its_pace) {
  auto s = load(R"(
    connect {}
    pipeline { "MAIL FROM:<a@b>", "RCPT TO:<c@d>" }
    slow("NOOP\r\n", 2, 0.5)
  )");
  s->start();
  auto st = s->resume(connected());
  EXPECT_EQ(st.op.bytes, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n");
  st = s->resume(op_result{});
  EXPECT_EQ(st.op.chunk, 2u);
  EXPECT_EQ(st.op.every.count(), 500);
}

TEST(client_script, runtime_errors_carry_the_script_line) {
  auto s = load("connect {}\nsend(nil)\n");
  s->start();
  auto st = s->resume(connected());
  ASSERT_EQ(st.st, status::failed);
  EXPECT_EQ(st.error, "client.lua:2: send: line must be a string, not a nil");
}

TEST(client_script, no_target_and_no_connection_are_explained) {
  auto o = quick();
  o.target = {};
  auto s = load("connect {}\n", o);
  auto st = s->start();
  ASSERT_EQ(st.st, status::failed);
  EXPECT_NE(st.error.find("client.lua:1: connect: no target"), std::string::npos) << st.error;
  auto t = load("\nexpect(220)\n");
  st = t->start();
  EXPECT_EQ(st.error, "client.lua:2: expect: no connection yet; call connect() first");
}

TEST(client_script, print_points_to_report) {
  auto s = load("print('hello')\n");
  auto st = s->start();
  ASSERT_EQ(st.st, status::failed);
  EXPECT_NE(st.error.find("in a client script report(key, value) adds to the report"),
            std::string::npos)
      << st.error;
}

TEST(client_script, a_loop_that_only_sleeps_reaches_the_instruction_limit) {
  auto s = load("while true do sleep(0) end\n");
  auto st = s->start();
  int waits = 0;
  while (st.st == status::op && waits < 1'000'000) {
    ++waits;
    st = s->resume(op_result{});
  }
  ASSERT_EQ(st.st, status::failed);
  EXPECT_NE(st.error.find("instruction limit exceeded"), std::string::npos) << st.error;
  EXPECT_LT(waits, 30'000);
}

TEST(client_script, syntax_errors_fail_the_load) {
  auto s = client_script::load("connect {", "bad.lua", quick());
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().rfind("bad.lua:1:", 0), 0u) << s.error();
}

TEST(client_script, a_server_scenario_is_refused_with_what_runs_it) {
  auto s = client_script::load("-- greylist\nlocal seen = {}\nfunction on_rcpt(s, r)\nend\n",
                               "greylist.lua", quick());
  ASSERT_FALSE(s);
  EXPECT_EQ(
      s.error().rfind("greylist.lua:3: defines on_rcpt, a hook: this is a server scenario", 0), 0u)
      << s.error();
  // A function of its own named like a hook, but not one, is fine.
  EXPECT_TRUE(client_script::load("function on_reply_seen() end\n", "mine.lua", quick()));
}

TEST(client_script, a_builtin_server_scenario_name_says_what_it_is) {
  auto s = client_script::load_named("greylist", quick());
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().rfind("'greylist' is a built-in server scenario, which serve --scenario", 0),
            0u)
      << s.error();
  // Said the same for run and for check --client: "this", not a command's name.
  EXPECT_NE(s.error().find("test --scenario run; this takes client scripts (probe-"),
            std::string::npos)
      << s.error();
  auto sc = scenario::load_named("probe-bdat", {});
  ASSERT_FALSE(sc);
  EXPECT_EQ(
      sc.error().rfind("'probe-bdat' is a built-in client probe, which smtpfault run runs", 0), 0u)
      << sc.error();
}

// Verdicts and reports live outside Lua's state: their text counts against the memory limit,
// or a loop of check(true, big) would take gigabytes within the time limit.
TEST(client_script, verdicts_and_reports_count_against_the_memory_limit) {
  for (const char* keep : {"check(true, big)", "report('k' .. i, big)"}) {
    auto s = load(std::string("local big = ('x'):rep(1024 * 1024)\nfor i = 1, 100 do ") + keep +
                  " end\n");
    auto st = s->start();
    ASSERT_EQ(st.st, status::failed) << keep;
    EXPECT_NE(st.error.find("client.lua:2: memory limit exceeded: the verdicts and reports kept"),
              std::string::npos)
        << st.error;
    EXPECT_LT(s->steps().size() + s->reports().size(), 16u) << keep;  // 16 MiB in quick()
  }
  // The same key reported again replaces its value: what it held no longer counts.
  auto s = load("local big = ('x'):rep(1024 * 1024)\nfor i = 1, 100 do report('k', big) end\n");
  auto st = s->start();
  EXPECT_EQ(st.st, status::finished) << st.error;
  EXPECT_EQ(s->reports().size(), 1u);
}

// Values that would be cast or defaulted away silently are script errors instead.
TEST(client_script, out_of_range_ports_timeouts_and_counts_are_script_errors) {
  const std::pair<const char*, const char*> cases[] = {
      {"connect {port = 2525 + 65536}", "connect: port must be a whole number from 1 to 65535"},
      {"connect {port = 25.5}", "connect: port must be a whole number from 1 to 65535"},
      {"connect {port = 0/0}", "connect: port must be a whole number from 1 to 65535"},
      {"connect {}\nexpect(220, {timeout = 0})", "expect: timeout must be a number of seconds > 0"},
      {"connect {}\nexpect(220, {timeout = -1})",
       "expect: timeout must be a number of seconds > 0"},
      {"connect {}\nwait_closed {timeout = 0}", "wait_closed: timeout must be a number of seconds"},
      {"connect {}\nslow('x', 0/0, 0)", "slow: octets per step must be a number >= 1"},
      {"sleep(math.huge)", "sleep: seconds must be a number >= 0"},
      // A century's wait would be taken as asked: past a day it is a slip.
      {"sleep(1e12)", "sleep: seconds must be at most 86400 (a day)"},
      {"connect {}\nexpect(220, {timeout = 86401})",
       "expect: timeout must be a number of seconds > 0 and at most 86400 (a day), not 86401"},
      {"connect {}\nslow('x', 1, 1e9)", "slow: seconds between steps must be at most 86400"},
  };
  for (const auto& [code, error] : cases) {
    auto s = load(code);
    auto st = s->start();
    if (st.st == status::op) st = s->resume(connected());
    ASSERT_EQ(st.st, status::failed) << code;
    EXPECT_NE(st.error.find(error), std::string::npos) << code << ": " << st.error;
  }
}

TEST(client_script, globals_of_the_script_do_not_break_the_library) {
  auto s = load("type, string, error = 'x', 1, 2\nconnect {}\nexpect(220)\n");
  auto st = s->start();
  ASSERT_EQ(st.st, status::op) << st.error;
  EXPECT_EQ(st.op.what, kind::connect);
  st = s->resume(connected());
  ASSERT_EQ(st.st, status::op) << st.error;
  st = s->resume(reply_result(220, {"hi"}));
  EXPECT_EQ(st.st, status::finished) << st.error;
}

// A scenario is read from a regular file only: a FIFO would block for ever waiting for a
// writer, a device like /dev/zero never ends (the API loads files by name, too).
TEST(scenario_files, only_regular_files_are_read) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("smtpfault-files-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto fifo = (dir / "fifo.lua").string();
  const auto zero = (dir / "zero.lua").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::filesystem::create_symlink("/dev/zero", zero);
  for (const auto& path : {fifo, zero}) {
    auto src = find_scenario_source(path);
    ASSERT_FALSE(src) << path;
    EXPECT_NE(src.error().find(": not a regular file"), std::string::npos) << src.error();
  }
  std::filesystem::remove_all(dir);
}

// Lua ends a line at a lone CR too; the load-time checks read lines by LF, so such a file is
// read with LF there (a comment on its first line hid the whole file from them). CR LF and
// LF CR stay: one line end each, for Lua as for the checks.
TEST(scenario_files, a_lone_cr_is_read_as_a_line_end) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("smtpfault-cr-" + std::to_string(::getpid()) + ".lua");
  {
    std::ofstream f(path, std::ios::binary);
    f << "-- old Mac\rfunction on_mail(s, m)\r  return smtp.rejct(550)\rend\r\nx = 1\n\ry = 2";
  }
  auto src = find_scenario_source(path.string());
  ASSERT_TRUE(src) << src.error();
  EXPECT_EQ(src->code,
            "-- old Mac\nfunction on_mail(s, m)\n  return smtp.rejct(550)\nend\r\nx = 1\n\ry = 2");
  std::filesystem::remove(path);
}

// A mistake the library finds is raised at the script's line, also where pcall catches it; an
// uncaught one names that line once.
TEST(client_script, library_errors_name_the_script_line_also_under_pcall) {
  auto s = load("local ok, err = pcall(send, 42)\nreport('err', err)\n\nsend(42)\n");
  auto st = s->start();
  ASSERT_EQ(st.st, status::failed);
  EXPECT_EQ(st.error, "client.lua:4: send: no connection yet; call connect() first");
  ASSERT_EQ(s->reports().size(), 1u);
  EXPECT_EQ(s->reports()[0].text, "client.lua:1: send: no connection yet; call connect() first");
}

TEST(client_script, endless_loops_hit_the_instruction_limit) {
  auto s = load("while true do end");
  auto st = s->start();
  ASSERT_EQ(st.st, status::failed);
  EXPECT_NE(st.error.find("instruction limit"), std::string::npos) << st.error;
}

TEST(client_script, a_table_as_a_checks_detail_is_written_out) {
  auto s = load(R"(check(false, "codes", {250, 354, group = "a"}))");
  ASSERT_EQ(s->start().st, status::finished);
  ASSERT_EQ(s->steps().size(), 1u);
  EXPECT_EQ(s->steps()[0].detail, "{250, 354, group = \"a\"}");
}

TEST(client_script, params_and_target_are_visible) {
  auto o = quick();
  o.params["duration"] = "3";
  auto s =
      load(R"(report("d", params.duration) report("t", target.host .. ":" .. target.port))", o);
  auto st = s->start();
  ASSERT_EQ(st.st, status::finished) << st.error;
  EXPECT_EQ(s->reports()[0].text, "3");
  EXPECT_EQ(s->reports()[1].text, "127.0.0.1:2525");
}

TEST(client_script, every_builtin_probe_loads) {
  for (const char* name : {"probe-smuggling", "probe-starttls-injection", "probe-slowloris",
                           "probe-long-lines", "probe-pipelining", "probe-auth-limits",
                           "probe-bdat", "probe-early-talker", "probe-conformance"}) {
    auto s = client_script::load_named(name, quick());
    EXPECT_TRUE(s) << name << ": " << (s ? "" : s.error());
  }
}

}  // namespace
}  // namespace smtpfault::script

namespace smtpfault::script {
namespace {

std::string read_client_meta() {
  std::ifstream in(std::string(SMTPFAULT_SOURCE_DIR) + "/lua/client.meta.lua");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Every global function and connection method the client API defines is annotated.
TEST(client_meta, every_function_is_documented) {
  auto s = load(R"(
    local standard = {}
    for _, n in ipairs { "assert", "error", "getmetatable", "ipairs", "load", "next", "pairs",
      "pcall", "rawequal", "rawget", "rawlen", "rawset", "select", "setmetatable", "tonumber",
      "tostring", "type", "xpcall", "warn", "require" } do standard[n] = true end
    local globals, methods = {}, {}
    for k, v in pairs(_G) do
      if type(v) == "function" and not standard[k] then globals[#globals + 1] = k end
    end
    local c = connect {}
    for k, v in pairs(getmetatable(c)) do
      if type(v) == "function" and k:sub(1, 1) ~= "_" then methods[#methods + 1] = k end
    end
    report("globals", table.concat(globals, " "))
    report("methods", table.concat(methods, " "))
  )");
  ASSERT_EQ(s->start().op.what, kind::connect);
  ASSERT_EQ(s->resume(connected()).st, status::finished);
  const std::string meta = read_client_meta();
  ASSERT_EQ(meta.rfind("---@meta", 0), 0u);
  std::istringstream globals(s->reports().at(0).text), methods(s->reports().at(1).text);
  int n = 0;
  for (std::string name; globals >> name; ++n)
    EXPECT_NE(meta.find("function " + name + "("), std::string::npos) << name;
  for (std::string name; methods >> name; ++n)
    EXPECT_NE(meta.find("function Connection:" + name + "("), std::string::npos) << name;
  EXPECT_GT(n, 40);
}

}  // namespace
}  // namespace smtpfault::script
