/*  zk_queue — the server actor, driven from outside the library: raw
    DEALER sockets speak ZKQ/1 frame by frame, as a client written in
    another language would (no zkit client code is used).               */

#include "zkq_wire.h"

#include <dirent.h>
#include <unistd.h>

// ---------------------------------------------------------------- tests

Test (zk_queue, put_get_ack_round_trip, .timeout = 30)
{
    tq_fixture_t fixture;
    tq_start (&fixture, NULL);
    zsock_t *producer = tq_client (&fixture);
    zsock_t *consumer = tq_client (&fixture);
    tq_inbox_clear ();

    tq_put (producer, "orders", 1, "hello");
    tq_expect_state (producer, "orders", 1, "queued", "0");
    tq_get (consumer, "orders", "1");
    zmsg_t *msg = tq_expect_delivery (consumer);
    tq_check_delivery (msg, "orders", 1, "1", "hello");
    cr_assert_eq (zmsg_size (msg), 7);
    zmsg_destroy (&msg);
    tq_expect_state (producer, "orders", 1, "running", "1");
    tq_ack (consumer, "orders", 1, "the result");

    zmsg_t *status = tq_status (producer, "orders", 1);
    cr_assert (tq_frame_eq (status, 3, "done"));
    cr_assert (tq_frame_eq (status, 4, "1"));
    char *since = tq_frame (status, 5);
    cr_assert_gt (strtoll (since, NULL, 10), 1600000000000000LL);
    free (since);
    cr_assert_eq (zmsg_size (status), 7);
    cr_assert (tq_frame_eq (status, 6, "the result"));
    zmsg_destroy (&status);

    cr_assert_eq (tq_stat (producer, "orders", "put"), 1);
    cr_assert_eq (tq_stat (producer, "orders", "acked"), 1);
    cr_assert_eq (tq_stat (producer, "orders", "queued"), 0);
    zk_queue_stats_t stats;
    cr_assert_eq (zk_queue_stats (fixture.server, &stats), 0);
    cr_assert_eq (stats.put, 1);
    cr_assert_eq (stats.acked, 1);
    cr_assert_eq (stats.delivered, 1);
    cr_assert_eq (stats.queues, 1);
    cr_assert_geq (stats.syncs, 1);

    //  A second ack of the same message: no longer held.
    uint8_t id[16];
    tq_id (id, 1);
    tq_send_id (consumer, "ACK", "again", "orders", id, NULL, NULL);
    tq_expect_err (consumer, "again", "404");
    tq_inbox_clear ();
    zsock_destroy (&producer);
    zsock_destroy (&consumer);
    tq_cleanup (&fixture);
}

Test (zk_queue, multipart_body_and_empty_frames, .timeout = 30)
{
    tq_fixture_t fixture;
    tq_start (&fixture, NULL);
    zsock_t *client = tq_client (&fixture);
    tq_inbox_clear ();
    uint8_t id[16];
    tq_id (id, 7);
    const void *data[5] = {"parts", id, "a", "", "ccc"};
    size_t sizes[5] = {5, 16, 1, 0, 3};
    tq_sendv (client, "PUT", "p", 5, data, sizes);
    tq_expect_ok (client, "p");
    tq_get (client, "parts", "10");
    zmsg_t *msg = tq_expect_delivery (client);
    cr_assert_eq (zmsg_size (msg), 9);
    cr_assert (tq_frame_eq (msg, 6, "a"));
    cr_assert (tq_frame_eq (msg, 7, ""));
    cr_assert (tq_frame_eq (msg, 8, "ccc"));
    zmsg_destroy (&msg);
    tq_inbox_clear ();
    zsock_destroy (&client);
    tq_cleanup (&fixture);
}

Test (zk_queue, consumer_away_gets_everything_in_order, .timeout = 30)
{
    tq_fixture_t fixture;
    tq_start (&fixture, NULL);
    zsock_t *producer = tq_client (&fixture);
    tq_inbox_clear ();
    for (unsigned number = 1; number <= 50; number++) {
        char body[32];
        snprintf (body, sizeof body, "body %u", number);
        tq_put (producer, "later", number, body);
    }
    cr_assert_eq (tq_stat (producer, "later", "queued"), 50);
    //  Only now a consumer appears.
    zsock_t *consumer = tq_client (&fixture);
    tq_get (consumer, "later", "100");
    for (unsigned number = 1; number <= 50; number++) {
        zmsg_t *msg = tq_expect_delivery (consumer);
        char body[32];
        snprintf (body, sizeof body, "body %u", number);
        tq_check_delivery (msg, "later", number, "1", body);
        zmsg_destroy (&msg);
        tq_ack (consumer, "later", number, NULL);
    }
    cr_assert_eq (tq_stat (producer, "later", "acked"), 50);
    tq_inbox_clear ();
    zsock_destroy (&producer);
    zsock_destroy (&consumer);
    tq_cleanup (&fixture);
}

