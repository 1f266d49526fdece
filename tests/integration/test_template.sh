#!/usr/bin/env bash
# template = "auto" with the QEMU hello guest in bridge mode, hold "syn": the
# first cold boot saves the guest's state as the service's template
# (<state_dir>/templates/NAME.state and .key) before the client reaches it;
# later cold starts (after an idle stop, a beckonctl stop) restore the
# template, serve the page, and say so in the log, in beckonctl list
# ("started") and in beckon_boot_seconds{how="template"}; pause and resume,
# suspend and restore work on a guest restored from its template; a
# template cut short, one QEMU cannot load, or one made for another memory
# size is dropped and a boot makes a new one (a restore that fails boots
# afresh in the same wake); two
# restores of one template have different boot ids and TCP initial
# sequence numbers (the hello guest's /id).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/idlenet.sh"
idle_qemu_setup "template" t
METRICS_PORT=$(free_port)

write_conf() { # write_conf MEMORY
	idle_base_conf
	sed -i "s|^metrics_listen = .*|metrics_listen = \"127.0.0.1:$METRICS_PORT\";|" "$CONF"
	cat >>"$CONF" <<EOF
services = (
  { name = "$P-a"; dns = ( "a.svc.test" ); address = "$INET.2"; ports = ( 80 );
    image = "$IMG"; idle_timeout = "12s"; on_idle = "destroy"; template = "auto";
    memory = "$1"; boot_timeout = "30s"; $(idle_qemu_keys) },
  { name = "$P-b"; dns = ( "b.svc.test" ); address = "$INET.3"; ports = ( 80 );
    image = "$IMG"; idle_timeout = "3s"; on_idle = "suspend"; template = "auto";
    boot_timeout = "30s"; $(idle_qemu_keys) },
  { name = "$P-c"; dns = ( "c.svc.test" ); address = "$INET.4"; ports = ( 80 );
    image = "$IMG"; idle_timeout = "60s"; warm = "shell"; template = "auto";
    boot_timeout = "30s"; $(idle_qemu_keys) }
);
EOF
}
write_conf 16M
start_daemon "$CONF" || { not_ok "beckond starts"; finish; }
ok "beckond starts with two template services"

A=$P-a
B=$P-b
TDIR=$T/state/templates
# now NAME: "STATE BOOTS STARTED" from one beckonctl call.
now() {
	ctl --json list | python3 -c '
import json, sys
for s in json.load(sys.stdin)["services"]:
    if s["name"] == sys.argv[1]:
        print(s["state"], s["boots"], s["started"])' "$1"
}
state_is() { [ "$(svc_field "$1" state)" = "$2" ]; }
get() { icl curl -s --max-time 30 "http://$1$2"; }
metric() { curl -s "http://127.0.0.1:$METRICS_PORT/metrics" | sed -n "s/^$1 //p"; }
count_log() { grep -c "$1" "$DLOG"; }

# The first cold boot makes the template.
check "a DNS query answers a's address" [ "$(dq +short a.svc.test A)" = "$INET.2" ]
check "a serves its page" bash -c "ip netns exec $ICL curl -s --max-time 30 http://$INET.2/ | grep -q 'hello from $A'"
NOW=$(now "$A")
check "a: ready, one boot, started by a boot ($NOW)" [ "$NOW" = "ready 1 boot" ]
check "the log says the template was saved" grep -qE "$A: template saved in [0-9.]+ ms \([0-9]+ bytes\)" "$DLOG"
check "the template's state and key are there" test -s "$TDIR/$A.state" -a -s "$TDIR/$A.key"
check "no .tmp is left" bash -c "! ls '$TDIR'/*.tmp 2>/dev/null | grep -q ."
check "the key holds the image checksum and the QEMU binary" \
	bash -c "grep -q '^image $IMG fnv64 ' '$TDIR/$A.key' && grep -q '^qemu /' '$TDIR/$A.key'"
grep '^[a-z]* ' "$TDIR/$A.key" | grep -v '^argv' | sed 's/^/# /'

# Idle stop, then a cold start: from the template.
check "idle after 12 s: stopped" wait_for 30 state_is "$A" stopped
check "a DNS query wakes it again" [ "$(dq +short a.svc.test A)" = "$INET.2" ]
check "the restored guest serves its page" bash -c "ip netns exec $ICL curl -s --max-time 30 http://$INET.2/ | grep -q 'hello from $A'"
NOW=$(now "$A")
check "a: ready, two boots, started from the template ($NOW)" [ "$NOW" = "ready 2 template" ]
check "the log says restored from its template" grep -qE "$A: restored from its template in [0-9.]+ ms" "$DLOG"
check "beckonctl list shows STARTED template" bash -c "'$BECKONCTL' -s '$DSOCK' list | awk '\$1==\"$A\"' | grep -qw template"
n=$(metric 'beckon_boot_seconds_count{how="template"}')
check "beckon_boot_seconds{how=\"template\"} counts it ($n)" [ "${n:-0}" -ge 1 ]
n=$(metric 'beckon_boot_seconds_count{how="boot"}')
check "beckon_boot_seconds{how=\"boot\"} counts the first boot ($n)" [ "${n:-0}" -ge 1 ]
check "one template save only" [ "$(count_log "$A: template saved")" = 1 ]

