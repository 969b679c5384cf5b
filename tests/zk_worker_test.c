/*  zk_worker — the actor: every input type, replies and their envelopes,
    concurrency, failures (exit status, signal, timeout, output limit),
    lines mode, hostile input.                                           */

#include "testutil.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#define WAIT_MS 5000

static zk_worker_t *
s_start (zk_worker_config_t *config)
{
    zk_worker_t *worker = zk_worker_new (config);
    cr_assert_not_null (worker, "worker did not start (%s)", config->input);
    return worker;
}

static zsock_t *
s_connect (int type, const char *endpoint)
{
    zsock_t *sock = tu_connect (type, endpoint);
    cr_assert_not_null (sock, "connect %s", endpoint);
    return sock;
}

static zsock_t *
s_bind (int type, const char *endpoint)
{
    zsock_t *sock = zsock_new (type);
    cr_assert_not_null (sock);
    zsock_set_linger (sock, 0);
    cr_assert_eq (zsock_bind (sock, "%s", endpoint), 0, "bind %s", endpoint);
    return sock;
}

static zmsg_t *
s_recv (zsock_t *sock)
{
    zmsg_t *msg = tu_recv (sock, WAIT_MS);
    cr_assert_not_null (msg, "no message within %d ms", WAIT_MS);
    return msg;
}

//  A worker whose input binds a fresh inproc endpoint, with a client
//  connected to it. dir, when set before start, is removed at stop.
typedef struct {
    char *dir;
    char *endpoint;
    char *input;
    zk_worker_t *worker;
    zsock_t *client;
} s_rig_t;

static void
s_rig_start (s_rig_t *rig, const char *input_type, int client_type, zk_worker_config_t *config)
{
    rig->endpoint = tu_inproc ("worker");
    rig->input = zsys_sprintf ("%s@%s", input_type, rig->endpoint);
    config->input = rig->input;
    rig->worker = s_start (config);
    rig->client = s_connect (client_type, rig->endpoint);
}

static void
s_rig_stop (s_rig_t *rig)
{
    zsock_destroy (&rig->client);
    zk_worker_destroy (&rig->worker);
    cr_assert_null (rig->worker);
    if (rig->dir)
        tu_rmdir (rig->dir);
    free (rig->dir);
    free (rig->input);
    free (rig->endpoint);
}

//  Send text on a REQ socket and return the reply.
static zmsg_t *
s_call (zsock_t *req, const char *text)
{
    cr_assert_eq (zstr_send (req, text), 0);
    return s_recv (req);
}

static void
s_assert_frame (zframe_t *frame, const char *text)
{
    cr_assert_not_null (frame, "missing frame, expected '%s'", text);
    size_t size = strlen (text);
    cr_assert (zframe_size (frame) == size && memcmp (zframe_data (frame), text, size) == 0,
               "frame '%.*s' (%zu bytes), expected '%s'", (int) zframe_size (frame),
               (char *) zframe_data (frame), zframe_size (frame), text);
}

//  The frames of msg from index on are exactly the given texts.
static void
s_assert_frames (zmsg_t *msg, size_t index, const char *const *texts)
{
    size_t count = 0;
    while (texts[count])
        count++;
    cr_assert_eq (zmsg_size (msg), index + count, "%zu frames, expected %zu", zmsg_size (msg),
                  index + count);
    zframe_t *frame = zmsg_first (msg);
    for (size_t skip = 0; skip < index; skip++)
        frame = zmsg_next (msg);
    for (size_t i = 0; i < count; i++, frame = zmsg_next (msg))
        s_assert_frame (frame, texts[i]);
}

//  An error reply: from index on, [envelope zk-status=error, zk-error
//  containing reason][stdout]. Returns the decoded envelope (caller owns).
static zk_envelope_t *
s_assert_error (zmsg_t *msg, size_t index, const char *reason, const char *output)
{
    cr_assert_eq (zmsg_size (msg), index + 2, "error reply has %zu frames", zmsg_size (msg));
    zframe_t *frame = zmsg_first (msg);
    for (size_t skip = 0; skip < index; skip++)
        frame = zmsg_next (msg);
    zk_envelope_t *envelope = NULL;
    cr_assert_eq (zk_envelope_decode (zframe_data (frame), zframe_size (frame), &envelope), 0,
                  "the error reply does not start with an envelope");
    const char *status = zk_envelope_header (envelope, "zk-status");
    const char *error = zk_envelope_header (envelope, "zk-error");
    cr_assert_not_null (status);
    cr_assert_str_eq (status, "error");
    cr_assert_not_null (error);
    cr_assert_not_null (strstr (error, reason), "zk-error '%s', expected '%s'", error, reason);
    if (output)
        s_assert_frame (zmsg_next (msg), output);
    return envelope;
}

static zk_worker_stats_t
s_stats (zk_worker_t *worker)
{
    zk_worker_stats_t stats;
    cr_assert_eq (zk_worker_stats (worker, &stats), 0);
    return stats;
}

//  True when pid is gone (or a zombie left to init), within timeout_ms.
static bool
s_process_gone (pid_t pid, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (zclock_mono () < deadline) {
        char path[64];
        snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
        char *stat = tu_slurp (path);
        if (!stat)
            return true;
        char *paren = strrchr (stat, ')');
        bool zombie = paren && paren[1] == ' ' && paren[2] == 'Z';
        free (stat);
        if (zombie)
            return true;
        zmq_poll (NULL, 0, 10);
    }
    return false;
}

