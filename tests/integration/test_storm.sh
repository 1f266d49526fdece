#!/usr/bin/env bash
# A boot storm through the real daemon: STORM_N (default 50) distinct hello
# services (QEMU, bridge mode, hold "none", boot rate limits off,
# max_booting = 3) queried at once with dig, then each serves its page
# (curl); meanwhile a name that is ready already keeps answering (dig every
# 50 ms, each within dig's normal timeout; latencies shown, not bounded);
# never more than 3 boots ran at once (the daemon's peak gauge, and the
# log's starts and ends counted apart from it) and the rest waited in line.
# Then how processes are started (no fork): a guest's QEMU and an exec
# service's process are in their own process group, stdin /dev/null, no fd
# of beckond's (the exec one has 0, 1 and 2 alone), every signal at its
# default and unblocked, the sweep's marker in their environment, and a
# nice value above beckond's own (beckond goes first).
# run.sh timeout: 900
. "$(dirname "$0")/lib.sh"

need_root "storm"
IMG=$ROOT/build/hello.elf
for tool in qemu-system-x86_64 curl dig ip python3; do
	command -v $tool >/dev/null || { not_ok "$tool is installed"; finish; }
done
[ -f "$IMG" ] || { not_ok "the hello guest is built ($IMG; make guest)"; finish; }
N=${STORM_N:-50}
SLOTS=3
DNS_PORT=$(free_port)
METRICS_PORT=$(free_port)
CONF=$T/beckon.conf
NET=$(fresh_net 10.84)
BR=bks$$
P=st$$
GUEST_MARK="guest=beckon:$P-"
on_exit "ip link del $BR"
on_exit "for p in \$(pgrep -f '$GUEST_MARK'); do kill -9 \$p; done"
on_exit "for p in \$(pgrep -f 'sleep 1007$$'); do kill -9 \$p; done"
on_exit "for l in \$(beckon_taps $P-); do ip link del \$l; done"

base_conf "$CONF"
sed -i "s|^network = .*|network = { mode = \"bridge\"; bridge = \"$BR\"; subnet = \"$NET.0/24\"; hold = \"none\"; };|; s|^metrics_listen = .*|metrics_listen = \"127.0.0.1:$METRICS_PORT\";|" "$CONF"
cat >>"$CONF" <<CONF
boot_rate = { rate = 0; client_rate = 0; };
max_booting = $SLOTS;
defaults = { image = "$IMG"; cmdline = "ip={address}/{prefix} gw={gateway} name={name} port={port}";
             ready = "http:/healthz"; boot_timeout = "300s"; idle_timeout = "10m"; };
CONF
{
	echo "  { name = \"$P-ready\"; dns = ( \"ready.svc.test\" ); address = \"$NET.2\"; ports = ( 80 ); },"
	echo "  { name = \"$P-x\"; dns = ( \"x.svc.test\" ); address = \"$NET.3\"; ports = ( 80 ); backend = \"exec\";"
	echo "    ready = \"delay:10ms\"; exec = { command = \"sleep 1007$$\"; }; },"
	for i in $(seq 1 "$N"); do
		echo "  { name = \"$P-s$i\"; dns = ( \"s$i.svc.test\" ); address = \"$NET.$((i + 9))\"; ports = ( 80 ); },"
	done
} | add_services "$CONF"

metric() { curl -s --max-time 10 "http://127.0.0.1:$METRICS_PORT/metrics" | sed -n "s/^$1 //p"; }
qemu_of() { pgrep -f "$GUEST_MARK$1,"; }
# page N: the body service sN serves, straight from the host (the bridge's address).
page() { curl -s --max-time 30 "http://$NET.$(($1 + 9))/"; }

start_daemon "$CONF" || { not_ok "beckond starts"; finish; }
ok "beckond starts with $N QEMU services, max_booting = $SLOTS, rate limits off"
ans=$(dq +short ready.svc.test A)
check "the ready name boots first ($ans)" [ "$ans" = "$NET.2" ]

