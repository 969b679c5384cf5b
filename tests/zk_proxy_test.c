/*  zk_proxy — the point-to-point / request-response device as an actor.  */

#include "testutil.h"

#define WAIT_MS 5000

//  A proxy between two fresh inproc endpoints (frontend_type@…, backend_type@…),
//  with the rest of the configuration from base (may be NULL).
typedef struct {
    zk_proxy_t *proxy;
    char *frontend;  //  "inproc://…" to connect to
    char *backend;
} s_rig_t;

static void
s_rig_start (s_rig_t *rig, const char *frontend_type, const char *backend_type,
             const zk_proxy_config_t *base)
{
    rig->frontend = tu_inproc ("proxy-front");
    rig->backend = tu_inproc ("proxy-back");
    char frontend[128], backend[128];
    snprintf (frontend, sizeof frontend, "%s@%s", frontend_type, rig->frontend);
    snprintf (backend, sizeof backend, "%s@%s", backend_type, rig->backend);
    zk_proxy_config_t config = base ? *base : (zk_proxy_config_t){.linger_ms = -1};
    config.frontend = frontend;
    config.backend = backend;
    rig->proxy = zk_proxy_new (&config);
    cr_assert_not_null (rig->proxy, "%s -> %s did not start", frontend, backend);
}

static void
s_rig_stop (s_rig_t *rig)
{
    zk_proxy_destroy (&rig->proxy);
    cr_assert_null (rig->proxy);
    free (rig->frontend);
    free (rig->backend);
}

static zk_proxy_stats_t
s_stats (zk_proxy_t *proxy)
{
    zk_proxy_stats_t stats;
    cr_assert_eq (zk_proxy_stats (proxy, &stats), 0);
    return stats;
}

//  Wait at most timeout_ms until the proxy has taken `count` messages from
//  the frontend.
static bool
s_wait_frontend_in (zk_proxy_t *proxy, uint64_t count, int timeout_ms)
{
    for (int64_t deadline = zclock_mono () + timeout_ms; zclock_mono () < deadline;) {
        if (s_stats (proxy).frontend_in >= count)
            return true;
        zmq_poll (NULL, 0, 5);
    }
    return false;
}

static void
s_assert_frame (zframe_t *frame, const void *data, size_t size)
{
    cr_assert_not_null (frame);
    cr_assert_eq (zframe_size (frame), size, "frame of %zu bytes, expected %zu",
                  zframe_size (frame), size);
    cr_assert (size == 0 || memcmp (zframe_data (frame), data, size) == 0);
}

Test (zk_proxy, streamer_moves_multipart_byte_exact_and_in_order, .timeout = 30)
{
    s_rig_t rig;
    s_rig_start (&rig, "pull", "push", NULL);
    zsock_t *producer = tu_connect (ZMQ_PUSH, rig.frontend);
    zsock_t *consumer = tu_connect (ZMQ_PULL, rig.backend);

    //  Binary frames with NUL bytes, an empty frame, a frame of almost
    //  1 MiB (the whole message within the default max_size).
    const char binary[] = {0, 1, 2, 0, (char) 0xff, 0, 'x'};
    size_t big_size = 1024 * 1024 - 64;
    char *big = malloc (big_size);
    for (size_t i = 0; i < big_size; i++)
        big[i] = (char) (i * 7 + 3);
    zmsg_t *message = zmsg_new ();
    zmsg_addmem (message, binary, sizeof binary);
    zmsg_addmem (message, NULL, 0);
    zmsg_addmem (message, big, big_size);
    zmsg_addstr (message, "tail");
    cr_assert_eq (zmsg_send (&message, producer), 0);
    for (int i = 0; i < 200; i++) {
        zstr_sendm (producer, "seq");
        zstr_sendf (producer, "%d", i);
    }

    zmsg_t *got = tu_recv (consumer, WAIT_MS);
    cr_assert_not_null (got);
    cr_assert_eq (zmsg_size (got), 4);
    s_assert_frame (zmsg_first (got), binary, sizeof binary);
    s_assert_frame (zmsg_next (got), NULL, 0);
    s_assert_frame (zmsg_next (got), big, big_size);
    s_assert_frame (zmsg_next (got), "tail", 4);
    zmsg_destroy (&got);
    for (int i = 0; i < 200; i++) {
        got = tu_recv (consumer, WAIT_MS);
        cr_assert_not_null (got, "message %d missing", i);
        char expected[16];
        snprintf (expected, sizeof expected, "%d", i);
        cr_assert_eq (zmsg_size (got), 2);
        s_assert_frame (zmsg_first (got), "seq", 3);
        s_assert_frame (zmsg_next (got), expected, strlen (expected));
        zmsg_destroy (&got);
    }
    zk_proxy_stats_t stats = s_stats (rig.proxy);
    cr_assert_eq (stats.frontend_in, 201);
    cr_assert_eq (stats.frontend_in_bytes,
                  sizeof binary + big_size + 4 + 200 * 3 + 10 + 90 * 2 + 100 * 3);
    cr_assert_eq (stats.backend_in, 0);
    cr_assert_eq (stats.refused, 0);
    free (big);
    zsock_destroy (&producer);
    zsock_destroy (&consumer);
    s_rig_stop (&rig);
}