Test (zk_queue, credit_window_spreads_work, .timeout = 30)
{
    tq_fixture_t fixture;
    tq_start (&fixture, NULL);
    zsock_t *producer = tq_client (&fixture);
    zsock_t *first = tq_client (&fixture);
    zsock_t *second = tq_client (&fixture);
    tq_inbox_clear ();
    for (unsigned number = 1; number <= 10; number++)
        tq_put (producer, "work", number, "job");

    //  A window of 2: exactly two, even though eight more wait.
    tq_get (first, "work", "2");
    tq_barrier (first);
    cr_assert_eq (tq_inbox.count, 2);
    unsigned held_first[2];
    for (int index = 0; index < 2; index++) {
        zmsg_t *msg = tq_expect_delivery (first);
        held_first[index] = tq_delivery_number (msg);
        zmsg_destroy (&msg);
    }
    cr_assert_eq (held_first[0], 1);
    cr_assert_eq (held_first[1], 2);
    //  A second consumer takes its own share.
    tq_get (second, "work", "3");
    tq_barrier (second);
    cr_assert_eq (tq_inbox.count, 3);
    for (unsigned number = 3; number <= 5; number++) {
        zmsg_t *msg = tq_expect_delivery (second);
        cr_assert_eq (tq_delivery_number (msg), number);
        zmsg_destroy (&msg);
    }
    //  An ack frees one slot: one more, no more.
    tq_ack (first, "work", held_first[0], NULL);
    tq_barrier (first);
    cr_assert_eq (tq_inbox.count, 1);
    zmsg_t *msg = tq_expect_delivery (first);
    cr_assert_eq (tq_delivery_number (msg), 6);
    zmsg_destroy (&msg);
    cr_assert_eq (tq_stat (producer, "work", "leased"), 5);
    cr_assert_eq (tq_stat (producer, "work", "queued"), 4);
    cr_assert_eq (tq_stat (producer, "work", "consumers"), 2);

    //  GET 0 stops deliveries; held leases stay.
    tq_get (second, "work", "0");
    tq_ack (second, "work", 3, NULL);
    tq_barrier (second);
    cr_assert_eq (tq_inbox.count, 0);
    cr_assert_eq (tq_stat (producer, "work", "leased"), 4);
    tq_inbox_clear ();
    zsock_destroy (&producer);
    zsock_destroy (&first);
    zsock_destroy (&second);
    tq_cleanup (&fixture);
}

Test (zk_queue, two_consumers_share_a_stream, .timeout = 30)
{
    tq_fixture_t fixture;
    tq_start (&fixture, NULL);
    zsock_t *producer = tq_client (&fixture);
    zsock_t *consumers[2] = {tq_client (&fixture), tq_client (&fixture)};
    tq_inbox_clear ();
    tq_get (consumers[0], "share", "1");
    tq_get (consumers[1], "share", "1");
    for (unsigned number = 1; number <= 40; number++)
        tq_put (producer, "share", number, "x");
    //  Each takes, acks, takes again: both do work, none is flooded.
    unsigned done[2] = {0, 0};
    bool seen[41] = {false};
    for (unsigned total = 0; total < 40;) {
        for (int index = 0; index < 2; index++) {
            zmsg_t *msg = tq_delivery (consumers[index], 50);
            if (!msg)
                continue;
            unsigned number = tq_delivery_number (msg);
            zmsg_destroy (&msg);
            cr_assert (number >= 1 && number <= 40 && !seen[number]);
            seen[number] = true;
            tq_ack (consumers[index], "share", number, NULL);
            done[index]++;
            total++;
        }
    }
    cr_assert_gt (done[0], 5, "first consumer did %u", done[0]);
    cr_assert_gt (done[1], 5, "second consumer did %u", done[1]);
    tq_inbox_clear ();
    zsock_destroy (&producer);
    zsock_destroy (&consumers[0]);
    zsock_destroy (&consumers[1]);
    tq_cleanup (&fixture);
}

