#!/usr/bin/env bash
#  trace.sh ID: where delivery ID's messages went, in time order, built only
#  from what zkit records:
#    * the capture taps of the devices (DD_RUN/taps/*.jsonl: every message a
#      zkit-proxy --lb or the zkit-forwarder moved, as its --capture copy, with
#      the time the tap saw it): each request-response hop (request and reply
#      are paired by the reliable client's request id) and each fan-out event;
#    * the queue's job status (zkit-cat --status): the flight job on "flights"
#      and each delivery event's message on "delivery-events" (the message id
#      travels in the published event), with the consumer that took it and
#      when it was accepted, started and finished (acked).
#  Status and history queries about ID are counted, not shown (-a: shown).
#  Usage: DD_RUN=DIR trace.sh [-a] ID   (run.sh prints its DD_RUN)
set -euo pipefail
all=0
[ "${1:-}" != -a ] || { all=1; shift; }
[ $# -eq 1 ] || { echo "usage: DD_RUN=DIR $0 [-a] DELIVERY-ID" >&2; exit 2; }
id=$1
export DD_RUN=${DD_RUN:-/tmp/drone-delivery}
source "$(dirname "$0")/lib.sh"
case $id in '' | *[!A-Za-z0-9._-]*) echo "$0: bad delivery id '$id'" >&2; exit 2 ;; esac
rows=$(mktemp)
trap 'rm -f "$rows" "$rows".*' EXIT

#  Taps -> "EPOCH <TAB> DEVICE <TAB> REQID <TAB> BODY" rows.
for tap in "$DD_RUN"/taps/*.jsonl; do
    [ -s "$tap" ] || continue
    device=$(basename "$tap" .jsonl)
    jq -rR --arg device "$device" '
        capture("^(?<t>[0-9.]+) (?<j>.*)$") as $line
        | ($line.j | fromjson? // empty | .frames) as $f
        | (if $device == "fwd" then "-" else ($f[1] | if type == "object" then .hex else . end) end) as $req
        | ($f[-1] | if type == "string" then . else "(binary)" end) as $body
        | [$line.t, $device, $req, $body] | @tsv' "$tap"
done >"$rows.taps"

#  The hops: requests that name ID (a word of the body), their replies by
#  request id, and the fan-out events that name it.
awk -F '\t' -v id="$id" -v all="$all" -v queries="$rows.queries" '
    function names(body,   w, n, i) { n = split(body, w, " "); for (i = 1; i <= n; i++) if (w[i] == id) return 1; return 0 }
    NR == FNR {
        if ($2 == "fwd" || ($3 in first)) next
        first[$3] = 1 #  a hop is chosen by its request (its first copy)
        if (names($4)) {
            if (all || $4 !~ /^(status|history) /) want[$3] = 1
            else if (!($3 in asked)) { asked[$3] = 1; nqueries++ }
        }
        next
    }
    END { print nqueries + 0 >queries }
    $2 == "fwd" { if (names($4)) { split($4, w, " "); printf "%s\tforwarder\tevent %s\t%s\n", $1, w[1], substr($4, length(w[1]) + 2) } next }
    ($3 in want) {
        seen[$3]++
        if (seen[$3] == 1) { start[$3] = $1; printf "%s\t%s\trequest\t%s\n", $1, $2, $4 }
        else printf "%s\t%s\treply (%d ms)\t%s\n", $1, $2, ($1 - start[$3]) * 1000, $4
    }' "$rows.taps" "$rows.taps" >"$rows"

#  The queue: the flight job and every delivery event's message.
queue="queue>$(dd_ep queue router)"
iso() { perl -MTime::Local -ne 'print /(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)(\.\d+)?Z/ ? sprintf("%.6f", timegm($6,$5,$4,$3,$2-1,$1) + ($7||0)) : "", "\n"' <<<"$1"; }
status_rows() { #  MSGID QUEUE WHAT
    local line q state attempts consumer accepted started finished
    line=$(zkit-cat --status "$1" "$queue/$2" --timeout 5 2>&1 | grep -m1 '^path:') || {
        printf '0\tqueue %s\tstatus\t%s: no status (%s)\n' "$2" "$3" "$1" >>"$rows"; return 0; }
    read -r _ q state attempts consumer accepted started finished <<<"$line"
    printf '%s\tqueue %s\taccepted\t%s (%s)\n' "$(iso "${accepted#accepted=}")" "$q" "$3" "$1" >>"$rows"
    [ "${started#started=}" = - ] ||
        printf '%s\tqueue %s\tstarted\t%s by %s, %s\n' "$(iso "${started#started=}")" "$q" "$3" "${consumer#consumer=}" "$attempts" >>"$rows"
    [ "${finished#finished=}" = - ] ||
        printf '%s\tqueue %s\t%s\t%s by %s\n' "$(iso "${finished#finished=}")" "$q" "$state" "$3" "${consumer#consumer=}" >>"$rows"
}
if ! { [ -s "$DD_RUN/pid/queue" ] && kill -0 "$(cat "$DD_RUN/pid/queue")" 2>/dev/null; }; then
    echo "trace: the queue server is not running: its job status is left out" >&2
    status_rows() { :; }
fi
for job in $(awk -F '\t' '$3 ~ /^reply/ && $4 ~ /^dispatched / { split($4, w, " "); print w[4] }' "$rows" | sort -u); do
    status_rows "$job" flights "flight job"
done
awk -F '\t' '$2 == "forwarder" && $3 ~ /^event delivery\./ { n = split($4, w, " "); print w[n], w[3] }' "$rows" |
    sort -u | while read -r msg event; do status_rows "${msg#msg=}" delivery-events "event $event"; done

if [ ! -s "$rows" ]; then
    echo "trace: nothing recorded for $id in $DD_RUN" >&2
    exit 1
fi
echo "trace of $id (times UTC; from the devices' capture taps and the queue's job status)"
queries=$(cat "$rows.queries")
rm -f "$rows.queries" "$rows.taps"
sort -t "$(printf '\t')" -k1,1n "$rows" | perl -F'\t' -lane '
    my ($t, $where, $what, $text) = @F;
    my @g = gmtime(int $t);
    printf "%02d:%02d:%02d.%03d  %-22s %-15s %s\n", @g[2,1,0], ($t - int $t) * 1000, $where, $what, $text;'
[ "$queries" -eq 0 ] || echo "(and $queries status/history queries about $id: trace.sh -a shows them)"
