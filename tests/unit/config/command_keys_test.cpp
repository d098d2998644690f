#include "config/command_keys.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/loader.hpp"
#include "test_sources.hpp"

namespace smtpfault::config {
namespace {

// Flags, repeatable, numbers, integers, top-level, keyed, alternatives.
const command_keys send_keys{"send",
                             {"starttls", "verify"},
                             {"server", "to", "timeout", "tls-ca"},
                             {"to"},
                             {"timeout"},
                             {},
                             {"seed"},
                             {},
                             {"tls", "starttls"}};

// "name=value@origin" per flag, in order, or the error.
std::string flags_of(const proto::expected<std::vector<configured_flag>, config_error>& r) {
  if (!r) return "error: " + r.error().message;
  std::string out;
  for (const auto& f : *r)
    out += (out.empty() ? "" : "; ") + f.name + "=" + f.value + "@" + f.origin;
  return out;
}

class command_files : public config_files {};

TEST_F(command_files, the_commands_table_becomes_flags_that_name_their_key) {
  const auto path = write("mail.toml",
                          "hostname = \"x\"\n"
                          "[send]\n"
                          "server = \"mx:25\"\n"
                          "to = [\"a@x\", \"b@x\"]\n"
                          "timeout = 2.5\n"
                          "starttls = true\n"
                          "verify = false\n"
                          "tls_ca = \"ca.pem\"\n"
                          "[run]\n"
                          "target = \"elsewhere:1\"\n");
  fake_env env{};
  EXPECT_EQ(flags_of(read_command_flags(send_keys, path, env.get())),
            "server=mx:25@" + path + ":3:10: key 'send.server'; " +  //
                "to=a@x@" + path + ":4:7: key 'send.to'; " +         //
                "to=b@x@" + path + ":4:14: key 'send.to'; " +        //
                "timeout=2.5@" + path + ":5:11: key 'send.timeout'; " + "starttls=@" + path +
                ":6:12: key 'send.starttls'; " +  // verify = false: left out
                "tls-ca=ca.pem@" + path + ":8:10: key 'send.tls_ca'");
}

TEST_F(command_files, a_variable_replaces_the_files_values_of_its_key) {
  const auto path = write("mail.toml", "[send]\nto = [\"a@x\"]\nserver = \"mx:25\"\n");
  fake_env env{"SMTPFAULT_SEND_TO=c@x, d@x", "SMTPFAULT_SEND_VERIFY=yes",
               "SMTPFAULT_LISTEN=127.0.0.1:1"};
  EXPECT_EQ(flags_of(read_command_flags(send_keys, path, env.get())),
            "server=mx:25@" + path +
                ":3:10: key 'send.server'; "
                "to=c@x@environment variable SMTPFAULT_SEND_TO; "
                "to=d@x@environment variable SMTPFAULT_SEND_TO; "
                "verify=@environment variable SMTPFAULT_SEND_VERIFY");
  // Values are trimmed, as the server trims its own variables.
  fake_env spaced{"SMTPFAULT_SEND_SERVER= mx:25 "};
  EXPECT_EQ(flags_of(read_command_flags(send_keys, "", spaced.get())),
            "server=mx:25@environment variable SMTPFAULT_SEND_SERVER");
}

TEST_F(command_files, a_variable_replaces_one_key_of_a_keyed_flag_and_a_whole_group) {
  const command_keys run_keys{
      "run", {"tls", "starttls"}, {"param", "jobs"},  {"param"}, {"jobs"}, {"jobs"},
      {},    {"param"},           {"tls", "starttls"}};
  const auto path =
      write("run.toml", "[run]\nparam = [\"user=alice\", \"pass=x\"]\nstarttls = true\n");
  fake_env env{"SMTPFAULT_RUN_PARAM=user=carol", "SMTPFAULT_RUN_TLS=1"};
  EXPECT_EQ(flags_of(read_command_flags(run_keys, path, env.get())),
            "param=pass=x@" + path +
                ":2:24: key 'run.param'; "
                "param=user=carol@environment variable SMTPFAULT_RUN_PARAM; "
                "tls=@environment variable SMTPFAULT_RUN_TLS");
  fake_env none{};
  EXPECT_EQ(
      flags_of(read_command_flags(run_keys, write("f.toml", "[run]\njobs = 2.0\n"), none.get())),
      "error: " + (dir_ / "f.toml").string() +
          ":2:8: key 'run.jobs': expected an integer, got float");
  // A server key below the table's header is the table's in TOML: say so.
  EXPECT_EQ(
      flags_of(read_command_flags(run_keys, write("s.toml", "[run]\nlmtp = true\n"), none.get())),
      "error: " + (dir_ / "s.toml").string() +
          ":2:1: unknown key 'run.lmtp' ('lmtp' is a top-level key: put it above the first "
          "[table])");
}

// In a variable, a comma separates KEY=VALUE items only where a KEY= follows: a value may hold
// commas (a list of addresses), which a file's array or a repeated flag carries anyway.
TEST_F(command_files, a_keyed_variables_values_may_hold_commas) {
  const command_keys run_keys{"run", {}, {"param"}, {"param"}, {}, {}, {}, {"param"}, {}};
  fake_env env{"SMTPFAULT_RUN_PARAM=to=a@x.test,b@x.test, helo=h,n=1"};
  EXPECT_EQ(flags_of(read_command_flags(run_keys, "", env.get())),
            "param=to=a@x.test,b@x.test@environment variable SMTPFAULT_RUN_PARAM; "
            "param=helo=h@environment variable SMTPFAULT_RUN_PARAM; "
            "param=n=1@environment variable SMTPFAULT_RUN_PARAM");
  fake_env empty_item{"SMTPFAULT_RUN_PARAM=,a=1"};
  EXPECT_EQ(flags_of(read_command_flags(run_keys, "", empty_item.get())),
            "error: environment variable SMTPFAULT_RUN_PARAM: empty item in list ',a=1'");
}

TEST_F(command_files, mistakes_name_the_file_line_and_key) {
  fake_env env{};
  auto error_for = [&](const std::string& text) {
    return flags_of(read_command_flags(send_keys, write("bad.toml", text), env.get()))
        .substr(std::string("error: ").size());
  };
  const std::string p = (dir_ / "bad.toml").string();
  EXPECT_EQ(error_for("[send]\ntimout = 1\n"),
            p + ":2:1: unknown key 'send.timout' (did you mean 'send.timeout'?)");
  EXPECT_EQ(error_for("[send]\nstarttls = \"yes\"\n"),
            p + ":2:12: key 'send.starttls': expected a boolean, got string");
  EXPECT_EQ(error_for("[send]\nserver = [\"a:1\"]\n"),
            p + ":2:10: key 'send.server': expected one value, not an array");
  // Each item of a list is checked, and named where it is.
  EXPECT_EQ(error_for("[send]\nto = [\"a@x\", 5]\n"),
            p + ":2:14: key 'send.to': expected a string, got integer");
  EXPECT_EQ(error_for("[send]\ntimeout = \"5\"\n"),
            p + ":2:11: key 'send.timeout': expected a number, got string");
  EXPECT_EQ(error_for("send = 1\n"), p + ":1:8: key 'send': expected a table, got integer");
  // A flag the command takes from a top-level key is pointed there.
  EXPECT_EQ(error_for("[send]\nseed = 1\n"),
            p + ":2:1: key 'send.seed': the send command takes 'seed' from the top-level key "
                "(environment variable SMTPFAULT_SEED), not from [send]");
  EXPECT_EQ(error_for("[send\n").substr(0, p.size() + 3), p + ":1:");
}

TEST_F(command_files, mistakes_in_variables_name_the_variable) {
  fake_env unknown{"SMTPFAULT_SEND_TIMOUT=1"};
  EXPECT_EQ(flags_of(read_command_flags(send_keys, "", unknown.get())),
            "error: environment variable SMTPFAULT_SEND_TIMOUT: unknown variable (did you mean "
            "'SMTPFAULT_SEND_TIMEOUT'?)");
  fake_env top_level{"SMTPFAULT_SEND_SEED=1"};
  EXPECT_EQ(
      flags_of(read_command_flags(send_keys, "", top_level.get())),
      "error: environment variable SMTPFAULT_SEND_SEED: the send command takes 'seed' from "
      "the top-level key (environment variable SMTPFAULT_SEED), not from SMTPFAULT_SEND_SEED");
  fake_env not_boolean{"SMTPFAULT_SEND_STARTTLS=maybe"};
  EXPECT_EQ(flags_of(read_command_flags(send_keys, "", not_boolean.get())),
            "error: environment variable SMTPFAULT_SEND_STARTTLS: expected true/false/1/0/yes/no, "
            "got 'maybe'");
  EXPECT_EQ(flags_of(read_command_flags(send_keys, write("none.toml", "").append(".missing"),
                                        unknown.get()))
                .rfind("error: ", 0),
            0u);
}

// The server's reader leaves the commands' tables and variables to them, and still refuses
// anything else it does not know.
TEST_F(command_files, the_server_skips_the_commands_tables_and_variables) {
  const auto path = write("all.toml",
                          "hostname = \"mail.test\"\n[send]\nserver = \"mx:25\"\n[run]\nx = 1\n"
                          "[test]\njobs = 2\n[healthcheck]\ntimeout = 1\n");
  settings s;
  ASSERT_TRUE(apply_file(s, path));
  EXPECT_EQ(s.hostname, "mail.test");
  fake_env env{"SMTPFAULT_SEND_TO=a@x", "SMTPFAULT_RUN_TARGET=x:1", "SMTPFAULT_TEST_JUNIT=r.xml",
               "SMTPFAULT_HEALTHCHECK_TIMEOUT=1"};
  EXPECT_TRUE(apply_environment(s, env.get()));
  fake_env typo{"SMTPFAULT_SENDTO=a@x"};
  EXPECT_FALSE(apply_environment(s, typo.get()));
}

}  // namespace
}  // namespace smtpfault::config
