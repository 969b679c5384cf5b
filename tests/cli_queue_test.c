/*  zkit-queue — the real binary, driven with raw DEALER sockets: start and
    ready file, usage errors, SIGTERM, SIGKILL and restart, a consumer
    process killed while holding leases, a damaged journal, a full disk,
    and the crash-safety run (random SIGKILLs during a stream).          */

#include "zkq_wire.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

//  SIGTERM: exit 0, fast.
static void
s_terminate (tq_binary_t *server)
{
    int64_t asked = zclock_mono ();
    int rc = tu_stop (&server->daemon.proc, SIGTERM, 5000);
    char *err = tu_stderr (&server->daemon.proc);
    cr_assert_eq (rc, 0, "exit %d after SIGTERM; stderr:\n%s", rc, err ? err : "");
    free (err);
    cr_assert_lt (zclock_mono () - asked, 3000);
}

//  The end of a test: SIGTERM (exit 0, fast), then remove everything.
static void
s_finish (tq_binary_t *server, char *data)
{
    s_terminate (server);
    tq_binary_cleanup (server);
    tu_rmdir (data);
    free (data);
}

static size_t
s_files_with (const char *dir, const char *suffix, char *first, size_t first_size)
{
    DIR *handle = opendir (dir);
    cr_assert_not_null (handle, "%s", dir);
    size_t count = 0;
    struct dirent *item;
    while ((item = readdir (handle)))
        if (strstr (item->d_name, suffix)) {
            if (first && count == 0)
                snprintf (first, first_size, "%s/%s", dir, item->d_name);
            count++;
        }
    closedir (handle);
    return count;
}

Test (cli_queue, usage_errors_exit_2, .timeout = 30)
{
    const char *no_data[] = {"router@tcp://127.0.0.1:*", NULL};
    cr_assert_eq (tu_run_bin ("zkit-queue", no_data, NULL, NULL, 5000), 2);
    const char *push[] = {"--data", "/tmp", "push@tcp://127.0.0.1:*", NULL};
    char *err = NULL;
    cr_assert_eq (tu_run_bin ("zkit-queue", push, NULL, &err, 5000), 2);
    cr_assert_not_null (strstr (err, "zkit-queue: "), "%s", err);
    free (err);
    const char *pull[] = {"--data", "/tmp", "--pull", "no-equals", "router@tcp://127.0.0.1:*",
                          NULL};
    cr_assert_eq (tu_run_bin ("zkit-queue", pull, NULL, NULL, 5000), 2);
    const char *fsync[] = {"--data", "/tmp", "--fsync", "sometimes", "router@tcp://127.0.0.1:*",
                           NULL};
    cr_assert_eq (tu_run_bin ("zkit-queue", fsync, NULL, NULL, 5000), 2);
    const char *lease[] = {"--data", "/tmp", "--lease", "0", "router@tcp://127.0.0.1:*", NULL};
    cr_assert_eq (tu_run_bin ("zkit-queue", lease, NULL, NULL, 5000), 2);
    const char *help[] = {"--help", NULL};
    char *out = NULL;
    cr_assert_eq (tu_run_bin ("zkit-queue", help, &out, NULL, 5000), 0);
    cr_assert_not_null (strstr (out, "--max-deliver"));
    free (out);
    //  A data directory that cannot exist: runtime failure.
    const char *bad_dir[] = {"--data", "/nonexistent/zkit/q", "router@tcp://127.0.0.1:*", NULL};
    cr_assert_eq (tu_run_bin ("zkit-queue", bad_dir, NULL, NULL, 5000), 1);
}

