/*  zkit-queue — durable named queues on disk, served over ZKQ/1.  */

#include "zk_classes.h"

int
main (int argc, char **argv)
{
    zk_queue_config_t config;
    zk_queue_config_init (&config);
    zk_strlist_t pulls = {0};
    const char *ready_file = NULL;
    const char *fsync = "batch";
    double lease = 30, dedup = 120, ttl = 600, stats = 0, linger = 1, handshake = 0;
    size_t segment_size = 0, max_done = config.max_done;
    zk_cli_security_t security = {0};
    zk_option_t options[] = {
        {"data", 'd', ZK_OPT_STRING, &config.data_dir, "DIR",
         "keep the queues here, one journal directory each (required)"},
        {"lease", 0, ZK_OPT_SECONDS, &lease, "SECONDS",
         "redeliver a message not acked within this (default 30)", 0.001, 31536000},
        {"max-deliver", 0, ZK_OPT_INT, &config.max_deliver, "N",
         "attempts before a message goes to NAME.dead (default 5)", 1, 65535},
        {"dedup-window", 0, ZK_OPT_SECONDS, &dedup, "SECONDS",
         "a PUT of an id accepted this recently is not stored again (default 120)", 0, 31536000},
        {"fsync", 0, ZK_OPT_CHOICE, &fsync, "POLICY",
         "always (per PUT/ACK), batch (group commit; default) or never", 0, 0,
         "always|batch|never"},
        {"result-ttl", 0, ZK_OPT_SECONDS, &ttl, "SECONDS",
         "keep done/dead status and results this long (default 600)", 0, 31536000},
        {"max-size", 0, ZK_OPT_SIZE, &config.max_size, "BYTES",
         "largest message body, all frames (default 1M)", 1, 256 << 20},
        {"max-done", 0, ZK_OPT_SIZE, &max_done, "N",
         "finished messages remembered per queue (default 100000)", 1, 1e9},
        {"max-queues", 0, ZK_OPT_INT, &config.max_queues, "N",
         "queues this server creates at most (default 1000)", 1, 1e6},
        {"pull", 0, ZK_OPT_LIST, &pulls, "NAME=SPEC",
         "enqueue into NAME what arrives on this pull socket (repeatable)"},
        {"segment-size", 0, ZK_OPT_SIZE, &segment_size, "BYTES",
         "journal segment size (default 64M)", 4096, 1 << 30},
        {"hwm", 0, ZK_OPT_INT, &config.hwm, "N",
         "send/receive high-water mark (default 10000 on the router)", 1, 1e9},
        {"handshake-timeout", 0, ZK_OPT_SECONDS, &handshake, "SECONDS",
         "drop a peer that has not finished its handshake (default 5)", 0.001, 3600},
        {"stats", 0, ZK_OPT_SECONDS, &stats, "SECONDS",
         "log a one-line counter report every SECONDS", 0, 86400},
        {"linger", 0, ZK_OPT_SECONDS, &linger, "SECONDS",
         "hand queued replies over on stop (default 1)", 0, 3600},
        {"ready-file", 0, ZK_OPT_OUTFILE, &ready_file, "PATH",
         "write 'router ENDPOINT' ('pull:NAME ENDPOINT') lines here"},
        ZK_CLI_SECURITY_TABLE (security),
        {NULL},
    };
    zk_cli_t cli = {
        .program = "zkit-queue",
        .usage = "--data DIR [options] SPEC...",
        .summary =
            "Durable named queues on disk: put, get, ack, nack, dead letters, forward, trace.",
        .description =
            "Each SPEC is a router socket speaking ZKQ/1 (docs/protocol.md); queues are\n"
            "created on first use under DIR and survive restarts. A message is confirmed\n"
            "once durable, leased to one consumer at a time, delivered again when its lease\n"
            "runs out or its consumer disconnects, and moved to NAME.dead after\n"
            "--max-deliver attempts. A workflow step forwards its message to the next\n"
            "queue under the same id (ack and put in one, atomic across a crash); TRACE\n"
            "shows a job's path, and results stay --result-ttl after the ack.",
        .examples = "  zkit-queue --data /var/lib/zkit 'router@tcp://*:5570'\n"
                    "  zkit-queue --data ./q --fsync always --lease 10 \\\n"
                    "      --pull 'orders=pull@tcp://127.0.0.1:5571' 'router@tcp://127.0.0.1:5570'",
        .options = options,
        .min_args = 1,
        .max_args = -1,
    };
    char **args;
    int count = zk_cli_parse (&cli, argc, argv, &args);
    if (!config.data_dir)
        zk_cli_usage_error (&cli, "--data DIR is required");
    //  The positionals are gathered at the front of argv: copy them out NULL-terminated.
    const char **specs = calloc ((size_t) count + 1, sizeof *specs);
    const char **pull_specs = calloc ((size_t) pulls.count + 1, sizeof *pull_specs);
    if (!specs || !pull_specs)
        return 1;
    memcpy (specs, args, (size_t) count * sizeof *specs);
    memcpy (pull_specs, pulls.items, (size_t) pulls.count * sizeof *pull_specs);
    for (int index = 0; index < count; index++)
        specs[index] = zk_cli_secure_spec (&cli, &security, specs[index]);
    for (int index = 0; index < pulls.count; index++)
        pull_specs[index] = zk_cli_secure_spec (&cli, &security, pull_specs[index]);
    zk_cli_secure_done (&cli, &security);
    config.specs = specs;
    config.pulls = pull_specs;
    config.lease_ms = (int64_t) (lease * 1000 + 0.5);
    config.dedup_window_ms = (int64_t) (dedup * 1000 + 0.5);
    config.result_ttl_ms = (int64_t) (ttl * 1000 + 0.5);
    config.fsync = streq (fsync, "always")  ? ZK_QUEUE_FSYNC_ALWAYS
                   : streq (fsync, "never") ? ZK_QUEUE_FSYNC_NEVER
                                            : ZK_QUEUE_FSYNC_BATCH;
    config.segment_size = segment_size;
    config.max_done = max_done;
    config.linger_ms = (int) (linger * 1000);
    config.stats_interval_ms = (int) (stats * 1000);
    config.handshake_ms = (int) (handshake * 1000 + 0.5);
    char reason[512];
    if (zk_queue_validate (&config, reason, sizeof reason))
        zk_cli_usage_error (&cli, "%s", reason);
    int rc = 1;
    zk_queue_t *queue = zk_queue_new (&config);
    if (queue) {
        rc = zk_cli_run (&cli, zk_queue_actor (queue), ready_file) ? 1 : 0;
        zk_queue_destroy (&queue);
    }
    free (specs);
    free (pull_specs);
    return rc;
}
