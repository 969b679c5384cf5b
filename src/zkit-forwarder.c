/*  zkit-forwarder — the fan-out device.  */

#include "zk_classes.h"

int
main (int argc, char **argv)
{
    zk_device_options_t values = {.linger_seconds = 1};
    size_t max_topic = ZK_MAX_TOPIC_DEFAULT;
    zk_cli_security_t security = {0};
    zk_option_t options[ZK_DEVICE_OPTIONS + ZK_CLI_SECURITY_OPTIONS + 2];
    zk_device_options (options, &values);
    zk_cli_security_options (options + ZK_DEVICE_OPTIONS + 1, &security);
    options[ZK_DEVICE_OPTIONS] =
        (zk_option_t){"max-topic", 0,
                      ZK_OPT_SIZE, &max_topic,
                      "BYTES",     "drop longer subscriptions (default 256)",
                      1,           ZK_MAX_TOPIC_MAX};
    options[ZK_DEVICE_OPTIONS + ZK_CLI_SECURITY_OPTIONS + 1] = (zk_option_t){NULL};
    zk_cli_t cli = {
        .program = "zkit-forwarder",
        .usage = "[options] FRONTEND BACKEND",
        .summary = "Fan messages out from publishers (FRONTEND) to subscribers (BACKEND).",
        .description = "FRONTEND is xsub (or sub), BACKEND xpub (or pub). With xsub/xpub the\n"
                       "subscriptions flow upstream, so publishers filter at the source; every\n"
                       "subscribe is passed up (verbose xpub) and logged with -v.\n"
                       "A subscription longer than --max-topic is dropped (counted in\n"
                       "refused_topics, never passed up); a subscriber frame over\n"
                       "max(--max-topic + 1, 4096) bytes closes that subscriber's connection.",
        .examples = "  zkit-forwarder 'xsub@tcp://127.0.0.1:6000' 'xpub@tcp://127.0.0.1:6001'",
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
    zk_forwarder_config_t config = {.frontend = args[0],
                                    .backend = args[1],
                                    .max_topic = max_topic,
                                    ZK_DEVICE_CONFIG_FIELDS (values)};
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
