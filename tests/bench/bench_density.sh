#!/usr/bin/env bash
# bench_density.sh: paused hello guests restored from ONE template, and the
# memory each holds, before and after the template's memory was a file its
# clones share (issue 17; goal: >= 2,000 paused instances in 24 GiB).
#
# beckon runs one instance per service, and a template is one service's:
# so beckon (build/beckond, user networking, template = "auto") makes the
# template (NAME.state, NAME.ram) and restores it once, and then
# tests/fixtures/tplclone.py starts DENSITY_N (default 100) more QEMUs with
# that clone's own command line, each loading the same template as beckon
# does, and stops them (paused). This measures the QEMU mechanism beckon
# uses, N times over, not N instances of beckond's. Three rounds:
#   before    the template's RAM in the stream (a whole save of a clone),
#             restored into QEMU's own anonymous memory, transparent huge
#             pages on: what beckon did before
#   thp-off   the same, without transparent huge pages (qemu.huge_pages =
#             "off" alone)
#   shared+thp  the template's .ram mapped share=off, x-ignore-shared, THP
#             on: what beckon does now (the default, huge_pages = "on")
#   shared    the same, THP off: beckon with qemu.huge_pages = "off"
# Per round: PSS and RSS (smaps_rollup) and page tables (VmPTE) of the N
# QEMUs, per instance; the drop in MemAvailable per instance (the whole
# machine: noisy beside other work); the count that fits in 24 GiB from
# PSS + page tables. Three clones of each round are then resumed and must
# serve. Also: spawn to running of the clones (median). accel: TCG unless
# DENSITY_ACCEL says otherwise. Results: tests/bench/results/density-<date>.txt.
. "$(dirname "$0")/lib.sh"
N=${DENSITY_N:-100}
ACCEL=${DENSITY_ACCEL:-tcg}
OUT=$ROOT/tests/bench/results/density-$(date +%Y-%m-%d).txt
T=$(mktemp -d /tmp/bkt-dens.XXXXXX)
BR=bkd$$
NET=10.86.$((RANDOM % 250 + 1))
S=bd$$-www
MARK=beckon-dens$$
CLONE=$ROOT/tests/fixtures/tplclone.py

trap 'for p in $(pgrep -f "guest=$MARK-"); do kill -9 $p; done; bench_cleanup "guest=beckon:$S,"' EXIT
trap 'exit 1' INT TERM

bench_check bench_density
[ "$N" -le 300 ] || { echo "bench_density: DENSITY_N is at most 300"; exit 1; }
HPORT=$(python3 -c 'import random; print(random.randrange(20000, 30000 - 4 * 300))')

{
	bench_conf_head user
	cat <<EOF
services = ( { name = "$S"; dns = ( "www.svc.test" ); address = "127.0.0.1"; ports = ( 80 );
               image = "$IMG"; ready = "http:/"; template = "auto"; idle_timeout = "1h";
               cmdline = "ip={address}/{prefix} gw={gateway} name={name} port=80"; boot_timeout = "60s";
               qemu = { accel = "$ACCEL"; }; } );
EOF
} >"$T/beckon.conf"

ctl() { "$BECKONCTL" -s "$T/ctl.sock" "$@"; }
bench_start "$T/beckond.log"
ctl start "$S" >/dev/null || { echo "bench_density: the first boot failed"; tail "$T/beckond.log"; exit 1; }
ctl stop "$S" >/dev/null
for _ in $(seq 300); do ctl --json list | grep -q '"state": *"stopped"' && break; sleep 0.1; done
ctl start "$S" >/dev/null || { echo "bench_density: the template restore failed"; exit 1; }
ctl pause "$S" >/dev/null
TDIR=$T/state/templates
grep -q "$S: restored from its template" "$T/beckond.log" && [ -s "$TDIR/$S.ram" ] ||
	{ echo "bench_density: no template with a .ram was restored"; tail "$T/beckond.log"; exit 1; }
Q=$(pgrep -f "guest=beckon:$S,")

