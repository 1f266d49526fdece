#!/usr/bin/env bash
# pool = { size = 2; } with the QEMU hello guest in user networking, hold
# "none", two services of one shape with template = "auto": the first cold
# boot of a service saves its template and the pool starts two generic
# VMMs of its shape (-incoming defer, no service's); the next cold start
# takes one, gives it the service's NIC (user networking and its hostfwd
# port, over QMP) and restores the template into it: the log, beckonctl
# list and beckon_boot_seconds{how="pool"} say so, the guest serves its page
# and is a clone (RESEED taken), survives pause and resume, suspend and
# restore, and an idle stop; the pool refills to 2; the second service
# shares the pool; a pool VMM killed with SIGKILL is replaced; a take from
# a pool VMM that does not answer falls back to a VMM of the service's own
# (the template kept); SIGTERM leaves no QEMU and no pid file.
# run.sh timeout: 900
. "$(dirname "$0")/lib.sh"

need_root "pool"
IMG=$ROOT/build/hello.elf
for tool in qemu-system-x86_64 curl python3 dig; do
	command -v $tool >/dev/null || { skip "pool: $tool is not installed"; exit 0; }
done
[ -f "$IMG" ] || { not_ok "the hello guest is built ($IMG; make guest)"; finish; }

DNS_PORT=$(free_port)
METRICS_PORT=$(free_port)
CONF=$T/beckon.conf
P=p$$
LO=127.$((RANDOM % 200 + 20)).$((RANDOM % 250 + 1))
GUEST_MARK="guest=beckon:$P-"
POOL_MARK="guest=beckon:~pool"
STATE=$T/state
on_exit "for p in \$(pgrep -f '$GUEST_MARK'); do kill -9 \$p; done"
# Pool VMMs carry no service's name: this run's are those under its state_dir... and
# its beckond's children; kill them by parent at exit, whatever happened.
on_exit "for p in \$(pgrep -P \${DPID:-0} -f '$POOL_MARK'); do kill -9 \$p; done"

QEMU_KEYS=
[ -n "${TEST_ACCEL:-}" ] && QEMU_KEYS="qemu = { accel = \"$TEST_ACCEL\"; };"
svc() { # svc NAME ADDRESS [KEYS]
	cat <<EOF
  { name = "$P-$1"; dns = ( "$1.svc.test" ); address = "$2"; ports = ( 80 );
    image = "$IMG"; cmdline = "ip={address}/{prefix} gw={gateway} name={name} port={port}";
    ready = "http:/"; template = "auto"; boot_timeout = "${BT:-30s}"; $QEMU_KEYS ${3:-} },
EOF
}
base_conf "$CONF"
sed -i "s|^metrics_listen = .*|metrics_listen = \"127.0.0.1:$METRICS_PORT\";|" "$CONF"
echo 'pool = { size = 2; };' >>"$CONF"
printf '%s\n' "$(svc a $LO.2 'idle_timeout = "10s"; on_idle = "destroy";')" \
	"$(svc b $LO.3 'idle_timeout = "8s"; on_idle = "suspend";')" \
	"$(BT=8s svc c $LO.4 'idle_timeout = "60s";')" | add_services "$CONF"

start_daemon "$CONF" || { not_ok "beckond starts"; finish; }
ok "beckond starts with pool = { size = 2; }"

A=$P-a
B=$P-b
now() { # now NAME: "STATE BOOTS STARTED"
	ctl --json list | python3 -c '
import json, sys
for s in json.load(sys.stdin)["services"]:
    if s["name"] == sys.argv[1]:
        print(s["state"], s["boots"], s["started"])' "$1"
}
state_is() { [ "$(svc_field "$1" state)" = "$2" ]; }
metric() { curl -s "http://127.0.0.1:$METRICS_PORT/metrics" | sed -n "s/^$1 //p"; }
idle_is() { [ "$(metric 'beckon_pool_vmms{state="idle"}')" = "$1" ]; }
hostfwd() { sed -n "s/.*$1: user networking: guest port 80 at 127.0.0.1:\([0-9]*\).*/\1/p" "$DLOG" | tail -1; }
page() { curl -s --max-time 30 "http://127.0.0.1:$(hostfwd "$1")$2"; }
serves() { page "$1" / | grep -q "hello from $1 "; }
# The pool's idle VMMs: beckond's QEMUs named ~poolN but a's and b's (a taken one keeps its name).
pool_pids() {
	pgrep -P "$DPID" -f "$POOL_MARK" |
		grep -vxE "$(svc_field "$A" pid)|$(svc_field "$B" pid)|$(svc_field "$P-c" pid)" | sort
}
no_qemu() { ! pgrep -f "$GUEST_MARK" >/dev/null; }
count_log() { grep -c "$1" "$DLOG"; }

