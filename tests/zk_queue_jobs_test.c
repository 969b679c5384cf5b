/*  zk_queue_jobs — async jobs and check-pointed workflows on the queue
    server, driven from outside the library with raw DEALER sockets
    (tests/zkq_wire.h): GET's consumer name, FWD (ack + put under the same
    MSGID, atomic across a crash), TRACE (a job's path), results that
    survive a restart and go after --result-ttl.                         */

#include "zkq_wire.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

//  A message number's MSGID frame equals id-NUMBER.
static void
s_check_id_frame (zmsg_t *msg, size_t index, unsigned number)
{
    uint8_t id[16];
    tq_id (id, number);
    zframe_t *frame = zmsg_first (msg);
    for (size_t at = 0; frame && at < index; at++)
        frame = zmsg_next (msg);
    cr_assert_not_null (frame);
    cr_assert_eq (zframe_size (frame), 16);
    cr_assert (memcmp (zframe_data (frame), id, 16) == 0);
}

//  Take message number from queue as consumer (window 1) on sock.
static void
s_take (zsock_t *sock, const char *queue, unsigned number, const char *consumer,
        const char *attempt)
{
    if (consumer)
        tq_get_as (sock, queue, "1", consumer);
    else
        tq_get (sock, queue, "1");
    zmsg_t *msg = tq_expect_delivery (sock);
    tq_check_delivery (msg, queue, number, attempt, NULL);
    zmsg_destroy (&msg);
    //  No more for now: the next step takes over.
    tq_get (sock, queue, "0");
}

/*  Job 7 through step1 → step2 → step3, each step a worker of its own
    (w1, w2, w3) that forwards (or, last, acks with "the result").      */
static void
s_three_steps (const char *endpoint)
{
    zsock_t *producer = tq_connect (endpoint);
    zsock_t *workers[3] = {tq_connect (endpoint), tq_connect (endpoint), tq_connect (endpoint)};
    tq_put (producer, "step1", 7, "job");
    s_take (workers[0], "step1", 7, "w1", "1");
    tq_fwd (workers[0], "step1", 7, "step2", "after step1");
    s_take (workers[1], "step2", 7, "w2", "1");
    tq_fwd (workers[1], "step2", 7, "step3", "after step2");
    s_take (workers[2], "step3", 7, "w3", "1");
    tq_ack (workers[2], "step3", 7, "the result");
    for (int index = 0; index < 3; index++)
        zsock_destroy (&workers[index]);
    zsock_destroy (&producer);
}

//  The path of s_three_steps, as TRACE gives it from any of its queues.
static void
s_check_three_steps (const tq_step_t *steps, size_t count)
{
    cr_assert_eq (count, 3);
    const char *queues[3] = {"step1", "step2", "step3"};
    const char *consumers[3] = {"w1", "w2", "w3"};
    for (size_t index = 0; index < 3; index++) {
        const tq_step_t *step = &steps[index];
        cr_assert_str_eq (step->queue, queues[index]);
        cr_assert_str_eq (step->state, "done");
        cr_assert_eq (step->attempts, 1);
        cr_assert_str_eq (step->consumer, consumers[index]);
        cr_assert_gt (step->accepted, 1600000000000000LL);
        cr_assert_leq (step->accepted, step->started, "step %zu", index);
        cr_assert_leq (step->started, step->finished, "step %zu", index);
        //  A forward finishes one step when it accepts the next.
        if (index)
            cr_assert_eq (steps[index - 1].finished, step->accepted);
    }
}

//  Cut the last record off the newest segment of dir/queue: what a crash
//  in the middle of that write (or before its fdatasync) leaves.
static void
s_tear_last_record (const char *dir, const char *queue)
{
    char path[600], newest[64] = "";
    snprintf (path, sizeof path, "%s/%s", dir, queue);
    DIR *handle = opendir (path);
    cr_assert_not_null (handle, "%s", path);
    struct dirent *item;
    while ((item = readdir (handle)))
        if (strlen (item->d_name) == 24 && strstr (item->d_name, ".seg")
            && strcmp (item->d_name, newest) > 0)
            snprintf (newest, sizeof newest, "%s", item->d_name);
    closedir (handle);
    cr_assert (newest[0], "no segment in %s", path);
    char file[700];
    snprintf (file, sizeof file, "%s/%s", path, newest);
    int fd = open (file, O_RDWR);
    cr_assert_geq (fd, 0);
    struct stat info;
    cr_assert_eq (fstat (fd, &info), 0);
    uint8_t *bytes = malloc ((size_t) info.st_size + 1);
    cr_assert_eq (read (fd, bytes, (size_t) info.st_size), info.st_size);
    //  Records: a 28-byte header (length at offset 4, little-endian), then the payload.
    off_t offset = 0, last = -1;
    while (offset + 28 <= info.st_size) {
        uint32_t length = (uint32_t) bytes[offset + 4] | (uint32_t) bytes[offset + 5] << 8
                          | (uint32_t) bytes[offset + 6] << 16 | (uint32_t) bytes[offset + 7] << 24;
        last = offset;
        offset += 28 + (off_t) length;
    }
    cr_assert_geq (last, 0, "no record in %s", file);
    cr_assert_eq (ftruncate (fd, last), 0);
    free (bytes);
    close (fd);
}

// ---------------------------------------------------------------- FWD

