#!/usr/bin/env bash
# The guest has a say (idle_check), and idle is measured from the last
# activity.
# 1. User mode, hold "proxy", exec services (a small Python HTTP server
#    whose GET /idle answers 200 when a flag file exists, else 503),
#    idle_timeout 1s, on_idle "pause", idle_check "http:/idle" asked every
#    500 ms: "ck" says "not now" and stays up well past idle_timeout, and is
#    paused soon after it says yes; "cm" always says "not now" and is paused
#    at idle_max (4s) anyway, counted from its last request; "cc" is asked
#    by its console (idle_check "console:^IDLE-OK$"): BUSY keeps it up.
# 2. Bridge mode, hold "syn", QEMU hello guests, a client in a namespace
#    routed through the host (needs root): "long" is woken by the SYN of a
#    request that lasts 5 s (idle_timeout 2s): it stays up while the
#    request is open, beckonctl list then shows the idle time from the
#    request's end, and it is paused idle_timeout after that end, not at
#    once. "mx" is asked "http:/nope" (404: not now) every 500 ms: beckon's
#    own questions, in conntrack, are no activity, so idle_max (5s) is
#    reached and it is paused. "sn" (on_idle "suspend") is told first
#    (idle_notice "http:/bye"), then suspended.
# run.sh timeout: 900
. "$(dirname "$0")/lib.sh"
for tool in curl python3; do
	command -v "$tool" >/dev/null || { skip "idle_check: $tool is not installed"; exit 0; }
done

# log_s PATTERN: the time (epoch seconds, float) of the first log line matching PATTERN.
log_s() {
	grep -m1 "$1" "$DLOG" | python3 -c '
import datetime, sys
line = sys.stdin.readline()
if line:
    t = datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
    print(t.replace(tzinfo=datetime.timezone.utc).timestamp())'
}
now_s() { date +%s.%N; } # not python: its start can take seconds on a loaded machine
# at_least A B SECONDS: B - A >= SECONDS (floats).
at_least() { python3 -c 'import sys; a, b, s = map(float, sys.argv[1:]); sys.exit(0 if b - a >= s else 1)' "$1" "$2" "$3"; }

# ---- 1. user mode, exec services -----------------------------------------------

DNS_PORT=$(free_port)
CONF=$T/beckon.conf
NET=127.$((20 + RANDOM % 200)).$((1 + RANDOM % 200))
PORT=8080

# srv.py PORT FLAG COUNT: GET /idle is 200 when FLAG exists, else 503, each
# noted in COUNT; anything else is 200 "hello".
cat >"$T/srv.py" <<'PY'
import http.server, os, sys
port, flag, count = int(sys.argv[1]), sys.argv[2], sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/idle":
            with open(count, "a") as f:
                f.write("asked\n")
            code, body = (200, b"yes\n") if os.path.exists(flag) else (503, b"busy\n")
        else:
            code, body = 200, b"hello\n"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PY

