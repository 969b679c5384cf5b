/*  zk_client_jobs — the client's side of async jobs and workflows against
    the fake ZKQ/1 server (fake_queue.h): GET's consumer name, FWD (one
    step hands the job to the next under the same MSGID), TRACE and its
    parsing of hostile lines, zk_client_job (a job's state in the last
    step of its path), zk_client_set_timeout.                            */

#include "fake_queue.h"

#define WAIT_MS 5000

TestSuite (zk_client_jobs, .timeout = 60);

//  A client of queue name on fake, taking as consumer (or NULL).
static zk_client_t *
s_client (fake_queue_t *fake, const char *name, const char *consumer)
{
    zk_client_config_t config = {.consumer = consumer};
    return fake_queue_client (fake, name, &config);
}

static zmsg_t *
s_body (const char *text)
{
    zmsg_t *body = zmsg_new ();
    zmsg_addstr (body, text);
    return body;
}

//  Put text into the client's queue, confirmed; its id into id.
static void
s_submit (zk_client_t *client, const char *text, uint8_t *id)
{
    zmsg_t *body = s_body (text);
    cr_assert_eq (zk_client_put (client, NULL, &body, id), 0);
    cr_assert_eq (zk_client_flush (client, WAIT_MS), 0);
}

//  GET 1 and the next delivery, whose body must be text.
static zk_delivery_t *
s_take (zk_client_t *client, const char *text)
{
    cr_assert_eq (zk_client_get (client, NULL, 1), 0, "GET: %s", zk_client_last_error (client));
    zk_delivery_t *delivery = NULL;
    int rc = zk_client_recv (client, WAIT_MS, &delivery);
    cr_assert_eq (rc, 0, "no delivery: %s", zk_strerror (rc));
    char *body = zframe_strdup (zmsg_first (delivery->body));
    cr_assert_str_eq (body, text);
    free (body);
    return delivery;
}

static void
s_expect_job (zk_client_t *client, const char *queue, const uint8_t *id, const char *state,
              const char *where, size_t steps, const char *detail)
{
    zk_client_job_t job;
    int rc = zk_client_job (client, queue, id, &job);
    cr_assert_eq (rc, 0, "job: %s (%s)", zk_strerror (rc), zk_client_last_error (client));
    cr_assert_str_eq (job.state, state);
    cr_assert_str_eq (job.queue, where);
    cr_assert_eq (job.path.count, steps, "%zu steps", job.path.count);
    cr_assert_str_eq (job.path.steps[steps - 1].queue, where);
    if (detail) {
        cr_assert_not_null (job.detail, "no detail");
        char *text = zframe_strdup (zmsg_first (job.detail));
        cr_assert_str_eq (text, detail);
        free (text);
    }
    else
        cr_assert_null (job.detail);
    zmsg_destroy (&job.detail);
}

