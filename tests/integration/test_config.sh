#!/usr/bin/env bash
# beckond -n checks a config: every bad fixture exits 1 with exactly the
# errors in its .expected file (FILE:LINE: message, the path as given), every
# good fixture and every example prints "configuration OK" and exits 0.
. "$(dirname "$0")/lib.sh"
# Some checks run from other directories: BECKOND=build/beckond must still work.
case $BECKOND in /*) ;; *) BECKOND=$PWD/$BECKOND ;; esac
cd "$ROOT" || exit 1
# libconfig leaks a token on a syntax error; conf/ suppresses that report,
# and this keeps LeakSanitizer from listing the suppression on stderr.
export LSAN_OPTIONS=${LSAN_OPTIONS:-print_suppressions=0}

if [ ! -x "$BECKOND" ]; then
	not_ok "config: $BECKOND is not built"
	finish
fi

# run_n FILE: beckond -n -c FILE; sets RC, stdout in $T/out, stderr in $T/err.
run_n() {
	"$BECKOND" -n -c "$1" >"$T/out" 2>"$T/err"
	RC=$?
}

show() { sed 's/^/# /' "$@"; }

# expect_errors DESC FILE EXPECTED: exit 1, and the stderr lines about config
# files (the daemon may add a line of its own) are exactly EXPECTED.
expect_errors() {
	local desc=$1 conf=$2 expected=$3 prefix=$4
	run_n "$conf"
	awk -v p="$prefix" 'index($0, p) == 1' "$T/err" >"$T/got"
	if [ "$RC" -ne 1 ]; then
		not_ok "$desc: exit $RC, want 1"
		show "$T/out" "$T/err"
	elif grep -q 'configuration OK' "$T/out"; then
		not_ok "$desc: said configuration OK"
	elif ! sanitizer_clean "$T/err"; then
		not_ok "$desc: sanitizer report"
	elif ! diff -u "$expected" "$T/got" >"$T/diff"; then
		not_ok "$desc: errors differ from $expected"
		show "$T/diff"
	else
		ok "$desc: exit 1, $(wc -l <"$expected") expected error(s)"
	fi
}

expect_ok() {
	local desc=$1 conf=$2
	run_n "$conf"
	if [ "$RC" -ne 0 ] || ! grep -qx 'configuration OK' "$T/out"; then
		not_ok "$desc: exit $RC, want 0 and configuration OK"
		show "$T/out" "$T/err"
	elif ! sanitizer_clean "$T/err"; then
		not_ok "$desc: sanitizer report"
	else
		ok "$desc: configuration OK"
	fi
}

for conf in tests/fixtures/conf/bad/*.conf; do
	expect_errors "bad/${conf##*/}" "$conf" "${conf%.conf}.expected" "tests/fixtures/conf/bad/"
done

for conf in tests/fixtures/conf/good/*.conf conf/examples/*.conf; do
	# Examples boot the demo guest, which `make` builds; `beckond -n` wants it on disk.
	if grep -q '"build/hello.elf"' "$conf" && [ ! -f build/hello.elf ]; then
		skip "$conf: build/hello.elf is not built (run make)"
		continue
	fi
	expect_ok "$conf" "$conf"
done

# One example per family of real guests: their images are not here, so beckon's
# own hello guest stands in for each (image and initrd); every other key as written.
mkdir -p "$T/guests"
cp conf/examples/guests/common.inc "$T/guests/"
for conf in conf/examples/guests/*.conf; do
	if [ ! -f build/hello.elf ]; then
		skip "$conf: build/hello.elf is not built (run make)"
		continue
	fi
	sed -E "s|(image +=) \"[^\"]*\"|\1 \"$ROOT/build/hello.elf\"|; s|(initrd +=) \"[^\"]*\"|\1 \"$ROOT/build/hello.elf\"|" \
		"$conf" >"$T/guests/${conf##*/}"
	expect_ok "$conf (images: the hello guest)" "$T/guests/${conf##*/}"
done

# The path is reported as given: absolute, and for @include'd files too.
sed "s|^tests/|$ROOT/tests/|" tests/fixtures/conf/bad/include.expected >"$T/abs.expected"
expect_errors "absolute path, with @include" "$ROOT/tests/fixtures/conf/bad/include.conf" \
	"$T/abs.expected" "$ROOT/tests/fixtures/conf/bad/"

# @include resolves against the config's directory, not the cwd.
(cd / && "$BECKOND" -n -c "$ROOT/tests/fixtures/conf/good/include.conf" >"$T/out" 2>&1)
if grep -qx 'configuration OK' "$T/out"; then
	ok "@include is relative to the config's directory (run from /)"
else
	not_ok "@include is relative to the config's directory (run from /)"
	show "$T/out"
fi

# A bare file name in the cwd: errors name it bare.
cp tests/fixtures/conf/bad/unknown-key.conf "$T/plain.conf"
(cd "$T" && "$BECKOND" -n -c plain.conf >"$T/out" 2>"$T/err")
if grep -qx 'plain.conf:2: unknown key "dnss"' "$T/err"; then
	ok "a config in the cwd is named as given"
else
	not_ok "a config in the cwd is named as given"
	show "$T/err"
fi

# A file that is not there: exit 1 and a message naming it.
run_n "$T/no-such.conf"
if [ "$RC" -eq 1 ] && grep -q "^$T/no-such.conf: cannot read: No such file or directory" "$T/err"; then
	ok "a missing config file: exit 1, named"
else
	not_ok "a missing config file: exit $RC"
	show "$T/err"
fi

finish
