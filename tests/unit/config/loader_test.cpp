#include "config/loader.hpp"

#include <gtest/gtest.h>
#include <algorithm>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "test_sources.hpp"

namespace smtpfault::config {
namespace {

namespace fs = std::filesystem;

// ---- parse_endpoint ----

TEST(parse_endpoint, ipv4_and_names) {
  auto e = parse_endpoint("127.0.0.1:2525");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->host, "127.0.0.1");
  EXPECT_EQ(e->port, 2525);
  EXPECT_EQ(e->to_string(), "127.0.0.1:2525");

  e = parse_endpoint("localhost:65535");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->host, "localhost");
  EXPECT_EQ(e->port, 65535);
}

TEST(parse_endpoint, port_zero_is_ephemeral) {
  auto e = parse_endpoint("0.0.0.0:0");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->port, 0);
}

TEST(parse_target, port_zero_names_no_server) {
  auto e = parse_target("127.0.0.1:0");
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().find("from 1 to 65535"), std::string::npos) << e.error();
  // Any bad port gets the range that holds for a target, not the listener's 0 to 65535.
  e = parse_target("127.0.0.1:70000");
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().find("from 1 to 65535"), std::string::npos) << e.error();
  e = parse_target("[::1]:25");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->host, "::1");
}

TEST(parse_endpoint, ipv6_bracketed) {
  auto e = parse_endpoint("[::1]:2525");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->host, "::1");
  EXPECT_EQ(e->port, 2525);
  EXPECT_EQ(e->to_string(), "[::1]:2525");

  e = parse_endpoint("[::]:25");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->host, "::");
  EXPECT_EQ(e->to_string(), "[::]:25");
}

TEST(parse_endpoint, bad_forms) {
  for (const char* text :
       {"", "127.0.0.1", "127.0.0.1:", ":25", "host:port", "host:65536", "host:-1", "host:+25",
        "host:123456", "::1:25", "[::1]", "[::1]25", "[::1:25", "[]:25", "[localhost]:25",
        "smtp://host:25", "a b:25", "host:25 "}) {
    auto e = parse_endpoint(text);
    EXPECT_FALSE(e) << "accepted '" << text << "'";
    if (!e) {
      EXPECT_NE(e.error().find(std::string("bad address '") + text + "'"), std::string::npos)
          << e.error();
    }
  }
}

TEST(parse_endpoint, messages_explain) {
  EXPECT_EQ(parse_endpoint("127.0.0.1").error(),
            "bad address '127.0.0.1' (expected HOST:PORT or [IPV6]:PORT)");
  // Two at once is not an IPv6 address without brackets.
  EXPECT_NE(parse_endpoint("127.0.0.1:1,127.0.0.1:2")
                .error()
                .find("more than one address in one value: give one here"),
            std::string::npos);
  EXPECT_NE(parse_endpoint("::1:25").error().find("needs brackets"), std::string::npos);
  EXPECT_NE(parse_endpoint("h:70000").error().find("0 to 65535"), std::string::npos);
}

// ---- TOML ----

