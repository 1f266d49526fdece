#!/usr/bin/env bash
# pool = { size = 1; } in bridge mode, hold "syn": a restore into a pool VMM
# gets the service's tap over QMP (netdev_add on hub 0) and its traffic
# flows: a client in a network namespace of its own gets the page from the
# guest's own address. Each take writes fresh entropy and the time into the
# guest's reseed page (no RESEED line): two takes differ in boot id and
# ISNs; a page beckon does not find falls back to the RESEED line. A reload
# resizes the pool (2, then 0: no pool VMM left), and one that changes the
# guest drops its shape; SIGTERM leaves no QEMU, no tap and no pid file.
# run.sh timeout: 900
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/idlenet.sh"
idle_qemu_setup "pool_bridge" q
METRICS_PORT=$(free_port)
STATE=$T/state
POOL_MARK="guest=beckon:~pool"
on_exit "for p in \$(pgrep -P \${DPID:-0} -f '$POOL_MARK'); do kill -9 \$p; done"
on_exit "for l in \$(beckon_taps $P-); do ip link del \$l; done"

write_conf() { # write_conf POOLSIZE [MEMORY]
	idle_base_conf
	sed -i "s|^metrics_listen = .*|metrics_listen = \"127.0.0.1:$METRICS_PORT\";|" "$CONF"
	echo "pool = { size = $1; };" >>"$CONF"
	cat >>"$CONF" <<EOF
services = (
  { name = "$P-a"; dns = ( "a.svc.test" ); address = "$INET.2"; ports = ( 80 );
    image = "$IMG"; idle_timeout = "4s"; on_idle = "destroy"; template = "auto";
    memory = "${2:-16M}"; boot_timeout = "30s"; $(idle_qemu_keys) }
);
EOF
}
write_conf 1
start_daemon "$CONF" || { not_ok "beckond starts"; finish; }
ok "beckond starts in bridge mode with pool = { size = 1; }"

A=$P-a
now() {
	ctl --json list | python3 -c '
import json, sys
for s in json.load(sys.stdin)["services"]:
    if s["name"] == sys.argv[1]:
        print(s["state"], s["boots"], s["started"])' "$1"
}
state_is() { [ "$(svc_field "$1" state)" = "$2" ]; }
metric() { curl -s "http://127.0.0.1:$METRICS_PORT/metrics" | sed -n "s/^$1 //p"; }
idle_is() { [ "$(metric 'beckon_pool_vmms{state="idle"}')" = "$1" ]; }
serves() { ip netns exec "$ICL" curl -s --max-time 30 "http://$INET.2/" | grep -q "hello from $A "; }
# The pool's idle VMMs: beckond's QEMUs named ~poolN but a's (a taken one keeps its name).
pool_pids() { pgrep -P "$DPID" -f "$POOL_MARK" | grep -vx "$(svc_field "$A" pid)"; }
pool_none() { [ -z "$(pool_pids)" ]; }

check "a DNS query answers a's address" [ "$(dq +short a.svc.test A)" = "$INET.2" ]
check "the first boot serves its page" serves
check "its template is saved" grep -qE "$A: template saved in" "$DLOG"
check "the pool has 1 idle VMM" wait_for 60 idle_is 1
check "idle: stopped" wait_for 30 state_is "$A" stopped
check "a DNS query wakes it" [ "$(dq +short a.svc.test A)" = "$INET.2" ]
check "the guest restored into the pool VMM serves its page through its tap" serves
NOW=$(now "$A")
check "a: started from the pool ($NOW)" [ "$NOW" = "ready 2 pool" ]
check "the log says so" grep -qE "$A: restored from its template into pool VMM [0-9]+ in" "$DLOG"
grep -E "$A: restored from its template into pool VMM" "$DLOG" | tail -1 | sed 's/^/# /'
check "the tap is there" [ -n "$(beckon_tap "$A")" ]
check "it serves again (a second connection)" serves

# A restore into a pool VMM is no clone either: the take writes fresh
# entropy and the time into the hello guest's reseed page as it copies the
# template's memory in, and sends no RESEED line; a template whose page
# beckon does not find (its magic broken here) gets the line instead.
RAM=$STATE/templates/$A.ram
reseed_sent() { grep -c "$A: reseed sent" "$DLOG"; }
in_memory() { grep -c "$A: reseeded in the guest's memory" "$DLOG"; }
check "the take wrote fresh words into the guest's reseed page" \
	grep -q "$A: pool VMM: its memory from the template's .ram, fresh words in its reseed page" "$DLOG"
# Counts are before/after: a busy machine can be slow enough between
# checks for idle_timeout to end a and the next check to restore it again.
check "... and readiness went on without a RESEED line ($(in_memory), $(reseed_sent) sent)" \
	[ "$(in_memory)" -ge 1 -a "$(reseed_sent)" = 0 ]
check "the console says RESEEDED" grep -q "^RESEEDED " "$STATE/$A.console"
probe_id "$INET.2"
ID1=$ID ISN1=$ISN
check "pool restore 1: one reseed ($ID1)" [ "$(field_of reseeds "$ID1")" = 1 ]
W1=$(field_of wall_ms "$ID1")
check "pool restore 1: its wall clock is beckon's ($W1 ms)" \
	test "${W1:-0}" -gt 0 -a $((${W1:-0} / 1000 - $(date +%s))) -lt 60