Test (cli_queue, serves_and_stops_on_sigterm, .timeout = 30)
{
    char *data = tu_tmpdir ();
    tq_binary_t server = {0};
    const char *extra[] = {"--stats", "0.1", NULL};
    tq_binary_start (&server, data, extra);
    zsock_t *client = tq_connect (server.endpoint);
    tq_inbox_clear ();
    tq_put (client, "jobs", 1, "hello");
    tq_get (client, "jobs", "1");
    zmsg_t *msg = tq_expect_delivery (client);
    tq_check_delivery (msg, "jobs", 1, "1", "hello");
    zmsg_destroy (&msg);
    tq_ack (client, "jobs", 1, NULL);
    cr_assert (tu_wait_contains (server.daemon.proc.err_path, "stats queues=1", TQ_WAIT_MS));
    s_terminate (&server);
    tq_binary_cleanup (&server);
    zsock_destroy (&client);
    //  The queue lives on disk.
    char path[600];
    snprintf (path, sizeof path, "%s/jobs", data);
    cr_assert_geq (s_files_with (path, ".seg", NULL, 0), 1);
    //  A second server on the same directory while the first runs: refused.
    tq_binary_start (&server, data, NULL);
    const char *again[] = {"--data", data, "router@tcp://127.0.0.1:*", NULL};
    char *err = NULL;
    cr_assert_eq (tu_run_bin ("zkit-queue", again, NULL, &err, 5000), 1);
    cr_assert_not_null (strstr (err, "in use"), "%s", err);
    free (err);
    s_finish (&server, data);
}

Test (cli_queue, sigkill_and_restart_keep_every_confirmed_message, .timeout = 60)
{
    char *data = tu_tmpdir ();
    tq_binary_t server = {0};
    tq_binary_start (&server, data, NULL);
    zsock_t *client = tq_connect (server.endpoint);
    tq_inbox_clear ();
    for (unsigned number = 1; number <= 100; number++)
        tq_put (client, "kept", number, "payload");
    tq_get (client, "kept", "10");
    for (unsigned number = 1; number <= 10; number++) {
        zmsg_t *msg = tq_expect_delivery (client);
        cr_assert_eq (tq_delivery_number (msg), number);
        zmsg_destroy (&msg);
    }
    for (unsigned number = 1; number <= 5; number++)
        tq_ack (client, "kept", number, NULL);
    tq_binary_crash_restart (&server, data, NULL, &client);
    cr_assert_eq (tq_stat (client, "kept", "queued"), 95);
    tq_get (client, "kept", "100");
    bool seen[101] = {false};
    for (unsigned count = 0; count < 95; count++) {
        zmsg_t *msg = tq_expect_delivery (client);
        unsigned number = tq_delivery_number (msg);
        zmsg_destroy (&msg);
        cr_assert (number > 5 && number <= 100 && !seen[number], "message %u", number);
        seen[number] = true;
        tq_ack (client, "kept", number, NULL);
    }
    tq_expect_state (client, "kept", 3, "done", NULL);
    s_terminate (&server);
    zsock_destroy (&client);
    tq_inbox_clear ();
    tq_binary_cleanup (&server);
    tu_rmdir (data);
    free (data);
}

/*  A child process (raw libzmq, its own context) takes three messages and
    holds them; it is killed with SIGKILL; another consumer gets them
    again, attempt 2, long before the 30 s lease would run out.          */
static void
s_holding_child (const char *endpoint, int ready_fd)
{
    void *context = zmq_ctx_new ();
    void *dealer = zmq_socket (context, ZMQ_DEALER);
    if (zmq_connect (dealer, endpoint) != 0)
        _exit (1);
    const char *frames[] = {"ZKQ1", "GET", "g", "held", "10"};
    for (int index = 0; index < 5; index++)
        zmq_send (dealer, frames[index], strlen (frames[index]), index < 4 ? ZMQ_SNDMORE : 0);
    int deliveries = 0;
    while (deliveries < 3) {
        zmq_pollitem_t item = {dealer, 0, ZMQ_POLLIN, 0};
        if (zmq_poll (&item, 1, 5000) <= 0)
            _exit (1);
        char buffer[64];
        bool first = true, is_msg = false;
        int more = 1;
        while (more) {
            int size = zmq_recv (dealer, buffer, sizeof buffer, 0);
            if (size < 0)
                _exit (1);
            if (first && size == 4)
                first = false;
            else if (!first && !is_msg && size == 3 && memcmp (buffer, "MSG", 3) == 0)
                is_msg = true;
            size_t more_size = sizeof more;
            zmq_getsockopt (dealer, ZMQ_RCVMORE, &more, &more_size);
        }
        deliveries += is_msg;
    }
    if (write (ready_fd, "x", 1) != 1)
        _exit (1);
    while (true)
        pause ();
}

