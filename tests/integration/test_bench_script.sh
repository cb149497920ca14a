#!/usr/bin/env bash
# test_bench_script.sh: scripts/bench.sh, the one command that measures
# PERFORMANCE.md's figures again (behaviour only, at --quick sizes, no timing
# assertions):
# - it runs each named workload N times against its own spawned server, keeps
#   every run's JSON, and its summary holds, for every figure, the median of
#   the N runs (checked here against the run files themselves);
# - idle's later runs reuse the devices the first run enrolled;
# - misuse is refused with exit 2 and a message: an unknown workload, --runs 0,
#   a --bin-dir without the binaries;
# - a run that fails (here: a server that exits at once) fails the script with
#   exit 1 and the bench's messages.
set -u
. "$(dirname "$0")/lib.sh"
SCRIPT="$(cd "$(dirname "$0")/../.." && pwd)/scripts/bench.sh"
[ -f "$SCRIPT" ] || fail "no $SCRIPT"
IT_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sammen-it-XXXXXX")
trap it_cleanup EXIT
OUT=$IT_DIR/out

timeout 600 bash "$SCRIPT" --quick --runs 3 --bin-dir "$BIN" --out "$OUT" care100 idle \
    >"$IT_DIR/stdout" 2>"$IT_DIR/stderr" ||
    { cat "$IT_DIR/stdout" "$IT_DIR/stderr" >&2; fail "bench.sh --quick failed"; }
for w in care100 idle; do
    for k in 1 2 3; do
        [ -s "$OUT/${w}_$k.json" ] || fail "no $OUT/${w}_$k.json"
    done
done
[ -s "$OUT/summary.json" ] || fail "no summary.json"
grep -q "^care100 (median of 3)" "$IT_DIR/stdout" || fail "no care100 table: $(cat "$IT_DIR/stdout")"
grep -q "^idle (median of 3)" "$IT_DIR/stdout" || fail "no idle table: $(cat "$IT_DIR/stdout")"
grep -q provisioning "$OUT/idle_1.err" || fail "idle's first run did not enroll its devices"
for k in 2 3; do
    grep -q provisioning "$OUT/idle_$k.err" && fail "idle run $k enrolled its devices again"
done

"$PY" - "$OUT" <<'EOF' || fail "summary does not match the runs: $(cat "$OUT/summary.json")"
import json, os, sys
out = sys.argv[1]
s = json.load(open(os.path.join(out, "summary.json")))
assert sorted(s) == ["care100", "idle"], sorted(s)
def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2
for w, keys in (("care100", ["deliveries_per_s", "latency_p99", "server_cpu_us_per_delivery",
                            "deliveries", "lost", "duplicated"]),
                ("idle", ["server_kib_per_session", "sessions_logged_in", "pings_sent"])):
    runs = [json.load(open(os.path.join(out, "%s_%d.json" % (w, k))))["figures"] for k in (1, 2, 3)]
    assert s[w]["runs"] == 3, s[w]
    for key in keys:
        want = median([r[key] for r in runs])
        got = s[w]["median"][key]
        assert abs(got - want) <= 1e-9 * max(1, abs(want)), (w, key, got, want)
        assert s[w]["all"][key] == [r[key] for r in runs], (w, key)
assert s["care100"]["median"]["lost"] == 0 and s["care100"]["median"]["duplicated"] == 0
assert s["care100"]["median"]["deliveries"] > 0
assert s["idle"]["median"]["sessions_logged_in"] == 40
assert s["care100"]["args"]["threads"] == 6 and s["care100"]["args"]["members"] == 3, s["care100"]["args"]
EOF

# misuse: refused before anything runs
st=0
bash "$SCRIPT" --quick --bin-dir "$BIN" --out "$IT_DIR/x" nosuch >/dev/null 2>"$IT_DIR/err" || st=$?
[ "$st" = 2 ] && grep -q "no workload 'nosuch'" "$IT_DIR/err" || fail "unknown workload: status $st, $(cat "$IT_DIR/err")"
st=0
bash "$SCRIPT" --quick --runs 0 --bin-dir "$BIN" care100 >/dev/null 2>"$IT_DIR/err" || st=$?
[ "$st" = 2 ] && grep -q "positive number" "$IT_DIR/err" || fail "--runs 0: status $st, $(cat "$IT_DIR/err")"
st=0
bash "$SCRIPT" --quick --bin-dir "$IT_DIR/nobin" care100 >/dev/null 2>"$IT_DIR/err" || st=$?
[ "$st" = 2 ] && grep -q "no sammen-bench" "$IT_DIR/err" || fail "missing binaries: status $st, $(cat "$IT_DIR/err")"
[ -e "$IT_DIR/x" ] && fail "a refused call created its output directory"

# a run that fails fails the script: a server that exits at once
mkdir -p "$IT_DIR/badbin"
ln -s "$BIN/sammen-bench" "$IT_DIR/badbin/sammen-bench"
printf '#!/bin/sh\necho "refusing to start" >&2\nexit 1\n' >"$IT_DIR/badbin/sammen-server"
chmod +x "$IT_DIR/badbin/sammen-server"
st=0
timeout 120 bash "$SCRIPT" --quick --runs 2 --bin-dir "$IT_DIR/badbin" --out "$IT_DIR/bad" fanout \
    >"$IT_DIR/stdout" 2>"$IT_DIR/err" || st=$?
[ "$st" = 1 ] && grep -q "fanout run 1 failed" "$IT_DIR/err" ||
    fail "failing run: status $st, $(cat "$IT_DIR/err")"
[ -e "$IT_DIR/bad/fanout_2.json" ] && fail "the script went on after a failed run"
echo "ok"
