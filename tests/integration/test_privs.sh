#!/usr/bin/env bash
# Least privilege: beckond started as root with `user = "..."` runs as that
# user, keeping CAP_NET_ADMIN, CAP_NET_BIND_SERVICE and CAP_NET_RAW only
# (/proc/PID/status), and still boots guests on a DNS query: an exec
# service and a QEMU hello guest in user mode, and a QEMU guest in bridge
# mode behind the SYN hold (taps, NFQUEUE, iptables through its children).
# Its guests run as that user with no capability, QEMU under its seccomp
# sandbox. Its files have the narrowest modes; SIGTERM and kill -9 leave
# nothing behind. The user is made for this test and removed at exit.
. "$(dirname "$0")/lib.sh"

need_root "privileges"
IMG=$ROOT/build/hello.elf
for tool in qemu-system-x86_64 curl ip python3 useradd userdel busybox; do
	command -v $tool >/dev/null || { not_ok "$tool is installed"; finish; }
done
[ -f "$IMG" ] || { not_ok "the hello guest is built ($IMG; make guest)"; finish; }

U=bkpriv$$ # a user of this run's own
useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$U" ||
	{ not_ok "a test user $U is made"; finish; }
on_exit "userdel $U"
UID_=$(id -u "$U")
# Debian's udev makes /dev/net/tun 0666; where it is not, this user is let
# open it (QEMU attaches to its tap by name), and only for this run.
if ! su -s /bin/sh "$U" -c 'test -r /dev/net/tun -a -w /dev/net/tun' 2>/dev/null; then
	command -v setfacl >/dev/null || { skip "privileges: /dev/net/tun is not open to users and setfacl is missing (make deps)"; finish; }
	# Put back exactly what was there (no ACL at all, usually), not a mask.
	getfacl -p /dev/net/tun >"$T/tun.acl" 2>/dev/null && on_exit "setfacl --restore='$T/tun.acl'"
	setfacl -m "u:$U:rw" /dev/net/tun
fi
chmod 0711 "$T" # the user reaches its state_dir below, nothing else here

DNS_PORT=$(free_port)
CONF=$T/beckon.conf
LNET=127.$((20 + RANDOM % 200)).$((1 + RANDOM % 250))
HPORT=$(free_port)
P=p$$ # service names of this run
GUEST_MARK="guest=beckon:$P-"
on_exit "for p in \$(pgrep -f '$GUEST_MARK'); do kill -9 \$p; done"
on_exit "pkill -9 -f 'httpd -f -p $LNET.2:$HPORT'"

