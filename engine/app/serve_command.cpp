// `smtpfault serve`: settings from defaults < TOML file < environment < flags, then run.
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <random>
#include <string_view>

#include <sys/resource.h>

#include <boost/asio/ip/tcp.hpp>

#include "app/cli_args.hpp"
#include "app/commands.hpp"
#include "app/server_setup.hpp"
#include "app/stop_signals.hpp"
#include "app/version.hpp"
#include "capture/message_store.hpp"
#include "config/loader.hpp"
#include "control/api_server.hpp"
#include "net/server.hpp"
#include "net/tls_context.hpp"
#include "net/transport.hpp"
#include "proto/address.hpp"
#include "proto/duration.hpp"
#include "proto/near_miss.hpp"
#include "script/catalogue.hpp"
#include "script/scenario.hpp"

namespace smtpfault::app {

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// A configuration key as a flag: "limits.text_line" -> "limits-text-line".
std::string flag_of(std::string path) {
  for (auto& c : path)
    if (c == '_' || c == '.') c = '-';
  return path;
}

// "  --flag  text", the text wrapped at 80 columns in a column of its own; a flag too long for
// its column gets the text on the lines below it.
void print_option(const std::string& flag, const std::string& text) {
  constexpr std::size_t column = 23, width = 80;
  std::string line = "  " + flag;
  if (line.size() + 1 > column) {
    std::printf("%s\n", line.c_str());
    line.clear();
  }
  line.resize(column, ' ');
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find(' ', pos);
    if (end == std::string::npos) end = text.size();
    const auto word = std::string_view(text).substr(pos, end - pos);
    if (line.size() > column && line.size() + 1 + word.size() > width) {
      std::printf("%s\n", line.c_str());
      line.assign(column, ' ');
    }
    if (line.size() > column) line += ' ';
    line += word;
    pos = end + 1;
  }
  std::printf("%s\n", line.c_str());
}

void print_serve_help() {
  std::printf(
      "usage: smtpfault serve [options]\n"
      "\n"
      "Runs the mock SMTP server until SIGTERM, SIGINT or SIGHUP. Every option is\n"
      "also a key of the TOML file and an SMTPFAULT_* environment variable; flags win\n"
      "over the environment, which wins over the file.\n"
      "\n"
      "  --config FILE        TOML configuration file (env SMTPFAULT_CONFIG)\n"
      "  --set KEY=VALUE      set any configuration key, e.g. --set\n"
      "                       limits.text_line=2000\n");
  for (const auto& k : config::known_keys()) {
    // The default, unless the help text already gives it in words ("default 64 MiB").
    const bool said = k.help.find("default") != std::string::npos;
    const std::string def = k.default_value.empty() || said ? "" : ", default " + k.default_value;
    print_option("--" + flag_of(k.path), k.help + " [" + k.type + def + ", env " + k.env + "]");
  }
  std::printf("\n  --help               this text\n  --version            print the version\n");
}

// Flags are the TOML keys with '-' for '_' and '.'; repeated list flags accumulate.
std::optional<std::string> apply_flags(config::settings& s, const parsed_args& args) {
  std::vector<setting_text> items;
  for (const auto& f : args.flags) {
    if (f.name == "config" || f.name == "help" || f.name == "version") continue;
    if (f.name == "set") {
      auto item = parse_set(f.value);
      if (!item) return "--set: expected KEY=VALUE, got '" + f.value + "'";
      items.push_back(std::move(*item));
      continue;
    }
    setting_text item{"", f.value, "--" + f.name};
    for (const auto& k : config::known_keys())
      if (flag_of(k.path) == f.name) item.key = k.path;
    if (item.value.empty() && f.name == "lmtp") item.value = "true";
    items.push_back(std::move(item));
  }
  return apply_settings(s, items);
}

std::optional<std::string> load_settings(config::settings& s, const parsed_args& args,
                                         char** envp) {
  if (auto err = read_file_and_environment(s, configuration_file_of(args), envp)) return err;
  return apply_flags(s, args);
}

