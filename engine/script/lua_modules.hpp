// require(name) inside the sandbox: a module is a .lua file beside the scenario (or client
// script), loaded as text, run once per state, and shared by every later require of its name.
#pragma once

struct lua_State;

namespace smtpfault::script {

// The `require` global: "lib.helpers" loads FOLDER/lib/helpers.lua, where FOLDER is the
// sandbox's module folder (see lua_sandbox::set_module_folder).
int lua_require(lua_State* L);

}  // namespace smtpfault::script
