/*  zk_worker_cache — the worker's reply cache: a request id answered once
    is answered again from the cache, a duplicate of a running request
    waits for its run, errors are not kept, the bounds on entries, bytes
    and age, and what is never cached. COMMAND appends its stdin to a
    count file, so the file's lines are its runs.                        */

#include "testutil.h"

#define WAIT_MS 10000

TestSuite (zk_worker_cache, .timeout = 60);

//  A worker on a router input (bound to a fresh inproc endpoint) and a
//  DEALER client that sends REQID "" ENVELOPE BODY, as a reliable client.
typedef struct {
    char *dir;
    char *count;  //  dir/count: the command appends to it
    char *flag;   //  dir/flag: blocking commands wait for it
    char *endpoint;
    char *input;
    zk_worker_t *worker;
    zsock_t *client;
} s_rig_t;

static void
s_rig_init (s_rig_t *rig)
{
    rig->dir = tu_tmpdir ();
    rig->count = zsys_sprintf ("%s/count", rig->dir);
    rig->flag = zsys_sprintf ("%s/flag", rig->dir);
    rig->endpoint = tu_inproc ("cache");
}

static void
s_rig_start (s_rig_t *rig, const char *type, zk_worker_config_t *config)
{
    rig->input = zsys_sprintf ("%s@%s", type, rig->endpoint);
    config->input = rig->input;
    rig->worker = zk_worker_new (config);
    cr_assert_not_null (rig->worker, "the worker did not start");
    rig->client = tu_connect (streq (type, "pull") ? ZMQ_PUSH : ZMQ_DEALER, rig->endpoint);
    cr_assert_not_null (rig->client);
}

static void
s_rig_stop (s_rig_t *rig)
{
    zsock_destroy (&rig->client);
    zk_worker_destroy (&rig->worker);
    tu_rmdir (rig->dir);
    free (rig->dir);
    free (rig->count);
    free (rig->flag);
    free (rig->endpoint);
    free (rig->input);
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

//  Send REQID "" [ENVELOPE with id REQID] BODY (no envelope when bare).
static void
s_send (zsock_t *sock, const uint8_t *reqid, bool bare, const char *body)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, reqid, ZK_ID_SIZE);
    zmsg_addstr (msg, "");
    if (!bare) {
        zframe_t *envelope = s_envelope (reqid);
        zmsg_append (msg, &envelope);
    }
    zmsg_addstr (msg, body);
    cr_assert_eq (zmsg_send (&msg, sock), 0);
}

//  The next reply: REQID "" then the rest, returned (caller owns).
static zmsg_t *
s_reply (zsock_t *sock, const uint8_t *reqid)
{
    zmsg_t *reply = tu_recv (sock, WAIT_MS);
    cr_assert_not_null (reply, "no reply within %d ms", WAIT_MS);
    zframe_t *frame = zmsg_pop (reply);
    cr_assert (zframe_size (frame) == ZK_ID_SIZE
                   && memcmp (zframe_data (frame), reqid, ZK_ID_SIZE) == 0,
               "the reply is not for this request id");
    zframe_destroy (&frame);
    frame = zmsg_pop (reply);
    cr_assert_eq (zframe_size (frame), 0);
    zframe_destroy (&frame);
    return reply;
}

//  The reply's last frame is text.
static void
s_expect (zsock_t *sock, const uint8_t *reqid, const char *text)
{
    zmsg_t *rest = s_reply (sock, reqid);
    zframe_t *last = zmsg_last (rest);
    cr_assert (zframe_size (last) == strlen (text)
                   && memcmp (zframe_data (last), text, strlen (text)) == 0,
               "reply '%.*s', expected '%s'", (int) zframe_size (last), (char *) zframe_data (last),
               text);
    zmsg_destroy (&rest);
}

//  The reply is an error whose zk-error contains reason; its zk-retry.
static bool
s_expect_error (zsock_t *sock, const uint8_t *reqid, const char *reason)
{
    zmsg_t *rest = s_reply (sock, reqid);
    cr_assert_eq (zmsg_size (rest), 2);
    zframe_t *frame = zmsg_first (rest);
    zk_envelope_t *envelope = NULL;
    cr_assert_eq (zk_envelope_decode (zframe_data (frame), zframe_size (frame), &envelope), 0);
    cr_assert_str_eq (zk_envelope_header (envelope, "zk-status"), "error");
    const char *error = zk_envelope_header (envelope, "zk-error");
    cr_assert (error && strstr (error, reason), "zk-error '%s', expected '%s'", error, reason);
    const char *retry = zk_envelope_header (envelope, "zk-retry");
    bool retryable = retry && streq (retry, "1");
    zk_envelope_destroy (&envelope);
    zmsg_destroy (&rest);
    return retryable;
}

