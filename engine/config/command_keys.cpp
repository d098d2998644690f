#include "config/command_keys.hpp"

#include <algorithm>
#include <array>
#include <unordered_set>

#include "config/keys.hpp"
#include "config/sources.hpp"
#include "config/toml_document.hpp"
#include "config/toml_types.hpp"
#include "proto/near_miss.hpp"
#include "proto/number_text.hpp"

namespace smtpfault::config {
namespace {

using detail::bool_from_text;
using detail::did_you_mean;
using detail::env_prefix;
using detail::file_position;
using detail::find_key;
using detail::parse_toml;
using detail::quoted;
using detail::read_whole_file;
using detail::split_list;
using detail::split_pairs;
using detail::toml_type;
using detail::trim;

constexpr std::array<std::string_view, 5> commands{"send", "run", "test", "healthcheck", "check"};

std::string upper(std::string_view text) {
  std::string out;
  for (char c : text)
    out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// "SMTPFAULT_SEND_"
std::string variable_prefix(std::string_view command) {
  return std::string(env_prefix) + upper(command) + "_";
}

bool contains(const std::vector<std::string>& list, std::string_view item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

std::vector<std::string> all_flags(const command_keys& keys) {
  auto all = keys.booleans;
  all.insert(all.end(), keys.valued.begin(), keys.valued.end());
  return all;
}

// Why a flag the command takes from a top-level key is no key of its own table; where = "[test]"
// or the variable's name.
std::string top_level_hint(const command_keys& keys, const std::string& flag,
                           const std::string& where) {
  return ": the " + std::string(keys.command) + " command takes " + quoted(key_of_flag(flag)) +
         " from the top-level key (environment variable " + std::string(env_prefix) +
         upper(key_of_flag(flag)) + "), not from " + where;
}

// One value as the command line would give it, of the type the flag takes.
proto::expected<std::string, std::string> scalar_text(const toml::node& n, bool number,
                                                      bool integer) {
  if (integer) {
    if (const auto* i = n.as_integer()) return std::to_string(i->get());
    return proto::unexpected{"expected an integer, got " + std::string(toml_type(n))};
  }
  if (number) {
    if (const auto* i = n.as_integer()) return std::to_string(i->get());
    if (const auto* f = n.as_floating_point()) return proto::number_text(f->get());
    return proto::unexpected{"expected a number, got " + std::string(toml_type(n))};
  }
  if (const auto* s = n.as_string()) return s->get();
  return proto::unexpected{"expected a string, got " + std::string(toml_type(n))};
}

std::string position(const std::string& path, const toml::node& n) {
  const auto where = n.source().begin;
  return file_position(path, where.line, where.column);
}

struct file_reader {
  const command_keys& keys;
  const std::string& path;
  std::vector<configured_flag> flags;

  std::string origin(const toml::node& n, const std::string& key) const {
    return position(path, n) + "key " + quoted(std::string(keys.command) + "." + key);
  }

  std::optional<std::string> add(const std::string& key, const toml::node& n) {
    const std::string flag = flag_of_key(key);
    const std::string where = origin(n, key);
    if (contains(keys.booleans, flag)) {
      const auto* b = n.as_boolean();
      if (!b) return where + ": expected a boolean, got " + std::string(toml_type(n));
      if (b->get()) flags.push_back({flag, "", where});
      return std::nullopt;
    }
    const bool number = contains(keys.numbers, flag);
    const bool integer = contains(keys.integers, flag);
    if (const auto* list = n.as_array()) {
      if (!contains(keys.repeatable, flag)) return where + ": expected one value, not an array";
      for (const auto& item : *list) {
        auto text = scalar_text(item, number, integer);
        if (!text) return origin(item, key) + ": " + text.error();
        flags.push_back({flag, *text, origin(item, key)});
      }
      return std::nullopt;
    }
    auto text = scalar_text(n, number, integer);
    if (!text) return where + ": " + text.error();
    flags.push_back({flag, *text, where});
    return std::nullopt;
  }

  std::optional<std::string> read() {
    auto content = read_whole_file(path);
    if (!content) return path + ": " + content.error();
    auto parsed = parse_toml(*content, path);
    if (!parsed) return parsed.error();
    const toml::table& root = *parsed;
    const auto* node = root.get(keys.command);
    if (!node) return std::nullopt;
    const auto* table = node->as_table();
    if (!table) {
      return position(path, *node) + "key " + quoted(keys.command) + ": expected a table, got " +
             std::string(toml_type(*node));
    }
    // In the file's order, so that the first mistake reported is the first one in the file.
    std::vector<std::pair<const toml::key*, const toml::node*>> entries;
    for (const auto& [k, value] : *table)
      entries.emplace_back(&k, &value);
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
      const auto pa = a.second->source().begin, pb = b.second->source().begin;
      return pa.line != pb.line ? pa.line < pb.line : pa.column < pb.column;
    });
    std::vector<std::string> known;
    for (const auto& f : all_flags(keys))
      known.push_back(std::string(keys.command) + "." + key_of_flag(f));
    for (const auto& [k, value] : entries) {
      const std::string key(k->str());
      const std::string full = std::string(keys.command) + "." + key;
      if (!contains(known, full)) {
        const auto where = k->source().begin ? k->source().begin : value->source().begin;
        const std::string at = file_position(path, where.line, where.column);
        if (contains(keys.top_level, flag_of_key(key))) {
          return at + "key " + quoted(full) +
                 top_level_hint(keys, flag_of_key(key), "[" + std::string(keys.command) + "]");
        }
        // A server key written below the table's header belongs to the table in TOML.
        const std::string slid = find_key(key) ? " (" + quoted(key) +
                                                     " is a top-level key: put it above the "
                                                     "first [table])"
                                               : did_you_mean(full, known);
        return at + "unknown key " + quoted(full) + slid;
      }
      if (auto err = add(key, *value)) return err;
    }
    return std::nullopt;
  }
};

// The command's variables, each replacing what the file said for its key.
std::optional<std::string> read_environment(const command_keys& keys, char** envp,
                                            std::vector<configured_flag>& flags) {
  const std::string prefix = variable_prefix(keys.command);
  const auto flags_known = all_flags(keys);
  std::vector<std::string> names;
  for (const auto& f : flags_known)
    names.push_back(prefix + upper(key_of_flag(f)));
  for (char** entry = envp; entry && *entry; ++entry) {
    const std::string_view assignment(*entry);
    const auto equals = assignment.find('=');
    if (equals == std::string_view::npos) continue;
    const std::string name(assignment.substr(0, equals));
    if (!name.starts_with(prefix)) continue;
    const std::string where = "environment variable " + name;
    const auto known = std::find(names.begin(), names.end(), name);
    if (known == names.end()) {
      const std::string flag = flag_of_key(std::string_view(name).substr(prefix.size()));
      std::string lower_flag;
      for (char c : flag)
        lower_flag += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (contains(keys.top_level, lower_flag)) {
        return where + top_level_hint(keys, lower_flag, name);
      }
      return where + ": unknown variable" + did_you_mean(name, names);
    }
    const std::string& flag = flags_known[static_cast<std::size_t>(known - names.begin())];
    const std::string_view text = trim(assignment.substr(equals + 1));
    // What the variable replaces: the file's values of its flag, of its KEY only for a keyed
    // flag, of the whole group for alternatives (only when it switches its own one on:
    // SMTPFAULT_SEND_STARTTLS=0 leaves a file's tls = true alone).
    const bool is_boolean = contains(keys.booleans, flag);
    const bool switched_on = is_boolean && parse_bool(text).value_or(false);
    const bool keyed = contains(keys.keyed, flag);
    const bool chooses = contains(keys.alternatives, flag) && (!is_boolean || switched_on);
    std::unordered_set<std::string> keys_given;
    if (keyed) {
      if (auto items = split_pairs(text)) {
        for (auto item : *items)
          keys_given.insert(std::string(key_of_pair(item)));
      }
    }
    std::erase_if(flags, [&](const configured_flag& f) {
      if (f.origin.starts_with("environment variable")) return false;  // set by another variable
      if (chooses && contains(keys.alternatives, f.name)) return true;
      if (f.name != flag) return false;
      return !keyed || keys_given.contains(std::string(key_of_pair(f.value)));
    });
    if (contains(keys.booleans, flag)) {
      auto on = bool_from_text(text);
      if (!on) return where + ": " + on.error();
      if (*on) flags.push_back({flag, "", where});
    } else if (contains(keys.repeatable, flag)) {
      auto items = keyed ? split_pairs(text) : split_list(text);
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

std::string command_variable_hint(std::string_view name) {
  if (!name.starts_with(env_prefix)) return {};
  const std::string_view rest = name.substr(env_prefix.size());
  const auto underscore = rest.find('_');
  if (underscore == std::string_view::npos) return {};
  const std::string_view word = rest.substr(0, underscore);
  for (std::string_view command : commands) {
    const std::string wanted = upper(command);
    // One slip in a short name ("TEST"), two in a longer one ("HEALTHCHECK").
    const std::size_t most = wanted.size() > 4 ? 2 : 1;
    if (word != wanted && proto::edit_distance(word, wanted) <= most) {
      // Only the prefix is known to be wrong: the command itself judges the rest.
      return " (" + std::string(env_prefix) + std::string(word) + "_ reads like " +
             variable_prefix(command) + ", the prefix of smtpfault " + std::string(command) +
             "'s variables)";
    }
  }
  return {};
}

bool is_command_variable(std::string_view name) {
  return std::any_of(commands.begin(), commands.end(),
                     [&](std::string_view c) { return name.starts_with(variable_prefix(c)); });
}

}  // namespace smtpfault::config