# round NAME STATE PORT ARGS...: N clones of STATE (their port 80 from
# 127.0.0.1:PORT+i; ARGS for tplclone.py), paused; figures to $T/NAME.
round() {
	local name=$1 state=$2 port=$3 before after t0 t1
	shift 3
	sync
	sleep 2
	before=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
	t0=$(date +%s%N)
	python3 "$CLONE" spawn "$Q" "$state" "$T" "$MARK-$name" "$N" --port "$port" "$@" >"$T/$name.pids" 2>"$T/$name.err" ||
		{ echo "bench_density: $name: $(tail -3 "$T/$name.err")"; tail -n 3 "$T/$MARK-$name"-*.err; exit 1; }
	t1=$(date +%s%N)
	for i in $(seq 0 $((N - 1))); do
		python3 "$CLONE" cmd "$T/$MARK-$name-$i.qmp" stop >/dev/null
	done
	sleep 3 # the kernel's accounting settles
	after=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
	python3 - "$name" "$N" "$before" "$after" "$(((t1 - t0) / 1000000))" $(cat "$T/$name.pids") >"$T/$name" <<'EOF'
import re, sys
name, n, before, after, ms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
pids = sys.argv[6:]
tot = {"Rss": 0, "Pss": 0, "Anonymous": 0, "AnonHugePages": 0, "VmPTE": 0}
for p in pids:
    for f in ("smaps_rollup", "status"):
        for line in open("/proc/%s/%s" % (p, f)):
            k = line.split(":")[0]
            if k in tot:
                tot[k] += int(line.split()[1])
k = len(pids)
per = (tot["Pss"] + tot["VmPTE"]) / k
drop = (before - after) / k
print("%-10s %3d clones  PSS %5.1f  RSS %5.1f  anon %5.1f (THP %4.1f)  PTE %4.2f  PSS+PTE %5.1f MiB/instance;"
      "  machine %5.1f MiB/instance;  fit in 24 GiB: %5d;  spawned in %.1f s" %
      (name, k, tot["Pss"] / k / 1024, tot["Rss"] / k / 1024, tot["Anonymous"] / k / 1024,
       tot["AnonHugePages"] / k / 1024, tot["VmPTE"] / k / 1024, per / 1024, drop / 1024,
       24 * 1048576 / per, ms / 1000))
EOF
	# Three of them woken: each serves.
	local woke=0 i
	for i in 0 $((N / 2)) $((N - 1)); do
		python3 "$CLONE" cmd "$T/$MARK-$name-$i.qmp" cont >/dev/null
		curl -s --max-time 30 "http://127.0.0.1:$((port + i))/" | grep -q "hello from $S " && woke=$((woke + 1))
	done
	echo "$name     woken and served: $woke of 3 sampled" >>"$T/$name"
	cat "$T/$name"
}

# shared: the template beckon made; its clones map the .ram.
round shared "$TDIR/$S.state" "$HPORT"
# A whole save of one of them (RAM in the stream), running (a state saved
# stopped loads stopped): the template as it was before.
python3 "$CLONE" cmd "$T/$MARK-shared-0.qmp" cont >/dev/null
python3 "$CLONE" save "$T/$MARK-shared-0.qmp" "$T/whole.state" || { echo "bench_density: whole save failed"; exit 1; }
for p in $(cat "$T/shared.pids"); do kill -9 "$p"; done
round shared+thp "$TDIR/$S.state" $((HPORT + 3 * N)) --thp
for p in $(cat "$T/shared+thp.pids"); do kill -9 "$p"; done
round before "$T/whole.state" $((HPORT + N)) --anon --thp
for p in $(cat "$T/before.pids"); do kill -9 "$p"; done
round thp-off "$T/whole.state" $((HPORT + 2 * N)) --anon
for p in $(cat "$T/thp-off.pids"); do kill -9 "$p"; done
bench_stop

{
	echo "# bench_density $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -r), $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "# $(qemu-system-x86_64 --version | head -1); accel $ACCEL; hello guest, memory 16M, user networking"
	echo "# a shared, loaded 2-core machine: other test runs beside it (the machine figure is noisy)"
	echo "# beckon made the template ($(stat -c %s "$TDIR/$S.state") bytes of state, a .ram of $(stat -c %s "$TDIR/$S.ram") bytes, $(($(stat -c %b "$TDIR/$S.ram") * $(stat -c %B "$TDIR/$S.ram"))) allocated)"
	echo "# and restored it once; $N more QEMUs per round with that clone's command line (tplclone.py)"
	echo "# the count that fits comes from PSS + page tables; the machine's MemAvailable drop is shown too"
	echo "# before: RAM in the stream, anonymous, THP; thp-off: the same without THP;"
	echo "# shared+thp: the .ram shared (beckon's default); shared: and THP off (qemu.huge_pages = \"off\")"
	cat "$T/before" "$T/thp-off" "$T/shared+thp" "$T/shared"
} >"$T/out"
bench_publish "$T/out" "$OUT"
! grep -q "served: [012] of 3" "$T/out"
