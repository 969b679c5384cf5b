#!/usr/bin/env bash
#  test.sh — the drone-delivery system end to end, on loopback (make check
#  runs it through patterns/drone-delivery.sh). Every wait is on a condition
#  with a deadline. DD_N deliveries (default 50):
#   1. scheduled through the public API by 4 concurrent clients (every 10th
#      one also updated: Rescheduled), while Delivery History is SIGKILLed
#      once it has stored some events, stays down until delivery events wait
#      in its durable queue, and is restarted;
#   2. every one ends DeliveryComplete, and History holds its full event list
#      in order (the same as Delivery's, sequence numbers 1..k, Rescheduled
#      exactly when the update was answered "rescheduled");
#   3. a cancel is answered (cancelled, or refused clearly once in transit);
#   4. Drone Management down (SIGKILL): scheduling fails fast, naming it,
#      while status and history queries still answer;
#   5. trace.sh shows a delivery's path through every service and queue.
set -euo pipefail
n=${DD_N:-50}
export DD_RUN
DD_RUN=$(mktemp -d "${TMPDIR:-/tmp}/zk-drone.XXXXXX")
source "$(dirname "$0")/lib.sh"
DD_IDS=$DD_RUN/ids
source "$DD_HOME/checks.sh"
trap dd_finish EXIT
trap 'exit 130' INT TERM HUP PIPE
seq -f 'd%03g' "$n" >"$DD_IDS"

dd_up
queue="queue>$(dd_ep queue router)"
echo "drone-delivery: up ($(elapsed)); scheduling $n deliveries with 4 clients"

#  1. The clients: "schedule CUSTOMER PACKAGE ID", every 10th followed by "update ID".
for c in 0 1 2 3; do
    for i in $(seq "$n"); do
        [ $((i % 4)) -eq "$c" ] || continue
        id=$(printf 'd%03d' "$i")
        echo "schedule customer-$((i % 7)) parcel-$i $id"
        [ $((i % 10)) -ne 0 ] || echo "update $id"
    done >"$DD_RUN/client$c.in"
    dd_api scheduler --timeout 30 <"$DD_RUN/client$c.in" >"$DD_RUN/client$c.out" 2>"$DD_RUN/client$c.err" &
    echo "$!" >"$DD_RUN/client$c.pid"
done

#  History is SIGKILLed once it stored events of n/5 deliveries ...
deadline=$((SECONDS + 60))
while [ "$(ls "$DD_RUN/data/history" 2>/dev/null | wc -l)" -lt $(((n + 4) / 5)) ] && [ "$SECONDS" -lt "$deadline" ]; do
    sleep 0.05
done
dd_stop history-store KILL
dd_stop history-api KILL
stored=$(ls "$DD_RUN/data/history" | wc -l)
echo "drone-delivery: Delivery History SIGKILLed ($(elapsed)), it had events of $stored deliveries"
#  ... stays down until events wait for it in the durable queue (or the flights are over) ...
want=$((n < 10 ? n : 10))
deadline=$((SECONDS + 30))
while :; do
    waiting=$(zkit-cat --list "$queue/delivery-events" --timeout 5 2>/dev/null | wc -l)
    [ "$waiting" -lt "$want" ] && [ "$SECONDS" -lt "$deadline" ] || break
    sleep 0.05
done
answer=$(echo "history d001" | dd_api history --timeout 1 2>&1 || true)
echo "drone-delivery: $waiting delivery events wait in the queue; history query meanwhile: ${answer:-(no answer)}"
#  ... and is restarted.
dd_start history-store
dd_start history-api
dd_wait_file "$DD_RUN/ready/history-store" 20
dd_wait_file "$DD_RUN/ready/history-api" 20
echo "drone-delivery: Delivery History restarted ($(elapsed))"

for c in 0 1 2 3; do
    pid=$(cat "$DD_RUN/client$c.pid")
    deadline=$((SECONDS + 120))
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
    kill "$pid" 2>/dev/null || true #  still running after the deadline: it fails below
    rc=0
    wait "$pid" || rc=$?
    #  1 only if some update was refused (the drone had picked the parcel up).
    [ "$rc" -eq 0 ] || [ "$rc" -eq 1 ] || check "client$c exit status" 0 "$rc"
