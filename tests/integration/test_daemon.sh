#!/usr/bin/env bash
# The daemon's wiring: startup failures, beckonctl, SIGHUP reload, SIGTERM.
. "$(dirname "$0")/lib.sh"

DNS_PORT=$(free_port)
METRICS_PORT=$(free_port)
# A loopback /24 of its own, so that nothing else on the host holds our ports.
NET=127.$((RANDOM % 200 + 20)).$((RANDOM % 250 + 1))
DOC=$(make_docroot www)
CONF=$T/beckon.conf

svc() { # svc NAME ADDRESS
	cat <<CONF
  { name = "$1"; dns = ( "$1.svc.test" ); address = "$2"; ports = ( 8080 );
    backend = "exec"; ready = "tcp"; boot_timeout = "5s";
    exec = { command = "busybox httpd -f -p {address}:8080 -h $DOC"; }; }
CONF
}
write_conf() { # write_conf "SERVICE..." -- each arg "name address"
	base_conf "$CONF"
	sed -i "s/^metrics_listen.*/metrics_listen = \"127.0.0.1:$METRICS_PORT\";/" "$CONF"
	echo "services = (" >>"$CONF"
	local first=1 s
	for s in "$@"; do
		[ $first -eq 1 ] || echo "," >>"$CONF"
		first=0
		svc $s >>"$CONF"
	done
	echo ");" >>"$CONF"
}

# -V and -n
check "beckond -V prints the version" bash -c "timeout -k 5 30 '$BECKOND' -V | grep -q '^beckond [0-9]'"
write_conf "www $NET.2"
check "beckond -n accepts a good config" bash -c "timeout -k 5 30 '$BECKOND' -n -c '$CONF' | grep -qx 'configuration OK'"
check "beckond with a missing config exits 1 with a message" \
	bash -c "timeout -k 5 30 '$BECKOND' -c /nonexistent.conf 2>&1 | grep -q nonexistent; [ \${PIPESTATUS[0]} -eq 1 ]"

# A port in use is a clean startup failure. The holder takes a port the
# kernel picks (a port picked beforehand can be taken meanwhile, by another
# test run say) and says which once bound; it holds it until killed.
python3 -c 'import socket,sys,time
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(("127.0.0.1",0))
print(s.getsockname()[1], flush=True); time.sleep(600)' >"$T/holder.port" 2>"$T/holder.err" &
HOLDER=$!
on_exit "kill $HOLDER"
if ! wait_for 20 grep -q . "$T/holder.port"; then
	not_ok "a DNS port in use: the port holder did not bind: $(cat "$T/holder.err")"
else
	HPORT=$(cat "$T/holder.port")
	sed "s/127.0.0.1:$DNS_PORT/127.0.0.1:$HPORT/" "$CONF" >"$T/inuse.conf"
	# Should it start after all, it must not run on in the foreground.
	timeout -k 5 30 "$BECKOND" -c "$T/inuse.conf" >"$T/inuse.log" 2>&1
	rc=$?
	check "a DNS port in use: exit 1 (exit $rc)" [ $rc -eq 1 ]
	check "a DNS port in use: the log says so" grep -qiE "in use|$HPORT" "$T/inuse.log"
fi
kill $HOLDER; wait $HOLDER 2>/dev/null

# A xen service on this machine: with the backend left out of the build
# (no libxen-dev), beckond starts, says so, and refuses that service's
# wakes (SERVFAIL), not the others'; built in, on a machine that is no Xen
# dom0, the wake fails the same way, the log saying why.
cp "$CONF" "$T/xen.conf"
sed -i '$d' "$T/xen.conf" # the closing ");"
printf 'type = "pvh"\nmemory = 64\n' >"$T/hello.xl.cfg"
cat >>"$T/xen.conf" <<CONF
, { name = "xen"; dns = ( "xen.svc.test" ); address = "$NET.5"; ports = ( 80 );
    image = "$ROOT/build/hello.elf"; backend = "xen"; xen = { cfg = "$T/hello.xl.cfg"; }; }
);
CONF
: >"$T/xen.log"
start_daemon "$T/xen.conf" "$T/xen.log" || { not_ok "beckond starts with a xen service"; finish; }
if "$BECKOND" -V | grep -qw xen; then
	check "xen built in, no Xen here: its name is SERVFAIL" \
		bash -c "dig @127.0.0.1 -p $DNS_PORT +time=15 +tries=1 xen.svc.test A | grep -q 'status: SERVFAIL'"
	check "xen built in, no Xen here: the log says why" \
		wait_for 15 grep -q 'cannot open libxenlight' "$T/xen.log"
else
	check "a backend not built in: the log says so at start" \
		grep -q 'xen: the xen backend is not built into this beckond' "$T/xen.log"
	check "a backend not built in: its name is SERVFAIL" \
		bash -c "dig @127.0.0.1 -p $DNS_PORT +time=5 +tries=1 xen.svc.test A | grep -q 'status: SERVFAIL'"
fi
check "a xen service: SIGTERM: clean" stop_daemon