Test (zk_client_jobs, a_consumer_name_goes_with_get_and_shows_in_the_trace)
{
    fake_queue_t *fake = fake_queue_new ();
    zk_client_t *client = s_client (fake, "jobs", "builder-7:4242");
    uint8_t id[ZK_ID_SIZE];
    s_submit (client, "one", id);
    zk_client_trace_t trace;
    cr_assert_eq (zk_client_trace (client, NULL, id, &trace), 0);
    cr_assert_eq (trace.count, 1);
    cr_assert_str_eq (trace.steps[0].queue, "jobs");
    cr_assert_str_eq (trace.steps[0].state, "queued");
    cr_assert_str_eq (trace.steps[0].consumer, "");  //  "-" on the wire
    cr_assert_gt (trace.steps[0].accepted_us, 0);
    cr_assert_eq (trace.steps[0].started_us, 0);

    zk_delivery_t *delivery = s_take (client, "one");
    cr_assert_eq (zk_client_trace (client, NULL, id, &trace), 0);
    cr_assert_str_eq (trace.steps[0].state, "running");
    cr_assert_str_eq (trace.steps[0].consumer, "builder-7:4242");
    cr_assert_eq (trace.steps[0].attempts, 1);
    cr_assert_geq (trace.steps[0].started_us, trace.steps[0].accepted_us);
    cr_assert_eq (zk_client_ack (client, delivery, NULL), 0);
    zk_delivery_destroy (&delivery);
    zk_client_destroy (&client);

    //  Names that cannot go on the wire are refused at once.
    char long_name[ZK_CLIENT_CONSUMER_MAX + 2];
    memset (long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    const char *bad[] = {"", "two words", "tab\there", "\x7f", long_name};
    char *spec = fake_queue_spec (fake, "jobs");
    for (size_t index = 0; index < sizeof bad / sizeof bad[0]; index++) {
        zk_client_config_t config = {.consumer = bad[index]};
        cr_assert_null (zk_client_new (spec, &config), "accepted '%s'", bad[index]);
    }
    //  64 bytes is fine.
    long_name[ZK_CLIENT_CONSUMER_MAX] = 0;
    zk_client_config_t config = {.consumer = long_name};
    client = zk_client_new (spec, &config);
    cr_assert_not_null (client);
    zk_client_destroy (&client);
    free (spec);
    fake_queue_destroy (&fake);
}

Test (zk_client_jobs, fwd_hands_the_job_to_the_next_step_under_the_same_id)
{
    fake_queue_t *fake = fake_queue_new ();
    zk_client_t *step1 = s_client (fake, "step1", "w1:1");
    zk_client_t *step2 = s_client (fake, "step2", "w2:2");
    uint8_t id[ZK_ID_SIZE];
    s_submit (step1, "input", id);
    zk_delivery_t *delivery = s_take (step1, "input");

    //  What FWD refuses before anything is sent.
    zmsg_t *body = s_body ("x");
    cr_assert_eq (zk_client_fwd (step1, delivery, "step1", &body), ZK_EINVAL);
    cr_assert_null (body);
    body = s_body ("x");
    cr_assert_eq (zk_client_fwd (step1, delivery, "bad/name", &body), ZK_EINVAL);
    body = s_body ("x");
    cr_assert_eq (zk_client_fwd (step1, delivery, NULL, &body), ZK_EINVAL);
    body = zmsg_new ();
    cr_assert_eq (zk_client_fwd (step1, delivery, "step2", &body), ZK_EINVAL);
    cr_assert_eq (fake_queue_ask (fake, "FWDS"), 0);

    body = s_body ("output of step1");
    cr_assert_eq (zk_client_fwd (step1, delivery, "step2", &body), 0, "%s",
                  zk_client_last_error (step1));
    //  Held no more: a second FWD (or an ACK) is a 404.
    body = s_body ("again");
    cr_assert_eq (zk_client_fwd (step1, delivery, "step2", &body), ZK_ENOENT);
    cr_assert_eq (zk_client_ack (step1, delivery, NULL), ZK_ENOENT);

    zk_delivery_t *next = s_take (step2, "output of step1");
    cr_assert_eq (memcmp (next->id, id, ZK_ID_SIZE), 0, "the job id travels");
    cr_assert_str_eq (next->queue, "step2");
    cr_assert_eq (next->attempt, 1);

    //  The path, from either end.
    const char *from[] = {"step1", "step2"};
    for (int index = 0; index < 2; index++) {
        zk_client_trace_t trace;
        cr_assert_eq (zk_client_trace (step1, from[index], id, &trace), 0);
        cr_assert_eq (trace.count, 2);
        cr_assert_str_eq (trace.steps[0].queue, "step1");
        cr_assert_str_eq (trace.steps[0].state, "done");
        cr_assert_str_eq (trace.steps[0].consumer, "w1:1");
        cr_assert_gt (trace.steps[0].finished_us, 0);
        cr_assert_str_eq (trace.steps[1].queue, "step2");
        cr_assert_str_eq (trace.steps[1].state, "running");
        cr_assert_str_eq (trace.steps[1].consumer, "w2:2");
    }
    //  The async form, with its callback.
    uint8_t other[ZK_ID_SIZE];
    zk_client_t *producer = s_client (fake, "step1", NULL);
    s_submit (producer, "second", other);
    zk_delivery_t *second = s_take (step1, "second");
    body = s_body ("second out");
    cr_assert_eq (zk_client_fwd_async (step1, second, "step2", &body, NULL, NULL), 0);
    cr_assert (fake_queue_wait (fake, 2, WAIT_MS, "FWDS"));
    zk_delivery_t *second_next;
    cr_assert_eq (zk_client_ack (step2, next, NULL), 0);
    cr_assert_eq (zk_client_recv (step2, WAIT_MS, &second_next), 0);
    cr_assert_eq (memcmp (second_next->id, other, ZK_ID_SIZE), 0);

    zk_delivery_destroy (&second_next);
    zk_delivery_destroy (&second);
    zk_delivery_destroy (&next);
    zk_delivery_destroy (&delivery);
    zk_client_destroy (&producer);
    zk_client_destroy (&step2);
    zk_client_destroy (&step1);
    fake_queue_destroy (&fake);
}

Test (zk_client_jobs, a_job_is_its_state_in_the_last_step)
{
    fake_queue_t *fake = fake_queue_new ();
    fake_queue_ask (fake, "MAXDELIVER 1");
    zk_client_t *client = s_client (fake, "step1", NULL);
    zk_client_t *step2 = s_client (fake, "step2", NULL);
    uint8_t id[ZK_ID_SIZE];
    s_submit (client, "work", id);
    s_expect_job (client, NULL, id, "queued", "step1", 1, NULL);
    zk_delivery_t *delivery = s_take (client, "work");
    s_expect_job (client, NULL, id, "running", "step1", 1, NULL);
    zmsg_t *body = s_body ("half done");
    cr_assert_eq (zk_client_fwd (client, delivery, "step2", &body), 0);
    //  Asked from the first queue or the last, the same answer.
    s_expect_job (client, NULL, id, "queued", "step2", 2, NULL);
    s_expect_job (client, "step2", id, "queued", "step2", 2, NULL);
    zk_delivery_t *next = s_take (step2, "half done");
    zmsg_t *result = s_body ("all done");
    cr_assert_eq (zk_client_ack (step2, next, &result), 0);
    s_expect_job (client, NULL, id, "done", "step2", 2, "all done");

    //  A job that dies: the reason is its detail.
    uint8_t poison[ZK_ID_SIZE];
    s_submit (client, "poison", poison);
    zk_delivery_t *bad = s_take (client, "poison");
    cr_assert_eq (zk_client_nack (client, bad, false, "exit status 3"), 0);
    s_expect_job (client, NULL, poison, "dead", "step1", 1, "exit status 3");

    //  Unknown ids, and ids unknown in the queue asked.
    uint8_t unknown[ZK_ID_SIZE];
    zk_id_generate (unknown);
    zk_client_job_t job;
    cr_assert_eq (zk_client_job (client, NULL, unknown, &job), ZK_ENOENT);
    cr_assert_null (job.detail);
    cr_assert_eq (zk_client_job (client, "step3", id, &job), ZK_ENOENT);
    cr_assert_eq (zk_client_job (client, "bad/queue", id, &job), ZK_EINVAL);

    zk_delivery_destroy (&bad);
    zk_delivery_destroy (&next);
    zk_delivery_destroy (&delivery);
    zk_client_destroy (&step2);
    zk_client_destroy (&client);
    fake_queue_destroy (&fake);
}

Test (zk_client_jobs, malformed_trace_replies_are_refused)
{
    fake_queue_t *fake = fake_queue_new ();
    zk_client_t *client = s_client (fake, "jobs", NULL);
    uint8_t id[ZK_ID_SIZE];
    s_submit (client, "one", id);
    int64_t cases = fake_queue_ask (fake, "BADTRACES");
    cr_assert_gt (cases, 10);
    for (int64_t which = 1; which <= cases; which++) {
        fake_queue_ask (fake, "BADTRACE %" PRId64, which);
        zk_client_trace_t trace = {.count = 99};
        cr_assert_eq (zk_client_trace (client, NULL, id, &trace), ZK_EPROTO, "case %" PRId64,
                      which);
        cr_assert_eq (trace.count, 0);
        fake_queue_ask (fake, "BADTRACE %" PRId64, which);
        zk_client_job_t job;
        cr_assert_eq (zk_client_job (client, NULL, id, &job), ZK_EPROTO);
        cr_assert_null (job.detail);
    }
    zk_client_stats_t stats;
    zk_client_stats (client, &stats);
    cr_assert_eq (stats.refused, (uint64_t) (2 * cases));
    //  And the client still works.
    zk_client_trace_t trace;
    cr_assert_eq (zk_client_trace (client, NULL, id, &trace), 0);
    cr_assert_eq (trace.count, 1);
    zk_client_destroy (&client);
    fake_queue_destroy (&fake);
}

Test (zk_client_jobs, step_lines_parse_exactly)
{
    struct {
        const char *line;
        bool good;
    } cases[] = {
        {"jobs done 1 2 3 4 host:1", true},
        {"a.b-c_d queued 0 0 0 0 -", true},
        {"jobs running 18446744073709551615 9223372036854775807 0 0 c", true},
        {"jobs running 1 9223372036854775808 0 0 c", false},
        {"jobs running 1 1 1 1", false},
        {"", false},
        {" jobs done 1 1 1 1 c", false},
        {"jobs done 1 1 1 1 c ", false},
        {"jobs done 1 1 1 1 c d", false},
        {"jobs d0ne 1 1 1 1 c", false},
        {"jobs done +1 1 1 1 c", false},
        {"../x done 1 1 1 1 c", false},
    };
    for (size_t index = 0; index < sizeof cases / sizeof cases[0]; index++) {
        zframe_t *frame = zframe_new (cases[index].line, strlen (cases[index].line));
        zk_client_step_t step;
        int rc = zk_client_step (frame, &step);
        cr_assert_eq (rc == 0, cases[index].good, "'%s': %d", cases[index].line, rc);
        zframe_destroy (&frame);
    }
    zframe_t *frame = zframe_new ("jobs done 1 2 3 4 host:1", 24);
    zk_client_step_t step;
    cr_assert_eq (zk_client_step (frame, &step), 0);
    cr_assert_str_eq (step.queue, "jobs");
    cr_assert_str_eq (step.state, "done");
    cr_assert_eq (step.attempts, 1);
    cr_assert_eq (step.accepted_us, 2);
    cr_assert_eq (step.started_us, 3);
    cr_assert_eq (step.finished_us, 4);
    cr_assert_str_eq (step.consumer, "host:1");
    zframe_destroy (&frame);
    //  A NUL inside a line is a bad byte, not an end.
    frame = zframe_new ("jobs done 1 2 3 4 ho\0st", 23);
    cr_assert_eq (zk_client_step (frame, &step), ZK_EPROTO);
    zframe_destroy (&frame);
}

Test (zk_client_jobs, set_timeout_applies_to_the_next_requests)
{
    fake_queue_t *fake = fake_queue_new ();
    zk_client_t *client = s_client (fake, "jobs", NULL);
    cr_assert_eq (zk_client_ping (client), 0);
    fake_queue_ask (fake, "MODE silent");
    zk_client_set_timeout (client, 300);
    int64_t start = zclock_mono ();
    cr_assert_eq (zk_client_ping (client), ZK_ETIMEDOUT);
    int64_t took = zclock_mono () - start;
    cr_assert (took >= 250 && took < 3000, "took %" PRId64 " ms", took);
    zk_client_destroy (&client);
    fake_queue_destroy (&fake);
}
