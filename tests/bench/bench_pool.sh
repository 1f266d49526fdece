#!/usr/bin/env bash
# bench_pool.sh: cold starts of the hello guest through the real daemon
# (build/beckond), QEMU backend, bridge mode, hold "none" (the DNS answer
# waits until the guest is ready): a client sends a DNS query, waits for
# the answer, connects and times the first byte of the HTTP answer;
# "beckonctl stop" between runs (but for "running"). Four configurations:
#   boot      template = "off": every cold start boots the guest
#   pool      template = "auto", pool = { size = 2; }: the first start boots
#             and saves the template (not counted); every later one takes a
#             pool VMM (the client waits until the pool has 2 idle between
#             runs) and restores the template into it
#   shell     template = "auto", warm = "shell": a QEMU of the service's own
#             waits (-incoming defer) to restore the template
#   running   the guest is up: no stop between runs (DNS answer, connect,
#             first byte)
# RUNS runs each (default 30): median, p10, p90, min and max of DNS query to
# first byte; and the memory of an idle pool VMM (PSS and RSS from
# /proc/PID/smaps_rollup). Results go to tests/bench/results/pool-<date>.txt.
# POOL_ACCEL: tcg or kvm (default: KVM when /dev/kvm opens, else TCG).
# Fails when a run fails, or a run did not start the way its label says.
. "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-30}
OUT=$ROOT/tests/bench/results/pool-$(date +%Y-%m-%d).txt
T=$(mktemp -d /tmp/bkt-pool.XXXXXX)
X=$((RANDOM % 250 + 1))
NET=10.79.$X
BR=bkp$$
METRICS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

# Pool VMMs carry no service's name: beckond's children named ~poolN.
pool_pids() { [ -n "$DPID" ] && pgrep -P "$DPID" -f "guest=beckon:~pool"; }
trap 'for p in $(pool_pids); do kill -9 $p; done; bench_cleanup "guest=beckon:bp$$-"' EXIT
trap 'exit 1' INT TERM

bench_check bench_pool

# conf ACCEL TEMPLATE WARM POOL: one service, bp<pid>-www.
conf() {
	{
		bench_conf_head bridge | sed "s|^metrics_listen = .*|metrics_listen = \"127.0.0.1:$METRICS_PORT\";|"
		echo "pool = { size = $4; };"
		cat <<EOF
services = ( { name = "bp$$-www"; dns = ( "www.svc.test" ); address = "$NET.2"; ports = ( 80 );
               image = "$IMG"; ready = "tcp"; template = "$2"; warm = "$3";
               cmdline = "ip={address}/{prefix} gw={gateway} name={name} port={port}"; boot_timeout = "30s";
               qemu = { accel = "$1"; }; } );
EOF
	} >"$T/beckon.conf"
}

cat >"$T/client.py" <<'EOF'
import json, re, socket, subprocess, sys, time
from benchlib import query, answer_ip, pct

import urllib.request
port, ctl, sock, log, runs, svc, label, skip, metrics = sys.argv[1:10]
port, runs, skip = int(port), int(runs), int(skip)

def pool_idle():
    body = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % metrics, timeout=10).read().decode()
    m = re.search(r'^beckon_pool_vmms\{state="idle"\} (\d+)$', body, re.M)
    return int(m.group(1)) if m else 0

def wait_pool():
    for _ in range(6000):
        if label != "pool" or pool_idle() >= 2:
            return
        time.sleep(0.01)
    raise SystemExit("the pool did not refill")

def state():
    out = subprocess.run([ctl, "-s", sock, "--json", "list"], capture_output=True, text=True)
    for s in json.loads(out.stdout)["services"]:
        if s["name"] == svc:
            return s["state"], s.get("started", ""), s.get("shell", False)

def one(qid):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(30)
    t0 = time.monotonic()
    u.sendto(query(qid, "www.svc.test"), ("127.0.0.1", port))
    msg, _ = u.recvfrom(4096)
    u.close()
    ip = answer_ip(msg)
    if ip is None:
        return None
    c = socket.create_connection((ip, 80), timeout=10)
    c.sendall(b"GET / HTTP/1.1\r\nHost: www\r\nConnection: close\r\n\r\n")
    first = c.recv(1)
    tbyte = time.monotonic()
    rest = first + c.recv(64)
    c.close()
    if not rest.startswith(b"HTTP/1.1 200"):
        return None
    return (tbyte - t0) * 1000

