#!/usr/bin/env bash
# `make demo`: run beckond in the foreground with the demo config (bridge
# networking as root, user networking otherwise) and say what to type next.
set -eu
cd "$(dirname "$0")/../.."
if [ "$(id -u)" -eq 0 ]; then
	conf=conf/examples/demo.conf
	url=http://10.77.0.2/
else
	conf=conf/examples/demo-user.conf
	url=http://127.0.0.2:8080/
fi
mkdir -p /tmp/beckon-demo
build/beckond -n -c "$conf" >/dev/null
cat <<TXT

  beckon demo: zone svc.test on 127.0.0.1:5353, services www, api and blog
  ($conf). In another terminal:

    dig @127.0.0.1 -p 5353 www.svc.test      # boots the www guest, answers once it serves
    curl $url                 # the guest's page
    build/beckonctl -s /tmp/beckon-demo/beckon.sock list
    curl -s http://127.0.0.1:9153/metrics | grep beckon_boot

  Ctrl-C stops beckond and every guest it started.

TXT
exec build/beckond -c "$conf"
