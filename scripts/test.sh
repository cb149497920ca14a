#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test:
#   1. the normal build and the whole CTest suite (unit, MLS vectors, integration, corpus replay)
#   2. the whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer
#   3. the suite under ThreadSanitizer (without the bench, interop and
#      random-entitlement tests), then the integration tests with the server
#      under valgrind memcheck
#      (scripts/valgrind-server.sh: libwebsockets and libuv, which ASan does
#      not instrument)
#   4. every libFuzzer target for SAMMEN_FUZZ_SECONDS (default 20) each
# Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
JOBS=$(nproc)
FUZZ_SECONDS=${SAMMEN_FUZZ_SECONDS:-20}
# What a failure may depend on (the tests' servers write under $TMPDIR or /tmp)
echo "== machine: $JOBS cores, open files $(ulimit -n), file size $(ulimit -f);" \
  "free: checkout $(df -h --output=avail . | tail -1 | tr -d ' ')," \
  "tmp $(df -h --output=avail "${TMPDIR:-/tmp}" | tail -1 | tr -d ' ')"

echo "== build (RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$JOBS"
echo "== test"
(cd build && ctest --output-on-failure -j"$JOBS")

echo "== build (ASan+UBSan)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DSAMMEN_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$JOBS"
echo "== test (ASan+UBSan)"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
   UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j"$JOBS")

echo "== build (TSan)"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DSAMMEN_TSAN=ON >/dev/null
cmake --build build-tsan -j"$JOBS"
echo "== test (TSan)"
(cd build-tsan && TSAN_OPTIONS=halt_on_error=1:exitcode=66:second_deadlock_stack=1 \
   ctest --output-on-failure -j"$JOBS" -E 'bench|entitle_random|interop')

bash scripts/valgrind-server.sh build

echo "== fuzz (${FUZZ_SECONDS}s per target)"
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
  -DSAMMEN_FUZZ=ON -DSAMMEN_TESTS=OFF -DSAMMEN_FUZZ_SECONDS="$FUZZ_SECONDS" >/dev/null
cmake --build build-fuzz -j"$JOBS"
(cd build-fuzz && ctest --output-on-failure -j"$JOBS")
echo "== all tests passed"
