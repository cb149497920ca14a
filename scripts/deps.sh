#!/usr/bin/env bash
# Installs the Debian packages Sammen builds, tests and runs with (idempotent).
# Needs root (or sudo) on Debian bookworm.
set -euo pipefail
PKGS=(build-essential cmake pkg-config clang libclang-rt-14-dev
      libwebsockets-dev libuv1-dev libsqlite3-dev libsodium-dev libmsgpack-dev
      libjansson-dev libcmocka-dev sqlite3 valgrind openssl)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm run the ts-mls interoperability peer at test time. The
# machine image may ship its own Node.js (with npm bundled): use it if present.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "Installing: ${missing[*]}"
  $SUDO apt-get update -qq -o Acquire::Retries=3
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -o Acquire::Retries=3 "${missing[@]}"
fi
