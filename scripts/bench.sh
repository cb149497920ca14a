#!/usr/bin/env bash
# Runs sammen-bench's documented workloads (PERFORMANCE.md "Commands") several
# times each and prints the median of every figure, so that the figures in
# PERFORMANCE.md can be measured again with one command:
#
#   bash scripts/bench.sh                      # every workload, 3 runs each
#   bash scripts/bench.sh --runs 5 care1k      # one workload, 5 runs
#   bash scripts/bench.sh --quick              # tiny sizes: checks the script works
#
# Options:
#   --runs N       runs of each workload (default 3); the median of N figures
#                  is the middle one, or the mean of the middle two
#   --out DIR      where each run's JSON (NAME_K.json), its messages
#                  (NAME_K.err), the bench profiles and summary.json go
#                  (default: a new directory under /tmp)
#   --bin-dir DIR  sammen-bench and sammen-server from DIR instead of building
#                  build-rel (clang RelWithDebInfo, as the figures were taken)
#   --quick        every workload at a tiny size (seconds each)
# Workloads (all when none is named): idle care100_2k care100 care1k
# care1k_30k care1500 catchup fanout.
#
# Each run starts its own server (--spawn) on a free loopback port with a
# fresh profile, except idle's later runs, which reuse the devices its first
# run enrolled. Nothing else should run on the machine meanwhile: the bench
# and the server share its cores. Exits non-zero if a run fails or reports a
# lost or duplicated message.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=3 OUT="" BIN="" QUICK=0
SEL=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --bin-dir) BIN=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    -*) echo "bench.sh: unknown option $1" >&2; exit 2 ;;
    *) SEL+=("$1"); shift ;;
  esac
done
case "$RUNS" in ''|*[!0-9]*|0) echo "bench.sh: --runs wants a positive number" >&2; exit 2 ;; esac

declare -A ARGS
ORDER=()
# wl NAME "arguments at the documented size" "arguments at --quick size"
wl() {
  ORDER+=("$1")
  if [ "$QUICK" = 1 ]; then ARGS[$1]=$3; else ARGS[$1]=$2; fi
}
wl idle "idle --sessions 19000 --window 10 --keepalive 30" \
        "idle --sessions 40 --window 2 --keepalive 1"
wl care100_2k "care --threads 100 --members 10 --rate 2000 --duration 10" \
              "care --threads 4 --members 3 --rate 50 --duration 2 --drain 10"
wl care100 "care --threads 100 --members 10 --rate 20000 --duration 10" \
           "care --threads 6 --members 3 --rate 100 --duration 2 --drain 10"
wl care1k "care --threads 1000 --members 10 --rate 20000 --duration 10" \
          "care --threads 8 --members 3 --rate 200 --duration 2 --drain 10"
wl care1k_30k "care --threads 1000 --members 10 --rate 30000 --duration 20" \
              "care --threads 8 --members 3 --rate 300 --duration 2 --drain 10"
wl care1500 "care --threads 1500 --members 10 --rate 20000 --duration 10" \
            "care --threads 12 --members 3 --rate 200 --duration 2 --drain 10"
wl catchup "catchup --threads 100 --members 11 --backlog 1000 --drain 60" \
           "catchup --threads 4 --members 3 --backlog 20 --drain 60"
wl fanout "fanout --members 300 --rate 20 --duration 10" \
          "fanout --members 12 --rate 5 --duration 2 --drain 10"
[ ${#SEL[@]} -gt 0 ] || SEL=("${ORDER[@]}")
for w in "${SEL[@]}"; do
  [ -n "${ARGS[$w]:-}" ] || { echo "bench.sh: no workload '$w' (${ORDER[*]})" >&2; exit 2; }
done

if [ -z "$BIN" ]; then
  CC_ARG=()
  command -v clang >/dev/null 2>&1 && CC_ARG=(-DCMAKE_C_COMPILER=clang)
  cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=RelWithDebInfo "${CC_ARG[@]}" >/dev/null
  cmake --build build-rel -j"$(nproc)" >/dev/null
  BIN=$PWD/build-rel/bin
fi
BENCH=$BIN/sammen-bench
[ -x "$BENCH" ] && [ -x "$BIN/sammen-server" ] || { echo "bench.sh: no sammen-bench/sammen-server in $BIN" >&2; exit 2; }
[ -n "$OUT" ] || OUT=$(mktemp -d /tmp/sammen-bench-XXXXXX)
mkdir -p "$OUT"
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=python3; fi

echo "bench.sh: ${SEL[*]}, $RUNS run(s) each, results in $OUT"
for w in "${SEL[@]}"; do
  for k in $(seq 1 "$RUNS"); do
    fresh=--fresh
    [ "$w" = idle ] && [ "$k" -gt 1 ] && fresh=""
    # shellcheck disable=SC2086  # ARGS holds words
    if ! "$BENCH" ${ARGS[$w]} --spawn $fresh --bin-dir "$BIN" --profile "$OUT/prof_$w" \
         --json >"$OUT/${w}_$k.json" 2>"$OUT/${w}_$k.err"; then
      echo "bench.sh: $w run $k failed:" >&2
      tail -20 "$OUT/${w}_$k.err" >&2
      exit 1
    fi
    echo "  $w run $k done (load $(cut -d' ' -f1 /proc/loadavg))"
  done
done

"$PY" - "$OUT" "$RUNS" "${SEL[@]}" <<'EOF'
import json, os, statistics, sys
out, runs, sel = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
# the figures shown in the table, in this order, where a workload has them
shown = ["accepted_per_s", "deliveries_per_s", "deliveries_per_s_steady",
         "server_cpu_us_per_delivery", "server_cpu_share", "latency_p50", "latency_p99",
         "drain_time", "server_kib_per_session", "server_cpu_us_per_ping",
         "projected_rss_100k_sessions", "lost", "duplicated"]
summary, bad = {}, []
for w in sel:
    docs = [json.load(open(os.path.join(out, "%s_%d.json" % (w, k)))) for k in range(1, runs + 1)]
    figs = {}
    for d in docs:
        if d.get("ok") is not True:
            bad.append("%s: a run reported ok=false" % w)
        f = d["figures"]
        if f.get("lost", 0) or f.get("duplicated", 0):
            bad.append("%s: lost %s, duplicated %s" % (w, f.get("lost"), f.get("duplicated")))
        for key, v in f.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                figs.setdefault(key, []).append(v)
    med = {key: statistics.median(v) for key, v in figs.items() if len(v) == runs}
    summary[w] = {"args": docs[0]["params"], "runs": runs, "median": med,
                  "all": {key: v for key, v in figs.items() if len(v) == runs},
                  "units": docs[0].get("units", {})}
    print("\n%s (median of %d)" % (w, runs))
    for key in shown:
        if key in med:
            u = summary[w]["units"].get(key, "")
            vals = ", ".join("%g" % round(x, 2) for x in summary[w]["all"][key])
            print("  %-30s %14s %-6s (%s)" % (key, "%g" % round(med[key], 2), u, vals))
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=1)
print("\nsummary: %s" % os.path.join(out, "summary.json"))
for b in bad:
    print("bench.sh: " + b, file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
