#!/usr/bin/env bash
# Routes by URL path, through the real daemon (user mode, hold "proxy"): one
# front address serves three services by the longest prefix of a request's
# path: "/" a real hello guest under QEMU, "/blog/" and "/api/" exec
# processes (a small HTTP/1.1 server with keep-alive). Each is stopped until
# a request for its prefix wakes it; DNS for the front wakes nothing. On
# separate connections and on one keep-alive connection (curl reuses it for
# several URLs): each request reaches its service, bodies with a length and
# chunked ones pass both ways. A path no route takes is 404, a 64 KiB
# request line 431, garbage 400, half a head 408 at hold_timeout; fronts
# survive a reload; SIGTERM leaves nothing.
. "$(dirname "$0")/lib.sh"
for tool in curl python3 dig; do
	command -v "$tool" >/dev/null || { skip "routes: $tool is not installed"; exit 0; }
done
IMG=$ROOT/build/hello.elf
[ -f "$IMG" ] || { skip "routes: build/hello.elf is not built (run make)"; exit 0; }

DNS_PORT=$(free_port)
LO=127.$((RANDOM % 200 + 20)).$((RANDOM % 250 + 1))
P=r$$ # service names of this run: its QEMU is found by its marker alone
GUEST_MARK="guest=beckon:$P-"
on_exit "for p in \$(pgrep -f '$GUEST_MARK'); do kill -9 \$p; done"
CONF=$T/beckon.conf
F=http://$LO.1 # the front

# srv.py NAME PORT: HTTP/1.1 with keep-alive on 127.0.0.1:PORT. GET answers
# "name=NAME path=PATH"; POST reads a body (Content-Length or chunked) and
# answers "name=NAME path=PATH got=BYTES SHA256"; a path with "chunked" is
# answered chunked.
cat >"$T/srv.py" <<'EOF'
import hashlib, http.server, socketserver, sys
name, port = sys.argv[1], int(sys.argv[2])
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def send(self, body):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        if "chunked" in self.path:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(body), 7):
                part = body[i:i + 7]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
    def do_GET(self):
        if self.headers.get("Upgrade") == "echo":
            return self.echo()
        self.send(("name=%s path=%s\n" % (name, self.path)).encode())
    def echo(self):  # 101, then each byte back until EOF
        self.send_response(101)
        self.send_header("Upgrade", "echo")
        self.send_header("Connection", "Upgrade")
        self.end_headers()
        self.wfile.flush()
        while True:
            b = self.rfile.read1(65536)
            if not b:
                break
            self.wfile.write(b)
        self.close_connection = True
    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length", "0")))
        data = b""
        while True:
            n = int(self.rfile.readline().split(b";")[0], 16)
            data += self.rfile.read(n)
            self.rfile.readline()
            if n == 0:
                return data
    def do_POST(self):
        d = self.body()
        self.send(("name=%s path=%s got=%d %s\n" % (name, self.path, len(d),
                   hashlib.sha256(d).hexdigest())).encode())
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
S(("127.0.0.1", port), H).serve_forever()
EOF
# cli.py HOST PORT half|garbage|nothing: what comes back, and when.
cat >"$T/cli.py" <<'EOF'
import socket, sys, time
host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.create_connection((host, port), timeout=30)
t0 = time.time()
s.sendall({"half": b"GET / HTTP/1.1\r\nHost: site\r\nAccept: */*\r\n",
           "garbage": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
           "nothing": b"", "upgrade": b"",
           # three requests in one write, for two services, the last one closing
           "pipeline": b"GET /blog/p1 HTTP/1.1\r\nHost: s\r\n\r\n"
                       b"GET /api/p2 HTTP/1.1\r\nHost: s\r\n\r\n"
                       b"GET /blog/p3 HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n"}[mode])
