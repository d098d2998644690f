#include "script/catalogue.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "proto/near_miss.hpp"
#include "script/embedded_lua.hpp"
#include "script/lua_sandbox.hpp"
#include "session/server_session.hpp"

namespace smtpfault::script {

namespace {

// "-- greylist: first attempt gets 451" -> "first attempt gets 451"
std::string first_comment(std::string_view code, const std::string& name) {
  auto end = code.find('\n');
  std::string_view line = code.substr(0, end);
  if (line.rfind("--", 0) != 0) return "";
  line.remove_prefix(2);
  while (!line.empty() && line.front() == ' ')
    line.remove_prefix(1);
  if (line.rfind(name + ":", 0) == 0) line.remove_prefix(name.size() + 1);
  while (!line.empty() && line.front() == ' ')
    line.remove_prefix(1);
  return std::string(line);
}

std::string_view embedded_text(std::string_view path) {
  for (std::size_t i = 0; i < embedded::file_count; ++i) {
    if (std::string_view(embedded::files[i].path) == path) return embedded::files[i].text;
  }
  return "";
}

std::vector<builtin_scenario> builtins_under(const std::string& prefix) {
  std::vector<builtin_scenario> out;
  for (std::size_t i = 0; i < embedded::file_count; ++i) {
    std::string path = embedded::files[i].path;
    if (path.rfind(prefix, 0) != 0 || path.size() < prefix.size() + 5) continue;
    // The server catalogue is scenarios/ itself: the client probes in scenarios/client/ are not
    // part of it.
    if (path.find('/', prefix.size()) != std::string::npos) continue;
    std::string name = path.substr(prefix.size(), path.size() - prefix.size() - 4);
    out.push_back(
        {name, first_comment(embedded::files[i].text, name), embedded::files[i].text, path});
  }
  return out;
}

// Scenarios are text of a few kilobytes; this is far past any real one.
constexpr off_t largest_scenario_file = 16 * 1024 * 1024;

std::string not_a_regular_file(const char* kind) {
  return "not a regular file: a " + std::string(kind) +
         " is read from a file, not a device, a pipe or a socket";
}

proto::expected<std::string, std::string> read_regular_file(int fd, const char* kind) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return proto::unexpected{std::string(std::strerror(errno))};
  if (!S_ISREG(st.st_mode)) {
    return proto::unexpected{not_a_regular_file(kind)};
  }
  if (st.st_size > largest_scenario_file) {
    return proto::unexpected{"over 16 MiB: too large for a " + std::string(kind)};
  }
  std::string text(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return proto::unexpected{"cannot read: " + std::string(std::strerror(errno))};
    if (n == 0) break;  // shorter than it was: what is there
    got += static_cast<std::size_t>(n);
  }
  text.resize(got);
  return text;
}

proto::expected<scenario_source, std::string> find_source(
    const std::string& name_or_path, const std::vector<builtin_scenario>& builtins,
    const char* kind) {
  if (names_a_file(name_or_path)) {
    // A directory opens as an empty file: it would load as a scenario without hooks.
    std::error_code ec;
    if (std::filesystem::is_directory(name_or_path, ec)) {
      return proto::unexpected{
          name_or_path + ": is a directory, not a " + std::string(kind) + " file" +
          (std::string_view(kind) == "scenario"
               ? " (smtpfault test --scenarios DIR runs every .lua file in one)"
               : "")};
    }
    auto text = read_source_file(name_or_path, kind);
    if (!text) return proto::unexpected{text.error()};
    const auto folder = std::filesystem::path(name_or_path).parent_path().string();
    return scenario_source{std::move(*text), name_or_path, folder.empty() ? "." : folder};
  }
  std::vector<std::string> candidates;
  for (const auto& b : builtins) {
    if (b.name == name_or_path) return scenario_source{std::string(b.code), b.path, ""};
    candidates.emplace_back(b.name);
  }
  std::string names;
  for (const auto& name : candidates)
    names += (names.empty() ? "" : ", ") + name;
  // The name of the other kind: a server scenario given to run, or a probe given to serve.
  const bool client = std::string_view(kind) == "client scenario";
  for (const auto& b : client ? builtin_scenarios() : builtin_client_scenarios()) {
    if (b.name != name_or_path) continue;
    return proto::unexpected{
        "'" + name_or_path + "' is a built-in " + (client ? "server scenario" : "client probe") +
        (client ? ", which serve --scenario and test --scenario run; this takes client "
                  "scripts ("
                : ", which smtpfault run runs; this takes server scenarios (") +
        names + ")"};
  }
  // A file of that name is here, but a bare word names a built-in: say how to name the file.
  std::error_code ec;
  if (std::filesystem::is_regular_file(name_or_path, ec)) {
    return proto::unexpected{"unknown " + std::string(kind) + " '" + name_or_path +
                             "': a name without '/' or '.lua' is a built-in's (" + names +
                             "); for the file of that name write ./" + name_or_path};
  }
  // A folder of that name here: the scenarios in it were likely meant.
  if (std::filesystem::is_directory(name_or_path, ec)) {
    return proto::unexpected{
        "unknown " + std::string(kind) + " '" + name_or_path + "': that is a directory here" +
        (std::string_view(kind) == "scenario"
             ? ", not a scenario file (smtpfault test --scenarios DIR runs every .lua file in one)"
             : ", not a script file") +
        "; the built-in ones: " + names};
  }
  return proto::unexpected{"unknown " + std::string(kind) + " '" + name_or_path + "'" +
                           proto::did_you_mean(name_or_path, candidates) +
                           " (not a file; built-in " + kind + "s: " + names + ")"};
}

}  // namespace

