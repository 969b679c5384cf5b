/*  zk_worker_queue — the worker actor on a queue input and output, against
    the fake ZKQ/1 server (fake_queue.h): ack with the stdout as result,
    nack on failure until the message is dead, the --jobs window, output
    confirmed before the input is acked, refusals, a clean stop.        */

#include "fake_queue.h"

#include <stddef.h>
#include <unistd.h>

#define WAIT_MS 10000

TestSuite (zk_worker_queue, .timeout = 60);

static zk_worker_t *
s_start (zk_worker_config_t *config)
{
    zk_worker_t *worker = zk_worker_new (config);
    cr_assert_not_null (worker, "worker did not start (%s)", config->input);
    return worker;
}

//  Put the texts into queue name (NULL-terminated), all confirmed.
static void
s_put (fake_queue_t *fake, const char *name, const char *const *texts, uint8_t (*ids)[ZK_ID_SIZE])
{
    char *spec = fake_queue_spec (fake, name);
    zk_client_t *client = zk_client_new (spec, NULL);
    cr_assert_not_null (client);
    for (int index = 0; texts[index]; index++) {
        zmsg_t *body = zmsg_new ();
        zmsg_addstr (body, texts[index]);
        cr_assert_eq (zk_client_put (client, NULL, &body, ids ? ids[index] : NULL), 0);
    }
    cr_assert_eq (zk_client_flush (client, WAIT_MS), 0);
    zk_client_destroy (&client);
    free (spec);
}

//  STATUS of id in queue name.
static zk_client_status_t
s_status (fake_queue_t *fake, const char *name, const uint8_t *id)
{
    char *spec = fake_queue_spec (fake, name);
    zk_client_t *client = zk_client_new (spec, NULL);
    zk_client_status_t status;
    cr_assert_eq (zk_client_status (client, NULL, id, &status), 0);
    zk_client_destroy (&client);
    free (spec);
    return status;
}

static zk_worker_stats_t
s_stats (zk_worker_t *worker)
{
    zk_worker_stats_t stats;
    cr_assert_eq (zk_worker_stats (worker, &stats), 0);
    return stats;
}

//  The worker's stats once the counter at offset reached value (or WAIT_MS passed).
static zk_worker_stats_t
s_wait_stats (zk_worker_t *worker, size_t offset, uint64_t value)
{
    int64_t deadline = zclock_mono () + WAIT_MS;
    while (true) {
        zk_worker_stats_t stats = s_stats (worker);
        uint64_t counter;
        memcpy (&counter, (const char *) &stats + offset, sizeof counter);
        if (counter >= value || zclock_mono () >= deadline)
            return stats;
        zmq_poll (NULL, 0, 10);  //  bounded by the deadline
    }
}

Test (zk_worker_queue, acks_with_the_stdout_as_result)
{
    fake_queue_t *fake = fake_queue_new ();
    uint8_t ids[3][ZK_ID_SIZE];
    const char *texts[] = {"hello", "queue", "world", NULL};
    s_put (fake, "jobs", texts, ids);
    char *input = fake_queue_spec (fake, "jobs");
    char *argv[] = {"tr", "a-z", "A-Z", NULL};
    zk_worker_config_t config = {.input = input, .argv = argv};
    zk_worker_t *worker = s_start (&config);
    cr_assert (fake_queue_wait (fake, 3, WAIT_MS, "COUNT jobs done"));
    zk_client_status_t status = s_status (fake, "jobs", ids[1]);
    cr_assert_str_eq (status.state, "done");
    cr_assert_not_null (status.detail);
    char *result = zframe_strdup (zmsg_first (status.detail));
    cr_assert_str_eq (result, "QUEUE");
    free (result);
    zmsg_destroy (&status.detail);
    zk_worker_stats_t stats = s_stats (worker);
    cr_assert_eq (stats.received, 3);
    cr_assert_eq (stats.succeeded, 3);
    //  The ack is counted when its reply is in; the fake has it already.
    cr_assert_eq (fake_queue_ask (fake, "NACKS"), 0);
    zk_worker_destroy (&worker);
    free (input);
    fake_queue_destroy (&fake);
}

