#!/usr/bin/env bash
# Installs the Debian packages the build, the tests, the benchmarks and the
# demo need. Idempotent, and quiet when everything is there.
set -eu
cd "$(dirname "$0")/.."
pkgs="build-essential pkg-config clang libclang-rt-14-dev libldns-dev libevent-dev
libconfig-dev libjansson-dev libnl-3-dev libnl-route-3-dev libnl-nf-3-dev libcmocka-dev clang-format groff-base
bind9-dnsutils knot-dnsutils dnsperf nsd busybox curl iproute2 iptables tcpdump wrk
qemu-system-x86 psmisc procps python3 iputils-ping
libvirt-dev libxml2-dev libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
libxen-dev debootstrap cpio kmod
libcap-dev debhelper lintian acl"
# libvirt: the daemon, QEMU driver and virsh for the tests' private libvirtd
# (none of these packages brings an init script or unit: libvirt-daemon-system
# would, and is not wanted), -dev for the backend (left out of beckond without).
# libcap-dev: beckond's capabilities; debhelper and lintian: make package
# and its test; acl: test_privs lets its user open /dev/net/tun.
# Xen: libxen-dev for the backend (libxenlight, libxlutil); debootstrap, cpio
# and kmod build the Xen lab's dom0 (tests/xen/), which boots under QEMU.
for f in */deps.txt; do [ -f "$f" ] && pkgs="$pkgs $(grep -v '^#' "$f")"; done
# A package wanted for one command is not installed when something else
# already provides that command (busybox-static provides busybox, and
# installing busybox would make apt remove it): make deps never removes.
provides() {
	case "$1" in
	busybox) command -v busybox >/dev/null ;;
	*) return 1 ;;
	esac
}
missing=
for p in $pkgs; do
	provides "$p" && continue
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "make deps: missing packages:$missing (run as root, or install them)" >&2
	exit 1
fi
echo "make deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# --no-remove: should a package still conflict with one installed, fail
# rather than take the user's package away.
apt-get install -y -qq --no-install-recommends --no-remove $missing >/dev/null
# nsd is only a benchmark peer: it must not hold port 53 after install.
systemctl disable --now nsd >/dev/null 2>&1 || true
