#!/usr/bin/env bash
# test_story.sh: the relatives policy's story (issue 5, first "Done when" item) over the real
# server and the real `sammen` CLI, every step asserting what the user sees (--json):
#
#   Ella (citizen) and Peter, her proxy (power of attorney, registered by staff);
#   Anna, her adult daughter, and Lise, her grandchild (child flag), invited as relatives;
#   Sofie (staff, home care) and Jonas (staff, psychiatry), Karen (staff, emergency);
#   Vera, a volunteer of the visiting-friends association.
#
# Grants (citizen-signed, proxy-signed, department, association, request-approved), joins
# (the server's external Adds committed by the next member who syncs, Welcomes opened),
# messages both ways, a request approved and one declined, a revocation after which Anna's
# device receives nothing more and has no keys for later epochs, an expiry by a shifted server
# clock, Sofie unassigned, a break-glass access and its notice, the access log as Ella sees it,
# a pinned agreement acknowledged; refusals along the way.
set -u
. "$(dirname "$0")/lib.sh"

it_init story.test
# every CLI call logs in from 127.0.0.1: lift the per-address limit
it_start --login-per-minute 100000 --test-clock
P=$IT_DIR/profiles
mkdir -p "$P"
OUT=$IT_DIR/out.json
ERR=$IT_DIR/err.txt
D=story.test

# as WHO STATUS ARGS...: runs sammen for profile WHO (60 s bound), stdout -> $OUT
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
expect() { # expect PYEXPR VALUE
    local got
    got=$(jv "$1")
    [ "$got" = "$2" ] || fail "$1 = '$got', want '$2' (output $(cat "$OUT"))"
}
check() { # check PYEXPR (must be True) MESSAGE
    local got
    got=$(jv "$1")
    [ "$got" = "true" ] || fail "$2: $1 is $got (output $(cat "$OUT"))"
}
refused() { # refused CODE: the last command answered {"error": {"code": CODE}}
    expect 'd["error"]["code"]' "$1"
}
enroll() { # enroll WHO CODE
    as "$1" 0 --server "$IT_URL" enroll "$2"
    expect 'd["id"]' "$1@$D"
}
invite() { # invite WHO ROLE [--department D | --association A]
    local who=$1 role=$2
    shift 2
    as admin 0 admin invite --role "$role" --name "$who" "$@"
    enroll "$who" "$(jv 'd["code"]')"
}
# texts that must never reach the server in plaintext (test_plaintext.sh's rule, checked at
# the end here too)
SECRETS=()
say() { # say WHO TEXT [STATUS]: thread send; remembers TEXT
    SECRETS+=("$2")
    as "$1" "${3:-0}" thread send "$T" "$2" --wait 0
}
# read WHO: thread read -> $OUT
readt() { as "$1" 0 thread read "$T"; }
has_text() { check "any(m.get(\"text\") == \"$1\" for m in d[\"messages\"])" "$2"; }
lacks_text() { check "all(m.get(\"text\") != \"$1\" for m in d[\"messages\"])" "$2"; }
member_ids() { as "$1" 0 thread members "$T"; jv 'sorted(m["id"] for m in d["members"])'; }

# --- the administrator, departments, an association, the people
as admin 0 --server "$IT_URL" enroll "$IT_ADMIN_CODE"
for dep in home-care psychiatry emergency; do as admin 0 admin department add $dep; done
as admin 0 admin association add visiting-friends
invite ella citizen
invite sofie staff --department home-care
invite jonas staff --department psychiatry
invite karen staff --department emergency
invite vera volunteer --association visiting-friends

# --- Peter becomes Ella's proxy (staff registers him); a citizen cannot register one
as ella 1 proxy register --citizen ella --name peter --basis power-of-attorney
refused denied
as sofie 2 proxy register --citizen ella --name peter --basis friendship
refused usage
as sofie 0 proxy register --citizen ella --name peter --basis power-of-attorney
expect 'd["proxy"]' "peter@$D"
REG_PETER=$(jv 'd["registration"]')
enroll peter "$(jv 'd["code"]')"

# --- Ella consents to home care (signed on her device; the receipt is verified by the CLI)
as vera 1 consent grant --citizen ella --to department:home-care --scope care --basis consent \
    --purpose "visits"
