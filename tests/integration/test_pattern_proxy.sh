#!/usr/bin/env bash
# A pattern service behind the proxy (bridge mode, hold "proxy"): exec
# pages, a python HTTP server per name on an address of the pool (a
# loopback range). DNS answers a new name's address at once; the client's
# connection to it is redirected to the proxy (one rule for the whole
# pool, in place before any name is answered), held while the page boots
# and relayed to it; each name reaches its own page, also side by side;
# a connection to a pool address with no instance is reset; an idle page
# is forgotten and its name boots again on the next query.
. "$(dirname "$0")/lib.sh"

need_root "pattern services behind the proxy (nat REDIRECT, bridge mode)"
for tool in curl python3 dig iptables; do
	command -v $tool >/dev/null || { not_ok "$tool is installed"; finish; }
done

DNS_PORT=$(free_port)
CONF=$T/beckon.conf
NET=$(fresh_net 10.74)
LO=127.$((20 + RANDOM % 200)).$((1 + RANDOM % 250))
BR=bkpq$$
P=pq$$
CHAIN=BECKON-PROXY-$BR
on_exit_proxy_bridge "$BR" "$LO"

mkdir -p "$T/img"
for l in alpha beta gamma delta; do : >"$T/img/$l"; done

base_conf "$CONF"
sed -i "s|^network = .*|network = { mode = \"bridge\"; bridge = \"$BR\"; subnet = \"$NET.0/24\"; hold = \"proxy\"; };|" "$CONF"
add_services "$CONF" <<CONF
  { name = "$P"; dns = ( "*.pages.svc.test" ); address_pool = "$LO.10-$LO.19"; ports = ( 8080 );
    backend = "exec"; image = "$T/img/{label}"; ready = "tcp"; boot_timeout = "60s";
    idle_timeout = "20s"; on_idle = "destroy"; exec = { command = "python3 $ROOT/tests/fixtures/httpsrv.py {address} 8080 name={label} 0.5"; }; },
CONF

out=$("$BECKOND" -n -c "$CONF" 2>&1)
check "beckond -n accepts a pattern service under hold proxy in bridge mode ($out)" [ "$out" = "configuration OK" ]
start_daemon "$CONF" || { not_ok "beckond starts"; finish; }
ok "beckond starts"
check "one rule redirects the whole pool to the proxy, before any query" \
	wait_for 30 bash -c "iptables -w -t nat -S $CHAIN | grep -q -- '--dst-range $LO.10-$LO.19 .*--dport 8080 -j REDIRECT'"

dqa() { dig @127.0.0.1 -p "$DNS_PORT" +time=60 +tries=1 "$@"; }
a=$(dqa +short alpha.pages.svc.test A)
check "a new name is answered at once with a pool address ($a)" bash -c "[[ '$a' == $LO.1? ]]"
got=$(curl -s --max-time 60 -w ' %{http_code} %{time_total}' "http://$a:8080/" | tr -d '\n')
check "its first connection is held while it boots, then served ($got)" \
	bash -c "[[ '$got' == 'name=alpha 200 '* ]]"
# The page listens half a second after it starts: a connection not held would be refused.
check "... held: it took longer than the page's start (${got##* } s)" \
	python3 -c "import sys; sys.exit(not ${got##* } >= 0.45)"

# Two more side by side, each its own page.
b=$(dqa +short beta.pages.svc.test A)
g=$(dqa +short gamma.pages.svc.test A)
curl -s --max-time 60 "http://$b:8080/" >"$T/b" &
cb=$!
curl -s --max-time 60 "http://$g:8080/" >"$T/g" &
cg=$!
wait $cb $cg
check "two names side by side, each its own page ($b: $(cat "$T/b"), $g: $(cat "$T/g"))" \
	bash -c "[ '$b' != '$g' ] && [ \"\$(cat $T/b)\" = name=beta ] && [ \"\$(cat $T/g)\" = name=gamma ]"
got=$(curl -s --max-time 30 "http://$a:8080/")
check "a ready page is still reached ($got)" [ "$got" = "name=alpha" ]

# An address of the pool that no name holds: reset, not held.
free=
for i in $(seq 10 19); do
	case " $a $b $g " in *" $LO.$i "*) ;; *) free=$LO.$i; break ;; esac
done
s=$(date +%s%N)
curl -s --max-time 20 "http://$free:8080/" >/dev/null 2>&1
rc=$?
ms=$((($(date +%s%N) - s) / 1000000))
check "a pool address with no instance is refused at once (curl exit $rc, ${ms} ms)" \
	bash -c "[ $rc = 56 ] || [ $rc = 52 ] || [ $rc = 7 ]"

# Idle: forgotten, then booted again by the next query.
check "idle pages are forgotten (on_idle destroy)" \
	wait_for 90 bash -c "grep -q 'alpha\\.$P: stopped, forgotten' '$DLOG'"
a2=$(dqa +short alpha.pages.svc.test A)
got=$(curl -s --max-time 60 "http://$a2:8080/")
check "the name boots again on the next query and is served ($got)" [ "$got" = "name=alpha" ]
check "beckond exits cleanly on SIGTERM (sanitizers quiet)" stop_daemon
check "... and removes its chain" bash -c "! iptables -w -t nat -S $CHAIN >/dev/null 2>&1"
finish
