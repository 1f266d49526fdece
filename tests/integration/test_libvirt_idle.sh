#!/usr/bin/env bash
# The libvirt backend's idle modes and warm starts, with a private libvirtd
# (libvirtd.sh) and the hello guest in bridge mode, hold "none": each
# on_idle mode (pause, suspend, shutdown, destroy) idles its guest after
# idle_timeout and a query wakes it; suspend saves the domain to
# <state_dir>/<name>.state (virDomainSave) and the guest's request counter
# (GET /count) survives the restore; warm "paused" and "shell" have the
# domain there, paused, before the first query.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/libvirtd.sh"

need_root "libvirt idle"
IMG=$ROOT/build/hello.elf
for tool in /usr/sbin/libvirtd virsh qemu-system-x86_64 curl ip unshare python3; do
	command -v $tool >/dev/null || { not_ok "$tool is installed (make deps)"; finish; }
done
"$BECKOND" -V | grep -qw libvirt || { not_ok "beckond is built with the libvirt backend (libvirt-dev)"; finish; }
[ -f "$IMG" ] || { not_ok "the hello guest is built ($IMG; make guest)"; finish; }

DNS_PORT=$(free_port)
CONF=$T/beckon.conf
NET=$(fresh_net 10.80)
BR=bki$$
NS=bki-lv-$$
VETH=bkiv$$
P=i$$
CLIENT=$NET.200
LV_MARK="guest=beckon-$P-"

on_exit "ip netns del $NS"
on_exit "ip link del $VETH"
on_exit "ip link del $BR"
on_exit "for l in \$(beckon_taps $P-); do ip link del \$l; done"
[ -n "${LV_KEEP:-}" ] && on_exit "cp -r $T/*.log $T/lv/libvirtd.log $T/state $LV_KEEP/"
libvirtd_up || { not_ok "a private libvirtd starts"; finish; }

svc() { # svc NAME ADDRESS KEYS
	cat <<CONF
  { name = "$P-$1"; dns = ( "$1.svc.test" ); address = "$2"; ports = ( 80 ); backend = "libvirt";
    image = "$IMG"; cmdline = "ip={address}/{prefix} gw={gateway} name={name} port={port}";
    boot_timeout = "30s"; libvirt = { uri = "$LV_URI"; }; $3 },
CONF
}
field() { svc_field "$P-$1" "$2"; }
dqa() { dig @127.0.0.1 -p "$DNS_PORT" +time=40 +tries=1 "$@"; }
get() { ip netns exec "$NS" curl -s --max-time 5 "http://$1$2"; }
serves() { [[ "$(get "$1" /)" =~ ^"hello from $P-$2 " ]]; }
state_is() { [ "$(field "$1" state)" = "$2" ]; }
dom() { echo "beckon-$P-$1"; }
gone() { [ -z "$(lv_domains "$(dom "$1")")" ]; }
client_up() {
	ip netns add "$NS" 2>/dev/null
	ip link show "$VETH" >/dev/null 2>&1 ||
		ip link add "$VETH" type veth peer name eth0 netns "$NS" || return 1
	ip link set "$VETH" master "$BR" up &&
		ip netns exec "$NS" ip addr replace "$CLIENT/24" dev eth0 &&
		ip netns exec "$NS" ip link set eth0 up &&
		ip netns exec "$NS" ip link set lo up
}

base_conf "$CONF"
sed -i "s|^network = .*|network = { mode = \"bridge\"; bridge = \"$BR\"; subnet = \"$NET.0/24\"; hold = \"none\"; };|" "$CONF"
IDLE='idle_timeout = "3s";'
printf '%s\n' "$(svc p $NET.2 "$IDLE on_idle = \"pause\";")" \
	"$(svc s $NET.3 "$IDLE on_idle = \"suspend\";")" \
	"$(svc h $NET.4 "$IDLE on_idle = \"shutdown\";")" \
	"$(svc d $NET.5 "$IDLE on_idle = \"destroy\";")" \
	"$(svc wp $NET.6 'idle_timeout = "1h"; warm = "paused";')" \
	"$(svc ws $NET.7 'idle_timeout = "1h"; warm = "shell";')" | add_services "$CONF"
