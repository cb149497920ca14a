# lib.sh: helpers for the shell integration tests (sourced, not a test).
# Starts the real sammen-server from $SAMMEN_BIN_DIR on 127.0.0.1:0 with a
# fresh data dir under a temp root; every wait is bounded.
#
#   it_init DOMAIN        temp root $IT_DIR, `init --json` -> $IT_ADMIN_CODE
#   it_start              start, wait for "listening on" -> $IT_URL, $IT_PID
#   it_stop [SIGNAL]      signal (default TERM) and wait; status in $IT_STATUS
#   it_cleanup            kill, remove $IT_DIR (installed as an EXIT trap: it runs
#                         on exit, `fail`, and SIGTERM/SIGINT of the script)
#   json FILE EXPR        print a value from a JSON file with python3:
#                         EXPR is Python on `d`, e.g. 'd["id"]'
#   fail MSG              print and exit 1
# A server dies with the script even when no trap can run (SIGKILL, e.g. a
# timeout's): it_start runs it under `setpriv --pdeathsig KILL` when
# util-linux has it, so a crashed test never leaves a server listening.
set -u
BIN=${SAMMEN_BIN_DIR:?SAMMEN_BIN_DIR must point at build/bin}
SERVER="$BIN/sammen-server"
SAMMEN="$BIN/sammen"
IT_PID=""
# run the server with a parent-death signal (setpriv execs it: $! is the server)
DIE_WITH_US=()
if setpriv --pdeathsig KILL true 2>/dev/null; then DIE_WITH_US=(setpriv --pdeathsig KILL); fi
# the system python starts several times faster than a version-manager shim
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=python3; fi

fail() {
    echo "FAIL: $*" >&2
    if [ -n "${IT_DIR:-}" ] && [ -f "$IT_DIR/server.log" ]; then
        echo "--- server log (tail)" >&2
        tail -n 30 "$IT_DIR/server.log" >&2
    fi
    exit 1
}

json() {
    "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); v=eval(sys.argv[2]); print(v if not isinstance(v,(dict,list,bool)) and v is not None else json.dumps(v))' "$1" "$2"
}

it_cleanup() {
    if [ -n "$IT_PID" ]; then
        kill -KILL "$IT_PID" 2>/dev/null || true
        wait "$IT_PID" 2>/dev/null || true
        IT_PID=""
    fi
    if [ -n "${IT_DIR:-}" ] && [ -z "${SAMMEN_KEEP_TEST_DIR:-}" ]; then
        rm -rf "$IT_DIR"
    fi
}

it_init() {
    IT_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sammen-it-XXXXXX")
    trap it_cleanup EXIT
    timeout 30 "$SERVER" --data "$IT_DIR/data" --domain "$1" init --json \
        >"$IT_DIR/init.json" 2>>"$IT_DIR/server.log" || fail "init failed"
    IT_ADMIN_CODE=$(json "$IT_DIR/init.json" 'd["code"]') || fail "no code in init output"
}

it_start() {
    local before=0 i port
    [ -f "$IT_DIR/server.log" ] && before=$(wc -c <"$IT_DIR/server.log")
    ${DIE_WITH_US[@]+"${DIE_WITH_US[@]}"} "$SERVER" --data "$IT_DIR/data" --listen 127.0.0.1:0 "$@" </dev/null \
        >>"$IT_DIR/server.log" 2>&1 &
    IT_PID=$!
    for i in $(seq 1 200); do
        port=$(tail -c +"$((before + 1))" "$IT_DIR/server.log" |
               sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' | tail -n 1)
        if [ -n "$port" ]; then
            IT_URL="ws://127.0.0.1:$port"
            return 0
        fi
        kill -0 "$IT_PID" 2>/dev/null || fail "server exited before listening"
        sleep 0.05
    done
    fail "server did not report listening within 10 s"
}

it_stop() {
    local sig=${1:-TERM} i
    kill -"$sig" "$IT_PID" 2>/dev/null || true
    for i in $(seq 1 200); do
        if ! kill -0 "$IT_PID" 2>/dev/null; then
            break
        fi
        sleep 0.05
    done
    if kill -0 "$IT_PID" 2>/dev/null; then
        kill -KILL "$IT_PID"
    fi
    IT_STATUS=0
    wait "$IT_PID" || IT_STATUS=$?
    IT_PID=""
}
