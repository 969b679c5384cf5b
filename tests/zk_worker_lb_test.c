/*  zk_worker_lb — the worker's side of ZKW/1 (--lb) against a fake proxy:
    a ROUTER in the test that speaks the protocol by hand. READY with the
    --jobs credit, REQUEST → REPLY with the routing intact, heartbeats,
    reconnection after a silent proxy, DISCONNECT → READY, busy, hostile
    messages, DISCONNECT at stop; and zk-retry=1 on "worker stopping".  */

#include "testutil.h"

#include <unistd.h>

#define WAIT_MS 10000

TestSuite (zk_worker_lb, .timeout = 60);

//  A fake proxy: a ROUTER bound to a fresh inproc endpoint, and a worker
//  connected to it with --lb.
typedef struct {
    char *endpoint;
    char *input;
    char *dir;   //  a private tmp dir for flag and count files
    char *flag;  //  dir/flag: blocking commands wait for it
    zsock_t *router;
    zk_worker_t *worker;
} s_proxy_t;

//  A command (sh -c BLOCKING FLAG) that waits for the flag file, then
//  upper-cases its stdin.
#define BLOCKING "while [ ! -e \"$0\" ]; do sleep 0.02; done; tr a-z A-Z"

//  The fake proxy's socket and files, before the worker starts.
static void
s_proxy_init (s_proxy_t *proxy)
{
    proxy->dir = tu_tmpdir ();
    proxy->flag = zsys_sprintf ("%s/flag", proxy->dir);
    proxy->endpoint = tu_inproc ("lb");
    proxy->input = zsys_sprintf ("dealer>%s", proxy->endpoint);
    proxy->router = zsock_new (ZMQ_ROUTER);
    cr_assert_not_null (proxy->router);
    zsock_set_linger (proxy->router, 0);
    cr_assert_eq (zsock_bind (proxy->router, "%s", proxy->endpoint), 0);
}

static void
s_proxy_start (s_proxy_t *proxy, zk_worker_config_t *config)
{
    if (!proxy->router)
        s_proxy_init (proxy);
    config->input = proxy->input;
    config->lb = true;
    proxy->worker = zk_worker_new (config);
    cr_assert_not_null (proxy->worker, "the worker did not start");
}

static int s_ready (s_proxy_t *proxy, zframe_t **identity_p);

//  A worker running BLOCKING with jobs slots (heartbeat_ms, 0: default);
//  its READY's identity goes to *identity_p (caller owns). The READY
//  must announce the jobs.
static void
s_blocking_start (s_proxy_t *proxy, int jobs, int heartbeat_ms, zframe_t **identity_p)
{
    s_proxy_init (proxy);
    char *argv[] = {"sh", "-c", BLOCKING, proxy->flag, NULL};
    zk_worker_config_t config = {.argv = argv, .jobs = jobs, .heartbeat_ms = heartbeat_ms};
    s_proxy_start (proxy, &config);
    cr_assert_eq (s_ready (proxy, identity_p), jobs);
}

//  An envelope frame whose id is id (caller owns).
static zframe_t *
s_envelope (const uint8_t *id)
{
    zk_envelope_t *envelope = zk_envelope_new ();
    zk_envelope_set_id (envelope, id);
    zframe_t *frame;
    cr_assert_eq (zk_envelope_encode (envelope, &frame), 0);
    zk_envelope_destroy (&envelope);
    return frame;
}

static void
s_proxy_stop (s_proxy_t *proxy)
{
    zk_worker_destroy (&proxy->worker);
    zsock_destroy (&proxy->router);
    tu_rmdir (proxy->dir);
    free (proxy->dir);
    free (proxy->flag);
    free (proxy->input);
    free (proxy->endpoint);
}

static void
s_touch (const char *path)
{
    FILE *file = fopen (path, "w");
    cr_assert_not_null (file);
    fclose (file);
}

static bool
s_frame_is (zframe_t *frame, const char *text)
{
    return frame && zframe_size (frame) == strlen (text)
           && memcmp (zframe_data (frame), text, zframe_size (frame)) == 0;
}

/*  The next message from the worker whose command is command (frames:
    [routing id]["ZKW1"][command]...), within WAIT_MS; the others
    (heartbeats, a READY after a reconnection ...) are skipped and, when
    skipped is not NULL, counted there. NULL at the deadline.            */
