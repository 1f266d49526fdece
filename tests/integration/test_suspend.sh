#!/usr/bin/env bash
# on_idle = "suspend" with the QEMU hello guest in bridge mode, hold "syn",
# idle_timeout = 3s, a client routed through the host: the idle guest is
# saved to <state_dir>/<name>.state and its QEMU ends; a DNS query and a
# bare connection each restore it and get the page; the request counter the
# guest keeps in memory (GET /count) survives every suspend and restore;
# restores are counted as wakes; a state file that cannot be restored falls
# back to a cold boot; stop of a suspended service forgets its state.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/idlenet.sh"
idle_qemu_setup "suspend" s
METRICS_PORT=$(free_port)

idle_base_conf
sed -i "s|^metrics_listen = .*|metrics_listen = \"127.0.0.1:$METRICS_PORT\";|" "$CONF"
cat >>"$CONF" <<EOF
services = (
  { name = "$P-u"; dns = ( "u.svc.test" ); address = "$INET.2"; ports = ( 80 );
    image = "$IMG"; idle_timeout = "3s"; on_idle = "suspend"; $(idle_qemu_keys) }
);
EOF

# A state file an earlier run left (its guest's QEMU arguments may differ).
mkdir -p "$T/state"
echo stale >"$T/state/$P-u.state"
start_daemon "$CONF" || { not_ok "beckond starts"; finish; }
ok "beckond starts with a suspending QEMU service"
check "a state file an earlier run left is removed at start" \
	bash -c "[ ! -e '$T/state/$P-u.state' ] && grep -q '$P-u: removed the saved state an earlier run left' '$DLOG'"

# idle_timeout 3 s, not 1: the checks between a restore and the next idle
# suspend took over a second under load, and the state file came back.
field() { svc_field "$P-u" "$1"; } # field KEY
state_is() { [ "$(field state)" = "$1" ]; }
# now: "STATE BOOTS PID" from one beckonctl call, read right after a request,
# before the guest can go idle again (one call per field took seconds here).
now() {
	ctl --json list | python3 -c '
import json, sys
for s in json.load(sys.stdin)["services"]:
    if s["name"] == sys.argv[1]:
        print(s["state"], s["boots"], s["pid"])' "$P-u"
}
get() { icl curl -s --max-time 5 "http://$INET.2$1"; }
STATE=$T/state/$P-u.state
metric() { curl -s "http://127.0.0.1:$METRICS_PORT/metrics" | sed -n "s/^$1 //p"; }

check "a DNS query answers with the guest's address" [ "$(dq +short u.svc.test A)" = "$INET.2" ]
for i in 1 2 3; do get / >/dev/null; done
check "three requests: the guest counts 3" [ "$(get /count)" = 3 ]
PID=$(field pid)

check "idle after 3 s: suspended" wait_for 15 state_is suspended
check "the log says idle: suspend, then state saved, then suspended" \
	bash -c "grep -q '$P-u: idle: suspend' '$DLOG' && grep -qE '$P-u: state saved in [0-9.]+ ms' '$DLOG' &&
		 grep -q '$P-u: suspended' '$DLOG'"
check "the state file is there ($(stat -c %s "$STATE" 2>/dev/null) bytes)" [ -s "$STATE" ]
check "its QEMU is gone" wait_for 15 bash -c "! kill -0 $PID 2>/dev/null"
check "no QEMU of it runs" no_qemu

# A DNS query restores it.
t0=$(date +%s%N)
check "a DNS query wakes it" [ "$(dq +short u.svc.test A)" = "$INET.2" ]
got=$(get /count)
t1=$(date +%s%N)
left=$(ls "$STATE" 2>/dev/null)
NOW=$(now)
check "the restored guest still counts 3 ($got, $(((t1 - t0) / 1000000)) ms from the query)" [ "$got" = 3 ]
check "it is ready, a second boot (the restore): $NOW" [ "${NOW% *}" = "ready 2" ]
check "a new QEMU" [ "${NOW##* }" != "$PID" ]
check "the log says restored" grep -qE "$P-u: restored from suspend in [0-9.]+ ms" "$DLOG"
check "the state file was used up" [ -z "$left" ]
get / >/dev/null
check "one more request: 4" [ "$(get /count)" = 4 ]

# A connection alone restores it.
check "idle again: suspended" wait_for 15 state_is suspended
got=$(get /count)
NOW=$(now)
check "a bare connection (held SYN) restores it: the count is still 4 ($got)" [ "$got" = 4 ]
check "ready, three boots: $NOW" [ "${NOW% *}" = "ready 3" ]
n=$(metric 'beckon_wake_seconds_count{how="restore"}')
check "the restores are in beckon_wake_seconds ($n)" [ "${n:-0}" -ge 2 ]

# A state file that cannot be restored: the next wake boots afresh.
check "idle again: suspended" wait_for 15 state_is suspended
echo "not a QEMU state" >"$STATE"
check "a broken state file: the query fails (SERVFAIL) or boots afresh" \
	bash -c "dig @127.0.0.1 -p $DNS_PORT +time=10 +tries=1 u.svc.test A | grep -qE 'status: (NOERROR|SERVFAIL)'"
check "... the log says the restore failed" wait_for 15 grep -q "$P-u: saved state removed (the restore failed)" "$DLOG"
check "... the next query boots afresh and the client gets the page" \
	bash -c "[ \"\$(dig @127.0.0.1 -p $DNS_PORT +time=10 +tries=1 +short u.svc.test A)\" = $INET.2 ] &&
		 ip netns exec $ICL curl -s --max-time 5 http://$INET.2/ | grep -q 'hello from $P-u'"
check "... a fresh guest: the count starts again" [ "$(get /count)" = 1 ]

# beckonctl stop of a suspended service forgets the state.
check "idle again: suspended" wait_for 15 state_is suspended
check "beckonctl stop" bash -c "'$BECKONCTL' -s '$DSOCK' stop $P-u >/dev/null"
check "stopped, the state file removed" bash -c "[ ! -e '$STATE' ]"
check "stopped" state_is stopped

check "SIGTERM: beckond exits 0, no sanitizer report" stop_daemon
check "SIGTERM: no QEMU left" no_qemu
finish
