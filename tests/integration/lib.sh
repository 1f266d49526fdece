# Shared by the integration tests: checks, a scratch directory, cleanup on
# exit, and starting and stopping a real beckond.
# Each check prints "ok - ...", "not ok - ..." or "skip - ...".
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BECKOND=${BECKOND:-$ROOT/build/asan/beckond}
BECKONCTL=${BECKONCTL:-$ROOT/build/beckonctl}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-print_suppressions=0}
T=$(mktemp -d /tmp/beckon-test.XXXXXX)
FAILED=0
_CLEANUP=()

ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; FAILED=1; }
skip() { echo "skip - $*"; }

# check DESC CMD...: ok when CMD succeeds. A failure shows beckond's last
# words at that moment (the log's end at exit is often another story).
check() {
	local desc=$1
	shift
	if "$@"; then
		ok "$desc"
		return
	fi
	not_ok "$desc"
	[ -n "${DLOG:-}" ] && [ -f "$DLOG" ] && tail -n 12 "$DLOG" | cut -c1-200 | sed 's/^/#   then: /'
	true
}

# on_exit CMD: run CMD (a string) at exit, last registered first.
on_exit() { _CLEANUP=("$1" "${_CLEANUP[@]}"); }

# on_exit_proxy_bridge BR LO: what a bridge-mode proxy test leaves if beckond
# does not end cleanly: the bridge BR, its conntrack counting rule, its nat
# chains (IPv4 and IPv6), and the tests/fixtures/httpsrv.py servers on LO's /24.
on_exit_proxy_bridge() {
	on_exit "ip link del $1"
	on_exit "while iptables -w -D FORWARD -m conntrack --ctstate ESTABLISHED -m comment --comment 'beckon-ct $1'; do :; done"
	on_exit "for p in \$(pgrep -f 'httpsrv.py $2\\.'); do kill -9 \$p; done"
	local ipt
	for ipt in iptables ip6tables; do
		on_exit "while $ipt -w -t nat -D PREROUTING -j BECKON-PROXY-$1; do :; done; while $ipt -w -t nat -D OUTPUT -j BECKON-PROXY-$1; do :; done; $ipt -w -t nat -F BECKON-PROXY-$1; $ipt -w -t nat -X BECKON-PROXY-$1"
	done
}
# When a check failed: the end of each log the test kept (beckond's, a
# libvirtd's), for what the check alone does not say.
_show_logs() {
	local f
	for f in "$T"/beckond*.log "$T"/lv*/libvirtd.log; do
		[ -s "$f" ] || continue
		echo "# the end of ${f#"$T"/}:"
		tail -n 15 "$f" | sed 's/^/#   /'
	done
}
_run_cleanup() {
	local c
	[ "$FAILED" = 0 ] || _show_logs
	for c in "${_CLEANUP[@]}"; do eval "$c" >/dev/null 2>&1; done
	# KEEP_T=1: keep the scratch directory (the daemon's log) to look at.
	if [ -n "${KEEP_T:-}" ]; then echo "# kept $T"; else rm -rf "$T"; fi
}
trap _run_cleanup EXIT
trap 'exit 130' INT TERM

# No foreground command may hang a test: beckonctl waits on the daemon with
# no deadline of its own, and curl has none unless given --max-time. A
# wedged daemon then fails a check instead.
printf '#!/bin/sh\nexec timeout -k 5 60 "%s" "$@"\n' "$BECKONCTL" >"$T/beckonctl"
chmod +x "$T/beckonctl"
BECKONCTL=$T/beckonctl
echo 'max-time = 60' >"$T/.curlrc"
export CURL_HOME=$T

finish() { exit "$FAILED"; }

need_root() {
	if [ "$(id -u)" -ne 0 ]; then skip "$1: needs root"; exit 0; fi
}

# A TCP and UDP port no socket uses, below the kernel's ephemeral range (a
# port from that range can be taken by any outgoing connection meanwhile).
free_port() {
	local p low
	read -r low _ </proc/sys/net/ipv4/ip_local_port_range
	[ "$low" -gt 11024 ] || low=32768
	while :; do
		p=$((10000 + RANDOM % (low - 10000)))
		ss -Htuan "sport = :$p" | grep -q . || { echo "$p"; return; }
	done
}

# fresh_net PREFIX: PREFIX.N (a /24 for a test's addresses), N picked so that
# no conntrack entry names it: an entry an earlier run left (a client gone
# without a close stays ESTABLISHED for five days) would count as an open
# connection to this run's guests. Nor may an address on the host: another
# test run on this machine may be using NET right now.
fresh_net() {
	local net
	for _ in $(seq 50); do
		net=$1.$((RANDOM % 200 + 20))
		grep -q "=$net\." /proc/net/nf_conntrack 2>/dev/null && continue
		ip -o -4 addr show | grep -q " $net\." || break
	done
	echo "$net"
}

# wait_for SECONDS CMD...: poll CMD every 20 ms until it succeeds.
# beckon_taps PREFIX: the taps beckon made for services whose names start
# with PREFIX, found by their alias "beckon:SERVICE" (a tap's name is a hash
# and at most 9 characters of the service's name). beckon_tap SERVICE: one.
beckon_taps() {
	ip -o link show | awk -v p="beckon:$1" -v exact="${2:-}" '{
		for (i = 1; i < NF; i++)
			if ($i == "alias" && (exact ? $(i + 1) == p : index($(i + 1), p) == 1)) {
				n = $2; sub(/:$/, "", n); sub(/@.*/, "", n); print n
			}
	}'
}
beckon_tap() { beckon_taps "$1" exact | head -1; }

