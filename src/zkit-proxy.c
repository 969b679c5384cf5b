/*  zkit-proxy — the stateless point-to-point and request-response device,
    and with --lb the load balancer by readiness (ZKW/1).                */

#include "zk_classes.h"

int
main (int argc, char **argv)
{
    zk_device_options_t values = {.linger_seconds = 1};
    bool lb = false;
    double heartbeat_seconds = 0;
    zk_cli_security_t security = {0};
    zk_option_t options[ZK_DEVICE_OPTIONS + ZK_CLI_SECURITY_OPTIONS + 3];
    zk_device_options (options, &values);
    zk_cli_security_options (options + ZK_DEVICE_OPTIONS + 2, &security);
    options[ZK_DEVICE_OPTIONS] = (zk_option_t){
        "lb", 0, ZK_OPT_FLAG, &lb, NULL, "load balancer: ZKW/1 workers on a router backend"};
    options[ZK_DEVICE_OPTIONS + 1] =
        (zk_option_t){"heartbeat",    0,
                      ZK_OPT_SECONDS, &heartbeat_seconds,
                      "SECONDS",      "--lb: heartbeat interval, as the workers' (default 1)",
                      0.05,           60};
    options[ZK_DEVICE_OPTIONS + ZK_CLI_SECURITY_OPTIONS + 2] = (zk_option_t){NULL};
    zk_cli_t cli = {
        .program = "zkit-proxy",
        .usage = "[options] FRONTEND BACKEND",
        .summary = "Move messages from FRONTEND to BACKEND (and replies back), byte-exact.",
        .description =
            "Pairs: pull@ -> push@ is a streamer; router@ -> dealer@ a request-response\n"
            "queue; dealer, pair, sub, xsub/xpub and pub also work where they can.\n"
            "req/rep are refused (lockstep): use router/dealer.\n"
            "With --lb (router@ router@), workers (zkit-worker --lb) announce free slots\n"
            "and are heart-beaten: a request goes to the least recently used worker with a\n"
            "free slot; a worker silent for 3 heartbeats is dropped and the requests it\n"
            "held are answered at once with an error reply marked zk-retry=1.",
        .examples = "  zkit-proxy 'pull@tcp://127.0.0.1:5557' 'push@tcp://127.0.0.1:5558'\n"
                    "  zkit-proxy 'router@tcp://*:5559' 'dealer@tcp://*:5560' --stats 10\n"
                    "  zkit-proxy --lb 'router@tcp://*:5559' 'router@tcp://*:5560'\n"
                    "  zkit-worker --lb --in 'dealer>tcp://127.0.0.1:5560' -- tr a-z A-Z",
        .options = options,
        .min_args = 2,
        .max_args = 2,
        .spec_args = 2,
    };
    char **args;
    zk_cli_parse (&cli, argc, argv, &args);
    args[0] = zk_cli_secure_spec (&cli, &security, args[0]);
    args[1] = zk_cli_secure_spec (&cli, &security, args[1]);
    values.capture = zk_cli_secure_spec (&cli, &security, values.capture);
    values.control = zk_cli_secure_spec (&cli, &security, values.control);
    zk_cli_secure_done (&cli, &security);
    if (heartbeat_seconds > 0 && !lb)
        zk_cli_usage_error (&cli, "--heartbeat needs --lb");
    zk_proxy_config_t config = {.frontend = args[0],
                                .backend = args[1],
                                .lb = lb,
                                .heartbeat_ms = (int) (heartbeat_seconds * 1000 + 0.5),
                                ZK_DEVICE_CONFIG_FIELDS (values)};
    char reason[512];
    if (zk_proxy_validate (&config, reason, sizeof reason))
        zk_cli_usage_error (&cli, "%s", reason);
    zk_proxy_t *proxy = zk_proxy_new (&config);
    if (!proxy)
        return 1;
    int rc = zk_cli_run (&cli, zk_proxy_actor (proxy), values.ready_file);
    zk_proxy_destroy (&proxy);
    return rc ? 1 : 0;
}