refused denied
as ella 0 consent grant --citizen ella --to department:home-care --scope care --basis consent \
    --purpose "home care visits and medication"
G_HOME=$(jv 'd["grant"]')
case "$G_HOME" in g_????????????????) ;; *) fail "grant id $G_HOME" ;; esac
[ "$(jv 'len(d["receipt"])')" = 128 ] || fail "receipt $(cat "$OUT")"

# --- a thread: Jonas (no grant) may not create one about Ella; Ella may
as jonas 1 thread create --citizen ella --kind care --title "Ella"
refused denied
as ella 0 thread create --citizen ella --kind care --title "Ella's care"
T=$(jv 'd["thread"]')
case "$T" in t_????????????????????????????????) ;; *) fail "thread id $T" ;; esac

# --- relatives: Anna (adult) invited by Ella, Lise (child) by Peter, each bound to a grant
as ella 0 invite relative --citizen ella --name anna
G_ANNA=$(jv 'd["grant"]')
enroll anna "$(jv 'd["code"]')"
as peter 0 invite relative --citizen ella --name lise --child
G_LISE=$(jv 'd["grant"]')
enroll lise "$(jv 'd["code"]')"
as anna 0 consent list --citizen ella
check "all(g[\"verified\"] and g[\"receipt_verified\"] for g in d[\"grants\"])" \
    "every grant and its receipt verify on Anna's device"
check "{g[\"grant\"]: g[\"form\"] for g in d[\"grants\"]}[\"$G_LISE\"] == \"proxy\"" \
    "Lise's grant is proxy-signed"
check "[(p[\"proxy\"], p[\"registrar\"], p[\"verified\"], p[\"ended\"]) for p in d[\"proxies\"]] == [(\"peter@$D\", \"sofie@$D\", True, 0)]" \
    "Peter's registration is signed by Sofie and verifies on Anna's device"

# --- the next member operation commits the server's Adds; everyone is there, each with why
as ella 0 thread members "$T"
check "sorted(m[\"id\"] for m in d[\"members\"]) == sorted([\"ella@$D\", \"peter@$D\", \"anna@$D\", \"lise@$D\", \"sofie@$D\"])" \
    "members after the joins"
check "{m[\"id\"]: m[\"grant\"] for m in d[\"members\"]} == {\"ella@$D\": \"citizen\", \"peter@$D\": \"proxy\", \"anna@$D\": \"$G_ANNA\", \"lise@$D\": \"$G_LISE\", \"sofie@$D\": \"$G_HOME\"}" \
    "each member's basis"
check 'all(m["verified"] for m in d["members"])' "every basis verifies on Ella's device"
check "[m[\"why\"] for m in d[\"members\"] if m[\"id\"] == \"peter@$D\"][0].startswith(\"signed power-of-attorney registration\")" \
    "Peter is there by a signed registration"
check "\"the server's word\" in [m[\"why\"] for m in d[\"members\"] if m[\"id\"] == \"sofie@$D\"][0]" \
    "Sofie's department membership is shown as the server's word"
check 'all(r["bound"] for r in d["roster"]) and len(d["roster"]) == 5' \
    "every leaf's credential is bound to its key"
check 'all(len(m["fingerprints"]) == len(m["devices"]) for m in d["members"])' \
    "fingerprints shown for every device"
expect 'd["unexplained"]' '[]'

# --- messages both ways
say ella "Hello all, thank you for helping me"
expect 'd["devices"]' 4
MSG1=$(jv 'd["message"]')
as lise 0 thread list
check "[t[\"unread\"] for t in d[\"threads\"] if t[\"thread\"] == \"$T\"] == [1]" \
    "Lise has one unread message"
for who in anna lise peter sofie; do
    readt $who
    has_text "Hello all, thank you for helping me" "$who reads Ella's message"
    check "[m for m in d[\"messages\"] if m.get(\"text\")][0][\"sender\"] == \"ella@$D\"" \
        "$who sees Ella as the sender"
done
as lise 0 thread list
check "[t[\"unread\"] for t in d[\"threads\"] if t[\"thread\"] == \"$T\"] == [0]" \
    "Lise has read everything"