//  Serve one request on whichever worker has one: reply "NAME:REQUEST".
static int
s_serve_one (zsock_t **workers, int count)
{
    zmq_pollitem_t items[4];
    for (int i = 0; i < count; i++)
        items[i] = (zmq_pollitem_t){zsock_resolve (workers[i]), 0, ZMQ_POLLIN, 0};
    cr_assert_gt (zmq_poll (items, count, WAIT_MS), 0, "no worker got the request");
    for (int i = 0; i < count; i++)
        if (items[i].revents & ZMQ_POLLIN) {
            char *request = zstr_recv (workers[i]);
            zstr_sendf (workers[i], "w%d:%s", i, request);
            zstr_free (&request);
            return i;
        }
    return -1;
}

Test (zk_proxy, router_dealer_serves_req_clients_and_rep_workers, .timeout = 30)
{
    s_rig_t rig;
    s_rig_start (&rig, "router", "dealer", NULL);
    zsock_t *workers[2] = {tu_connect (ZMQ_REP, rig.backend), tu_connect (ZMQ_REP, rig.backend)};
    zsock_t *client = tu_connect (ZMQ_REQ, rig.frontend);
    int served[2] = {0, 0};
    for (int i = 0; i < 20; i++) {
        zstr_sendf (client, "job-%d", i);
        int worker = s_serve_one (workers, 2);
        served[worker]++;
        zmsg_t *reply = tu_recv (client, WAIT_MS);
        cr_assert_not_null (reply, "no reply to job %d", i);
        char expected[32];
        snprintf (expected, sizeof expected, "w%d:job-%d", worker, i);
        char *text = zmsg_popstr (reply);
        cr_assert_str_eq (text, expected);
        zstr_free (&text);
        zmsg_destroy (&reply);
    }
    cr_assert_gt (served[0], 0, "worker 0 got no work");
    cr_assert_gt (served[1], 0, "worker 1 got no work");
    zk_proxy_stats_t stats = s_stats (rig.proxy);
    cr_assert_eq (stats.frontend_in, 20);
    cr_assert_eq (stats.backend_in, 20);
    zsock_destroy (&client);
    zsock_destroy (&workers[0]);
    zsock_destroy (&workers[1]);
    s_rig_stop (&rig);
}

