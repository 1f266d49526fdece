#!/usr/bin/env bash
# make fuzz-long: every tests/fuzz/fuzz_*.c target for a long run by hand
# (hours), each from its corpus in tests/fuzz/corpus/<name>/. Inputs that
# reach new code are merged back into that directory (libFuzzer -merge=1
# adds only those: the corpus stays small); commit them.
#   FUZZ_SECONDS  time per target (default 3600)
#   FUZZ_TARGETS  names to run (default: all), e.g. "dns rrl"
#   FUZZ_JOBS     libFuzzer -fork=N workers per target (default 1: none)
# A crash leaves its input in build/fuzz/artifacts/ and makes the run fail.
set -u
cd "$(dirname "$0")/../.."
SECS=${FUZZ_SECONDS:-3600}
JOBS=${FUZZ_JOBS:-1}
rc=0
targets=${FUZZ_TARGETS:-$(for f in tests/fuzz/fuzz_*.c; do f=${f##*/fuzz_}; echo "${f%.c}"; done)}
mkdir -p build/fuzz/artifacts build/fuzz/long
for name in $targets; do
	bin=build/fuzz/fuzz_$name
	corpus=tests/fuzz/corpus/$name
	work=build/fuzz/long/$name
	if [ ! -x "$bin" ]; then
		echo "fuzz-long: $bin is not built (make fuzz)" >&2
		rc=1
		continue
	fi
	mkdir -p "$corpus" "$work"
	before=$(ls "$corpus" | wc -l)
	fork=()
	[ "$JOBS" -gt 1 ] && fork=(-fork="$JOBS" -ignore_crashes=0)
	echo "fuzz-long: $name for ${SECS}s from $before inputs (log: $work.log)"
	# The work directory first: new inputs go there, the checked-in corpus is read only.
	"$bin" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 "${fork[@]}" \
		-artifact_prefix="build/fuzz/artifacts/$name-" -print_final_stats=1 \
		"$work" "$corpus" >"$work.log" 2>&1
	status=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work.log" | tail -1)
	if [ "$status" -ne 0 ] || grep -qE 'ERROR: (libFuzzer|AddressSanitizer)|runtime error:' "$work.log"; then
		echo "fuzz-long: $name FAILED (exit $status); reproducers:"
		ls build/fuzz/artifacts/"$name"-* 2>/dev/null | sed 's/^/  /'
		rc=1
	fi
	"$bin" -merge=1 "$corpus" "$work" >"$work.merge.log" 2>&1
	echo "fuzz-long: $name: ${runs:-?} runs, corpus $before -> $(ls "$corpus" | wc -l) inputs"
done
exit $rc
