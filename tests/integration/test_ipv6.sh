#!/usr/bin/env bash
# IPv6 (address6), through the real daemon, dig, curl, ip6tables and NFQUEUE:
# 1. user mode, hold "proxy": AAAA answers a service's address6 (over a DNS
#    listener on ::1 too), NODATA for a service without one; the proxy
#    listens on address6, and an IPv6 client's connection to the cold
#    service is held while it boots and relayed to its IPv4-only process
#    (the guests are IPv4, as the hello guest is); beckonctl list shows
#    address6; a bad address6 is refused by beckond -n; SIGHUP adds one to
#    a running service (its listener comes, the other's stays).
# 2. bridge mode, hold "syn": an exec service whose process has IPv6 (a
#    namespace on the test's bridge, python's http.server on ::) gets an
#    ip6tables rule; a local curl over IPv6 while it is cold is held (one
#    SYN, released when it is ready) and served; the rule goes once ready;
#    a service that never comes up has its IPv6 client reset (a raw IPv6
#    RST), not left to time out.
# 3. bridge mode, hold "proxy", the real hello guest under QEMU (IPv4 only):
#    a local curl over IPv6 to its address6 is redirected (ip6tables nat)
#    to the proxy, held while the guest boots and relayed to it over IPv4;
#    that rule stays once the guest is ready (it has no IPv6 of its own).
# The hello guest has no IPv6 stack; the process of part 2 has one.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/holdnet.sh"
need_root "ipv6"
for tool in ip6tables ip6tables-restore iptables curl busybox python3 tcpdump dig qemu-system-x86_64; do
	command -v "$tool" >/dev/null || { skip "ipv6: $tool is not installed"; exit 0; }
done
if [ "$(cat /proc/sys/net/ipv6/conf/all/disable_ipv6 2>/dev/null)" != 0 ]; then
	skip "ipv6: IPv6 is disabled on this host"
	exit 0
fi

# Unique-local prefixes of this run: the client's link, the proxy's
# addresses (host side), and the test bridge's subnet.
V6=fd00:$(printf %x $((RANDOM % 65536))):$(printf %x $(($$ % 65536)))
V6CL=$V6:1  # the client's veth: ::1 the host, ::2 the client
V6SV=$V6:76 # proxy addresses on the host: $V6SV::N
V6BR=$V6:79 # the bridge: ::1 the host, ::N guest N

holdnet_up || { not_ok "test network set up"; finish; }
# IPv6 on the client's link, no duplicate address detection (addresses usable at once).
ip -6 addr add "$V6CL::1/64" dev "bkhc$HID" nodad &&
	ip -n "$HCL" -6 addr add "$V6CL::2/64" dev eth0 nodad &&
	ip -n "$HCL" -6 route add default via "$V6CL::1" ||
	{ not_ok "IPv6 on the client's link"; finish; }
for n in 2 3; do
	ip -6 addr add "$V6SV::$n/128" dev "bkhc$HID" nodad || { not_ok "host address6 $n"; finish; }
	holdnet_addr $n || { not_ok "host address $n"; finish; }
done
DNS_PORT=$(free_port)
DOC=$(make_docroot six)
CONF=$T/beckon.conf
CHAIN=$(hold_chain "$HBR")
on_exit holdnet_fw_cleanup
on_exit "ip6tables -w -D FORWARD -j $CHAIN; ip6tables -w -D OUTPUT -j $CHAIN; ip6tables -w -F $CHAIN; ip6tables -w -X $CHAIN"
PCHAIN=BECKON-PROXY-$HBR
on_exit "for t in iptables ip6tables; do \$t -w -t nat -D PREROUTING -j $PCHAIN; \$t -w -t nat -D OUTPUT -j $PCHAIN; \$t -w -t nat -F $PCHAIN; \$t -w -t nat -X $PCHAIN; done"
IMG=$ROOT/build/hello.elf
[ -f "$IMG" ] || { not_ok "the hello guest is built ($IMG; make guest)"; finish; }
G=v6g$$ # the hello guest's service: its QEMU found by this marker, should a check fail
on_exit "for p in \$(pgrep -f 'guest=beckon:$G'); do kill -9 \$p; done"