# cc.py PORT FLAG: serves "hello" on PORT; prints "BUSY" on its console
# every 200 ms, "IDLE-OK" once FLAG exists.
cat >"$T/cc.py" <<'PY'
import http.server, os, sys, threading, time
port, flag = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "6")
        self.end_headers()
        self.wfile.write(b"hello\n")
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer(("127.0.0.1", port), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
while True:
    print("IDLE-OK" if os.path.exists(flag) else "BUSY", flush=True)
    time.sleep(0.2)
PY

svc() { # svc NAME N [KEYS]
	cat <<CONF
  { name = "$1"; dns = ( "$1.svc.test" ); address = "$NET.$2"; ports = ( $PORT );
    backend = "exec"; ready = "tcp"; idle_timeout = "1s"; on_idle = "pause"; boot_timeout = "30s";
    idle_check = "http:/idle"; idle_check_interval = "500ms"; ${3:-}
    exec = { command = "python3 $T/srv.py {port} $T/yes.$1 $T/asked.$1"; }; },
CONF
}
base_conf "$CONF"
sed -i 's|^network = .*|network = { mode = "user"; hold = "proxy"; };|' "$CONF"
{
	svc ck 2
	svc cm 3 'idle_max = "4s";'
	cat <<CONF
  { name = "cc"; dns = ( "cc.svc.test" ); address = "$NET.4"; ports = ( $PORT );
    backend = "exec"; ready = "tcp"; idle_timeout = "1s"; on_idle = "pause"; boot_timeout = "30s";
    idle_check = "console:^IDLE-OK\$"; idle_check_interval = "500ms";
    exec = { command = "python3 $T/cc.py {port} $T/yes.cc"; }; },
CONF
} | add_services "$CONF"

start_daemon "$CONF" || { not_ok "beckond starts"; finish; }
ok "beckond starts with idle_check services behind the proxy"

addr() { sed -n "s/.*\"$1\".*address = \"\([0-9.]*\)\".*/\1/p" "$CONF"; }
state_is() { [ "$(svc_field "$1" state)" = "$2" ]; }
serves() { [ "$(curl -s --max-time 30 "http://$(addr "$1"):$PORT/")" = hello ]; }
asked() { cat "$T/asked.$1" 2>/dev/null | wc -l; }

# ck: "not now" keeps it up; yes lets it pause.
check "ck: wakes and serves" serves ck
check "ck: asked, the guest says not now (within 30 s)" \
	wait_for 30 grep -q "ck: idle, but the guest says not now (503)" "$DLOG"
check "ck: asked again and again (3 times within 30 s)" wait_for 30 bash -c "[ \$(cat '$T/asked.ck' | wc -l) -ge 3 ]"
check "ck: still ready, well past idle_timeout (1 s)" state_is ck ready
check "ck: not paused meanwhile" bash -c "! grep -q 'ck: idle: pause' '$DLOG'"
touch "$T/yes.ck"
check "ck: once it says yes, paused (within 30 s)" wait_for 30 state_is ck paused
check "ck: the log says the guest agreed" grep -q "ck: the guest agrees to pause" "$DLOG"
check "ck: a request wakes it again" serves ck
check "ck: ready" state_is ck ready

# cm: always "not now"; idle_max stops the waiting, counted from the last request.
t_req=$(now_s) # before the request: its activity is no earlier
check "cm: wakes and serves" serves cm
check "cm: paused at idle_max although it always says not now (within 40 s)" \
	wait_for 40 state_is cm paused
check "cm: the log says idle_max" grep -q "cm: idle for idle_max" "$DLOG"
check "cm: it was asked before" bash -c "[ \$(cat '$T/asked.cm' | wc -l) -ge 2 ]"
t_max=$(log_s "cm: idle for idle_max")
check "cm: not before idle_max (4 s) after its last request ($t_req, $t_max)" at_least "$t_req" "${t_max:-0}" 3.9

# cc: its console says.
check "cc: wakes and serves" serves cc
check "cc: its console says BUSY: not now (within 30 s)" \
	wait_for 30 grep -q 'cc: idle, but the guest says not now (console: "BUSY")' "$DLOG"
sleep 2 # idle_timeout (1 s) twice over, on purpose
check "cc: still ready" state_is cc ready
touch "$T/yes.cc"
check "cc: once its console says IDLE-OK, paused (within 30 s)" wait_for 30 state_is cc paused
check "cc: the log says it agreed by its console" \
	grep -q 'cc: the guest agrees (console: "IDLE-OK")' "$DLOG"

check "SIGTERM: beckond exits 0, no sanitizer report" stop_daemon

# ---- 2. bridge mode, hold "syn", QEMU guests -----------------------------------

if [ "$(id -u)" -ne 0 ]; then
	skip "idle_check: bridge mode needs root"
	finish
fi
. "$(dirname "$0")/idlenet.sh"
idle_qemu_setup "idle_check bridge" k
DLOG=$T/beckond-bridge.log
idle_base_conf
add_services "$CONF" <<CONF
  { name = "$P-long"; dns = ( "long.svc.test" ); address = "$INET.2"; ports = ( 80 );
    image = "$IMG"; idle_timeout = "2s"; on_idle = "pause"; $(idle_qemu_keys) },
  { name = "$P-mx"; dns = ( "mx.svc.test" ); address = "$INET.3"; ports = ( 80 );
    image = "$IMG"; idle_timeout = "1s"; on_idle = "pause";
    idle_check = "http:/nope"; idle_check_interval = "500ms"; idle_max = "5s"; $(idle_qemu_keys) },
  { name = "$P-sn"; dns = ( "sn.svc.test" ); address = "$INET.4"; ports = ( 80 );
    image = "$IMG"; idle_timeout = "1s"; on_idle = "suspend"; idle_notice = "http:/bye";
    idle_notice_timeout = "10s"; $(idle_qemu_keys) },
CONF
start_daemon "$CONF" "$DLOG" || { not_ok "beckond starts (bridge mode)"; finish; }
ok "beckond starts with QEMU services, hold syn"
field() { svc_field "$P-$1" "$2"; }
bstate_is() { [ "$(field "$1" state)" = "$2" ]; }

# long: a request that takes 5 s to send, its first SYN waking the guest.
icl python3 -c 'import socket, sys, time
s = socket.create_connection((sys.argv[1], 80), timeout=60)
s.sendall(b"GET / HTTP/1.1\r\nHost: long\r\n")
open(sys.argv[2] + ".open", "w").write("open\n")
time.sleep(5)
s.sendall(b"Connection: close\r\n\r\n")
data = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    data += b
s.close()
open(sys.argv[2], "w").write("%f\n%s" % (time.time(), data.decode(errors="replace")))' \
	"$INET.2" "$T/long" &
LONG=$!
check "long: the SYN wakes it, no DNS query (within 60 s)" wait_for 60 bstate_is long ready
check "long: the request is open" wait_for 30 test -s "$T/long.open"
sleep 3 # past idle_timeout (2 s) on purpose, the request still open
check "long: still ready while the request is open (3 s, idle_timeout 2 s)" bstate_is long ready
wait $LONG
t_end=$(head -1 "$T/long" 2>/dev/null)
check "long: the request was served" grep -q "hello from $P-long" "$T/long"
idle_ms=$(field long idle_ms)
uptime_ms=$(field long uptime_ms)
t_list=$(now_s)
check "long: list shows the idle time from the request's end ($idle_ms ms idle, $uptime_ms ms up)" \
	python3 -c "import sys; sys.exit(0 if $idle_ms <= ($t_list - $t_end) * 1000 + 1500 and $uptime_ms >= 5000 else 1)"
check "long: paused once idle (within 30 s)" wait_for 30 bstate_is long paused
t_pause=$(log_s "$P-long: idle: pause")
check "long: paused idle_timeout after the request's end, not at once" at_least "${t_end:-0}" "${t_pause:-0}" 1.5

# mx: beckon's questions to the guest do not keep it up.
mx_serves() { icl curl -s --max-time 60 "http://$INET.3/" | grep -q "hello from $P-mx"; }
t_req=$(now_s)
check "mx: a connection wakes it and gets the page" mx_serves
check "mx: asked, the guest says not now (404)" \
	wait_for 30 grep -q "$P-mx: idle, but the guest says not now (404)" "$DLOG"
check "mx: paused at idle_max: its questions are no activity (within 40 s)" \
	wait_for 40 bstate_is mx paused
check "mx: the log says idle_max" grep -q "$P-mx: idle for idle_max" "$DLOG"
t_max=$(log_s "$P-mx: idle for idle_max")
check "mx: not before idle_max (5 s) after its last request" at_least "$t_req" "${t_max:-0}" 4.9

# sn: told before its suspend (the hello guest answers 404 to /bye), then suspended.
sn_serves() { icl curl -s --max-time 60 "http://$INET.4/" | grep -q "hello from $P-sn"; }
check "sn: a connection wakes it and gets the page" sn_serves
check "sn: suspended once idle (within 60 s)" wait_for 60 bstate_is sn suspended
told=$(grep -n "$P-sn: the guest was told (404)" "$DLOG" | head -1 | cut -d: -f1)
susp=$(grep -n "$P-sn: idle: suspend" "$DLOG" | head -1 | cut -d: -f1)
told_first() { [ -n "$told" ] && [ -n "$susp" ] && [ "$told" -lt "$susp" ]; }
check "sn: the guest was told (its answer: 404) before the suspend" told_first
check "sn: a connection restores it and gets the page" sn_serves

check "SIGTERM: beckond exits 0, no sanitizer report" stop_daemon
finish
