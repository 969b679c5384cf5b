/*  zkit-forwarder — the real binary: usage, exit codes, fan-out with topic
    filters, subscription logging, signals, stats, control.              */

#include "testutil.h"

#include <signal.h>

#define WAIT_MS 5000

static const char *s_pair[] = {"xsub@tcp://127.0.0.1:*", "xpub@tcp://127.0.0.1:*"};

Test (cli_forwarder, help_goes_to_stdout_and_exits_0, .timeout = 30)
{
    char *out, *err;
    int rc = tu_run_bin ("zkit-forwarder", (const char *[]){"-h", NULL}, &out, &err, WAIT_MS);
    cr_assert_eq (rc, 0);
    cr_assert_not_null (strstr (out, "Usage: zkit-forwarder [options] FRONTEND BACKEND"), "%s",
                        out);
    cr_assert_str_eq (err, "");
    free (out);
    free (err);
}

Test (cli_forwarder, usage_errors_exit_2_with_one_line, .timeout = 30)
{
    struct {
        const char *args[4];
        const char *needle;
    } cases[] = {
        {{NULL}, "Usage: zkit-forwarder"},
        {{"pull@tcp://127.0.0.1:*", "xpub@tcp://127.0.0.1:*", NULL},
         "zkit-forwarder: the frontend (pull) must be xsub or sub"},
        {{"xsub@tcp://127.0.0.1:*", "push@tcp://127.0.0.1:*", NULL},
         "zkit-forwarder: the backend (push) must be xpub or pub"},
        {{"xsub@tcp://127.0.0.1:*", "xpub>tcp://h:*", NULL},
         "zkit-forwarder: invalid socket spec "
         "'xpub>tcp://h:*'"},
        {{"xsub@tcp://127.0.0.1:*", "xpub@tcp://127.0.0.1:*", "--hwm", "lots"},
         "zkit-forwarder: --hwm: 'lots'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out, *err;
        const char *args[5] = {cases[i].args[0], cases[i].args[1], cases[i].args[2],
                               cases[i].args[3], NULL};
        int rc = tu_run_bin ("zkit-forwarder", args, &out, &err, WAIT_MS);
        cr_assert_eq (rc, 2, "case %zu: exit %d", i, rc);
        cr_assert_str_eq (out, "");
        cr_assert_not_null (strstr (err, cases[i].needle), "case %zu: %s", i, err);
        free (out);
        free (err);
    }
}

Test (cli_forwarder, an_address_in_use_exits_1, .timeout = 30)
{
    char endpoint[256], spec[300];
    zsock_t *squatter = tu_bind_ephemeral (ZMQ_XPUB, endpoint, sizeof endpoint);
    cr_assert_not_null (squatter);
    snprintf (spec, sizeof spec, "xpub@%s", endpoint);
    char *out, *err;
    int rc =
        tu_run_bin ("zkit-forwarder", (const char *[]){s_pair[0], spec, NULL}, &out, &err, WAIT_MS);
    cr_assert_eq (rc, 1, "exit %d: %s", rc, err);
    cr_assert_not_null (strstr (err, "Address already in use"), "%s", err);
    free (out);
    free (err);
    zsock_destroy (&squatter);
}

/*  Publisher (a verbose xpub, to see the subscriptions) → the binary →
    three subscribers with different filters; each gets exactly its
    topic. Then SIGTERM: exit 0 within a second.                       */
Test (cli_forwarder, fans_out_by_topic_and_stops_on_sigterm, .timeout = 30)
{
    tu_daemon_t daemon;
    cr_assert_eq (
        tu_daemon_start (&daemon, "zkit-forwarder",
                         (const char *[]){s_pair[0], s_pair[1], "-v", "--stats", "0.05", NULL},
                         WAIT_MS),
        0, "zkit-forwarder never got ready");
    char *frontend = tu_ready_endpoint (daemon.ready, "frontend");
    char *backend = tu_ready_endpoint (daemon.ready, "backend");
    cr_assert_not_null (frontend);
    cr_assert_not_null (backend);
    zsock_t *publisher = zsock_new (ZMQ_XPUB);
    zsock_set_xpub_verbose (publisher, 1);
    zsock_set_linger (publisher, 0);
    cr_assert_eq (zsock_connect (publisher, "%s", frontend), 0);
    const char *topics[3] = {"a.", "b.", "c\x01"};
    zsock_t *subscribers[3];
    for (int i = 0; i < 3; i++) {
        subscribers[i] = zsock_new (ZMQ_SUB);
        zsock_set_linger (subscribers[i], 0);
        zsock_set_subscribe (subscribers[i], topics[i]);
        cr_assert_eq (zsock_connect (subscribers[i], "%s", backend), 0);
    }
    for (int seen = 0; seen < 3; seen++) {
        zmsg_t *subscription = tu_recv (publisher, WAIT_MS);
        cr_assert_not_null (subscription, "%d subscriptions reached the publisher", seen);
        zmsg_destroy (&subscription);
    }
    for (int round = 0; round < 5; round++)
        for (int i = 0; i < 3; i++)
            zstr_sendf (publisher, "%s%d", topics[i], round);
    for (int i = 0; i < 3; i++)
        for (int round = 0; round < 5; round++) {
            zmsg_t *got = tu_recv (subscribers[i], WAIT_MS);
            cr_assert_not_null (got);
            char *text = zmsg_popstr (got);
            char expected[16];
            snprintf (expected, sizeof expected, "%s%d", topics[i], round);
            cr_assert_str_eq (text, expected);
            zstr_free (&text);
            zmsg_destroy (&got);
        }
    //  -v logs every subscription with its topic escaped.
    cr_assert (tu_wait_contains (daemon.proc.err_path, "subscribe 'b.' (2 bytes)", WAIT_MS));
    cr_assert (tu_wait_contains (daemon.proc.err_path, "subscribe 'c\\x01' (2 bytes)", WAIT_MS));
    cr_assert (tu_wait_contains (daemon.proc.err_path,
                                 "stats frontend_in=15 frontend_in_bytes=45 backend_in=3 "
                                 "backend_in_bytes=9 subscribes=3 unsubscribes=0",
                                 WAIT_MS),
               "no stats line");
    int64_t start = zclock_mono ();
    int rc = tu_stop (&daemon.proc, SIGTERM, 1000);
    int64_t took = zclock_mono () - start;
    cr_assert_eq (rc, 0, "exit %d after SIGTERM", rc);
    cr_assert_lt (took, 1000, "took %d ms", (int) took);
    for (int i = 0; i < 3; i++)
        zsock_destroy (&subscribers[i]);
    zsock_destroy (&publisher);
    free (frontend);
    free (backend);
    tu_daemon_cleanup (&daemon);
}

Test (cli_forwarder, control_terminate_exits_0, .timeout = 30)
{
    tu_daemon_t daemon;
    cr_assert_eq (tu_daemon_start (&daemon, "zkit-forwarder",
                                   (const char *[]){s_pair[0], s_pair[1], "--control",
                                                    "pair@tcp://127.0.0.1:*", NULL},
                                   WAIT_MS),
                  0, "zkit-forwarder never got ready");
    char *control_endpoint = tu_ready_endpoint (daemon.ready, "control");
    cr_assert_not_null (control_endpoint, "%s", daemon.ready);
    zsock_t *control = tu_connect (ZMQ_PAIR, control_endpoint);
    zstr_send (control, "TERMINATE");
    zmsg_t *reply = tu_recv (control, WAIT_MS);
    cr_assert_not_null (reply);
    char *text = zmsg_popstr (reply);
    cr_assert_str_eq (text, "OK");
    zstr_free (&text);
    zmsg_destroy (&reply);
    cr_assert_eq (tu_wait (&daemon.proc, WAIT_MS), 0, "no clean exit after TERMINATE");
    zsock_destroy (&control);
    free (control_endpoint);
    tu_daemon_cleanup (&daemon);
}
