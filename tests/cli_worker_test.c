/*  zkit-worker — the real binary: usage and exit codes, the channels,
    failures, lines mode, signals.                                      */

#include "testutil.h"

#include <signal.h>

#define WAIT_MS 5000

//  Start zkit-worker with options, --ready-file and "-- COMMAND...", and
//  wait for the ready file.
static void
s_start (tu_daemon_t *daemon, const char *const *options, const char *const *command)
{
    if (tu_daemon_start_command (daemon, "zkit-worker", options, command, WAIT_MS)) {
        char *err = tu_stderr (&daemon->proc);
        cr_assert_fail ("zkit-worker never got ready: %s", err ? err : "");
    }
}

static char *
s_endpoint (tu_daemon_t *daemon, const char *role)
{
    char *endpoint = tu_ready_endpoint (daemon->ready, role);
    cr_assert_not_null (endpoint, "no %s in the ready file:\n%s", role, daemon->ready);
    cr_assert_null (strstr (endpoint, ":*"), "unresolved endpoint %s", endpoint);
    return endpoint;
}

static zsock_t *
s_connect (int type, const char *endpoint)
{
    zsock_t *sock = tu_connect (type, endpoint);
    cr_assert_not_null (sock, "connect %s", endpoint);
    return sock;
}

static zmsg_t *
s_recv (zsock_t *sock)
{
    zmsg_t *msg = tu_recv (sock, WAIT_MS);
    cr_assert_not_null (msg, "no message within %d ms", WAIT_MS);
    return msg;
}

static void
s_assert_body (zmsg_t *msg, const char *text)
{
    cr_assert_eq (zmsg_size (msg), 1, "%zu frames", zmsg_size (msg));
    char *body = zframe_strdup (zmsg_first (msg));
    cr_assert_str_eq (body, text);
    free (body);
}

//  The reason in an error reply ([envelope][stdout]). Caller frees.
static char *
s_error_reason (zmsg_t *msg)
{
    cr_assert_eq (zmsg_size (msg), 2, "not an error reply (%zu frames)", zmsg_size (msg));
    zk_envelope_t *envelope = NULL;
    zframe_t *frame = zmsg_first (msg);
    cr_assert_eq (zk_envelope_decode (zframe_data (frame), zframe_size (frame), &envelope), 0);
    cr_assert_str_eq (zk_envelope_header (envelope, "zk-status"), "error");
    char *reason = strdup (zk_envelope_header (envelope, "zk-error"));
    zk_envelope_destroy (&envelope);
    return reason;
}

//  Stop with sig; it must exit 0 within a second.
static void
s_stop (tu_daemon_t *daemon, int sig)
{
    int64_t start = zclock_mono ();
    int rc = tu_stop (&daemon->proc, sig, 3000);
    int64_t took = zclock_mono () - start;
    char *err = tu_stderr (&daemon->proc);
    cr_assert_eq (rc, 0, "exit %d after signal %d; stderr:\n%s", rc, sig, err);
    cr_assert_lt (took, 1000, "took %d ms to stop", (int) took);
    free (err);
}

static void
s_expect_usage_error (const char *const *args, const char *needle)
{
    char *out, *err;
    int rc = tu_run_bin ("zkit-worker", args, &out, &err, WAIT_MS);
    cr_assert_eq (rc, 2, "exit %d for '%s ...'; stderr: %s", rc, args[0] ? args[0] : "", err);
    cr_assert_str_eq (out, "");
    cr_assert_eq (strncmp (err, "zkit-worker: ", 13), 0, "%s", err);
    cr_assert_not_null (strstr (err, needle), "stderr '%s' lacks '%s'", err, needle);
    free (out);
    free (err);
}

Test (cli_worker, help_goes_to_stdout_and_exits_0, .timeout = 30)
{
    char *out, *err;
    int rc = tu_run_bin ("zkit-worker", (const char *[]){"--help", NULL}, &out, &err, WAIT_MS);
    cr_assert_eq (rc, 0);
    cr_assert_not_null (strstr (out, "Usage: zkit-worker --in SPEC"), "%s", out);
    cr_assert_not_null (strstr (out, "--lines"));
    cr_assert_not_null (strstr (out, "--timeout SECONDS"));
    cr_assert_not_null (strstr (out, "--ready-file PATH"));
    cr_assert_str_eq (err, "");
    free (out);
    free (err);
}

