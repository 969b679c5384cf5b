#!/bin/sh
#  Delivery. Requests (through its proxy):
#    create ID CUSTOMER DRONE  -> "created ID"           (event Created)
#    reschedule ID             -> "rescheduled ID"       (event Rescheduled; not once in transit)
#    cancel ID                 -> "cancelled ID"         (event Cancelled; not once in transit)
#    status ID                 -> "ID STATE drone=D pos=P events=Created,InTransit,..."
#  "delivery.sh drone-event" takes one drone event from the fan-out
#  ("drone.DRONE ID loading|pickup|position N/3|delivered") and turns it into
#  delivery events: InTransit at pickup, DeliveryComplete at delivered.
#  Each delivery event "ID SEQ EVENT TIME DRONE" is put into the durable queue
#  delivery-events (Delivery History's input; confirmed before the state
#  changes), then published on the topic delivery.ID with the queue's message
#  id: the notifier (unit delivery-notify runs DD_NOTIFY for each), the live
#  view and the forwarder's capture tap (trace.sh) take it from there.
. "$DD_HOME/common.sh"
store=$DD_DATA/delivery
mkdir -p "$store"
if [ "${1:-}" = drone-event ]; then
    read -r topic id what detail || true
    verb=drone-$what
else
    read -r verb id customer drone rest || true
fi
valid_id "$id" || fail "delivery: bad delivery id"

#  One delivery's state: "STATE SEQ DRONE CUSTOMER POSITION EVENTS", under a lock.
exec 9>>"$store/$id.lock"
flock 9
state=none seq=0 position=- events=
[ -s "$store/$id" ] && read -r state seq drone customer position events <"$store/$id"

save() {
    printf '%s %s %s %s %s %s\n' "$state" "$seq" "$drone" "$customer" "$position" "$events" \
        >"$store/$id.tmp"
    mv "$store/$id.tmp" "$store/$id"
}

emit() {
    seq=$((seq + 1))
    at=$(now)
    record="$id $seq $1 $at $drone"
    msg=
    for _ in 1 2 3; do
        msg=$(printf '%s' "$record" | zkit-cat --submit "$DD_QUEUE/delivery-events" --timeout 5 -q) &&
            break
    done
    [ -n "$msg" ] || fail "delivery: event $1 of $id not confirmed by the queue"
    state=$1
    events=${events:+$events,}$1
    save
    printf 'delivery.%s %s msg=%s\n' "$id" "$record" "$msg" |
        zkit-cat "$DD_PUB" --wait-subscribers 1 --timeout 2 -q 2>/dev/null || true
}

case $verb in
    create)
        [ "$state" = none ] || fail "delivery: $id exists ($state)"
        valid_id "$customer" && valid_id "$drone" || fail "delivery: bad customer or drone"
        emit Created
        printf 'created %s' "$id" ;;
    reschedule | cancel)
        case $state in
            Created | Rescheduled) ;;
            none) fail "delivery: no delivery $id" ;;
            *) fail "delivery: cannot $verb $id: it is $state" ;;
        esac
        if [ "$verb" = cancel ]; then
            emit Cancelled
            printf 'cancelled %s' "$id"
        else
            emit Rescheduled
            printf 'rescheduled %s' "$id"
        fi ;;
    status)
        [ "$state" != none ] || fail "delivery: no delivery $id"
        printf '%s %s drone=%s pos=%s events=%s' "$id" "$state" "$drone" "$position" "$events" ;;
    drone-pickup | drone-delivered | drone-position | drone-loading)
        #  Events of an unknown or cancelled delivery, or late ones, change nothing.
        case $state in none | Cancelled | DeliveryComplete) exit 0 ;; esac
        case $verb in
            drone-loading) position=base ;;
            drone-position) position=leg-${detail%%/*} ;;
            drone-pickup) [ "$state" = InTransit ] || emit InTransit ;;
            drone-delivered)
                [ "$state" = InTransit ] || emit InTransit
                position=destination
                emit DeliveryComplete ;;
        esac
        save ;;
    *) fail "delivery: unknown request '$verb'" ;;
esac
