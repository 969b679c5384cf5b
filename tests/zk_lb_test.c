/*  zk_lb — zk_proxy with lb set, the ZKW/1 load balancer, driven from
    outside the library: the fake workers below are plain DEALER sockets
    that speak ZKW/1 by hand (docs/protocol.md section 10).            */

#include "testutil.h"

#define WAIT_MS   5000
#define SLOW_HB   2000  //  heartbeat of the tests that are not about liveness
#define QUIET_MS  300   //  how long "nothing arrives" is watched
#define MAX_BYTES (64 * 1024)

typedef struct {
    zk_proxy_t *proxy;
    char *frontend;  //  "inproc://…" to connect to
    char *backend;
    char *control;  //  or NULL
    char *capture;  //  or NULL
} s_rig_t;

//  A proxy --lb between two fresh inproc router endpoints.
static void
s_rig_start (s_rig_t *rig, int heartbeat_ms, size_t max_size, bool helpers)
{
    *rig = (s_rig_t){.frontend = tu_inproc ("lb-front"), .backend = tu_inproc ("lb-back")};
    char frontend[128], backend[128], control[128] = "", capture[128] = "";
    snprintf (frontend, sizeof frontend, "router@%s", rig->frontend);
    snprintf (backend, sizeof backend, "router@%s", rig->backend);
    if (helpers) {
        rig->control = tu_inproc ("lb-control");
        rig->capture = tu_inproc ("lb-capture");
        snprintf (control, sizeof control, "rep@%s", rig->control);
        snprintf (capture, sizeof capture, "push@%s", rig->capture);
    }
    zk_proxy_config_t config = {.frontend = frontend,
                                .backend = backend,
                                .control = helpers ? control : NULL,
                                .capture = helpers ? capture : NULL,
                                .max_size = max_size,
                                .linger_ms = 0,
                                .lb = true,
                                .heartbeat_ms = heartbeat_ms};
    rig->proxy = zk_proxy_new (&config);
    cr_assert_not_null (rig->proxy, "the lb proxy did not start");
}

static void
s_rig_stop (s_rig_t *rig)
{
    zk_proxy_destroy (&rig->proxy);
    free (rig->frontend);
    free (rig->backend);
    free (rig->control);
    free (rig->capture);
}

static zk_proxy_stats_t
s_stats (zk_proxy_t *proxy)
{
    zk_proxy_stats_t stats;
    cr_assert_eq (zk_proxy_stats (proxy, &stats), 0);
    return stats;
}

//  Assert that cond (on zk_proxy_stats_t st) becomes true within WAIT_MS.
#define ASSERT_SOON(proxy, st, cond)                                                               \
    do {                                                                                           \
        bool met_ = false;                                                                         \
        for (int64_t deadline_ = zclock_mono () + WAIT_MS; !met_ && zclock_mono () < deadline_;) { \
            st = s_stats (proxy);                                                                  \
            met_ = (cond);                                                                         \
            if (!met_)                                                                             \
                zmq_poll (NULL, 0, 5); /* poll the counters until the deadline */                  \
        }                                                                                          \
        cr_assert (met_, "never true: %s", #cond);                                                 \
    } while (0)

//  ---------------------------------------------------------------- a fake ZKW/1 worker

typedef struct {
    zsock_t *sock;
    int heartbeats;   //  HEARTBEATs heard from the proxy
    int disconnects;  //  DISCONNECTs heard
} s_worker_t;

static void
s_worker_send (s_worker_t *worker, const char *command, const char *argument)
{
    zstr_sendx (worker->sock, "ZKW1", command, argument, NULL);
}

//  A DEALER connected to the backend, READY with credit (unless NULL).
static void
s_worker_start (s_worker_t *worker, const char *backend, const char *credit)
{
    *worker = (s_worker_t){.sock = tu_connect (ZMQ_DEALER, backend)};
    cr_assert_not_null (worker->sock);
    if (credit)
        s_worker_send (worker, "READY", credit);
}

static void
s_worker_stop (s_worker_t *worker)
{
    zsock_destroy (&worker->sock);
}

/*  The next REQUEST (or, with want "DISCONNECT", the next DISCONNECT) the
    proxy sends worker, within timeout_ms: the frames after the command
    (NULL at the deadline). Heartbeats and other commands are counted on
    the way. With beat set the worker sends HEARTBEAT every 20 ms while it
    waits.                                                              */
static zmsg_t *
s_worker_next (s_worker_t *worker, const char *want, int timeout_ms, bool beat)
{
    for (int64_t deadline = zclock_mono () + timeout_ms; zclock_mono () < deadline;) {
        if (beat)
            s_worker_send (worker, "HEARTBEAT", NULL);
        zmsg_t *msg = tu_recv (worker->sock, beat ? 20 : 50);
        if (!msg)
            continue;
        char *signature = zmsg_popstr (msg);
        char *command = zmsg_popstr (msg);
        cr_assert_str_eq (signature, "ZKW1");
        cr_assert_not_null (command);
        bool wanted = streq (command, want);
        if (streq (command, "HEARTBEAT")) {
            cr_assert_eq (zmsg_size (msg), 0, "a HEARTBEAT with extra frames");
            worker->heartbeats++;
        }
        else if (streq (command, "DISCONNECT"))
            worker->disconnects++;
        else
            cr_assert_str_eq (command, "REQUEST", "unexpected command %s", command);
        free (signature);
        free (command);
        if (wanted)
            return msg;
        zmsg_destroy (&msg);
    }
    return NULL;
}

static zmsg_t *
s_worker_request (s_worker_t *worker)
{
    zmsg_t *request = s_worker_next (worker, "REQUEST", WAIT_MS, false);
    cr_assert_not_null (request, "no REQUEST reached the worker");
    return request;
}

//  REPLY to request: its routing frames and delimiter, then body.
static void
s_worker_reply (s_worker_t *worker, zmsg_t *request, const char *body)
{
    zmsg_t *reply = zmsg_new ();
    zmsg_addstr (reply, "ZKW1");
    zmsg_addstr (reply, "REPLY");
    for (zframe_t *frame = zmsg_first (request); frame; frame = zmsg_next (request)) {
        zmsg_addmem (reply, zframe_data (frame), zframe_size (frame));
        if (zframe_size (frame) == 0)
            break;
    }
    zmsg_addstr (reply, body);
    cr_assert_eq (zmsg_send (&reply, worker->sock), 0);
}

//  The last frame of msg as a string. Caller frees.
static char *
s_last (zmsg_t *msg)
{
    return zframe_strdup (zmsg_last (msg));
}

//  True when worker gets no REQUEST within QUIET_MS.
static bool
s_worker_idle (s_worker_t *worker)
{
    zmsg_t *request = s_worker_next (worker, "REQUEST", QUIET_MS, false);
    bool idle = request == NULL;
    zmsg_destroy (&request);
    return idle;
}

//  A fresh REQID and a DEALER client's request: REQID "" body.
static void
s_send_with_reqid (zsock_t *client, uint8_t reqid[ZK_ID_SIZE], const char *body)
{
    zk_id_generate (reqid);
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, reqid, ZK_ID_SIZE);
    zmsg_addmem (msg, NULL, 0);
    zmsg_addstr (msg, body);
    cr_assert_eq (zmsg_send (&msg, client), 0);
}

