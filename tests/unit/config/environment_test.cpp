// Settings from the environment (SMTPFAULT_* variables) and from flags' text: every kind of
// key, and errors that name the variable or the flag.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/loader.hpp"
#include "test_sources.hpp"

namespace smtpfault::config {
namespace {

// ---- environment ----

TEST(environment, every_key_type) {
  fake_env env{"SMTPFAULT_LISTEN=127.0.0.1:1, [::1]:2",
               "SMTPFAULT_API=[::1]:9000",
               "SMTPFAULT_HOSTNAME=env.example",
               "SMTPFAULT_SEED=18446744073709551615",
               "SMTPFAULT_TIME_SCALE=2.5",
               "SMTPFAULT_LMTP=yes",
               "SMTPFAULT_LIMITS_COMMAND_LINE=700",
               "SMTPFAULT_TLS_CERT=/etc/c.pem",
               "SMTPFAULT_AUTH_USERS=alice:secret,bob:p:w",
               "PATH=/usr/bin",
               "SMTPFAULT_API_TOKEN=ignored",
               "smtpfault_lowercase=ignored"};
  settings s;
  auto r = apply_environment(s, env.get());
  ASSERT_TRUE(r) << error_of(r);
  ASSERT_EQ(s.listen.size(), 2u);
  EXPECT_EQ(s.listen[1].to_string(), "[::1]:2");
  EXPECT_EQ(s.api.to_string(), "[::1]:9000");
  EXPECT_EQ(s.hostname, "env.example");
  EXPECT_EQ(s.seed, 18446744073709551615u);
  EXPECT_DOUBLE_EQ(s.time_scale, 2.5);
  EXPECT_TRUE(s.lmtp);
  EXPECT_EQ(s.limits.command_line, 700u);
  EXPECT_EQ(s.tls_cert, "/etc/c.pem");
  ASSERT_EQ(s.auth_users.size(), 2u);
  EXPECT_EQ(s.auth_users[1].name, "bob");
  EXPECT_EQ(s.auth_users[1].password, "p:w");  // split at the first colon only
}

TEST(environment, unknown_variable_is_named) {
  fake_env env{"SMTPFAULT_LISTN=127.0.0.1:1"};
  settings s;
  EXPECT_EQ(error_of(apply_environment(s, env.get())),
            "environment variable SMTPFAULT_LISTN: unknown variable (did you mean "
            "'SMTPFAULT_LISTEN'?)");
  // A key's own name without its table: the key of that name, not the nearest spelling.
  fake_env cert{"SMTPFAULT_CERT=/c.pem"};
  EXPECT_EQ(error_of(apply_environment(s, cert.get())),
            "environment variable SMTPFAULT_CERT: unknown variable (did you mean "
            "'SMTPFAULT_TLS_CERT'?)");
  // Words of one variable, one left out: that variable, not the nearest spelling.
  fake_env timeout{"SMTPFAULT_TLS_TIMEOUT=5"};
  EXPECT_EQ(error_of(apply_environment(s, timeout.get())),
            "environment variable SMTPFAULT_TLS_TIMEOUT: unknown variable (did you mean "
            "'SMTPFAULT_TLS_HANDSHAKE_TIMEOUT'?)");
  // A command's variable with its command's name misspelt: that command's prefix (the command
  // itself judges the rest).
  fake_env command{"SMTPFAULT_HEALTHCHEK_TIMOUT=1"};
  EXPECT_EQ(error_of(apply_environment(s, command.get())),
            "environment variable SMTPFAULT_HEALTHCHEK_TIMOUT: unknown variable "
            "(SMTPFAULT_HEALTHCHEK_ reads like SMTPFAULT_HEALTHCHECK_, the prefix of smtpfault "
            "healthcheck's variables)");
  // A word of serve's own keys is no slip of a command's name.
  fake_env seed{"SMTPFAULT_SEED_X=1"};
  EXPECT_EQ(error_of(apply_environment(s, seed.get())).find("reads like"), std::string::npos);
}

// A compose file's SMTPFAULT_SEED=${SEED:-} leaves the seed unset, as the key's help says.
TEST(environment, an_empty_seed_is_left_unset) {
  fake_env env{"SMTPFAULT_SEED="};
  settings s;
  ASSERT_TRUE(apply_environment(s, env.get()));
  EXPECT_FALSE(s.seed);
}

TEST(environment, bad_values_name_the_variable) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"SMTPFAULT_LISTEN=127.0.0.1",
       "environment variable SMTPFAULT_LISTEN: bad address '127.0.0.1' (expected HOST:PORT or "
       "[IPV6]:PORT)"},
      {"SMTPFAULT_LIMITS_COMMAND_LINE=big",
       "environment variable SMTPFAULT_LIMITS_COMMAND_LINE: expected an unsigned integer, got "
       "'big'"},
      {"SMTPFAULT_LMTP=maybe",
       "environment variable SMTPFAULT_LMTP: expected true/false/1/0/yes/no, got 'maybe'"},
      {"SMTPFAULT_LOG_FORMAT=xml",
       "environment variable SMTPFAULT_LOG_FORMAT: must be one of 'text', 'json', 'none'; got "
       "'xml'"},
      {"SMTPFAULT_IDLE_TIMEOUT=0",
       "environment variable SMTPFAULT_IDLE_TIMEOUT: must be greater than 0, got 0"},
      {"SMTPFAULT_AUTH_USERS=alice",
       "environment variable SMTPFAULT_AUTH_USERS: expected NAME:PASSWORD, got 'alice'"},
      {"SMTPFAULT_AUTH_USERS=a:1,a:2",
       "environment variable SMTPFAULT_AUTH_USERS: user 'a' is listed twice"},
      {"SMTPFAULT_TLS_LISTEN=127.0.0.1:1,,127.0.0.1:2",
       "environment variable SMTPFAULT_TLS_LISTEN: empty item in list "
       "'127.0.0.1:1,,127.0.0.1:2'"},
      {"SMTPFAULT_THREADS=-1",
       "environment variable SMTPFAULT_THREADS: expected an unsigned integer, got '-1'"},
      {"SMTPFAULT_TLS_NAMES=smtpfault,mail/x",
       "environment variable SMTPFAULT_TLS_NAMES: cannot go into a certificate: 'mail/x' (DNS "
       "names hold letters, digits, '-' and '.')"},
  };
  for (const auto& [entry, expected] : cases) {
    fake_env env{entry};
    settings s;
    EXPECT_EQ(error_of(apply_environment(s, env.get())), expected);
  }
}