Test (cli_queue, killed_consumer_process_gets_its_messages_redelivered, .timeout = 60)
{
    char *data = tu_tmpdir ();
    tq_binary_t server = {0};
    tq_binary_start (&server, data, NULL);  //  default lease: 30 s
    int fds[2];
    cr_assert_eq (pipe (fds), 0);
    //  Fork before this process has any ZeroMQ thread.
    pid_t child = fork ();
    cr_assert_geq (child, 0);
    if (child == 0) {
        close (fds[0]);
        s_holding_child (server.endpoint, fds[1]);
    }
    close (fds[1]);
    zsock_t *producer = tq_connect (server.endpoint);
    tq_inbox_clear ();
    for (unsigned number = 1; number <= 3; number++)
        tq_put (producer, "held", number, "job");
    struct pollfd ready = {fds[0], POLLIN, 0};
    cr_assert_eq (poll (&ready, 1, TQ_WAIT_MS), 1, "the child never took its messages");
    char byte;
    cr_assert_eq (read (fds[0], &byte, 1), 1, "the child failed");
    cr_assert_eq (tq_stat (producer, "held", "leased"), 3);
    int64_t killed = zclock_mono ();
    kill (child, SIGKILL);
    waitpid (child, NULL, 0);
    zsock_t *heir = tq_connect (server.endpoint);
    tq_get (heir, "held", "10");
    for (unsigned number = 1; number <= 3; number++) {
        zmsg_t *msg = tq_expect_delivery (heir);
        tq_check_delivery (msg, "held", number, "2", "job");
        zmsg_destroy (&msg);
        tq_ack (heir, "held", number, NULL);
    }
    cr_assert_lt (zclock_mono () - killed, 5000);
    close (fds[0]);
    zsock_destroy (&producer);
    zsock_destroy (&heir);
    tq_inbox_clear ();
    s_finish (&server, data);
}

Test (cli_queue, damaged_journal_is_reported_and_good_records_kept, .timeout = 60)
{
    char *data = tu_tmpdir ();
    tq_binary_t server = {0};
    tq_binary_start (&server, data, NULL);
    zsock_t *client = tq_connect (server.endpoint);
    tq_inbox_clear ();
    char body[101];
    memset (body, 'd', 100);
    body[100] = 0;
    for (unsigned number = 1; number <= 30; number++)
        tq_put (client, "fragile", number, body);
    zsock_destroy (&client);
    s_terminate (&server);
    tq_binary_cleanup (&server);

    //  Flip a byte in the middle, cut the last record short.
    char dir[600], segment[900];
    snprintf (dir, sizeof dir, "%s/fragile", data);
    cr_assert_eq (s_files_with (dir, ".seg", segment, sizeof segment), 1);
    int fd = open (segment, O_RDWR);
    cr_assert_geq (fd, 0);
    struct stat info;
    cr_assert_eq (fstat (fd, &info), 0);
    off_t middle = info.st_size / 2;
    unsigned char value;
    cr_assert_eq (pread (fd, &value, 1, middle), 1);
    value ^= 0x40;
    cr_assert_eq (pwrite (fd, &value, 1, middle), 1);
    cr_assert_eq (ftruncate (fd, info.st_size - 30), 0);
    close (fd);

    tq_binary_start (&server, data, NULL);
    cr_assert (tu_wait_contains (server.daemon.proc.err_path, "damaged journal", TQ_WAIT_MS));
    client = tq_connect (server.endpoint);
    cr_assert_eq (tq_stat (client, "fragile", "queued"), 28);
    cr_assert_geq (tq_stat (client, "fragile", "damaged"), 2);
    tq_get (client, "fragile", "100");
    bool seen[31] = {false};
    for (unsigned count = 0; count < 28; count++) {
        zmsg_t *msg = tq_expect_delivery (client);
        unsigned number = tq_delivery_number (msg);
        cr_assert (number >= 1 && number < 30 && !seen[number], "message %u", number);
        cr_assert (tq_frame_eq (msg, 6, body), "message %u: body damaged", number);
        seen[number] = true;
        zmsg_destroy (&msg);
        tq_ack (client, "fragile", number, NULL);
    }
    //  Still serving: new messages go after the cut.
    tq_put (client, "fragile", 31, "after");
    zmsg_t *msg = tq_expect_delivery (client);
    tq_check_delivery (msg, "fragile", 31, "1", "after");
    zmsg_destroy (&msg);
    zsock_destroy (&client);
    tq_inbox_clear ();
    s_finish (&server, data);
}