Test (zk_proxy, dealer_to_dealer_is_bidirectional_over_tcp, .timeout = 30)
{
    zk_proxy_config_t config = {.frontend = "dealer@tcp://127.0.0.1:*",
                                .backend = "dealer@tcp://127.0.0.1:*",
                                .linger_ms = 0};
    zk_proxy_t *proxy = zk_proxy_new (&config);
    cr_assert_not_null (proxy);
    char *frontend = tu_engine_endpoint (zk_proxy_actor (proxy), "frontend");
    char *backend = tu_engine_endpoint (zk_proxy_actor (proxy), "backend");
    cr_assert_not_null (frontend);
    cr_assert_not_null (backend);
    cr_assert_null (strstr (frontend, ":*"), "ephemeral port not resolved: %s", frontend);
    zsock_t *left = tu_connect (ZMQ_DEALER, frontend);
    zsock_t *right = tu_connect (ZMQ_DEALER, backend);
    zstr_sendx (left, "to", "right", NULL);
    zmsg_t *got = tu_recv (right, WAIT_MS);
    cr_assert_not_null (got);
    cr_assert_eq (zmsg_size (got), 2);
    zmsg_destroy (&got);
    zstr_sendx (right, "back", NULL);
    got = tu_recv (left, WAIT_MS);
    cr_assert_not_null (got);
    char *text = zmsg_popstr (got);
    cr_assert_str_eq (text, "back");
    zstr_free (&text);
    zmsg_destroy (&got);
    zsock_destroy (&left);
    zsock_destroy (&right);
    free (frontend);
    free (backend);
    zk_proxy_destroy (&proxy);
}

Test (zk_proxy, pause_holds_messages_until_resume, .timeout = 30)
{
    s_rig_t rig;
    s_rig_start (&rig, "pull", "push", NULL);
    zsock_t *producer = tu_connect (ZMQ_PUSH, rig.frontend);
    zsock_t *consumer = tu_connect (ZMQ_PULL, rig.backend);
    cr_assert_eq (zk_proxy_pause (rig.proxy), 0);
    zstr_send (producer, "held");
    //  Nothing may come through while paused (a bounded wait for nothing).
    zmsg_t *got = tu_recv (consumer, 300);
    cr_assert_null (got, "a paused proxy forwarded a message");
    cr_assert_eq (s_stats (rig.proxy).frontend_in, 0);
    cr_assert_eq (zk_proxy_resume (rig.proxy), 0);
    got = tu_recv (consumer, WAIT_MS);
    cr_assert_not_null (got);
    s_assert_frame (zmsg_first (got), "held", 4);
    zmsg_destroy (&got);
    zsock_destroy (&producer);
    zsock_destroy (&consumer);
    s_rig_stop (&rig);
}

Test (zk_proxy, oversized_messages_are_refused_and_counted, .timeout = 30)
{
    zk_proxy_config_t config = {.max_size = 1000, .linger_ms = -1};
    s_rig_t rig;
    s_rig_start (&rig, "pull", "push", &config);
    zsock_t *producer = tu_connect (ZMQ_PUSH, rig.frontend);
    zsock_t *consumer = tu_connect (ZMQ_PULL, rig.backend);
    char block[1000];
    memset (block, 'z', sizeof block);
    //  1001 bytes in two frames, then one huge frame: both refused.
    zmsg_t *message = zmsg_new ();
    zmsg_addmem (message, block, 600);
    zmsg_addmem (message, block, 401);
    zmsg_send (&message, producer);
    size_t huge_size = 4 * 1024 * 1024;
    char *huge = calloc (1, huge_size);
    zsock_send (producer, "b", huge, huge_size);
    //  Exactly at the limit passes, and so does what follows.
    message = zmsg_new ();
    zmsg_addmem (message, block, 500);
    zmsg_addmem (message, block, 500);
    zmsg_send (&message, producer);
    zstr_send (producer, "after");

    zmsg_t *got = tu_recv (consumer, WAIT_MS);
    cr_assert_not_null (got);
    cr_assert_eq (zmsg_content_size (got), 1000);
    zmsg_destroy (&got);
    got = tu_recv (consumer, WAIT_MS);
    cr_assert_not_null (got);
    s_assert_frame (zmsg_first (got), "after", 5);
    zmsg_destroy (&got);
    zk_proxy_stats_t stats = s_stats (rig.proxy);
    cr_assert_eq (stats.refused, 2);
    cr_assert_eq (stats.refused_bytes, 1001 + huge_size);
    cr_assert_eq (stats.frontend_in, 2);
    cr_assert_eq (stats.frontend_in_bytes, 1005);
    free (huge);
    zsock_destroy (&producer);
    zsock_destroy (&consumer);
    s_rig_stop (&rig);
}

