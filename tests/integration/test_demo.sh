#!/usr/bin/env bash
# `make demo`'s script, run for real inside a network namespace of its own
# (so its fixed ports and bridge touch nothing on the host): it starts, a
# query boots a hello guest, curl gets the page, Ctrl-C leaves nothing.
. "$(dirname "$0")/lib.sh"
need_root "demo in a network namespace"
[ -f "$ROOT/build/hello.elf" ] || { not_ok "build/hello.elf is built"; finish; }

NS=bkt-demo-$$
ip netns add "$NS"
on_exit "ip netns del $NS"
ip -n "$NS" link set lo up
# Whatever still runs in the namespace at exit is the demo's.
on_exit "ip netns pids $NS | xargs -r kill -9; rm -rf /tmp/beckon-demo"
in_ns() { ip netns exec "$NS" "$@"; }

cd "$ROOT"
ip netns exec "$NS" conf/examples/demo.sh >"$T/demo.log" 2>&1 &
DEMO=$!
on_exit "kill -9 -$DEMO"
check "the demo says what to type next" wait_for 10 grep -q 'dig @127.0.0.1 -p 5353 www.svc.test' "$T/demo.log"
check "the demo's beckond answers its control socket" \
	wait_for 10 in_ns "$BECKONCTL" -s /tmp/beckon-demo/beckon.sock status
ans=$(in_ns dig @127.0.0.1 -p 5353 +time=10 +tries=1 +short www.svc.test)
check "dig www.svc.test answers 10.77.0.2 once the guest serves" [ "$ans" = 10.77.0.2 ]
page=$(in_ns curl -s -m 5 http://10.77.0.2/)
check "curl gets the www guest's page" grep -q 'hello from www' <<<"$page"
check "beckonctl list shows www ready" \
	bash -c "ip netns exec $NS '$BECKONCTL' -s /tmp/beckon-demo/beckon.sock list | grep -qE '^www +ready'"
kill -INT "$DEMO"
check "Ctrl-C ends the demo" wait_for 10 bash -c "! kill -0 $DEMO"
check "no process is left in the namespace" bash -c "[ -z \"\$(ip netns pids $NS)\" ]"
check "no tap or bridge is left in the namespace" bash -c "! ip -n $NS -o link | grep -qE 'beckon0|bk[0-9a-f]{4}'"
sed 's/^/# /' "$T/demo.log" | tail -5
finish