Test (cli_queue, full_disk_answers_503_and_loses_nothing_confirmed, .timeout = 60)
{
    char *data = tu_tmpdir ();
    tq_binary_t server = {0};
    //  A file size limit stands for the full disk: the segment may not grow past 256 KiB.
    struct rlimit saved, limited;
    cr_assert_eq (getrlimit (RLIMIT_FSIZE, &saved), 0);
    limited = saved;
    limited.rlim_cur = 256 << 10;
    cr_assert_eq (setrlimit (RLIMIT_FSIZE, &limited), 0);
    const char *extra[] = {"--segment-size", "4M", NULL};
    tq_binary_start (&server, data, extra);
    cr_assert_eq (setrlimit (RLIMIT_FSIZE, &saved), 0);

    zsock_t *client = tq_connect (server.endpoint);
    tq_inbox_clear ();
    char body[2049];
    memset (body, 'f', 2048);
    body[2048] = 0;
    bool confirmed[301] = {false};
    unsigned confirmed_count = 0, refused = 0;
    for (unsigned number = 1; number <= 300; number++) {
        uint8_t id[16];
        tq_id (id, number);
        tq_send_put (client, "p", "full", id, body);
        zmsg_t *reply = tq_reply (client, "p");
        if (tq_frame_eq (reply, 1, "OK")) {
            cr_assert_eq (refused, 0, "a PUT succeeded after the disk was full");
            confirmed[number] = true;
            confirmed_count++;
        }
        else {
            cr_assert (tq_frame_eq (reply, 3, "503"));
            refused++;
        }
        zmsg_destroy (&reply);
        if (refused == 5)
            break;
    }
    cr_assert_eq (refused, 5, "the disk never filled");
    cr_assert_gt (confirmed_count, 50);
    tq_barrier (client);  //  alive
    cr_assert_eq (tq_stat (client, "full", "queued"), confirmed_count);
    zsock_destroy (&client);
    s_terminate (&server);
    tq_binary_cleanup (&server);

    //  Room again: every confirmed message is there, nothing else.
    tq_binary_start (&server, data, NULL);
    client = tq_connect (server.endpoint);
    tq_get (client, "full", "1000");
    for (unsigned count = 0; count < confirmed_count; count++) {
        zmsg_t *msg = tq_expect_delivery (client);
        unsigned number = tq_delivery_number (msg);
        cr_assert (number <= 300 && confirmed[number], "message %u was not confirmed", number);
        confirmed[number] = false;
        zmsg_destroy (&msg);
        tq_ack (client, "full", number, NULL);
    }
    tq_barrier (client);
    cr_assert_eq (tq_inbox.count, 0, "a refused message was stored");
    tq_put (client, "full", 1000, "room again");
    zsock_destroy (&client);
    tq_inbox_clear ();
    s_finish (&server, data);
}

// ---------------------------------------------------------------- crash safety

#define CRASH_ROUNDS   12
#define CRASH_IDS      150000
#define CRASH_INFLIGHT 100

enum { ID_UNSENT = 0, ID_SENT, ID_CONFIRMED };

typedef struct {
    uint8_t state[CRASH_IDS];
    uint8_t acked[CRASH_IDS];  //  an ACK of it was confirmed
    uint32_t delivered[CRASH_IDS];
    unsigned next_id;
    unsigned inflight;  //  sent on the current connection, unanswered
} s_crash_t;

static void
s_crash_id (uint8_t id[16], unsigned number)
{
    memset (id, 0, 16);
    snprintf ((char *) id, 16, "crash-%u", number);
}

static void
s_crash_put (zsock_t *producer, s_crash_t *crash, unsigned number)
{
    uint8_t id[16];
    s_crash_id (id, number);
    char tag[16];
    snprintf (tag, sizeof tag, "%u", number);
    char body[48];
    snprintf (body, sizeof body, "body of %u", number);
    tq_send_put (producer, tag, "stream", id, body);
    crash->state[number] = ID_SENT;
    crash->inflight++;
}

