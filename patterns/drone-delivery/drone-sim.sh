#!/bin/sh
#  The drone simulator: one flight job ("DELIVERY DRONE") from the queue
#  "flights". It publishes the drone's events on its own topic drone.DRONE
#  while it flies (loading, pickup, positions, delivered), DD_FLIGHT_STEP
#  seconds apart (default 0.4), and its result is "delivered DELIVERY by DRONE".
. "$DD_HOME/common.sh"
read -r id drone || true
valid_id "$id" && valid_id "$drone" || fail "drone-sim: bad flight '$id $drone'"
step=${DD_FLIGHT_STEP:-0.4}
{
    echo "drone.$drone $id loading"
    sleep "$step"
    echo "drone.$drone $id pickup"
    for leg in 1 2 3; do
        sleep "$step"
        echo "drone.$drone $id position $leg/3"
    done
    sleep "$step"
    echo "drone.$drone $id delivered"
} | zkit-cat "$DD_PUB" --wait-subscribers 1 --timeout 30 -q || fail "drone-sim: events of $id not sent"
printf 'delivered %s by %s' "$id" "$drone"