if mode == "upgrade":  # bytes before and after the 101 come back
    s.sendall(b"GET /api/ws HTTP/1.1\r\nHost: s\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nping1 ")
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    data = data.split(b"\r\n\r\n", 1)[1]
    s.sendall(b"ping2")
    while len(data) < 11:
        data += s.recv(65536)
    print(data.decode())
    sys.exit(0)
data, how = b"", "eof"
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
except ConnectionResetError:
    how = "reset"
except socket.timeout:
    how = "timeout"
if mode == "pipeline":  # the answers' bodies, in order
    print("%s %s" % (how, " ".join(l.decode() for l in data.split(b"\n") if l.startswith(b"name="))))
else:
    print("%s %.2f %s" % (how, time.time() - t0, data.split(b"\r\n", 1)[0].decode(errors="replace")))
EOF

exec_svc() { # exec_svc NAME N: srv.py NAME on its own loopback port; runs counted
	cat <<CONF
  { name = "$P-$1"; dns = ( "$1.svc.test" ); address = "$LO.$2"; ports = ( 80 );
    backend = "exec"; ready = "tcp"; boot_timeout = "30s";
    exec = { command = "sh -c 'echo run >>$T/count.$1; exec python3 $T/srv.py $P-$1 {port}'"; }; },
CONF
}
write_conf() { # write_conf HOLD_TIMEOUT
	base_conf "$CONF"
	sed -i "s|^network = .*|network = { mode = \"user\"; hold = \"proxy\"; hold_timeout = \"$1\"; };|" "$CONF"
	cat <<CONF | add_services "$CONF"
  { name = "$P-site"; dns = ( "site.svc.test" ); address = "$LO.1"; ports = ( 80 );
    routes = ( { prefix = "/blog/"; service = "$P-blog"; },
               { prefix = "/api/"; service = "$P-api"; },
               { prefix = "/never/"; service = "$P-never"; },
               { prefix = "/stuck/"; service = "$P-stuck"; },
               { prefix = "/"; service = "$P-www"; } ); },
  { name = "$P-apionly"; dns = ( "apionly.svc.test" ); address = "$LO.5"; ports = ( 80 );
    routes = ( { prefix = "/api/"; service = "$P-api"; } ); },
  { name = "$P-www"; dns = ( "www.svc.test" ); address = "$LO.2"; ports = ( 80 );
    image = "$IMG"; cmdline = "ip={address}/{prefix} gw={gateway} name={name} port={port}";
    ready = "console:^READY"; boot_timeout = "20s"; },
$(exec_svc blog 3)
$(exec_svc api 4)
  { name = "$P-never"; dns = ( "never.svc.test" ); address = "$LO.6"; ports = ( 80 );
    backend = "exec"; ready = "tcp"; boot_timeout = "1s"; exec = { command = "sleep 1000"; }; },
  { name = "$P-stuck"; dns = ( "stuck.svc.test" ); address = "$LO.7"; ports = ( 80 );
    backend = "exec"; ready = "tcp"; boot_timeout = "20s"; exec = { command = "sleep 1000"; }; },
CONF
}

# each KEY: KEY of www, blog and api, from one "beckonctl --json list".
each() {
	ctl --json list | python3 -c '
import json, sys
s = {x["name"]: x for x in json.load(sys.stdin)["services"]}
print(" ".join(str(s[sys.argv[1] + "-" + n][sys.argv[2]]) for n in ("www", "blog", "api")))' "$P" "$1"
}
states() { each state; }
runs() { cat "$T/count.$1" 2>/dev/null | wc -l; }
stopped_all() { [ "$(states)" = "stopped stopped stopped" ]; }
# Functions, not "bash -c": pgrep -f would find that shell's own command line.
qemu_runs() { pgrep -f "$GUEST_MARK$1," >/dev/null; }
no_qemu() { ! pgrep -f "$GUEST_MARK" >/dev/null; }
# curl_ka ARGS...: curl, each answer's one line joined with "|CODE CONNECTS".
curl_ka() { curl -s -m 60 -w '|%{http_code} %{num_connects}\n' "$@" | paste -d '' - -; }