//  Assert msg is an error reply (ENVELOPE "") with zk-error error and,
//  when retry, zk-retry=1 (else no zk-retry).
static void
s_assert_error_reply (zmsg_t *msg, const char *error, bool retry)
{
    cr_assert_not_null (msg, "no error reply");
    cr_assert_eq (zmsg_size (msg), 2, "an error reply has %zu frames", zmsg_size (msg));
    zframe_t *frame = zmsg_first (msg);
    zk_envelope_t *envelope = NULL;
    cr_assert_eq (zk_envelope_decode (zframe_data (frame), zframe_size (frame), &envelope), 0);
    cr_assert_str_eq (zk_envelope_header (envelope, "zk-status"), "error");
    cr_assert_not_null (zk_envelope_header (envelope, "zk-error"));
    cr_assert (strncmp (zk_envelope_header (envelope, "zk-error"), error, strlen (error)) == 0,
               "zk-error is '%s'", zk_envelope_header (envelope, "zk-error"));
    if (retry)
        cr_assert_str_eq (zk_envelope_header (envelope, "zk-retry"), "1");
    else
        cr_assert_null (zk_envelope_header (envelope, "zk-retry"));
    cr_assert_eq (zframe_size (zmsg_last (msg)), 0);
    zk_envelope_destroy (&envelope);
}

//  A DEALER client's reply: REQID "" FRAMES...; check the REQID, pop both.
static void
s_pop_reqid (zmsg_t *msg, const uint8_t reqid[ZK_ID_SIZE])
{
    cr_assert_not_null (msg, "no reply");
    zframe_t *id = zmsg_pop (msg);
    zframe_t *delimiter = zmsg_pop (msg);
    cr_assert (id && zframe_size (id) == ZK_ID_SIZE && memcmp (zframe_data (id), reqid, 16) == 0,
               "the reply does not carry the request's REQID");
    cr_assert (delimiter && zframe_size (delimiter) == 0);
    zframe_destroy (&id);
    zframe_destroy (&delimiter);
}

//  ---------------------------------------------------------------- configuration

Test (zk_lb, validate_needs_router_router_and_a_sane_heartbeat)
{
    char reason[256];
    zk_proxy_config_t config = {
        .frontend = "router@inproc://lb-v-f", .backend = "router@inproc://lb-v-b", .lb = true};
    cr_assert_eq (zk_proxy_validate (&config, reason, sizeof reason), 0, "%s", reason);
    config.capture = "pub@inproc://lb-v-cap";
    config.control = "router@inproc://lb-v-ctl";
    config.heartbeat_ms = 100;
    cr_assert_eq (zk_proxy_validate (&config, reason, sizeof reason), 0, "%s", reason);

    config.backend = "dealer@inproc://lb-v-b";
    cr_assert_eq (zk_proxy_validate (&config, reason, sizeof reason), ZK_EINVAL);
    cr_assert_str_eq (reason, "--lb needs a router backend: workers connect to it (got dealer)");
    config.backend = "router@inproc://lb-v-b";
    config.frontend = "pull@inproc://lb-v-f";
    cr_assert_eq (zk_proxy_validate (&config, reason, sizeof reason), ZK_EINVAL);
    cr_assert_str_eq (reason, "--lb needs a router frontend: clients connect to it (got pull)");
    config.frontend = "router@inproc://lb-v-f";
    config.heartbeat_ms = 5;
    cr_assert_eq (zk_proxy_validate (&config, reason, sizeof reason), ZK_EINVAL);
    cr_assert_not_null (strstr (reason, "heartbeat"), "%s", reason);
    config.heartbeat_ms = -1;
    cr_assert_eq (zk_proxy_validate (&config, reason, sizeof reason), ZK_EINVAL);
    config.heartbeat_ms = 1000;
    config.control = "push@inproc://lb-v-ctl";
    cr_assert_eq (zk_proxy_validate (&config, reason, sizeof reason), ZK_EINVAL);
    cr_assert_not_null (strstr (reason, "control"), "%s", reason);

    //  A heartbeat without lb is a mistake, not silently ignored.
    config = (zk_proxy_config_t){.frontend = "router@inproc://lb-v-f",
                                 .backend = "dealer@inproc://lb-v-b",
                                 .heartbeat_ms = 1000};
    cr_assert_eq (zk_proxy_validate (&config, reason, sizeof reason), ZK_EINVAL);
    cr_assert_str_eq (reason, "a heartbeat interval needs --lb");
    config.heartbeat_ms = 0;
    cr_assert_eq (zk_proxy_validate (&config, reason, sizeof reason), 0, "%s", reason);
    //  zk_proxy_new refuses what validate refuses.
    config = (zk_proxy_config_t){
        .frontend = "router@inproc://lb-v-f", .backend = "dealer@inproc://lb-v-b", .lb = true};
    cr_assert_null (zk_proxy_new (&config));
}

