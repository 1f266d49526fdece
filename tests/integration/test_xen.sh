#!/usr/bin/env bash
# The Xen backend on a real Xen hypervisor: the lab (tests/xen/lab.sh) boots
# Xen 4.17 under QEMU with beckond in dom0 and runs tests/xen/run.sh there;
# its ok/not ok lines are this test's. Before it, what needs no Xen:
# `beckond -n` reports a bad xl.cfg with FILE:LINE. The lab skips only
# where the machine cannot run it (no root, under 3 GiB of disk or memory),
# or when XEN_LAB=0 says so. Its first build (debootstrap) takes about ten
# minutes, a run five to fifteen with the machine's load: hence the limit.
# run.sh timeout: 4200
. "$(dirname "$0")/lib.sh"

need_root "the Xen lab"
if ! "$BECKOND" -V | grep -qw xen; then
	skip "beckond is built without the Xen backend (libxen-dev is missing: make deps)"
	finish
fi
ok "beckond -V lists the xen backend ($("$BECKOND" -V | tail -1))"

# A bad xl.cfg, checked without a hypervisor.
printf 'type = "pvh"\nmemory = 64\nvcpus = = 1\n' >"$T/bad.cfg"
cat >"$T/bad.conf" <<CONF
state_dir = "$T/state";
control_socket = "$T/ctl.sock";
dns = { listen = ( "127.0.0.1:$(free_port)" ); zone = "svc.test";
  ns = ( { name = "ns1.svc.test"; address = "127.0.0.1"; } ); };
services = ( { name = "x"; dns = ( "x.svc.test" ); backend = "xen"; image = "$ROOT/build/hello.elf";
  address = "10.77.0.2"; ports = ( 80 ); xen = { cfg = "$T/bad.cfg"; }; } );
CONF
out=$("$BECKOND" -c "$T/bad.conf" -n 2>&1)
rc=$?
if [ $rc -eq 1 ] && echo "$out" | grep -q "$T/bad.cfg:3: config parsing error"; then
	ok "beckond -n reports a bad xl.cfg with libxlutil's FILE:LINE"
else
	not_ok "beckond -n reports a bad xl.cfg with FILE:LINE (exit $rc): $out"
fi

# The lab: its own lines, and its exit status when it printed no failure.
if [ "${XEN_LAB:-1}" = 0 ]; then
	skip "the Xen lab: XEN_LAB=0"
	finish
fi
"$ROOT/tests/xen/lab.sh" >"$T/lab.out" 2>&1
rc=$?
grep -E '^(ok|not ok|skip|#) ' "$T/lab.out"
if [ $rc -ne 0 ] && ! grep -q '^not ok ' "$T/lab.out"; then
	not_ok "the Xen lab exited $rc"
	tail -n 20 "$T/lab.out"
fi
[ $rc -eq 0 ] || FAILED=1
finish