# Pause and resume a restored guest.
check "beckonctl pause" bash -c "'$BECKONCTL' -s '$DSOCK' pause $A >/dev/null"
check "paused" state_is "$A" paused
check "a connection resumes it and gets the page" bash -c "ip netns exec $ICL curl -s --max-time 30 http://$INET.2/ | grep -q 'hello from $A'"
check "ready again, still two boots" [ "$(now "$A")" = "ready 2 template" ]

# beckonctl stop, a third cold start: the template again.
check "beckonctl stop" bash -c "'$BECKONCTL' -s '$DSOCK' stop $A >/dev/null"
check "stopped" wait_for 30 state_is "$A" stopped
check "a third start restores the template" bash -c "ip netns exec $ICL curl -s --max-time 30 http://$INET.2/ | grep -q 'hello from $A'"
# One look: a loaded machine may reach the idle timeout between two (a
# paused guest idles too: 3 s, then 6 s, were each once too short between
# the pause and the connection that resumes it, the second beside CPU hogs).
NOW=$(now "$A")
check "ready, three boots, template ($NOW)" [ "$NOW" = "ready 3 template" ]
check "two restores from the template in the log" [ "$(count_log "$A: restored from its template")" = 2 ]

# Two restores of one template are not clones: each got a RESEED line
# (fresh entropy, the time) on its console's input right after the restore.
# /id and the SYN-ACK's ISN: probe_id (idlenet.sh).
probe_id "$INET.2"
ID1=$ID ISN1=$ISN
# Once beside CPU hogs (KVM), /id got no answer and no SYN-ACK came in 60 s:
# what beckon and the guest said then, for the next time.
[ -n "$ID1" ] || {
	echo "# no /id: $("$BECKONCTL" -s "$DSOCK" list 2>&1 | grep -F "$A" | tr -s ' ')"
	echo "# tcpdump: $(tr '\n' ';' <"$T/td.err" | head -c 300); neighbour: $(icl ip neigh 2>&1 | tr '\n' ';')"
	tail -n 4 "$T/state/$A.console" 2>&1 | sed 's/^/# console: /'
	grep -F "$A" "$DLOG" | tail -n 12 | sed 's/^/# log: /'
}
check "restore 1: /id answers, one reseed ($ID1, ISN $ISN1)" [ "$(field_of reseeds "$ID1")" = 1 ]
check "restore 1: the console says RESEEDED" grep -q "^RESEEDED " "$T/state/$A.console"
W1=$(field_of wall_ms "$ID1")
check "restore 1: its wall clock is beckon's ($W1 ms)" test "${W1:-0}" -gt 0 -a $((${W1:-0} / 1000 - $(date +%s))) -lt 60
"$BECKONCTL" -s "$DSOCK" stop "$A" >/dev/null 2>&1 # unless idle stopped it already
check "stopped" wait_for 30 state_is "$A" stopped
B4=$(svc_field "$A" boots)
probe_id "$INET.2"
ID2=$ID ISN2=$ISN
NOW=$(now "$A")
check "restore 2: from the template ($NOW)" [ "$NOW" = "ready $((B4 + 1)) template" ]
check "restore 2: one reseed ($ID2, ISN $ISN2)" [ "$(field_of reseeds "$ID2")" = 1 ]
check "two restores: different boot ids" [ "$(field_of boot_id "$ID1")" != "$(field_of boot_id "$ID2")" ]
check "two restores: different ISN secrets" [ "$(field_of isn_offset "$ID1")" != "$(field_of isn_offset "$ID2")" ]
check "two restores: different ISNs on the wire ($ISN1, $ISN2)" test -n "$ISN1" -a -n "$ISN2" -a "$ISN1" != "$ISN2"

# Suspend and restore a guest restored from its template (service b).
check "b: the first query boots it and makes its template" \
	bash -c "ip netns exec $ICL curl -s --max-time 30 http://$INET.3/ | grep -q 'hello from $B' && grep -q '$B: template saved' '$DLOG'"
check "b: idle: suspended" wait_for 30 state_is "$B" suspended
check "b: a connection restores the suspended guest" bash -c "ip netns exec $ICL curl -s --max-time 30 http://$INET.3/ | grep -q 'hello from $B'"
NOW=$(now "$B")
check "b: started by a restore from suspend ($NOW)" [ "$NOW" = "ready 2 restore" ]
check "b: beckonctl stop" bash -c "'$BECKONCTL' -s '$DSOCK' stop $B >/dev/null"
check "b: stopped" wait_for 30 state_is "$B" stopped
check "b: the next start restores the template" bash -c "ip netns exec $ICL curl -s --max-time 30 http://$INET.3/ | grep -q 'hello from $B'"
NOW=$(now "$B")
check "b: ready, three boots, template ($NOW)" [ "$NOW" = "ready 3 template" ]
check "b: idle after a template restore: suspended" wait_for 30 state_is "$B" suspended
check "b: and restored again" bash -c "ip netns exec $ICL curl -s --max-time 30 http://$INET.3/ | grep -q 'hello from $B'"
NOW=$(now "$B")
check "b: restore ($NOW)" [ "$NOW" = "ready 4 restore" ]

