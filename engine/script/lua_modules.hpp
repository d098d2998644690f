// require(name) inside the sandbox: a module is a .lua file beside the scenario (or client
// script), loaded as text, run once per state, and shared by every later require of its name.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "proto/expected.hpp"
#include "script/lua_sandbox.hpp"

struct lua_State;

namespace smtpfault::script {

// The file require(name) reads from folder ("lib.helpers": FOLDER/lib/helpers.lua), or why the
// name is no module's ("require 'x': ..."). An empty folder (a built-in, source text) has none.
proto::expected<std::string, std::string> module_path(const std::string& folder,
                                                      std::string_view name);

// Each require of a literal name in code (the chunk `chunkname`), looked for in the sandbox's
// module folder and compiled, not run: what `check` and a scenario's load can know of modules a
// hook requires only when it runs. Their texts, or the first that is missing or does not compile
// ("a.lua:3: require 'lib.b': ...").
proto::expected<std::vector<lua_sandbox::module_source>, std::string> compile_literal_requires(
    lua_sandbox& sandbox, std::string_view code, const std::string& chunkname);

// The `require` global: "lib.helpers" loads FOLDER/lib/helpers.lua, where FOLDER is the
// sandbox's module folder (see lua_sandbox::set_module_folder).
int lua_require(lua_State* L);

}  // namespace smtpfault::script
