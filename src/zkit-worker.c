/*  zkit-worker — turn any shell command into a service on any channel.  */

#include "zk_classes.h"

int
main (int argc, char **argv)
{
    zk_worker_config_t config = {0};
    zk_cli_security_t security = {0};
    zk_strlist_t topics = {0};
    const char *ready_file = NULL;
    double timeout_seconds = 0, stats_seconds = 0, linger_seconds = 1;
    double heartbeat_seconds = 0, ttl_seconds = 300, handshake_seconds = 0;
    int reply_cache = 1000;
    config.jobs = 1;
    config.max_output = (size_t) 16 << 20;
    config.reply_cache_bytes = (size_t) 64 << 20;
    zk_option_t options[] = {
        {"in", 0, ZK_OPT_SPEC, &config.input, "SPEC",
         "input: pull, sub, rep, dealer, router or queue (required)"},
        {"out", 0, ZK_OPT_SPEC, &config.output, "SPEC",
         "send COMMAND's stdout here: push, pub, dealer or queue"},
        {"subscribe", 0, ZK_OPT_LIST, &topics, "TOPIC",
         "sub input: topic prefix to take (repeatable; default all)"},
        {"jobs", 'j', ZK_OPT_INT, &config.jobs, "N", "run up to N commands at once (default 1)", 1,
         ZK_WORKER_MAX_JOBS},
        {"timeout", 't', ZK_OPT_SECONDS, &timeout_seconds, "SECONDS",
         "kill a command running longer; the request fails", 0, 31536000},
        {"lines", 0, ZK_OPT_FLAG, &config.lines, NULL,
         "keep COMMAND running: a message is a line in, a line out"},
        {"max-output", 0, ZK_OPT_SIZE, &config.max_output, "BYTES",
         "more stdout (lines: a longer line) fails (default 16M)", 1, 1e12},
        {"max-size", 0, ZK_OPT_LIMIT, &config.max_size, "BYTES",
         "refuse larger input messages (default 1M; 'unlimited')", 1, 1e15},
        {"hwm", 0, ZK_OPT_INT, &config.hwm, "N", "send/receive high-water mark (default 1000)", 1,
         1e9},
        {"handshake-timeout", 0, ZK_OPT_SECONDS, &handshake_seconds, "SECONDS",
         "drop a peer that has not finished its handshake (default 5)", 0.001, 3600},
        {"stats", 0, ZK_OPT_SECONDS, &stats_seconds, "SECONDS",
         "log a one-line counter report every SECONDS", 0, 86400},
        {"linger", 0, ZK_OPT_SECONDS, &linger_seconds, "SECONDS",
         "hand queued replies over on stop (default 1)", 0, 3600},
        {"ready-file", 0, ZK_OPT_OUTFILE, &ready_file, "PATH",
         "write 'input ENDPOINT' / 'output ENDPOINT' lines here once bound"},
        {"name", 0, ZK_OPT_STRING, &config.name, "NAME",
         "queue input: consumer name the server records (default HOSTNAME:PID)"},
        {"lb", 0, ZK_OPT_FLAG, &config.lb, NULL,
         "serve a zkit-proxy --lb (ZKW/1); --in is 'dealer>BACKEND'"},
        {"heartbeat", 0, ZK_OPT_SECONDS, &heartbeat_seconds, "SECONDS",
         "--lb: heartbeat interval, the proxy's (default 1)", 0.05, 60},
        {"reply-cache", 0, ZK_OPT_INT, &reply_cache, "N",
         "answer retried request ids from the last N replies (default 1000; 0 off)", 0, 1e7},
        {"reply-cache-bytes", 0, ZK_OPT_SIZE, &config.reply_cache_bytes, "BYTES",
         "the cached replies' bytes at most (default 64M)", 1, 1e12},
        {"reply-ttl", 0, ZK_OPT_SECONDS, &ttl_seconds, "SECONDS",
         "forget a cached reply after SECONDS (default 300)", 0.001, 1e6},
        ZK_CLI_SECURITY_TABLE (security),
        {NULL},
    };
    zk_cli_t cli = {
        .program = "zkit-worker",
        .usage = "--in SPEC [--out SPEC] [options] -- COMMAND [ARGS...]",
        .summary = "Run COMMAND for each message: the message on its stdin, its stdout the reply.",
        .description =
            "rep, router and dealer inputs reply on the input (dealer: unless --out is\n"
            "given); pull and sub inputs send stdout to --out, or discard it. A command\n"
            "that exits non-zero, dies or times out fails: a requester gets an error reply\n"
            "(an envelope with zk-status=error, zk-error=REASON, then the stdout so far).\n"
            "--lines keeps one COMMAND per job running and exchanges one line per message;\n"
            "it must flush each answer line (sed -u, stdbuf -oL ...).\n"
            "A queue input (queue>tcp://HOST:PORT/NAME) holds at most --jobs messages; it\n"
            "acks one when COMMAND exits 0 (stdout is the result) and nacks it otherwise,\n"
            "so the queue delivers it again (NAME.dead after zkit-queue's --max-deliver). A\n"
            "queue --out on the same server hands stdout over with FWD: the input is done\n"
            "and the output queued under the same id (the job id) in one durable step; on\n"
            "another server it puts stdout and acks the input once the put is confirmed.\n"
            "--lb serves a zkit-proxy --lb: the worker connects to its backend, announces\n"
            "--jobs free slots and heartbeats (same --heartbeat as the proxy); stopping,\n"
            "its running requests get errors with zk-retry=1 and it says DISCONNECT.\n"
            "Replying inputs keep a reply cache: a request whose envelope id was answered\n"
            "(success) gets that reply again without running COMMAND; one whose id is\n"
            "running waits for that run.",
        .examples =
            "  zkit-worker --in 'rep@tcp://127.0.0.1:5560' -- tr a-z A-Z\n"
            "  zkit-worker --in 'pull>tcp://127.0.0.1:5557' --out 'push>tcp://127.0.0.1:5558'"
            " -j 4 -- sh -c 'wc -c'\n"
            "  zkit-worker --in 'rep>tcp://127.0.0.1:5561' --lines -j 2 -- sed -u 's/^/got /'\n"
            "  zkit-worker --in 'queue>tcp://127.0.0.1:5570/orders' -j 4 -- ./process.sh\n"
            "  zkit-worker --in 'queue>tcp://127.0.0.1:5570/step1' --out "
            "'queue>tcp://127.0.0.1:5570/step2' --name resize-1 -- ./resize.sh\n"
            "  zkit-worker --lb --in 'dealer>tcp://127.0.0.1:5581' -j 4 -- ./handle.sh",
        .options = options,
        .min_args = 1,
        .max_args = -1,
    };
    char **args;
    int count = zk_cli_parse (&cli, argc, argv, &args);
    if (!config.input)
        zk_cli_usage_error (&cli, "--in SPEC is required");
    config.input = zk_cli_secure_spec (&cli, &security, config.input);
    config.output = zk_cli_secure_spec (&cli, &security, config.output);
    zk_cli_secure_done (&cli, &security);
    //  The positionals are gathered at the front of argv: copy them out NULL-terminated.
    //  Static: still reachable when a usage error exits below (no leak report).
    static char **command;
    static const char **subscribe;
    command = calloc ((size_t) count + 1, sizeof *command);
    subscribe = calloc ((size_t) topics.count + 1, sizeof *subscribe);
    if (!command || !subscribe)
        return 1;
    memcpy (command, args, (size_t) count * sizeof *command);
    memcpy (subscribe, topics.items, (size_t) topics.count * sizeof *subscribe);
    if (count && !zk_cli_command_exists (command[0]))
        zk_cli_usage_error (&cli, "command '%s' not found (not in PATH, or not executable)",
                            command[0]);
    config.argv = command;
    config.subscribe = topics.count ? subscribe : NULL;
    config.timeout_ms =
        timeout_seconds > 0 && timeout_seconds < 0.001 ? 1 : (int) (timeout_seconds * 1000);
    config.linger_ms = (int) (linger_seconds * 1000);
    config.stats_interval_ms = (int) (stats_seconds * 1000);
    config.heartbeat_ms = (int) (heartbeat_seconds * 1000);
    config.handshake_ms = (int) (handshake_seconds * 1000 + 0.5);
    config.reply_cache = reply_cache;
    config.reply_ttl_ms = (int) (ttl_seconds * 1000 + 0.5);  //  0.001 s: 1 ms, never 0
    char reason[512];
    if (zk_worker_validate (&config, reason, sizeof reason))
        zk_cli_usage_error (&cli, "%s", reason);
    int rc = 1;
    zk_worker_t *worker = zk_worker_new (&config);
    if (worker) {
        rc = zk_cli_run (&cli, zk_worker_actor (worker), ready_file) ? 1 : 0;
        zk_worker_destroy (&worker);
    }
    free (command);
    free (subscribe);
    return rc;
}