# delivery status: the four other devices acknowledge while Ella waits for them
BGS=()
for who in anna lise peter sofie; do
    (for i in $(seq 1 100); do
        timeout 30 "$SAMMEN" --profile "$P/$who" --json thread read "$T" >"$IT_DIR/bg-$who.json" \
            2>/dev/null
        grep -qF "Is anyone reading this now?" "$IT_DIR/bg-$who.json" && break
        sleep 0.2
    done) &
    BGS+=($!)
done
SECRETS+=("Is anyone reading this now?")
as ella 0 thread send "$T" "Is anyone reading this now?" --wait 20
for p in "${BGS[@]}"; do wait "$p"; done
check 'd["delivered_to"] == 4 and d["devices"] == 4' \
    "Ella sees that all four devices received it"
say sofie "Home visit Tuesday at 10, I bring the new pills"
say anna "I can drive you to the doctor on Friday"
readt ella
has_text "Home visit Tuesday at 10, I bring the new pills" "Ella reads Sofie"
has_text "I can drive you to the doctor on Friday" "Ella reads Anna"
as ella 0 thread read "$T" --since "$MSG1"
check "all(m[\"message\"] > $MSG1 for m in d[\"messages\"]) and len(d[\"messages\"]) == 3" \
    "--since gives the later messages only"
# for people: one line per message
timeout 60 "$SAMMEN" --profile "$P/ella" thread read "$T" >"$IT_DIR/human.txt" 2>&1 ||
    fail "thread read without --json: $(cat "$IT_DIR/human.txt")"
grep -q "^#$MSG1 .* ella@$D: Hello all, thank you for helping me\$" "$IT_DIR/human.txt" ||
    fail "human history: $(cat "$IT_DIR/human.txt")"
# the history stays on the device: read again, same messages
as anna 0 thread read "$T"
has_text "Hello all, thank you for helping me" "Anna's history is kept on her device"

# --- Ella links her tablet: the new device joins, reads from then on; revoked, it leaves
as ella 0 link-device
as ella-tablet 0 --server "$IT_URL" enroll "$(jv 'd["code"]')"
TABLET=$(jv 'd["device"]')
expect 'd["id"]' "ella@$D"
as peter 0 thread members "$T"
check "sorted([m[\"devices\"] for m in d[\"members\"] if m[\"id\"] == \"ella@$D\"][0]) == sorted([\"$TABLET\", \"$(json "$P/ella/profile.json" 'd["device"]')\"])" \
    "Ella's two devices are members"
say peter "Ella, can you see this on the tablet?"
readt ella-tablet
has_text "Ella, can you see this on the tablet?" "the tablet reads after joining"
lacks_text "Hello all, thank you for helping me" "the tablet reads from its join on"
as ella 0 devices revoke "$TABLET"
as peter 0 thread members "$T"
check "[m[\"devices\"] for m in d[\"members\"] if m[\"id\"] == \"ella@$D\"][0] == [\"$(json "$P/ella/profile.json" 'd["device"]')\"]" \
    "the revoked tablet left the thread"
as ella-tablet 1 thread read "$T"

# --- racing commits: three members sync at once after a new grant; every race is retried
as ella 0 consent grant --citizen ella --to department:psychiatry --scope thread:"$T" \
    --basis consent --purpose "this thread only"
G_PSY=$(jv 'd["grant"]')
PIDS=()
for who in ella peter lise; do
    timeout 60 "$SAMMEN" --profile "$P/$who" --json sync >"$IT_DIR/race-$who.json" 2>&1 &
    PIDS+=($!)
done
for p in "${PIDS[@]}"; do wait "$p" || fail "a racing sync failed: $(cat "$IT_DIR"/race-*.json)"; done
# exactly one of them got its commit in for each epoch; the others processed it instead
COMMITS=$("$PY" -c 'import json,sys; print(sum(json.load(open(f))["commits"] for f in sys.argv[1:]))' \
    "$IT_DIR"/race-*.json) || fail "race outputs: $(cat "$IT_DIR"/race-*.json)"
[ "$COMMITS" -ge 1 ] || fail "nobody committed the Add of Jonas: $(cat "$IT_DIR"/race-*.json)"
as ella 0 thread members "$T"
check "[m[\"grant\"] for m in d[\"members\"] if m[\"id\"] == \"jonas@$D\"] == [\"$G_PSY\"]" \
    "Jonas is in through the thread-scoped department grant"
