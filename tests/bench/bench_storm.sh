#!/usr/bin/env bash
# bench_storm.sh: a boot storm. STORM_N (default 200) distinct hello
# services, all stopped, are queried at once (one DNS query each, from one
# client, hold "none": the answer waits for the guest), and each client
# then GETs its page: the time until every one serves, and the median.
# Meanwhile a name that is ready already is queried every 20 ms: the
# latency of its answers (p50, p99, max, timeouts at 2 s), which must not
# wait behind the boots (and for comparison, in the 5 s before the storm);
# the probe runs at beckond's nice value and slice (at its DNS thread's
# realtime priority when that has one), so that the figure is beckond's
# and not the wait of a client on this busy host for a CPU (the probe's
# own wakeup is shown apart: the kernel's stamp on the answer);
# and beckond's own CPU time over the storm. Runs
# (STORM_RUNS, default "off defaults nolimit"):
#   off      boot rate limits off (boot_rate rate and client_rate 0)
#   defaults the default boot rate limits (50/s burst 100; 10/s burst 20 a
#            client): a query refused (SERVFAIL) is asked again after
#            250 ms, as a resolver would
#   nolimit  rate limits off and max_booting = 0: every boot at once (the
#            old behaviour, with the fork-free spawn and the nice value)
#   slotsK   rate limits off and max_booting = K
# STORM_BASE=path/to/an/older/beckond adds a run "base" of that binary
# (rate limits off; no max_booting or nice key). Bridge mode, the real
# daemon (build/beckond), accel STORM_ACCEL (default auto: KVM when
# /dev/kvm opens, which this machine lacks). Results:
# tests/bench/results/storm-<date>.txt.
. "$(dirname "$0")/lib.sh"
N=${STORM_N:-200}
ACCEL=${STORM_ACCEL:-auto}
SCENARIOS=${STORM_RUNS:-off defaults nolimit}
[ -n "${STORM_BASE:-}" ] && SCENARIOS="$SCENARIOS base"
RUNS=1
OUT=$ROOT/tests/bench/results/storm-$(date +%Y-%m-%d).txt
T=$(mktemp -d /tmp/bkt-storm.XXXXXX)
NET=10.85.$((RANDOM % 250 + 1))
BR=bkst$$
S=$$
MARK="guest=beckon:(s[0-9]+|ready)-$S,"
storm_cleanup() {
	local l
	[ -n "${STORM_KEEP:-}" ] && mkdir -p "$STORM_KEEP" && cp "$T"/beckond-*.log "$STORM_KEEP"/
	[ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
	for p in $(pgrep -f "$MARK"); do kill -9 "$p"; done
	sleep 0.5
	for l in $(ip -o link show | grep -E "alias beckon:(s[0-9]+|ready)-$S( |$)" | awk -F': ' '{print $2}' | cut -d@ -f1); do
		ip link del "$l" 2>/dev/null
	done
	bench_cleanup "$MARK"
}
trap storm_cleanup EXIT
trap 'exit 1' INT TERM

bench_check bench_storm
[ "$N" -le 240 ] || { echo "bench_storm: STORM_N is at most 240 (one /24)"; exit 1; }
METRICS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

# storm_conf SCENARIO: the config, the ready name first.
storm_conf() {
	bench_conf_head bridge | sed "s|^metrics_listen = .*|metrics_listen = \"127.0.0.1:$METRICS_PORT\";|"
	case $1 in
	off | base) echo 'boot_rate = { rate = 0; client_rate = 0; };' ;;
	nolimit) echo 'boot_rate = { rate = 0; client_rate = 0; }; max_booting = 0;' ;;
	slots*) echo "boot_rate = { rate = 0; client_rate = 0; }; max_booting = ${1#slots};" ;;
	esac
	cat <<EOF
defaults = { image = "$IMG"; cmdline = "ip={address}/{prefix} gw={gateway} name={name} port={port}";
             ready = "http:/healthz"; boot_timeout = "120s"; idle_timeout = "10m"; qemu = { accel = "$ACCEL"; }; };
services = (
  { name = "ready-$S"; dns = ( "ready.svc.test" ); address = "$NET.2"; ports = ( 80 ); },
EOF
	for i in $(seq 1 "$N"); do
		echo "  { name = \"s$i-$S\"; dns = ( \"s$i.svc.test\" ); address = \"$NET.$((i + 2))\"; ports = ( 80 ); },"
	done
	echo ");"
}