Test (zk_queue_jobs, fwd_acks_and_puts_under_the_same_msgid, .timeout = 30)
{
    tq_fixture_t fixture;
    tq_start (&fixture, NULL);
    zsock_t *producer = tq_client (&fixture);
    zsock_t *worker = tq_client (&fixture);
    tq_inbox_clear ();
    tq_put (producer, "resize", 1, "input");
    s_take (worker, "resize", 1, "resizer:100", "1");
    uint8_t id[16];
    tq_id (id, 1);
    const char *body[2] = {"part one", "part two"};
    tq_send_fwd (worker, "fwd", "resize", id, "thumbs", 2, body);
    tq_expect_ok (worker, "fwd");

    //  Done where it was (no result), queued where it went.
    zmsg_t *status = tq_status (producer, "resize", 1);
    cr_assert (tq_frame_eq (status, 3, "done"));
    cr_assert (tq_frame_eq (status, 4, "1"));
    cr_assert_eq (zmsg_size (status), 6);
    zmsg_destroy (&status);
    tq_expect_state (producer, "thumbs", 1, "queued", "0");
    cr_assert_eq (tq_stat (producer, "resize", "forwarded"), 1);
    cr_assert_eq (tq_stat (producer, "resize", "acked"), 0);
    cr_assert_eq (tq_stat (producer, "resize", "queued"), 0);
    cr_assert_eq (tq_stat (producer, "thumbs", "put"), 1);
    cr_assert_eq (tq_stat (producer, "thumbs", "queued"), 1);
    zk_queue_stats_t stats;
    cr_assert_eq (zk_queue_stats (fixture.server, &stats), 0);
    cr_assert_eq (stats.forwarded, 1);
    cr_assert_eq (stats.put, 2);

    //  The next step gets it: same MSGID, the body as forwarded, attempt 1.
    zsock_t *next = tq_client (&fixture);
    tq_get_as (next, "thumbs", "1", "thumbnailer");
    zmsg_t *msg = tq_expect_delivery (next);
    cr_assert_eq (zmsg_size (msg), 8);
    tq_check_delivery (msg, "thumbs", 1, "1", "part one");
    s_check_id_frame (msg, 4, 1);
    cr_assert (tq_frame_eq (msg, 7, "part two"));
    zmsg_destroy (&msg);
    tq_ack (next, "thumbs", 1, "small.png");
    tq_expect_state (producer, "thumbs", 1, "done", "1");
    tq_inbox_clear ();
    zsock_destroy (&producer);
    zsock_destroy (&worker);
    zsock_destroy (&next);
    tq_cleanup (&fixture);
}

static void
s_fsync_always (zk_queue_config_t *config)
{
    config->fsync = ZK_QUEUE_FSYNC_ALWAYS;
}

static void
s_fsync_never (zk_queue_config_t *config)
{
    config->fsync = ZK_QUEUE_FSYNC_NEVER;
}

Test (zk_queue_jobs, fwd_works_under_every_fsync_policy, .timeout = 60)
{
    void (*tweaks[3]) (zk_queue_config_t *) = {NULL, s_fsync_always, s_fsync_never};
    for (int policy = 0; policy < 3; policy++) {
        tq_fixture_t fixture;
        tq_start (&fixture, tweaks[policy]);
        s_three_steps (fixture.endpoint);
        zsock_t *client = tq_client (&fixture);
        tq_inbox_clear ();
        tq_step_t steps[ZK_QUEUE_TRACE_MAX];
        s_check_three_steps (steps, tq_trace (client, "step2", 7, steps, ZK_QUEUE_TRACE_MAX));
        zsock_destroy (&client);
        tq_cleanup (&fixture);
    }
}

Test (zk_queue_jobs, fwd_of_a_message_not_held_is_404, .timeout = 30)
{
    tq_fixture_t fixture;
    tq_start (&fixture, NULL);
    zsock_t *holder = tq_client (&fixture);
    zsock_t *other = tq_client (&fixture);
    tq_inbox_clear ();
    const char *body = "next";
    uint8_t id[16];

    //  Unknown id; a queue that does not exist (and is not created, nor is TO).
    tq_put (holder, "jobs", 1, "one");
    tq_id (id, 99);
    tq_send_fwd (other, "unknown", "jobs", id, "next", 1, &body);
    tq_expect_err (other, "unknown", "404");
    tq_id (id, 1);
    tq_send_fwd (other, "no-queue", "nosuch", id, "nosuch-next", 1, &body);
    tq_expect_err (other, "no-queue", "404");
    //  Queued, not delivered.
    tq_send_fwd (other, "queued", "jobs", id, "next", 1, &body);
    tq_expect_err (other, "queued", "404");
    zk_queue_stats_t stats;
    cr_assert_eq (zk_queue_stats (fixture.server, &stats), 0);
    cr_assert_eq (stats.queues, 1);

    //  Held by another client: 404, and the holder's lease is untouched.
    s_take (holder, "jobs", 1, "holder", "1");
    tq_send_fwd (other, "elsewhere", "jobs", id, "next", 1, &body);
    tq_expect_err (other, "elsewhere", "404");
    tq_expect_state (other, "jobs", 1, "running", "1");
    tq_fwd (holder, "jobs", 1, "next", "next");
    //  Held no more: a second FWD, or an ACK, is a 404.
    tq_send_fwd (holder, "again", "jobs", id, "next", 1, &body);
    tq_expect_err (holder, "again", "404");
    tq_send_id (holder, "ACK", "ack", "jobs", id, NULL, NULL);
    tq_expect_err (holder, "ack", "404");
    cr_assert_eq (tq_stat (holder, "next", "queued"), 1);
    cr_assert_eq (tq_stat (holder, "jobs", "forwarded"), 1);
    tq_inbox_clear ();
    zsock_destroy (&holder);
    zsock_destroy (&other);
    tq_cleanup (&fixture);
}

