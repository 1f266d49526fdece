#!/usr/bin/env bash
# test_guest.sh: boot build/hello.elf under QEMU microvm (KVM when /dev/kvm
# opens, else TCG; GUEST_ACCEL=kvm|tcg forces one) on a tap inside a network
# namespace made here, then check it as a client would: ARP, ping, HTTP,
# keep-alive, concurrency, bad requests, a flood of junk, idle CPU.
# All traffic stays inside the namespace.  Prints "ok - ..." / "not ok - ..."
# per check and exits non-zero if any failed.
. "$(dirname "$0")/lib.sh"
NS=bkt-guest-$$
TAP=bkg$$
GUEST_IP=10.99.0.2
HOST_IP=10.99.0.1
GUEST_MAC=52:54:00:99:00:02
NAME=twww
. "$(dirname "$0")/guestvm.sh"
DUMP_PID=

stop_dump() {
	if [ -n "$DUMP_PID" ]; then
		kill "$DUMP_PID" 2>/dev/null
		wait "$DUMP_PID" 2>/dev/null
		DUMP_PID=
	fi
}

guest_setup "guest tests"
for tool in qemu-system-x86_64 curl python3 ip; do
	if ! command -v "$tool" >/dev/null; then
		not_ok "guest tests: $tool is not installed"
		exit 1
	fi
done

# ---- the network: a namespace holding a tap with the "host" address ----
guestnet_up

size=$(stat -c %s "$IMG")
check "image is under 64 KiB ($size bytes)" test "$size" -lt 65536

# Watch ARP from the start: the guest announces itself and asks for its gateway.
if command -v tcpdump >/dev/null; then
	# Not through inns(): a backgrounded function is a subshell and $! would be its pid.
	ip netns exec "$NS" tcpdump -l -n -i "$TAP" arp </dev/null >"$T/arp" 2>"$T/arp.err" &
	DUMP_PID=$!
	on_exit stop_dump
	# Capturing once it says so (a fixed wait missed the guest's first ARP under load).
	wait_for 20 grep -q "listening on" "$T/arp.err"
fi

# ---- boot ----
if ! guest_boot && [ "$ACCEL" = kvm ] && [ -z "${GUEST_ACCEL:-}" ]; then
	guest_stop
	ACCEL=tcg
	guest_boot
fi
if [ "$(cat "/proc/$QEMU_PID/comm" 2>/dev/null)" != qemu-system-x86 ]; then
	not_ok "QEMU runs as pid $QEMU_PID"
	exit 1
fi
if grep -q '^READY [0-9]*$' "$T/console"; then
	ok "READY on the console under $ACCEL ($(head -c 40 "$T/console" | tr -d '\n'))"
else
	not_ok "READY on the console under $ACCEL: $(tr '\n' ' ' <"$T/console" "$T/qemu.err" | head -c 300)"
	exit 1
fi

# ---- Python clients: ping, concurrency, bad requests ----
cat >"$T/client.py" <<'EOF'
import socket, sys, threading

ip = sys.argv[1]
what = sys.argv[2]

def conn():
    s = socket.create_connection((ip, 80), timeout=10)
    return s

def read_all(s):
    data = b""
    while True:
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            return data, "reset"
        if not b:
            return data, "closed"
        data += b

def concurrent(n):
    socks = [conn() for _ in range(n)]  # all open at once
    for s in socks:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    good = 0
    for s in socks:
        data, _ = read_all(s)
        if data.startswith(b"HTTP/1.1 200 ") and b"hello from" in data:
            good += 1
        s.close()
    print(good)

def bad(req):
    s = conn()
    try:
        s.sendall(req)
    except OSError:
        pass
    data, how = read_all(s)
    s.close()
    print(data.split(b"\r\n", 1)[0].decode(errors="replace"), how)

if what == "concurrent":
    concurrent(int(sys.argv[3]))
elif what == "malformed":
    bad(b"BLAH\r\n\r\n")