static pid_t
s_read_pid (const char *path)
{
    char *text = tu_wait_file (path, WAIT_MS);
    cr_assert_not_null (text, "%s never appeared", path);
    pid_t pid = (pid_t) atoi (text);
    free (text);
    cr_assert_gt (pid, 0);
    return pid;
}

// ---------------------------------------------------------------- request-response

Test (zk_worker, rep_upper_cases_a_req_request, .timeout = 30)
{
    char *argv[] = {"tr", "a-z", "A-Z", NULL};
    zk_worker_config_t config = {.argv = argv};
    s_rig_t rig = {0};
    s_rig_start (&rig, "rep", ZMQ_REQ, &config);
    zsock_t *req = rig.client;
    zmsg_t *reply = s_call (req, "hello, world");
    s_assert_frames (reply, 0, (const char *[]){"HELLO, WORLD", NULL});
    zmsg_destroy (&reply);
    reply = s_call (req, "");
    s_assert_frames (reply, 0, (const char *[]){"", NULL});
    zmsg_destroy (&reply);
    zk_worker_stats_t stats = s_stats (rig.worker);
    cr_assert_eq (stats.received, 2);
    cr_assert_eq (stats.succeeded, 2);
    cr_assert_eq (stats.replied, 2);
    cr_assert_eq (stats.failed, 0);
    s_rig_stop (&rig);
    zk_worker_destroy (&rig.worker);  //  safe on NULL
}

//  A rep input bound over tcp with two REQ clients in flight at once:
//  each reply goes back to the client that asked.
Test (zk_worker, rep_routes_each_reply_to_its_own_client, .timeout = 30)
{
    char *argv[] = {"cat", NULL};
    zk_worker_config_t config = {.input = "rep@tcp://127.0.0.1:*", .argv = argv, .jobs = 2};
    zk_worker_t *worker = s_start (&config);
    char *endpoint = tu_engine_endpoint (zk_worker_actor (worker), "input");
    cr_assert_not_null (endpoint);
    cr_assert_null (strstr (endpoint, ":*"), "%s", endpoint);
    zsock_t *one = s_connect (ZMQ_REQ, endpoint);
    zsock_t *two = s_connect (ZMQ_REQ, endpoint);
    for (int round = 0; round < 5; round++) {
        zstr_sendf (one, "one %d", round);
        zstr_sendf (two, "two %d", round);
        char expected[32];
        zmsg_t *reply = s_recv (two);
        snprintf (expected, sizeof expected, "two %d", round);
        s_assert_frames (reply, 0, (const char *[]){expected, NULL});
        zmsg_destroy (&reply);
        reply = s_recv (one);
        snprintf (expected, sizeof expected, "one %d", round);
        s_assert_frames (reply, 0, (const char *[]){expected, NULL});
        zmsg_destroy (&reply);
    }
    zsock_destroy (&one);
    zsock_destroy (&two);
    free (endpoint);
    zk_worker_destroy (&worker);
}

Test (zk_worker, router_input_keeps_a_dealer_peers_routing_envelope, .timeout = 30)
{
    char *argv[] = {"tr", "a-z", "A-Z", NULL};
    zk_worker_config_t config = {.argv = argv};
    s_rig_t rig = {0};
    s_rig_start (&rig, "router", ZMQ_DEALER, &config);
    zsock_t *dealer = rig.client;
    //  Frames through the first empty one are the envelope; the body frames
    //  reach the command concatenated.
    zstr_sendx (dealer, "x", "y", "", "abc", "def", NULL);
    zmsg_t *reply = s_recv (dealer);
    s_assert_frames (reply, 0, (const char *[]){"x", "y", "", "ABCDEF", NULL});
    zmsg_destroy (&reply);
    //  No empty frame: the envelope is the peer's identity alone.
    zstr_sendx (dealer, "abc", "xyz", NULL);
    reply = s_recv (dealer);
    s_assert_frames (reply, 0, (const char *[]){"ABCXYZ", NULL});
    zmsg_destroy (&reply);
    s_rig_stop (&rig);
}

//  client → ROUTER | test forwards | DEALER → worker 'rep>': the envelope
//  of a two-hop route survives and the reply finds its way back.
Test (zk_worker, rep_behind_a_router_dealer_proxy, .timeout = 30)
{
    char *front = tu_inproc ("worker-front");
    char *back = tu_inproc ("worker-back");
    zsock_t *frontend = s_bind (ZMQ_ROUTER, front);
    zsock_t *backend = s_bind (ZMQ_DEALER, back);
    char *in = zsys_sprintf ("rep>%s", back);
    char *argv[] = {"tr", "a-z", "A-Z", NULL};
    zk_worker_config_t config = {.input = in, .argv = argv, .jobs = 2};
    zk_worker_t *worker = s_start (&config);
    zsock_t *req = s_connect (ZMQ_REQ, front);
    zsock_t *dealer = s_connect (ZMQ_DEALER, front);
    zstr_send (req, "from req");
    zstr_sendx (dealer, "tag", "", "from dealer", NULL);
    //  The proxy: two requests forward, two replies back.
    for (int hop = 0; hop < 2; hop++) {
        zmsg_t *msg = s_recv (frontend);
        zmsg_send (&msg, backend);
    }
    for (int hop = 0; hop < 2; hop++) {
        zmsg_t *msg = s_recv (backend);
        zmsg_send (&msg, frontend);
    }
    zmsg_t *reply = s_recv (req);
    s_assert_frames (reply, 0, (const char *[]){"FROM REQ", NULL});
    zmsg_destroy (&reply);
    reply = s_recv (dealer);
    s_assert_frames (reply, 0, (const char *[]){"tag", "", "FROM DEALER", NULL});
    zmsg_destroy (&reply);
    zsock_destroy (&req);
    zsock_destroy (&dealer);
    zk_worker_destroy (&worker);
    zsock_destroy (&frontend);
    zsock_destroy (&backend);
    free (in);
    free (front);
    free (back);
}

