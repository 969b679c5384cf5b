/*  zk_spec — the socket spec parser, and attaching real sockets.  */

#include "testutil.h"

Test (zk_spec, parses_bind_and_connect)
{
    zk_spec_t *spec = zk_spec_new ("pull@tcp://*:5557");
    cr_assert_not_null (spec);
    cr_assert_eq (zk_spec_type (spec), ZMQ_PULL);
    cr_assert_str_eq (zk_spec_type_name (spec), "pull");
    cr_assert_eq (zk_spec_size (spec), 1);
    cr_assert_str_eq (zk_spec_endpoint (spec, 0), "tcp://*:5557");
    cr_assert (zk_spec_binds (spec, 0));
    zk_spec_destroy (&spec);
    cr_assert_null (spec);

    spec = zk_spec_new ("push>tcp://10.0.0.5:5558,ipc:///run/a.sock");
    cr_assert_not_null (spec);
    cr_assert_eq (zk_spec_type (spec), ZMQ_PUSH);
    cr_assert_eq (zk_spec_size (spec), 2);
    cr_assert_str_eq (zk_spec_endpoint (spec, 1), "ipc:///run/a.sock");
    cr_assert_not (zk_spec_binds (spec, 0));
    cr_assert_not (zk_spec_binds (spec, 1));
    zk_spec_destroy (&spec);
    zk_spec_destroy (&spec);  //  safe on NULL
}

Test (zk_spec, every_type_is_known)
{
    const char *names[] = {"pub", "sub", "xpub",   "xsub",   "push", "pull",
                           "req", "rep", "dealer", "router", "pair"};
    int types[] = {ZMQ_PUB, ZMQ_SUB, ZMQ_XPUB,   ZMQ_XSUB,   ZMQ_PUSH, ZMQ_PULL,
                   ZMQ_REQ, ZMQ_REP, ZMQ_DEALER, ZMQ_ROUTER, ZMQ_PAIR};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char text[64];
        snprintf (text, sizeof text, "%s>inproc://x", names[i]);
        zk_spec_t *spec = zk_spec_new (text);
        cr_assert_not_null (spec, "%s", text);
        cr_assert_eq (zk_spec_type (spec), types[i]);
        cr_assert_str_eq (zk_spec_type_to_name (types[i]), names[i]);
        zk_spec_destroy (&spec);
    }
    cr_assert_eq (zk_spec_type_from_name ("stream"), -1);
}

Test (zk_spec, per_endpoint_direction_overrides)
{
    zk_spec_t *spec = zk_spec_new ("dealer@tcp://127.0.0.1:*,>ipc:///tmp/x.sock,@inproc://y");
    cr_assert_not_null (spec);
    cr_assert_eq (zk_spec_size (spec), 3);
    cr_assert (zk_spec_binds (spec, 0));
    cr_assert_not (zk_spec_binds (spec, 1));
    cr_assert (zk_spec_binds (spec, 2));
    cr_assert_str_eq (zk_spec_endpoint (spec, 1), "ipc:///tmp/x.sock");
    zk_spec_destroy (&spec);
}

//  text is refused, with a reason that contains reason_part.
static void
s_assert_refused (const char *text, const char *reason_part)
{
    char reason[256] = "";
    cr_assert_eq (zk_spec_validate (text, reason, sizeof reason), ZK_EINVAL, "accepted '%s'", text);
    cr_assert (strstr (reason, reason_part), "'%s': reason '%s' lacks '%s'", text, reason,
               reason_part);
    cr_assert_null (zk_spec_new (text));
}