static void
s_send_frames (zsock_t *sock, int frames, const char *last)
{
    for (int i = 0; i < frames - 1; i++)
        zmq_send (zsock_resolve (sock), "f", 1, ZMQ_SNDMORE);
    zmq_send (zsock_resolve (sock), last, strlen (last), 0);
}

Test (zk_proxy, messages_with_too_many_frames_are_refused, .timeout = 30)
{
    s_rig_t rig;
    s_rig_start (&rig, "pull", "push", NULL);
    zsock_t *producer = tu_connect (ZMQ_PUSH, rig.frontend);
    zsock_t *consumer = tu_connect (ZMQ_PULL, rig.backend);
    s_send_frames (producer, 5000, "too-many");
    s_send_frames (producer, 1025, "one-too-many");
    s_send_frames (producer, 1024, "at-the-limit");
    zstr_send (producer, "after");
    zmsg_t *got = tu_recv (consumer, WAIT_MS);
    cr_assert_not_null (got);
    cr_assert_eq (zmsg_size (got), 1024);
    s_assert_frame (zmsg_last (got), "at-the-limit", 12);
    zmsg_destroy (&got);
    got = tu_recv (consumer, WAIT_MS);
    cr_assert_not_null (got);
    s_assert_frame (zmsg_first (got), "after", 5);
    zmsg_destroy (&got);
    zk_proxy_stats_t stats = s_stats (rig.proxy);
    cr_assert_eq (stats.refused, 2);
    cr_assert_eq (stats.refused_bytes, 4999 + 8 + 1024 + 12);
    cr_assert_eq (stats.frontend_in, 2);
    zsock_destroy (&producer);
    zsock_destroy (&consumer);
    s_rig_stop (&rig);
}

Test (zk_proxy, capture_gets_a_copy_of_both_directions, .timeout = 30)
{
    char *capture_endpoint = tu_inproc ("proxy-capture");
    char capture_spec[128];
    snprintf (capture_spec, sizeof capture_spec, "push@%s", capture_endpoint);
    zk_proxy_config_t config = {.capture = capture_spec, .linger_ms = -1};
    s_rig_t rig;
    s_rig_start (&rig, "router", "dealer", &config);
    zsock_t *tap = tu_connect (ZMQ_PULL, capture_endpoint);
    zsock_t *worker = tu_connect (ZMQ_REP, rig.backend);
    zsock_t *client = tu_connect (ZMQ_REQ, rig.frontend);
    zstr_send (client, "question");
    char *request = zstr_recv (worker);
    cr_assert_str_eq (request, "question");
    zstr_free (&request);
    zstr_send (worker, "answer");
    zmsg_t *reply = tu_recv (client, WAIT_MS);
    cr_assert_not_null (reply);
    zmsg_destroy (&reply);

    //  The copies carry the router envelope: [identity, "", body].
    zmsg_t *copy = tu_recv (tap, WAIT_MS);
    cr_assert_not_null (copy);
    cr_assert_eq (zmsg_size (copy), 3);
    s_assert_frame (zmsg_last (copy), "question", 8);
    zmsg_destroy (&copy);
    copy = tu_recv (tap, WAIT_MS);
    cr_assert_not_null (copy);
    cr_assert_eq (zmsg_size (copy), 3);
    s_assert_frame (zmsg_last (copy), "answer", 6);
    zmsg_destroy (&copy);
    cr_assert_eq (s_stats (rig.proxy).captured, 2);
    zsock_destroy (&client);
    zsock_destroy (&worker);
    zsock_destroy (&tap);
    free (capture_endpoint);
    s_rig_stop (&rig);
}

//  Send a control command on a req socket and return the reply text.
static char *
s_command (zsock_t *control, const char *command)
{
    zstr_send (control, command);
    zmsg_t *reply = tu_recv (control, WAIT_MS);
    cr_assert_not_null (reply, "no reply to %s", command);
    char *text = zmsg_popstr (reply);
    zmsg_destroy (&reply);
    return text;
}