Test (zk_worker, dealer_input_replies_with_its_envelope, .timeout = 30)
{
    char *endpoint = tu_inproc ("worker-dealer");
    zsock_t *peer = s_bind (ZMQ_DEALER, endpoint);
    char *in = zsys_sprintf ("dealer>%s", endpoint);
    char *argv[] = {"tr", "a-z", "A-Z", NULL};
    zk_worker_config_t config = {.input = in, .argv = argv};
    zk_worker_t *worker = s_start (&config);
    zstr_sendx (peer, "a", "", "body", NULL);
    zmsg_t *reply = s_recv (peer);
    s_assert_frames (reply, 0, (const char *[]){"a", "", "BODY", NULL});
    zmsg_destroy (&reply);
    zstr_sendx (peer, "no", "delimiter", NULL);
    reply = s_recv (peer);
    s_assert_frames (reply, 0, (const char *[]){"NODELIMITER", NULL});
    zmsg_destroy (&reply);
    zk_worker_destroy (&worker);
    zsock_destroy (&peer);
    free (in);
    free (endpoint);
}

Test (zk_worker, an_envelope_comes_back_with_the_reply, .timeout = 30)
{
    char *argv[] = {"sh", "-c", "x=$(cat); [ \"$x\" != fail ] && echo \"[$x]\"", NULL};
    zk_worker_config_t config = {.argv = argv};
    s_rig_t rig = {0};
    s_rig_start (&rig, "rep", ZMQ_REQ, &config);
    zsock_t *req = rig.client;
    zk_envelope_t *sent = zk_envelope_new ();
    cr_assert_eq (zk_envelope_set_header (sent, "app", "demo"), 0);
    zframe_t *sent_frame;
    cr_assert_eq (zk_envelope_encode (sent, &sent_frame), 0);

    //  Success: the very same envelope bytes come back in front of stdout.
    zmsg_t *msg = zmsg_new ();
    zframe_t *copy = zframe_dup (sent_frame);
    zmsg_append (msg, &copy);
    zmsg_addstr (msg, "hi");
    zmsg_send (&msg, req);
    zmsg_t *reply = s_recv (req);
    cr_assert_eq (zmsg_size (reply), 2);
    cr_assert (zframe_eq (zmsg_first (reply), sent_frame), "the envelope changed");
    s_assert_frame (zmsg_next (reply), "[hi]\n");
    zmsg_destroy (&reply);

    //  Failure: the request's envelope (same id, its headers kept) marked as an error.
    msg = zmsg_new ();
    copy = zframe_dup (sent_frame);
    zmsg_append (msg, &copy);
    zmsg_addstr (msg, "fail");
    zmsg_send (&msg, req);
    reply = s_recv (req);
    zk_envelope_t *got = s_assert_error (reply, 0, "exit status 1", "");
    cr_assert_eq (memcmp (zk_envelope_id (got), zk_envelope_id (sent), ZK_ID_SIZE), 0);
    cr_assert_str_eq (zk_envelope_header (got, "app"), "demo");
    zk_envelope_destroy (&got);
    zmsg_destroy (&reply);

    zframe_destroy (&sent_frame);
    zk_envelope_destroy (&sent);
    s_rig_stop (&rig);
}

// ---------------------------------------------------------------- concurrency

//  Four commands that each wait (bounded) until four have started: they
//  only all succeed if the worker runs four at once.
Test (zk_worker, jobs_run_commands_concurrently, .timeout = 60)
{
    char *dir = tu_tmpdir ();
    const char *script = "touch \"$0/started.$$\"; i=0;"
                         " while [ $(ls \"$0\" | grep -c started) -lt 4 ] && [ $i -lt 2000 ];"
                         " do sleep 0.01; i=$((i+1)); done;"
                         " [ $(ls \"$0\" | grep -c started) -ge 4 ] && cat";
    char *argv[] = {"sh", "-c", (char *) script, dir, NULL};
    zk_worker_config_t config = {.argv = argv, .jobs = 4, .timeout_ms = 30000};
    s_rig_t rig = {.dir = dir};
    s_rig_start (&rig, "router", ZMQ_DEALER, &config);
    zsock_t *dealer = rig.client;
    for (int request = 0; request < 4; request++)
        zstr_sendx (dealer, "", request % 2 ? "odd" : "even", NULL);
    int odd = 0, even = 0;
    for (int reply_index = 0; reply_index < 4; reply_index++) {
        zmsg_t *reply = tu_recv (dealer, 40000);
        cr_assert_not_null (reply);
        cr_assert_eq (zmsg_size (reply), 2, "request failed: not run concurrently");
        char *body = zframe_strdup (zmsg_last (reply));
        odd += streq (body, "odd");
        even += streq (body, "even");
        free (body);
        zmsg_destroy (&reply);
    }
    cr_assert_eq (odd, 2);
    cr_assert_eq (even, 2);
    cr_assert_eq (s_stats (rig.worker).succeeded, 4);
    s_rig_stop (&rig);
}