Test (zk_lb, new_fails_cleanly_when_the_address_is_in_use, .timeout = 30)
{
    char endpoint[128], frontend[160];
    zsock_t *squatter = tu_bind_ephemeral (ZMQ_ROUTER, endpoint, sizeof endpoint);
    cr_assert_not_null (squatter);
    snprintf (frontend, sizeof frontend, "router@%s", endpoint);
    char *backend = tu_inproc ("lb-inuse");
    char backend_spec[128];
    snprintf (backend_spec, sizeof backend_spec, "router@%s", backend);
    zk_proxy_config_t config = {.frontend = frontend, .backend = backend_spec, .lb = true};
    cr_assert_eq (zk_proxy_validate (&config, NULL, 0), 0);
    cr_assert_null (zk_proxy_new (&config));
    zsock_destroy (&squatter);
    free (backend);
}

//  ---------------------------------------------------------------- routing

Test (zk_lb, req_and_dealer_clients_get_their_own_replies, .timeout = 60)
{
    s_rig_t rig;
    s_rig_start (&rig, SLOW_HB, 0, false);
    s_worker_t worker;
    s_worker_start (&worker, rig.backend, "8");
    zk_proxy_stats_t st;
    ASSERT_SOON (rig.proxy, st, st.workers == 1);

    zsock_t *req1 = tu_connect (ZMQ_REQ, rig.frontend);
    zsock_t *req2 = tu_connect (ZMQ_REQ, rig.frontend);
    zsock_t *dealer = tu_connect (ZMQ_DEALER, rig.frontend);
    zstr_send (req1, "one");
    zmsg_t *r1 = s_worker_request (&worker);
    zstr_send (req2, "two");
    zmsg_t *r2 = s_worker_request (&worker);
    uint8_t reqid[ZK_ID_SIZE];
    s_send_with_reqid (dealer, reqid, "three");
    zmsg_t *r3 = s_worker_request (&worker);

    //  REQUEST = ROUTING "" BODY: a REQ client's routing is its routing id;
    //  a DEALER client's REQID frame follows as a routing frame.
    cr_assert_eq (zmsg_size (r1), 3);
    zmsg_first (r1);
    cr_assert_eq (zframe_size (zmsg_next (r1)), 0);
    char *body = s_last (r1);
    cr_assert_str_eq (body, "one");
    free (body);
    cr_assert_eq (zmsg_size (r3), 4);
    zmsg_first (r3);
    zframe_t *second = zmsg_next (r3);
    cr_assert (zframe_size (second) == ZK_ID_SIZE && memcmp (zframe_data (second), reqid, 16) == 0);
    ASSERT_SOON (rig.proxy, st, st.in_flight == 3 && st.requests == 3 && st.frontend_in == 3);

    //  Replies in the reverse order reach the right clients.
    s_worker_reply (&worker, r3, "THREE");
    s_worker_reply (&worker, r2, "TWO");
    s_worker_reply (&worker, r1, "ONE");
    zmsg_t *got = tu_recv (dealer, WAIT_MS);
    s_pop_reqid (got, reqid);
    body = s_last (got);
    cr_assert_str_eq (body, "THREE");
    free (body);
    zmsg_destroy (&got);
    char *text = zstr_recv (req2);
    cr_assert_str_eq (text, "TWO");
    free (text);
    text = zstr_recv (req1);
    cr_assert_str_eq (text, "ONE");
    free (text);
    ASSERT_SOON (rig.proxy, st, st.in_flight == 0 && st.replies == 3 && st.lost == 0);
    cr_assert_eq (st.refused, 0);

    zmsg_destroy (&r1);
    zmsg_destroy (&r2);
    zmsg_destroy (&r3);
    zsock_destroy (&req1);
    zsock_destroy (&req2);
    zsock_destroy (&dealer);
    s_worker_stop (&worker);
    s_rig_stop (&rig);
}