TEST_F(config_files, every_key_type_from_toml) {
  const auto path = write("all.toml", R"(
listen = ["127.0.0.1:2526", "[::1]:2527"]
tls_listen = "0.0.0.0:4650"
api = "[::1]:8026"
hostname = "mx.example"
scenario = "greylist"
seed = 42
time_scale = 0.5
store = "/tmp/store"
log_format = "json"
lmtp = true
threads = 3
max_connections = 7
idle_timeout = 12
tls_handshake_timeout = 2.5

[tls]
cert = "cert.pem"
key = "key.pem"
names = ["smtpfault", "*.mail.test", "10.0.0.5", "fd00::1"]

[limits]
command_line = 100
text_line = 0
auth_line = 2000
max_recipients = 5
max_message_size = 1048576
local_part = 10
domain = 20
path = 30

[auth.users]
alice = "secret"
bob = "pw"
)");
  settings s;
  ASSERT_TRUE(apply_file(s, path)) << error_of(apply_file(s, path));
  ASSERT_EQ(s.listen.size(), 2u);
  EXPECT_EQ(s.listen[0].to_string(), "127.0.0.1:2526");
  EXPECT_EQ(s.listen[1].to_string(), "[::1]:2527");
  ASSERT_EQ(s.tls_listen.size(), 1u);
  EXPECT_EQ(s.tls_listen[0].to_string(), "0.0.0.0:4650");
  EXPECT_EQ(s.api.to_string(), "[::1]:8026");
  EXPECT_EQ(s.hostname, "mx.example");
  EXPECT_EQ(s.scenario, "greylist");
  EXPECT_EQ(s.seed, 42u);
  EXPECT_DOUBLE_EQ(s.time_scale, 0.5);
  EXPECT_EQ(s.store, "/tmp/store");
  EXPECT_EQ(s.log_format, "json");
  EXPECT_TRUE(s.lmtp);
  EXPECT_EQ(s.threads, 3u);
  EXPECT_EQ(s.max_connections, 7u);
  EXPECT_DOUBLE_EQ(s.idle_timeout, 12);
  EXPECT_DOUBLE_EQ(s.tls_handshake_timeout, 2.5);
  EXPECT_EQ(s.tls_cert, "cert.pem");
  EXPECT_EQ(s.tls_key, "key.pem");
  EXPECT_EQ(s.tls_names,
            (std::vector<std::string>{"smtpfault", "*.mail.test", "10.0.0.5", "fd00::1"}));
  EXPECT_EQ(s.limits.command_line, 100u);
  EXPECT_EQ(s.limits.text_line, 0u);
  EXPECT_EQ(s.limits.auth_line, 2000u);
  EXPECT_EQ(s.limits.max_recipients, 5u);
  EXPECT_EQ(s.limits.max_message_size, 1048576u);
  EXPECT_EQ(s.limits.local_part, 10u);
  EXPECT_EQ(s.limits.domain, 20u);
  EXPECT_EQ(s.limits.path, 30u);
  ASSERT_EQ(s.auth_users.size(), 2u);
  EXPECT_EQ(s.auth_users[0].name, "alice");
  EXPECT_EQ(s.auth_users[0].password, "secret");
  EXPECT_EQ(s.auth_users[1].name, "bob");
  EXPECT_EQ(s.auth_users[1].password, "pw");
}

TEST_F(config_files, dotted_keys_and_empty_list) {
  const auto path = write("dotted.toml", "limits.command_line = 600\nlisten = []\n");
  settings s;
  ASSERT_TRUE(apply_file(s, path)) << error_of(apply_file(s, path));
  EXPECT_EQ(s.limits.command_line, 600u);
  EXPECT_TRUE(s.listen.empty());
  EXPECT_EQ(s.hostname, "smtpfault.test");  // untouched keys keep their defaults
}

TEST_F(config_files, unknown_key_names_line_and_suggests) {
  const auto path = write("typo.toml", "hostname = \"x\"\n\n[limts]\ncommand_line = 5\n");
  settings s;
  EXPECT_EQ(error_of(apply_file(s, path)),
            path + ":3:2: unknown key 'limts' (did you mean 'limits'?)");
}

TEST_F(config_files, unknown_nested_key) {
  const auto path = write("nested.toml", "[limits]\ncomand_line = 5\n");
  settings s;
  EXPECT_EQ(error_of(apply_file(s, path)),
            path + ":2:1: unknown key 'limits.comand_line' (did you mean 'limits.command_line'?)");
}

TEST_F(config_files, a_key_outside_its_table_is_pointed_to_it) {
  const auto path = write("placed.toml", "text_line = 2000\n");
  settings s;
  EXPECT_EQ(error_of(apply_file(s, path)),
            path + ":1:1: unknown key 'text_line' (did you mean 'limits.text_line'?)");
}

