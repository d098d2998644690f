#include "capture/message_store.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <boost/json.hpp>

#include "json/json_text.hpp"

namespace smtpfault::capture {

namespace {

bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// tmp becomes path, unless a file of that name is there already: a message's files are new,
// and one of another server sharing the folder must not be replaced.
std::string publish_new(const std::string& tmp, const std::string& path) {
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) == 0) return "";
  int err = errno;
  // A file system without the flag: a hard link refuses an existing name too.
  if (err == EINVAL || err == ENOSYS) {
    if (::link(tmp.c_str(), path.c_str()) == 0) {
      ::unlink(tmp.c_str());
      return "";
    }
    err = errno;
  }
  if (err == EEXIST) {
    return path + " exists already and was not replaced (another server storing to this folder?)";
  }
  return "cannot rename " + tmp + " to " + path + ": " + std::strerror(err);
}

// Write to "name.tmp", fsync, rename: readers see the whole file or none of it. A new file
// (not `replace`) never takes the place of one that is there.
// "" when the file is written and synced, else what went wrong, naming the file.
std::string write_durably(const std::string& path, std::string_view bytes, bool replace) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return "cannot create " + tmp + ": " + std::strerror(errno);
  std::string problem;
  if (!write_all(fd, bytes) || ::fsync(fd) != 0) {
    problem = "cannot write " + tmp + ": " + std::strerror(errno);
  }
  if (::close(fd) != 0 && problem.empty()) {
    problem = "cannot write " + tmp + ": " + std::strerror(errno);
  }
  if (problem.empty() && replace && ::rename(tmp.c_str(), path.c_str()) != 0) {
    problem = "cannot rename " + tmp + " to " + path + ": " + std::strerror(errno);
  } else if (problem.empty() && !replace) {
    problem = publish_new(tmp, path);
  }
  if (!problem.empty()) ::unlink(tmp.c_str());
  return problem;
}

// A file this server wrote (a message's .json): read whole, or false with errno set.
bool read_small_file(const std::string& path, std::string& out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[4096];
  for (;;) {
    const auto n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      errno = err;
      return n == 0;
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
}

void sync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

boost::json::object params_json(const std::vector<proto::esmtp_param>& params) {
  boost::json::object o;
  for (const auto& p : params) {
    o[p.keyword] = p.value ? boost::json::value(*p.value) : boost::json::value(nullptr);
  }
  return o;
}

}  // namespace

message_store::message_store(std::string dir, std::size_t max_messages, std::size_t max_sessions)
    : dir_(std::move(dir)), max_messages_(max_messages), max_sessions_(max_sessions) {
  // The start time and the process: two servers sharing a --store folder, started in the same
  // millisecond (or one after a clock stepped back), do not give the same ids.
  auto now = std::chrono::system_clock::now().time_since_epoch();
  char buf[40];
  std::snprintf(buf, sizeof buf, "%010llx-%x",
                static_cast<unsigned long long>(
                    std::chrono::duration_cast<std::chrono::milliseconds>(now).count()),
                static_cast<unsigned>(::getpid()));
  id_prefix_ = buf;
}

std::optional<std::string> message_store::prepare() {
  if (dir_.empty()) return std::nullopt;
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return dir_ + ": " + ec.message();
  if (::access(dir_.c_str(), W_OK) != 0) return dir_ + ": " + std::strerror(errno);
  return std::nullopt;
}

std::string message_store::next_id() {
  // "<prefix>-000042": the number zero-padded to six digits, more when it needs them. Written by
  // hand, not with snprintf, which cost as much as the rest of storing a message.
  char digits[24];
  const auto end = std::to_chars(digits, std::end(digits), ++seq_).ptr;
  const auto n = static_cast<std::size_t>(end - digits);
  const std::size_t pad = n < 6 ? 6 - n : 0;
  std::string id;
  id.reserve(id_prefix_.size() + 1 + pad + n);
  id += id_prefix_;
  id += '-';
  id.append(pad, '0');
  id.append(digits, n);
  return id;
}

// ThreadSanitizer does not model atomic_thread_fence, on which handing a forgotten message's
// buffer to the next one relies (below): it would report that hand-over as a race with the last
// API reader of the message. Under it the buffer is not recycled, which costs an allocation.
#if defined(__SANITIZE_THREAD__)
constexpr bool recycle_bodies = false;
#else
constexpr bool recycle_bodies = true;
#endif