Test (zk_lb, a_reply_frees_its_requests_slot_and_a_stale_one_a_slot_too, .timeout = 60)
{
    s_rig_t rig;
    s_rig_start (&rig, SLOW_HB, 0, false);
    s_worker_t worker;
    s_worker_start (&worker, rig.backend, "2");
    zsock_t *dealer = tu_connect (ZMQ_DEALER, rig.frontend);
    uint8_t id1[ZK_ID_SIZE], id2[ZK_ID_SIZE], id3[ZK_ID_SIZE];
    s_send_with_reqid (dealer, id1, "a");
    s_send_with_reqid (dealer, id2, "b");
    zmsg_t *r1 = s_worker_request (&worker);
    zmsg_t *r2 = s_worker_request (&worker);
    zk_proxy_stats_t st;
    ASSERT_SOON (rig.proxy, st, st.in_flight == 2);
    s_send_with_reqid (dealer, id3, "c");
    cr_assert (s_worker_idle (&worker), "a third request came past a credit of 2");

    //  Matched by routing frames: r2's reply frees r2's entry, not r1's.
    s_worker_reply (&worker, r2, "B");
    zmsg_t *r3 = s_worker_request (&worker);
    ASSERT_SOON (rig.proxy, st, st.in_flight == 2 && st.requests == 3);
    zmsg_t *got = tu_recv (dealer, WAIT_MS);
    s_pop_reqid (got, id2);
    zmsg_destroy (&got);

    //  A REPLY to no request in its table (one it ran before its last
    //  READY): forwarded, and its slot comes back, the table unchanged.
    zmsg_t *stale = zmsg_dup (r1);
    zframe_t *client = zmsg_pop (stale);
    zframe_t *old_id = zmsg_pop (stale);
    uint8_t other[ZK_ID_SIZE];
    zk_id_generate (other);
    zmsg_pushmem (stale, other, ZK_ID_SIZE);
    zmsg_push (stale, client);
    zframe_destroy (&old_id);
    s_worker_reply (&worker, stale, "stale");
    got = tu_recv (dealer, WAIT_MS);
    s_pop_reqid (got, other);
    zmsg_destroy (&got);
    ASSERT_SOON (rig.proxy, st, st.replies == 2);
    cr_assert_eq (st.in_flight, 2);
    uint8_t id4[ZK_ID_SIZE];
    s_send_with_reqid (dealer, id4, "d");
    zmsg_t *r4 = s_worker_request (&worker);
    ASSERT_SOON (rig.proxy, st, st.in_flight == 3);

    s_worker_reply (&worker, r1, "A");
    s_worker_reply (&worker, r3, "C");
    s_worker_reply (&worker, r4, "D");
    ASSERT_SOON (rig.proxy, st, st.in_flight == 0 && st.replies == 5);
    got = tu_recv (dealer, WAIT_MS);
    s_pop_reqid (got, id1);
    zmsg_destroy (&got);

    zmsg_destroy (&stale);
    zmsg_destroy (&r1);
    zmsg_destroy (&r2);
    zmsg_destroy (&r3);
    zmsg_destroy (&r4);
    zsock_destroy (&dealer);
    s_worker_stop (&worker);
    s_rig_stop (&rig);
}

//  ---------------------------------------------------------------- scheduling

Test (zk_lb, requests_go_to_the_least_recently_used_worker, .timeout = 60)
{
    s_rig_t rig;
    s_rig_start (&rig, SLOW_HB, 0, false);
    s_worker_t workers[3];
    zk_proxy_stats_t st;
    for (int i = 0; i < 3; i++) {
        s_worker_start (&workers[i], rig.backend, "1");
        ASSERT_SOON (rig.proxy, st, st.workers == (uint64_t) i + 1);
    }
    zsock_t *dealer = tu_connect (ZMQ_DEALER, rig.frontend);
    uint8_t reqid[ZK_ID_SIZE];
    //  Never used yet: in the order they came.
    zmsg_t *held[3];
    for (int i = 0; i < 3; i++) {
        s_send_with_reqid (dealer, reqid, "first round");
        held[i] = s_worker_request (&workers[i]);
    }
    //  Replies in the order 2, 0, 1: by readiness the next would go to 2
    //  first; by last use it goes to 0, then 1, then 2.
    int order[3] = {2, 0, 1};
    for (int i = 0; i < 3; i++) {
        s_worker_reply (&workers[order[i]], held[order[i]], "done");
        zmsg_destroy (&held[order[i]]);
        ASSERT_SOON (rig.proxy, st, st.replies == (uint64_t) i + 1);
    }
    for (int i = 0; i < 3; i++) {
        s_send_with_reqid (dealer, reqid, "second round");
        held[i] = s_worker_request (&workers[i]);
        ASSERT_SOON (rig.proxy, st, st.requests == (uint64_t) 4 + i);
    }
    for (int i = 0; i < 3; i++)
        zmsg_destroy (&held[i]);
    zsock_destroy (&dealer);
    for (int i = 0; i < 3; i++)
        s_worker_stop (&workers[i]);
    s_rig_stop (&rig);
}