Test (zk_queue_jobs, fwd_to_an_invalid_or_the_same_queue_is_400, .timeout = 30)
{
    tq_fixture_t fixture;
    tq_start (&fixture, NULL);
    zsock_t *client = tq_client (&fixture);
    tq_inbox_clear ();
    tq_put (client, "jobs", 1, "one");
    s_take (client, "jobs", 1, NULL, "1");
    uint8_t id[16];
    tq_id (id, 1);
    const char *body = "next";
    char long_name[ZK_QUEUE_NAME_MAX + 2];
    memset (long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    const char *targets[] = {"jobs", ".hidden", "a/b", "has space", "x..y", "", long_name};
    for (size_t index = 0; index < sizeof targets / sizeof targets[0]; index++) {
        char tag[16];
        snprintf (tag, sizeof tag, "bad-%zu", index);
        tq_send_fwd (client, tag, "jobs", id, targets[index], 1, &body);
        tq_expect_err (client, tag, "400");
    }
    //  Nothing happened: the message is still held, and no queue was made.
    tq_expect_state (client, "jobs", 1, "running", "1");
    zk_queue_stats_t stats;
    cr_assert_eq (zk_queue_stats (fixture.server, &stats), 0);
    cr_assert_eq (stats.queues, 1);
    tq_ack (client, "jobs", 1, NULL);
    tq_inbox_clear ();
    zsock_destroy (&client);
    tq_cleanup (&fixture);
}

Test (zk_queue_jobs, fwd_into_a_queue_that_has_the_msgid_stores_once, .timeout = 30)
{
    tq_fixture_t fixture;
    tq_start (&fixture, NULL);
    zsock_t *client = tq_client (&fixture);
    tq_inbox_clear ();

    //  TO holds it (queued): not stored again, the ack still happens.
    tq_put (client, "thumbs", 5, "earlier");
    tq_put (client, "resize", 5, "input");
    s_take (client, "resize", 5, "w", "1");
    tq_fwd (client, "resize", 5, "thumbs", "later");
    tq_expect_state (client, "resize", 5, "done", "1");
    cr_assert_eq (tq_stat (client, "resize", "forwarded"), 1);
    cr_assert_eq (tq_stat (client, "thumbs", "put"), 1);
    cr_assert_eq (tq_stat (client, "thumbs", "queued"), 1);
    cr_assert_eq (tq_stat (client, "thumbs", "duplicates"), 1);
    tq_get (client, "thumbs", "1");
    zmsg_t *msg = tq_expect_delivery (client);
    tq_check_delivery (msg, "thumbs", 5, "1", "earlier");
    zmsg_destroy (&msg);
    tq_ack (client, "thumbs", 5, "r");
    tq_get (client, "thumbs", "0");

    //  TO saw it within the dedup window (done there): still not stored again.
    tq_put (client, "resize2", 5, "input");
    s_take (client, "resize2", 5, "w", "1");
    tq_fwd (client, "resize2", 5, "thumbs", "again");
    tq_expect_state (client, "resize2", 5, "done", "1");
    tq_expect_state (client, "thumbs", 5, "done", "1");
    cr_assert_eq (tq_stat (client, "thumbs", "put"), 1);
    cr_assert_eq (tq_stat (client, "thumbs", "queued"), 0);

    //  And the dedup survives a restart: the forward's own record decides.
    tq_restart (&fixture, NULL);
    zsock_destroy (&client);
    client = tq_client (&fixture);
    tq_expect_state (client, "resize", 5, "done", "1");
    tq_expect_state (client, "resize2", 5, "done", "1");
    cr_assert_eq (tq_stat (client, "thumbs", "queued"), 0);
    tq_inbox_clear ();
    zsock_destroy (&client);
    tq_cleanup (&fixture);
}

// ---------------------------------------------------------------- TRACE

Test (zk_queue_jobs, trace_follows_the_path_both_ways, .timeout = 30)
{
    tq_fixture_t fixture;
    tq_start (&fixture, NULL);
    zsock_t *client = tq_client (&fixture);
    zsock_t *worker = tq_client (&fixture);
    tq_inbox_clear ();
    tq_step_t steps[ZK_QUEUE_TRACE_MAX];

    //  Unknown: OK alone, and no queue is made.
    cr_assert_eq (tq_trace (client, "nowhere", 7, steps, ZK_QUEUE_TRACE_MAX), 0);
    zk_queue_stats_t stats;
    cr_assert_eq (zk_queue_stats (fixture.server, &stats), 0);
    cr_assert_eq (stats.queues, 0);

    tq_put (client, "step1", 7, "job");
    cr_assert_eq (tq_trace (client, "step1", 7, steps, ZK_QUEUE_TRACE_MAX), 1);
    cr_assert_str_eq (steps[0].state, "queued");
    cr_assert_eq (steps[0].attempts, 0);
    cr_assert_eq (steps[0].started, 0);
    cr_assert_eq (steps[0].finished, 0);
    cr_assert_str_eq (steps[0].consumer, "-");

    //  Running: who has it, since when.
    tq_get_as (worker, "step1", "1", "w1");
    zmsg_t *msg = tq_expect_delivery (worker);
    zmsg_destroy (&msg);
    cr_assert_eq (tq_trace (client, "step1", 7, steps, ZK_QUEUE_TRACE_MAX), 1);
    cr_assert_str_eq (steps[0].state, "running");
    cr_assert_eq (steps[0].attempts, 1);
    cr_assert_geq (steps[0].started, steps[0].accepted);
    cr_assert_eq (steps[0].finished, 0);
    cr_assert_str_eq (steps[0].consumer, "w1");

    //  Forwarded: two steps from either end.
    tq_fwd (worker, "step1", 7, "step2", "half done");
    for (int from = 0; from < 2; from++) {
        cr_assert_eq (tq_trace (client, from ? "step2" : "step1", 7, steps, ZK_QUEUE_TRACE_MAX), 2);
        cr_assert_str_eq (steps[0].queue, "step1");
        cr_assert_str_eq (steps[0].state, "done");
        cr_assert_str_eq (steps[0].consumer, "w1");
        cr_assert_gt (steps[0].finished, 0);
        cr_assert_str_eq (steps[1].queue, "step2");
        cr_assert_str_eq (steps[1].state, "queued");
        cr_assert_eq (steps[1].accepted, steps[0].finished);
        cr_assert_str_eq (steps[1].consumer, "-");
    }
    //  A consumer without a name is "-".
    zsock_t *anonymous = tq_client (&fixture);
    tq_get (anonymous, "step2", "1");
    msg = tq_expect_delivery (anonymous);
    zmsg_destroy (&msg);
    cr_assert_eq (tq_trace (client, "step1", 7, steps, ZK_QUEUE_TRACE_MAX), 2);
    cr_assert_str_eq (steps[1].state, "running");
    cr_assert_str_eq (steps[1].consumer, "-");
    tq_inbox_clear ();
    zsock_destroy (&anonymous);
    zsock_destroy (&worker);
    zsock_destroy (&client);
    tq_cleanup (&fixture);
}

Test (zk_queue_jobs, trace_of_three_steps_with_consumers_and_times, .timeout = 30)
{
    tq_fixture_t fixture;
    tq_start (&fixture, NULL);
    s_three_steps (fixture.endpoint);
    zsock_t *client = tq_client (&fixture);
    tq_inbox_clear ();
    const char *queues[3] = {"step1", "step2", "step3"};
    tq_step_t first[ZK_QUEUE_TRACE_MAX], steps[ZK_QUEUE_TRACE_MAX];
    s_check_three_steps (first, tq_trace (client, "step1", 7, first, ZK_QUEUE_TRACE_MAX));
    for (int index = 1; index < 3; index++) {
        size_t count = tq_trace (client, queues[index], 7, steps, ZK_QUEUE_TRACE_MAX);
        cr_assert_eq (count, 3);
        cr_assert (memcmp (steps, first, 3 * sizeof *steps) == 0, "from %s", queues[index]);
    }
    //  The last step's result, as STATUS gives it.
    zmsg_t *status = tq_status (client, "step3", 7);
    cr_assert_eq (zmsg_size (status), 7);
    cr_assert (tq_frame_eq (status, 6, "the result"));
    zmsg_destroy (&status);
    tq_inbox_clear ();
    zsock_destroy (&client);
    tq_cleanup (&fixture);
}

Test (zk_queue_jobs, trace_and_results_are_the_same_after_a_restart, .timeout = 30)
{
    tq_fixture_t fixture;
    tq_start (&fixture, NULL);
    s_three_steps (fixture.endpoint);
    zsock_t *client = tq_client (&fixture);
    tq_inbox_clear ();
    tq_step_t before[ZK_QUEUE_TRACE_MAX], after[ZK_QUEUE_TRACE_MAX];
    s_check_three_steps (before, tq_trace (client, "step2", 7, before, ZK_QUEUE_TRACE_MAX));
    zsock_destroy (&client);

    tq_restart (&fixture, NULL);
    client = tq_client (&fixture);
    size_t count = tq_trace (client, "step2", 7, after, ZK_QUEUE_TRACE_MAX);
    cr_assert_eq (count, 3);
    for (size_t index = 0; index < 3; index++)
        cr_assert (memcmp (&before[index], &after[index], sizeof before[index]) == 0,
                   "step %zu: %s %s %u %" PRId64 " %" PRId64 " %" PRId64 " %s", index,
                   after[index].queue, after[index].state, after[index].attempts,
                   after[index].accepted, after[index].started, after[index].finished,
                   after[index].consumer);
    zmsg_t *status = tq_status (client, "step3", 7);
    cr_assert (tq_frame_eq (status, 3, "done"));
    cr_assert (tq_frame_eq (status, 6, "the result"));
    zmsg_destroy (&status);
    status = tq_status (client, "step1", 7);
    cr_assert (tq_frame_eq (status, 3, "done"));
    cr_assert_eq (zmsg_size (status), 6);
    zmsg_destroy (&status);
    tq_inbox_clear ();
    zsock_destroy (&client);
    tq_cleanup (&fixture);
}

static void
s_one_delivery (zk_queue_config_t *config)
{
    config->max_deliver = 1;
}

Test (zk_queue_jobs, trace_of_a_dead_message_names_its_last_consumer, .timeout = 30)
{
    tq_fixture_t fixture;
    tq_start (&fixture, s_one_delivery);
    zsock_t *client = tq_client (&fixture);
    tq_inbox_clear ();
    tq_put (client, "fragile", 3, "job");
    s_take (client, "fragile", 3, "breaker", "1");
    uint8_t id[16];
    tq_id (id, 3);
    tq_send_id (client, "NACK", "nack", "fragile", id, "requeue", "it broke");
    tq_expect_ok (client, "nack");
    tq_step_t steps[ZK_QUEUE_TRACE_MAX];
    cr_assert_eq (tq_trace (client, "fragile", 3, steps, ZK_QUEUE_TRACE_MAX), 1);
    cr_assert_str_eq (steps[0].state, "dead");
    cr_assert_str_eq (steps[0].consumer, "breaker");
    cr_assert_gt (steps[0].started, 0);
    cr_assert_geq (steps[0].finished, steps[0].started);
    tq_inbox_clear ();
    zsock_destroy (&client);
    tq_cleanup (&fixture);
}

// ---------------------------------------------------------------- crashes

/*  The server is SIGKILLed right after a FWD's OK, under each --fsync
    policy: after a restart the message is done in QUEUE and in TO once.  */
Test (zk_queue_jobs, crash_right_after_fwd_ok_keeps_it_forwarded_once, .timeout = 90)
{
    const char *policies[3] = {"batch", "always", "never"};
    for (int policy = 0; policy < 3; policy++) {
        char *data = tu_tmpdir ();
        tq_binary_t server = {0};
        const char *extra[] = {"--fsync", policies[policy], NULL};
        tq_binary_start (&server, data, extra);
        zsock_t *client = tq_connect (server.endpoint);
        tq_inbox_clear ();
        tq_put (client, "step1", 1, "job");
        s_take (client, "step1", 1, "w1", "1");
        tq_fwd (client, "step1", 1, "step2", "forwarded body");
        tq_binary_crash_restart (&server, data, NULL, &client);
        tq_expect_state (client, "step1", 1, "done", "1");
        cr_assert_eq (tq_stat (client, "step1", "queued"), 0, "--fsync %s", policies[policy]);
        cr_assert_eq (tq_stat (client, "step2", "queued"), 1, "--fsync %s", policies[policy]);
        tq_get (client, "step2", "10");
        zmsg_t *msg = tq_expect_delivery (client);
        tq_check_delivery (msg, "step2", 1, "1", "forwarded body");
        zmsg_destroy (&msg);
        tq_ack (client, "step2", 1, NULL);
        cr_assert_eq (tq_stat (client, "step2", "queued"), 0);
        cr_assert_eq (tq_stat (client, "step2", "leased"), 0);
        tq_step_t steps[ZK_QUEUE_TRACE_MAX];
        cr_assert_eq (tq_trace (client, "step1", 1, steps, ZK_QUEUE_TRACE_MAX), 2);
        cr_assert_str_eq (steps[0].consumer, "w1");
        tu_stop (&server.daemon.proc, SIGTERM, 5000);
        zsock_destroy (&client);
        tq_inbox_clear ();
        tq_binary_cleanup (&server);
        tu_rmdir (data);
        free (data);
    }
}

/*  The put record in TO is what decides: torn off (a crash before TO's
    fdatasync), the forward did not happen, even though QUEUE's own
    record of it made it to disk. The message is back in QUEUE, not lost,
    and not in TO; it stays so across further restarts.                 */
Test (zk_queue_jobs, torn_put_in_target_brings_the_message_back, .timeout = 30)
{
    tq_fixture_t fixture;
    tq_start (&fixture, NULL);
    zsock_t *client = tq_client (&fixture);
    tq_inbox_clear ();
    tq_put (client, "step1", 1, "job");
    s_take (client, "step1", 1, "w1", "1");
    tq_fwd (client, "step1", 1, "step2", "forwarded body");
    zsock_destroy (&client);
    tq_stop (&fixture);
    s_tear_last_record (fixture.dir, "step2");

    tq_restart (&fixture, NULL);
    client = tq_client (&fixture);
    tq_expect_state (client, "step1", 1, "queued", "1");
    tq_expect_state (client, "step2", 1, "unknown", "0");
    cr_assert_eq (tq_stat (client, "step2", "queued"), 0);
    tq_step_t steps[ZK_QUEUE_TRACE_MAX];
    cr_assert_eq (tq_trace (client, "step1", 1, steps, ZK_QUEUE_TRACE_MAX), 1);
    cr_assert_str_eq (steps[0].state, "queued");
    //  Something else lands in TO where the torn record was.
    tq_put (client, "step2", 2, "xxxxxxxxxxxxxx");
    zsock_destroy (&client);

    tq_restart (&fixture, NULL);
    client = tq_client (&fixture);
    tq_expect_state (client, "step1", 1, "queued", "1");
    tq_expect_state (client, "step2", 1, "unknown", "0");
    //  Delivered again with its own body, and forwarded for good this time.
    tq_get_as (client, "step1", "1", "w1-again");
    zmsg_t *msg = tq_expect_delivery (client);
    tq_check_delivery (msg, "step1", 1, "2", "job");
    zmsg_destroy (&msg);
    tq_fwd (client, "step1", 1, "step2", "forwarded body");
    tq_expect_state (client, "step1", 1, "done", "2");
    tq_expect_state (client, "step2", 1, "queued", "0");
    tq_inbox_clear ();
    zsock_destroy (&client);
    tq_cleanup (&fixture);
}

/*  QUEUE's record of the forward is lost (a crash before QUEUE's
    fdatasync) but TO's put record made it: the forward happened, and the
    restart completes it in QUEUE, with the same TRACE as before.        */
Test (zk_queue_jobs, lost_forward_record_is_completed_at_restart, .timeout = 30)
{
    tq_fixture_t fixture;
    tq_start (&fixture, NULL);
    zsock_t *client = tq_client (&fixture);
    tq_inbox_clear ();
    tq_put (client, "step1", 1, "job");
    s_take (client, "step1", 1, "w1", "1");
    tq_fwd (client, "step1", 1, "step2", "forwarded body");
    tq_step_t before[ZK_QUEUE_TRACE_MAX], after[ZK_QUEUE_TRACE_MAX];
    cr_assert_eq (tq_trace (client, "step2", 1, before, ZK_QUEUE_TRACE_MAX), 2);
    zsock_destroy (&client);
    tq_stop (&fixture);
    s_tear_last_record (fixture.dir, "step1");

    for (int restart = 0; restart < 2; restart++) {
        tq_restart (&fixture, NULL);
        client = tq_client (&fixture);
        tq_expect_state (client, "step1", 1, "done", "1");
        cr_assert_eq (tq_stat (client, "step1", "queued"), 0);
        cr_assert_eq (tq_stat (client, "step2", "queued"), 1);
        cr_assert_eq (tq_trace (client, "step2", 1, after, ZK_QUEUE_TRACE_MAX), 2);
        cr_assert (memcmp (before, after, 2 * sizeof *before) == 0, "restart %d", restart);
        zsock_destroy (&client);
    }
    client = tq_client (&fixture);
    tq_get (client, "step2", "10");
    zmsg_t *msg = tq_expect_delivery (client);
    tq_check_delivery (msg, "step2", 1, "1", "forwarded body");
    zmsg_destroy (&msg);
    tq_inbox_clear ();
    zsock_destroy (&client);
    tq_cleanup (&fixture);
}

// ---------------------------------------------------------------- results

static void
s_short_ttl (zk_queue_config_t *config)
{
    config->result_ttl_ms = 300;
    config->dedup_window_ms = 0;
}

static void
s_short_ttl_long_window (zk_queue_config_t *config)
{
    config->result_ttl_ms = 300;
    config->dedup_window_ms = 60000;
}

//  STATUS of message number until it has frames frames (a deadline).
static void
s_wait_status_frames (zsock_t *client, const char *queue, unsigned number, size_t frames,
                      const char *state)
{
    int64_t deadline = zclock_mono () + TQ_WAIT_MS;
    while (true) {
        zmsg_t *status = tq_status (client, queue, number);
        bool there = zmsg_size (status) == frames && tq_frame_eq (status, 3, state);
        zmsg_destroy (&status);
        if (there)
            return;
        cr_assert_lt (zclock_mono (), deadline, "STATUS never became %s with %zu frames", state,
                      frames);
        tq_barrier (client);  //  poll: a round trip per try, until the deadline
    }
}

Test (zk_queue_jobs, results_survive_a_restart_and_go_after_the_ttl, .timeout = 30)
{
    tq_fixture_t fixture;
    tq_start (&fixture, NULL);
    zsock_t *client = tq_client (&fixture);
    tq_inbox_clear ();
    tq_put (client, "jobs", 1, "job");
    s_take (client, "jobs", 1, "w", "1");
    uint8_t id[16];
    tq_id (id, 1);
    tq_send_id (client, "ACK", "ack", "jobs", id, "result line 1", "result line 2");
    tq_expect_ok (client, "ack");
    zsock_destroy (&client);
    tq_restart (&fixture, NULL);
    client = tq_client (&fixture);
    zmsg_t *status = tq_status (client, "jobs", 1);
    cr_assert (tq_frame_eq (status, 3, "done"));
    cr_assert_eq (zmsg_size (status), 8);
    cr_assert (tq_frame_eq (status, 6, "result line 1"));
    cr_assert (tq_frame_eq (status, 7, "result line 2"));
    zmsg_destroy (&status);
    zsock_destroy (&client);

    //  --result-ttl 0.3, no dedup window: the job is forgotten.
    tq_restart (&fixture, s_short_ttl);
    client = tq_client (&fixture);
    s_wait_status_frames (client, "jobs", 1, 6, "unknown");
    tq_put (client, "jobs", 2, "job");
    s_take (client, "jobs", 2, "w", "1");
    tq_ack (client, "jobs", 2, "soon gone");
    s_wait_status_frames (client, "jobs", 2, 6, "unknown");
    zsock_destroy (&client);

    //  A longer dedup window keeps the message known, but not its result.
    tq_restart (&fixture, s_short_ttl_long_window);
    client = tq_client (&fixture);
    tq_put (client, "jobs", 3, "job");
    s_take (client, "jobs", 3, "w", "1");
    tq_ack (client, "jobs", 3, "soon gone");
    s_wait_status_frames (client, "jobs", 3, 6, "done");
    tq_inbox_clear ();
    zsock_destroy (&client);
    tq_cleanup (&fixture);
}

// ---------------------------------------------------------------- hostile input

Test (zk_queue_jobs, get_with_a_bad_consumer_name_is_400, .timeout = 30)
{
    tq_fixture_t fixture;
    tq_start (&fixture, NULL);
    zsock_t *client = tq_client (&fixture);
    tq_inbox_clear ();
    char too_long[ZK_QUEUE_CONSUMER_MAX + 2], longest[ZK_QUEUE_CONSUMER_MAX + 1];
    memset (too_long, 'x', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = 0;
    memset (longest, 'y', sizeof longest - 1);
    longest[sizeof longest - 1] = 0;
    const char *bad[] = {"has space", too_long, "", "tab\there", "del\x7f", "caf\xc3\xa9", "nl\n"};
    for (size_t index = 0; index < sizeof bad / sizeof bad[0]; index++) {
        char tag[16];
        snprintf (tag, sizeof tag, "bad-%zu", index);
        tq_send (client, "GET", tag, "jobs", "5", bad[index], NULL);
        tq_expect_err (client, tag, "400");
    }
    tq_send (client, "GET", "four", "jobs", "5", "name", "extra", NULL);
    tq_expect_err (client, "four", "400");
    //  None of them took a window.
    cr_assert_eq (tq_stat (client, "jobs", "consumers"), 0);
    tq_get_as (client, "jobs", "5", longest);
    tq_get_as (client, "jobs", "5", "host-1:4242");
    cr_assert_eq (tq_stat (client, "jobs", "consumers"), 1);
    tq_inbox_clear ();
    zsock_destroy (&client);
    tq_cleanup (&fixture);
}

static void
s_small_messages (zk_queue_config_t *config)
{
    config->max_size = 1000;
}

Test (zk_queue_jobs, hostile_fwd_and_trace_frames_get_errors, .timeout = 30)
{
    tq_fixture_t fixture;
    tq_start (&fixture, s_small_messages);
    zsock_t *client = tq_client (&fixture);
    tq_inbox_clear ();
    tq_put (client, "jobs", 1, "job");
    s_take (client, "jobs", 1, "w", "1");
    uint8_t id[16];
    tq_id (id, 1);
    uint8_t id17[17] = {0};
    memcpy (id17, id, 16);

    //  Missing frames: no body, no TO.
    tq_send_fwd (client, "no-body", "jobs", id, "next", 0, NULL);
    tq_expect_err (client, "no-body", "400");
    tq_send_id (client, "FWD", "no-to", "jobs", id, NULL, NULL);
    tq_expect_err (client, "no-to", "400");
    tq_send (client, "FWD", "nothing", NULL);
    tq_expect_err (client, "nothing", "400");
    //  MSGID of 17 and 15 bytes.
    const void *data[4] = {"jobs", id17, "next", "body"};
    size_t sizes[4] = {4, 17, 4, 4};
    tq_sendv (client, "FWD", "id17", 4, data, sizes);
    tq_expect_err (client, "id17", "400");
    sizes[1] = 15;
    tq_sendv (client, "FWD", "id15", 4, data, sizes);
    tq_expect_err (client, "id15", "400");
    //  65 body frames; a body over --max-size; too many frames in all.
    const char *frames[80];
    for (int index = 0; index < 80; index++)
        frames[index] = "f";
    tq_send_fwd (client, "frames65", "jobs", id, "next", 65, frames);
    tq_expect_err (client, "frames65", "413");
    char big[1002];
    memset (big, 'b', 1001);
    big[1001] = 0;
    const char *big_body = big;
    tq_send_fwd (client, "big", "jobs", id, "next", 1, &big_body);
    tq_expect_err (client, "big", "413");
    tq_send_fwd (client, "frames80", "jobs", id, "next", 80, frames);
    tq_expect_err (client, "frames80", "413");
    //  A bad QUEUE name.
    tq_send_fwd (client, "bad-queue", "../jobs", id, "next", 1, frames);
    tq_expect_err (client, "bad-queue", "400");

    //  TRACE: missing or extra frames, a bad MSGID, a bad name.
    tq_send (client, "TRACE", "t-missing", "jobs", NULL);
    tq_expect_err (client, "t-missing", "400");
    tq_send_id (client, "TRACE", "t-extra", "jobs", id, "extra", NULL);
    tq_expect_err (client, "t-extra", "400");
    data[1] = id17;
    sizes[1] = 17;
    tq_sendv (client, "TRACE", "t-id17", 2, data, sizes);
    tq_expect_err (client, "t-id17", "400");
    tq_send_id (client, "TRACE", "t-name", "no/such", id, NULL, NULL);
    tq_expect_err (client, "t-name", "400");

    //  Still serving, the message still held: a good FWD goes through.
    tq_barrier (client);
    tq_expect_state (client, "jobs", 1, "running", "1");
    tq_fwd (client, "jobs", 1, "next", "body");
    tq_expect_state (client, "next", 1, "queued", "0");
    zk_queue_stats_t stats;
    cr_assert_eq (zk_queue_stats (fixture.server, &stats), 0);
    cr_assert_geq (stats.errors, 13);
    tq_inbox_clear ();
    zsock_destroy (&client);
    tq_cleanup (&fixture);
}

// ---------------------------------------------------------------- the first record format

//  A record as the first version wrote it (docs/protocol.md 8.9, byte 30
//  zero): one frame at most, no optional fields.
static void
s_append_v1 (zk_journal_t *journal, uint8_t type, unsigned number, int64_t time_us,
             uint32_t attempts, const char *text, const char *frame)
{
    uint8_t payload[256] = {0};
    tq_id (payload, number);
    for (int index = 0; index < 8; index++)
        payload[16 + index] = (uint8_t) ((uint64_t) time_us >> (8 * index));
    for (int index = 0; index < 4; index++)
        payload[24 + index] = (uint8_t) (attempts >> (8 * index));
    size_t text_size = text ? strlen (text) : 0, frame_size = frame ? strlen (frame) : 0;
    payload[28] = frame ? 1 : 0;
    payload[29] = (uint8_t) text_size;
    size_t size = 32;
    if (frame) {
        for (int index = 0; index < 4; index++)
            payload[size + index] = (uint8_t) (frame_size >> (8 * index));
        size += 4;
    }
    memcpy (payload + size, text ? text : "", text_size);
    size += text_size;
    memcpy (payload + size, frame ? frame : "", frame_size);
    size += frame_size;
    cr_assert_eq (zk_journal_append (journal, type, payload, size, NULL), 0);
}

Test (zk_queue_jobs, records_of_the_first_format_still_load, .timeout = 30)
{
    char *dir = tu_tmpdir ();
    char path[600];
    snprintf (path, sizeof path, "%s/legacy", dir);
    zk_journal_t *journal = NULL;
    cr_assert_eq (zk_journal_open (path, NULL, &journal), 0);
    int64_t now = zclock_time () * 1000;
    s_append_v1 (journal, 1, 1, now - 3000, 0, NULL, "hello");         //  PUT
    s_append_v1 (journal, 1, 2, now - 2000, 0, NULL, "world");         //  PUT
    s_append_v1 (journal, 2, 1, now - 1000, 1, NULL, "the result");    //  ACK
    s_append_v1 (journal, 3, 2, now - 500, 2, "lease expired", NULL);  //  RELEASE
    cr_assert_eq (zk_journal_sync (journal), 0);
    zk_journal_destroy (&journal);

    tq_fixture_t fixture = {.dir = dir};
    tq_restart (&fixture, NULL);
    zsock_t *client = tq_client (&fixture);
    tq_inbox_clear ();
    zmsg_t *status = tq_status (client, "legacy", 1);
    cr_assert (tq_frame_eq (status, 3, "done"));
    cr_assert (tq_frame_eq (status, 4, "1"));
    cr_assert (tq_frame_eq (status, 6, "the result"));
    zmsg_destroy (&status);
    tq_expect_state (client, "legacy", 2, "queued", "2");
    //  What the first format did not record is unknown: 0 and "-".
    tq_step_t steps[ZK_QUEUE_TRACE_MAX];
    cr_assert_eq (tq_trace (client, "legacy", 1, steps, ZK_QUEUE_TRACE_MAX), 1);
    cr_assert_str_eq (steps[0].state, "done");
    cr_assert_eq (steps[0].accepted, now - 3000);
    cr_assert_eq (steps[0].started, 0);
    cr_assert_eq (steps[0].finished, now - 1000);
    cr_assert_str_eq (steps[0].consumer, "-");
    cr_assert_eq (tq_stat (client, "legacy", "damaged"), 0);
    tq_get (client, "legacy", "1");
    zmsg_t *msg = tq_expect_delivery (client);
    tq_check_delivery (msg, "legacy", 2, "3", "world");
    zmsg_destroy (&msg);
    tq_inbox_clear ();
    zsock_destroy (&client);
    tq_cleanup (&fixture);
}

static void
s_no_dedup_window (zk_queue_config_t *config)
{
    config->dedup_window_ms = 0;
}

/*  Past the dedup window an id that was forwarded out of a queue may be
    put there again, as a new message: a restart keeps both (the new
    one queued, the forwarded one in its target).                       */
Test (zk_queue_jobs, a_new_put_of_a_forwarded_id_survives_a_restart, .timeout = 30)
{
    tq_fixture_t fixture;
    tq_start (&fixture, s_no_dedup_window);
    zsock_t *client = tq_client (&fixture);
    tq_inbox_clear ();
    tq_put (client, "loop", 1, "first");
    s_take (client, "loop", 1, "w", "1");
    tq_fwd (client, "loop", 1, "after", "forwarded");
    tq_put (client, "loop", 1, "second");
    tq_expect_state (client, "loop", 1, "queued", "0");
    zsock_destroy (&client);
    tq_restart (&fixture, s_no_dedup_window);
    client = tq_client (&fixture);
    tq_expect_state (client, "loop", 1, "queued", "0");
    tq_expect_state (client, "after", 1, "queued", "0");
    tq_get (client, "loop", "1");
    zmsg_t *msg = tq_expect_delivery (client);
    tq_check_delivery (msg, "loop", 1, "1", "second");
    zmsg_destroy (&msg);
    tq_inbox_clear ();
    zsock_destroy (&client);
    tq_cleanup (&fixture);
}

//  A workflow that comes back to a queue it went through: TRACE ends.
Test (zk_queue_jobs, trace_of_a_loop_ends, .timeout = 30)
{
    tq_fixture_t fixture;
    tq_start (&fixture, s_no_dedup_window);
    zsock_t *client = tq_client (&fixture);
    tq_inbox_clear ();
    tq_put (client, "ping", 1, "ball");
    s_take (client, "ping", 1, "p", "1");
    tq_fwd (client, "ping", 1, "pong", "ball");
    s_take (client, "pong", 1, "q", "1");
    tq_fwd (client, "pong", 1, "ping", "ball again");
    tq_step_t steps[ZK_QUEUE_TRACE_MAX];
    const char *queues[2] = {"ping", "pong"};
    for (int index = 0; index < 2; index++) {
        size_t count = tq_trace (client, queues[index], 1, steps, ZK_QUEUE_TRACE_MAX);
        cr_assert_eq (count, 2, "from %s", queues[index]);
        cr_assert_str_neq (steps[0].queue, steps[1].queue);
    }
    tq_inbox_clear ();
    zsock_destroy (&client);
    tq_cleanup (&fixture);
}

//  The state STATUS gives message number in queue. Caller frees.
static char *
s_state (zsock_t *client, const char *queue, unsigned number)
{
    zmsg_t *status = tq_status (client, queue, number);
    char *state = tq_frame (status, 3);
    zmsg_destroy (&status);
    return state;
}

/*  Deliveries of "in" are forwarded to "out" as they come (pipelined,
    many FWDs in flight), and the server is SIGKILLed after a random
    number of OKs; three rounds, one per --fsync policy. After each
    restart every job is in exactly one place: done in "in" and queued in
    "out", or queued in "in" and unknown in "out"; and every FWD that got
    its OK is in "out".                                                  */
Test (zk_queue_jobs, sigkill_during_a_stream_of_forwards_keeps_each_job_once, .timeout = 120)
{
    enum { S_JOBS = 400 };  //  three rounds forward at most 3 x (40 + 64)
    const char *policies[3] = {"batch", "never", "always"};
    char *data = tu_tmpdir ();
    tq_binary_t server = {0};
    tq_binary_start (&server, data, NULL);
    zsock_t *client = tq_connect (server.endpoint);
    tq_inbox_clear ();
    for (unsigned number = 1; number <= S_JOBS; number++)
        tq_put (client, "in", number, "job");
    tu_stop (&server.daemon.proc, SIGTERM, 5000);
    zsock_destroy (&client);
    tq_binary_cleanup (&server);
    bool confirmed[S_JOBS + 1] = {false};
    unsigned seed = (unsigned) zclock_mono ();
    for (int round = 0; round < 3; round++) {
        const char *extra[] = {"--fsync", policies[round], NULL};
        tq_binary_start (&server, data, extra);
        client = tq_connect (server.endpoint);
        tq_get_as (client, "in", "64", "forwarder");
        int kill_after = 1 + (int) (rand_r (&seed) % 40), oks = 0;
        int64_t deadline = zclock_mono () + TQ_WAIT_MS;
        while (oks < kill_after && zclock_mono () < deadline) {
            zmsg_t *msg = tq_inbox.count ? tq_delivery (client, 0) : tu_recv (client, 500);
            if (!msg)
                continue;  //  poll until the deadline
            if (tq_frame_eq (msg, 1, "MSG")) {
                unsigned number = tq_delivery_number (msg);
                uint8_t id[16];
                tq_id (id, number);
                char tag[32];
                snprintf (tag, sizeof tag, "f-%u", number);
                const char *body = "forwarded";
                tq_send_fwd (client, tag, "in", id, "out", 1, &body);
            }
            else if (tq_frame_eq (msg, 1, "OK")) {
                char *tag = tq_frame (msg, 2);
                if (strncmp (tag, "f-", 2) == 0) {
                    unsigned number = (unsigned) atoi (tag + 2);
                    cr_assert (number >= 1 && number <= S_JOBS);
                    confirmed[number] = true;
                    oks++;
                }
                free (tag);
            }
            zmsg_destroy (&msg);
        }
        cr_assert_eq (oks, kill_after, "round %d: %d OKs of %d", round, oks, kill_after);
        tq_binary_crash_restart (&server, data, NULL, &client);
        uint64_t forwarded = 0;
        for (unsigned number = 1; number <= S_JOBS; number++) {
            char *in = s_state (client, "in", number), *out = s_state (client, "out", number);
            bool moved = streq (in, "done");
            cr_assert (moved ? streq (out, "queued")
                             : streq (in, "queued") && streq (out, "unknown"),
                       "round %d (--fsync %s): job %u is %s in 'in' and %s in 'out'", round,
                       policies[round], number, in, out);
            cr_assert (moved || !confirmed[number], "round %d: job %u was confirmed forwarded",
                       round, number);
            forwarded += moved;
            free (in);
            free (out);
        }
        cr_assert_eq (tq_stat (client, "out", "queued"), forwarded);
        cr_assert_eq (tq_stat (client, "in", "queued"), S_JOBS - forwarded);
        tu_stop (&server.daemon.proc, SIGTERM, 5000);
        zsock_destroy (&client);
        tq_binary_cleanup (&server);
    }
    tq_inbox_clear ();
    tu_rmdir (data);
    free (data);
}
