// `smtpfault ca`: the bundled test CA's certificate, for a client to trust. The binary (and the
// container image) carries it compiled in; without this a user with no checkout of the
// repository could not verify the server's certificate.
#include <cstdio>
#include <string>

#include "app/commands.hpp"
#include "app/version.hpp"
#include "net/tls_context.hpp"

namespace smtpfault::app {

int ca_command(const std::vector<std::string>& args) {
  if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
    std::printf(
        "usage: smtpfault ca > test-ca.pem\n"
        "\n"
        "Prints the bundled test CA's certificate (PEM), the one that signs the certificate\n"
        "serve and test make at start-up when none is configured (tls.cert), and the\n"
        "expired and wrong_host certificate faults. Trust it in the client under test only,\n"
        "in that client's own settings: its key is public, so a system trust store that held\n"
        "it would trust anyone. The same file is fixtures/certs/test-ca.pem in the repository;\n"
        "under 'smtpfault test' the command finds it in $SMTP_CA_FILE.\n");
    return 0;
  }
  if (!args.empty() && args[0] == "--version") return std::printf("smtpfault %s\n", version), 0;
  if (!args.empty()) {
    const bool option = args[0].starts_with("-");
    std::fprintf(stderr, "smtpfault ca: %s '%s': it takes none (see smtpfault ca --help)\n",
                 option ? "unknown option" : "unexpected argument", args[0].c_str());
    return 2;
  }
  const auto pem = net::test_ca_pem();
  return std::fwrite(pem.data(), 1, pem.size(), stdout) == pem.size() && std::fflush(stdout) == 0
             ? 0
             : 1;
}

}  // namespace smtpfault::app
