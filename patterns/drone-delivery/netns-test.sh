#!/usr/bin/env bash
#  netns-test.sh — the same system across "hosts": the hub (queue, forwarder,
#  proxies) and each service in a network namespace of its own, joined by veth
#  pairs to a bridge, so every message crosses a network. The scripts are the
#  same; only the environment differs: DD_NETNS (the namespaces' prefix, lib.sh
#  runs each unit in PREFIX-SERVICE) and DD_HUB_ADDR (the address the hub
#  binds). DD_NETNS_N deliveries (default 10) are scheduled from the root
#  namespace; meanwhile Delivery History's link is cut (ip link set ... down)
#  until delivery events wait for it in the queue (at least 3 s), then
#  restored: every delivery still ends DeliveryComplete with its full history.
#  Skips (exit 0, saying why) where network namespaces are not permitted.
set -euo pipefail
n=${DD_NETNS_N:-10}
skip() { echo "drone-delivery-netns: SKIP: $*"; exit 0; }
[ "$(id -u)" -eq 0 ] || skip "needs root (ip netns)"
command -v ip >/dev/null || skip "no ip command"
sfx=$(($$ % 100000))
prefix=zkdd$sfx
ip netns add "$prefix-probe" 2>/dev/null || skip "ip netns add is not permitted here"
ip netns del "$prefix-probe"

export DD_RUN DD_NETNS=$prefix DD_LEASE=5
DD_RUN=$(mktemp -d "${TMPDIR:-/tmp}/zk-drone-ns.XXXXXX")
source "$(dirname "$0")/lib.sh"
DD_IDS=$DD_RUN/ids
source "$DD_HOME/checks.sh"
hosts="hub scheduler accounts package drones delivery history"
bridge=zd${sfx}b
net=10.$((100 + $$ % 100)).$((($$ / 100) % 250))
dd_cleanup_extra() {
    local h
    for h in $hosts; do ip netns del "$prefix-$h" 2>/dev/null || true; done
    ip link del "$bridge" 2>/dev/null || true
}
trap dd_finish EXIT
trap 'exit 130' INT TERM HUP PIPE

#  The network: a bridge with NET.1 (the root namespace: the test's clients),
#  and host i (hub, then each service) at NET.(i+2) behind veth zdSFXi.
ip link add "$bridge" type bridge
ip addr add "$net.1/24" dev "$bridge"
ip link set "$bridge" up
i=0
for h in $hosts; do
    ip netns add "$prefix-$h"
    ip link add "zd$sfx$i" type veth peer name eth0 netns "$prefix-$h"
    ip link set "zd$sfx$i" master "$bridge" up
    ip -n "$prefix-$h" addr add "$net.$((i + 2))/24" dev eth0
    ip -n "$prefix-$h" link set eth0 up
    ip -n "$prefix-$h" link set lo up
    [ "$h" != history ] || history_link=zd$sfx$i
    i=$((i + 1))
done
export DD_HUB_ADDR=$net.2
echo "drone-delivery-netns: hosts $hosts in namespaces $prefix-*, on $net.0/24 (hub $DD_HUB_ADDR)"

dd_up
queue="queue>$(dd_ep queue router)"
check "the public API is across the bridge" "tcp://$DD_HUB_ADDR" "$(dd_ep proxy-scheduler frontend | cut -d: -f1,2)"
check "delivery-events runs in its own namespace" "$prefix-delivery" "$(ip netns identify "$(cat "$DD_RUN/pid/delivery-events")")"

seq -f 'n%03g' "$n" >"$DD_IDS"
awk '{ print "schedule customer-" NR, "parcel-" NR, $1 }' "$DD_IDS" >"$DD_RUN/client.in"
dd_api scheduler --timeout 30 <"$DD_RUN/client.in" >"$DD_RUN/client.out" 2>"$DD_RUN/client.err" &
client=$!

#  Cut History's link once it stored something; restore it once events wait.
deadline=$((SECONDS + 60))
while [ "$(ls "$DD_RUN/data/history" 2>/dev/null | wc -l)" -lt 1 ] && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
ip link set "$history_link" down
cut=$SECONDS
echo "drone-delivery-netns: History's link $history_link down ($(elapsed))"
want=$((n < 5 ? n : 5))
deadline=$((SECONDS + 30))
while :; do
    waiting=$(zkit-cat --list "$queue/delivery-events" --timeout 5 2>/dev/null | wc -l)
    { [ "$waiting" -lt "$want" ] || [ "$SECONDS" -lt $((cut + 3)) ]; } && [ "$SECONDS" -lt "$deadline" ] || break
    sleep 0.1
done
ip link set "$history_link" up
echo "drone-delivery-netns: History's link up again after $((SECONDS - cut)) s; $waiting events waited in the queue"

deadline=$((SECONDS + 90))
while kill -0 "$client" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
kill "$client" 2>/dev/null || true #  still running after the deadline: it fails below
rc=0
wait "$client" || rc=$?
check "client exit status" 0 "$rc"
check "schedule requests answered 'scheduled'" "$n" "$(grep -c '^scheduled ' "$DD_RUN/client.out" || true)"
dd_wait_complete 90
dd_check_histories 90
echo "drone-delivery-netns: $(dd_redelivered) events were delivered to History again after the cut"
echo "drone-delivery-netns: $([ "$failures" -eq 0 ] && echo ok || echo "$failures checks FAILED") ($(elapsed))"
[ "$failures" -eq 0 ]
