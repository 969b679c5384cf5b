/*  zkit-cat — the shell's door to every zkit channel (the work is zk_cat).  */

#include "../include/zkit.h"

int
main (int argc, char **argv)
{
    zk_cat_config_t config = {0};
    zk_cli_security_t security = {0};
    zk_option_t options[] = {
        {"data", 'D', ZK_OPT_LIST, &config.data, "TEXT",
         "send TEXT instead of reading stdin (repeatable)"},
        {"delimiter", 'd', ZK_OPT_STRING, &config.delimiter, "C",
         "byte ending each message, in and out (default \\n; \\t \\0 \\xHH)"},
        {"null", '0', ZK_OPT_FLAG, &config.null_delimiter, NULL,
         "messages end with a NUL byte (same as -d '\\0')"},
        {"raw", 0, ZK_OPT_FLAG, &config.raw, NULL,
         "all of stdin is one message; print without delimiter"},
        {"frame-sep", 'F', ZK_OPT_STRING, &config.frame_sep, "SEP",
         "split messages into frames at SEP; print frames joined by it"},
        {"max-size", 0, ZK_OPT_SIZE, &config.max_size, "BYTES",
         "largest message read or received (default 1M)", 1, 4294967296.0},
        {"envelope", 'e', ZK_OPT_FLAG, &config.envelope, NULL,
         "put a fresh zkit envelope frame in front of each message"},
        {"header", 'H', ZK_OPT_LIST, &config.headers, "K=V",
         "envelope header (repeatable; implies -e)"},
        {"content-type", 0, ZK_OPT_STRING, &config.content_type, "TYPE",
         "envelope content type (implies -e)"},
        {"subscribe", 's', ZK_OPT_LIST, &config.subscribe, "TOPIC",
         "sub: only messages starting with TOPIC (repeatable)"},
        {"count", 'n', ZK_OPT_INT, &config.count, "N",
         "exit after printing N messages (push, pub: sending N)", 1, 1e9},
        {"timeout", 0, ZK_OPT_SECONDS, &config.timeout, "SECONDS",
         "give up after SECONDS (see above; senders: 5)", 0.001, 1e6},
        {"retries", 0, ZK_OPT_INT, &config.retries, "N",
         "req: send a request up to N more times, next endpoint in turn", 0, 100},
        {"format", 0, ZK_OPT_CHOICE, &config.format, "FMT",
         "output: raw (default), hex, json or msgpack", 0, 0, "raw|hex|json|msgpack"},
        {"wait-subscribers", 0, ZK_OPT_INT, &config.wait_subscribers, "N",
         "pub: send once N subscriptions arrived", 1, 1e6},
        {"ready-file", 0, ZK_OPT_OUTFILE, &config.ready_file, "PATH",
         "write 'socket ENDPOINT' lines here once attached"},
        {"hwm", 0, ZK_OPT_INT, &config.hwm, "N", "send/receive high-water mark (default 1000)", 1,
         1e9},
        {"list", 0, ZK_OPT_FLAG, &config.list, NULL,
         "queue: print 'ID ATTEMPTS REASON' per message held (-n: at most N)"},
        {"requeue", 0, ZK_OPT_FLAG, &config.requeue, NULL,
         "queue NAME.dead: move its messages back into NAME"},
        {"id", 0, ZK_OPT_STRING, &config.id, "ID", "--requeue: only the message ID"},
        {"submit", 0, ZK_OPT_FLAG, &config.submit, NULL,
         "queue: put all of stdin as one job, print its id once durable"},
        {"status", 0, ZK_OPT_STRING, &config.status, "ID",
         "queue: print job ID's state and path (--format json: one object)"},
        {"wait", 0, ZK_OPT_STRING, &config.wait, "ID",
         "queue: wait for job ID: print its result (0), or its reason (1)"},
        ZK_CLI_SECURITY_TABLE (security),
        {NULL},
    };
    zk_cli_t cli = {
        .program = "zkit-cat",
        .usage = "SPEC [options]",
        .summary = "Send stdin to a socket, or print what arrives on it, one message per line.",
        .description =
            "push, pub, pair, req and dealer send stdin (or --data); an empty line is an\n"
            "empty message, a last line without a newline is a message. pull, sub and rep\n"
            "print what arrives (rep also answers each request with itself); req prints\n"
            "each reply, dealer as many replies as it sent; pair with -n N then prints N.\n"
            "--timeout: senders wait that long in all for peers to take the messages (time\n"
            "waiting for stdin does not count); receivers that long for -n messages; req\n"
            "per attempt; dealer for the whole exchange (receivers, req, dealer: no limit).\n"
            "req is the reliable client (docs/protocol.md 9): every request carries an id;\n"
            "with --retries N (and --timeout) a request without a reply in time is sent\n"
            "again, up to N times, each time to the next endpoint of 'req>A,B' (one that is\n"
            "not connected is skipped at once); no reply at all: exit 3.\n"
            "queue>tcp://HOST:PORT/NAME (a zkit-queue): puts stdin, one message per line,\n"
            "and exits 0 once every one is confirmed durable (3 if some were not within\n"
            "--timeout of being read, default 5 s); with -n N takes N messages instead,\n"
            "prints each body and acks it once written and flushed. NAME.dead holds the\n"
            "dead letters: --list prints them (ID ATTEMPTS REASON), --requeue moves them\n"
            "back into NAME (--id ID: one).\n"
            "Jobs: --submit puts all of stdin as one job and prints its id; --status ID\n"
            "prints the job's state (queued, running, done, dead), its path through the\n"
            "queues a workflow forwarded it along, and its result or reason; --wait ID\n"
            "polls until it is done (prints the result as it is, exit 0) or dead (the\n"
            "reason on stderr, exit 1); --timeout bounds the wait (exit 3). Ask the queue\n"
            "it was submitted to (or any queue of its path).",
        .exit_status = "0 ok, 1 runtime failure or an error reply (zk-status=error),\n"
                       "2 usage error, 3 not delivered (queue: not confirmed durable) / not\n"
                       "all received in time. --wait: 0 done, 1 dead, 3 --timeout passed;\n"
                       "--status: 0, or 1 for an unknown job.",
        .examples =
            "  printf 'a\\nb\\n' | zkit-cat 'push>tcp://127.0.0.1:5557'\n"
            "  zkit-cat 'pull@tcp://127.0.0.1:5558' -n 2 --timeout 10\n"
            "  echo hello | zkit-cat 'req>tcp://127.0.0.1:5559'\n"
            "  zkit-cat 'req>tcp://10.0.0.1:5559,tcp://10.0.0.2:5559' --timeout 2 --retries 3\n"
            "  zkit-cat 'sub>tcp://127.0.0.1:6001' -s weather --format json\n"
            "  seq 100 | zkit-cat 'queue>tcp://127.0.0.1:5570/orders'\n"
            "  zkit-cat 'queue>tcp://127.0.0.1:5570/orders' -n 10\n"
            "  zkit-cat --list 'queue>tcp://127.0.0.1:5570/orders.dead'\n"
            "  zkit-cat --requeue 'queue>tcp://127.0.0.1:5570/orders.dead'\n"
            "  id=$(zkit-cat --submit 'queue>tcp://127.0.0.1:5570/resize' < photo.jpg)\n"
            "  zkit-cat --status \"$id\" 'queue>tcp://127.0.0.1:5570/resize' --format json\n"
            "  zkit-cat --wait \"$id\" 'queue>tcp://127.0.0.1:5570/resize' --timeout 60",
        .options = options,
        .min_args = 1,
        .max_args = 1,
        .spec_args = 1,
    };
    char **args;
    zk_cli_parse (&cli, argc, argv, &args);
    config.spec = zk_cli_secure_spec (&cli, &security, args[0]);
    zk_cli_secure_done (&cli, &security);
    char reason[512];
    if (zk_cat_validate (&config, reason, sizeof reason))
        zk_cli_usage_error (&cli, "%s", reason);
    zsys_catch_interrupts ();
    zk_cat_t *cat = zk_cat_new (&config);
    if (!cat)
        return 1;
    int rc = zk_cat_run (cat, stdin, stdout);
    zk_cat_destroy (&cat);
    return zk_cat_exit_code (rc);
}