static zmsg_t *
s_expect (s_proxy_t *proxy, const char *command, int *skipped)
{
    int64_t deadline = zclock_mono () + WAIT_MS;
    while (zclock_mono () < deadline) {
        zmsg_t *msg = tu_recv (proxy->router, (int) (deadline - zclock_mono ()));
        if (!msg)
            return NULL;
        zmsg_first (msg);  //  the worker's routing id
        zframe_t *signature = zmsg_next (msg);
        cr_assert (s_frame_is (signature, "ZKW1"), "a message without the ZKW1 signature");
        if (s_frame_is (zmsg_next (msg), command))
            return msg;
        if (skipped)
            (*skipped)++;
        zmsg_destroy (&msg);
    }
    return NULL;
}

//  The same, failing the test at the deadline.
static zmsg_t *
s_must (s_proxy_t *proxy, const char *command)
{
    zmsg_t *msg = s_expect (proxy, command, NULL);
    cr_assert_not_null (msg, "no %s from the worker within %d ms", command, WAIT_MS);
    return msg;
}

//  Wait for command, drop it.
static void
s_skip (s_proxy_t *proxy, const char *command)
{
    zmsg_t *msg = s_must (proxy, command);
    zmsg_destroy (&msg);
}

//  The READY's credit; *identity_p gets the worker's routing id (caller owns).
static int
s_ready (s_proxy_t *proxy, zframe_t **identity_p)
{
    zmsg_t *msg = s_must (proxy, "READY");
    cr_assert_eq (zmsg_size (msg), 4, "READY has %zu frames", zmsg_size (msg));
    char *credit = zframe_strdup (zmsg_last (msg));
    int value = atoi (credit);
    free (credit);
    if (identity_p)
        *identity_p = zmsg_pop (msg);
    zmsg_destroy (&msg);
    return value;
}

//  Send frames (NULL-terminated texts; "" is an empty frame) to the worker
//  behind identity.
static void
s_send (s_proxy_t *proxy, zframe_t *identity, const char *const *texts)
{
    zmsg_t *msg = zmsg_new ();
    zframe_t *copy = zframe_dup (identity);
    zmsg_append (msg, &copy);
    for (size_t index = 0; texts[index]; index++)
        zmsg_addstr (msg, texts[index]);
    cr_assert_eq (zmsg_send (&msg, proxy->router), 0);
}

//  A REQUEST with routing [client][16-byte reqid][""], an envelope (when
//  envelope is not NULL) and body.
static void
s_request (s_proxy_t *proxy, zframe_t *identity, const char *client, const uint8_t *reqid,
           zframe_t *envelope, const char *body)
{
    zmsg_t *msg = zmsg_new ();
    zframe_t *copy = zframe_dup (identity);
    zmsg_append (msg, &copy);
    zmsg_addstr (msg, "ZKW1");
    zmsg_addstr (msg, "REQUEST");
    zmsg_addstr (msg, client);
    zmsg_addmem (msg, reqid, ZK_ID_SIZE);
    zmsg_addstr (msg, "");
    if (envelope) {
        copy = zframe_dup (envelope);
        zmsg_append (msg, &copy);
    }
    zmsg_addstr (msg, body);
    cr_assert_eq (zmsg_send (&msg, proxy->router), 0);
}

/*  A REPLY for client/reqid: [id]["ZKW1"]["REPLY"][client][reqid][""] and
    then the rest, which is returned (caller owns).                      */
static zmsg_t *
s_reply_rest (zmsg_t **reply_p, const char *client, const uint8_t *reqid)
{
    zmsg_t *reply = *reply_p;
    cr_assert_geq (zmsg_size (reply), 7, "REPLY has %zu frames", zmsg_size (reply));
    zframe_t *frame = zmsg_pop (reply);  //  the worker's routing id
    zframe_destroy (&frame);
    const char *heads[] = {"ZKW1", "REPLY", client};
    for (int index = 0; index < 3; index++) {
        frame = zmsg_pop (reply);
        cr_assert (s_frame_is (frame, heads[index]), "frame %d is not '%s'", index + 1,
                   heads[index]);
        zframe_destroy (&frame);
    }
    frame = zmsg_pop (reply);
    cr_assert (zframe_size (frame) == ZK_ID_SIZE
                   && memcmp (zframe_data (frame), reqid, ZK_ID_SIZE) == 0,
               "the request id frame changed");
    zframe_destroy (&frame);
    frame = zmsg_pop (reply);
    cr_assert_eq (zframe_size (frame), 0, "no empty delimiter after the routing");
    zframe_destroy (&frame);
    *reply_p = NULL;
    return reply;
}