done
cat "$DD_RUN"/client?.out >"$DD_RUN/replies"
check "schedule requests answered 'scheduled'" "$n" "$(grep -c '^scheduled d' "$DD_RUN/replies" || true)"
grep '^rescheduled ' "$DD_RUN/replies" | awk '{print $2}' | sort >"$DD_RUN/rescheduled" || true
echo "drone-delivery: all scheduled ($(elapsed)); $(wc -l <"$DD_RUN/rescheduled") updates answered 'rescheduled'"

#  2. Every delivery ends DeliveryComplete, and History holds the same
#  events, in order, sequence numbers 1..k.
dd_wait_complete 120
echo "drone-delivery: all complete ($(elapsed))"
dd_check_histories 60
check "Rescheduled exactly for the updates answered 'rescheduled'" \
    "$(md5sum <"$DD_RUN/rescheduled")" "$(dd_expected | awk '$2 ~ /Rescheduled/ {print $1}' | md5sum)"
echo "drone-delivery: histories complete ($(elapsed)); $(dd_redelivered) events were delivered to History again after the SIGKILL"

#  3. A cancel.
reply=$(printf 'schedule alice parcel-c c001\ncancel c001\n' | dd_api scheduler --timeout 30 2>/dev/null | tail -n 1 || true)
case $reply in
    "cancelled c001") check "c001 after cancel" "c001 Cancelled" "$(echo "status c001" | dd_api delivery --timeout 10 | cut -d' ' -f1,2)" ;;
    *"cannot cancel c001"*) echo "  ok    cancel refused clearly: $reply" ;;
    *) check "cancel reply" "cancelled c001" "$reply" ;;
esac

#  Hostile or wrong requests get a clear error reply, and nothing else.
printf 'schedule ../etc parcel x1\nschedule blocked-eve parcel x2\nfly away\n' |
    dd_api scheduler --timeout 30 >"$DD_RUN/bad" 2>/dev/null || true
check "bad requests answered with clear errors" \
    "error: bad customer id|error: accounts refused 'check blocked-eve x2': accounts: customer blocked-eve is blocked|error: unknown request 'fly' (schedule CUSTOMER PACKAGE [ID], update ID, cancel ID)" \
    "$(paste -sd'|' "$DD_RUN/bad")"

#  4. Drone Management down: scheduling fails fast and clearly, queries answer.
dd_stop drones-api KILL
dd_stop drones-sim KILL
t0=$(date +%s%N)
rc=0
reply=$(echo "schedule alice parcel-z z001" | dd_api scheduler --timeout 30 2>/dev/null) || rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
echo "drone-delivery: with Drone Management down, schedule answered in $ms ms: $reply"
check "schedule exit status (an error reply)" 1 "$rc"
case $reply in "error: drones unavailable"*) r=clear ;; *) r="unclear: $reply" ;; esac
check "the error names Drone Management" clear "$r"
check "failed within 15 s" yes "$([ "$ms" -lt 15000 ] && echo yes || echo "no ($ms ms)")"
check "status query still answers" "d001 DeliveryComplete" \
    "$(echo "status d001" | dd_api delivery --timeout 5 | cut -d' ' -f1,2)"
check "history query still answers" "d001 1:Created" \
    "$(echo "history d001" | dd_api history --timeout 5 | cut -d' ' -f1,2 | cut -d@ -f1)"

#  5. The trace of a delivery: every hop, from the taps and the queue.
tid=$(head -n 1 "$DD_RUN/rescheduled")
tid=${tid:-d001} #  one that was rescheduled, if any
"$DD_HOME/trace.sh" "$tid" >"$DD_RUN/trace"
for where in scheduler accounts package drones delivery "queue flights" "queue delivery-events" forwarder; do
    check "trace $tid shows $where" yes "$(grep -q "^[0-9:.]*  $where " "$DD_RUN/trace" && echo yes || echo no)"
done
check "trace $tid: delivery events done in History's queue" \
    "$(dd_expected | awk -v id="$tid" '$1 == id { print split($2, e, ",") }')" \
    "$(grep -c 'queue delivery-events  done ' "$DD_RUN/trace")"
sed -n '1,12p' "$DD_RUN/trace" | sed 's/^/    /'
echo "    ..."
echo "drone-delivery: $([ "$failures" -eq 0 ] && echo ok || echo "$failures checks FAILED") ($(elapsed))"
[ "$failures" -eq 0 ]
