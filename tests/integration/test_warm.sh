#!/usr/bin/env bash
# Warm pools with the QEMU hello guest in bridge mode, hold "syn",
# idle_timeout = 3s (with 1 s a busy machine saw a guest go idle between two
# checks of it), a client routed through the host:
# - warm = "shell": QEMU is started with the guest not running (-S) at
#   start; the first wake only runs it (QMP cont, no new QEMU); after an
#   idle stop a new shell is made; a connection alone wakes a shell too;
# - warm = "paused": booted at start and paused; a wake only resumes it;
# - warm = "shell" with on_idle = "suspend": once saved, a restore shell
#   (QEMU -incoming defer) waits; a wake loads the state into it, and the
#   guest's memory (its request counter) is intact.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/idlenet.sh"
idle_qemu_setup "warm" w

idle_base_conf
cat >>"$CONF" <<EOF
services = (
  { name = "$P-sh"; dns = ( "sh.svc.test" ); address = "$INET.2"; ports = ( 80 );
    image = "$IMG"; idle_timeout = "3s"; on_idle = "destroy"; warm = "shell"; $(idle_qemu_keys) },
  { name = "$P-wp"; dns = ( "wp.svc.test" ); address = "$INET.3"; ports = ( 80 );
    image = "$IMG"; idle_timeout = "3s"; on_idle = "pause"; warm = "paused"; $(idle_qemu_keys) },
  { name = "$P-rs"; dns = ( "rs.svc.test" ); address = "$INET.4"; ports = ( 80 );
    image = "$IMG"; idle_timeout = "3s"; on_idle = "suspend"; warm = "shell"; $(idle_qemu_keys) }
);
EOF

start_daemon "$CONF" || { not_ok "beckond starts"; finish; }
ok "beckond starts with warm QEMU services"

field() { svc_field "$P-$1" "$2"; } # field SERVICE KEY
state_is() { [ "$(field "$1" state)" = "$2" ]; }
serves() { [[ "$(icl curl -s --max-time 5 "http://$1/")" =~ ^"hello from $P-$2 " ]]; }

# warm = "shell"
check "sh: a warm shell is made at start" wait_for 15 grep -q "$P-sh: warm shell ready" "$DLOG"
SHELL1=$(qemu_of sh)
sb="$(field sh state) $(field sh boots)"
check "sh: its QEMU runs ($SHELL1), state stopped, no boot yet ($sb)" \
	[ -n "$SHELL1" -a "$sb" = "stopped 0" ]
check "sh: QEMU holds the guest (-S)" bash -c "tr '\\0' ' ' </proc/$SHELL1/cmdline | grep -q ' -S'"
check "sh: a DNS query answers" [ "$(dq +short sh.svc.test A)" = "$INET.2" ]
check "sh: the client gets the page" serves "$INET.2" sh
# Read once: idle_timeout (3 s) may pass between two reads on a loaded machine.
sb=$(field sh boots) sp=$(field sh pid)
check "sh: one boot, run by the shell's own QEMU ($sb, $sp)" [ "$sb $sp" = "1 $SHELL1" ]
check "sh: the log says the shell ran" grep -q "$P-sh: ready in" "$DLOG"
check "sh: idle: destroyed, and a new shell is made" \
	wait_for 15 bash -c "[ \"\$(grep -c '$P-sh: warm shell ready' '$DLOG')\" = 2 ]"
SHELL2=$(qemu_of sh)
check "sh: a new QEMU for the new shell ($SHELL2)" bash -c "[ -n '$SHELL2' ] && [ '$SHELL2' != '$SHELL1' ]"
check "sh: stopped with its shell" state_is sh stopped
check "sh: a connection alone wakes the shell and gets the page" serves "$INET.2" sh
check "sh: run by the second shell's QEMU" [ "$(field sh pid) $(field sh boots)" = "$SHELL2 2" ]

# warm = "paused"
check "wp: booted at start, then paused" wait_for 15 state_is wp paused
check "wp: one boot" [ "$(field wp boots)" = 1 ]
WPPID=$(field wp pid)
check "wp: a DNS query answers" [ "$(dq +short wp.svc.test A)" = "$INET.3" ]
check "wp: the client gets the page" serves "$INET.3" wp
check "wp: resumed, not booted again" [ "$(field wp state) $(field wp boots) $(field wp pid)" = "ready 1 $WPPID" ]
check "wp: idle: paused again" wait_for 15 state_is wp paused

# warm = "shell" + on_idle = "suspend": a restore shell.
get() { icl curl -s --max-time 5 "http://$INET.4$1"; }
check "rs: a plain shell at start" wait_for 15 grep -q "$P-rs: warm shell ready" "$DLOG"
check "rs: a DNS query runs it" [ "$(dq +short rs.svc.test A)" = "$INET.4" ]
for i in 1 2; do get / >/dev/null; done
check "rs: two requests: it counts 2" [ "$(get /count)" = 2 ]
check "rs: idle: suspended" wait_for 15 state_is rs suspended
check "rs: a restore shell is made" wait_for 15 grep -q "$P-rs: warm restore shell ready" "$DLOG"
RSPID=$(qemu_of rs)
check "rs: its QEMU waits for a state (-incoming defer)" \
	bash -c "[ -n '$RSPID' ] && tr '\\0' ' ' </proc/$RSPID/cmdline | grep -q -- '-incoming defer'"
check "rs: a connection alone restores it into the shell: the count is still 2" [ "$(get /count)" = 2 ]
check "rs: run by the restore shell's QEMU, restored" \
	bash -c "[ \"\$('$BECKONCTL' -s '$DSOCK' --json list | python3 -c 'import json,sys; s=[x for x in json.load(sys.stdin)[\"services\"] if x[\"name\"]==\"$P-rs\"][0]; print(s[\"state\"], s[\"pid\"])')\" = 'ready $RSPID' ] &&
		 grep -q '$P-rs: restored from suspend in' '$DLOG'"
check "rs: idle: suspended again, with a new restore shell" \
	wait_for 15 bash -c "[ \"\$(grep -c '$P-rs: warm restore shell ready' '$DLOG')\" = 2 ]"
RSPID=$(qemu_of rs)
kill -9 "$RSPID"
check "rs: its restore shell killed: still suspended, the saved state kept" \
	wait_for 15 bash -c "grep -q '$P-rs: exited (killed by signal 9' '$DLOG' &&
		[ -s '$T/state/$P-rs.state' ] && [ \"\$('$BECKONCTL' -s '$DSOCK' list | awk '\$1==\"$P-rs\"{print \$2}')\" = suspended ]"
check "rs: a DNS query restores it: the count is still 2" \
	bash -c "[ \"\$(dig @127.0.0.1 -p $DNS_PORT +short rs.svc.test A)\" = $INET.4 ] && [ \"\$(ip netns exec $ICL curl -s --max-time 5 http://$INET.4/count)\" = 2 ]"

check "SIGTERM: beckond exits 0, no sanitizer report" stop_daemon
check "SIGTERM: no QEMU left, shells included" no_qemu
finish
