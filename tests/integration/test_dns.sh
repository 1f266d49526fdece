#!/usr/bin/env bash
# The DNS behaviour of SPEC.md, bullet by bullet, against a real beckond:
# dig and kdig over UDP and TCP, python3 for what dig cannot send. A second
# beckond (zone other.test) is the forward target and serves the large
# answer for the TC check.
. "$(dirname "$0")/lib.sh"

DNS_PORT=$(free_port)
B_PORT=$(free_port)
DEAD_PORT=$(free_port)
NEW_PORT=$(free_port)
DOC=$(make_docroot dns)
NET=127.$((20 + RANDOM % 200)).$((1 + RANDOM % 250))
CONF=$T/beckon.conf
BCONF=$T/other.conf

# A raw DNS client for what dig cannot do.
cat >"$T/dns.py" <<'EOF'
import socket, struct, sys, time

def name(n):
    return b"".join(bytes([len(l)]) + l.encode() for l in n.split(".") if l) + b"\0"

def query(qname, qtype=1, qid=0x4242, flags=0x0100):
    return struct.pack(">HHHHHH", qid, flags, 1, 0, 0, 0) + name(qname) + struct.pack(">HH", qtype, 1)

def udp(port, pkt, timeout=2.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    s.sendto(pkt, ("127.0.0.1", port))
    try:
        return s.recv(65535)
    except socket.timeout:
        return None

def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError
        b += c
    return b

def cmd_formerr(port):
    # QDCOUNT 1, the question cut off after two bytes.
    r = udp(port, struct.pack(">HHHHHH", 0x1111, 0x0100, 1, 0, 0, 0) + b"\x03ww")
    return r is not None and r[:2] == b"\x11\x11" and r[2] & 0x80 and r[3] & 0x0F == 1

def cmd_qdcount(port):
    p = bytearray(query("www.svc.test", qid=0x2222))
    p[5] = 2
    r = udp(port, bytes(p))
    return r is not None and r[:2] == b"\x22\x22" and r[3] & 0x0F == 1

def cmd_response(port):
    # A response (QR=1) gets nothing back.
    return udp(port, query("www.svc.test", flags=0x8100), timeout=1.0) is None

def cmd_pipeline(port):
    names = [("www.svc.test", 1, 0), ("svc.test", 6, 0), ("nope.svc.test", 1, 3), ("svc.test", 2, 0)]
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    out = b""
    for i, (n, t, _) in enumerate(names):
        q = query(n, t, qid=0x100 + i)
        out += struct.pack(">H", len(q)) + q
    s.sendall(out)  # all at once: pipelined
    got = {}
    for _ in names:
        ln = struct.unpack(">H", recv_exact(s, 2))[0]
        r = recv_exact(s, ln)
        got[struct.unpack(">H", r[:2])[0]] = r[3] & 0x0F
    return all(got.get(0x100 + i) == rc for i, (_, _, rc) in enumerate(names))

def cmd_tcp_pending(port):
    # A query waiting for a boot (hold "none") does not hold up the next one.
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    a, b = query("slow.svc.test", 1, qid=1), query("svc.test", 6, qid=2)
    t0 = time.time()
    s.sendall(struct.pack(">H", len(a)) + a + struct.pack(">H", len(b)) + b)
    got = []
    for _ in range(2):
        r = recv_exact(s, struct.unpack(">H", recv_exact(s, 2))[0])
        got.append((struct.unpack(">H", r[:2])[0], r[3] & 0x0F, struct.unpack(">H", r[6:8])[0], round(time.time() - t0, 3)))
    print("# answers (id, rcode, ancount, seconds): %s" % got)
    return (got[0][0] == 2 and got[0][3] < 0.5 and got[1][:3] == (1, 0, 1) and got[1][3] >= 0.8)

def cmd_tcp_cancel(port):
    # A connection closed while its answer waits for a boot.
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    a = query("slow2.svc.test", 1, qid=3)
    s.sendall(struct.pack(">H", len(a)) + a)
    time.sleep(0.2)
    s.close()
    return True

def cmd_idle(port):
    # An idle connection is closed by the server after about 10 s.
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    t0 = time.time()
    try:
        data = s.recv(1)
    except ConnectionResetError:
        data = b""
    dt = time.time() - t0
    print("# closed after %.1f s" % dt)
    return data == b"" and 8 <= dt <= 14

cmd = sys.argv[1]
sys.exit(0 if globals()["cmd_" + cmd](int(sys.argv[2])) else 1)
EOF

# The second daemon: zone other.test, eight long NS names (an answer too
# large for UDP), no forwarder.
long_ns() {
	local i l
	for i in 2 3 4 5 6 7 8; do
		l=$(printf "%060d" 0 | tr 0 "$(echo abcdefgh | cut -c$i)")
		printf ', { name = "ns%s.%s.%s.%s.other.test"; address = "127.0.0.%s"; }' \
			"$i" "$l" "$l" "$l" "$i"
	done
}
cat >"$BCONF" <<CONF
state_dir = "$T/bstate";
control_socket = "$T/bctl.sock";
metrics_listen = "";
dns = {
  listen = ( "127.0.0.1:$B_PORT" );
  zone = "other.test";
  ns = ( { name = "ns1.other.test"; address = "127.0.0.1"; } $(long_ns) );
  ttl = 60;
};
network = { mode = "user"; hold = "none"; };
services = ();
CONF

# The daemon under test: svc.test on 127.0.0.1 and ::1, forwarding to the other.
# Slow services: serving one second after they start.
cat >"$T/slow.sh" <<EOF
#!/bin/sh
sleep 1
exec busybox httpd -f -p "\$1:8080" -h "\$2"
EOF
chmod +x "$T/slow.sh"
slow_svc() { # slow_svc NAME ADDRESS
	cat <<CONF
  , { name = "$1"; dns = ( "$1.svc.test" ); address = "$2"; ports = ( 8080 );
    backend = "exec"; ready = "tcp"; exec = { command = "$T/slow.sh {address} $DOC"; }; }
CONF
}
write_conf() { # write_conf FORWARD_PORT LISTEN EXTRA_DNS_NAME
	base_conf "$CONF"
	sed -i "s|^  listen = .*|  listen = ( $2 );|; s|^  ttl = 30;|  ttl = 30;\n  forward = \"127.0.0.1:$1\";|" "$CONF"
	cat >>"$CONF" <<CONF
services = (
  { name = "www"; dns = ( "www.svc.test" $3 ); address = "$NET.2"; ports = ( 8080 );
    backend = "exec"; ready = "tcp";
    exec = { command = "busybox httpd -f -p {address}:8080 -h $DOC"; }; }
  $(slow_svc slow "$NET.3") $(slow_svc slow2 "$NET.4") $(slow_svc slow3 "$NET.5")
);
CONF
}
write_conf "$B_PORT" "\"127.0.0.1:$DNS_PORT\", \"[::1]:$DNS_PORT\"" ""

start_daemon "$BCONF" "$T/other.log" || { not_ok "the forward target starts"; finish; }
BPID=$DPID BLOG=$DLOG
t_start=$(date +%s)
start_daemon "$CONF" || { not_ok "beckond starts"; finish; }
ok "beckond starts, listening on 127.0.0.1 and ::1"

bq() { dig @127.0.0.1 -p "$B_PORT" +time=5 +tries=1 "$@"; }
has() { grep -qE -- "$1" <<<"$2"; }

# Service names: A with the address and ttl, AA set.
out=$(dq www.svc.test A +norec)
check "A for a service: address and ttl" has "^www\.svc\.test\.\s+30\s+IN\s+A\s+$NET\.2$" "$out"
check "answers in the zone carry AA" has "flags: qr aa;" "$out"
check "over TCP too" [ "$(dq +tcp +short www.svc.test A)" = "$NET.2" ]

# The apex: SOA (serial = load time) and NS with glue.
out=$(dq +short svc.test SOA)
serial=$(awk '{print $3}' <<<"$out")
check "apex SOA: ns1.svc.test hostmaster.svc.test, minimum = ttl" \
	has "^ns1\.svc\.test\. hostmaster\.svc\.test\. [0-9]+ [0-9]+ [0-9]+ [0-9]+ 30$" "$out"
check "apex SOA serial is the config load time ($serial vs $t_start)" \
	[ "${serial:-0}" -ge $((t_start - 5)) -a "${serial:-0}" -le $(($(date +%s) + 1)) ]
out=$(dq svc.test NS +norec)
check "apex NS with glue in the additional section" \
	bash -c 'grep -qE "^svc\.test\.\s+30\s+IN\s+NS\s+ns1\.svc\.test\.$" <<<"$1" &&
		grep -qE "ADDITIONAL SECTION" <<<"$1" &&
		grep -qE "^ns1\.svc\.test\.\s+30\s+IN\s+A\s+127\.0\.0\.1$" <<<"$1"' _ "$out"
check "the NS name answers with its glue address" [ "$(dq +short ns1.svc.test A)" = "127.0.0.1" ]

# NODATA and NXDOMAIN, each with the SOA in authority.
out=$(dq www.svc.test AAAA)
check "AAAA for a service: NOERROR, no answer, SOA in authority" \
	bash -c 'grep -q "status: NOERROR" <<<"$1" && grep -q "ANSWER: 0," <<<"$1" &&
		grep -qE "^svc\.test\.\s+30\s+IN\s+SOA" <<<"$1"' _ "$out"
out=$(dq nope.svc.test A)
check "unknown name in the zone: NXDOMAIN with SOA, AA" \
	bash -c 'grep -q "status: NXDOMAIN" <<<"$1" && grep -q "flags: qr aa" <<<"$1" &&
		grep -qE "^svc\.test\.\s+30\s+IN\s+SOA" <<<"$1"' _ "$out"
out=$(dq svc.test ANY)
check "ANY at the apex: SOA and NS" \
	bash -c 'grep -qE "IN\s+SOA" <<<"$1" && grep -qE "IN\s+NS" <<<"$1"' _ "$out"

# Out of zone: REFUSED without a forwarder, relayed with one.
check "out of zone without forward: REFUSED" has "status: REFUSED" "$(bq example.com A)"
out=$(dq ns1.other.test A +norec)
check "out of zone with forward: relayed (the other zone's glue, its ID restored)" \
	bash -c 'grep -q "status: NOERROR" <<<"$1" &&
		grep -qE "^ns1\.other\.test\.\s+60\s+IN\s+A\s+127\.0\.0\.1$" <<<"$1"' _ "$out"
check "forward over TCP from the client" [ "$(dq +tcp +short ns1.other.test A)" = "127.0.0.1" ]
out=$(dq +tcp other.test NS)
check "forward for a TCP client: a truncated answer is asked again over TCP (8 NS)" \
	bash -c 'grep -q "ANSWER: 8," <<<"$1" && ! grep -qE "flags:.* tc" <<<"$1"' _ "$out"

# Bad input.
check "a question it cannot parse: FORMERR" python3 "$T/dns.py" formerr "$DNS_PORT"
check "QDCOUNT 2: FORMERR" python3 "$T/dns.py" qdcount "$DNS_PORT"
check "a response (QR=1) is dropped" python3 "$T/dns.py" response "$DNS_PORT"
check "opcode STATUS: NOTIMP" has "status: NOTIMP" "$(dq +opcode=2 svc.test SOA)"

# EDNS0 and truncation.
out=$(dq +bufsize=4096 www.svc.test A)
check "EDNS0 echoed with UDP payload 1232" has "EDNS: version: 0, flags:; udp: 1232" "$out"
check "no OPT in, no OPT out" bash -c '! grep -q "OPT PSEUDOSECTION" <<<"$1"' _ \
	"$(dq +noedns www.svc.test A)"
out=$(bq +norec +bufsize=1232 +ignore other.test NS)
check "an answer too large for UDP sets TC" has "flags: qr aa tc;" "$out"
out=$(bq +norec +noedns +ignore other.test NS)
check "TC without EDNS (512 bytes)" has "flags: qr aa tc;" "$out"
out=$(bq +tcp other.test NS)
check "the same answer over TCP is whole (8 NS, no TC)" \
	bash -c 'grep -q "ANSWER: 8," <<<"$1" && ! grep -q " tc" <<<"$1"' _ "$out"

# TCP: several queries on one connection; idle connections closed.
check "several pipelined queries on one TCP connection" python3 "$T/dns.py" pipeline "$DNS_PORT"
out=$(kdig @127.0.0.1 -p "$DNS_PORT" +tcp +keepopen www.svc.test A svc.test SOA 2>&1)
check "kdig +keepopen: two answers on one connection" \
	bash -c '[ "$(grep -c "status: NOERROR" <<<"$1")" -eq 2 ]' _ "$out"

# Names match case-insensitively; the question is echoed as asked.
out=$(dq WwW.SvC.TeSt A +noall +question +answer)
check "mixed case: answered, question echoed as asked" \
	bash -c 'grep -qE "^;WwW\.SvC\.TeSt\.\s+IN\s+A$" <<<"$1" && grep -qE "\s+A\s+'"$NET"'\.2$" <<<"$1"' \
	_ "$out"

check "IPv6 listen on [::1] (UDP)" \
	[ "$(dig @::1 -p "$DNS_PORT" +time=5 +tries=1 +short www.svc.test A)" = "$NET.2" ]
check "IPv6 listen on [::1] (TCP)" \
	[ "$(dig @::1 -p "$DNS_PORT" +tcp +time=5 +tries=1 +short svc.test SOA | awk '{print $1}')" = "ns1.svc.test." ]

check "an idle TCP connection is closed after about 10 s" python3 "$T/dns.py" idle "$DNS_PORT"

# hold "none": answers wait for the boot, without holding up the rest.
check "TCP: a query waiting for a boot does not hold up the next one on its connection" \
	python3 "$T/dns.py" tcp_pending "$DNS_PORT"
python3 "$T/dns.py" tcp_cancel "$DNS_PORT"
sleep 1.5
check "a TCP connection closed while its answer waited: the boot went on, the server is fine" \
	bash -c "kill -0 $DPID && [ \"\$(dig @127.0.0.1 -p $DNS_PORT +time=10 +tries=1 +short slow2.svc.test A)\" = $NET.4 ]"
dq +short slow3.svc.test A >"$T/slow3.out" &
asker=$!
wait_for 20 grep -q "slow3: booting" "$DLOG" # the answer is pending
kill -HUP "$DPID"
wait "$asker"
check "an answer waiting for a boot stays pending through a reload" [ "$(cat "$T/slow3.out")" = "$NET.5" ]

# Reload: a new listen address and name, ::1 removed, the forwarder dead.
write_conf "$DEAD_PORT" "\"127.0.0.1:$DNS_PORT\", \"127.0.0.1:$NEW_PORT\"" ', "new.svc.test"'
kill -HUP "$DPID"
check "reload: the new listen address answers" \
	wait_for 15 bash -c "[ \"\$(dig @127.0.0.1 -p $NEW_PORT +time=1 +tries=1 +short new.svc.test A)\" = $NET.2 ]"
check "reload: the kept listen address answers the new name" [ "$(dq +short new.svc.test A)" = "$NET.2" ]
check "reload: the removed listen address is closed" \
	bash -c "! dig @::1 -p $DNS_PORT +time=1 +tries=1 svc.test SOA >/dev/null"
t0=$(date +%s%N)
out=$(dq +time=6 example.org A)
dt=$((($(date +%s%N) - t0) / 1000000))
check "forwarder silent: SERVFAIL after about 2 s (${dt} ms)" \
	bash -c '[[ $1 == *"status: SERVFAIL"* ]] && [ "$2" -ge 1500 ] && [ "$2" -le 4000 ]' _ "$out" "$dt"

# A wildcard listen address answers from the address that was asked, in a
# network namespace of our own (its loopback only).
NS=beckon-dns-$$
if [ "$(id -u)" -ne 0 ] || ! ip netns add "$NS" 2>/dev/null; then
	skip "wildcard listen: needs root for a network namespace"
else
	on_exit "ip netns del $NS"
	ip netns exec "$NS" ip link set lo up
	cat >"$T/wild.conf" <<CONF
state_dir = "$T/wstate";
control_socket = "$T/wctl.sock";
metrics_listen = "";
dns = {
  listen = ( "0.0.0.0:$DNS_PORT", "[::]:$DNS_PORT" );
  zone = "svc.test";
  ns = ( { name = "ns1.svc.test"; address = "127.0.0.1"; } );
  ttl = 30;
};
network = { mode = "user"; hold = "none"; };
services = ();
CONF
	ip netns exec "$NS" "$BECKOND" -c "$T/wild.conf" >"$T/wild.log" 2>&1 &
	WPID=$!
	on_exit "kill -9 $WPID"
	wait_for 10 "$BECKONCTL" -s "$T/wctl.sock" status
	# dig drops an answer from another source than the one it asked.
	out=$(ip netns exec "$NS" dig @127.0.0.5 -p "$DNS_PORT" +time=2 +tries=1 +short svc.test SOA)
	check "wildcard listen 0.0.0.0: the answer comes from 127.0.0.5, as asked" \
		[ "$(awk '{print $1}' <<<"$out")" = "ns1.svc.test." ]
	out=$(ip netns exec "$NS" dig @::1 -p "$DNS_PORT" +time=2 +tries=1 +short svc.test SOA)
	check "wildcard listen [::]: answers on ::1" [ "$(awk '{print $1}' <<<"$out")" = "ns1.svc.test." ]
	kill -TERM "$WPID"
	wait "$WPID"
	check "the wildcard beckond exits cleanly, sanitizers quiet" \
		bash -c "[ $? -eq 0 ] && ! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' '$T/wild.log'"
fi

check "beckond exits cleanly on SIGTERM, sanitizers quiet" stop_daemon
DPID=$BPID DLOG=$BLOG
check "the forward target exits cleanly too" stop_daemon
finish
