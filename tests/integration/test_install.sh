#!/usr/bin/env bash
# Installing and running beckon as a service: `make install DESTDIR=...`
# lays out the tree README.md documents and `make uninstall` removes it;
# beckond.service is filled in and scored by systemd-analyze; Type=notify
# (READY=1 once the DNS port answers, RELOADING=1 and STOPPING=1) through a
# socket this test listens on, in journal mode (no timestamps, <N>
# priorities); the Debian package builds, is lintian clean, and its files
# run as the unit runs them (a user of its own with the unit's ambient
# capabilities): a DNS query boots the hello guest, QEMU unprivileged and
# sandboxed, and a restart stops the guest rather than leave it behind.
# Where the package's tools are missing (make deps installs them), those
# checks say skip.
. "$(dirname "$0")/lib.sh"

need_root "install"
cd "$ROOT"
IMG=$ROOT/build/hello.elf
[ -x build/beckond ] && [ -f "$IMG" ] || { not_ok "beckon is built (make)"; finish; }

# 1. make install with the defaults: the tree README.md's "Installing" shows.
D=$T/root
make -s install DESTDIR="$D" >"$T/install.log" 2>&1
check "make install DESTDIR=... succeeds" [ $? -eq 0 ]
awk '/<!-- install-tree -->/ { on = 1; next } on && /^```/ { if (++fence == 2) exit; next }
	on && /^\// { print $1 }' README.md | sort >"$T/documented"
(cd "$D" && find . -type f | sed 's|^\.||' | sort) >"$T/installed"
check "README.md documents the tree ($(wc -l <"$T/documented") files)" [ -s "$T/documented" ]
check "the installed files are the documented ones$(diff "$T/documented" "$T/installed" | grep '^[<>]' | tr '\n' ' ' | sed 's/^./: &/')" \
	cmp -s "$T/documented" "$T/installed"
check "the state directory is made 0700" [ "$(stat -c %a "$D/usr/local/var/lib/beckon")" = 700 ]
check "the unit names the installed paths" \
	grep -q '^ExecStart=/usr/local/sbin/beckond -c /usr/local/etc/beckon/beckon.conf$' "$D/usr/local/lib/systemd/system/beckond.service"
check "no @placeholder@ is left in the unit or the config" \
	bash -c "! grep -n '@[a-z]*@' '$D/usr/local/lib/systemd/system/beckond.service' '$D/usr/local/etc/beckon/beckon.conf'"
# The installed config is good (its image where this install put it).
sed "s|/usr/local/lib/beckon/hello.elf|$D/usr/local/lib/beckon/hello.elf|" \
	"$D/usr/local/etc/beckon/beckon.conf" >"$T/installed.conf"
out=$("$D/usr/local/sbin/beckond" -n -c "$T/installed.conf" 2>&1)
check "the installed beckond checks the installed config ($out)" [ "$out" = "configuration OK" ]
check "the installed man pages render" \
	bash -c "for p in '$D'/usr/local/share/man/man*/*; do [ -z \"\$(groff -man -ww -z \$p 2>&1)\" ] || exit 1; done"
if command -v systemd-analyze >/dev/null; then
	sed "s|/usr/local/|$D/usr/local/|g" "$D/usr/local/lib/systemd/system/beckond.service" >"$T/beckond.service"
	out=$(systemd-analyze verify --man=no "$T/beckond.service" 2>&1)
	check "systemd-analyze verify finds nothing wrong with the unit${out:+: $out}" [ -z "$out" ]
fi
echo "# my edit" >>"$D/usr/local/etc/beckon/beckon.conf"
make -s install DESTDIR="$D" >>"$T/install.log" 2>&1
check "a second install keeps an edited config" grep -q '^# my edit' "$D/usr/local/etc/beckon/beckon.conf"
make -s uninstall DESTDIR="$D" >>"$T/install.log" 2>&1
check "make uninstall succeeds" [ $? -eq 0 ]
left=$(cd "$D" && find . -type f | sed 's|^\.||')
check "make uninstall removes all but the edited config (left: $(echo $left))" \
	[ "$left" = /usr/local/etc/beckon/beckon.conf ]