Test (zk_proxy, control_socket_commands, .timeout = 30)
{
    char *control_endpoint = tu_inproc ("proxy-control");
    char control_spec[128];
    snprintf (control_spec, sizeof control_spec, "rep@%s", control_endpoint);
    zk_proxy_config_t config = {.control = control_spec, .linger_ms = -1};
    s_rig_t rig;
    s_rig_start (&rig, "pull", "push", &config);
    zsock_t *control = tu_connect (ZMQ_REQ, control_endpoint);
    zsock_t *producer = tu_connect (ZMQ_PUSH, rig.frontend);
    zsock_t *consumer = tu_connect (ZMQ_PULL, rig.backend);

    char *text = s_command (control, "PAUSE");
    cr_assert_str_eq (text, "OK");
    zstr_free (&text);
    zstr_send (producer, "one");
    cr_assert_null (tu_recv (consumer, 300), "paused by control, yet forwarded");
    text = s_command (control, "RESUME");
    cr_assert_str_eq (text, "OK");
    zstr_free (&text);
    zmsg_t *got = tu_recv (consumer, WAIT_MS);
    cr_assert_not_null (got);
    zmsg_destroy (&got);

    text = s_command (control, "STATISTICS");
    cr_assert_not_null (strstr (text, "frontend_in=1 frontend_in_bytes=3 backend_in=0"), "%s",
                        text);
    cr_assert_not_null (strstr (text, " refused=0 "), "%s", text);
    zstr_free (&text);
    text = s_command (control, "STATISTICS\n");  //  as `echo` sends it
    cr_assert_eq (strncmp (text, "frontend_in=", 12), 0, "%s", text);
    zstr_free (&text);

    //  Hostile commands: unknown, oversized, many frames. The device goes on.
    text = s_command (control, "bogus");
    cr_assert_str_eq (text, "ERROR unknown command");
    zstr_free (&text);
    char long_command[5000];
    memset (long_command, 'P', sizeof long_command - 1);
    long_command[sizeof long_command - 1] = 0;
    text = s_command (control, long_command);
    cr_assert_str_eq (text, "ERROR unknown command");
    zstr_free (&text);
    s_send_frames (control, 50, "PAUSE");
    zmsg_t *reply = tu_recv (control, WAIT_MS);
    cr_assert_not_null (reply);
    s_assert_frame (zmsg_last (reply), "ERROR unknown command", 21);
    zmsg_destroy (&reply);

    text = s_command (control, "TERMINATE");
    cr_assert_str_eq (text, "OK");
    zstr_free (&text);
    zmsg_t *notice = tu_recv (zactor_sock (zk_proxy_actor (rig.proxy)), WAIT_MS);
    cr_assert_not_null (notice, "no TERMINATED from the actor");
    s_assert_frame (zmsg_first (notice), "TERMINATED", 10);
    zmsg_destroy (&notice);
    //  The engine still answers on its pipe until it is destroyed.
    cr_assert_eq (s_stats (rig.proxy).frontend_in, 1);
    zsock_destroy (&control);
    zsock_destroy (&producer);
    zsock_destroy (&consumer);
    free (control_endpoint);
    s_rig_stop (&rig);
}

Test (zk_proxy, control_on_a_router_keeps_the_envelope, .timeout = 30)
{
    char *control_endpoint = tu_inproc ("proxy-control");
    char control_spec[128];
    snprintf (control_spec, sizeof control_spec, "router@%s", control_endpoint);
    zk_proxy_config_t config = {.control = control_spec, .linger_ms = -1};
    s_rig_t rig;
    s_rig_start (&rig, "pull", "push", &config);
    zsock_t *req = tu_connect (ZMQ_REQ, control_endpoint);
    char *text = s_command (req, "STATISTICS");
    cr_assert_eq (strncmp (text, "frontend_in=0 ", 14), 0, "%s", text);
    zstr_free (&text);
    zsock_t *dealer = tu_connect (ZMQ_DEALER, control_endpoint);
    text = s_command (dealer, "PAUSE");
    cr_assert_str_eq (text, "OK");
    zstr_free (&text);
    zsock_destroy (&req);
    zsock_destroy (&dealer);
    free (control_endpoint);
    s_rig_stop (&rig);
}

/*  A bound push with no peer cannot take a message: the proxy holds one
    pending and stops reading, the rest wait in the sockets; nothing is
    lost, and all arrive in order once a puller connects.              */