say lise "Hi Jonas"
readt jonas
has_text "Hi Jonas" "Jonas reads after the race"
readt ella
has_text "Hi Jonas" "Ella reads after the race"
as ella 0 consent revoke "$G_PSY"
as ella 0 thread members "$T"
check "\"jonas@$D\" not in [m[\"id\"] for m in d[\"members\"]]" "Jonas left with the grant"

# --- consent requests: Jonas's is approved, Vera's declined
as vera 1 thread read "$T"
refused not_found
as vera 1 thread members "$T"
refused denied
as jonas 0 consent request --citizen ella --scope care --note "psychiatric follow-up"
R_JONAS=$(jv 'd["request"]')
as vera 0 consent request --citizen ella --scope care --note "weekly visits"
R_VERA=$(jv 'd["request"]')
as ella 0 consent requests
check "sorted(r[\"request\"] for r in d[\"requests\"] if r[\"status\"] == \"open\") == sorted([\"$R_JONAS\", \"$R_VERA\"])" \
    "Ella sees both open requests"
as vera 1 consent approve "$R_VERA"
as ella 0 consent approve "$R_JONAS"
expect 'd["request"]' "$R_JONAS"
G_JONAS=$(jv 'd["grant"]')
as ella 0 consent decline "$R_VERA"
expect 'd["request"]' "$R_VERA"
as vera 0 consent requests
expect "[r[\"status\"] for r in d[\"requests\"] if r[\"request\"] == \"$R_VERA\"][0]" declined
as jonas 0 consent requests
expect "[r[\"grant\"] for r in d[\"requests\"] if r[\"request\"] == \"$R_JONAS\"][0]" "$G_JONAS"
as ella 0 thread members "$T" # commits the Add of Jonas
check "\"jonas@$D\" in [m[\"id\"] for m in d[\"members\"]]" "Jonas joined"
say ella "Welcome Jonas"
readt jonas
has_text "Welcome Jonas" "Jonas reads what was sent after he joined"
lacks_text "Hello all, thank you for helping me" "Jonas reads from his join on"

# --- Ella revokes Anna's grant: Anna's device receives nothing more and has no later keys
as anna 1 consent revoke "$G_ANNA"
refused denied
as ella 0 consent revoke "$G_ANNA"
expect 'd["grant"]' "$G_ANNA"
as ella 0 thread members "$T"
check "\"anna@$D\" not in [m[\"id\"] for m in d[\"members\"]]" "Anna is no longer a member"
check "\"anna@$D\" not in [r[\"id\"] for r in d[\"roster\"]]" "Anna's leaf left the MLS tree"
expect 'd["unexplained"]' '[]'
say ella "This is after Anna left: the key code is 4711"
expect 'd["devices"]' 4
as anna 0 thread read "$T"
lacks_text "This is after Anna left: the key code is 4711" "Anna must not read later messages"
check 'all("error" not in m for m in d["messages"])' "nothing undecryptable even reached Anna"
check 'any(n["type"] == "removed" for n in d["notices"])' "Anna is told she was removed"
say anna "Am I still here?" 1
as anna 1 thread members "$T"
refused denied
as anna 0 sync
as anna 0 thread read "$T"
has_text "Hello all, thank you for helping me" "Anna keeps the history she had"
# her device forgot the group's keys when it was told it was removed
[ -z "$(sqlite3 "$P/anna/state.db" "SELECT k FROM rows WHERE kind='group'" 2>/dev/null)" ] ||
    fail "Anna's device still holds group state for $T"
as ella 1 consent revoke "$G_ANNA"
refused conflict

# --- expiry: the visiting friends get two hours; the server's clock moves three hours on
as ella 0 consent grant --citizen ella --to association:visiting-friends --scope care \
    --basis consent --purpose "a visit this afternoon" --expires +2h
G_VERA=$(jv 'd["grant"]')
as ella 0 thread members "$T"
check "\"vera@$D\" in [m[\"id\"] for m in d[\"members\"]]" "Vera joined through her association"
check "[m[\"grant\"] for m in d[\"members\"] if m[\"id\"] == \"vera@$D\"][0] == \"$G_VERA\"" \
    "Vera's basis is the association grant"
