#!/usr/bin/env bash
# bench_libvirt.sh: the hello guest through the libvirt backend beside the
# QEMU backend, in one run of the real daemon (build/beckond), bridge mode,
# hold "none" (the DNS answer waits until the guest is ready): a client
# sends a DNS query, waits for the answer, connects and times the first
# byte of the HTTP answer. Kinds, for each backend:
#   cold      on_idle "destroy": a cold boot (libvirt: virDomainCreateXML)
#   paused    on_idle "pause": resumed (libvirt: virDomainResume)
#   saved     on_idle "suspend": restored from its saved state (libvirt:
#             virDomainSave, virDomainRestoreFlags)
# Each run waits until the service is idle again (idle_timeout 300ms) and in
# the kind's resting state. RUNS runs per kind (default 30). Median and 90th
# percentile of DNS query -> first HTTP byte, the daemon's own measure from
# its log, and, on its own, what libvirt adds to a cold boot: from beckon's
# virDomainCreateXML call to the domain running (created paused, console
# opened, resumed), from beckond's -v log. The libvirtd is a private one
# (tests/integration/libvirtd.sh), in a mount namespace of its own.
# Results go to tests/bench/results/libvirt-<date>.txt. Fails when a run fails.
. "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-30}
OUT=$ROOT/tests/bench/results/libvirt-$(date +%Y-%m-%d).txt
T=$(mktemp -d /tmp/bkt-lv.XXXXXX)
NET=10.86.$((RANDOM % 250 + 1))
BR=bkl$$
P=bl$$
LV_MARK="guest=beckon-$P-"