// Every session holds a socket: lift the soft descriptor limit to the hard one, so a cap of
// thousands of connections is not cut short by a default soft limit of 1024. Returns the limit.
rlim_t raise_descriptor_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit want = lim;
    want.rlim_cur = lim.rlim_max;
    // An unlimited hard limit is not a valid soft value for descriptors; take what fits.
    if (::setrlimit(RLIMIT_NOFILE, &want) != 0) {
      want.rlim_cur = 1u << 20;
      if (lim.rlim_cur < want.rlim_cur && ::setrlimit(RLIMIT_NOFILE, &want) == 0) return 1u << 20;
      return lim.rlim_cur;
    }
    return lim.rlim_max;
  }
  return lim.rlim_cur;
}

// The second of two listeners on one port would fail with "Address already in use", which does
// not say that the other one is this process's own. Port 0 (any free port) never clashes.
std::string one_port_given_twice(const net::server_config& cfg,
                                 const std::optional<tcp::endpoint>& api,
                                 const config::settings& s) {
  std::vector<std::pair<tcp::endpoint, const char*>> all;
  for (const auto& ep : cfg.listen)
    all.emplace_back(ep, "listen");
  for (const auto& ep : cfg.tls_listen)
    all.emplace_back(ep, "tls_listen");
  if (api) all.emplace_back(*api, "api");
  // 0.0.0.0:P takes port P on every IPv4 address, 127.0.0.1:P included (and [::]:P every
  // address of both families, as Linux binds it by default).
  const auto overlap = [](const tcp::endpoint& a, const tcp::endpoint& b) {
    if (a.port() != b.port()) return false;
    if (a == b) return true;
    const auto covers = [](const tcp::endpoint& any, const tcp::endpoint& other) {
      return any.address().is_unspecified() && (any.address().is_v6() || other.address().is_v4());
    };
    return covers(a, b) || covers(b, a);
  };
  for (std::size_t i = 0; i < all.size(); ++i) {
    for (std::size_t j = i + 1; j < all.size(); ++j) {
      if (all[i].first.port() == 0 || !overlap(all[i].first, all[j].first)) continue;
      const auto where = [&](const char* key) {
        const auto origin = s.origin_of(key);
        return origin.empty() ? std::string(key) + " (its default)" : origin;
      };
      if (all[i].first != all[j].first) {
        return net::endpoint_text(all[i].first) + " (for " + where(all[i].second) + ") and " +
               net::endpoint_text(all[j].first) + " (for " + where(all[j].second) +
               ") share a port: an address of all zeros takes that port on every address";
      }
      if (all[i].second == all[j].second) {  // the same list names it twice
        return net::endpoint_text(all[i].first) + " is given twice in " + where(all[i].second) +
               ": name each address once";
      }
      return net::endpoint_text(all[i].first) + " is given twice, for " + where(all[i].second) +
             " and for " + where(all[j].second) + ": each port serves one of them";
    }
  }
  return "";
}

// The HTTP API on its own thread; the token comes from --api-token / SMTPFAULT_API_TOKEN.
// None when `api` is empty.
std::unique_ptr<control::api_server> start_api(net::server& srv, capture::message_store& store,
                                               const config::settings& s,
                                               const std::optional<tcp::endpoint>& at,
                                               const script::scenario_options& so) {
  if (!at) return nullptr;
  control::api_options options;
  options.token = s.api_token;
  options.request_timeout = proto::millis_from_seconds(s.api_request_timeout, true);
  control::api_context ctx{srv, store, std::move(options), so, s.seed};
  auto api = std::make_unique<control::api_server>(std::move(ctx));
  api->bind(*at);
  api->start();
  return api;
}

