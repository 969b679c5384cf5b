/*  zk_forwarder — the fan-out device as an actor.  */

#include "testutil.h"

#define WAIT_MS 5000

static zk_forwarder_t *
s_forwarder_start (const char *frontend, const char *backend, zk_forwarder_config_t *config)
{
    zk_forwarder_config_t local = {.linger_ms = 0};
    if (!config)
        config = &local;
    config->frontend = frontend;
    config->backend = backend;
    zk_forwarder_t *forwarder = zk_forwarder_new (config);
    cr_assert_not_null (forwarder, "%s -> %s did not start", frontend, backend);
    return forwarder;
}

//  A forwarder between two fresh inproc endpoints: frontend "TYPE@…" or
//  "TYPE>…" (publishers), backend likewise (subscribers).
typedef struct {
    zk_forwarder_t *forwarder;
    char *publishers;  //  the inproc endpoints
    char *subscribers;
} s_rig_t;

static void
s_rig_start (s_rig_t *rig, const char *frontend_prefix, const char *backend_prefix,
             zk_forwarder_config_t *config)
{
    rig->publishers = tu_inproc ("fwd-pub");
    rig->subscribers = tu_inproc ("fwd-sub");
    char frontend[128], backend[128];
    snprintf (frontend, sizeof frontend, "%s%s", frontend_prefix, rig->publishers);
    snprintf (backend, sizeof backend, "%s%s", backend_prefix, rig->subscribers);
    rig->forwarder = s_forwarder_start (frontend, backend, config);
}

static void
s_rig_stop (s_rig_t *rig)
{
    zk_forwarder_destroy (&rig->forwarder);
    cr_assert_null (rig->forwarder);
    free (rig->publishers);
    free (rig->subscribers);
}

//  A sub socket with one subscription, connected to endpoint.
static zsock_t *
s_subscriber (const char *endpoint, const char *subscription)
{
    zsock_t *sock = zsock_new (ZMQ_SUB);
    cr_assert_not_null (sock);
    zsock_set_linger (sock, 0);
    zsock_set_subscribe (sock, subscription);
    cr_assert_eq (zsock_connect (sock, "%s", endpoint), 0, "connect %s", endpoint);
    return sock;
}

static zk_forwarder_stats_t
s_stats (zk_forwarder_t *forwarder)
{
    zk_forwarder_stats_t stats;
    cr_assert_eq (zk_forwarder_stats (forwarder, &stats), 0);
    return stats;
}

//  On an xpub publisher: wait for one (un)subscription and return it (caller frees).
static zframe_t *
s_subscription (zsock_t *publisher)
{
    zmsg_t *message = tu_recv (publisher, WAIT_MS);
    cr_assert_not_null (message, "no subscription reached the publisher");
    zframe_t *frame = zmsg_pop (message);
    zmsg_destroy (&message);
    return frame;
}

static void
s_assert_subscription (zsock_t *publisher, bool subscribe, const char *topic)
{
    zframe_t *frame = s_subscription (publisher);
    size_t size = strlen (topic);
    cr_assert_eq (zframe_size (frame), size + 1);
    cr_assert_eq (zframe_data (frame)[0], subscribe ? 1 : 0);
    cr_assert (memcmp (zframe_data (frame) + 1, topic, size) == 0);
    zframe_destroy (&frame);
}