Test (zk_lb, credit_is_respected_and_the_frontend_waits_without_one, .timeout = 60)
{
    s_rig_t rig;
    s_rig_start (&rig, SLOW_HB, 0, false);
    zsock_t *dealer = tu_connect (ZMQ_DEALER, rig.frontend);
    uint8_t reqid[ZK_ID_SIZE];
    //  No worker yet: requests wait in the frontend.
    for (int i = 0; i < 5; i++)
        s_send_with_reqid (dealer, reqid, "job");
    zk_proxy_stats_t st;

    s_worker_t worker;
    s_worker_start (&worker, rig.backend, "2");
    zmsg_t *a = s_worker_request (&worker);
    zmsg_t *b = s_worker_request (&worker);
    cr_assert (s_worker_idle (&worker), "a third request came past a credit of 2");
    st = s_stats (rig.proxy);
    cr_assert_eq (st.in_flight, 2);
    cr_assert_eq (st.frontend_in, 2, "the frontend was read without a free slot");

    //  A reply gives one slot back; READY adds one more.
    s_worker_reply (&worker, a, "ok");
    zmsg_t *c = s_worker_request (&worker);
    cr_assert (s_worker_idle (&worker));
    s_worker_send (&worker, "READY", "1");
    zmsg_t *d = s_worker_request (&worker);
    cr_assert (s_worker_idle (&worker));
    ASSERT_SOON (rig.proxy, st, st.in_flight == 3 && st.frontend_in == 4);
    s_worker_reply (&worker, b, "ok");
    zmsg_t *e = s_worker_request (&worker);
    s_worker_reply (&worker, c, "ok");
    s_worker_reply (&worker, d, "ok");
    s_worker_reply (&worker, e, "ok");
    for (int i = 0; i < 5; i++) {
        zmsg_t *got = tu_recv (dealer, WAIT_MS);
        cr_assert_not_null (got, "reply %d missing", i);
        zmsg_destroy (&got);
    }
    ASSERT_SOON (rig.proxy, st, st.in_flight == 0 && st.replies == 5);

    zmsg_destroy (&a);
    zmsg_destroy (&b);
    zmsg_destroy (&c);
    zmsg_destroy (&d);
    zmsg_destroy (&e);
    zsock_destroy (&dealer);
    s_worker_stop (&worker);
    s_rig_stop (&rig);
}

//  ---------------------------------------------------------------- liveness

Test (zk_lb, a_silent_worker_is_dropped_and_its_request_failed_back, .timeout = 60)
{
    const int heartbeat = 250;
    s_rig_t rig;
    s_rig_start (&rig, heartbeat, 0, false);
    s_worker_t silent, alive;
    int64_t silent_since = zclock_mono ();
    s_worker_start (&silent, rig.backend, "1");  //  its last word
    zk_proxy_stats_t st;
    ASSERT_SOON (rig.proxy, st, st.workers == 1);
    s_worker_start (&alive, rig.backend, "1");
    ASSERT_SOON (rig.proxy, st, st.workers == 2);

    zsock_t *dealer = tu_connect (ZMQ_DEALER, rig.frontend);
    uint8_t reqid[ZK_ID_SIZE];
    s_send_with_reqid (dealer, reqid, "doomed");
    zmsg_t *held = s_worker_request (&silent);

    //  The live worker keeps heart-beating while the client waits.
    zmsg_t *failed = NULL;
    for (int64_t deadline = zclock_mono () + 10 * heartbeat + WAIT_MS;
         !failed && zclock_mono () < deadline;) {
        s_worker_send (&alive, "HEARTBEAT", NULL);
        failed = tu_recv (dealer, 20);
    }
    int64_t silent_for = zclock_mono () - silent_since;
    cr_assert_not_null (failed, "the silent worker's request was never failed back");
    cr_assert_geq (silent_for, 3 * heartbeat - 5, "dropped after %" PRId64 " ms", silent_for);
    s_pop_reqid (failed, reqid);
    s_assert_error_reply (failed, "worker lost", true);
    zmsg_destroy (&failed);
    st = s_stats (rig.proxy);
    cr_assert_eq (st.workers, 1);
    cr_assert_eq (st.lost, 1);
    cr_assert_eq (st.in_flight, 0);

    //  The retry goes to the live worker.
    s_send_with_reqid (dealer, reqid, "retry");
    zmsg_t *retry = s_worker_next (&alive, "REQUEST", WAIT_MS, true);
    cr_assert_not_null (retry);
    s_worker_reply (&alive, retry, "done");
    zmsg_t *got = tu_recv (dealer, WAIT_MS);
    s_pop_reqid (got, reqid);
    zmsg_destroy (&got);

    //  The dropped worker wakes up: its late REPLY is still forwarded and
    //  it is told DISCONNECT; READY makes it a worker again.
    s_worker_reply (&silent, held, "late");
    zmsg_t *disconnect = s_worker_next (&silent, "DISCONNECT", WAIT_MS, false);
    cr_assert_not_null (disconnect, "no DISCONNECT for a dropped worker");
    got = tu_recv (dealer, WAIT_MS);
    cr_assert_not_null (got, "the late reply was not forwarded");
    char *body = s_last (got);
    cr_assert_str_eq (body, "late");
    free (body);
    zmsg_destroy (&got);
    ASSERT_SOON (rig.proxy, st, st.unknown == 1);
    s_worker_send (&silent, "READY", "1");
    s_worker_send (&alive, "HEARTBEAT", NULL);
    ASSERT_SOON (rig.proxy, st, st.workers == 2);

    zmsg_destroy (&disconnect);
    zmsg_destroy (&retry);
    zmsg_destroy (&held);
    zsock_destroy (&dealer);
    s_worker_stop (&silent);
    s_worker_stop (&alive);
    s_rig_stop (&rig);
}