TEST_F(config_files, unknown_key_without_close_match) {
  const auto path = write("far.toml", "zzzzzzzz = 1\n");
  settings s;
  EXPECT_EQ(error_of(apply_file(s, path)), path + ":1:1: unknown key 'zzzzzzzz'");
}

// toml++ nests a table per dotted part and recursed through 100,000 of them off the stack.
TEST_F(config_files, a_key_of_too_many_parts_is_refused_before_parsing) {
  std::string deep = "[a";
  for (int i = 0; i < 100000; ++i)
    deep += ".a";
  auto path = write("deep.toml", "# a.a.a\napi_token = \"x.y.z\"\n\n" + deep + "]\n");
  settings s;
  EXPECT_EQ(error_of(apply_file(s, path)), path + ":4:2: a key of more than 64 dotted parts");
  path = write("deep_key.toml", "api_token = \"x\"\nq . \"r\"" + deep.substr(2) + " = 1\n");
  EXPECT_EQ(error_of(apply_file(s, path)), path + ":2:1: a key of more than 64 dotted parts");
  // Dots in strings, multi-line strings, comments and floats are no key's.
  const std::string dots(200, '.');
  path = write("dots.toml", "api_token = \"" + dots + "\" # " + dots + "\n" +
                                R"(scenario_params = ["k=)" + dots + R"(", """j=)" + dots +
                                R"(""", '''i=)" + dots + "''']\n" + "limits.command_line = 600\n");
  EXPECT_TRUE(apply_file(s, path)) << error_of(apply_file(s, path));
}

TEST_F(config_files, wrong_type_names_file_line_and_key) {
  const auto path = write("type.toml", "[limits]\n\ncommand_line = \"big\"\n");
  settings s;
  EXPECT_EQ(error_of(apply_file(s, path)),
            path + ":3:16: key 'limits.command_line': expected an integer, got string");
}

TEST_F(config_files, wrong_types_per_kind) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"lmtp = 1", "key 'lmtp': expected a boolean, got integer"},
      {"hostname = 5", "key 'hostname': expected a string, got integer"},
      {"time_scale = \"fast\"", "key 'time_scale': expected a number, got string"},
      {"api = 8025", "key 'api': expected an address string, got integer"},
      {"listen = 5", "key 'listen': expected an array of address strings, got integer"},
      {"listen = [\"127.0.0.1:1\", 5]", "key 'listen': expected an address string, got integer"},
      {"tls = 5", "key 'tls': expected a table, got integer"},
      {"[auth]\nusers = \"alice:x\"",
       "key 'auth.users': expected a table of name = \"password\", got string"},
      {"[auth.users]\nalice = 5", "key 'auth.users.alice': expected a string, got integer"},
      {"threads = 1.5", "key 'threads': expected an integer, got float"},
      {"tls.names = 5", "key 'tls.names': expected an array of name strings, got integer"},
      {"tls.names = [\"a\", 5]", "key 'tls.names': expected a string, got integer"},
  };
  for (const auto& [text, expected] : cases) {
    const auto path = write("kind.toml", text + "\n");
    settings s;
    const auto message = error_of(apply_file(s, path));
    EXPECT_NE(message.find(expected), std::string::npos) << text << " -> " << message;
    EXPECT_TRUE(message.starts_with(path + ":")) << message;
  }
}

TEST_F(config_files, bad_address_in_file) {
  const auto path =
      write("addr.toml", "hostname = \"x\"\nlmtp = false\nlisten = [\"127.0.0.1\"]\n");
  settings s;
  EXPECT_EQ(
      error_of(apply_file(s, path)),
      path + ":3:11: key 'listen': bad address '127.0.0.1' (expected HOST:PORT or [IPV6]:PORT)");
}