Test (cli_worker, usage_errors_exit_2, .timeout = 60)
{
    char *out, *err;
    int rc = tu_run_bin ("zkit-worker", (const char *[]){NULL}, &out, &err, WAIT_MS);
    cr_assert_eq (rc, 2);
    cr_assert_not_null (strstr (err, "Usage: zkit-worker"), "%s", err);
    free (out);
    free (err);
    s_expect_usage_error ((const char *[]){"--in", "rep@nowhere", "--", "cat", NULL},
                          "rep@nowhere");
    s_expect_usage_error ((const char *[]){"--in", "push@tcp://127.0.0.1:*", "--", "cat", NULL},
                          "push socket cannot be an input");
    s_expect_usage_error ((const char *[]){"--", "cat", NULL}, "--in SPEC is required");
    s_expect_usage_error ((const char *[]){"--in", "rep@tcp://127.0.0.1:*", NULL},
                          "missing argument");
    s_expect_usage_error ((const char *[]){"--in", "rep@tcp://127.0.0.1:*", "--out",
                                           "push@tcp://127.0.0.1:*", "--", "cat", NULL},
                          "--out cannot be used with a rep input");
    s_expect_usage_error (
        (const char *[]){"--in", "pull@tcp://127.0.0.1:*", "--jobs", "0", "--", "cat", NULL},
        "--jobs");
    s_expect_usage_error (
        (const char *[]){"--in", "pull@tcp://127.0.0.1:*", "--bogus", "--", "cat", NULL},
        "unknown option");
}

Test (cli_worker, a_port_in_use_exits_1, .timeout = 30)
{
    zsock_t *holder = zsock_new (ZMQ_PULL);
    zsock_set_linger (holder, 0);
    cr_assert_eq (zmq_bind (zsock_resolve (holder), "tcp://127.0.0.1:*"), 0);
    char *endpoint = zsock_last_endpoint (holder);
    char *spec = zsys_sprintf ("rep@%s", endpoint);
    char *out, *err;
    int rc = tu_run_bin ("zkit-worker", (const char *[]){"--in", spec, "--", "cat", NULL}, &out,
                         &err, WAIT_MS);
    cr_assert_eq (rc, 1, "exit %d; stderr: %s", rc, err);
    cr_assert_not_null (strstr (err, "cannot bind"), "%s", err);
    free (out);
    free (err);
    free (spec);
    free (endpoint);
    zsock_destroy (&holder);
}

Test (cli_worker, rep_service_upper_cases_a_request, .timeout = 30)
{
    tu_daemon_t worker;
    s_start (&worker, (const char *[]){"--in", "rep@tcp://127.0.0.1:*", NULL},
             (const char *[]){"tr", "a-z", "A-Z", NULL});
    char *endpoint = s_endpoint (&worker, "input");
    zsock_t *req = s_connect (ZMQ_REQ, endpoint);
    zstr_send (req, "hello from the shell");
    zmsg_t *reply = s_recv (req);
    s_assert_body (reply, "HELLO FROM THE SHELL");
    zmsg_destroy (&reply);
    zsock_destroy (&req);
    s_stop (&worker, SIGTERM);
    tu_daemon_cleanup (&worker);
    free (endpoint);
}

Test (cli_worker, pull_push_pipeline_with_jobs, .timeout = 30)
{
    tu_daemon_t worker;
    s_start (&worker,
             (const char *[]){"--in", "pull@tcp://127.0.0.1:*", "--out", "push@tcp://127.0.0.1:*",
                              "--jobs", "3", "--stats", "0.05", NULL},
             (const char *[]){"sh", "-c", "printf '<%s>' \"$(cat)\"", NULL});
    char *in = s_endpoint (&worker, "input");
    char *out = s_endpoint (&worker, "output");
    zsock_t *push = s_connect (ZMQ_PUSH, in);
    zsock_t *pull = s_connect (ZMQ_PULL, out);
    for (int i = 0; i < 9; i++)
        zstr_sendf (push, "m%d", i);
    int seen[9] = {0};
    for (int i = 0; i < 9; i++) {
        zmsg_t *msg = s_recv (pull);
        char *body = zframe_strdup (zmsg_first (msg));
        int index = -1;
        cr_assert_eq (sscanf (body, "<m%d>", &index), 1, "%s", body);
        cr_assert (index >= 0 && index < 9 && !seen[index], "%s", body);
        seen[index] = 1;
        free (body);
        zmsg_destroy (&msg);
    }
    cr_assert (tu_wait_contains (worker.proc.err_path, "stats received=9 succeeded=9", WAIT_MS));
    zsock_destroy (&push);
    zsock_destroy (&pull);
    s_stop (&worker, SIGINT);
    tu_daemon_cleanup (&worker);
    free (in);
    free (out);
}

