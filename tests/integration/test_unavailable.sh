#!/usr/bin/env bash
# An answer instead of a reset (unavailable), through the real daemon, with
# exec services behind the proxy (user mode, hold "proxy", no bypass):
# - a boot that fails: a held HTTP client gets the configured 503 with
#   Retry-After and body, and a client that is still sending its request
#   gets it too (the close lingers); a service without unavailable resets;
# - a boot that does not end within boot_timeout: the configured status
#   (504 here, no Retry-After with retry_after = 0);
# - a full host (max_instances = 1, the one instance busy): 503 with
#   Retry-After where configured, a reset otherwise; only the listed ports
#   answer;
# - a reload changes the answer without restarting the service;
# - a config asking for an answer under hold "syn" is refused.
. "$(dirname "$0")/lib.sh"
for tool in curl busybox python3; do
	command -v "$tool" >/dev/null || { skip "unavailable: $tool is not installed"; exit 0; }
done

DNS_PORT=$(free_port)
DOC=$(make_docroot un)
CONF=$T/beckon.conf
NET=127.$((20 + RANDOM % 200)).$((1 + RANDOM % 250))
PORT=8080
PORT2=8081

printf '#!/bin/sh\necho "about to fail"\nexit 3\n' >"$T/fail.sh"
chmod +x "$T/fail.sh"

# svc NAME N COMMAND [EXTRA KEYS]
svc() {
	cat <<CONF
  { name = "$1"; dns = ( "$1.svc.test" ); address = "$NET.$2"; ports = ( $PORT, $PORT2 );
    backend = "exec"; ready = "tcp"; idle_timeout = "60s"; memory = "16M"; boot_timeout = "3s";
    exec = { command = "$3"; }; ${4:-} },
CONF
}
HTTPD="busybox httpd -f -p 127.0.0.1:{port} -h $DOC"
write_conf() { # write_conf GLOBAL_KEYS SERVICES...
	base_conf "$CONF"
	sed -i "s|^network = .*|network = { mode = \"user\"; hold = \"proxy\"; bypass = false; hold_timeout = \"30s\"; };|" "$CONF"
	echo "$1" >>"$CONF"
	shift
	printf '%s\n' "$@" | add_services "$CONF"
}
addr() { echo "$NET.$1"; }
field() { svc_field "$1" "$2"; }
state_is() { [ "$(field "$1" state)" = "$2" ]; }
# get N [PORT] [CURL ARGS]: curl service N, the head and body in $T/out, curl's exit in RC.
get() {
	local n=$1 port=${2:-$PORT}
	shift 2 2>/dev/null || shift $#
	LOGN=$(wc -l <"$DLOG")
	curl -sS -i --max-time 30 "$@" "http://$(addr "$n"):$port/" >"$T/out" 2>"$T/err"
	RC=$?
}
status_of() { sed -n '1s/^HTTP\/1.1 \([0-9]*\) .*/\1/p' "$T/out" | tr -d '\r'; }
header() { sed -n "s/^$1: \(.*\)\r$/\1/Ip" "$T/out" | head -1; }
body() { sed '1,/^\r$/d' "$T/out"; }
# is_reset NAME: curl saw a reset. One that comes before curl has looked
# at its connection (the boot fails in a millisecond, curl waits for a CPU)
# is curl's exit 7 ("couldn't connect", as when refused) or 55 (its
# getpeername finds the socket no longer connected): then beckond must
# have held the connection and reset it since the get.
reset_logged() { tail -n +$((LOGN + 1)) "$DLOG" | grep -q "proxy: $1: the guest did not come up, reset"; }
is_reset() {
	case $RC in
	52 | 56) return 0 ;;
	7 | 55) wait_for 5 reset_logged "$1" ;;
	*) return 1 ;;
	esac
}

# 1. Boots that fail, and one that times out.
UNAV='unavailable = { status = 503; retry_after = "7s"; body = "come back later"; ports = ( '$PORT' ); };'
write_conf "max_instances = 0;" \
	"$(svc boom 3 "$T/fail.sh" "$UNAV")" \
	"$(svc bare 4 "$T/fail.sh")" \
	"$(svc slow 5 "sleep 600" 'unavailable = { status = 504; retry_after = 0; body = "too slow"; };')"
start_daemon "$CONF" || { not_ok "beckond starts"; finish; }
ok "beckond starts with unavailable answers"

get 3 $PORT
check "failed boot: the held client gets 503 (curl exit $RC, status $(status_of))" \
	bash -c "[ $RC = 0 ] && [ '$(status_of)' = 503 ]"
check "failed boot: Retry-After: 7 ($(header Retry-After))" [ "$(header Retry-After)" = 7 ]
check "failed boot: the configured body ($(body))" [ "$(body)" = "come back later" ]
check "failed boot: Content-Length and Connection: close" \
	bash -c "[ '$(header Content-Length)' = 15 ] && [ '$(header Connection)' = close ]"