Test (zk_lb, the_proxy_heartbeats_every_interval, .timeout = 60)
{
    const int heartbeat = 200;
    s_rig_t rig;
    s_rig_start (&rig, heartbeat, 0, false);
    s_worker_t worker;
    s_worker_start (&worker, rig.backend, "1");
    zk_proxy_stats_t st;
    ASSERT_SOON (rig.proxy, st, st.workers == 1);
    int64_t start = zclock_mono ();
    //  Watch, heart-beating, until 5 heartbeats came (or the deadline).
    for (int64_t deadline = start + WAIT_MS; worker.heartbeats < 5 && zclock_mono () < deadline;)
        s_worker_next (&worker, "REQUEST", 20, true);
    cr_assert_geq (worker.heartbeats, 5);
    cr_assert_geq (zclock_mono () - start, 3 * heartbeat, "heartbeats came too fast");
    st = s_stats (rig.proxy);
    cr_assert_eq (st.workers, 1, "a heart-beating worker was dropped");
    s_worker_stop (&worker);
    s_rig_stop (&rig);
}

Test (zk_lb, disconnect_from_a_worker_fails_its_requests_back_as_stopping, .timeout = 60)
{
    s_rig_t rig;
    s_rig_start (&rig, SLOW_HB, 0, false);
    s_worker_t worker;
    s_worker_start (&worker, rig.backend, "2");
    zsock_t *req = tu_connect (ZMQ_REQ, rig.frontend);
    zstr_send (req, "work");
    zmsg_t *held = s_worker_request (&worker);
    s_worker_send (&worker, "DISCONNECT", NULL);
    zmsg_t *failed = tu_recv (req, WAIT_MS);
    s_assert_error_reply (failed, "worker stopping", true);
    zmsg_destroy (&failed);
    zk_proxy_stats_t st;
    ASSERT_SOON (rig.proxy, st, st.workers == 0 && st.lost == 1 && st.in_flight == 0);
    //  No DISCONNECT is sent back to a worker that leaves.
    zmsg_t *answer = s_worker_next (&worker, "DISCONNECT", QUIET_MS, false);
    cr_assert_null (answer);
    cr_assert_eq (st.unknown, 0);
    zmsg_destroy (&held);
    zsock_destroy (&req);
    s_worker_stop (&worker);
    s_rig_stop (&rig);
}

Test (zk_lb, an_unknown_worker_is_told_disconnect, .timeout = 60)
{
    s_rig_t rig;
    s_rig_start (&rig, SLOW_HB, 0, false);
    s_worker_t worker, stranger;
    s_worker_start (&worker, rig.backend, "1");
    s_worker_start (&stranger, rig.backend, NULL);
    zsock_t *req = tu_connect (ZMQ_REQ, rig.frontend);
    zstr_send (req, "question");
    zmsg_t *held = s_worker_request (&worker);

    s_worker_send (&stranger, "HEARTBEAT", NULL);
    zmsg_t *disconnect = s_worker_next (&stranger, "DISCONNECT", WAIT_MS, false);
    cr_assert_not_null (disconnect);
    cr_assert_eq (zmsg_size (disconnect), 0);
    zmsg_destroy (&disconnect);
    //  Its REPLY is forwarded all the same, and answered DISCONNECT.
    s_worker_reply (&stranger, held, "from a stranger");
    disconnect = s_worker_next (&stranger, "DISCONNECT", WAIT_MS, false);
    cr_assert_not_null (disconnect);
    char *text = zstr_recv (req);
    cr_assert_str_eq (text, "from a stranger");
    free (text);
    zk_proxy_stats_t st;
    ASSERT_SOON (rig.proxy, st, st.unknown == 2);
    cr_assert_eq (st.workers, 1);
    cr_assert_eq (st.in_flight, 1, "a stranger's reply freed a known worker's slot");
    zmsg_destroy (&disconnect);
    zmsg_destroy (&held);
    zsock_destroy (&req);
    s_worker_stop (&worker);
    s_worker_stop (&stranger);
    s_rig_stop (&rig);
}

Test (zk_lb, stopping_the_proxy_fails_held_requests_back, .timeout = 60)
{
    s_rig_t rig;
    s_rig_start (&rig, SLOW_HB, 0, false);
    s_worker_t worker;
    s_worker_start (&worker, rig.backend, "1");
    zsock_t *dealer = tu_connect (ZMQ_DEALER, rig.frontend);
    uint8_t reqid[ZK_ID_SIZE];
    s_send_with_reqid (dealer, reqid, "work");
    zmsg_t *held = s_worker_request (&worker);
    zk_proxy_destroy (&rig.proxy);
    zmsg_t *failed = tu_recv (dealer, WAIT_MS);
    s_pop_reqid (failed, reqid);
    s_assert_error_reply (failed, "proxy stopping", true);
    zmsg_destroy (&failed);
    zmsg_destroy (&held);
    zsock_destroy (&dealer);
    s_worker_stop (&worker);
    s_rig_stop (&rig);
}

//  ---------------------------------------------------------------- control and capture

