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
INET=$(fresh_net 10.83)
ICNET=$(fresh_net 10.84)

# icl CMD...: run CMD in the client namespace.
icl() { ip netns exec "$ICL" "$@"; }

idlenet_up() {
	bridge_up "$IBR" "$INET" && client_up "$ICL" "bkic$IID" "$ICNET"
}

# The conntrack rule beckon keeps for the bridge (none left after a clean exit).
ct_rules() { iptables -w -S FORWARD 2>/dev/null | grep -c "beckon-ct $IBR"; }
# Also the SYN hold's chain, which a beckond killed mid-test (the test
# interrupted) leaves behind.
idlenet_fw_cleanup() {
	local c=BECKON-HOLD-$IBR
	while iptables -w -D FORWARD -m conntrack --ctstate ESTABLISHED -m comment \
		--comment "beckon-ct $IBR" 2>/dev/null; do :; done
	while iptables -w -D FORWARD -j "$c" 2>/dev/null; do :; done
	while iptables -w -D OUTPUT -j "$c" 2>/dev/null; do :; done
	iptables -w -F "$c" 2>/dev/null
	iptables -w -X "$c" 2>/dev/null
}

# The QEMU accelerator: TEST_ACCEL, else KVM when /dev/kvm opens, else TCG.
# The hello guest reads its network and name from its command line.
idle_qemu_keys() {
	echo 'cmdline = "ip={address}/{prefix} gw={gateway} name={name} port={port}";'
	if [ -n "${TEST_ACCEL:-}" ]; then
		echo "qemu = { accel = \"$TEST_ACCEL\"; };"
	fi
}

# idle_qemu_setup WHAT LETTER: what the QEMU idle tests need first (root,
# the tools, the hello guest $IMG, the network) and their names: DNS_PORT,
# CONF, the service prefix P (LETTER and the pid), and GUEST_MARK, by which
# any QEMU of this run left at exit is killed.
idle_qemu_setup() {
	need_root "$1"
	IMG=$ROOT/build/hello.elf
	for tool in qemu-system-x86_64 curl python3 iptables; do
		command -v $tool >/dev/null || { skip "$1: $tool is not installed"; exit 0; }
	done
	[ -f "$IMG" ] || { not_ok "the hello guest is built ($IMG; make guest)"; finish; }

	idlenet_up || { not_ok "test network set up"; finish; }
	on_exit idlenet_fw_cleanup
	DNS_PORT=$(free_port)
	CONF=$T/beckon.conf
	P=$2$$
	GUEST_MARK="guest=beckon:$P-"
	on_exit "for p in \$(pgrep -f '$GUEST_MARK'); do kill -9 \$p; done"
}

# idle_base_conf: base_conf for $CONF in bridge mode on $IBR, hold "syn".
idle_base_conf() {
	base_conf "$CONF"
	sed -i "s|^network = .*|network = { mode = \"bridge\"; bridge = \"$IBR\"; subnet = \"$INET.0/24\"; hold = \"syn\"; };|" "$CONF"
}

# qemu_of NAME: the pid of service $P-NAME's QEMU; no_qemu: none of ours runs.
qemu_of() { pgrep -f "$GUEST_MARK$1,"; }
no_qemu() { ! pgrep -f "$GUEST_MARK" >/dev/null; }

# probe_id ADDR: the hello guest's /id at ADDR (boot_id, isn_offset: the
# secret part of its TCP ISNs, reseeds, wall_ms) into ID, and the ISN of its
# SYN-ACK, read off the wire (tcpdump in the client namespace), into ISN.
probe_id() {
	icl timeout 60 tcpdump -l -i any -nn -S -c 1 \
		"src host $1 and tcp[tcpflags] & tcp-syn != 0" >"$T/td" 2>"$T/td.err" &
	local td=$!
	wait_for 30 grep -q "listening on" "$T/td.err"
	ID=$(icl curl -s --max-time 30 "http://$1/id")
	wait $td
	ISN=$(sed -n 's/.* seq \([0-9]*\),.*/\1/p' "$T/td" | head -1)
}
# field_of FIELD TEXT: the number after FIELD= in TEXT.
field_of() { sed -n "s/.*$1=\([0-9]*\).*/\1/p" <<<"$2"; }

