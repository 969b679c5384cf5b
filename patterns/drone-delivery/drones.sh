#!/bin/sh
#  Drone Management:
#    assign DELIVERY           -> "D07": a drone of the fleet (DD_FLEET, default 100)
#    dispatch DELIVERY DRONE   -> "dispatched DELIVERY DRONE JOBID": the flight is an
#                                 async job on the queue "flights" (drone-sim.sh flies it)
. "$DD_HOME/common.sh"
read -r verb id drone rest || true
valid_id "$id" || fail "drones: bad delivery id"
mkdir -p "$DD_DATA/drones"
case $verb in
    assign)
        exec 9>>"$DD_DATA/drones/lock"
        flock 9
        n=$(cat "$DD_DATA/drones/next" 2>/dev/null || echo 0)
        echo $((n + 1)) >"$DD_DATA/drones/next"
        drone=D$(printf '%02d' $((n % ${DD_FLEET:-100})))
        printf '%s %s\n' "$id" "$drone" >>"$DD_DATA/drones/assignments"
        printf '%s' "$drone" ;;
    dispatch)
        valid_id "$drone" || fail "drones: bad drone id"
        job=$(printf '%s %s' "$id" "$drone" | zkit-cat --submit "$DD_QUEUE/flights" --timeout 5 -q) ||
            fail "drones: flight of $id not confirmed by the queue"
        printf 'dispatched %s %s %s' "$id" "$drone" "$job" ;;
    *) fail "drones: unknown request '$verb'" ;;
esac
