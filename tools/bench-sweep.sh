#!/usr/bin/env bash
#  tools/bench-sweep.sh — the standard sweep behind `make bench`.
#
#  Runs zkit-bench over every channel that exists (sizes 16 B to 64 KiB; tcp,
#  ipc, and inproc where it applies), then writes OUT/report.md (tables with
#  the baseline and the ratio beside each figure, the targets of issue 5 met
#  or missed) and PNG plots made by tools/bench-plot.gp.
#
#  usage: tools/bench-sweep.sh [OUT]          (default build/bench)
#  env:   ZK_BIN        where the binaries are (default build/bin)
#         BENCH_REPEAT  runs of every case, medians reported (default 5)
#         BENCH_QUEUE_REPEAT  runs of the queue part (default 3: it is disk-bound)
#         BENCH_QUICK=1 a short sweep (fewer sizes, 3 runs) to try things out
#         BENCH_PARTS   the parts to run (default "pipe inproc fanout latency worker
#                       queue"); `make bench-queue` runs "queue" alone
#
#  Exit status: 0, or 1 when a run failed or lost messages (the report still
#  says which), or 2 when gnuplot is missing.
set -u
cd "$(dirname "$0")/.."
out=${1:-build/bench}
bin=${ZK_BIN:-build/bin}
bench="$bin/zkit-bench"
repeat=${BENCH_REPEAT:-5}
sizes=16,64,256,1k,4k,16k,64k
fan_sizes=64,1k,16k
lat_sizes=64,1k,16k
if [ "${BENCH_QUICK:-0}" = 1 ]; then
    repeat=${BENCH_REPEAT:-3}
    sizes=64,1k,16k
    fan_sizes=64,1k
    lat_sizes=64,1k
