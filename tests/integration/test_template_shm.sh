#!/usr/bin/env bash
# Templates whose clones share the memory they have not written (QEMU hello
# guest, bridge mode, hold "syn", template = "auto"): the boot that makes
# the template runs its RAM on a memfd, and the template gets a .ram file
# (sparse: zero pages are holes) beside its state, whose stream then holds
# no RAM; a restore maps that file privately (/proc/PID/maps) and serves;
# a second restore of the same template beside it (tests/fixtures/
# tplclone.py, with beckon's clone's own command line) serves too, and the
# pages neither wrote are shared between them (smaps: Shared_Clean, PSS
# below RSS); a clone suspended and restored comes back (its RAM in the
# stream, into QEMU's own memory); a .ram cut short or missing falls back
# to a boot with a log line and a new template; a changed image drops the
# .ram with the rest; with qemu.huge_pages = "off" QEMU runs without
# transparent huge pages (but for a restore from suspend);
# after SIGTERM no QEMU is left and nothing was made in /dev/shm.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/idlenet.sh"
idle_qemu_setup "template memory" m
CLONE_MARK=beckon-tplclone-$$
on_exit "for p in \$(pgrep -f 'guest=$CLONE_MARK-'); do kill -9 \$p; done"
SHM_BEFORE=$(ls /dev/shm | sort)

# Both with qemu.huge_pages = "off".
shm_keys() {
	echo 'cmdline = "ip={address}/{prefix} gw={gateway} name={name} port={port}";'
	echo "qemu = { huge_pages = \"off\"; ${TEST_ACCEL:+accel = \"$TEST_ACCEL\";} };"
}
# The image is a copy, so that the test can change it.
cp "$ROOT/build/hello.elf" "$T/hello.elf"
IMG=$T/hello.elf
idle_base_conf
cat >>"$CONF" <<EOF
services = (
  { name = "$P-a"; dns = ( "a.svc.test" ); address = "$INET.2"; ports = ( 80 );
    image = "$IMG"; idle_timeout = "60s"; template = "auto";
    boot_timeout = "30s"; $(shm_keys) },
  { name = "$P-b"; dns = ( "b.svc.test" ); address = "$INET.3"; ports = ( 80 );
    image = "$IMG"; idle_timeout = "3s"; on_idle = "suspend"; template = "auto";
    boot_timeout = "30s"; $(shm_keys) }
);
EOF
start_daemon "$CONF" || { not_ok "beckond starts"; finish; }
ok "beckond starts with two template services"

A=$P-a
B=$P-b
TDIR=$T/state/templates
state_is() { [ "$(svc_field "$1" state)" = "$2" ]; }
serves() { # serves ADDR NAME: the page of NAME at ADDR
	icl curl -s --max-time 30 "http://$1/" | grep -q "hello from $2 "
}
started() { svc_field "$1" started; }
stop_svc() { "$BECKONCTL" -s "$DSOCK" stop "$1" >/dev/null && wait_for 30 state_is "$1" stopped; }
# maps_has PID PATTERN: a mapping of PID's names PATTERN.
maps_has() { grep -qF -- "$2" "/proc/$1/maps"; }
# ram_field PID FIELD: FIELD (kB) of PID's mapping of a's .ram file, summed.
ram_field() {
	awk -v f="$TDIR/$A.ram" -v k="$2:" '
		/^[0-9a-f]+-[0-9a-f]+ / { on = ($6 == f) } on && $1 == k { s += $2 } END { print s + 0 }' \
		"/proc/$1/smaps"
}

# The first boot makes the template; its guest RAM is a memfd.
check "a serves its page (first boot)" serves "$INET.2" "$A"
Q=$(qemu_of a)
check "a's first QEMU maps its RAM from beckon's memfd" maps_has "$Q" "/memfd:beckon-guest-ram"
check "the template was saved, its memory in a file" \
	wait_for 30 grep -qE "$A: template saved in [0-9.]+ ms \([0-9]+ bytes\), its memory in a file" "$DLOG"
check "the template has its .state, .key and .ram" test -s "$TDIR/$A.state" -a -s "$TDIR/$A.key" -a -s "$TDIR/$A.ram"
RAMSIZE=$(stat -c %s "$TDIR/$A.ram")
check "the .ram is the guest's memory size ($RAMSIZE)" [ "$RAMSIZE" = $((16 << 20)) ]
check "the key file gives its size" grep -qx "ram $RAMSIZE" "$TDIR/$A.key"
ALLOC=$(($(stat -c %b "$TDIR/$A.ram") * $(stat -c %B "$TDIR/$A.ram")))
check "the .ram is sparse: zero pages are holes ($ALLOC bytes of $RAMSIZE allocated)" \
	[ "$ALLOC" -gt 0 -a "$ALLOC" -lt $((RAMSIZE / 4)) ]
