#!/bin/sh
# The Xen tests, run inside the lab's dom0 (dom0-init): beckond drives real
# Xen domains through libxenlight. Each check prints "ok - ...",
# "not ok - ..." or "skip - ..."; the lab (lab.sh) collects them from the
# serial console. Waits are generous: everything here runs under two
# layers of emulation, 2-3x slower or faster with the host's load.
L=/lab
B=/lab/bin
T=/tmp/beckon-xen
DNS="-p 5353 @127.0.0.1"
mkdir -p $T
FAILED=0
ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; FAILED=1; }
# wait_for SECONDS CMD...: until CMD succeeds.
wait_for() {
	local end=$(($(date +%s) + $1))
	shift
	while [ "$(date +%s)" -lt "$end" ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	return 1
}
state_is() { $B/beckonctl -s $T/ctl.sock list | awk -v n="$1" -v s="$2" '$1 == n && $2 == s { f = 1 } END { exit !f }'; }
dom_exists() { xl list "beckon-$1" >/dev/null 2>&1; }
no_beckon_domains() { ! xl list 2>/dev/null | grep -q '^beckon-'; }
page() { curl -s -m 30 "http://$1/$2"; }
# A DNS answer for NAME: the A record, after waiting as beckon makes it wait.
answer() { dig $DNS +time=900 +tries=1 +short "$1.svc.test" A; }
# The log's tail now; the first failure's (NAME's lines alone, when given)
# is kept and shown again at the end, where a CI page that shows only the
# last lines of the output sees it.
log_tail() {
	echo "--- beckond log:"
	tail -n 40 $T/beckond.log | sed 's/^/  | /'
	[ -s $T/first-fail ] && return
	{
		echo "# at the first failure: $($B/beckonctl -s $T/ctl.sock list 2>&1 | tr '\n' ';')"
		echo "# xl list: $(xl list 2>&1 | tail -n +2 | awk '{print $1, $2, $5}' | tr '\n' ';')"
		grep -F "${1:-}" $T/beckond.log | tail -n 25 | cut -c1-200 | sed 's/^/# log: /'
		# A guest that ended by itself may have said why (its runs' consoles).
		for f in $T/state/${1:-none}.console.1 $T/state/${1:-none}.console; do
			[ -s $f ] && tail -n 8 $f | cut -c1-200 | sed "s|^|# ${f##*/}: |"
		done
		# Xen's own words on its guests (a triple fault, a crash).
		xl dmesg 2>/dev/null | grep -v "^(XEN) \*\*\*" | tail -n 12 | cut -c1-200 | sed 's/^/# xl dmesg: /'
	} >$T/first-fail
}
# logged PATTERN: how many lines of beckond's log match PATTERN (grep's BRE).
logged() { grep -c "$1" $T/beckond.log; }
# logged_more N PATTERN: more than N such lines now.
logged_more() { [ "$(logged "$2")" -gt "$1" ]; }
# What a beckond that did not start was doing: each thread's syscall, then
# a second start under strace (when the lab has it), whose last calls show.
stuck() {
	echo "--- beckond $PID: $(kill -0 $PID 2>/dev/null && echo alive || echo gone)"
	for t in /proc/$PID/task/*; do
		echo "  | thread ${t##*/}: syscall $(cut -d' ' -f1 $t/syscall 2>/dev/null) wchan $(cat $t/wchan 2>/dev/null)"
	done
	kill -9 $PID 2>/dev/null
	[ -x $B/strace ] || return
	rm -f $T/ctl.sock
	$B/strace -f -tt -o $T/strace.log $B/beckond -c $T/beckon.conf -v >$T/beckond2.log 2>&1 &
	wait_for 90 test -S $T/ctl.sock && echo "--- under strace, beckond started"
	echo "--- under strace: the last calls"
	tail -n 40 $T/strace.log | cut -c1-160 | sed 's/^/  | /'
	kill -9 $! 2>/dev/null
}