Test (cli_worker, failures_and_timeouts_are_error_replies, .timeout = 30)
{
    tu_daemon_t worker;
    s_start (&worker,
             (const char *[]){"--in", "router@tcp://127.0.0.1:*", "--timeout", "0.2", "--jobs", "2",
                              NULL},
             (const char *[]){"sh", "-c", "x=$(cat); [ \"$x\" = hang ] && exec sleep 30; exit $x",
                              NULL});
    char *endpoint = s_endpoint (&worker, "input");
    zsock_t *req = s_connect (ZMQ_REQ, endpoint);
    zstr_send (req, "4");
    zmsg_t *reply = s_recv (req);
    char *reason = s_error_reason (reply);
    cr_assert_str_eq (reason, "exit status 4");
    free (reason);
    zmsg_destroy (&reply);
    zstr_send (req, "hang");
    reply = s_recv (req);
    reason = s_error_reason (reply);
    cr_assert_str_eq (reason, "timed out after 0.2 s");
    free (reason);
    zmsg_destroy (&reply);
    zstr_send (req, "0");
    reply = s_recv (req);
    s_assert_body (reply, "");
    zmsg_destroy (&reply);
    zsock_destroy (&req);
    s_stop (&worker, SIGTERM);
    tu_daemon_cleanup (&worker);
    free (endpoint);
}

Test (cli_worker, lines_mode_with_sed, .timeout = 30)
{
    tu_daemon_t worker;
    s_start (&worker, (const char *[]){"--in", "rep@tcp://127.0.0.1:*", "--lines", "-j", "2", NULL},
             (const char *[]){"sed", "-u", "s/^/x/", NULL});
    char *endpoint = s_endpoint (&worker, "input");
    zsock_t *req = s_connect (ZMQ_REQ, endpoint);
    for (int i = 0; i < 20; i++) {
        zstr_sendf (req, "line %d", i);
        zmsg_t *reply = s_recv (req);
        char expected[32];
        snprintf (expected, sizeof expected, "xline %d", i);
        s_assert_body (reply, expected);
        zmsg_destroy (&reply);
    }
    zsock_destroy (&req);
    s_stop (&worker, SIGTERM);
    tu_daemon_cleanup (&worker);
    free (endpoint);
}

//  SIGTERM while a command runs: exit 0 within a second, the command is
//  killed, and the requester hears why.
Test (cli_worker, sigterm_while_a_command_runs, .timeout = 30)
{
    tu_daemon_t worker;
    char *dir = tu_tmpdir ();
    s_start (&worker, (const char *[]){"--in", "rep@tcp://127.0.0.1:*", NULL},
             (const char *[]){"sh", "-c",
                              "echo $$ > \"$0/p\"; mv \"$0/p\" \"$0/pid\"; exec sleep 30", dir,
                              NULL});
    char *endpoint = s_endpoint (&worker, "input");
    zsock_t *req = s_connect (ZMQ_REQ, endpoint);
    zstr_send (req, "x");
    char *path = zsys_sprintf ("%s/pid", dir);
    char *text = tu_wait_file (path, WAIT_MS);
    cr_assert_not_null (text);
    pid_t pid = (pid_t) atoi (text);
    cr_assert_gt (pid, 0);
    s_stop (&worker, SIGTERM);
    //  Reaped by the worker before it exited: no such process any more.
    cr_assert_eq (kill (pid, 0), -1, "command %d still runs", (int) pid);
    zmsg_t *reply = s_recv (req);
    char *reason = s_error_reason (reply);
    cr_assert_str_eq (reason, "worker stopping");
    free (reason);
    zmsg_destroy (&reply);
    zsock_destroy (&req);
    tu_daemon_cleanup (&worker);
    tu_rmdir (dir);
    free (dir);
    free (text);
    free (path);
    free (endpoint);
}

// ---------------------------------------------------------------- --lb and the reply cache

Test (cli_worker, help_lists_the_lb_and_reply_cache_options, .timeout = 30)
{
    char *out, *err;
    int rc = tu_run_bin ("zkit-worker", (const char *[]){"--help", NULL}, &out, &err, WAIT_MS);
    cr_assert_eq (rc, 0);
    const char *needles[] = {"--lb",
                             "--heartbeat SECONDS",
                             "--reply-cache N",
                             "--reply-cache-bytes BYTES",
                             "--reply-ttl SECONDS",
                             "zk-retry=1",
                             NULL};
    for (int index = 0; needles[index]; index++)
        cr_assert_not_null (strstr (out, needles[index]), "--help lacks '%s'", needles[index]);
    free (out);
    free (err);
}