# ---- 1. user mode, hold "proxy" ----
user_conf() {
	base_conf "$CONF"
	sed -i "s|^  listen = .*|  listen = ( \"127.0.0.1:$DNS_PORT\", \"[::1]:$DNS_PORT\" );|" "$CONF"
	sed -i "s|^network = .*|network = { mode = \"user\"; hold = \"proxy\"; hold_timeout = \"60s\"; };|" "$CONF"
	add_services "$CONF" <<CONF
  { name = "six"; dns = ( "six.svc.test" ); address = "$HSNET.2"; address6 = "$V6SV::2";
    ports = ( 80 ); backend = "exec"; ready = "tcp"; boot_timeout = "60s";
    exec = { command = "sh -c 'echo run >>$T/count.2; sleep 0.3; exec busybox httpd -f -p 127.0.0.1:{port} -h $DOC'"; }; },
  { name = "four"; dns = ( "four.svc.test" ); address = "$HSNET.3"; ports = ( 80 );
    backend = "exec"; ready = "tcp"; boot_timeout = "60s";
    exec = { command = "sh -c 'echo run >>$T/count.3; exec busybox httpd -f -p 127.0.0.1:{port} -h $DOC'"; }; },
CONF
}

user_conf
# Bad input: refused with its line, nothing started.
sed "s|address6 = \"$V6SV::2\"|address6 = \"$HSNET.9\"|" "$CONF" >"$T/bad.conf"
out=$("$BECKOND" -n -c "$T/bad.conf" 2>&1)
check "beckond -n refuses an IPv4 address in address6 ($out)" \
	bash -c "[[ \"\$1\" == *'services[0].address6: bad IPv6 address'* ]]" _ "$out"
sed "s|address = \"$HSNET.3\";|address = \"$HSNET.3\"; address6 = \"$V6SV::2\";|" "$CONF" >"$T/bad.conf"
out=$("$BECKOND" -n -c "$T/bad.conf" 2>&1)
check "beckond -n refuses an address6 used twice ($out)" \
	bash -c "[[ \"\$1\" == *'services[1].address6: $V6SV::2 is already used by service \"six\"'* ]]" _ "$out"
check "beckond -n takes the good config" "$BECKOND" -n -c "$CONF"

start_daemon "$CONF" || { not_ok "beckond starts (user mode, address6)"; finish; }
ok "beckond starts (user mode, address6)"
check "the proxy listens on address6" \
	wait_for 30 bash -c "ss -Htln 'src [$V6SV::2]' | grep -q ':80'"
check "and on address" bash -c "ss -Htln 'src $HSNET.2' | grep -q ':80'"
check "no listener on an address6 of nobody's" bash -c "! ss -Htln 'src [$V6SV::3]' | grep -q ."

out=$(dq six.svc.test AAAA +short)
check "dig AAAA answers address6 ($out)" [ "$out" = "$V6SV::2" ]
out=$(dig @::1 -p "$DNS_PORT" +time=30 +tries=1 six.svc.test AAAA +short)
check "the same over the DNS listener on [::1] ($out)" [ "$out" = "$V6SV::2" ]
out=$(dq six.svc.test A +short)
check "dig A still answers address ($out)" [ "$out" = "$HSNET.2" ]
out=$(dq four.svc.test AAAA)
check "AAAA of a service without address6: NOERROR, no answer (NODATA)" \
	bash -c "echo \"\$1\" | grep -q 'status: NOERROR' && echo \"\$1\" | grep -q 'ANSWER: 0,' && echo \"\$1\" | grep -q 'SOA'" _ "$out"
check "the AAAA query woke six (booting or ready)" \
	wait_for 30 bash -c "[ -s $T/count.2 ]"
state_is() { [ "$(svc_field "$1" state)" = "$2" ]; } # state_is SERVICE STATE
check "six comes up" wait_for 60 state_is six ready
check "beckonctl --json list shows address6" [ "$(svc_field six address6)" = "$V6SV::2" ]
check "beckonctl list shows it in the address column" \
	bash -c "ctl_out=\$('$BECKONCTL' -s '$DSOCK' list); echo \"\$ctl_out\" | grep -q '$HSNET.2,$V6SV::2'"
check "no address6 for a service without one" bash -c "! '$BECKONCTL' -s '$DSOCK' --json list | grep -q '\"address6\": *\"\"'"
ctl stop six >/dev/null
check "six stops" wait_for 30 state_is six stopped
r0=$(runs 2)

# A cold connection from an IPv6 client: held while the service boots, relayed over IPv4.
out=$(hcl curl -s -6 -m 60 -w ' %{http_code} %{time_total}' "http://[$V6SV::2]/")
check "cold IPv6 connection through the proxy: 200 with the page ($(echo $out))" \
	bash -c "[[ \"\$1\" == 'hello from six'*' 200 '* ]]" _ "$out"
check "it waited for the boot (${out##* }s >= 0.25 s)" \
	python3 -c "import sys; sys.exit(not 0.25 <= ${out##* })"
check "one boot for it ($(($(runs 2) - r0)))" [ "$(($(runs 2) - r0))" -eq 1 ]
check "the log has the held IPv6 client's boot" grep -q 'six: booting' "$DLOG"
out=$(hcl curl -s -6 -m 30 -w ' %{http_code}' "http://[$V6SV::2]/")
check "a second IPv6 connection: 200, no new boot ($(echo $out))" \
	bash -c "[[ \"\$1\" == *' 200' ]] && [ $(runs 2) -eq $((r0 + 1)) ]" _ "$out"
