#!/usr/bin/env bash
# Pattern services (dns = ( "*.SUFFIX" )) through the real daemon, hold
# "none", bridge mode, with real dig, curl and guests:
# - 300 images on disk (the hello guest under 300 names); 50 names asked
#   for with dig each get an instance of their own, which serves its own
#   page (exec backend: a busybox httpd per name, for the bulk);
# - a few names under a QEMU pattern boot real hello guests, each serving
#   "hello from LABEL" from its cmdline, on a tap of its own, forgotten
#   after idling out (on_idle "destroy"), tap gone, address back;
# - a name with no image is NXDOMAIN and boots nothing; 10,000 random
#   labels boot nothing and beckond's RSS stays within a bound;
# - a pool of two: a third name is SERVFAIL until one idles out.
# KVM when /dev/kvm opens, else TCG.
. "$(dirname "$0")/lib.sh"

need_root "pattern services"
IMG=$ROOT/build/hello.elf
for tool in qemu-system-x86_64 curl ip python3 dig busybox; do
	command -v $tool >/dev/null || { not_ok "$tool is installed"; finish; }
done
[ -f "$IMG" ] || { not_ok "the hello guest is built ($IMG; make guest)"; finish; }
ACCEL=tcg
python3 -c 'import os; os.close(os.open("/dev/kvm", os.O_RDWR))' 2>/dev/null && ACCEL=kvm
echo "# accelerator: $ACCEL"

