#!/usr/bin/env bash
# Replicas behind the proxy (bridge mode, hold "proxy", exec backend: a
# python HTTP server per replica on a loopback address of its own, which
# keeps an idle connection open as long as the client does):
# replicas = { min = 1; max = 3; target = 10; }. DNS answers the service's
# address alone; every connection goes to it and the proxy spreads them.
# 40 connections held open make beckon boot a second replica, then a
# third, and no fourth; 30 more go to the replicas with the fewest
# connections, evening them out; requests through the one address reach
# all three. When the client closes everything, the extra replicas go one
# by one and the first one is left running (min 1).
. "$(dirname "$0")/lib.sh"

need_root "replicas behind the proxy (nat REDIRECT, bridge mode)"
for tool in curl python3 dig iptables; do
	command -v $tool >/dev/null || { not_ok "$tool is installed"; finish; }
done

DNS_PORT=$(free_port)
CONF=$T/beckon.conf
NET=$(fresh_net 10.73)
LO=127.$((20 + RANDOM % 200)).$((1 + RANDOM % 250))
BR=bkrq$$
P=rq$$
CHAIN=BECKON-PROXY-$BR
on_exit_proxy_bridge "$BR" "$LO"


base_conf "$CONF"
sed -i "s|^network = .*|network = { mode = \"bridge\"; bridge = \"$BR\"; subnet = \"$NET.0/24\"; hold = \"proxy\"; };|" "$CONF"
sed -i "s|ttl = 30;|ttl = 1;|" "$CONF"
add_services "$CONF" <<CONF
  { name = "$P"; dns = ( "web.svc.test" ); address = "$LO.1"; address_pool = "$LO.10-$LO.19";
    ports = ( 8080 ); backend = "exec"; ready = "tcp"; boot_timeout = "60s";
    idle_timeout = "3s"; on_idle = "destroy"; replicas = { min = 1; max = 3; target = 10; };
    exec = { command = "python3 $ROOT/tests/fixtures/httpsrv.py {address} 8080 \"hello from {name}\""; }; },
CONF

out=$("$BECKOND" -n -c "$CONF" 2>&1)
check "beckond -n accepts replicas under hold proxy ($out)" [ "$out" = "configuration OK" ]
start_daemon "$CONF" || { not_ok "beckond starts"; finish; }
ok "beckond starts with a replicated service behind the proxy"

# name:state:open for each instance, in list order.
rows() {
	ctl --json list | python3 -c '
import json, sys
print(" ".join("%s:%s:%d" % (s["name"], s["state"], s["open"]) for s in json.load(sys.stdin)["services"]))'
}
n_ready() { rows | tr ' ' '\n' | grep -c ':ready:'; }
total_open() { rows | tr ' ' '\n' | awk -F: '{s += $3} END {print s}'; }
# Predicates for wait_for, each call a python run: not too often on a busy machine.
ready_is() { [ "$(n_ready)" = "$1" ] || { sleep 0.3; return 1; }; }
open_is() { [ -e "$2" ] && [ "$(total_open)" = "$1" ] || { sleep 0.3; return 1; }; }
opens() { rows | tr ' ' '\n' | awk -F: '$2 == "ready" {print $3}' | sort -n | tr '\n' ' '; }

check "min 1: the first replica is booted without a query" \
	wait_for 60 bash -c "'$BECKONCTL' -s '$DSOCK' list | grep -qE '^$P +ready'"
page=$(curl -s --max-time 30 "http://$LO.1:8080/")
check "a request through the proxy is served ($page)" [ "$page" = "hello from $P" ]

# The load: N more connections to the one address, each sends nothing and stays open.
cat >"$T/load.py" <<'EOF'
import socket, sys, time, os
addr, n, stop, done = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
conns = []
for j in range(n):
    conns.append(socket.create_connection((addr, 8080), timeout=60))
    time.sleep(0.1)
open(done, "w").close()
deadline = time.time() + 600
while time.time() < deadline and not os.path.exists(stop):
    time.sleep(0.1)
