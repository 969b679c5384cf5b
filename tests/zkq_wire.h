/*  zkq_wire.h — ZKQ/1 spoken frame by frame over raw DEALER sockets, as a
    client in another language would: what tests/zk_queue_test.c,
    tests/zk_queue_jobs_test.c and tests/cli_queue_test.c share, and a
    fixture running the zk_queue actor in the test process. Header-only
    (each test file gets its own copy); every helper fails the test when
    the server does not answer as docs/protocol.md says.                */

#ifndef ZKQ_WIRE_H_INCLUDED
#define ZKQ_WIRE_H_INCLUDED

#include "testutil.h"

#include <inttypes.h>
#include <signal.h>

#define TQ_HELPER  static __attribute__ ((unused))
#define TQ_WAIT_MS 5000

//  A DEALER connected to a zkit-queue router endpoint (linger 0).
TQ_HELPER zsock_t *
tq_connect (const char *endpoint)
{
    zsock_t *sock = tu_connect (ZMQ_DEALER, endpoint);
    cr_assert_not_null (sock, "connect %s", endpoint);
    return sock;
}

//  A 16-byte message id made from a number.
TQ_HELPER void
tq_id (uint8_t id[16], unsigned number)
{
    memset (id, 0, 16);
    snprintf ((char *) id, 16, "id-%u", number);
}

//  Send "ZKQ1" COMMAND TAG, then count argument frames (data, size pairs).
TQ_HELPER void
tq_sendv (zsock_t *sock, const char *command, const char *tag, int count, const void *const *data,
          const size_t *sizes)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "ZKQ1");
    zmsg_addstr (msg, command);
    zmsg_addstr (msg, tag);
    for (int index = 0; index < count; index++)
        zmsg_addmem (msg, data[index], sizes[index]);
    cr_assert_eq (zmsg_send (&msg, sock), 0);
}

//  Send a request whose arguments are strings (NULL-terminated list).
TQ_HELPER void
tq_send (zsock_t *sock, const char *command, const char *tag, ...)
{
    const void *data[32];
    size_t sizes[32];
    int count = 0;
    va_list args;
    va_start (args, tag);
    for (const char *arg = va_arg (args, const char *); arg && count < 32;
         arg = va_arg (args, const char *)) {
        data[count] = arg;
        sizes[count++] = strlen (arg);
    }
    va_end (args);
    tq_sendv (sock, command, tag, count, data, sizes);
}

TQ_HELPER void
tq_send_put (zsock_t *sock, const char *tag, const char *queue, const uint8_t id[16],
             const char *body)
{
    const void *data[3] = {queue, id, body};
    size_t sizes[3] = {strlen (queue), 16, strlen (body)};
    tq_sendv (sock, "PUT", tag, 3, data, sizes);
}

TQ_HELPER void
tq_send_id (zsock_t *sock, const char *command, const char *tag, const char *queue,
            const uint8_t id[16], const char *extra1, const char *extra2)
{
    const void *data[4] = {queue, id, extra1, extra2};
    size_t sizes[4] = {strlen (queue), 16, extra1 ? strlen (extra1) : 0,
                       extra2 ? strlen (extra2) : 0};
    tq_sendv (sock, command, tag, 2 + (extra1 != NULL) + (extra2 != NULL), data, sizes);
}

//  Frame index of msg as a new string. Caller frees.
TQ_HELPER char *
tq_frame (zmsg_t *msg, size_t index)
{
    zframe_t *frame = zmsg_first (msg);
    for (size_t at = 0; frame && at < index; at++)
        frame = zmsg_next (msg);
    cr_assert_not_null (frame, "no frame %zu (message has %zu)", index, zmsg_size (msg));
    return zframe_strdup (frame);
}

TQ_HELPER bool
tq_frame_eq (zmsg_t *msg, size_t index, const char *text)
{
    char *value = tq_frame (msg, index);
    bool equal = streq (value, text);
    free (value);
    return equal;
}

