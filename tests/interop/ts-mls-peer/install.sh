#!/bin/sh
# Installs the ts-mls interop peer into a build-tree folder (test time only).
#   install.sh <source dir of this script> <destination dir>
# Copies peer.mjs, package.json and package-lock.json (exact versions) and runs
# `npm ci` there unless node_modules already matches the lock file. Exits 77
# (CTest "skipped") only when node or npm is missing; any other failure
# (e.g. no registry access) is a real failure.
set -eu
src=$1
dest=$2
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "SKIP: node/npm not installed; the ts-mls interop test cannot run" >&2
  exit 77
fi
mkdir -p "$dest"
cp "$src/peer.mjs" "$src/package.json" "$src/package-lock.json" "$dest/"
stamp="$dest/node_modules/.sammen-lock"
if [ -f "$stamp" ] && cmp -s "$stamp" "$dest/package-lock.json"; then
  echo "ts-mls peer already installed in $dest"
  exit 0
fi
cd "$dest"
# --ignore-scripts: nothing from the registry runs at install time. A
# registry that drops a connection is retried (npm's own retries, then the
# whole install once more) before the failure counts.
install() {
  npm ci --no-audit --no-fund --ignore-scripts --loglevel=error \
    --fetch-retries=4 --fetch-retry-mintimeout=2000 --fetch-retry-maxtimeout=20000
}
if ! install; then
  echo "npm ci failed; trying once more in 10 s" >&2
  sleep 10
  install
fi
cp package-lock.json "$stamp"
node -e 'import("ts-mls").then(() => console.log("ts-mls " +
  JSON.parse(require("fs").readFileSync("node_modules/ts-mls/package.json")).version + " installed"))'
