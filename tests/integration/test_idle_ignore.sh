#!/usr/bin/env bash
# Traffic that does not count (idle_ignore), through the real daemon with
# exec services (busybox httpd) behind the proxy (user mode, hold "proxy"),
# idle_timeout 2s, on_idle "pause". A health checker hitting /healthz
# every 200 ms:
# - hp lists "/healthz": it is paused all the same (the checker is served,
#   each hit on a paused guest wakes it, and it is paused again);
# - hu lists nothing: the same checker keeps it up, never idle;
# - hc lists the checker's client address (a /32 on lo): paused all the
#   same, although its connections skip the proxy once it is ready (they
#   show in conntrack only, and are passed over there);
# - ha lists "/healthz" with idle_ignore_answer = 200: once paused, beckon
#   answers the checker itself and the guest stays paused; a real request
#   wakes it.
# - hs lists "/cgi-bin/slow", a request that takes 4 s (idle_timeout 2 s):
#   it is answered, and the guest is not paused while it is in flight (a
#   guest paused under a request would leave its client hanging), but is
#   once it is answered;
# Then beckonctl list shows the idle time from the last real request.
. "$(dirname "$0")/lib.sh"
for tool in curl busybox python3; do
	command -v "$tool" >/dev/null || { skip "idle_ignore: $tool is not installed"; exit 0; }
done

DNS_PORT=$(free_port)
DOC=$(make_docroot ignore)
echo ok >"$DOC/healthz"
mkdir -p "$DOC/cgi-bin"
printf '#!/bin/sh\nsleep 4\nprintf "Content-Type: text/plain\\r\\n\\r\\nslow done\\n"\n' >"$DOC/cgi-bin/slow"
chmod 755 "$DOC/cgi-bin/slow"
CONF=$T/beckon.conf
NET=127.$((20 + RANDOM % 200)).$((1 + RANDOM % 200))
CHECKER=$NET.250 # the health checker's own address (lo takes all of 127/8)
PORT=8080

svc() { # svc NAME N [KEYS]
	cat <<CONF
  { name = "$1"; dns = ( "$1.svc.test" ); address = "$NET.$2"; ports = ( $PORT );
    backend = "exec"; ready = "tcp"; idle_timeout = "2s"; on_idle = "pause"; ${3:-}
    exec = { command = "busybox httpd -f -p 127.0.0.1:{port} -h $DOC"; }; },
CONF
}

base_conf "$CONF"
sed -i 's|^network = .*|network = { mode = "user"; hold = "proxy"; };|' "$CONF"
{
	svc hp 2 'idle_ignore = ( "/healthz" );'
	svc hu 3
	svc hc 4 "idle_ignore = ( \"$CHECKER/32\", \"192.0.2.0/24\" );"
	svc ha 5 'idle_ignore = ( "/healthz" ); idle_ignore_answer = 200;'
	svc hs 6 'idle_ignore = ( "/cgi-bin/slow" );'
} | add_services "$CONF"

start_daemon "$CONF" || { not_ok "beckond starts"; finish; }
ok "beckond starts with idle_ignore services behind the proxy"

addr() { sed -n "s/.*\"$1\".*address = \"\([0-9.]*\)\".*/\1/p" "$CONF"; }
state_is() { [ "$(svc_field "$1" state)" = "$2" ]; }
page() { curl -s --max-time 30 "http://$(addr "$1"):$PORT/"; }
serves() { [ "$(page "$1")" = "hello from ignore" ]; }
idled() { grep -q "$1: idle: pause" "$DLOG"; }
idled_count() { grep -c "$1: idle: pause" "$DLOG"; }

# checker NAME PATH [CURL ARGS]: hit PATH of NAME every 200 ms until
# $T/hit.NAME goes; each status code goes to $T/codes.NAME, each body to
# $T/bodies.NAME. Sets CHK.
checker() {
	local name=$1 path=$2
	shift 2
	touch "$T/hit.$name"
	(
		while [ -e "$T/hit.$name" ]; do
			curl -s --max-time 30 "$@" -o "$T/body.$name" -w '%{http_code}\n' \
				"http://$(addr "$name"):$PORT$path" >>"$T/codes.$name"
			cat "$T/body.$name" >>"$T/bodies.$name" 2>/dev/null
			sleep 0.2
		done
	) &
	CHK=$!
}
stop_checker() { rm -f "$T/hit.$1"; wait "$2"; }
all_200() { [ -s "$T/codes.$1" ] && ! grep -qv '^200$' "$T/codes.$1"; }
hits() { wc -l <"$T/codes.$1"; }