Test (zk_spec, rejects_malformed_specs_with_a_reason)
{
    struct {
        const char *text;
        const char *reason_part;
    } cases[] = {
        {"", "empty"},
        {"pull", "TYPE@ENDPOINT"},
        {"tcp://127.0.0.1:5", "TYPE@ENDPOINT"},
        {"foo@tcp://*:1", "unknown socket type 'foo'"},
        {"@tcp://*:1", "unknown socket type"},
        {"pull@", "empty endpoint"},
        {"pull@tcp://*:1,", "empty endpoint"},
        {"pull@tcp://*:1,,tcp://*:2", "empty endpoint"},
        {"pull@localhost:5", "TRANSPORT://ADDRESS"},
        {"pull@http://x:1", "unknown transport"},
        {"pull@tcp://", "no address"},
        {"pull@tcp://host", "HOST:PORT"},
        {"pull@tcp://host:", "HOST:PORT"},
        {"push>tcp://host:*", "wildcard port only works when binding"},
        {"push>tcp://host:70000", "bad port"},
        {"push>tcp://host:12x", "bad port"},
        {"push>tcp://ho st:1", "contains"},
        {"push>tcp://host:1\n", "contains"},
        {"averyveryverylongtypename@tcp://*:1", "unknown socket type"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        s_assert_refused (cases[i].text, cases[i].reason_part);
    cr_assert_eq (zk_spec_validate (NULL, NULL, 0), ZK_EINVAL);
}

Test (zk_spec, bounds_length_and_endpoint_count)
{
    //  A huge spec is refused without reading past its limit.
    size_t size = ZK_SPEC_MAX_TEXT + 100;
    char *text = malloc (size + 1);
    memcpy (text, "push>inproc://", 14);
    memset (text + 14, 'a', size - 14);
    text[size] = 0;
    char reason[256];
    cr_assert_eq (zk_spec_validate (text, reason, sizeof reason), ZK_EINVAL);
    cr_assert (strstr (reason, "longer than"));
    free (text);

    //  Too many endpoints.
    char many[ZK_SPEC_MAX_TEXT];
    size_t used = (size_t) snprintf (many, sizeof many, "push>inproc://a0");
    for (int i = 1; i <= ZK_SPEC_MAX_ENDPOINTS; i++)
        used += (size_t) snprintf (many + used, sizeof many - used, ",inproc://a%d", i);
    cr_assert_eq (zk_spec_validate (many, reason, sizeof reason), ZK_EINVAL);
    cr_assert (strstr (reason, "more than"), "%s", reason);
}

Test (zk_spec, garbage_never_crashes)
{
    //  Every byte pattern of a few lengths: parse must answer, never crash.
    unsigned int seed = 42;
    for (int round = 0; round < 20000; round++) {
        char text[48];
        size_t length = (size_t) (rand_r (&seed) % (sizeof text - 1));
        for (size_t i = 0; i < length; i++) {
            //  Bias toward the spec's own alphabet so deep paths are reached.
            const char alphabet[] = "pushl@>:/,*tcpinro0123456789.x";
            int pick = rand_r (&seed);
            text[i] = (pick & 1) ? alphabet[(pick >> 1) % (sizeof alphabet - 1)]
                                 : (char) ((pick >> 1) & 0xff);
            if (!text[i])
                text[i] = 'x';
        }
        text[length] = 0;
        zk_spec_validate (text, NULL, 0);
    }
}

Test (zk_spec, attaches_and_resolves_ephemeral_ports, .timeout = 10)
{
    int rc = 0;
    zk_spec_t *spec = zk_spec_new ("pull@tcp://127.0.0.1:*");
    zsock_t *pull = zk_spec_socket (spec);
    cr_assert_not_null (pull);
    cr_assert_eq (zk_spec_attach (spec, pull), 0);
    const char *bound = zk_spec_resolved (spec, 0);
    cr_assert (strncmp (bound, "tcp://127.0.0.1:", 16) == 0, "%s", bound);
    cr_assert (atoi (bound + 16) > 0);

    char connect[128];
    snprintf (connect, sizeof connect, "push>%s", bound);
    zsock_t *push = zk_sock_new (connect, &rc);
    cr_assert_not_null (push);
    cr_assert_eq (rc, 0);
    zstr_send (push, "hello");
    zmsg_t *msg = tu_recv (pull, 5000);
    cr_assert_not_null (msg);
    char *text = zmsg_popstr (msg);
    cr_assert_str_eq (text, "hello");
    free (text);
    zmsg_destroy (&msg);

    //  The same port again: address in use, a clear code.
    char again[128];
    snprintf (again, sizeof again, "pull@%s", bound);
    cr_assert_null (zk_sock_new (again, &rc));
    cr_assert_eq (rc, ZK_EADDRINUSE);

    cr_assert_null (zk_sock_new ("pull@nonsense", &rc));
    cr_assert_eq (rc, ZK_EINVAL);

    zsock_destroy (&push);
    zsock_destroy (&pull);
    zk_spec_destroy (&spec);
}

Test (zk_spec, parses_queue_specs)
{
    zk_spec_t *spec = zk_spec_new ("queue>tcp://127.0.0.1:5570/orders");
    cr_assert_not_null (spec);
    cr_assert_eq (zk_spec_type (spec), ZK_SPEC_QUEUE);
    cr_assert_str_eq (zk_spec_type_name (spec), "queue");
    cr_assert_str_eq (zk_spec_queue_name (spec), "orders");
    cr_assert_eq (zk_spec_size (spec), 1);
    cr_assert_str_eq (zk_spec_endpoint (spec, 0), "tcp://127.0.0.1:5570");
    cr_assert_not (zk_spec_binds (spec, 0));
    cr_assert_str_eq (zk_spec_text (spec), "queue>tcp://127.0.0.1:5570/orders");
    zk_spec_destroy (&spec);

    //  Several endpoints share the one name written after the last.
    spec = zk_spec_new ("queue>tcp://a:1,>tcp://b:2,ipc:///run/zk/q.sock/orders.dead");
    cr_assert_not_null (spec);
    cr_assert_eq (zk_spec_size (spec), 3);
    cr_assert_str_eq (zk_spec_endpoint (spec, 0), "tcp://a:1");
    cr_assert_str_eq (zk_spec_endpoint (spec, 1), "tcp://b:2");
    cr_assert_str_eq (zk_spec_endpoint (spec, 2), "ipc:///run/zk/q.sock");
    cr_assert_str_eq (zk_spec_queue_name (spec), "orders.dead");
    zk_spec_destroy (&spec);

    //  Names at the limits of the alphabet and the length.
    char longest[256];
    memset (longest, 'q', ZK_SPEC_QUEUE_NAME_MAX);
    longest[ZK_SPEC_QUEUE_NAME_MAX] = 0;
    char text[512];
    snprintf (text, sizeof text, "queue>inproc://x/%s", longest);
    spec = zk_spec_new (text);
    cr_assert_not_null (spec);
    cr_assert_str_eq (zk_spec_queue_name (spec), longest);
    cr_assert_str_eq (zk_spec_endpoint (spec, 0), "inproc://x");
    zk_spec_destroy (&spec);
    cr_assert_eq (zk_spec_validate ("queue>tcp://h:1/A-z_0.9", NULL, 0), 0);

    //  Other specs have no queue name; the type name maps both ways.
    spec = zk_spec_new ("dealer>tcp://h:1");
    cr_assert_null (zk_spec_queue_name (spec));
    zk_spec_destroy (&spec);
    cr_assert_eq (zk_spec_type_from_name ("queue"), ZK_SPEC_QUEUE);
    cr_assert_str_eq (zk_spec_type_to_name (ZK_SPEC_QUEUE), "queue");
}

Test (zk_spec, rejects_bad_queue_specs_with_a_reason)
{
    char too_long[512];
    memset (too_long, 0, sizeof too_long);
    strcpy (too_long, "queue>tcp://h:1/");
    memset (too_long + strlen (too_long), 'q', ZK_SPEC_QUEUE_NAME_MAX + 1);
    struct {
        const char *text;
        const char *reason_part;
    } cases[] = {
        {"queue@tcp://*:5570/orders", "only connects"},
        {"queue>tcp://a:1,@tcp://*:2/orders", "only connects"},
        {"queue>tcp://127.0.0.1:5570", "without a queue name"},
        {"queue>tcp://127.0.0.1:5570/", "empty queue name"},
        {"queue>tcp://h:1/.hidden", "starts with '.'"},
        {"queue>tcp://h:1/a..b", "contains '..'"},
        {"queue>tcp://h:1/a b", "contains"},
        {"queue>tcp://h:1/a*b", "contains '*'"},
        {"queue>tcp://h:1/a\tb", "contains"},
        {"queue>tcp://h:1/caf\xc3\xa9", "contains 0xc3"},
        {too_long, "longer than 128"},
        {"queue>tcp://a:1/orders,tcp://b:2/orders", "goes once, after the last endpoint"},
        {"queue>tcp://h:*/orders", "wildcard port only works when binding"},
        {"queue>localhost:1/orders", "TRANSPORT://ADDRESS"},
        {"queue>/orders", "TRANSPORT://ADDRESS"},
        {"queue>", "empty endpoint"},
        {"queue>tcp://a:1,/orders", "TRANSPORT://ADDRESS"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        s_assert_refused (cases[i].text, cases[i].reason_part);
    //  The checker alone, as servers use it on names off the wire.
    cr_assert_eq (zk_spec_check_queue_name ("orders", 6, NULL, 0), 0);
    cr_assert_eq (zk_spec_check_queue_name ("ord\0rs", 6, NULL, 0), ZK_EINVAL);
    cr_assert_eq (zk_spec_check_queue_name ("", 0, NULL, 0), ZK_EINVAL);
    cr_assert_eq (zk_spec_check_queue_name (NULL, 0, NULL, 0), ZK_EINVAL);
}

Test (zk_spec, queue_spec_makes_a_connected_dealer, .timeout = 10)
{
    //  A queue spec is a DEALER underneath: a ROUTER sees its frames.
    char endpoint[256];
    zsock_t *router = tu_bind_ephemeral (ZMQ_ROUTER, endpoint, sizeof endpoint);
    cr_assert_not_null (router);
    char text[300];
    snprintf (text, sizeof text, "queue>%s/orders", endpoint);
    int rc;
    zsock_t *dealer = zk_sock_new (text, &rc);
    cr_assert_not_null (dealer);
    cr_assert_eq (rc, 0);
    cr_assert_eq (zsock_type (dealer), ZMQ_DEALER);
    cr_assert_eq (zsock_heartbeat_ivl (dealer), ZK_SPEC_HEARTBEAT_IVL_MS);
    cr_assert_eq (zsock_heartbeat_timeout (dealer), ZK_SPEC_HEARTBEAT_TIMEOUT_MS);
    zstr_send (dealer, "ZKQ1");
    zmsg_t *msg = tu_recv (router, 5000);
    cr_assert_not_null (msg);
    cr_assert_eq (zmsg_size (msg), 2);
    zmsg_destroy (&msg);
    zsock_destroy (&dealer);
    zsock_destroy (&router);
}