Test (zk_lb, control_and_capture_work_as_on_the_device, .timeout = 60)
{
    s_rig_t rig;
    s_rig_start (&rig, SLOW_HB, 0, true);
    zsock_t *control = tu_connect (ZMQ_REQ, rig.control);
    zsock_t *tap = tu_connect (ZMQ_PULL, rig.capture);
    s_worker_t worker;
    s_worker_start (&worker, rig.backend, "1");
    zk_proxy_stats_t st;
    ASSERT_SOON (rig.proxy, st, st.workers == 1);

    zstr_send (control, "PAUSE");
    char *text = zstr_recv (control);
    cr_assert_str_eq (text, "OK");
    free (text);
    zsock_t *req = tu_connect (ZMQ_REQ, rig.frontend);
    zstr_send (req, "ping");
    cr_assert (s_worker_idle (&worker), "a request moved while paused");
    zstr_send (control, "RESUME");
    text = zstr_recv (control);
    cr_assert_str_eq (text, "OK");
    free (text);
    zmsg_t *held = s_worker_request (&worker);
    s_worker_reply (&worker, held, "pong");
    text = zstr_recv (req);
    cr_assert_str_eq (text, "pong");
    free (text);

    //  The tap sees the request and the reply as the frontend does.
    zmsg_t *copy = tu_recv (tap, WAIT_MS);
    cr_assert_not_null (copy);
    text = s_last (copy);
    cr_assert_str_eq (text, "ping");
    free (text);
    cr_assert_eq (zmsg_size (copy), 3);
    zmsg_destroy (&copy);
    copy = tu_recv (tap, WAIT_MS);
    cr_assert_not_null (copy);
    text = s_last (copy);
    cr_assert_str_eq (text, "pong");
    free (text);
    zmsg_destroy (&copy);

    zstr_send (control, "STATISTICS");
    text = zstr_recv (control);
    cr_assert_not_null (strstr (text, " workers=1 in_flight=0 requests=1 replies=1 lost=0 "), "%s",
                        text);
    cr_assert_not_null (strstr (text, " captured=2 "), "%s", text);
    free (text);
    zmsg_destroy (&held);
    zsock_destroy (&req);
    zsock_destroy (&tap);
    zsock_destroy (&control);
    s_worker_stop (&worker);
    s_rig_stop (&rig);
}

//  ---------------------------------------------------------------- hostile input

//  Send count frames: the given ones, then "x" frames up to count.
static void
s_send_frames (zsock_t *sock, const char *const *first, int count)
{
    void *raw = zsock_resolve (sock);
    int given = 0;
    while (first[given])
        given++;
    for (int i = 0; i < count; i++) {
        const char *text = i < given ? first[i] : "x";
        cr_assert_geq (zmq_send (raw, text, strlen (text), i + 1 < count ? ZMQ_SNDMORE : 0), 0);
    }
}

//  One round trip through the proxy: it still serves.
static void
s_assert_serving (s_rig_t *rig, s_worker_t *worker, zsock_t *req)
{
    zstr_send (req, "still there?");
    zmsg_t *request = s_worker_request (worker);
    s_worker_reply (worker, request, "yes");
    zmsg_destroy (&request);
    char *text = zstr_recv (req);
    cr_assert_str_eq (text, "yes");
    free (text);
    zk_proxy_stats_t st = s_stats (rig->proxy);
    cr_assert_eq (st.in_flight, 0);
}

Test (zk_lb, hostile_worker_messages_are_refused_and_counted, .timeout = 90)
{
    s_rig_t rig;
    s_rig_start (&rig, SLOW_HB, MAX_BYTES, false);
    s_worker_t worker, stranger;
    s_worker_start (&worker, rig.backend, "1");
    s_worker_start (&stranger, rig.backend, NULL);
    zsock_t *req = tu_connect (ZMQ_REQ, rig.frontend);
    zk_proxy_stats_t st;
    ASSERT_SOON (rig.proxy, st, st.workers == 1);

    const char *const *hostile[] = {
        (const char *[]){"", NULL},
        (const char *[]){"ZKW1", NULL},
        (const char *[]){"ZKW2", "READY", "1", NULL},
        (const char *[]){"zkw1", "HEARTBEAT", NULL},
        (const char *[]){"ZKW1", "READY", NULL},
        (const char *[]){"ZKW1", "READY", "0", NULL},
        (const char *[]){"ZKW1", "READY", "-1", NULL},
        (const char *[]){"ZKW1", "READY", "1x", NULL},
        (const char *[]){"ZKW1", "READY", "1025", NULL},
        (const char *[]){"ZKW1", "READY", "99999999999", NULL},
        (const char *[]){"ZKW1", "READY", "1", "2", NULL},
        (const char *[]){"ZKW1", "HEARTBEAT", "extra", NULL},
        (const char *[]){"ZKW1", "DISCONNECT", "extra", NULL},
        (const char *[]){"ZKW1", "REQUEST", "id", "", "body", NULL},
        (const char *[]){"ZKW1", "BOGUS", NULL},
        (const char *[]){"ZKW1", "REPLY", NULL},
        (const char *[]){"ZKW1", "REPLY", "client", "no delimiter", NULL},
        (const char *[]){"ZKW1", "REPLY", "", "no routing frame", NULL},
        (const char *[]){"ZKW1", "REPLY", "1",  "2",  "3",  "4",  "5",
                         "6",    "7",     "8",  "9",  "10", "11", "12",
                         "13",   "14",    "15", "16", "17", "",   "too many routing frames",
                         NULL},
    };
    int n = (int) (sizeof hostile / sizeof hostile[0]);
    uint64_t refused = 0;
    for (int i = 0; i < n; i++) {
        int count = 0;
        while (hostile[i][count])
            count++;
        //  From the known worker and from a stranger: both refused.
        s_send_frames (worker.sock, hostile[i], count);
        s_send_frames (stranger.sock, hostile[i], count);
        refused += 2;
        ASSERT_SOON (rig.proxy, st, st.refused == refused);
    }
    //  Credit past 1024 in all (1 + 1024), 10,000 frames, a message over max-size.
    s_send_frames (worker.sock, (const char *[]){"ZKW1", "READY", "1024", NULL}, 3);
    s_send_frames (worker.sock, (const char *[]){"ZKW1", "REPLY", NULL}, 10000);
    char *big = malloc (MAX_BYTES + 1);
    memset (big, 'b', MAX_BYTES);
    big[MAX_BYTES] = 0;
    s_send_frames (stranger.sock, (const char *[]){"ZKW1", "HEARTBEAT", big, NULL}, 3);
    free (big);
    refused += 3;
    ASSERT_SOON (rig.proxy, st, st.refused == refused);

    //  Nothing was answered, the worker's credit is unchanged (1), it serves.
    cr_assert_eq (st.unknown, 0, "a malformed message was answered");
    cr_assert_eq (st.workers, 1);
    zmsg_t *answer = s_worker_next (&stranger, "DISCONNECT", QUIET_MS, false);
    cr_assert_null (answer);
    zstr_send (req, "first");
    zmsg_t *held = s_worker_request (&worker);
    zsock_t *req2 = tu_connect (ZMQ_REQ, rig.frontend);
    zstr_send (req2, "second");
    cr_assert (s_worker_idle (&worker), "the worker got more than its credit");
    s_worker_reply (&worker, held, "1");
    char *text = zstr_recv (req);
    free (text);
    zmsg_t *second = s_worker_request (&worker);
    s_worker_reply (&worker, second, "2");
    text = zstr_recv (req2);
    cr_assert_str_eq (text, "2");
    free (text);
    s_assert_serving (&rig, &worker, req);

    zmsg_destroy (&second);
    zmsg_destroy (&held);
    zsock_destroy (&req);
    zsock_destroy (&req2);
    s_worker_stop (&worker);
    s_worker_stop (&stranger);
    s_rig_stop (&rig);
}