wait_for() {
	local deadline=$(($(date +%s%N) + $1 * 1000000000))
	shift
	while [ "$(date +%s%N)" -lt "$deadline" ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.02
	done
	return 1
}

# start_daemon CONF [LOG]: start beckond in the background, wait until its
# control socket answers. Sets DPID. Returns 1 when it did not come up.
start_daemon() {
	local conf=$1
	DLOG=${2:-$T/beckond.log}
	DSOCK=$(sed -n 's/^ *control_socket *= *"\(.*\)".*/\1/p' "$conf" | head -1)
	"$BECKOND" -c "$conf" -v >>"$DLOG" 2>&1 &
	DPID=$!
	on_exit "kill -9 $DPID"
	# Generous: ASan and a busy machine slow the start a lot.
	if ! wait_for 30 "$BECKONCTL" -s "$DSOCK" status; then
		echo "# beckond did not come up; log:"
		sed 's/^/# /' "$DLOG" | tail -20
		return 1
	fi
}

# stop_daemon: SIGTERM, wait for the exit; fails when it does not exit in
# 30 s (LeakSanitizer's scan at exit is slow on a busy machine), exits
# non-zero, or a sanitizer reported anything.
stop_daemon() {
	kill -TERM "$DPID" 2>/dev/null || return 1
	wait_daemon
}

# wait_daemon: after a SIGTERM, stop_daemon's wait and checks.
wait_daemon() {
	local rc
	wait_for 30 bash -c "! kill -0 $DPID"
	if kill -0 "$DPID" 2>/dev/null; then
		echo "# beckond did not exit on SIGTERM"
		return 1
	fi
	wait "$DPID"
	rc=$?
	sanitizer_clean "$DLOG" || return 1
	return $rc
}

# sanitizer_clean LOG: no ASan/UBSan/LSan report in LOG.
sanitizer_clean() {
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$1"; then
		echo "# sanitizer report in $1:"
		grep -A20 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$1" | head -40 | sed 's/^/# /'
		return 1
	fi
}

# ctl ARGS...: beckonctl on the daemon start_daemon started.
ctl() { "$BECKONCTL" -s "$DSOCK" "$@"; }

# svc_field SERVICE KEY: KEY of SERVICE in "beckonctl --json list".
svc_field() {
	ctl --json list | python3 -c '
import json, sys
for s in json.load(sys.stdin)["services"]:
    if s["name"] == sys.argv[1]:
        print(s[sys.argv[2]])' "$1" "$2"
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# dq ARGS...: dig against the daemon's first listen address, short timeouts.
# A cold boot on a loaded machine can take a while: 30 s before dig gives up.
dq() { dig @127.0.0.1 -p "$DNS_PORT" +time=30 +tries=1 "$@"; }

# A busybox httpd docroot with an index naming WHO.
make_docroot() {
	mkdir -p "$T/www-$1"
	echo "hello from $1" >"$T/www-$1/index.html"
	echo "$T/www-$1"
}

# base_conf FILE: write the global part of a config (state under $T), with
# DNS on 127.0.0.1:$DNS_PORT; services follow from the caller.
base_conf() {
	cat >"$1" <<CONF
state_dir = "$T/state";
control_socket = "$T/ctl.sock";
metrics_listen = "";
dns = {
  listen = ( "127.0.0.1:$DNS_PORT" );
  zone = "svc.test";
  ns = ( { name = "ns1.svc.test"; address = "127.0.0.1"; } );
  ttl = 30;
};
network = { mode = "user"; hold = "none"; };
CONF
}

# add_services FILE: append "services = ( ... );" to FILE, the entries read
# from stdin, each ending in "},": the last comma goes (libconfig wants none).
add_services() {
	{
		echo "services = ("
		sed -z 's/},\n$/}\n/'
		echo ");"
	} >>"$1"
}

# A test bridge and a client routed through the host (needs root): the
# client's connections to addresses behind the bridge cross FORWARD, as a
# remote client's would. Forwarding is enabled on these links only; all
# goes at exit.
# bridge_up BRIDGE NET: BRIDGE holding NET.1/24.
bridge_up() {
	on_exit "ip link del $1"
	ip link add "$1" type bridge || return 1
	ip addr add "$2.1/24" dev "$1" && ip link set "$1" up || return 1
	sysctl -qw "net.ipv4.conf.$1.forwarding=1"
}

# client_up NS VETH NET: namespace NS at NET.2/30, its default route via
# NET.1 on the host's end VETH.
client_up() {
	on_exit "ip netns del $1"
	on_exit "ip link del $2"
	ip netns add "$1" || return 1
	ip link add "$2" type veth peer name eth0 netns "$1" || return 1
	ip addr add "$3.1/30" dev "$2" && ip link set "$2" up || return 1
	sysctl -qw "net.ipv4.conf.$2.forwarding=1"
	ip -n "$1" addr add "$3.2/30" dev eth0 && ip -n "$1" link set eth0 up &&
		ip -n "$1" link set lo up || return 1
	ip -n "$1" route add default via "$3.1"
}
