/*  zkit-bench — every zkit channel measured against raw libzmq in the same
    run (the work is zk_bench).                                            */

#include "../include/zkit.h"
#include "../include/zk_bench.h"

#include <unistd.h>

int
main (int argc, char **argv)
{
    if (zk_bench_is_role (argc, argv))
        return zk_bench_role_main (argc, argv);
    zk_bench_config_t config = {.warmup = -1};
    bool csv = false, json = false, markdown = false, list = false;
    int count = 0;
    zk_option_t options[] = {
        {"channel", 'c', ZK_OPT_STRING, &config.channels, "LIST",
         "channels, comma-separated (default push,proxy,pub,forwarder,reqrep,reqrep-proxy)"},
        {"size", 's', ZK_OPT_STRING, &config.sizes, "LIST",
         "message sizes in bytes, comma-separated, k/M suffixes (default 64)"},
        {"transport", 't', ZK_OPT_STRING, &config.transports, "LIST",
         "tcp, ipc, inproc (with --inproc), comma-separated (default tcp)"},
        {"subscribers", 'k', ZK_OPT_STRING, &config.subscribers, "LIST",
         "fan-out: subscriber counts K, comma-separated (default 1)"},
        {"count", 'n', ZK_OPT_INT, &count, "N",
         "messages (round trips) per run (default: 32 MiB worth, 2000 to 500000; latency 2000; "
         "queue 50000, fsync always 5000)",
         1, 1e9},
        {"repeat", 'r', ZK_OPT_INT, &config.repeat, "R",
         "runs of every case; medians reported (default 3)", 1, ZK_BENCH_MAX_REPEAT},
        {"warmup", 0, ZK_OPT_INT, &config.warmup, "N",
         "latency: round trips not recorded (default 100)", 0, 1e6},
        {"inproc", 0, ZK_OPT_FLAG, &config.inproc, NULL,
         "threads in one process, engines in-process (allows the inproc transport)"},
        {"pin", 0, ZK_OPT_FLAG, &config.pin, NULL,
         "pin the sender to CPU 0 and the receivers to CPU 1 (devices float)"},
        {"hwm", 0, ZK_OPT_INT, &config.hwm, "N",
         "high-water mark of every socket and device (default 1000)", 1, 1e9},
        {"window", 0, ZK_OPT_INT, &config.window, "N",
         "fan-out: most messages a publisher is ahead of a subscriber (default 2/5 of hwm)", 1,
         1e9},
        {"queue-window", 0, ZK_OPT_INT, &config.queue_window, "N",
         "queue channels: PUTs awaiting confirms, and the GET window (default 2000)", 1,
         ZK_BENCH_MAX_QUEUE_WINDOW},
        {"timeout", 0, ZK_OPT_SECONDS, &config.timeout, "SECONDS",
         "a run fails when nothing moves for this long (default 10)", 0.01, 3600},
        {"csv", 0, ZK_OPT_FLAG, &csv, NULL, "print CSV (one row per case)"},
        {"json", 0, ZK_OPT_FLAG, &json, NULL, "print JSON"},
        {"markdown", 0, ZK_OPT_FLAG, &markdown, NULL, "print markdown tables"},
        {"csv-file", 0, ZK_OPT_OUTFILE, &config.csv_path, "PATH", "also write the CSV to PATH"},
        {"bin-dir", 0, ZK_OPT_STRING, &config.bin_dir, "DIR",
         "where zkit-proxy & co are (default $ZK_BIN, else beside zkit-bench)"},
        {"list-channels", 0, ZK_OPT_FLAG, &list, NULL, "list the channels and exit"},
        {"skip-every", 0, ZK_OPT_INT, &config.skip_every, "N",
         "testing: leave out every Nth message, to see loss reported", 1, 1e9},
        {NULL},
    };
    zk_cli_t cli = {
        .program = "zkit-bench",
        .usage = "[options]",
        .summary = "Measure zkit's channels against raw libzmq on this machine, in the same run.",
        .description =
            "Each case runs R times, interleaved with its baseline (direct PUSH/PULL, PUB/SUB\n"
            "or REQ/REP on the same transport and size); the medians are printed with the\n"
            "ratio to the baseline. Sender and receivers are separate processes (threads\n"
            "with --inproc); devices are the real binaries. Every message is counted and\n"
            "sequence-checked: exit 3 if any was lost, 1 if a run failed, 0 otherwise.",
        .examples = "  zkit-bench -c proxy,zmq-proxy,zproxy -s 64,1k -r 5\n"
                    "  zkit-bench -c forwarder,zmq-forwarder -k 1,4 --csv\n"
                    "  zkit-bench -c reqrep-proxy -s 64 -n 10000 --json\n"
                    "  zkit-bench -c queue-batch,queue-always,queue-never -s 100\n"
                    "  zkit-bench --inproc -t inproc -c proxy -s 64",
        .options = options,
        .max_args = 0,
        .allow_no_args = true,
    };
    char **args;
    zk_cli_parse (&cli, argc, argv, &args);
    if (list) {
        zk_bench_print_channels (stdout);
        return 0;
    }
    if (csv + json + markdown > 1)
        zk_cli_usage_error (&cli, "choose one of --csv, --json, --markdown");
    config.format = csv ? "csv" : json ? "json" : markdown ? "markdown" : "table";
    config.count = count;
    config.progress = isatty (STDERR_FILENO);
    char reason[512];
    if (zk_bench_validate (&config, reason, sizeof reason))
        zk_cli_usage_error (&cli, "%s", reason);
    zsys_catch_interrupts ();
    zk_bench_t *bench = zk_bench_new (&config);
    if (!bench)
        return 1;
    int rc = zk_bench_run (bench, stdout);
    uint64_t lost = zk_bench_lost (bench);
    zk_bench_destroy (&bench);
    return lost ? 3 : rc ? 1 : 0;
}