//  Handle what the producer and the consumer received within timeout_ms.
static void
s_crash_pump (zsock_t *producer, zsock_t *consumer, s_crash_t *crash, int timeout_ms)
{
    zmq_pollitem_t items[2] = {{zsock_resolve (producer), 0, ZMQ_POLLIN, 0},
                               {zsock_resolve (consumer), 0, ZMQ_POLLIN, 0}};
    if (zmq_poll (items, 2, timeout_ms) <= 0)
        return;
    for (int round = 0; round < 500 && (zsock_events (producer) & ZMQ_POLLIN); round++) {
        zmsg_t *reply = zmsg_recv (producer);
        char *tag = tq_frame (reply, 2);
        unsigned number = (unsigned) strtoul (tag, NULL, 10);
        free (tag);
        cr_assert_lt (number, CRASH_IDS);
        if (tq_frame_eq (reply, 1, "OK"))
            crash->state[number] = ID_CONFIRMED;
        if (crash->inflight)
            crash->inflight--;
        zmsg_destroy (&reply);
    }
    //  A slow consumer: a backlog builds up, so kills find messages queued.
    for (int round = 0; round < 20 && (zsock_events (consumer) & ZMQ_POLLIN); round++) {
        zmsg_t *msg = zmsg_recv (consumer);
        if (tq_frame_eq (msg, 1, "OK") && !tq_frame_eq (msg, 2, "g")) {
            char *tag = tq_frame (msg, 2);
            unsigned number = (unsigned) strtoul (tag, NULL, 10);
            free (tag);
            cr_assert_lt (number, CRASH_IDS);
            crash->acked[number] = 1;
        }
        else if (tq_frame_eq (msg, 1, "MSG")) {
            char *id = tq_frame (msg, 4);
            unsigned number = 0;
            cr_assert_eq (sscanf (id, "crash-%u", &number), 1);
            cr_assert_lt (number, CRASH_IDS);
            free (id);
            char *body = tq_frame (msg, 6);
            char expected[48];
            snprintf (expected, sizeof expected, "body of %u", number);
            cr_assert_str_eq (body, expected);
            free (body);
            crash->delivered[number]++;
            uint8_t raw[16];
            s_crash_id (raw, number);
            char tag[16];
            snprintf (tag, sizeof tag, "%u", number);
            tq_send_id (consumer, "ACK", tag, "stream", raw, NULL, NULL);
        }
        zmsg_destroy (&msg);
    }
}

static int s_put_records[CRASH_IDS];
static unsigned s_put_bad;

static int
s_count_put (void *arg, const zk_journal_record_t *record, const void *payload)
{
    if (record->type != 1)  //  a put record (docs/protocol.md, queue journal records)
        return 0;
    unsigned number;
    char id[17] = {0};
    memcpy (id, payload, record->pos.size < 16 ? record->pos.size : 16);
    if (sscanf (id, "crash-%u", &number) == 1 && number < CRASH_IDS)
        s_put_records[number]++;
    else
        s_put_bad++;
    return 0;
}

/*  SIGKILL the server at random moments while a producer streams puts
    (retrying every unconfirmed one on the next server: same id) and a
    consumer takes and acks; restart it, again and again. Then: every
    confirmed message was delivered at least once, and the journal holds
    each message once (dedup kept the retries out).                      */
