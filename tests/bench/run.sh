#!/usr/bin/env bash
# Runs every benchmark (tests/bench/bench_*.sh, or those matching
# BENCH_FILTER); each prints its figures and writes them under
# tests/bench/results/. Exits non-zero when one fails.
set -u
cd "$(dirname "$0")/../.."
mkdir -p tests/bench/results
failed=0
for b in tests/bench/bench_*.sh; do
	name=$(basename "$b" .sh)
	if [ -n "${BENCH_FILTER:-}" ] && ! [[ $name =~ $BENCH_FILTER ]]; then continue; fi
	echo "== $name"
	if ! bash "$b" </dev/null; then
		echo "!! $name failed"
		failed=1
	fi
done
exit $failed
