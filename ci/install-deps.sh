#!/usr/bin/env bash
# Installs what smtpfault needs to build and test, from Debian 12 packages only.
# Idempotent: packages already present are skipped, so a second run costs one dpkg query.
set -euo pipefail

packages=(
  g++ cmake make pkg-config
  libboost1.81-dev libboost-json1.81-dev libssl-dev liblua5.4-dev libtomlplusplus-dev libgtest-dev
  openssl ca-certificates
  # real SMTP clients driven by the integration tests
  swaks libnet-ssleay-perl libdigest-hmac-perl libauthen-sasl-perl curl python3 msmtp
  perl  # Net::SMTP (perl-modules), a client library as mailers use it
  # xmllint, to validate the JUnit report against fixtures/junit/junit.xsd
  libxml2-utils
)
if [ "${1:-}" = "--test" ]; then
  # python3-yaml reads docs/api.yaml; docker-compose validates docker-compose.yml
  packages+=(python3-aiosmtpd python3-yaml docker-compose)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ "${1:-}" = "--test" ]; then
  # Postfix's smtp-sink and smtp-source, for the benchmark scripts' own test; installed by the
  # benchmarks' script, which keeps any Postfix daemon from starting. Postfix would replace
  # another mail server (exim4 ...): on such a machine it is left out and that test skipped.
  other_mta=$(dpkg-query -W -f='${Package} ${Status} ${Provides}\n' 2>/dev/null |
    awk '/install ok installed/ && /mail-transport-agent/ && $1 != "postfix" {print $1}' | head -1)
  if [ -n "$other_mta" ]; then
    echo "Not installing postfix (the benchmarks' smtp-sink): it would replace $other_mta"
  else
    "$(dirname "$0")/../bench/install-deps.sh"
  fi
fi
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "Installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
