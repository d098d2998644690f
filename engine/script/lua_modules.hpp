// require(name) inside the sandbox: a module is a .lua file beside the scenario (or client
// script), loaded as text, run once per state, and shared by every later require of its name.
#pragma once

#include <string>
#include <string_view>

#include "proto/expected.hpp"

struct lua_State;

namespace smtpfault::script {

// The file require(name) reads from folder ("lib.helpers": FOLDER/lib/helpers.lua), or why the
// name is no module's ("require 'x': ..."). An empty folder (a built-in, source text) has none.
proto::expected<std::string, std::string> module_path(const std::string& folder,
                                                      std::string_view name);

// The `require` global: "lib.helpers" loads FOLDER/lib/helpers.lua, where FOLDER is the
// sandbox's module folder (see lua_sandbox::set_module_folder).
int lua_require(lua_State* L);

}  // namespace smtpfault::script
