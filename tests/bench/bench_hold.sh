#!/usr/bin/env bash
# bench_hold.sh: the connection hold, through the real daemon (build/beckond).
#
# 1. Cold start, DNS query sent -> first HTTP byte received, for hold "syn",
#    "proxy" and "none", RUNS runs each (default 30; "beckonctl stop" between
#    runs): median and 90th percentile. The client is a network namespace
#    routed through the host (so SYNs to guests cross FORWARD). Two guests:
#    the QEMU hello guest (build/hello.elf) when the qemu backend is built
#    in, on a bridge made here (syn, none: bridge mode) or behind QEMU user
#    networking (proxy: user mode, ready on its console's READY); and the
#    exec stand-in, busybox httpd started by beckon in a namespace behind
#    that bridge or on {port} (all addresses) behind the proxy, whose start-up is
#    a few ms, so its figures are beckon's own overhead plus a process start.
# 2. Added latency on a ready service, proxy versus connecting to the
#    upstream directly, from the host: LAT_N (default 1000) requests each
#    way, alternating, median of each and the difference (goal: <= 50 us).
#    Two kinds: a new connection per HTTP request (busybox httpd), and a
#    one-byte round trip on an open connection (an echo server). For "syn"
#    a ready guest is reached directly by design (no rule, no queue).
# 3. Proxy throughput with wrk, versus direct (goal: >= 0.9x), WRK_SECS
#    (default 5) each, WRK_RUNS (default 3) alternating pairs, small page
#    and 1 MB file: each ratio, and their median.
#    2 and 3 run twice: as configured by default (a ready instance's local
#    connections are DNATed past the proxy: network.bypass), and with
#    network.bypass = false, which measures the proxy's relay itself.
# PARTS (default "cold ready") picks parts: "cold" is 1, "ready" is 2 and 3.
# Results go to tests/bench/results/hold-<date>.txt. Fails when a run fails
# or the goals are missed by far (added latency > 10x, throughput < 0.5x).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BECKOND=${BECKOND:-$ROOT/build/beckond}
BECKONCTL=${BECKONCTL:-$ROOT/build/beckonctl}
IMG=${GUEST_IMAGE:-$ROOT/build/hello.elf}
RUNS=${RUNS:-30}
LAT_N=${LAT_N:-1000}
WRK_SECS=${WRK_SECS:-5}
WRK_RUNS=${WRK_RUNS:-3}
PARTS=${PARTS:-cold ready}
OUT=$ROOT/tests/bench/results/hold-$(date +%Y-%m-%d).txt
T=$(mktemp -d /tmp/bkh-bench.XXXXXX)
ID=$$
BR=bkhb$ID
CL=bkh-c$ID
GNS=bkh-g2-$ID
NET=10.79.$((RANDOM % 200 + 20))
CNET=10.78.$((RANDOM % 200 + 20))
SNET=10.76.$((RANDOM % 200 + 20))
UNET=$SNET # user-mode service addresses; the ready part uses loopback ones
DPID=