std::shared_ptr<const stored_message> message_store::store(session::message&& m,
                                                           std::string* spare_body,
                                                           std::string* why_not,
                                                           bool reply_pending) {
  auto stored = std::make_shared<stored_message>();
  {
    std::lock_guard lock(mu_);
    stored->id = next_id();
  }
  stored->msg = std::move(m);
  if (!dir_.empty()) {
    if (auto problem = write_files(*stored); !problem.empty()) {
      if (why_not) *why_not = std::move(problem);
      return nullptr;
    }
  }
  // After the files: a message stored is acknowledged there unless the session ends before its
  // reply is written (mark_unacknowledged); the API tells the wait for that reply apart.
  stored->reply_pending.store(reply_pending, std::memory_order_relaxed);
  std::shared_ptr<const stored_message> kept = stored;
  // Forgotten messages are destroyed after the lock is released: freeing is not free.
  std::shared_ptr<stored_message> oldest;  // usually the only one
  std::vector<std::shared_ptr<stored_message>> forgotten;
  {
    std::lock_guard lock(mu_);
    held_bytes_ += stored->msg.data.size();
    stored->number = ++stored_number_;
    messages_.push_back(std::move(stored));
    ++stored_total_;
    // Forget the oldest beyond the count or byte budget; with --store they stay on disk.
    while (messages_.size() > 1 && (messages_.size() > max_messages_ || held_bytes_ > max_bytes_)) {
      held_bytes_ -= messages_.front()->msg.data.size();
      if (oldest) {
        forgotten.push_back(std::move(messages_.front()));
      } else {
        oldest = std::move(messages_.front());
      }
      messages_.pop_front();
    }
  }
  // The session keeps the buffer until its next message, maybe for as long as it stays idle:
  // only small ones, where allocating is a real share of the cost (1000 sessions hold 16 MiB).
  constexpr std::size_t largest_recycled = 16 * 1024;
  if (recycle_bodies && spare_body && oldest && oldest.use_count() == 1 &&
      oldest->msg.data.capacity() <= largest_recycled) {
    // use_count() is a relaxed load: order it after the last reader's release of its copy.
    std::atomic_thread_fence(std::memory_order_acquire);
    *spare_body = std::move(oldest->msg.data);
  }
  notify();
  return kept;
}

std::shared_ptr<const stored_message> message_store::find_message(std::string_view id) const {
  std::lock_guard lock(mu_);
  for (auto it = messages_.rbegin(); it != messages_.rend(); ++it)
    if ((*it)->id == id) return *it;
  return nullptr;
}

std::shared_ptr<const session_record> message_store::find_session(std::string_view id) const {
  std::lock_guard lock(mu_);
  // Newest first: session ids restart with the process, so the latest is the one meant.
  for (auto it = sessions_.rbegin(); it != sessions_.rend(); ++it)
    if ((*it)->facts.session_id == id) return *it;
  return nullptr;
}

void message_store::clear_messages() {
  std::lock_guard lock(mu_);
  messages_.clear();
  held_bytes_ = 0;
  ++clears_;
}

void message_store::clear_sessions() {
  std::lock_guard lock(mu_);
  sessions_.clear();
}

std::uint64_t message_store::stored_total() const {
  std::lock_guard lock(mu_);
  return stored_total_;
}

std::uint64_t message_store::subscribe(listener l) {
  std::lock_guard lock(listeners_mu_);
  listeners_.emplace_back(++next_token_, std::move(l));
  return next_token_;
}

void message_store::unsubscribe(std::uint64_t token) {
  std::lock_guard lock(listeners_mu_);
  std::erase_if(listeners_, [&](const auto& p) { return p.first == token; });
}

void message_store::notify() {
  std::lock_guard lock(listeners_mu_);
  for (const auto& [token, l] : listeners_)
    l();
}

std::string message_store::write_files(const stored_message& m) const {
  const std::string base = dir_ + "/" + m.id;
  // The .eml goes first: the .json is the marker that the message is complete.
  auto problem = write_durably(base + ".eml", m.msg.data, false);
  if (problem.empty()) {
    problem = write_durably(base + ".json", message_metadata_json(m), false);
    // Refused with a 451: its .eml goes too, so that the folder holds accepted messages only.
    if (!problem.empty()) ::unlink((base + ".eml").c_str());
  }
  if (problem.empty()) sync_dir(dir_);
  return problem;
}

