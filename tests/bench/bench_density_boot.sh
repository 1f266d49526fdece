#!/usr/bin/env bash
# bench_density_boot.sh: how many paused hello guests, each booted (no
# template: bench_density.sh has those), fit on this machine, and
# the memory each holds. The real daemon (build/beckond) starts N services
# (DENSITY_N, default 100) with warm = "paused" and memory = DENSITY_MEM
# (default "16M", the service default): each is booted, found ready, and paused. Then, per QEMU:
# RSS and PSS (/proc/PID/smaps_rollup; PSS shares QEMU's libraries fairly),
# and for the whole machine the drop in MemAvailable (QEMU, taps, page
# tables, everything). A few instances are then woken by a DNS query and
# must serve. The count that fits is extrapolated from these N to the
# machine's memory and to 24 GiB (DESIGN goal: >= 500 in 24 GiB); nothing
# is booted past N. Bridge mode, hold "none", accel DENSITY_ACCEL (default
# auto: KVM when /dev/kvm opens). Results: tests/bench/results/density-boot-<date>.txt.
. "$(dirname "$0")/lib.sh"
N=${DENSITY_N:-100}
MEM=${DENSITY_MEM:-16M}
ACCEL=${DENSITY_ACCEL:-auto}
OUT=$ROOT/tests/bench/results/density-boot-$(date +%Y-%m-%d).txt
T=$(mktemp -d /tmp/bkt-dens.XXXXXX)
NET=10.86.$((RANDOM % 250 + 1))
BR=bkd$$
# Service names d<i>-<pid>: the number first, so that the start of the name
# that a tap's name keeps tells them apart at a glance.
S=$$
MARK="guest=beckon:d[0-9]+-$S,"

cleanup() {
	[ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
	for p in $(pgrep -f "$MARK"); do kill -9 "$p"; done
	sleep 0.5; [ -n "${KEEP_LOG:-}" ] && cp "$T/beckond.log" "$KEEP_LOG"
	for l in $(ip -o link show | grep -E "alias beckon:d[0-9]+-$S( |$)" | awk -F': ' '{print $2}' | cut -d@ -f1); do
		ip link del "$l" 2>/dev/null
	done
	ip link del "$BR" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

bench_check bench_density_boot
[ "$N" -le 250 ] || { echo "bench_density: DENSITY_N is at most 250 (one /24)"; exit 1; }

{
	bench_conf_head bridge
	cat <<EOF
defaults = { image = "$IMG"; cmdline = "ip={address}/{prefix} gw={gateway} name={name} port={port}"; memory = "$MEM"; warm = "paused"; on_idle = "pause";
             idle_timeout = "1s"; boot_timeout = "60s"; qemu = { accel = "$ACCEL"; }; };
services = (
EOF
	for i in $(seq 1 "$N"); do
		echo "  { name = \"d$i-$S\"; dns = ( \"g$i.svc.test\" ); address = \"$NET.$((i + 1))\"; ports = ( 80 ); },"
	done
	echo ");"
} | sed -z 's/},\n);/}\n);/' >"$T/beckon.conf"

avail_kb() { awk '/^MemAvailable:/ {print $2}' /proc/meminfo; }
sync
echo 3 >/proc/sys/vm/drop_caches 2>/dev/null
sleep 1
BEFORE=$(avail_kb)
t0=$(date +%s%N)
bench_start "$T/beckond.log"
count() { # count STATE...: instances in these states
	"$BECKONCTL" -s "$T/ctl.sock" --json list |
		python3 -c 'import json,sys; print(sum(s["state"] in sys.argv[1:] for s in json.load(sys.stdin)["services"]))' "$@"
}
paused() { count paused; }
# Until every instance is paused or has failed.
for _ in $(seq 1200); do [ "$(count paused failed)" -ge "$N" ] && break; sleep 0.1; done
t1=$(date +%s%N)
NP=$(paused)
sleep 3 # let page tables and the kernel's accounting settle
AFTER=$(avail_kb)

python3 - "$N" "$NP" "$BEFORE" "$AFTER" "$MEM" "$(( (t1 - t0) / 1000000 ))" "$MARK" >"$T/result" <<'EOF'
import glob, os, re, subprocess, sys
n, npaused, before, after, mem, ms, mark = sys.argv[1:8]
n, npaused, before, after = int(n), int(npaused), int(before), int(after)
pids = subprocess.run(["pgrep", "-f", mark], capture_output=True,
                      text=True).stdout.split()
rss = pss = anon = 0
for p in pids:
    try:
        t = open("/proc/%s/smaps_rollup" % p).read()
    except OSError:
        continue
    rss += int(re.search(r"^Rss:\s+(\d+)", t, re.M).group(1))
    pss += int(re.search(r"^Pss:\s+(\d+)", t, re.M).group(1))
    anon += int(re.search(r"^Anonymous:\s+(\d+)", t, re.M).group(1))
total_kb = int(re.search(r"MemTotal:\s+(\d+)", open("/proc/meminfo").read()).group(1))
k = max(len(pids), 1)
per_avail = (before - after) / max(npaused, 1)
per = max(per_avail, pss / k)
print("instances paused      %d of %d (all booted, ready and paused in %.1f s)" % (npaused, n, int(ms) / 1000))
print("QEMU processes        %d" % len(pids))
print("per instance: RSS     %7.1f MiB  (QEMU's own view; shared libraries counted in full)" % (rss / k / 1024))
print("per instance: PSS     %7.1f MiB  (shared pages split among the QEMUs)" % (pss / k / 1024))
print("per instance: anon    %7.1f MiB  (private memory: guest RAM touched, QEMU heap)" % (anon / k / 1024))
print("per instance: machine %7.1f MiB  (drop in MemAvailable / paused instances)" % (per_avail / 1024))
print("guest memory          %s each" % mem)
print("fit in this machine   %d  (MemTotal %.1f GiB / %.1f MiB, the larger of PSS and the machine's drop)" %
      (total_kb / per, total_kb / 1048576, per / 1024))
print("fit in 24 GiB         %d  goal >= 500: %s" % (24 * 1048576 / per,
                                                        "met" if 24 * 1048576 / per >= 500 else "MISSED"))
print("extrapolated from %d instances; nothing was booted past them" % n)
EOF

# A few woken: each answers and serves.
woke=0
for i in 1 $((N / 2)) "$N"; do
	ip=$(dig @127.0.0.1 -p "$DNS_PORT" +time=10 +tries=1 +short "g$i.svc.test" A)
	curl -s --max-time 5 "http://$ip/" | grep -q "hello from d$i-$S " && woke=$((woke + 1))
done
echo "woken and served      $woke of 3 sampled" >>"$T/result"
bench_stop
{
	echo "# bench_density_boot $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -r), $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
	echo "# $(qemu-system-x86_64 --version | head -1); accel $ACCEL; $N hello guests, memory $MEM, warm paused"
	cat "$T/result"
} >"$T/out"
bench_publish "$T/out" "$OUT"
[ "$(tail -1 "$T/result" | awk '{print $4}')" = 3 ] && grep -q "instances paused *$N of" "$T/result"
