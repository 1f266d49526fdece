#!/usr/bin/env bash
# bench_guest.sh: boot build/hello.elf 20 times under QEMU microvm and report
#   entry -> READY   as the guest prints it (microseconds since its first instruction)
#   spawn -> 200     from QEMU's fork to the first HTTP 200 a client gets
# as median and 90th percentile, under KVM (when /dev/kvm opens) and TCG.
# The client runs in a network namespace made here, with a permanent
# neighbour entry for the guest (so no ARP wait) and a tight connect loop
# (a new attempt every 5 ms, attempts overlapping).
# Results go to tests/bench/results/guest-<date>.txt.  Goals: READY < 1 ms,
# spawn -> 200 < 60 ms; exits non-zero only if a boot fails or spawn -> 200
# is ten times over its goal.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
IMG=${GUEST_IMAGE:-$ROOT/build/hello.elf}
BOOTS=${BOOTS:-20}
NS=bkt-bench-$$
TAP=bkb$$
GUEST_IP=10.99.1.2
HOST_IP=10.99.1.1
GUEST_MAC=52:54:00:99:01:02
TMP=$(mktemp -d /tmp/bkt-bench.XXXXXX)
OUT=$ROOT/tests/bench/results/guest-$(date +%Y-%m-%d).txt

cleanup() {
	ip netns del "$NS" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if [ "$(id -u)" != 0 ]; then
	echo "bench_guest: skipped, needs root (network namespace, tap)"
	exit 0
fi
[ -f "$IMG" ] || { echo "bench_guest: $IMG missing (run make)"; exit 1; }

ip netns add "$NS" || exit 1
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" ip tuntap add dev "$TAP" mode tap || exit 1
ip netns exec "$NS" ip addr add "$HOST_IP/24" dev "$TAP"
ip netns exec "$NS" ip link set "$TAP" up
ip netns exec "$NS" ip neigh replace "$GUEST_IP" lladdr "$GUEST_MAC" dev "$TAP" nud permanent

cat >"$TMP/bench.py" <<'EOF'
import errno, os, re, select, signal, socket, subprocess, sys, time

img, tap, gip, hip, gmac, config, boots, tmp = sys.argv[1:9]
boots = int(boots)
accel, _, mopts = config.partition(":")  # e.g. "kvm" or "kvm:acpi=off"
machine = "microvm" + ("," + mopts if mopts else "")

def qemu_cmd(console):
    return ["qemu-system-x86_64", "-M", machine, "-accel", accel, "-m", "16M",
            "-nodefaults", "-no-user-config", "-display", "none",
            "-serial", "file:" + console, "-kernel", img,
            "-append", "ip=%s/24 gw=%s name=bench port=80" % (gip, hip),
            "-netdev", "tap,id=n0,ifname=%s,script=no,downscript=no" % tap,
            "-device", "virtio-net-device,netdev=n0,mac=" + gmac]

def first_200(p, deadline):
    """A new non-blocking connect every 5 ms, each given 30 ms: SYNs that
    reach the guest before it listens are lost, and one that arrives while it
    is still coming up may be answered a few ms later, so attempts overlap.
    Not faster: under the emulating KVM here each SYN costs the guest about
    a millisecond, and a SYN every 2 ms slows the very boot being measured.
    The first to connect sends GET /.  Returns the time of the 200 or None."""
    pending = {}
    next_try = 0
    try:
        while time.monotonic() < deadline and p.poll() is None:
            now = time.monotonic()
            if now >= next_try:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                try:
                    s.connect((gip, 80))
                except BlockingIOError:
                    pass
                except OSError:
                    s.close()
                    s = None
                if s:
                    pending[s] = now + 0.03
                next_try = now + 0.005
            for s, until in list(pending.items()):
                if now > until:
                    s.close()
                    del pending[s]
            if not pending:
                time.sleep(0.001)
                continue
            _, w, _ = select.select([], list(pending), [], 0.001)
            for s in w:
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    s.close()
                    del pending[s]
                    continue
                s.setblocking(True)
                s.settimeout(max(0.1, deadline - time.monotonic()))
                try:
                    s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                    if s.recv(64).startswith(b"HTTP/1.1 200"):
                        return time.monotonic()
                except OSError:
                    pass
                s.close()
                del pending[s]
        return None
    finally:
        for s in pending:
            s.close()

def one(i):
    console = "%s/console-%d" % (tmp, i)
    t0 = time.monotonic()
    p = subprocess.Popen(qemu_cmd(console), stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t200 = first_200(p, t0 + 10)
    ready = None
    for _ in range(100):
        m = re.search(r"^READY (\d+)$", open(console).read(), re.M)
        if m:
            ready = int(m.group(1))
            break
        time.sleep(0.01)
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    return ready, (t200 - t0) * 1000 if t200 else None

def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]

ready, spawn, failed = [], [], 0
for i in range(boots):
    r, s = one(i)
    if r is None or s is None:
        failed += 1
        continue
    ready.append(r)
    spawn.append(s)
if not ready:
    print("%-12s all %d boots failed" % (config, boots))
    sys.exit(2)
print("%-12s %d boots, %d failed" % (config, boots, failed))
print("%-12s entry -> READY    median %6d us   p90 %6d us   (goal < 1000 us)" %
      (config, pct(ready, 0.5), pct(ready, 0.9)))
print("%-12s spawn -> HTTP 200 median %6.1f ms   p90 %6.1f ms   (goal < 60 ms)" %
      (config, pct(spawn, 0.5), pct(spawn, 0.9)))
sys.exit(1 if failed or pct(spawn, 0.9) > 600 else 0)
EOF

kvm_usable() {
	python3 -c 'import os; os.close(os.open("/dev/kvm", os.O_RDWR))' 2>/dev/null
}
# microvm's default (ACPI on) boots through SeaBIOS-microvm; acpi=off boots
# through qboot, which is quicker.  Both are measured.
configs="tcg tcg:acpi=off"
kvm_usable && configs="kvm kvm:acpi=off $configs"

{
	echo "# bench_guest $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -r), $(nproc) CPUs"
	echo "# image $(stat -c %s "$IMG") bytes; $(qemu-system-x86_64 --version | head -1)"
	kvm_usable || echo "# /dev/kvm cannot be opened: TCG only"
} >"$TMP/result"
status=0
for config in $configs; do
	ip netns exec "$NS" python3 "$TMP/bench.py" "$IMG" "$TAP" "$GUEST_IP" "$HOST_IP" \
		"$GUEST_MAC" "$config" "$BOOTS" "$TMP" >>"$TMP/result" 2>&1 || status=1
done
mkdir -p "$(dirname "$OUT")"
cp "$TMP/result" "$OUT"
cat "$OUT"
echo "written to ${OUT#"$ROOT"/}"
exit $status
