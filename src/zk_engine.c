/*  zk_engine — what the engine actors share (see zk_classes.h).  */

#include "zk_classes.h"

void
zk_engine_limit_socket (zsock_t *sock, size_t max_size, int handshake_ms)
{
    if (max_size && max_size <= (size_t) INT64_MAX - ZK_MAXMSG_SLACK)
        zsock_set_maxmsgsize (sock, (int64_t) (max_size + ZK_MAXMSG_SLACK));
    if (handshake_ms > 0)
        zsock_set_handshake_ivl (sock, handshake_ms);
    zsock_set_backlog (sock, ZK_SPEC_BACKLOG);
}

int
zk_engine_open (const char *role, const char *text, const int *expected_types, int hwm,
                int linger_ms, zsock_t **sock_p, zk_spec_t **spec_p)
{
    zk_engine_limits_t limits = {.hwm = hwm, .linger_ms = linger_ms};
    return zk_engine_open_limited (role, text, expected_types, &limits, sock_p, spec_p);
}

int
zk_engine_open_limited (const char *role, const char *text, const int *expected_types,
                        const zk_engine_limits_t *limits, zsock_t **sock_p, zk_spec_t **spec_p)
{
    int hwm = limits->hwm, linger_ms = limits->linger_ms;
    *sock_p = NULL;
    *spec_p = NULL;
    zk_spec_t *spec = zk_spec_new (text);
    if (!spec)
        return ZK_EINVAL;
    if (expected_types) {
        bool accepted = false;
        char names[128] = "";
        for (const int *type = expected_types; *type >= 0; type++) {
            if (*type == zk_spec_type (spec))
                accepted = true;
            size_t used = strlen (names);
            snprintf (names + used, sizeof names - used, "%s%s", used ? ", " : "",
                      zk_spec_type_to_name (*type));
        }
        if (!accepted) {
            zk_error ("%s: a %s socket cannot be used here (expected %s)", role,
                      zk_spec_type_name (spec), names);
            zk_spec_destroy (&spec);
            return ZK_EINVAL;
        }
    }
    zsock_t *sock = zk_spec_socket (spec);
    if (!sock) {
        zk_spec_destroy (&spec);
        return ZK_ESOCKET;
    }
    if (hwm > 0) {
        zsock_set_sndhwm (sock, hwm);
        zsock_set_rcvhwm (sock, hwm);
    }
    zsock_set_linger (sock, linger_ms < 0 ? ZK_DEFAULT_LINGER_MS : linger_ms);
    zk_engine_limit_socket (sock, limits->max_size, limits->handshake_ms);
    if (limits->max_frame > 0)
        zsock_set_maxmsgsize (sock, limits->max_frame);
    int rc = zk_spec_attach (spec, sock);
    if (rc) {
        zsock_destroy (&sock);
        zk_spec_destroy (&spec);
        return rc;
    }
    *sock_p = sock;
    *spec_p = spec;
    return 0;
}

void
zk_engine_add_endpoints (zmsg_t *msg, const char *role, const zk_spec_t *spec)
{
    if (!spec)
        return;
    for (size_t i = 0; i < zk_spec_size (spec); i++)
        zmsg_addstrf (msg, "%s %s", role, zk_spec_resolved (spec, i));
}

void
zk_engine_add_counter (zmsg_t *msg, const char *name, uint64_t value)
{
    zmsg_addstrf (msg, "%s=%" PRIu64, name, value);
}

uint64_t
zk_engine_counter (zmsg_t *reply, const char *name)
{
    size_t name_len = strlen (name);
    for (zframe_t *frame = zmsg_first (reply); frame; frame = zmsg_next (reply)) {
        size_t size = zframe_size (frame);
        const char *data = (const char *) zframe_data (frame);
        if (size > name_len + 1 && size < name_len + 24 && memcmp (data, name, name_len) == 0
            && data[name_len] == '=') {
            char digits[24];
            memcpy (digits, data + name_len + 1, size - name_len - 1);
            digits[size - name_len - 1] = 0;
            return strtoull (digits, NULL, 10);
        }
    }
    return 0;
}

int
zk_engine_wait_readable (zactor_t *engine, int timeout_ms)
{
    zmq_pollitem_t item = {zsock_resolve (engine), 0, ZMQ_POLLIN, 0};
    int64_t deadline = zk_now_ms () + timeout_ms;
    while (true) {
        int64_t left = deadline - zk_now_ms ();
        if (left < 0)
            left = 0;
        int rc = zmq_poll (&item, 1, (long) left);
        if (rc > 0)
            return 0;
        if (rc == 0 || errno != EINTR || zk_now_ms () >= deadline)
            return ZK_ETIMEDOUT;
    }
}

zmsg_t *
zk_engine_request (zactor_t *engine, const char *cmd)
{
    assert (engine);
    if (zstr_send (engine, cmd) != 0)
        return NULL;
    //  Engines answer at once; the loop only rides over EINTR.
    for (int tries = 0; tries < 100; tries++) {
        zmsg_t *reply = zmsg_recv (engine);
        if (reply) {
            //  A "TERMINATED" notice may be ahead of the reply: skip it.
            char *first = zmsg_popstr (reply);
            if (first && streq (first, "TERMINATED")) {
                zstr_free (&first);
                zmsg_destroy (&reply);
                continue;
            }
            if (first)
                zmsg_pushstr (reply, first);
            zstr_free (&first);
            return reply;
        }
        if (errno != EINTR)
            return NULL;
    }
    return NULL;
}

int
zk_engine_reason (char *buf, size_t size, const char *format, ...)
{
    if (buf && size) {
        va_list args;
        va_start (args, format);
        vsnprintf (buf, size, format, args);
        va_end (args);
    }
    return ZK_EINVAL;
}

bool
zk_engine_type_in (int type, const int *types)
{
    for (; *types >= 0; types++)
        if (*types == type)
            return true;
    return false;
}

int
zk_engine_spec_type (const char *role, const char *text, char *reason, size_t reason_size)
{
    char why[256];
    if (!text) {
        zk_engine_reason (reason, reason_size, "a %s spec is required", role);
        return -1;
    }
    if (zk_spec_validate (text, why, sizeof why) != 0) {
        zk_engine_reason (reason, reason_size, "%s: invalid socket spec '%s': %s", role, text, why);
        return -1;
    }
    //  Valid, so zk_spec_new logs nothing.
    zk_spec_t *spec = zk_spec_new (text);
    int type = spec ? zk_spec_type (spec) : -1;
    zk_spec_destroy (&spec);
    if (type < 0)
        zk_engine_reason (reason, reason_size, "%s: invalid socket spec '%s'", role, text);
    return type;
}

zactor_t *
zk_engine_start (zactor_fn *actor, void *args, const char *name)
{
    zactor_t *engine = zactor_new (actor, args);
    if (!engine) {
        zk_error ("%s: cannot start the engine thread", name);
        return NULL;
    }
    int status = -1;
    for (int tries = 0; tries < 100; tries++) {
        status = zsock_wait (engine);
        if (status != -1 || errno != EINTR)
            break;
    }
    if (status != 0)
        zactor_destroy (&engine);
    return engine;
}