# GNU variables: the Debian layout.
D2=$T/root2
make -s install DESTDIR="$D2" PREFIX=/usr sysconfdir=/etc localstatedir=/var unitdir=/lib/systemd/system >>"$T/install.log" 2>&1
check "PREFIX=/usr sysconfdir=/etc localstatedir=/var: the files go there" \
	bash -c "[ -x '$D2/usr/sbin/beckond' ] && [ -x '$D2/usr/bin/beckonctl' ] && [ -f '$D2/etc/beckon/beckon.conf' ] &&
		[ -d '$D2/var/lib/beckon' ] && [ -f '$D2/lib/systemd/system/beckond.service' ] &&
		[ -f '$D2/usr/share/man/man5/beckon.conf.5' ] && [ -f '$D2/usr/lib/beckon/hello.elf' ]"
names_them() {
	grep -q '^state_dir *= "/var/lib/beckon";' "$D2/etc/beckon/beckon.conf" &&
		grep -q 'image = "/usr/lib/beckon/hello.elf";' "$D2/etc/beckon/beckon.conf"
}
check "... and the config names them" names_them

# 2. The unit's hardening, scored.
UNIT=$ROOT/build/beckond.service
if systemd-analyze security --help 2>/dev/null | grep -q -- --offline; then
	score=$(systemd-analyze security --offline=yes "$UNIT" 2>/dev/null | sed -n 's/.*Overall exposure level for beckond.service: \([0-9.]*\).*/\1/p')
	echo "# systemd-analyze security: exposure $score"
	check "systemd-analyze security scores the unit at most 2.5 ($score)" \
		python3 -c "import sys; sys.exit(not (0 < float('${score:-99}') <= 2.5))"
else
	skip "systemd-analyze has no --offline here: the unit is not scored"
fi
check "the unit is Type=notify, reloads with SIGHUP, checks the config first" \
	bash -c "grep -q '^Type=notify$' '$UNIT' && grep -q '^ExecReload=/bin/kill -HUP \$MAINPID$' '$UNIT' &&
		grep -q '^ExecStartPre=.*beckond -n ' '$UNIT' && grep -q '^KillMode=mixed$' '$UNIT'"

# 3. Type=notify and the journal: beckond told of a notify socket that this
# test listens on, and of a journal stream that is its stderr.
DNS_PORT=$(free_port)
CONF=$T/notify.conf
base_conf "$CONF"
echo 'services = ( );' >>"$CONF"
NSOCK=$T/notify.sock
cat >"$T/notify.py" <<'EOF'
# Writes each datagram to OUT (newlines as "|"). At the first READY=1 it asks
# the DNS port at once, on a connected UDP socket: a port not bound yet
# refuses at once (ICMP) instead of timing out.
import os, socket, struct, sys
path, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
print("listening", flush=True)
ready_seen = False
with open(out, "a", buffering=1) as f:
    while True:
        msg = s.recv(4096).decode()
        f.write(msg.replace("\n", "|") + "\n")
        if "READY=1" in msg.split("\n") and not ready_seen:
            ready_seen = True
            q = struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0) + b"\x03ns1\x03svc\x04test\x00\x00\x01\x00\x01"
            d = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            d.settimeout(5)
            try:
                d.connect(("127.0.0.1", port))
                d.send(q)
                r = d.recv(4096)
                f.write("DNS answered at READY\n" if r[:2] == b"\x42\x42" else "DNS odd answer\n")
            except OSError as e:
                f.write("DNS not answering at READY: %s\n" % e)
EOF
python3 "$T/notify.py" "$NSOCK" "$DNS_PORT" "$T/notify.out" >"$T/notify.py.log" 2>&1 &
on_exit "kill $!"
wait_for 10 grep -q listening "$T/notify.py.log"
JLOG=$T/journal.log
: >"$JLOG"
JSTREAM=$(stat -c '%d:%i' "$JLOG")
NOTIFY_SOCKET=$NSOCK JOURNAL_STREAM=$JSTREAM "$BECKOND" -c "$CONF" >/dev/null 2>>"$JLOG" &
NPID=$!
on_exit "kill -9 $NPID"
check "READY=1 arrives" wait_for 30 grep -q '^READY=1' "$T/notify.out"
check "the DNS port answered as READY=1 arrived ($(grep DNS "$T/notify.out"))" \
	wait_for 10 grep -q '^DNS answered at READY' "$T/notify.out"
