#!/usr/bin/env bash
# test_cli.sh: the `sammen` command-line client against the real server,
# through its --json contract (issue 2's command table): enroll the admin,
# whoami, departments and associations, invite + enroll staff, assign /
# unassign and whoami showing departments, link-device + enroll a second
# profile, devices, revoke, errors as {"error": {...}} with exit 1, usage
# errors with exit 2, options anywhere, SAMMEN_PASSPHRASE-encrypted keys,
# the profile's file modes, restart with data intact.
set -u
. "$(dirname "$0")/lib.sh"

it_init cli.test
# every CLI call is a login from 127.0.0.1: lift the per-address limit
it_start --login-per-minute 10000
P=$IT_DIR/profiles
mkdir -p "$P"
OUT=$IT_DIR/out.json
ERR=$IT_DIR/err.txt

# run EXPECTED_STATUS ARGS...: runs sammen with a 30 s bound, stdout -> $OUT
run() {
    local want=$1 st=0
    shift
    timeout 30 "$SAMMEN" "$@" >"$OUT" 2>"$ERR" || st=$?
    if [ "$st" != "$want" ]; then
        echo "stdout: $(cat "$OUT")" >&2
        echo "stderr: $(cat "$ERR")" >&2
        fail "sammen $* exited $st, want $want"
    fi
}
# exactly one JSON document on stdout
one_doc() {
    "$PY" -c 'import json,sys; s=open(sys.argv[1]).read(); json.loads(s)' "$OUT" ||
        fail "stdout is not exactly one JSON document: $(cat "$OUT")"
}
expect() { # expect PYEXPR VALUE
    local got
    got=$(json "$OUT" "$1") || fail "cannot read $1 from $(cat "$OUT")"
    [ "$got" = "$2" ] || fail "$1 = '$got', want '$2' (output $(cat "$OUT"))"
}

# --- enroll the administrator; --server is remembered
run 0 --server "$IT_URL" --profile "$P/admin" --json enroll "$IT_ADMIN_CODE" --label laptop
one_doc
expect 'd["id"]' admin@cli.test
expect 'd["role"]' admin
ADMIN_DEV=$(json "$OUT" 'd["device"]')
case "$ADMIN_DEV" in d_????????????????) ;; *) fail "device id $ADMIN_DEV" ;; esac
[ "$(stat -c %a "$P/admin")" = 700 ] || fail "profile dir mode $(stat -c %a "$P/admin")"
[ "$(stat -c %a "$P/admin/profile.json")" = 600 ] || fail "profile.json mode"
[ "$(stat -c %a "$P/admin/device.key")" = 600 ] || fail "device.key mode"
# the same profile cannot enroll twice
run 1 --profile "$P/admin" --json enroll "$IT_ADMIN_CODE"
expect 'd["error"]["code"]' conflict

# --- whoami (options after the command)
run 0 whoami --profile "$P/admin" --json
one_doc
expect 'd["id"]' admin@cli.test
expect 'd["device"]' "$ADMIN_DEV"
expect 'd["departments"]' '[]'
# human output
run 0 --profile "$P/admin" whoami
grep -q 'admin@cli.test' "$OUT" || fail "human whoami: $(cat "$OUT")"

# --- departments and associations
run 0 --profile "$P/admin" --json admin department add elderly-care
expect 'd["department"]' elderly-care
run 0 --profile "$P/admin" admin --json department add home-help
run 0 --profile "$P/admin" --json admin association add dementia-friends
expect 'd["association"]' dementia-friends
run 1 --profile "$P/admin" --json admin department add elderly-care
expect 'd["error"]["code"]' conflict
run 0 --profile "$P/admin" --json admin departments
one_doc
expect 'sorted(d["departments"])' '["elderly-care", "home-help"]'
expect 'd["associations"]' '["dementia-friends"]'

# --- invitations name people as name or name@domain (this domain only)
run 0 --profile "$P/admin" --json admin invite --role citizen --name carla@cli.test
expect 'd["id"]' carla@cli.test
run 1 --profile "$P/admin" --json admin invite --role citizen --name carl@elsewhere.test
expect 'd["error"]["code"]' not_found

