#!/usr/bin/env bash
#  One-way messaging with failure isolation: the sender does not wait for
#  the consumer. It hands its burst to zkit-proxy and exits while no consumer
#  exists yet; the proxy holds the burst (bounded by its high-water marks)
#  and the consumer, started afterwards, gets every message in order.
#
#      zkit-cat push>  ──▶  zkit-proxy pull@ push@  ──▶  (later) zkit-cat pull>
source "$(dirname "$0")/lib.sh"

burst=${BURST:-200}

zk_start proxy zkit-proxy 'pull@tcp://127.0.0.1:*' 'push@tcp://127.0.0.1:*' \
    --hwm 10000 --ready-file "$ZK_TMP/proxy.ready"
zk_wait_ready "$ZK_TMP/proxy.ready"
front=$(zk_endpoint "$ZK_TMP/proxy.ready" frontend)
back=$(zk_endpoint "$ZK_TMP/proxy.ready" backend)

echo "oneway: sender pushes a burst of $burst messages; no consumer is running"
rc=0
seq -f 'event %g' "$burst" | zkit-cat "push>$front" --timeout 10 || rc=$?
zk_check "sender exit status (carried on without a consumer)" 0 "$rc"

echo "oneway: consumer starts now"
rc=0
zkit-cat "pull>$back" -n "$burst" --timeout 20 >"$ZK_TMP/consumer.out" || rc=$?
zk_check "consumer exit status" 0 "$rc"
zk_check "messages received" "$burst" "$(wc -l <"$ZK_TMP/consumer.out")"
zk_check "in order, none lost" "$(seq -f 'event %g' "$burst" | md5sum)" "$(md5sum <"$ZK_TMP/consumer.out")"
echo "oneway: ok"
