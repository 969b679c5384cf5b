#!/usr/bin/env bash
#  drone-delivery/lib.sh — what run.sh, the tests and the tools share. Source it
#  with DD_RUN set (the run directory: ready files, logs, data, capture taps).
#
#  The system is a list of *units*, each ONE process started by unit.sh NAME:
#    hub units     queue, the forwarder, one zkit-proxy --lb per service and a
#                  capture tap per device (they bind; addresses from DD_HUB_ADDR)
#    service units zkit-workers running this directory's scripts (they connect)
#  Each unit runs in a process group of its own (set -m), so that stopping it
#  (dd_stop) also stops what it runs. With DD_NETNS=PREFIX set, a unit runs in
#  the network namespace PREFIX-SERVICE (netns-test.sh sets them up).

DD_HOME=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ZK_ROOT=$(cd "$DD_HOME/../.." && pwd)
ZK_BIN=${ZK_BIN:-$ZK_ROOT/build/bin}
export PATH="$ZK_BIN:$PATH" ZK_BIN DD_HOME
for zk_tool in zkit-proxy zkit-forwarder zkit-worker zkit-cat zkit-queue; do
    [ -x "$ZK_BIN/$zk_tool" ] || { echo "$0: $ZK_BIN/$zk_tool not built (run make)" >&2; exit 1; }
done
: "${DD_RUN:?DD_RUN must name the run directory}"
export DD_RUN
mkdir -p "$DD_RUN"/{ready,log,pid,taps,data}

#  The services behind a zkit-proxy --lb each, and every unit in start order.
DD_SERVICES="scheduler accounts package drones delivery history"
DD_HUB_UNITS="queue tap-fwd fwd"
for s in $DD_SERVICES; do DD_HUB_UNITS="$DD_HUB_UNITS tap-$s proxy-$s"; done
DD_SERVICE_UNITS="accounts package drones-api drones-sim delivery-api delivery-events delivery-notify
    history-store history-api scheduler scheduler-2"

#  dd_wait_file FILE [SECONDS]: wait (polling, bounded) until FILE is non-empty.
dd_wait_file() {
    local file=$1 tries=$((${2:-10} * 20))
    while [ ! -s "$file" ]; do
        tries=$((tries - 1))
        [ "$tries" -gt 0 ] || { echo "$0: timed out waiting for $file" >&2; return 1; }
        sleep 0.05
    done
}

#  dd_ep UNIT ROLE: the endpoint UNIT's ready file gives for ROLE.
dd_ep() {
    awk -v role="$2" '$1 == role { print $2; exit }' "$DD_RUN/ready/$1"
}

#  dd_ns UNIT: the namespace a unit runs in ("" without DD_NETNS).
dd_ns() {
    [ -n "${DD_NETNS:-}" ] || return 0
    case $1 in
        queue | fwd | tap-* | proxy-*) echo "$DD_NETNS-hub" ;;
        *) echo "$DD_NETNS-${1%%-*}" ;;
    esac
}

#  dd_start UNIT: start it in the background, in its own process group.
dd_start() {
    local unit=$1 ns
    ns=$(dd_ns "$unit")
    rm -f "$DD_RUN/ready/$unit"
    set -m
    if [ -n "$ns" ]; then
        ip netns exec "$ns" "$DD_HOME/unit.sh" "$unit" </dev/null >>"$DD_RUN/log/$unit.log" 2>&1 &
    else
        "$DD_HOME/unit.sh" "$unit" </dev/null >>"$DD_RUN/log/$unit.log" 2>&1 &
    fi
    echo "$!" >"$DD_RUN/pid/$unit"
    disown "$!" #  no "Killed" notice when a test SIGKILLs it
    set +m
}

#  dd_stop UNIT [SIGNAL]: signal the unit's process group (default TERM) and
#  wait (bounded: 5 s, then SIGKILL) until its leader is gone.
dd_stop() {
    local unit=$1 sig=${2:-TERM} pid
    [ -s "$DD_RUN/pid/$unit" ] || return 0
    pid=$(cat "$DD_RUN/pid/$unit")
    rm -f "$DD_RUN/pid/$unit"
    kill -"$sig" -- -"$pid" 2>/dev/null || return 0
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -KILL -- -"$pid" 2>/dev/null || true
}

#  dd_up: start the hub, then every service; return once all are ready.
dd_up() {
    local unit
    #  The queue and the taps first (the devices push their captures to the
    #  taps), then the devices, then the services (they connect to the devices).
    for unit in $DD_HUB_UNITS; do
        case $unit in queue | tap-*) dd_start "$unit" ;; esac
    done
    for unit in $DD_HUB_UNITS; do
        case $unit in queue | tap-*) dd_wait_file "$DD_RUN/ready/$unit" 20 || return 1 ;; esac
    done
    for unit in $DD_HUB_UNITS; do
        case $unit in fwd | proxy-*) dd_start "$unit" ;; esac
    done
    for unit in $DD_HUB_UNITS; do dd_wait_file "$DD_RUN/ready/$unit" 20 || return 1; done
    for unit in $DD_SERVICE_UNITS; do dd_start "$unit"; done
    for unit in $DD_SERVICE_UNITS; do dd_wait_file "$DD_RUN/ready/$unit" 20 || return 1; done
}

#  dd_down: stop every unit still running (services first, then the hub).
dd_down() {
    local unit
    for unit in $DD_SERVICE_UNITS $DD_HUB_UNITS; do
        [ -s "$DD_RUN/pid/$unit" ] && kill -TERM -- -"$(cat "$DD_RUN/pid/$unit")" 2>/dev/null
    done
    for unit in $DD_SERVICE_UNITS $DD_HUB_UNITS; do dd_stop "$unit"; done
}

#  dd_api SERVICE [zkit-cat options]: requests on stdin (one per line) to
#  SERVICE's public frontend, one reply line each on stdout.
dd_api() {
    local service=$1
    shift
    zkit-cat "req>$(dd_ep "proxy-$service" frontend)" "$@"
}