Test (zk_worker_queue, a_failing_command_is_nacked_until_dead)
{
    fake_queue_t *fake = fake_queue_new ();
    fake_queue_ask (fake, "MAXDELIVER 3");
    uint8_t ids[1][ZK_ID_SIZE];
    const char *texts[] = {"poison", NULL};
    s_put (fake, "jobs", texts, ids);
    char *input = fake_queue_spec (fake, "jobs");
    char *argv[] = {"sh", "-c", "cat >/dev/null; exit 3", NULL};
    zk_worker_config_t config = {.input = input, .argv = argv};
    zk_worker_t *worker = s_start (&config);
    cr_assert (fake_queue_wait (fake, 1, WAIT_MS, "COUNT jobs.dead queued"));
    cr_assert_eq (fake_queue_ask (fake, "NACKS"), 3);
    cr_assert_eq (fake_queue_ask (fake, "ACKS"), 0);
    zk_client_status_t status = s_status (fake, "jobs", ids[0]);
    cr_assert_str_eq (status.state, "dead");
    char *reason = zframe_strdup (zmsg_first (status.detail));
    cr_assert_str_eq (reason, "exit status 3");
    free (reason);
    zmsg_destroy (&status.detail);
    //  The worker counts a nack when its reply is in: wait for the last.
    zk_worker_stats_t stats = s_wait_stats (worker, offsetof (zk_worker_stats_t, nacked), 3);
    cr_assert_eq (stats.failed, 3);
    cr_assert_eq (stats.nacked, 3);
    zk_worker_destroy (&worker);
    free (input);
    fake_queue_destroy (&fake);
}

Test (zk_worker_queue, holds_no_more_than_jobs)
{
    fake_queue_t *fake = fake_queue_new ();
    const char *texts[] = {"1", "2", "3", "4", "5", "6", NULL};
    s_put (fake, "jobs", texts, NULL);
    char *dir = tu_tmpdir ();
    char *go = zsys_sprintf ("%s/go", dir);
    //  Each job waits for the go file (bounded by the worker's timeout).
    char *script = zsys_sprintf ("while [ ! -e '%s' ]; do sleep 0.01; done; cat", go);
    char *argv[] = {"sh", "-c", script, NULL};
    char *input = fake_queue_spec (fake, "jobs");
    zk_worker_config_t config = {.input = input, .argv = argv, .jobs = 2, .timeout_ms = 30000};
    zk_worker_t *worker = s_start (&config);
    cr_assert (fake_queue_wait (fake, 2, WAIT_MS, "COUNT jobs running"));
    //  The second job may still be starting.
    cr_assert_eq (s_wait_stats (worker, offsetof (zk_worker_stats_t, running), 2).running, 2);
    cr_assert_eq (fake_queue_ask (fake, "COUNT jobs queued"), 4);
    FILE *file = fopen (go, "w");
    cr_assert_not_null (file);
    fclose (file);
    cr_assert (fake_queue_wait (fake, 6, WAIT_MS, "COUNT jobs done"));
    cr_assert_eq (fake_queue_ask (fake, "MAXLEASED"), 2);
    zk_worker_destroy (&worker);
    free (input);
    free (script);
    free (go);
    tu_rmdir (dir);
    free (dir);
    fake_queue_destroy (&fake);
}

Test (zk_worker_queue, output_is_confirmed_before_the_input_is_acked)
{
    fake_queue_t *in = fake_queue_new ();
    fake_queue_t *out = fake_queue_new ();
    const char *texts[] = {"a", "b", NULL};
    s_put (in, "step1", texts, NULL);
    char *input = fake_queue_spec (in, "step1");
    char *output = fake_queue_spec (out, "step2");
    char *argv[] = {"tr", "a-z", "A-Z", NULL};
    //  The output server holds its confirms: no input may be acked meanwhile.
    fake_queue_ask (out, "MODE hold");
    zk_worker_config_t config = {.input = input, .output = output, .argv = argv, .jobs = 2};
    zk_worker_t *worker = s_start (&config);
    cr_assert (fake_queue_wait (out, 2, WAIT_MS, "STORED"));
    cr_assert_eq (fake_queue_ask (in, "ACKS"), 0);
    cr_assert_eq (fake_queue_ask (in, "COUNT step1 running"), 2);
    fake_queue_ask (out, "MODE normal");
    cr_assert (fake_queue_wait (in, 2, WAIT_MS, "COUNT step1 done"));
    cr_assert_eq (fake_queue_ask (out, "COUNT step2 queued"), 2);
    zk_worker_destroy (&worker);

    //  An output that refuses: the input goes back (nacked), not acked.
    //  (Another queue: the fake does not see the first worker leave.)
    const char *more[] = {"c", NULL};
    s_put (in, "other", more, NULL);
    fake_queue_ask (out, "ERR 503");
    char *other = fake_queue_spec (in, "other");
    config.input = other;
    worker = s_start (&config);
    cr_assert (fake_queue_wait (in, 1, WAIT_MS, "NACKS"));
    cr_assert_eq (fake_queue_ask (in, "COUNT other done"), 0);
    cr_assert_eq (fake_queue_ask (in, "ACKS"), 2);
    zk_worker_stats_t stats = s_stats (worker);
    cr_assert_geq (stats.output_failed, 1);
    zk_worker_destroy (&worker);
    free (other);
    free (input);
    free (output);
    fake_queue_destroy (&out);
    fake_queue_destroy (&in);
}

