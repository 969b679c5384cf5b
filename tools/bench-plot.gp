# tools/bench-plot.gp — the plots of `make bench` (run by tools/bench-sweep.sh).
#
#   gnuplot -e "dir='build/bench'" tools/bench-plot.gp
#
# Reads the .dat files the sweep extracts from zkit-bench's CSV:
#   DIR/pipe-TRANSPORT-CHANNEL.dat, DIR/fanout-tcp-CHANNEL-kK.dat:
#       size msgs_per_s mb_per_s ratio per_subscriber_msgs_per_s
#   DIR/latency-TRANSPORT-SIZE.dat:  channel min p50 p90 p99 p99.9 max (µs)
# and writes DIR/throughput-tcp.png, throughput-ipc.png, ratio-tcp.png,
# fanout.png, latency-tcp.png; and from DIR/queue.dat (channel puts_per_s
# acked_per_s e2e_per_s) DIR/queue.png.

if (!exists("dir")) dir = "build/bench"
file_ok(f) = int(system("[ -s '" . f . "' ] && echo 1 || echo 0"))

set terminal pngcairo size 1100,700 enhanced font "DejaVu Sans,12"
set grid
set key outside right top box opaque
set logscale x 2
set xrange [12:90000]
set xtics ("16B" 16, "64B" 64, "256B" 256, "1KiB" 1024, "4KiB" 4096, "16KiB" 16384, "64KiB" 65536)
set xlabel "message size (bytes)"

size_label(s) = s >= 1024 ? sprintf("%dKiB", s / 1024) : sprintf("%dB", s)

pipe_channels = "push proxy zmq-proxy zproxy envelope"
pipe_titles = "'direct PUSH/PULL' 'zkit-proxy' 'libzmq zmq\\_proxy' 'czmq zproxy' 'direct + envelope'"

# ---------------------------------------------------------------- throughput
do for [transport in "tcp ipc"] {
    if (file_ok(dir . "/pipe-" . transport . "-push.dat")) {
        set output dir . "/throughput-" . transport . ".png"
        set title "Point-to-point throughput over " . transport . " (median msg/s; higher is better)"
        set ylabel "messages per second"
        set logscale y 10
        set format y "%.0s%c"
        plot for [i=1:words(pipe_channels)] \
            dir . "/pipe-" . transport . "-" . word(pipe_channels, i) . ".dat" \
            using 1:2 with linespoints lw 2 pt 7 lc i title word(pipe_titles, i)
        unset logscale y
        set format y "%g"
    }
}

# ---------------------------------------------------------------- ratio to direct
if (file_ok(dir . "/pipe-tcp-proxy.dat")) {
    set output dir . "/ratio-tcp.png"
    set title "Share of direct PUSH/PULL kept, tcp (ratio in the same run; higher is better)"
    set ylabel "throughput / direct"
    set yrange [0:1.2]
    plot for [i=2:words(pipe_channels)] \
        dir . "/pipe-tcp-" . word(pipe_channels, i) . ".dat" \
        using 1:4 with linespoints lw 2 pt 7 lc i title word(pipe_titles, i), \
        0.7 with lines dt 2 lc rgb "gray40" title "aim: 0.70", \
        0.85 with lines dt 3 lc rgb "gray60" title "envelope bar: 0.85"
    set yrange [*:*]
}

# ---------------------------------------------------------------- fan-out
if (file_ok(dir . "/fanout-tcp-pub-k1.dat")) {
    set output dir . "/fanout.png"
    set title "Fan-out over tcp: messages delivered per second, all subscribers (median)"
    set ylabel "aggregate messages per second"
    set xrange [48:24000]
    set logscale y 10
    set format y "%.0s%c"
    fan_channels = "pub forwarder zmq-forwarder"
    fan_titles = "'direct PUB/SUB' 'zkit-forwarder' 'zmq\\_proxy XSUB/XPUB'"
    plot for [i=1:3] dir . "/fanout-tcp-" . word(fan_channels, i) . "-k1.dat" \
            using 1:2 with linespoints lw 2 pt 7 lc i title word(fan_titles, i) . ", K=1", \
         for [i=1:3] dir . "/fanout-tcp-" . word(fan_channels, i) . "-k4.dat" \
            using 1:2 with linespoints lw 2 pt 5 dt 2 lc i title word(fan_titles, i) . ", K=4"
    unset logscale y
    set format y "%g"
}

# ---------------------------------------------------------------- latency
if (file_ok(dir . "/latency-tcp-64.dat")) {
    set output dir . "/latency-tcp.png"
    unset logscale x
    set xtics auto
    set xrange [*:*]
    set key inside top left horizontal samplen 1 font ",10"
    set yrange [10:*]
    set xlabel ""
    set style data histograms
    set style histogram clustered gap 1
    set style fill solid 0.8 border -1
    set logscale y 10
    set ylabel "round trip (µs)"
    set xtics rotate by -20
    set multiplot layout 1,2 title "REQ/REP round trips over tcp (median of each percentile; lower is better)"
    do for [size in "64 1024"] {
        f = dir . "/latency-tcp-" . size . ".dat"
        if (file_ok(f)) {
            set title size_label(int(size)) . " messages"
            plot f using 3:xtic(1) title "p50", '' using 4 title "p90", \
                 '' using 5 title "p99", '' using 6 title "p99.9"
        }
    }
    unset multiplot
}

# ---------------------------------------------------------------- queue
# DIR/queue.dat: channel puts_per_s acked_per_s e2e_per_s (medians, 100 B, tcp)
if (file_ok(dir . "/queue.dat")) {
    reset
    set terminal pngcairo size 1100,700 enhanced font "DejaVu Sans,12"
    set output dir . "/queue.png"
    set grid ytics
    set title "zkit-queue, 100 B messages over tcp (median msg/s; higher is better)"
    set key below horizontal maxrows 2
    set style data histograms
    set style histogram clustered gap 1
    set style fill solid 0.8 border -1
    set ylabel "messages per second"
    set format y "%.0s%c"
    set yrange [0:*]
    set xtics rotate by -20
    stats dir . "/queue.dat" using 2 nooutput
    set xrange [-0.5:STATS_records - 0.5]
    plot dir . "/queue.dat" using 2:xtic(1) title "confirmed puts/s", \
         '' using 3 title "consumed+acked/s", '' using 4 title "end to end/s", \
         150000 with lines dt 2 lw 2 lc rgb "gray30" title "target: 150k puts/s (fsync batch)", \
         100000 with lines dt 3 lw 2 lc rgb "gray50" title "target: 100k consumed+acked/s"
}
