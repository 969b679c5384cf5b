#!/bin/sh
#  Delivery History, a plain file store: one file per event,
#  DD_RUN/data/history/ID/SEQ, written atomically.
#    history.sh store   one delivery event "ID SEQ EVENT TIME DRONE" from the
#                       durable queue delivery-events (exit 0: acked; a
#                       redelivered event is stored again, the same file)
#    history.sh query   "history ID" -> "ID 1:Created@TIME 2:InTransit@TIME ..."
#                       in event order (by SEQ), whatever order they came in
. "$DD_HOME/common.sh"
store=$DD_DATA/history
case ${1:-} in
    store)
        read -r id seq event at drone rest || true
        valid_id "$id" && valid_id "$event" || fail "history: bad event"
        case $seq in '' | *[!0-9]* | ??????*) fail "history: bad sequence number" ;; esac
        mkdir -p "$store/$id"
        file=$store/$id/$(printf '%05d' "$seq")
        printf '%s %s %s\n' "$seq" "$event" "$at" >"$file.tmp.$$"
        mv "$file.tmp.$$" "$file" ;;
    query)
        read -r verb id rest || true
        [ "$verb" = history ] || fail "history: unknown request '$verb' (history ID)"
        valid_id "$id" || fail "history: bad delivery id"
        [ -d "$store/$id" ] || fail "history: nothing known of $id"
        printf '%s' "$id"
        cat "$store/$id"/[0-9][0-9][0-9][0-9][0-9] | while read -r seq event at; do
            printf ' %s:%s@%s' "$seq" "$event" "$at"
        done ;;
    *) fail "history.sh store|query" ;;
esac
