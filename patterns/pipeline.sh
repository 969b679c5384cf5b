#!/usr/bin/env bash
#  Point-to-point pipeline: ventilator → zkit-proxy (pull@ → push@) → 3 workers → sink.
#
#      zkit-cat push>  ──▶  zkit-proxy pull@ push@  ──▶  zkit-worker ×3  ──▶  zkit-cat pull@
#
#  Each task goes to exactly one worker (round-robin by the proxy's push
#  socket); each worker upper-cases its task and tags it with its name; the
#  sink must get every task exactly once.
source "$(dirname "$0")/lib.sh"

tasks=${TASKS:-60}
workers=3

zk_start_out sink zkit-cat 'pull@tcp://127.0.0.1:*' -n "$tasks" --timeout 30 \
    --ready-file "$ZK_TMP/sink.ready"
sink_pid=${ZK_PIDS[-1]}
zk_start proxy zkit-proxy 'pull@tcp://127.0.0.1:*' 'push@tcp://127.0.0.1:*' \
    --ready-file "$ZK_TMP/proxy.ready"
zk_wait_ready "$ZK_TMP/sink.ready"
zk_wait_ready "$ZK_TMP/proxy.ready"
sink=$(zk_endpoint "$ZK_TMP/sink.ready" socket)
front=$(zk_endpoint "$ZK_TMP/proxy.ready" frontend)
back=$(zk_endpoint "$ZK_TMP/proxy.ready" backend)

for n in $(seq "$workers"); do
    zk_start "worker$n" zkit-worker --in "pull>$back" --out "push>$sink" \
        --ready-file "$ZK_TMP/worker$n.ready" -- sh -c "printf 'w$n '; tr a-z A-Z"
done
for n in $(seq "$workers"); do zk_wait_ready "$ZK_TMP/worker$n.ready"; done

echo "pipeline: sending $tasks tasks into $front"
seq -f 'task-%03g' "$tasks" | zkit-cat "push>$front" --timeout 10

rc=0
zk_wait_exit "$sink_pid" 30 || rc=$?
zk_check "sink exit status" 0 "$rc"
zk_check "tasks at the sink" "$tasks" "$(wc -l <"$ZK_TMP/sink.out")"
expected=$(seq -f 'TASK-%03g' "$tasks")
got=$(cut -d' ' -f2 "$ZK_TMP/sink.out" | sort)
zk_check "every task exactly once, processed" "$(echo "$expected" | md5sum)" "$(echo "$got" | md5sum)"
echo "pipeline: tasks per worker:" $(cut -d' ' -f1 "$ZK_TMP/sink.out" | sort | uniq -c | awk '{print $2"="$1}')
echo "pipeline: ok"