say ella "Vera, the door code is 1234"
readt vera
has_text "Vera, the door code is 1234" "Vera reads while her grant runs"
as admin 0 test clock-shift 10800
as ella 0 consent list
check "[g[\"expires\"] for g in d[\"grants\"] if g[\"grant\"] == \"$G_VERA\"][0] > 0" \
    "the grant shows its expiry"
as ella 0 thread members "$T"
check "\"vera@$D\" not in [m[\"id\"] for m in d[\"members\"]]" "Vera left when the grant expired"
say ella "After the visit"
readt vera
lacks_text "After the visit" "Vera must not read after the expiry"
# the sender's own copy carries the server's time (3 h ahead now), as the others see it
readt ella
check "abs([m[\"time\"] for m in d[\"messages\"] if m.get(\"text\") == \"After the visit\"][0] - (__import__(\"time\").time() + 10800)) < 900" \
    "Ella's own message is stored with the server's time, not her device's"
T_OWN=$(jv '[m["time"] for m in d["messages"] if m.get("text") == "After the visit"][0]')
readt lise
check "[m[\"time\"] for m in d[\"messages\"] if m.get(\"text\") == \"After the visit\"] == [$T_OWN]" \
    "Lise sees the same time for Ella's message"

# --- Sofie is unassigned from home care: she leaves the thread
as admin 0 admin unassign --staff sofie --department home-care
as ella 0 thread members "$T"
check "\"sofie@$D\" not in [m[\"id\"] for m in d[\"members\"]]" "Sofie left with her assignment"
say sofie "Still here?" 1
say ella "Sofie has moved to another team"
readt sofie
lacks_text "Sofie has moved to another team" "Sofie must not read after leaving"

# --- break-glass: Karen (emergency) opens access with a reason; Ella and Peter are told
as karen 1 breakglass --citizen ella --thread "$T" --reason "short"
as karen 0 breakglass --citizen ella --thread "$T" \
    --reason "found unconscious at home, need medication list" --hours 2
check '"access" in d and d["expires"] > 0' "break-glass access opened"
for who in ella peter; do
    readt $who
    check "any(n[\"type\"] == \"breakglass\" and n[\"actor\"] == \"karen@$D\" for n in d[\"notices\"])" \
        "$who is notified of the break-glass access"
done
as ella 0 thread members "$T"
check "[m[\"grant\"] for m in d[\"members\"] if m[\"id\"] == \"karen@$D\"] == [\"breakglass\"]" \
    "Karen is in by break-glass"
check "[m[\"verified\"] and \"found unconscious\" in m[\"why\"] for m in d[\"members\"] if m[\"id\"] == \"karen@$D\"] == [True]" \
    "Karen's break-glass access is signed and verifies on Ella's device"
say peter "Karen, the list is in the kitchen drawer"
readt karen
has_text "Karen, the list is in the kitchen drawer" "Karen reads after the break-glass"

# --- the agreement
as ella 0 agreement pin "$T" "We call Ella every Sunday; Sofie's team visits on Tuesdays"
SECRETS+=("We call Ella every Sunday; Sofie's team visits on Tuesdays")
A=$(jv 'd["agreement"]')
case "$A" in a_*) ;; *) fail "agreement id $A" ;; esac
as peter 0 agreement ack "$T" "$A"
expect 'd["agreement"]' "$A"
as jonas 0 agreement ack "$T" "$A"
as lise 0 agreement show "$T"
expect 'd["agreement"]' "$A"
expect 'd["text"]' "We call Ella every Sunday; Sofie's team visits on Tuesdays"
check "sorted(a[\"id\"] for a in d[\"acks\"]) == sorted([\"peter@$D\", \"jonas@$D\"])" \
    "Peter and Jonas acknowledged"
check "\"lise@$D\" in d[\"pending\"]" "Lise has not acknowledged yet"

# --- Olaf has no device (his only one is revoked): Sofie records his oral consent and opens
#     a thread for him
invite olaf citizen
as olaf 0 devices
as olaf 0 devices revoke "$(jv '[x["device"] for x in d["devices"]][0]')"
as sofie 1 consent grant --citizen olaf --to department:home-care --scope coordination \
    --basis consent --purpose "coordination with the GP"
