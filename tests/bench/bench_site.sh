#!/usr/bin/env bash
# bench_site.sh: a "site" of SITE_N pages (default 100) as SITE_N names of
# one pattern service (dns = ( "*.site.svc.test" )), each page the hello
# guest under its own name (a symlink per page), booted by QEMU when first
# asked for. A crawler reads each page once, cold: DNS query (the answer
# waits for the guest: hold "none") then HTTP GET, one page after the
# other; per page the time from the query to the whole body, median and
# p90. Memory: beckond's RSS plus every guest QEMU's, sampled every 200 ms
# through the crawl (the peak), and again once every page has idled out
# (on_idle "destroy", idle_timeout SITE_IDLE, default 30s) and been
# forgotten. Then replicas: one service of the hello guest run with
# replicas = { min = 1 } and then { min = 3 } kept up, its addresses
# from one DNS answer, and wrk (SITE_CONNS connections in all, default 30,
# for SITE_SECS seconds, default 10) spread over them as round-robin DNS
# spreads clients: requests per second with 1 and with 3 replicas, through
# the proxy (hold "proxy": one address, least connections) and straight to
# the guests (hold "none": every ready replica in the answer). SITE_PART
# "replicas" runs that part alone. Bridge mode, the real daemon
# (build/beckond), accel
# SITE_ACCEL (default auto: KVM when /dev/kvm opens, which this machine
# lacks). Results: tests/bench/results/site-<date>.txt.
. "$(dirname "$0")/lib.sh"
N=${SITE_N:-100}
CONNS=${SITE_CONNS:-30}
SECS=${SITE_SECS:-10}
IDLE=${SITE_IDLE:-30s}
ACCEL=${SITE_ACCEL:-auto}
PART=${SITE_PART:-all}
RUNS=1
OUT=$ROOT/tests/bench/results/site-$(date +%Y-%m-%d).txt
[ "$PART" = replicas ] && OUT=$ROOT/tests/bench/results/site-replicas-$(date +%Y-%m-%d).txt
T=$(mktemp -d /tmp/bkt-site.XXXXXX)
NET=10.87.$((RANDOM % 250 + 1))
BR=bks$$
S=site$$
MARK="guest=beckon:page[0-9]+\\.$S,"
REPMARK="guest=beckon:([0-9]+\\.)?rep$S,"
site_cleanup() {
	local p l
	for p in $(pgrep -f "$REPMARK"); do kill -9 "$p"; done
	for l in $(ip -o link show | grep -E "alias beckon:(page[0-9]+\\.|([0-9]+\\.)?rep)$S( |$)" |
		awk -F": " '{print $2}' | cut -d@ -f1); do
		ip link del "$l" 2>/dev/null
	done
	bench_cleanup "$MARK"
}
trap site_cleanup EXIT
trap 'exit 1' INT TERM