Test (zk_forwarder, three_subscribers_get_exactly_their_topics, .timeout = 30)
{
    zk_forwarder_t *forwarder =
        s_forwarder_start ("xsub@tcp://127.0.0.1:*", "xpub@tcp://127.0.0.1:*", NULL);
    char *frontend = tu_engine_endpoint (zk_forwarder_actor (forwarder), "frontend");
    char *backend = tu_engine_endpoint (zk_forwarder_actor (forwarder), "backend");
    cr_assert_not_null (frontend);
    cr_assert_not_null (backend);
    //  The publisher is an xpub so it sees the subscriptions arrive.
    zsock_t *publisher = tu_connect (ZMQ_XPUB, frontend);
    const char *topics[3] = {"weather", "news", "sport"};
    zsock_t *subscribers[3];
    for (int i = 0; i < 3; i++)
        subscribers[i] = s_subscriber (backend, topics[i]);
    for (int seen = 0; seen < 3; seen++) {
        zframe_t *frame = s_subscription (publisher);
        cr_assert_eq (zframe_data (frame)[0], 1);
        zframe_destroy (&frame);
    }
    //  "traffic" has no subscriber: the publisher filters it at the source.
    const char *published[] = {"weather", "news", "traffic", "sport"};
    for (int round = 0; round < 10; round++)
        for (int t = 0; t < 4; t++)
            zstr_sendx (publisher, published[t], "body", NULL);
    for (int i = 0; i < 3; i++)
        zstr_sendx (publisher, topics[i], "end", NULL);

    for (int i = 0; i < 3; i++) {
        int count = 0;
        bool ended = false;
        while (!ended) {
            zmsg_t *got = tu_recv (subscribers[i], WAIT_MS);
            cr_assert_not_null (got, "subscriber %s got %d then nothing", topics[i], count);
            char *topic = zmsg_popstr (got);
            char *body = zmsg_popstr (got);
            cr_assert_str_eq (topic, topics[i]);
            ended = streq (body, "end");
            count += !ended;
            zstr_free (&topic);
            zstr_free (&body);
            zmsg_destroy (&got);
        }
        cr_assert_eq (count, 10, "subscriber %s got %d", topics[i], count);
    }
    zk_forwarder_stats_t stats = s_stats (forwarder);
    cr_assert_eq (stats.messages, 33, "the forwarder moved %" PRIu64, stats.messages);
    cr_assert_eq (stats.subscribes, 3);
    cr_assert_eq (stats.unsubscribes, 0);
    for (int i = 0; i < 3; i++)
        zsock_destroy (&subscribers[i]);
    zsock_destroy (&publisher);
    free (frontend);
    free (backend);
    zk_forwarder_destroy (&forwarder);
    cr_assert_null (forwarder);
}

/*  The backend xpub is verbose: every subscribe goes upstream, so a
    (verbose) publisher can count its subscribers; the unsubscribe reaches
    the publisher when the last subscriber of the topic leaves.         */
Test (zk_forwarder, subscriptions_flow_upstream_and_are_counted, .timeout = 30)
{
    s_rig_t rig;
    s_rig_start (&rig, "xsub@", "xpub@", NULL);
    zsock_t *publisher = tu_connect (ZMQ_XPUB, rig.publishers);
    zsock_set_xpub_verbose (publisher, 1);
    zsock_t *first = s_subscriber (rig.subscribers, "t\x01\xff");
    s_assert_subscription (publisher, true, "t\x01\xff");
    zsock_t *second = s_subscriber (rig.subscribers, "t\x01\xff");
    s_assert_subscription (publisher, true, "t\x01\xff");
    zsock_set_unsubscribe (first, "t\x01\xff");
    zsock_set_unsubscribe (second, "t\x01\xff");
    s_assert_subscription (publisher, false, "t\x01\xff");
    zk_forwarder_stats_t stats = s_stats (rig.forwarder);
    cr_assert_eq (stats.subscribes, 2);
    cr_assert_eq (stats.unsubscribes, 2);
    zsock_destroy (&first);
    zsock_destroy (&second);
    zsock_destroy (&publisher);
    s_rig_stop (&rig);
}

Test (zk_forwarder, sub_frontend_and_pub_backend_work, .timeout = 30)
{
    //  The publisher binds, the forwarder's sub connects to it.
    s_rig_t rig;
    s_rig_start (&rig, "sub>", "pub@", NULL);
    zsock_t *publisher = zsock_new (ZMQ_PUB);
    zsock_set_linger (publisher, 0);
    cr_assert_eq (zsock_bind (publisher, "%s", rig.publishers), 0);
    zsock_t *subscriber = s_subscriber (rig.subscribers, "x");
    //  Two pub/sub hops without feedback: publish until one gets through.
    zmsg_t *got = NULL;
    for (int tries = 0; tries < 500 && !got; tries++) {
        zstr_sendx (publisher, "y-not-mine", NULL);
        zstr_sendx (publisher, "x-mine", NULL);
        got = tu_recv (subscriber, 10);
    }
    cr_assert_not_null (got, "nothing went through sub -> pub");
    char *text = zmsg_popstr (got);
    cr_assert_str_eq (text, "x-mine");
    zstr_free (&text);
    zmsg_destroy (&got);
    zsock_destroy (&subscriber);
    zsock_destroy (&publisher);
    s_rig_stop (&rig);
}