DNS_PORT=$(free_port)
CONF=$T/beckon.conf
NET=$(fresh_net 10.73)
LO=127.$((20 + RANDOM % 200)).$((1 + RANDOM % 250)) # the exec pages' own loopback /24s
LO2=${LO%.*}.$((${LO##*.} % 250 + 1))
BR=bkpt$$        # a bridge of this test's own
NS=bkpt-ns-$$    # the client of the QEMU guests
VETH=bkpv$$
P=pt$$           # the pattern services of this run: markers and taps are ours alone
on_exit "ip netns del $NS"
on_exit "ip link del $VETH"
on_exit "ip link del $BR"
on_exit "for p in \$(pgrep -f 'guest=beckon:[a-z0-9-]*\\.$P-'); do kill -9 \$p; done"
on_exit "for p in \$(pgrep -f '$T/run/'); do kill -9 \$p; done"
on_exit "for l in \$(beckon_taps ''); do ip link show \$l | grep -q 'beckon:[a-z0-9-]*\\.$P-' && ip link del \$l; done"

# 300 images: the hello guest under 300 names; the QEMU pattern's own three.
mkdir -p "$T/img" "$T/vmimg" "$T/run"
for i in $(seq 1 300); do ln -s "$IMG" "$T/img/p$i.elf"; done
for l in alpha beta gamma; do ln -s "$IMG" "$T/vmimg/$l.elf"; done

# An exec page: a docroot naming its label, served at its pool address.
PAGE="sh -c 'mkdir -p $T/run/{label} && echo name={label} >$T/run/{label}/index.html && exec busybox httpd -f -p {address}:8080 -h $T/run/{label}'"
base_conf "$CONF"
sed -i "s|^network = .*|network = { mode = \"bridge\"; bridge = \"$BR\"; subnet = \"$NET.0/24\"; hold = \"none\"; };|" "$CONF"
# One client asks for 50 names in a row: on a quick machine faster than
# the default client_rate (10/s, burst 20); rate limits have their own tests.
echo 'boot_rate = { rate = 0; client_rate = 0; };' >>"$CONF"
add_services "$CONF" <<CONF
  { name = "$P-pg"; dns = ( "*.pages.svc.test" ); address_pool = "$LO.0/24"; ports = ( 8080 );
    backend = "exec"; image = "$T/img/{label}.elf"; ready = "tcp"; boot_timeout = "30s";
    idle_timeout = "10m"; on_idle = "destroy"; exec = { command = "$PAGE"; }; },
  { name = "$P-two"; dns = ( "*.two.svc.test" ); address_pool = "$LO2.240-$LO2.241"; ports = ( 8080 );
    backend = "exec"; image = "$T/img/{label}.elf"; ready = "tcp"; boot_timeout = "30s";
    idle_timeout = "5s"; on_idle = "destroy"; exec = { command = "$PAGE"; }; },
  { name = "$P-vm"; dns = ( "*.vm.svc.test" ); address_pool = "$NET.100-$NET.120"; ports = ( 80 );
    image = "$T/vmimg/{label}.elf"; cmdline = "ip={address}/{prefix} gw={gateway} name={label} port={port}";
    ready = "http:/healthz"; boot_timeout = "60s"; idle_timeout = "4s"; on_idle = "destroy";
    qemu = { accel = "$ACCEL"; }; },
CONF

out=$("$BECKOND" -n -c "$CONF" 2>&1)
check "beckond -n accepts the pattern services ($out)" [ "$out" = "configuration OK" ]
start_daemon "$CONF" || { not_ok "beckond starts"; finish; }
ok "beckond starts with three pattern services"

dqa() { dig @127.0.0.1 -p "$DNS_PORT" +time=60 +tries=1 "$@"; }
rcode() { dqa "$@" | sed -n 's/.*status: \([A-Z]*\).*/\1/p'; }
rows() { ctl --json list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["services"]))'; }
made() { grep -c "made from pattern" "$DLOG"; }
check "no instance before any query" [ "$(rows)" = 0 ]

# 1. 50 distinct names: each answered with an address of the pool, serving its own page.
bad=
for i in $(seq 1 6 300); do
	a=$(dqa +short "p$i.pages.svc.test" A)
	got=$(curl -s --max-time 10 "http://$a:8080/" 2>/dev/null)
	[[ "$a" == $LO.* && "$got" == "name=p$i" ]] || bad="$bad p$i($a:$got)"
done
check "50 names: each answered with a pool address and served its own page${bad:+ (not:$bad)}" [ -z "$bad" ]
ctl --json list >"$T/list.json"
check "50 names: 50 rows in beckonctl list, named LABEL.SERVICE, each ready after one boot" \
	python3 - "$T/list.json" "$P-pg" <<'EOF'
import json, sys
rows = [s for s in json.load(open(sys.argv[1]))["services"] if s["name"].endswith("." + sys.argv[2])]
want = {"p%d.%s" % (i, sys.argv[2]) for i in range(1, 301, 6)}
ok = {s["name"] for s in rows} == want and all(s["state"] == "ready" and s["boots"] == 1 for s in rows)
ok = ok and all(s.get("pattern") == sys.argv[2] for s in rows)
sys.exit(0 if ok and len(rows) == 50 else 1)
EOF
check "50 names: 50 addresses, 50 processes, none shared" \
	python3 -c '
import json, sys
rows = json.load(open(sys.argv[1]))["services"]
sys.exit(0 if len({s["address"] for s in rows}) == 50 and len({s["pid"] for s in rows}) == 50 else 1)' "$T/list.json"
check "the list shows pattern instances in text too" bash -c "'$BECKONCTL' -s '$DSOCK' list | grep -qE '^p1\\.$P-pg +ready'"
a1=$(svc_field "p1.$P-pg" address)
check "a name asked again: the same instance, the same address, no second boot" \
	bash -c "[ \"\$(dig @127.0.0.1 -p $DNS_PORT +short p1.pages.svc.test A)\" = '$a1' ] &&
		 [ \"\$('$BECKONCTL' -s '$DSOCK' --json list | python3 -c 'import json,sys; print([s[\"boots\"] for s in json.load(sys.stdin)[\"services\"] if s[\"name\"]==\"p1.$P-pg\"][0])')\" = 1 ]"
check "names match case-insensitively (P1.PAGES)" [ "$(dqa +short P1.PAGES.svc.test A)" = "$a1" ]
check "AAAA of a name with an image: NOERROR, no data" [ "$(rcode p2.pages.svc.test AAAA)" = NOERROR ]

# 2. No image: NXDOMAIN, nothing booted, nothing kept.
n0=$(made)
check "a name with no image: NXDOMAIN" [ "$(rcode nope.pages.svc.test A)" = NXDOMAIN ]
check "... also for AAAA" [ "$(rcode nope.pages.svc.test AAAA)" = NXDOMAIN ]
check "two labels deep: NXDOMAIN" [ "$(rcode a.p1.pages.svc.test A)" = NXDOMAIN ]
check "a name with no image: no instance made, no row" [ "$(made)" = "$n0" -a "$(rows)" = 50 ]
check "the suffix itself exists, with no data" [ "$(rcode pages.svc.test A)" = NOERROR ]

# 3. 10,000 random labels: 0 boots, RSS within a bound.
cat >"$T/flood.py" <<'EOF'
# Send N A queries for random labels under SUFFIX, WINDOW in flight; print the rcodes seen.
import os, random, select, socket, string, struct, sys, time
port, suffix, n, window = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), 64
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("127.0.0.1", port))
def query(qid):
    # "zz": never a label with an image (p1, p7, ...: "p103" came up once, NOERROR).
    label = "zz" + "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(random.randint(2, 18)))
    wire = b"".join(bytes([len(p)]) + p.encode() for p in (label + "." + suffix).split(".")) + b"\0"
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + wire + struct.pack(">HH", 1, 1)
sent = got = 0
rcodes = {}
pending = {}
deadline = time.time() + 300
while got < n and time.time() < deadline:
    while sent < n and len(pending) < window:
        q = query(sent & 0xffff); s.send(q); pending[sent & 0xffff] = time.time(); sent += 1
    r, _, _ = select.select([s], [], [], 2)
    if not r:
        for k in list(pending):  # lost: ask again
            s.send(query(k)); pending[k] = time.time()
        continue
    a = s.recv(4096)
    qid = struct.unpack(">H", a[:2])[0]
    if pending.pop(qid, None) is None:
        continue
    got += 1
    rc = a[3] & 0x0f
    rcodes[rc] = rcodes.get(rc, 0) + 1
print(" ".join("%d:%d" % kv for kv in sorted(rcodes.items())), got)
EOF
rss() { awk '/^VmRSS/ {print $2}' "/proc/$DPID/status"; }
python3 "$T/flood.py" "$DNS_PORT" pages.svc.test 1000 >/dev/null # the allocator's warm-up
rss0=$(rss)
t0=$(now_ms)
res=$(python3 "$T/flood.py" "$DNS_PORT" pages.svc.test 10000)
t1=$(now_ms)
rss1=$(rss)
echo "# flood: rcodes $res in $((t1 - t0)) ms; beckond RSS ${rss0} kB before, ${rss1} kB after"
check "10,000 random labels: every one NXDOMAIN ($res)" [ "$res" = "3:10000 10000" ]
check "10,000 random labels: 0 boots, no row added" [ "$(made)" = "$n0" -a "$(rows)" = 50 ]
check "10,000 random labels: RSS grew less than 4 MB ($((rss1 - rss0)) kB)" [ $((rss1 - rss0)) -lt 4096 ]

# 4. A pool of two addresses: a third name waits for one to idle out (idle_timeout 5s).
a=$(dqa +short p1.two.svc.test A)
b=$(dqa +short p2.two.svc.test A)
check "a pool of two: two names get its two addresses ($a $b)" \
	bash -c "[ '$a $b' = '$LO2.240 $LO2.241' ] || [ '$a $b' = '$LO2.241 $LO2.240' ]"
check "a pool of two: a third name is SERVFAIL, nothing made" \
	bash -c "[ \"\$(dig @127.0.0.1 -p $DNS_PORT +time=30 +tries=1 p3.two.svc.test A | sed -n 's/.*status: \([A-Z]*\).*/\1/p')\" = SERVFAIL ]"
check "a pool of two: both idle out (destroy) and are forgotten" \
	wait_for 60 bash -c "! '$BECKONCTL' -s '$DSOCK' list | grep -q '\\.$P-two '"
check "a pool of two: the log says their addresses went back" \
	bash -c "grep -qE 'p1\\.$P-two: stopped, forgotten \\(address $LO2\\.24[01] back in the pool\\)' '$DLOG'"
c=$(dqa +short p3.two.svc.test A)
check "a pool of two: the third name now gets an address ($c) and its page" \
	bash -c "[[ '$c' == $LO2.24[01] ]] && [ \"\$(curl -s --max-time 10 http://$c:8080/)\" = name=p3 ]"

# 5. beckonctl stop forgets a pattern instance; the next query makes it again.
pid1=$(svc_field "p1.$P-pg" pid)
ctl stop "p1.$P-pg" >/dev/null
check "stop: p1 is forgotten, its process gone" \
	wait_for 30 bash -c "! '$BECKONCTL' -s '$DSOCK' list | grep -q '^p1\\.$P-pg ' && ! kill -0 $pid1"
a=$(dqa +short p1.pages.svc.test A)
check "stop: the next query makes it again and it serves ($a)" \
	bash -c "[ \"\$(curl -s --max-time 10 http://$a:8080/)\" = name=p1 ]"

# 6. Real hello guests under QEMU: each serves its own page, on a tap of its own.
ip netns add "$NS" && ip link add "$VETH" type veth peer name eth0 netns "$NS" &&
	ip link set "$VETH" master "$BR" up && ip -n "$NS" addr add "$NET.250/24" dev eth0 &&
	ip -n "$NS" link set eth0 up || { not_ok "client namespace on the bridge"; finish; }
page() { ip netns exec "$NS" curl -s --max-time 10 "http://$1/" | tr -d '\n'; }
pids=
for l in alpha beta gamma; do
	dqa +short "$l.vm.svc.test" A >"$T/$l.ans" &
	pids="$pids $!"
done
wait $pids
bad=
for l in alpha beta gamma; do
	a=$(cat "$T/$l.ans")
	got=$(page "$a")
	[[ "$a" == $NET.1[01][0-9] || "$a" == $NET.120 ]] && [[ "$got" =~ ^"hello from $l " ]] || bad="$bad $l($a:$got)"
done
check "3 QEMU hello guests at once: each serves its own page${bad:+ (not:$bad)}" [ -z "$bad" ]
check "3 QEMU hello guests: three QEMUs, one per name" \
	[ "$(pgrep -f "guest=beckon:[a-z]*\.$P-vm," | wc -l)" -eq 3 ]
tap=$(beckon_tap "alpha.$P-vm")
check "alpha.$P-vm has a tap of its own ($tap) on the bridge" \
	bash -c "[ -n '$tap' ] && ip link show '$tap' | grep -q 'master $BR'"
check "a QEMU name with no image: NXDOMAIN" [ "$(rcode delta.vm.svc.test A)" = NXDOMAIN ]
check "the QEMU guests idle out (destroy) and are forgotten" \
	wait_for 90 bash -c "! '$BECKONCTL' -s '$DSOCK' list | grep -q '\\.$P-vm '"
check "... their QEMUs are gone" wait_for 30 bash -c "! pgrep -f 'guest=beckon:[a-z]*\\.$P-vm,'"
check "... and their taps" bash -c "! ip link show '$tap' >/dev/null 2>&1"

# 7. SIGHUP with the config unchanged keeps the instances; SIGTERM leaves nothing.
# no_pages_of SERVICE: no page process of that pattern's instances (their docroots are $T/run/LABEL).
no_pages_of() { ! pgrep -f "busybox httpd -f -p $LO\\..* -h $T/run/" >/dev/null; }
# Only the pg pattern's rows: another service's instance may idle out meanwhile.
pgs() { "$BECKONCTL" -s "$DSOCK" list | grep -c "\.$P-pg "; }
n=$(pgs)
kill -HUP "$DPID"
check "a reload keeps the pattern instances ($n)" \
	wait_for 15 bash -c "grep -q 'reload' '$DLOG' && [ \"\$('$BECKONCTL' -s '$DSOCK' list | grep -c '\\.$P-pg ')\" = $n ]"
# A reload that changes a pattern service forgets its instances (and stops them).
check "before the change: the pattern's instances are there ($(pgs))" [ "$(pgs)" -ge 50 ]
sed -i 's|idle_timeout = "10m"; on_idle = "destroy"; exec|idle_timeout = "9m"; on_idle = "destroy"; exec|' "$CONF"
kill -HUP "$DPID"
check "a reload that changes the pattern forgets its instances" \
	wait_for 60 bash -c "[ \"\$('$BECKONCTL' -s '$DSOCK' list | grep -c '\\.$P-pg ')\" = 0 ]"
check "... and the log says why" grep -q "p1.$P-pg: its pattern service changed or went, forgetting it" "$DLOG"
check "... their processes are gone" wait_for 30 no_pages_of pg
check "... a name of it is made again at the next query" \
	bash -c "a=\$(dig @127.0.0.1 -p $DNS_PORT +time=60 +tries=1 +short p7.pages.svc.test A) &&
		 [ \"\$(curl -s --max-time 10 http://\$a:8080/)\" = name=p7 ]"
check "beckond exits cleanly on SIGTERM (sanitizers quiet)" stop_daemon
no_pages() { ! pgrep -f "busybox httpd -f -p .* -h $T/run/" >/dev/null; }
check "no page process left" no_pages
finish