cat >$T/beckon.conf <<CONF
state_dir = "$T/state";
control_socket = "$T/ctl.sock";
metrics_listen = "";
dns = { listen = ( "127.0.0.1:5353" ); zone = "svc.test"; ttl = 5;
  ns = ( { name = "ns1.svc.test"; address = "127.0.0.1"; } ); };
network = { mode = "bridge"; bridge = "beckon0"; subnet = "10.77.0.0/24"; hold = "none"; };
defaults = {
  backend = "xen"; memory = "128M"; vcpus = 1; boot_timeout = "900s";
  ready = "http:/"; idle_timeout = "1h";
};
services = (
  { name = "pvh"; dns = ( "pvh.svc.test" ); image = "$L/vmlinuz"; address = "10.77.0.2";
    ports = ( 80 ); xen = { cfg = "$L/pvh.cfg"; }; on_idle = "suspend"; idle_timeout = "40s"; },
  { name = "pv"; dns = ( "pv.svc.test" ); image = "$L/vmlinuz"; address = "10.77.0.3";
    ports = ( 80 ); xen = { cfg = "$L/pv.cfg"; }; on_idle = "pause"; idle_timeout = "40s"; },
  { name = "con"; dns = ( "con.svc.test" ); image = "$L/vmlinuz"; address = "10.77.0.4";
    ports = ( 80 ); xen = { cfg = "$L/pvh.cfg"; }; ready = "console:READY con";
    on_idle = "shutdown"; idle_timeout = "40s"; },
  { name = "doomed"; dns = ( "doomed.svc.test" ); image = "$L/vmlinuz"; address = "10.77.0.5";
    ports = ( 80 ); xen = { cfg = "$L/pvh.cfg"; }; ready = "console:^never"; fail = "console:^READY doomed"; }
);
CONF
sed "s|$L/pvh.cfg\"; }; on_idle = \"suspend\"|$L/bad.cfg\"; }; on_idle = \"suspend\"|" $T/beckon.conf >$T/bad.conf

start_beckond() {
	$B/beckond -c $T/beckon.conf -v >>$T/beckond.log 2>&1 &
	PID=$!
	# After a kill -9 it first cleans up (iptables, stale links, domains): minutes here.
	t=$(date +%s)
	wait_for 300 test -S $T/ctl.sock || return 1
	echo "# beckond's control socket after $(($(date +%s) - t)) s"
}

# ---- checks that need no domain -----------------------------------------------------
out=$($B/beckond -c $T/bad.conf -n 2>&1)
if [ $? -ne 0 ] && echo "$out" | grep -q "bad.cfg:3:"; then
	ok "beckond -n reports the bad xl.cfg with FILE:LINE ($(echo "$out" | grep -m1 bad.cfg:3: | sed 's/.*\(bad.cfg:3:.*\)/\1/'))"
else
	not_ok "beckond -n reports the bad xl.cfg with FILE:LINE: $out"
fi
$B/beckond -c $T/beckon.conf -n >/dev/null 2>&1 && ok "beckond -n accepts the lab's config" ||
	not_ok "beckond -n accepts the lab's config: $($B/beckond -c $T/beckon.conf -n 2>&1)"
xl info >/dev/null 2>&1 && ok "xl info: Xen $(xl info | awk '/^xen_version/ {print $3}') runs" || not_ok "xl info works in dom0"

