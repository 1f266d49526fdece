#!/usr/bin/env python3
"""Load for beckond's DNS limits, used by tests/integration/test_dns_limits.sh
and tests/bench/bench_dns_limits.sh. Loopback only: a source address is any
127.x.y.z, which Linux routes to lo with no setup.

  flood PORT SRC SECS QPS NAME    UDP queries from SRC at QPS for SECS
  steady ...                      the same (a name for a polite client)
  tcphold PORT N SRCBASE NADDR SECS STATUS
                                  N idle TCP connections from NADDR addresses
                                  SRCBASE.1.., a third silent, a third with
                                  half a length prefix, a third sending a
                                  byte every 2 s; each one the server closes
                                  is opened again (renewed). STATUS gets a
                                  JSON line of counts every half second.
  tcpq PORT SRC NAME              one query over a new TCP connection: ms
  tcpqs PORT SRCBASE N GAP NAME   N of those, each from SRCBASE.(i % 250 + 1),
                                  GAP s apart: one line each, ms or "fail"

flood and steady print one JSON object: sent, answered (no TC), tc,
unanswered, elapsed (s).
"""
import json
import os
import selectors
import socket
import struct
import sys
import time


def qname(n):
    return b"".join(bytes([len(l)]) + l.encode() for l in n.split(".") if l) + b"\0"


def query(name, qid, qtype=1):
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qname(name) + struct.pack(">HH", qtype, 1)


def udp_load(port, src, secs, qps, name):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((src, 0))
    s.setblocking(False)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sent = answered = tc = 0
    start = time.monotonic()
    end = start + secs
    gap = 1.0 / qps
    nxt = start

    def drain():
        nonlocal answered, tc
        while True:
            try:
                d = s.recv(4096)
            except BlockingIOError:
                return
            if len(d) >= 12:
                if d[2] & 0x02:
                    tc += 1
                else:
                    answered += 1

    while True:
        now = time.monotonic()
        if now >= end:
            break
        if now >= nxt:
            s.sendto(query(name, sent & 0xFFFF), ("127.0.0.1", port))
            sent += 1
            nxt += gap
            if nxt < now - 0.1:  # far behind (a busy machine): do not burst to catch up
                nxt = now
        drain()
        time.sleep(min(max(nxt - time.monotonic(), 0), 0.0005))
    elapsed = time.monotonic() - start
    # Late answers: wait a little for what is still on its way.
    stop = time.monotonic() + 1.0
    while time.monotonic() < stop and answered + tc < sent:
        drain()
        time.sleep(0.01)
    drain()
    print(json.dumps({"sent": sent, "answered": answered, "tc": tc,
                      "unanswered": sent - answered - tc, "elapsed": round(elapsed, 3)}))


class Holder:
    """N connections, kept open: reopened when the server closes one."""

    def __init__(self, port, n, base, naddr):
        self.port, self.n, self.base, self.naddr = port, n, base, naddr
        self.sel = selectors.DefaultSelector()
        self.conns = {}  # index -> socket
        self.connects = self.renewed = self.failed = 0

    def open(self, i, renew=False):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((f"{self.base}.{1 + i % self.naddr}", 0))
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", self.port))
        except OSError:
            s.close()
            self.failed += 1
            return
        s.setblocking(False)
        self.connects += 1
        self.renewed += renew
        if i % 3 == 1:
            s.send(b"\x00")  # half a length prefix, then nothing
        self.conns[i] = s
        self.sel.register(s, selectors.EVENT_READ, i)

    def close(self, i):
        s = self.conns.pop(i)
        self.sel.unregister(s)
        s.close()

    def poll(self, timeout):
        for key, _ in self.sel.select(timeout):
            i = key.data
            try:
                d = self.conns[i].recv(4096)
            except OSError:
                d = b""
            if not d:
                self.close(i)

    def trickle(self):
        for i, s in list(self.conns.items()):
            if i % 3 == 2:
                try:
                    s.send(b"\x00")  # a byte every 2 s: never a whole query
                except OSError:
                    self.close(i)


def tcphold(port, n, base, naddr, secs, status):
    h = Holder(port, n, base, naddr)
    for i in range(n):
        h.open(i)
    end = time.monotonic() + secs
    last_trickle = last_status = 0
    first = True
    while time.monotonic() < end:
        h.poll(0.1)
        now = time.monotonic()
        if now - last_trickle >= 2:
            h.trickle()
            last_trickle = now
        budget = 100  # renew what the server closed, up to 1000 a second
        for i in range(n):
            if i not in h.conns and budget > 0:
                h.open(i, renew=True)
                budget -= 1
        if now - last_status >= 0.5 or first:
            with open(status + ".tmp", "w") as f:
                json.dump({"open": len(h.conns), "connects": h.connects,
                           "renewed": h.renewed, "failed": h.failed}, f)
            os.rename(status + ".tmp", status)
            last_status = now
            first = False


def tcpq_once(port, src, name):
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(src, 0))
    s.settimeout(5)
    q = query(name, 0x7777)
    s.sendall(struct.pack(">H", len(q)) + q)
    b = b""
    while len(b) < 2 or len(b) < 2 + struct.unpack(">H", b[:2])[0]:
        c = s.recv(4096)
        if not c:
            raise EOFError
        b += c
    s.close()
    return (time.monotonic() - t0) * 1000


def tcpqs(port, base, n, gap, name):
    for i in range(n):
        try:
            print(round(tcpq_once(port, f"{base}.{i % 250 + 1}", name), 2), flush=True)
        except (OSError, EOFError):
            print("fail", flush=True)
        time.sleep(gap)


def tcpq(port, src, name):
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(src, 0))
    q = query(name, 0x7777)
    s.sendall(struct.pack(">H", len(q)) + q)
    b = b""
    while len(b) < 2 or len(b) < 2 + struct.unpack(">H", b[:2])[0]:
        c = s.recv(4096)
        if not c:
            sys.exit(1)
        b += c
    s.close()
    print(round((time.monotonic() - t0) * 1000, 2))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd in ("flood", "steady"):
        udp_load(int(args[0]), args[1], float(args[2]), float(args[3]), args[4])
    elif cmd == "tcphold":
        tcphold(int(args[0]), int(args[1]), args[2], int(args[3]), float(args[4]), args[5])
    elif cmd == "tcpqs":
        tcpqs(int(args[0]), args[1], int(args[2]), float(args[3]), args[4])
    elif cmd == "tcpq":
        tcpq(int(args[0]), args[1], args[2])
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