//  Deliveries that arrived while waiting for a reply.
typedef struct {
    zmsg_t *items[4096];
    size_t count;
} tq_inbox_t;

TQ_HELPER tq_inbox_t tq_inbox;

TQ_HELPER void
tq_inbox_clear (void)
{
    for (size_t index = 0; index < tq_inbox.count; index++)
        zmsg_destroy (&tq_inbox.items[index]);
    tq_inbox.count = 0;
}

//  The reply with this TAG ("ZKQ1" OK|ERR TAG ...); MSG deliveries that
//  come first are kept in tq_inbox.
TQ_HELPER zmsg_t *
tq_reply (zsock_t *sock, const char *tag)
{
    int64_t deadline = zclock_mono () + TQ_WAIT_MS;
    while (zclock_mono () < deadline) {
        zmsg_t *msg = tu_recv (sock, (int) (deadline - zclock_mono ()));
        if (!msg)
            break;
        cr_assert_geq (zmsg_size (msg), 3);
        cr_assert (tq_frame_eq (msg, 0, "ZKQ1"));
        if (tq_frame_eq (msg, 1, "MSG")) {
            cr_assert_lt (tq_inbox.count, 4096);
            tq_inbox.items[tq_inbox.count++] = msg;
            continue;
        }
        if (tq_frame_eq (msg, 2, tag))
            return msg;
        zmsg_destroy (&msg);
    }
    cr_assert_fail ("no reply with tag %s within %d ms", tag, TQ_WAIT_MS);
    return NULL;
}

//  Expect OK for tag; returns the reply (caller destroys) for its results.
TQ_HELPER zmsg_t *
tq_ok (zsock_t *sock, const char *tag)
{
    zmsg_t *reply = tq_reply (sock, tag);
    if (!tq_frame_eq (reply, 1, "OK")) {
        char *code = zmsg_size (reply) > 3 ? tq_frame (reply, 3) : strdup ("");
        char *text = zmsg_size (reply) > 4 ? tq_frame (reply, 4) : strdup ("");
        cr_assert_fail ("%s: expected OK, got ERR %s %s", tag, code, text);
    }
    return reply;
}

TQ_HELPER void
tq_expect_ok (zsock_t *sock, const char *tag)
{
    zmsg_t *reply = tq_ok (sock, tag);
    zmsg_destroy (&reply);
}

//  Expect ERR code for tag.
TQ_HELPER void
tq_expect_err (zsock_t *sock, const char *tag, const char *code)
{
    zmsg_t *reply = tq_reply (sock, tag);
    cr_assert (tq_frame_eq (reply, 1, "ERR"), "%s: expected ERR %s, got OK", tag, code);
    char *got = tq_frame (reply, 3);
    cr_assert_str_eq (got, code, "%s: expected ERR %s, got ERR %s", tag, code, got);
    cr_assert_eq (zmsg_size (reply), 5);
    free (got);
    zmsg_destroy (&reply);
}

TQ_HELPER void
tq_put (zsock_t *sock, const char *queue, unsigned number, const char *body)
{
    uint8_t id[16];
    tq_id (id, number);
    char tag[32];
    snprintf (tag, sizeof tag, "put-%u", number);
    tq_send_put (sock, tag, queue, id, body);
    tq_expect_ok (sock, tag);
}

//  A PING round trip: every delivery the server meant for this client
//  before answering is in tq_inbox afterwards.
TQ_HELPER void
tq_barrier (zsock_t *sock)
{
    static unsigned serial;
    char tag[32];
    snprintf (tag, sizeof tag, "ping-%u", ++serial);
    tq_send (sock, "PING", tag, NULL);
    tq_expect_ok (sock, tag);
}