void print_banner(const net::server& srv, const config::settings& s, net::transcript_log& log,
                  const script::scenario* sc, std::uint64_t seed, const control::api_server* api) {
  log.info(std::string("smtpfault ") + version + " serving" + (s.lmtp ? " LMTP" : "") +
           " with scenario " + (sc ? script::shown_name(sc->name()) : "accept-all"));
  // accept-all draws nothing at random, but the run has a seed all the same (a scenario
  // loaded over the API later without one takes it).
  log.info("  " + script::seed_text(seed));
  // A parameter the scenario never names changes nothing: a misspelt key would go unnoticed.
  const auto unread = sc ? sc->unread_params() : script::param_keys(scenario_params(s));
  const std::string why =
      sc ? " is not read by " + script::shown_name(sc->name()) + " (its source never names it)"
         : " is not read by accept-all (it reads none)";
  for (const auto& key : unread) {
    const auto hint = sc ? proto::did_you_mean(key, sc->named_params()) : std::string();
    log.info("  note: scenario parameter '" + key + "'" + why + ", so it changes nothing" + hint);
  }
  // A hostname that is no DNS name stays out of the certificate made at start-up.
  if (s.tls_cert.empty()) {
    if (auto problem = proto::certificate_name_problem(s.hostname); !problem.empty()) {
      log.info("  note: hostname " + problem + "; the certificate made at start-up names only " +
               "localhost, 127.0.0.1, ::1 and tls.names");
    }
  }
  for (const auto& l : srv.describe_listeners())
    log.info("  listening: " + l);
  if (api) {
    log.info("  listening: http  " + net::endpoint_text(api->local_endpoint()) + " (API" +
             (s.api_token.empty() ? "" : ", bearer token required") + ")");
  } else {
    log.info("  no HTTP API (api is empty)");
  }
  log.info(s.store.empty() ? "  messages kept in memory" : "  messages stored in " + s.store);
  auto plain = srv.plain_endpoints();
  if (!plain.empty()) {
    const auto ep = reachable_here(plain.front());
    // swaks speaks LMTP only when told to; an LMTP server answers its EHLO with 500.
    log.info("  try: swaks --server " + net::endpoint_text(ep) +
             (s.lmtp ? " --protocol LMTP" : "") + " --from alice@example.com --to bob@example.com");
  }
}

// A mistake found while starting: exit 2, naming where the value was given (a file's line and
// key, a variable or a flag).
int startup_mistake(const std::string& where, const std::string& what) {
  std::fprintf(stderr, "smtpfault serve: %s: %s\n", where.c_str(), what.c_str());
  return 2;
}

// What the settings give before anything starts: the server's configuration and where the API
// listens.
struct serve_setup {
  config::settings settings;
  net::server_config server;
  std::optional<tcp::endpoint> api_at;  // none: no HTTP API
};

// Empty, or what is wrong with the settings, naming the key and where it was given.
std::string configure(serve_setup& setup, const parsed_args& args, char** envp) {
  auto& s = setup.settings;
  {
    stop_signals_let_through reading(configuration_file_of(args).path);
    if (auto err = load_settings(s, args, envp)) return *err;
  }
  std::string error;
  setup.server = make_server_config(s, error);
  if (!error.empty()) return error;
  if (!s.api.host.empty()) {
    auto ep = to_endpoint(s.api, s.named("api"));
    if (!ep) return ep.error();
    setup.api_at = *ep;
  }
  if (setup.server.listen.empty() && setup.server.tls_listen.empty()) {
    // Nothing could ever reach it: a server that starts anyway hides the slip.
    return "nothing to listen on: listen and tls_listen are both empty (" + s.named("listen") +
           ", " + s.named("tls_listen") + ")";
  }
  return one_port_given_twice(setup.server, setup.api_at, s);
}

void warn_if_too_few_descriptors(std::size_t max_connections) {
  const rlim_t fds = raise_descriptor_limit();
  if (fds != 0 && fds != RLIM_INFINITY && fds < max_connections + 64) {
    std::fprintf(stderr,
                 "smtpfault serve: warning: %llu open files allowed, fewer than "
                 "max_connections (%zu) needs; raise the hard limit (ulimit -Hn)\n",
                 static_cast<unsigned long long>(fds), max_connections);
  }
}

// A port the user never asked for (the default SMTPS one, beside --listen 127.0.0.1:0): say
// that it is a default, and how to move or drop it.
std::string where_given(const net::listen_error& e, const config::settings& s) {
  std::string flag = "--" + e.key;
  std::replace(flag.begin(), flag.end(), '_', '-');
  const auto origin = s.origin_of(e.key);
  return origin.empty()
             ? e.key + " is a default: give " + flag + " HOST:PORT, or " + flag + " '' for none"
             : origin;
}

