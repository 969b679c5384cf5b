/*  zkit-proxy — the stateless point-to-point and request-response device.  */

#include "zk_classes.h"

int
main (int argc, char **argv)
{
    zk_device_options_t values = {.linger_seconds = 1};
    zk_option_t options[ZK_DEVICE_OPTIONS + 1];
    zk_device_options (options, &values);
    zk_cli_t cli = {
        .program = "zkit-proxy",
        .usage = "[options] FRONTEND BACKEND",
        .summary = "Move messages from FRONTEND to BACKEND (and replies back), byte-exact.",
        .description =
            "Pairs: pull@ -> push@ is a streamer; router@ -> dealer@ a request-response\n"
            "queue; dealer, pair, sub, xsub/xpub and pub also work where they can.\n"
            "req/rep are refused (lockstep): use router/dealer.",
        .examples = "  zkit-proxy 'pull@tcp://127.0.0.1:5557' 'push@tcp://127.0.0.1:5558'\n"
                    "  zkit-proxy 'router@tcp://*:5559' 'dealer@tcp://*:5560' --stats 10",
        .options = options,
        .min_args = 2,
        .max_args = 2,
        .spec_args = 2,
    };
    char **args;
    zk_cli_parse (&cli, argc, argv, &args);
    zk_proxy_config_t config = {
        .frontend = args[0], .backend = args[1], ZK_DEVICE_CONFIG_FIELDS (values)};
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