# The ready name, every 50 ms until $T/stop: one line per query, "ms" or "timeout".
(
	while [ ! -e "$T/stop" ]; do
		out=$(dig @127.0.0.1 -p "$DNS_PORT" +time=2 +tries=1 ready.svc.test A 2>&1)
		if echo "$out" | grep -qE "^ready\.svc\.test\..*A[[:space:]]+$NET\.2$"; then
			echo "$out" | sed -n 's/^;; Query time: \([0-9]*\) msec.*/\1/p'
		else
			echo timeout
		fi
		sleep 0.05
	done
) >"$T/probe" &
PROBE=$!
on_exit "kill $PROBE"
sleep 0.5

# The storm: every name at once; hold "none": each answer waits for its guest.
t0=$(now_ms)
pids=
for i in $(seq 1 "$N"); do
	dig @127.0.0.1 -p "$DNS_PORT" +time=300 +tries=1 +short "s$i.svc.test" A >"$T/ans$i" 2>&1 &
	pids="$pids $!"
done
check "the line forms: boots wait for a slot" wait_for 60 bash -c "[ \"\$(curl -s --max-time 5 http://127.0.0.1:$METRICS_PORT/metrics | sed -n 's/^beckon_boot_queue //p')\" -gt 0 ] 2>/dev/null"
booting=$(ctl --json list | python3 -c 'import json,sys; print(sum(s["state"] == "booting" for s in json.load(sys.stdin)["services"]))')
running=$(metric beckon_boots_running)
check "beckonctl list shows the line as booting too ($booting booting), $running of them running (<= $SLOTS)" \
	bash -c "[ $booting -ge ${running:-99} ] && [ ${running:-99} -le $SLOTS ]"
wait $pids
t1=$(now_ms)
touch "$T/stop"
wait "$PROBE" 2>/dev/null

answered=0
for i in $(seq 1 "$N"); do
	[ "$(cat "$T/ans$i")" = "$NET.$((i + 9))" ] && answered=$((answered + 1))
done
check "all $N queries answered with their address ($answered, in $((t1 - t0)) ms)" [ "$answered" = "$N" ]
# Those not answered: what dig printed, their state now, and what the log says of them.
for i in $(seq 1 "$N"); do
	[ "$(cat "$T/ans$i")" = "$NET.$((i + 9))" ] && continue
	echo "# s$i: dig printed '$(tr '\n' ' ' <"$T/ans$i")', state now $(svc_field "$P-s$i" state)"
	grep -E "$P-s$i[: ]" "$DLOG" | tail -12 | sed 's/^/# log: /'
done
served=0
for i in $(seq 1 "$N"); do
	page "$i" | grep -q "^hello from $P-s$i " && served=$((served + 1))
done
check "all $N serve their page ($served)" [ "$served" = "$N" ]

n=$(grep -c . "$T/probe")
to=$(grep -c timeout "$T/probe")
lat=$(grep -v timeout "$T/probe" | sort -n | awk '{v[NR] = $1} END {
	if (NR) { i = int(NR * 0.5); j = int(NR * 0.99); if (i < 1) i = 1; if (j < 1) j = 1
		printf "p50 %d ms, p99 %d ms, max %d ms", v[i], v[j], v[NR] } }')
echo "# the ready name during the storm: $n queries, $lat"
check "the ready name answered every query during the storm ($n queries, $to not within 2 s)" \
	bash -c "[ $n -gt 5 ] && [ $to = 0 ]"

peak=$(metric beckon_boots_running_peak)
check "never more than $SLOTS boots at once (beckon_boots_running_peak $peak)" \
	bash -c "[ -n '$peak' ] && [ '$peak' -le $SLOTS ] && [ '$peak' -ge 1 ]"
queued=$(metric beckon_boot_queue_total)
check "boots waited in line (beckon_boot_queue_total $queued), the line is empty now" \
	bash -c "[ ${queued:-0} -ge $((N - SLOTS - 1)) ] && [ \"\$(curl -s http://127.0.0.1:$METRICS_PORT/metrics | sed -n 's/^beckon_boot_queue //p')\" = 0 ]"
check "the log says a boot waited for a slot" grep -q "$P-s[0-9]*: waiting for a boot slot (max_booting $SLOTS" "$DLOG"
# The log apart from the gauge: a start is "qemu pid N spawned", an end "ready in" or "boot failed".
most=$(grep -E "$P-s[0-9]+: (qemu pid [0-9]+ spawned|ready in|boot failed)" "$DLOG" |
	awk '/spawned/ {n++; if (n > m) m = n} /ready in|boot failed/ {n--} END {print m + 0}')
