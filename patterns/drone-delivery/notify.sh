#!/bin/sh
#  The default notify command (DD_NOTIFY), run by the unit delivery-notify for
#  each delivery event it takes from the fan-out, the event on stdin:
#  "delivery.ID ID SEQ EVENT TIME DRONE msg=MSGID". It appends
#  "TIME ID #SEQ EVENT" to the run's notifications file; a real one would
#  send a mail or a text message.
read -r topic id seq event at drone rest || true
[ -n "${at:-}" ] || exit 0
printf '%s %s #%s %s\n' "$at" "$id" "$seq" "$event" >>"$DD_RUN/notifications"