kill -HUP $NPID
check "SIGHUP: RELOADING=1, then READY=1 again" \
	wait_for 20 bash -c "grep -n . '$T/notify.out' | grep -A5 ':RELOADING=1' | grep -q ':READY=1'"
kill -TERM $NPID
check "SIGTERM: STOPPING=1" wait_for 20 grep -q '^STOPPING=1' "$T/notify.out"
wait_for 30 bash -c "! kill -0 $NPID"
check "into the journal: lines carry <N> and no timestamp ($(head -1 "$JLOG"))" \
	bash -c "grep -q '^<6>info: beckond' '$JLOG' && ! grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' '$JLOG'"
check "every line has its priority prefix" bash -c "! grep -v '^<[0-7]>' '$JLOG' | grep -q ."
sanitizer_clean "$JLOG" || not_ok "no sanitizer report in the journal run"
# A JOURNAL_STREAM that is not our stderr (inherited from a unit, say): timestamps as before.
NOTIFY_SOCKET=$NSOCK JOURNAL_STREAM=1:1 "$BECKOND" -c "$CONF" >/dev/null 2>"$T/nj.log" &
NPID=$!
on_exit "kill -9 $NPID"
wait_for 30 grep -q 'serving zone' "$T/nj.log"
kill -TERM $NPID
wait_for 30 bash -c "! kill -0 $NPID"
check "JOURNAL_STREAM naming another stream: timestamps stay" \
	grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z info: beckond' "$T/nj.log"

# 4. The Debian package.
if ! command -v dpkg-buildpackage >/dev/null || ! command -v dh >/dev/null; then
	skip "package: dpkg-buildpackage or debhelper is missing (make deps installs them)"
	finish
fi
make -s package >"$T/package.log" 2>&1
DEB=$(ls build/deb/beckon_*_amd64.deb 2>/dev/null | head -1)
check "make package builds the .deb ($(basename "${DEB:-none}"))" [ -n "$DEB" ]
[ -n "$DEB" ] || { tail -20 "$T/package.log" | sed 's/^/# /'; finish; }
dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's|^\./|/|' | grep -v '/$' | sort >"$T/deb.files"
sort >"$T/deb.want" <<'EOF'
/etc/beckon/beckon.conf
/lib/systemd/system/beckond.service
/usr/bin/beckonctl
/usr/lib/beckon/hello.elf
/usr/sbin/beckond
/usr/share/doc/beckon/changelog.gz
/usr/share/doc/beckon/copyright
/usr/share/doc/beckon/examples/beckon.conf
/usr/share/doc/beckon/examples/demo-user.conf
/usr/share/doc/beckon/examples/demo.conf
/usr/share/doc/beckon/examples/exec.conf
/usr/share/doc/beckon/examples/full.conf
/usr/share/doc/beckon/examples/hosts.conf
/usr/share/doc/beckon/examples/minimal.conf
/usr/share/doc/beckon/examples/pages.conf
/usr/share/doc/beckon/examples/routes.conf
/usr/share/lintian/overrides/beckon
/usr/share/man/man5/beckon.conf.5.gz
/usr/share/man/man8/beckonctl.8.gz
/usr/share/man/man8/beckond.8.gz
EOF
check "the package holds the files it should$(diff "$T/deb.want" "$T/deb.files" | grep '^[<>]' | tr '\n' ' ' | sed 's/^./: &/')" \
	cmp -s "$T/deb.want" "$T/deb.files"
check "/etc/beckon/beckon.conf is a conffile" \
	bash -c "dpkg-deb -e '$DEB' '$T/ctrl' && grep -qx /etc/beckon/beckon.conf '$T/ctrl/conffiles'"
check "postinst makes the beckon user, postrm removes it on purge" \
	bash -c "grep -q 'adduser --system' '$T/ctrl/postinst' && grep -q 'deluser' '$T/ctrl/postrm' && grep -q 'deb-systemd-helper' '$T/ctrl/postinst'"