check "the log agrees: at most $most QEMUs of the storm were starting at once" \
	bash -c "[ $most -ge 1 ] && [ $most -le $SLOTS ]"

# How a process is started (spawn.c).
slice_of() { awk '$1 == "se.slice" {print $3}' "/proc/$1/sched" 2>/dev/null; }
dpid_nice=$(awk '{print $19}' "/proc/$DPID/stat")
want=$(awk '{print $19}' /proc/self/stat)
[ "$want" -lt 0 ] && want=0
q=$(qemu_of ready | head -1)
check "x (exec) boots" [ "$(dq +short x.svc.test A)" = "$NET.3" ]
x=$(pgrep -f "sleep 1007$$" | head -1)
for who in "qemu:ready:$q" "exec:x:$x"; do
	IFS=: read -r name svc pid <<<"$who"
	if [ -z "$pid" ]; then
		not_ok "$name: its process found"
		continue
	fi
	check "$name: its own process group" [ "$(awk '{print $5}' "/proc/$pid/stat")" = "$pid" ]
	check "$name: stdin is /dev/null" [ "$(readlink "/proc/$pid/fd/0")" = /dev/null ]
	check "$name: stdout and stderr the console pipe" \
		bash -c "readlink /proc/$pid/fd/1 | grep -q '^pipe:' && [ \"\$(readlink /proc/$pid/fd/1)\" = \"\$(readlink /proc/$pid/fd/2)\" ]"
	# No socket or pipe of beckond's past 2 (1 and 2 are the console pipe, read by beckond).
	theirs=$(for f in /proc/$pid/fd/*; do [ "${f##*/}" -gt 2 ] && readlink "$f"; done | grep -E '^(socket|pipe):' | sort -u)
	mine=$(for f in /proc/$DPID/fd/*; do readlink "$f"; done | grep -E '^(socket|pipe):' | sort -u)
	shared=$(comm -12 <(echo "$theirs") <(echo "$mine") | grep . | tr '\n' ' ')
	check "$name: no socket or pipe of beckond's (${shared:-none shared})" [ -z "$shared" ]
	check "$name: the sweep's marker in its environment" \
		bash -c "tr '\\0' '\\n' </proc/$pid/environ | grep -qx 'BECKON_SERVICE=$P-$svc'"
	check "$name: nice $(awk '{print $19}' "/proc/$pid/stat") (the test's, $want), after beckond's ($dpid_nice)" \
		bash -c "[ $(awk '{print $19}' "/proc/$pid/stat") = $want ] && [ $dpid_nice -le $want ]"
	# A short slice (EEVDF, 6.12 and later) is beckond's alone: its children get the default back.
	if grep -q "slice 0.1 ms" "$DLOG"; then
		check "$name: the default slice ($(slice_of "$pid")), not beckond's ($(slice_of "$DPID"))" \
			bash -c "[ '$(slice_of "$pid")' = '$(slice_of self)' ] && [ '$(slice_of "$DPID")' = 100000 ]"
	fi
done
if [ -n "$x" ]; then
	check "exec: fds 0, 1 and 2, nothing else ($(ls /proc/$x/fd | tr '\n' ' '))" \
		[ "$(ls "/proc/$x/fd" | sort -n | tr '\n' ' ')" = "0 1 2 " ]
	check "exec: no signal blocked or ignored" \
		bash -c "grep -qx 'SigBlk:[[:space:]]*0*' /proc/$x/status && grep -qx 'SigIgn:[[:space:]]*0*' /proc/$x/status"
fi
check "beckond runs at nice -5 or below ($dpid_nice), and says so" \
	bash -c "[ $dpid_nice -le -5 ] && grep -q 'nice -5 (guests at $want)' '$DLOG'"

check "SIGTERM: clean" stop_daemon
no_qemu() { ! pgrep -f "$GUEST_MARK" >/dev/null; }
check "no QEMU of this test is left" wait_for 30 no_qemu
finish
