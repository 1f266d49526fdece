#!/usr/bin/env bash
# bench_template.sh: cold starts of the hello guest through the real daemon
# (build/beckond), QEMU backend, bridge mode, hold "none" (the DNS answer
# waits until the guest is ready): a client sends a DNS query for a stopped
# service, waits for the answer, connects and times the first byte of the
# HTTP answer; "beckonctl stop" between runs. Three configurations:
#   boot      template = "off": every cold start boots the guest
#   template  template = "auto": the first start boots and saves the
#             template (not counted), every later one restores it
#   tmplshell template = "auto", warm = "shell": after each stop a QEMU
#             waits (-incoming defer) to restore the template; a start
#             runs it (the client waits until the shell is up between runs);
#             it shares the state_dir, so its first start already finds the
#             template the "template" run left (a template outlives beckond)
# RUNS runs each (default 20): median, p10, p90, min and max of DNS query
# to first byte. Results go to tests/bench/results/template-<date>.txt.
# Fails when a run fails, or a template run did not restore the template.
. "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-20}
OUT=$ROOT/tests/bench/results/template-$(date +%Y-%m-%d).txt
T=$(mktemp -d /tmp/bkt-tmpl.XXXXXX)
X=$((RANDOM % 250 + 1))
NET=10.78.$X
BR=bkt$$

trap 'bench_cleanup "guest=beckon:bt$$-"' EXIT
trap 'exit 1' INT TERM

bench_check bench_template

# conf ACCEL TEMPLATE WARM: one service, bt<pid>-www.
conf() {
	{
		bench_conf_head bridge
		cat <<EOF
services = ( { name = "bt$$-www"; dns = ( "www.svc.test" ); address = "$NET.2"; ports = ( 80 );
               image = "$IMG"; ready = "tcp"; template = "$2"; warm = "$3";
               cmdline = "ip={address}/{prefix} gw={gateway} name={name} port={port}"; boot_timeout = "30s";
               qemu = { accel = "$1"; }; } );
EOF
	} >"$T/beckon.conf"
}

cat >"$T/client.py" <<'EOF'
import json, re, socket, subprocess, sys, time
from benchlib import query, answer_ip, pct

port, ctl, sock, log, runs, svc, label, skip = sys.argv[1:9]
port, runs, skip = int(port), int(runs), int(skip)

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
    time.sleep(0.05)

s = sorted(total)
print("%-10s %d runs, %d failed, started: %s" % (label, runs, failed,
      ", ".join("%s %d" % kv for kv in sorted(hows.items()))))
print("%-10s DNS query -> first byte: median %6.1f ms  p10 %6.1f  p90 %6.1f  min %6.1f  max %6.1f" %
      (label, pct(s, .5), pct(s, .1), pct(s, .9), s[0] if s else 0, s[-1] if s else 0))
print("%-10s all: %s" % (label, " ".join("%.0f" % t for t in total)))
want = "boot" if label == "boot" else "template"
sys.exit(1 if failed or not total or hows.get(want, 0) != runs else 0)
EOF
bench_pylib "$T"

# bench ACCEL TEMPLATE WARM LABEL SKIP
bench() {
	local log=$T/beckond-$4.log
	conf "$1" "$2" "$3"
	bench_start "$log"
	python3 "$T/client.py" "$DNS_PORT" "$BECKONCTL" "$T/ctl.sock" "$log" "$RUNS" "bt$$-www" \
		"$4" "$5" >>"$T/result" 2>&1 || { status=1; cp "$log" "${KEEP_LOG:-/dev/null}" 2>/dev/null; }
	grep -E "template saved in|restored from its template in" "$log" | head -3 | sed 's/^/#   /' >>"$T/result"
	bench_stop
}

accel=tcg
kvm_usable && accel=kvm
{
	bench_header bench_template
	echo "# bridge mode, hold none, ready tcp, microvm, accel $accel"
	echo "# (a shared, loaded 2-core machine: other engineers' tests run beside it)"
} >"$T/result"
status=0
bench "$accel" off none boot 0
bench "$accel" auto none template 1
bench "$accel" auto shell tmplshell 1
bench_publish "$T/result" "$OUT"
exit $status