//  --jobs 2 and six requests: every command counts the commands running
//  when it starts; the first waits for the second, so the count reaches
//  2, and never more.
Test (zk_worker, jobs_never_run_more_than_the_limit, .timeout = 60)
{
    char *dir = tu_tmpdir ();
    const char *script = "touch \"$0/run.$$\" \"$0/start.$$\";"
                         " ls \"$0\" | grep -c '^run' >> \"$0/counts\"; i=0;"
                         " while [ $(ls \"$0\" | grep -c '^start') -lt 2 ] && [ $i -lt 2000 ];"
                         " do sleep 0.01; i=$((i+1)); done;"
                         " rm \"$0/run.$$\"; cat";
    char *argv[] = {"sh", "-c", (char *) script, dir, NULL};
    zk_worker_config_t config = {.argv = argv, .jobs = 2};
    s_rig_t rig = {.dir = dir};
    s_rig_start (&rig, "router", ZMQ_DEALER, &config);
    zsock_t *dealer = rig.client;
    for (int request = 0; request < 6; request++)
        zstr_sendx (dealer, "", "x", NULL);
    for (int reply_index = 0; reply_index < 6; reply_index++) {
        zmsg_t *reply = tu_recv (dealer, 40000);
        cr_assert_not_null (reply);
        s_assert_frames (reply, 0, (const char *[]){"", "x", NULL});
        zmsg_destroy (&reply);
    }
    char *path = zsys_sprintf ("%s/counts", dir);
    char *counts = tu_slurp (path);
    cr_assert_not_null (counts);
    int max = 0, lines = 0;
    for (char *line = strtok (counts, "\n"); line; line = strtok (NULL, "\n"), lines++)
        if (atoi (line) > max)
            max = atoi (line);
    cr_assert_eq (lines, 6);
    cr_assert_eq (max, 2, "at most %d commands ran at once, expected exactly 2", max);
    free (counts);
    free (path);
    s_rig_stop (&rig);
}

// ---------------------------------------------------------------- failures

Test (zk_worker, a_nonzero_exit_is_an_error_reply, .timeout = 30)
{
    char *argv[] = {"sh", "-c", "cat; exit 3", NULL};
    zk_worker_config_t config = {.argv = argv};
    s_rig_t rig = {0};
    s_rig_start (&rig, "rep", ZMQ_REQ, &config);
    zsock_t *req = rig.client;
    zmsg_t *reply = s_call (req, "partial");
    zk_envelope_t *envelope = s_assert_error (reply, 0, "exit status 3", "partial");
    zk_envelope_destroy (&envelope);
    zmsg_destroy (&reply);
    zk_worker_stats_t stats = s_stats (rig.worker);
    cr_assert_eq (stats.failed, 1);
    cr_assert_eq (stats.succeeded, 0);
    cr_assert_eq (stats.replied, 1);
    s_rig_stop (&rig);
}

Test (zk_worker, death_by_signal_is_an_error_reply, .timeout = 30)
{
    char *argv[] = {"sh", "-c", "kill -9 $$", NULL};
    zk_worker_config_t config = {.argv = argv};
    s_rig_t rig = {0};
    s_rig_start (&rig, "rep", ZMQ_REQ, &config);
    zsock_t *req = rig.client;
    zmsg_t *reply = s_call (req, "x");
    zk_envelope_t *envelope = s_assert_error (reply, 0, "killed by signal 9", "");
    zk_envelope_destroy (&envelope);
    zmsg_destroy (&reply);
    s_rig_stop (&rig);
}

Test (zk_worker, a_missing_command_is_an_error_reply, .timeout = 30)
{
    char *argv[] = {"zk-no-such-command-here", NULL};
    zk_worker_config_t config = {.argv = argv};
    s_rig_t rig = {0};
    s_rig_start (&rig, "rep", ZMQ_REQ, &config);
    zsock_t *req = rig.client;
    zmsg_t *reply = s_call (req, "x");
    zk_envelope_t *envelope = s_assert_error (reply, 0, "cannot run zk-no-such-command-here", "");
    zk_envelope_destroy (&envelope);
    zmsg_destroy (&reply);
    s_rig_stop (&rig);
}

//  The command (prelude, then a background child it waits for) hangs: at
//  the timeout the requester gets an error with the stdout so far, and the
//  whole process group is gone.
static void
s_timeout_case (const char *prelude, const char *output)
{
    char *dir = tu_tmpdir ();
    char *script =
        zsys_sprintf ("%s sleep 30 & echo $! > \"$0/p\"; mv \"$0/p\" \"$0/pid\"; wait", prelude);
    char *argv[] = {"sh", "-c", script, dir, NULL};
    zk_worker_config_t config = {.argv = argv, .timeout_ms = 1000};
    s_rig_t rig = {.dir = dir};
    s_rig_start (&rig, "rep", ZMQ_REQ, &config);
    zmsg_t *reply = s_call (rig.client, "x");
    zk_envelope_t *envelope = s_assert_error (reply, 0, "timed out after 1 s", output);
    zk_envelope_destroy (&envelope);
    zmsg_destroy (&reply);
    char *path = zsys_sprintf ("%s/pid", dir);
    pid_t sleeper = s_read_pid (path);
    cr_assert (s_process_gone (sleeper, WAIT_MS), "the command's child %d survived", (int) sleeper);
    zk_worker_stats_t stats = s_stats (rig.worker);
    cr_assert_eq (stats.timed_out, 1);
    cr_assert_eq (stats.failed, 1);
    free (path);
    free (script);
    s_rig_stop (&rig);
}

Test (zk_worker, a_timeout_kills_the_group_and_replies, .timeout = 30)
{
    s_timeout_case ("echo partial;", "partial\n");
}