check "no pool VMM before a template exists" idle_is 0
check "a: the first query answers once it serves" [ "$(dq +short a.svc.test A)" = "$LO.2" ]
check "a serves its page" serves "$A"
NOW=$(now "$A")
check "a: ready, one boot, started by a boot ($NOW)" [ "$NOW" = "ready 1 boot" ]
check "the log says the template was saved" grep -qE "$A: template saved in [0-9.]+ ms" "$DLOG"
check "the pool learns a's shape" grep -q "pool: keeping 2 VMMs of $A's shape" "$DLOG"
check "the pool has 2 idle VMMs" wait_for 60 idle_is 2
check "... two QEMU processes with no service's name" [ "$(pool_pids | wc -l)" = 2 ]
check "... each with a pid file" bash -c "ls '$STATE'/~pool*.qemu.pid | wc -l | grep -qx 2"
check "a's template keeps its memory in a file, out of the stream" \
	grep -qE "$A: template saved in [0-9.]+ ms \([0-9]+ bytes\), its memory in a file" "$DLOG"
check "... its .ram is there" test -s "$STATE/templates/$A.ram"
# A pool VMM's RAM is a memfd of beckond's, shared, that a take fills from the .ram.
check "each pool VMM's guest RAM is beckond's memfd, shared" bash -c "
	for p in $(pool_pids | tr '\n' ' '); do
		tr '\\0' ' ' </proc/\$p/cmdline | grep -q 'memory-backend-file,id=microvm.ram,mem-path=/proc/self/fd/5,share=on' || exit 1
		readlink /proc/\$p/fd/5 | grep -q '^/memfd:beckon-pool-ram' || exit 1
	done"
PIDS0=$(pool_pids | tr '\n' ' ')

# The idle stop, then a cold start into a pool VMM. (In user networking with
# hold "none" beckon sees DNS queries, not the guest's traffic: the idle
# timeouts leave the checks after a query room on a loaded machine.)
check "idle after 10 s: stopped" wait_for 30 state_is "$A" stopped
check "a DNS query wakes it again" [ "$(dq +short a.svc.test A)" = "$LO.2" ]
check "the restored guest serves its page" serves "$A"
APID=$(svc_field "$A" pid)
check "... whose pid file is now a's" bash -c "[ \"\$(cat '$STATE/$A.qemu.pid')\" = $APID ]"
check "beckonctl pause" ctl pause "$A"
check "a is paused" state_is "$A" paused
check "beckonctl resume" ctl resume "$A"
check "after resume it serves" serves "$A"
NOW=$(now "$A")
check "a: ready, two boots, started from the pool ($NOW)" [ "$NOW" = "ready 2 pool" ]
check "the log says restored from its template into pool VMM N" \
	grep -qE "$A: restored from its template into pool VMM [0-9]+ in [0-9.]+ ms" "$DLOG"
grep -E "$A: restored from its template into pool VMM" "$DLOG" | tail -1 | sed 's/^/# /'
check "the take filled the VMM's memory from the .ram (the stream has none)" \
	grep -q "$A: pool VMM: its memory from the template's .ram" "$DLOG"
check "beckonctl list shows STARTED pool" bash -c "'$BECKONCTL' -s '$DSOCK' list | awk '\$1==\"$A\"' | grep -qw pool"
n=$(metric 'beckon_boot_seconds_count{how="pool"}')
check "beckon_boot_seconds{how=\"pool\"} counts it ($n)" [ "${n:-0}" -ge 1 ]
check "a runs in one of the pool's VMMs (pid $APID in $PIDS0)" bash -c "echo ' $PIDS0' | grep -q ' $APID '"
check "the clone took its reseed" grep -q "RESEEDED" "$STATE/$A.console"
check "one template save only" [ "$(count_log "$A: template saved")" = 1 ]
check "the pool refills to 2 idle VMMs" wait_for 60 idle_is 2


# The idle stop ends the pool VMM that became a's.
check "idle again: stopped" wait_for 30 state_is "$A" stopped
check "its QEMU is gone" wait_for 30 bash -c "! kill -0 $APID 2>/dev/null"
check "no pid file of a's" wait_for 10 bash -c "! test -e '$STATE/$A.qemu.pid'"