static void
s_short_lease (zk_queue_config_t *config)
{
    config->lease_ms = 300;
}

Test (zk_queue, lease_expiry_redelivers_with_attempt_2, .timeout = 30)
{
    tq_fixture_t fixture;
    tq_start (&fixture, s_short_lease);
    zsock_t *producer = tq_client (&fixture);
    zsock_t *consumer = tq_client (&fixture);
    tq_inbox_clear ();
    tq_put (producer, "slow", 1, "job");
    tq_get (consumer, "slow", "5");
    zmsg_t *msg = tq_expect_delivery (consumer);
    tq_check_delivery (msg, "slow", 1, "1", "job");
    zmsg_destroy (&msg);
    int64_t delivered = zclock_mono ();
    //  Not acked: after the lease it comes again, attempt 2.
    msg = tq_expect_delivery (consumer);
    tq_check_delivery (msg, "slow", 1, "2", "job");
    zmsg_destroy (&msg);
    cr_assert_geq (zclock_mono () - delivered, 250);
    cr_assert_eq (tq_stat (producer, "slow", "expired"), 1);
    cr_assert_eq (tq_stat (producer, "slow", "redelivered"), 1);
    tq_ack (consumer, "slow", 1, NULL);
    tq_inbox_clear ();
    zsock_destroy (&producer);
    zsock_destroy (&consumer);
    tq_cleanup (&fixture);
}

Test (zk_queue, closed_connection_releases_leases, .timeout = 30)
{
    tq_fixture_t fixture;
    tq_start (&fixture, NULL);  //  lease 30 s: only the disconnect can bring them back
    zsock_t *producer = tq_client (&fixture);
    zsock_t *leaver = tq_client (&fixture);
    tq_inbox_clear ();
    for (unsigned number = 1; number <= 3; number++)
        tq_put (producer, "held", number, "job");
    tq_get (leaver, "held", "10");
    for (unsigned number = 1; number <= 3; number++) {
        zmsg_t *msg = tq_expect_delivery (leaver);
        tq_check_delivery (msg, "held", number, "1", "job");
        zmsg_destroy (&msg);
    }
    cr_assert_eq (tq_stat (producer, "held", "leased"), 3);
    int64_t closed = zclock_mono ();
    zsock_destroy (&leaver);
    zsock_t *heir = tq_client (&fixture);
    tq_get (heir, "held", "10");
    for (unsigned number = 1; number <= 3; number++) {
        zmsg_t *msg = tq_expect_delivery (heir);
        tq_check_delivery (msg, "held", number, "2", "job");
        zmsg_destroy (&msg);
    }
    cr_assert_lt (zclock_mono () - closed, 4000);
    cr_assert_eq (tq_stat (producer, "held", "released"), 3);
    tq_inbox_clear ();
    zsock_destroy (&producer);
    zsock_destroy (&heir);
    tq_cleanup (&fixture);
}