fi
parts=" ${BENCH_PARTS:-pipe inproc fanout latency worker queue} "
parts=${parts//,/ }
queue_repeat=${BENCH_QUEUE_REPEAT:-3}
wanted() { [[ "$parts" == *" $1 "* ]]; }
#  Plots come from the pipe, inproc, fanout and latency parts.
plots=0
for name in pipe inproc fanout latency; do wanted $name && plots=1; done
if [ $plots = 1 ] && ! command -v gnuplot >/dev/null; then
    echo "bench-sweep: gnuplot is missing (make deps)" >&2
    exit 2
fi
[ -x "$bench" ] || { echo "bench-sweep: $bench is missing (make)" >&2; exit 2; }
mkdir -p "$out/bin"
rm -f "$out"/*.csv "$out"/*.md "$out"/*.png "$out"/*.dat "$out"/*.cmd
#  Measure copies: a rebuild while the sweep runs cannot change what is measured.
cp "$bin"/zkit-* "$out/bin/"
export ZK_BIN="$PWD/$out/bin"
case "$out" in /*) ZK_BIN="$out/bin" ;; esac
bench="$ZK_BIN/zkit-bench"
status=0
started=$(date +%s)

#  One part of the sweep: NAME, then zkit-bench's arguments (a part may ask
#  for its own --repeat first). The markdown goes to OUT/NAME.md, the CSV to
#  OUT/NAME.csv, the command to OUT/NAME.cmd.
part() {
    local name=$1
    shift
    wanted "$name" || return 0
    local args=("$@")
    [ "${1:-}" = --repeat ] || args=(--repeat "$repeat" "$@")
    echo "bench-sweep: $name: zkit-bench ${args[*]}" >&2
    local t0=$SECONDS
    if ! "$bench" "${args[@]}" --markdown --csv-file "$out/$name.csv" >"$out/$name.md"; then
        status=1
        echo "bench-sweep: $name: a run failed or lost messages (see the report)" >&2
    fi
    echo "bench-sweep: $name: $((SECONDS - t0)) s" >&2
    echo "zkit-bench ${args[*]}" >"$out/$name.cmd"
}

#  --pin: sender on CPU 0, receivers on CPU 1, devices float (steadier ratios).
part pipe --pin -c push,proxy,zmq-proxy,zproxy,two-frames,envelope -s "$sizes" -t tcp,ipc
part inproc --inproc -c push,proxy,zmq-proxy,zproxy -s "$fan_sizes" -t inproc
#  A high-water mark of 10000 lets the publisher run 4000 messages ahead of
#  its slowest subscriber: the devices are measured, not the credit round trip.
part fanout --pin --hwm 10000 -c pub,forwarder,zmq-forwarder -k 1,4 -s "$fan_sizes" -t tcp
part latency --pin -c reqrep,reqrep-proxy,reqrep-zmq-proxy,reqrep-zproxy,reqrep-envelope,reqrep-reliable,reqrep-lb,reqrep-lb-reliable \
    -s "$lat_sizes" -t tcp,ipc
part worker --pin -c worker,reqrep-worker,reqrep-worker-exec -s 64,1k -t tcp
#  zkit-queue under each --fsync policy, 100-byte messages (issue 3 and 5):
#  zk_client, and the minimal ZKQ/1 client (-raw: the server alone). Disk-
#  bound, so fewer runs: about 30 s on 2 cores.
part queue --repeat "$queue_repeat" \
    -c queue-batch,queue-always,queue-never,queue-batch-raw,queue-never-raw -s 100 -t tcp

#  ---------------------------------------------------------------- plot data

#  OUT/NAME-TRANSPORT-CHANNEL[-kK].dat: "size value..." per line, by size.
csv_series() {
    local name=$1
    awk -F, -v out="$out" -v name="$name" 'NR > 1 && $8 != "" {
        k = ($1 == "fanout") ? "-k" $5 : ""
        file = out "/" name "-" $3 "-" $2 k ".dat"
        print $4, $8, $9, $13, $10 >> file
        close (file)
    }' "$out/$name.csv"
}
for name in pipe inproc fanout; do
    [ -f "$out/$name.csv" ] && csv_series "$name"
done
#  Latency percentiles, one file per transport and size: "channel min p50 p90 p99 p99.9 max".
if [ -f "$out/latency.csv" ]; then
    awk -F, -v out="$out" 'NR > 1 && $15 != "" {
        file = out "/latency-" $3 "-" $4 ".dat"
        print $2, $14, $15, $16, $17, $18, $19 >> file
        close (file)
    }' "$out/latency.csv"
fi
#  zkit-queue: "channel puts/s consumed+acked/s end-to-end/s", medians.
if [ -f "$out/queue.csv" ]; then
    awk -F, 'NR > 1 && $1 == "queue" && $8 != "" { print $2, $8, $28, $32 }' \
        "$out/queue.csv" >"$out/queue.dat"
    command -v gnuplot >/dev/null && plots=1
fi
if [ $plots = 1 ] && ! gnuplot -e "dir='$out'" tools/bench-plot.gp 2>"$out/gnuplot.log"; then
    echo "bench-sweep: gnuplot failed:" >&2
    cat "$out/gnuplot.log" >&2
    status=1
fi

#  ---------------------------------------------------------------- targets

#  The value of column col for (channel, transport, size[, K]) in a CSV.
value() {
    awk -F, -v c="$2" -v t="$3" -v s="$4" -v k="${6:-}" -v col="$5" \
        'NR > 1 && $2 == c && $3 == t && $4 == s && (k == "" || $5 == k) { print $col; exit }' \
        "$out/$1.csv" 2>/dev/null
}
#  "met"/"missed"/"not measured" for A OP B.
verdict() {
    awk -v a="$1" -v b="$2" -v op="$3" 'BEGIN {
        if (a == "" || b == "") { print "not measured"; exit }
        ok = (op == ">=") ? (a + 0 >= b + 0) : (a + 0 <= b + 0)
        print ok ? "**met**" : "**missed**"
    }'
}
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print ""; else printf "%.2f", a / b }'
}
max() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "") print b; else if (b == "" || a + 0 >= b + 0) print a; else print b }'
}

#  A rate with its range over the runs: "62.9k (57.6k-90.1k)".
rate() {
    awk -v m="$1" -v lo="$2" -v hi="$3" 'function k(x) {
            if (x >= 1e6) return sprintf ("%.2fM", x / 1e6)
            if (x >= 1e4) return sprintf ("%.1fk", x / 1e3)
            return sprintf ("%.0f", x)
        }
        BEGIN { if (m == "") print "?"; else if (lo == "") print k(m); else print k(m) " (" k(lo) "-" k(hi) ")" }'
}

#  The queue targets (issue 5): for zk_client and for the minimal client.
queue_targets() {
    local c label puts acked e2e verdict
    for c in queue-batch queue-batch-raw; do
        label="zk_client"
        [ $c = queue-batch-raw ] && label="minimal ZKQ/1 client (the server alone)"
        puts=$(value queue $c tcp 100 8)
        acked=$(value queue $c tcp 100 28)
        e2e=$(value queue $c tcp 100 32)
        echo "| zkit-queue fsync batch, ≥ 150k confirmed puts/s (100 B, tcp), $label | $(rate "$puts" "$(value queue $c tcp 100 26)" "$(value queue $c tcp 100 27)") | $(verdict "$puts" 150000 '>=') |"
        echo "| zkit-queue fsync batch, ≥ 100k consumed+acked/s draining a backlog, $label | $(rate "$acked" "$(value queue $c tcp 100 29)" "$(value queue $c tcp 100 30)") | $(verdict "$acked" 100000 '>=') |"
        echo "| zkit-queue fsync batch, ≥ 100k consumed+acked/s end to end (producer and consumer at once), $label | $(rate "$e2e" "$(value queue $c tcp 100 33)" "$(value queue $c tcp 100 34)") | $(verdict "$e2e" 100000 '>=') |"
    done
    c=queue-always
    echo "| zkit-queue fsync always, reported beside batch (zk_client) | puts $(rate "$(value queue $c tcp 100 8)" "$(value queue $c tcp 100 26)" "$(value queue $c tcp 100 27)"), consumed+acked $(rate "$(value queue $c tcp 100 28)" "$(value queue $c tcp 100 29)" "$(value queue $c tcp 100 30)"), end to end $(rate "$(value queue $c tcp 100 32)" "$(value queue $c tcp 100 33)" "$(value queue $c tcp 100 34)") msg/s | reported |"
}

targets() {
    echo "| target | measured (medians, same run; range over the runs) | verdict |"
    echo "|---|---|---|"
    [ -f "$out/pipe.csv" ] && pipe_targets
    [ -f "$out/fanout.csv" ] && fanout_targets
    [ -f "$out/latency.csv" ] && latency_targets
    [ -f "$out/queue.csv" ] && queue_targets
}

pipe_targets() {
    for size in 64 1024; do
        local p z q best r direct
        p=$(value pipe proxy tcp $size 8)
        z=$(value pipe zmq-proxy tcp $size 8)
        q=$(value pipe zproxy tcp $size 8)
        best=$(max "$z" "$q")
        r=$(ratio "$p" "$best")
        direct=$(ratio "$(value pipe proxy tcp $size 8)" "$(value pipe push tcp $size 8)")
        echo "| zkit-proxy ≥ max(zmq_proxy, zproxy), tcp ${size} B | ${p:-?} vs ${best:-?} msg/s: ratio ${r:-?} (zkit-proxy keeps ${direct:-?} of direct) | $(verdict "$r" 1.0 '>=') |"
    done
    local d64 e
    d64=$(ratio "$(value pipe proxy tcp 64 8)" "$(value pipe push tcp 64 8)")
    echo "| aim: zkit-proxy keeps 70% of direct at 64 B | ${d64:-?} | $(verdict "$d64" 0.70 '>=') |"
    e=$(ratio "$(value pipe envelope tcp 1024 8)" "$(value pipe push tcp 1024 8)")
    echo "| envelope costs ≤ 15% at 1 KiB (ratio ≥ 0.85), tcp | ${e:-?} of direct | $(verdict "$e" 0.85 '>=') |"
}

fanout_targets() {
    for k in 1 4; do
        local f z r lost
        f=$(value fanout forwarder tcp 64 8 $k)
        z=$(value fanout zmq-forwarder tcp 64 8 $k)
        r=$(ratio "$f" "$z")
        lost=$(value fanout forwarder tcp 64 24 $k)
        echo "| zkit-forwarder ≥ zmq_proxy XSUB/XPUB, K=$k, tcp 64 B, aggregate | ${f:-?} vs ${z:-?} msg/s: ratio ${r:-?}, lost ${lost:-?} | $(verdict "$r" 1.0 '>=') |"
    done
}

latency_targets() {
    local p50 p99 base
    p50=$(awk -v r="$(value latency reqrep-proxy tcp 64 21)" 'BEGIN { if (r != "") printf "%.2f", r }')
    p99=$(value latency reqrep-proxy tcp 64 17)
    base=$(value latency reqrep-proxy tcp 64 20)
    echo "| REQ/REP through zkit-proxy: p50 ≤ 1.5× direct, tcp 64 B | p50 ${p50:-?}× direct (${base:-?} µs direct), p99 ${p99:-?} µs | $(verdict "$p50" 1.5 '<=') |"
    local channel
    for channel in reqrep-lb reqrep-lb-reliable reqrep-reliable; do
        p50=$(awk -v r="$(value latency $channel tcp 64 21)" 'BEGIN { if (r != "") printf "%.2f", r }')
        p99=$(value latency $channel tcp 64 17)
        echo "| (reported) $channel, tcp 64 B | p50 ${p50:-?}× direct, p99 ${p99:-?} µs | — |"
    done
}

{
    echo "# zkit-bench report"
    echo
    echo "Made by tools/bench-sweep.sh (\`make bench\`, \`make bench-queue\`) on $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs"
    echo "($(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //')), Linux $(uname -r),"
    echo "libzmq $(pkg-config --modversion libzmq 2>/dev/null), czmq $(pkg-config --modversion libczmq 2>/dev/null),"
    echo "in $(( $(date +%s) - started )) s. Every figure is the median of $repeat runs (fewer where the"
    echo "command says so); its baseline ran in the same invocation, interleaved with it, and the"
    echo "ratio is figure / baseline. Lost messages fail the run (a \`!\` after the count)."
    if [ -f "$out/queue.md" ]; then
        echo
        echo "Queue rows (medians of $queue_repeat runs): a real zkit-queue per run (fresh --data directory on $(df -T "${TMPDIR:-/tmp}" 2>/dev/null | awk 'NR == 2 { print $2 }'), its --fsync policy);"
        echo "confirmed puts/s (pipelined PUTs, to the last confirm), consumed+acked/s (draining that"
        echo "backlog, to the last ACK's answer), end to end (producer and consumer at once); every"
        echo "message sequence-checked and the queue's STATS checked empty; -raw rows use a minimal"
        echo "ZKQ/1 client instead of zk_client (what the server alone sustains)."
    fi
    echo
    echo "## Targets (issue 5)"
    echo
    targets
    if [ $plots = 1 ]; then
        echo
        echo "## Plots"
        echo
        for png in throughput-tcp throughput-ipc ratio-tcp fanout latency-tcp queue; do
            [ -f "$out/$png.png" ] && echo "![${png}](${png}.png)"
        done
    fi
    for name in pipe inproc fanout latency worker queue; do
        [ -f "$out/$name.md" ] || continue
        echo
        echo "## $name"
        echo
        echo "\`$(cat "$out/$name.cmd")\`"
        cat "$out/$name.md"
    done
} >"$out/report.md"
echo "bench-sweep: wrote $out/report.md and $(ls "$out"/*.png 2>/dev/null | wc -l) plots in $(( $(date +%s) - started )) s" >&2
exit $status
