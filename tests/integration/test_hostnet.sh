#!/usr/bin/env bash
# launcher/hostnet*.c through tests/helpers/hostnet_tool, inside a network
# namespace made here (nothing touches the root namespace), checked with ip.
. "$(dirname "$0")/lib.sh"

need_root "hostnet"
HN=${HOSTNET_TOOL:-$ROOT/build/asan/helpers/hostnet_tool}
if ! [ -x "$HN" ]; then
	not_ok "hostnet_tool is built ($HN; make build/asan/helpers/hostnet_tool)"
	finish
fi

NS=bkt-hn-$$
BR=bkb0
ERR=$T/tool.err
# The links this test makes in its namespace, as the root namespace shows them
# (only these: other programs may add links to the host meanwhile).
ours_in_root() {
	local names="$BR foreign0"
	for s in www api aaa orphan; do names="$names $(ip netns exec "$NS" "$HN" tapname "$s" 2>/dev/null)"; done
	ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -Fxf <(tr ' ' '\n' <<<"$names") | sort
}
ip netns add "$NS" || { not_ok "create namespace $NS"; finish; }
on_exit "ip netns del $NS"

nse() { ip netns exec "$NS" "$@"; }
hn() { ip netns exec "$NS" "$HN" "$@" 2>>"$ERR"; }
not() { ! "$@"; }
link_of() { nse ip link show "$1" >/dev/null 2>&1; }

# --- bridge ------------------------------------------------------------------
check "bridge: created when absent" [ "$(hn bridge $BR 10.99.7.0/24)" = created ]
check "bridge: is a bridge, up, marked as beckon's" \
	bash -c "ip netns exec $NS ip -d link show $BR | grep -q 'bridge forward_delay' &&
		 ip netns exec $NS ip link show $BR | grep -q '<.*,UP' &&
		 ip netns exec $NS ip -d link show $BR | grep -q 'alias beckon$'"
check "bridge: holds the subnet's first address" \
	bash -c "ip netns exec $NS ip -4 addr show $BR | grep -q 'inet 10.99.7.1/24'"
check "bridge: a second ensure finds it" [ "$(hn bridge $BR 10.99.7.0/24)" = existed ]
check "bridge: still one address after the second ensure" \
	[ "$(nse ip -4 -o addr show $BR | wc -l)" = 1 ]
nse ip link set $BR down
hn bridge $BR 10.99.7.0/24 >/dev/null
check "bridge: ensure sets a downed bridge up again" \
	bash -c "ip netns exec $NS ip link show $BR | grep -q '<.*,UP'"
nse ip link add notbr type veth peer name notbr-p
check "bridge: a non-bridge of that name is refused" not hn bridge notbr 10.99.8.0/24
check "bridge: the refusal names the link" grep -q 'notbr exists and is not a bridge' "$ERR"

# --- names and MACs ----------------------------------------------------------
t1=$(hn tapname www) t2=$(hn tapname www)
check "tap name: deterministic ($t1)" [ -n "$t1" -a "$t1" = "$t2" ]
long=$(hn tapname a-service-name-far-longer-than-ifnamsiz)
check "tap name: at most 15 characters ($long)" [ "${#long}" -le 15 ]
a=$(hn tapname service-alpha-one) b=$(hn tapname service-alpha-two)
check "tap name: names sharing a long prefix differ ($a $b)" [ "$a" != "$b" ]
odd=$(hn tapname 'we/ird:na me')
check "tap name: no '/', ':' or space in it ($odd)" bash -c "! echo '$odd' | grep -q '[/: ]'"
mac=$(hn mac www)
check "mac: 02:62:6b prefix, locally administered unicast ($mac)" \
	bash -c "echo '$mac' | grep -qE '^02:62:6b(:[0-9a-f]{2}){3}$'"
check "mac: deterministic, differs per service" \
	[ "$(hn mac www)" = "$mac" -a "$(hn mac api)" != "$mac" ]

# --- taps --------------------------------------------------------------------
tap=$(hn tap $BR www)
check "tap: created ($tap)" [ "$tap" = "$t1" ]
check "tap: a persistent tap, no packet info" \
	bash -c "ip netns exec $NS ip -d link show $tap | grep -q 'tun type tap pi off .*persist on'"
check "tap: enslaved to the bridge and up" \
	bash -c "ip netns exec $NS ip link show $tap | grep -q '<.*,UP.*master $BR'"
check "tap: marked with its service" bash -c "ip netns exec $NS ip -d link show $tap | grep -q 'alias beckon:www$'"
check "tap: its own MAC is high (fe:...), not the guest's" \
	bash -c "ip netns exec $NS ip link show $tap | grep -q 'link/ether fe:62:6b'"