# A second service of the same shape: its first boot saves its template; its
# next cold start takes a VMM of the same pool; suspend and restore work.
check "b: the first query answers once it serves" [ "$(dq +short b.svc.test A)" = "$LO.3" ]
check "b serves its page" serves "$B"
check "b's template is saved" wait_for 30 grep -qE "$B: template saved" "$DLOG"
check "b's shape is a's: no second shape" [ "$(count_log 'pool: keeping 2 VMMs of')" = 1 ]
check "b idles into suspended" wait_for 30 state_is "$B" suspended
check "b: a DNS query restores its saved state" [ "$(dq +short b.svc.test A)" = "$LO.3" ]
check "b serves after the restore" serves "$B"
NOW=$(now "$B")
check "b: restored from suspend ($NOW)" [ "$NOW" = "ready 2 restore" ]
check "b suspends again" wait_for 30 state_is "$B" suspended
check "beckonctl stop b" ctl stop "$B"
check "b: stopped" wait_for 30 state_is "$B" stopped
check "the pool is full again" wait_for 60 idle_is 2
check "b: a cold start takes a pool VMM" [ "$(dq +short b.svc.test A)" = "$LO.3" ]
NOW=$(now "$B")
check "b: started from the pool ($NOW)" bash -c "echo '$NOW' | grep -q ' pool$'"
check "b serves its own page from a VMM of a's shape" serves "$B"
check "b idles into suspended (from a pool VMM)" wait_for 30 state_is "$B" suspended
check "b: restored from that suspend" [ "$(dq +short b.svc.test A)" = "$LO.3" ]
check "b serves after it" serves "$B"

# A pool VMM killed is replaced.
check "the pool is full again" wait_for 60 idle_is 2
VICTIM=$(pool_pids | head -1)
kill -9 "$VICTIM"
check "the log says the killed pool VMM is replaced" \
	wait_for 30 grep -qE "pool: VMM [0-9]+ exited \(killed by signal 9\): replacing it" "$DLOG"
check "the pool is back to 2 idle VMMs" wait_for 60 bash -c "
	[ \"\$(curl -s http://127.0.0.1:$METRICS_PORT/metrics | sed -n 's/^beckon_pool_vmms{state=\"idle\"} //p')\" = 2 ] &&
	! pgrep -P $DPID -f '$POOL_MARK' | grep -qx $VICTIM"
N=$(pool_pids | wc -l)
check "... two idle pool QEMUs, the killed one not among them ($N)" [ "$N" = 2 ]

# A pool VMM that does not answer (stopped): the take runs into c's
# boot_timeout (8 s), and the restore is tried again in a VMM of its own; the
# template stays.
C=$P-c
check "c: the first query answers once it serves" [ "$(dq +short c.svc.test A)" = "$LO.4" ]
check "c's template is saved" wait_for 30 grep -q "$C: template saved" "$DLOG"
check "beckonctl stop c" ctl stop "$C"
check "c: stopped" wait_for 30 state_is "$C" stopped
check "the pool is full again" wait_for 60 idle_is 2
STOPPED=$(pool_pids | tr '\n' ' ')
kill -STOP $STOPPED
check "c: with the pool's VMMs stopped, a query is answered all the same" \
	[ "$(dq +short c.svc.test A)" = "$LO.4" ]
kill -CONT $STOPPED 2>/dev/null
check "the log says the pool VMM failed and a VMM of its own restored c" \
	grep -qE "$C: the restore into pool VMM [0-9]+ failed: .*restoring into a VMM of its own" "$DLOG"
NOW=$(now "$C")
check "c: ready, started from its template in a VMM of its own ($NOW)" [ "$NOW" = "ready 2 template" ]
check "c serves" serves "$C"
check "c's template was kept (one save, no drop)" \
	bash -c "[ \"\$(grep -c '$C: template saved' '$DLOG')\" = 1 ] && ! grep -q '$C: template dropped' '$DLOG'"
check "the pool is full again" wait_for 60 idle_is 2

# SIGTERM: nothing left.
PIDS=$(pool_pids | tr '\n' ' ')
check "SIGTERM: exit 0, clean" stop_daemon
check "no pool QEMU left ($PIDS)" bash -c "for p in $PIDS; do ! kill -0 \$p 2>/dev/null || exit 1; done"
check "no QEMU of this run left" no_qemu
check "no pid file left" bash -c "! ls '$STATE'/*.pid 2>/dev/null | grep -q ."
finish