Test (zk_lb, an_oversized_reply_fails_its_request_with_a_final_error, .timeout = 60)
{
    s_rig_t rig;
    s_rig_start (&rig, SLOW_HB, MAX_BYTES, false);
    s_worker_t worker;
    s_worker_start (&worker, rig.backend, "1");
    zsock_t *req = tu_connect (ZMQ_REQ, rig.frontend);
    zstr_send (req, "make it big");
    zmsg_t *held = s_worker_request (&worker);
    char *big = malloc (MAX_BYTES + 1);
    memset (big, 'b', MAX_BYTES);
    big[MAX_BYTES] = 0;
    s_worker_reply (&worker, held, big);
    free (big);
    zmsg_t *failed = tu_recv (req, WAIT_MS);
    s_assert_error_reply (failed, "reply refused by the proxy: message too large", false);
    zmsg_destroy (&failed);
    zk_proxy_stats_t st;
    ASSERT_SOON (rig.proxy, st, st.refused == 1 && st.in_flight == 0);
    s_assert_serving (&rig, &worker, req);
    zmsg_destroy (&held);
    zsock_destroy (&req);
    s_worker_stop (&worker);
    s_rig_stop (&rig);
}

Test (zk_lb, hostile_client_requests_are_refused_and_counted, .timeout = 90)
{
    s_rig_t rig;
    s_rig_start (&rig, SLOW_HB, MAX_BYTES, false);
    s_worker_t worker;
    s_worker_start (&worker, rig.backend, "4");
    zk_proxy_stats_t st;
    ASSERT_SOON (rig.proxy, st, st.workers == 1);
    zsock_t *dealer = tu_connect (ZMQ_DEALER, rig.frontend);
    //  No empty delimiter (a DEALER that forgot it), 17 routing frames,
    //  10,000 frames, too large.
    s_send_frames (dealer, (const char *[]){"no delimiter", NULL}, 1);
    s_send_frames (dealer, (const char *[]){"a", "b", NULL}, 2);
    s_send_frames (dealer,
                   (const char *[]){"2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13",
                                    "14", "15", "16", "17", "", "body", NULL},
                   18);
    s_send_frames (dealer, (const char *[]){"", NULL}, 10000);
    char *big = malloc (MAX_BYTES + 1);
    memset (big, 'b', MAX_BYTES);
    big[MAX_BYTES] = 0;
    s_send_frames (dealer, (const char *[]){"", big, NULL}, 2);
    free (big);
    ASSERT_SOON (rig.proxy, st, st.refused == 5);
    cr_assert (s_worker_idle (&worker), "a refused request reached the worker");
    cr_assert_eq (st.frontend_in, 0);
    //  16 routing frames (routing id + 15) are fine.
    s_send_frames (dealer,
                   (const char *[]){"2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13",
                                    "14", "15", "16", "", "body", NULL},
                   17);
    zmsg_t *request = s_worker_request (&worker);
    cr_assert_eq (zmsg_size (request), 18);
    s_worker_reply (&worker, request, "fine");
    zmsg_t *got = tu_recv (dealer, WAIT_MS);
    cr_assert_not_null (got);
    cr_assert_eq (zmsg_size (got), 17);
    zmsg_destroy (&got);
    zmsg_destroy (&request);
    zsock_t *req = tu_connect (ZMQ_REQ, rig.frontend);
    s_assert_serving (&rig, &worker, req);
    zsock_destroy (&req);
    zsock_destroy (&dealer);
    s_worker_stop (&worker);
    s_rig_stop (&rig);
}