TEST_F(config_files, value_rules) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"log_format = \"xml\"",
       "key 'log_format': must be one of 'text', 'json', 'none'; got 'xml'"},
      {"max_connections = 0", "key 'max_connections': must be at least 1, got 0"},
      {"limits.max_recipients = 0", "key 'limits.max_recipients': must be at least 1, got 0"},
      {"threads = -2", "key 'threads': must be at least 0, got -2"},
      {"threads = 5000000000", "key 'threads': must be at most 256, got 5000000000"},
      {"time_scale = 0", "key 'time_scale': must be greater than 0, got 0"},
      {"idle_timeout = -1.5", "key 'idle_timeout': must be greater than 0, got -1.5"},
      {"tls_handshake_timeout = inf", "key 'tls_handshake_timeout': must be a finite number"},
      {"tls.names = \"smtp fault\"",
       "key 'tls.names': cannot go into a certificate: 'smtp fault' (DNS names hold letters, "
       "digits, '-' and '.')"},
      {"tls.names = [\"a..b\"]",
       "key 'tls.names': cannot go into a certificate: 'a..b' (an empty label)"},
      {"tls.names = [\"-a\"]", "label starts or ends with '-'"},
      {"tls.names = [\"fd00::zz\"]", "'fd00::zz' (not an IPv6 address)"},
      {"tls.names = [\"999.1.1.1\"]", "'999.1.1.1' (not an IPv4 address)"},
      {"tls.names = [\"1.2.3\"]", "'1.2.3' (not an IPv4 address)"},
      {"idle_timeout = 1e-300", "key 'idle_timeout': must be at least 0.001, got 1e-300"},
      {"command_timeout = 0.0005", "key 'command_timeout': must be at least 0.001, got 5e-04"},
      {"limits.command_line = 3", "key 'limits.command_line': must be at least 64, got 3"},
      {"limits.auth_line = 99999999999",
       "key 'limits.auth_line': must be at most 1048576, got 99999999999"},
      {"hostname = \"a\\r\\nb\"",
       "key 'hostname': must be one word of printable ASCII (no spaces, CR or LF)"},
      {"hostname = \"\"", "key 'hostname': must not be empty"},
      {"hostname = \"" + std::string(256, 'h') + "\"",
       "key 'hostname': must be at most 255 octets, got 256"},
  };
  for (const auto& [text, expected] : cases) {
    const auto path = write("rule.toml", text + "\n");
    settings s;
    const auto message = error_of(apply_file(s, path));
    EXPECT_TRUE(message.starts_with(path + ":1:")) << message;
    EXPECT_NE(message.find(expected), std::string::npos) << text << " -> " << message;
  }
}

TEST_F(config_files, first_problem_in_file_order_is_reported) {
  // "zeta" sorts after "lmtp", but it comes first in the file.
  const auto path = write("order.toml", "zeta = 1\nlmtp = 3\n");
  settings s;
  EXPECT_TRUE(error_of(apply_file(s, path)).starts_with(path + ":1:1: unknown key 'zeta'"));
}

TEST_F(config_files, rejected_file_leaves_settings_untouched) {
  const auto path = write("partial.toml", "hostname = \"changed\"\nlmtp = \"no\"\n");
  settings s;
  EXPECT_FALSE(apply_file(s, path));
  EXPECT_EQ(s.hostname, "smtpfault.test");
}

TEST_F(config_files, toml_syntax_error) {
  const auto path = write("syntax.toml", "hostname = \"x\"\nlisten = [\n");
  settings s;
  const auto message = error_of(apply_file(s, path));
  EXPECT_TRUE(message.starts_with(path + ":")) << message;
  // PATH:LINE:COLUMN: description
  const auto rest = message.substr(path.size() + 1);
  EXPECT_TRUE(std::isdigit(static_cast<unsigned char>(rest[0]))) << message;
  EXPECT_GT(rest.size(), rest.find(": ") + 2) << message;
}

