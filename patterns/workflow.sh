#!/usr/bin/env bash
#  A workflow check-pointed per step: jobs survive SIGKILLed workers.
#
#      zkit-cat --submit ─▶ step1 ─▶ 2 x zkit-worker ─FWD─▶ step2 ─▶ 2 x zkit-worker
#                                     ─FWD─▶ step3 ─▶ 2 x zkit-worker (ack: the result)
#
#  One zkit-queue holds the three step queues. Each step is served by two
#  workers (--in stepK --out stepK+1: the hand-over is one atomic FWD on
#  the server, the job id travels). JOBS jobs are submitted while one
#  worker of each step is SIGKILLed at a random moment (not restarted:
#  the other worker of the step carries on, and the killed one's jobs are
#  delivered to it again). Every job must end done exactly once in step3:
#  its status (TRACE) shows exactly the path step1, step2, step3, each
#  done, and its result went through the three steps once.
source "$(dirname "$0")/lib.sh"

jobs=${JOBS:-100}

zk_start queue zkit-queue --data "$ZK_TMP/data" 'router@tcp://127.0.0.1:*' \
    --ready-file "$ZK_TMP/queue.ready"
zk_wait_ready "$ZK_TMP/queue.ready"
server=$(zk_endpoint "$ZK_TMP/queue.ready" router)

#  Step K appends its input to stepK.log, works a while (0 to 80 ms: the
#  load, not a wait) and outputs its input with " sK" appended.
declare -A victim
for step in 1 2 3; do
    script="body=\$(cat); printf '%s\\n' \"\$body\" >>'$ZK_TMP/step$step.log'"
    script="$script; sleep 0.0\$((\$\$ % 9)); printf '%s s$step' \"\$body\""
    out=()
    [ "$step" -lt 3 ] && out=(--out "queue>$server/step$((step + 1))")
    for which in a b; do
        zk_start "step$step-$which" zkit-worker --in "queue>$server/step$step" "${out[@]}" \
            --name "step$step-$which" --jobs 2 --ready-file "$ZK_TMP/step$step-$which.ready" \
            -- sh -c "$script"
        [ "$which" = a ] && victim[$step]=${ZK_PIDS[-1]}
    done
done
for step in 1 2 3; do
    for which in a b; do zk_wait_ready "$ZK_TMP/step$step-$which.ready"; done
done

#  The killer: one worker of each step, at a random moment of the run
#  (0.1 to 0.9 s after the one before: the pauses are the randomness).
(
    for step in 1 2 3; do
        sleep "0.$((RANDOM % 8 + 1))"
        kill -KILL "${victim[$step]}" 2>/dev/null && echo "workflow: SIGKILLed step$step-a"
    done
) &
killer=$!

echo "workflow: submitting $jobs jobs to step1"
for n in $(seq -f '%03g' "$jobs"); do
    printf 'job-%s' "$n" | zkit-cat --submit "queue>$server/step1" --timeout 10 >>"$ZK_TMP/ids"
done
zk_check "job ids" "$jobs" "$(sort -u "$ZK_TMP/ids" | wc -l)"
wait "$killer"
for step in 1 2 3; do wait "${victim[$step]}" 2>/dev/null || true; done

#  Every job ends done: --wait prints its result.
rc=0
while read -r id; do
    zkit-cat --wait "$id" "queue>$server/step1" --timeout 30 >>"$ZK_TMP/results" || rc=$?
    echo >>"$ZK_TMP/results"
done <"$ZK_TMP/ids"
zk_check "every --wait exit status" 0 "$rc"
zk_check "every result, once, through the three steps" \
    "$(seq -f 'job-%03g s1 s2 s3' "$jobs" | md5sum)" "$(sort "$ZK_TMP/results" | md5sum)"

#  Every job's status: done, and its path exactly step1, step2, step3, each done once.
bad=0
example=$(sed -n "$((RANDOM % jobs + 1))p" "$ZK_TMP/ids")
while read -r id; do
    zkit-cat --status "$id" "queue>$server/step1" --timeout 10 >"$ZK_TMP/status"
    path=$(awk 'NR > 1 && NF >= 2 && $1 != "result:" { q = ($1 == "path:") ? $2 " " $3 : $1 " " $2; printf "%s,", q }' \
        "$ZK_TMP/status")
    if [ "$(head -n 1 "$ZK_TMP/status" | cut -d' ' -f1)" != "done" ] \
        || [ "$path" != "step1 done,step2 done,step3 done," ]; then
        echo "  job $id:" >&2
        cat "$ZK_TMP/status" >&2
        bad=$((bad + 1))
    fi
    #  Show a job that was delivered more than once somewhere, if any.
    grep -q 'attempts=[2-9]' "$ZK_TMP/status" && example=$id
done <"$ZK_TMP/ids"
zk_check "jobs not done exactly once in step3 (by their status)" 0 "$bad"

#  Nothing is left waiting or leased in any step.
for step in 1 2 3; do
    zk_check "messages left in step$step" 0 "$(zkit-cat --list "queue>$server/step$step" | wc -l)"
done
for step in 1 2 3; do
    runs=$(grep -c . "$ZK_TMP/step$step.log")
    echo "workflow: step$step ran $runs times for $jobs jobs ($((runs - jobs)) again after a kill)"
done

echo "workflow: the status of one job (zkit-cat --status ID 'queue>…/step1'):"
zkit-cat --status "$example" "queue>$server/step1" | sed 's/^/    /'
echo "workflow: ok"
