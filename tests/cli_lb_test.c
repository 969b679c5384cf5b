/*  zkit-proxy --lb — the real binary: usage, fake ZKW/1 workers through
    it, and real zkit-worker --lb processes, one of them SIGKILLed mid-run.  */

#include "testutil.h"

#include <signal.h>

#define WAIT_MS      5000
#define HEARTBEAT    "0.5"  //  seconds, proxy and workers
#define HEARTBEAT_MS 500

//  Start the daemon; fail the test with its stderr if it never gets ready.
static void
s_start (tu_daemon_t *daemon, const char *program, const char *const *args,
         const char *const *command)
{
    int rc = command ? tu_daemon_start_command (daemon, program, args, command, WAIT_MS)
                     : tu_daemon_start (daemon, program, args, WAIT_MS);
    if (rc != 0) {
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

//  A proxy --lb on ephemeral ports with a rep control socket.
typedef struct {
    tu_daemon_t daemon;
    char *frontend, *backend;
    zsock_t *control;  //  a DEALER: ["", COMMAND] -> ["", REPLY]
} s_proxy_t;

static void
s_proxy_start (s_proxy_t *proxy)
{
    s_start (&proxy->daemon, "zkit-proxy",
             (const char *[]){"--lb", "--heartbeat", HEARTBEAT, "router@tcp://127.0.0.1:*",
                              "router@tcp://127.0.0.1:*", "--control", "rep@tcp://127.0.0.1:*",
                              NULL},
             NULL);
    proxy->frontend = s_endpoint (&proxy->daemon, "frontend");
    proxy->backend = s_endpoint (&proxy->daemon, "backend");
    char *control = s_endpoint (&proxy->daemon, "control");
    proxy->control = tu_connect (ZMQ_DEALER, control);
    free (control);
}

static void
s_proxy_stop (s_proxy_t *proxy)
{
    zsock_destroy (&proxy->control);
    int rc = tu_stop (&proxy->daemon.proc, SIGTERM, WAIT_MS);
    char *err = tu_stderr (&proxy->daemon.proc);
    cr_assert_eq (rc, 0, "zkit-proxy --lb exited %d on SIGTERM:\n%s", rc, err);
    free (err);
    free (proxy->frontend);
    free (proxy->backend);
    tu_daemon_cleanup (&proxy->daemon);
}

//  A counter of the proxy's STATISTICS line.
static uint64_t
s_statistic (s_proxy_t *proxy, const char *name)
{
    zstr_sendx (proxy->control, "", "STATISTICS", NULL);
    zmsg_t *reply = tu_recv (proxy->control, WAIT_MS);
    cr_assert_not_null (reply, "no STATISTICS reply");
    char *text = zframe_strdup (zmsg_last (reply));
    zmsg_destroy (&reply);
    char key[64];
    snprintf (key, sizeof key, " %s=", name);
    char *line = zsys_sprintf (" %s", text);
    char *found = strstr (line, key);
    cr_assert_not_null (found, "no %s in '%s'", name, text);
    uint64_t value = strtoull (found + strlen (key), NULL, 10);
    free (line);
    free (text);
    return value;
}

//  Wait until counter name of the proxy is value; false at the deadline.
static bool
s_statistic_becomes (s_proxy_t *proxy, const char *name, uint64_t value, int timeout_ms)
{
    for (int64_t deadline = zclock_mono () + timeout_ms; zclock_mono () < deadline;) {
        if (s_statistic (proxy, name) == value)
            return true;
        zmq_poll (NULL, 0, 20);  //  poll the counter until the deadline
    }
    return false;
}

//  A DEALER client's request: REQID "" BODY.
static void
s_call_send (zsock_t *client, const uint8_t reqid[ZK_ID_SIZE], const char *body)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, reqid, ZK_ID_SIZE);
    zmsg_addmem (msg, NULL, 0);
    zmsg_addstr (msg, body);
    cr_assert_eq (zmsg_send (&msg, client), 0);
}