TEST(environment, rejected_environment_leaves_settings_untouched) {
  fake_env env{"SMTPFAULT_HOSTNAME=changed", "SMTPFAULT_LMTP=maybe"};
  settings s;
  EXPECT_FALSE(apply_environment(s, env.get()));
  EXPECT_EQ(s.hostname, "smtpfault.test");
}

TEST(environment, null_and_empty) {
  settings s;
  EXPECT_TRUE(apply_environment(s, nullptr));
  fake_env env{"SMTPFAULT_TLS_LISTEN=", "SMTPFAULT_AUTH_USERS="};
  ASSERT_TRUE(apply_environment(s, env.get()));
  EXPECT_TRUE(s.tls_listen.empty());
  EXPECT_TRUE(s.auth_users.empty());
}

// ---- flags (apply_text) ----

TEST(text, every_key_type) {
  settings s;
  EXPECT_TRUE(apply_text(s, "listen", "127.0.0.1:1,127.0.0.1:2", "--listen"));
  EXPECT_TRUE(apply_text(s, "api", "127.0.0.1:3", "--api"));
  EXPECT_TRUE(apply_text(s, "store", "/var/mail", "--store"));
  EXPECT_TRUE(apply_text(s, "seed", "7", "--seed"));
  EXPECT_TRUE(apply_text(s, "idle_timeout", "1e2", "--idle-timeout"));
  EXPECT_TRUE(apply_text(s, "lmtp", "TRUE", "--lmtp"));
  EXPECT_TRUE(apply_text(s, "limits.max_message_size", "0", "--limits.max-message-size"));
  EXPECT_TRUE(apply_text(s, "auth.users", "carol:x", "--auth-users"));
  EXPECT_TRUE(apply_text(s, "tls-listen", "[::]:465", "--tls-listen"));  // flag spelling
  EXPECT_TRUE(apply_text(s, "tls.names", "smtpfault, ::1", "--tls-names"));
  EXPECT_EQ(s.tls_names, (std::vector<std::string>{"smtpfault", "::1"}));
  ASSERT_EQ(s.listen.size(), 2u);
  EXPECT_EQ(s.listen[1].port, 2);
  EXPECT_EQ(s.api.port, 3);
  EXPECT_EQ(s.store, "/var/mail");
  EXPECT_EQ(s.seed, 7u);
  EXPECT_DOUBLE_EQ(s.idle_timeout, 100);
  EXPECT_TRUE(s.lmtp);
  EXPECT_EQ(s.limits.max_message_size, 0u);
  ASSERT_EQ(s.auth_users.size(), 1u);
  EXPECT_EQ(s.auth_users[0].name, "carol");
  ASSERT_EQ(s.tls_listen.size(), 1u);
  EXPECT_EQ(s.tls_listen[0].to_string(), "[::]:465");
}

