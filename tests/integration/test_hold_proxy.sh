#!/usr/bin/env bash
# hold = "proxy" (user mode), through the real daemon: the proxy listens on
# each service's address and ports, holds clients while the service boots,
# and relays. Cold connections, 50 at once with one boot, half-close, 50 MB
# each way intact, flow control against a slow reader (RSS bounded), a
# failed boot resets its clients, connecting again when the upstream closes
# early (QEMU hostfwd does), the held-connection limit, the hold timeout,
# held connections in the metrics, and kill -9.
# Services are exec processes on 127.0.0.1:{port}; clients run in a network
# namespace routed through the host to host addresses where the proxy listens.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/holdnet.sh"
need_root "hold proxy"
for tool in curl busybox python3 ss; do
	command -v "$tool" >/dev/null || { skip "hold proxy: $tool is not installed"; exit 0; }
done
# A small quarantine, so that RSS tells what the proxy holds, not what ASan keeps.
export ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=8"

holdnet_up || { not_ok "test network set up"; finish; }
for n in 2 3 4 5 6 7 8 9; do holdnet_addr $n || { not_ok "host address $n"; finish; }; done
DNS_PORT=$(free_port)
METRICS_PORT=$(free_port)
DOC=$(make_docroot proxy)
CONF=$T/beckon.conf

# srv.py DELAY: after DELAY seconds, serve 127.0.0.1:$PORT. A connection
# sends "UP\n" and data until EOF (answered "N SHA256"), "DOWN N\n" (answered
# N bytes of seeded data) or "ZERO N\n" (N zero bytes, fast). FLAKY=K: the first K connections are closed at once.
cat >"$T/srv.py" <<'EOF'
import hashlib, os, random, socket, sys, threading, time
time.sleep(float(sys.argv[2]))
flaky = int(os.environ.get("FLAKY", "0"))
ls = socket.create_server(("127.0.0.1", int(sys.argv[1])), backlog=128)
def data(n):
    return random.Random(n).randbytes(n)
def serve(c):
    f = c.makefile("rb")
    cmd = f.readline().split()
    if cmd[0] == b"UP":
        h, n = hashlib.sha256(), 0
        while True:
            b = f.read1(65536)
            if not b:
                break
            h.update(b); n += len(b)
        c.sendall(b"%d %s\n" % (n, h.hexdigest().encode()))
    elif cmd[0] == b"ZERO":
        n, z = int(cmd[1]), bytes(1 << 20)
        try:
            while n > 0:
                c.sendall(z[:min(n, len(z))]); n -= len(z)
        except OSError:
            pass
    elif cmd[0] == b"DOWN":
        n = int(cmd[1]); d = data(n)
        try:
            for i in range(0, n, 1 << 20):
                c.sendall(d[i:i + (1 << 20)])
        except OSError:
            pass
    c.close()
while True:
    c, _ = ls.accept()
    if flaky > 0:
        flaky -= 1
        c.close()
        continue
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
# cli.py up|down|slow|idle HOST PORT N: check what comes back; prints "ok ...".
cat >"$T/cli.py" <<'EOF'
import hashlib, random, socket, sys, time
op, host, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s = socket.create_connection((host, port), timeout=30)
t0 = time.time()
if op == "up":
    d = random.Random(n).randbytes(n)
    s.sendall(b"UP\n" + d)
    s.shutdown(socket.SHUT_WR)  # half-close: the answer comes after our EOF
    r = s.makefile("rb").read().decode().split()
    want = [str(n), hashlib.sha256(d).hexdigest()]
    print("ok" if r == want else "bad %r want %r" % (r, want))
elif op in ("down", "slow"):
    s.sendall(b"%s %d\n" % (b"DOWN" if op == "down" else b"ZERO", n))
    h, got = hashlib.sha256(), 0
    total = n if op == "down" else int(sys.argv[5])
    while got < total:
        b = s.recv(65536 if op == "down" else 16384)
        if not b:
            break
        h.update(b); got += len(b)
        if op == "slow":
            time.sleep(0.002)
    if op == "down":
        want = hashlib.sha256(random.Random(n).randbytes(n)).hexdigest()
        print("ok" if got == n and h.hexdigest() == want else "bad %d bytes" % got)
    else:
        print("ok" if got >= total else "short %d" % got)
elif op == "idle":  # connect, never send: how long until the proxy drops us
    try:
        b = s.recv(1)
        how = "eof" if not b else "data"
    except ConnectionResetError:
        how = "reset"
    except socket.timeout:
        how = "timeout"
    print("%s %.2f" % (how, time.time() - t0))
EOF