//  The next delivery (from tq_inbox, or the socket): QUEUE MSGID ATTEMPT BODY.
TQ_HELPER zmsg_t *
tq_delivery (zsock_t *sock, int timeout_ms)
{
    if (tq_inbox.count) {
        zmsg_t *msg = tq_inbox.items[0];
        memmove (tq_inbox.items, tq_inbox.items + 1, --tq_inbox.count * sizeof (zmsg_t *));
        return msg;
    }
    int64_t deadline = zclock_mono () + timeout_ms;
    while (zclock_mono () < deadline) {
        zmsg_t *msg = tu_recv (sock, (int) (deadline - zclock_mono ()));
        if (!msg)
            break;
        if (tq_frame_eq (msg, 1, "MSG")) {
            cr_assert_geq (zmsg_size (msg), 7);
            cr_assert (tq_frame_eq (msg, 2, ""));
            return msg;
        }
        zmsg_destroy (&msg);
    }
    return NULL;
}

TQ_HELPER zmsg_t *
tq_expect_delivery (zsock_t *sock)
{
    zmsg_t *msg = tq_delivery (sock, TQ_WAIT_MS);
    cr_assert_not_null (msg, "no delivery within %d ms", TQ_WAIT_MS);
    return msg;
}

//  Check a delivery's queue, id number, attempt and (when not NULL) body.
TQ_HELPER void
tq_check_delivery (zmsg_t *msg, const char *queue, unsigned number, const char *attempt,
                   const char *body)
{
    uint8_t id[16];
    tq_id (id, number);
    cr_assert (tq_frame_eq (msg, 3, queue));
    zframe_t *frame = zmsg_first (msg);
    for (int index = 0; index < 4; index++)
        frame = zmsg_next (msg);
    cr_assert_eq (zframe_size (frame), 16);
    cr_assert (memcmp (zframe_data (frame), id, 16) == 0, "expected message %u, got %s", number,
               (char *) zframe_data (frame));
    char *got = tq_frame (msg, 5);
    cr_assert_str_eq (got, attempt, "message %u: attempt %s, expected %s", number, got, attempt);
    free (got);
    if (body)
        cr_assert (tq_frame_eq (msg, 6, body));
}

TQ_HELPER unsigned
tq_delivery_number (zmsg_t *msg)
{
    char *text = tq_frame (msg, 4);
    unsigned number = 0;
    sscanf (text, "id-%u", &number);
    free (text);
    return number;
}

TQ_HELPER void
tq_ack (zsock_t *sock, const char *queue, unsigned number, const char *result)
{
    uint8_t id[16];
    tq_id (id, number);
    char tag[32];
    snprintf (tag, sizeof tag, "ack-%u", number);
    tq_send_id (sock, "ACK", tag, queue, id, result, NULL);
    tq_expect_ok (sock, tag);
}

TQ_HELPER void
tq_get (zsock_t *sock, const char *queue, const char *window)
{
    tq_send (sock, "GET", "get", queue, window, NULL);
    tq_expect_ok (sock, "get");
}

//  One counter of a STATS line: "name=value".
TQ_HELPER uint64_t
tq_stat (zsock_t *sock, const char *queue, const char *name)
{
    tq_send (sock, "STATS", "stats", queue, NULL);
    zmsg_t *reply = tq_ok (sock, "stats");
    cr_assert_eq (zmsg_size (reply), 4);
    char *line = tq_frame (reply, 3);
    zmsg_destroy (&reply);
    char key[64];
    snprintf (key, sizeof key, " %s=", name);
    char *at = strstr (line, key);
    cr_assert_not_null (at, "no %s in '%s'", name, line);
    uint64_t value = strtoull (at + strlen (key), NULL, 10);
    free (line);
    return value;
}

//  STATUS: the reply's frames from STATE on.
TQ_HELPER zmsg_t *
tq_status (zsock_t *sock, const char *queue, unsigned number)
{
    uint8_t id[16];
    tq_id (id, number);
    tq_send_id (sock, "STATUS", "status", queue, id, NULL, NULL);
    zmsg_t *reply = tq_ok (sock, "status");
    cr_assert_geq (zmsg_size (reply), 6);
    return reply;
}

