/*  cli_worker_queue — the real zkit-worker binary on a queue input, against
    the fake ZKQ/1 server (fake_queue.h): ready file, acks, SIGTERM, usage.
    End to end with the real zkit-queue: cli_cat_queue_test.c.               */

#include "fake_queue.h"

#include <signal.h>

#define WAIT_MS 10000

TestSuite (cli_worker_queue, .timeout = 60);

Test (cli_worker_queue, acks_what_it_ran_and_stops_on_sigterm)
{
    fake_queue_t *fake = fake_queue_new ();
    char *spec = fake_queue_spec (fake, "jobs");
    zk_client_t *client = zk_client_new (spec, NULL);
    for (int index = 0; index < 3; index++) {
        zmsg_t *body = zmsg_new ();
        zmsg_addstrf (body, "job %d", index);
        cr_assert_eq (zk_client_put (client, NULL, &body, NULL), 0);
    }
    cr_assert_eq (zk_client_flush (client, WAIT_MS), 0);
    zk_client_destroy (&client);

    char *dir = tu_tmpdir ();
    char *ready = zsys_sprintf ("%s/ready", dir);
    char bin[512];
    char *argv[] = {(char *) tu_bin ("zkit-worker", bin, sizeof bin),
                    "--in",
                    spec,
                    "-j",
                    "2",
                    "--ready-file",
                    ready,
                    "--",
                    "cat",
                    NULL};
    tu_proc_t proc;
    cr_assert_eq (tu_spawn (&proc, dir, argv), 0);
    char *lines = tu_wait_file (ready, WAIT_MS);
    cr_assert_not_null (lines);
    char *endpoint = tu_ready_endpoint (lines, "input");
    cr_assert_not_null (endpoint, "%s", lines);
    cr_assert_str_eq (endpoint, fake_queue_endpoint (fake));
    cr_assert (fake_queue_wait (fake, 3, WAIT_MS, "COUNT jobs done"));
    cr_assert_leq (fake_queue_ask (fake, "MAXLEASED"), 2);
    int64_t start = zclock_mono ();
    cr_assert_eq (tu_stop (&proc, SIGTERM, WAIT_MS), 0);
    cr_assert_lt (zclock_mono () - start, 2000);
    free (endpoint);
    free (lines);
    free (ready);
    tu_rmdir (dir);
    free (dir);
    free (spec);
    fake_queue_destroy (&fake);
}

Test (cli_worker_queue, queue_usage_errors)
{
    struct {
        const char *args[8];
        const char *reason;
    } cases[] = {
        {{"--in", "queue@tcp://*:1/jobs", "--", "cat"}, "only connects"},
        {{"--in", "queue>tcp://127.0.0.1:1", "--", "cat"}, "without a queue name"},
        {{"--in", "queue>tcp://127.0.0.1:1/jobs", "--subscribe", "x", "--", "cat"},
         "--subscribe needs a sub input"},
        {{"--in", "rep@tcp://127.0.0.1:*", "--out", "queue>tcp://127.0.0.1:1/o", "--", "cat"},
         "replies go back on the input"},
        {{"--in", "queue>tcp://127.0.0.1:1/jobs", "--name", "a b", "--", "cat"},
         "--name: 'a b' is not a consumer name"},
        {{"--in", "pull>tcp://127.0.0.1:1", "--name", "x", "--", "cat"},
         "--name: only a queue input"},
        {{"--in", "queue>tcp://127.0.0.1:1/jobs", "--out", "queue>tcp://127.0.0.1:1/jobs", "--",
          "cat"},
         "--out names the input queue itself"},
    };
    for (size_t index = 0; index < sizeof cases / sizeof cases[0]; index++) {
        char *err;
        int rc = tu_run_bin ("zkit-worker", cases[index].args, NULL, &err, WAIT_MS);
        cr_assert_eq (rc, 2, "case %zu: %d %s", index, rc, err);
        cr_assert (strstr (err, cases[index].reason), "case %zu: %s", index, err);
        free (err);
    }
}
