#!/usr/bin/env bash
#  Request-response: clients → zkit-proxy (router@ → dealer@) → 3 services
#  made by zkit-worker from a shell command. Every request gets its own
#  answer back (the proxy keeps the routing envelope).
#
#      zkit-cat req> ×3  ──▶  zkit-proxy router@ dealer@  ──▶  zkit-worker --in rep> ×3
source "$(dirname "$0")/lib.sh"

requests=${REQUESTS:-10}

zk_start proxy zkit-proxy 'router@tcp://127.0.0.1:*' 'dealer@tcp://127.0.0.1:*' \
    --ready-file "$ZK_TMP/proxy.ready"
zk_wait_ready "$ZK_TMP/proxy.ready"
front=$(zk_endpoint "$ZK_TMP/proxy.ready" frontend)
back=$(zk_endpoint "$ZK_TMP/proxy.ready" backend)

for n in 1 2 3; do
    zk_start "service$n" zkit-worker --in "rep>$back" --ready-file "$ZK_TMP/service$n.ready" \
        -- sh -c "printf 'service$n: '; tr a-z A-Z"
done
for n in 1 2 3; do zk_wait_ready "$ZK_TMP/service$n.ready"; done

pids=()
for c in 1 2 3; do
    seq -f "client$c request %g" "$requests" >"$ZK_TMP/client$c.in"
    zk_start_out "client$c" zkit-cat "req>$front" --timeout 10 <"$ZK_TMP/client$c.in"
    pids+=("${ZK_PIDS[-1]}")
done

for c in 1 2 3; do
    rc=0
    zk_wait_exit "${pids[$((c - 1))]}" 30 || rc=$?
    zk_check "client$c exit status" 0 "$rc"
    zk_check "client$c got its own answers, in order" \
        "$(tr a-z A-Z <"$ZK_TMP/client$c.in" | md5sum)" "$(sed 's/^service[0-9]: //' "$ZK_TMP/client$c.out" | md5sum)"
done
echo "reqrep: answers per service:" $(cat "$ZK_TMP"/client*.out | cut -d: -f1 | sort | uniq -c | awk '{print $2"="$1}')
echo "reqrep: ok"
