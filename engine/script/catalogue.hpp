// Lua sources compiled into the binary: the helper library and the built-in scenarios, so an
// installed smtpfault needs no data files.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/expected.hpp"

namespace smtpfault::script {

class lua_sandbox;

struct scenario_source {
  std::string code;
  std::string chunkname;  // shown in error messages: the path, or "scenarios/NAME.lua"
  std::string folder;     // the file's folder, where require() finds modules; "" for a built-in
};

struct builtin_scenario {
  std::string name;         // "greylist"
  std::string description;  // the first line of its header comment
  std::string_view code;
  std::string path;  // "scenarios/greylist.lua"
};

// The pure-Lua part of the scenario API (lua/smtp.lua, then lua/smtp_helpers.lua): the files
// in the order they run, each with its text.
struct library_file {
  const char* name;
  std::string_view code;
};
const std::vector<library_file>& helper_library();
// The API of client scenarios (`smtpfault run`): lua/client.lua, then lua/client_globals.lua.
const std::vector<library_file>& client_library();
// Runs a library's files in order, as library code (errors point at the script's line).
std::optional<std::string> run_library(lua_sandbox& sandbox,
                                       const std::vector<library_file>& files);
const std::vector<builtin_scenario>& builtin_scenarios();
// The probes in scenarios/client/.
const std::vector<builtin_scenario>& builtin_client_scenarios();

// What a loaded scenario is called for people: a built-in's name ("greylist") rather than the
// path its chunk carries for error messages ("scenarios/greylist.lua"); else the path.
std::string shown_name(const std::string& chunkname);

// A name of a built-in scenario, or a path to a .lua file (anything with a '/' or ".lua").
proto::expected<scenario_source, std::string> find_scenario_source(const std::string& name_or_path);
// The .lua files in a folder, in name order (`test --scenarios DIR`, `check DIR`); an error
// when it cannot be read or holds none.
proto::expected<std::vector<std::string>, std::string> lua_files_in(const std::string& dir);
// A scenario's, client script's or module's text (kind says which, for errors that name the
// path): only from a regular file, of at most 16 MiB.
proto::expected<std::string, std::string> read_source_file(const std::string& path,
                                                           const char* kind);
// Whether find_scenario_source takes this for a file path (a '/' or ".lua"), not a built-in name.
bool names_a_file(std::string_view name_or_path);
// The same for client scenarios: a path, or the name of a probe ("probe-smuggling").
proto::expected<scenario_source, std::string> find_client_scenario_source(
    const std::string& name_or_path);

// Where source text defines a hook: the first line that starts (after its indentation) with
// `before` + "on_<hook>" + `after`, e.g. "function on_rcpt(" or "local on_mail =".
struct hook_definition {
  std::size_t line = 0;
  std::string function;  // "on_rcpt"
};
std::optional<hook_definition> find_hook_definition(std::string_view code, std::string_view before,
                                                    std::string_view after);

}  // namespace smtpfault::script