const std::vector<library_file>& helper_library() {
  static const std::vector<library_file> files = {
      {"lua/smtp.lua", embedded_text("lua/smtp.lua")},
      {"lua/smtp_helpers.lua", embedded_text("lua/smtp_helpers.lua")},
  };
  return files;
}

const std::vector<library_file>& client_library() {
  static const std::vector<library_file> files = {
      {"lua/client_names.lua", embedded_text("lua/client_names.lua")},
      {"lua/client.lua", embedded_text("lua/client.lua")},
      {"lua/client_message.lua", embedded_text("lua/client_message.lua")},
      {"lua/client_auth.lua", embedded_text("lua/client_auth.lua")},
      {"lua/client_globals.lua", embedded_text("lua/client_globals.lua")},
  };
  return files;
}

std::optional<std::string> run_library(lua_sandbox& sandbox,
                                       const std::vector<library_file>& files) {
  for (const auto& file : files) {
    if (auto err = sandbox.run_file_text(file.code, file.name, true)) {
      return std::string("internal error in ") + file.name + ": " + *err;
    }
  }
  return std::nullopt;
}

const std::vector<builtin_scenario>& builtin_scenarios() {
  static const std::vector<builtin_scenario> list = builtins_under("scenarios/");
  return list;
}

const std::vector<builtin_scenario>& builtin_client_scenarios() {
  static const std::vector<builtin_scenario> list = builtins_under("scenarios/client/");
  return list;
}

std::string shown_name(const std::string& chunkname) {
  for (const auto* list : {&builtin_scenarios(), &builtin_client_scenarios()})
    for (const auto& b : *list)
      if (b.path == chunkname) return b.name;
  return chunkname;
}

