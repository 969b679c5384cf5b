/*  zk_forwarder — the fan-out device: publishers on an xsub (or sub)
    frontend, subscribers on an xpub (or pub) backend; the shared device
    engine (zk_device.c) moves messages down and subscriptions up, and
    counts and logs the (un)subscriptions.                               */

#include "zk_classes.h"

struct _zk_forwarder_t {
    zactor_t *actor;
};

static const int s_publisher_sides[] = {ZMQ_XSUB, ZMQ_SUB, -1};
static const int s_subscriber_sides[] = {ZMQ_XPUB, ZMQ_PUB, -1};

static zk_device_config_t
s_device_config (const zk_forwarder_config_t *config)
{
    return (zk_device_config_t){.name = "forwarder",
                                .frontend = config->frontend,
                                .backend = config->backend,
                                .capture = config->capture,
                                .control = config->control,
                                .max_size = config->max_size,
                                .hwm = config->hwm,
                                .linger_ms = config->linger_ms,
                                .stats_interval_ms = config->stats_interval_ms,
                                .handshake_ms = config->handshake_ms,
                                .max_topic = config->max_topic,
                                .forwarder = true};
}

int
zk_forwarder_validate (const zk_forwarder_config_t *config, char *reason, size_t reason_size)
{
    assert (config);
    zk_device_config_t device = s_device_config (config);
    int front, back;
    if (zk_device_check (&device, &front, &back, reason, reason_size))
        return ZK_EINVAL;
    if (!zk_engine_type_in (front, s_publisher_sides))
        return zk_engine_reason (reason, reason_size,
                                 "the frontend (%s) must be xsub or sub: publishers send to it",
                                 zk_spec_type_to_name (front));
    if (!zk_engine_type_in (back, s_subscriber_sides))
        return zk_engine_reason (
            reason, reason_size,
            "the backend (%s) must be xpub or pub: subscribers receive from it",
            zk_spec_type_to_name (back));
    return 0;
}

zk_forwarder_t *
zk_forwarder_new (const zk_forwarder_config_t *config)
{
    assert (config);
    char reason[512];
    if (zk_forwarder_validate (config, reason, sizeof reason)) {
        zk_error ("%s", reason);
        return NULL;
    }
    zk_device_config_t device = s_device_config (config);
    zactor_t *actor = zk_device_start (&device);
    if (!actor)
        return NULL;
    zk_forwarder_t *self = calloc (1, sizeof *self);
    if (!self) {
        zactor_destroy (&actor);
        return NULL;
    }
    self->actor = actor;
    return self;
}

void
zk_forwarder_destroy (zk_forwarder_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        zactor_destroy (&(*self_p)->actor);
        free (*self_p);
        *self_p = NULL;
    }
}

int
zk_forwarder_pause (zk_forwarder_t *self)
{
    assert (self);
    return zk_device_command (self->actor, "PAUSE");
}

int
zk_forwarder_resume (zk_forwarder_t *self)
{
    assert (self);
    return zk_device_command (self->actor, "RESUME");
}

int
zk_forwarder_stats (zk_forwarder_t *self, zk_forwarder_stats_t *stats)
{
    assert (self);
    assert (stats);
    zmsg_t *reply = zk_engine_request (self->actor, "STATS");
    if (!reply)
        return ZK_EIO;
    *stats = (zk_forwarder_stats_t){
        .messages = zk_engine_counter (reply, "frontend_in"),
        .bytes = zk_engine_counter (reply, "frontend_in_bytes"),
        .subscribes = zk_engine_counter (reply, "subscribes"),
        .unsubscribes = zk_engine_counter (reply, "unsubscribes"),
        .refused = zk_engine_counter (reply, "refused"),
        .refused_bytes = zk_engine_counter (reply, "refused_bytes"),
        .refused_topics = zk_engine_counter (reply, "refused_topics"),
        .captured = zk_engine_counter (reply, "captured"),
    };
    zmsg_destroy (&reply);
    return 0;
}

zactor_t *
zk_forwarder_actor (zk_forwarder_t *self)
{
    assert (self);
    return self->actor;
}