Test (zk_queue, nack_requeue_and_dead_then_move_back, .timeout = 30)
{
    tq_fixture_t fixture;
    tq_start (&fixture, NULL);
    zsock_t *client = tq_client (&fixture);
    tq_inbox_clear ();
    tq_put (client, "jobs", 1, "one");
    tq_put (client, "jobs", 2, "two");
    tq_get (client, "jobs", "1");
    zmsg_t *msg = tq_expect_delivery (client);
    tq_check_delivery (msg, "jobs", 1, "1", "one");
    zmsg_destroy (&msg);
    uint8_t id[16];
    tq_id (id, 1);
    tq_send_id (client, "NACK", "n1", "jobs", id, "requeue", "try later");
    tq_expect_ok (client, "n1");
    //  Requeued at the front: the same message again, attempt 2.
    msg = tq_expect_delivery (client);
    tq_check_delivery (msg, "jobs", 1, "2", "one");
    zmsg_destroy (&msg);
    tq_send_id (client, "NACK", "n2", "jobs", id, "dead", "bad input");
    tq_expect_ok (client, "n2");
    zmsg_t *status = tq_status (client, "jobs", 1);
    cr_assert (tq_frame_eq (status, 3, "dead"));
    cr_assert (tq_frame_eq (status, 6, "bad input"));
    zmsg_destroy (&status);
    tq_expect_state (client, "jobs.dead", 1, "queued", "0");
    cr_assert_eq (tq_stat (client, "jobs", "dead"), 1);

    //  LIST shows the dead letter with its reason.
    tq_send (client, "LIST", "l", "jobs.dead", "10", NULL);
    zmsg_t *list = tq_ok (client, "l");
    cr_assert_eq (zmsg_size (list), 4);
    char *line = tq_frame (list, 3);
    char uuid[ZK_ID_TEXT_SIZE];
    zk_id_format (id, uuid);
    cr_assert (strncmp (line, uuid, strlen (uuid)) == 0, "%s", line);
    //  ATTEMPTS: its deliveries in jobs before it died.
    cr_assert (strncmp (line + strlen (uuid), " 2 ", 3) == 0, "%s", line);
    cr_assert_not_null (strstr (line, " bad input"), "%s", line);
    free (line);
    zmsg_destroy (&list);

    //  The next message flows meanwhile (window 1 is free again).
    msg = tq_expect_delivery (client);
    tq_check_delivery (msg, "jobs", 2, "1", "two");
    zmsg_destroy (&msg);
    tq_ack (client, "jobs", 2, NULL);

    //  Put it back: attempts start again.
    tq_send (client, "MOVE", "mv", "jobs.dead", "jobs", "*", NULL);
    zmsg_t *moved = tq_ok (client, "mv");
    cr_assert (tq_frame_eq (moved, 3, "1"));
    zmsg_destroy (&moved);
    msg = tq_expect_delivery (client);
    tq_check_delivery (msg, "jobs", 1, "1", "one");
    zmsg_destroy (&msg);
    tq_expect_state (client, "jobs.dead", 1, "unknown", "0");
    tq_expect_state (client, "jobs", 1, "running", "1");
    tq_ack (client, "jobs", 1, NULL);
    tq_inbox_clear ();
    zsock_destroy (&client);
    tq_cleanup (&fixture);
}

static void
s_two_attempts (zk_queue_config_t *config)
{
    config->max_deliver = 2;
    config->lease_ms = 200;
}

Test (zk_queue, max_deliver_moves_to_dead_with_reason, .timeout = 30)
{
    tq_fixture_t fixture;
    tq_start (&fixture, s_two_attempts);
    zsock_t *client = tq_client (&fixture);
    tq_inbox_clear ();
    tq_put (client, "poison", 1, "boom");
    tq_get (client, "poison", "1");
    uint8_t id[16];
    tq_id (id, 1);
    zmsg_t *msg = tq_expect_delivery (client);
    tq_check_delivery (msg, "poison", 1, "1", "boom");
    zmsg_destroy (&msg);
    tq_send_id (client, "NACK", "n", "poison", id, "requeue", "exit status 1");
    tq_expect_ok (client, "n");
    msg = tq_expect_delivery (client);
    tq_check_delivery (msg, "poison", 1, "2", "boom");
    zmsg_destroy (&msg);
    //  Second attempt: its lease runs out; that was the last attempt.
    zsock_t *dead_reader = tq_client (&fixture);
    tq_get (dead_reader, "poison.dead", "1");
    msg = tq_expect_delivery (dead_reader);
    tq_check_delivery (msg, "poison.dead", 1, "1", "boom");
    zmsg_destroy (&msg);
    zmsg_t *status = tq_status (client, "poison", 1);
    cr_assert (tq_frame_eq (status, 3, "dead"));
    cr_assert (tq_frame_eq (status, 4, "2"));
    cr_assert (tq_frame_eq (status, 6, "lease expired"));
    zmsg_destroy (&status);
    tq_ack (dead_reader, "poison.dead", 1, NULL);
    cr_assert_eq (tq_stat (client, "poison", "queued"), 0);
    cr_assert_eq (tq_stat (client, "poison", "dead"), 1);
    tq_inbox_clear ();
    zsock_destroy (&client);
    zsock_destroy (&dead_reader);
    tq_cleanup (&fixture);
}

