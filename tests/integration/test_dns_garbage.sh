#!/usr/bin/env bash
# Bad input never crashes or stalls the DNS server: each class of garbage
# goes in over UDP or TCP (python3 sends the raw bytes), then dig checks
# that the server still answers, over UDP and TCP. The ASan build must
# stay quiet throughout.
. "$(dirname "$0")/lib.sh"

DNS_PORT=$(free_port)
DOC=$(make_docroot garbage)
NET=127.$((20 + RANDOM % 200)).$((1 + RANDOM % 250))
CONF=$T/beckon.conf
base_conf "$CONF"
cat >>"$CONF" <<CONF
services = (
  { name = "www"; dns = ( "www.svc.test" ); address = "$NET.2"; ports = ( 8080 );
    backend = "exec"; ready = "tcp";
    exec = { command = "busybox httpd -f -p {address}:8080 -h $DOC"; }; }
);
CONF

cat >"$T/garbage.py" <<'EOF'
import os, random, socket, struct, sys, time

PORT = int(sys.argv[2])
ADDR = ("127.0.0.1", PORT)
rnd = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)

def hdr(qid=0x5151, flags=0x0100, qd=1, an=0, ns=0, ar=0):
    return struct.pack(">HHHHHH", qid, flags, qd, an, ns, ar)

def q(name=b"\x03www\x03svc\x04test\x00", **kw):
    return hdr(**kw) + name + b"\x00\x01\x00\x01"

def udp_all(pkts):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for p in pkts:
        s.sendto(p, ADDR)
    s.close()

def tcp_send(data, linger=0.2, hold=False):
    s = socket.create_connection(ADDR, timeout=5)
    s.sendall(data)
    time.sleep(linger)
    if hold:
        return s
    s.close()

def random_udp():
    udp_all(os.urandom(rnd.randrange(0, 700)) for _ in range(2000))

def truncated():
    base = q()
    udp_all(base[:n] for n in range(0, len(base)))

def ptr_loop():
    udp_all([hdr() + b"\xc0\x0c\x00\x01\x00\x01",             # points at itself
             hdr() + b"\x03www\xc0\x0c\x00\x01\x00\x01",      # back to the start
             hdr() + b"\xc0\x0e\xc0\x0c\x00\x01\x00\x01",     # two pointers in a ring
             hdr() + b"\xc0\xff\x00\x01\x00\x01"])            # past the end

def long_label():
    udp_all([hdr() + b"\x40" + b"a" * 64 + b"\x00\x00\x01\x00\x01",
             hdr() + (b"\x3f" + b"a" * 63) * 5 + b"\x00\x00\x01\x00\x01",   # name > 255
             hdr() + b"\x80abc\x00\x00\x01\x00\x01"])                      # bad label type

def qr_set():
    udp_all([q(flags=0x8100), q(flags=0x8500, an=1)])

def huge_counts():
    udp_all([q(qd=0xFFFF), q(an=0xFFFF, ns=0xFFFF, ar=0xFFFF), q(qd=0), q(ar=2),
             q() + b"\x00\x00\x29\x10\x00\x00\x00\x00\x00\xff\xff"])  # OPT rdlen past the end

def opcodes():
    udp_all([q(flags=op << 11) for op in range(16)])

def tcp_zero():
    tcp_send(b"\x00\x00" * 50)
    tcp_send(b"\x00\x05hello")

def tcp_short():
    # A length prefix larger than what follows, then silence (held open).
    s = tcp_send(b"\x01\x00" + q()[:20], hold=True)
    time.sleep(1)
    s.close()

def tcp_random():
    for _ in range(50):
        data = os.urandom(rnd.randrange(1, 600))
        try:
            tcp_send(struct.pack(">H", len(data)) + data, linger=0)
        except OSError:
            pass
    for _ in range(50):
        try:
            tcp_send(os.urandom(rnd.randrange(1, 600)), linger=0)
        except OSError:
            pass

def tcp_many():
    # More connections than the server keeps; all idle.
    conns = []
    for _ in range(300):
        try:
            conns.append(socket.create_connection(ADDR, timeout=5))
        except OSError:
            break
    time.sleep(0.5)
    for c in conns:
        c.close()

def tcp_reset():
    # Queries sent, then the connection reset before the answers are read.
    for _ in range(20):
        s = socket.create_connection(ADDR, timeout=5)
        p = q()
        s.sendall((struct.pack(">H", len(p)) + p) * 20)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()

globals()[sys.argv[1]]()
EOF

start_daemon "$CONF" || { not_ok "beckond starts"; finish; }
ok "beckond starts"

alive() {
	kill -0 "$DPID" 2>/dev/null &&
		[ "$(dq +short www.svc.test A)" = "$NET.2" ] &&
		[ "$(dq +tcp +short www.svc.test A)" = "$NET.2" ]
}

for class in random_udp truncated ptr_loop long_label qr_set huge_counts opcodes \
	tcp_zero tcp_short tcp_random tcp_many tcp_reset; do
	python3 "$T/garbage.py" "$class" "$DNS_PORT" "$RANDOM" || echo "# $class: the sender failed"
	check "after $class: still answering over UDP and TCP" alive
done

# The server must not stall while a TCP client sits on a half-sent frame.
python3 - "$DNS_PORT" <<'EOF' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"\xff\xff" + b"\x00" * 100)
time.sleep(4)
EOF
hold_pid=$!
on_exit "kill $hold_pid"
sleep 0.3
check "a half-sent TCP frame does not stall other clients" alive
wait "$hold_pid"

check "no sanitizer report so far" sanitizer_clean "$DLOG"
check "beckond exits cleanly on SIGTERM" stop_daemon
finish