bench_check bench_site
[ "$N" -le 200 ] || { echo "bench_site: SITE_N is at most 200 (the pool)"; exit 1; }
mkdir -p "$T/img"
for i in $(seq 1 "$N"); do ln -s "$IMG" "$T/img/page$i.elf"; done
{
	bench_conf_head bridge
	cat <<EOF
services = (
  { name = "$S"; dns = ( "*.site.svc.test" ); address_pool = "$NET.20-$NET.230"; ports = ( 80 );
    image = "$T/img/{label}.elf"; cmdline = "ip={address}/{prefix} gw={gateway} name={label} port={port}";
    ready = "http:/healthz"; boot_timeout = "60s"; idle_timeout = "$IDLE"; on_idle = "destroy";
    qemu = { accel = "$ACCEL"; }; }
);
EOF
} >"$T/beckon.conf"
site_crawl() {
"$BECKOND" -n -c "$T/beckon.conf" | grep -qx 'configuration OK' || { echo "bench_site: bad config"; exit 1; }
bench_start "$T/beckond.log"
bench_pylib "$T"

# Memory in kB: beckond's RSS and the sum of its guests' (QEMU) RSS.
mem() {
	local d g=0 p v
	d=$(awk '/^VmRSS/ {print $2}' "/proc/$DPID/status" 2>/dev/null)
	for p in $(pgrep -f "$MARK"); do
		# A guest exiting now may have no status, or no RSS (a zombie).
		v=$(awk '/^VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null)
		g=$((g + ${v:-0}))
	done
	echo "${d:-0} $g"
}
IDLE0=$(mem)
(while :; do echo "$(mem) $(pgrep -fc "$MARK")"; sleep 0.2; done) >"$T/mem" &
SAMPLER=$!

cat >"$T/crawl.py" <<'EOF'
# Read page1..pageN once each, cold: DNS, then GET /; print the ms of each.
import socket, sys, time, urllib.request
from benchlib import query, answer_ip, pct
port, n = int(sys.argv[1]), int(sys.argv[2])
times, bad = [], []
for i in range(1, n + 1):
    name = "page%d.site.svc.test" % i
    t0 = time.monotonic()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(90)
    s.sendto(query(i, name), ("127.0.0.1", port))
    ip = answer_ip(s.recv(4096))
    s.close()
    try:
        body = urllib.request.urlopen("http://%s/" % ip, timeout=30).read().decode() if ip else ""
    except OSError as e:
        body = str(e)
    t1 = time.monotonic()
    if not body.startswith("hello from page%d " % i):
        bad.append("%s:%s" % (name, body[:40]))
        continue
    times.append((t1 - t0) * 1000)
print("pages %d ok %d failed %d" % (n, len(times), len(bad)))
print("per page median %.1f ms p90 %.1f ms min %.1f max %.1f" %
      (pct(times, 0.5), pct(times, 0.9), min(times or [0]), max(times or [0])))
print("crawl total %.1f s" % (sum(times) / 1000))
for b in bad[:5]:
    print("failed:", b)
EOF
t0=$(date +%s)
(cd "$T" && python3 crawl.py "$DNS_PORT" "$N") >"$T/crawl"
t1=$(date +%s)
AFTER_CRAWL=$(mem)
kill "$SAMPLER" 2>/dev/null
wait "$SAMPLER" 2>/dev/null
# Every page forgotten: idle_timeout after its read, then destroyed.
for _ in $(seq 600); do
	[ "$("$BECKONCTL" -s "$T/ctl.sock" --json list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["services"]))')" = 0 ] && break
	sleep 0.5
done
t2=$(date +%s)
sleep 2
IDLE1=$(mem)
LEFT=$("$BECKONCTL" -s "$T/ctl.sock" --json list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["services"]))')
FORGOT=$(grep -c "forgotten (address" "$T/beckond.log")
bench_stop
}
[ "$PART" = replicas ] || site_crawl

site_report() {
	echo "# a site of $N pages: one pattern service *.site.svc.test, the hello guest (16M) under $N names,"
	echo "# bridge mode, hold none, idle_timeout $IDLE, on_idle destroy; a crawler reads each page once, cold,"
	echo "# one after the other (DNS query sent -> whole HTTP body)"
	cat "$T/crawl"
	echo "crawl wall time $((t1 - t0)) s; every page forgotten $((t2 - t1)) s after the crawl ($FORGOT forgotten, $LEFT left)"
	python3 - "$T/mem" "$IDLE0" "$AFTER_CRAWL" "$IDLE1" <<'EOF'
import sys
rows = [list(map(int, l.split())) for l in open(sys.argv[1]) if len(l.split()) == 3]
peak = max(rows, key=lambda r: r[0] + r[1]) if rows else [0, 0, 0]
i0, a, i1 = (list(map(int, s.split())) for s in sys.argv[2:5])
mb = lambda kb: kb / 1024
print("memory (RSS, MiB)          beckond   guests    total  guests running")
print("before the crawl           %7.1f  %7.1f  %7.1f" % (mb(i0[0]), mb(i0[1]), mb(i0[0] + i0[1])))
print("peak during the crawl      %7.1f  %7.1f  %7.1f  %d" % (mb(peak[0]), mb(peak[1]), mb(peak[0] + peak[1]), peak[2]))
print("right after the crawl      %7.1f  %7.1f  %7.1f" % (mb(a[0]), mb(a[1]), mb(a[0] + a[1])))
print("after the idle timeout     %7.1f  %7.1f  %7.1f" % (mb(i1[0]), mb(i1[1]), mb(i1[0] + i1[1])))
EOF
}