void message_store::mark_unacknowledged(const stored_message& m) {
  // The caller's own copy: no search of the kept messages, and one retention or a DELETE
  // forgot is marked as well (it is on disk in any case).
  m.unacknowledged.store(true, std::memory_order_relaxed);
  if (dir_.empty()) return;
  const std::string path = dir_ + "/" + m.id + ".json";
  std::string text, problem;
  if (!read_small_file(path, text)) {
    problem = "cannot read " + path + ": " + std::strerror(errno);
  } else {
    boost::system::error_code ec;
    auto doc = boost::json::parse(text, ec);
    if (ec || !doc.is_object()) {
      problem = path + " is not the JSON this server wrote";
    } else {
      doc.as_object()["acknowledged"] = false;
      problem = write_durably(path, json::json_text(doc) + "\n", true);
    }
  }
  if (!problem.empty()) {
    std::fprintf(
        stderr,
        "smtpfault: message %s: its 250 was never written, and its .json cannot say so: %s\n",
        m.id.c_str(), problem.c_str());
  }
}

void message_store::record_session(session_record&& r) {
  auto rec = std::make_shared<const session_record>(std::move(r));
  std::shared_ptr<const session_record> forgotten;  // destroyed after the lock is released
  std::lock_guard lock(mu_);
  sessions_.push_back(std::move(rec));
  if (sessions_.size() > max_sessions_) {
    forgotten = std::move(sessions_.front());
    sessions_.pop_front();
    if (!forgotten->entries.empty()) {
      newest_forgotten_start_ = std::max(newest_forgotten_start_, forgotten->entries.front().at);
    }
  }
}

bool message_store::forgot_a_session_started_since(std::chrono::system_clock::time_point t) const {
  std::lock_guard lock(mu_);
  return newest_forgotten_start_ != std::chrono::system_clock::time_point{} &&
         newest_forgotten_start_ >= t;
}

std::vector<std::shared_ptr<const stored_message>> message_store::messages() const {
  std::lock_guard lock(mu_);
  return {messages_.begin(), messages_.end()};
}

message_store::message_news message_store::messages_after(std::uint64_t after,
                                                          std::uint64_t clears) const {
  message_news news;
  std::lock_guard lock(mu_);
  news.newest = stored_number_;
  news.clears = clears_;
  news.from_start = clears != clears_;
  auto first = messages_.end();
  if (news.from_start) {
    first = messages_.begin();
  } else {
    while (first != messages_.begin() && (*std::prev(first))->number > after)
      --first;
  }
  news.messages.assign(first, messages_.end());
  return news;
}

std::size_t message_store::message_count() const {
  std::lock_guard lock(mu_);
  return messages_.size();
}

std::vector<std::shared_ptr<const session_record>> message_store::sessions() const {
  std::lock_guard lock(mu_);
  return {sessions_.begin(), sessions_.end()};
}

std::string message_metadata_json(const stored_message& m) {
  return json::json_text(message_metadata(m)) + "\n";
}

boost::json::object message_metadata(const stored_message& m) {
  const auto& msg = m.msg;
  boost::json::array rcpts;
  for (const auto& r : msg.env.recipients) {
    rcpts.push_back(
        boost::json::object{{"address", r.address.address()}, {"params", params_json(r.params)}});
  }
  boost::json::array anomalies;
  for (const auto& a : msg.anomalies) {
    anomalies.push_back(
        boost::json::object{{"kind", proto::anomaly_name(a.kind)}, {"offset", a.offset}});
  }
  const auto& f = msg.facts;
  boost::json::object o{
      {"id", m.id},
      {"received", session::format_timestamp(msg.received)},
      {"size", msg.data.size()},
      {"mail_from", msg.env.mail_from.address()},
      {"mail_params", params_json(msg.env.mail_params)},
      {"recipients", std::move(rcpts)},
      {"via_bdat", msg.via_bdat},
      {"acknowledged", m.acknowledged()},
      {"anomalies", std::move(anomalies)},
      {"session", boost::json::object{{"id", f.session_id},
                                      {"client", f.client_address},
                                      {"helo", f.helo},
                                      {"tls", f.tls},
                                      {"tls_version", f.tls_version},
                                      {"tls_cipher", f.tls_cipher},
                                      {"auth_user", f.auth_user},
                                      {"auth_mechanism", f.auth_mechanism},
                                      {"lmtp", f.lmtp}}},
  };
  // Wire data (HELO name, ESMTP parameter values, AUTH identities) may hold any octets; the
  // writer (json::json_text) makes them U+FFFD, so that a .json file or a reply is UTF-8.
  return o;
}

}  // namespace smtpfault::capture