# ---- cold boots: PV, console readiness, the fail pattern, PVH --------------------------
# One at a time, each checked at once: under two layers of emulation (and a
# loaded host) boots side by side take minutes, and a guest that answered
# first would idle out (40 s) before its page is read. PVH last: its
# in-memory counter is read while it is still up.
start_beckond && ok "beckond starts with four Xen services" || { not_ok "beckond starts"; log_tail; stuck; exit 1; }
cold() { # cold NAME ADDRESS
	t0=$(date +%s)
	a=$(answer $1)
	echo "# cold $1 answered in $(($(date +%s) - t0)) s"
	if [ "$a" = "$2" ] && page "$2" | grep -q "hello from $1 on Xen"; then
		ok "a DNS query for cold $1 boots it on Xen, answered once it serves; curl gets its page"
	else
		not_ok "cold $1: answer '$a', page '$(page "$2")'"
		log_tail
	fi
	dom_exists $1 && ok "xl list shows beckon-$1" || not_ok "xl list shows beckon-$1"
}
cold pv 10.77.0.3
xl list -l beckon-pv 2>/dev/null | grep -q '"type": "pv"' && ok "beckon-pv is a PV domain" || not_ok "beckon-pv is a PV domain"
cold con 10.77.0.4
dig $DNS +time=900 +tries=1 doomed.svc.test A >$T/a.doomed
grep -q "status: SERVFAIL" $T/a.doomed && ok "a guest whose console matches its fail pattern: SERVFAIL" ||
	not_ok "the fail pattern: $(grep status: $T/a.doomed)"
grep -q "doomed: .*console" $T/beckond.log && ok "the log quotes the console line that failed it" ||
	not_ok "the log quotes the failing console line"
wait_for 120 sh -c '! xl list beckon-doomed' && ok "the failed guest's domain is destroyed" || not_ok "beckon-doomed is left"
# A guest that resets itself while booting (in CI, a PVH guest once rebooted
# 5 s into its boot, before a word on its console: a triple fault, likely)
# is booted again in the same wake, as xl's on_reboot = "restart" would.
# The reset is asked through xenstore as soon as the domain runs: the
# guest's kernel acts on it as it sets up its watch, early in its boot.
RUNS="pvh: domain beckon-pvh (id [0-9]*) running"
n=$(logged "$RUNS")
(wait_for 600 logged_more $n "$RUNS" && xl sysrq beckon-pvh b) &
cold pvh 10.77.0.2
wait $!
grep -q "pvh: the guest rebooted while booting: booting it again (1 of" $T/beckond.log &&
	ok "a guest that reboots while booting is booted again in the same wake (the query waits)" ||
	{ not_ok "pvh's reboot while booting: $(grep 'pvh: .*reboot' $T/beckond.log | tail -n 2)"; log_tail pvh; }
# The guest's ends from here on (the reboot just made is in the log already).
ENDS="pvh: domain beckon-pvh \(crashed\|rebooted\|powered off\|shut down\|stopped by its watchdog\|destroyed\)"
ends0=$(logged "$ENDS")
xl list -l beckon-pvh 2>/dev/null | grep -q '"type": "pvh"' && ok "beckon-pvh is a PVH domain" || not_ok "beckon-pvh is a PVH domain"
xl list | sed 's/^/# /'

# Memory-only state: the counter lives in the guest's initramfs.
# A CGI forks a shell in the guest: slow under emulation, so generous.
curl -s -m 120 http://10.77.0.2/cgi-bin/bump >/dev/null
curl -s -m 120 http://10.77.0.2/cgi-bin/bump >/dev/null
c=$(page 10.77.0.2 count)
[ "$c" = 2 ] && ok "the PVH guest's in-memory counter is at 2" || not_ok "the counter: '$c'"

