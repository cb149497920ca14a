#!/usr/bin/env bash
# test_wss.sh: the client over TLS (wss://) against the real server with a
# test certificate: enroll and whoami work when the certificate is trusted
# (SAMMEN_CA_FILE); an untrusted certificate, a certificate for another
# host name, and plain ws:// to the TLS port are all refused.
set -u
. "$(dirname "$0")/lib.sh"

if ! command -v openssl >/dev/null; then
    echo "test_wss: openssl not installed; skipped"
    exit 0
fi
it_init wss.test
C=$IT_DIR/certs
mkdir -p "$C"
mkcert() { # mkcert NAME SAN
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$C/$1.key" -out "$C/$1.pem" -days 2 -subj "/CN=$1" \
        -addext "subjectAltName=$2" >/dev/null 2>&1 || fail "openssl req failed"
    chmod 600 "$C/$1.key"
}
mkcert localhost "DNS:localhost,IP:127.0.0.1"
mkcert other.example "DNS:other.example"
OUT=$IT_DIR/out.json
run() { # run EXPECTED_STATUS ARGS...
    local want=$1 st=0
    shift
    timeout 30 "$SAMMEN" "$@" >"$OUT" 2>"$IT_DIR/err.txt" || st=$?
    [ "$st" = "$want" ] || fail "sammen $* exited $st, want $want: $(cat "$OUT" "$IT_DIR/err.txt")"
}

it_start --tls-cert "$C/localhost.pem" --tls-key "$C/localhost.key"
WSS=${IT_URL/ws:/wss:}
WSS_NAME=${WSS/127.0.0.1/localhost}
P=$IT_DIR/p

SAMMEN_CA_FILE=$C/localhost.pem run 0 --server "$WSS_NAME" --profile "$P" --json enroll "$IT_ADMIN_CODE"
[ "$(json "$OUT" 'd["id"]')" = admin@wss.test ] || fail "enroll over wss: $(cat "$OUT")"
SAMMEN_CA_FILE=$C/localhost.pem run 0 --profile "$P" --json whoami
[ "$(json "$OUT" 'd["role"]')" = admin ] || fail "whoami over wss: $(cat "$OUT")"
# the IP address is in the certificate too
SAMMEN_CA_FILE=$C/localhost.pem run 0 --server "$WSS" --profile "$P" --json whoami
# not trusted: the system store does not know the test certificate
SAMMEN_CA_FILE= run 1 --profile "$P" --json whoami
[ "$(json "$OUT" 'd["error"]["code"]')" = io ] || fail "untrusted: $(cat "$OUT")"
# trusting a different certificate does not help
SAMMEN_CA_FILE=$C/other.example.pem run 1 --profile "$P" --json whoami
# plain ws:// to the TLS port fails
run 1 --server "$IT_URL" --profile "$P" --json whoami

# a server presenting a trusted certificate for another name is refused
it_stop TERM
it_start --tls-cert "$C/other.example.pem" --tls-key "$C/other.example.key"
WSS=${IT_URL/ws:/wss:}
SAMMEN_CA_FILE=$C/other.example.pem run 1 --server "${WSS/127.0.0.1/localhost}" --profile "$P" --json whoami
[ "$(json "$OUT" 'd["error"]["code"]')" = io ] || fail "wrong host name: $(cat "$OUT")"

echo "test_wss: all checks passed"
