#!/usr/bin/env bash
# hold = "syn" in bridge mode, through the real daemon, iptables and
# NFQUEUE: a SYN to a guest that is not ready is held (one SYN, no
# retransmit) and released when the guest is; 50 concurrent connections
# boot once; beyond the held-connection limit SYNs are reset and the held
# ones still succeed; a failed boot resets its SYNs; a ready guest's rule is
# gone; kill -9 leaves no blackhole and the next start cleans up.
# The guests are exec services in network namespaces behind the test's own
# bridge; the client is another namespace routed through the host.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/holdnet.sh"
need_root "hold syn"
for tool in iptables iptables-restore tcpdump curl busybox; do
	command -v "$tool" >/dev/null || { skip "hold syn: $tool is not installed"; exit 0; }
done

holdnet_up || { not_ok "test network set up"; finish; }
for n in 2 3 4 5 6 7; do holdnet_guest $n || { not_ok "guest namespace $n"; finish; }; done
CHAIN=$(hold_chain "$HBR")
on_exit holdnet_fw_cleanup
DNS_PORT=$(free_port)
DOC=$(make_docroot guest)
CONF=$T/beckon.conf

write_conf() { # write_conf EXTRA_NETWORK_KEYS
	base_conf "$CONF"
	sed -i "s|^network = .*|network = { mode = \"bridge\"; bridge = \"$HBR\"; subnet = \"$HNET.0/24\"; hold = \"syn\"; $1 };|" "$CONF"
	{
		holdnet_svc 2 one 0.3
		holdnet_svc 3 many 0.3
		holdnet_svc 4 never "1000" 1s
		holdnet_svc 5 slow 2
		holdnet_svc 6 lim go 60s # its boot waits for the test
		holdnet_svc 7 local 0.3
	} | add_services "$CONF"
}

field() { svc_field "$1" "$2"; } # field SERVICE KEY
# rule_for N: the chain queues SYNs to guest N.
rule_for() { iptables -w -S "$CHAIN" 2>/dev/null | grep -q -- "-d $HNET.$1/32 .*NFQUEUE"; }
jumps() { iptables -w -S "$1" | grep -c -- "-j $CHAIN\$"; }

write_conf ""
start_daemon "$CONF" || { not_ok "beckond starts with hold syn"; finish; }
ok "beckond starts with hold syn"

# 1. The chain: one jump from FORWARD and from OUTPUT, a rule per guest.
check "chain $CHAIN exists" iptables -w -S "$CHAIN"
check "one jump from FORWARD ($(jumps FORWARD))" [ "$(jumps FORWARD)" -eq 1 ]
check "one jump from OUTPUT ($(jumps OUTPUT))" [ "$(jumps OUTPUT)" -eq 1 ]
check "the rule has --queue-bypass" bash -c "iptables -w -S $CHAIN | grep -q 'queue-bypass'"
for n in 2 3 4 5 6 7; do
	check "guest $n (stopped) has a rule" rule_for $n
done