if command -v lintian >/dev/null; then
	CHANGES=$(ls build/deb/beckon_*_amd64.changes | head -1)
	tags=$(lintian --tag-display-limit 0 -I -E --pedantic "$CHANGES" 2>&1 | grep -E '^[EWIPX]: ')
	check "lintian (pedantic) finds nothing beyond the overrides explained in debian/${tags:+: $tags}" [ -z "$tags" ]
else
	skip "lintian is not installed (make deps)"
fi

# Its files, run as beckond.service runs them: a user of its own, the
# unit's capabilities as ambient ones (systemd's AmbientCapabilities=).
P=$T/pkg
dpkg-deb -x "$DEB" "$P"
U=bkpkg$$
useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$U" ||
	{ not_ok "a test user $U is made"; finish; }
on_exit "userdel $U"
UNIT=$P/lib/systemd/system/beckond.service
caps=$(sed -n 's/^AmbientCapabilities=//p' "$UNIT" | tr 'A-Z ' 'a-z,' | sed 's/cap_/+/g')
bound=$(sed -n 's/^CapabilityBoundingSet=//p' "$UNIT" | tr 'A-Z ' 'a-z,' | sed 's/cap_/+/g')
check "the unit's ambient capabilities ($caps) are its bounding set" [ -n "$caps" ] && [ "$caps" = "$bound" ]
chmod 0711 "$T"
install -d -o "$U" -m 0700 "$T/pkgstate"
install -d -o "$U" -m 0750 "$T/pkgrun"
DNS_PORT=$(free_port)
LO=127.$((20 + RANDOM % 200)).$((1 + RANDOM % 250)).2
PORT=$(free_port)
sed -e "s|/var/lib/beckon|$T/pkgstate|" -e "s|/run/beckon/beckon.sock|$T/pkgrun/beckon.sock|" \
	-e "s|127.0.0.1:5353|127.0.0.1:$DNS_PORT|" -e "s|127.0.0.2|$LO|" -e "s|8080|$PORT|" \
	-e "s|\"/usr/lib/beckon/hello.elf\"|\"$P/usr/lib/beckon/hello.elf\"|" \
	-e "s|^metrics_listen .*|metrics_listen = \"\";|" \
	"$P/etc/beckon/beckon.conf" >"$T/pkg.conf"