Test (zk_queue, dedup_confirms_without_storing_twice, .timeout = 30)
{
    tq_fixture_t fixture;
    tq_start (&fixture, NULL);
    zsock_t *client = tq_client (&fixture);
    tq_inbox_clear ();
    tq_put (client, "once", 1, "first");
    tq_put (client, "once", 1, "retry");
    cr_assert_eq (tq_stat (client, "once", "put"), 1);
    cr_assert_eq (tq_stat (client, "once", "duplicates"), 1);
    tq_get (client, "once", "10");
    zmsg_t *msg = tq_expect_delivery (client);
    tq_check_delivery (msg, "once", 1, "1", "first");
    zmsg_destroy (&msg);
    tq_ack (client, "once", 1, NULL);
    //  Still within the window after the ack: confirmed, not stored.
    tq_put (client, "once", 1, "late retry");
    tq_barrier (client);
    cr_assert_eq (tq_inbox.count, 0);
    cr_assert_eq (tq_stat (client, "once", "put"), 1);
    cr_assert_eq (tq_stat (client, "once", "duplicates"), 2);
    //  Two copies in one batch: one stored.
    uint8_t id[16];
    tq_id (id, 2);
    tq_send_put (client, "a", "once", id, "x");
    tq_send_put (client, "b", "once", id, "x");
    tq_expect_ok (client, "a");
    tq_expect_ok (client, "b");
    cr_assert_eq (tq_stat (client, "once", "put"), 2);
    tq_inbox_clear ();
    zsock_destroy (&client);
    tq_cleanup (&fixture);
}

static void
s_no_window (zk_queue_config_t *config)
{
    config->dedup_window_ms = 0;
    config->result_ttl_ms = 0;
    config->segment_size = 4096;
}

Test (zk_queue, no_dedup_window_after_ack, .timeout = 30)
{
    tq_fixture_t fixture;
    tq_start (&fixture, s_no_window);
    zsock_t *client = tq_client (&fixture);
    tq_inbox_clear ();
    tq_put (client, "again", 1, "first");
    tq_put (client, "again", 1, "while queued");  //  still queued: deduped
    cr_assert_eq (tq_stat (client, "again", "put"), 1);
    tq_get (client, "again", "1");
    zmsg_t *msg = tq_expect_delivery (client);
    zmsg_destroy (&msg);
    tq_ack (client, "again", 1, NULL);
    tq_put (client, "again", 1, "second");  //  window 0: a new message
    msg = tq_expect_delivery (client);
    tq_check_delivery (msg, "again", 1, "1", "second");
    zmsg_destroy (&msg);
    tq_inbox_clear ();
    zsock_destroy (&client);
    tq_cleanup (&fixture);
}

Test (zk_queue, status_of_unknown_and_list_of_queued, .timeout = 30)
{
    tq_fixture_t fixture;
    tq_start (&fixture, NULL);
    zsock_t *client = tq_client (&fixture);
    tq_inbox_clear ();
    tq_expect_state (client, "nothing", 1, "unknown", "0");
    tq_put (client, "listed", 1, "a");
    tq_put (client, "listed", 2, "b");
    tq_put (client, "listed", 3, "c");
    tq_send (client, "LIST", "l", "listed", "2", NULL);
    zmsg_t *list = tq_ok (client, "l");
    cr_assert_eq (zmsg_size (list), 5);
    zmsg_destroy (&list);
    tq_send (client, "LIST", "l0", "nothing", "5", NULL);
    list = tq_ok (client, "l0");
    cr_assert_eq (zmsg_size (list), 3);
    zmsg_destroy (&list);
    //  STATS of every queue: one frame each; a queue named but absent reads as zeros.
    tq_send (client, "STATS", "all", "", NULL);
    zmsg_t *stats = tq_ok (client, "all");
    cr_assert_eq (zmsg_size (stats), 4);
    char *line = tq_frame (stats, 3);
    cr_assert (strncmp (line, "listed queued=3 ", 16) == 0, "%s", line);
    free (line);
    zmsg_destroy (&stats);
    cr_assert_eq (tq_stat (client, "absent", "queued"), 0);
    //  STATUS and LIST did not create queues.
    zk_queue_stats_t totals;
    cr_assert_eq (zk_queue_stats (fixture.server, &totals), 0);
    cr_assert_eq (totals.queues, 1);
    cr_assert_eq (totals.queued, 3);
    //  MOVE of one id
    uint8_t id[16];
    tq_id (id, 2);
    const void *data[3] = {"listed", "other", id};
    size_t sizes[3] = {6, 5, 16};
    tq_sendv (client, "MOVE", "m", 3, data, sizes);
    zmsg_t *moved = tq_ok (client, "m");
    cr_assert (tq_frame_eq (moved, 3, "1"));
    zmsg_destroy (&moved);
    tq_expect_state (client, "other", 2, "queued", "0");
    cr_assert_eq (tq_stat (client, "listed", "queued"), 2);
    tq_inbox_clear ();
    zsock_destroy (&client);
    tq_cleanup (&fixture);
}

