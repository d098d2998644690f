#include "config/command_keys.hpp"

#include <algorithm>
#include <array>
#include <charconv>

#include <toml++/toml.h>

#include "config/keys.hpp"
#include "config/sources.hpp"

namespace smtpfault::config {
namespace {

using namespace detail;

constexpr std::array<std::string_view, 4> commands{"send", "run", "test", "healthcheck"};

std::string key_of(std::string_view flag) {
  std::string key(flag);
  std::replace(key.begin(), key.end(), '-', '_');
  return key;
}

// "SMTPFAULT_SEND_"
std::string variable_prefix(std::string_view command) {
  std::string prefix(env_prefix);
  for (char c : command)
    prefix += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return prefix + "_";
}

std::string variable_of(std::string_view command, std::string_view flag) {
  std::string name = variable_prefix(command);
  for (char c : key_of(flag))
    name += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

bool contains(const std::vector<std::string>& list, std::string_view item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

std::vector<std::string> all_flags(const command_keys& keys) {
  auto all = keys.booleans;
  all.insert(all.end(), keys.valued.begin(), keys.valued.end());
  return all;
}

// One value of a valued key: strings as they are, numbers as written.
proto::expected<std::string, std::string> scalar_text(const toml::node& n) {
  if (const auto* s = n.as_string()) return s->get();
  if (const auto* i = n.as_integer()) return std::to_string(i->get());
  if (const auto* f = n.as_floating_point()) {
    char buffer[64];
    const auto r = std::to_chars(buffer, buffer + sizeof buffer, f->get());
    return std::string(buffer, r.ptr);
  }
  return proto::unexpected{std::string("expected a string or a number")};
}

struct file_reader {
  const command_keys& keys;
  const std::string& path;
  std::vector<configured_flag> flags;

  std::string origin(const toml::node& n, const std::string& key) const {
    const auto where = n.source().begin;
    return file_position(path, where.line, where.column) + "key " +
           quoted(std::string(keys.command) + "." + key);
  }

  std::optional<std::string> add(const std::string& key, const toml::node& n) {
    const std::string flag = [&] {
      std::string f = key;
      std::replace(f.begin(), f.end(), '_', '-');
      return f;
    }();
    const std::string where = origin(n, key);
    if (contains(keys.booleans, flag)) {
      const auto* b = n.as_boolean();
      if (!b) return where + ": expected true or false";
      if (b->get()) flags.push_back({flag, "", where});
      return std::nullopt;
    }
    if (const auto* list = n.as_array()) {
      if (!contains(keys.repeatable, flag)) return where + ": expected one value, not an array";
      for (const auto& item : *list) {
        auto text = scalar_text(item);
        if (!text) return where + ": " + text.error();
        flags.push_back({flag, *text, where});
      }
      return std::nullopt;
    }
    auto text = scalar_text(n);
    if (!text) return where + ": " + text.error();
    flags.push_back({flag, *text, where});
    return std::nullopt;
  }

  std::optional<std::string> read() {
    auto content = read_whole_file(path);
    if (!content) return path + ": cannot open file: " + content.error();
    toml::table root;
    try {
      root = toml::parse(*content, path);
    } catch (const toml::parse_error& e) {
      const auto where = e.source().begin;
      return file_position(path, where.line, where.column) + std::string(e.description());
    }
    const auto* node = root.get(keys.command);
    if (!node) return std::nullopt;
    const auto* table = node->as_table();
    if (!table) {
      const auto where = node->source().begin;
      return file_position(path, where.line, where.column) + "key " + quoted(keys.command) +
             ": expected a table";
    }
    std::vector<std::string> known;
    for (const auto& f : all_flags(keys))
      known.push_back(std::string(keys.command) + "." + key_of(f));
    // In the file's order, so that the first mistake reported is the first one in the file.
    std::vector<std::pair<const toml::key*, const toml::node*>> entries;
    for (const auto& [k, value] : *table)
      entries.emplace_back(&k, &value);
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
      const auto pa = a.second->source().begin, pb = b.second->source().begin;
      return pa.line != pb.line ? pa.line < pb.line : pa.column < pb.column;
    });
    for (const auto& [k_ptr, value_ptr] : entries) {
      const auto& k = *k_ptr;
      const auto& value = *value_ptr;
      const std::string key(k.str());
      if (!contains(known, std::string(keys.command) + "." + key)) {
        const auto where = k.source().begin ? k.source().begin : value.source().begin;
        const std::string path_key = std::string(keys.command) + "." + key;
        return file_position(path, where.line, where.column) + "unknown key " + quoted(path_key) +
               did_you_mean(path_key, known);
      }
      if (auto err = add(key, value)) return err;
    }
    return std::nullopt;
  }
};

// The command's variables, each replacing what the file said for its key.
std::optional<std::string> read_environment(const command_keys& keys, char** envp,
                                            std::vector<configured_flag>& flags) {
  const std::string prefix = variable_prefix(keys.command);
  std::vector<std::string> names;
  for (const auto& f : all_flags(keys))
    names.push_back(variable_of(keys.command, f));
  for (char** entry = envp; entry && *entry; ++entry) {
    const std::string_view assignment(*entry);
    const auto equals = assignment.find('=');
    if (equals == std::string_view::npos) continue;
    const std::string name(assignment.substr(0, equals));
    if (!name.starts_with(prefix)) continue;
    const std::string where = "environment variable " + name;
    const auto known = std::find(names.begin(), names.end(), name);
    if (known == names.end()) return where + ": unknown variable" + did_you_mean(name, names);
    const std::string flag = all_flags(keys)[static_cast<std::size_t>(known - names.begin())];
    const std::string_view text = assignment.substr(equals + 1);
    std::erase_if(flags, [&](const configured_flag& f) { return f.name == flag; });
    if (contains(keys.booleans, flag)) {
      auto on = bool_from_text(text);
      if (!on) return where + ": " + on.error();
      if (std::get<bool>(*on)) flags.push_back({flag, "", where});
    } else if (contains(keys.repeatable, flag)) {
      auto items = split_list(text);
      if (!items) return where + ": " + items.error();
      for (auto item : *items)
        flags.push_back({flag, std::string(item), where});
    } else {
      flags.push_back({flag, std::string(text), where});
    }
  }
  return std::nullopt;
}

}  // namespace

proto::expected<std::vector<configured_flag>, config_error> read_command_flags(
    const command_keys& keys, const std::string& path, char** envp) {
  file_reader file{keys, path, {}};
  if (!path.empty()) {
    if (auto err = file.read()) return proto::unexpected{config_error{*err}};
  }
  if (auto err = read_environment(keys, envp, file.flags)) {
    return proto::unexpected{config_error{*err}};
  }
  return std::move(file.flags);
}

bool is_command_table(std::string_view key) {
  return std::find(commands.begin(), commands.end(), key) != commands.end();
}

bool is_command_variable(std::string_view name) {
  return std::any_of(commands.begin(), commands.end(),
                     [&](std::string_view c) { return name.starts_with(variable_prefix(c)); });
}

}  // namespace smtpfault::config