Test (zk_proxy, backpressure_holds_messages_until_a_puller_connects, .timeout = 30)
{
    s_rig_t rig;
    s_rig_start (&rig, "pull", "push", NULL);
    zsock_t *producer = tu_connect (ZMQ_PUSH, rig.frontend);
    int total = 300;
    for (int i = 0; i < total; i++)
        cr_assert_eq (zstr_sendf (producer, "m%d", i), 0);
    //  It reads the frontend only when the backend can take a message.
    cr_assert_leq (s_stats (rig.proxy).frontend_in, 1, "the proxy read past a full backend");
    zsock_t *consumer = tu_connect (ZMQ_PULL, rig.backend);
    for (int i = 0; i < total; i++) {
        zmsg_t *got = tu_recv (consumer, WAIT_MS);
        cr_assert_not_null (got, "message %d lost", i);
        char expected[16];
        snprintf (expected, sizeof expected, "m%d", i);
        s_assert_frame (zmsg_first (got), expected, strlen (expected));
        zmsg_destroy (&got);
    }
    cr_assert_eq (s_stats (rig.proxy).frontend_in, (uint64_t) total);
    zsock_destroy (&producer);
    zsock_destroy (&consumer);
    s_rig_stop (&rig);
}

Test (zk_proxy, validate_refuses_pairs_that_cannot_work)
{
    struct {
        const char *frontend, *backend, *reason;
    } cases[] = {
        {"req@inproc://a", "dealer@inproc://b", "use router/dealer"},
        {"router@inproc://a", "rep@inproc://b", "use router/dealer"},
        {"pub@inproc://a", "push@inproc://b", "the frontend (pub) cannot receive"},
        {"push@inproc://a", "push@inproc://b", "the frontend (push) cannot receive"},
        {"pull@inproc://a", "pull@inproc://b", "the backend (pull) cannot send"},
        {"dealer@inproc://a", "sub@inproc://b", "the backend (sub) cannot send"},
        {"dealer@inproc://a", "router@inproc://b", "the backend (router)"},
        {"router@inproc://a", "push@inproc://b",
         "a router frontend needs a dealer backend (got push)"},
        {"xsub@inproc://a", "pub@inproc://b", "an xsub frontend needs an xpub backend (got pub)"},
        {"pull@inproc://a", "xpub@inproc://b", "an xpub backend needs an xsub frontend (got pull)"},
        {"bogus@inproc://a", "push@inproc://b", "frontend: invalid socket spec 'bogus@inproc://a'"},
        {NULL, "push@inproc://b", "a frontend spec is required"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        zk_proxy_config_t config = {.frontend = cases[i].frontend, .backend = cases[i].backend};
        char reason[256] = "";
        cr_assert_eq (zk_proxy_validate (&config, reason, sizeof reason), ZK_EINVAL, "case %zu", i);
        cr_assert_not_null (strstr (reason, cases[i].reason), "case %zu: '%s'", i, reason);
        cr_assert_null (strchr (reason, '\n'), "one line");
        cr_assert_null (zk_proxy_new (&config), "case %zu started", i);
    }
    //  Capture and control sockets must be able to do their job.
    zk_proxy_config_t config = {
        .frontend = "pull@inproc://a", .backend = "push@inproc://b", .capture = "pull@inproc://c"};
    char reason[256] = "";
    cr_assert_eq (zk_proxy_validate (&config, reason, sizeof reason), ZK_EINVAL);
    cr_assert_not_null (strstr (reason, "capture: a pull socket cannot send"), "%s", reason);
    config.capture = NULL;
    config.control = "push@inproc://d";
    cr_assert_eq (zk_proxy_validate (&config, reason, sizeof reason), ZK_EINVAL);
    cr_assert_not_null (strstr (reason, "control: a push socket cannot receive"), "%s", reason);

    const char *good[][2] = {
        {"pull@inproc://a", "push@inproc://b"},   {"router@inproc://a", "dealer@inproc://b"},
        {"xsub@inproc://a", "xpub@inproc://b"},   {"dealer@inproc://a", "dealer@inproc://b"},
        {"pair@inproc://a", "pair@inproc://b"},   {"sub@inproc://a", "pub@inproc://b"},
        {"dealer@inproc://a", "push@inproc://b"}, {"pull@inproc://a", "pub@inproc://b"},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        zk_proxy_config_t pair = {.frontend = good[i][0], .backend = good[i][1]};
        cr_assert_eq (zk_proxy_validate (&pair, NULL, 0), 0, "%s %s", good[i][0], good[i][1]);
    }
}

Test (zk_proxy, new_fails_cleanly_when_the_address_is_in_use, .timeout = 30)
{
    char endpoint[256];
    zsock_t *squatter = tu_bind_ephemeral (ZMQ_PULL, endpoint, sizeof endpoint);
    cr_assert_not_null (squatter);
    char backend[300];
    snprintf (backend, sizeof backend, "push@%s", endpoint);
    zk_proxy_config_t config = {.frontend = "pull@tcp://127.0.0.1:*", .backend = backend};
    cr_assert_null (zk_proxy_new (&config));
    //  And the frontend side too, with a good backend.
    snprintf (backend, sizeof backend, "pull@%s", endpoint);
    config = (zk_proxy_config_t){.frontend = backend, .backend = "push@tcp://127.0.0.1:*"};
    cr_assert_null (zk_proxy_new (&config));
    zsock_destroy (&squatter);
}

Test (zk_proxy, sub_frontend_takes_everything_to_a_pub_backend, .timeout = 30)
{
    s_rig_t rig;
    s_rig_start (&rig, "sub", "push", NULL);
    zsock_t *publisher = zsock_new (ZMQ_PUB);
    zsock_set_linger (publisher, 0);
    zsock_connect (publisher, "%s", rig.frontend);
    zsock_t *consumer = tu_connect (ZMQ_PULL, rig.backend);
    //  A pub drops until the subscription arrives: publish until one passes.
    zmsg_t *got = NULL;
    for (int tries = 0; tries < 500 && !got; tries++) {
        zstr_sendx (publisher, "any-topic", "body", NULL);
        got = tu_recv (consumer, 10);
    }
    cr_assert_not_null (got, "nothing passed a sub frontend");
    cr_assert_eq (zmsg_size (got), 2);
    s_assert_frame (zmsg_first (got), "any-topic", 9);
    zmsg_destroy (&got);
    zsock_destroy (&publisher);
    zsock_destroy (&consumer);
    s_rig_stop (&rig);
}

//  A connected puller that does not read: the proxy fills the backend up to
//  its high-water mark, then stops reading; nothing is lost.
Test (zk_proxy, backpressure_stops_reading_at_the_high_water_mark, .timeout = 30)
{
    zk_proxy_config_t config = {.hwm = 5, .linger_ms = -1};
    s_rig_t rig;
    s_rig_start (&rig, "pull", "push", &config);
    zsock_t *consumer = zsock_new (ZMQ_PULL);
    zsock_set_rcvhwm (consumer, 5);
    zsock_set_linger (consumer, 0);
    cr_assert_eq (zsock_connect (consumer, "%s", rig.backend), 0);
    zsock_t *producer = tu_connect (ZMQ_PUSH, rig.frontend);
    int total = 500;
    for (int i = 0; i < total; i++)
        cr_assert_eq (zstr_sendf (producer, "m%d", i), 0);
    cr_assert (s_wait_frontend_in (rig.proxy, 5, WAIT_MS), "the proxy moved nothing");
    cr_assert_not (s_wait_frontend_in (rig.proxy, 100, 300), "the proxy read past the hwm");
    for (int i = 0; i < total; i++) {
        zmsg_t *got = tu_recv (consumer, WAIT_MS);
        cr_assert_not_null (got, "message %d lost", i);
        char expected[16];
        snprintf (expected, sizeof expected, "m%d", i);
        s_assert_frame (zmsg_first (got), expected, strlen (expected));
        zmsg_destroy (&got);
    }
    zsock_destroy (&producer);
    zsock_destroy (&consumer);
    s_rig_stop (&rig);
}