refused denied
as sofie 2 consent grant --citizen olaf --to department:home-care --scope coordination \
    --basis consent --purpose "coordination with the GP" --oral
refused usage
as sofie 0 consent grant --citizen olaf --to department:home-care --scope coordination \
    --basis consent --purpose "coordination with the GP" --oral \
    --reason "Olaf said yes at the home visit, his neighbour was present"
G_OLAF=$(jv 'd["grant"]')
as sofie 1 consent list --citizen olaf
refused denied # Sofie is not in home care any more
as admin 0 admin assign --staff sofie --department home-care
as sofie 0 consent list --citizen olaf
check "[[g[\"form\"], g[\"granter\"], g[\"verified\"]] for g in d[\"grants\"] if g[\"grant\"] == \"$G_OLAF\"] == [[\"oral\", \"sofie@$D\", True]]" \
    "the oral grant is marked as such, by Sofie, and verifies"
check "[g[\"reason\"] for g in d[\"grants\"]] == [\"Olaf said yes at the home visit, his neighbour was present\"]" \
    "the oral grant keeps its reason"
as sofie 0 thread create --citizen olaf --kind coordination --title "Olaf: GP coordination"
T_OLAF=$(jv 'd["thread"]')
as sofie 0 thread members "$T_OLAF"
check "[m[\"id\"] for m in d[\"members\"]] == [\"sofie@$D\"]" "Sofie alone in Olaf's thread"
expect '[m["grant"] for m in d["members"]][0]' "$G_OLAF"

# --- the access log as Ella sees it
as ella 0 thread log "$T"
for action in consent_granted consent_revoked consent_expired thread_created member_added \
    member_removed history_synced; do
    check "any(e[\"action\"] == \"$action\" for e in d[\"entries\"])" "log has $action"
done
check 'any("break" in e["action"] for e in d["entries"])' "log has the break-glass access"
check "any(e[\"action\"] == \"member_removed\" and e[\"subject\"].startswith(\"anna@$D/\") for e in d[\"entries\"])" \
    "log shows Anna's removal"
as vera 1 thread log "$T"
as anna 1 thread log "$T"
# Sofie is back in home care: back in the thread, reading from her new join only
as ella 0 thread members "$T"
check "\"sofie@$D\" in [m[\"id\"] for m in d[\"members\"]]" "Sofie rejoined with her assignment"
say ella "Welcome back Sofie"
readt sofie
has_text "Welcome back Sofie" "Sofie reads after rejoining"
lacks_text "Sofie has moved to another team" "Sofie never reads what was sent while she was away"

# --- Peter's power of attorney ends (signed by staff); he leaves, and the ledger shows the end
as peter 1 proxy end --citizen ella --name peter --registration "$REG_PETER"
refused denied
as sofie 0 proxy end --citizen ella --name peter --registration "$REG_PETER"
expect 'd["registration"]' "$REG_PETER"
as sofie 1 proxy end --citizen ella --name peter --registration "$REG_PETER"
refused not_found
as ella 0 consent list
check "[(p[\"registration\"], p[\"verified\"], p[\"ended\"] > 0, p[\"end_verified\"], p[\"ender\"]) for p in d[\"proxies\"]] == [(\"$REG_PETER\", True, True, True, \"sofie@$D\")]" \
    "the end of Peter's registration is signed by Sofie and verifies on Ella's device"
as ella 0 thread members "$T"
check "\"peter@$D\" not in [m[\"id\"] for m in d[\"members\"]]" "Peter left when his registration ended"
say ella "Peter is no longer my proxy"
readt peter
lacks_text "Peter is no longer my proxy" "Peter reads nothing after his registration ended"

# --- no plaintext on the server or in the devices' state
for f in "$IT_DIR/data"/sammen.db* "$IT_DIR/server.log" "$P"/*/state.db*; do
    [ -f "$f" ] || continue
    for s in "${SECRETS[@]}"; do
        if grep -qF -- "$s" "$f"; then fail "plaintext '$s' found in $f"; fi
    done
done
echo "story ok"
