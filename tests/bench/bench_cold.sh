#!/usr/bin/env bash
# bench_cold.sh: cold starts through the real daemon (build/beckond) and the
# QEMU backend with the hello guest, hold "none": a client sends a DNS query
# for a stopped service, waits for the answer, connects to it and times the
# first byte of the HTTP answer. RUNS runs per configuration (default 30),
# "beckonctl stop" between runs; median and 90th percentile of the total and
# of its parts, from beckond's -v log lines (each measured from the start of
# the backend's start(), "ready" from the launcher's boot start):
#   spawn   QEMU forked and exec'd         qmp     QMP handshake done
#   READY   the guest's READY line read    probe   readiness probe succeeded
#   dns     the client has the answer      total   the client has the first byte
# Bridge mode: the client runs in the root namespace, which holds the test
# bridge's address; the guest is on a bridge made here (bkc<pid>), never a
# real beckon0. User mode: the client connects to the hostfwd port.
# Results go to tests/bench/results/cold-<date>.txt. Goal: bridge mode under
# KVM, median <= 50 ms. Fails when a run fails or a median is 10x its goal.
. "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-30}
OUT=$ROOT/tests/bench/results/cold-$(date +%Y-%m-%d).txt
T=$(mktemp -d /tmp/bkt-cold.XXXXXX)
X=$((RANDOM % 250 + 1))
NET=10.79.$X
LO=127.$((RANDOM % 200 + 20)).$X
BR=bkc$$

trap 'bench_cleanup "guest=beckon:bc$$-"' EXIT
trap 'exit 1' INT TERM

bench_check bench_cold

# conf MODE ACCEL READY MACHINE: one service, bc<pid>-www.
conf() {
	local addr=$NET.2
	[ "$1" = user ] && addr=$LO.2
	{
		bench_conf_head "$1"
		cat <<EOF
services = ( { name = "bc$$-www"; dns = ( "www.svc.test" ); address = "$addr"; ports = ( 80 );
               image = "$IMG"; ready = "$3";
               cmdline = "ip={address}/{prefix} gw={gateway} name={name} port={port}"; boot_timeout = "10s";
               qemu = { accel = "$2"; machine = "$4"; }; } );
EOF
	} >"$T/beckon.conf"
}

cat >"$T/client.py" <<'EOF'
import json, re, socket, subprocess, sys, time
from benchlib import query, answer_ip, pct

port, ctl, sock, log, runs, svc, label, mode = sys.argv[1:9]
port, runs = int(port), int(runs)

def hostfwd():
    m = re.findall(r": user networking: guest port 80 at 127\.0\.0\.1:(\d+)", open(log).read())
    return int(m[-1]) if m else None

def state():
    out = subprocess.run([ctl, "-s", sock, "--json", "list"], capture_output=True, text=True)
    for s in json.loads(out.stdout)["services"]:
        if s["name"] == svc:
            return s["state"]

def one(qid):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(10)
    t0 = time.monotonic()
    u.sendto(query(qid, "www.svc.test"), ("127.0.0.1", port))
    msg, _ = u.recvfrom(4096)
    tdns = time.monotonic()
    u.close()
    ip = answer_ip(msg)
    if ip is None:
        return None
    dest = (ip, 80) if mode == "bridge" else ("127.0.0.1", hostfwd())
    c = socket.create_connection(dest, timeout=5)
    c.sendall(b"GET / HTTP/1.1\r\nHost: www\r\nConnection: close\r\n\r\n")
    first = c.recv(1)
    tbyte = time.monotonic()
    rest = first + c.recv(64)
    c.close()
    if not rest.startswith(b"HTTP/1.1 200"):
        return None
    return (tdns - t0) * 1000, (tbyte - t0) * 1000

def stop():
    subprocess.run([ctl, "-s", sock, "stop", svc], capture_output=True)
    for _ in range(500):
        if state() in ("stopped", "failed"):
            return
        time.sleep(0.01)
    raise SystemExit("%s did not stop" % svc)

dns, total, failed = [], [], 0
for i in range(runs):
    r = one(i + 1)
    if r is None:
        failed += 1
    else:
        dns.append(r[0])
        total.append(r[1])
    stop()
    time.sleep(0.05)

# The parts, per boot, from the daemon's log.
parts = {k: [] for k in ("spawn", "qmp", "READY", "probe", "guest")}
pat = {
    "spawn": r": qemu pid \d+ spawned \+([\d.]+) ms",
    "qmp": r": qmp ready \+([\d.]+) ms",
    "READY": r": console READY \+([\d.]+) ms",
    "probe": r": ready in ([\d.]+) ms",
    "guest": r": console READY \+[\d.]+ ms \(guest: (\d+) us\)",
}
for boot in open(log).read().split(svc + ": booting")[1:]:
    for k, p in pat.items():
        m = re.search(p, boot)
        if m:
            parts[k].append(float(m.group(1)) / (1000 if k == "guest" else 1))

print("%-22s %d runs, %d failed" % (label, runs, failed))
for k in ("spawn", "qmp", "READY", "probe"):
    print("%-22s   %-6s median %6.1f ms  p90 %6.1f ms" % (label, k, pct(parts[k], .5), pct(parts[k], .9)))
print("%-22s   %-6s median %6.1f ms  p90 %6.1f ms   (guest's own count, entry to READY)" %
      (label, "guest", pct(parts["guest"], .5), pct(parts["guest"], .9)))
print("%-22s   %-6s median %6.1f ms  p90 %6.1f ms" % (label, "dns", pct(dns, .5), pct(dns, .9)))
print("%-22s   %-6s median %6.1f ms  p90 %6.1f ms   <- DNS query sent -> first HTTP byte" %
      (label, "total", pct(total, .5), pct(total, .9)))
print("%-22s   all totals: %s" % (label, " ".join("%.0f" % t for t in total)))
if label == "bridge kvm tcp microvm":
    print("%-22s   goal: median <= 50 ms: %s (%.1f ms)" %
          (label, "met" if pct(total, .5) <= 50 else "MISSED", pct(total, .5)))
# 10x a goal: 50 ms on microvm; pc and q35 go through SeaBIOS first (about 200 ms more).
limit = 500 if label.endswith("microvm") else 5000
sys.exit(1 if failed or not total or pct(total, .5) > limit else 0)
EOF
bench_pylib "$T"

# bench MODE ACCEL READY [MACHINE]
bench() {
	local m=${4:-microvm}
	local label="$1 $2 $3 $m" log=$T/beckond-$1-$2-${3%%:*}-$m.log
	conf "$1" "$2" "$3" "$m"
	bench_start "$log"
	python3 "$T/client.py" "$DNS_PORT" "$BECKONCTL" "$T/ctl.sock" "$log" "$RUNS" "bc$$-www" \
		"$label" "$1" >>"$T/result" 2>&1 || status=1
	bench_stop
}

{
	bench_header bench_cold
	echo "# mode accel ready: bridge = tap on a bridge, client in the root namespace;"
	echo "# user = QEMU user networking, client to the hostfwd port on loopback;"
	echo "# machine: microvm (virtio-mmio) or pc (virtio-net-pci, through SeaBIOS)"
} >"$T/result"
status=0
if kvm_usable; then
	bench bridge kvm tcp
	bench bridge kvm tcp pc
	bench bridge kvm "console:^READY"
	bench user kvm "console:^READY"
	bench user kvm "http:/"
else
	echo "# /dev/kvm cannot be opened: TCG only" >>"$T/result"
fi
bench bridge tcg tcp
bench bridge tcg tcp pc
bench user tcg "console:^READY"
bench_publish "$T/result" "$OUT"
exit $status
