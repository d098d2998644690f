// `smtpfault send`: one message to an SMTP server, for docs, health checks and quick tries.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <limits>
#include <random>
#include <string_view>

#include "app/cli_args.hpp"
#include "app/command_flags.hpp"
#include "app/commands.hpp"
#include "app/log_lines.hpp"
#include "app/version.hpp"
#include "config/loader.hpp"
#include "net/send_client.hpp"
#include "net/tls_context.hpp"
#include "proto/address.hpp"
#include "proto/ascii.hpp"
#include "proto/dsn.hpp"
#include "proto/duration.hpp"
#include "proto/reply_stream.hpp"

namespace smtpfault::app {

namespace {

// The most --data may hold: the message is kept in memory (and a copy of it, dot-stuffed).
constexpr std::size_t max_message_octets = std::size_t{256} << 20;

void print_send_help() {
  std::printf(
      "usage: smtpfault send [options] --from ADDR --to ADDR [--to ADDR]...\n"
      "\n"
      "Sends one message and prints the conversation. Exit 0 when the server accepted it.\n"
      "\n"
      "  --server HOST:PORT   where to send (default 127.0.0.1:2525)\n"
      "  --starttls           upgrade with STARTTLS after EHLO\n"
      "  --tls                implicit TLS from the first byte (RFC 8314)\n"
      "  --verify             verify the server certificate and its host name (off by\n"
      "                       default: mocks rarely have a trusted certificate)\n"
      "  --ca FILE            trust the CAs in this PEM file too, and verify (e.g.\n"
      "                       fixtures/certs/test-ca.pem for smtpfault's own certificate)\n"
      "  --auth USER:PASS     authenticate with AUTH PLAIN (only where EHLO offers AUTH: many\n"
      "                       servers offer it over TLS alone, after --starttls)\n"
      "  --helo NAME          EHLO name (default smtpfault.client)\n"
      "  --from ADDR          envelope sender (\"\" for the null sender)\n"
      "  --to ADDR            envelope recipient, repeatable\n"
      "  --data FILE          the message (RFC 5322; LF endings become CRLF), '-' = stdin;\n"
      "                       at most 256 MiB; without it a short test message is\n"
      "                       generated\n"
      "  --notify WHEN        when to get a delivery status notification (RFC 3461): NEVER,\n"
      "                       or a list of SUCCESS, FAILURE, DELAY; NOTIFY= on every RCPT\n"
      "  --ret FULL|HDRS      how much of the message a notification returns; RET= on MAIL\n"
      "  --envid TEXT         the identifier notifications quote (printable ASCII, at most\n"
      "                       100 characters as sent); ENVID= on MAIL, as xtext\n"
      "                       (with any of these three, nothing is sent to a server\n"
      "                       that does not offer DSN)\n"
      "  --timeout SECONDS    each wait: connecting, a reply, a TLS handshake, a write\n"
      "                       (default 30)\n"
      "  --log-format F       text (default), json (JSON lines: each transcript line, then\n"
      "                       the outcome) or none (the outcome only)\n"
      "  --config FILE        read these options from the file's [send] table (env\n"
      "                       SMTPFAULT_CONFIG): server = \"mx:25\", to = [\"a@x\", \"b@x\"]\n"
      "  --help, --version\n"
      "\n"
      "Every option is also an SMTPFAULT_SEND_* variable (SMTPFAULT_SEND_SERVER,\n"
      "SMTPFAULT_SEND_STARTTLS=1, SMTPFAULT_SEND_TO=a@x,b@x). The command line wins over the\n"
      "environment, which wins over the file.\n");
}

// The message as read, with bare LF line endings made CRLF; `last` is the octet before `in`
// (the end of the previous piece), so that a CRLF split between two reads stays one.
void append_crlf(std::string& out, std::string_view in, char& last) {
  for (char c : in) {
    if (c == '\n' && last != '\r') out += '\r';
    out += c;
    last = c;
  }
}

// Unique for each message sent, also for two sends in one second.
std::string message_id() {
  std::random_device random;
  char id[96];
  std::snprintf(id, sizeof id, "<%lld.%ld.%08x%08x@smtpfault.client>",
                static_cast<long long>(std::time(nullptr)), static_cast<long>(::getpid()), random(),
                random());
  return id;
}

std::string default_message(const net::send_options& o) {
  char date[64];
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  std::string to;
  for (const auto& t : o.to)
    to += (to.empty() ? "" : ", ") + t;
  // A null sender (--from '') has no mailbox for the header; bounces use the daemon's name.
  const std::string from = o.from.empty() ? "MAILER-DAEMON@" + o.helo : o.from;
  return "From: " + from + "\r\nTo: " + to +
         "\r\nSubject: smtpfault test message\r\nDate: " + date +
         "\r\nMessage-ID: " + message_id() + "\r\n\r\n" +
         "This is a test message sent by smtpfault send.\r\n";
}

struct send_request {
  net::send_options o;
  std::string data_file, data_flag;
  std::string tls_origin, starttls_origin;  // who asked for each, for the conflict's message
  std::string verify_origin;                // --verify or --ca: needs one of them
  std::string ca_origin;                    // who gave --ca, for what is wrong with the file
  bool have_from = false;
  output_format format = output_format::text;
};

// A value that goes into a command line: a CR or LF in it would end the command early and send
// the rest as a command of its own; a NUL is no text at all.
std::optional<std::string> check_command_text(const flag_value& f) {
  if (f.value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos)
    return f.origin + ": a CR, LF or NUL would end the command early";
  return std::nullopt;
}

// An address for MAIL FROM or RCPT TO, read as the server reads the path (RFC 5321 4.1.2), so
// that a space or a '>' cannot end the path early and put the rest on the line as parameters.
// "<a@x>" is taken as "a@x" (the brackets are what the commands add), "" as the null path.
proto::expected<std::string, std::string> envelope_address(const flag_value& f, bool recipient) {
  // RFC 5321 4.5.3.1's lengths are what a server must take at least: longer ones may go.
  constexpr auto unbounded = std::numeric_limits<std::size_t>::max();
  static const proto::limits lengths{
      .local_part = unbounded, .domain = unbounded, .path = unbounded};
  const auto& v = f.value;
  const bool bracketed = v.size() >= 2 && v.front() == '<' && v.back() == '>';
  const auto path = proto::parse_path(bracketed ? v : "<" + v + ">", lengths, recipient);
  if (!path) {
    return proto::unexpected{f.origin + ": " + proto::describe(path.error()) + " in '" +
                             proto::printable(v) +
                             "' (RFC 5321 4.1.2: local@domain; a space, '<' or '>' only inside "
                             "a quoted local part)"};
  }
  if (recipient && path->is_null) {
    return proto::unexpected{f.origin + ": empty; a recipient needs an address"};
  }
  return path->address();
}

// --notify, --ret and --envid (RFC 3461 4): a value the server would refuse is a usage error,
// found before connecting. Sent upper case, as the RFC spells the values.
std::optional<std::string> apply_dsn_flag(const flag_value& f, proto::dsn_request& dsn) {
  auto upper = [](std::string text) {
    std::ranges::transform(text, text.begin(), proto::ascii_upper);
    return text;
  };
  if (f.name == "notify") {
    if (auto why = proto::notify_problem(f.value); !why.empty())
      return f.origin + ": " + why + " (RFC 3461 4.1)";
    dsn.notify = upper(f.value);
  } else if (f.name == "ret") {
    if (!proto::valid_ret(f.value))
      return f.origin + ": expected FULL or HDRS, got '" + proto::printable(f.value, 40) + "'";
    dsn.ret = upper(f.value);
  } else {
    if (auto why = proto::envid_problem(f.value); !why.empty()) return f.origin + ": " + why;
    dsn.envid = f.value;
  }
  return std::nullopt;
}

// One flag into the request; files are looked at only when touch_files (serve checks the
// configuration without them: a path may be relative to where send runs later).
std::optional<std::string> apply_send_flag(const flag_value& f, send_request& r, bool touch_files) {
  auto& o = r.o;
  if (f.name == "server") {
    auto ep = config::parse_target(f.value);
    if (!ep) return f.origin + ": " + ep.error();
    o.host = ep->host;
    o.port = ep->port;
  } else if (f.name == "starttls") {
    r.starttls_origin = f.origin;
  } else if (f.name == "tls") {
    r.tls_origin = f.origin;
  } else if (f.name == "verify") {
    o.verify_certificate = true;
    r.verify_origin = f.origin;
  } else if (f.name == "ca") {
    r.verify_origin = f.origin;
    if (touch_files && ::access(f.value.c_str(), R_OK) != 0)
      return f.with_value() + ": cannot read: " + std::strerror(errno);
    r.ca_origin = f.origin;
    o.ca_file = f.value;
    o.verify_certificate = true;
  } else if (f.name == "auth") {
    auto colon = f.value.find(':');
    if (colon == std::string::npos) return f.origin + ": expected USER:PASS";
    // An empty user would skip AUTH altogether, and send without the login asked for.
    if (colon == 0) return f.origin + ": the user name before ':' is empty";
    o.user = f.value.substr(0, colon);
    o.password = f.value.substr(colon + 1);
  } else if (f.name == "helo") {
    if (f.value.empty()) return f.origin + ": empty; EHLO needs a name";
    if (auto err = check_command_text(f)) return err;
    o.helo = f.value;
  } else if (f.name == "from" || f.name == "to") {
    if (auto err = check_command_text(f)) return err;
    auto address = envelope_address(f, f.name == "to");
    if (!address) return address.error();
    if (f.name == "to") {
      o.to.push_back(std::move(*address));
    } else {
      o.from = std::move(*address);
      r.have_from = true;
    }
  } else if (f.name == "notify" || f.name == "ret" || f.name == "envid") {
    return apply_dsn_flag(f, o.dsn);
  } else if (f.name == "data") {
    r.data_file = f.value;
    r.data_flag = f.with_value();
  } else if (f.name == "timeout") {
    auto secs = parse_seconds(f.value);
    if (!secs) return f.origin + ": " + secs.error();
    o.timeout = proto::millis_from_seconds(*secs, true);
  } else if (f.name == "log-format") {
    return parse_output_format(f.origin, f.value, r.format);
  }
  return std::nullopt;
}

std::optional<std::string> apply_send_flags(const std::vector<flag_value>& flags, send_request& r,
                                            bool touch_files) {
  for (const auto& f : flags)
    if (auto err = apply_send_flag(f, r, touch_files)) return err;
  if (!r.tls_origin.empty() && !r.starttls_origin.empty()) {
    return r.tls_origin + " and " + r.starttls_origin +
           " exclude each other: implicit TLS has no STARTTLS";
  }
  if (!r.tls_origin.empty()) r.o.tls = net::send_options::tls_mode::implicit;
  if (!r.starttls_origin.empty()) r.o.tls = net::send_options::tls_mode::starttls;
  // A certificate check without TLS would check nothing and send the message in the clear.
  if (!r.verify_origin.empty() && r.o.tls == net::send_options::tls_mode::none) {
    return r.verify_origin +
           " checks the server's certificate, but no TLS was asked for: add "
           "--starttls or --tls";
  }
  // Loaded once here: a file that is no PEM is a mistake in the command, found before sending.
  if (touch_files && !r.o.ca_file.empty()) {
    if (auto why = net::ca_file_problem(r.o.ca_file); !why.empty()) return r.ca_origin + ": " + why;
  }
  return std::nullopt;
}

// The message to send: the file of --data (or stdin for "-") with CRLF line endings, or a
// small default message; an error when the file cannot be opened.
std::optional<std::string> read_message(send_request& request) {
  auto& o = request.o;
  if (request.data_file.empty()) {
    o.data = default_message(o);
    return std::nullopt;
  }
  std::ifstream in;
  std::istream* src = &std::cin;
  if (request.data_file != "-") {
    errno = 0;
    in.open(request.data_file, std::ios::binary);
    if (!in) {
      return request.data_flag + ": cannot open file" +
             (errno != 0 ? std::string(": ") + std::strerror(errno) : std::string());
    }
    src = &in;
  }
  // Read in pieces and bounded: the whole message is kept in memory, and a device or a huge
  // file (--data /dev/zero) must end in a message, not in std::bad_alloc.
  std::string piece(64 * 1024, '\0');
  char last = '\0';
  std::size_t read = 0;
  while (src->read(piece.data(), static_cast<std::streamsize>(piece.size())) || src->gcount() > 0) {
    const auto n = static_cast<std::size_t>(src->gcount());
    read += n;
    if (read > max_message_octets) {
      o.data.clear();
      return request.data_flag + ": larger than " + std::to_string(max_message_octets >> 20) +
             " MiB; send keeps the whole message in memory";
    }
    append_crlf(o.data, std::string_view(piece.data(), n), last);
  }
  if (src->bad()) return request.data_flag + ": cannot read: " + std::strerror(errno);
  return std::nullopt;
}

// The last line, and the exit status: 0 delivered (to every recipient), 1 not.
int print_verdict(const net::send_result& result, std::size_t recipients, output_format format) {
  if (format == output_format::json) {
    boost::json::object o{
        {"delivered", result.delivered}, {"accepted", result.accepted}, {"recipients", recipients}};
    if (!result.delivered) o["error"] = result.error;
    // Which ones, as data: the error text quotes each refusal.
    if (!result.refused.empty()) {
      boost::json::array refused;
      for (const auto& r : result.refused)
        refused.emplace_back(r);
      o["refused"] = std::move(refused);
    }
    print_json_line(o);
  }
  // Delivered means to every recipient, in JSON as in text: to only some of them is a failure.
  if (!result.delivered && result.accepted > 0) {
    std::fprintf(stderr,
                 "smtpfault send: not delivered to every recipient (%zu of %zu accepted it); "
                 "refused: %s\n",
                 result.accepted, recipients, result.error.c_str());
    return 1;
  }
  if (!result.delivered) {
    std::fprintf(stderr, "smtpfault send: not delivered: %s\n", result.error.c_str());
    return 1;
  }
  if (format != output_format::json) std::printf("delivered\n");
  return 0;
}

}  // namespace

std::optional<std::string> check_send_values(const std::vector<flag_value>& flags) {
  send_request scratch;
  return apply_send_flags(flags, scratch, false);
}

int send_command(const std::vector<std::string>& argv, char** envp) {
  parsed_args args;
  const auto& known = send_flags().flags;
  if (auto err = parse_args(argv, known, args)) {
    std::fprintf(stderr, "smtpfault send: %s (see smtpfault send --help)\n", err->c_str());
    return 2;
  }
  if (auto err = add_configured_flags(send_flags().config, known, envp, args)) {
    std::fprintf(stderr, "smtpfault send: %s\n", err->c_str());
    return 2;
  }
  if (config::settings unused; auto err = check_server_variables(envp, unused)) {
    std::fprintf(stderr, "smtpfault send: %s\n", err->c_str());
    return 2;
  }
  auto usage_error = [](const std::string& msg) {
    std::fprintf(stderr, "smtpfault send: %s (see smtpfault send --help)\n", msg.c_str());
    return 2;
  };
  for (const auto& f : args.flags) {
    if (f.name == "help") return print_send_help(), 0;
    if (f.name == "version") return std::printf("smtpfault %s\n", version), 0;
  }
  send_request request;
  if (auto err = apply_send_flags(args.flags, request, true)) return usage_error(*err);
  auto& o = request.o;
  if (!args.positional.empty())
    return usage_error("unexpected argument '" + args.positional[0] + "'");
  if (!request.have_from) return usage_error("--from is required");
  if (o.to.empty()) return usage_error("at least one --to is required");
  if (auto err = read_message(request)) return usage_error(*err);
  const auto format = request.format;
  auto result = net::send_message(o, [format](std::string_view line) {
    if (format == output_format::none) return;
    if (format == output_format::json) return print_json_line(transcript_fields(line, {}));
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
  });
  std::fflush(stdout);  // the transcript before the verdict, also when both go to one pipe
  return print_verdict(result, o.to.size(), format);
}

}  // namespace smtpfault::app
