/*  zkit-proxy — the real binary: usage, exit codes, messages, signals, stats,
    control.                                                                */

#include "testutil.h"

#include <signal.h>

#define WAIT_MS 5000

//  Start the daemon and wait for its ready file; fail the test with its
//  stderr if it never gets ready.
static void
s_start (tu_daemon_t *daemon, const char *program, const char *const *args)
{
    if (tu_daemon_start (daemon, program, args, WAIT_MS) != 0) {
        char *err = daemon->dir ? tu_stderr (&daemon->proc) : NULL;
        cr_assert_fail ("%s never got ready: %s", program, err ? err : "");
    }
}

static char *
s_endpoint (tu_daemon_t *daemon, const char *role)
{
    char *endpoint = tu_ready_endpoint (daemon->ready, role);
    cr_assert_not_null (endpoint, "no %s in the ready file:\n%s", role, daemon->ready);
    return endpoint;
}

static int
s_lines (const char *text)
{
    int lines = 0;
    for (; text && *text; text++)
        lines += *text == '\n';
    return lines;
}

Test (cli_proxy, help_goes_to_stdout_and_exits_0, .timeout = 30)
{
    char *out, *err;
    int rc = tu_run_bin ("zkit-proxy", (const char *[]){"--help", NULL}, &out, &err, WAIT_MS);
    cr_assert_eq (rc, 0);
    cr_assert_not_null (strstr (out, "Usage: zkit-proxy [options] FRONTEND BACKEND"), "%s", out);
    cr_assert_not_null (strstr (out, "--max-size BYTES"));
    cr_assert_not_null (strstr (out, "--ready-file PATH"));
    cr_assert_str_eq (err, "");
    free (out);
    free (err);
}

Test (cli_proxy, no_arguments_print_usage_on_stderr_and_exit_2, .timeout = 30)
{
    char *out, *err;
    int rc = tu_run_bin ("zkit-proxy", (const char *[]){NULL}, &out, &err, WAIT_MS);
    cr_assert_eq (rc, 2);
    cr_assert_str_eq (out, "");
    cr_assert_not_null (strstr (err, "Usage: zkit-proxy"), "%s", err);
    free (out);
    free (err);
}

Test (cli_proxy, a_bad_spec_is_one_line_naming_program_and_spec, .timeout = 30)
{
    char *out, *err;
    int rc =
        tu_run_bin ("zkit-proxy", (const char *[]){"pull@tcp://127.0.0.1:*", "push@nowhere", NULL},
                    &out, &err, WAIT_MS);
    cr_assert_eq (rc, 2);
    cr_assert_eq (strncmp (err, "zkit-proxy: ", 12), 0, "%s", err);
    const char *newline = strchr (err, '\n');
    cr_assert_not_null (newline);
    cr_assert (memmem (err, (size_t) (newline - err), "push@nowhere", 12), "%s", err);
    free (out);
    free (err);
}

