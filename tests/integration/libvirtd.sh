# A private libvirtd for the libvirt tests (sourced after lib.sh).
#
# libvirtd_up: starts libvirtd (Debian 12: libvirt 9.0) as root in a mount
# namespace of its own, with tmpfs and bind mounts over /run/libvirt,
# /var/lib/libvirt, /var/cache/libvirt, /var/log/libvirt and /etc/libvirt,
# so that nothing of the host's libvirt is read or written.
# /run/libvirt is a directory of the test's, not a tmpfs: a restarted libvirtd
# finds the domains it ran there. Its sockets are
# in $T/lv/sock, outside the namespace's mounts, for beckond and virsh:
# LV_URI names them. It shares the host's network namespace: the taps
# beckon makes are the ones its QEMUs open.
#
# qemu.conf: root runs QEMU (user, group), no security driver, no cgroups,
# no per-domain mount namespace, QEMU's output to a file (no virtlogd).
# libvirtd looks up the libvirt-qemu user even so, and the
# libvirt-daemon-system package that makes it would bring init scripts
# that start the host's libvirtd: the namespace gets a copy of /etc/passwd
# and /etc/group with the user added instead.
#
# At exit every domain on it is destroyed, then libvirtd is killed.
LV=$T/lv
LV_URI="qemu+unix:///system?socket=$LV/sock/libvirt-sock"

virsh_lv() { timeout 30 virsh -q -c "$LV_URI" "$@"; }

libvirtd_conf() {
	mkdir -p "$LV/etc" "$LV/run" "$LV/lib" "$LV/cache" "$LV/log" "$LV/sock"
	cp -r /etc/libvirt/. "$LV/etc/"
	cat >"$LV/etc/qemu.conf" <<EOF
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
EOF
	cat >"$LV/etc/libvirtd.conf" <<EOF
unix_sock_dir = "$LV/sock"
unix_sock_group = "root"
unix_sock_rw_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
EOF
	# A host of a hosts list: reached over TCP, no auth (inside the test only).
	[ -z "${LV_LISTEN:-}" ] || cat >>"$LV/etc/libvirtd.conf" <<EOF
listen_tls = 0
listen_tcp = 1
listen_addr = "$LV_LISTEN"
auth_tcp = "none"
EOF
	cp /etc/passwd "$LV/passwd"
	cp /etc/group "$LV/group"
	getent passwd libvirt-qemu >/dev/null ||
		echo "libvirt-qemu:x:64055:64055:Libvirt Qemu:/var/lib/libvirt:/usr/sbin/nologin" >>"$LV/passwd"
	getent group libvirt-qemu >/dev/null || echo "libvirt-qemu:x:64055:" >>"$LV/group"
	getent group kvm >/dev/null || echo "kvm:x:64056:" >>"$LV/group"
}

# The script the namespace runs: its mounts, then libvirtd in the foreground.
libvirtd_script() {
	cat <<EOF
set -e
mkdir -p /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt /etc/libvirt
mount --bind "$LV/run" /run/libvirt
mount --bind "$LV/lib" /var/lib/libvirt
mount --bind "$LV/cache" /var/cache/libvirt
mount --bind "$LV/log" /var/log/libvirt
mount --bind "$LV/etc" /etc/libvirt
mount --bind "$LV/passwd" /etc/passwd
mount --bind "$LV/group" /etc/group
exec /usr/sbin/libvirtd ${LV_LISTEN:+--listen} -p "$LV/libvirtd.pid" -f "$LV/etc/libvirtd.conf"
EOF
}

# libvirtd_up: 0 once it answers on LV_URI (LV_PID set), 1 when it does not.
libvirtd_up() {
	libvirtd_conf
	libvirtd_script >"$LV/run.sh"
	unshare --mount --propagation private bash "$LV/run.sh" >>"$LV/libvirtd.log" 2>&1 &
	LV_PID=$!
	on_exit "libvirtd_down"
	if ! wait_for 30 virsh -c "$LV_URI" version; then
		echo "# libvirtd did not come up; its log:"
		tail -20 "$LV/libvirtd.log" | sed 's/^/# /'
		return 1
	fi
}