//  Lines in the count file: the runs of COMMAND.
static int
s_runs (s_rig_t *rig)
{
    char *text = tu_slurp (rig->count);
    int lines = 0;
    for (char *cursor = text; cursor && *cursor; cursor++)
        lines += *cursor == '\n';
    free (text);
    return lines;
}

static zk_worker_stats_t
s_stats (zk_worker_t *worker)
{
    zk_worker_stats_t stats;
    cr_assert_eq (zk_worker_stats (worker, &stats), 0);
    return stats;
}

//  Wait until the counter at offset in the stats reaches value.
static void
s_wait_stat (zk_worker_t *worker, size_t offset, uint64_t value)
{
    int64_t deadline = zclock_mono () + WAIT_MS;
    uint64_t current = 0;
    while (zclock_mono () < deadline) {
        zk_worker_stats_t stats = s_stats (worker);
        memcpy (&current, (char *) &stats + offset, sizeof current);
        if (current >= value)
            return;
        zmq_poll (NULL, 0, 10);  //  poll the stats until the deadline
    }
    cr_assert_fail ("counter at %zu is %" PRIu64 ", expected %" PRIu64, offset, current, value);
}

static void
s_touch (const char *path)
{
    FILE *file = fopen (path, "w");
    cr_assert_not_null (file);
    fclose (file);
}

//  Appends stdin to $0 and prints it back (tee).
#define TEE "tee -a \"$0\""

//  A worker on a type input running sh -c script COUNT, with config
//  (argv and input set here).
static void
s_script_start (s_rig_t *rig, const char *type, const char *script, zk_worker_config_t *config)
{
    s_rig_init (rig);
    char *argv[] = {"sh", "-c", (char *) script, rig->count, NULL};
    config->argv = argv;
    s_rig_start (rig, type, config);
    config->argv = NULL;
}

/*  A router worker with two slots and a cache of 10 whose command waits
    for the flag file, then tees. Two slots: the input is read while one
    runs (with every slot busy, duplicates would wait in the input queue
    and then be cache hits).                                             */
static void
s_blocking_start (s_rig_t *rig)
{
    s_rig_init (rig);
    char *argv[] = {
        "sh",      "-c",       "while [ ! -e \"$0\" ]; do sleep 0.02; done; tee -a \"$1\"",
        rig->flag, rig->count, NULL};
    zk_worker_config_t config = {.argv = argv, .jobs = 2, .reply_cache = 10};
    s_rig_start (rig, "router", &config);
}

// ---------------------------------------------------------------- tests

Test (zk_worker_cache, the_same_id_twice_runs_once)
{
    s_rig_t rig = {0};
    zk_worker_config_t config = {.reply_cache = 10};
    s_script_start (&rig, "router", TEE, &config);
    uint8_t reqid[ZK_ID_SIZE];
    zk_id_generate (reqid);
    s_send (rig.client, reqid, false, "first\n");
    s_expect (rig.client, reqid, "first\n");
    //  A retry (same id) is answered with the first reply, even if its body differs.
    s_send (rig.client, reqid, false, "second\n");
    s_expect (rig.client, reqid, "first\n");
    cr_assert_eq (s_runs (&rig), 1);
    //  Another id runs.
    uint8_t other[ZK_ID_SIZE];
    zk_id_generate (other);
    s_send (rig.client, other, false, "other\n");
    s_expect (rig.client, other, "other\n");
    cr_assert_eq (s_runs (&rig), 2);
    zk_worker_stats_t stats = s_stats (rig.worker);
    cr_assert_eq (stats.cache_hits, 1);
    cr_assert_eq (stats.succeeded, 2);
    cr_assert_eq (stats.replied, 3);
    s_rig_stop (&rig);
}

