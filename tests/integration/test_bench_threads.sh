#!/usr/bin/env bash
# test_bench_threads.sh: smoke runs of `sammen-bench care`, `catchup` and
# `fanout` against a spawned server (behaviour only, no timing assertions):
# real MLS groups are set up through the server (kp.upload, thread.create,
# consent.grant, the server's external Adds committed with a Welcome), the
# messages sent are all accepted and delivered to every other member exactly
# once (lost = duplicated = 0), the JSON document has the expected shape,
# and a second run on the same profile reuses the provisioned devices.
set -u
. "$(dirname "$0")/lib.sh"
BENCH="$BIN/sammen-bench"
[ -x "$BENCH" ] || fail "no $BENCH"
IT_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sammen-it-XXXXXX")
trap it_cleanup EXIT
P=$IT_DIR/prof
OUT=$IT_DIR/bench.json

# check WORKLOAD: the common shape of a thread workload's document
check() {
    "$PY" - "$OUT" "$1" <<'EOF' || fail "$1: bad document: $(cat "$OUT")"
import json, sys
d = json.load(open(sys.argv[1]))
w = sys.argv[2]
assert d["bench"] == "sammen-bench" and d["workload"] == w and d["ok"] is True, d
p, s, f = d["params"], d["server"], d["figures"]
assert s["spawned"] is True and "FULL" in s["durability"], s
assert f["errors"] == 0 and f["lost"] == 0 and f["duplicated"] == 0, f
assert f["messages_sent"] > 0 and f["messages_accepted"] == f["messages_sent"], f
assert f["messages_refused"] == 0 and f["connections_lost"] == 0, f
assert f["deliveries"] == f["deliveries_expected"] > 0, f
assert f["deliveries"] == f["messages_accepted"] * (p["members"] - 1), f
assert f["server_cpu"] >= 0 and f["server_rss_end"] > 0, f
# the bench's own CPU over the window: its workers did work, so it is > 0
for k in ("bench_cpu", "bench_cpu_share", "bench_cpu_us_per_delivery"):
    assert k in f and k in d["units"], k
assert f["bench_cpu"] > 0 and f["bench_cpu_us_per_delivery"] > 0, f
# members acknowledge what they received (as notifications: an error would
# have ended a connection, and connections_lost is 0)
assert f["acks_sent"] > 0, f
assert abs(f["bench_cpu_us_per_delivery"] - f["bench_cpu"] * 1e6 / f["deliveries"]) < 1e-6 * f["bench_cpu_us_per_delivery"] + 1e-9, f
if w == "catchup":
    assert f["drain_time"] > 0 and p["backlog_per_device"] == 20, (p, f)
    assert f["deliveries"] == p["threads"] * (p["members"] - 1) * 20, f
else:
    for k in ("latency_p50", "latency_p99", "latency_p999", "deliveries_per_s",
              "deliveries_per_s_steady", "accepted_per_s", "deliveries_per_server_cpu_s"):
        assert k in f and k in d["units"], k
    # deliveries in the second half of the sending window: some, and no
    # more than the members could get at the offered rate (with slack for
    # a batch delayed from the first half)
    assert 0 < f["deliveries_per_s_steady"] <= 2 * p["rate"] * (p["members"] - 1), (p, f)
    assert 0 < f["latency_p50"] <= f["latency_p99"] <= f["latency_p999"], f
EOF
}

run() { # run WORKLOAD ARGS...
    local w=$1
    shift
    local t0=$SECONDS st=0
    timeout 300 "$BENCH" "$w" --spawn --bin-dir "$BIN" --profile "$P" --json "$@" \
        >"$OUT" 2>"$IT_DIR/$w.err" || st=$?
    if [ "$st" != 0 ]; then
        # everything a failure on a machine we cannot log in to needs: the
        # bench's messages, its figures and the server's log
        echo "bench $w $* exited $st after $((SECONDS - t0)) s" >&2
        cat "$IT_DIR/$w.err" >&2
        echo "--- bench document" >&2
        cat "$OUT" >&2
        echo "--- bench server log (tail)" >&2
        tail -n 40 "$P/server.log" >&2 2>/dev/null
        fail "bench $w failed"
    fi
    check "$w"
}

run care --threads 3 --members 4 --rate 60 --duration 1 --drain 5 --procs 2 --sources 3
[ "$(json "$OUT" 'd["params"]["procs"]')" = 2 ] || fail "care: procs"
grep -q 'provisioning' "$IT_DIR/care.err" || fail "care: first run did not provision"
# the same devices again (KeyPackage stock and profile reused)
run care --threads 3 --members 4 --rate 30 --duration 1 --drain 5
grep -q 'provisioning' "$IT_DIR/care.err" && fail "care: second run provisioned again"
run catchup --threads 2 --members 3 --backlog 20 --drain 10
run fanout --members 12 --rate 10 --duration 1 --drain 5
[ "$(json "$OUT" 'd["params"]["threads"]')" = 1 ] || fail "fanout: threads"
# usage: a thread needs at least two members
st=0
"$BENCH" care --spawn --members 1 >/dev/null 2>&1 || st=$?
[ "$st" = 2 ] || fail "--members 1: exit $st, want 2"
echo "test_bench_threads: ok"