elif what == "badversion":
    bad(b"GET / HTTP/9.9\r\n\r\n")
elif what == "badheader":
    bad(b"GET / HTTP/1.1\r\nno colon here\r\n\r\n")
elif what == "binary":
    bad(bytes(range(256)))
elif what == "oversized":
    bad(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
elif what == "post":
    bad(b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
elif what == "ping":
    import os, struct, time
    n = int(sys.argv[3])
    icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    icmp.settimeout(2)
    ident, got = os.getpid() & 0xffff, 0
    for seq in range(n):
        payload = b"beckon-%d" % seq * 8
        h = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + payload
        s = sum(struct.unpack("!%dH" % (len(h) // 2), h + b"\0" * (len(h) % 2)))
        while s >> 16:
            s = (s & 0xffff) + (s >> 16)
        h = h[:2] + struct.pack("!H", ~s & 0xffff) + h[4:]
        icmp.sendto(h, (ip, 0))
        end = time.time() + 2
        while time.time() < end:
            try:
                r = icmp.recv(2048)
            except socket.timeout:
                break
            r = r[(r[0] & 15) * 4:]
            if r[0] == 0 and struct.unpack("!HH", r[4:8]) == (ident, seq) and r[8:] == payload:
                got += 1
                break
    print("%d/%d" % (got, n))
elif what == "pipeline":
    s = conn()
    s.sendall(b"GET /healthz HTTP/1.1\r\n\r\n" * 5 + b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
    data, how = read_all(s)
    print(data.count(b"HTTP/1.1 200 OK"), how)
EOF
py() { inns python3 "$T/client.py" "$GUEST_IP" "$@" 2>&1; }

# ---- basic service ----
URL=http://$GUEST_IP
pong=$(py ping 3)
check "ping gets replies ($pong)" test "$pong" = "3/3"
if [ -n "$DUMP_PID" ]; then
	sleep 0.2
	stop_dump
	check "the guest announces itself with a gratuitous ARP" \
		grep -Eq "(Request who-has $GUEST_IP tell $GUEST_IP|Announcement $GUEST_IP)" "$T/arp"
	check "the guest asks for its gateway and is answered" \
		bash -c 'grep -q "Request who-has $1 tell $2" "$3" && grep -q "Reply $1 is-at" "$3"' _ "$HOST_IP" "$GUEST_IP" "$T/arp"
else
	skip "ARP checks: tcpdump is not installed"
fi

body=$(inns curl -s --max-time 5 -w '\n%{http_code}' "$URL/")
check "GET / is 200 and names the service" \
	bash -c '[[ "$1" == *$'"'\n'"'200 && "$1" == "hello from '"$NAME"' (boot "*" us, request 1)"* ]]' _ "$body"
head=$(inns curl -s --max-time 5 -I "$URL/")
check "HEAD / is 200 with a Content-Length and no body" \
	bash -c '[[ "$1" == "HTTP/1.1 200"* && "$1" == *"Content-Length: "* ]]' _ "$head"
code=$(inns curl -s --max-time 5 -o /dev/null -w '%{http_code}' "$URL/healthz")
check "GET /healthz is 200" test "$code" = 200
code=$(inns curl -s --max-time 5 -o /dev/null -w '%{http_code}' "$URL/nope")
check "GET /nope is 404" test "$code" = 404
count=$(inns curl -s --max-time 5 "$URL/count")
check "GET /count counts the GET / requests (1 so far, got '$count')" test "$count" = 1
body=$(inns curl -s --max-time 5 "$URL/")
check "the request counter in GET / goes up (request 2)" \
	bash -c '[[ "$1" == *"request 2)"* ]]' _ "$body"

# ---- keep-alive: 1000 requests on one connection ----
inns curl -s --max-time 60 -o /dev/null -w '%{http_code} %{num_connects}\n' \
	"$URL/healthz?[1-1000]" >"$T/keepalive" 2>/dev/null
n200=$(grep -c '^200 ' "$T/keepalive")
conns=$(awk '{s += $2} END {print s + 0}' "$T/keepalive")
check "keep-alive: 1000 requests, all 200 ($n200), over one connection ($conns)" \
	test "$n200" = 1000 -a "$conns" = 1

good=$(py concurrent 100)
check "100 concurrent connections all get 200 ($good)" test "$good" = 100
check "a malformed request line gets 400 and a close" test "$(py malformed)" = "HTTP/1.1 400 Bad Request closed"
check "an unknown HTTP version gets 400 and a close" test "$(py badversion)" = "HTTP/1.1 400 Bad Request closed"
check "a header without a colon gets 400 and a close" test "$(py badheader)" = "HTTP/1.1 400 Bad Request closed"
check "binary junk gets 400 and a close" test "$(py binary)" = "HTTP/1.1 400 Bad Request closed"
check "an oversized request head gets 400 and a close" test "$(py oversized)" = "HTTP/1.1 400 Bad Request closed"
check "POST gets 405 and a close" test "$(py post)" = "HTTP/1.1 405 Method Not Allowed closed"
check "six pipelined requests get six answers" test "$(py pipeline)" = "6 closed"
big=$(head -c 6000 /dev/zero | tr '\0' a)
code=$(inns curl -s --max-time 5 -o /dev/null -w '%{http_code}' -H "X-Big: $big" "$URL/")
check "curl with a 6000-byte header gets 400" test "$code" = 400

# ---- a flood of junk frames and segments ----
cat >"$T/flood.py" <<'EOF'
import os, random, socket, struct, sys, time

tap, gmac, gip, hip = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
rnd = random.Random(1234)
gmac = bytes.fromhex(gmac.replace(":", ""))
hmac = bytes.fromhex(open("/sys/class/net/%s/address" % tap).read().strip().replace(":", ""))
gipb, hipb = socket.inet_aton(gip), socket.inet_aton(hip)

def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff

def ip(proto, payload, good=True, frag=0, ihl=5, tlen=None):
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, tlen or 20 + len(payload), rnd.randrange(65536),
                    frag, 64, proto, 0, hipb, gipb)
    c = csum(h) if good else rnd.randrange(65536)
    return h[:10] + struct.pack("!H", c) + h[12:] + payload

def tcp(sport, dport, seq, ack, flags, data=b"", good=True, win=65535):
    h = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, win, 0, 0)
    ph = hipb + gipb + struct.pack("!BBH", 0, 6, len(h) + len(data))
    c = csum(ph + h + data) if good else rnd.randrange(65536)
    return h[:16] + struct.pack("!H", c) + h[18:] + data

def eth(payload, etype=0x0800):
    return gmac + hmac + struct.pack("!H", etype) + payload

# A live connection the flood must not break.
live = socket.create_connection((gip, 80), timeout=10)
lport = live.getsockname()[1]
live.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
first = live.recv(4096)

raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
raw.bind((tap, 0))
sent = 0
t_end = time.time() + 20
for i in range(int(sys.argv[5])):
    k = i % 12
    if k == 0:
        f = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 1500)))
    elif k == 1:
        f = eth(bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 200))))
    elif k == 2:
        f = eth(ip(6, tcp(rnd.randrange(1024, 65535), 80, rnd.getrandbits(32), 0, 0x02), good=False))
    elif k == 3:
        f = eth(ip(6, tcp(rnd.randrange(1024, 65535), 80, rnd.getrandbits(32), 0, 0x02, good=False)))
    elif k == 4:  # SYN to a closed port: answered with RST
        f = eth(ip(6, tcp(rnd.randrange(1024, 65535), rnd.randrange(1, 80), rnd.getrandbits(32), 0, 0x02)))
    elif k == 5:  # stray ACKs and junk flags to the open port
        f = eth(ip(6, tcp(rnd.randrange(1024, 65535), 80, rnd.getrandbits(32), rnd.getrandbits(32), rnd.randrange(256))))
    elif k == 6:  # out-of-window data, RST and SYN on the live connection
        f = eth(ip(6, tcp(lport, 80, rnd.getrandbits(32), rnd.getrandbits(32), rnd.choice([0x18, 0x04, 0x02, 0x11, 0x14]), b"x" * rnd.randrange(100))))
    elif k == 7:  # fragments
        f = eth(ip(6, tcp(rnd.randrange(1024, 65535), 80, 1, 0, 0x02), frag=rnd.choice([0x2000, 0x0001, 0x2010])))
    elif k == 8:  # lying lengths and header sizes
        f = eth(ip(rnd.choice([1, 6, 17]), bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 64))),
                   ihl=rnd.randrange(0, 16), tlen=rnd.randrange(65536)))
    elif k == 9:  # ARP junk and ARP requests from bogus senders
        f = eth(struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, rnd.choice([1, 2, 3]), os.urandom(6), os.urandom(4), b"\0" * 6,
                            rnd.choice([gipb, os.urandom(4)])), 0x0806)
    elif k == 10:  # TCP with a data offset past the end
        t = bytearray(tcp(rnd.randrange(1024, 65535), 80, 5, 0, 0x02))
        t[12] = 0xf0
        f = eth(ip(6, bytes(t)))
    else:  # ICMP junk and oversized echo
        f = eth(ip(1, bytes([8, 0]) + os.urandom(rnd.randrange(2, 1400))))
    try:
        raw.send(f[:1514] if len(f) >= 14 else f + b"\0" * (14 - len(f)))
        sent += 1
    except OSError:
        pass
    if time.time() > t_end:
        break
