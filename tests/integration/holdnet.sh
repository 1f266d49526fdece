# Network namespaces for the hold tests (sourced after lib.sh; needs root).
# holdnet_up makes:
# - a bridge $HBR holding $HNET.1/24, the test's "beckon bridge";
# - guest namespaces (holdnet_guest N): $HNET.N behind a veth on the bridge,
#   where exec services stand in for guests (a real TCP server behind a
#   real bridge, through the same iptables and NFQUEUE path a QEMU guest's
#   traffic takes);
# - a client namespace $HCL routed through the host ($HCNET.2/30, default
#   route via $HCNET.1), so its SYNs traverse FORWARD;
# - host addresses $HSNET.N (holdnet_addr N) on the host's end of the
#   client's veth, where the proxy listens.
# Forwarding is enabled on these links only. Everything goes at exit.
# Names are short and carry the pid: IFNAMSIZ is 16.

HID=$$
HBR=bkhb$HID
HCL=bkh-c$HID
HNET=$(fresh_net 10.79)
HCNET=$(fresh_net 10.78)
HSNET=$(fresh_net 10.76)

# hcl CMD...: run CMD in the client namespace.
hcl() { ip netns exec "$HCL" "$@"; }

holdnet_up() {
	bridge_up "$HBR" "$HNET" && client_up "$HCL" "bkhc$HID" "$HCNET"
}

# holdnet_guest N: a guest namespace bkh-gN-PID holding $HNET.N.
holdnet_guest() {
	local ns=bkh-g$1-$HID
	on_exit "ip netns del $ns"
	ip netns add "$ns" || return 1
	ip link add "bkhg$1x$HID" type veth peer name eth0 netns "$ns" || return 1
	ip link set "bkhg$1x$HID" master "$HBR" up || return 1
	ip -n "$ns" addr add "$HNET.$1/24" dev eth0 && ip -n "$ns" link set eth0 up || return 1
	ip -n "$ns" link set lo up && ip -n "$ns" route add default via "$HNET.1"
}

# holdnet_ns N: the name of guest N's namespace.
holdnet_ns() { echo "bkh-g$1-$HID"; }

# holdnet_svc N NAME DELAY [BOOT_TIMEOUT]: an exec service standing in for
# guest N: its namespace runs "sleep DELAY; busybox httpd" (docroot $DOC) on
# $HNET.N:80; each run is counted in $T/count.N (see runs). DELAY "go":
# until the test makes $T/go.N (see holdnet_wait).
holdnet_svc() {
	local ns
	ns=$(holdnet_ns "$1")
	cat <<CONF
  { name = "$2"; dns = ( "$2.svc.test" ); address = "$HNET.$1"; ports = ( 80 );
    backend = "exec"; ready = "tcp"; boot_timeout = "${4:-5s}"; ${5:-}
    exec = { command = "ip netns exec $ns sh -c 'echo run >>$T/count.$1; $(holdnet_wait "$1" "$3"); exec busybox httpd -f -p $HNET.$1:80 -h $DOC'"; }; },
CONF
}

# holdnet_wait N DELAY: the shell words a guest N waits with: "sleep DELAY",
# or with DELAY "go" a wait for $T/go.N.
holdnet_wait() {
	if [ "$2" = go ]; then
		echo "until [ -e $T/go.$1 ]; do sleep 0.05; done"
	else
		echo "sleep $2"
	fi
}

# runs N: how many times service N was started ($T/count.N).
runs() { cat "$T/count.$1" 2>/dev/null | wc -l; }

# holdnet_addr N: host address $HSNET.N, reachable from the client.
holdnet_addr() { ip addr add "$HSNET.$1/32" dev "bkhc$HID"; }

# hold_chain BRIDGE: the iptables chain beckon keeps for BRIDGE.
hold_chain() { echo "BECKON-HOLD-$1"; }

# Remove what a killed beckond left, should a check below fail.
holdnet_fw_cleanup() {
	local c
	c=$(hold_chain "$HBR")
	while iptables -w -D FORWARD -j "$c" 2>/dev/null; do :; done
	while iptables -w -D OUTPUT -j "$c" 2>/dev/null; do :; done
	iptables -w -F "$c" 2>/dev/null
	iptables -w -X "$c" 2>/dev/null
}

