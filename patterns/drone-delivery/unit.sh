#!/usr/bin/env bash
#  unit.sh UNIT: run one unit of the system in the foreground (exec: the unit's
#  pid is the process's). lib.sh's dd_start calls it; DD_RUN names the run
#  directory. Addresses come from the environment, never from the code:
#    DD_HUB_ADDR   address the hub's devices bind (default 127.0.0.1)
#  Service units learn the hub's endpoints from its ready files.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
unit=$1
hub=${DD_HUB_ADDR:-127.0.0.1}
ready=$DD_RUN/ready/$unit
data=$DD_RUN/data

#  Taps: a pull socket that a device's --capture pushes its copies to, each
#  copy written as one JSON line with the time it was seen in front.
tap() {
    exec bash -c 'zkit-cat "pull@tcp://127.0.0.1:*" --format json --ready-file "$1" |
        exec perl -MTime::HiRes=time -ne '\''BEGIN { $| = 1 } printf "%.6f %s", time, $_'\'' >>"$2"' \
        tap "$ready" "$DD_RUN/taps/$1.jsonl"
}

#  Every service script needs the hub's endpoints: exported once here.
service_env() {
    export DD_QUEUE="queue>$(dd_ep queue router)"
    export DD_PUB="pub>$(dd_ep fwd frontend)" DD_SUB="sub>$(dd_ep fwd backend)"
    local s
    for s in $DD_SERVICES; do
        export "DD_REQ_${s^^}=req>$(dd_ep "proxy-$s" frontend)"
    done
}

#  A service answering requests through its proxy (ZKW/1, --lb).
lb_worker() {
    local service=$1 jobs=$2
    shift 2
    service_env
    exec zkit-worker --lb --in "dealer>$(dd_ep "proxy-$service" backend)" -j "$jobs" \
        --timeout 30 --ready-file "$ready" -- "$@"
}

case $unit in
    queue)
        mkdir -p "$data/queue"
        exec zkit-queue --data "$data/queue" --lease "${DD_LEASE:-10}" --result-ttl 3600 \
            "router@tcp://$hub:*" --ready-file "$ready" ;;
    tap-*) tap "${unit#tap-}" ;;
    fwd)
        exec zkit-forwarder "xsub@tcp://$hub:*" "xpub@tcp://$hub:*" \
            --capture "push>$(dd_ep tap-fwd socket)" --ready-file "$ready" ;;
    proxy-*)
        exec zkit-proxy --lb "router@tcp://$hub:*" "router@tcp://$hub:*" \
            --capture "push>$(dd_ep "tap-${unit#proxy-}" socket)" --ready-file "$ready" ;;
    scheduler | scheduler-*) lb_worker scheduler 4 "$DD_HOME/scheduler.sh" ;; #  two: load-balanced
    accounts) lb_worker accounts 4 "$DD_HOME/accounts.sh" ;;
    package) lb_worker package 4 "$DD_HOME/package.sh" ;;
    drones-api) lb_worker drones 4 "$DD_HOME/drones.sh" ;;
    delivery-api) lb_worker delivery 4 "$DD_HOME/delivery.sh" ;;
    history-api) lb_worker history 4 "$DD_HOME/history.sh" query ;;
    drones-sim)
        #  Flights are async jobs on the queue "flights": durable, a flight
        #  whose simulator died is flown again.
        service_env
        exec zkit-worker --in "$DD_QUEUE/flights" -j 64 --name drone-sim \
            --ready-file "$ready" -- "$DD_HOME/drone-sim.sh" ;;
    delivery-events)
        #  Drone events, fan-out: every drone's topic (drone.ID).
        service_env
        exec zkit-worker --in "$DD_SUB" --subscribe drone. -j 4 --timeout 30 \
            --ready-file "$ready" -- "$DD_HOME/delivery.sh" drone-event ;;
    delivery-notify)
        #  Delivery events, fan-out: the pluggable notify command gets each one
        #  on stdin ("delivery.ID ID SEQ EVENT TIME DRONE msg=MSGID").
        service_env
        exec zkit-worker --in "$DD_SUB" --subscribe delivery. -j 2 --timeout 30 \
            --ready-file "$ready" -- ${DD_NOTIFY:-"$DD_HOME/notify.sh"} ;;
    history-store)
        #  Delivery events, durable: acked once stored, redelivered otherwise.
        service_env
        exec zkit-worker --in "$DD_QUEUE/delivery-events" -j 4 --name history-store \
            --ready-file "$ready" -- "$DD_HOME/history.sh" store ;;
    *) echo "unit.sh: unknown unit '$unit'" >&2; exit 2 ;;
esac
