#!/usr/bin/env bash
# make deps never removes a package: with busybox-static installed (it
# conflicts with busybox, which deps lists), make deps leaves it in place,
# since it provides the busybox command. Real apt: the package is swapped in
# for the test and busybox put back after.
. "$(dirname "$0")/lib.sh"
need_root
command -v apt-get >/dev/null || { skip "deps: not a Debian system"; exit 0; }
cd "$ROOT"
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
had=busybox
installed busybox-static && had=busybox-static
on_exit "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $had >/dev/null 2>&1"

if ! DEBIAN_FRONTEND=noninteractive timeout -k 5 300 apt-get install -y -qq busybox-static >"$T/apt.log" 2>&1; then
	skip "deps: busybox-static cannot be installed here ($(tail -1 "$T/apt.log"))"
	exit 0
fi
check "busybox-static is installed (busybox is not)" bash -c "! dpkg-query -W -f='\${Status}' busybox 2>/dev/null | grep -q 'install ok installed'"
timeout -k 5 300 tests/deps.sh >"$T/deps.log" 2>&1
rc=$?
check "make deps succeeds (exit $rc)" [ "$rc" -eq 0 ]
check "make deps left busybox-static in place" installed busybox-static
check "make deps did not install busybox" bash -c "! grep -q busybox \"$T/deps.log\""
check "the busybox command works" bash -c "busybox echo ok | grep -q ok"
finish
