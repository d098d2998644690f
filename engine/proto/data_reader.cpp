#include "proto/data_reader.hpp"

#include <cstring>

namespace smtpfault::proto {

namespace {

bool is_special(char c) {
  return c == '\r' || c == '\n' || c == '\0';
}

// The length of a complete ordinary line at the start of `rest` (content without CR or NUL,
// then CRLF), or 0. Such lines are nearly all of a message and need no octet-wise state.
// `searched` is how much of rest the answer covers: up to the first LF, or all of it.
// `nul_at` is where rest's first NUL is (npos: none), found once for many lines.
std::size_t plain_line_length(std::string_view rest, std::size_t nul_at, std::size_t& searched) {
  const void* lf = std::memchr(rest.data(), '\n', rest.size());
  if (!lf) {
    searched = rest.size();
    return 0;
  }
  std::size_t n = static_cast<const char*>(lf) - rest.data();
  searched = n + 1;
  if (n == 0 || rest[n - 1] != '\r' || nul_at < n) return 0;
  if (std::memchr(rest.data(), '\r', n - 1)) return 0;
  return n + 1;
}

// Where the first NUL at or after `from` is in input, or npos.
std::size_t find_nul(std::string_view input, std::size_t from) {
  const void* at = std::memchr(input.data() + from, '\0', input.size() - from);
  return at ? static_cast<std::size_t>(static_cast<const char*>(at) - input.data())
            : std::string_view::npos;
}

}  // namespace

const char* anomaly_name(anomaly_kind k) {
  switch (k) {
    case anomaly_kind::bare_cr:
      return "bare_cr";
    case anomaly_kind::bare_lf:
      return "bare_lf";
    case anomaly_kind::nul:
      return "nul";
    case anomaly_kind::long_line:
      return "long_line";
    case anomaly_kind::unstuffed_dot:
      return "unstuffed_dot";
    case anomaly_kind::undeclared_8bit:
      return "undeclared_8bit";
    case anomaly_kind::dot_line:
      return "dot_line";
  }
  return "unknown";
}

data_reader::data_reader(std::size_t max_text_line, std::uint64_t max_size)
    : max_text_line_(max_text_line), max_size_(max_size) {}

data_reader::result data_reader::feed(std::string_view input, std::string& body) {
  if (st_ == state::finished) return {0, true};
  std::size_t i = 0;
  // The whole-line search is not tried again before this point: repeating a failed search
  // octet by octet would make a long line full of NULs or bare CRs quadratic. The octets up to
  // there go through the state machine, which gives the same result.
  std::size_t plain_from = 0;
  // The next NUL, looked for again only once the lines have passed it.
  std::size_t nul_at = find_nul(input, 0);
  while (i < input.size()) {
    // Whole lines at once, as many as follow each other; one that starts with a dot goes
    // through the state machine. The body takes the run in one append, not a line at a time.
    if (i >= plain_from &&
        (st_ == state::in_line || (st_ == state::line_start && input[i] != '.'))) {
      const std::size_t run_start = i;
      for (;;) {
        if (nul_at < i) nul_at = find_nul(input, i);
        std::size_t searched = 0;
        const std::size_t n = plain_line_length(
            input.substr(i), nul_at == std::string_view::npos ? nul_at : nul_at - i, searched);
        plain_from = i + searched;
        searched_ += searched;
        if (n == 0) break;
        count_line(n, wire_offset_ + (i - run_start));
        i += n;
        line_len_ = 0;
        st_ = state::line_start;
        if (i == input.size() || input[i] == '.') break;
      }
      if (i != run_start) {
        keep(body, input.substr(run_start, i - run_start));
        wire_offset_ += i - run_start;
        continue;
      }
    }
    if (st_ == state::in_line) {
      // Fast path: plain octets up to the next CR, LF or NUL are appended as one run.
      std::size_t j = i;
      while (j < input.size() && !is_special(input[j]))
        ++j;
      if (j > i) {
        append(body, input.substr(i, j - i), wire_offset_);
        wire_offset_ += j - i;
        i = j;
        continue;
      }
    }
    bool done = step(body, input[i]);
    ++i;
    ++wire_offset_;
    if (done) return {i, true};
  }
  return {i, false};
}

// One octet through the state machine; wire_offset_ is its offset. Returns true at the end of
// the data. Only CRLF counts as a line end, so a dot after a bare CR or LF is plain content.
bool data_reader::step(std::string& body, char c) {
  switch (st_) {
    case state::line_start:
      if (c == '.') {
        st_ = state::dot;  // kept back: either stuffing or the terminator
        return false;
      }
      break;
    case state::dot:
      if (c == '\r') {
        st_ = state::dot_cr;
        return false;
      }
      // RFC 5321 4.5.2: a client doubles every leading dot, so ".x" on the wire means the
      // client did not; the dot is dropped all the same, and the slip is recorded.
      if (c != '.') note(anomaly_kind::unstuffed_dot, wire_offset_ - 1);
      break;
    case state::dot_cr:
      if (c == '\n') {
        st_ = state::finished;
        return true;
      }
      // ".<CR>x": a stuffed dot followed by a bare CR, which was kept back and is content.
      note(anomaly_kind::bare_cr, wire_offset_ - 1);
      append(body, "\r", wire_offset_ - 1);
      break;
    case state::cr:
      if (c == '\n') {
        append(body, "\n", wire_offset_);
        line_len_ = 0;
        st_ = state::line_start;
        return false;
      }
      note(anomaly_kind::bare_cr, wire_offset_ - 1);
      break;
    case state::in_line:
    case state::finished:
      break;
  }
  in_line_octet(body, c);
  return false;
}

void data_reader::in_line_octet(std::string& body, char c) {
  st_ = state::in_line;
  if (c == '\r') {
    st_ = state::cr;
  } else if (c == '\n') {
    note(anomaly_kind::bare_lf, wire_offset_);
  } else if (c == '\0') {
    note(anomaly_kind::nul, wire_offset_);
  }
  append(body, std::string_view(&c, 1), wire_offset_);
}

// Accounts for a run of content octets starting at wire offset `offset`: line length, size
// limit, and the body itself up to max_size.
void data_reader::append(std::string& body, std::string_view run, std::uint64_t offset) {
  count_line(run.size(), offset);
  keep(body, run);
}

// n more octets of the current line, the first at wire offset `offset`.
void data_reader::count_line(std::size_t n, std::uint64_t offset) {
  if (max_text_line_ != 0 && line_len_ <= max_text_line_ && line_len_ + n > max_text_line_) {
    line_too_long_ = true;
    note(anomaly_kind::long_line, offset + (max_text_line_ - line_len_));
  }
  line_len_ += n;
}

// Content octets into the body, up to max_size; the ones past it are only counted.
void data_reader::keep(std::string& body, std::string_view run) {
  if (max_size_ == 0) {
    body.append(run);
  } else if (body_size_ < max_size_) {
    std::uint64_t room = max_size_ - body_size_;
    body.append(run.substr(0, room < run.size() ? static_cast<std::size_t>(room) : run.size()));
  }
  body_size_ += run.size();
  if (max_size_ != 0 && body_size_ > max_size_) size_exceeded_ = true;
}

void data_reader::note(anomaly_kind k, std::uint64_t offset) {
  ++anomaly_count_;
  if (anomalies_.size() < max_anomalies) anomalies_.push_back({k, offset});
}

}  // namespace smtpfault::proto