//  The reply to reqid (others are dropped as stale): its frames after the
//  delimiter. NULL at the deadline.
static zmsg_t *
s_call_recv (zsock_t *client, const uint8_t reqid[ZK_ID_SIZE], int timeout_ms)
{
    for (int64_t deadline = zclock_mono () + timeout_ms; zclock_mono () < deadline;) {
        zmsg_t *msg = tu_recv (client, (int) (deadline - zclock_mono ()) + 1);
        if (!msg)
            return NULL;
        zframe_t *id = zmsg_pop (msg);
        zframe_t *delimiter = zmsg_pop (msg);
        bool ours = id && zframe_size (id) == ZK_ID_SIZE
                    && memcmp (zframe_data (id), reqid, ZK_ID_SIZE) == 0 && delimiter
                    && zframe_size (delimiter) == 0;
        zframe_destroy (&id);
        zframe_destroy (&delimiter);
        if (ours)
            return msg;
        zmsg_destroy (&msg);
    }
    return NULL;
}

//  The error reply's zk-error when msg is ENVELOPE "" with zk-status=error
//  (retry: zk-retry=1 also required), else NULL. Caller frees.
static char *
s_error_of (zmsg_t *msg, bool retry)
{
    if (!msg || zmsg_size (msg) != 2)
        return NULL;
    zframe_t *frame = zmsg_first (msg);
    zk_envelope_t *envelope = NULL;
    if (zk_envelope_decode (zframe_data (frame), zframe_size (frame), &envelope))
        return NULL;
    const char *status = zk_envelope_header (envelope, "zk-status");
    const char *error = zk_envelope_header (envelope, "zk-error");
    const char *again = zk_envelope_header (envelope, "zk-retry");
    char *result = NULL;
    if (status && streq (status, "error") && error && (!retry || (again && streq (again, "1"))))
        result = strdup (error);
    zk_envelope_destroy (&envelope);
    return result;
}

//  ---------------------------------------------------------------- usage

Test (cli_lb, help_shows_lb_and_heartbeat, .timeout = 30)
{
    char *out, *err;
    int rc = tu_run_bin ("zkit-proxy", (const char *[]){"--help", NULL}, &out, &err, WAIT_MS);
    cr_assert_eq (rc, 0);
    cr_assert_not_null (strstr (out, "--lb "), "%s", out);
    cr_assert_not_null (strstr (out, "--heartbeat SECONDS"), "%s", out);
    cr_assert_not_null (strstr (out, "  zkit-proxy --lb 'router@"), "%s", out);
    free (out);
    free (err);
}

