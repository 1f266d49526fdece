#!/usr/bin/env bash
# bench_wake.sh: wakes through the real daemon (build/beckond) and the QEMU
# backend with the hello guest, bridge mode, hold "none" (the DNS answer
# waits until the guest is ready): a client sends a DNS query, waits for the
# answer, connects and times the first byte of the HTTP answer. Kinds:
#   running   the guest is ready: no wake, the baseline
#   paused    on_idle "pause": QMP cont
#   shell     warm "shell" (QEMU started with -S): QMP cont, then the guest boots
#   suspend   on_idle "suspend": QEMU started on the saved state (-incoming)
#   restore   on_idle "suspend" and warm "shell": the saved state is loaded
#             into a QEMU already waiting for it (-incoming defer)
#   cold      on_idle "destroy": a cold boot
# Each run waits until the service is idle again (idle_timeout 300ms) and in
# the kind's resting state. RUNS runs per kind (default 30), under KVM when
# /dev/kvm opens and under TCG. Median and 90th percentile of DNS query ->
# first HTTP byte, and of the daemon's own wake time from its log. Goals:
# shell median <= 10 ms; paused median <= running + 2 ms.
# Results go to tests/bench/results/wake-<date>.txt. Fails when a run fails.
. "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-30}
OUT=$ROOT/tests/bench/results/wake-$(date +%Y-%m-%d).txt
T=$(mktemp -d /tmp/bkt-wake.XXXXXX)
NET=10.85.$((RANDOM % 250 + 1))
BR=bkw$$
P=bw$$

trap 'bench_cleanup "guest=beckon:$P-"' EXIT
trap 'exit 1' INT TERM

bench_check bench_wake

conf() { # conf ACCEL
	svc() { # svc KIND N KEYS
		echo "  { name = \"$P-$1\"; dns = ( \"$1.svc.test\" ); address = \"$NET.$2\"; ports = ( 80 );"
		echo "    image = \"$IMG\"; cmdline = \"ip={address}/{prefix} gw={gateway} name={name} port={port}\"; qemu = { accel = \"$ACCEL\"; }; $3 },"
	}
	ACCEL=$1
	{
		bench_conf_head bridge
		cat <<EOF
boot_rate = { rate = 0; client_rate = 0; };
services = (
EOF
		svc running 2 'idle_timeout = "0s";'
		svc paused 3 'idle_timeout = "300ms"; on_idle = "pause";'
		svc shell 4 'idle_timeout = "300ms"; on_idle = "destroy"; warm = "shell";'
		svc suspend 5 'idle_timeout = "300ms"; on_idle = "suspend";'
		svc cold 6 'idle_timeout = "300ms"; on_idle = "destroy";'
		svc restore 7 'idle_timeout = "300ms"; on_idle = "suspend"; warm = "shell";'
		echo ");"
	} | sed -z 's/},\n);/}\n);/' >"$T/beckon.conf"
}

cat >"$T/client.py" <<'EOF'
import json, re, socket, subprocess, sys, time
from benchlib import query, answer_ip, pct

port, ctl, sock, log, runs, prefix, label = sys.argv[1:8]
port, runs = int(port), int(runs)
rest = {"running": "ready", "paused": "paused", "shell": "stopped",
        "suspend": "suspended", "cold": "stopped", "restore": "suspended"}

def services():
    out = subprocess.run([ctl, "-s", sock, "--json", "list"], capture_output=True, text=True)
    return {s["name"]: s for s in json.loads(out.stdout)["services"]}

def resting(kind):
    s = services()[prefix + kind]
    if s["state"] == "stopped" and kind in ("paused", "suspend", "restore"):
        one(0, kind)  # booted once, to be paused or saved when idle
    for _ in range(1000):
        s = services()[prefix + kind]
        if s["state"] == rest[kind] and (kind not in ("shell", "restore") or s["shell"]):
            return True
        time.sleep(0.01)
    return False

def one(qid, kind):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(10)
    t0 = time.monotonic()
    u.sendto(query(qid, kind + ".svc.test"), ("127.0.0.1", port))
    msg, _ = u.recvfrom(4096)
    u.close()
    ip = answer_ip(msg)
    if ip is None:
        return None
    c = socket.create_connection((ip, 80), timeout=5)
    c.sendall(b"GET / HTTP/1.1\r\nHost: w\r\nConnection: close\r\n\r\n")
    first = c.recv(1)
    t1 = time.monotonic()
    head = first + c.recv(64)
    c.close()
    return (t1 - t0) * 1000 if head.startswith(b"HTTP/1.1 200") else None

# The daemon's own measure of each wake, from its log.
own = {"paused": r"-paused: resumed in ([\d.]+) ms", "shell": r"-shell: ready in ([\d.]+) ms",
       "suspend": r"-suspend: restored from suspend in ([\d.]+) ms",
       "cold": r"-cold: ready in ([\d.]+) ms", "running": None,
       "restore": r"-restore: restored from suspend in ([\d.]+) ms"}
failed, med = 0, {}
for kind in ("running", "paused", "shell", "suspend", "restore", "cold"):
    times = []
    for i in range(runs):
        if not resting(kind):
            failed += 1
            print("%s %s: not %s" % (label, kind, rest[kind]))
            continue
        r = one(i + 1, kind)
        if r is None:
            failed += 1
        else:
            times.append(r)
    med[kind] = pct(times, .5)
    line = "%-5s %-8s %2d runs  median %6.1f ms  p90 %6.1f ms" % (label, kind, len(times),
                                                                  med[kind], pct(times, .9))
    if own[kind]:
        d = [float(x) for x in re.findall(own[kind], open(log).read())]
        line += "   (beckond: median %5.1f ms, p90 %5.1f ms)" % (pct(d, .5), pct(d, .9))
    print(line)
    print("%-5s %-8s all: %s" % (label, kind, " ".join("%.1f" % t for t in times)))
print("%-5s goal: shell median <= 10 ms: %s (%.1f ms)" %
      (label, "met" if med["shell"] <= 10 else "MISSED", med["shell"]))
print("%-5s goal: paused median <= running + 2 ms: %s (%.1f ms above)" %
      (label, "met" if med["paused"] <= med["running"] + 2 else "MISSED",
       med["paused"] - med["running"]))
sys.exit(1 if failed else 0)
EOF
bench_pylib "$T"

bench() { # bench ACCEL
	local log=$T/beckond-$1.log
	conf "$1"
	bench_start "$log"
	"$BECKONCTL" -s "$T/ctl.sock" start "$P-running" >/dev/null
	python3 "$T/client.py" "$DNS_PORT" "$BECKONCTL" "$T/ctl.sock" "$log" "$RUNS" "$P-" "$1" \
		>>"$T/result" 2>&1 || status=1
	bench_stop
	if [ -n "${KEEP_LOG:-}" ]; then cp "$log" "$KEEP_LOG.$1"; fi
}

{
	bench_header bench_wake
	echo "# DNS query sent -> first HTTP byte; bridge mode, hold none, tcp readiness,"
	echo "# client in the root namespace; memory 16M"
} >"$T/result"
status=0
if kvm_usable; then
	bench kvm
else
	echo "# /dev/kvm cannot be opened: TCG only" >>"$T/result"
fi
bench tcg
bench_publish "$T/result" "$OUT"
exit $status