//  A command that ignores SIGTERM (and its child, which inherits that)
//  is SIGKILLed shortly after.
Test (zk_worker, a_timeout_escalates_to_sigkill, .timeout = 30)
{
    s_timeout_case ("trap '' TERM;", "");
}

//  A command that never reads its stdin, fed more than a pipe holds: the
//  worker gets EPIPE (not SIGPIPE) and answers with the command's output.
Test (zk_worker, a_command_that_ignores_stdin_still_answers, .timeout = 30)
{
    char *argv[] = {"echo", "hi", NULL};
    zk_worker_config_t config = {.argv = argv, .max_size = 8 << 20};  //  over the 1 MiB default
    s_rig_t rig = {0};
    s_rig_start (&rig, "rep", ZMQ_REQ, &config);
    zsock_t *req = rig.client;
    size_t big = 4 << 20;
    char *body = malloc (big);
    memset (body, 'z', big);
    for (int round = 0; round < 3; round++) {
        zmsg_t *msg = zmsg_new ();
        zmsg_addmem (msg, body, big);
        zmsg_send (&msg, req);
        zmsg_t *reply = s_recv (req);
        s_assert_frames (reply, 0, (const char *[]){"hi\n", NULL});
        zmsg_destroy (&reply);
    }
    free (body);
    cr_assert_eq (s_stats (rig.worker).succeeded, 3);
    s_rig_stop (&rig);
}

//  Megabytes in and out through cat: stdin and stdout are pumped together.
Test (zk_worker, a_large_message_round_trips, .timeout = 30)
{
    char *argv[] = {"cat", NULL};
    zk_worker_config_t config = {.argv = argv, .max_size = 8 << 20};  //  over the 1 MiB default
    s_rig_t rig = {0};
    s_rig_start (&rig, "rep", ZMQ_REQ, &config);
    zsock_t *req = rig.client;
    size_t big = 3 << 20;
    char *body = malloc (big);
    for (size_t i = 0; i < big; i++)
        body[i] = (char) (i * 7 + i / 1000);
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, body, big / 2);
    zmsg_addmem (msg, body + big / 2, big - big / 2);
    zmsg_send (&msg, req);
    zmsg_t *reply = s_recv (req);
    cr_assert_eq (zmsg_size (reply), 1);
    cr_assert_eq (zframe_size (zmsg_first (reply)), big);
    cr_assert_eq (memcmp (zframe_data (zmsg_first (reply)), body, big), 0);
    zmsg_destroy (&reply);
    free (body);
    s_rig_stop (&rig);
}

Test (zk_worker, output_over_max_output_fails_cleanly, .timeout = 30)
{
    char *argv[] = {"sh", "-c", "if [ \"$(cat)\" = big ]; then exec yes; fi; echo small", NULL};
    zk_worker_config_t config = {.argv = argv, .max_output = 65536};
    s_rig_t rig = {0};
    s_rig_start (&rig, "rep", ZMQ_REQ, &config);
    zsock_t *req = rig.client;
    zmsg_t *reply = s_call (req, "big");
    zk_envelope_t *envelope = s_assert_error (reply, 0, "output larger than 65536 bytes", NULL);
    zk_envelope_destroy (&envelope);
    zframe_t *output = zmsg_last (reply);
    cr_assert_eq (zframe_size (output), 65536);
    cr_assert_eq (memcmp (zframe_data (output), "y\ny\n", 4), 0);
    zmsg_destroy (&reply);
    reply = s_call (req, "other");
    s_assert_frames (reply, 0, (const char *[]){"small\n", NULL});
    zmsg_destroy (&reply);
    zk_worker_stats_t stats = s_stats (rig.worker);
    cr_assert_eq (stats.failed, 1);
    cr_assert_eq (stats.succeeded, 1);
    s_rig_stop (&rig);
}

// ---------------------------------------------------------------- one-way inputs

Test (zk_worker, pull_to_push_pipeline, .timeout = 30)
{
    char *in_endpoint = tu_inproc ("worker-pull");
    char *out_endpoint = tu_inproc ("worker-push");
    char *in = zsys_sprintf ("pull@%s", in_endpoint);
    char *out = zsys_sprintf ("push@%s", out_endpoint);
    //  A failing command on a one-way input: logged and counted, nothing sent.
    char *argv[] = {"sh", "-c", "x=$(cat); [ \"$x\" != bad ] && echo \"$x\" | tr a-z A-Z", NULL};
    zk_worker_config_t config = {.input = in, .output = out, .argv = argv};
    zk_worker_t *worker = s_start (&config);
    zsock_t *push = s_connect (ZMQ_PUSH, in_endpoint);
    zsock_t *pull = s_connect (ZMQ_PULL, out_endpoint);
    const char *words[] = {"one", "bad", "two", "three"};
    for (int i = 0; i < 4; i++)
        zstr_send (push, words[i]);
    const char *expected[] = {"ONE\n", "TWO\n", "THREE\n"};
    for (int i = 0; i < 3; i++) {
        zmsg_t *msg = s_recv (pull);
        s_assert_frames (msg, 0, (const char *[]){expected[i], NULL});
        zmsg_destroy (&msg);
    }
    zk_worker_stats_t stats = s_stats (worker);
    cr_assert_eq (stats.received, 4);
    cr_assert_eq (stats.sent, 3);
    cr_assert_eq (stats.failed, 1);
    cr_assert_eq (stats.replied, 0);
    zsock_destroy (&push);
    zsock_destroy (&pull);
    zk_worker_destroy (&worker);
    free (in);
    free (out);
    free (in_endpoint);
    free (out_endpoint);
}