write_conf 30s
start_daemon "$CONF" || { not_ok "beckond starts with a front"; finish; }
ok "beckond starts with a front and three services behind it"
check "all three are stopped at first" stopped_all
front_unlisted() {
	local l
	l=$(ctl list)
	grep -q "^$P-blog " <<<"$l" && ! grep -q "^$P-site " <<<"$l"
}
check "beckonctl list shows the services, not the front" front_unlisted

# 1. DNS for the front: its address, and no boot (the path is not known yet).
ans=$(dq +short site.svc.test A)
check "DNS: the front's name answers its address ($ans)" [ "$ans" = "$LO.1" ]
sleep 0.3 # a boot the query might start would show by now (asserted below)
check "DNS: the query woke nothing" stopped_all

# 2. Separate connections: each prefix wakes its own service, and only it.
out=$(curl -s -m 30 "$F/blog/post?id=1")
check "/blog/post: the blog answers ($out)" [ "$out" = "name=$P-blog path=/blog/post?id=1" ]
st=$(states) boots=$(each boots)
check "/blog/post: blog booted once, www and api still stopped ($st; $boots boots)" \
	[ "$st" = "stopped ready stopped" -a "$boots" = "0 1 0" -a "$(runs blog)" = 1 ]
out=$(curl -s -m 30 "$F/api/v1/items")
check "/api/v1/items: the api answers ($out)" [ "$out" = "name=$P-api path=/api/v1/items" ]
st=$(states) boots=$(each boots)
check "/api/v1/items: api booted once, www still stopped ($st; $boots boots)" \
	[ "$st" = "stopped ready ready" -a "$boots" = "0 1 1" ]
out=$(curl -s -m 30 "$F/")
check "/: the hello guest answers ($out)" bash -c "[[ '$out' == 'hello from $P-www '* ]]"
st=$(states) boots=$(each boots)
check "/: the QEMU guest booted once ($st; $boots boots)" \
	[ "$st" = "ready ready ready" -a "$boots" = "1 1 1" ]
check "/: its QEMU runs" qemu_runs www
out=$(curl -s -m 30 "$F/blog")
check "/blog (no slash) is not under \"/blog/\": the guest answers its 404 ($out)" [ "$out" = "not found" ]
out=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "http://$LO.5/other")
check "a path no route takes: 404 ($out)" [ "$out" = 404 ]
out=$(curl -s -m 10 "http://$LO.5/api/x")
check "... and the other front routes its prefix ($out)" [ "$out" = "name=$P-api path=/api/x" ]

t0=$(now_ms)
out=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$F/never/x")
t1=$(now_ms)
check "a service that does not come up: 503 at its boot_timeout, not a reset ($out, $((t1 - t0)) ms)" \
	[ "$out" = 503 -a $((t1 - t0)) -ge 900 -a $((t1 - t0)) -lt 5000 ]

# 3. One keep-alive connection, all three asleep again: each request wakes
# and reaches its service, and curl connects once.
for s in www blog api; do ctl stop "$P-$s" >/dev/null; done
check "stopped again" wait_for 20 stopped_all
curl_ka "$F/blog/1" "$F/api/2" "$F/" "$F/blog/3" "$F/api/chunked" >"$T/ka.out"
sed 's/^/# /' "$T/ka.out"
conns=$(sed -n 's/.*|200 \([0-9]*\)$/\1/p' "$T/ka.out" | tr '\n' ' ')
check "keep-alive: five answers 200 on one connection (connects: $conns)" [ "$conns" = "1 0 0 0 0 " ]
check "keep-alive: each request reached its service" bash -c "
	grep -qx 'name=$P-blog path=/blog/1|200 1' '$T/ka.out' &&
	grep -qx 'name=$P-api path=/api/2|200 0' '$T/ka.out' &&
	grep -q '^hello from $P-www .*|200 0$' '$T/ka.out' &&
	grep -qx 'name=$P-blog path=/blog/3|200 0' '$T/ka.out' &&
	grep -qx 'name=$P-api path=/api/chunked|200 0' '$T/ka.out'"
