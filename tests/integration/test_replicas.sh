#!/usr/bin/env bash
# Replicas through the real daemon (bridge mode, hold "none", exec
# backend: a busybox httpd per replica on a loopback address of its own):
# replicas = { min = 1; max = 3; target = 10; }. A client that resolves
# the name again before each new connection and keeps them all open makes
# beckon boot a second replica, then a third, and no fourth; DNS answers
# every ready replica's address, another first each time; each replica
# serves its own page. When the client closes everything, the scaler stops
# the extra replicas one by one, idle_timeout apart (their addresses back
# in the pool), and the first one is left running (min 1).
. "$(dirname "$0")/lib.sh"

need_root "replicas (conntrack counts their connections, bridge mode)"
for tool in curl python3 dig busybox; do
	command -v $tool >/dev/null || { not_ok "$tool is installed"; finish; }
done

DNS_PORT=$(free_port)
CONF=$T/beckon.conf
NET=$(fresh_net 10.72)
LO=127.$((20 + RANDOM % 200)).$((1 + RANDOM % 250))
BR=bkrp$$
P=rp$$
on_exit "ip link del $BR"
on_exit "for p in \$(pgrep -f 'busybox httpd -f -p $LO\\.'); do kill -9 \$p; done"

PAGE="sh -c 'mkdir -p $T/r/{name} && echo hello from {name} >$T/r/{name}/index.html && exec busybox httpd -f -p {address}:8080 -h $T/r/{name}'"
base_conf "$CONF"
sed -i "s|^network = .*|network = { mode = \"bridge\"; bridge = \"$BR\"; subnet = \"$NET.0/24\"; hold = \"none\"; };|" "$CONF"
sed -i "s|ttl = 30;|ttl = 1;|" "$CONF"
add_services "$CONF" <<CONF
  { name = "$P"; dns = ( "web.svc.test" ); address = "$LO.1"; address_pool = "$LO.10-$LO.19";
    ports = ( 8080 ); backend = "exec"; ready = "tcp"; boot_timeout = "30s";
    idle_timeout = "3s"; on_idle = "destroy"; replicas = { min = 1; max = 3; target = 10; };
    exec = { command = "$PAGE"; }; },
CONF

out=$("$BECKOND" -n -c "$CONF" 2>&1)
check "beckond -n accepts replicas ($out)" [ "$out" = "configuration OK" ]
start_daemon "$CONF" || { not_ok "beckond starts"; finish; }
ok "beckond starts with a replicated service"

n_up() {
	ctl --json list | python3 -c '
import json, sys
print(sum(s["state"] in ("booting", "ready") for s in json.load(sys.stdin)["services"]))'
}
check "min 1: the first replica is booted without a query" \
	wait_for 30 bash -c "'$BECKONCTL' -s '$DSOCK' list | grep -qE '^$P +ready'"
check "one replica before the load, DNS answers its address" \
	[ "$(n_up) $(dig @127.0.0.1 -p "$DNS_PORT" +short web.svc.test A)" = "1 $LO.1" ]

# The load: 60 connections, each to the first address of a fresh answer, held open.
cat >"$T/load.py" <<'EOF'
import socket, struct, sys, time
port, n, stop = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def query(name):
    w = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack(">HHHHHH", 7, 0x100, 1, 0, 0, 0) + w + struct.pack(">HH", 1, 1)
def addrs(msg):
    an = struct.unpack(">H", msg[6:8])[0]; i = 12
    while msg[i]: i += msg[i] + 1
    i += 5; out = []
    for _ in range(an):
        i += 2 if msg[i] & 0xc0 else 0
        typ, _, _, rl = struct.unpack(">HHIH", msg[i:i + 10]); i += 10
        if typ == 1: out.append(socket.inet_ntoa(msg[i:i + 4]))
        i += rl
    return out
conns = []
for j in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(30)
    s.sendto(query("web.svc.test"), ("127.0.0.1", port)); a = addrs(s.recv(4096))[0]; s.close()
    conns.append((a, socket.create_connection((a, 8080), timeout=30)))
    time.sleep(0.1)