svc() { # svc N NAME PORT COMMAND [READY] [BOOT_TIMEOUT]
	cat <<CONF
  { name = "$2"; dns = ( "$2.svc.test" ); address = "$HSNET.$1"; ports = ( $3 );
    backend = "exec"; ready = "${5:-tcp}"; boot_timeout = "${6:-60s}";
    exec = { command = "$4"; }; },
CONF
}
httpd() { # httpd N DELAY: a counted busybox httpd after DELAY (see holdnet_wait)
	echo "sh -c 'echo run >>$T/count.$1; $(holdnet_wait "$1" "$2"); exec busybox httpd -f -p 127.0.0.1:{port} -h $DOC'"
}

write_conf() { # write_conf EXTRA_NETWORK_KEYS
	base_conf "$CONF"
	# A minute's hold unless the test says: a boot on a loaded machine outlasts the 10 s default.
	local keys=$1
	case $keys in *hold_timeout*) ;; *) keys="hold_timeout = \"60s\"; $keys" ;; esac
	sed -i "s|^network = .*|network = { mode = \"user\"; hold = \"proxy\"; $keys };|" "$CONF"
	sed -i "s|^metrics_listen = .*|metrics_listen = \"127.0.0.1:$METRICS_PORT\";|" "$CONF"
	{
		svc 2 web 80 "$(httpd 2 0.3)"
		svc 3 many 80 "$(httpd 3 0.3)"
		svc 4 data 9000 "python3 $T/srv.py {port} 0.3"
		svc 5 never 80 "sleep 1000" tcp 6s
		svc 6 early 80 "$(httpd 6 0.25)" "delay:10ms"
		svc 7 flaky 9000 "env FLAKY=2 python3 $T/srv.py {port} 0"
		svc 8 lim 80 "$(httpd 8 go)" tcp 60s # its boot waits for the test
		svc 9 quiet 80 "$(httpd 9 3)"
	} | add_services "$CONF"
}

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$DPID/status"; }
held_metric() { curl -s "http://127.0.0.1:$METRICS_PORT/metrics" | awk '$1 == "beckon_held_connections" {print $2}'; }
listening() { ss -Htln "src $HSNET.$1" | grep -q ":$2"; }

write_conf ""
start_daemon "$CONF" || { not_ok "beckond starts with hold proxy"; finish; }
ok "beckond starts with hold proxy"
all_listening() { listening 2 80 && listening 4 9000 && listening 9 80; }
check "the proxy listens on each service address and port" all_listening
check "no service process runs yet" [ "$(runs 2)$(runs 3)" = 00 ]

# 1. A cold connection is held while the service boots, then relayed.
out=$(hcl curl -s -m 5 -w ' %{http_code} %{time_total}' "http://$HSNET.2/")
check "cold connection: 200 with the page ($(echo $out))" \
	bash -c "[[ \"\$1\" == 'hello from proxy'*' 200 '* ]]" _ "$out"
check "cold connection: it took about the boot (${out##* }s)" \
	python3 -c "import sys; sys.exit(not 0.25 <= ${out##* } < 2)"
check "cold connection: one boot" [ "$(runs 2)" -eq 1 ]
out=$(hcl curl -s -m 2 -w ' %{time_total}' "http://$HSNET.2/")
# Straight through: no boot, no hold (its time is shown; bench_hold measures it).
check "ready service: straight through, no second boot (${out##* }s, $(runs 2) boot)" \
	bash -c "[ $(runs 2) -eq 1 ] && python3 -c 'import sys; sys.exit(not ${out##* } < 2)'"

# 2. 50 concurrent connections to a cold service: all 200, one boot.
for i in $(seq 50); do
	hcl curl -s -o /dev/null -m 60 -w '%{http_code}\n' "http://$HSNET.3/" >"$T/c.$i" 2>&1 &
done
wait_for 90 bash -c "[ \$(cat $T/c.* 2>/dev/null | grep -c .) -eq 50 ]"
n=$(cat "$T"/c.* | grep -cx 200)
check "50 concurrent connections: all 200 ($n)" [ "$n" -eq 50 ]
check "50 concurrent connections: one boot ($(runs 3) runs)" [ "$(runs 3)" -eq 1 ]
check "50 concurrent connections: one 'booting' line" [ "$(grep -c 'many: booting' "$DLOG")" -eq 1 ]

# 3. Half-close, and 50 MB each way.
out=$(hcl python3 "$T/cli.py" up "$HSNET.4" 9000 1000000)
check "half-close: the client shuts its write side and still reads the answer ($out)" [ "$out" = ok ]
out=$(hcl python3 "$T/cli.py" up "$HSNET.4" 9000 52428800)
check "50 MB upload arrives intact ($out)" [ "$out" = ok ]
out=$(hcl python3 "$T/cli.py" down "$HSNET.4" 9000 52428800)
check "50 MB download arrives intact ($out)" [ "$out" = ok ]
check "bulk goes through splice(2): client to guest" grep -q 'data: splicing client to guest' "$DLOG"
check "bulk goes through splice(2): guest to client" grep -q 'data: splicing guest to client' "$DLOG"
check "a small page is not spliced" bash -c "! grep -q 'web: splicing' '$DLOG'"

