#!/usr/bin/env bash
# The idle policy with QEMU hello guests in bridge mode, hold "syn", and
# idle_timeout = 1s. The client is a network namespace routed through the
# host, as a remote client would be: its connections to a ready guest never
# pass through beckon, so only conntrack shows
# that the guest is in use.
# - pause, shutdown, destroy: the idle guest ends in the right state; a DNS
#   query and a bare connection (a held SYN) each wake it and get the page;
# - one open, quiet TCP connection keeps a guest up (conntrack);
# - steady traffic without DNS queries keeps a guest up (conntrack: the
#   close times of its short connections);
# - beckon's conntrack rule is there while it runs and gone after it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/idlenet.sh"
idle_qemu_setup "idle qemu" i

svc() { # svc NAME N ON_IDLE
	cat <<CONF
  { name = "$P-$1"; dns = ( "$1.svc.test" ); address = "$INET.$2"; ports = ( 80 );
    image = "$IMG"; idle_timeout = "1s"; on_idle = "$3"; $(idle_qemu_keys) },
CONF
}
idle_base_conf
{
	svc pz 2 pause
	svc sd 3 shutdown
	svc ds 4 destroy
	svc quiet 5 destroy
	svc busy 6 destroy
} | add_services "$CONF"

start_daemon "$CONF" || { not_ok "beckond starts"; finish; }
ok "beckond starts with QEMU services, hold syn"
check "beckon's conntrack rule is in FORWARD, once" [ "$(ct_rules)" = 1 ]

field() { svc_field "$P-$1" "$2"; } # field SERVICE KEY
state_is() { [ "$(field "$1" state)" = "$2" ]; }
addr() { sed -n "s/.*\"$P-$1\".*address = \"\([0-9.]*\)\".*/\1/p" "$CONF"; }
# serves NAME [PATH]: the client gets 200 naming the service.
serves() { [[ "$(icl curl -s --max-time 5 "http://$(addr "$1")/")" =~ ^"hello from $P-$1 " ]]; }

cycle() { # cycle NAME IDLE_STATE ACTION
	local name=$1 want=$2 pid
	check "$name: a DNS query answers at once with its address" \
		[ "$(dq +short "$name.svc.test" A)" = "$(addr "$name")" ]
	check "$name: the client's connection is held until the guest serves" serves "$name"
	pid=$(field "$name" pid)
	check "$name: idle after 1 s: $want" wait_for 15 state_is "$name" "$want"
	check "$name: the log says idle: $3" grep -q "$P-$name: idle: $3" "$DLOG"
	if [ "$want" = paused ]; then
		check "$name: its QEMU is still there" [ "$(qemu_of "$name")" = "$pid" ]
	else
		check "$name: its QEMU is gone" wait_for 15 bash -c "! kill -0 $pid 2>/dev/null"
	fi
	check "$name: a DNS query wakes it" [ "$(dq +short "$name.svc.test" A)" = "$(addr "$name")" ]
	check "$name: ... and the client gets the page" serves "$name"
	check "$name: ready again" state_is "$name" ready
	check "$name: idle again: $want" wait_for 15 state_is "$name" "$want"
	check "$name: a connection alone (a held SYN) wakes it and gets the page" serves "$name"
	check "$name: ready" state_is "$name" ready
}
cycle pz paused pause
cycle sd stopped shutdown
check "sd: shutdown is QMP quit: no kill needed" bash -c "! grep -q '$P-sd: QEMU still there' '$DLOG'"
cycle ds stopped destroy
check "ds: destroy kills QEMU" grep -q "$P-ds: idle: destroy" "$DLOG"

# One open, quiet connection from the client straight to the guest.
check "quiet: wakes and serves" serves quiet
# Open once $T/quiet.open shows up, closed when the test removes it.
icl python3 -c 'import os, socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
open(sys.argv[3], "w").write("open\n")
while os.path.exists(sys.argv[3]):
    time.sleep(0.05)
s.close()' "$(addr quiet)" 80 "$T/quiet.open" &
HOLD=$!
wait_for 20 test -s "$T/quiet.open"
# Python's start can outlast idle_timeout here: then the connection woke it (a held SYN).
wait_for 20 state_is quiet ready
sleep 3 # past idle_timeout on purpose
check "quiet: one open quiet connection: still ready after 3 s (idle_timeout 1 s)" state_is quiet ready
rm -f "$T/quiet.open"
wait $HOLD
# Generous: idle_timeout is 1 s; a busy machine can take seconds to show it.
check "quiet: closed: idle soon after (within 10 s)" wait_for 10 state_is quiet stopped

# Steady traffic from the client, no DNS: conntrack has each connection's close.
check "busy: wakes and serves" serves busy
for i in $(seq 12); do serves busy || echo "request $i" >>"$T/busy.err"; sleep 0.25; done
check "busy: 12 requests over 3 s, no DNS: still ready" state_is busy ready
check "busy: every request served" [ ! -e "$T/busy.err" ]
check "busy: traffic over: idle soon after (within 10 s)" wait_for 10 state_is busy stopped

check "SIGTERM: beckond exits 0, no sanitizer report" stop_daemon
check "SIGTERM: no QEMU left" no_qemu
check "SIGTERM: the conntrack rule is gone" [ "$(ct_rules)" = 0 ]

# kill -9: the rule stays; the next start keeps exactly one, and SIGTERM removes it.
: >"$T/beckond2.log"
start_daemon "$CONF" "$T/beckond2.log" || { not_ok "beckond starts again"; finish; }
kill -9 "$DPID"
wait "$DPID" 2>/dev/null
check "kill -9: the rule is left behind" [ "$(ct_rules)" = 1 ]
: >"$T/beckond3.log"
start_daemon "$CONF" "$T/beckond3.log" || { not_ok "beckond starts after kill -9"; finish; }
check "restart: still exactly one rule" [ "$(ct_rules)" = 1 ]
check "restart: SIGTERM: clean" stop_daemon
check "restart: no rule left" [ "$(ct_rules)" = 0 ]
finish