Test (cli_lb, usage_errors_are_one_line_and_exit_2, .timeout = 30)
{
    struct {
        const char *args[8];
        const char *line;
    } cases[] = {
        {{"--lb", "router@tcp://127.0.0.1:*", "dealer@tcp://127.0.0.1:*", NULL},
         "zkit-proxy: --lb needs a router backend: workers connect to it (got dealer)\n"},
        {{"--lb", "pull@tcp://127.0.0.1:*", "router@tcp://127.0.0.1:*", NULL},
         "zkit-proxy: --lb needs a router frontend: clients connect to it (got pull)\n"},
        {{"--heartbeat", "1", "router@tcp://127.0.0.1:*", "dealer@tcp://127.0.0.1:*", NULL},
         "zkit-proxy: --heartbeat needs --lb\n"},
        {{"--lb", "--heartbeat", "0.01", "router@tcp://127.0.0.1:*", "router@tcp://127.0.0.1:*",
          NULL},
         "zkit-proxy: --heartbeat: '0.01' is not a valid SECONDS (0.05 to 60)\n"},
        {{"--lb", "--heartbeat", "61", "router@tcp://127.0.0.1:*", "router@tcp://127.0.0.1:*",
          NULL},
         "zkit-proxy: --heartbeat: '61' is not a valid SECONDS (0.05 to 60)\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out, *err;
        int rc = tu_run_bin ("zkit-proxy", cases[i].args, &out, &err, WAIT_MS);
        cr_assert_eq (rc, 2, "case %zu: exit %d", i, rc);
        cr_assert_str_eq (err, cases[i].line);
        cr_assert_str_eq (out, "");
        free (out);
        free (err);
    }
}

//  ---------------------------------------------------------------- fake workers

Test (cli_lb, the_binary_balances_over_fake_workers_and_fails_back_on_stop, .timeout = 60)
{
    s_proxy_t proxy;
    s_proxy_start (&proxy);
    zsock_t *workers[2];
    //  One at a time: two connections are not ordered.
    for (int i = 0; i < 2; i++) {
        workers[i] = tu_connect (ZMQ_DEALER, proxy.backend);
        zstr_sendx (workers[i], "ZKW1", "READY", "1", NULL);
        cr_assert (s_statistic_becomes (&proxy, "workers", (uint64_t) i + 1, WAIT_MS));
    }
    zsock_t *client = tu_connect (ZMQ_DEALER, proxy.frontend);
    uint8_t first[ZK_ID_SIZE], second[ZK_ID_SIZE];
    zk_id_generate (first);
    zk_id_generate (second);
    s_call_send (client, first, "one");
    s_call_send (client, second, "two");
    //  One request each (credit 1): worker 0 came first.
    zmsg_t *held[2];
    for (int i = 0; i < 2; i++) {
        held[i] = tu_recv (workers[i], WAIT_MS);
        cr_assert_not_null (held[i], "worker %d got no request", i);
        cr_assert_eq (zmsg_size (held[i]), 6);  //  ZKW1 REQUEST id REQID "" body
        char *body = zframe_strdup (zmsg_last (held[i]));
        cr_assert_str_eq (body, i == 0 ? "one" : "two");
        free (body);
    }
    //  Worker 0 answers: the command becomes REPLY, the body the answer.
    zmsg_t *reply = zmsg_dup (held[0]);
    zmsg_first (reply);
    zframe_t *request_frame = zmsg_next (reply);
    zframe_reset (request_frame, "REPLY", 5);
    zframe_reset (zmsg_last (reply), "ONE", 3);
    zmsg_send (&reply, workers[0]);
    zmsg_t *got = s_call_recv (client, first, WAIT_MS);
    cr_assert_not_null (got);
    char *text = zframe_strdup (zmsg_first (got));
    cr_assert_str_eq (text, "ONE");
    free (text);
    zmsg_destroy (&got);
    cr_assert (s_statistic_becomes (&proxy, "in_flight", 1, WAIT_MS));
    cr_assert_eq (s_statistic (&proxy, "replies"), 1);

    //  SIGTERM: the request worker 1 holds is failed back, retry allowed.
    zsock_destroy (&proxy.control);
    cr_assert_eq (tu_stop (&proxy.daemon.proc, SIGTERM, WAIT_MS), 0);
    got = s_call_recv (client, second, WAIT_MS);
    char *error = s_error_of (got, true);
    cr_assert_not_null (error, "no fail-back on stop");
    cr_assert_str_eq (error, "proxy stopping");
    free (error);
    zmsg_destroy (&got);

    for (int i = 0; i < 2; i++) {
        zmsg_destroy (&held[i]);
        zsock_destroy (&workers[i]);
    }
    zsock_destroy (&client);
    free (proxy.frontend);
    free (proxy.backend);
    tu_daemon_cleanup (&proxy.daemon);
}

//  ---------------------------------------------------------------- real workers

/*  A worker's COMMAND: prints "NAME BODY". The first request "hang" that
    reaches any worker (mkdir is the once-only latch) makes it write its
    pid into NAME.hung and hang, as a request in flight on a worker that
    is about to die.                                                     */
#define WORKER_SCRIPT                                                                              \
    "read -r x || true; "                                                                          \
    "if [ \"$x\" = hang ] && mkdir \"$0.once\" 2>/dev/null; then "                                 \
    "echo $$ > \"$0.hung.tmp\"; mv \"$0.hung.tmp\" \"$0.$1.hung\"; exec sleep 60; fi; "            \
    "printf '%s %s\\n' \"$1\" \"$x\""

typedef struct {
    s_proxy_t proxy;
    tu_daemon_t workers[2];
    char *latch;  //  the path the script gets as $0
} s_farm_t;

static const char *s_names[2] = {"A", "B"};

static void
s_farm_start (s_farm_t *farm)
{
    s_proxy_start (&farm->proxy);
    farm->latch = zsys_sprintf ("%s/latch", farm->proxy.daemon.dir);
    char *input = zsys_sprintf ("dealer>%s", farm->proxy.backend);
    for (int i = 0; i < 2; i++) {
        s_start (&farm->workers[i], "zkit-worker",
                 (const char *[]){"--lb", "--heartbeat", HEARTBEAT, "--in", input, NULL},
                 (const char *[]){"sh", "-c", WORKER_SCRIPT, farm->latch, s_names[i], NULL});
        //  One at a time, so A is the first worker the proxy knows.
        cr_assert (s_statistic_becomes (&farm->proxy, "workers", (uint64_t) i + 1, WAIT_MS),
                   "the proxy never counted worker %s", s_names[i]);
    }
    free (input);
}

//  Which worker hangs on "hang" (0 or 1), once it does; its command's pid.
static int
s_farm_hung (s_farm_t *farm, pid_t *pid_p)
{
    for (int64_t deadline = zclock_mono () + WAIT_MS; zclock_mono () < deadline;) {
        for (int i = 0; i < 2; i++) {
            char *path = zsys_sprintf ("%s.%s.hung", farm->latch, s_names[i]);
            char *pid = tu_slurp (path);
            free (path);
            if (pid) {
                *pid_p = (pid_t) atoi (pid);
                free (pid);
                return i;
            }
        }
        zmq_poll (NULL, 0, 20);  //  poll for the file until the deadline
    }
    cr_assert_fail ("no worker got the hanging request");
    return -1;
}

//  Send body with a fresh REQID and return the answering worker's name
//  ("A" or "B"), asserting the reply is "NAME body".
static const char *
s_farm_call (zsock_t *client, const char *body)
{
    uint8_t reqid[ZK_ID_SIZE];
    zk_id_generate (reqid);
    s_call_send (client, reqid, body);
    zmsg_t *reply = s_call_recv (client, reqid, WAIT_MS);
    cr_assert_not_null (reply, "no reply to '%s'", body);
    char *text = zframe_strdup (zmsg_last (reply));
    zmsg_destroy (&reply);
    const char *name = NULL;
    for (int i = 0; i < 2; i++) {
        char expected[64];
        snprintf (expected, sizeof expected, "%s %s\n", s_names[i], body);
        if (streq (text, expected))
            name = s_names[i];
    }
    cr_assert_not_null (name, "unexpected reply '%s'", text);
    free (text);
    return name;
}

static void
s_farm_stop (s_farm_t *farm)
{
    for (int i = 0; i < 2; i++) {
        if (!farm->workers[i].proc.exited) {
            int rc = tu_stop (&farm->workers[i].proc, SIGTERM, WAIT_MS);
            cr_assert_eq (rc, 0, "worker %s exited %d on SIGTERM", s_names[i], rc);
        }
        tu_daemon_cleanup (&farm->workers[i]);
    }
    free (farm->latch);
    s_proxy_stop (&farm->proxy);
}

Test (cli_lb, a_killed_worker_is_noticed_and_new_requests_avoid_it, .timeout = 120)
{
    s_farm_t farm;
    s_farm_start (&farm);
    zsock_t *client = tu_connect (ZMQ_DEALER, farm.proxy.frontend);
    //  Both serve (least recently used first: A, B, A, B).
    bool answered[2] = {false, false};
    for (int i = 0; i < 4; i++)
        answered[streq (s_farm_call (client, "warm-up"), "A") ? 0 : 1] = true;
    cr_assert (answered[0] && answered[1], "both workers should have answered");

    //  A request hangs on one worker; that worker is SIGKILLed.
    uint8_t reqid[ZK_ID_SIZE];
    zk_id_generate (reqid);
    s_call_send (client, reqid, "hang");
    pid_t command_pid = 0;
    int victim = s_farm_hung (&farm, &command_pid);
    int survivor = 1 - victim;
    cr_assert_eq (tu_stop (&farm.workers[victim].proc, SIGKILL, WAIT_MS), 128 + SIGKILL);
    int64_t killed_at = zclock_mono ();
    kill (command_pid, SIGKILL);  //  its COMMAND lives in a process group of its own

    //  Noticed within a few seconds: its request is failed back, retry allowed.
    zmsg_t *failed = s_call_recv (client, reqid, 5 * WAIT_MS);
    int64_t noticed_ms = zclock_mono () - killed_at;
    char *error = s_error_of (failed, true);
    cr_assert_not_null (error, "the killed worker's request was not failed back");
    cr_assert_str_eq (error, "worker lost");
    free (error);
    zmsg_destroy (&failed);
    cr_assert_leq (noticed_ms, 3 * 4 * HEARTBEAT_MS, "noticed after %" PRId64 " ms", noticed_ms);
    cr_assert (s_statistic_becomes (&farm.proxy, "workers", 1, WAIT_MS));
    cr_assert_eq (s_statistic (&farm.proxy, "lost"), 1);

    //  The retry (same REQID) and every new request go to the survivor.
    s_call_send (client, reqid, "hang");
    zmsg_t *reply = s_call_recv (client, reqid, WAIT_MS);
    cr_assert_not_null (reply, "the retry got no reply");
    char *text = zframe_strdup (zmsg_last (reply));
    char expected[32];
    snprintf (expected, sizeof expected, "%s hang\n", s_names[survivor]);
    cr_assert_str_eq (text, expected);
    free (text);
    zmsg_destroy (&reply);
    for (int i = 0; i < 6; i++)
        cr_assert_str_eq (s_farm_call (client, "after"), s_names[survivor]);
    cr_assert_eq (s_statistic (&farm.proxy, "workers"), 1);
    cr_assert_eq (s_statistic (&farm.proxy, "in_flight"), 0);

    zsock_destroy (&client);
    s_farm_stop (&farm);
}

//  zkit-cat with --retries (the reliable client) is answered by the other
//  worker when its request's worker is SIGKILLed.
Test (cli_lb, zkit_cat_retries_past_a_killed_worker, .timeout = 120)
{
    s_farm_t farm;
    s_farm_start (&farm);
    char bin[512];
    char *spec = zsys_sprintf ("req>%s", farm.proxy.frontend);
    char *argv[] = {(char *) tu_bin ("zkit-cat", bin, sizeof bin),
                    spec,
                    "--timeout",
                    "20",
                    "--retries",
                    "2",
                    NULL};
    tu_proc_t cat;
    cr_assert_eq (tu_spawn (&cat, farm.proxy.daemon.dir, argv), 0);
    tu_write_stdin (&cat, "hang", 4, true);
    pid_t command_pid = 0;
    int victim = s_farm_hung (&farm, &command_pid);
    cr_assert_eq (tu_stop (&farm.workers[victim].proc, SIGKILL, WAIT_MS), 128 + SIGKILL);
    kill (command_pid, SIGKILL);
    //  Answered well within zkit-cat's own timeout (20 s): by the fail-back.
    int rc = tu_wait (&cat, 15000);
    char *out = tu_stdout (&cat);
    char *err = tu_stderr (&cat);
    cr_assert_eq (rc, 0, "zkit-cat exited %d: %s", rc, err);
    //  The reply (the worker's "NAME hang\n"), then zkit-cat's newline.
    char expected[32];
    snprintf (expected, sizeof expected, "%s hang\n\n", s_names[1 - victim]);
    cr_assert_str_eq (out, expected);
    free (out);
    free (err);
    free (spec);
    s_farm_stop (&farm);
}
