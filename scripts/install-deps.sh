#!/usr/bin/env bash
# Installs the Debian packages Halo builds against, if any is missing. Idempotent; needs root (or sudo).
# Kept in one place so the demo, the test suite and CI agree on what the project needs.
set -euo pipefail

packages=(pkg-config libopenblas-dev libmetis-dev libopenmpi-dev openmpi-bin zlib1g-dev)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v swift >/dev/null 2>&1; then
  if [ -x /opt/swift/usr/bin/swift ]; then
    echo "note: add /opt/swift/usr/bin to PATH" >&2
  else
    echo "error: the Swift toolchain (6.0 or newer) is not on PATH; install it from swift.org first" >&2
    exit 1
  fi
fi