// Loads the scenario, makes the certificates and the store, and serves until SIGINT, SIGTERM
// or SIGHUP. Exit 0; 2 for a mistake found on the way; 1 when the server cannot start (a port
// taken).
// The scenario serve runs, or nullptr for accept-all; as the error, where it was given and what
// is wrong with it.
proto::expected<std::shared_ptr<script::scenario>, std::pair<std::string, std::string>>
serve_scenario(const config::settings& s, const script::scenario_options& so) {
  if (s.scenario.empty() || s.scenario == "accept-all") {
    return std::shared_ptr<script::scenario>();
  }
  auto loaded = script::scenario::load_named(s.scenario, so);
  if (loaded) return std::shared_ptr<script::scenario>(std::move(*loaded));
  // A scenario may refuse its params (greylist's params.window = "abc"): where they were given
  // is named too, since that is what to change.
  auto where = s.named("scenario");
  if (!s.scenario_params.empty()) where += ", given " + s.named("scenario_params");
  return proto::unexpected{std::pair{where, loaded.error()}};
}

int serve(serve_setup setup) {
  // A log reader that goes away (`smtpfault serve | head`) must not stop the server: writes to
  // its pipe then fail, and the log says so once, instead of SIGPIPE ending the process.
  std::signal(SIGPIPE, SIG_IGN);
  const auto& s = setup.settings;
  net::transcript_log log(s.log_format == "json"   ? net::log_format::json
                          : s.log_format == "none" ? net::log_format::none
                                                   : net::log_format::text);
  stop_signal_watcher signals(log);
  // A step of the set-up cut short by the signal (a scenario's load interrupted) is no mistake.
  auto mistake = [&](const std::string& where, const std::string& what) {
    return signals.received() ? 0 : startup_mistake(where, what);
  };
  try {
    const auto so = scenario_options(s);
    auto sc = serve_scenario(s, so);
    if (!sc) return mistake(sc.error().first, sc.error().second);
    auto tls = net::tls_contexts::make(
        {s.tls_cert, s.tls_key, s.hostname, s.tls_names, s.tls_min_version});
    if (!tls) return mistake(s.named(tls.error().key), tls.error().message);
    capture::message_store store(s.store, s.retain_messages, s.retain_sessions);
    store.set_max_bytes(s.retain_message_bytes);
    if (auto err = store.prepare()) return mistake(s.named("store"), *err);
    warn_if_too_few_descriptors(setup.server.max_connections);
    net::server srv(std::move(setup.server), **tls, store, log);
    srv.set_scenario(*sc);
    srv.bind();
    auto api = start_api(srv, store, s, setup.api_at, so);
    stop_signal_watcher::stopping stopping(signals, srv);
    // A signal during the set-up found no server to stop: stopped here, before it serves.
    if (signals.received()) {
      srv.stop();
    } else {
      print_banner(srv, s, log, sc->get(), so.seed, api.get());
    }
    srv.run();
    if (api) api->stop();
    log.info("stopped; " + std::to_string(store.stored_total()) + " message(s) captured");
  } catch (const net::listen_error& e) {
    std::fprintf(stderr, "smtpfault serve: %s (%s)\n", e.what(), where_given(e, s).c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "smtpfault serve: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace

int serve_command(const std::vector<std::string>& argv, char** envp) {
  parsed_args args;
  flag_set known{{"lmtp", "help", "version"}, {"config", "set"}};
  for (const auto& k : config::known_keys())
    if (flag_of(k.path) != "lmtp") known.valued.push_back(flag_of(k.path));
  if (auto err = parse_args(argv, known, args)) {
    std::fprintf(stderr, "smtpfault serve: %s (see smtpfault serve --help)\n", err->c_str());
    return 2;
  }
  for (const auto& f : args.flags) {
    if (f.name == "help") return print_serve_help(), 0;
    if (f.name == "version") return std::printf("smtpfault %s\n", version), 0;
  }
  if (!args.positional.empty()) {
    // Most likely a scenario without its flag: serving accept-all instead would pass for it.
    std::fprintf(stderr,
                 "smtpfault serve: unexpected argument '%s' (a scenario is given as --scenario "
                 "%s) (see smtpfault serve --help)\n",
                 args.positional[0].c_str(), args.positional[0].c_str());
    return 2;
  }
  serve_setup setup;
  if (auto error = configure(setup, args, envp); !error.empty()) {
    std::fprintf(stderr, "smtpfault serve: %s\n", error.c_str());
    return 2;
  }
  return serve(std::move(setup));
}

}  // namespace smtpfault::app
