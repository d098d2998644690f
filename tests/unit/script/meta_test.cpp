// The editor annotations (SPEC 4: "editor type annotations (LuaLS `---@meta`) for completion")
// must cover the API as it exists at run time, so a function added to either half of the smtp
// table without documentation fails here.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "harness.hpp"

namespace smtpfault::script::testing {
namespace {

std::string read_meta() {
  std::ifstream in(std::string(SMTPFAULT_SOURCE_DIR) + "/lua/smtp.meta.lua");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;)
    out.push_back(w);
  return out;
}

// Names of the functions on a table, found without tripping the typo-checking metatable.
std::vector<std::string> runtime_functions(const std::string& table_expr) {
  driver d(R"(
local function names(t)
  local out = {}
  for k, v in next, t do
    if type(k) == "string" and type(rawget(t, k)) == "function" and k:sub(1, 1) ~= "_" then
      out[#out + 1] = k
    end
  end
  table.sort(out)
  return table.concat(out, " ")
end
function on_connect(s) return smtp.reply(250, names()" +
           table_expr + R"()) end
)");
  auto o = d.start(hook::connect);
  EXPECT_EQ(o.st, status::done) << o.error;
  return o.action.reply ? split(o.action.reply->lines.at(0)) : std::vector<std::string>{};
}

TEST(meta, file_is_a_luals_meta_file) {
  std::string meta = read_meta();
  ASSERT_FALSE(meta.empty()) << "lua/smtp.meta.lua is missing";
  EXPECT_EQ(meta.rfind("---@meta", 0), 0u);
}

TEST(meta, every_smtp_function_is_documented) {
  std::string meta = read_meta();
  auto names = runtime_functions("smtp");
  ASSERT_GE(names.size(), 30u);
  for (const auto& name : names) {
    EXPECT_NE(meta.find("function smtp." + name + "("), std::string::npos) << "smtp." << name;
  }
}

TEST(meta, every_action_method_is_documented) {
  std::string meta = read_meta();
  auto names = runtime_functions("smtp._action_metatable");
  ASSERT_GE(names.size(), 5u);
  for (const auto& name : names) {
    EXPECT_NE(meta.find("function action:" + name + "("), std::string::npos) << name;
  }
}

TEST(meta, every_hook_and_session_field_is_documented) {
  std::string meta = read_meta();
  for (int h = 0; h <= static_cast<int>(hook::disconnect); ++h) {
    std::string name = std::string("function on_") + session::hook_name(static_cast<hook>(h));
    EXPECT_NE(meta.find(name + "("), std::string::npos) << name;
  }
  EXPECT_NE(meta.find("function expect("), std::string::npos);
  for (const char* field :
       {"id", "client", "client_ip", "client_port", "helo", "tls", "tls_version", "auth_user",
        "lmtp", "implicit_tls", "messages", "mail_from", "rcpts", "commands", "state"}) {
    EXPECT_NE(meta.find(std::string("---@field ") + field + " "), std::string::npos) << field;
  }
}

// The session table as the host fills it has no field the annotations leave out.
TEST(meta, session_table_has_only_documented_fields) {
  std::string meta = read_meta();
  driver d(R"(
function on_connect(s)
  local out = {}
  for k in pairs(s) do out[#out + 1] = k end
  table.sort(out)
  return smtp.reply(250, table.concat(out, " "))
end
)");
  auto o = d.start(hook::connect);
  ASSERT_EQ(o.st, status::done) << o.error;
  auto fields = split(o.action.reply->lines.at(0));
  EXPECT_GE(fields.size(), 14u);
  for (const auto& f : fields)
    EXPECT_NE(meta.find("---@field " + f + " "), std::string::npos) << f;
}

}  // namespace
}  // namespace smtpfault::script::testing