//  rest is an error reply: [envelope zk-status=error, zk-error=reason,
//  zk-retry as retry][output].
static void
s_assert_error (zmsg_t *rest, const char *reason, bool retry)
{
    cr_assert_eq (zmsg_size (rest), 2, "error reply with %zu frames", zmsg_size (rest));
    zframe_t *frame = zmsg_first (rest);
    zk_envelope_t *envelope = NULL;
    cr_assert_eq (zk_envelope_decode (zframe_data (frame), zframe_size (frame), &envelope), 0);
    cr_assert_str_eq (zk_envelope_header (envelope, "zk-status"), "error");
    const char *error = zk_envelope_header (envelope, "zk-error");
    cr_assert_not_null (error);
    cr_assert_not_null (strstr (error, reason), "zk-error '%s', expected '%s'", error, reason);
    const char *retry_header = zk_envelope_header (envelope, "zk-retry");
    if (retry)
        cr_assert (retry_header && streq (retry_header, "1"), "no zk-retry=1 for '%s'", reason);
    else
        cr_assert (!retry_header || !streq (retry_header, "1"), "zk-retry=1 on '%s'", reason);
    zk_envelope_destroy (&envelope);
}

static zk_worker_stats_t
s_stats (zk_worker_t *worker)
{
    zk_worker_stats_t stats;
    cr_assert_eq (zk_worker_stats (worker, &stats), 0);
    return stats;
}

// ---------------------------------------------------------------- tests

Test (zk_worker_lb, ready_announces_the_jobs_then_a_request_gets_its_reply)
{
    char *argv[] = {"tr", "a-z", "A-Z", NULL};
    zk_worker_config_t config = {.argv = argv, .jobs = 3};
    s_proxy_t proxy = {0};
    s_proxy_start (&proxy, &config);
    zframe_t *identity;
    cr_assert_eq (s_ready (&proxy, &identity), 3);

    //  A request id with a zero byte and an envelope: both come back untouched.
    uint8_t reqid[ZK_ID_SIZE];
    zk_id_generate (reqid);
    reqid[5] = 0;
    zframe_t *envelope_frame = s_envelope (reqid);
    s_request (&proxy, identity, "client-A", reqid, envelope_frame, "hello");
    zmsg_t *reply = s_must (&proxy, "REPLY");
    zmsg_t *rest = s_reply_rest (&reply, "client-A", reqid);
    cr_assert_eq (zmsg_size (rest), 2);
    cr_assert (zframe_eq (zmsg_first (rest), envelope_frame), "the envelope changed");
    cr_assert (s_frame_is (zmsg_last (rest), "HELLO"));
    zmsg_destroy (&rest);

    //  No envelope, a body of several frames: stdout alone after the routing.
    zmsg_t *msg = zmsg_new ();
    zframe_t *copy = zframe_dup (identity);
    zmsg_append (msg, &copy);
    const char *frames[] = {"ZKW1", "REQUEST", "client-B", "hop", "", "ab", "cd", NULL};
    for (int index = 0; frames[index]; index++)
        zmsg_addstr (msg, frames[index]);
    zmsg_send (&msg, proxy.router);
    reply = s_must (&proxy, "REPLY");
    const char *expected[] = {"ZKW1", "REPLY", "client-B", "hop", "", "ABCD", NULL};
    cr_assert_eq (zmsg_size (reply), 7, "%zu frames", zmsg_size (reply));
    zframe_t *frame = zmsg_first (reply);
    for (int index = 0; expected[index]; index++) {
        frame = zmsg_next (reply);
        cr_assert (s_frame_is (frame, expected[index]), "frame %d is not '%s'", index + 1,
                   expected[index]);
    }
    zmsg_destroy (&reply);

    zk_worker_stats_t stats = s_stats (proxy.worker);
    cr_assert_eq (stats.received, 2);
    cr_assert_eq (stats.replied, 2);
    cr_assert_eq (stats.refused, 0);
    zframe_destroy (&envelope_frame);
    zframe_destroy (&identity);
    s_proxy_stop (&proxy);
}