start_daemon "$CONF" || { not_ok "beckond starts"; finish; }
ok "beckond starts with libvirt services for each idle mode"
client_up || { not_ok "client namespace on the bridge"; finish; }

# Warm starts first: made at start, before any query.
check "warm paused: the domain is booted and paused before any query" \
	wait_for 60 eval 'state_is wp paused && [ "$(lv_state "$(dom wp)")" = paused ]'
check "warm shell: the domain is there, paused, its guest never run" \
	wait_for 60 eval 'grep -q "$P-ws: warm shell ready" "$DLOG" && [ "$(lv_state "$(dom ws)")" = paused ]'
check "warm shell: state stopped, with a shell" state_is ws stopped
for w in wp ws; do
	t0=$(now_ms)
	ans=$(dqa +short $w.svc.test A)
	t1=$(now_ms)
	echo "# warm $w: query to answer $((t1 - t0)) ms"
	check "warm $w: the query is answered ($ans, $((t1 - t0)) ms)" [ "$ans" = "$(field $w address)" ]
	check "warm $w: it serves, running" eval 'serves $(field $w address) $w && [ "$(lv_state "$(dom $w)")" = running ]'
done

# The idle modes: boot, idle after 3 s, a query wakes it.
idle_case() { # idle_case NAME ADDRESS STATE VIRSH_STATE
	check "$1: the query boots it" [ "$(dqa +short $1.svc.test A)" = "$2" ]
	check "$1: it serves" serves "$2" "$1"
	check "$1: idle after 3 s: $3" wait_for 30 state_is "$1" "$3"
	if [ "$4" = none ]; then
		check "$1: ... and no domain $(dom "$1") is left" wait_for 10 gone "$1"
	else
		check "$1: ... virsh says $4" [ "$(lv_state "$(dom "$1")")" = "$4" ]
	fi
	check "$1: a query wakes it" [ "$(dqa +short $1.svc.test A)" = "$2" ]
	check "$1: it serves again" serves "$2" "$1"
	check "$1: running again" [ "$(lv_state "$(dom "$1")")" = running ]
}
idle_case p $NET.2 paused paused
check "pause: the same domain throughout (no second boot)" [ "$(field p boots)" = 1 ]
idle_case h $NET.4 stopped none
check "shutdown: the log says idle: shutdown" grep -q "$P-h: idle: shutdown\|$P-h: idle: stop" "$DLOG"
idle_case d $NET.5 stopped none

# suspend: saved to a file, the guest's memory restored with it.
check "suspend: the query boots it" [ "$(dqa +short s.svc.test A)" = "$NET.3" ]
for i in 1 2 3; do get $NET.3 / >/dev/null; done
check "suspend: three requests, the guest counts 3" [ "$(get $NET.3 /count)" = 3 ]
check "suspend: idle: suspended" wait_for 30 state_is s suspended
check "suspend: the state file is there" [ -s "$T/state/$P-s.state" ]
check "suspend: the log says saved, then suspended" \
	bash -c "grep -qE '$P-s: state saved in [0-9.]+ ms' '$DLOG' && grep -q '$P-s: suspended' '$DLOG'"
check "suspend: no domain $(dom s) is left running" gone s
t0=$(now_ms)
ans=$(dqa +short s.svc.test A)
t1=$(now_ms)
echo "# restore through libvirt: query to answer $((t1 - t0)) ms"
check "suspend: a query restores it ($ans, $((t1 - t0)) ms)" [ "$ans" = "$NET.3" ]
check "suspend: the restored guest still counts 3" [ "$(get $NET.3 /count)" = 3 ]
check "suspend: the log says restored" grep -qE "$P-s: restored from suspend in [0-9.]+ ms" "$DLOG"

check "SIGTERM: beckond exits 0 with no sanitizer report" stop_daemon
check "SIGTERM: no beckon domain left" eval '[ -z "$(lv_domains "beckon-$P-")" ]'
finish