Test (zk_queue, restart_replays_unacked_not_acked, .timeout = 30)
{
    tq_fixture_t fixture;
    tq_start (&fixture, NULL);
    zsock_t *client = tq_client (&fixture);
    tq_inbox_clear ();
    for (unsigned number = 1; number <= 6; number++)
        tq_put (client, "durable", number, "payload");
    tq_get (client, "durable", "3");
    for (unsigned number = 1; number <= 3; number++) {
        zmsg_t *msg = tq_expect_delivery (client);
        zmsg_destroy (&msg);
    }
    tq_ack (client, "durable", 1, "r1");
    tq_ack (client, "durable", 2, NULL);
    tq_barrier (client);
    tq_inbox_clear ();
    zsock_destroy (&client);
    tq_restart (&fixture, NULL);
    client = tq_client (&fixture);
    cr_assert_eq (tq_stat (client, "durable", "queued"), 4);
    zmsg_t *status = tq_status (client, "durable", 1);
    cr_assert (tq_frame_eq (status, 3, "done"));
    cr_assert (tq_frame_eq (status, 6, "r1"));
    zmsg_destroy (&status);
    tq_get (client, "durable", "10");
    //  3 was delivered and not acked: it comes first; then 4..6 in order.
    unsigned expected[4] = {3, 4, 5, 6};
    for (int index = 0; index < 4; index++) {
        zmsg_t *msg = tq_expect_delivery (client);
        cr_assert_eq (tq_delivery_number (msg), expected[index]);
        zmsg_destroy (&msg);
        tq_ack (client, "durable", expected[index], NULL);
    }
    //  Dedup survives the restart.
    tq_put (client, "durable", 4, "retry");
    cr_assert_eq (tq_stat (client, "durable", "put"), 0);
    cr_assert_eq (tq_stat (client, "durable", "duplicates"), 1);
    tq_inbox_clear ();
    zsock_destroy (&client);
    tq_cleanup (&fixture);
}

static size_t
s_segment_files (const char *dir)
{
    DIR *handle = opendir (dir);
    cr_assert_not_null (handle, "%s", dir);
    size_t count = 0;
    struct dirent *item;
    while ((item = readdir (handle)))
        if (strstr (item->d_name, ".seg"))
            count++;
    closedir (handle);
    return count;
}

Test (zk_queue, segments_go_once_all_acked, .timeout = 30)
{
    tq_fixture_t fixture;
    tq_start (&fixture, s_no_window);
    zsock_t *client = tq_client (&fixture);
    tq_inbox_clear ();
    char body[101];
    memset (body, 'b', 100);
    body[100] = 0;
    for (unsigned number = 1; number <= 200; number++)
        tq_put (client, "short", number, body);
    char path[600];
    snprintf (path, sizeof path, "%s/short", fixture.dir);
    size_t before = s_segment_files (path);
    cr_assert_gt (before, 4, "only %zu segments", before);
    tq_get (client, "short", "50");
    for (unsigned number = 1; number <= 200; number++) {
        zmsg_t *msg = tq_expect_delivery (client);
        cr_assert_eq (tq_delivery_number (msg), number);
        zmsg_destroy (&msg);
        tq_ack (client, "short", number, NULL);
    }
    int64_t deadline = zclock_mono () + TQ_WAIT_MS;
    while (s_segment_files (path) > 1 && zclock_mono () < deadline)
        tq_barrier (client);
    cr_assert_eq (s_segment_files (path), 1);
    cr_assert_lt (tq_stat (client, "short", "disk_bytes"), 4096);
    tq_inbox_clear ();
    zsock_destroy (&client);
    tq_cleanup (&fixture);
}