# Static, so frames for a guest that has not spoken yet (a probe's SYNs
# while it boots) go to its tap alone instead of flooding every guest.
fdb_of() { ip netns exec $NS bridge fdb show dev "$1" | grep -c "^$2 master $BR static"; }
check "tap: the guest's MAC is a static bridge entry on its tap" [ "$(fdb_of "$tap" "$mac")" = 1 ]
check "tap: creating it again reuses it" [ "$(hn tap $BR www)" = "$tap" ]
check "tap: ... with still one static entry for its guest" [ "$(fdb_of "$tap" "$mac")" = 1 ]
check "tap: on a missing bridge fails" not hn tap nosuchbr orphan
check "tap: the failure names the bridge" grep -q 'bridge nosuchbr' "$ERR"
check "tap: nothing left by the failure" not link_of "$(hn tapname orphan)"

# --- neighbours --------------------------------------------------------------
check "neigh: add" hn neigh $BR 10.99.7.2 www
check "neigh: permanent, with the service's MAC" \
	bash -c "ip netns exec $NS ip neigh show dev $BR 10.99.7.2 | grep -q 'lladdr $mac PERMANENT'"
brmac=$(nse ip link show $BR | awk '/link\/ether/ {print $2}')
tap2=$(hn tap $BR api)
tap3=$(hn tap $BR aaa)
check "neigh: survives taps joining the bridge (its MAC stays $brmac)" \
	bash -c "ip netns exec $NS ip neigh show dev $BR 10.99.7.2 | grep -q PERMANENT &&
		 ip netns exec $NS ip link show $BR | grep -q 'link/ether $brmac'"
hn tap-destroy "$tap3"
check "neigh: survives a tap leaving the bridge" \
	bash -c "ip netns exec $NS ip neigh show dev $BR 10.99.7.2 | grep -q PERMANENT"
hn neigh $BR 10.99.7.2 api
check "neigh: adding again replaces the entry" \
	bash -c "ip netns exec $NS ip neigh show dev $BR 10.99.7.2 | grep -q 'lladdr $(hn mac api) PERMANENT'"
check "neigh: delete" hn neigh-del $BR 10.99.7.2
check "neigh: gone" [ -z "$(nse ip neigh show dev $BR 10.99.7.2)" ]
check "neigh: deleting an absent entry succeeds" hn neigh-del $BR 10.99.7.2
check "neigh: on a missing bridge fails" not hn neigh nosuchbr 10.99.7.2 www

# --- counters: a process stands in for QEMU on the tap -------------------------
hn neigh $BR 10.99.7.2 www
read -r rxb0 txb0 rxp0 txp0 < <(hn counters "$tap")
cat >"$T/tapio.py" <<'PY'
import fcntl, os, struct, sys, time, select
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack("16sH22x", sys.argv[1].encode(), 0x0002 | 0x1000))
open(sys.argv[2], "w").close()             # attached: the test may send
n, end = 0, time.time() + 2
while time.time() < end:
    if select.select([fd], [], [], 0.05)[0]:
        os.read(fd, 2048)
        n += 1
# one broadcast frame from the "guest": it counts as received on the tap
os.write(fd, b"\xff" * 6 + bytes.fromhex("02626b000001") + b"\x88\xb5" + b"\0" * 46)
print(n)
PY
nse python3 "$T/tapio.py" "$tap" "$T/attached" >"$T/tapio.out" &
tapio=$!
on_exit "kill $tapio"
wait_for 15 test -e "$T/attached"
sleep 0.2 # the port goes to forwarding once the tap has carrier
nse ping -c 3 -i 0.2 -W 0.2 10.99.7.2 >/dev/null 2>&1
wait "$tapio"
seen=$(cat "$T/tapio.out")
read -r rxb1 txb1 rxp1 txp1 < <(hn counters "$tap")
check "counters: the pings went to the tap without ARP (guest side read $seen frames)" \
	[ "${seen:-0}" -ge 3 ]
check "counters: tx counts what went to the guest ($txp0 -> $txp1 packets, $txb0 -> $txb1 bytes)" \
	[ "$((txp1 - txp0))" -ge "${seen:-1}" -a "$txb1" -gt "$txb0" ]
check "counters: rx counts what the guest sent ($rxp0 -> $rxp1 packets)" \
	[ "$((rxp1 - rxp0))" -ge 1 -a "$rxb1" -ge $((rxb0 + 60)) ]
check "counters: a missing link fails" not hn counters nosuchlink

# --- cleanup of what a killed beckond left ---------------------------------------
# Beckon's: the taps and the neighbour above, a beckon-named tap with no
# master. Not beckon's: a tun named otherwise, a beckon-named tap on another
# bridge, a beckon-named veth, a foreign permanent entry, a non-permanent one.
nse ip tuntap add bk0000old mode tap
nse ip tuntap add other0 mode tap
nse ip link add brother type bridge
nse ip tuntap add bk1234oth mode tap
nse ip link set bk1234oth master brother
nse ip link add bkabcdveth type veth peer name vpeer
# A port with carrier keeps the bridge up: else removing the taps takes its
# carrier, and the kernel flushes the non-permanent entries itself.
nse ip link set vpeer master $BR up
nse ip link set bkabcdveth up
nse ip neigh add 10.99.7.20 lladdr 52:54:00:00:00:20 nud permanent dev $BR
nse ip neigh add 10.99.7.21 lladdr 02:62:6b:00:00:21 nud stale dev $BR
nse ip neigh add 10.99.7.22 lladdr "$(hn mac api)" nud permanent dev $BR
n=$(hn cleanup $BR)
check "cleanup: removed 3 taps and 2 neighbour entries (said $n)" [ "$n" = 5 ]
check "cleanup: beckon's taps are gone" \
	bash -c "! ip netns exec $NS ip link show | grep -qE ' ($tap|$tap2|bk0000old)[:@]'"