Test (cli_proxy, a_pair_that_cannot_work_exits_2_with_the_reason, .timeout = 30)
{
    struct {
        const char *frontend, *backend, *reason;
    } cases[] = {
        {"pub@tcp://127.0.0.1:*", "pull@tcp://127.0.0.1:*", "the frontend (pub) cannot receive"},
        {"rep@tcp://127.0.0.1:*", "dealer@tcp://127.0.0.1:*", "use router/dealer"},
        {"router@tcp://127.0.0.1:*", "push@tcp://127.0.0.1:*", "needs a dealer backend"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out, *err;
        int rc =
            tu_run_bin ("zkit-proxy", (const char *[]){cases[i].frontend, cases[i].backend, NULL},
                        &out, &err, WAIT_MS);
        cr_assert_eq (rc, 2, "case %zu: exit %d", i, rc);
        cr_assert_eq (strncmp (err, "zkit-proxy: ", 12), 0, "%s", err);
        cr_assert_not_null (strstr (err, cases[i].reason), "%s", err);
        free (out);
        free (err);
    }
}

Test (cli_proxy, an_address_in_use_exits_1_with_a_clear_message, .timeout = 30)
{
    char endpoint[256], spec[300];
    zsock_t *squatter = tu_bind_ephemeral (ZMQ_PULL, endpoint, sizeof endpoint);
    cr_assert_not_null (squatter);
    snprintf (spec, sizeof spec, "pull@%s", endpoint);
    char *out, *err;
    int rc = tu_run_bin ("zkit-proxy", (const char *[]){spec, "push@tcp://127.0.0.1:*", NULL}, &out,
                         &err, WAIT_MS);
    cr_assert_eq (rc, 1, "exit %d: %s", rc, err);
    cr_assert_not_null (strstr (err, "Address already in use"), "%s", err);
    cr_assert_not_null (strstr (err, endpoint), "%s", err);
    free (out);
    free (err);
    zsock_destroy (&squatter);
}

Test (cli_proxy, messages_flow_and_sigterm_exits_0_within_a_second, .timeout = 30)
{
    tu_daemon_t daemon;
    s_start (&daemon, "zkit-proxy",
             (const char *[]){"pull@tcp://127.0.0.1:*", "push@tcp://127.0.0.1:*", NULL});
    char *frontend = s_endpoint (&daemon, "frontend");
    char *backend = s_endpoint (&daemon, "backend");
    zsock_t *producer = tu_connect (ZMQ_PUSH, frontend);
    zsock_t *consumer = tu_connect (ZMQ_PULL, backend);
    const char binary[] = {'a', 0, 'b', 0};
    for (int i = 0; i < 100; i++) {
        zmsg_t *message = zmsg_new ();
        zmsg_addstrf (message, "%d", i);
        zmsg_addmem (message, NULL, 0);
        zmsg_addmem (message, binary, sizeof binary);
        zmsg_send (&message, producer);
    }
    for (int i = 0; i < 100; i++) {
        zmsg_t *got = tu_recv (consumer, WAIT_MS);
        cr_assert_not_null (got, "message %d missing", i);
        cr_assert_eq (zmsg_size (got), 3);
        char *number = zmsg_popstr (got);
        cr_assert_eq (atoi (number), i);
        zstr_free (&number);
        cr_assert_eq (zframe_size (zmsg_first (got)), 0);
        zframe_t *last = zmsg_last (got);
        cr_assert (zframe_size (last) == sizeof binary
                   && memcmp (zframe_data (last), binary, sizeof binary) == 0);
        zmsg_destroy (&got);
    }
    int64_t start = zclock_mono ();
    int rc = tu_stop (&daemon.proc, SIGTERM, 1000);
    int64_t took = zclock_mono () - start;
    cr_assert_eq (rc, 0, "exit %d after SIGTERM (%d ms)", rc, (int) took);
    cr_assert_lt (took, 1000, "took %d ms", (int) took);
    zsock_destroy (&producer);
    zsock_destroy (&consumer);
    free (frontend);
    free (backend);
    tu_daemon_cleanup (&daemon);
}

Test (cli_proxy, sigint_exits_0_within_a_second, .timeout = 30)
{
    tu_daemon_t daemon;
    s_start (&daemon, "zkit-proxy",
             (const char *[]){"router@tcp://127.0.0.1:*", "dealer@tcp://127.0.0.1:*", NULL});
    int64_t start = zclock_mono ();
    int rc = tu_stop (&daemon.proc, SIGINT, 1000);
    cr_assert_eq (rc, 0, "exit %d after SIGINT", rc);
    cr_assert_lt (zclock_mono () - start, 1000);
    tu_daemon_cleanup (&daemon);
}

Test (cli_proxy, request_reply_through_router_dealer, .timeout = 30)
{
    tu_daemon_t daemon;
    s_start (&daemon, "zkit-proxy",
             (const char *[]){"router@tcp://127.0.0.1:*", "dealer@tcp://127.0.0.1:*", NULL});
    char *frontend = s_endpoint (&daemon, "frontend");
    char *backend = s_endpoint (&daemon, "backend");
    zsock_t *worker = tu_connect (ZMQ_REP, backend);
    zsock_t *client = tu_connect (ZMQ_REQ, frontend);
    zstr_send (client, "ping");
    zmsg_t *request = tu_recv (worker, WAIT_MS);
    cr_assert_not_null (request);
    zmsg_destroy (&request);
    zstr_send (worker, "pong");
    zmsg_t *reply = tu_recv (client, WAIT_MS);
    cr_assert_not_null (reply);
    char *text = zmsg_popstr (reply);
    cr_assert_str_eq (text, "pong");
    zstr_free (&text);
    zmsg_destroy (&reply);
    zsock_destroy (&client);
    zsock_destroy (&worker);
    cr_assert_eq (tu_stop (&daemon.proc, SIGTERM, 2000), 0);
    free (frontend);
    free (backend);
    tu_daemon_cleanup (&daemon);
}

Test (cli_proxy, stats_lines_and_oversize_refusals_are_logged, .timeout = 30)
{
    tu_daemon_t daemon;
    s_start (&daemon, "zkit-proxy",
             (const char *[]){"pull@tcp://127.0.0.1:*", "push@tcp://127.0.0.1:*", "--stats", "0.05",
                              "--max-size", "10", NULL});
    char *frontend = s_endpoint (&daemon, "frontend");
    char *backend = s_endpoint (&daemon, "backend");
    zsock_t *producer = tu_connect (ZMQ_PUSH, frontend);
    zsock_t *consumer = tu_connect (ZMQ_PULL, backend);
    zstr_send (producer, "this is more than ten bytes");
    zstr_send (producer, "short");
    zmsg_t *got = tu_recv (consumer, WAIT_MS);
    cr_assert_not_null (got);
    char *text = zmsg_popstr (got);
    cr_assert_str_eq (text, "short");
    zstr_free (&text);
    zmsg_destroy (&got);
    cr_assert (tu_wait_contains (daemon.proc.err_path, "refused a 27-byte message", WAIT_MS));
    cr_assert (tu_wait_contains (daemon.proc.err_path,
                                 "stats frontend_in=1 frontend_in_bytes=5 backend_in=0 "
                                 "backend_in_bytes=0 refused=1 refused_bytes=27",
                                 WAIT_MS),
               "no stats line");
    cr_assert_eq (tu_stop (&daemon.proc, SIGTERM, 2000), 0);
    zsock_destroy (&producer);
    zsock_destroy (&consumer);
    free (frontend);
    free (backend);
    tu_daemon_cleanup (&daemon);
}

Test (cli_proxy, control_terminate_exits_0, .timeout = 30)
{
    tu_daemon_t daemon;
    s_start (&daemon, "zkit-proxy",
             (const char *[]){"pull@tcp://127.0.0.1:*", "push@tcp://127.0.0.1:*", "--control",
                              "rep@tcp://127.0.0.1:*", "--capture", "pub@tcp://127.0.0.1:*", NULL});
    cr_assert_eq (s_lines (daemon.ready), 4, "%s", daemon.ready);
    char *capture = s_endpoint (&daemon, "capture");
    free (capture);
    char *control_endpoint = s_endpoint (&daemon, "control");
    zsock_t *control = tu_connect (ZMQ_REQ, control_endpoint);
    zstr_send (control, "STATISTICS");
    zmsg_t *reply = tu_recv (control, WAIT_MS);
    cr_assert_not_null (reply);
    char *text = zmsg_popstr (reply);
    cr_assert_eq (strncmp (text, "frontend_in=0 ", 14), 0, "%s", text);
    zstr_free (&text);
    zmsg_destroy (&reply);
    zstr_send (control, "TERMINATE");
    reply = tu_recv (control, WAIT_MS);
    cr_assert_not_null (reply);
    text = zmsg_popstr (reply);
    cr_assert_str_eq (text, "OK");
    zstr_free (&text);
    zmsg_destroy (&reply);
    cr_assert_eq (tu_wait (&daemon.proc, WAIT_MS), 0, "no clean exit after TERMINATE");
    zsock_destroy (&control);
    free (control_endpoint);
    tu_daemon_cleanup (&daemon);
}
