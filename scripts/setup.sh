#!/usr/bin/env bash
# Installs everything Tribler.ts needs on a fresh machine: npm dependencies (when package-lock.json differs from
# the one last installed) and, with --test, the Debian packages the test tiers use. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# Reinstall when the lockfile's content differs from the one last installed (mtimes lie after a checkout).
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f node_modules/.installed-lock-sha256 ] || [ "$(cat node_modules/.installed-lock-sha256)" != "$lock_sum" ]; then
  echo "== installing npm dependencies"
  npm ci --no-audit --no-fund
  echo "$lock_sum" > node_modules/.installed-lock-sha256
fi

# Rebuild the native addons (binding.gyp, native/) when their sources differ from the ones last built: npm ci
# builds them, but a checkout that changes only native code keeps the same lockfile.
native_sum=$(cat binding.gyp $(find native -type f | LC_ALL=C sort) | sha256sum | cut -d' ' -f1)
if [ ! -f build/.native-sha256 ] || [ "$(cat build/.native-sha256)" != "$native_sum" ]; then
  echo "== building the native addons"
  if npm run --silent build:native; then
    echo "$native_sum" > build/.native-sha256
  else
    echo "the native addons did not build (they need python3, make, a C compiler and Node's headers);" \
      "Tribler.ts runs without them, on node:dgram and libsodium alone" >&2
  fi
fi

if [ "${1:-}" = "--test" ]; then
  # Debian packages used by the test tiers (scripts/test-packages.txt); each is installed only when missing.
  packages=()
  for pkg in $(grep -v -E '^\s*(#|$)' scripts/test-packages.txt); do
    dpkg -s "$pkg" >/dev/null 2>&1 || packages+=("$pkg")
  done
  if [ ${#packages[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
      echo "missing Debian packages: ${packages[*]} (install them, or run as root)" >&2
      exit 1
    fi
    sudo_cmd=$([ "$(id -u)" -eq 0 ] && echo "" || echo "sudo")
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${packages[@]}"
  fi
fi