proto::expected<std::string, std::string> read_source_file(const std::string& path,
                                                           const char* kind) {
  // Only a regular file, looked at before it is opened: a FIFO would wait for a writer for
  // ever, /dev/zero never ends, and opening some devices does something (a tape rewinds).
  struct stat before {};
  if (::stat(path.c_str(), &before) == 0 && !S_ISREG(before.st_mode)) {
    return proto::unexpected{path + ": " + not_a_regular_file(kind)};
  }
  // Not blocking either: it may have been replaced since.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    // A path in a configuration file is read from where the command runs, not from the
    // file's folder: say which folder that was.
    std::string from;
    std::error_code ec;
    const bool module = std::string_view(kind) == "module";
    if (module) {
      from = " (require looks beside the script: lib.helpers is lib/helpers.lua in its folder)";
    } else if (std::filesystem::path(path).is_relative()) {
      from = " (a relative path is read from the working directory, " +
             std::filesystem::current_path(ec).string() + ")";
    }
    return proto::unexpected{path + ": cannot open " + (module ? "module" : "scenario") + ": " +
                             std::strerror(err) + from};
  }
  auto text = read_regular_file(fd, kind);
  ::close(fd);
  if (!text) return proto::unexpected{path + ": " + text.error()};
  // A lone CR ends a line for Lua (old Mac files) but not for the load-time checks, which read
  // lines by LF: one comment would hide the rest of the file from them. As LF it means the
  // same to Lua (in a long string too, where every line end becomes LF).
  // Lua's own reading: CR LF and LF CR are one line end each, so their CR stays.
  auto& code = *text;
  for (std::size_t i = 0; i < code.size(); ++i) {
    if (code[i] != '\r' && code[i] != '\n') continue;
    if (i + 1 < code.size() && (code[i + 1] == '\r' || code[i + 1] == '\n') &&
        code[i + 1] != code[i]) {
      ++i;  // a pair
    } else if (code[i] == '\r') {
      code[i] = '\n';
    }
  }
  return text;
}

bool names_a_file(std::string_view name_or_path) {
  return name_or_path.find('/') != std::string_view::npos || name_or_path.ends_with(".lua");
}

proto::expected<scenario_source, std::string> find_scenario_source(
    const std::string& name_or_path) {
  return find_source(name_or_path, builtin_scenarios(), "scenario");
}

proto::expected<scenario_source, std::string> find_client_scenario_source(
    const std::string& name_or_path) {
  return find_source(name_or_path, builtin_client_scenarios(), "client scenario");
}

std::optional<hook_definition> find_hook_definition(std::string_view code, std::string_view before,
                                                    std::string_view after) {
  std::size_t line = 1;
  for (std::size_t start = 0; start < code.size(); ++line) {
    const auto end = std::min(code.find('\n', start), code.size());
    auto text = code.substr(start, end - start);
    start = end + 1;
    text.remove_prefix(std::min(text.find_first_not_of(" \t"), text.size()));
    if (!text.starts_with(before)) continue;
    text.remove_prefix(before.size());
    for (int h = 0; h <= static_cast<int>(session::hook::disconnect); ++h) {
      std::string function = std::string("on_") + session::hook_name(static_cast<session::hook>(h));
      if (text.starts_with(function) && text.substr(function.size()).starts_with(after)) {
        return hook_definition{line, std::move(function)};
      }
    }
  }
  return std::nullopt;
}

namespace {

// For a folder of folders (scenarios kept by kind, say): the subfolders that do hold .lua
// files, as a hint, since only the folder itself is read.
std::string subfolders_with_lua(const std::string& dir) {
  std::error_code ec;
  std::vector<std::string> holders;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::error_code inner;
    if (!entry.is_directory(inner)) continue;
    for (const auto& file : std::filesystem::directory_iterator(entry.path(), inner)) {
      if (file.path().extension() == ".lua") {
        holders.push_back(entry.path().string());
        break;
      }
    }
  }
  if (holders.empty()) return "";
  std::sort(holders.begin(), holders.end());
  // A few name the mistake; a tree of hundreds would bury the message.
  constexpr std::size_t shown = 5;
  std::string hint = " (only the folder itself is read, not its subfolders; these have some:";
  for (std::size_t i = 0; i < holders.size() && i < shown; ++i)
    hint += " " + holders[i];
  if (holders.size() > shown) hint += " and " + std::to_string(holders.size() - shown) + " more";
  return hint + ")";
}

}  // namespace

proto::expected<std::vector<std::string>, std::string> lua_files_in(const std::string& dir) {
  std::error_code ec;
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    // Not an editor's lock or backup (".#a.lua", a dangling link) nor a folder named x.lua.
    std::error_code inner;
    if (entry.path().extension() != ".lua" || entry.path().filename().string()[0] == '.' ||
        !entry.is_regular_file(inner)) {
      continue;
    }
    found.push_back(entry.path().string());
  }
  if (ec) return proto::unexpected{ec.message()};
  if (found.empty()) return proto::unexpected{"no .lua files there" + subfolders_with_lua(dir)};
  std::sort(found.begin(), found.end());
  return found;
}

}  // namespace smtpfault::script
