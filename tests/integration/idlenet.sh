# Networks for the idle-policy tests (sourced after lib.sh; needs root):
# - a bridge $IBR holding $INET.1/24, for the guests (made here, before
#   beckond starts, so that forwarding can be set on it; beckond uses it);
# - a client namespace $ICL routed through the host ($ICNET.2/30, default
#   route via $ICNET.1): its connections to guests cross FORWARD, as a
#   remote client's would, so conntrack sees them.
# Forwarding is enabled on these links only. Everything goes at exit.
# Names are short and carry the pid: IFNAMSIZ is 16.

IID=$$
IBR=bkib$IID
ICL=bki-c$IID
INET=10.83.$((RANDOM % 200 + 20))
ICNET=10.84.$((RANDOM % 200 + 20))

# icl CMD...: run CMD in the client namespace.
icl() { ip netns exec "$ICL" "$@"; }

idlenet_up() {
	on_exit "ip link del $IBR"
	ip link add "$IBR" type bridge || return 1
	ip addr add "$INET.1/24" dev "$IBR" && ip link set "$IBR" up || return 1
	sysctl -qw "net.ipv4.conf.$IBR.forwarding=1"

	on_exit "ip netns del $ICL"
	on_exit "ip link del bkic$IID"
	ip netns add "$ICL" || return 1
	ip link add "bkic$IID" type veth peer name eth0 netns "$ICL" || return 1
	ip addr add "$ICNET.1/30" dev "bkic$IID" && ip link set "bkic$IID" up || return 1
	sysctl -qw "net.ipv4.conf.bkic$IID.forwarding=1"
	icl ip addr add "$ICNET.2/30" dev eth0 && icl ip link set eth0 up && icl ip link set lo up ||
		return 1
	icl ip route add default via "$ICNET.1"
}

# The conntrack rule beckon keeps for the bridge (none left after a clean exit).
ct_rules() { iptables -w -S FORWARD 2>/dev/null | grep -c "beckon-ct $IBR"; }
idlenet_fw_cleanup() {
	while iptables -w -D FORWARD -m conntrack --ctstate ESTABLISHED -m comment \
		--comment "beckon-ct $IBR" 2>/dev/null; do :; done
}

# The QEMU accelerator: TEST_ACCEL, else KVM when /dev/kvm opens, else TCG.
idle_qemu_keys() {
	if [ -n "${TEST_ACCEL:-}" ]; then
		echo "qemu = { accel = \"$TEST_ACCEL\"; };"
	fi
}