Test (zk_queue, hostile_frames_get_errors, .timeout = 30)
{
    tq_fixture_t fixture;
    tq_start (&fixture, NULL);
    zsock_t *client = tq_client (&fixture);
    tq_inbox_clear ();
    //  Wrong signature.
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "ZKQ2");
    zmsg_addstr (msg, "PING");
    zmsg_addstr (msg, "sig");
    zmsg_send (&msg, client);
    tq_expect_err (client, "sig", "400");
    //  Unknown command, lower case command.
    tq_send (client, "FLY", "cmd", NULL);
    tq_expect_err (client, "cmd", "400");
    tq_send (client, "ping", "lower", NULL);
    tq_expect_err (client, "lower", "400");
    //  MSGID of 15 and 17 bytes.
    const void *data[3] = {"q", "123456789012345", "body"};
    size_t sizes[3] = {1, 15, 4};
    tq_sendv (client, "PUT", "id15", 3, data, sizes);
    tq_expect_err (client, "id15", "400");
    data[1] = "12345678901234567";
    sizes[1] = 17;
    tq_sendv (client, "PUT", "id17", 3, data, sizes);
    tq_expect_err (client, "id17", "400");
    //  Decimals: 2^64, a sign, too many digits, over the window limit.
    tq_send (client, "GET", "big", "q", "18446744073709551616", NULL);
    tq_expect_err (client, "big", "400");
    tq_send (client, "GET", "sign", "q", "-1", NULL);
    tq_expect_err (client, "sign", "400");
    tq_send (client, "GET", "long", "q", "000000000000000000001", NULL);
    tq_expect_err (client, "long", "400");
    tq_send (client, "GET", "over", "q", "10001", NULL);
    tq_expect_err (client, "over", "400");
    tq_send (client, "LIST", "max", "q", "18446744073709551615", NULL);
    tq_expect_ok (client, "max");
    //  Bad queue names.
    const char *names[] = {"", ".hidden", "a..b", "a/b", "sp ace", NULL};
    for (int index = 0; names[index]; index++) {
        tq_send (client, "GET", "name", names[index], "1", NULL);
        tq_expect_err (client, "name", "400");
    }
    char long_name[130];
    memset (long_name, 'n', 129);
    long_name[129] = 0;
    tq_send (client, "GET", "long-name", long_name, "1", NULL);
    tq_expect_err (client, "long-name", "400");
    //  A huge TAG: refused, answered with an empty tag.
    size_t tag_size = 100000;
    char *tag = malloc (tag_size + 1);
    memset (tag, 't', tag_size);
    tag[tag_size] = 0;
    tq_send (client, "PING", tag, NULL);
    tq_expect_err (client, "", "400");
    free (tag);
    //  Missing frames.
    msg = zmsg_new ();
    zmsg_addstr (msg, "ZKQ1");
    zmsg_send (&msg, client);
    tq_expect_err (client, "", "400");
    tq_send (client, "PUT", "noargs", NULL);
    tq_expect_err (client, "noargs", "400");
    tq_send (client, "NACK", "mode", "q", "0123456789abcdef", "maybe", NULL);
    tq_expect_err (client, "mode", "400");
    //  1000 frames.
    msg = zmsg_new ();
    zmsg_addstr (msg, "ZKQ1");
    zmsg_addstr (msg, "PUT");
    zmsg_addstr (msg, "many");
    zmsg_addstr (msg, "q");
    zmsg_addstr (msg, "0123456789abcdef");
    for (int index = 0; index < 1000; index++)
        zmsg_addstr (msg, "f");
    zmsg_send (&msg, client);
    tq_expect_err (client, "many", "413");
    //  65 body frames; a body over --max-size.
    const void *many[67];
    size_t many_sizes[67];
    many[0] = "q";
    many_sizes[0] = 1;
    many[1] = "0123456789abcdef";
    many_sizes[1] = 16;
    for (int index = 2; index < 67; index++) {
        many[index] = "x";
        many_sizes[index] = 1;
    }
    tq_sendv (client, "PUT", "65", 67, many, many_sizes);
    tq_expect_err (client, "65", "413");
    tq_sendv (client, "PUT", "64", 66, many, many_sizes);
    tq_expect_ok (client, "64");
    size_t big_size = ZK_QUEUE_DEFAULT_MAX_SIZE + 1;
    char *big = calloc (1, big_size);
    const void *big_data[3] = {"q", "fedcba9876543210", big};
    size_t big_sizes[3] = {1, 16, big_size};
    tq_sendv (client, "PUT", "big-body", 3, big_data, big_sizes);
    tq_expect_err (client, "big-body", "413");
    free (big);
    //  Acks and nacks of what this client does not hold.
    uint8_t id[16];
    tq_id (id, 99);
    tq_send_id (client, "ACK", "ack", "q", id, NULL, NULL);
    tq_expect_err (client, "ack", "404");
    tq_send_id (client, "NACK", "nack", "nowhere", id, "requeue", NULL);
    tq_expect_err (client, "nack", "404");
    //  Still serving, and the refusals are counted.
    tq_barrier (client);
    zk_queue_stats_t stats;
    cr_assert_eq (zk_queue_stats (fixture.server, &stats), 0);
    cr_assert_geq (stats.errors, 20);
    cr_assert_eq (stats.put, 1);
    tq_inbox_clear ();
    zsock_destroy (&client);
    tq_cleanup (&fixture);
}

