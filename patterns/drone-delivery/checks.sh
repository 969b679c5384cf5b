# shellcheck shell=bash
#  checks.sh — what test.sh and netns-test.sh share (source it after lib.sh,
#  with DD_IDS the file of the delivery ids to check, one a line).
failures=0
dd_test_start=$SECONDS

#  check DESCRIPTION EXPECTED ACTUAL: print a check line; count a failure.
check() {
    if [ "$2" = "$3" ]; then
        printf '  ok    %s: %s\n' "$1" "$3"
    else
        printf '  FAIL  %s: expected %s, got %s\n' "$1" "$2" "$3"
        failures=$((failures + 1))
    fi
}

elapsed() { echo "$((SECONDS - dd_test_start)) s"; }

#  dd_finish: the EXIT trap: stop everything, show the logs on failure.
dd_finish() {
    local rc=$?
    trap - EXIT
    dd_down
    [ "$(type -t dd_cleanup_extra)" != function ] || dd_cleanup_extra
    [ "$failures" -eq 0 ] || rc=1
    if [ "$rc" -ne 0 ]; then
        for log in "$DD_RUN"/log/*.log; do
            [ -s "$log" ] || continue
            echo "--- $(basename "$log")" >&2
            tail -n 8 "$log" >&2
        done
    fi
    if [ -n "${DD_KEEP:-}" ]; then echo "kept $DD_RUN" >&2; else rm -rf "$DD_RUN"; fi
    exit "$rc"
}

#  dd_wait_complete SECONDS: poll Delivery's status of every id until all are
#  DeliveryComplete (or SECONDS pass); leaves the answers in DD_RUN/status.
dd_wait_complete() {
    local n deadline=$((SECONDS + $1))
    n=$(wc -l <"$DD_IDS")
    while :; do
        sed 's/^/status /' "$DD_IDS" | dd_api delivery --timeout 10 >"$DD_RUN/status" 2>/dev/null || true
        [ "$(grep -c ' DeliveryComplete ' "$DD_RUN/status" || true)" -lt "$n" ] || break
        [ "$SECONDS" -lt "$deadline" ] || break
        sleep 0.2
    done
    check "deliveries DeliveryComplete (Delivery's status)" "$n" \
        "$(grep -c ' DeliveryComplete ' "$DD_RUN/status" || true)"
}

#  The event lists Delivery reports, "ID E1,E2,..." sorted.
dd_expected() {
    sed -n 's/^\([^ ]*\) .* events=\(.*\)$/\1 \2/p' "$DD_RUN/status" | sort
}

#  History's lists, only where the sequence numbers are 1..k in order.
dd_held() {
    awk '{ ok = 1; list = ""
           for (i = 2; i <= NF; i++) { split($i, p, "[:@]"); if (p[1] != i - 1) ok = 0; list = list (i > 2 ? "," : "") p[2] }
           if (ok) print $1, list }' "$DD_RUN/history" | sort
}

#  dd_check_histories SECONDS: poll History until it holds, for every id, the
#  event list Delivery reports, in order; then check the lists' shape.
dd_check_histories() {
    local deadline=$((SECONDS + $1)) bad
    while :; do
        sed 's/^/history /' "$DD_IDS" | dd_api history --timeout 10 >"$DD_RUN/history" 2>/dev/null || true
        [ "$(dd_held | md5sum)" != "$(dd_expected | md5sum)" ] || break
        [ "$SECONDS" -lt "$deadline" ] || break
        sleep 0.2
    done
    check "histories equal to Delivery's event lists, in order" "$(dd_expected | md5sum)" "$(dd_held | md5sum)"
    [ "$(dd_held | md5sum)" = "$(dd_expected | md5sum)" ] ||
        diff <(dd_expected) <(dd_held) | head -n 10 | sed 's/^/        /'
    bad=$(dd_expected | awk '{print $2}' | grep -cvE '^Created,(Rescheduled,)?InTransit,DeliveryComplete$' || true)
    check "event lists other than Created,[Rescheduled,]InTransit,DeliveryComplete" 0 "$bad"
}

#  dd_redelivered: how many delivery events History's queue delivered more
#  than once (their message ids from the forwarder's tap, their status).
dd_redelivered() {
    local m count=0 queue
    queue="queue>$(dd_ep queue router)"
    for m in $(grep -ho 'msg=[0-9a-f-]*' "$DD_RUN/taps/fwd.jsonl" | cut -d= -f2 | sort -u); do
        zkit-cat --status "$m" "$queue/delivery-events" --timeout 5 2>/dev/null | grep -q 'attempts=[2-9]' &&
            count=$((count + 1))
    done
    echo "$count"
}