# Up, and beckonctl.
start_daemon "$CONF" || { not_ok "beckond starts"; finish; }
ok "beckond starts and its control socket answers"
check "beckonctl status names the zone" bash -c "'$BECKONCTL' -s '$DSOCK' status | grep -q 'zone svc.test'"
check "beckonctl list shows www stopped" bash -c "'$BECKONCTL' -s '$DSOCK' list | grep -qE '^www +stopped +$NET.2'"
check "beckonctl --json list is JSON" bash -c "'$BECKONCTL' -s '$DSOCK' --json list | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"services\"][0][\"name\"]==\"www\"'"
check "beckonctl start waits until ready" bash -c "'$BECKONCTL' -s '$DSOCK' start www | grep -qx 'www: ready'"
check "the started service serves" bash -c "curl -sf http://$NET.2:8080/ | grep -q 'hello from www'"
check "beckonctl list shows one boot" bash -c "'$BECKONCTL' -s '$DSOCK' --json list | python3 -c 'import json,sys; s=json.load(sys.stdin)[\"services\"][0]; assert s[\"state\"]==\"ready\" and s[\"boots\"]==1 and s[\"pid\"]>0'"
check "beckonctl on an unknown service exits non-zero with a message" \
	bash -c "! '$BECKONCTL' -s '$DSOCK' stop nosuch 2>$T/err && grep -q 'unknown service' $T/err"
check "beckonctl with no daemon exits non-zero with a message" \
	bash -c "! '$BECKONCTL' -s $T/none.sock status 2>$T/err && grep -q 'cannot reach' $T/err"
check "beckonctl with an unknown command is a usage error" bash -c "! '$BECKONCTL' -s '$DSOCK' frobnicate 2>/dev/null"
check "a second beckond on the same control socket refuses to start" \
	bash -c "timeout -k 5 30 '$BECKOND' -c '$CONF' >$T/second.log 2>&1; rc=\$?; [ \$rc -ne 0 ] && [ \$rc -ne 124 ]"
check "... saying another beckond holds the state_dir, before its sweep touches anything" \
	grep -q "another beckond runs with state_dir $T/state" "$T/second.log"
check "... and the first one's www still runs (its process was not swept)" \
	bash -c "'$BECKONCTL' -s '$DSOCK' list | grep -qE '^www +ready'"

# Metrics, after one boot and a few queries.
dq +short www.svc.test >/dev/null
dq +short nosuch.svc.test >/dev/null
curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" >"$T/metrics"
check "metrics: boots by service and result" grep -qx 'beckon_boots_total{service="www",result="ok"} 1' "$T/metrics"
check "metrics: DNS answers by rcode" bash -c "grep -qE '^beckon_dns_queries_total\{rcode=\"NXDOMAIN\"\} [1-9]' $T/metrics && grep -qE '^beckon_dns_queries_total\{rcode=\"NOERROR\"\} [1-9]' $T/metrics"
check "metrics: boot time histogram has the boot" grep -qx 'beckon_boot_seconds_count{how="boot"} 1' "$T/metrics"
check "metrics: ... and its series without a label, as before the label came" grep -qx 'beckon_boot_seconds_count 1' "$T/metrics"
check "metrics: instances by state" grep -qx 'beckon_instances{state="ready"} 1' "$T/metrics"
check "metrics: wake histogram and held connections present" bash -c "grep -q '^beckon_wake_seconds_bucket' $T/metrics && grep -q '^beckon_held_connections ' $T/metrics"
check "metrics: other paths are 404" bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$METRICS_PORT/)\" = 404 ]"

# SIGHUP with an added service: the old instance stays, the new one serves.
WWWPID=$("$BECKONCTL" -s "$DSOCK" --json list | python3 -c 'import json,sys; print(json.load(sys.stdin)["services"][0]["pid"])')
write_conf "www $NET.2" "api $NET.3"
kill -HUP "$DPID"
check "SIGHUP: the added service is served" wait_for 15 bash -c "dig @127.0.0.1 -p $DNS_PORT +time=2 +tries=1 +short api.svc.test | grep -qx $NET.3"
check "SIGHUP: the unchanged service kept its process" bash -c "'$BECKONCTL' -s '$DSOCK' --json list | python3 -c 'import json,sys; s=[x for x in json.load(sys.stdin)[\"services\"] if x[\"name\"]==\"www\"][0]; assert s[\"pid\"]==$WWWPID and s[\"state\"]==\"ready\", s'"

# A broken file is rejected and the old config keeps serving.
echo 'services = ( { name = "bad"; ' >>"$CONF"
kill -HUP "$DPID"
check "SIGHUP with a broken file: an error is logged" wait_for 10 grep -q "reload rejected" "$DLOG"
check "SIGHUP with a broken file: the old config still serves" bash -c "dig @127.0.0.1 -p $DNS_PORT +time=2 +tries=1 +short api.svc.test | grep -qx $NET.3"
check "beckonctl reload with a broken file fails with the error" \
	bash -c "! '$BECKONCTL' -s '$DSOCK' reload 2>$T/err && grep -q 'reload rejected' $T/err"

# beckonctl stop ends the process.
check "beckonctl stop www" bash -c "'$BECKONCTL' -s '$DSOCK' stop www >/dev/null"
check "the stopped service's process is gone" wait_for 15 bash -c "! kill -0 $WWWPID"

# SIGTERM: every child gone, the socket removed.
dq +short api.svc.test >/dev/null
"$BECKONCTL" -s "$DSOCK" start api >/dev/null
check "SIGTERM: beckond exits 0 with no sanitizer report" stop_daemon
check "SIGTERM: no child process is left" bash -c "! pgrep -f 'httpd -f -p $NET.[23]:8080'"
check "SIGTERM: the control socket is removed" [ ! -e "$DSOCK" ]
finish
