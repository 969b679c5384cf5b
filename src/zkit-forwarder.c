/*  zkit-forwarder — the fan-out device.  */

#include "zk_classes.h"

int
main (int argc, char **argv)
{
    zk_device_options_t values = {.linger_seconds = 1};
    zk_option_t options[ZK_DEVICE_OPTIONS + 1];
    zk_device_options (options, &values);
    zk_cli_t cli = {
        .program = "zkit-forwarder",
        .usage = "[options] FRONTEND BACKEND",
        .summary = "Fan messages out from publishers (FRONTEND) to subscribers (BACKEND).",
        .description = "FRONTEND is xsub (or sub), BACKEND xpub (or pub). With xsub/xpub the\n"
                       "subscriptions flow upstream, so publishers filter at the source; every\n"
                       "subscribe is passed up (verbose xpub) and logged with -v.",
        .examples = "  zkit-forwarder 'xsub@tcp://127.0.0.1:6000' 'xpub@tcp://127.0.0.1:6001'",
        .options = options,
        .min_args = 2,
        .max_args = 2,
        .spec_args = 2,
    };
    char **args;
    zk_cli_parse (&cli, argc, argv, &args);
    zk_forwarder_config_t config = {
        .frontend = args[0], .backend = args[1], ZK_DEVICE_CONFIG_FIELDS (values)};
    char reason[512];
    if (zk_forwarder_validate (&config, reason, sizeof reason))
        zk_cli_usage_error (&cli, "%s", reason);
    zk_forwarder_t *forwarder = zk_forwarder_new (&config);
    if (!forwarder)
        return 1;
    int rc = zk_cli_run (&cli, zk_forwarder_actor (forwarder), values.ready_file);
    zk_forwarder_destroy (&forwarder);
    return rc ? 1 : 0;
}