//  A job's state as the library sees it (TRACE, STATUS) on fake.
static zk_client_job_t
s_job (fake_queue_t *fake, const char *name, const uint8_t *id)
{
    char *spec = fake_queue_spec (fake, name);
    zk_client_t *client = zk_client_new (spec, NULL);
    zk_client_job_t job;
    int rc = zk_client_job (client, NULL, id, &job);
    cr_assert_eq (rc, 0, "job: %s", zk_client_last_error (client));
    zk_client_destroy (&client);
    free (spec);
    return job;
}

Test (zk_worker_queue, a_two_step_chain_hands_over_with_fwd)
{
    fake_queue_t *fake = fake_queue_new ();
    uint8_t ids[2][ZK_ID_SIZE];
    const char *texts[] = {"a", "b", NULL};
    s_put (fake, "step1", texts, ids);
    char *step1 = fake_queue_spec (fake, "step1");
    char *step2 = fake_queue_spec (fake, "step2");
    char *argv1[] = {"sh", "-c", "cat; printf ' 1'", NULL};
    char *argv2[] = {"sh", "-c", "cat; printf ' 2'", NULL};
    zk_worker_config_t config1 = {
        .input = step1, .output = step2, .argv = argv1, .jobs = 2, .name = "first:1"};
    zk_worker_config_t config2 = {.input = step2, .argv = argv2};  //  the default name
    zk_worker_t *first = s_start (&config1);
    zk_worker_t *second = s_start (&config2);
    cr_assert (fake_queue_wait (fake, 2, WAIT_MS, "COUNT step2 done"));
    //  One FWD per job from step1 (no PUT, no ACK there); step2 acks.
    cr_assert_eq (fake_queue_ask (fake, "FWDS"), 2);
    cr_assert_eq (fake_queue_ask (fake, "PUTS"), 2);  //  s_put's two
    cr_assert_eq (fake_queue_ask (fake, "ACKS"), 2);
    zk_worker_stats_t stats = s_wait_stats (first, offsetof (zk_worker_stats_t, acked), 2);
    cr_assert_eq (stats.acked, 2);
    cr_assert_eq (stats.sent, 2);
    cr_assert_eq (stats.output_failed, 0);

    char host[256] = "";
    gethostname (host, sizeof host - 1);
    char *default_name = zsys_sprintf ("%.40s:%d", host, (int) getpid ());
    for (int index = 0; index < 2; index++) {
        zk_client_job_t job = s_job (fake, "step1", ids[index]);
        cr_assert_str_eq (job.state, "done");
        cr_assert_str_eq (job.queue, "step2");
        char *result = zframe_strdup (zmsg_first (job.detail));
        cr_assert_str_eq (result, index ? "b 1 2" : "a 1 2");
        free (result);
        zmsg_destroy (&job.detail);
        cr_assert_eq (job.path.count, 2);
        cr_assert_str_eq (job.path.steps[0].queue, "step1");
        cr_assert_str_eq (job.path.steps[0].state, "done");
        cr_assert_str_eq (job.path.steps[0].consumer, "first:1");
        cr_assert_str_eq (job.path.steps[1].queue, "step2");
        cr_assert_str_eq (job.path.steps[1].consumer, default_name);
    }
    free (default_name);
    zk_worker_destroy (&second);
    zk_worker_destroy (&first);

    //  A FWD the server refuses: the input goes back (nacked), nothing moves on.
    const char *more[] = {"c", NULL};
    s_put (fake, "other", more, NULL);
    fake_queue_ask (fake, "ERR 503");
    char *other = fake_queue_spec (fake, "other");
    config1.input = other;
    first = s_start (&config1);
    cr_assert (fake_queue_wait (fake, 1, WAIT_MS, "NACKS"));
    stats = s_wait_stats (first, offsetof (zk_worker_stats_t, output_failed), 1);
    cr_assert_geq (stats.output_failed, 1);
    cr_assert_eq (fake_queue_ask (fake, "COUNT other done"), 0);
    cr_assert_eq (fake_queue_ask (fake, "COUNT step2 queued"), 0);
    zk_worker_destroy (&first);
    free (other);
    free (step1);
    free (step2);
    fake_queue_destroy (&fake);
}