//  A dealer input with --out is one-way: the routing frames are dropped,
//  stdout goes to the output.
Test (zk_worker, dealer_input_with_output_is_one_way, .timeout = 30)
{
    char *out_endpoint = tu_inproc ("worker-dealer-out");
    zsock_t *pull = s_bind (ZMQ_PULL, out_endpoint);
    char *out = zsys_sprintf ("push>%s", out_endpoint);
    char *argv[] = {"tr", "a-z", "A-Z", NULL};
    zk_worker_config_t config = {.output = out, .argv = argv};
    s_rig_t rig = {0};
    s_rig_start (&rig, "dealer", ZMQ_DEALER, &config);
    zstr_sendx (rig.client, "route", "", "body", NULL);
    zmsg_t *msg = s_recv (pull);
    s_assert_frames (msg, 0, (const char *[]){"BODY", NULL});
    zmsg_destroy (&msg);
    zk_worker_stats_t stats = s_stats (rig.worker);
    cr_assert_eq (stats.sent, 1);
    cr_assert_eq (stats.replied, 0);
    s_rig_stop (&rig);
    zsock_destroy (&pull);
    free (out);
    free (out_endpoint);
}

//  With no --out the command runs for its side effects.
Test (zk_worker, pull_without_output_runs_the_command, .timeout = 30)
{
    char *dir = tu_tmpdir ();
    char *argv[] = {"sh", "-c", "cat >> \"$0/log\"; echo >> \"$0/log\"", dir, NULL};
    zk_worker_config_t config = {.argv = argv};
    s_rig_t rig = {.dir = dir};
    s_rig_start (&rig, "pull", ZMQ_PUSH, &config);
    zsock_t *push = rig.client;
    zstr_send (push, "first");
    zstr_send (push, "second");
    char *path = zsys_sprintf ("%s/log", dir);
    cr_assert (tu_wait_contains (path, "first\nsecond\n", WAIT_MS));
    free (path);
    s_rig_stop (&rig);
}

//  A sub input takes only its topics. The test publishes on an XPUB so it
//  can wait for the subscription instead of sleeping.
Test (zk_worker, sub_input_takes_only_its_topics, .timeout = 30)
{
    char *pub_endpoint = tu_inproc ("worker-pub");
    char *out_endpoint = tu_inproc ("worker-subout");
    zsock_t *pub = s_bind (ZMQ_XPUB, pub_endpoint);
    zsock_t *pull = s_bind (ZMQ_PULL, out_endpoint);
    char *in = zsys_sprintf ("sub>%s", pub_endpoint);
    char *out = zsys_sprintf ("push>%s", out_endpoint);
    const char *topics[] = {"weather.", NULL};
    char *argv[] = {"tr", "a-z", "A-Z", NULL};
    zk_worker_config_t config = {.input = in, .output = out, .argv = argv, .subscribe = topics};
    zk_worker_t *worker = s_start (&config);
    zmsg_t *subscription = s_recv (pub);
    s_assert_frames (subscription, 0, (const char *[]){"\001weather.", NULL});
    zmsg_destroy (&subscription);
    zstr_send (pub, "sports.goal");
    zstr_send (pub, "weather.rain");
    zstr_send (pub, "weather.sun");
    zmsg_t *msg = s_recv (pull);
    s_assert_frames (msg, 0, (const char *[]){"WEATHER.RAIN", NULL});
    zmsg_destroy (&msg);
    msg = s_recv (pull);
    s_assert_frames (msg, 0, (const char *[]){"WEATHER.SUN", NULL});
    zmsg_destroy (&msg);
    //  [topic][envelope][body]: the envelope after the topic is taken out
    //  and comes first on the output; topic and body go to the command.
    zk_envelope_t *envelope = zk_envelope_new ();
    zframe_t *envelope_frame;
    cr_assert_eq (zk_envelope_encode (envelope, &envelope_frame), 0);
    zk_envelope_destroy (&envelope);
    msg = zmsg_new ();
    zmsg_addstr (msg, "weather.");
    zframe_t *copy = zframe_dup (envelope_frame);
    zmsg_append (msg, &copy);
    zmsg_addstr (msg, "fog");
    zmsg_send (&msg, pub);
    msg = s_recv (pull);
    cr_assert_eq (zmsg_size (msg), 2);
    cr_assert (zframe_eq (zmsg_first (msg), envelope_frame));
    s_assert_frame (zmsg_next (msg), "WEATHER.FOG");
    zmsg_destroy (&msg);
    zframe_destroy (&envelope_frame);
    cr_assert_eq (s_stats (worker).received, 3);
    zk_worker_destroy (&worker);
    zsock_destroy (&pub);
    zsock_destroy (&pull);
    free (in);
    free (out);
    free (pub_endpoint);
    free (out_endpoint);
}

// ---------------------------------------------------------------- lines mode

Test (zk_worker, lines_mode_answers_line_by_line, .timeout = 30)
{
    char *argv[] = {"sed", "-u", "s/^/x/", NULL};
    zk_worker_config_t config = {.argv = argv, .lines = true};
    s_rig_t rig = {0};
    s_rig_start (&rig, "router", ZMQ_DEALER, &config);
    zsock_t *dealer = rig.client;
    for (int i = 0; i < 100; i++) {
        zstr_sendm (dealer, "");
        zstr_sendf (dealer, "line %d", i);
    }
    for (int i = 0; i < 100; i++) {
        zmsg_t *reply = s_recv (dealer);
        char expected[32];
        snprintf (expected, sizeof expected, "xline %d", i);
        s_assert_frames (reply, 0, (const char *[]){"", expected, NULL});
        zmsg_destroy (&reply);
    }
    zk_worker_stats_t stats = s_stats (rig.worker);
    cr_assert_eq (stats.succeeded, 100);
    cr_assert_eq (stats.restarts, 0);
    s_rig_stop (&rig);
}

