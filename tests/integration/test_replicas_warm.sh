#!/usr/bin/env bash
# Warm pools with replicas (bridge mode, hold "proxy", exec backend):
# replicas = { min = 0; max = 2; target = 1; } and warm = "paused". The
# pool warms the service's own instance (booted at start, then paused);
# a request resumes it, no boot; load makes a second replica, booted cold
# and never warmed: once the load is gone it is stopped and forgotten,
# while the service's own instance idles out and is warmed again.
. "$(dirname "$0")/lib.sh"

need_root "replicas with a warm pool (nat REDIRECT, bridge mode)"
for tool in curl python3 iptables; do
	command -v $tool >/dev/null || { not_ok "$tool is installed"; finish; }
done

DNS_PORT=$(free_port)
CONF=$T/beckon.conf
NET=$(fresh_net 10.75)
LO=127.$((20 + RANDOM % 200)).$((1 + RANDOM % 250))
BR=bkrw$$
P=rw$$
CHAIN=BECKON-PROXY-$BR
on_exit_proxy_bridge "$BR" "$LO"

base_conf "$CONF"
sed -i "s|^network = .*|network = { mode = \"bridge\"; bridge = \"$BR\"; subnet = \"$NET.0/24\"; hold = \"proxy\"; };|" "$CONF"
add_services "$CONF" <<CONF
  { name = "$P"; dns = ( "web.svc.test" ); address = "$LO.1"; address_pool = "$LO.10-$LO.19";
    ports = ( 8080 ); backend = "exec"; ready = "tcp"; boot_timeout = "60s";
    idle_timeout = "3s"; on_idle = "shutdown"; warm = "paused";
    replicas = { min = 0; max = 2; target = 1; };
    exec = { command = "python3 $ROOT/tests/fixtures/httpsrv.py {address} 8080 \"hello from {name}\""; }; },
CONF

out=$("$BECKOND" -n -c "$CONF" 2>&1)
check "beckond -n accepts warm = paused with replicas ($out)" [ "$out" = "configuration OK" ]
start_daemon "$CONF" || { not_ok "beckond starts"; finish; }
ok "beckond starts"

rows() {
	ctl --json list | python3 -c '
import json, sys
print(" ".join("%s:%s:%d" % (s["name"], s["state"], s["boots"]) for s in json.load(sys.stdin)["services"]))'
}
rows_are() { [ "$(rows)" = "$1" ] || { sleep 0.3; return 1; }; }
check "the pool warms the service's own instance: booted once and paused ($(rows))" \
	wait_for 60 rows_are "$P:paused:1"
page=$(curl -s --max-time 30 "http://$LO.1:8080/")
now=$(rows)
check "a request resumes it, no second boot ($page; $now)" \
	[ "$page $now" = "hello from $P $P:ready:1" ]

# Two connections held open: more than target 1 on one replica, a second is booted.
cat >"$T/load.py" <<'EOF'
import socket, sys, time, os
conns = [socket.create_connection((sys.argv[1], 8080), timeout=60) for _ in range(2)]
open(sys.argv[2] + ".open", "w").close()
while not os.path.exists(sys.argv[2]):
    time.sleep(0.1)
EOF
python3 "$T/load.py" "$LO.1" "$T/stop" &
LOAD=$!
on_exit "kill $LOAD"
check "under load a second replica boots, cold ($(rows))" \
	wait_for 90 bash -c "'$BECKONCTL' -s '$DSOCK' list | grep -qE '^2\\.$P +ready'"
touch "$T/stop"
wait "$LOAD"
check "load gone: the extra replica is stopped and forgotten, not warmed" \
	wait_for 90 bash -c "! '$BECKONCTL' -s '$DSOCK' list | grep -qE '^2\\.$P '"
check "... by the scaler" grep -qE "$P: [0-9]+ open connections fit 1 replicas: stopping 2\\.$P" "$DLOG"
# Paused again after one more boot, or two: on a loaded machine the
# instance a request resumed can idle out (3 s) before the load connects,
# and a rewarm that the load then wakes stays up, as it should.
paused_again() { rows | grep -qxE "$P:paused:[2-9]" || { sleep 0.3; return 1; }; }
wait_for 90 paused_again
rc=$?
now=$(rows)
check "the service's own instance idles out and is warmed again: paused, booted again ($now)" \
	[ "$rc" = 0 ]
[ "$rc" = 0 ] || grep -v "control: list" "$DLOG" | tail -n 40 | sed 's/^/# /'
sleep 2
check "... and nothing else is warmed ($(rows))" [ "$(rows)" = "$now" ]
check "beckond exits cleanly on SIGTERM (sanitizers quiet)" stop_daemon
finish