# ---- idling: pause (pv), suspend (pvh), shutdown (con) ----------------------------------
wait_for 600 state_is pv paused && ok "on_idle pause: pv is paused once idle" || not_ok "pv paused once idle"
xl list beckon-pv 2>/dev/null | grep -q -- '--p---\|-b-p--\|--p' && ok "xl list shows beckon-pv paused" || not_ok "xl list shows beckon-pv paused: $(xl list beckon-pv 2>&1)"
# A guest may end by itself under two layers of emulation (a crash: once in
# CI). beckon's part is to notice, log it and stop the run; the suspend is
# then checked once more, from a fresh boot, and the guest's end is shown.
pvh_ended() { logged_more $ends0 "$ENDS"; }
pvh_idled() { state_is pvh suspended || pvh_ended; }
wait_for 600 pvh_idled
if ! state_is pvh suspended && pvh_ended; then
	echo "# pvh's guest ended by itself: $(grep "pvh: domain beckon-pvh [a-z]\|pvh: exited" $T/beckond.log | tail -n 1)"
	tail -n 8 $T/state/pvh.console 2>/dev/null | sed 's/^/# pvh.console: /'
	[ "$(answer pvh)" = 10.77.0.2 ] && curl -s -m 120 http://10.77.0.2/cgi-bin/bump >/dev/null &&
		curl -s -m 120 http://10.77.0.2/cgi-bin/bump >/dev/null
	echo "# pvh booted again, its counter at '$(page 10.77.0.2 count)': the suspend once more"
	wait_for 600 state_is pvh suspended
fi
state_is pvh suspended && ok "on_idle suspend: pvh is saved to disk once idle" || { not_ok "pvh suspended once idle"; log_tail pvh; }
dom_exists pvh && not_ok "beckon-pvh is gone once saved" || ok "beckon-pvh is gone once saved"
wait_for 600 state_is con stopped && ok "on_idle shutdown: con is stopped once idle" || not_ok "con stopped once idle"
wait_for 60 sh -c '! xl list beckon-con' && ok "beckon-con is gone after the shutdown" || not_ok "beckon-con gone after the shutdown"

[ "$(answer pv)" = 10.77.0.3 ] && page 10.77.0.3 | grep -q hello && ok "a DNS query wakes the paused pv; curl gets its page" || not_ok "pv wakes from paused"
[ "$(answer pvh)" = 10.77.0.2 ] && ok "a DNS query restores the saved pvh" || { not_ok "pvh restores"; log_tail pvh; }
c=$(page 10.77.0.2 count)
[ "$c" = 2 ] && ok "the in-memory counter survived suspend and restore (2)" || { not_ok "the counter after restore: '$c'"; log_tail pvh; }
[ "$(curl -s -m 120 http://10.77.0.2/cgi-bin/bump)" = 3 ] && ok "the restored guest goes on counting (3)" || not_ok "the restored guest counts on"
# The guest reboots by itself (sysrq b through xenstore): beckon destroys the
# domain and the instance stops at once; a query just after boots it afresh.
# (Counted: a reboot in the idle wait above is in the log already.)
n=$(logged "pvh: domain beckon-pvh rebooted")
xl sysrq beckon-pvh b
wait_for 120 logged_more $n "pvh: domain beckon-pvh rebooted" &&
	ok "a guest that reboots by itself: the domain's shutdown is noticed" || { not_ok "the reboot noticed"; log_tail pvh; }
[ "$(answer pvh)" = 10.77.0.2 ] && [ "$(page 10.77.0.2 count)" = 0 ] &&
	ok "a query just after boots it again, afresh (its counter at 0)" || { not_ok "pvh after its reboot: count '$(page 10.77.0.2 count)'"; log_tail pvh; }

# ---- behind beckon's back -------------------------------------------------------------------
xl destroy beckon-pv
wait_for 120 sh -c "$B/beckonctl -s $T/ctl.sock list | awk '\$1 == \"pv\" && (\$2 == \"stopped\" || \$2 == \"failed\") { f = 1 } END { exit !f }'" &&
	ok "xl destroy behind beckon's back is noticed (death event)" || { not_ok "xl destroy noticed"; log_tail; }
[ "$(answer pv)" = 10.77.0.3 ] && page 10.77.0.3 | grep -q hello && ok "the next query boots pv again" || not_ok "pv boots again after xl destroy"