TEST_F(config_files, duplicate_key_is_syntax_error) {
  const auto path = write("dup.toml", "lmtp = true\nlmtp = false\n");
  settings s;
  EXPECT_TRUE(error_of(apply_file(s, path)).starts_with(path + ":2:"))
      << error_of(apply_file(s, path));
}

TEST_F(config_files, missing_file) {
  const auto path = (dir_ / "absent.toml").string();
  settings s;
  EXPECT_EQ(error_of(apply_file(s, path)), path + ": cannot open file: No such file or directory");
}

TEST_F(config_files, directory_is_not_a_file) {
  settings s;
  const auto message = error_of(apply_file(s, dir_.string()));
  EXPECT_EQ(message, dir_.string() + ": cannot read file: Is a directory");
}

// ---- layering ----

TEST_F(config_files, file_then_environment_then_flags) {
  const auto path = write("layer.toml",
                          "hostname = \"file\"\nstore = \"file-store\"\nseed = 1\n"
                          "[limits]\ncommand_line = 600\n");
  fake_env env{"SMTPFAULT_STORE=env-store", "SMTPFAULT_SEED=2"};
  settings s;
  ASSERT_TRUE(apply_file(s, path));
  ASSERT_TRUE(apply_environment(s, env.get()));
  ASSERT_TRUE(apply_text(s, "seed", "3", "--seed"));
  EXPECT_EQ(s.hostname, "file");           // only the file set it
  EXPECT_EQ(s.store, "env-store");         // environment beats file
  EXPECT_EQ(s.seed, 3u);                   // flag beats both
  EXPECT_EQ(s.limits.command_line, 600u);  // file value survives later layers
  EXPECT_EQ(s.limits.text_line, 1000u);    // default survives all layers
}

// ---- known_keys ----

TEST(known_keys, lists_every_key_with_environment_name) {
  const auto& keys = known_keys();
  // Every key of the documented set is listed (new keys may be added without touching this).
  for (const char* path : {"listen",
                           "tls_listen",
                           "api",
                           "hostname",
                           "scenario",
                           "seed",
                           "time_scale",
                           "store",
                           "log_format",
                           "lmtp",
                           "threads",
                           "max_connections",
                           "idle_timeout",
                           "tls_handshake_timeout",
                           "tls.cert",
                           "tls.key",
                           "limits.command_line",
                           "limits.text_line",
                           "limits.auth_line",
                           "limits.max_recipients",
                           "limits.max_message_size",
                           "limits.local_part",
                           "limits.domain",
                           "limits.path",
                           "lua.memory",
                           "lua.instructions",
                           "auth.users"}) {
    EXPECT_TRUE(std::any_of(keys.begin(), keys.end(), [&](const auto& k) {
      return k.path == path;
    })) << path;
  }
  auto find = [&](const std::string& path) -> const key_info* {
    for (const auto& k : keys) {
      if (k.path == path) return &k;
    }
    return nullptr;
  };
  const auto* listen = find("listen");
  ASSERT_NE(listen, nullptr);
  EXPECT_EQ(listen->env, "SMTPFAULT_LISTEN");
  EXPECT_EQ(listen->type, "address list");
  ASSERT_NE(find("limits.command_line"), nullptr);
  ASSERT_NE(find("lua.instructions"), nullptr);
  EXPECT_EQ(find("lua.memory")->env, "SMTPFAULT_LUA_MEMORY");
  EXPECT_EQ(find("limits.command_line")->env, "SMTPFAULT_LIMITS_COMMAND_LINE");
  ASSERT_NE(find("tls.cert"), nullptr);
  EXPECT_EQ(find("tls.cert")->env, "SMTPFAULT_TLS_CERT");
  for (const auto& k : keys) {
    EXPECT_FALSE(k.help.empty()) << k.path;
  }
}

}  // namespace
}  // namespace smtpfault::config