static void
s_with_pull (zk_queue_config_t *config)
{
    static char spec[128];
    static const char *pulls[2];
    snprintf (spec, sizeof spec, "feed=pull@tcp://127.0.0.1:*");
    pulls[0] = spec;
    pulls[1] = NULL;
    config->pulls = pulls;
}

Test (zk_queue, pull_socket_feeds_a_queue, .timeout = 30)
{
    tq_fixture_t fixture;
    tq_start (&fixture, s_with_pull);
    char *pull_endpoint = tu_engine_endpoint (zk_queue_actor (fixture.server), "pull:feed");
    cr_assert_not_null (pull_endpoint);
    zsock_t *push = tu_connect (ZMQ_PUSH, pull_endpoint);
    cr_assert_not_null (push);
    for (int index = 0; index < 3; index++)
        zstr_sendf (push, "plain %d", index);
    zsock_t *client = tq_client (&fixture);
    tq_inbox_clear ();
    tq_get (client, "feed", "10");
    for (int index = 0; index < 3; index++) {
        zmsg_t *msg = tq_expect_delivery (client);
        char expected[32];
        snprintf (expected, sizeof expected, "plain %d", index);
        cr_assert (tq_frame_eq (msg, 6, expected));
        zmsg_destroy (&msg);
    }
    zk_queue_stats_t stats;
    cr_assert_eq (zk_queue_stats (fixture.server, &stats), 0);
    cr_assert_eq (stats.pulled, 3);
    free (pull_endpoint);
    tq_inbox_clear ();
    zsock_destroy (&push);
    zsock_destroy (&client);
    tq_cleanup (&fixture);
}

Test (zk_queue, config_validation)
{
    zk_queue_config_t config;
    const char *specs[2];
    char reason[256];
    tq_config (&config, "/tmp/x", specs);
    cr_assert_eq (zk_queue_validate (&config, reason, sizeof reason), 0);
    config.data_dir = NULL;
    cr_assert_eq (zk_queue_validate (&config, reason, sizeof reason), ZK_EINVAL);
    tq_config (&config, "/tmp/x", specs);
    specs[0] = "push@tcp://127.0.0.1:*";
    cr_assert_eq (zk_queue_validate (&config, reason, sizeof reason), ZK_EINVAL);
    cr_assert_not_null (strstr (reason, "push"), "%s", reason);
    tq_config (&config, "/tmp/x", specs);
    const char *pulls[] = {"bad name=pull@tcp://127.0.0.1:*", NULL};
    config.pulls = pulls;
    cr_assert_eq (zk_queue_validate (&config, reason, sizeof reason), ZK_EINVAL);
    tq_config (&config, "/tmp/x", specs);
    config.max_deliver = 0;
    cr_assert_eq (zk_queue_validate (&config, reason, sizeof reason), ZK_EINVAL);
    cr_assert (zk_queue_name_valid ("a.dead", 6));
    cr_assert (zk_queue_name_valid ("A-z_0.9", 7));
    cr_assert_not (zk_queue_name_valid (".a", 2));
    cr_assert_not (zk_queue_name_valid ("a..b", 4));
    cr_assert_not (zk_queue_name_valid ("a b", 3));
}

Test (zk_queue, second_server_on_the_same_data_dir_fails, .timeout = 30)
{
    tq_fixture_t fixture;
    tq_start (&fixture, NULL);
    zk_queue_config_t config;
    const char *specs[2];
    tq_config (&config, fixture.dir, specs);
    zk_queue_t *second = zk_queue_new (&config);
    cr_assert_null (second);
    tq_cleanup (&fixture);
}