bench_pylib "$T"
cat >"$T/storm.py" <<'EOF'
# storm PORT N SUFFIX: N names at once (query, then GET; a SERVFAIL asked
# again after 250 ms). probe PORT STOPFILE: the ready name every 20 ms
# until STOPFILE exists; its latencies.
import os, socket, struct, sys, threading, time, urllib.request
from benchlib import query, answer_ip, pct
DEADLINE = 180

def ask(port, name, qid, timeout):
    return ask_stamped(port, name, qid, timeout)[0]

def storm(port, n, suffix):
    served, refused, failed = {}, [0], []
    start = time.monotonic()
    def one(i):
        name = "s%d.svc.test" % i
        while time.monotonic() - start < DEADLINE:
            try:
                ip = answer_ip(ask(port, name, i, 120))
            except OSError:
                ip = None
            if ip is None:
                refused[0] += 1
                time.sleep(0.25)
                continue
            try:
                body = urllib.request.urlopen("http://%s/" % ip, timeout=60).read().decode()
            except OSError as e:
                body = str(e)
            if body.startswith("hello from s%d-%s " % (i, suffix)):
                served[i] = time.monotonic() - start
            else:
                failed.append("%s: %s" % (name, body[:60]))
            return
        failed.append("%s: not served in %d s" % (name, DEADLINE))
    ts = [threading.Thread(target=one, args=(i,)) for i in range(1, n + 1)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    t = sorted(served.values())
    print("served %d of %d; all served in %.1f s; median %.1f s; SERVFAIL (asked again) %d"
          % (len(t), n, t[-1] if t else float("nan"), pct(t, 0.5), refused[0]))
    for f in failed[:5]:
        print("failed:", f)

def probe_slice():
    """beckond's slice too (EEVDF custom slices), where the kernel has them;
    nothing when the probe runs at the DNS thread's realtime priority."""
    import ctypes, struct
    if os.sched_getscheduler(0) == os.SCHED_FIFO:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    nice = os.getpriority(os.PRIO_PROCESS, 0)
    attr = struct.pack("IIQiIQQQ", 48, 0, 0, nice, 0, 100000, 0, 0)
    libc.syscall(314, 0, ctypes.c_char_p(attr), 0)  # sched_setattr

def ask_stamped(port, name, qid, timeout):
    """ask, with the time the answer reached the probe's socket (the kernel's
    stamp): what the probe took to wake for it is not the server's."""
    t0 = time.time()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.settimeout(timeout)
    try:
        s.sendto(query(qid, name), ("127.0.0.1", port))
        data, anc, _, _ = s.recvmsg(4096, 64)
        t2 = time.time()
        t1 = t2
        for level, kind, val in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(val) >= 16:
                sec, nsec = struct.unpack("qq", val[:16])
                t1 = sec + nsec / 1e9
        return data, t0, t1, t2
    finally:
        s.close()

SO_TIMESTAMPNS = 35

def probe(port, stop, go):
    lat, timeouts, qid = {False: [], True: []}, {False: 0, True: 0}, 0
    arrive, wake = {False: [], True: []}, {False: [], True: []}
    probe_slice()
    while not os.path.exists(stop):
        qid = (qid + 1) & 0xffff
        storm = os.path.exists(go)
        try:
            data, t0, t1, t2 = ask_stamped(port, "ready.svc.test", qid, 2)
            ok = answer_ip(data) is not None
        except OSError:
            ok = False
        if ok:
            lat[storm].append((t2 - t0) * 1000)
            arrive[storm].append((t1 - t0) * 1000)
            wake[storm].append((t2 - t1) * 1000)
        else:
            timeouts[storm] += 1
        time.sleep(0.02)
    for storm, what in ((True, "during the storm"), (False, "just before it")):
        l = lat[storm]
        print("ready name %s: %d answers, p50 %.2f ms, p99 %.2f ms, max %.1f ms, timeouts (2 s) %d"
              % (what, len(l), pct(l, 0.5), pct(l, 0.99), max(l or [0]), timeouts[storm]))
        a, w = arrive[storm], wake[storm]
        print("  of which: query sent -> answer in the probe's socket p50 %.2f p99 %.2f max %.1f ms;"
              " the probe waking for it p50 %.2f p99 %.2f max %.1f ms"
              % (pct(a, 0.5), pct(a, 0.99), max(a or [0]), pct(w, 0.5), pct(w, 0.99), max(w or [0])))

if sys.argv[1] == "storm":
    storm(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
else:
    probe(int(sys.argv[2]), sys.argv[3], sys.argv[4])
EOF

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
metric() { curl -s --max-time 10 "http://127.0.0.1:$METRICS_PORT/metrics" | sed -n "s/^$1 //p"; }

storm_run() {
	local sc=$1 bin=$BECKOND c0 c1 t0 t1 peak
	[ "$sc" = base ] && bin=$STORM_BASE
	storm_conf "$sc" | sed -z 's/},\n);/}\n);/' >"$T/beckon.conf"
	"$bin" -n -c "$T/beckon.conf" | grep -qx 'configuration OK' || { echo "bench_storm: bad config ($sc)"; exit 1; }
	BECKOND=$bin bench_start "$T/beckond-$sc.log"
	dig @127.0.0.1 -p "$DNS_PORT" +time=60 +tries=1 +short ready.svc.test A >/dev/null
	# The probe at beckond's own nice (and slice, in the probe), or at its DNS
	# thread's realtime priority when that thread has one.
	rm -f "$T/stop" "$T/go"
	local rt="" tid
	tid=$(grep -lx beckond-dns /proc/"$DPID"/task/*/comm 2>/dev/null | head -1 | cut -d/ -f5)
	[ -n "$tid" ] && chrt -p "$tid" | grep -q SCHED_FIFO && rt="chrt -f 1"
	PROBE_SCHED=${rt:-"nice and slice of beckond"}
	(cd "$T" && exec nice -n $(($(awk '{print $19}' "/proc/$DPID/stat") - $(awk '{print $19}' /proc/self/stat))) $rt python3 storm.py probe "$DNS_PORT" "$T/stop" "$T/go") >"$T/probe-$sc" &
	local probe=$!
	sleep 5 # the latency before the storm, for comparison
	touch "$T/go"
	c0=$(cpu_ticks "$DPID")
	t0=$(date +%s%N)
	(cd "$T" && python3 storm.py storm "$DNS_PORT" "$N" "$S") >"$T/out-$sc"
	t1=$(date +%s%N)
	c1=$(cpu_ticks "$DPID")
	touch "$T/stop"
	wait "$probe"
	cat "$T/probe-$sc" >>"$T/out-$sc"
	peak=$(metric beckon_boots_running_peak)
	{
		echo "== $sc: $(case $sc in off) echo "rate limits off, max_booting default";;
			defaults) echo "default rate limits, max_booting default";;
			nolimit) echo "rate limits off, max_booting = 0 (no limit)";;
			slots*) echo "rate limits off, max_booting = ${sc#slots}";;
			base) echo "rate limits off, $STORM_BASE";; esac)"
		cat "$T/out-$sc"
		awk -v c="$((c1 - c0))" -v hz="$(getconf CLK_TCK)" -v ns="$((t1 - t0))" \
			'BEGIN { printf "beckond CPU over the storm: %.2f s in %.1f s (%.1f %% of one CPU)\n", c / hz, ns / 1e9, 100 * c / hz / (ns / 1e9) }'
		echo "the probe ran at: $PROBE_SCHED"
		echo "boots running at once, at most: ${peak:-?} (beckon_boots_running_peak; max_booting $(metric beckon_boot_slots)); load after: $(cut -d' ' -f1-3 /proc/loadavg)"
	} >>"$T/result"
	bench_stop
	for p in $(pgrep -f "$MARK"); do kill -9 "$p"; done
}

: >"$T/result"
for sc in $SCENARIOS; do
	storm_run "$sc"
done
{
	bench_header bench_storm
	echo "# accel $ACCEL; $N hello guests (16M) queried at once, bridge mode, hold none; a ready name queried every 20 ms"
	cat "$T/result"
} >"$T/out"
bench_publish "$T/out" "$OUT"
! grep -q "^failed:" "$T/result"