# warm = "shell" with a template: the first run (a warm boot shell) makes
# the template; after a stop the warm shell is one that waits to restore
# the template (-incoming defer), and the next start restores it through
# the shell, reseeded.
C=$P-c
check "c: a warm shell is made at start" wait_for 60 bash -c "[ \"\$(python3 -c '
import json, subprocess, sys
out = subprocess.run([sys.argv[1], \"-s\", sys.argv[2], \"--json\", \"list\"], capture_output=True, text=True).stdout
print([s[\"shell\"] for s in json.loads(out)[\"services\"] if s[\"name\"] == sys.argv[3]][0])' '$BECKONCTL' '$DSOCK' '$C')\" = True ]"
check "c: the first start runs the shell and serves" bash -c "ip netns exec $ICL curl -s --max-time 30 http://$INET.4/ | grep -q 'hello from $C'"
NOW=$(now "$C")
check "c: started by the shell ($NOW)" [ "$NOW" = "ready 1 shell" ]
check "c: the shell's boot saved the template" wait_for 30 grep -q "$C: template saved" "$DLOG"
check "c: beckonctl stop" bash -c "'$BECKONCTL' -s '$DSOCK' stop $C >/dev/null"
check "c: a warm template shell is made" wait_for 60 grep -q "$C: warm template shell ready" "$DLOG"
ID=$(get "$INET.4" /id)
NOW=$(now "$C")
check "c: the next start restores the template through the shell ($NOW)" [ "$NOW" = "ready 2 template" ]
check "c: and it was reseeded ($ID)" [ "$(field_of reseeds "$ID")" = 1 ]
check "c: the log says restored from its template" grep -qE "$C: restored from its template in [0-9.]+ ms" "$DLOG"

# A template cut short is dropped: the next start boots and makes a new one.
check "a: stop" bash -c "'$BECKONCTL' -s '$DSOCK' stop $A >/dev/null"
check "a: stopped" wait_for 30 state_is "$A" stopped
truncate -s 4096 "$TDIR/$A.state"
check "a: a cut-short template: the start boots and serves" bash -c "ip netns exec $ICL curl -s --max-time 30 http://$INET.2/ | grep -q 'hello from $A'"
check "a: started by a boot ($(now "$A"))" [ "$(now "$A" | cut -d' ' -f1,3)" = "ready boot" ]
check "the log says the template was dropped (size)" grep -q "$A: template dropped (its state is not the size written)" "$DLOG"
check "and a new template was saved" [ "$(count_log "$A: template saved")" = 2 ]

# A template QEMU cannot load (right size, garbage): the restore fails, it
# is dropped, and the same wake boots afresh: the held connection gets the page.
check "a: stop" bash -c "'$BECKONCTL' -s '$DSOCK' stop $A >/dev/null"
check "a: stopped" wait_for 30 state_is "$A" stopped
size=$(stat -c %s "$TDIR/$A.state")
head -c "$size" /dev/zero >"$TDIR/$A.state"
check "a: a template QEMU cannot load: the connection gets the page all the same" \
	bash -c "ip netns exec $ICL curl -s --max-time 60 http://$INET.2/ | grep -q 'hello from $A'"
check "a: the restore failed, the template was dropped" \
	wait_for 60 grep -q "$A: template dropped (the restore failed" "$DLOG"
check "a: the guest booted afresh in the same wake serves" bash -c "ip netns exec $ICL curl -s --max-time 30 http://$INET.2/ | grep -q 'hello from $A'"
st=$(now "$A" | cut -d' ' -f3) # read once: it may idle out between two reads
check "a: started by a boot ($st)" [ "$st" = boot ]
check "and a new template was saved" wait_for 30 bash -c "[ \$(grep -c '$A: template saved' '$DLOG') = 3 ]"

# Another memory size: the template is dropped at the next start.
write_conf 24M
check "SIGHUP with a's memory changed" kill -HUP "$DPID"
check "reloaded" wait_for 30 grep -q "reloaded:" "$DLOG"
check "a: stopped (changed service)" wait_for 30 state_is "$A" stopped
check "a: the start boots (the template is for 16M)" bash -c "ip netns exec $ICL curl -s --max-time 30 http://$INET.2/ | grep -q 'hello from $A'"
check "a: started by a boot" [ "$(now "$A" | cut -d' ' -f3)" = boot ]
check "the log says the template was dropped (changed)" grep -q "$A: template dropped (the guest's image, command line, devices or QEMU changed)" "$DLOG"
check "a template for 24M was saved" bash -c "grep -q -- '^argv 24M' '$TDIR/$A.key'"

[ "$FAILED" = 0 ] || cp "$DLOG" "${KEEP_LOG:-/dev/null}" 2>/dev/null
check "SIGTERM: beckond exits 0, no sanitizer report" stop_daemon
check "SIGTERM: no QEMU left" no_qemu
finish