status_of() { sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status"; } # status_of PID FIELD
uid_of() { status_of "$1" Uid | awk '{print $1 $2 $3 $4}'; }
mode_of() { stat -c '%a %U' "$1"; }
no_taps() { [ -z "$(beckon_taps "$P-")" ]; }
qemu_of() { pgrep -f "$GUEST_MARK$1,"; }
no_qemu() { ! pgrep -f "$GUEST_MARK" >/dev/null; }
field() { svc_field "$P-$1" "$2"; }
KEPT=0000000000003400 # CAP_NET_ADMIN (12), CAP_NET_RAW (13), CAP_NET_BIND_SERVICE (10)
EFF=0000000000001000  # between binds CAP_NET_ADMIN only (CAP_NET_RAW is iptables')

# 1. The key is checked by -n: a user that does not exist is an error at its line.
base_conf "$CONF"
echo 'user = "bkpriv-nobody-here";' >>"$CONF"
out=$("$BECKOND" -n -c "$CONF" 2>&1)
check "-n: an unknown user is an error at its line ($out)" \
	bash -c "[[ '$out' =~ beckon.conf:[0-9]+:.*user.*bkpriv-nobody-here ]]"

# 2. User mode: an exec service and a QEMU guest, beckond as $U.
base_conf "$CONF"
sed -i "1i user = \"$U\";" "$CONF"
sed -i "s|^control_socket = .*|control_socket = \"$T/run/ctl.sock\";|" "$CONF"
# Port 53 too (on an address of this run's own), bound after the user change.
sed -i "s|^  listen = ( \"127.0.0.1:$DNS_PORT\" );|  listen = ( \"127.0.0.1:$DNS_PORT\", \"$LNET.9:53\" );|" "$CONF"
cat <<CONF | add_services "$CONF"
  { name = "$P-exec"; dns = ( "exec.svc.test" ); address = "$LNET.2"; ports = ( $HPORT );
    backend = "exec"; exec = { command = "busybox httpd -f -p {address}:$HPORT -h $T"; }; },
  { name = "$P-vm"; dns = ( "vm.svc.test" ); address = "$LNET.3"; ports = ( 8080 ); image = "$IMG";
    cmdline = "ip={address}/{prefix} gw={gateway} name={name} port={port}";
    ready = "console:^READY"; boot_timeout = "20s"; },
CONF
echo "privs-page" >"$T/index.html"
chmod 0644 "$T/index.html"
start_daemon "$CONF" || { not_ok "beckond starts with user = $U"; finish; }
ok "beckond starts with user = $U"
check "the log says which user and what it keeps" \
	grep -q "running as user $U (uid $UID_), keeping CAP_NET_ADMIN, CAP_NET_BIND_SERVICE, CAP_NET_RAW (for iptables only)" "$DLOG"
check "beckond runs as $U (Uid: $(status_of $DPID Uid))" [ "$(uid_of $DPID)" = "$UID_$UID_$UID_$UID_" ]
check "beckond's effective capabilities, serving: CAP_NET_ADMIN alone ($(status_of $DPID CapEff))" \
	[ "$(status_of $DPID CapEff)" = $EFF ]
check "and its permitted and bounding sets no more ($(status_of $DPID CapPrm), $(status_of $DPID CapBnd))" \
	[ "$(status_of $DPID CapPrm) $(status_of $DPID CapBnd)" = "$KEPT $KEPT" ]
check "no ambient capability, no_new_privs set" \
	[ "$(status_of $DPID CapAmb) $(status_of $DPID NoNewPrivs)" = "0000000000000000 1" ]
check "its groups are $U's alone ($(status_of $DPID Groups))" \
	[ "$(status_of $DPID Groups | xargs)" = "$(id -G "$U" | xargs)" ]
check "state_dir is $U's, 0700 ($(mode_of $T/state))" [ "$(mode_of $T/state)" = "700 $U" ]
check "the control socket's directory it made is $U's, 0750 ($(mode_of $T/run))" \
	[ "$(mode_of $T/run)" = "750 $U" ]
check "the control socket is user and group only, 0660 ($(mode_of $T/run/ctl.sock))" \
	[ "$(mode_of $T/run/ctl.sock)" = "660 $U" ]
# The DNS thread: realtime (the allowance raised while root, dropped once
# it is set), and no capability at all (capabilities are per thread). Root
# without CAP_SYS_RESOURCE (some containers) cannot raise it: a warning.
DNS_TID=$(grep -lx beckond-dns /proc/"$DPID"/task/*/comm | head -1 | cut -d/ -f5)
dns_policy=$(chrt -p "$DNS_TID" | sed -n 's/.*policy: //p; s/.*priority: //p' | xargs)
if (ulimit -r 1) 2>/dev/null; then
	check "the DNS thread, as $U, runs at realtime priority 1 ($dns_policy)" [ "$dns_policy" = "SCHED_FIFO 1" ]
else
	check "RLIMIT_RTPRIO cannot be raised here: the DNS thread, as $U, stays at SCHED_OTHER ($dns_policy)" \
		[ "$dns_policy" = "SCHED_OTHER 0" ]
	check "and beckond says why" grep -q "realtime priority not permitted (CAP_SYS_NICE or an RLIMIT_RTPRIO of 1 wanted)" "$DLOG"
fi
check "the DNS thread has no capability ($(sed -n 's/^CapPrm:\t//p' /proc/$DPID/task/$DNS_TID/status))" \
	[ "$(sed -n 's/^CapPrm:\t//p; s/^CapEff:\t//p' /proc/$DPID/task/$DNS_TID/status | xargs)" = "0000000000000000 0000000000000000" ]
check "beckond's realtime allowance is back to 0" \
	grep -qE '^Max realtime priority +0 +0 ' /proc/$DPID/limits

ans=$(dig @"$LNET.9" -p 53 +time=5 +tries=1 +short ns1.svc.test A)
check "DNS on port 53, bound as $U with CAP_NET_BIND_SERVICE, answers ($ans)" [ "$ans" = 127.0.0.1 ]
ans=$(dq +short exec.svc.test A)
check "a DNS query for the exec service answers ($ans)" [ "$ans" = "$LNET.2" ]
check "and the service serves" wait_for 20 bash -c "curl -s --max-time 2 http://$LNET.2:$HPORT/ | grep -q privs-page"
EPID=$(field exec pid)
check "the exec process runs as $U ($(uid_of $EPID))" [ "$(uid_of $EPID)" = "$UID_$UID_$UID_$UID_" ]
check "with no capability ($(status_of $EPID CapEff), ambient $(status_of $EPID CapAmb))" \
	[ "$(status_of $EPID CapEff) $(status_of $EPID CapPrm) $(status_of $EPID CapAmb)" = \
		"0000000000000000 0000000000000000 0000000000000000" ]
check "its pid file is 0600 ($(mode_of $T/state/$P-exec.exec.pid))" \
	[ "$(mode_of $T/state/$P-exec.exec.pid)" = "600 $U" ]

ans=$(dq +short vm.svc.test A)
check "a DNS query for the QEMU service answers ($ans)" [ "$ans" = "$LNET.3" ]
# hold "none": the answer came once the guest was ready; reach it at its hostfwd port.
HP=$(sed -n "s/.*$P-vm: user networking: guest port 8080 at 127.0.0.1:\([0-9]*\).*/\1/p" "$DLOG" | tail -1)
check "the guest serves at its hostfwd port ($HP)" \
	wait_for 30 bash -c "curl -s --max-time 3 http://127.0.0.1:$HP/ | grep -q 'hello from $P-vm'"
QPID=$(qemu_of vm)
check "QEMU runs as $U ($(uid_of $QPID))" [ -n "$QPID" ] && [ "$(uid_of $QPID)" = "$UID_$UID_$UID_$UID_" ]
check "QEMU has no capability ($(status_of $QPID CapEff))" \
	[ "$(status_of $QPID CapEff) $(status_of $QPID CapAmb)" = "0000000000000000 0000000000000000" ]
check "QEMU is in seccomp filter mode (Seccomp: $(status_of $QPID Seccomp))" [ "$(status_of $QPID Seccomp)" = 2 ]
check "with -sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny" \
	grep -qz 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny' /proc/$QPID/cmdline
check "the QMP socket and saved files are $U's alone" \
	bash -c "! find '$T/state' -mindepth 1 -perm /077 | grep -q ."
# Pause and resume over QMP still work under the sandbox.
check "pause under the sandbox" ctl pause "$P-vm"
check "resume under the sandbox" ctl resume "$P-vm"
check "the guest serves after resume" \
	wait_for 20 bash -c "curl -s --max-time 3 http://127.0.0.1:$HP/ | grep -q 'hello from $P-vm'"

# A reload cannot change the user: it says so and keeps running as $U. It
# may add a listener on port 53: CAP_NET_BIND_SERVICE is raised for it.
sed -i "/^user = /d" "$CONF"
sed -i "s|\"$LNET.9:53\" );|\"$LNET.9:53\", \"$LNET.10:53\" );|" "$CONF"
kill -HUP "$DPID"
check "reload without the user key: the log says it takes a restart" \
	wait_for 20 grep -q "reload: user changes take a restart; keeping $U" "$DLOG"
check "... and beckond is still $U" [ "$(uid_of $DPID)" = "$UID_$UID_$UID_$UID_" ]
ans=$(dig @"$LNET.10" -p 53 +time=5 +tries=1 +short ns1.svc.test A)
check "the reload's new listener on port 53 answers ($ans)" [ "$ans" = 127.0.0.1 ]
check "... and CAP_NET_BIND_SERVICE is down again ($(status_of $DPID CapEff))" \
	[ "$(status_of $DPID CapEff)" = $EFF ]
check "SIGTERM: beckond exits cleanly" stop_daemon
check "the log says what the stop did" grep -q "shutting down; stopping 2 running instances" "$DLOG"
none_left() { no_qemu && ! pgrep -f "httpd -f -p $LNET.2:$HPORT" >/dev/null; }
check "no QEMU and no exec process is left" none_left
check "the control socket is gone" [ ! -e "$T/run/ctl.sock" ]

# 3. Bridge mode and the SYN hold as $U: taps, the bridge, NFQUEUE and iptables.
NET=$(fresh_net 10.81)
BR=bkpb$$
on_exit "ip link del $BR"
on_exit "for l in \$(beckon_taps $P-); do ip link del \$l; done"
DNS_PORT=$(free_port)
base_conf "$CONF"
sed -i "1i user = \"$U\";" "$CONF"
sed -i "s|^control_socket = .*|control_socket = \"$T/run/ctl.sock\";|" "$CONF"
sed -i "s|^network = .*|network = { mode = \"bridge\"; bridge = \"$BR\"; subnet = \"$NET.0/24\"; hold = \"syn\"; };|" "$CONF"
cat <<CONF | add_services "$CONF"
  { name = "$P-br"; dns = ( "br.svc.test" ); address = "$NET.2"; ports = ( 80 ); image = "$IMG";
    cmdline = "ip={address}/{prefix} gw={gateway} name={name} port={port}"; boot_timeout = "20s";
    idle_timeout = "3s"; on_idle = "suspend"; },
CONF
: >"$T/beckond2.log"
start_daemon "$CONF" "$T/beckond2.log" || { not_ok "beckond starts in bridge mode as $U"; finish; }
ok "beckond starts in bridge mode, hold syn, as $U"
check "its iptables chain is there (made by iptables as $U, with the kept capabilities)" \
	bash -c "iptables -S | grep -q 'BECKON-HOLD-$BR'"
check "it holds SYNs on NFQUEUE" grep -q "holding SYNs in NFQUEUE" "$T/beckond2.log"
got=$(curl -s --max-time 20 "http://$NET.2/") # from this host: OUTPUT is held too
check "a connection held by the SYN hold boots the guest and gets its page ($got)" \
	bash -c "[[ '$got' == 'hello from $P-br '* ]]"
QPID=$(qemu_of br)
TAP=$(beckon_tap "$P-br")
check "bridge QEMU runs as $U, sandboxed ($(uid_of $QPID), Seccomp $(status_of $QPID Seccomp))" \
	[ "$(uid_of $QPID) $(status_of $QPID Seccomp) $(status_of $QPID CapEff)" = "$UID_$UID_$UID_$UID_ 2 0000000000000000" ]
check "its tap $TAP is owned by $U ($(cat /sys/class/net/$TAP/owner 2>/dev/null))" \
	[ "$(cat /sys/class/net/$TAP/owner 2>/dev/null)" = "$UID_" ]
check "the idle policy's conntrack rule is there (iptables through posix_spawn, as $U)" \
	bash -c "iptables -S FORWARD | grep -q 'beckon-ct $BR'"
is_suspended() { [ "$(field br state)" = suspended ]; }
check "idle 3 s: suspended (QMP migrate to a file under the sandbox)" wait_for 30 is_suspended
check "the saved state is $U's alone ($(mode_of "$T/state/$P-br.state" 2>/dev/null))" \
	[ "$(mode_of "$T/state/$P-br.state" 2>/dev/null)" = "600 $U" ]
got=$(curl -s --max-time 20 "http://$NET.2/")
check "a held connection restores it ($got)" bash -c "[[ '$got' == 'hello from $P-br '* ]]"
check "the log says restored" grep -qE "$P-br: restored from suspend in [0-9.]+ ms" "$T/beckond2.log"
QPID=$(qemu_of br)
check "the restored QEMU is $U's and sandboxed too ($(status_of "$QPID" Seccomp))" \
	[ "$(uid_of $QPID) $(status_of $QPID Seccomp)" = "$UID_$UID_$UID_$UID_ 2" ]
# kill -9: the guest goes with beckond (PR_SET_PDEATHSIG); a restart cleans the rest.
kill -9 "$DPID"
check "kill -9 of beckond: its QEMU goes with it" wait_for 20 no_qemu
start_daemon "$CONF" "$T/beckond2.log" || { not_ok "beckond starts again after kill -9"; finish; }
check "the next start left no tap of the last one (and made none yet)" wait_for 10 no_taps
check "SIGTERM in bridge mode: exits cleanly" stop_daemon
check "no tap is left" no_taps
check "no bridge, no chain is left" \
	bash -c "! ip link show $BR >/dev/null 2>&1 && ! iptables -S | grep -q 'BECKON-HOLD-$BR'"
finish