time.sleep(0.5)
live.sendall(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
data = b""
live.settimeout(10)
try:
    while True:
        b = live.recv(4096)
        if not b:
            break
        data += b
except OSError as e:
    print("live connection error", e)
print(sent, first.startswith(b"HTTP/1.1 200"), data.startswith(b"HTTP/1.1 200"))
EOF
out=$(inns python3 "$T/flood.py" "$TAP" "$GUEST_MAC" "$GUEST_IP" "$HOST_IP" 3000 2>&1 | tail -1)
check "a flood of 3000 junk frames leaves an open connection working ($out)" \
	bash -c '[[ "$1" == *" True True" ]]' _ "$out"
check "the guest is still alive after the flood" kill -0 "$QEMU_PID"
code=$(inns curl -s --max-time 5 -o /dev/null -w '%{http_code}' "$URL/")
check "after the flood a new connection gets 200" test "$code" = 200
check "after the flood ping gets replies" test "$(py ping 2)" = "2/2"
check "no fault on the console" bash -c '! grep -q FAULT "$1"' _ "$T/console"

# ---- idle CPU ----
cputime() { awk '{print $14 + $15}' "/proc/$QEMU_PID/stat"; }
sleep 2.5 # let TIME_WAIT and retransmit timers drain
t0=$(cputime)
sleep 5
t1=$(cputime)
hz=$(getconf CLK_TCK)
pct=$(awk -v d=$((t1 - t0)) -v hz="$hz" 'BEGIN {printf "%.2f", d * 100 / (5 * hz)}')
check "idle: QEMU used $pct % of a CPU over 5 s (< 1 %)" awk -v p="$pct" 'BEGIN {exit !(p < 1)}'

# ---- the other transport and interrupt layout ----
# Without ACPI microvm has one IOAPIC and virtio IRQs 5 + n; force-legacy=false
# gives the modern (version 2) virtio-mmio.
guest_stop
inns ip neigh flush dev "$TAP"
if guest_boot acpi=off -global virtio-mmio.force-legacy=false; then
	code=$(inns curl -s --max-time 5 -o /dev/null -w '%{http_code}' "$URL/")
	check "microvm,acpi=off with modern virtio-mmio: READY and GET / is 200" test "$code" = 200
else
	not_ok "microvm,acpi=off with modern virtio-mmio boots: $(tr '\n' ' ' <"$T/console" | head -c 200)"
fi

finish
