// Reading settings from the sources: a TOML file, SMTPFAULT_* variables and flags. What keys exist
// and what values they accept is the registry's business (keys.hpp); this file only knows where
// a value came from, so that every error can name it.
#include "config/loader.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

#include <toml++/toml.h>

#include "config/command_keys.hpp"
#include "config/keys.hpp"
#include "config/sources.hpp"
#include "config/toml_document.hpp"
#include "config/toml_types.hpp"

namespace smtpfault::config {
namespace {

using detail::all_keys;
using detail::bool_from_text;
using detail::check;
using detail::did_you_mean;
using detail::env_name;
using detail::env_prefix;
using detail::expectation;
using detail::file_position;
using detail::find_env;
using detail::find_key;
using detail::is_section;
using detail::key_desc;
using detail::kind;
using detail::parse_toml;
using detail::path_candidates;
using detail::quoted;
using detail::read_whole_file;
using detail::split_list;
using detail::toml_type;
using detail::trim;
using detail::type_word;
using detail::value;

// Variables that share the prefix but are not settings: the config file's own path.
constexpr std::string_view reserved_env[] = {"SMTPFAULT_CONFIG"};

// Whether every word of `words` (split at '_' and '.') is a word of `name`, in the same order.
bool holds_words(std::string_view name, std::string_view words) {
  const auto split = [](std::string_view text) {
    std::vector<std::string> out(1);
    for (char c : text) {
      if (c == '_' || c == '.') {
        out.emplace_back();
      } else {
        out.back() += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
    }
    return out;
  };
  const auto have = split(name);
  auto at = have.begin();
  for (const auto& w : split(words)) {
    at = std::find(at, have.end(), w);
    if (at == have.end()) return false;
    ++at;
  }
  return true;
}

// The key an unknown path was likely meant as, by its words rather than its spelling (which
// suggests whatever is near: 'seed' for 'cert'): the one key of the same name in another table
// (text_line at the top: limits.text_line; limits.max_connections: the top-level one; cert:
// tls.cert), else the one key whose words hold all of these (tls_timeout:
// tls_handshake_timeout). A word misspelt is held by none.
std::optional<std::string> key_by_its_words(std::string_view path) {
  const auto name = path.substr(path.rfind('.') + 1);  // the whole path when it has no dot
  std::vector<std::string> same_name, holding;
  for (const auto& k : all_keys()) {
    const std::string_view p = k.path;
    if (p != path && p.substr(p.rfind('.') + 1) == name) same_name.emplace_back(p);
    if (holds_words(p, path)) holding.emplace_back(p);
  }
  if (same_name.size() == 1) return same_name.front();
  if (holding.size() == 1) return holding.front();
  return std::nullopt;
}

// " (did you mean 'x'?)" for an unknown key path: by its words, else by its spelling.
std::string key_hint(std::string_view path) {
  if (auto key = key_by_its_words(path)) return " (did you mean '" + *key + "'?)";
  return did_you_mean(path, path_candidates());
}

// ---- TOML ----

// A problem in the file: where it is, and the message after "PATH:LINE:COLUMN: ".
struct located {
  toml::source_position where;
  std::string text;
};

proto::unexpected<located> at(const toml::node& n, std::string_view key, std::string detail) {
  return proto::unexpected{located{n.source().begin, "key " + quoted(key) + ": " + detail}};
}

proto::unexpected<located> mismatch(const toml::node& n, std::string_view key, kind k) {
  return at(n, key,
            "expected " + std::string(expectation(k)) + ", got " + std::string(toml_type(n)));
}

proto::expected<value, located> addresses_from_toml(const key_desc& d, const toml::node& n) {
  std::vector<endpoint> list;
  if (const auto* s = n.as_string()) {
    // A lone string is the one-listener case; accepting it spares users the array brackets.
    // An empty one is none, as in the environment and flags.
    if (s->get().empty()) return value{std::move(list)};
    auto e = parse_endpoint(s->get());
    if (!e) return at(n, d.path, e.error());
    list.push_back(std::move(*e));
  } else if (const auto* array = n.as_array()) {
    for (const auto& item : *array) {
      const auto* s = item.as_string();
      if (!s) return mismatch(item, d.path, kind::address);
      auto e = parse_endpoint(s->get());
      if (!e) return at(item, d.path, e.error());
      list.push_back(std::move(*e));
    }
  } else {
    return mismatch(n, d.path, d.type);
  }
  return value{std::move(list)};
}

// A lone string or an array of strings; each checked by the registry's rule for the key.
proto::expected<value, located> names_from_toml(const key_desc& d, const toml::node& n) {
  std::vector<std::string> names;
  if (const auto* s = n.as_string()) {
    names.push_back(s->get());
  } else if (const auto* array = n.as_array()) {
    for (const auto& item : *array) {
      const auto* s = item.as_string();
      if (!s) return mismatch(item, d.path, kind::string);
      if (auto problem = check(d, value{std::vector<std::string>{s->get()}}); !problem.empty()) {
        return at(item, d.path, std::move(problem));
      }
      names.push_back(s->get());
    }
  } else {
    return mismatch(n, d.path, d.type);
  }
  return value{std::move(names)};
}

proto::expected<value, located> users_from_toml(const key_desc& d, const toml::node& n) {
  const auto* table = n.as_table();
  if (!table) return mismatch(n, d.path, d.type);
  std::vector<auth_user> users;
  for (const auto& [name, password] : *table) {
    const std::string key = std::string(d.path) + "." + std::string(name.str());
    const auto* s = password.as_string();
    if (!s) return mismatch(password, key, kind::string);
    if (name.str().empty()) return at(password, key, "user name must not be empty");
    users.push_back({std::string(name.str()), s->get()});
  }
  return value{std::move(users)};
}

proto::expected<value, located> scalar_from_toml(const key_desc& d, const toml::node& n) {
  switch (d.type) {
    case kind::string:
      if (const auto* s = n.as_string()) return value{s->get()};
      break;
    case kind::boolean:
      if (const auto* b = n.as_boolean()) return value{b->get()};
      break;
    case kind::unsigned_int:
      if (const auto* i = n.as_integer()) {
        if (i->get() < 0) {
          return at(
              n, d.path,
              "must be at least " + std::to_string(d.min) + ", got " + std::to_string(i->get()));
        }
        return value{static_cast<std::uint64_t>(i->get())};
      }
      break;
    case kind::number:
      if (const auto* f = n.as_floating_point()) return value{f->get()};
      if (const auto* i = n.as_integer()) return value{static_cast<double>(i->get())};
      break;
    case kind::address:
      if (const auto* s = n.as_string()) {
        if (s->get().empty()) return value{endpoint{}};  // none
        auto e = parse_endpoint(s->get());
        if (!e) return at(n, d.path, e.error());
        return value{std::move(*e)};
      }
      break;
    default:
      break;
  }
  return mismatch(n, d.path, d.type);
}

proto::expected<value, located> from_toml(const key_desc& d, const toml::node& n) {
  auto v = d.type == kind::address_list ? addresses_from_toml(d, n)
           : d.type == kind::users      ? users_from_toml(d, n)
           : d.type == kind::name_list  ? names_from_toml(d, n)
                                        : scalar_from_toml(d, n);
  if (!v) return v;
  if (auto problem = check(d, *v); !problem.empty()) return at(n, d.path, std::move(problem));
  return v;
}

void walk(const toml::table& table, const std::string& prefix, settings& s,
          std::vector<located>& problems) {
  for (const auto& [k, node] : table) {
    const std::string path =
        prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (prefix.empty() && is_command_table(path)) continue;  // [send], [run]: theirs to read
    if (const auto* d = find_key(path)) {
      auto v = from_toml(*d, node);
      if (v) {
        d->set(s, std::move(*v));
        const auto& where = node.source();
        s.origins[path] = file_position(where.path ? *where.path : std::string(), where.begin.line,
                                        where.begin.column) +
                          "key " + quoted(path);
      } else {
        problems.push_back(v.error());
      }
    } else if (is_section(path)) {
      if (const auto* sub = node.as_table()) {
        walk(*sub, path, s, problems);
      } else {
        problems.push_back(
            {node.source().begin,
             "key " + quoted(path) + ": expected a table, got " + std::string(toml_type(node))});
      }
    } else {
      // Keys of inline tables may lack a position of their own; their value always has one.
      const auto where = k.source().begin ? k.source().begin : node.source().begin;
      problems.push_back({where, "unknown key " + quoted(path) + key_hint(path)});
    }
  }
}

proto::unexpected<config_error> fail(std::string message) {
  return proto::unexpected{config_error{std::move(message)}};
}

proto::expected<bool, config_error> apply_document_unguarded(settings& s, std::string_view content,
                                                             const std::string& path) {
  auto parsed = parse_toml(content, path);
  if (!parsed) return fail(parsed.error());
  const toml::table& root = *parsed;
  // Work on a copy so a rejected file leaves the caller's settings untouched.
  settings updated = s;
  std::vector<located> problems;
  walk(root, "", updated, problems);
  if (!problems.empty()) {
    // The table iterates in key order; the first problem in the file is the one to fix first.
    const auto first =
        std::min_element(problems.begin(), problems.end(), [](const located& a, const located& b) {
          return a.where.line != b.where.line ? a.where.line < b.where.line
                                              : a.where.column < b.where.column;
        });
    return fail(file_position(path, first->where.line, first->where.column) + first->text);
  }
  s = std::move(updated);
  return true;
}

proto::expected<bool, config_error> apply_file_unguarded(settings& s, const std::string& path) {
  auto content = read_whole_file(path);
  if (!content) return fail(path + ": " + content.error());
  return apply_document_unguarded(s, *content, path);
}

// ---- text (environment and flags) ----

template <class T>
proto::expected<value, std::string> number_from_text(std::string_view text, std::string_view what) {
  const auto t = trim(text);
  T number{};
  const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), number);
  if (t.empty() || ec != std::errc{} || ptr != t.data() + t.size()) {
    return proto::unexpected{"expected " + std::string(what) + ", got " + quoted(text)};
  }
  return value{number};
}

proto::expected<value, std::string> addresses_from_text(std::string_view text) {
  auto items = split_list(text);
  if (!items) return proto::unexpected{items.error()};
  std::vector<endpoint> list;
  for (auto item : *items) {
    auto e = parse_endpoint(item);
    if (!e) return proto::unexpected{e.error()};
    list.push_back(std::move(*e));
  }
  return value{std::move(list)};
}

proto::expected<value, std::string> users_from_text(std::string_view text) {
  auto items = split_list(text);
  if (!items) return proto::unexpected{items.error()};
  std::vector<auth_user> users;
  for (auto item : *items) {
    const auto colon = item.find(':');
    if (colon == 0 || colon == std::string_view::npos) {
      return proto::unexpected{"expected NAME:PASSWORD, got " + quoted(item)};
    }
    auth_user user{std::string(item.substr(0, colon)), std::string(item.substr(colon + 1))};
    const auto same = [&](const auth_user& u) { return u.name == user.name; };
    if (std::any_of(users.begin(), users.end(), same)) {
      return proto::unexpected{"user " + quoted(user.name) + " is listed twice"};
    }
    users.push_back(std::move(user));
  }
  return value{std::move(users)};
}

proto::expected<value, std::string> from_text(const key_desc& d, std::string_view text) {
  switch (d.type) {
    case kind::string:
      return value{std::string(text)};
    case kind::boolean: {
      auto on = bool_from_text(text);
      if (!on) return proto::unexpected{on.error()};
      return value{*on};
    }
    case kind::unsigned_int:
      return number_from_text<std::uint64_t>(text, "an unsigned integer");
    case kind::number:
      return number_from_text<double>(text, "a number");
    case kind::address: {
      if (trim(text).empty()) return value{endpoint{}};  // none
      auto e = parse_endpoint(trim(text));
      if (!e) return proto::unexpected{e.error()};
      return value{std::move(*e)};
    }
    case kind::address_list:
      return addresses_from_text(text);
    case kind::users:
      return users_from_text(text);
    case kind::name_list: {
      auto items = split_list(text);
      if (!items) return proto::unexpected{items.error()};
      return value{std::vector<std::string>(items->begin(), items->end())};
    }
  }
  return proto::unexpected{std::string("unsupported key type")};
}

proto::expected<bool, config_error> apply_one(settings& s, const key_desc& d, std::string_view text,
                                              std::string_view origin) {
  auto v = from_text(d, text);
  if (!v) return fail(std::string(origin) + ": " + v.error());
  if (auto problem = check(d, *v); !problem.empty()) {
    return fail(std::string(origin) + ": " + problem);
  }
  d.set(s, std::move(*v));
  s.origins[std::string(d.path)] = std::string(origin);
  return true;
}

proto::expected<bool, config_error> apply_environment_unguarded(settings& s, char** envp) {
  settings updated = s;
  for (char** entry = envp; entry && *entry; ++entry) {
    const std::string_view assignment(*entry);
    const auto equals = assignment.find('=');
    if (equals == std::string_view::npos) continue;
    const auto name = assignment.substr(0, equals);
    if (!name.starts_with(env_prefix)) continue;
    if (std::find(std::begin(reserved_env), std::end(reserved_env), name) !=
        std::end(reserved_env)) {
      continue;
    }
    if (is_command_variable(name)) continue;  // SMTPFAULT_SEND_*: read by `smtpfault send`
    const std::string origin = "environment variable " + std::string(name);
    const auto* d = find_env(name);
    if (!d) {
      // SMTPFAULT_CERT: the key the rest of the name reads as (cert: tls.cert), by its words.
      std::string guess(name.substr(env_prefix.size()));
      std::transform(guess.begin(), guess.end(), guess.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (auto key = key_by_its_words(guess)) {
        return fail(origin + ": unknown variable (did you mean '" + env_name(*key) + "'?)");
      }
      std::vector<std::string> names;
      for (const auto& k : all_keys())
        names.push_back(env_name(k.path));
      // SMTPFAULT_SEED_X is a slip of a key of serve's (SMTPFAULT_SEED), not of `send`'s prefix.
      const std::string first_word(name.substr(0, name.find('_', env_prefix.size())));
      const bool serves_word = std::any_of(names.begin(), names.end(), [&](const std::string& n) {
        return n == first_word || n.starts_with(first_word + "_");
      });
      if (auto hint = command_variable_hint(name); !hint.empty() && !serves_word) {
        return fail(origin + ": unknown variable" + hint);
      }
      return fail(origin + ": unknown variable" + did_you_mean(name, names));
    }
    // SMTPFAULT_SEED= (a compose file's ${SEED:-}) is the seed left unset: chosen at random.
    if (d->path == "seed" && equals + 1 == assignment.size()) continue;
    if (auto applied = apply_one(updated, *d, assignment.substr(equals + 1), origin); !applied) {
      return applied;
    }
  }
  s = std::move(updated);
  return true;
}

}  // namespace

proto::expected<bool, config_error> apply_file(settings& s, const std::string& path) {
  try {
    return apply_file_unguarded(s, path);
  } catch (const std::exception& e) {
    return fail(path + ": " + e.what());
  }
}

proto::expected<bool, config_error> apply_document(settings& s, std::string_view toml_text,
                                                   const std::string& name) {
  try {
    return apply_document_unguarded(s, toml_text, name);
  } catch (const std::exception& e) {
    return fail(name + ": " + e.what());
  }
}

proto::expected<bool, config_error> apply_environment(settings& s, char** envp) {
  try {
    return apply_environment_unguarded(s, envp);
  } catch (const std::exception& e) {
    return fail(std::string("environment: ") + e.what());
  }
}

proto::expected<bool, config_error> apply_text(settings& s, std::string_view key,
                                               std::string_view value, std::string_view origin) {
  try {
    const std::string path = key_of_flag(key);
    const auto* d = find_key(path);
    if (!d && is_section(path)) {
      // --set limits=5: a table, whose keys take the values.
      std::string example;
      for (const auto& k : all_keys())
        if (example.empty() && k.path.starts_with(path + ".")) example = k.path;
      return fail(std::string(origin) + ": " + quoted(key) +
                  " is a table: set one of its keys, e.g. " + example + "=...");
    }
    if (!d) {
      // auth.users.alice=secret: a table key's entries are given together, as its value.
      for (auto dot = path.rfind('.'); dot != std::string::npos && dot > 0;
           dot = path.rfind('.', dot - 1)) {
        const std::string table = path.substr(0, dot);
        if (const auto* t = find_key(table); t && t->type == kind::users) {
          return fail(std::string(origin) + ": unknown key " + quoted(key) + " (" + quoted(table) +
                      " is one key: give all of it as the value, e.g. " + table + "=" +
                      std::string(key.substr(dot + 1)) + ":VALUE)");  // the name as typed
        }
      }
      // limts.x: no key is near the whole path, but the table is near one ('limits').
      const auto candidates = path_candidates();
      auto hint = key_hint(path);
      const auto dot = path.find('.');
      const auto table = std::string_view(path).substr(0, dot);
      // Only a table that is not one: limits.foo has its table right, and 'limits' no help.
      if (hint.empty() && dot != std::string::npos &&
          std::find(candidates.begin(), candidates.end(), table) == candidates.end()) {
        hint = did_you_mean(table, candidates);
      }
      return fail(std::string(origin) + ": unknown key " + quoted(key) + hint);
    }
    return apply_one(s, *d, value, origin);
  } catch (const std::exception& e) {
    return fail(std::string(origin) + ": " + e.what());
  }
}

std::string key_of_flag(std::string_view flag) {
  std::string key(flag);
  std::replace(key.begin(), key.end(), '-', '_');
  return key;
}

std::string flag_of_key(std::string_view key) {
  std::string flag(key);
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

std::string_view key_of_pair(std::string_view key_value) {
  return key_value.substr(0, key_value.find('='));
}

std::string suggestion(std::string_view word, const std::vector<std::string>& candidates) {
  return detail::did_you_mean(word, candidates);
}

const std::vector<key_info>& known_keys() {
  static const std::vector<key_info> infos = [] {
    std::vector<key_info> list;
    // static: as a local, GCC 12 takes its inlined strings for uninitialized (a false positive).
    static const settings defaults;
    for (const auto& d : all_keys()) {
      list.push_back(
          {std::string(d.path), env_name(d.path), std::string(type_word(d.type)),
           std::string(d.help),
           d.type == kind::address_list || d.type == kind::users || d.type == kind::name_list,
           d.show ? d.show(defaults) : std::string()});
    }
    return list;
  }();
  return infos;
}

}  // namespace smtpfault::config
