#!/usr/bin/env bash
# Installs the Debian packages vox-caf builds with, if any is missing (needs root or sudo).
#   deps.sh        what the build and the test suite need
#   deps.sh fuzz   also clang and libFuzzer (scripts/fuzz.sh)
set -euo pipefail
packages=(g++ cmake make pkg-config libcaf-dev libzstd-dev liburing-dev libssl-dev openssl catch2)
[[ "${1:-}" == fuzz ]] && packages+=(clang-14 libfuzzer-14-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "vox-caf: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
