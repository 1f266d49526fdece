#!/usr/bin/env bash
# make test-busy: tests/run.sh BUSY_RUNS times (default 3) with two CPU hogs
# beside it, as on a shared two-core machine. Prints each run's summary line
# and ends with one line "N passed, N failed" over all runs; fails when any
# run failed. Each run's logs are kept in build/test-logs-busy/run-N.
set -u
cd "$(dirname "$0")/.."
runs=${BUSY_RUNS:-3}
case $runs in '' | *[!0-9]*) echo "BUSY_RUNS must be a number" >&2; exit 2 ;; esac

hogs=() run=
stop_hogs() {
	[ ${#hogs[@]} -gt 0 ] || return 0
	kill "${hogs[@]}" 2>/dev/null
	wait "${hogs[@]}" 2>/dev/null
	hogs=()
}
# A run cut short: its test script first (timeout passes SIGTERM on, and
# the script's own cleanup runs), then run.sh.
stop_run() {
	[ -n "$run" ] || return 0
	pkill -TERM -P "$run" 2>/dev/null
	kill -TERM "$run" 2>/dev/null
	wait "$run" 2>/dev/null
	run=
}
# However the runs end (a failure, Ctrl-C, make killed): no hog left behind.
trap 'stop_run; stop_hogs' EXIT
trap 'exit 130' INT TERM HUP

if command -v stress-ng >/dev/null; then
	stress-ng --cpu 2 --quiet &
	hogs+=($!)
else
	for _ in 1 2; do
		sh -c 'while :; do :; done' &
		hogs+=($!)
	done
fi

pass=0 fail=0 skip=0 bad=0
rm -rf build/test-logs-busy
mkdir -p build/test-logs-busy
for i in $(seq "$runs"); do
	out=build/test-logs-busy/run-$i.out
	# In the background: a signal is handled at once, not after the run.
	tests/run.sh >"$out" 2>&1 &
	run=$!
	wait "$run"
	rc=$?
	run=
	cp -r build/test-logs "build/test-logs-busy/run-$i"
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
	if [ -z "$line" ]; then
		line="0 passed, 1 failed (no summary line, exit $rc)"
	fi
	echo "run $i/$runs: $line"
	# What failed, as run.sh named it.
	[ "$rc" -eq 0 ] || grep -E '^ +not ok |[1-9][0-9]* failed' "$out" | grep -vE '^[0-9]+ passed' | sed 's/^/    /'
	read -r p f s <<<"$(echo "$line" | sed -E 's/^([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) skipped)?.*/\1 \2 \4/')"
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + ${s:-0}))
	[ "$rc" -eq 0 ] && [ "$f" -eq 0 ] || bad=$((bad + 1))
done

stop_hogs
if [ "$skip" -gt 0 ]; then
	echo "$pass passed, $fail failed, $skip skipped"
else
	echo "$pass passed, $fail failed"
fi
[ "$bad" -eq 0 ]
