#!/usr/bin/env bash
# Builds what the Xen lab boots, from Debian's packages, under build/xen/
# (never in the source tree): the hypervisor, the kernel (dom0's and the
# test guest's), dom0's root as an uncompressed initramfs, and the test
# guest's busybox initramfs. Cached: a second run reuses what is there
# (XEN_LAB_REBUILD=1 starts over). Needs root (debootstrap, chroot).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${XEN_LAB_DIR:-$ROOT/build/xen}
SRC=$ROOT/tests/xen
MIRROR=${XEN_LAB_MIRROR:-http://deb.debian.org/debian}
SECURITY=${XEN_LAB_SECURITY:-http://deb.debian.org/debian-security}
# dom0's packages besides minbase: the Xen tools (from bookworm-security, so
# that they match the hypervisor), its network, and what the tests run.
DOM0_PKGS="iproute2 bridge-utils kmod busybox curl bind9-dnsutils iptables procps psmisc"
# Modules dom0 loads (with their dependencies).
# dom0 runs iptables-legacy (dom0-init): iptables-nft would want nf_tables
# and nft_compat, and every iptables run (beckon's, Xen's vif-bridge) that
# finds a module missing stalls for many seconds under the emulation.
DOM0_MODS="xen-evtchn xenfs xen-privcmd xen-gntdev xen-gntalloc xen-netback xen-blkback
bridge br_netfilter tun nfnetlink_queue xt_NFQUEUE xt_mark xt_tcpudp xt_conntrack xt_comment
xt_physdev xt_state xt_addrtype nf_conntrack_netlink iptable_filter iptable_mangle iptable_nat
ip_tables x_tables"

say() { echo "xen-lab: $*" >&2; }
command -v depmod >/dev/null || { say "needs kmod (depmod, modinfo)"; exit 1; }
[ "$(id -u)" -eq 0 ] || { say "building the lab needs root (debootstrap, chroot)"; exit 1; }
[ -n "${XEN_LAB_REBUILD:-}" ] && rm -rf "$OUT"
mkdir -p "$OUT/pkgs"

# Debian packages downloaded into OUT/pkgs, unpacked into OUT/pkgs/<name>.
fetch_pkg() {
	local name=$1 deb
	[ -d "$OUT/pkgs/$name" ] && return 0
	(cd "$OUT/pkgs" && timeout 600 apt-get download -q "$name" >/dev/null)
	deb=$(ls "$OUT/pkgs/${name}"_*.deb | head -1)
	dpkg -x "$deb" "$OUT/pkgs/$name.tmp" && mv "$OUT/pkgs/$name.tmp" "$OUT/pkgs/$name"
}

# The hypervisor: QEMU's multiboot loader wants the plain ELF.
build_xen() {
	[ -f "$OUT/xen" ] && return 0
	say "the hypervisor (xen-hypervisor-4.17-amd64)"
	fetch_pkg xen-hypervisor-4.17-amd64
	gunzip -c "$(ls "$OUT"/pkgs/xen-hypervisor-4.17-amd64/boot/xen-4.17*-amd64.gz | head -1)" >"$OUT/xen.tmp"
	mv "$OUT/xen.tmp" "$OUT/xen"
}

# Debian's kernel (the version linux-image-amd64 points at): dom0 and the guest.
build_kernel() {
	local kpkg
	[ -f "$OUT/vmlinuz" ] && return 0
	kpkg=$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: \(linux-image-[0-9].*\)/\1/p' | head -1)
	say "the kernel ($kpkg)"
	fetch_pkg "$kpkg"
	ln -sfn "pkgs/$kpkg" "$OUT/kernel"
	cp "$(ls "$OUT"/kernel/boot/vmlinuz-* | head -1)" "$OUT/vmlinuz"
}

# MODS and their dependencies from the kernel package into DEST (a root).
copy_modules() {
	local dest=$1 kdir kver m f seen=" "
	shift
	kdir=$(ls -d "$OUT"/kernel/lib/modules/* | head -1)
	kver=$(basename "$kdir")
	# The package holds no modules.dep: it is made at install.
	[ -f "$kdir/modules.dep" ] || depmod -b "$OUT/kernel" "$kver"
	local todo="$*"
	while [ -n "${todo// /}" ]; do
		set -- $todo
		m=$1
		shift
		todo="$*"
		case "$seen" in *" $m "*) continue ;; esac
		seen="$seen$m "
		f=$(modinfo -b "$OUT/kernel" -k "$kver" -F filename "$m" 2>/dev/null) || continue
		case "$f" in "(builtin)"|"") continue ;; esac
		mkdir -p "$dest/$(dirname "${f#$OUT/kernel}")"
		cp "$f" "$dest/${f#$OUT/kernel}"
		todo="$todo $(modinfo -b "$OUT/kernel" -k "$kver" -F depends "$m" | tr , ' ')"
	done
	cp "$kdir"/modules.builtin* "$kdir"/modules.order "$dest/lib/modules/$kver/" 2>/dev/null || true
	depmod -b "$dest" "$kver"
}

# dom0's root: bookworm minbase, the Xen tools from bookworm-security.
build_dom0_root() {
	local r=$OUT/dom0root mods
	# Made again when the module list changes (the debootstrap'd base is kept).
	mods=$(echo $DOM0_MODS | md5sum | cut -c1-8)
	[ -f "$r/.done" ] && [ "$(cat "$r/.done")" = "$mods" ] && return 0
	[ -f "$r/.base" ] || build_dom0_base
	copy_modules "$r" $DOM0_MODS
	echo "$mods" >"$r/.done"
}

# debootstrap, then the Xen tools from bookworm-security.
build_dom0_base() {
	local r=$OUT/dom0root
	say "dom0's root (debootstrap bookworm minbase: a few minutes)"
	rm -rf "$r"
	timeout 1800 debootstrap --variant=minbase --include="${DOM0_PKGS// /,}" bookworm "$r" "$MIRROR" >"$OUT/debootstrap.log" 2>&1 ||
		{ say "debootstrap failed: $OUT/debootstrap.log"; tail -5 "$OUT/debootstrap.log" >&2; exit 1; }
	echo "deb $SECURITY bookworm-security main" >"$r/etc/apt/sources.list.d/security.list"
	mount --bind /proc "$r/proc"
	trap 'umount "$r/proc" 2>/dev/null || true' EXIT
	{ chroot "$r" timeout 900 apt-get update -q &&
		DEBIAN_FRONTEND=noninteractive chroot "$r" timeout 1200 apt-get install -y -q --no-install-recommends xen-utils-4.17 xenstore-utils; } >"$OUT/dom0-apt.log" 2>&1 ||
		{ say "installing the Xen tools in dom0 failed: $OUT/dom0-apt.log"; tail -5 "$OUT/dom0-apt.log" >&2; exit 1; }
	umount "$r/proc"
	trap - EXIT
	chroot "$r" apt-get clean
	rm -rf "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/usr/share/locale/* "$r"/var/lib/apt/lists/*
	touch "$r/.base"
}

# The cached part of dom0's initramfs (the lab appends its own, small, cpio).
build_dom0_cpio() {
	[ -f "$OUT/dom0.cpio" ] && [ "$OUT/dom0.cpio" -nt "$OUT/dom0root/.done" ] && return 0
	say "packing dom0's initramfs"
	(cd "$OUT/dom0root" && find . -path ./proc -prune -o -print | cpio -o -H newc --quiet) >"$OUT/dom0.cpio.tmp"
	mv "$OUT/dom0.cpio.tmp" "$OUT/dom0.cpio"
}

# The test guest: busybox-static, xen-netfront, an init that serves HTTP.
build_guest() {
	local g=$OUT/guestroot
	[ -f "$OUT/guest.cpio" ] && [ "$OUT/guest.cpio" -nt "$SRC/guest-init" ] && return 0
	say "the test guest's initramfs"
	fetch_pkg busybox-static
	rm -rf "$g"
	mkdir -p "$g"/{bin,sbin,proc,sys,dev,www/cgi-bin,lib/modules}
	cp "$OUT/pkgs/busybox-static/bin/busybox" "$g/bin/busybox"
	for a in sh mount ip ifconfig route httpd cat echo sleep insmod modprobe mkdir poweroff sed cut tr grep ls; do
		ln -sf busybox "$g/bin/$a"
	done
	copy_modules "$g" xen-netfront
	cp "$SRC/guest-init" "$g/init"
	chmod 755 "$g/init"
	(cd "$g" && find . -print | cpio -o -H newc --quiet) >"$OUT/guest.cpio.tmp"
	mv "$OUT/guest.cpio.tmp" "$OUT/guest.cpio"
}

build_xen
build_kernel
build_dom0_root
build_dom0_cpio
build_guest
say "built: $OUT/{xen,vmlinuz,dom0.cpio,guest.cpio}"