Test (zk_worker_cache, a_duplicate_while_running_joins_and_both_get_the_reply)
{
    s_rig_t rig = {0};
    s_blocking_start (&rig);
    zsock_t *second = tu_connect (ZMQ_DEALER, rig.endpoint);
    cr_assert_not_null (second);
    uint8_t reqid[ZK_ID_SIZE];
    zk_id_generate (reqid);
    s_send (rig.client, reqid, false, "once\n");
    s_wait_stat (rig.worker, offsetof (zk_worker_stats_t, running), 1);
    s_send (second, reqid, false, "once\n");
    s_wait_stat (rig.worker, offsetof (zk_worker_stats_t, joined), 1);
    s_touch (rig.flag);
    s_expect (rig.client, reqid, "once\n");
    s_expect (second, reqid, "once\n");
    cr_assert_eq (s_runs (&rig), 1);
    zk_worker_stats_t stats = s_stats (rig.worker);
    cr_assert_eq (stats.joined, 1);
    cr_assert_eq (stats.succeeded, 1);
    cr_assert_eq (stats.replied, 2);
    zsock_destroy (&second);
    s_rig_stop (&rig);
}

Test (zk_worker_cache, at_most_eight_wait_for_one_run_the_next_is_told_to_retry)
{
    s_rig_t rig = {0};
    s_blocking_start (&rig);
    uint8_t reqid[ZK_ID_SIZE];
    zk_id_generate (reqid);
    for (int index = 0; index < 8; index++)
        s_send (rig.client, reqid, false, "x\n");
    s_wait_stat (rig.worker, offsetof (zk_worker_stats_t, joined), 7);
    s_send (rig.client, reqid, false, "x\n");
    cr_assert (s_expect_error (rig.client, reqid, "too many duplicates"),
               "the refusal must say zk-retry=1");
    s_touch (rig.flag);
    for (int index = 0; index < 8; index++)
        s_expect (rig.client, reqid, "x\n");
    cr_assert_eq (s_runs (&rig), 1);
    cr_assert_eq (s_stats (rig.worker).refused, 1);
    s_rig_stop (&rig);
}

Test (zk_worker_cache, error_replies_are_not_cached)
{
    s_rig_t rig = {0};
    zk_worker_config_t config = {.reply_cache = 10};
    s_script_start (&rig, "router", "cat >> \"$0\"; exit 3", &config);
    uint8_t reqid[ZK_ID_SIZE];
    zk_id_generate (reqid);
    for (int attempt = 1; attempt <= 2; attempt++) {
        s_send (rig.client, reqid, false, "fails\n");
        cr_assert_not (s_expect_error (rig.client, reqid, "exit status 3"),
                       "a failed command is final: no zk-retry");
        cr_assert_eq (s_runs (&rig), attempt);
    }
    cr_assert_eq (s_stats (rig.worker).cache_hits, 0);
    s_rig_stop (&rig);
}

Test (zk_worker_cache, the_entry_bound_evicts_the_oldest)
{
    s_rig_t rig = {0};
    zk_worker_config_t config = {.reply_cache = 2};
    s_script_start (&rig, "router", TEE, &config);
    uint8_t ids[3][ZK_ID_SIZE];
    const char *bodies[] = {"a\n", "b\n", "c\n"};
    for (int index = 0; index < 3; index++) {
        zk_id_generate (ids[index]);
        s_send (rig.client, ids[index], false, bodies[index]);
        s_expect (rig.client, ids[index], bodies[index]);
    }
    cr_assert_eq (s_runs (&rig), 3);
    //  c is kept; a, the oldest, was evicted and runs again.
    s_send (rig.client, ids[2], false, "c\n");
    s_expect (rig.client, ids[2], "c\n");
    cr_assert_eq (s_runs (&rig), 3);
    s_send (rig.client, ids[0], false, "a\n");
    s_expect (rig.client, ids[0], "a\n");
    cr_assert_eq (s_runs (&rig), 4);
    cr_assert_eq (s_stats (rig.worker).cache_hits, 1);
    s_rig_stop (&rig);
}

