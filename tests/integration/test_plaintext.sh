#!/usr/bin/env bash
# test_plaintext.sh: end-to-end encryption as a user can check it. A short run of the story
# (a citizen, a home-care nurse, a relative; messages both ways, an agreement, a revocation)
# then a search of the server's database files (sammen.db, -wal, -shm, while it runs and after
# it stops) and its log for every plaintext sent, and of each device's state.db: none may hold
# one. Control: the same search finds what the server is meant to see (the thread title, which
# is metadata) in sammen.db and the thread id in state.db, so a search that finds nothing is
# not a search that cannot find anything.
set -u
. "$(dirname "$0")/lib.sh"

it_init plain.test
it_start --login-per-minute 100000 --test-clock
P=$IT_DIR/profiles
mkdir -p "$P"
OUT=$IT_DIR/out.json
ERR=$IT_DIR/err.txt
D=plain.test

as() {
    local who=$1 want=$2 st=0
    shift 2
    timeout 60 "$SAMMEN" --profile "$P/$who" --json "$@" >"$OUT" 2>"$ERR" || st=$?
    if [ "$st" != "$want" ]; then
        echo "stdout: $(cat "$OUT")" >&2
        echo "stderr: $(cat "$ERR")" >&2
        fail "[$who] sammen $* exited $st, want $want"
    fi
}
jv() { json "$OUT" "$1" || fail "cannot read $1 from $(cat "$OUT")"; }
enroll() {
    as "$1" 0 --server "$IT_URL" enroll "$2"
    [ "$(jv 'd["id"]')" = "$1@$D" ] || fail "enroll $1: $(cat "$OUT")"
}
invite() {
    local who=$1 role=$2
    shift 2
    as admin 0 admin invite --role "$role" --name "$who" "$@"
    enroll "$who" "$(jv 'd["code"]')"
}

# distinctive texts: plain words, Danish letters, a long one (several padding blocks)
TEXTS=(
    "Mor har ondt i hoften igen, kan I kigge forbi i morgen?"
    "Medicinlisten: Pamol 1 g x 3, Furix 40 mg morgen"
    "Dørkoden er 4711, nøglen ligger under måtten"
    "$(printf 'Lang besked om aftalerne for ugen %.0s' $(seq 1 12))"
    "Vi ringer til Ella hver søndag kl. 18"
    "Efter Annas farvel: ny kode 9090"
)
TITLE="Ellas pleje og praktiske aftaler"

as admin 0 --server "$IT_URL" enroll "$IT_ADMIN_CODE"
as admin 0 admin department add home-care
invite ella citizen
invite sofie staff --department home-care
as ella 0 consent grant --citizen ella --to department:home-care --scope care --basis consent \
    --purpose "home care"
as ella 0 thread create --citizen ella --kind care --title "$TITLE"
T=$(jv 'd["thread"]')
as ella 0 invite relative --citizen ella --name anna
G_ANNA=$(jv 'd["grant"]')
enroll anna "$(jv 'd["code"]')"
as ella 0 thread members "$T"

as ella 0 thread send "$T" "${TEXTS[0]}" --wait 0
as sofie 0 thread send "$T" "${TEXTS[1]}" --wait 0
as anna 0 thread send "$T" "${TEXTS[2]}" --wait 0
as ella 0 thread send "$T" "${TEXTS[3]}" --wait 0
as ella 0 agreement pin "$T" "${TEXTS[4]}"
for who in ella sofie anna; do
    as $who 0 thread read "$T"
    for i in 0 1 2 3 4; do
        "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if any(m.get("text")==sys.argv[2] for m in d["messages"]) else 1)' \
            "$OUT" "${TEXTS[$i]}" || fail "$who cannot read text $i: $(cat "$OUT")"
    done
done
as ella 0 consent revoke "$G_ANNA"
as ella 0 thread send "$T" "${TEXTS[5]}" --wait 0
as sofie 0 thread read "$T"

# search FILE...: fails when any of TEXTS is in any FILE
search() {
    local f t
    for f in "$@"; do
        [ -f "$f" ] || continue
        for t in "${TEXTS[@]}"; do
            if grep -qaF -- "$t" "$f"; then fail "plaintext found in $f: '$t'"; fi
        done
    done
}
DB=$IT_DIR/data/sammen.db
[ -f "$DB" ] || fail "no $DB"
# while the server runs (the WAL holds the recent writes)
search "$DB" "$DB-wal" "$DB-shm" "$IT_DIR/server.log"
search "$P"/*/state.db "$P"/*/state.db-journal
# controls: the search does find what is stored in the clear
grep -qaF -- "$TITLE" "$DB" "$DB-wal" 2>/dev/null || fail "control: the title is not found in the database"
grep -qaF -- "$T" "$P/ella/state.db" || fail "control: the thread id is not found in state.db"
# each device's state file is its own: 0600
for who in ella sofie anna; do
    [ "$(stat -c %a "$P/$who/state.db")" = 600 ] || fail "$who/state.db mode"
done
# after a clean stop (checkpointed into the main file)
it_stop TERM
search "$DB" "$DB-wal" "$DB-shm" "$IT_DIR/server.log"
echo "plaintext ok"