pool_take() { # stop a, let the pool refill; the probe's SYN wakes a into the VMM
	ctl stop "$A" >/dev/null 2>&1
	wait_for 30 state_is "$A" stopped && wait_for 60 idle_is 1 && probe_id "$INET.2"
}
M0=$(in_memory)
check "pool restore 2" pool_take
ID2=$ID ISN2=$ISN
NOW=$(now "$A")
check "pool restore 2: from the pool ($NOW), one reseed ($ID2), in memory again" \
	bash -c "[ '${NOW#* * }' = pool -a '$(field_of reseeds "$ID2")' = 1 -a $(in_memory) -gt $M0 -a $(reseed_sent) = 0 ]"
check "two pool restores: different boot ids" \
	[ "$(field_of boot_id "$ID1")" != "$(field_of boot_id "$ID2")" ]
check "two pool restores: different ISN secrets" \
	[ "$(field_of isn_offset "$ID1")" != "$(field_of isn_offset "$ID2")" ]
check "two pool restores: different ISNs on the wire ($ISN1, $ISN2)" \
	test -n "$ISN1" -a -n "$ISN2" -a "$ISN1" != "$ISN2"
OFF=$(grep -obUa 'BECKON-RESEED-1' "$RAM" | head -1 | cut -d: -f1)
check "the template's .ram holds the guest's reseed page (at $OFF)" test -n "$OFF"
printf 'X' | dd of="$RAM" bs=1 seek="${OFF:-0}" conv=notrunc status=none
M0=$(in_memory)
check "with its magic broken: pool restore 3" pool_take
ID3=$ID
NOW=$(now "$A")
check "pool restore 3: from the pool ($NOW), by a RESEED line ($(reseed_sent) sent)" \
	bash -c "[ '${NOW#* * }' = pool -a $(reseed_sent) -ge 1 -a $(in_memory) = $M0 ]"
check "pool restore 3: one reseed ($ID3), a boot id of its own" \
	bash -c "[ '$(field_of reseeds "$ID3")' = 1 -a '$(field_of boot_id "$ID3")' != '$(field_of boot_id "$ID2")' ]"

# Reloads resize the pool.
write_conf 2
kill -HUP "$DPID"
check "reload to size 2: two idle pool VMMs" wait_for 60 idle_is 2
N=$(pool_pids | wc -l)
check "... two pool QEMUs besides a's ($N)" [ "$N" = 2 ]
[ "$N" = 2 ] || ps -o pid,ppid,args --ppid "$DPID" | cut -c1-150 | sed 's/^/# /'
write_conf 0
kill -HUP "$DPID"
check "reload to size 0: no pool VMM" wait_for 60 pool_none
check "... none idle in the metrics" idle_is 0
check "... no pool pid file" wait_for 10 bash -c "! ls '$STATE'/~pool*.pid 2>/dev/null | grep -q ."
check "a still serves" serves
write_conf 1
kill -HUP "$DPID"
check "reload to size 1: a cold start learns the shape again and the pool refills" \
	bash -c "ctl() { '$BECKONCTL' -s '$DSOCK' \"\$@\"; }; ctl stop '$A' >/dev/null"
check "... a stopped" wait_for 30 state_is "$A" stopped
check "... a DNS query wakes it" [ "$(dq +short a.svc.test A)" = "$INET.2" ]
check "... it serves" serves
check "... the pool has 1 idle VMM" wait_for 60 idle_is 1

# A reload that changes the guest (its memory): its shape's VMMs go; the next
# cold start boots (a new template), and the pool learns the new shape.
write_conf 1 32M
kill -HUP "$DPID"
check "reload with 32M: the old shape is dropped" wait_for 30 grep -q "pool: $A's shape dropped" "$DLOG"
check "... its VMM is gone" wait_for 60 pool_none
wait_for 30 state_is "$A" stopped || ctl stop "$A" >/dev/null
check "a DNS query wakes it (a boot: the template is for 16M)" [ "$(dq +short a.svc.test A)" = "$INET.2" ]
check "it serves" serves
check "a new template is saved" wait_for 30 bash -c "[ \$(grep -c '$A: template saved' '$DLOG') -ge 2 ]"
check "the pool has 1 idle VMM of the new shape" wait_for 60 idle_is 1
check "... one 32M pool QEMU" bash -c "pgrep -P $DPID -f '$POOL_MARK' -a | grep -q -- '-m 32M'"
PIDS=$(pool_pids | tr '\n' ' ')

check "SIGTERM: beckond exits 0, no sanitizer report" stop_daemon
check "SIGTERM: no QEMU left" no_qemu
check "SIGTERM: no pool QEMU left ($PIDS)" bash -c "for p in $PIDS; do ! kill -0 \$p 2>/dev/null || exit 1; done"
check "SIGTERM: no tap left" [ -z "$(beckon_taps "$P-")" ]
check "SIGTERM: no pid file left" bash -c "! ls '$STATE'/*.pid 2>/dev/null | grep -q ."
finish