Test (zk_forwarder, oversized_messages_are_refused_and_the_rest_flows, .timeout = 30)
{
    zk_forwarder_config_t config = {.max_size = 64, .linger_ms = 0};
    s_rig_t rig;
    s_rig_start (&rig, "xsub@", "xpub@", &config);
    zsock_t *publisher = tu_connect (ZMQ_XPUB, rig.publishers);
    zsock_t *subscriber = s_subscriber (rig.subscribers, "");
    s_assert_subscription (publisher, true, "");
    char big[65];
    memset (big, 'b', sizeof big);
    zsock_send (publisher, "b", big, sizeof big);
    zstr_send (publisher, "small");
    zmsg_t *got = tu_recv (subscriber, WAIT_MS);
    cr_assert_not_null (got);
    char *text = zmsg_popstr (got);
    cr_assert_str_eq (text, "small");
    zstr_free (&text);
    zmsg_destroy (&got);
    zk_forwarder_stats_t stats = s_stats (rig.forwarder);
    cr_assert_eq (stats.refused, 1);
    cr_assert_eq (stats.refused_bytes, 65);
    cr_assert_eq (stats.messages, 1);
    cr_assert_eq (stats.bytes, 5);
    zsock_destroy (&subscriber);
    zsock_destroy (&publisher);
    s_rig_stop (&rig);
}

Test (zk_forwarder, pause_resume_and_capture, .timeout = 30)
{
    char *tap_endpoint = tu_inproc ("fwd-tap");
    char capture[128];
    snprintf (capture, sizeof capture, "push@%s", tap_endpoint);
    zk_forwarder_config_t config = {.capture = capture, .linger_ms = 0};
    s_rig_t rig;
    s_rig_start (&rig, "xsub@", "xpub@", &config);
    zsock_t *tap = tu_connect (ZMQ_PULL, tap_endpoint);
    zsock_t *publisher = tu_connect (ZMQ_XPUB, rig.publishers);
    zsock_t *subscriber = s_subscriber (rig.subscribers, "");
    s_assert_subscription (publisher, true, "");
    //  The subscription itself went through the device: the tap saw it.
    zmsg_t *copy = tu_recv (tap, WAIT_MS);
    cr_assert_not_null (copy);
    cr_assert_eq (zframe_size (zmsg_first (copy)), 1);
    cr_assert_eq (zframe_data (zmsg_first (copy))[0], 1);
    zmsg_destroy (&copy);

    cr_assert_eq (zk_forwarder_pause (rig.forwarder), 0);
    zstr_sendx (publisher, "news", "while paused", NULL);
    cr_assert_null (tu_recv (subscriber, 300), "a paused forwarder forwarded");
    cr_assert_eq (zk_forwarder_resume (rig.forwarder), 0);
    zmsg_t *got = tu_recv (subscriber, WAIT_MS);
    cr_assert_not_null (got);
    cr_assert_eq (zmsg_size (got), 2);
    zmsg_destroy (&got);
    copy = tu_recv (tap, WAIT_MS);
    cr_assert_not_null (copy);
    char *topic = zmsg_popstr (copy);
    cr_assert_str_eq (topic, "news");
    zstr_free (&topic);
    zmsg_destroy (&copy);
    cr_assert_eq (s_stats (rig.forwarder).captured, 2);
    zsock_destroy (&subscriber);
    zsock_destroy (&publisher);
    zsock_destroy (&tap);
    free (tap_endpoint);
    s_rig_stop (&rig);
}

Test (zk_forwarder, validate_refuses_wrong_sides)
{
    struct {
        const char *frontend, *backend, *reason;
    } cases[] = {
        {"pull@inproc://a", "xpub@inproc://b", "the frontend (pull) must be xsub or sub"},
        {"xpub@inproc://a", "xpub@inproc://b", "the frontend (xpub) must be xsub or sub"},
        {"xsub@inproc://a", "push@inproc://b", "the backend (push) must be xpub or pub"},
        {"xsub@inproc://a", "xsub@inproc://b", "the backend (xsub) must be xpub or pub"},
        {"xsub@inproc://a", "xpub@", "backend: invalid socket spec 'xpub@'"},
        {"xsub@inproc://a", NULL, "a backend spec is required"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        zk_forwarder_config_t config = {.frontend = cases[i].frontend, .backend = cases[i].backend};
        char reason[256] = "";
        cr_assert_eq (zk_forwarder_validate (&config, reason, sizeof reason), ZK_EINVAL);
        cr_assert_not_null (strstr (reason, cases[i].reason), "case %zu: '%s'", i, reason);
        cr_assert_null (zk_forwarder_new (&config));
    }
    zk_forwarder_config_t config = {.frontend = "sub@inproc://a", .backend = "pub@inproc://b"};
    cr_assert_eq (zk_forwarder_validate (&config, NULL, 0), 0);
}
