/*  zk_proxy — the stateless point-to-point and request-response device:
    the pair rules, then the shared device engine (zk_device.c), or with
    lb the ZKW/1 load balancer (zk_lb.c).                               */

#include "zk_classes.h"

struct _zk_proxy_t {
    zactor_t *actor;
};

static const int s_receivers[] = {ZMQ_PULL,   ZMQ_SUB,  ZMQ_XSUB, ZMQ_DEALER,
                                  ZMQ_ROUTER, ZMQ_PAIR, -1};
static const int s_senders[] = {ZMQ_PUSH, ZMQ_PUB, ZMQ_XPUB, ZMQ_DEALER, ZMQ_ROUTER, ZMQ_PAIR, -1};

static zk_device_config_t
s_device_config (const zk_proxy_config_t *config)
{
    return (zk_device_config_t){.name = "proxy",
                                .frontend = config->frontend,
                                .backend = config->backend,
                                .capture = config->capture,
                                .control = config->control,
                                .max_size = config->max_size,
                                .hwm = config->hwm,
                                .linger_ms = config->linger_ms,
                                .stats_interval_ms = config->stats_interval_ms,
                                .handshake_ms = config->handshake_ms,
                                .lb = config->lb,
                                .heartbeat_ms = config->heartbeat_ms};
}

//  --lb: clients on a router frontend, ZKW/1 workers on a router backend.
static int
s_validate_lb (int front, int back, const zk_proxy_config_t *config, char *reason,
               size_t reason_size)
{
    if (front != ZMQ_ROUTER)
        return zk_engine_reason (reason, reason_size,
                                 "--lb needs a router frontend: clients connect to it (got %s)",
                                 zk_spec_type_to_name (front));
    if (back != ZMQ_ROUTER)
        return zk_engine_reason (reason, reason_size,
                                 "--lb needs a router backend: workers connect to it (got %s)",
                                 zk_spec_type_to_name (back));
    if (config->heartbeat_ms != 0
        && (config->heartbeat_ms < ZK_PROXY_LB_HEARTBEAT_MIN
            || config->heartbeat_ms > ZK_PROXY_LB_HEARTBEAT_MAX))
        return zk_engine_reason (
            reason, reason_size, "the heartbeat interval must be %d to %d ms (got %d)",
            ZK_PROXY_LB_HEARTBEAT_MIN, ZK_PROXY_LB_HEARTBEAT_MAX, config->heartbeat_ms);
    return 0;
}

/*  The pair rules. The frontend must receive, the backend send; req/rep
    are lockstep (one request at a time per socket) and would stall a
    device; a router backend cannot know where to route; a router
    frontend needs a dealer backend so replies come back with their
    envelope; xsub and xpub only make sense together.                   */
int
zk_proxy_validate (const zk_proxy_config_t *config, char *reason, size_t reason_size)
{
    assert (config);
    zk_device_config_t device = s_device_config (config);
    int front, back;
    if (zk_device_check (&device, &front, &back, reason, reason_size))
        return ZK_EINVAL;
    if (config->lb)
        return s_validate_lb (front, back, config, reason, reason_size);
    if (config->heartbeat_ms)
        return zk_engine_reason (reason, reason_size, "a heartbeat interval needs --lb");
    const char *front_name = zk_spec_type_to_name (front);
    const char *back_name = zk_spec_type_to_name (back);
    if (front == ZMQ_REQ || front == ZMQ_REP)
        return zk_engine_reason (reason, reason_size,
                                 "the frontend (%s) cannot be proxied: req/rep sockets work in "
                                 "lockstep; use router/dealer",
                                 front_name);
    if (back == ZMQ_REQ || back == ZMQ_REP)
        return zk_engine_reason (reason, reason_size,
                                 "the backend (%s) cannot be proxied: req/rep sockets work in "
                                 "lockstep; use router/dealer",
                                 back_name);
    if (!zk_engine_type_in (front, s_receivers))
        return zk_engine_reason (reason, reason_size,
                                 "the frontend (%s) cannot receive: use pull, sub, xsub, dealer, "
                                 "router or pair",
                                 front_name);
    if (!zk_engine_type_in (back, s_senders))
        return zk_engine_reason (
            reason, reason_size,
            "the backend (%s) cannot send: use push, pub, xpub, dealer or pair", back_name);
    if (back == ZMQ_ROUTER)
        return zk_engine_reason (reason, reason_size,
                                 "the backend (router) cannot know where to send: use dealer");
    if (front == ZMQ_ROUTER && back != ZMQ_DEALER)
        return zk_engine_reason (reason, reason_size,
                                 "a router frontend needs a dealer backend (got %s)", back_name);
    if (front == ZMQ_XSUB && back != ZMQ_XPUB)
        return zk_engine_reason (reason, reason_size,
                                 "an xsub frontend needs an xpub backend (got %s)", back_name);
    if (back == ZMQ_XPUB && front != ZMQ_XSUB)
        return zk_engine_reason (reason, reason_size,
                                 "an xpub backend needs an xsub frontend (got %s)", front_name);
    return 0;
}

zk_proxy_t *
zk_proxy_new (const zk_proxy_config_t *config)
{
    assert (config);
    char reason[512];
    if (zk_proxy_validate (config, reason, sizeof reason)) {
        zk_error ("%s", reason);
        return NULL;
    }
    zk_device_config_t device = s_device_config (config);
    zactor_t *actor = zk_device_start (&device);
    if (!actor)
        return NULL;
    zk_proxy_t *self = calloc (1, sizeof *self);
    if (!self) {
        zactor_destroy (&actor);
        return NULL;
    }
    self->actor = actor;
    return self;
}

void
zk_proxy_destroy (zk_proxy_t **self_p)
{
    assert (self_p);
    zk_proxy_t *self = *self_p;
    if (!self)
        return;
    zactor_destroy (&self->actor);
    free (self);
    *self_p = NULL;
}

int
zk_proxy_pause (zk_proxy_t *self)
{
    assert (self);
    return zk_device_command (self->actor, "PAUSE");
}

int
zk_proxy_resume (zk_proxy_t *self)
{
    assert (self);
    return zk_device_command (self->actor, "RESUME");
}

int
zk_proxy_stats (zk_proxy_t *self, zk_proxy_stats_t *stats)
{
    assert (self);
    assert (stats);
    zmsg_t *reply = zk_engine_request (self->actor, "STATS");
    if (!reply)
        return ZK_EIO;
    *stats = (zk_proxy_stats_t){
        .frontend_in = zk_engine_counter (reply, "frontend_in"),
        .frontend_in_bytes = zk_engine_counter (reply, "frontend_in_bytes"),
        .backend_in = zk_engine_counter (reply, "backend_in"),
        .backend_in_bytes = zk_engine_counter (reply, "backend_in_bytes"),
        .refused = zk_engine_counter (reply, "refused"),
        .refused_bytes = zk_engine_counter (reply, "refused_bytes"),
        .captured = zk_engine_counter (reply, "captured"),
        .workers = zk_engine_counter (reply, "workers"),
        .in_flight = zk_engine_counter (reply, "in_flight"),
        .requests = zk_engine_counter (reply, "requests"),
        .replies = zk_engine_counter (reply, "replies"),
        .lost = zk_engine_counter (reply, "lost"),
        .unknown = zk_engine_counter (reply, "unknown"),
    };
    zmsg_destroy (&reply);
    return 0;
}

zactor_t *
zk_proxy_actor (zk_proxy_t *self)
{
    assert (self);
    return self->actor;
}
