#!/usr/bin/env bash
# A short libFuzzer run of every tests/fuzz/fuzz_*.c target (built by
# `make fuzz` with clang, ASan and UBSan), each from its seed corpus in
# tests/fuzz/corpus/<name>/ (copied, so the run does not add to it).
# FUZZ_SECONDS sets the time per target (default 20).
. "$(dirname "$0")/lib.sh"

SECONDS_EACH=${FUZZ_SECONDS:-20}

if ! command -v clang >/dev/null; then
	skip "fuzz targets: clang is not installed"
	finish
fi
if ! make -C "$ROOT" -s fuzz >"$T/build.log" 2>&1; then
	not_ok "make fuzz builds the targets"
	sed 's/^/# /' "$T/build.log" | tail -20
	finish
fi
ok "make fuzz builds the targets"

for src in "$ROOT"/tests/fuzz/fuzz_*.c; do
	name=$(basename "$src" .c)
	bin=$ROOT/build/fuzz/$name
	corpus=$T/corpus-$name
	mkdir -p "$corpus"
	seeds=$ROOT/tests/fuzz/corpus/${name#fuzz_}
	[ -d "$seeds" ] && cp -r "$seeds"/. "$corpus"/
	if [ ! -x "$bin" ]; then
		not_ok "$name: not built"
		continue
	fi
	log=$T/$name.log
	mkdir -p "$ROOT/build/fuzz/artifacts"
	(cd "$T" && "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$ROOT/build/fuzz/artifacts/$name-" \
		-print_final_stats=1 "$corpus" >"$log" 2>&1)
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	if [ "$rc" -eq 0 ] && ! grep -qE 'ERROR: (libFuzzer|AddressSanitizer)|runtime error:' "$log"; then
		ok "$name: ${runs:-?} runs in ${SECONDS_EACH} s, no crash"
	else
		not_ok "$name: failed (exit $rc)"
		grep -A15 -E 'ERROR|runtime error' "$log" | head -30 | sed 's/^/# /'
		ls "$ROOT/build/fuzz/artifacts/$name-"* 2>/dev/null | sed 's/^/# reproducer: /'
	fi
done
finish
