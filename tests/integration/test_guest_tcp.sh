#!/usr/bin/env bash
# test_guest_tcp.sh: the hello guest's TCP, segment by segment.  A Python
# client speaks TCP by hand through an AF_PACKET socket on the tap, from an
# address the namespace's own kernel does not hold (so it never interferes),
# and checks the handshake, retransmission, the receive window, zero-window
# persistence, RST and SYN handling (RFC 5961), out-of-order data, FIN, and
# a peer whose MAC changes mid-connection.
# Everything stays inside a network namespace made here.
. "$(dirname "$0")/lib.sh"
NS=bkt-gtcp-$$
TAP=bkt$$
GUEST_IP=10.99.2.2
HOST_IP=10.99.2.1
GUEST_MAC=52:54:00:99:02:02
NAME=tcp
. "$(dirname "$0")/guestvm.sh"

guest_setup "guest TCP tests"
guestnet_up
if ! guest_boot; then
	not_ok "guest boots under $ACCEL: $(tr '\n' ' ' <"$T/qemu.err" | head -c 200)"
	exit 1
fi

cat >"$T/tcp.py" <<'EOF'
import select, socket, struct, sys, time

tap, gmac, gip = sys.argv[1], sys.argv[2], sys.argv[3]
GMAC = bytes.fromhex(gmac.replace(":", ""))
CMAC = bytes.fromhex("020000000032")
GIP, CIP = socket.inet_aton(gip), socket.inet_aton("10.99.2.50")
FIN, SYN, RST, PSH, ACK = 1, 2, 4, 8, 16
failed = 0

def report(good, what):
    global failed
    print(("ok - " if good else "not ok - ") + "tcp: " + what, flush=True)
    failed |= not good

def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff

raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
raw.bind((tap, 0))

