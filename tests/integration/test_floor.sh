#!/usr/bin/env bash
# test_floor.sh: smoke run of sammen-floor, the loopback floor of the care
# workload (behaviour only, no timing assertions): every delivery arrives
# once, in order and where it belongs, the table and the --json document
# have their shape, every ack sent is received, the send pool and partial
# sends (tiny socket buffers, big frames) deliver the same, and misuse is a
# clear error with exit status 2.
set -u
. "$(dirname "$0")/lib.sh"
FLOOR="$BIN/sammen-floor"
[ -x "$FLOOR" ] || fail "no $FLOOR"
D=$(mktemp -d "${TMPDIR:-/tmp}/sammen-it-XXXXXX")
trap 'rm -rf "$D"' EXIT

# --- the table: 20 threads of 3, 200 msgs/s, every delivery accounted for
timeout 60 "$FLOOR" --threads 20 --members 3 --rate 200 --duration 1 --warmup 1 \
    >"$D/table" 2>"$D/err" || fail "floor run failed: $(cat "$D/err" "$D/table")"
grep -q '^sammen-floor: 20 threads x 3 members, 200 msgs/s offered' "$D/table" ||
    fail "no heading: $(cat "$D/table")"
grep -Eq '^  deliveries +([0-9]+) of \1 \(lost 0, duplicated 0, out of order 0, misrouted 0\)$' \
    "$D/table" ||
    fail "deliveries line: $(cat "$D/table")"
for k in 'latency, send to receipt' 'server CPU' 'server loop' 'client CPU' 'machine (/proc/stat)'; do
    grep -q "^  $k" "$D/table" || fail "no '$k' in the table"
done

# --- --json: an ack for every receipt and flushes at most every 30 ms; then the send pool busy (100 threads
# of 10, three send threads) with 4,000-byte frames into 4,608-byte socket
# buffers, where most sends take part of a connection's frames
check_json() { # FILE THREADS MEMBERS RATE FRAME ACK SEND_THREADS FLUSH_EVERY
    "$PY" - "$@" <<'PYEOF' || fail "bad JSON document: $(cat "$1")"
import json, sys
a = sys.argv
d = json.load(open(a[1]))
assert d["tool"] == "sammen-floor" and d["ok"] is True, d
p, f = d["params"], d["figures"]
want = {"threads": int(a[2]), "members": int(a[3]), "rate": int(a[4]), "duration_s": 1,
        "warmup_s": 1, "frame_bytes": int(a[5]), "ack_every_ms": int(a[6]),
        "send_threads": int(a[7]), "flush_every_ms": int(a[8])}
assert p == want, (p, want)
assert f["sent"] > 0 and f["expected"] == (int(a[3]) - 1) * f["sent"], f
assert f["received"] == f["expected"], f
assert f["lost"] == 0 and f["duplicated"] == 0 and f["out_of_order"] == 0, f
assert f["misrouted"] == 0, f
l = f["latency_ms"]
assert l["count"] > 0 and l["over_10s"] == 0, l
assert 0 < l["p50"] <= l["p99"] <= l["p99_9"], l
assert f["deliveries_per_s"] > 0 and f["msgs_per_s"] > 0, f
assert f["server_sends_per_s"] > 0 and f["server_syncs_per_s"] > 0, f
assert f["server_sync_ms_mean"] > 0, f
assert f["acks_per_s"] > 0 and f["acks_sent"] > 0, f
assert f["acks_received"] == f["acks_sent"], f
for k in ("user", "system", "softirq", "idle", "iowait"):
    assert k in f["machine_pct"], k
PYEOF
}
timeout 60 "$FLOOR" --threads 30 --members 4 --rate 300 --duration 1 --warmup 1 \
    --ack-every 0 --frame 64 --flush-every 30 --json >"$D/a.json" 2>"$D/err" ||
    fail "floor --json failed: $(cat "$D/err")"
check_json "$D/a.json" 30 4 300 64 0 1 30
timeout 90 "$FLOOR" --threads 100 --members 10 --rate 2000 --duration 1 --warmup 1 \
    --send-threads 3 --frame 4000 --sockbuf 4608 --json >"$D/p.json" 2>"$D/err" ||
    fail "floor with the send pool and small buffers failed: $(cat "$D/err")"
check_json "$D/p.json" 100 10 2000 4000 20 3 0

# --- no acks: none are sent, nothing is lost
timeout 60 "$FLOOR" --threads 10 --members 2 --rate 100 --duration 0.5 --warmup 0.3 \
    --ack-every -1 --json >"$D/b.json" 2>"$D/err" || fail "floor without acks failed"
[ "$(json "$D/b.json" 'd["figures"]["acks_per_s"]')" = 0.0 ] || fail "acks without --ack-every"
[ "$(json "$D/b.json" 'd["figures"]["lost"]')" = 0 ] || fail "lost without acks"

# --- misuse: a clear error, status 2, nothing run
expect_usage() { # WHAT PATTERN ARGS...
    local what=$1 pat=$2 rc
    shift 2
    timeout 10 "$FLOOR" "$@" >"$D/out" 2>"$D/err"
    rc=$?
    [ "$rc" = 2 ] || fail "$what: status $rc, want 2"
    grep -q -- "$pat" "$D/err" || fail "$what: no '$pat' in: $(cat "$D/err")"
    [ ! -s "$D/out" ] || fail "$what: printed a result"
}
expect_usage "one member" "--members 1: out of range" --members 1
expect_usage "bad rate" "--rate fast: out of range or not a number" --rate fast
expect_usage "frame too small" "--frame 8: out of range" --frame 8
expect_usage "too many connections" "at most 25000 from one source address" \
    --threads 5000 --members 6
expect_usage "fractional threads" "--threads 1.5: out of range" --threads 1.5
# (a subshell, for its own limit: its failure must fail the test)
(ulimit -n 256 && expect_usage "open-file limit" "need more open files" --threads 100) ||
    fail "open-file limit"
expect_usage "stray argument" "unexpected argument 'now'" now
expect_usage "unknown option" "usage: sammen-floor" --fast
echo "ok"