chmod 0644 "$T/pkg.conf"
out=$("$P/usr/sbin/beckond" -n -c "$T/pkg.conf" 2>&1)
check "the packaged beckond checks the packaged config ($out)" [ "$out" = "configuration OK" ]
PLOG=$T/pkg.log
run_unit() {
	setpriv --reuid "$U" --regid "$U" --init-groups --inh-caps="-all,$caps" \
		--ambient-caps="-all,$caps" --bounding-set="-all,$bound" --no-new-privs \
		"$P/usr/sbin/beckond" -c "$T/pkg.conf" >>"$PLOG" 2>&1 &
	DPID=$!
	on_exit "kill -9 $DPID"
	DSOCK=$T/pkgrun/beckon.sock
	wait_for 30 "$BECKONCTL" -s "$DSOCK" status
}
MARK="guest=beckon:hello,"
on_exit "for p in \$(pgrep -u $U -f '$MARK'); do kill -9 \$p; done"
status_of() { sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status"; }
run_unit
check "the packaged beckond starts the unit's way, as $U ($(status_of $DPID Uid))" \
	[ "$(status_of $DPID Uid | awk '{print $1}')" = "$(id -u "$U")" ]
check "it keeps the unit's capabilities (only CAP_NET_ADMIN effective between binds), the ambient ones cleared for its children ($(status_of $DPID CapEff), ambient $(status_of $DPID CapAmb))" \
	[ "$(status_of $DPID CapEff) $(status_of $DPID CapPrm) $(status_of $DPID CapAmb)" = "0000000000001000 0000000000003400 0000000000000000" ]
ans=$(dig @127.0.0.1 -p "$DNS_PORT" +time=5 +tries=1 +short hello.svc.test A)
check "a DNS query for hello answers ($ans)" [ "$ans" = "$LO" ]
check "the hello guest serves through the proxy" \
	wait_for 30 bash -c "curl -s --max-time 5 http://$LO:$PORT/ | grep -q 'hello from hello'"
QPID=$(pgrep -u "$U" -f "$MARK")
check "its QEMU runs as $U with no capability, sandboxed ($(status_of "$QPID" CapEff), Seccomp $(status_of "$QPID" Seccomp))" \
	[ -n "$QPID" ] && [ "$(status_of "$QPID" CapEff) $(status_of "$QPID" Seccomp)" = "0000000000000000 2" ]
# A restart (an upgrade): SIGTERM to beckond alone (KillMode=mixed), then a new one.
kill -TERM $DPID
check "restart: the old beckond exits" wait_for 30 bash -c "! kill -0 $DPID"
check "restart: it stopped its guest and said so" grep -q 'shutting down; stopping 1 running instance' "$PLOG"
check "restart: no QEMU is left behind" bash -c "! pgrep -u $U -f '$MARK' >/dev/null"
run_unit
check "restart: the new beckond serves; the guest boots again on the next query" \
	bash -c "[ \"\$(dig @127.0.0.1 -p $DNS_PORT +time=5 +tries=1 +short hello.svc.test A)\" = $LO ] &&
		curl -s --max-time 10 http://$LO:$PORT/ | grep -q 'hello from hello'"
kill -TERM $DPID
wait_for 30 bash -c "! kill -0 $DPID"
check "no QEMU is left after the last stop" bash -c "! pgrep -u $U -f '$MARK' >/dev/null"

# 5. The package on this host, installed, removed and purged: only where
# neither the package nor a beckon user is here already (all goes at exit).
if dpkg-query -W -f='${Status}' beckon 2>/dev/null | grep -q installed ||
	getent passwd beckon >/dev/null || getent group beckon >/dev/null; then
	skip "dpkg -i: a beckon package or user is already on this host"
	finish
fi
on_exit "dpkg --purge beckon"
dpkg -i "$DEB" >"$T/dpkg.log" 2>&1
check "dpkg -i installs the package" [ $? -eq 0 ]
pw=$(getent passwd beckon)
check "postinst made the system user beckon, home /var/lib/beckon, no login ($pw)" \
	bash -c "[ \$(id -u beckon) -lt 1000 ] && [[ '$pw' == *:/var/lib/beckon:/usr/sbin/nologin ]]"
if getent group kvm >/dev/null; then
	check "beckon is in group kvm (for /dev/kvm)" bash -c "id -nG beckon | grep -qw kvm"
fi
check "beckond.service is enabled" [ -L /etc/systemd/system/multi-user.target.wants/beckond.service ]
check "the installed config checks (as the unit's ExecStartPre does)" \
	bash -c "/usr/sbin/beckond -n -c /etc/beckon/beckon.conf | grep -q 'configuration OK'"
if [ "$(cat /proc/1/comm)" = systemd ]; then
	check "systemctl start beckond: active" bash -c "systemctl start beckond && systemctl is-active -q beckond"
	check "systemctl stop beckond" systemctl stop beckond
else
	skip "systemd is not PID 1 here ($(cat /proc/1/comm)): the unit's way was run by hand above"
fi
dpkg -r beckon >>"$T/dpkg.log" 2>&1
check "dpkg -r: the programs go, the config and the user stay" \
	bash -c "[ ! -e /usr/sbin/beckond ] && [ -f /etc/beckon/beckon.conf ] && getent passwd beckon >/dev/null"
dpkg --purge beckon >>"$T/dpkg.log" 2>&1
check "dpkg --purge: no config, no state, no user or group, no enablement left" \
	bash -c "[ ! -e /etc/beckon ] && [ ! -e /var/lib/beckon ] && ! getent passwd beckon && ! getent group beckon &&
		[ ! -e /etc/systemd/system/multi-user.target.wants/beckond.service ] && ! dpkg-query -W beckon 2>/dev/null | grep -q ."
check "dpkg said nothing of failure" bash -c "! grep -iE 'error|warning' '$T/dpkg.log'"
finish