Test (zk_worker_lb, heartbeats_come_at_the_interval)
{
    char *argv[] = {"cat", NULL};
    zk_worker_config_t config = {.argv = argv, .heartbeat_ms = 100};
    int64_t start = zclock_mono ();
    s_proxy_t proxy = {0};
    s_proxy_start (&proxy, &config);
    cr_assert_eq (s_ready (&proxy, NULL), 1);
    //  Three heartbeats come; never more than one per interval (plus the
    //  one a reconnection may add: this proxy says nothing).
    for (int count = 0; count < 3; count++)
        s_skip (&proxy, "HEARTBEAT");
    int64_t elapsed = zclock_mono () - start;
    int extra = 0;
    zmsg_t *msg;
    while ((msg = tu_recv (proxy.router, 0))) {
        extra += s_frame_is (zmsg_last (msg), "HEARTBEAT");
        zmsg_destroy (&msg);
    }
    int64_t most = elapsed / 100 + 1 + (int64_t) s_stats (proxy.worker).reconnects + 1;
    cr_assert_leq (3 + extra, most, "%d heartbeats in %d ms", 3 + extra, (int) elapsed);
    s_proxy_stop (&proxy);
}

Test (zk_worker_lb, a_silent_proxy_gets_a_new_socket_and_ready_and_replies_follow)
{
    s_proxy_t proxy = {0};
    zframe_t *first;
    s_blocking_start (&proxy, 2, 100, &first);
    uint8_t reqid[ZK_ID_SIZE];
    zk_id_generate (reqid);
    s_request (&proxy, first, "client", reqid, NULL, "late");

    //  The proxy says nothing: within 3 intervals the worker gives up on
    //  its socket and announces itself again, from a new routing id, with
    //  the slot still running not counted.
    zframe_t *second;
    cr_assert_eq (s_ready (&proxy, &second), 1);
    cr_assert (!zframe_eq (first, second), "the READY came from the same socket");
    cr_assert_geq (s_stats (proxy.worker).reconnects, 1);

    //  The request that was running answers on the new socket.
    s_touch (proxy.flag);
    zmsg_t *reply = s_must (&proxy, "REPLY");
    zframe_t *from = zmsg_first (reply);
    cr_assert (!zframe_eq (from, first), "the reply came on the old socket");
    zmsg_t *rest = s_reply_rest (&reply, "client", reqid);
    cr_assert (s_frame_is (zmsg_last (rest), "LATE"));
    zmsg_destroy (&rest);
    zframe_destroy (&first);
    zframe_destroy (&second);
    s_proxy_stop (&proxy);
}

Test (zk_worker_lb, disconnect_is_answered_with_ready_and_the_free_slots)
{
    s_proxy_t proxy = {0};
    zframe_t *identity;
    s_blocking_start (&proxy, 3, 0, &identity);
    uint8_t reqid[ZK_ID_SIZE];
    zk_id_generate (reqid);
    s_request (&proxy, identity, "client", reqid, NULL, "x");
    //  A heartbeat comes an interval after READY: a DISCONNECT now cannot
    //  be the answer to something sent before it.
    s_skip (&proxy, "HEARTBEAT");
    s_send (&proxy, identity, (const char *[]){"ZKW1", "DISCONNECT", NULL});
    zframe_t *again;
    cr_assert_eq (s_ready (&proxy, &again), 2, "READY must count the slot still running");
    cr_assert (zframe_eq (identity, again), "DISCONNECT is answered on the same socket");
    s_touch (proxy.flag);
    zmsg_t *reply = s_must (&proxy, "REPLY");
    zmsg_destroy (&reply);
    zframe_destroy (&again);
    zframe_destroy (&identity);
    s_proxy_stop (&proxy);
}