# ---- kill -9, restart, SIGTERM ----------------------------------------------------------------
kill -9 $PID
wait $PID 2>/dev/null
dom_exists pv && echo "# beckon-pv outlives the killed beckond, as expected"
rm -f $T/ctl.sock
start_beckond || not_ok "beckond restarts after kill -9"
wait_for 180 no_beckon_domains && ok "after kill -9 and a restart, no beckon-* domain is left unaccounted" ||
	{ not_ok "leftovers after kill -9: $(xl list | grep beckon-)"; log_tail; }
[ "$(answer pv)" = 10.77.0.3 ] && ok "the restarted beckond boots pv" || not_ok "the restarted beckond boots pv"
kill -TERM $PID
wait_for 180 sh -c "! kill -0 $PID" && ok "beckond exits on SIGTERM" || not_ok "beckond exits on SIGTERM"
no_beckon_domains && ok "SIGTERM leaves no beckon-* domain" || not_ok "SIGTERM leaves: $(xl list | grep beckon-)"

# ---- hold "syn": a connection alone (its SYN held in NFQUEUE) boots and wakes ------------
# The SYN is sent again after 1, 3, 7, 15, 31, 63 s...: under emulation a boot
# may outlast the kernel's default six tries.
sysctl -qw net.ipv4.tcp_syn_retries=9
sed 's/hold = "none"/hold = "syn"/' $T/beckon.conf >$T/syn.conf
rm -f $T/ctl.sock
$B/beckond -c $T/syn.conf -v >>$T/beckond.log 2>&1 &
PID=$!
if ! wait_for 300 test -S $T/ctl.sock; then
	not_ok "beckond starts with hold syn"
	log_tail
else
	curl -s -m 900 http://10.77.0.3/ | grep -q "hello from pv" &&
		ok "hold syn: a connection alone (a held SYN) boots cold pv on Xen; curl gets its page" ||
		{ not_ok "hold syn: a held SYN boots pv"; log_tail; }
	wait_for 600 state_is pv paused && ok "hold syn: pv idles again (paused)" || not_ok "hold syn: pv paused once idle"
	curl -s -m 900 http://10.77.0.3/ | grep -q "hello from pv" &&
		ok "hold syn: a held SYN wakes the paused pv; curl gets its page" ||
		{ not_ok "hold syn: a held SYN wakes the paused pv"; log_tail; }
fi
kill -TERM $PID
wait_for 180 sh -c "! kill -0 $PID" && no_beckon_domains && ok "hold syn: SIGTERM leaves no beckon-* domain" ||
	not_ok "hold syn: after SIGTERM: $(xl list | grep beckon-)"

# ---- a config libxl refuses ------------------------------------------------------------------------
sed 's/memory = "128M"/memory = "64G"/' $T/beckon.conf >$T/big.conf
$B/beckond -c $T/big.conf -v >$T/big.log 2>&1 &
PID=$!
wait_for 300 test -S $T/ctl.sock
r=$(dig $DNS +time=300 +tries=1 pv.svc.test A | awk '/status:/ {print $6}' | tr -d ,)
[ "$r" = SERVFAIL ] && ok "a domain libxl refuses (64G): SERVFAIL" || not_ok "a domain libxl refuses: status '$r'"
grep -q "xen: libxl:" $T/big.log && ok "libxl's message is in the log ($(grep -m1 'xen: libxl:' $T/big.log | cut -c1-120))" || not_ok "libxl's message in the log"
no_beckon_domains && ok "no half-made domain is left" || not_ok "half-made domain: $(xl list | grep beckon-)"
kill -TERM $PID
wait_for 120 sh -c "! kill -0 $PID"
# beckond's warnings, for whoever reads the lab's output.
grep -h "warning:" $T/beckond.log $T/big.log 2>/dev/null | sort | uniq -c | sort -rn | head -n 15 | sed 's/^/# log: /'
[ -s $T/first-fail ] && { echo "# the first failure (log_tail), again:"; cat $T/first-fail; }
echo "# tests done, failed=$FAILED"
exit $FAILED