st=$(states) boots=$(each boots)
check "keep-alive: each service was woken again ($st; $boots boots)" \
	[ "$st" = "ready ready ready" -a "$boots" = "2 2 2" ]

# 4. Bodies on one connection: a length, then chunked, to two services.
head -c 300000 /dev/urandom >"$T/body"
sum=$(sha256sum "$T/body" | cut -d' ' -f1)
out=$(curl_ka --data-binary @"$T/body" "$F/blog/up" "$F/api/up")
check "POST with Content-Length to two services on one connection" [ "$out" = "name=$P-blog path=/blog/up got=300000 $sum|200 1
name=$P-api path=/api/up got=300000 $sum|200 0" ]
out=$(curl_ka -H 'Transfer-Encoding: chunked' --data-binary @"$T/body" "$F/api/c" "$F/blog/c")
check "POST chunked to two services on one connection" [ "$out" = "name=$P-api path=/api/c got=300000 $sum|200 1
name=$P-blog path=/blog/c got=300000 $sum|200 0" ]

out=$(python3 "$T/cli.py" "$LO.1" 80 pipeline)
check "pipelined requests for two services: answered in order, then closed ($out)" \
	[ "$out" = "eof name=$P-blog path=/blog/p1 name=$P-api path=/api/p2 name=$P-blog path=/blog/p3" ]

out=$(timeout 30 python3 "$T/cli.py" "$LO.1" 80 upgrade 2>&1)
check "Upgrade: after the 101 the connection is a tunnel both ways ($out)" [ "$out" = "ping1 ping2" ]

# 5. Heads that are not to be routed: answered at once, not hung.
long=$(head -c 65536 /dev/zero | tr '\0' a)
t0=$(now_ms)
code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$F/$long")
t1=$(now_ms)
check "a 64 KiB request line: 431 ($code, $((t1 - t0)) ms)" [ "$code" = 431 -a $((t1 - t0)) -lt 5000 ]
out=$(python3 "$T/cli.py" "$LO.1" 80 garbage)
check "bytes that are no HTTP: 400 and closed ($out)" bash -c "[[ '$out' == 'eof '*' HTTP/1.1 400 Bad Request' ]]"
check "none of these woke a service (runs: $(runs blog) $(runs api))" \
	[ "$(runs blog) $(runs api)" = "2 2" ]

# 6. A reload (hold_timeout 1s): the fronts stay, and half a head meets the deadline.
write_conf 1s
kill -HUP "$DPID"
check "reload: done" wait_for 20 grep -q 'reloaded' "$DLOG"
out=$(curl -s -m 10 "$F/blog/again")
check "reload: the front still routes ($out)" [ "$out" = "name=$P-blog path=/blog/again" ]
out=$(python3 "$T/cli.py" "$LO.1" 80 half)
check "half a head: 408 at hold_timeout 1 s ($out)" python3 -c "
import sys; how, t, *line = '$out'.split(' ', 2); line = ' '.join(line)
sys.exit(not (how == 'eof' and 0.9 <= float(t) < 3 and line == 'HTTP/1.1 408 Request Timeout'))"
out=$(python3 "$T/cli.py" "$LO.1" 80 nothing)
check "a client that sends nothing: 408 at hold_timeout too ($out)" bash -c "[[ '$out' == 'eof '*' HTTP/1.1 408 Request Timeout' ]]"

t0=$(now_ms)
out=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$F/stuck/x")
t1=$(now_ms)
check "held past hold_timeout (1 s, the boot takes longer): 504 ($out, $((t1 - t0)) ms)" \
	[ "$out" = 504 -a $((t1 - t0)) -ge 900 -a $((t1 - t0)) -lt 4000 ]

# 7. The L4 proxy is as it was for the services' own addresses.
out=$(curl -s -m 10 "http://$LO.3/anything")
check "a service's own address is still relayed at L4 ($out)" [ "$out" = "name=$P-blog path=/anything" ]

check "SIGTERM: beckond exits cleanly (no sanitizer report)" stop_daemon
check "SIGTERM: no QEMU of ours left" wait_for 10 no_qemu
check "SIGTERM: no listener left on the front" bash -c "! ss -Htln | grep -q '$LO\\.1:80 '"

# 8. Bridge mode: the front's address is no host's; its connections are
# redirected to the proxy (nat) whether or not the guests behind it are
# ready. Guests are exec services in namespaces behind a test bridge, the
# client a namespace routed through the host (holdnet.sh).
if [ "$(id -u)" -ne 0 ] || ! command -v iptables >/dev/null || ! command -v busybox >/dev/null; then
	skip "routes in bridge mode: needs root, iptables and busybox"
	finish
fi
. "$(dirname "$0")/holdnet.sh"
holdnet_up || { not_ok "bridge: test network set up"; finish; }
for n in 2 3; do holdnet_guest $n || { not_ok "bridge: guest namespace $n"; finish; }; done
CHAIN=BECKON-PROXY-$HBR
on_exit "while iptables -w -D FORWARD -m conntrack --ctstate ESTABLISHED -m comment --comment 'beckon-ct $HBR'; do :; done"
on_exit "while iptables -w -t nat -D PREROUTING -j $CHAIN; do :; done; while iptables -w -t nat -D OUTPUT -j $CHAIN; do :; done; iptables -w -t nat -F $CHAIN; iptables -w -t nat -X $CHAIN"
for n in 2 3; do
	DOC=$(make_docroot "g$n")
	mkdir -p "$DOC/docs" && echo "docs from g$n" >"$DOC/docs/index.html"
	holdnet_svc $n "$P-g$n" 0.3
done >"$T/guests.conf"
base_conf "$CONF"
sed -i "s|^network = .*|network = { mode = \"bridge\"; bridge = \"$HBR\"; subnet = \"$HNET.0/24\"; hold = \"proxy\"; };|" "$CONF"
{
	cat <<CONF
  { name = "$P-bsite"; dns = ( "bsite.svc.test" ); address = "$HNET.9"; ports = ( 80 );
    routes = ( { prefix = "/docs/"; service = "$P-g2"; }, { prefix = "/"; service = "$P-g3"; } ); },
CONF
	cat "$T/guests.conf"
} | add_services "$CONF"
: >"$T/bridge.log"
start_daemon "$CONF" "$T/bridge.log" || { not_ok "bridge: beckond starts with a front"; finish; }
front_rule() { iptables -w -t nat -S "$CHAIN" 2>/dev/null | grep -q -- "-d $HNET.9/32 .*REDIRECT"; }
check "bridge: a redirect rule for the front" front_rule
out=$(hcl curl -s -m 10 "http://$HNET.9/docs/")
check "bridge: /docs/ reaches g2, woken for it ($out; runs $(runs 2) $(runs 3))" \
	[ "$out" = "docs from g2" -a "$(runs 2) $(runs 3)" = "1 0" ]
out=$(hcl curl -s -m 10 "http://$HNET.9/")
check "bridge: / reaches g3, woken for it ($out; runs $(runs 2) $(runs 3))" \
	[ "$out" = "hello from g3" -a "$(runs 2) $(runs 3)" = "1 1" ]
check "bridge: with both guests ready, the front's rule stays" front_rule
out=$(hcl curl -s -m 10 "http://$HNET.9/docs/" "http://$HNET.9/" | tr '\n' ' ')
check "bridge: both again, no more boots ($out)" \
	[ "$out" = "docs from g2 hello from g3 " -a "$(runs 2) $(runs 3)" = "1 1" ]
check "bridge: SIGTERM: clean" stop_daemon
check "bridge: SIGTERM: the chain is gone" bash -c "! iptables -w -t nat -S $CHAIN >/dev/null 2>&1"
finish
