#!/usr/bin/env bash
# Installs what the benchmarks need from Debian packages: Postfix's smtp-sink and smtp-source
# (the reference), procps/time tools, and any packages named as arguments (bench/instructions.sh
# adds valgrind). Installing postfix must not leave a Postfix daemon running: a policy-rc.d
# refuses every service start during the install, and Postfix is configured as "No configuration".
set -euo pipefail
need=()
for p in postfix procps "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod +x "$policy"
  created_policy=1
fi
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
[ "$created_policy" = 1 ] && $sudo rm -f "$policy"
# Belt and braces: nothing of Postfix may be left running.
if pgrep -x master >/dev/null 2>&1; then
  echo "warning: a Postfix master process is running; stop it with: postfix stop" >&2
fi
exit 0