# 4. Flow control: a slow reader of a fast sender; beckond's memory stays put.
rss0=$(rss_kb)
hcl python3 "$T/cli.py" slow "$HSNET.4" 9000 500000000 16000000 >"$T/slow.out" &
SLOW=$!
max=$rss0
while kill -0 "$SLOW" 2>/dev/null; do
	r=$(rss_kb)
	[ "$r" -gt "$max" ] && max=$r
	sleep 0.1
done
wait "$SLOW"
check "slow reader: it read what it wanted ($(cat "$T/slow.out"))" [ "$(cat "$T/slow.out")" = ok ]
check "slow reader: beckond RSS grew by $(((max - rss0) / 1024)) MB (< 32 MB) while 500 MB waited" \
	[ $((max - rss0)) -lt 32768 ]
tcp_conns() { ss -Htnp state established | grep -c "pid=$DPID,"; }
for _ in $(seq 50); do [ "$(tcp_conns)" = 0 ] && break; sleep 0.02; done
check "slow reader gone mid-transfer: beckond holds no connection ($(tcp_conns))" [ "$(tcp_conns)" = 0 ]

# 5. A boot that fails: held clients are reset; held ones show in the metrics.
for i in 1 2 3; do
	hcl curl -s -o /dev/null -m 60 -w '%{http_code} %{time_total}\n' "http://$HSNET.5/" >"$T/f.$i" 2>&1 &
done
held_is() { [ "$(held_metric)" = "$1" ]; }
check "held connections in the metrics ($(held_metric))" wait_for 15 held_is 3
wait_for 60 bash -c "[ \$(cat $T/f.* 2>/dev/null | grep -c .) -eq 3 ]"
t0=$(now_ms)
hcl curl -s -o /dev/null -m 60 "http://$HSNET.5/"
rc=$?
t1=$(now_ms)
check "failed boot: the client is reset (curl exit $rc, want 56)" [ "$rc" -eq 56 ]
check "failed boot: not before boot_timeout (6 s), nor long after ($((t1 - t0)) ms)" [ $((t1 - t0)) -ge 5900 -a $((t1 - t0)) -lt 30000 ]
check "failed boot: all three earlier clients reset too" [ "$(cat "$T"/f.* | grep -c '^000 ')" -eq 3 ]
check "failed boot: nothing held any more ($(held_metric))" [ "$(held_metric)" = 0 ]

# 6. The upstream refuses or closes at once although the service is ready
# (what QEMU's hostfwd does before the guest listens): connect again, replay.
out=$(hcl curl -s -m 5 -w ' %{http_code}' "http://$HSNET.6/")
check "not listening yet when ready: connected again, 200 ($(echo $out))" [ "${out##* }" = 200 ]
# (What can be replayed is bounded by hold_buffer, 64K here.)
out=$(hcl python3 "$T/cli.py" up "$HSNET.7" 9000 30000)
check "closed at once twice: the bytes replayed to the third connection ($out)" [ "$out" = ok ]
check "the log says it connected again" grep -q 'flaky: upstream closed early, connecting again' "$DLOG"

# 7. kill -9 with clients held: no blackhole (refused at once), a restart serves.
holdnet_kill9 "http://$HSNET.9/" "http://$HSNET.2/"

# 8. The limit (5 held per service), then the hold timeout (1 s; not
# during the limit, whose held clients wait for the test).
write_conf "max_held_per_service = 5;"
rm -f "$T"/count.*
start_daemon "$CONF" || { not_ok "beckond starts with max_held_per_service 5"; finish; }
holdnet_limit "http://$HSNET.8/" 8 reset
check "limit: SIGTERM: clean" stop_daemon
write_conf "max_held_per_service = 5; hold_timeout = \"1s\";"
start_daemon "$CONF" || { not_ok "beckond starts with hold_timeout 1s"; finish; }
out=$(hcl python3 "$T/cli.py" idle "$HSNET.9" 80 0)
check "hold timeout: a client that never sends is reset at 1 s ($out)" \
	python3 -c "import sys; how, t = '$out'.split(); sys.exit(not (how == 'reset' and 0.9 <= float(t) < 1.6))"
check "SIGTERM: beckond exits cleanly" stop_daemon
check "SIGTERM: the proxy's listeners are closed" bash -c "! ss -Htln | grep -q '$HSNET\\.'"

# 9. The per-client boot rate holds for connections as for queries.
holdnet_client_rate "$HSNET"
finish