TQ_HELPER void
tq_expect_state (zsock_t *sock, const char *queue, unsigned number, const char *state,
                 const char *attempt)
{
    zmsg_t *reply = tq_status (sock, queue, number);
    char *got = tq_frame (reply, 3);
    cr_assert_str_eq (got, state, "message %u: state %s, expected %s", number, got, state);
    free (got);
    if (attempt)
        cr_assert (tq_frame_eq (reply, 4, attempt));
    zmsg_destroy (&reply);
}

// ---------------------------------------------------------------- jobs and workflows

//  GET with a consumer name (GET QUEUE WINDOW CONSUMER).
TQ_HELPER void
tq_get_as (zsock_t *sock, const char *queue, const char *window, const char *consumer)
{
    tq_send (sock, "GET", "get", queue, window, consumer, NULL);
    tq_expect_ok (sock, "get");
}

//  Send FWD QUEUE MSGID TO and count body frames (strings).
TQ_HELPER void
tq_send_fwd (zsock_t *sock, const char *tag, const char *queue, const uint8_t id[16],
             const char *to, int count, const char *const *body)
{
    const void *data[3 + 80];
    size_t sizes[3 + 80];
    data[0] = queue;
    sizes[0] = strlen (queue);
    data[1] = id;
    sizes[1] = 16;
    data[2] = to;
    sizes[2] = strlen (to);
    cr_assert_leq (count, 80);
    for (int index = 0; index < count; index++) {
        data[3 + index] = body[index];
        sizes[3 + index] = strlen (body[index]);
    }
    tq_sendv (sock, "FWD", tag, 3 + count, data, sizes);
}

//  FWD the message number (held in queue) to queue to with a one-frame body: OK.
TQ_HELPER void
tq_fwd (zsock_t *sock, const char *queue, unsigned number, const char *to, const char *body)
{
    uint8_t id[16];
    tq_id (id, number);
    char tag[32];
    snprintf (tag, sizeof tag, "fwd-%u", number);
    tq_send_fwd (sock, tag, queue, id, to, 1, &body);
    tq_expect_ok (sock, tag);
}

//  One step of a TRACE reply.
typedef struct {
    char queue[ZK_QUEUE_NAME_MAX + 1];
    char state[16];
    unsigned attempts;
    int64_t accepted, started, finished;
    char consumer[ZK_QUEUE_CONSUMER_MAX + 1];
} tq_step_t;

//  TRACE queue's message number: its steps (at most max) into steps; their count.
TQ_HELPER size_t
tq_trace (zsock_t *sock, const char *queue, unsigned number, tq_step_t *steps, size_t max)
{
    uint8_t id[16];
    tq_id (id, number);
    tq_send_id (sock, "TRACE", "trace", queue, id, NULL, NULL);
    zmsg_t *reply = tq_ok (sock, "trace");
    size_t count = zmsg_size (reply) - 3;
    cr_assert_leq (count, max, "%zu steps", count);
    for (size_t index = 0; index < count; index++) {
        char *line = tq_frame (reply, 3 + index);
        tq_step_t *step = &steps[index];
        memset (step, 0, sizeof *step);  //  steps compare with memcmp
        int fields = sscanf (line, "%128s %15s %u %" SCNd64 " %" SCNd64 " %" SCNd64 " %64s",
                             step->queue, step->state, &step->attempts, &step->accepted,
                             &step->started, &step->finished, step->consumer);
        cr_assert_eq (fields, 7, "a bad step: '%s'", line);
        free (line);
    }
    zmsg_destroy (&reply);
    return count;
}

// ---------------------------------------------------------------- an in-process server

typedef struct {
    char *dir;
    zk_queue_t *server;
    char *endpoint;
} tq_fixture_t;