EOF
python3 "$T/load.py" "$LO.1" 40 "$T/stop" "$T/done1" >"$T/load1.out" 2>&1 &
LOAD1=$!
on_exit "kill $LOAD1"
check "under load: a second and a third replica boot" wait_for 180 ready_is 3
check "the log says why it booted them" grep -qE "$P: [0-9]+ open connections on 2 replicas \(target 10 each\): booting [23]\.$P" "$DLOG"
check "the 40 connections are open" wait_for 120 open_is 40 "$T/done1"
before=$(opens)
echo "# open connections per replica after 40: $before"
# Where those went depends on when the replicas came up. 30 more: least
# connections fills the emptier replicas first.
python3 "$T/load.py" "$LO.1" 30 "$T/stop" "$T/done2" >"$T/load2.out" 2>&1 &
LOAD2=$!
on_exit "kill $LOAD2"
check "30 more connections are open (70)" wait_for 120 open_is 70 "$T/done2"
after=$(opens)
echo "# open connections per replica after 70: $after (rows: $(rows))"
# Least connections: each new one went to a replica with the fewest, so the
# fullest gained none while the others were below it, and the spread shrank.
spread() { echo "$1" | awk '{print $3 - $1}'; }
check "least connections: the spread shrank ($before -> $after)" \
	bash -c "[ $(spread "$after") -le 1 ] || [ $(spread "$after") -lt $(spread "$before") ]"
check "least connections: the fullest replica gained none beyond evening out ($before -> $after)" \
	bash -c "a=\$(echo $after | cut -d' ' -f3); b=\$(echo $before | cut -d' ' -f3); [ \$a -le \$((b > 24 ? b : 24)) ]"
ans=$(dig @127.0.0.1 -p "$DNS_PORT" +time=30 +short web.svc.test A | tr '\n' ' ')
check "DNS answers the service's address alone ($ans)" [ "$ans" = "$LO.1 " ]
sleep 2
check "no fourth replica however long the load lasts ($(rows))" [ "$(rows | wc -w)" = 3 ]
# A request through the one address goes to a replica with the fewest connections.
least=$(rows | tr ' ' '\n' | awk -F: '$2 == "ready" {print $3, $1}' | sort -n | awk 'NR == 1 {m = $1} $1 == m {print $2}' | tr '\n' ' ')
page=$(curl -s --max-time 30 "http://$LO.1:8080/")
check "a request through the proxy goes to the least loaded (${least}: $page)" \
	bash -c "for n in $least; do [ '$page' = \"hello from \$n\" ] && exit 0; done; exit 1"
# The first's address is the service's, redirected to the proxy; the others are reached directly.
bad=
for name in "2.$P" "3.$P"; do
	a=$(svc_field "$name" address)
	got=$(curl -s --max-time 30 "http://$a:8080/")
	[ "$got" = "hello from $name" ] || bad="$bad $name($a:$got)"
done
check "the extra replicas serve, each its own page${bad:+ (not:$bad)}" [ -z "$bad" ]

# The load stops: the extra replicas go one by one, the first stays (min 1).
touch "$T/stop"
wait "$LOAD1" "$LOAD2"
check "load gone: the proxy counts no open connection" wait_for 60 open_is 0 "$T/stop"
check "the extra replicas are stopped and forgotten" \
	wait_for 120 bash -c "! '$BECKONCTL' -s '$DSOCK' list | grep -qE '^[23]\\.$P '"
check "... both by the scaler, one at a time (3 to 2, then 2 to 1)" \
	bash -c "grep -qE '$P: [0-9]+ open connections fit 2 replicas: stopping [23]\\.$P' '$DLOG' &&
		 grep -qE '$P: [0-9]+ open connections fit 1 replicas: stopping [23]\\.$P' '$DLOG'"
check "min 1: the first replica is left running" \
	bash -c "'$BECKONCTL' -s '$DSOCK' list | grep -qE '^$P +ready'"
page=$(curl -s --max-time 30 "http://$LO.1:8080/")
check "and serves through the proxy ($page)" [ "$page" = "hello from $P" ]
check "beckond exits cleanly on SIGTERM (sanitizers quiet)" stop_daemon
finish
