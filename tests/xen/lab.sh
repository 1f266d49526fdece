#!/usr/bin/env bash
# The Xen lab: boots Xen 4.17 under QEMU (TCG) from Debian's packages, with
# a dom0 holding beckond, and runs the Xen tests (run.sh) inside dom0. Their
# "ok"/"not ok"/"skip" lines come back over the serial console and are
# printed here; the exit status is 1 when one failed, or when dom0's own
# count (its tests' exit, results and failures, on the "lab: done" line)
# says they did not all pass: a line the console garbled cannot hide a
# failure, nor a run that said nothing pass. `make xen-lab`.
#   XEN_LAB_DIR   where the lab is built and cached (default build/xen)
#   XEN_LAB_KEEP  keep the serial log's full text on the terminal too
#   XEN_LAB_RUN   what dom0 runs: run.sh (the tests, default) or bench.sh
#                 (`make bench-xen`: its "# bench" lines are the figures)
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${XEN_LAB_DIR:-$ROOT/build/xen}
SRC=$ROOT/tests/xen
say() { echo "xen-lab: $*" >&2; }
skip() { echo "skip - the Xen lab: $*"; exit 0; }

# ---- can this machine run it? --------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap, chroot)"
mkdir -p "$OUT"
free_kb=$(df -Pk "$OUT" | awk 'NR == 2 {print $4}')
[ -f "$OUT/dom0.cpio" ] || [ "$free_kb" -ge $((3 * 1024 * 1024)) ] || skip "less than 3 GiB free under $OUT"
mem_kb=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)
[ "$mem_kb" -ge $((3 * 1024 * 1024)) ] || skip "less than 3 GiB of memory available (QEMU takes 2.6 GiB)"

# ---- what it needs from Debian ---------------------------------------------------------------
need=
for p in qemu-system-x86 debootstrap cpio kmod; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need="$need $p"
done
if [ -n "$need" ]; then
	say "installing$need"
	DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends $need >/dev/null ||
		{ echo "not ok - the Xen lab: cannot install$need"; exit 1; }
fi
[ -x "$ROOT/build/beckond" ] && [ -x "$ROOT/build/beckonctl" ] || { echo "not ok - the Xen lab: build/beckond is built (make)"; exit 1; }
"$ROOT/build/beckond" -V | grep -qw xen || { echo "not ok - the Xen lab: beckond is built with the Xen backend (libxen-dev)"; exit 1; }

# ---- build (cached) ---------------------------------------------------------------------------
t0=$(date +%s)
bash "$SRC/build.sh" || { echo "not ok - the Xen lab is built (tests/xen/build.sh)"; exit 1; }
t1=$(date +%s)

# ---- the lab's own part of dom0's initramfs: beckond, its libraries, the tests ----------
P=$OUT/payload
rm -rf "$P"
mkdir -p "$P/lab/bin" "$P/etc/default"
cp "$ROOT/build/beckond" "$ROOT/build/beckonctl" "$P/lab/bin/"
# Under /usr: dom0's /lib is a symlink (merged /usr), and a directory of
# that name in a later cpio would replace it.
# strace, when the host has it: run.sh shows what a stuck beckond does.
tools="$ROOT/build/beckond $ROOT/build/beckonctl"
if command -v strace >/dev/null; then
	cp "$(command -v strace)" "$P/lab/bin/"
	tools="$tools $(command -v strace)"
fi
for lib in $(ldd $tools | awk '/=> \// {print $3}' | sort -u); do
	case "$lib" in /lib/* | /lib64/*) dest=/usr$lib ;; *) dest=$lib ;; esac
	mkdir -p "$P$(dirname "$dest")"
	cp -L "$lib" "$P$dest"
done
cp "$SRC/dom0-init" "$P/init"
cp "$SRC/run.sh" "$SRC/bench.sh" "$SRC/pvh.cfg" "$SRC/pv.cfg" "$SRC/bad.cfg" "$P/lab/"
cp "$SRC/xen.default" "$P/etc/default/xen"
cp "$OUT/vmlinuz" "$OUT/guest.cpio" "$P/lab/"
echo "${XEN_LAB_RUN:-run.sh}" >"$P/lab/what"
# QEMU's limit; dom0 stops its script a little before, to power off cleanly.
[ "${XEN_LAB_RUN:-run.sh}" = bench.sh ] && limit=4800 || limit=3000
limit=${XEN_LAB_TIMEOUT:-$limit}
echo $((limit - 200)) >"$P/lab/limit"
chmod 755 "$P/init" "$P/lab/run.sh" "$P/lab/bench.sh"
(cd "$P" && find . -print | cpio -o -H newc --quiet) >"$OUT/payload.cpio"
cat "$OUT/dom0.cpio" "$OUT/payload.cpio" >"$OUT/lab.cpio"

# ---- boot it ----------------------------------------------------------------------------------
# QEMU's multiboot loader: Xen as -kernel, dom0's kernel and initramfs as
# modules (commas in a module's command line doubled). +npt: PVH needs it.
say "booting Xen under QEMU (several minutes)"
LOG=$OUT/serial.log
rm -f "$LOG"
timeout -k 10 "$limit" qemu-system-x86_64 -machine pc -accel tcg,tb-size=256 \
	-cpu qemu64,+svm,+npt -smp 2 -m 2560 -display none -monitor none -no-reboot \
	-serial "file:$LOG" \
	-kernel "$OUT/xen" \
	-append "console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M dom0_max_vcpus=2 loglvl=warning" \
	-initrd "$OUT/vmlinuz console=hvc0 rdinit=/init,$OUT/lab.cpio" \
	-netdev user,id=n0,restrict=on -device e1000,netdev=n0
rc=$?
t2=$(date +%s)
tr -d '\r' <"$LOG" >"$LOG.txt"
[ -n "${XEN_LAB_KEEP:-}" ] && cat "$LOG.txt"
grep -E '^(ok|not ok|skip) |^# ' "$LOG.txt"
echo "# lab: built in $((t1 - t0)) s, ran in $((t2 - t1)) s (QEMU exit $rc); serial log: $LOG.txt"
grep -q '^lab: done' "$LOG.txt" || {
	echo "not ok - the lab ran to its end (QEMU exit $rc); the serial log's last lines:"
	tail -n 30 "$LOG.txt" | sed 's/^/    | /'
	exit 1
}
# dom0's own word on its tests (dom0-init): how they ended, how many results
# and failures it saw. A run that said nothing, or failed where no "not ok"
# line came through the console, fails here.
read -r lrc lres lfail <<<"$(sed -n 's/^lab: done (rc=\([0-9]*\)) results \([0-9]*\) failed \([0-9]*\).*/\1 \2 \3/p' "$LOG.txt" | head -1)"
echo "# lab: dom0 saw ${lres:-?} results, ${lfail:-?} failed, its tests exited ${lrc:-?}; $(grep -cE '^(ok|not ok|skip) ' "$LOG.txt") read here"
if [ -z "$lres" ] || { [ "$lres" = 0 ] && [ "${XEN_LAB_RUN:-run.sh}" = run.sh ]; } ||
	{ [ "$lrc$lfail" != 00 ] && ! grep -q '^not ok ' "$LOG.txt"; }; then
	echo "not ok - the lab's tests ran and said how they did (exit ${lrc:-?}, ${lres:-?} results, ${lfail:-?} failed); the serial log's last lines:"
	tail -n 30 "$LOG.txt" | sed 's/^/    | /'
	exit 1
fi
[ "$lrc$lfail" = 00 ] || exit 1
exit 0
