#!/usr/bin/env bash
# Runs the integration tests against a sammen-server that runs under
# valgrind memcheck, and fails if memcheck reports anything.
#
#   bash scripts/valgrind-server.sh [BUILD_DIR]     (default: build)
#
# Why, beside the ASan+UBSan suite: libwebsockets and libuv are not
# instrumented there, so a use-after-free inside them (e.g. a uv handle in
# memory lws already freed) goes unseen by ASan; memcheck sees every access.
# Leaks are LeakSanitizer's job (the ASan suite) and are not checked here.
# The bench tests (minutes under memcheck), test_entitle_random (its own
# time budget), test_keys_tool and test_floor (no server) are left out.
# Exit: 0 clean, 1 a test failed or memcheck reported an error, 2 misuse.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
BIN=$(cd "$BUILD/bin" 2>/dev/null && pwd) || { echo "usage: $0 [BUILD_DIR] (no $BUILD/bin)" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "valgrind is not installed (scripts/deps.sh)" >&2; exit 2; }
[ -x "$BIN/sammen-server" ] || { echo "no $BIN/sammen-server: build first" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sammen-vg-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/bin" "$WORK/logs" "$WORK/out"
# The tests find the server as $SAMMEN_BIN_DIR/sammen-server: a script
# there runs the real one under memcheck (a new file, not a link, so that
# nothing is written through to the build tree).
cat >"$WORK/bin/sammen-server" <<EOF
#!/bin/sh
exec valgrind -q --vgdb=no --error-exitcode=99 --log-file="$WORK/logs/vg.%p.log" "$BIN/sammen-server" "\$@"
EOF
chmod +x "$WORK/bin/sammen-server"
for b in sammen sammen-keys sammen-bench; do
  if [ -e "$BIN/$b" ]; then ln -s "$BIN/$b" "$WORK/bin/$b"; fi
done

tests=()
for src in tests/integration/test_*.c tests/integration/test_*.sh; do
  t=$(basename "$src")
  case $t in test_entitle_random.c | test_bench_* | test_keys_tool.sh | test_floor.sh) continue ;; esac
  tests+=("$t")
done

export SAMMEN_BIN_DIR="$WORK/bin" WORK BIN
run_one() {
  local t=$1 s rc=0
  s=$(date +%s)
  case $t in
    *.c) timeout 900 "$BIN/${t%.c}" >"$WORK/out/$t.txt" 2>&1 || rc=$? ;;
    *.sh) timeout 900 bash "tests/integration/$t" >"$WORK/out/$t.txt" 2>&1 || rc=$? ;;
  esac
  echo "$t: exit $rc, $(($(date +%s) - s)) s"
  [ "$rc" -eq 0 ] || { echo "--- $t output (tail)"; tail -n 40 "$WORK/out/$t.txt"; }
  return "$rc"
}
export -f run_one
echo "== server under valgrind memcheck: ${#tests[@]} integration tests"
failed=0
printf '%s\n' "${tests[@]}" | xargs -P "$(nproc)" -I{} bash -c 'run_one {}' || failed=1

errors=$(find "$WORK/logs" -name 'vg.*.log' -size +0 | sort)
if [ -n "$errors" ]; then
  for f in $errors; do
    echo "--- memcheck: $f"
    head -n 60 "$f"
  done
  failed=1
fi
if [ "$failed" -ne 0 ]; then
  echo "== valgrind: FAILED"
  exit 1
fi
echo "== valgrind: $(find "$WORK/logs" -name 'vg.*.log' | wc -l) server runs, no memcheck errors"
