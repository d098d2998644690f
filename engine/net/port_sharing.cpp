#include "net/port_sharing.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

namespace smtpfault::net {

namespace {

constexpr std::string_view listen_state = "0A";  // TCP_LISTEN in the "st" column

struct socket_line {
  std::string_view local;  // "0100007F:0CE4", the address and port as the kernel writes them
  unsigned long inode = 0;
};

// Splits a line into its blank-separated fields; the columns are: sl local_address
// rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
std::vector<std::string_view> fields_of(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t at = 0;
  while (true) {
    at = line.find_first_not_of(' ', at);
    if (at == std::string_view::npos) break;
    auto end = std::min(line.find(' ', at), line.size());
    out.push_back(line.substr(at, end - at));
    at = end;
  }
  return out;
}

std::vector<socket_line> listeners_in(std::string_view text) {
  std::vector<socket_line> out;
  while (!text.empty()) {
    auto end = std::min(text.find('\n'), text.size());
    auto f = fields_of(text.substr(0, end));
    text.remove_prefix(std::min(end + 1, text.size()));
    if (f.size() < 10 || f[3] != listen_state) continue;  // the heading, or not listening
    socket_line s{f[1]};
    auto [p, ec] = std::from_chars(f[9].data(), f[9].data() + f[9].size(), s.inode);
    if (ec == std::errc{}) out.push_back(s);
  }
  return out;
}

}  // namespace

bool other_listener_stays(std::string_view proc_net_tcp, const std::vector<unsigned long>& ours) {
  if (ours.empty()) return false;
  const auto lowest = *std::min_element(ours.begin(), ours.end());
  auto all = listeners_in(proc_net_tcp);
  auto is_ours = [&](const socket_line& s) {
    return std::find(ours.begin(), ours.end(), s.inode) != ours.end();
  };
  for (const auto& mine : all) {
    if (!is_ours(mine)) continue;
    for (const auto& other : all)
      if (other.local == mine.local && !is_ours(other) && other.inode < lowest) return true;
  }
  return false;
}

bool port_taken_by_other_listener(const std::vector<int>& fds) {
  std::vector<unsigned long> ours;
  for (int fd : fds) {
    struct stat st {};
    if (fstat(fd, &st) == 0) ours.push_back(static_cast<unsigned long>(st.st_ino));
  }
  for (const char* path : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(path);
    if (!in) continue;
    std::ostringstream text;
    text << in.rdbuf();
    if (other_listener_stays(text.str(), ours)) return true;
  }
  return false;
}

}  // namespace smtpfault::net