Test (cli_queue, crash_safety_random_sigkills, .timeout = 90)
{
    static s_crash_t crash;
    memset (&crash, 0, sizeof crash);
    unsigned seed = (unsigned) time (NULL) ^ (unsigned) getpid ();
    char *data = tu_tmpdir ();
    const char *extra[] = {"--dedup-window", "600", "--lease", "5", "--max-done", "1M", NULL};
    int64_t started = zclock_mono ();
    for (int round = 0; round <= CRASH_ROUNDS; round++) {
        bool last = round == CRASH_ROUNDS;
        tq_binary_t server = {0};
        tq_binary_start (&server, data, extra);
        zsock_t *producer = tq_connect (server.endpoint);
        zsock_t *consumer = tq_connect (server.endpoint);
        tq_send (consumer, "GET", "g", "stream", "20", NULL);
        crash.inflight = 0;
        //  Retries first: everything sent and never confirmed, same id.
        for (unsigned number = 0; number < crash.next_id; number++)
            if (crash.state[number] == ID_SENT)
                s_crash_put (producer, &crash, number);
        int64_t kill_at = zclock_mono () + 30 + rand_r (&seed) % 220;
        while (!last && zclock_mono () < kill_at) {
            while (crash.inflight < CRASH_INFLIGHT && crash.next_id < CRASH_IDS)
                s_crash_put (producer, &crash, crash.next_id++);
            s_crash_pump (producer, consumer, &crash, 2);
        }
        if (!last) {
            tu_stop (&server.daemon.proc, SIGKILL, 5000);
            zsock_destroy (&producer);
            zsock_destroy (&consumer);
            tq_binary_cleanup (&server);
            continue;
        }
        //  The last server lives: settle every retry, drain the queue.
        zsock_t *observer = tq_connect (server.endpoint);
        int64_t deadline = zclock_mono () + 20000;
        bool settled = false;
        while (!settled && zclock_mono () < deadline) {
            for (int pumps = 0; pumps < 10; pumps++)
                s_crash_pump (producer, consumer, &crash, 10);
            settled = tq_stat (observer, "stream", "queued") == 0
                      && tq_stat (observer, "stream", "leased") == 0
                      && tq_stat (observer, "stream", "pending") == 0;
            for (unsigned number = 0; number < crash.next_id && settled; number++)
                if (crash.state[number] == ID_SENT)
                    settled = false;
        }
        cr_assert (settled, "the queue never drained (seed %u)", seed);
        //  An ack made durable just before a kill has its OK lost with the
        //  connection: the server's STATUS says whether it was done.
        for (unsigned number = 0; number < crash.next_id; number++)
            if (crash.state[number] == ID_CONFIRMED && !crash.acked[number]) {
                uint8_t id[16];
                s_crash_id (id, number);
                tq_send_id (observer, "STATUS", "st", "stream", id, NULL, NULL);
                zmsg_t *status = tq_ok (observer, "st");
                if (tq_frame_eq (status, 3, "done"))
                    crash.acked[number] = 2;
                zmsg_destroy (&status);
            }
        zsock_destroy (&observer);
        s_terminate (&server);
        zsock_destroy (&producer);
        zsock_destroy (&consumer);
        tq_binary_cleanup (&server);
    }
    //  Lost: confirmed, and never processed to a confirmed ack (a message
    //  delivered before a crash but not acked must come again after it).
    unsigned confirmed = 0, lost = 0, redelivered = 0, ack_unseen = 0;
    for (unsigned number = 0; number < crash.next_id; number++) {
        if (crash.state[number] != ID_CONFIRMED)
            continue;
        confirmed++;
        if (crash.delivered[number] == 0 || !crash.acked[number])
            lost++;
        redelivered += crash.delivered[number] > 1;
        ack_unseen += crash.acked[number] == 2;
    }
    cr_assert_gt (confirmed, 500, "only %u confirmed (seed %u)", confirmed, seed);
    cr_assert_eq (lost, 0, "%u of %u confirmed messages never processed (seed %u)", lost, confirmed,
                  seed);
    //  Stored duplicates: each id in at most one put record.
    char path[600];
    snprintf (path, sizeof path, "%s/stream", data);
    memset (s_put_records, 0, sizeof s_put_records);
    s_put_bad = 0;
    zk_journal_config_t config = {.on_record = s_count_put};
    zk_journal_t *journal = NULL;
    cr_assert_eq (zk_journal_open (path, &config, &journal), 0);
    zk_journal_destroy (&journal);
    unsigned stored = 0, duplicates = 0;
    for (unsigned number = 0; number < crash.next_id; number++) {
        stored += s_put_records[number] > 0;
        if (s_put_records[number] > 1)
            duplicates++;
        if (crash.state[number] == ID_CONFIRMED)
            cr_assert_geq (s_put_records[number], 1, "confirmed %u not in the journal", number);
    }
    cr_assert_eq (s_put_bad, 0);
    cr_assert_eq (duplicates, 0, "%u messages stored twice (seed %u)", duplicates, seed);
    cr_log_info ("crash safety: %d kills, %u ids sent, %u confirmed, %u stored, %u delivered "
                 "more than once, %u acks durable but unanswered, %.1f s",
                 CRASH_ROUNDS, crash.next_id, confirmed, stored, redelivered, ack_unseen,
                 (zclock_mono () - started) / 1000.0);
    tu_rmdir (data);
    free (data);
}