Test (zk_worker_queue, names_and_a_queue_into_itself_are_checked)
{
    char *argv[] = {"cat", NULL};
    char reason[256];
    zk_worker_config_t config = {
        .input = "queue>tcp://127.0.0.1:1/in", .argv = argv, .name = "has space"};
    cr_assert_eq (zk_worker_validate (&config, reason, sizeof reason), ZK_EINVAL);
    cr_assert (strstr (reason, "--name: 'has space' is not a consumer name"), "%s", reason);
    config.name = "";
    cr_assert_eq (zk_worker_validate (&config, reason, sizeof reason), ZK_EINVAL);
    config.name = "ok:1";
    cr_assert_eq (zk_worker_validate (&config, reason, sizeof reason), 0, "%s", reason);
    config.input = "pull>tcp://127.0.0.1:1";
    cr_assert_eq (zk_worker_validate (&config, reason, sizeof reason), ZK_EINVAL);
    cr_assert (strstr (reason, "--name: only a queue input"), "%s", reason);
    config.name = NULL;
    //  The same queue on the same server (endpoints in any order): refused.
    config.input = "queue>tcp://127.0.0.1:1,tcp://127.0.0.1:2/jobs";
    config.output = "queue>tcp://127.0.0.1:2,tcp://127.0.0.1:1/jobs";
    cr_assert_eq (zk_worker_validate (&config, reason, sizeof reason), ZK_EINVAL);
    cr_assert (strstr (reason, "--out names the input queue itself"), "%s", reason);
    //  Another queue, or the same name on another server: fine.
    config.output = "queue>tcp://127.0.0.1:2,tcp://127.0.0.1:1/next";
    cr_assert_eq (zk_worker_validate (&config, reason, sizeof reason), 0, "%s", reason);
    config.output = "queue>tcp://127.0.0.1:3/jobs";
    cr_assert_eq (zk_worker_validate (&config, reason, sizeof reason), 0, "%s", reason);
}

Test (zk_worker_queue, refusals_are_nacked)
{
    fake_queue_t *fake = fake_queue_new ();
    fake_queue_ask (fake, "MAXDELIVER 1");
    const char *texts[] = {"one\ntwo", "this one is far too long", NULL};
    s_put (fake, "jobs", texts, NULL);
    char *input = fake_queue_spec (fake, "jobs");
    char *argv[] = {"cat", NULL};
    //  lines mode refuses the inner newline; max_size the long one.
    zk_worker_config_t config = {.input = input, .argv = argv, .lines = true, .max_size = 10};
    zk_worker_t *worker = s_start (&config);
    cr_assert (fake_queue_wait (fake, 2, WAIT_MS, "COUNT jobs.dead queued"));
    cr_assert_eq (s_stats (worker).refused, 2);
    zk_worker_destroy (&worker);
    free (input);
    fake_queue_destroy (&fake);
}

Test (zk_worker_queue, queue_specs_are_checked)
{
    char *argv[] = {"cat", NULL};
    char reason[256];
    zk_worker_config_t config = {.input = "queue>tcp://127.0.0.1:1/in",
                                 .output = "queue>tcp://127.0.0.1:1/out",
                                 .argv = argv};
    cr_assert_eq (zk_worker_validate (&config, reason, sizeof reason), 0, "%s", reason);
    config.input = "rep@tcp://127.0.0.1:*";
    cr_assert_eq (zk_worker_validate (&config, reason, sizeof reason), ZK_EINVAL);
    config.input = "queue@tcp://*:1/in";
    cr_assert_eq (zk_worker_validate (&config, reason, sizeof reason), ZK_EINVAL);
    cr_assert (strstr (reason, "only connects"), "%s", reason);
    config.input = "queue>tcp://127.0.0.1:1/in";
    config.output = NULL;
    const char *topics[] = {"x", NULL};
    config.subscribe = topics;
    cr_assert_eq (zk_worker_validate (&config, reason, sizeof reason), ZK_EINVAL);
    //  A worker on an unreachable queue starts (it connects when it can) and stops at once.
    config.subscribe = NULL;
    char *dir = tu_tmpdir ();
    char *nowhere = zsys_sprintf ("queue>ipc://%s/nobody.sock/in", dir);
    config.input = nowhere;
    zk_worker_t *worker = zk_worker_new (&config);
    cr_assert_not_null (worker);
    int64_t start = zclock_mono ();
    zk_worker_destroy (&worker);
    cr_assert_lt (zclock_mono () - start, 3000);
    free (nowhere);
    tu_rmdir (dir);
    free (dir);
}