# 2. DNS answers at once (the boot starts), and a connection is held: one
# SYN, no retransmit. (The DNS check asks for another guest: its answer
# starts that guest's boot.)
# dig's own query time: dig's start alone took over 300 ms under load. An
# answer that waited for this boot would be SERVFAIL after its 1 s timeout.
out=$(dq never.svc.test A)
ans=$(echo "$out" | awk '$4 == "A" {print $5}')
ms=$(echo "$out" | sed -n 's/.*Query time: \([0-9]*\) msec.*/\1/p')
check "DNS answers at once for a cold guest ($ans in ${ms:-?} ms)" [ "$ans" = "$HNET.4" -a "${ms:-9999}" -lt 1000 ]
check "the answer started its boot" wait_for 15 bash -c "[ -s $T/count.4 ]"
hcl tcpdump -i eth0 -nn -l -c 20 "tcp dst port 80 and dst host $HNET.2 and tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn" >"$T/syns" 2>"$T/syns.err" &
TCPD=$!
on_exit "kill $TCPD"
wait_for 20 grep -q "listening on" "$T/syns.err" # tcpdump attaches
out=$(hcl curl -s -m 5 -w ' %{http_code} %{time_connect}' "http://$HNET.2/")
sleep 0.2
kill "$TCPD" 2>/dev/null
wait "$TCPD" 2>/dev/null
nsyn=$(grep -c 'Flags \[S\]' "$T/syns")
tc=${out##* }
check "held connection completes with 200 ($(echo $out))" bash -c "[[ \"\$1\" == 'hello from guest'*' 200 '* ]]" _ "$out"
check "exactly one SYN was sent ($nsyn)" [ "$nsyn" -eq 1 ]
check "connect took about the boot, well under the 1 s retransmit (${tc}s)" \
	python3 -c "import sys; sys.exit(not 0.25 <= $tc < 0.9)"
check "one boot" [ "$(runs 2)" -eq 1 ]
check "the ready guest's rule is gone" wait_for 15 bash -c "! iptables -w -S $CHAIN | grep -q -- '-d $HNET.2/32'"
check "the others keep theirs" rule_for 3
out=$(hcl curl -s -m 2 -w ' %{time_connect}' "http://$HNET.2/")
check "a ready guest answers directly (${out##* }s)" python3 -c "import sys; sys.exit(not ${out##* } < 0.1)"

# 3. Pause: the rule comes back; a SYN resumes the guest.
check "pause one" bash -c "'$BECKONCTL' -s '$DSOCK' pause one >/dev/null"
check "a paused guest's rule is back" wait_for 15 rule_for 2
out=$(hcl curl -s -m 3 -w ' %{http_code}' "http://$HNET.2/")
check "a SYN to a paused guest resumes it ($out)" [ "${out##* }" = 200 ]
check "one is ready again, still one boot" [ "$(field one state) $(runs 2)" = "ready 1" ]

# 4. A local client (OUTPUT) is held as well.
out=$(curl -s -m 5 -w ' %{http_code} %{time_connect}' "http://$HNET.7/")
check "local client held via OUTPUT ($(echo $out))" bash -c "[[ \"\$1\" == *' 200 '* ]] && python3 -c 'import sys; sys.exit(not 0.25 <= ${out##* } < 0.9)'" _ "$out"

# 5. 50 concurrent connections to a cold guest: all 200, one boot.
for i in $(seq 50); do
	hcl curl -s -o /dev/null -m 5 -w '%{http_code}\n' "http://$HNET.3/" >"$T/c.$i" 2>&1 &
done
wait_for 10 bash -c "[ \$(cat $T/c.* 2>/dev/null | grep -c .) -eq 50 ]"
n=$(cat "$T"/c.* | grep -cx 200)
check "50 concurrent connections: all 200 ($n)" [ "$n" -eq 50 ]
check "50 concurrent connections: one boot ($(runs 3) runs)" [ "$(runs 3)" -eq 1 ]
check "50 concurrent connections: one 'booting' line" [ "$(grep -c 'many: booting' "$DLOG")" -eq 1 ]

# 6. A failed boot: the held SYN is answered with a reset at boot_timeout.
t0=$(now_ms)
hcl curl -s -o /dev/null -m 5 "http://$HNET.4/"
rc=$?
t1=$(now_ms)
check "failed boot: connection refused (curl exit $rc, want 7)" [ "$rc" -eq 7 ]
check "failed boot: not before boot_timeout, nor long after ($((t1 - t0)) ms)" [ $((t1 - t0)) -ge 900 -a $((t1 - t0)) -lt 15000 ]
check "failed boot: still a rule" rule_for 4
check "SIGTERM: beckond exits cleanly" stop_daemon
check "SIGTERM: the chain is gone" bash -c "! iptables -w -S $CHAIN 2>/dev/null"
check "SIGTERM: no jump left" [ "$(jumps FORWARD) $(jumps OUTPUT)" = "0 0" ]

# 7. The held-connection limit: 5 held, the rest reset at once.
write_conf "max_held_per_service = 5;"
start_daemon "$CONF" || { not_ok "beckond starts with max_held_per_service 5"; finish; }
holdnet_limit "http://$HNET.6/" 6 refused

# 8. kill -9 with a connection held: no blackhole, and the next start cleans up.
# The kernel sends the SYN again after 1, 3, 7, 15 s: a loaded machine may need the later ones.
hcl curl -s -m 40 "http://$HNET.5/" >"$T/held.out" 2>&1 &
HELD=$!
wait_for 15 bash -c "[ \$(cat $T/count.5 2>/dev/null | wc -l) -ge 1 ]"
sleep 0.2
kill -9 "$DPID"
wait "$DPID" 2>/dev/null
check "kill -9: the chain and its rules are still there" rule_for 5
ip netns exec "$(holdnet_ns 5)" busybox httpd -f -p "$HNET.5:80" -h "$DOC" &
SRV=$!
on_exit "kill $SRV"
sleep 0.2
out=$(hcl curl -s -m 3 "http://$HNET.5/")
check "kill -9: a new connection reaches the guest (--queue-bypass: $out)" [ "$out" = "hello from guest" ]
wait "$HELD"
check "kill -9: the held connection completes once its SYN is sent again ($(cat "$T/held.out"))" \
	[ "$(cat "$T/held.out")" = "hello from guest" ]
kill "$SRV"
wait "$SRV" 2>/dev/null
iptables -w -I FORWARD 1 -j "$CHAIN" # a duplicate jump, as a crash could leave
start_daemon "$CONF" || { not_ok "beckond starts after kill -9"; finish; }
check "restart: one chain, one jump each ($(jumps FORWARD) $(jumps OUTPUT))" \
	[ "$(jumps FORWARD) $(jumps OUTPUT)" = "1 1" ]
check "restart: the chain was rewritten (rules for every guest)" \
	[ "$(iptables -w -S "$CHAIN" | grep -c NFQUEUE)" -eq 6 ]
out=$(hcl curl -s -m 5 "http://$HNET.5/")
check "restart: holding works again ($out)" [ "$out" = "hello from guest" ]
check "SIGTERM: beckond exits cleanly" stop_daemon
check "SIGTERM: nothing left in iptables" bash -c "! iptables -w -S 2>/dev/null | grep -q -- '$CHAIN'"

# 9. The per-client boot rate holds for SYNs as for queries.
holdnet_client_rate "$HNET"
finish