Test (zk_worker, lines_mode_restarts_a_dead_coprocess, .timeout = 30)
{
    char *argv[] = {"sh", "-c",
                    "while read -r l; do [ \"$l\" = die ] && exit 3; echo \"x$l\"; done", NULL};
    zk_worker_config_t config = {.argv = argv, .lines = true};
    s_rig_t rig = {0};
    s_rig_start (&rig, "rep", ZMQ_REQ, &config);
    zsock_t *req = rig.client;
    zmsg_t *reply = s_call (req, "a");
    s_assert_frames (reply, 0, (const char *[]){"xa", NULL});
    zmsg_destroy (&reply);
    reply = s_call (req, "die");
    zk_envelope_t *envelope = s_assert_error (reply, 0, "exit status 3", "");
    zk_envelope_destroy (&envelope);
    zmsg_destroy (&reply);
    reply = s_call (req, "b");
    s_assert_frames (reply, 0, (const char *[]){"xb", NULL});
    zmsg_destroy (&reply);
    zk_worker_stats_t stats = s_stats (rig.worker);
    cr_assert_eq (stats.restarts, 1);
    cr_assert_eq (stats.failed, 1);
    cr_assert_eq (stats.succeeded, 2);
    s_rig_stop (&rig);
}

Test (zk_worker, lines_mode_refuses_an_inner_newline, .timeout = 30)
{
    char *argv[] = {"sed", "-u", "s/^/x/", NULL};
    zk_worker_config_t config = {.argv = argv, .lines = true};
    s_rig_t rig = {0};
    s_rig_start (&rig, "rep", ZMQ_REQ, &config);
    zsock_t *req = rig.client;
    zmsg_t *reply = s_call (req, "two\nlines");
    zk_envelope_t *envelope = s_assert_error (reply, 0, "newline", "");
    zk_envelope_destroy (&envelope);
    zmsg_destroy (&reply);
    reply = s_call (req, "ends with one\n");
    s_assert_frames (reply, 0, (const char *[]){"xends with one", NULL});
    zmsg_destroy (&reply);
    zk_worker_stats_t stats = s_stats (rig.worker);
    cr_assert_eq (stats.refused, 1);
    cr_assert_eq (stats.succeeded, 1);
    s_rig_stop (&rig);
}

Test (zk_worker, lines_mode_timeout_restarts_the_coprocess, .timeout = 30)
{
    char *argv[] = {"sh", "-c",
                    "while read -r l; do [ \"$l\" = hang ] && sleep 30; echo \"x$l\"; done", NULL};
    zk_worker_config_t config = {.argv = argv, .lines = true, .timeout_ms = 200};
    s_rig_t rig = {0};
    s_rig_start (&rig, "rep", ZMQ_REQ, &config);
    zsock_t *req = rig.client;
    zmsg_t *reply = s_call (req, "hang");
    zk_envelope_t *envelope = s_assert_error (reply, 0, "timed out after 0.2 s", "");
    zk_envelope_destroy (&envelope);
    zmsg_destroy (&reply);
    reply = s_call (req, "ok");
    s_assert_frames (reply, 0, (const char *[]){"xok", NULL});
    zmsg_destroy (&reply);
    zk_worker_stats_t stats = s_stats (rig.worker);
    cr_assert_eq (stats.timed_out, 1);
    cr_assert_eq (stats.restarts, 1);
    s_rig_stop (&rig);
}

Test (zk_worker, lines_mode_with_a_missing_command_does_not_start, .timeout = 30)
{
    char *argv[] = {"zk-no-such-command-here", NULL};
    zk_worker_config_t config = {
        .input = "rep@inproc://zk-worker-never", .argv = argv, .lines = true};
    cr_assert_null (zk_worker_new (&config));
}

// ---------------------------------------------------------------- hostile input, limits

Test (zk_worker, an_oversized_message_is_refused, .timeout = 30)
{
    char *argv[] = {"cat", NULL};
    zk_worker_config_t config = {.argv = argv, .max_size = 64};
    s_rig_t rig = {0};
    s_rig_start (&rig, "rep", ZMQ_REQ, &config);
    zsock_t *req = rig.client;
    char big[200];
    memset (big, 'b', sizeof big - 1);
    big[sizeof big - 1] = 0;
    zmsg_t *reply = s_call (req, big);
    zk_envelope_t *envelope = s_assert_error (reply, 0, "too large", "");
    zk_envelope_destroy (&envelope);
    zmsg_destroy (&reply);
    reply = s_call (req, "small");
    s_assert_frames (reply, 0, (const char *[]){"small", NULL});
    zmsg_destroy (&reply);
    zk_worker_stats_t stats = s_stats (rig.worker);
    cr_assert_eq (stats.refused, 1);
    cr_assert_eq (stats.succeeded, 1);
    s_rig_stop (&rig);
}