Test (cli_worker, lb_needs_a_connecting_dealer_input_and_flags_are_checked, .timeout = 60)
{
    const char *needs = "--lb needs a dealer> input";
    s_expect_usage_error (
        (const char *[]){"--lb", "--in", "rep@tcp://127.0.0.1:*", "--", "cat", NULL}, needs);
    s_expect_usage_error (
        (const char *[]){"--lb", "--in", "dealer@tcp://127.0.0.1:*", "--", "cat", NULL}, needs);
    s_expect_usage_error (
        (const char *[]){"--lb", "--in", "dealer>inproc://zk-a,inproc://zk-b", "--", "cat", NULL},
        needs);
    s_expect_usage_error (
        (const char *[]){"--lb", "--in", "queue>ipc:///tmp/zk-lb.sock/orders", "--", "cat", NULL},
        needs);
    s_expect_usage_error ((const char *[]){"--lb", "--in", "dealer>inproc://zk-lb", "--out",
                                           "push>inproc://zk-out", "--", "cat", NULL},
                          "--out cannot be used with --lb");
    s_expect_usage_error (
        (const char *[]){"--heartbeat", "2", "--in", "rep@tcp://127.0.0.1:*", "--", "cat", NULL},
        "--heartbeat needs --lb");
    s_expect_usage_error ((const char *[]){"--lb", "--heartbeat", "0", "--in",
                                           "dealer>inproc://zk-lb", "--", "cat", NULL},
                          "--heartbeat");
    s_expect_usage_error (
        (const char *[]){"--reply-cache", "-1", "--in", "rep@tcp://127.0.0.1:*", "--", "cat", NULL},
        "--reply-cache");
    s_expect_usage_error ((const char *[]){"--reply-cache-bytes", "0", "--in",
                                           "rep@tcp://127.0.0.1:*", "--", "cat", NULL},
                          "--reply-cache-bytes");
    s_expect_usage_error (
        (const char *[]){"--reply-ttl", "0", "--in", "rep@tcp://127.0.0.1:*", "--", "cat", NULL},
        "--reply-ttl");
    s_expect_usage_error (
        (const char *[]){"--reply-ttl", "soon", "--in", "rep@tcp://127.0.0.1:*", "--", "cat", NULL},
        "--reply-ttl");
}

//  The next message from the worker with this ZKW/1 command (heartbeats
//  skipped), within WAIT_MS. Caller owns it.
static zmsg_t *
s_lb_expect (zsock_t *router, const char *command)
{
    int64_t deadline = zclock_mono () + WAIT_MS;
    while (zclock_mono () < deadline) {
        zmsg_t *msg = tu_recv (router, (int) (deadline - zclock_mono ()));
        if (!msg)
            break;
        zframe_t *frame = zmsg_first (msg);  //  the worker's routing id
        frame = zmsg_next (msg);
        cr_assert (frame && zframe_streq (frame, "ZKW1"), "not a ZKW/1 message");
        frame = zmsg_next (msg);
        if (frame && zframe_streq (frame, command))
            return msg;
        zmsg_destroy (&msg);
    }
    cr_assert_fail ("no %s from the worker within %d ms", command, WAIT_MS);
    return NULL;
}

//  The binary against a fake proxy (a ROUTER speaking ZKW/1 by hand):
//  READY, a request and its reply, DISCONNECT at SIGTERM, exit 0 fast.
Test (cli_worker, lb_worker_serves_a_fake_proxy_and_says_disconnect, .timeout = 30)
{
    char endpoint[256];
    zsock_t *router = tu_bind_ephemeral (ZMQ_ROUTER, endpoint, sizeof endpoint);
    cr_assert_not_null (router);
    char *input = zsys_sprintf ("dealer>%s", endpoint);
    tu_daemon_t worker;
    s_start (&worker,
             (const char *[]){"--lb", "--in", input, "--jobs", "2", "--heartbeat", "0.5", NULL},
             (const char *[]){"tr", "a-z", "A-Z", NULL});
    zmsg_t *ready = s_lb_expect (router, "READY");
    cr_assert_eq (zmsg_size (ready), 4);
    cr_assert (zframe_streq (zmsg_last (ready), "2"), "READY must announce --jobs");
    zframe_t *identity = zmsg_pop (ready);
    zmsg_destroy (&ready);

    zmsg_t *request = zmsg_new ();
    zframe_t *copy = zframe_dup (identity);
    zmsg_append (request, &copy);
    const char *frames[] = {"ZKW1", "REQUEST", "client", "", "over the proxy", NULL};
    for (int index = 0; frames[index]; index++)
        zmsg_addstr (request, frames[index]);
    cr_assert_eq (zmsg_send (&request, router), 0);
    zmsg_t *reply = s_lb_expect (router, "REPLY");
    cr_assert_eq (zmsg_size (reply), 6, "%zu frames", zmsg_size (reply));
    cr_assert (zframe_streq (zmsg_last (reply), "OVER THE PROXY"));
    zmsg_destroy (&reply);

    s_stop (&worker, SIGTERM);
    zmsg_t *disconnect = s_lb_expect (router, "DISCONNECT");
    zmsg_destroy (&disconnect);
    zframe_destroy (&identity);
    tu_daemon_cleanup (&worker);
    zsock_destroy (&router);
    free (input);
}