out=$(hcl curl -s -4 -m 30 -w ' %{http_code}' "http://$HSNET.2/")
check "IPv4 clients still served ($(echo $out))" bash -c "[[ \"\$1\" == *' 200' ]]" _ "$out"
# SIGHUP: four gets an address6; six's listener (same address6 and ports) is kept.
sed -i "s|address = \"$HSNET.3\";|address = \"$HSNET.3\"; address6 = \"$V6SV::3\";|" "$CONF"
kill -HUP "$DPID"
check "SIGHUP: the new address6 is answered" \
	wait_for 30 bash -c "[ \"\$(dig @127.0.0.1 -p $DNS_PORT +time=5 +tries=1 +short four.svc.test AAAA)\" = '$V6SV::3' ]"
check "SIGHUP: the proxy listens on it" wait_for 30 bash -c "ss -Htln 'src [$V6SV::3]' | grep -q ':80'"
out=$(hcl curl -s -6 -m 60 -w ' %{http_code}' "http://[$V6SV::3]/")
check "SIGHUP: an IPv6 client of four is served ($(echo $out))" bash -c "[[ \"\$1\" == *' 200' ]]" _ "$out"
out=$(hcl curl -s -6 -m 30 -w ' %{http_code}' "http://[$V6SV::2]/")
check "SIGHUP: six's IPv6 listener stayed ($(echo $out)), its process too ($(runs 2) runs)" \
	bash -c "[[ \"\$1\" == *' 200' ]] && [ $(runs 2) -eq $((r0 + 1)) ]" _ "$out"
check "SIGTERM: clean exit" stop_daemon
check "the address6 listener is gone" bash -c "! ss -Htln 'src [$V6SV::2]' | grep -q ."

# ---- 2. bridge mode, hold "syn": a process with IPv6 behind the bridge ----
ip -6 addr add "$V6BR::1/64" dev "$HBR" nodad || { not_ok "IPv6 on the bridge"; finish; }
holdnet_guest 4 || { not_ok "guest namespace 4"; finish; }
NS4=$(holdnet_ns 4)
ip -n "$NS4" -6 addr add "$V6BR::4/64" dev eth0 nodad &&
	ip -n "$NS4" -6 route add default via "$V6BR::1" || { not_ok "IPv6 in guest 4"; finish; }

base_conf "$CONF"
sed -i "s|^network = .*|network = { mode = \"bridge\"; bridge = \"$HBR\"; subnet = \"$HNET.0/24\"; hold = \"syn\"; hold_timeout = \"60s\"; };|" "$CONF"
# python's http.server on :: serves both families (the tcp probe knocks on IPv4).
add_services "$CONF" <<CONF
  { name = "dual"; dns = ( "dual.svc.test" ); address = "$HNET.4"; address6 = "$V6BR::4";
    ports = ( 80 ); backend = "exec"; ready = "tcp"; boot_timeout = "60s";
    exec = { command = "ip netns exec $NS4 sh -c 'echo run >>$T/count.4; sleep 0.5; cd $DOC && exec python3 -m http.server --bind :: 80'"; }; },
  { name = "never6"; dns = ( "never6.svc.test" ); address = "$HNET.5"; address6 = "$V6BR::5";
    ports = ( 80 ); backend = "exec"; ready = "tcp"; boot_timeout = "2s"; exec = { command = "sleep 1000"; }; },
CONF
rule6() { ip6tables -w -S "$CHAIN" 2>/dev/null | grep -q -- "-d $V6BR::4/128 .*NFQUEUE"; }
jumps6() { ip6tables -w -S "$1" | grep -c -- "-j $CHAIN\$"; }
start_daemon "$CONF" || { not_ok "beckond starts (hold syn, address6)"; finish; }
ok "beckond starts (hold syn, address6)"
check "ip6tables chain $CHAIN, one jump from OUTPUT ($(jumps6 OUTPUT)) and FORWARD ($(jumps6 FORWARD))" \
	[ "$(jumps6 OUTPUT)" -eq 1 -a "$(jumps6 FORWARD)" -eq 1 ]
check "the cold service's address6 has an NFQUEUE rule" rule6
check "nothing runs yet" [ "$(runs 4)" -eq 0 ]