SSIZE=$(stat -c %s "$TDIR/$A.state")
check "the state holds no RAM ($SSIZE bytes, less than 1 MiB)" [ "$SSIZE" -lt $((1 << 20)) ]
check "no .tmp is left" bash -c "! ls '$TDIR'/*.tmp 2>/dev/null | grep -q ."
check "a's first guest runs on after the save and serves" serves "$INET.2" "$A"
check "huge_pages = \"off\": QEMU runs without transparent huge pages" \
	bash -c "grep -qx 'THP_enabled:[[:space:]]*0' /proc/$Q/status"

# A restore maps the .ram privately.
check "a: stop" stop_svc "$A"
check "a: a restore from the template serves" serves "$INET.2" "$A"
check "a: started from the template ($(started "$A"))" [ "$(started "$A")" = template ]
Q1=$(qemu_of a)
check "the restored QEMU maps the template's .ram" maps_has "$Q1" "$TDIR/$A.ram"
check "... privately (share=off in its command line)" \
	bash -c "tr '\0' '\n' </proc/$Q1/cmdline | grep -q 'mem-path=$TDIR/$A.ram,share=off'"
check "the clone was reseeded" grep -q "^RESEEDED " "$T/state/$A.console"
check "... the clone's QEMU too" bash -c "grep -qx 'THP_enabled:[[:space:]]*0' /proc/$Q1/status"

# A second restore of the same template beside it: both serve, and the
# pages neither wrote are one copy.
# It gets a tap of its own in a namespace of its own (the template's
# address and MAC are the first one's).
CNS=bkm-c$$
ip netns add "$CNS" && on_exit "ip netns del $CNS"
PIDS=$(python3 "$ROOT/tests/fixtures/tplclone.py" spawn "$Q1" "$TDIR/$A.state" "$T" "$CLONE_MARK" 1 --netns "$CNS" 2>"$T/clone.err")
Q2=${PIDS%%$'\n'*}
check "a second restore of the template runs beside the first (pid ${Q2:-none})" test -n "$Q2"
[ -n "$Q2" ] || cat "$T/clone.err" "$T/$CLONE_MARK"-*.err
# Once in CI (KVM), neither restore served from here on: what each side
# saw then, for the next time.
both_said() {
	echo "# first (pid $Q1): $(ps -o stat=,pcpu=,etime= -p "$Q1" 2>&1 | tr -s ' ')," \
		"second (pid $Q2): $(ps -o stat=,pcpu=,etime= -p "$Q2" 2>&1 | tr -s ' ')"
	echo "# the second's status: $(python3 "$ROOT/tests/fixtures/tplclone.py" cmd "$T/$CLONE_MARK-0.qmp" query-status 2>&1 | head -c 200)"
	echo "# host neighbour: $(ip neigh show "$INET.2" 2>&1); in $CNS: $(ip -n "$CNS" neigh 2>&1 | tr '\n' ';')"
	tail -n 4 "$T/state/$A.console" 2>&1 | sed 's/^/# first console: /'
	tail -n 4 "$T/$CLONE_MARK-0.console" 2>&1 | sed 's/^/# second console: /'
	grep -F "$A" "$DLOG" | tail -n 8 | sed 's/^/# log: /'
}
if ip netns exec "$CNS" curl -s --max-time 30 "http://$INET.2/" | grep -q "hello from $A "; then
	ok "the second restore serves a's page"
else
	not_ok "the second restore serves a's page"
	both_said
fi
if serves "$INET.2" "$A"; then ok "the first still serves"; else not_ok "the first still serves"; both_said; fi
check "beckonctl pause a" bash -c "'$BECKONCTL' -s '$DSOCK' pause $A >/dev/null"
check "a: paused" wait_for 30 state_is "$A" paused
SH1=$(ram_field "$Q1" Shared_Clean) SH2=$(ram_field "$Q2" Shared_Clean)
RSS2=$(ram_field "$Q2" Rss) PSS2=$(ram_field "$Q2" Pss) PD2=$(ram_field "$Q2" Private_Dirty)
echo "# .ram mapping: first Shared_Clean ${SH1} kB; second Rss ${RSS2} Pss ${PSS2} Shared_Clean ${SH2} Private_Dirty ${PD2} kB"
check "the two share the .ram's pages (Shared_Clean ${SH1} and ${SH2} kB)" [ "$SH1" -gt 0 -a "$SH2" -gt 0 ]
check "the second's PSS of the .ram is below its RSS ($PSS2 < $RSS2 kB)" [ "$PSS2" -lt "$RSS2" ]
check "what the second wrote is its own, a small part ($PD2 kB of $((RAMSIZE >> 10)))" \
	[ "$PD2" -lt $((RAMSIZE >> 12)) ]
