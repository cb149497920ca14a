#!/usr/bin/env bash
# test_keys_tool.sh: `sammen-keys generate` / `show`: file modes, kinds,
# SAMMEN_PASSPHRASE, refusal of an existing file, of a file others can
# read and of a wrong passphrase; show's device id and fingerprint agree
# with PROTOCOL.md's definitions (recomputed here with python's hashlib).
set -u
BIN=${SAMMEN_BIN_DIR:?}
K="$BIN/sammen-keys"
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=python3; fi
D=$(mktemp -d /tmp/sammen-keys-XXXXXX)
trap 'rm -rf "$D"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$K" generate --kind device --out "$D/dev.key" >/dev/null || fail "generate device"
[ "$(stat -c %a "$D/dev.key")" = 600 ] || fail "mode $(stat -c %a "$D/dev.key")"
"$K" show "$D/dev.key" >"$D/show.txt" || fail "show"
grep -q '^kind: *device$' "$D/show.txt" || fail "kind: $(cat "$D/show.txt")"
PK=$(sed -n 's/^public key: *//p' "$D/show.txt")
DEV=$(sed -n 's/^device id: *//p' "$D/show.txt")
FPR=$(sed -n 's/^fingerprint: *//p' "$D/show.txt")
WANT=$("$PY" -c '
import hashlib, sys
h = hashlib.sha256(bytes.fromhex(sys.argv[1])).hexdigest()
print("d_" + h[:16] + "|" + " ".join(h[i:i+4] for i in range(0, 64, 4)))' "$PK")
[ "$DEV|$FPR" = "$WANT" ] || fail "ids $DEV|$FPR, want $WANT"

# an existing file is not replaced without --force
"$K" generate --kind device --out "$D/dev.key" 2>/dev/null && fail "overwrote without --force"
"$K" generate --kind device --out "$D/dev.key" --force >/dev/null || fail "--force"
"$K" show "$D/dev.key" | grep -q "$PK" && fail "--force kept the old key"

# passphrase-protected server key
SAMMEN_PASSPHRASE=pw "$K" generate --kind server --out "$D/srv.key" >/dev/null || fail "generate server"
SAMMEN_PASSPHRASE=pw "$K" show "$D/srv.key" | grep -q '^kind: *server$' || fail "show server"
"$K" show "$D/srv.key" 2>/dev/null && fail "opened without the passphrase"
SAMMEN_PASSPHRASE=nope "$K" show "$D/srv.key" 2>/dev/null && fail "opened with a wrong passphrase"

# readable by others: refused
chmod 644 "$D/dev.key"
"$K" show "$D/dev.key" 2>/dev/null && fail "read a key others can read"
# garbage: refused
head -c 76 /dev/urandom >"$D/junk.key"; chmod 600 "$D/junk.key"
"$K" show "$D/junk.key" 2>/dev/null && fail "read garbage"

# usage errors exit 2
st=0; "$K" generate --kind bogus --out "$D/x" 2>/dev/null || st=$?; [ $st = 2 ] || fail "bad kind exit $st"
st=0; "$K" frob 2>/dev/null || st=$?; [ $st = 2 ] || fail "bad command exit $st"
echo "test_keys_tool: all checks passed"