# --- invite staff into a department and enroll them
run 0 --profile "$P/admin" --json admin invite --role staff --name nina --department elderly-care
one_doc
expect 'd["id"]' nina@cli.test
NINA_CODE=$(json "$OUT" 'd["code"]')
# a code typed in upper case without the dashes is the same code
NINA_TYPED=$(printf '%s' "$NINA_CODE" | tr a-z A-Z | tr -d -)
run 0 --server "$IT_URL" --profile "$P/nina" --json enroll "$NINA_TYPED"
expect 'd["id"]' nina@cli.test
expect 'd["role"]' staff
run 0 --profile "$P/nina" --json whoami
expect 'd["departments"]' '["elderly-care"]'
# reuse of the code is refused
run 1 --server "$IT_URL" --profile "$P/other" --json enroll "$NINA_CODE"
expect 'd["error"]["code"]' conflict
# staff are not administrators
run 1 --profile "$P/nina" --json admin departments
expect 'd["error"]["code"]' denied

# --- assign / unassign (bare name and name@domain)
run 0 --profile "$P/admin" --json admin assign --staff nina --department home-help
expect 'd["staff"]' nina@cli.test
expect 'd["department"]' home-help
run 0 --profile "$P/nina" --json whoami
expect 'sorted(d["departments"])' '["elderly-care", "home-help"]'
run 0 --profile "$P/admin" --json admin unassign --department elderly-care --staff nina@cli.test
expect 'd["staff"]' nina@cli.test
run 0 --profile "$P/nina" --json whoami
expect 'd["departments"]' '["home-help"]'
run 1 --profile "$P/admin" --json admin unassign --staff nina --department elderly-care
expect 'd["error"]["code"]' not_found

# --- link a second device with a passphrase-protected key
run 0 --profile "$P/nina" --json link-device
one_doc
LINK=$(json "$OUT" 'd["code"]')
SAMMEN_PASSPHRASE=s3cret run 0 --server "$IT_URL" --profile "$P/nina2" --json enroll "$LINK"
expect 'd["id"]' nina@cli.test
NINA2_DEV=$(json "$OUT" 'd["device"]')
# the key is encrypted: without (or with a wrong) passphrase it does not open
run 1 --profile "$P/nina2" --json whoami
expect 'd["error"]["code"]' crypto
SAMMEN_PASSPHRASE=wrong run 1 --profile "$P/nina2" --json whoami
SAMMEN_PASSPHRASE=s3cret run 0 --profile "$P/nina2" --json whoami
expect 'd["device"]' "$NINA2_DEV"
run 0 --profile "$P/nina" --json devices
one_doc
expect 'len(d["devices"])' 2
expect '"'"$NINA2_DEV"'" in [x["device"] for x in d["devices"]]' true
expect 'all(len(x["fingerprint"]) == 79 and "created" in x and "last_seen" in x for x in d["devices"])' true

# --- revoke the second device; it can no longer log in
run 0 --profile "$P/nina" --json devices revoke "$NINA2_DEV"
expect 'd["device"]' "$NINA2_DEV"
SAMMEN_PASSPHRASE=s3cret run 1 --profile "$P/nina2" --json whoami
one_doc
"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert set(d)=={"error"} and set(d["error"])=={"code","message"}' "$OUT" ||
    fail "error document shape: $(cat "$OUT")"
grep -q '"error"' "$ERR" || fail "with --json, stderr should hold the error document"
# without --json: a message on stderr, nothing on stdout
SAMMEN_PASSPHRASE=s3cret run 1 --profile "$P/nina2" whoami
[ -s "$OUT" ] && fail "stdout not empty on failure: $(cat "$OUT")"
grep -q 'sammen:' "$ERR" || fail "no message on stderr"

# --- usage errors exit 2
run 2 --profile "$P/admin" --json frobnicate
expect 'd["error"]["code"]' usage
run 2 --profile "$P/admin" admin invite --role staff
run 2 --profile "$P/admin" devices revoke
run 2 --profile "$P/admin" whoami --bogus
run 2 --profile "$P/admin" --json admin invite --role emperor --name x
run 0 --help
# no profile at all
run 1 --profile "$P/nobody" --json whoami
expect 'd["error"]["code"]' not_found
# unreachable server
run 1 --server ws://127.0.0.1:1 --profile "$P/admin" --json whoami
one_doc

# --- restart: everything is still there
it_stop TERM
[ "$IT_STATUS" = 0 ] || fail "SIGTERM exit status $IT_STATUS"
# every CLI call is a login from 127.0.0.1: lift the per-address limit
it_start --login-per-minute 10000
run 0 --server "$IT_URL" --profile "$P/nina" --json whoami
expect 'd["departments"]' '["home-help"]'
run 0 --server "$IT_URL" --profile "$P/admin" --json admin departments
expect 'sorted(d["departments"])' '["elderly-care", "home-help"]'

echo "test_cli: all checks passed"
