#!/usr/bin/env bash
#  run.sh — start the whole drone-delivery system on this machine (loopback,
#  ephemeral ports, readiness by ready files) and show a live view of the
#  deliveries and their states; Ctrl-C stops everything.
#    run.sh              run until Ctrl-C; drive it with dd.sh from another shell
#    run.sh --demo N     schedule N deliveries, wait until every one is
#                        complete, print their histories and one trace, stop
#  DD_RUN (default /tmp/drone-delivery) holds ready files, logs, the services'
#  data and the capture taps; it stays after the run (the logs, the taps).
#  DD_VIEW_DRONES=1 shows the drones' own events in the live view too.
set -euo pipefail
export DD_RUN=${DD_RUN:-/tmp/drone-delivery}
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
demo=
case ${1:-} in
    --demo) demo=${2:-5} ;;
    '') ;;
    *) sed -n '2,11p' "$0" | sed 's/^#  \{0,1\}//' >&2; exit 2 ;;
esac
for pidfile in "$DD_RUN"/pid/*; do
    [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null &&
        { echo "run.sh: a system already runs in $DD_RUN (unit $(basename "$pidfile"))" >&2; exit 1; }
done
rm -rf "${DD_RUN:?}"/{ready,log,pid,taps,data,notifications,view.seen,demo.replies,demo.status}
mkdir -p "$DD_RUN"/{ready,log,pid,taps,data}

view=
stop() {
    trap - INT TERM HUP EXIT
    trap "" PIPE
    set +e #  stop everything, even when stdout is gone (a closed pipe)
    echo
    echo "run.sh: stopping"
    [ -z "$view" ] || kill -TERM -- -"$view" 2>/dev/null || true
    dd_down
    echo "run.sh: stopped; logs in $DD_RUN/log, capture taps in $DD_RUN/taps"
}
trap stop EXIT
trap 'exit 130' INT TERM HUP PIPE

dd_up || exit 1

#  The live view: every delivery event (and with DD_VIEW_DRONES=1 every drone
#  event) from the fan-out, with the count of deliveries in each state.
topics=(-s delivery.)
[ -z "${DD_VIEW_DRONES:-}" ] || topics+=(-s drone.)
set -m
(
    zkit-cat "sub>$(dd_ep fwd backend)" "${topics[@]}" 2>>"$DD_RUN/log/view.log" | perl -ne '
        BEGIN { $| = 1; open($seen, ">>", "$ENV{DD_RUN}/view.seen") or die; $seen->autoflush(1) }
        my @f = split;
        if ($f[0] =~ /^drone\.(.*)/) { printf "%14s  %-14s %-17s drone %s\n", "", $f[1], "  $f[2] $f[3]", $1; next }
        print $seen "$f[1] $f[3]\n";
        my ($id, $event, $at, $drone) = @f[1, 3, 4, 5];
        $count{$state{$id}}-- if exists $state{$id};
        $state{$id} = $event;
        $count{$event}++;
        printf "%s  %-14s %-17s drone %-4s | created %d, rescheduled %d, in transit %d, complete %d, cancelled %d\n",
            $at, $id, $event, $drone, map { $count{$_} // 0 } qw(Created Rescheduled InTransit DeliveryComplete Cancelled);'
) &
view=$!
set +m

cat <<INFO
drone-delivery is up. Public API: $(dd_ep proxy-scheduler frontend) (zkit-proxy --lb)
From another shell:
    export DD_RUN=$DD_RUN
    $here/dd.sh schedule alice parcel-1          # -> scheduled ID drone=D.. flight=JOBID
    $here/dd.sh status ID ; $here/dd.sh history ID ; $here/trace.sh ID
Live view (delivery events from the fan-out):
INFO

if [ -z "$demo" ]; then
    echo "(Ctrl-C stops everything)"
    wait "$view" || true
    exit 0
fi

#  Demo: N deliveries through the public API, every one followed to the end.
ids=()
for n in $(seq "$demo"); do ids+=("demo-$n"); done
for n in $(seq "$demo"); do echo "schedule customer-$n parcel-$n demo-$n"; done |
    dd_api scheduler --timeout 30 >"$DD_RUN/demo.replies"
for _ in $(seq 600); do
    done_count=0
    for id in "${ids[@]}"; do echo "status $id"; done | dd_api delivery --timeout 10 >"$DD_RUN/demo.status" || true
    done_count=$(grep -c ' DeliveryComplete ' "$DD_RUN/demo.status" || true)
    [ "$done_count" -lt "$demo" ] || break
    sleep 0.1
done
#  Let the live view show every completion before the summary (bounded).
for _ in $(seq 100); do
    [ "$(grep -c ' DeliveryComplete$' "$DD_RUN/view.seen" 2>/dev/null || true)" -lt "$demo" ] || break
    sleep 0.05
done
echo
echo "run.sh: $done_count of $demo deliveries complete. Their history (Delivery History):"
for id in "${ids[@]}"; do echo "history $id"; done | dd_api history --timeout 10 | sed 's/^/    /'
echo
"$here/trace.sh" "${ids[0]}" | sed 's/^/    /'
[ "$done_count" -eq "$demo" ]
