#!/usr/bin/env bash
#  dd.sh — the client: talk to a running drone-delivery (run.sh) from a shell.
#    dd.sh schedule CUSTOMER PACKAGE [ID]   the public API (Delivery Scheduler)
#    dd.sh update ID | cancel ID            the public API
#    dd.sh status ID                        Delivery: the delivery's state
#    dd.sh history ID                       Delivery History: its events, in order
#    dd.sh kill UNIT | start UNIT           SIGKILL / start one unit (history-store, drones-api ...)
#  DD_RUN names the run directory (run.sh prints it; default /tmp/drone-delivery).
#  Exit status: zkit-cat's (0 ok, 1 an error reply, 3 no reply in time).
set -euo pipefail
export DD_RUN=${DD_RUN:-/tmp/drone-delivery}
source "$(dirname "$0")/lib.sh"
[ $# -ge 2 ] || { sed -n '2,9p' "$0" | sed 's/^#  \{0,1\}//' >&2; exit 2; }
case $1 in
    kill | start)
        case " $DD_SERVICE_UNITS $DD_HUB_UNITS " in *" $2 "*) ;; *) echo "dd.sh: no unit '$2' (units: $(echo $DD_SERVICE_UNITS $DD_HUB_UNITS))" >&2; exit 2 ;; esac
        if [ "$1" = kill ]; then dd_stop "$2" KILL; echo "dd.sh: $2 SIGKILLed"; exit 0; fi
        [ ! -s "$DD_RUN/pid/$2" ] || ! kill -0 "$(cat "$DD_RUN/pid/$2")" 2>/dev/null ||
            { echo "dd.sh: $2 runs already" >&2; exit 1; }
        dd_start "$2"
        dd_wait_file "$DD_RUN/ready/$2" 20 && echo "dd.sh: $2 started"
        exit ;;
    schedule | update | cancel) service=scheduler ;;
    status) service=delivery ;;
    history) service=history ;;
    *) echo "dd.sh: unknown command '$1'" >&2; exit 2 ;;
esac
pidfile=$DD_RUN/pid/proxy-$service
[ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null ||
    { echo "dd.sh: nothing runs in $DD_RUN (start run.sh)" >&2; exit 1; }
echo "$*" | dd_api "$service" --timeout "${DD_TIMEOUT:-10}" --retries 1