check "cleanup: other links stay" \
	bash -c "for l in other0 bk1234oth bkabcdveth vpeer brother $BR; do
		 ip netns exec $NS ip link show \$l >/dev/null 2>&1 || exit 1; done"
check "cleanup: beckon's permanent neighbours are gone" \
	bash -c "! ip netns exec $NS ip neigh show dev $BR | grep -qE '^10\.99\.7\.(2|22) '"
check "cleanup: the foreign and the non-permanent entries stay" \
	bash -c "ip netns exec $NS ip neigh show dev $BR | grep -q '^10.99.7.20 ' &&
		 ip netns exec $NS ip neigh show dev $BR | grep -q '^10.99.7.21 '"
check "cleanup: a second run finds nothing" [ "$(hn cleanup $BR)" = 0 ]
check "cleanup: with the bridge missing, masterless taps still go" \
	bash -c "ip netns exec $NS ip tuntap add bk0000new mode tap &&
		 [ \"\$(ip netns exec $NS $HN cleanup nosuchbr 2>>$ERR)\" = 1 ]"
# A beckon-named tap that a process holds open (another beckond's QEMU, just
# made, not yet on its bridge): it has carrier, and stays.
nse ip tuntap add bk0000busy mode tap
ip netns exec "$NS" python3 -c 'import fcntl, os, struct, sys, time
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack("16sH", b"bk0000busy", 0x0002 | 0x1000))  # TUNSETIFF: IFF_TAP|IFF_NO_PI
print("held", flush=True)
time.sleep(30)' >"$T/held.out" &
HOLDER=$!
on_exit "kill $HOLDER"
wait_for 15 grep -q held "$T/held.out"
check "cleanup: a tap a process holds stays (said $(hn cleanup $BR))" link_of bk0000busy
kill "$HOLDER"
wait "$HOLDER" 2>/dev/null
check "cleanup: ... and goes once it is let go (said $(hn cleanup $BR))" not link_of bk0000busy

# --- tap and bridge removal ------------------------------------------------------
t=$(hn tap $BR www)
hn tap-destroy "$t"
check "tap-destroy: removes the tap" not link_of "$t"
check "tap-destroy: an absent tap is fine" hn tap-destroy "$t"
nse ip link add foreign0 type bridge
check "bridge-remove: leaves a bridge beckon did not make" [ "$(hn bridge-remove foreign0)" = left ]
check "bridge-remove: ... and it is still there" link_of foreign0
# Its MAC follows its ports (never set): the kernel says 1, "random".
assign_type() { nse cat "/sys/class/net/$1/addr_assign_type"; }
fmac0=$(nse cat /sys/class/net/foreign0/address)
check "bridge: a foreign bridge's MAC follows its ports ($(assign_type foreign0))" [ "$(assign_type foreign0)" = 1 ]
check "bridge: ensure on a foreign bridge adds the address, does not mark it" \
	bash -c "[ \"\$(ip netns exec $NS $HN bridge foreign0 10.99.9.0/24 2>>$ERR)\" = existed ] &&
		 ip netns exec $NS ip -4 addr show foreign0 | grep -q 'inet 10.99.9.1/24' &&
		 [ \"\$(ip netns exec $NS $HN bridge-remove foreign0 2>>$ERR)\" = left ]"
check "bridge: ... pins its MAC where it was ($fmac0), and says so" \
	bash -c "[ \"\$(ip netns exec $NS cat /sys/class/net/foreign0/addr_assign_type)\" = 3 ] &&
		 [ \"\$(ip netns exec $NS cat /sys/class/net/foreign0/address)\" = $fmac0 ] &&
		 grep -q 'bridge foreign0: its MAC $fmac0 pinned' $ERR"
nse ip link add fport0 address 02:00:00:00:00:01 type veth peer name fpeer0
nse ip link set fport0 master foreign0
check "bridge: ... a port with a lower MAC joins, the bridge's stays" \
	[ "$(nse cat /sys/class/net/foreign0/address)" = "$fmac0" ]
nse ip link del fport0
check "bridge: a second ensure leaves a pinned bridge as it is (no log line)" \
	bash -c "ip netns exec $NS $HN bridge foreign0 10.99.9.0/24 2>$T/again.err >/dev/null &&
		 ! grep -q pinned $T/again.err"
check "bridge-remove: removes beckon's bridge" [ "$(hn bridge-remove $BR)" = removed ]
check "bridge-remove: ... and it is gone" not link_of $BR
check "bridge-remove: an absent bridge is fine" [ "$(hn bridge-remove $BR)" = left ]

check "root namespace untouched: none of the test's links there" [ -z "$(ours_in_root)" ]
check "no sanitizer report from hostnet_tool" sanitizer_clean "$ERR"
finish
