#!/usr/bin/env bash
# Several hosts (a hosts list): two private libvirtd, each in a network
# namespace of its own with its own bridge and subnet, reached from
# beckond in the root namespace over qemu+tcp:// on a veth link (no auth:
# listen_tcp, auth_tcp "none" in their libvirtd.conf). Five hello
# services spread across both by room; a client in a namespace routed
# through this host gets pages through beckon's proxy (hold "proxy"). One
# host's libvirtd is killed: it is marked down, its instances stopped in
# beckon's books, and they boot on the other at the next request; back, its
# leftover domains are destroyed, each logged. A host whose URI answers
# nothing: a clear log line, the host down, SERVFAIL at a wake, nothing
# defined anywhere.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/libvirtd.sh"

need_root "libvirt hosts"
IMG=$ROOT/build/hello.elf
for tool in /usr/sbin/libvirtd virsh qemu-system-x86_64 curl ip unshare python3 dig; do
	command -v $tool >/dev/null || { not_ok "$tool is installed (make deps)"; finish; }
done
"$BECKOND" -V | grep -qw libvirt || { not_ok "beckond is built with the libvirt backend"; finish; }
[ -f "$IMG" ] || { not_ok "the hello guest is built ($IMG; make guest)"; finish; }

DNS_PORT=$(free_port)
CONF=$T/beckon.conf
NET=$(fresh_net 10.81)   # beckon's own subnet: the service (and proxy) addresses
LINK=$(fresh_net 10.82)  # the veth links: $LINK.1/30 and $LINK.5/30 here, .2 and .6 there
CNET=$(fresh_net 10.83)  # the client's link
HNET=$(fresh_net 10.84)  # host i's bridge: 10.84.X+i-1.0/24 (two /24s)
HN1=$HNET
HN2=${HNET%.*}.$((${HNET##*.} + 1))
BR=bkh$$
P=h$$
NSC=bkh-c-$$
LV_MARK="guest=beckon-$P-"
on_exit "pkill -9 -f '$LV_MARK' 2>/dev/null; true"
# A run cut short (beckond killed): its bridge and proxy chains go too.
on_exit_proxy_bridge "$BR" "$NET"

# host_ns I: namespace bkh-I-PID with a veth to here and its bridge br0.
host_ns() {
	local i=$1 ns=bkh-$1-$$ veth=bkhv$1-$$ lnk net
	lnk=$LINK.$((4 * i - 3))
	[ "$i" = 1 ] && net=$HN1 || net=$HN2
	on_exit "ip netns del $ns"
	on_exit "ip link del $veth"
	ip netns add "$ns" && ip link add "$veth" type veth peer name eth0 netns "$ns" || return 1
	ip addr add "$lnk/30" dev "$veth" && ip link set "$veth" up || return 1
	ip -n "$ns" addr add "$LINK.$((4 * i - 2))/30" dev eth0 && ip -n "$ns" link set eth0 up &&
		ip -n "$ns" link set lo up || return 1
	ip -n "$ns" route add default via "$lnk" || return 1
	# A MAC of its own, as a host's configured bridge has: one left to
	# follow its ports changes as libvirt adds taps, and a guest that asked
	# for its gateway before the change sends its answers nowhere.
	ip -n "$ns" link add br0 address "02:bc:00:00:00:0$i" type bridge &&
		ip -n "$ns" addr add "$net.1/24" dev br0 &&
		ip -n "$ns" link set br0 up || return 1
	ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
	# hold "none": the client reaches a guest through this host, routed.
	sysctl -qw "net.ipv4.conf.$veth.forwarding=1"
	# Its guests' subnet is reached through it.
	ip route add "$net.0/24" via "$LINK.$((4 * i - 2))"
}
HOST1=$LINK.2
HOST2=$LINK.6
URI1="qemu+tcp://$HOST1/system"
URI2="qemu+tcp://$HOST2/system"

host_ns 1 && host_ns 2 || { not_ok "two host namespaces with a bridge each"; finish; }
ok "two host namespaces, bridges $HN1.1/24 and $HN2.1/24, reached over veth"
libvirtd_host_up a "bkh-1-$$" "$HOST1" || { not_ok "libvirtd a starts in its namespace"; finish; }
libvirtd_host_up b "bkh-2-$$" "$HOST2" || { not_ok "libvirtd b starts in its namespace"; finish; }
ok "two private libvirtd listen over TCP ($URI1, $URI2)"
client_up "$NSC" "bkhc$$" "$CNET" || { not_ok "client namespace routed through this host"; finish; }

svc() { # svc NAME ADDRESS [KEYS]
	cat <<CONF
  { name = "$P-$1"; dns = ( "$1.svc.test" ); address = "$2"; ports = ( 80 ); backend = "libvirt";
    image = "$IMG"; cmdline = "ip={address}/{prefix} gw={gateway} name={name} port={port}";
    boot_timeout = "90s"; ${3:-} },
CONF
}
base_conf "$CONF"
# A held client waits as long as a boot may take (boot_timeout 90 s), not the
# default 10 s: five TCG guests start at once on two fresh libvirtd.
sed -i "s|^network = .*|network = { mode = \"bridge\"; bridge = \"$BR\"; subnet = \"$NET.0/24\"; hold = \"proxy\"; hold_timeout = \"120s\"; };|" "$CONF"
cat >>"$CONF" <<CONF
hosts = (
  { name = "a"; uri = "$URI1"; bridge = "br0"; subnet = "$HN1.0/24"; max_memory = "1G"; max_instances = 5; },
  { name = "b"; uri = "$URI2"; bridge = "br0"; subnet = "$HN2.0/24"; max_memory = "1G"; max_instances = 5; },
  { name = "c"; uri = "qemu+tcp://127.0.0.1:1/system"; bridge = "br0"; subnet = "10.85.0.0/24"; }
);
CONF
{
	for i in 1 2 3 4 5; do svc s$i "$NET.1$i" 'hosts = ( "a", "b" );'; done
	svc gone "$NET.20" 'hosts = "c";'
} | add_services "$CONF"
check "beckond -n accepts the hosts list" bash -c "'$BECKOND' -n -c '$CONF' 2>&1 | grep -qx 'configuration OK'"
start_daemon "$CONF" || { not_ok "beckond starts with a hosts list"; finish; }
ok "beckond starts with three hosts"

field() { svc_field "$P-$1" "$2"; }
hostf() { # hostf NAME KEY: KEY of host NAME in beckonctl --json hosts
	ctl --json hosts | python3 -c '
import json, sys
for h in json.load(sys.stdin)["hosts"]:
    if h["name"] == sys.argv[1]:
        print(h[sys.argv[2]])' "$1" "$2"
}
host_is() { [ "$(hostf "$1" state)" = "$2" ]; }
# Past boot_timeout (90 s): five guests boot at once under TCG, and beside
# two CPU hogs the first client's 60 s ran out once.
page() { ip netns exec "$NSC" curl -s --max-time "${2:-120}" -w ' %{http_code}' "http://$1/" | tr -d '\n'; }
serves() { [[ "$(page "$1")" =~ ^"hello from $P-$2 ".*" 200"$ ]]; }
doms() { timeout 30 virsh -q -c "$1" list --name 2>/dev/null | grep "^beckon-$P-" | sort | tr '\n' ' '; }

# 1. Both libvirtd answer: up. The unreachable one: down, with the reason.
check "hosts a and b are up" wait_for 30 bash -c "[ \"\$('$BECKONCTL' -s '$DSOCK' --json hosts | grep -o '\"state\": *\"up\"' | wc -l)\" = 2 ]"
check "host c (nothing listens) is marked down" wait_for 30 host_is c down
check "... the log says why (cannot connect)" \
	grep -qE "host c \(qemu\+tcp://127.0.0.1:1/system\) is down: cannot connect" "$DLOG"

# 2. Five services spread by room (equal hosts: one here, one there).
for i in 1 2 3 4 5; do
	[ "$(dig @127.0.0.1 -p "$DNS_PORT" +time=20 +tries=1 +short s$i.svc.test A)" = "$NET.1$i" ] ||
		not_ok "s$i: DNS answers the service address at once (hold proxy)"
done
# What the client got and what beckond said, when one is not served.
served() {
	local got
	got=$(page "$1")
	[[ "$got" =~ ^"hello from $P-$2 ".*" 200"$ ]] && return 0
	echo "# $2: the client got: ${got:-nothing}"
	grep -E "$P-$2[: ]|proxy|host" "$DLOG" | grep -v 'control:' | tail -25 | sed 's/^/# log: /'
	return 1
}
for i in 1 2 3 4 5; do
	check "s$i: a client gets its page through beckon's proxy" served "$NET.1$i" s$i
done
placed=$(for i in 1 2 3 4 5; do field s$i host; done | tr '\n' ' ')
echo "# placed: $placed"
check "spread by room: a b a b a ($placed)" [ "$placed" = "a b a b a " ]
check "s2 runs at its address on b ($(field s2 address))" [ "$(field s2 address)" = "$HN2.12" ]
check "s1 runs at its address on a ($(field s1 address))" [ "$(field s1 address)" = "$HN1.11" ]
check "virsh on a: s1 s3 s5" [ "$(doms "$URI1")" = "beckon-$P-s1 beckon-$P-s3 beckon-$P-s5 " ]
check "virsh on b: s2 s4" [ "$(doms "$URI2")" = "beckon-$P-s2 beckon-$P-s4 " ]
check "the domain is on b's bridge, no tap of beckon's" \
	bash -c "timeout 30 virsh -q -c '$URI2' dumpxml beckon-$P-s2 | grep -q \"<source bridge='br0'/>\""
check "beckonctl hosts: a holds 3 instances, b 2" \
	[ "$(hostf a instances) $(hostf b instances)" = "3 2" ]
check "beckonctl list shows the host column" bash -c "'$BECKONCTL' -s '$DSOCK' list | grep -qE '^$P-s2 +ready +$HN2.12 +b '"

# 3. A service pinned to the unreachable host: SERVFAIL, nothing defined.
rc=$(dig @127.0.0.1 -p "$DNS_PORT" +time=20 +tries=1 gone.svc.test A | sed -n 's/.*status: \([A-Z]*\).*/\1/p')
check "pinned to a down host: SERVFAIL ($rc)" [ "$rc" = SERVFAIL ]
check "... the log says no host is up for it" grep -q "$P-gone: no host is up with room for it" "$DLOG"
check "... nothing defined on a or b" bash -c "! timeout 30 virsh -q -c '$URI1' list --all --name | grep -q gone && ! timeout 30 virsh -q -c '$URI2' list --all --name | grep -q gone"

# 4. Host a's libvirtd dies: a is down, its instances stopped in the books.
libvirtd_host_kill a
check "libvirtd a killed: host a marked down" wait_for 30 host_is a down
states135() { echo "$(field s1 state) $(field s3 state) $(field s5 state)"; }
check "... its instances stopped in beckon's books" wait_for 30 eval '[ "$(states135)" = "stopped stopped stopped" ]'
check "... the log says each was lost with it" \
	bash -c "grep -q '$P-s1: lost with host a' '$DLOG' && grep -q '$P-s5: lost with host a' '$DLOG'"
check "... b's instances serve on" serves "$NET.12" s2
for i in 1 3 5; do
	check "s$i: the next request boots it on b, the page through the proxy" serves "$NET.1$i" s$i
done
check "s1 s3 s5 now on b" [ "$(field s1 host) $(field s3 host) $(field s5 host)" = "b b b" ]
check "s1's address is b's now ($(field s1 address))" [ "$(field s1 address)" = "$HN2.11" ]
check "virsh on b: all five" [ "$(doms "$URI2")" = "beckon-$P-s1 beckon-$P-s2 beckon-$P-s3 beckon-$P-s4 beckon-$P-s5 " ]

# 5. Back: reconnected by the timer, the domains it still ran destroyed, each logged.
libvirtd_host_up a "bkh-1-$$" "$HOST1" || not_ok "libvirtd a starts again"
check "host a is up again (the reconnect timer)" wait_for 60 host_is a up
check "... the domains left there are destroyed" wait_for 60 eval '[ -z "$(doms "$URI1")" ]'
for i in 1 3 5; do
	check "... logged for s$i" grep -q "libvirt $URI1: destroying domain beckon-$P-s$i: no instance of beckon's runs it now" "$DLOG"
done
check "... b's guests serve on" serves "$NET.13" s3

# 6. SIGTERM: nothing left on either host.
check "SIGTERM: beckond exits 0 with no sanitizer report" stop_daemon
check "SIGTERM: no beckon domain on a or b" eval '[ -z "$(doms "$URI1")$(doms "$URI2")" ]'

# 7. hold "none": DNS answers once the guest serves, with its address on its host.
sed -i 's|hold = "proxy"|hold = "none"|' "$CONF"
: >"$T/beckond2.log"
start_daemon "$CONF" "$T/beckond2.log" || { not_ok "beckond starts with hold none"; finish; }
check "hold none: host b is up" wait_for 30 host_is b up
ans=$(dig @127.0.0.1 -p "$DNS_PORT" +time=90 +tries=1 +short s4.svc.test A)
check "hold none: the answer is s4's address on its host ($ans)" \
	[ "$ans" = "$HN1.14" -o "$ans" = "$HN2.14" ]
check "hold none: ... where beckonctl says it runs" [ "$ans" = "$(field s4 address)" ]
check "hold none: the client gets the page there, routed (no proxy)" \
	bash -c "ip netns exec $NSC curl -s --max-time 30 http://$ans/ | grep -q 'hello from $P-s4 '"
check "hold none: a second query, ready now, answers the same" \
	[ "$(dig @127.0.0.1 -p "$DNS_PORT" +time=20 +tries=1 +short s4.svc.test A)" = "$ans" ]
check "hold none: SIGTERM, clean" stop_daemon
check "hold none: no beckon domain on a or b" eval '[ -z "$(doms "$URI1")$(doms "$URI2")" ]'
finish