//  The defaults on dir, one router on an ephemeral port, linger 0.
TQ_HELPER void
tq_config (zk_queue_config_t *config, const char *dir, const char **specs)
{
    zk_queue_config_init (config);
    config->data_dir = dir;
    specs[0] = "router@tcp://127.0.0.1:*";
    specs[1] = NULL;
    config->specs = specs;
    config->linger_ms = 0;
}

TQ_HELPER void
tq_start_with (tq_fixture_t *fixture, const zk_queue_config_t *config)
{
    fixture->server = zk_queue_new (config);
    cr_assert_not_null (fixture->server);
    free (fixture->endpoint);
    fixture->endpoint = tu_engine_endpoint (zk_queue_actor (fixture->server), "router");
    cr_assert_not_null (fixture->endpoint);
}

TQ_HELPER void
tq_stop (tq_fixture_t *fixture)
{
    zk_queue_destroy (&fixture->server);
    free (fixture->endpoint);
    fixture->endpoint = NULL;
}

//  Stop the server (if any) and start one on the same data directory;
//  tweak (when not NULL) edits the defaults.
TQ_HELPER void
tq_restart (tq_fixture_t *fixture, void (*tweak) (zk_queue_config_t *))
{
    tq_stop (fixture);
    zk_queue_config_t config;
    const char *specs[2];
    tq_config (&config, fixture->dir, specs);
    if (tweak)
        tweak (&config);
    tq_start_with (fixture, &config);
}

//  A server on a fresh data directory.
TQ_HELPER void
tq_start (tq_fixture_t *fixture, void (*tweak) (zk_queue_config_t *))
{
    memset (fixture, 0, sizeof *fixture);
    fixture->dir = tu_tmpdir ();
    cr_assert_not_null (fixture->dir);
    tq_restart (fixture, tweak);
}

TQ_HELPER void
tq_cleanup (tq_fixture_t *fixture)
{
    tq_stop (fixture);
    tu_rmdir (fixture->dir);
    free (fixture->dir);
}

TQ_HELPER zsock_t *
tq_client (tq_fixture_t *fixture)
{
    return tq_connect (fixture->endpoint);
}

// ---------------------------------------------------------------- the zkit-queue binary

typedef struct {
    tu_daemon_t daemon;
    char *endpoint;
} tq_binary_t;

//  Start zkit-queue on data_dir with extra options (NULL-terminated, may be NULL).
TQ_HELPER void
tq_binary_start (tq_binary_t *server, const char *data_dir, const char *const *extra)
{
    const char *args[24];
    int count = 0;
    args[count++] = "--data";
    args[count++] = data_dir;
    for (; extra && *extra && count < 20; extra++)
        args[count++] = *extra;
    args[count++] = "router@tcp://127.0.0.1:*";
    args[count] = NULL;
    if (tu_daemon_start (&server->daemon, "zkit-queue", args, TQ_WAIT_MS) != 0) {
        char *err = tu_stderr (&server->daemon.proc);
        cr_assert_fail ("zkit-queue never got ready: %s", err ? err : "");
    }
    server->endpoint = tu_ready_endpoint (server->daemon.ready, "router");
    cr_assert_not_null (server->endpoint, "no router in:\n%s", server->daemon.ready);
    cr_assert_null (strstr (server->endpoint, ":*"));
}

TQ_HELPER void
tq_binary_cleanup (tq_binary_t *server)
{
    tu_daemon_cleanup (&server->daemon);
    free (server->endpoint);
    server->endpoint = NULL;
}

//  SIGKILL the server, start it again on data_dir (extra options, may be
//  NULL); *client_p becomes a client of the new one.
TQ_HELPER void
tq_binary_crash_restart (tq_binary_t *server, const char *data_dir, const char *const *extra,
                         zsock_t **client_p)
{
    tu_stop (&server->daemon.proc, SIGKILL, 5000);
    zsock_destroy (client_p);
    tq_inbox_clear ();
    tq_binary_cleanup (server);
    tq_binary_start (server, data_dir, extra);
    *client_p = tq_connect (server->endpoint);
}

#endif