cleanup() {
	[ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
	for p in $(pgrep -f "guest=beckon:bh$ID-"); do kill -9 "$p"; done
	# beckon's taps, by their alias beckon:SERVICE
	for l in $(ip -o link show | awk -v p="beckon:bh$ID-" '{for (i = 1; i < NF; i++) if ($i == "alias" && index($(i + 1), p) == 1) {n = $2; sub(/:$/, "", n); print n}}'); do ip link del "$l"; done
	ip netns del "$CL" 2>/dev/null
	ip netns del "$GNS" 2>/dev/null
	ip link del "bkhc$ID" 2>/dev/null
	ip link del "$BR" 2>/dev/null
	local c=BECKON-HOLD-$BR
	while iptables -w -D FORWARD -j "$c" 2>/dev/null; do :; done
	while iptables -w -D OUTPUT -j "$c" 2>/dev/null; do :; done
	iptables -w -F "$c" 2>/dev/null
	iptables -w -X "$c" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if [ "$(id -u)" != 0 ]; then
	echo "bench_hold: skipped, needs root (namespaces, iptables)"
	exit 0
fi
for tool in busybox python3 wrk iptables ip; do
	command -v "$tool" >/dev/null || { echo "bench_hold: $tool is not installed"; exit 1; }
done
for f in "$BECKOND" "$BECKONCTL"; do
	[ -x "$f" ] || { echo "bench_hold: $f missing (run make)"; exit 1; }
done

# The network: bridge + guest namespace, client namespace routed via the host.
set -e
ip link add "$BR" type bridge
ip addr add "$NET.1/24" dev "$BR"
ip link set "$BR" up
sysctl -qw "net.ipv4.conf.$BR.forwarding=1"
ip netns add "$GNS"
ip link add "bkhg2x$ID" type veth peer name eth0 netns "$GNS"
ip link set "bkhg2x$ID" master "$BR" up
ip -n "$GNS" addr add "$NET.2/24" dev eth0
ip -n "$GNS" link set eth0 up
ip -n "$GNS" link set lo up
ip -n "$GNS" route add default via "$NET.1"
ip netns add "$CL"
ip link add "bkhc$ID" type veth peer name eth0 netns "$CL"
ip addr add "$CNET.1/30" dev "bkhc$ID"
ip addr add "$SNET.2/32" dev "bkhc$ID"
ip addr add "$SNET.3/32" dev "bkhc$ID"
ip link set "bkhc$ID" up
sysctl -qw "net.ipv4.conf.bkhc$ID.forwarding=1"
ip -n "$CL" addr add "$CNET.2/30" dev eth0
ip -n "$CL" link set eth0 up
ip -n "$CL" link set lo up
ip -n "$CL" route add default via "$CNET.1"
set +e

mkdir -p "$T/www"
echo "hello from bench" >"$T/www/index.html"
head -c 1048576 /dev/urandom >"$T/www/big"
DNS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

cat >"$T/echo.py" <<'EOF'
import socket, sys, threading
ls = socket.create_server(("", int(sys.argv[1])), backlog=128)
def serve(c):
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        b = c.recv(65536)
        if not b:
            break
        c.sendall(b)
    c.close()
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF

# measure.py cold DNS_ADDR DNS_PORT NAME PORT: seconds from the query sent to
# the first byte of the HTTP answer. lat HOST PORT N: N HTTP requests, one
# connection each, a line each: first byte and whole answer (us). rtt HOST PORT N: N one-byte
# round trips on one connection (us).
cat >"$T/measure.py" <<'EOF'
import socket, struct, sys, time
def dns_a(server, port, name):
    q = struct.pack(">HHHHHH", 0x6265, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(10)
    s.sendto(q, (server, port))
    r, _ = s.recvfrom(4096)
    an = struct.unpack(">H", r[6:8])[0]
    if an < 1:
        raise SystemExit("no answer")
    i = 12
    while r[i]:
        i += r[i] + 1
    i += 5
    while i < len(r):  # answer RRs: find the A record
        i += 2 if r[i] & 0xc0 == 0xc0 else len(r[i:].split(b"\0")[0]) + 1
        typ, _, _, rdlen = struct.unpack(">HHIH", r[i:i + 10])
        i += 10
        if typ == 1:
            return socket.inet_ntoa(r[i:i + 4])
        i += rdlen
    raise SystemExit("no A record")
def http_first_byte(addr, port):
    c = socket.create_connection((addr, port), timeout=10)
    c.sendall(b"GET / HTTP/1.0\r\n\r\n")
    b = c.recv(1)
    if not b:
        raise SystemExit("closed without an answer")
    while c.recv(65536):
        pass
    c.close()
op = sys.argv[1]
if op == "cold":
    t0 = time.perf_counter()
    addr = dns_a(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    http_first_byte(addr, int(sys.argv[5]))
    print("%.6f" % (time.perf_counter() - t0))
elif op == "lat":  # per request: "first-byte-us whole-answer-us"
    host, port, n = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    for _ in range(n):
        t0 = time.perf_counter()
        c = socket.create_connection((host, port))
        c.sendall(b"GET / HTTP/1.0\r\n\r\n")
        c.recv(1)
        t1 = time.perf_counter()
        while c.recv(65536):
            pass
        t2 = time.perf_counter()
        c.close()
        print("%.1f %.1f" % ((t1 - t0) * 1e6, (t2 - t0) * 1e6))
elif op == "rtt":
    host, port, n = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    c = socket.create_connection((host, port))
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for _ in range(n):
        t0 = time.perf_counter()
        c.sendall(b"x")
        c.recv(1)
        print("%.1f" % ((time.perf_counter() - t0) * 1e6))
EOF

# stats FILE [COLUMN]: "median p90 n" of the numbers in FILE (column COLUMN, default 1).
stats() {
	python3 - "$1" "${2:-1}" <<'EOF'
import statistics, sys
col = int(sys.argv[2]) - 1
v = sorted(float(x.split()[col]) for x in open(sys.argv[1]) if x.strip())
if not v:
    print("nan nan 0"); sys.exit()
p90 = v[min(len(v) - 1, int(round(0.9 * (len(v) - 1))))]
print("%g %g %d" % (statistics.median(v), p90, len(v)))
EOF
}

# conf MODE HOLD [GUEST]: the bench service "www" (and "echo" behind the proxy);
# GUEST exec (default) or qemu.
conf() {
	local mode=$1 hold=$2 addr=$NET.2 cmd keys
	cmd="ip netns exec $GNS busybox httpd -f -p $NET.2:80 -h $T/www"
	if [ "$mode" = user ]; then
		addr=$UNET.2
		cmd="sh -c 'echo {port} >$T/port; exec busybox httpd -f -p {port} -h $T/www'"
	fi
	keys="backend = \"exec\"; exec = { command = \"$cmd\"; };"
	if [ "${3:-exec}" = qemu ]; then
		[ "$mode" = bridge ] && addr=$NET.3
		keys="backend = \"qemu\"; image = \"$IMG\"; cmdline = \"ip={address}/{prefix} gw={gateway} name={name} port={port}\";"
		[ "$mode" = user ] && keys="$keys ready = \"console:READY\";"
	fi
	cat >"$T/beckon.conf" <<EOF
state_dir = "$T/state";
control_socket = "$T/ctl.sock";
metrics_listen = "";
dns = { listen = ( "$CNET.1:$DNS_PORT" ); zone = "svc.test";
        ns = ( { name = "ns1.svc.test"; address = "127.0.0.1"; } ); ttl = 30; };
network = { mode = "$mode"; bridge = "$BR"; subnet = "$NET.0/24"; hold = "$hold"; bypass = ${BYPASS:-true}; };
defaults = { ready = "tcp"; boot_timeout = "5s"; idle_timeout = "1h"; };
services = (
  { name = "bh$ID-www"; dns = ( "www.svc.test" ); address = "$addr"; ports = ( 80 ); $keys }
EOF
	if [ "$mode" = user ]; then
		cat >>"$T/beckon.conf" <<EOF
, { name = "bh$ID-echo"; dns = ( "echo.svc.test" ); address = "$UNET.3"; ports = ( 7 );
    backend = "exec"; exec = { command = "sh -c 'echo {port} >$T/echoport; exec python3 $T/echo.py {port}'"; }; }
EOF
	fi
	echo ");" >>"$T/beckon.conf"
}

start() {
	"$BECKOND" -c "$T/beckon.conf" >"$T/beckond.log" 2>&1 &
	DPID=$!
	for _ in $(seq 250); do
		"$BECKONCTL" -s "$T/ctl.sock" status >/dev/null 2>&1 && return 0
		sleep 0.02
	done
	echo "bench_hold: beckond did not start:"
	tail -5 "$T/beckond.log"
	exit 1
}
stop() {
	kill -TERM "$DPID"
	wait "$DPID" 2>/dev/null
	DPID=
}
state() {
	"$BECKONCTL" -s "$T/ctl.sock" --json list |
		python3 -c 'import json,sys; print([s["state"] for s in json.load(sys.stdin)["services"] if s["name"]==sys.argv[1]][0])' "$1"
}
wait_state() { # wait_state SERVICE STATE
	for _ in $(seq 500); do
		[ "$(state "$1")" = "$2" ] && return 0
		sleep 0.01
	done
	return 1
}
rule_present() { iptables -w -S "BECKON-HOLD-$BR" 2>/dev/null | grep -q -- "-d $NET.[23]/32"; }

FAILED=0
report() { echo "$*" | tee -a "$T/report"; }

# 1. Cold starts.
cold() { # cold MODE HOLD GUEST
	local f=$T/cold-$2-$3 i t
	conf "$1" "$2" "$3"
	start
	: >"$f"
	for i in $(seq "$RUNS"); do
		"$BECKONCTL" -s "$T/ctl.sock" stop "bh$ID-www" >/dev/null
		wait_state "bh$ID-www" stopped || { echo "bench_hold: www did not stop"; FAILED=1; break; }
		if [ "$2" = syn ]; then
			for _ in $(seq 200); do rule_present && break; sleep 0.005; done
		fi
		sleep 0.05
		if ! t=$(ip netns exec "$CL" python3 "$T/measure.py" cold "$CNET.1" "$DNS_PORT" www.svc.test 80 2>&1); then
			echo "bench_hold: $2/$3 run $i failed: $t"
			FAILED=1
			continue
		fi
		echo "$t" >>"$f"
	done
	stop
	read -r med p90 n <<<"$(stats "$f")"
	report "$(printf 'cold start, %-4s guest, hold %-5s (%-6s mode): median %7.2f ms  p90 %7.2f ms  (%d runs)' \
		"$3" "$2" "$1" "$(echo "$med * 1000" | bc -l)" "$(echo "$p90 * 1000" | bc -l)" "$n")"
}

report "bench_hold $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -r), $(nproc) CPUs; beckond: $BECKOND"
GUESTS=exec
if "$BECKOND" -V | grep -q '^backends:.*qemu' && [ -f "$IMG" ]; then
	GUESTS="qemu exec"
	accel=tcg
	python3 -c 'import os; os.close(os.open("/dev/kvm", os.O_RDWR))' 2>/dev/null && accel=kvm
	report "guests: QEMU hello guest ($IMG, accel auto: $accel), and the exec stand-in"
else
	report "guests: the exec stand-in only (no qemu backend or no $IMG in this build)"
fi
report "(DNS query sent -> first HTTP byte, client in a namespace routed through the host)"
report ""
for g in $GUESTS; do
	case " $PARTS " in *" cold "*) ;; *) break ;; esac
	cold bridge syn "$g"
	cold user proxy "$g"
	cold bridge none "$g"
done

# 2. Added latency, and 3. throughput, behind the proxy (user mode).
ready() {
	# Loopback addresses, as the direct path has: the kernel reuses TIME_WAIT
	# ports only for loopback, and wrk opens thousands of connections a second
	# from one address; on 10.x its ports run out and both figures would
	# measure that instead (remote clients each have their own ports).
	UNET=127.0.$((RANDOM % 200 + 20))
	BYPASS=true ready_path "by default: local connections to a ready instance skip the proxy (DNAT)"
	BYPASS=false ready_path "the proxy's own relay (network.bypass = false)"
	report ""
	report "ready, hold syn: a ready guest has no rule; its SYNs never reach beckon (0 added by design)"
	# What a hop costs here: a proxy adds two process wake-ups to a new connection's path.
	report "$(printf 'machine: one process waking another and back (pipe round trip): %s us on one CPU, %s us across CPUs' \
		"$("$ROOT/build/helpers/wakeup_rtt" same)" "$("$ROOT/build/helpers/wakeup_rtt" cross)")"
	report "(wrk -t2 -c32 on the same 2 CPUs as busybox and beckond; /big is 1 MB: busybox sends it"
	report " with sendfile, the proxy splices it socket -> pipe -> socket after the first 32 KiB;"
	report " busybox forks per connection and wrk opens one per request, so / is mostly connection set-up)"
}

# The direct path: the upstreams listen on every address, and the proxy (and
# the bypass's DNAT) reach them at 127.0.0.1. Going direct to another loopback
# address keeps the two paths' conntrack entries apart: a direct connection
# from a local port that a DNATed one used had the same tuple as that one's
# reply, and conntrack dropped its SYN (a 1 s retransmit) for 120 s.
DIRECT=127.0.0.2

bypassed() { iptables -w -t nat -S 2>/dev/null | grep -q -- "-d $UNET.2/32 -o lo .* --dport 80 -j DNAT"; }

# ready_path LABEL: added latency and throughput, BYPASS true or false.
ready_path() {
	conf user proxy
	start
	"$BECKONCTL" -s "$T/ctl.sock" start "bh$ID-www" >/dev/null
	"$BECKONCTL" -s "$T/ctl.sock" start "bh$ID-echo" >/dev/null
	wait_state "bh$ID-www" ready && wait_state "bh$ID-echo" ready ||
		{ echo "bench_hold: services not ready"; exit 1; }
	report ""
	report "behind the proxy (user mode), the exec stand-in: busybox httpd and a Python echo server;"
	report "$1"
	if [ "$BYPASS" = true ] && ! bypassed; then
		echo "bench_hold: no DNAT rule for the ready service (is iptables there, are we root?)"
		FAILED=1
	fi
	PORT=$(cat "$T/port")
	EPORT=$(cat "$T/echoport")
	: >"$T/lat-p"
	: >"$T/lat-d"
	: >"$T/rtt-p"
	: >"$T/rtt-d"
	for _ in $(seq 10); do # alternate, so that drift hits both alike
		python3 "$T/measure.py" lat "$UNET.2" 80 $((LAT_N / 10)) >>"$T/lat-p"
		python3 "$T/measure.py" lat "$DIRECT" "$PORT" $((LAT_N / 10)) >>"$T/lat-d"
		python3 "$T/measure.py" rtt "$UNET.3" 7 $((LAT_N / 10)) >>"$T/rtt-p"
		python3 "$T/measure.py" rtt "$DIRECT" "$EPORT" $((LAT_N / 10)) >>"$T/rtt-d"
	done
	report ""
	for kind in lat:1 lat:2 rtt:1; do
		f=${kind%:*} col=${kind#*:}
		read -r mp _ np <<<"$(stats "$T/$f-p" "$col")"
		read -r md _ nd <<<"$(stats "$T/$f-d" "$col")"
		add=$(echo "$mp - $md" | bc -l)
		case $kind in
		lat:1) what="new connection, HTTP first byte" ;;
		lat:2) what="new connection, whole HTTP answer" ;;
		*) what="1-byte round trip, open connection" ;;
		esac
		report "$(printf 'ready, %-34s: proxy %7.1f us  direct %7.1f us  added %6.1f us (median of %d each)' \
			"$what" "$mp" "$md" "$add" "$np")"
		if [ "$(echo "$add > 500" | bc -l)" = 1 ]; then
			echo "bench_hold: added latency $add us is far beyond the 50 us goal"
			FAILED=1
		fi
	done
	report ""
	wrk_rps() { # wrk_rps URL: requests/s and transfer/s
		wrk -t2 -c32 -d"${WRK_SECS}s" "$1" 2>/dev/null | awk '/Requests\/sec/ {r=$2} /Transfer\/sec/ {t=$2} END {print r, t}'
	}
	for path in / /big; do
		: >"$T/ratios"
		for run in $(seq "$WRK_RUNS"); do # alternating pairs: drift hits both alike
			read -r rp tp <<<"$(wrk_rps "http://$UNET.2:80$path")"
			read -r rd td <<<"$(wrk_rps "http://$DIRECT:$PORT$path")"
			ratio=$(echo "$rp / $rd" | bc -l)
			echo "$ratio" >>"$T/ratios"
			report "$(printf 'wrk %-5s run %d: proxy %9.0f req/s (%s/s)  direct %9.0f req/s (%s/s)  ratio %.2fx' \
				"$path" "$run" "$rp" "$tp" "$rd" "$td" "$ratio")"
		done
		read -r ratio _ _ <<<"$(stats "$T/ratios")"
		report "$(printf 'wrk %-5s: ratio median %.2fx of %d runs (%s)' "$path" "$ratio" "$WRK_RUNS" \
			"$(sort -n "$T/ratios" | awk '{printf "%s%.2f", (NR > 1 ? " " : ""), $1}')")"
		# Bulk is CPU-bound here (see the note below): only requests are held to the goal.
		if [ "$path" = / ] && [ "$(echo "$ratio < 0.5" | bc -l)" = 1 ]; then
			echo "bench_hold: proxy throughput ${ratio}x of direct is far below the 0.9x goal"
			FAILED=1
		fi
	done
	stop
}
case " $PARTS " in *" ready "*) ready ;; esac

if [ "$PARTS" = "cold ready" ]; then # a partial run does not replace the record
	mkdir -p "$(dirname "$OUT")"
	cp "$T/report" "$OUT"
	echo "results: $OUT"
fi
exit $FAILED