def stop():
    if label == "running":
        return
    subprocess.run([ctl, "-s", sock, "stop", svc], capture_output=True)
    for _ in range(3000):
        st = state()
        if st[0] in ("stopped", "failed") and (st[2] or "shell" not in label):
            return
        time.sleep(0.01)
    raise SystemExit("%s did not stop (or its warm shell did not come up)" % svc)

for _ in range(3000):  # a warm shell is made at start
    if "shell" not in label or state()[2]:
        break
    time.sleep(0.01)
total, failed, hows = [], 0, {}
for i in range(runs + skip):
    try:
        r = one(i + 1)
    except OSError as e:
        print("%-10s run %d: %s" % (label, i + 1, e))
        r = None
    how = state()[1]
    if i >= skip:
        hows[how] = hows.get(how, 0) + 1
        if r is None:
            failed += 1
        else:
            total.append(r)
    elif r is not None:
        print("%-10s first start (%s, not counted): %.1f ms" % (label, how, r))
    stop()
    wait_pool()
    time.sleep(0.05)

s = sorted(total)
print("%-10s %d runs, %d failed, started: %s" % (label, runs, failed,
      ", ".join("%s %d" % kv for kv in sorted(hows.items()))))
print("%-10s DNS query -> first byte: median %6.1f ms  p10 %6.1f  p90 %6.1f  min %6.1f  max %6.1f" %
      (label, pct(s, .5), pct(s, .1), pct(s, .9), s[0] if s else 0, s[-1] if s else 0))
print("%-10s all: %s" % (label, " ".join("%.0f" % t for t in total)))
want = {"boot": "boot", "pool": "pool", "shell": "template"}.get(label, "boot")
sys.exit(1 if failed or not total or hows.get(want, 0) != runs else 0)
EOF
bench_pylib "$T"

# pool_memory: PSS and RSS of each idle pool VMM.
pool_memory() {
	local p pss rss
	for p in $(pool_pids); do
		pss=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup")
		rss=$(awk '/^Rss:/ {print $2}' "/proc/$p/smaps_rollup")
		echo "pool       idle pool VMM pid $p: PSS $((pss / 1024)) MiB ($pss kB), RSS $((rss / 1024)) MiB"
	done >>"$T/result"
}

# bench ACCEL TEMPLATE WARM POOL LABEL SKIP
bench() {
	local log=$T/beckond-$5.log
	conf "$1" "$2" "$3" "$4"
	bench_start "$log"
	python3 "$T/client.py" "$DNS_PORT" "$BECKONCTL" "$T/ctl.sock" "$log" "$RUNS" "bp$$-www" \
		"$5" "$6" "$METRICS_PORT" >>"$T/result" 2>&1 || { status=1; cp "$log" "${KEEP_LOG:-/dev/null}" 2>/dev/null; }
	grep -E "template saved in|restored from its template" "$log" | head -3 | sed 's/^/#   /' >>"$T/result"
	[ "$5" = pool ] && pool_memory
	bench_stop
}

accel=${POOL_ACCEL:-}
if [ -z "$accel" ]; then
	accel=tcg
	kvm_usable && accel=kvm
fi
case $accel in tcg | kvm) ;; *) echo "bench_pool: POOL_ACCEL must be tcg or kvm" >&2; exit 2 ;; esac
{
	bench_header bench_pool
	echo "# bridge mode, hold none, ready tcp, microvm, 16M, accel $accel"
	echo "# (a shared, loaded 2-core machine: other engineers' tests run beside it)"
} >"$T/result"
status=0
bench "$accel" off none 0 boot 0
bench "$accel" auto none 2 pool 1
bench "$accel" auto shell 0 shell 1
bench "$accel" off none 0 running 1
echo "# load at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$T/result"
bench_publish "$T/result" "$OUT"
exit $status
