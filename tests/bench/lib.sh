# Shared by the benches that run the real daemon with QEMU guests
# (bench_cold.sh, bench_wake.sh, bench_density.sh; sourced, not run):
# paths, the checks before a run, starting and stopping beckond, the
# results file, and benchlib.py for their Python clients.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BECKOND=${BECKOND:-$ROOT/build/beckond}
BECKONCTL=${BECKONCTL:-$ROOT/build/beckonctl}
IMG=${GUEST_IMAGE:-$ROOT/build/hello.elf}
DPID=

# bench_check NAME: skip (exit 0) unless root, fail when a binary or the
# guest is missing; then sets DNS_PORT, a free UDP/TCP port on 127.0.0.1.
bench_check() {
	local f
	if [ "$(id -u)" != 0 ]; then
		echo "$1: skipped, needs root (bridge, taps)"
		exit 0
	fi
	for f in "$BECKOND" "$BECKONCTL" "$IMG"; do
		[ -e "$f" ] || { echo "$1: $f missing (run make)"; exit 1; }
	done
	DNS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
}

kvm_usable() { python3 -c 'import os; os.close(os.open("/dev/kvm", os.O_RDWR))' 2>/dev/null; }

# bench_cleanup MARK: at exit: beckond and the guests whose command line
# matches MARK killed, the bridge $BR and $T gone (copied to $BENCH_KEEP first,
# when set: its logs, to look at by hand).
bench_cleanup() {
	[ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
	for p in $(pgrep -f "$1"); do kill -9 "$p"; done
	ip link del "$BR" 2>/dev/null
	[ -n "${BENCH_KEEP:-}" ] && cp -a "$T" "$BENCH_KEEP"
	rm -rf "$T"
}

# bench_conf_head MODE: the global part of $T/beckon.conf, DNS on
# 127.0.0.1:$DNS_PORT, network MODE on the bridge $BR ($NET.0/24), hold none.
bench_conf_head() {
	cat <<EOF
state_dir = "$T/state";
control_socket = "$T/ctl.sock";
metrics_listen = "";
dns = { listen = ( "127.0.0.1:$DNS_PORT" ); zone = "svc.test";
        ns = ( { name = "ns1.svc.test"; address = "127.0.0.1"; } ); ttl = 30; };
network = { mode = "$1"; bridge = "$BR"; subnet = "$NET.0/24"; hold = "none"; };
EOF
}

# bench_start LOG: beckond -v on $T/beckon.conf, logging to LOG; sets DPID and
# waits (up to 5 s) until its control socket $T/ctl.sock answers.
bench_start() {
	"$BECKOND" -c "$T/beckon.conf" -v >"$1" 2>&1 &
	DPID=$!
	for _ in $(seq 250); do "$BECKONCTL" -s "$T/ctl.sock" status >/dev/null 2>&1 && break; sleep 0.02; done
}

# bench_stop: SIGTERM to beckond, and wait for it.
bench_stop() {
	kill -TERM "$DPID"
	wait "$DPID"
	DPID=
}

# bench_header NAME: the first two lines of a result: when, where, what.
bench_header() {
	echo "# $1 $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "# $(qemu-system-x86_64 --version | head -1); beckond $BECKOND; $RUNS runs each"
}

# bench_publish FILE OUT: FILE becomes the result OUT, printed.
bench_publish() {
	mkdir -p "$(dirname "$2")"
	cp "$1" "$2"
	cat "$2"
	echo "written to ${2#"$ROOT"/}"
}

# bench_pylib DIR: DIR/benchlib.py, for a client script in DIR to import.
bench_pylib() {
	cat >"$1/benchlib.py" <<'EOF'
import socket, struct

def query(qid, name):
    """A DNS query for the A record of NAME."""
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for part in name.encode().split(b"."):
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

def pct(v, q):
    """The Q quantile of V (nearest rank), nan when V is empty."""
    v = sorted(v)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))] if v else float("nan")
EOF
}
