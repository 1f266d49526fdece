#!/usr/bin/env bash
# Runs the unit tests (plain and ASan+UBSan builds) and then the integration
# tests, and ends with one line "N passed, N failed[, N skipped]".
# TEST_FILTER=regex limits integration scripts by name.
set -u
cd "$(dirname "$0")/.."
logs=build/test-logs
mkdir -p "$logs"
pass=0 fail=0 skip=0

# cmocka prints "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s)".
run_unit() {
	local bin=$1 out p f
	# A hung unit test fails, it does not hold up the run.
	out=$(UBSAN_OPTIONS=print_stacktrace=1 LSAN_OPTIONS=print_suppressions=0 timeout -k 10 300 "$bin" 2>&1)
	local rc=$?
	echo "$out" >"$logs/unit-$(echo "$bin" | tr / _).log"
	p=$(echo "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
	f=$(echo "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
	p=${p:-0} f=${f:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
	if echo "$out" | grep -qE 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer'; then f=$((f + 1)); fi
	pass=$((pass + p)) fail=$((fail + f))
	printf '%-40s %3d passed, %d failed\n' "$bin" "$p" "$f"
	[ "$f" -eq 0 ] || echo "$out" | grep -E '\[  (FAILED|  ERROR) \]|ERROR|error|runtime error' | head -20
}

for bin in build/unit/test_* build/asan/unit/test_*; do
	[ -x "$bin" ] || continue
	case "$bin" in *.d|*.o) continue ;; esac
	run_unit "$bin"
done

# What a failed script said around its failures: the lines just before each
# "not ok" (a check's own diagnostics) and those after its last check (the
# logs lib.sh shows at exit).
run_context() {
	awk '/^(ok|skip) /{n=0; next}
	     /^not ok /{for (i = (n > 20 ? n - 20 : 0); i < n; i++) print "    | " b[i]; n=0; next}
	     {b[n++]=$0}
	     END{for (i = (n > 60 ? n - 60 : 0); i < n; i++) print "    | " b[i]}' "$1"
}

# Integration scripts print "ok - ...", "not ok - ..." and "skip - ..." lines.
for t in tests/integration/test_*.sh; do
	[ -f "$t" ] || continue
	name=$(basename "$t" .sh)
	if [ -n "${TEST_FILTER:-}" ] && ! [[ $name =~ $TEST_FILTER ]]; then continue; fi
	start=$(date +%s)
	# 600 s a script, unless it says otherwise in a line "# run.sh timeout: N".
	limit=$(sed -n 's/^# run.sh timeout: \([0-9][0-9]*\)$/\1/p' "$t" | head -1)
	timeout -k 10 "${limit:-600}" bash "$t" >"$logs/$name.log" 2>&1 </dev/null
	rc=$?
	p=$(grep -c '^ok ' "$logs/$name.log")
	f=$(grep -c '^not ok ' "$logs/$name.log")
	s=$(grep -c '^skip ' "$logs/$name.log")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "not ok - $name exited $rc without a failed check" >>"$logs/$name.log"
		f=1
	fi
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
	printf '%-40s %3d passed, %d failed, %d skipped (%ss)\n' "$name" "$p" "$f" "$s" $(($(date +%s) - start))
	grep -E '^(not ok|skip) ' "$logs/$name.log" | sed 's/^/    /'
	[ "$f" -eq 0 ] || run_context "$logs/$name.log"
done

if [ "$skip" -gt 0 ]; then
	echo "$pass passed, $fail failed, $skip skipped"
else
	echo "$pass passed, $fail failed"
fi
[ "$fail" -eq 0 ]