check "a: a connection resumes it" serves "$INET.2" "$A"
kill -9 "$Q2" 2>/dev/null

# b idles to suspend: the source first (its RAM a memfd), then a clone;
# suspended with the RAM in the stream, each restores into QEMU's own memory.
check "b serves (first boot, makes its template)" serves "$INET.3" "$B"
check "b's template has a .ram" wait_for 30 test -s "$TDIR/$B.ram"
check "b: idle: suspended (the source)" wait_for 60 state_is "$B" suspended
check "b: a connection restores it from suspend" serves "$INET.3" "$B"
check "b: started by a restore ($(started "$B"))" [ "$(started "$B")" = restore ]
check "b: stop" stop_svc "$B"
check "b: restored from its template" serves "$INET.3" "$B"
check "b: started from the template ($(started "$B"))" [ "$(started "$B")" = template ]
check "b: idle: suspended (the clone)" wait_for 60 state_is "$B" suspended
check "b: a connection restores the clone from suspend" serves "$INET.3" "$B"
check "b: started by a restore ($(started "$B"))" [ "$(started "$B")" = restore ]
# b idles out again 3 s after a request (sooner than a loaded machine may
# come back to it): wake it and read its QEMU's maps and status at once.
b_qemu_now() {
	serves "$INET.3" "$B" && QB=$(qemu_of b) && [ -n "$QB" ] &&
		BMAPS=$(cat "/proc/$QB/maps") && BSTATUS=$(cat "/proc/$QB/status") && [ -n "$BMAPS" ]
}
check "b: its restored QEMU read while it runs" wait_for 60 b_qemu_now
check "b's restore from suspend runs on QEMU's own memory (no .ram mapped)" \
	bash -c "[ -n \"\$1\" ] && ! grep -qF '$TDIR/$B.ram' <<<\"\$1\"" _ "$BMAPS"
check "... with transparent huge pages (a whole state loads faster with them)" \
	bash -c "grep -qx 'THP_enabled:[[:space:]]*1' <<<\"\$1\"" _ "$BSTATUS"
check "a: stop" stop_svc "$A"

# A .ram cut short: dropped, a boot, a new template.
truncate -s 4096 "$TDIR/$A.ram"
check "a: with its .ram cut short, a start boots and serves" serves "$INET.2" "$A"
check "a: started by a boot ($(started "$A"))" [ "$(started "$A")" = boot ]
check "the log says why: the memory file" \
	grep -q "$A: template dropped (its memory file is missing or not the size written)" "$DLOG"
check "a new template with a whole .ram" \
	wait_for 30 bash -c "[ \"\$(stat -c %s '$TDIR/$A.ram' 2>/dev/null)\" = $RAMSIZE ] && test -s '$TDIR/$A.key'"
check "a: stop" stop_svc "$A"
check "a: a restore again" serves "$INET.2" "$A"
check "a: started from the template" [ "$(started "$A")" = template ]

# A .ram missing: the same.
check "a: stop" stop_svc "$A"
rm -f "$TDIR/$A.ram"
n=$(grep -c "$A: template dropped (its memory file" "$DLOG")
check "a: with no .ram, a start boots and serves" serves "$INET.2" "$A"
check "a: started by a boot" [ "$(started "$A")" = boot ]
check "the log says why again" [ "$(grep -c "$A: template dropped (its memory file" "$DLOG")" = $((n + 1)) ]
check "and the new template has its .ram" wait_for 30 test -s "$TDIR/$A.ram"

# A changed image drops the .ram with the rest.
check "a: stop" stop_svc "$A"
touch "$T/changed"
printf '\0' >>"$IMG"
check "a: with its image changed, a start boots and serves" serves "$INET.2" "$A"
check "a: started by a boot" [ "$(started "$A")" = boot ]
check "the log says the template was dropped (changed)" \
	grep -q "$A: template dropped (the guest's image, command line, devices or QEMU changed)" "$DLOG"
check "the .ram is a new file" wait_for 30 bash -c "[ '$TDIR/$A.ram' -nt '$T/changed' ] && [ '$TDIR/$A.key' -nt '$T/changed' ]"
check "the new key has the new image's checksum" \
	bash -c "grep '^image ' '$TDIR/$A.key' | grep -q \"size $(stat -c %s "$IMG")\$\""

[ "$FAILED" = 0 ] || cp "$DLOG" "${KEEP_LOG:-/dev/null}" 2>/dev/null
check "SIGTERM: beckond exits 0, no sanitizer report" stop_daemon
check "SIGTERM: no QEMU left" no_qemu
check "nothing made in /dev/shm" [ "$(ls /dev/shm | sort)" = "$SHM_BEFORE" ]
check "the templates stay for the next start" test -s "$TDIR/$A.ram" -a -s "$TDIR/$A.key"
finish
