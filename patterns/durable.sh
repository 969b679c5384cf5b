#!/usr/bin/env bash
#  Durable point-to-point: nothing confirmed is lost, whatever crashes.
#
#      zkit-cat 'queue>…/orders'  ──▶  zkit-queue (on disk)  ──▶  zkit-worker --in 'queue>…/orders'
#                                                                  --out 'queue>…/shipped'
#
#  The producer's 40 orders are confirmed durable while no consumer exists;
#  the queue server is then SIGKILLed and restarted on the same data; a
#  worker processes every order (one of them always fails: after
#  --max-deliver attempts it lands in orders.dead with its reason), and a
#  consumer takes the results from the next queue.
source "$(dirname "$0")/lib.sh"

orders=${ORDERS:-40}

zk_start queue zkit-queue --data "$ZK_TMP/data" --max-deliver 2 'router@tcp://127.0.0.1:*' \
    --ready-file "$ZK_TMP/queue.ready"
queue_pid=${ZK_PIDS[-1]}
zk_wait_ready "$ZK_TMP/queue.ready"
server=$(zk_endpoint "$ZK_TMP/queue.ready" router)

echo "durable: putting $orders orders while no consumer exists"
rc=0
seq -f 'order-%02g' "$orders" | zkit-cat "queue>$server/orders" --timeout 10 || rc=$?
zk_check "producer exit status (every order confirmed durable)" 0 "$rc"

echo "durable: SIGKILL the queue server, restart it on the same data"
kill -KILL "$queue_pid"
wait "$queue_pid" 2>/dev/null || true
zk_start queue2 zkit-queue --data "$ZK_TMP/data" --max-deliver 2 'router@tcp://127.0.0.1:*' \
    --ready-file "$ZK_TMP/queue2.ready"
zk_wait_ready "$ZK_TMP/queue2.ready"
server=$(zk_endpoint "$ZK_TMP/queue2.ready" router)

#  The worker ships every order but order-13, which always fails.
zk_start worker zkit-worker --in "queue>$server/orders" --out "queue>$server/shipped" --jobs 4 \
    --ready-file "$ZK_TMP/worker.ready" \
    -- sh -c 'order=$(cat); [ "$order" != order-13 ] || exit 7; printf "shipped %s" "$order"'
zk_wait_ready "$ZK_TMP/worker.ready"

rc=0
zkit-cat "queue>$server/shipped" -n $((orders - 1)) --timeout 30 >"$ZK_TMP/shipped" || rc=$?
zk_check "consumer exit status" 0 "$rc"
zk_check "every other order shipped exactly once" \
    "$(seq -f 'shipped order-%02g' "$orders" | grep -v 'order-13$' | md5sum)" "$(sort "$ZK_TMP/shipped" | md5sum)"

#  The failing order reaches orders.dead after 2 attempts (bounded wait).
for _ in $(seq 200); do
    zkit-cat --list "queue>$server/orders.dead" >"$ZK_TMP/dead" 2>/dev/null || true
    [ -s "$ZK_TMP/dead" ] && break
    sleep 0.05
done
echo "durable: orders.dead holds: $(cat "$ZK_TMP/dead")"
zk_check "dead letters" 1 "$(wc -l <"$ZK_TMP/dead")"
zk_check "its attempts" 2 "$(awk '{print $2}' "$ZK_TMP/dead")"
rc=0
zkit-cat "queue>$server/orders.dead" -n 1 --timeout 10 >"$ZK_TMP/dead-body" || rc=$?
zk_check "the dead letter's body" order-13 "$(cat "$ZK_TMP/dead-body")"
echo "durable: ok"