Test (zk_worker_cache, the_byte_bound_evicts_and_a_reply_too_big_is_not_kept)
{
    s_rig_t rig = {0};
    //  Two replies of ~450 bytes (400 of stdout and the envelope) fit, three do not.
    zk_worker_config_t config = {.reply_cache = 100, .reply_cache_bytes = 1000};
    s_script_start (&rig, "router", TEE, &config);
    char bodies[3][401];
    uint8_t ids[3][ZK_ID_SIZE];
    for (int index = 0; index < 3; index++) {
        memset (bodies[index], 'a' + index, 399);
        bodies[index][399] = '\n';
        bodies[index][400] = 0;
        zk_id_generate (ids[index]);
        s_send (rig.client, ids[index], false, bodies[index]);
        s_expect (rig.client, ids[index], bodies[index]);
    }
    cr_assert_eq (s_runs (&rig), 3);
    s_send (rig.client, ids[2], false, bodies[2]);  //  kept
    s_expect (rig.client, ids[2], bodies[2]);
    s_send (rig.client, ids[0], false, bodies[0]);  //  evicted: runs again
    s_expect (rig.client, ids[0], bodies[0]);
    cr_assert_eq (s_runs (&rig), 4);

    //  A reply bigger than the whole bound is never kept.
    char big[1201];
    memset (big, 'z', 1199);
    big[1199] = '\n';
    big[1200] = 0;
    uint8_t big_id[ZK_ID_SIZE];
    zk_id_generate (big_id);
    for (int attempt = 1; attempt <= 2; attempt++) {
        s_send (rig.client, big_id, false, big);
        s_expect (rig.client, big_id, big);
        cr_assert_eq (s_runs (&rig), 4 + attempt);
    }
    cr_assert_eq (s_stats (rig.worker).cache_hits, 1);
    s_rig_stop (&rig);
}

Test (zk_worker_cache, the_ttl_forgets_a_reply)
{
    s_rig_t rig = {0};
    zk_worker_config_t config = {.reply_cache = 10, .reply_ttl_ms = 50};
    s_script_start (&rig, "router", TEE, &config);
    uint8_t reqid[ZK_ID_SIZE];
    zk_id_generate (reqid);
    s_send (rig.client, reqid, false, "t\n");
    s_expect (rig.client, reqid, "t\n");
    int64_t answered = zclock_mono ();
    while (zclock_mono () - answered < 150)
        zmq_poll (NULL, 0, 10);  //  poll until the ttl has passed
    s_send (rig.client, reqid, false, "t\n");
    s_expect (rig.client, reqid, "t\n");
    cr_assert_eq (s_runs (&rig), 2, "an expired reply was used");
    cr_assert_eq (s_stats (rig.worker).cache_hits, 0);
    s_rig_stop (&rig);
}

Test (zk_worker_cache, requests_without_an_envelope_are_never_cached)
{
    s_rig_t rig = {0};
    zk_worker_config_t config = {.reply_cache = 10};
    s_script_start (&rig, "router", TEE, &config);
    uint8_t reqid[ZK_ID_SIZE];
    zk_id_generate (reqid);
    for (int attempt = 1; attempt <= 2; attempt++) {
        s_send (rig.client, reqid, true, "bare\n");
        s_expect (rig.client, reqid, "bare\n");
        cr_assert_eq (s_runs (&rig), attempt);
    }
    cr_assert_eq (s_stats (rig.worker).cache_hits, 0);
    s_rig_stop (&rig);
}

Test (zk_worker_cache, one_way_inputs_and_a_cache_of_zero_run_every_time)
{
    //  A pull input never replies: the same envelope id runs each time.
    s_rig_t rig = {0};
    zk_worker_config_t config = {.reply_cache = 10};
    s_script_start (&rig, "pull", "cat >> \"$0\"", &config);
    uint8_t reqid[ZK_ID_SIZE];
    zk_id_generate (reqid);
    for (int attempt = 0; attempt < 2; attempt++) {
        zmsg_t *msg = zmsg_new ();
        zframe_t *envelope = s_envelope (reqid);
        zmsg_append (msg, &envelope);
        zmsg_addstr (msg, "push\n");
        cr_assert_eq (zmsg_send (&msg, rig.client), 0);
    }
    s_wait_stat (rig.worker, offsetof (zk_worker_stats_t, succeeded), 2);
    cr_assert_eq (s_runs (&rig), 2);
    cr_assert_eq (s_stats (rig.worker).cache_hits, 0);
    s_rig_stop (&rig);

    //  reply_cache 0: no cache on a router input.
    s_rig_t off = {0};
    zk_worker_config_t off_config = {};
    s_script_start (&off, "router", TEE, &off_config);
    for (int attempt = 1; attempt <= 2; attempt++) {
        s_send (off.client, reqid, false, "again\n");
        s_expect (off.client, reqid, "again\n");
        cr_assert_eq (s_runs (&off), attempt);
    }
    s_rig_stop (&off);
}