libvirtd_down() {
	local d
	for d in $(virsh_lv list --all --name 2>/dev/null); do
		virsh_lv destroy "$d" >/dev/null 2>&1
		virsh_lv undefine "$d" >/dev/null 2>&1
	done
	kill "$LV_PID" 2>/dev/null
	for _ in $(seq 100); do kill -0 "$LV_PID" 2>/dev/null || break; sleep 0.05; done
	kill -9 "$LV_PID" 2>/dev/null
	# A QEMU that outlived it (libvirtd does not end its domains): LV_MARK names the test's.
	[ -z "${LV_MARK:-}" ] || pkill -9 -f "$LV_MARK" 2>/dev/null
	true
}

# lv_domains PREFIX: the domains on LV_URI whose names start with PREFIX, running or not.
lv_domains() { virsh_lv list --all --name | grep "^$1" || true; }
# lv_drop_clients: libvirtd closes every client connection it has
# (virt-admin); false when it had none.
lv_drop_clients() {
	local adm="libvirtd:///system?socket=$LV/sock/libvirt-admin-sock" id n=0
	for id in $(virt-admin -c "$adm" client-list libvirtd | awk '$1 ~ /^[0-9]+$/ { print $1 }'); do
		virt-admin -c "$adm" client-disconnect libvirtd "$id" >/dev/null && n=$((n + 1))
	done
	[ "$n" -gt 0 ]
}
# lv_state DOMAIN: "running", "paused", "shut off"; nothing when there is none.
lv_state() { virsh_lv domstate "$1" 2>/dev/null | head -1; }

# Hosts of a hosts list: libvirtd_host_up NAME NETNS ADDR starts a private
# libvirtd (as libvirtd_up does, its files in $T/lv-NAME) inside network
# namespace NETNS, listening on ADDR:16509 over TCP without auth; its QEMUs
# and their taps live in NETNS. Its URI is qemu+tcp://ADDR/system.
# libvirtd_host_kill NAME kills it with -9: its domains outlive it, as a
# host's do when its libvirtd dies.
libvirtd_host_up() {
	local name=$1 ns=$2 addr=$3
	(
		LV=$T/lv-$name
		LV_LISTEN=$addr
		libvirtd_conf
		libvirtd_script >"$LV/run.sh"
	)
	ip netns exec "$ns" unshare --mount --propagation private bash "$T/lv-$name/run.sh" \
		>>"$T/lv-$name/libvirtd.log" 2>&1 &
	echo $! >"$T/lv-$name/unshare.pid"
	on_exit "libvirtd_host_down $name $addr"
	if ! wait_for 30 virsh -c "qemu+tcp://$addr/system" version; then
		echo "# libvirtd $name did not come up; its log:"
		tail -20 "$T/lv-$name/libvirtd.log" | sed 's/^/# /'
		return 1
	fi
}

libvirtd_host_kill() {
	local pid
	pid=$(cat "$T/lv-$1/unshare.pid" 2>/dev/null)
	[ -n "$pid" ] || return 0
	kill -9 "$pid" 2>/dev/null # exec'd: it is libvirtd
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
	wait "$pid" 2>/dev/null # no "Killed" from bash
	rm -f "$T/lv-$1/unshare.pid"
}

# libvirtd_host_down NAME ADDR: its domains destroyed, then it is killed.
libvirtd_host_down() {
	local d
	if [ -f "$T/lv-$1/unshare.pid" ]; then
		for d in $(timeout 30 virsh -q -c "qemu+tcp://$2/system" list --all --name 2>/dev/null); do
			timeout 30 virsh -q -c "qemu+tcp://$2/system" destroy "$d" >/dev/null 2>&1
		done
	fi
	libvirtd_host_kill "$1"
}