//  An envelope frame cut short, and garbage with the envelope's magic:
//  refused with an error reply, and the worker keeps serving.
Test (zk_worker, a_malformed_envelope_is_refused, .timeout = 30)
{
    char *argv[] = {"cat", NULL};
    zk_worker_config_t config = {.argv = argv};
    s_rig_t rig = {0};
    s_rig_start (&rig, "rep", ZMQ_REQ, &config);
    zsock_t *req = rig.client;
    zk_envelope_t *envelope = zk_envelope_new ();
    zframe_t *frame;
    cr_assert_eq (zk_envelope_encode (envelope, &frame), 0);
    zk_envelope_destroy (&envelope);
    size_t cut = zframe_size (frame) - 3;
    cr_assert (zk_envelope_is_envelope (zframe_data (frame), cut));
    byte garbage[64];
    memcpy (garbage, zframe_data (frame), 8);
    memset (garbage + 8, 0xc1, sizeof garbage - 8);  //  0xc1: never used in msgpack
    const struct {
        const void *data;
        size_t size;
    } bad[] = {{zframe_data (frame), cut}, {garbage, sizeof garbage}};
    for (int i = 0; i < 2; i++) {
        zmsg_t *msg = zmsg_new ();
        zmsg_addmem (msg, bad[i].data, bad[i].size);
        zmsg_addstr (msg, "body");
        zmsg_send (&msg, req);
        zmsg_t *reply = s_recv (req);
        zk_envelope_t *error = s_assert_error (reply, 0, "malformed envelope", "");
        zk_envelope_destroy (&error);
        zmsg_destroy (&reply);
    }
    zframe_destroy (&frame);
    zmsg_t *reply = s_call (req, "still here");
    s_assert_frames (reply, 0, (const char *[]){"still here", NULL});
    zmsg_destroy (&reply);
    cr_assert_eq (s_stats (rig.worker).refused, 2);
    s_rig_stop (&rig);
}

//  A rep input only speaks to REQ-style peers: a message without the empty
//  delimiter is dropped and counted, as a REP socket would.
Test (zk_worker, rep_drops_a_message_without_delimiter, .timeout = 30)
{
    char *argv[] = {"tr", "a-z", "A-Z", NULL};
    zk_worker_config_t config = {.argv = argv};
    s_rig_t rig = {0};
    s_rig_start (&rig, "rep", ZMQ_DEALER, &config);
    zsock_t *dealer = rig.client;
    zstr_send (dealer, "no delimiter");
    zstr_sendx (dealer, "", "fine", NULL);
    zmsg_t *reply = s_recv (dealer);
    s_assert_frames (reply, 0, (const char *[]){"", "FINE", NULL});
    zmsg_destroy (&reply);
    zk_worker_stats_t stats = s_stats (rig.worker);
    cr_assert_eq (stats.received, 2);
    cr_assert_eq (stats.refused, 1);
    s_rig_stop (&rig);
}

Test (zk_worker, validate_refuses_what_cannot_work)
{
    char *argv[] = {"cat", NULL};
    char *empty[] = {NULL};
    const char *topics[] = {"a", NULL};
    struct {
        zk_worker_config_t config;
        const char *reason;
    } cases[] = {
        {{.input = NULL, .argv = argv}, "required"},
        {{.input = "push@inproc://x", .argv = argv}, "push socket cannot be an input"},
        {{.input = "pub@inproc://x", .argv = argv}, "cannot be an input"},
        {{.input = "bogus@inproc://x", .argv = argv}, "invalid socket spec"},
        {{.input = "pull@inproc://x", .output = "pull@inproc://y", .argv = argv},
         "cannot be an output"},
        {{.input = "rep@inproc://x", .output = "push@inproc://y", .argv = argv}, "--out"},
        {{.input = "pull@inproc://x", .argv = argv, .subscribe = topics}, "sub input"},
        {{.input = "pull@inproc://x", .argv = empty}, "no command"},
        {{.input = "pull@inproc://x", .argv = NULL}, "no command"},
        {{.input = "pull@inproc://x", .argv = argv, .jobs = ZK_WORKER_MAX_JOBS + 1}, "jobs"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char reason[256] = "";
        cr_assert_eq (zk_worker_validate (&cases[i].config, reason, sizeof reason), ZK_EINVAL,
                      "case %zu accepted", i);
        cr_assert_not_null (strstr (reason, cases[i].reason), "case %zu: '%s'", i, reason);
        cr_assert_null (zk_worker_new (&cases[i].config));
    }
    zk_worker_config_t good = {.input = "dealer@inproc://x",
                               .output = "pub@inproc://y",
                               .argv = argv,
                               .jobs = ZK_WORKER_MAX_JOBS};
    cr_assert_eq (zk_worker_validate (&good, NULL, 0), 0);
}

//  Destroying the worker while a command runs answers the requester,
//  kills the command and returns promptly.
Test (zk_worker, destroy_kills_running_commands, .timeout = 30)
{
    char *dir = tu_tmpdir ();
    char *argv[] = {"sh", "-c", "echo $$ > \"$0/p\"; mv \"$0/p\" \"$0/pid\"; exec sleep 30", dir,
                    NULL};
    zk_worker_config_t config = {.argv = argv};
    s_rig_t rig = {.dir = dir};
    s_rig_start (&rig, "rep", ZMQ_REQ, &config);
    zsock_t *req = rig.client;
    zstr_send (req, "x");
    char *path = zsys_sprintf ("%s/pid", dir);
    pid_t pid = s_read_pid (path);
    int64_t start = zclock_mono ();
    zk_worker_destroy (&rig.worker);
    cr_assert_lt (zclock_mono () - start, 2000);
    cr_assert (s_process_gone (pid, WAIT_MS));
    zmsg_t *reply = s_recv (req);
    zk_envelope_t *envelope = s_assert_error (reply, 0, "worker stopping", "");
    zk_envelope_destroy (&envelope);
    zmsg_destroy (&reply);
    free (path);
    s_rig_stop (&rig);
}
