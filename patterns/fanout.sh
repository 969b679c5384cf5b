#!/usr/bin/env bash
#  Fan-out: one publisher, three subscribers with different topic filters,
#  through zkit-forwarder (xsub@ ↔ xpub@). Subscriptions flow upstream, so
#  the publisher waits until all three are known (--wait-subscribers)
#  instead of sleeping, then publishes once; each subscriber gets exactly
#  the messages whose topic prefix it asked for.
#
#      zkit-cat pub>  ──▶  zkit-forwarder xsub@ xpub@  ──▶  zkit-cat sub> -s weather.
#                                                    ├──▶  zkit-cat sub> -s sports.
#                                                    └──▶  zkit-cat sub> -s news.
source "$(dirname "$0")/lib.sh"

rounds=${ROUNDS:-20}

zk_start forwarder zkit-forwarder 'xsub@tcp://127.0.0.1:*' 'xpub@tcp://127.0.0.1:*' \
    --ready-file "$ZK_TMP/forwarder.ready"
zk_wait_ready "$ZK_TMP/forwarder.ready"
front=$(zk_endpoint "$ZK_TMP/forwarder.ready" frontend)
back=$(zk_endpoint "$ZK_TMP/forwarder.ready" backend)

pids=()
for topic in weather sports news; do
    zk_start_out "sub-$topic" zkit-cat "sub>$back" -s "$topic." -n "$rounds" --timeout 30
    pids+=("${ZK_PIDS[-1]}")
done

#  Each round publishes one message on each topic, and one that nobody wants.
for i in $(seq "$rounds"); do
    printf 'weather.%d sunny\nsports.%d 3-1\nnews.%d headline\nunwanted.%d noise\n' "$i" "$i" "$i" "$i"
done >"$ZK_TMP/published"
echo "fanout: publishing $(wc -l <"$ZK_TMP/published") messages once subscribers are known"
zkit-cat "pub>$front" --wait-subscribers 3 --timeout 20 <"$ZK_TMP/published"

i=0
for topic in weather sports news; do
    rc=0
    zk_wait_exit "${pids[$i]}" 30 || rc=$?
    zk_check "subscriber $topic. exit status" 0 "$rc"
    zk_check "subscriber $topic. got exactly its topic" \
        "$(grep "^$topic\." "$ZK_TMP/published" | md5sum)" "$(md5sum <"$ZK_TMP/sub-$topic.out")"
    i=$((i + 1))
done
echo "fanout: ok"