# holdnet_client_rate ADDRESS_NET: with write_conf's services 2 and 3 cold,
# a config with the per-client boot rate (1/s, burst 1): of the client's two
# connections at once (to .2 and .3), one boots its guest, the other is
# refused without a boot, and the log names the client. Refused: curl fails
# connecting (7) or, behind the proxy, reading what was accepted (56). At
# once, not one after the other: on a loaded machine the first boot may
# take longer than the second that refills the client's bucket.
holdnet_client_rate() {
	local net=$1 r2 r3 c2 c3 n refused log=$T/beckond.client-rate.log
	write_conf ""
	echo 'boot_rate = { rate = 0; client_rate = 1; client_burst = 1; };' >>"$CONF"
	rm -f "$T"/count.*
	: >"$log"
	start_daemon "$CONF" "$log" || { not_ok "beckond starts with client_rate"; return 1; }
	hcl curl -s -o /dev/null -m 30 -w '%{http_code}' "http://$net.2/" >"$T/cr.2" &
	c2=$!
	hcl curl -s -o /dev/null -m 30 -w '%{http_code}' "http://$net.3/" >"$T/cr.3" &
	c3=$!
	wait "$c2"
	r2="$? $(cat "$T/cr.2")"
	wait "$c3"
	r3="$? $(cat "$T/cr.3")"
	n=$(($(runs 2) + $(runs 3)))
	if [ "$r2" = "0 200" ]; then refused=$r3; else refused=$r2; fi
	check "client rate: of two connections at once, one boots its guest ($r2 / $r3)" \
		[ "$r2" = "0 200" -o "$r3" = "0 200" ]
	check "client rate: the other is refused ($refused)" \
		[ "${refused%% *}" -eq 7 -o "${refused%% *}" -eq 56 ]
	check "client rate: its guest was not started (one boot in all: $n)" [ "$n" -eq 1 ]
	check "client rate: the log names the client" \
		grep -q "boot refused (client_rate limit), requested by $HCNET\." "$log"
	check "client rate: SIGTERM: clean" stop_daemon
}

# holdnet_limit URL N VERB: with max_held_per_service 5 and service N (DELAY "go") still
# booting, 10 clients to URL: five are held and get 200, five are VERB
# ("refused", "reset") at once, and N boots once.
holdnet_limit() {
	local url=$1 n=$2 verb=$3 okn refn
	for i in $(seq 10); do
		hcl curl -s -o /dev/null -m 30 -w '%{http_code} %{time_total}\n' "$url" >"$T/l.$i" 2>&1 &
		sleep 0.02
	done
	# Guest N (DELAY "go") serves once five were turned away: however slowly
	# ten curls start here, the guest is still booting for all of them.
	wait_for 30 bash -c "[ \$(cat $T/l.* 2>/dev/null | grep -c .) -ge 5 ]"
	touch "$T/go.$n"
	wait_for 30 bash -c "[ \$(cat $T/l.* 2>/dev/null | grep -c .) -eq 10 ]"
	okn=$(cat "$T"/l.* | grep -c '^200 ')
	refn=$(cat "$T"/l.* | awk '$1 == "000" && $2 < 0.5' | wc -l)
	check "limit 5: five held connections succeed ($okn)" [ "$okn" -eq 5 ]
	check "limit 5: five $verb at once ($refn)" [ "$refn" -eq 5 ]
	check "limit 5: one boot" [ "$(runs "$n")" -eq 1 ]
}

# holdnet_kill9 HELD_URL NEW_URL [WHAT]: kill -9 beckond while a client to
# HELD_URL is held: that client is told at once, and a new connection to
# NEW_URL is refused at once (no blackhole); WHAT ends that check's name.
holdnet_kill9() {
	local kc rc t0 t1 n r0
	n=${1%/} n=${n##*.} # the held guest's N
	r0=$(runs "$n")
	hcl curl -s -o /dev/null -m 8 -w '%{http_code}\n' "$1" >"$T/k.out" 2>&1 &
	kc=$!
	# Held once its boot has started (curl's start alone can take a while here).
	wait_for 20 bash -c "[ \$(cat $T/count.$n 2>/dev/null | wc -l) -gt $r0 ]"
	sleep 0.3
	kill -9 "$DPID"
	wait "$DPID" 2>/dev/null
	wait "$kc"
	check "kill -9: the held client is told at once ($(cat "$T/k.out"))" [ "$(cat "$T/k.out")" = 000 ]
	t0=$(now_ms)
	hcl curl -s -o /dev/null -m 30 "$2"
	rc=$?
	t1=$(now_ms)
	# "At once": refused, not held until a timeout (curl's own start can take a while here).
	check "kill -9: a new connection is refused, not held${3:-} (curl exit $rc, $((t1 - t0)) ms)" \
		[ "$rc" -eq 7 -a $((t1 - t0)) -lt 10000 ]
}
