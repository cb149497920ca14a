#!/usr/bin/env bash
# Installs what is missing, builds, initializes ./var on first run (printing
# the administrator's one-time enrollment code), and starts the server on
# 127.0.0.1:8480 (SAMMEN_LISTEN=HOST:PORT for another) with its embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
DOMAIN=${SAMMEN_DOMAIN:-localhost}
LISTEN=${SAMMEN_LISTEN:-127.0.0.1:8480}
if [ ! -e var/sammen.db ]; then
  # --listen here only makes the printed enroll command name the right address
  ./build/bin/sammen-server --data ./var --domain "$DOMAIN" --listen "$LISTEN" init
fi
exec ./build/bin/sammen-server --data ./var --listen "$LISTEN"
