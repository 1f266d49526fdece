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
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BECKOND=${BECKOND:-$ROOT/build/beckond}
BECKONCTL=${BECKONCTL:-$ROOT/build/beckonctl}
IMG=${GUEST_IMAGE:-$ROOT/build/hello.elf}
RUNS=${RUNS:-30}
OUT=$ROOT/tests/bench/results/cold-$(date +%Y-%m-%d).txt
T=$(mktemp -d /tmp/bkt-cold.XXXXXX)
X=$((RANDOM % 250 + 1))
NET=10.79.$X
LO=127.$((RANDOM % 200 + 20)).$X
BR=bkc$$
DPID=

cleanup() {
	[ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
	for p in $(pgrep -f "guest=beckon:bc$$-"); do kill -9 "$p"; done
	ip link del "$BR" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if [ "$(id -u)" != 0 ]; then
	echo "bench_cold: skipped, needs root (bridge, taps)"
	exit 0
fi
for f in "$BECKOND" "$BECKONCTL" "$IMG"; do
	[ -e "$f" ] || { echo "bench_cold: $f missing (run make)"; exit 1; }
done
DNS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

# conf MODE ACCEL READY: one service, bc<pid>-www.
conf() {
	local addr=$NET.2
	[ "$1" = user ] && addr=$LO.2
	cat >"$T/beckon.conf" <<EOF
state_dir = "$T/state";
control_socket = "$T/ctl.sock";
metrics_listen = "";
dns = { listen = ( "127.0.0.1:$DNS_PORT" ); zone = "svc.test";
        ns = ( { name = "ns1.svc.test"; address = "127.0.0.1"; } ); ttl = 30; };
network = { mode = "$1"; bridge = "$BR"; subnet = "$NET.0/24"; hold = "none"; };
services = ( { name = "bc$$-www"; dns = ( "www.svc.test" ); address = "$addr"; ports = ( 80 );
               image = "$IMG"; ready = "$3"; boot_timeout = "5s"; qemu = { accel = "$2"; }; } );
EOF
}

cat >"$T/client.py" <<'EOF'
import json, re, socket, statistics, struct, subprocess, sys, time

port, ctl, sock, log, runs, svc, label, mode = sys.argv[1:9]
port, runs = int(port), int(runs)

def query(qid):
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for part in b"www.svc.test".split(b"."):
        q += bytes([len(part)]) + part
    return q + b"\0" + struct.pack("!HH", 1, 1)

def answer_ip(msg):
    """The first A record of MSG, or None (SERVFAIL, no answer)."""
    if len(msg) < 12 or msg[3] & 0x0f or struct.unpack("!H", msg[6:8])[0] == 0:
        return None
    i = 12
    while msg[i]:
        i += msg[i] + 1
    i += 5
    while i + 10 < len(msg):
        if msg[i] & 0xc0 == 0xc0:
            i += 2
        else:
            while msg[i]:
                i += msg[i] + 1
            i += 1
        typ, _, _, rdlen = struct.unpack("!HHIH", msg[i:i + 10])
        i += 10
        if typ == 1 and rdlen == 4:
            return socket.inet_ntoa(msg[i:i + 4])
        i += rdlen
    return None

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
    u.sendto(query(qid), ("127.0.0.1", port))
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

def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))] if v else float("nan")

print("%-22s %d runs, %d failed" % (label, runs, failed))
for k in ("spawn", "qmp", "READY", "probe"):
    print("%-22s   %-6s median %6.1f ms  p90 %6.1f ms" % (label, k, pct(parts[k], .5), pct(parts[k], .9)))
print("%-22s   %-6s median %6.1f ms  p90 %6.1f ms   (guest's own count, entry to READY)" %
      (label, "guest", pct(parts["guest"], .5), pct(parts["guest"], .9)))
print("%-22s   %-6s median %6.1f ms  p90 %6.1f ms" % (label, "dns", pct(dns, .5), pct(dns, .9)))
print("%-22s   %-6s median %6.1f ms  p90 %6.1f ms   <- DNS query sent -> first HTTP byte" %
      (label, "total", pct(total, .5), pct(total, .9)))
print("%-22s   all totals: %s" % (label, " ".join("%.0f" % t for t in total)))
if label == "bridge kvm tcp":
    print("%-22s   goal: median <= 50 ms: %s (%.1f ms)" %
          (label, "met" if pct(total, .5) <= 50 else "MISSED", pct(total, .5)))
sys.exit(1 if failed or not total or pct(total, .5) > 500 else 0)
EOF

# bench MODE ACCEL READY
bench() {
	local label="$1 $2 $3" log=$T/beckond-$1-$2-${3%%:*}.log
	conf "$1" "$2" "$3"
	"$BECKOND" -c "$T/beckon.conf" -v >"$log" 2>&1 &
	DPID=$!
	for _ in $(seq 250); do "$BECKONCTL" -s "$T/ctl.sock" status >/dev/null 2>&1 && break; sleep 0.02; done
	python3 "$T/client.py" "$DNS_PORT" "$BECKONCTL" "$T/ctl.sock" "$log" "$RUNS" "bc$$-www" \
		"$label" "$1" >>"$T/result" 2>&1 || status=1
	kill -TERM "$DPID"
	wait "$DPID"
	DPID=
}

kvm_usable() { python3 -c 'import os; os.close(os.open("/dev/kvm", os.O_RDWR))' 2>/dev/null; }
{
	echo "# bench_cold $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "# $(qemu-system-x86_64 --version | head -1); beckond $BECKOND; $RUNS runs each"
	echo "# mode accel ready: bridge = tap on a bridge, client in the root namespace;"
	echo "# user = QEMU user networking, client to the hostfwd port on loopback"
} >"$T/result"
status=0
if kvm_usable; then
	bench bridge kvm tcp
	bench bridge kvm "console:^READY"
	bench user kvm "console:^READY"
	bench user kvm "http:/"
else
	echo "# /dev/kvm cannot be opened: TCG only" >>"$T/result"
fi
bench bridge tcg tcp
bench user tcg "console:^READY"
mkdir -p "$(dirname "$OUT")"
cp "$T/result" "$OUT"
cat "$OUT"
echo "written to ${OUT#"$ROOT"/}"
exit $status