TEST(text, errors_name_the_flag) {
  settings s;
  EXPECT_EQ(error_of(apply_text(s, "listen", "127.0.0.1", "--listen")),
            "--listen: bad address '127.0.0.1' (expected HOST:PORT or [IPV6]:PORT)");
  EXPECT_EQ(error_of(apply_text(s, "log_format", "yaml", "--log-format")),
            "--log-format: must be one of 'text', 'json', 'none'; got 'yaml'");
  EXPECT_EQ(error_of(apply_text(s, "limits.max_recipients", "0", "--max-recipients")),
            "--max-recipients: must be at least 1, got 0");
  // 0 is no "no limit" for an address's parts: it would refuse every address.
  for (const char* key : {"limits.local_part", "limits.domain", "limits.path"}) {
    EXPECT_EQ(error_of(apply_text(s, key, "0", "--set")), "--set: must be at least 1, got 0")
        << key;
  }
  EXPECT_EQ(error_of(apply_text(s, "seed", "99999999999999999999", "--seed")),
            "--seed: expected an unsigned integer, got '99999999999999999999'");
  EXPECT_EQ(error_of(apply_text(s, "time_scale", "fast", "--time-scale")),
            "--time-scale: expected a number, got 'fast'");
  EXPECT_EQ(error_of(apply_text(s, "hostnme", "x", "--hostnme")),
            "--hostnme: unknown key 'hostnme' (did you mean 'hostname'?)");
  // Two neighbours swapped is one slip, not two edits: short words allow only one.
  EXPECT_EQ(error_of(apply_text(s, "lmpt", "true", "--set lmpt")),
            "--set lmpt: unknown key 'lmpt' (did you mean 'lmtp'?)");
  // A misspelt table, as a TOML file's [limts] gets its hint.
  EXPECT_EQ(error_of(apply_text(s, "limts.x", "1", "--set limts.x")),
            "--set limts.x: unknown key 'limts.x' (did you mean 'limits'?)");
  EXPECT_EQ(error_of(apply_text(s, "limits.foo", "1", "--set limits.foo")),
            "--set limits.foo: unknown key 'limits.foo'");
  // A key in the wrong table, or in none: the key of that name.
  EXPECT_EQ(error_of(apply_text(s, "text_line", "2000", "--set text_line")),
            "--set text_line: unknown key 'text_line' (did you mean 'limits.text_line'?)");
  EXPECT_EQ(error_of(apply_text(s, "limits.max_connections", "5", "--set limits.max_connections")),
            "--set limits.max_connections: unknown key 'limits.max_connections' (did you mean "
            "'max_connections'?)");
  // A table is not a key: it was said to be misspelt as itself.
  EXPECT_EQ(error_of(apply_text(s, "limits", "5", "--set limits")),
            "--set limits: 'limits' is a table: set one of its keys, e.g. "
            "limits.command_line=...");
}

}  // namespace
}  // namespace smtpfault::config