Test (zk_worker_lb, a_request_beyond_the_slots_gets_worker_busy_with_retry)
{
    s_proxy_t proxy = {0};
    zframe_t *identity;
    s_blocking_start (&proxy, 1, 0, &identity);
    uint8_t first[ZK_ID_SIZE], second[ZK_ID_SIZE];
    zk_id_generate (first);
    zk_id_generate (second);
    s_request (&proxy, identity, "client-1", first, NULL, "one");
    s_request (&proxy, identity, "client-2", second, NULL, "two");
    zmsg_t *reply = s_must (&proxy, "REPLY");
    zmsg_t *rest = s_reply_rest (&reply, "client-2", second);
    s_assert_error (rest, "worker busy", true);
    zmsg_destroy (&rest);
    s_touch (proxy.flag);
    reply = s_must (&proxy, "REPLY");
    rest = s_reply_rest (&reply, "client-1", first);
    cr_assert (s_frame_is (zmsg_last (rest), "ONE"));
    zmsg_destroy (&rest);
    cr_assert_eq (s_stats (proxy.worker).refused, 1);
    zframe_destroy (&identity);
    s_proxy_stop (&proxy);
}

Test (zk_worker_lb, hostile_messages_are_refused_and_the_worker_still_serves)
{
    char *argv[] = {"tr", "a-z", "A-Z", NULL};
    zk_worker_config_t config = {.argv = argv, .max_size = 100};
    s_proxy_t proxy = {0};
    s_proxy_start (&proxy, &config);
    zframe_t *identity;
    cr_assert_eq (s_ready (&proxy, &identity), 1);
    const char *const *hostile[] = {
        (const char *[]){"ZKW2", "REQUEST", "c", "", "body", NULL},  //  bad signature
        (const char *[]){"", NULL},                                  //  nothing
        (const char *[]){"ZKW1", NULL},                              //  no command
        (const char *[]){"ZKW1", "BOGUS", NULL},                     //  unknown command
        (const char *[]){"ZKW1", "READY", "5", NULL},                //  the worker's command
        (const char *[]){"ZKW1", "HEARTBEAT", "extra", NULL},        //  malformed
        (const char *[]){"ZKW1", "REQUEST", "c", "body", NULL},      //  no delimiter
        (const char *[]){"ZKW1", "REQUEST", "", "body", NULL},       //  no routing
        (const char *[]){"ZKW1", "REQUEST", NULL},                   //  nothing at all
    };
    size_t count = sizeof hostile / sizeof hostile[0];
    for (size_t index = 0; index < count; index++)
        s_send (&proxy, identity, hostile[index]);
    //  Too big for --max-size: refused with an error reply (the routing is known).
    char big[201];
    memset (big, 'x', 200);
    big[200] = 0;
    uint8_t reqid[ZK_ID_SIZE];
    zk_id_generate (reqid);
    s_request (&proxy, identity, "client", reqid, NULL, big);
    zmsg_t *reply = s_must (&proxy, "REPLY");
    zmsg_t *rest = s_reply_rest (&reply, "client", reqid);
    s_assert_error (rest, "message too large", false);
    zmsg_destroy (&rest);
    //  And then a good request is served.
    s_request (&proxy, identity, "client", reqid, NULL, "still here");
    reply = s_must (&proxy, "REPLY");
    rest = s_reply_rest (&reply, "client", reqid);
    cr_assert (s_frame_is (zmsg_last (rest), "STILL HERE"));
    zmsg_destroy (&rest);
    zk_worker_stats_t stats = s_stats (proxy.worker);
    cr_assert_eq (stats.refused, count + 1, "refused %" PRIu64, stats.refused);
    cr_assert_eq (stats.succeeded, 1);
    zframe_destroy (&identity);
    s_proxy_stop (&proxy);
}

Test (zk_worker_lb, stop_fails_running_requests_with_retry_then_disconnects)
{
    s_proxy_t proxy = {0};
    zframe_t *identity;
    s_blocking_start (&proxy, 2, 0, &identity);
    uint8_t reqid[ZK_ID_SIZE];
    zk_id_generate (reqid);
    zframe_t *envelope_frame = s_envelope (reqid);
    s_request (&proxy, identity, "client", reqid, envelope_frame, "never");
    //  Running once the stats say so.
    int64_t deadline = zclock_mono () + WAIT_MS;
    while (s_stats (proxy.worker).running < 1 && zclock_mono () < deadline)
        zmq_poll (NULL, 0, 10);  //  poll until the request runs
    cr_assert_eq (s_stats (proxy.worker).running, 1);
    zk_worker_destroy (&proxy.worker);

    //  The error reply (retry) first, then DISCONNECT.
    int skipped = 0;
    zmsg_t *reply = s_expect (&proxy, "REPLY", &skipped);
    cr_assert_not_null (reply);
    zmsg_t *rest = s_reply_rest (&reply, "client", reqid);
    s_assert_error (rest, "worker stopping", true);
    zk_envelope_t *got = NULL;
    zframe_t *frame = zmsg_first (rest);
    cr_assert_eq (zk_envelope_decode (zframe_data (frame), zframe_size (frame), &got), 0);
    cr_assert_eq (memcmp (zk_envelope_id (got), reqid, ZK_ID_SIZE), 0, "not the request's id");
    zk_envelope_destroy (&got);
    zmsg_destroy (&rest);
    zmsg_t *disconnect = s_must (&proxy, "DISCONNECT");
    cr_assert_eq (zmsg_size (disconnect), 3);
    zmsg_destroy (&disconnect);
    zframe_destroy (&envelope_frame);
    zframe_destroy (&identity);
    s_proxy_stop (&proxy);
}