# Replicas: requests per second with R = 1 and R = 3 replicas kept up (min =
# R, never more: target 1000000), under hold HOLD: "none", clients straight to the addresses DNS
# gives (one wrk per address, the connections split evenly, as round-robin
# DNS spreads clients); "proxy", every client to the service's one address,
# the proxy spreading connections by least connections.
replicas_run() {
	local r=$1 hold=$2 addrs a n got out pids= want=$1 max=$1
	# Through the proxy both runs are replicated (max 3), so that both pass
	# through it: a service of one instance is reached directly once ready.
	[ "$hold" = proxy ] && want=1 max=3
	{
		bench_conf_head bridge | sed "s/hold = \"none\"/hold = \"$hold\"/"
		echo "services = ("
		echo "  { name = \"rep$S\"; dns = ( \"rep.svc.test\" ); address = \"$NET.2\"; address_pool = \"$NET.3-$NET.9\"; ports = ( 80 );"
		echo "    image = \"$IMG\"; cmdline = \"ip={address}/{prefix} gw={gateway} name={name} port={port}\";"
		echo "    ready = \"http:/healthz\"; boot_timeout = \"60s\"; idle_timeout = \"10m\";"
		echo "    replicas = { min = $r; max = $max; target = 1000000; }; qemu = { accel = \"$ACCEL\"; }; }"
		echo ");"
	} >"$T/beckon.conf"
	bench_start "$T/beckond-rep$r-$hold.log"
	for _ in $(seq 600); do
		addrs=$(dig @127.0.0.1 -p "$DNS_PORT" +time=60 +tries=1 +short rep.svc.test A | sort)
		[ "$(echo "$addrs" | grep -c .)" = "$want" ] &&
			[ "$("$BECKONCTL" -s "$T/ctl.sock" list | grep -c ' ready ')" = "$r" ] && break
		sleep 0.2
	done
	n=$(echo "$addrs" | grep -c .)
	rm -f "$T"/wrk-*
	for a in $addrs; do
		wrk -t 1 -c $((CONNS / n)) -d "${SECS}s" "http://$a/" >"$T/wrk-$a" 2>&1 &
		pids="$pids $!"
	done
	wait $pids
	got=$(cat "$T"/wrk-* | awk '/^Requests\/sec:/ {s += $2} END {printf "%.0f", s}')
	out=$(cat "$T"/wrk-* | awk '/requests in/ {n += $1} /Socket errors|Non-2xx/ {e = e " " $0} END {print n " requests" e}')
	printf 'hold %-5s replicas %d (%d ready): %d address(es) in the DNS answer (%s), %d connections for %ss: %s requests/s (%s)\n' \
		"$hold" "$r" "$("$BECKONCTL" -s "$T/ctl.sock" list | grep -c ' ready ')" "$n" "$(echo $addrs)" "$CONNS" "$SECS" "$got" "$out" >>"$T/replicas"
	bench_stop
}
: >"$T/replicas"
for hold in proxy none; do
	replicas_run 1 $hold
	replicas_run 3 $hold
done

{
	echo "# bench_site $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "# $(qemu-system-x86_64 --version | head -1); beckond $BECKOND"
	if [ "$ACCEL" = kvm ] || { [ "$ACCEL" = auto ] && kvm_usable; }; then
		echo "# accel: KVM"
	else
		echo "# accel: TCG (no /dev/kvm on this machine): figures are QEMU under TCG"
	fi
	[ "$PART" = replicas ] || site_report
	echo "# replicas: the hello guest, R replicas kept up (min = R); hold proxy: wrk on the service's one"
	echo "# address, the proxy spreading connections by least connections; hold none: clients straight to"
	echo "# the guests, one wrk per address in the DNS answer"
	cat "$T/replicas"
} >"$T/result"
bench_publish "$T/result" "$OUT"
[ "$PART" = replicas ] || grep -q "failed 0" "$T/crawl"
