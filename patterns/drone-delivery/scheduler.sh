#!/bin/sh
#  Delivery Scheduler, the public API (request-response through its proxy):
#    schedule CUSTOMER PACKAGE [ID] -> "scheduled ID drone=DRONE flight=JOBID"
#    update ID                      -> "rescheduled ID"
#    cancel ID                      -> "cancelled ID"
#  It answers only after the backends answered, in this order: Accounts
#  (check), Package (register), Drone Management (assign), Delivery (create),
#  Drone Management (dispatch: the flight job). A backend that refuses or does
#  not answer within its deadline fails the request with a clear error
#  naming it (common.sh: call).
. "$DD_HOME/common.sh"
read -r verb a b c rest || true
case $verb in
    schedule)
        customer=$a package=$b id=${c:-d$(date +%s%N)-$$}
        valid_id "$customer" || fail "error: bad customer id"
        valid_id "$package" || fail "error: bad package (one word)"
        valid_id "$id" || fail "error: bad delivery id"
        call accounts "check $customer $id"
        call package "register $id $package"
        call drones "assign $id"
        drone=$REPLY
        call delivery "create $id $customer $drone"
        call drones "dispatch $id $drone"
        printf 'scheduled %s drone=%s flight=%s' "$id" "$drone" "${REPLY##* }" ;;
    update)
        valid_id "$a" || fail "error: bad delivery id"
        call delivery "reschedule $a"
        printf 'rescheduled %s' "$a" ;;
    cancel)
        valid_id "$a" || fail "error: bad delivery id"
        call delivery "cancel $a"
        printf 'cancelled %s' "$a" ;;
    *) fail "error: unknown request '$verb' (schedule CUSTOMER PACKAGE [ID], update ID, cancel ID)" ;;
esac