ip netns exec "$NS4" tcpdump -i eth0 -nn -l -c 20 "ip6 and tcp dst port 80 and ip6[53] & 0x12 == 0x02" >"$T/syns6" 2>"$T/syns6.err" &
TCPD=$!
on_exit "kill $TCPD"
wait_for 20 grep -q "listening on" "$T/syns6.err"
# (pcap reads no TCP flags of IPv6: ip6[53] is them, right after the fixed header.)
# Without the hold the SYN would meet a closed port (refused at once): a 200 says it was held.
out=$(curl -s -6 -m 60 -w ' %{http_code} %{time_connect}' "http://[$V6BR::4]/")
sleep 0.2
kill "$TCPD" 2>/dev/null
wait "$TCPD" 2>/dev/null
nsyn=$(grep -c 'Flags \[S\]' "$T/syns6")
check "cold IPv6 connection, SYN held: 200 ($(echo $out))" bash -c "[[ \"\$1\" == *' 200 '* ]]" _ "$out"
check "connect took the boot (${out##* }s >= 0.4 s)" python3 -c "import sys; sys.exit(not 0.4 <= ${out##* })"
check "one boot ($(runs 4))" [ "$(runs 4)" -eq 1 ]
check "the guest saw one SYN, the one released ($nsyn)" [ "$nsyn" -eq 1 ]
check "the SYN started the boot" grep -q 'dual: booting' "$DLOG"
check "the rule goes once the service is ready" wait_for 30 bash -c "! ip6tables -w -S $CHAIN | grep -q -- '-d $V6BR::4/128'"
out=$(dq dual.svc.test AAAA +short)
check "dig AAAA dual ($out)" [ "$out" = "$V6BR::4" ]
# A boot that fails: the held IPv6 SYN is answered with a reset (curl: refused, 7), not dropped (28).
t0=$(now_ms)
curl -s -6 -m 40 -o /dev/null "http://[$V6BR::5]/"
rc=$?
check "a failed boot resets its held IPv6 client (curl exit $rc after $(($(now_ms) - t0)) ms)" [ "$rc" -eq 7 ]
check "SIGTERM: clean exit" stop_daemon
check "the ip6tables chain is gone" bash -c "! ip6tables -w -S $CHAIN 2>/dev/null"
check "and its jumps" bash -c "! ip6tables -w -S OUTPUT | grep -q -- '-j $CHAIN'"

# ---- 3. bridge mode, hold "proxy": the IPv4-only hello guest behind address6 ----
base_conf "$CONF"
sed -i "s|^network = .*|network = { mode = \"bridge\"; bridge = \"$HBR\"; subnet = \"$HNET.0/24\"; hold = \"proxy\"; hold_timeout = \"60s\"; };|" "$CONF"
add_services "$CONF" <<CONF
  { name = "$G"; dns = ( "hello.svc.test" ); address = "$HNET.10"; address6 = "$V6BR::10";
    ports = ( 80 ); image = "$IMG"; boot_timeout = "60s";
    cmdline = "ip={address}/{prefix} gw={gateway} name={name} port={port}"; },
CONF
rule6p() { ip6tables -w -t nat -S "$PCHAIN" 2>/dev/null | grep -q -- "-d $V6BR::10/128 .*REDIRECT"; }
start_daemon "$CONF" || { not_ok "beckond starts (hold proxy in bridge mode, address6)"; finish; }
ok "beckond starts (hold proxy in bridge mode, address6)"
check "ip6tables nat chain $PCHAIN redirects address6's port" rule6p
# no_qemu: the guest's QEMU does not run ("[v]": pgrep does not find itself).
no_qemu() { ! pgrep -f "guest=beckon:[v]${G#v}" >/dev/null; }
check "no QEMU runs yet" no_qemu
out=$(curl -s -6 -m 60 -w ' %{http_code}' "http://[$V6BR::10]/")
check "cold IPv6 connection to the hello guest: held, relayed over IPv4, 200 ($(echo $out))" \
	bash -c "[[ \"\$1\" == 'hello from $G'*' 200' ]]" _ "$out"
check "it booted the guest once" [ "$(grep -c "$G: booting" "$DLOG")" -eq 1 ]
check "the guest is ready" wait_for 30 state_is "$G" ready
check "address6's rule stays for the ready guest (IPv6 reaches it through the proxy only)" rule6p
check "the IPv4 rule went (IPv4 clients reach it directly)" \
	wait_for 30 bash -c "! iptables -w -t nat -S $PCHAIN | grep -q -- '-d $HNET.10/32'"
out=$(curl -s -6 -m 30 -w ' %{http_code}' "http://[$V6BR::10]/")
check "a second IPv6 connection to the ready guest: 200 ($(echo $out))" \
	bash -c "[[ \"\$1\" == 'hello from $G'*' 200' ]]" _ "$out"
check "SIGTERM: clean exit" stop_daemon
check "the ip6tables nat chain is gone" bash -c "! ip6tables -w -t nat -S $PCHAIN 2>/dev/null"
check "no QEMU left" no_qemu
finish