# 1. hp: /healthz listed: paused while the checker runs.
check "hp: wakes and serves" serves hp
checker hp /healthz
check "hp: /healthz is listed: paused while it is hit every 200 ms (within 30 s)" wait_for 30 idled hp
# Each hit on the paused guest wakes it (served), and it goes idle again.
check "hp: woken by the checker and paused again, twice more (within 30 s)" \
	wait_for 30 bash -c "[ \$(grep -c 'hp: idle: pause' '$DLOG') -ge 3 ]"
check "hp: ... woken by the checker meanwhile" grep -q "hp: resumed" "$DLOG"
stop_checker hp "$CHK"
check "hp: every health check was answered 200 (paused guests woken)" all_200 hp

# 2. hu: the same checker, nothing listed: it keeps the guest up.
check "hu: wakes and serves" serves hu
checker hu /healthz
sleep 7 # past idle_timeout (2 s) three times over, on purpose
check "hu: unlisted, the checker keeps it ready after 7 s (idle_timeout 2 s)" state_is hu ready
check "hu: ... and never idle" bash -c "! grep -q 'hu: idle:' '$DLOG'"
stop_checker hu "$CHK"
check "hu: every health check was answered 200" all_200 hu
check "hu: idle once the checker stops (within 30 s)" wait_for 30 idled hu

# 3. hc: the checker's address listed; its connections to a ready guest skip the proxy.
check "hc: wakes and serves" serves hc
checker hc / --interface "$CHECKER"
check "hc: the client $CHECKER is listed: paused while it hits every 200 ms (within 30 s)" \
	wait_for 30 idled hc
stop_checker hc "$CHK"
check "hc: every request from the listed client was served" all_200 hc
check "hc: ... with the page" grep -q "hello from ignore" "$T/bodies.hc"
check "hc: a request from another client wakes it and is served" serves hc
check "hc: ready" state_is hc ready

# 4. ha: answered by beckon while paused; the guest stays paused.
check "ha: wakes and serves" serves ha
checker ha /healthz
check "ha: paused while /healthz is hit (within 30 s)" wait_for 30 idled ha
n=$(hits ha)
resumes=$(grep -c "ha: resumed" "$DLOG")
sleep 3
check "ha: the checker goes on being answered while paused" bash -c "[ \$(wc -l <'$T/codes.ha') -gt $((n + 3)) ]"
check "ha: ... and the guest is still paused (not woken by it)" state_is ha paused
check "ha: ... not resumed once" [ "$(grep -c "ha: resumed" "$DLOG")" = "$resumes" ]
check "ha: paused once" [ "$(idled_count ha)" = 1 ]
stop_checker ha "$CHK"
check "ha: every health check was answered 200" all_200 ha
check "ha: beckon's own answer says 200 OK" grep -q "^200 OK" "$T/bodies.ha"
check "ha: a real request wakes it and gets the page" serves ha
check "ha: ready" state_is ha ready

# 5. Idle is measured from the last real request, not the health checks
# (nor beckon's answers to them): beckonctl list shows it.
checker ha /healthz
t0=$(now_ms)
check "ha: a real request is served" serves ha
t1=$(now_ms)
sleep 1
t2=$(now_ms)
idle_ms=$(svc_field ha idle_ms)
t3=$(now_ms)
stop_checker ha "$CHK"
check "ha: list shows the idle time since that request, health checks aside ($((t2 - t1)) ms <= $idle_ms ms <= $((t3 - t0)) ms)" \
	bash -c "[ '$idle_ms' -ge $((t2 - t1 - 100)) ] && [ '$idle_ms' -le $((t3 - t0 + 100)) ]"

# 6. hs: a listed request slower than idle_timeout: no pause under it.
check "hs: wakes and serves" serves hs
t0=$(now_ms)
slow=$(curl -s --max-time 20 "http://$(addr hs):$PORT/cgi-bin/slow")
check "hs: a listed request that takes 4 s is answered (got '$slow')" [ "$slow" = "slow done" ]
# Paused at once after the answer is right (the idle time was not reset).
first=$(grep -m1 'hs: idle:' "$DLOG" | cut -d' ' -f1)
first_ms=$([ -n "$first" ] && date -d "$first" +%s%3N)
when=${first_ms:+first idle action $((first_ms - t0)) ms after the request}
check "hs: ... the guest was not paused under it (${when:-no idle action yet})" \
	bash -c "[ -z '$first_ms' ] || [ '$first_ms' -ge $((t0 + 3900)) ]"
check "hs: paused once it was answered (within 30 s)" wait_for 30 idled hs

check "SIGTERM: beckond exits 0, no sanitizer report" stop_daemon
finish