print(" ".join("%s:%d" % (a, sum(1 for x, _ in conns if x == a)) for a in sorted({x for x, _ in conns})), flush=True)
deadline = time.time() + 300
while time.time() < deadline:
    try:
        open(stop).close(); break
    except OSError:
        time.sleep(0.1)
EOF
python3 "$T/load.py" "$DNS_PORT" 60 "$T/stop" >"$T/load.out" 2>&1 &
LOAD=$!
on_exit "kill $LOAD"
check "under load: a second and a third replica boot" wait_for 120 bash -c "[ \"\$('$BECKONCTL' -s '$DSOCK' --json list | python3 -c 'import json,sys; print(sum(s[\"state\"]==\"ready\" for s in json.load(sys.stdin)[\"services\"]))')\" = 3 ]"
check "the log says why it booted them" grep -qE "$P: [0-9]+ open connections on 2 replicas \(target 10 each\): booting [23]\.$P" "$DLOG"
wait_for 120 test -s "$T/load.out"
echo "# connections per replica: $(cat "$T/load.out")"
check "the load's connections went to three replicas ($(cat "$T/load.out"))" \
	[ "$(wc -w <"$T/load.out")" = 3 ]
ans=$(dig @127.0.0.1 -p "$DNS_PORT" +short web.svc.test A | sort | tr '\n' ' ')
check "DNS answers every ready replica's address ($ans)" \
	bash -c "[ \"\$(echo $ans | wc -w)\" = 3 ] && echo '$ans' | grep -q '$LO.1 '"
firsts=$(for _ in 1 2 3 4 5 6; do dig @127.0.0.1 -p "$DNS_PORT" +short web.svc.test A | head -1; done | sort -u | wc -l)
check "round robin: another address first in turn ($firsts different firsts in 6)" [ "$firsts" = 3 ]
bad=
for name in "$P" "2.$P" "3.$P"; do
	a=$(svc_field "$name" address)
	got=$(curl -s --max-time 10 "http://$a:8080/")
	[ "$got" = "hello from $name" ] || bad="$bad $name($a:$got)"
done
check "all three serve, each its own page${bad:+ (not:$bad)}" [ -z "$bad" ]
check "no fourth replica however long the load lasts" \
	bash -c "sleep 2; [ \"\$('$BECKONCTL' -s '$DSOCK' --json list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[\"services\"]))')\" = 3 ]"

# The load stops: the extra replicas go one by one, the first stays (min 1).
touch "$T/stop"
wait "$LOAD"
check "load gone: the extra replicas are stopped and forgotten" \
	wait_for 90 bash -c "! '$BECKONCTL' -s '$DSOCK' list | grep -qE '^[23]\\.$P '"
check "... each stopped once" bash -c "[ \$(grep -cE 'info: [23]\\.$P: stopping\$' '$DLOG') = 2 ]"
check "... both by the scaler, one at a time (3 to 2, then 2 to 1)" \
	bash -c "grep -qE '$P: [0-9]+ open connections fit 2 replicas: stopping [23]\\.$P' '$DLOG' &&
		 grep -qE '$P: [0-9]+ open connections fit 1 replicas: stopping [23]\\.$P' '$DLOG'"
check "... their addresses back in the pool" \
	bash -c "[ \$(grep -cE '[23]\\.$P: stopped, forgotten \\(address $LO\\.1[0-9] back in the pool\\)' '$DLOG') = 2 ]"
sleep 4 # past idle_timeout: min keeps the first one up
check "min 1: the first replica is left running past idle_timeout" \
	bash -c "'$BECKONCTL' -s '$DSOCK' list | grep -qE '^$P +ready'"
check "DNS answers its address alone again" [ "$(dig @127.0.0.1 -p "$DNS_PORT" +short web.svc.test A)" = "$LO.1" ]
check "beckond exits cleanly on SIGTERM (sanitizers quiet)" stop_daemon
finish