check "failed boot: the log says the boot failed" grep -q "boom: boot failed" "$DLOG"
head -c 300000 /dev/urandom >"$T/big"
get 3 $PORT -X POST --data-binary @"$T/big" -H "Expect:"
check "failed boot: a client still sending a 300K request gets the 503 too (curl exit $RC, status $(status_of))" \
	[ "$(status_of)" = 503 ]
get 3 $PORT2
check "failed boot: a port not listed in unavailable.ports is reset (curl exit $RC $(head -c 90 "$T/err"))" is_reset boom
get 4 $PORT
check "failed boot: a service without unavailable resets (curl exit $RC $(head -c 90 "$T/err"))" is_reset bare
t0=$(now_ms)
get 5 $PORT
t1=$(now_ms)
check "boot_timeout (3 s): the configured 504 ($(status_of), after $((t1 - t0)) ms)" \
	bash -c "[ '$(status_of)' = 504 ] && [ $((t1 - t0)) -ge 2500 ]"
check "boot_timeout: retry_after = 0 sends no Retry-After" [ -z "$(header Retry-After)" ]
check "boot_timeout: the body ($(body))" [ "$(body)" = "too slow" ]
check "SIGTERM: clean" stop_daemon

# 2. A full host: max_instances = 1, the one instance busy.
: >"$T/beckond2.log"
write_conf "max_instances = 1; boot_rate = { rate = 0; client_rate = 0; };" \
	"$(svc a 6 "$HTTPD" "$UNAV")" \
	"$(svc b 7 "$HTTPD" "$UNAV")" \
	"$(svc c 8 "$HTTPD")"
start_daemon "$CONF" "$T/beckond2.log" || { not_ok "beckond starts with max_instances = 1"; finish; }
get 6 $PORT
check "full: a boots and serves" grep -q "hello from un" "$T/out"
python3 -c 'import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
time.sleep(600)' "$(addr 6)" "$PORT" &
HOLD=$!
on_exit "kill $HOLD"
relayed() { ss -Htnp state established "( src $(addr 6) and sport = :$PORT )" | grep -q '"beckond"'; }
check "full: a is busy (an open connection)" wait_for 30 relayed
sleep 1.2 # past the eviction's minimum idle time: only the connection keeps a busy
get 7 $PORT
check "full: b's held client gets 503 (curl exit $RC, status $(status_of))" \
	bash -c "[ $RC = 0 ] && [ '$(status_of)' = 503 ]"
check "full: with Retry-After: 7" [ "$(header Retry-After)" = 7 ]
check "full: the refusal is logged" grep -q "b: boot refused (capacity limit)" "$DLOG"
check "full: the proxy listens for c" bash -c "ss -Htln 'src $(addr 8) and sport = :$PORT' | grep -q ."
get 8 $PORT
# Refused within the accept: the reset can land before curl sees its connect done (7).
check "full: c, without unavailable, is reset (curl exit $RC)" bash -c "[ $RC = 56 ] || [ $RC = 52 ] || [ $RC = 7 ]"
check "full: b and c stay stopped, a ready" \
	bash -c "[ \"\$('$BECKONCTL' -s '$DSOCK' list | awk '{print \$1, \$2}' | grep -E '^(a|b|c) ' | sort | tr '\n' ' ')\" = 'a ready b stopped c stopped ' ]"

# 3. A reload changes the answers, and a keeps running.
boots=$(field a boots)
sed -i 's/come back later/back soon/g' "$CONF"
kill -HUP "$DPID"
check "reload: logged" wait_for 30 grep -q "reloaded: " "$DLOG"
reloaded() { get 7 $PORT && [ "$(body)" = "back soon" ]; }
check "reload: b answers the new body" wait_for 30 reloaded
check "reload: a was not restarted (boots $boots, state $(field a state))" \
	bash -c "[ '$(field a boots)' = '$boots' ] && [ '$(field a state)' = ready ]"
check "reload: a's connection is still open" relayed
kill "$HOLD" 2>/dev/null
check "SIGTERM: clean" stop_daemon

# 4. An answer under hold "syn" cannot be: the config is refused.
write_conf "" "$(svc a 6 "$HTTPD" "$UNAV")"
sed -i 's|hold = "proxy"|hold = "syn"|' "$CONF"
"$BECKOND" -n -c "$CONF" >"$T/n.out" 2>&1
rc=$?
check "hold syn: beckond -n refuses unavailable (exit $rc: $(head -1 "$T/n.out"))" \
	bash -c "[ $rc = 1 ] && grep -q 'unavailable: an answer needs network.hold = \"proxy\"' '$T/n.out'"
finish
