#include "config/sources.hpp"

#include "config/loader.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>

namespace smtpfault::config::detail {

namespace {

// A configuration file is a few KiB; this bounds what a mistaken path (/dev/zero) can cost.
constexpr std::size_t max_file_size = 16 * 1024 * 1024;

proto::expected<std::string, std::string> read_file_once(std::FILE* file) {
  std::string content;
  char buffer[16384];
  while (const std::size_t n = std::fread(buffer, 1, sizeof buffer, file)) {
    content.append(buffer, n);
    if (content.size() > max_file_size) {
      return proto::unexpected{"cannot read file: larger than " +
                               std::to_string(max_file_size >> 20) +
                               " MiB; is this a configuration file?"};
    }
  }
  // Reading a directory "opens" fine and fails here with EISDIR.
  if (std::ferror(file)) {
    return proto::unexpected{"cannot read file: " + std::string(std::strerror(errno))};
  }
  return content;
}

}  // namespace

proto::expected<std::string, std::string> read_whole_file(const std::string& path) {
  // A command reads its file more than once (its own table, then the whole file's check). A
  // pipe (--config <(...)) gives its content only once: what it gave is kept for the later
  // reads. Regular files are read again, so each read sees the file as it is.
  static std::mutex mu;
  static std::map<std::string, std::string, std::less<>> from_pipes;
  {
    std::lock_guard lock(mu);
    if (auto kept = from_pipes.find(path); kept != from_pipes.end()) return kept->second;
  }
  // Not under the lock: a FIFO blocks its reader until a writer comes.
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                             &std::fclose);
  if (!file) return proto::unexpected{"cannot open file: " + std::string(std::strerror(errno))};
  auto content = read_file_once(file.get());
  struct stat st {};
  if (content && ::fstat(::fileno(file.get()), &st) == 0 && !S_ISREG(st.st_mode) &&
      !S_ISDIR(st.st_mode)) {
    std::lock_guard lock(mu);
    from_pipes.emplace(path, *content);
  }
  return content;
}

std::string file_position(const std::string& path, std::uint32_t line, std::uint32_t column) {
  if (line == 0) return path + ": ";
  return path + ":" + std::to_string(line) + ":" + std::to_string(column) + ": ";
}

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

proto::expected<std::vector<std::string_view>, std::string> split_list(std::string_view text) {
  std::vector<std::string_view> items;
  if (trim(text).empty()) return items;
  for (std::size_t start = 0;;) {
    const auto comma = text.find(',', start);
    const auto item = trim(text.substr(start, comma - start));
    if (item.empty()) return proto::unexpected{"empty item in list " + quoted(text)};
    items.push_back(item);
    if (comma == std::string_view::npos) return items;
    start = comma + 1;
  }
}

namespace {

// Whether text starts with a KEY= (letters, digits, '_', '-', '.'; spaces around allowed).
bool starts_with_key(std::string_view text) {
  const auto equals = text.find('=');
  if (equals == std::string_view::npos) return false;
  const auto key = trim(text.substr(0, equals));
  return !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

}  // namespace

proto::expected<std::vector<std::string_view>, std::string> split_pairs(std::string_view text) {
  std::vector<std::string_view> items;
  if (trim(text).empty()) return items;
  std::size_t start = 0;
  for (auto comma = text.find(','); comma != std::string_view::npos;
       comma = text.find(',', comma + 1)) {
    if (!starts_with_key(text.substr(comma + 1))) continue;  // a comma inside a value
    items.push_back(trim(text.substr(start, comma - start)));
    start = comma + 1;
  }
  items.push_back(trim(text.substr(start)));
  for (auto item : items)
    if (item.empty()) return proto::unexpected{"empty item in list " + quoted(text)};
  return items;
}

proto::expected<bool, std::string> bool_from_text(std::string_view text) {
  std::string lower(trim(text));
  for (auto& c : lower) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (lower == "true" || lower == "1" || lower == "yes") return true;
  if (lower == "false" || lower == "0" || lower == "no") return false;
  return proto::unexpected{"expected true/false/1/0/yes/no, got " + quoted(text)};
}

}  // namespace smtpfault::config::detail

namespace smtpfault::config {

std::optional<bool> parse_bool(std::string_view text) {
  auto v = detail::bool_from_text(text);
  if (!v) return std::nullopt;
  return *v;
}

}  // namespace smtpfault::config
