#!/usr/bin/env bash
# test_bench_idle.sh: smoke run of `sammen-bench idle` (behaviour only, no
# timing assertions): a spawned server, a tiny N over two worker processes
# and three source addresses; the table and the --json document have the
# expected shape, every session logs in, keep-alive pings are answered, a
# second run reuses the provisioned profile, and the bench also drives a
# server it did not start (--url, --admin-code, --server-pid).
set -u
. "$(dirname "$0")/lib.sh"
BENCH="$BIN/sammen-bench"
[ -x "$BENCH" ] || fail "no $BENCH"

it_init bench.test
P=$IT_DIR/prof
mkdir -p "$P"
OUT=$IT_DIR/bench.json

# --- spawned server, --json
timeout 120 "$BENCH" idle --spawn --bin-dir "$BIN" --profile "$P/spawn" --sessions 12 \
    --procs 2 --sources 3 --window 1 --keepalive 0.5 --settle 0.2 --json \
    >"$OUT" 2>"$IT_DIR/bench.err" || { cat "$IT_DIR/bench.err" >&2; fail "bench idle failed"; }
"$PY" - "$OUT" <<'EOF' || fail "bad JSON document: $(cat "$OUT")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["bench"] == "sammen-bench" and d["workload"] == "idle" and d["ok"] is True, d
p, s, f = d["params"], d["server"], d["figures"]
assert p["sessions"] == 12 and p["procs"] == 2 and p["sources"] == 3, p
assert s["spawned"] is True and "FULL" in s["durability"] and s["pid"] > 0, s
assert f["sessions_logged_in"] == 12 and f["sessions_failed"] == 0, f
assert f["sessions_lost"] == 0, f
assert f["server_rss_after"] > 0 and f["server_rss_before"] > 0, f
assert f["pings_sent"] > 0 and f["pings_answered"] == f["pings_sent"], f
for k in ("server_kib_per_session", "server_cpu_window", "ping_rtt_p99",
          "projected_rss_100k_sessions"):
    assert k in f and k in d["units"], k
EOF
[ "$(stat -c %a "$P/spawn/bench.json")" = 600 ] || fail "bench.json mode"
n=$("$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["devices"]))' \
    "$P/spawn/bench.json")
[ "$n" = 12 ] || fail "profile holds $n devices, want 12"

# --- second run: the profile is reused (no provisioning), table output
timeout 120 "$BENCH" idle --spawn --bin-dir "$BIN" --profile "$P/spawn" --sessions 12 \
    --procs 1 --window 0.5 --keepalive 0 --settle 0 \
    >"$IT_DIR/table.txt" 2>"$IT_DIR/bench2.err" || fail "second run failed"
grep -q provisioning "$IT_DIR/bench2.err" && fail "second run provisioned again"
grep -q '^figures' "$IT_DIR/table.txt" || fail "no table: $(cat "$IT_DIR/table.txt")"
grep -Eq '^  sessions_logged_in +12$' "$IT_DIR/table.txt" || fail "table: $(cat "$IT_DIR/table.txt")"

# --- a server the bench did not start
it_start --login-per-minute 1000
timeout 120 "$BENCH" idle --url "$IT_URL" --admin-code "$IT_ADMIN_CODE" --server-pid "$IT_PID" \
    --profile "$P/url" --sessions 5 --window 0.5 --keepalive 0.2 --settle 0 --json \
    >"$OUT" 2>"$IT_DIR/bench3.err" || { cat "$IT_DIR/bench3.err" >&2; fail "--url run failed"; }
[ "$(json "$OUT" 'd["figures"]["sessions_logged_in"]')" = 5 ] || fail "--url: $(cat "$OUT")"
[ "$(json "$OUT" 'd["server"]["spawned"]')" = false ] || fail "--url: spawned"
# without a code, a new profile cannot provision against it
st=0
timeout 60 "$BENCH" idle --url "$IT_URL" --profile "$P/nocode" --sessions 2 --window 0 \
    >/dev/null 2>&1 || st=$?
[ "$st" = 1 ] || fail "no admin code: exit $st, want 1"
# usage errors exit 2
st=0
"$BENCH" idle >/dev/null 2>&1 || st=$?
[ "$st" = 2 ] || fail "no server: exit $st, want 2"
st=0
"$BENCH" nosuch --spawn >/dev/null 2>&1 || st=$?
[ "$st" = 2 ] || fail "unknown workload: exit $st, want 2"
it_stop
echo "test_bench_idle: ok"