Test (zk_worker_lb, a_retried_request_id_is_answered_from_the_cache)
{
    s_proxy_t proxy = {0};
    s_proxy_init (&proxy);
    char *count_path = zsys_sprintf ("%s/count", proxy.dir);
    char *argv[] = {"sh", "-c", "cat >> \"$0\"; echo ran", count_path, NULL};
    zk_worker_config_t config = {.argv = argv, .jobs = 2, .reply_cache = 10};
    s_proxy_start (&proxy, &config);
    zframe_t *identity;
    cr_assert_eq (s_ready (&proxy, &identity), 2);

    uint8_t reqid[ZK_ID_SIZE];
    zk_id_generate (reqid);
    zframe_t *envelope_frame = s_envelope (reqid);
    const char *clients[] = {"first-client", "second-client"};
    for (int attempt = 0; attempt < 2; attempt++) {
        s_request (&proxy, identity, clients[attempt], reqid, envelope_frame, "line\n");
        zmsg_t *reply = s_must (&proxy, "REPLY");
        zmsg_t *rest = s_reply_rest (&reply, clients[attempt], reqid);
        cr_assert (s_frame_is (zmsg_last (rest), "ran\n"));
        zmsg_destroy (&rest);
    }
    char *count = tu_slurp (count_path);
    cr_assert_str_eq (count, "line\n", "COMMAND ran more than once");
    free (count);
    zk_worker_stats_t stats = s_stats (proxy.worker);
    cr_assert_eq (stats.cache_hits, 1);
    cr_assert_eq (stats.succeeded, 1);
    free (count_path);
    zframe_destroy (&envelope_frame);
    zframe_destroy (&identity);
    s_proxy_stop (&proxy);
}

Test (zk_worker_lb, worker_stopping_says_retry_on_a_router_input_too)
{
    char *dir = tu_tmpdir ();
    char *flag = zsys_sprintf ("%s/flag", dir);
    char *argv[] = {"sh", "-c", BLOCKING, flag, NULL};
    char *endpoint = tu_inproc ("lb-router");
    char *input = zsys_sprintf ("router@%s", endpoint);
    zk_worker_config_t config = {.input = input, .argv = argv};
    zk_worker_t *worker = zk_worker_new (&config);
    cr_assert_not_null (worker);
    zsock_t *dealer = tu_connect (ZMQ_DEALER, endpoint);
    cr_assert_not_null (dealer);
    zstr_sendm (dealer, "");
    zstr_send (dealer, "stuck");
    int64_t deadline = zclock_mono () + WAIT_MS;
    zk_worker_stats_t stats;
    do {
        zmq_poll (NULL, 0, 10);  //  poll until the request runs
        cr_assert_eq (zk_worker_stats (worker, &stats), 0);
    } while (stats.running < 1 && zclock_mono () < deadline);
    cr_assert_eq (stats.running, 1);
    zk_worker_destroy (&worker);
    zmsg_t *reply = tu_recv (dealer, WAIT_MS);
    cr_assert_not_null (reply);
    zframe_t *delimiter = zmsg_pop (reply);
    cr_assert_eq (zframe_size (delimiter), 0);
    zframe_destroy (&delimiter);
    s_assert_error (reply, "worker stopping", true);
    zmsg_destroy (&reply);
    zsock_destroy (&dealer);
    free (input);
    free (endpoint);
    tu_rmdir (dir);
    free (dir);
    free (flag);
}
