#!/bin/sh
# The Xen benchmark, run inside the lab's dom0 (`make bench-xen`): DNS
# query -> first HTTP byte of the lab's test guest (a PVH Linux with a
# busybox initramfs) through beckond's Xen backend, RUNS runs each, for:
#   cold    on_idle "destroy": libxl creates and boots the domain
#   paused  on_idle "pause": libxl_domain_unpause
#   saved   on_idle "suspend": libxl restores the saved domain
#   shell   warm "shell": the domain was created paused; a wake unpauses it
# and, in the same run, beside them:
#   xl      `xl create` of the same guest (same kernel, initramfs, command
#           line, memory, vif), timed until its page is served: what a
#           user would get by hand, without beckon.
# Lines "# bench ..." reach the host over the serial console (lab.sh
# collects them). Under two layers of emulation the absolute times mean
# little; the ratio of beckon's cold start to xl's is the figure.
L=/lab
B=/lab/bin
T=/tmp/beckon-xen-bench
RUNS=${RUNS:-10}
DNS="-p 5353 @127.0.0.1"
mkdir -p $T
say() { echo "# bench $*"; }
wait_for() {
	end=$(($(date +%s) + $1))
	shift
	while [ "$(date +%s)" -lt "$end" ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	return 1
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
state_is() { $B/beckonctl -s $T/ctl.sock list | awk -v n="$1" -v s="$2" '$1 == n && $2 == s { f = 1 } END { exit !f }'; }
shell_ready() { state_is shell stopped && xl list beckon-shell 2>/dev/null | awk 'NR == 2 && $5 ~ /p/ { f = 1 } END { exit !f }'; }
# median and p90 of the numbers in FILE (one a line), in ms.
stats() { sort -n "$1" | awk '{ v[NR] = $1 } END { if (NR == 0) { print "no runs"; exit } p = int(NR * 0.9 + 0.999); if (p > NR) p = NR; printf "median %d ms, p90 %d ms, min %d, max %d (n=%d)", v[int((NR + 1) / 2)], v[p], v[1], v[NR], NR }'; }
median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] + 0 }'; }

cat >$T/beckon.conf <<CONF
state_dir = "$T/state";
control_socket = "$T/ctl.sock";
metrics_listen = "";
boot_rate = { rate = 0; client_rate = 0; };
dns = { listen = ( "127.0.0.1:5353" ); zone = "svc.test"; ttl = 1;
  ns = ( { name = "ns1.svc.test"; address = "127.0.0.1"; } ); };
network = { mode = "bridge"; bridge = "beckon0"; subnet = "10.77.0.0/24"; hold = "none"; };
defaults = {
  backend = "xen"; memory = "128M"; vcpus = 1; boot_timeout = "900s"; ready = "http:/";
  image = "$L/vmlinuz"; ports = ( 80 ); idle_timeout = "3s"; xen = { cfg = "$L/pvh.cfg"; };
};
services = (
  { name = "cold"; dns = ( "cold.svc.test" ); address = "10.77.0.2"; on_idle = "destroy"; },
  { name = "paused"; dns = ( "paused.svc.test" ); address = "10.77.0.3"; on_idle = "pause"; },
  { name = "saved"; dns = ( "saved.svc.test" ); address = "10.77.0.4"; on_idle = "suspend"; },
  { name = "shell"; dns = ( "shell.svc.test" ); address = "10.77.0.5"; on_idle = "destroy"; warm = "shell"; }
);
CONF
$B/beckond -c $T/beckon.conf >$T/beckond.log 2>&1 &
PID=$!
wait_for 60 test -S $T/ctl.sock || { say "beckond did not start"; tail -20 $T/beckond.log; exit 1; }

# One run: query, then the first byte; its time in ms on stdout, nothing on failure.
one() {
	t0=$(now_ms)
	a=$(dig $DNS +time=900 +tries=1 +short "$1.svc.test" A)
	[ "$a" = "$2" ] || return 1
	curl -s -m 60 -o /dev/null "http://$2/" || return 1
	echo $(($(now_ms) - t0))
}

# bench KIND ADDRESS RESTING...: RUNS runs, each from the resting state.
bench() {
	k=$1 a=$2
	shift 2
	: >$T/$k.ms
	for i in $(seq "$RUNS"); do
		if [ "$i" -gt 1 ] && ! wait_for 900 "$@"; then
			say "$k: run $i: not back in its resting state"
			break
		fi
		one "$k" "$a" >>$T/$k.ms || say "$k: run $i failed"
	done
	say "$k: $(stats $T/$k.ms)"
}

# The first query of each warms what is shared (page cache, xenstore).
one cold 10.77.0.2 >/dev/null
wait_for 900 state_is cold stopped
bench cold 10.77.0.2 state_is cold stopped
one paused 10.77.0.3 >/dev/null
wait_for 900 state_is paused paused
bench paused 10.77.0.3 state_is paused paused
one saved 10.77.0.4 >/dev/null
wait_for 900 state_is saved suspended
bench saved 10.77.0.4 state_is saved suspended
wait_for 900 shell_ready
bench shell 10.77.0.5 shell_ready
kill -TERM $PID
wait_for 120 sh -c "! kill -0 $PID"

# xl create by hand: the same guest, timed until its page is served.
cat >$T/raw.cfg <<CFG
name = "bench-raw"
type = "pvh"
kernel = "$L/vmlinuz"
ramdisk = "$L/guest.cpio"
extra = "console=hvc0 quiet ip=10.77.0.9/24 gw=10.77.0.1 name=raw port=80"
memory = 128
vcpus = 1
vif = [ "bridge=beckon0" ]
CFG
ip link add beckon0 type bridge 2>/dev/null
ip addr add 10.77.0.1/24 dev beckon0 2>/dev/null
ip link set beckon0 up
: >$T/xl.ms
for i in $(seq "$RUNS"); do
	t0=$(now_ms)
	xl create -q $T/raw.cfg >/dev/null 2>&1 || { say "xl: run $i: xl create failed"; continue; }
	if wait_for 900 curl -s -m 5 -o /dev/null http://10.77.0.9/; then
		echo $(($(now_ms) - t0)) >>$T/xl.ms
	else
		say "xl: run $i: no page"
	fi
	xl destroy bench-raw >/dev/null 2>&1
	ip neigh flush dev beckon0 >/dev/null 2>&1
done
say "xl create + boot: $(stats $T/xl.ms)"
c=$(median $T/cold.ms) x=$(median $T/xl.ms)
[ "$x" -gt 0 ] && say "ratio: beckon cold / xl create + boot = $(awk -v c="$c" -v x="$x" 'BEGIN { printf "%.2f", c / x }') (goal <= 1.1)"
echo "# bench done"