def send(sport, seq, ack, flags, data=b"", win=65535, mss=None, src=CMAC):
    opts = struct.pack("!BBH", 2, 4, mss) if mss else b""
    th = struct.pack("!HHIIBBHHH", sport, 80, seq & 0xffffffff, ack & 0xffffffff,
                     (5 + len(opts) // 4) << 4, flags, win, 0, 0) + opts
    ph = CIP + GIP + struct.pack("!BBH", 0, 6, len(th) + len(data))
    th = th[:16] + struct.pack("!H", csum(ph + th + data)) + th[18:]
    ih = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(th) + len(data), 1, 0, 64, 6, 0, CIP, GIP)
    ih = ih[:10] + struct.pack("!H", csum(ih)) + ih[12:]
    raw.send(GMAC + src + b"\x08\x00" + ih + th + data)

class Seg:
    def __init__(self, seq, ack, flags, win, data, opts):
        self.seq, self.ack, self.flags, self.win, self.data, self.opts = seq, ack, flags, win, data, opts
    def __repr__(self):
        return "<seq %d ack %d flags %#x win %d len %d>" % (self.seq, self.ack, self.flags, self.win, len(self.data))

def recv(sport, timeout, until=None, dst=CMAC):
    """Segments from the guest to dst at sport, for timeout seconds or until one satisfies until."""
    out, end = [], time.time() + timeout
    while True:
        left = end - time.time()
        if left <= 0 or not select.select([raw], [], [], left)[0]:
            return out
        f = raw.recv(2048)
        if len(f) < 54 or f[:6] != dst or f[12:14] != b"\x08\x00" or f[23] != 6:
            continue
        ip = f[14:]
        tl, hl = struct.unpack("!H", ip[2:4])[0], (ip[0] & 15) * 4
        t = ip[hl:tl]
        if ip[12:16] != GIP or struct.unpack("!H", t[2:4])[0] != sport:
            continue
        th = (t[12] >> 4) * 4
        seq, ack = struct.unpack("!II", t[4:12])
        out.append(Seg(seq, ack, t[13], struct.unpack("!H", t[14:16])[0], t[th:], t[20:th]))
        if until and until(out[-1]):
            return out

def first(sport, timeout, want=0):
    """The first segment with all the flags in want, waiting at most timeout seconds."""
    segs = recv(sport, timeout, lambda s: s.flags & want == want)
    return segs[-1] if segs and segs[-1].flags & want == want else None

def recv_data(sport, timeout, n):
    """The first n segments that carry data, waiting at most timeout seconds."""
    got = []
    def enough(s):
        if s.data:
            got.append(s)
        return len(got) >= n
    recv(sport, timeout, enough)
    return got

port = [40000]
def handshake(win=65535):
    """Open a connection; returns (sport, our next seq, guest's next seq)."""
    port[0] += 1
    sp, iss = port[0], 1000 * port[0]
    send(sp, iss, 0, SYN, mss=1460)
    sa = first(sp, 2, SYN | ACK)
    if not sa:
        return sp, None, None
    send(sp, iss + 1, sa.seq + 1, ACK, win=win)
    return sp, iss + 1, sa.seq + 1

GET = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"

# 1. The handshake: SYN-ACK acknowledges our SYN and offers an MSS and a real window.
port[0] += 1
sp, iss = port[0], 5000
send(sp, iss, 0, SYN, mss=1460)
sa = first(sp, 2, SYN | ACK)
report(sa is not None and sa.ack == iss + 1 and sa.opts[:2] == b"\x02\x04" and 0 < sa.win <= 65535,
       "SYN gets SYN-ACK with ack = ISS + 1, an MSS option and a window (%r)" % (sa,))

# 2. Unanswered, the SYN-ACK is sent again with the same sequence number.
again = first(sp, 2, SYN | ACK) if sa else None
report(again is not None and again.seq == sa.seq, "an unanswered SYN-ACK is retransmitted (%r)" % (again,))
if sa:
    send(sp, iss + 1, sa.seq + 1, ACK)

# 3. The window shrinks by what we send and the guest has not consumed.
sp, seq, gseq = handshake()
part = b"GET / HTTP/1.1\r\nX-Pad: " + b"a" * 1000
send(sp, seq, gseq, ACK | PSH, part)
a = first(sp, 2, ACK)
report(a is not None and a.ack == seq + len(part) and a.win == sa.win - len(part),
       "the advertised window is the free receive buffer (%r, started at %d)" % (a, sa.win if sa else 0))
send(sp, seq + len(part), gseq, ACK | PSH, b"\r\n\r\n")
r = first(sp, 2, ACK)
report(r is not None and r.data.startswith(b"HTTP/1.1 200"), "the rest of the request gets the response")

# 4. Unacknowledged response data is retransmitted, and stops once acknowledged.
sp, seq, gseq = handshake()
send(sp, seq, gseq, ACK | PSH, GET)
segs = recv_data(sp, 2.5, 2)
report(len(segs) >= 2 and segs[0].seq == segs[1].seq == gseq and segs[0].data == segs[1].data,
       "an unacknowledged response is retransmitted with the same bytes (%d copies)" % len(segs))
if segs:
    send(sp, seq + len(GET), gseq + len(segs[0].data), ACK)
    recv(sp, 0.2)
    late = [s for s in recv(sp, 1.0) if s.data]
    report(not late, "once acknowledged it is not sent again")

# 5. A zero window holds the response back until the window opens.
sp, seq, gseq = handshake(win=0)
send(sp, seq, gseq, ACK | PSH, GET, win=0)
early = [s for s in recv(sp, 0.25) if len(s.data) > 1]
send(sp, seq + len(GET), gseq, ACK, win=65535)
later = recv_data(sp, 1.5, 1)
report(not early and later and later[0].data.find(b"HTTP/1.1 200") in (0, 1),
       "a zero window holds the response until the window opens")
if later:
    send(sp, seq + len(GET), later[-1].seq + len(later[-1].data), ACK)

# 6. A RST inside the window but not at its left edge gets a challenge ACK and changes nothing.
sp, seq, gseq = handshake()
send(sp, seq + 100, 0, RST)
c = first(sp, 1, ACK)
report(c is not None and c.ack == seq and not c.flags & RST, "an inexact RST gets a challenge ACK (%r)" % (c,))
send(sp, seq, gseq, ACK | PSH, GET)
r = first(sp, 2, ACK)
report(r is not None and r.data.startswith(b"HTTP/1.1 200"), "the connection survives an inexact RST")
if r:
    seq += len(GET)
    gseq += len(r.data)
    send(sp, seq, gseq, ACK)

# 7. A SYN on an open connection gets a challenge ACK, not a reset.
send(sp, seq + 5000, 0, SYN)
c = first(sp, 1)
report(c is not None and c.flags == ACK and c.ack == seq, "a SYN on an open connection gets a challenge ACK (%r)" % (c,))

# 8. Out-of-window data is refused with an ACK of what we expect.
send(sp, seq + 100000, gseq, ACK | PSH, b"junk")
c = first(sp, 1, ACK)
report(c is not None and c.ack == seq, "out-of-window data is answered with the expected ACK (%r)" % (c,))

# 9. Out-of-order data is not taken: a duplicate ACK, then the gap filled gets the answer.
send(sp, seq + 10, gseq, ACK | PSH, GET[10:])
c = first(sp, 1, ACK)
report(c is not None and c.ack == seq and not c.data, "out-of-order data gets a duplicate ACK (%r)" % (c,))
send(sp, seq, gseq, ACK | PSH, GET)
r = first(sp, 2, ACK)
report(r is not None and r.data.startswith(b"HTTP/1.1 200"), "the request sent in order is then served")
if r:
    seq += len(GET)
    gseq += len(r.data)
    send(sp, seq, gseq, ACK)

# 10. A RST at exactly the expected sequence closes it: later segments get RST.
send(sp, seq, 0, RST)
time.sleep(0.1)
send(sp, seq, gseq, ACK | PSH, GET)
c = first(sp, 1)
report(c is not None and c.flags & RST, "an exact RST closes the connection (%r)" % (c,))

# 11. FIN after the request: the response, then the guest's FIN; its FIN is acknowledged.
sp, seq, gseq = handshake()
send(sp, seq, gseq, ACK | PSH | FIN, GET)
segs = recv(sp, 1, lambda s: s.flags & FIN)
data = b"".join(s.data for s in segs)
fin = [s for s in segs if s.flags & FIN]
report(data.startswith(b"HTTP/1.1 200") and fin and fin[0].ack == seq + len(GET) + 1,
       "FIN with the request: response, then FIN, our FIN acknowledged")
if fin:
    send(sp, seq + len(GET) + 1, fin[0].seq + len(fin[0].data) + 1, ACK)
    time.sleep(0.1)
    send(sp, seq + len(GET) + 1, fin[0].seq + len(fin[0].data) + 1, ACK | PSH, b"x")
    c = first(sp, 1)
    report(c is not None and c.flags & RST, "after the last ACK the connection is gone (%r)" % (c,))

# 12. Connection: close: the guest closes first; our FIN then finds it in FIN-WAIT-2.
sp, seq, gseq = handshake()
req = b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"
send(sp, seq, gseq, ACK | PSH, req)
segs = recv(sp, 1, lambda s: s.flags & FIN)
fin = [s for s in segs if s.flags & FIN]
report(fin and b"Connection: close" in b"".join(s.data for s in segs), "Connection: close: response and FIN")
if fin:
    gend = fin[0].seq + len(fin[0].data) + 1
    send(sp, seq + len(req), gend, ACK | FIN)
    c = first(sp, 1, ACK)
    report(c is not None and c.ack == seq + len(req) + 1, "our FIN after the guest's is acknowledged (%r)" % (c,))

# 13. A segment for no connection: ACK gets RST with seq = its ack.
port[0] += 1
send(port[0], 77, 123456, ACK)
c = first(port[0], 1)
report(c is not None and c.flags & RST and c.seq == 123456, "a stray ACK gets RST with seq = its ack (%r)" % (c,))

# 14. The peer's next hop changes MAC mid-connection (a host bridge whose MAC
# follows its ports, as libvirt adds taps): answers go to the new one.
NEWMAC = bytes.fromhex("020000000033")
sp, seq, gseq = handshake()
send(sp, seq, gseq, ACK | PSH, GET, src=NEWMAC)
got = recv(sp, 2, lambda s: s.data.startswith(b"HTTP/1.1 200"), dst=NEWMAC)
report(got and got[-1].data.startswith(b"HTTP/1.1 200"),
       "after the peer's MAC changes, the response goes to the new MAC (%r)" % (got,))

sys.exit(1 if failed else 0)
EOF
ip netns exec "$NS" python3 "$T/tcp.py" "$TAP" "$GUEST_MAC" "$GUEST_IP" 2>&1 || FAILED=1
if kill -0 "$QEMU_PID" 2>/dev/null && ! grep -q FAULT "$T/console"; then
	ok "tcp: the guest is still running, no fault"
else
	not_ok "tcp: the guest is still running, no fault"
fi
finish