# What tests/integration/libvirtd.sh wants of lib.sh.
EXITS=()
on_exit() { EXITS=("$1" "${EXITS[@]}"); }
wait_for() {
	local deadline=$(($(date +%s) + $1))
	shift
	while [ "$(date +%s)" -lt "$deadline" ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	return 1
}
. "$ROOT/tests/integration/libvirtd.sh"

bench_exit() {
	[ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
	DPID=
	for e in "${EXITS[@]}"; do eval "$e" >/dev/null 2>&1; done
	bench_cleanup "guest=beckon:$P-"
}
trap bench_exit EXIT
trap 'exit 1' INT TERM

bench_check bench_libvirt
command -v /usr/sbin/libvirtd >/dev/null && command -v virsh >/dev/null ||
	{ echo "bench_libvirt: libvirtd and virsh are needed (make deps)"; exit 1; }
"$BECKOND" -V | grep -qw libvirt || { echo "bench_libvirt: beckond has no libvirt backend"; exit 1; }
libvirtd_up >/dev/null || { echo "bench_libvirt: the private libvirtd did not start"; exit 1; }

conf() {
	svc() { # svc BACKEND KIND N KEYS
		echo "  { name = \"$P-$1-$2\"; dns = ( \"$2.$1.svc.test\" ); address = \"$NET.$3\"; ports = ( 80 );"
		echo "    image = \"$IMG\"; cmdline = \"ip={address}/{prefix} gw={gateway} name={name} port={port}\";"
		echo "    backend = \"$1\"; boot_timeout = \"30s\"; $4"
		[ "$1" = libvirt ] && echo "    libvirt = { uri = \"$LV_URI\"; };"
		echo "  },"
	}
	{
		bench_conf_head bridge
		cat <<EOF
boot_rate = { rate = 0; client_rate = 0; };
services = (
EOF
		local n=2
		for b in qemu libvirt; do
			svc $b cold $n 'idle_timeout = "300ms"; on_idle = "destroy";'
			svc $b paused $((n + 1)) 'idle_timeout = "300ms"; on_idle = "pause";'
			svc $b saved $((n + 2)) 'idle_timeout = "300ms"; on_idle = "suspend";'
			n=$((n + 10))
		done
		echo ");"
	} | sed -z 's/},\n);/}\n);/' >"$T/beckon.conf"
}

cat >"$T/client.py" <<'EOF'
import json, re, socket, subprocess, sys, time
from benchlib import query, answer_ip, pct

port, ctl, sock, log, runs, prefix = sys.argv[1:7]
port, runs = int(port), int(runs)
rest = {"cold": "stopped", "paused": "paused", "saved": "suspended"}

def services():
    out = subprocess.run([ctl, "-s", sock, "--json", "list"], capture_output=True, text=True)
    return {s["name"]: s for s in json.loads(out.stdout)["services"]}

def one(qid, backend, kind):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(60)
    t0 = time.monotonic()
    u.sendto(query(qid, "%s.%s.svc.test" % (kind, backend)), ("127.0.0.1", port))
    msg, _ = u.recvfrom(4096)
    u.close()
    ip = answer_ip(msg)
    if ip is None:
        return None
    c = socket.create_connection((ip, 80), timeout=10)
    c.sendall(b"GET / HTTP/1.1\r\nHost: w\r\nConnection: close\r\n\r\n")
    first = c.recv(1)
    t1 = time.monotonic()
    head = first + c.recv(64)
    c.close()
    return (t1 - t0) * 1000 if head.startswith(b"HTTP/1.1 200") else None

def resting(backend, kind):
    name = "%s%s-%s" % (prefix, backend, kind)
    if services()[name]["state"] == "stopped" and kind != "cold":
        one(0, backend, kind)  # booted once, to be paused or saved when idle
    for _ in range(6000):
        if services()[name]["state"] == rest[kind]:
            return True
        time.sleep(0.01)
    return False

own = {"cold": r"-%s-cold: ready in ([\d.]+) ms", "paused": r"-%s-paused: resumed in ([\d.]+) ms",
       "saved": r"-%s-saved: restored from suspend in ([\d.]+) ms"}
failed = 0
for backend in ("qemu", "libvirt"):
    for kind in ("cold", "paused", "saved"):
        times = []
        for i in range(runs):
            if not resting(backend, kind):
                failed += 1
                print("%-7s %-6s: not %s" % (backend, kind, rest[kind]))
                continue
            r = one(i + 1, backend, kind)
            if r is None:
                failed += 1
            else:
                times.append(r)
        d = [float(x) for x in re.findall(own[kind] % backend, open(log).read())]
        print("%-7s %-6s %2d runs  median %7.1f ms  p90 %7.1f ms  min %7.1f  max %7.1f"
              "   (beckond: median %7.1f ms, p90 %7.1f ms)" %
              (backend, kind, len(times), pct(times, .5), pct(times, .9),
               min(times or [float("nan")]), max(times or [float("nan")]), pct(d, .5), pct(d, .9)))
        print("%-7s %-6s all: %s" % (backend, kind, " ".join("%.0f" % t for t in times)))
lv = [float(x) for x in re.findall(r"-libvirt-cold: domain beckon-\S+ \(id \d+\) running \+([\d.]+) ms",
                                   open(log).read())]
print("libvirt alone: virDomainCreateXML (paused) + console + virDomainResume, on a worker: "
      "median %.1f ms, p90 %.1f ms, min %.1f, max %.1f (%d boots)" %
      (pct(lv, .5), pct(lv, .9), min(lv or [float("nan")]), max(lv or [float("nan")]), len(lv)))
sys.exit(1 if failed else 0)
EOF
bench_pylib "$T"

{
	bench_header bench_libvirt
	echo "# $(virsh -c "$LV_URI" version 2>/dev/null | grep -i 'running hypervisor\|library' | tr '\n' ';')"
	if kvm_usable; then
		echo "# accelerator: KVM (/dev/kvm opens)"
	else
		echo "# accelerator: TCG (no usable /dev/kvm): QEMU guests and libvirt domains type 'qemu'"
	fi
	echo "# bridge mode, hold none; DNS query sent -> first HTTP byte; kinds: cold boot,"
	echo "# from paused (resume), from a saved state (restore); idle_timeout 300ms between runs"
} >"$T/result"
status=0
conf
bench_start "$T/beckond.log"
python3 "$T/client.py" "$DNS_PORT" "$BECKONCTL" "$T/ctl.sock" "$T/beckond.log" "$RUNS" "$P-" \
	>>"$T/result" 2>&1 || status=1
bench_stop
echo "# load at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$T/result"
if [ -n "${KEEP_LOG:-}" ]; then cp "$T/beckond.log" "$KEEP_LOG"; fi
bench_publish "$T/result" "$OUT"
exit $status
