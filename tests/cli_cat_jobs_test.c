/*  cli_cat_jobs — async jobs from the shell: zkit-cat --submit, --status,
    --wait.
    cli_cat_jobs: end to end with the real zkit-queue and zkit-worker
    binaries: submit, queued, running (attempt 1), done, the result; a
    job whose worker is SIGKILLed mid-run finishes on another (attempt 2);
    a failing job ends dead with its reason; --wait --timeout; unknown ids;
    a three-step workflow whose status shows every step.
    cli_cat_jobs_fake: the output formats against the fake ZKQ/1 server
    (fake_queue.h), where the path, results and reasons are chosen
    exactly, hostile TRACE replies, and every usage error.               */

#include "fake_queue.h"

#include <signal.h>
#include <stdarg.h>

#define JOB_WAIT_MS 30000

static char *s_dir;

static void
s_setup (void)
{
    s_dir = tu_tmpdir ();
    cr_assert_not_null (s_dir);
}

static void
s_teardown (void)
{
    tu_rmdir (s_dir);
    free (s_dir);
}

TestSuite (cli_cat_jobs, .init = s_setup, .fini = s_teardown, .timeout = 120);
TestSuite (cli_cat_jobs_fake, .init = s_setup, .fini = s_teardown, .timeout = 60);

static int
s_vcat (const char *input, char **out_p, char **err_p, va_list args)
{
    char bin[512];
    tu_bin ("zkit-cat", bin, sizeof bin);
    char *argv[32] = {bin};
    int argc = 1;
    char *word;
    while (argc < 31 && (word = va_arg (args, char *)))
        argv[argc++] = word;
    argv[argc] = NULL;
    return tu_run (s_dir, argv, input, out_p, err_p, JOB_WAIT_MS + 10000);
}

//  Run zkit-cat with input on stdin and the NULL-terminated arguments;
//  its exit code, stdout and stderr (callers free; out_p/err_p may be NULL).
static int
s_cat (const char *input, char **out_p, char **err_p, ...)
{
    va_list args;
    va_start (args, err_p);
    char *out = NULL, *err = NULL;
    int rc = s_vcat (input, &out, &err, args);
    va_end (args);
    if (out_p)
        *out_p = out;
    else
        free (out);
    if (err_p)
        *err_p = err;
    else
        free (err);
    return rc;
}

//  --submit input into spec: the id it printed (one line, checked). Caller frees.
static char *
s_submit (const char *spec, const char *input)
{
    char *out, *err;
    int rc = s_cat (input, &out, &err, "--submit", spec, NULL);
    cr_assert_eq (rc, 0, "--submit: exit %d: %s", rc, err);
    size_t length = strlen (out);
    cr_assert (length == ZK_ID_TEXT_SIZE && out[length - 1] == '\n', "--submit printed '%s'", out);
    out[length - 1] = 0;
    uint8_t id[ZK_ID_SIZE];
    cr_assert_eq (zk_id_parse (out, id), 0, "not an id: %s", out);
    free (err);
    return out;
}

//  --status of id in spec (extra: one more argument or NULL): its stdout,
//  exit 0 expected. Caller frees.
static char *
s_status (const char *spec, const char *id, const char *extra, const char *extra_value)
{
    char *out, *err;
    int rc = s_cat (NULL, &out, &err, "--status", id, spec, extra, extra_value, NULL);
    cr_assert_eq (rc, 0, "--status: exit %d: %s", rc, err);
    free (err);
    return out;
}

//  --wait id in spec (--timeout 30): exit 0 and exactly expected on stdout.
static void
s_wait_done (const char *spec, const char *id, const char *expected)
{
    char *out, *err;
    int rc = s_cat (NULL, &out, &err, "--wait", id, spec, "--timeout", "30", NULL);
    cr_assert_eq (rc, 0, "--wait: exit %d: %s", rc, err);
    cr_assert_str_eq (out, expected);
    free (out);
    free (err);
}

//  Does text start with prefix?
static bool
s_starts (const char *text, const char *prefix)
{
    return strncmp (text, prefix, strlen (prefix)) == 0;
}

//  If python3 is there, check that json is one JSON object whose "state" is state.
static void
s_check_json (const char *json, const char *state)
{
    cr_assert (json[0] == '{', "%s", json);
    const char *newline = strchr (json, '\n');
    cr_assert (newline && newline[1] == 0 && newline[-1] == '}', "not one line: %s", json);
    char *field = zsys_sprintf ("\"state\":\"%s\"", state);
    cr_assert (strstr (json, field), "no %s in %s", field, json);
    free (field);
    char *script = zsys_sprintf ("import json,sys\n"
                                 "d = json.load(sys.stdin)\n"
                                 "assert isinstance(d, dict) and d['state'] == '%s', d\n"
                                 "assert isinstance(d['path'], list) and d['path'], d\n"
                                 "print('ok')",
                                 state);
    char *argv[] = {"/usr/bin/env", "python3", "-c", script, NULL};
    char *out = NULL, *err = NULL;
    int rc = tu_run (s_dir, argv, json, &out, &err, 20000);
    //  127: no python3 here; the checks above stand alone.
    if (rc != 127)
        cr_assert (rc == 0 && out && streq (out, "ok\n"), "python3 refused the JSON (%d): %s %s",
                   rc, err, json);
    free (out);
    free (err);
    free (script);
}

//  ===========================================================================
//  With the real zkit-queue and zkit-worker

//  A zkit-queue on tcp://127.0.0.1:* with the extra options (NULL-terminated);
//  its endpoint (caller frees).
static char *
s_queue_start (tu_daemon_t *daemon, ...)
{
    static int instances;
    char *data = zsys_sprintf ("%s/data-%d", s_dir, instances++);
    const char *args[24] = {"--data", data};
    int argc = 2;
    va_list extra;
    va_start (extra, daemon);
    const char *word;
    while (argc < 20 && (word = va_arg (extra, const char *)))
        args[argc++] = word;
    va_end (extra);
    args[argc++] = "router@tcp://127.0.0.1:*";
    args[argc] = NULL;
    int rc = tu_daemon_start (daemon, "zkit-queue", args, JOB_WAIT_MS);
    free (data);
    cr_assert_eq (rc, 0, "zkit-queue did not start");
    char *endpoint = tu_ready_endpoint (daemon->ready, "router");
    cr_assert_not_null (endpoint, "no router line in %s", daemon->ready);
    return endpoint;
}

static void
s_worker_start (tu_daemon_t *daemon, const char *const *options, const char *const *command)
{
    int rc = tu_daemon_start_command (daemon, "zkit-worker", options, command, JOB_WAIT_MS);
    cr_assert_eq (rc, 0, "zkit-worker never got ready");
}

static void
s_stop (tu_daemon_t *daemon)
{
    cr_assert_eq (tu_stop (&daemon->proc, SIGTERM, JOB_WAIT_MS), 0);
    tu_daemon_cleanup (daemon);
}

//  A zkit-queue (with option and value, or NULL) and one job submitted to
//  its queue name.
typedef struct {
    tu_daemon_t queue;
    char *endpoint;
    char *spec;  //  queue>ENDPOINT/NAME
    char *id;    //  the job's
} s_job_t;

static void
s_job_start (s_job_t *job, const char *name, const char *body, const char *option,
             const char *value)
{
    job->endpoint = s_queue_start (&job->queue, option, value, NULL);
    job->spec = zsys_sprintf ("queue>%s/%s", job->endpoint, name);
    job->id = s_submit (job->spec, body);
}

static void
s_job_end (s_job_t *job)
{
    s_stop (&job->queue);
    free (job->id);
    free (job->spec);
    free (job->endpoint);
}

static void
s_touch (const char *path)
{
    FILE *file = fopen (path, "w");
    cr_assert_not_null (file, "%s", path);
    fclose (file);
}

Test (cli_cat_jobs, submit_status_running_done_and_wait)
{
    s_job_t job;
    s_job_start (&job, "resize", "payload", NULL, NULL);
    const char *spec = job.spec, *id = job.id;

    char *out = s_status (spec, id, NULL, NULL);
    cr_assert (s_starts (out, "queued attempt=0 since=20"), "%s", out);
    cr_assert (
        strstr (out, "Z queue=resize\npath: resize queued attempts=0 consumer=- accepted=20"), "%s",
        out);
    free (out);

    //  The command says it started, then waits for the go file.
    char *started = zsys_sprintf ("%s/started", s_dir);
    char *go = zsys_sprintf ("%s/go", s_dir);
    char *script = zsys_sprintf ("touch '%s'; for i in $(seq 3000); do [ -e '%s' ] && break; "
                                 "sleep 0.01; done; tr a-z A-Z",
                                 started, go);
    tu_daemon_t worker;
    const char *options[] = {"--in", spec, "--name", "resizer-1", "--timeout", "60", NULL};
    const char *command[] = {"sh", "-c", script, NULL};
    s_worker_start (&worker, options, command);
    char *ready = tu_wait_file (started, JOB_WAIT_MS);
    cr_assert_not_null (ready, "the job never started");
    free (ready);
    out = s_status (spec, id, NULL, NULL);
    cr_assert (s_starts (out, "running attempt=1 since=20"), "%s", out);
    cr_assert (strstr (out, "path: resize running attempts=1 consumer=resizer-1 accepted=20"), "%s",
               out);
    free (out);
    out = s_status (spec, id, "--format", "json");
    s_check_json (out, "running");
    free (out);

    s_touch (go);
    s_wait_done (spec, id, "PAYLOAD");
    out = s_status (spec, id, NULL, NULL);
    cr_assert (s_starts (out, "done attempt=1 since=20"), "%s", out);
    cr_assert (strstr (out, " finished=20"), "%s", out);
    cr_assert (strstr (out, "\nresult: PAYLOAD\n"), "%s", out);
    free (out);
    out = s_status (spec, id, "--format", "json");
    s_check_json (out, "done");
    cr_assert (strstr (out, "\"result\":\"PAYLOAD\""), "%s", out);
    cr_assert (strstr (out, "\"consumer\":\"resizer-1\""), "%s", out);
    char *id_field = zsys_sprintf ("{\"id\":\"%s\",", id);
    cr_assert (s_starts (out, id_field), "%s", out);
    free (id_field);
    free (out);
    //  A finished job: --wait answers at once.
    s_wait_done (spec, id, "PAYLOAD");

    s_stop (&worker);
    s_job_end (&job);
    free (script);
    free (go);
    free (started);
}

Test (cli_cat_jobs, a_job_whose_worker_is_killed_finishes_on_another)
{
    s_job_t job;
    s_job_start (&job, "jobs", "survive me", NULL, NULL);
    const char *spec = job.spec, *id = job.id;

    //  The first worker's command writes its pid, then blocks (bounded).
    char *started = zsys_sprintf ("%s/first.pid", s_dir);
    char *script = zsys_sprintf ("echo $$ > '%s.tmp' && mv '%s.tmp' '%s'; "
                                 "for i in $(seq 3000); do sleep 0.01; done; cat",
                                 started, started, started);
    tu_daemon_t first;
    const char *options1[] = {"--in", spec, "--name", "first", NULL};
    const char *command1[] = {"sh", "-c", script, NULL};
    s_worker_start (&first, options1, command1);
    char *pid = tu_wait_file (started, JOB_WAIT_MS);
    cr_assert_not_null (pid, "the first run never started");
    char *out = s_status (spec, id, NULL, NULL);
    cr_assert (s_starts (out, "running attempt=1 "), "%s", out);
    cr_assert (strstr (out, "consumer=first "), "%s", out);
    free (out);

    //  SIGKILL mid-run: its connection closes, the job goes back.
    cr_assert_eq (tu_stop (&first.proc, SIGKILL, JOB_WAIT_MS), 128 + SIGKILL);
    pid_t command_pid = (pid_t) atoi (pid);
    cr_assert_gt (command_pid, 1, "pid file: '%s'", pid);
    kill (-command_pid, SIGKILL);  //  the orphaned command's group (its own)
    tu_daemon_cleanup (&first);
    tu_daemon_t second;
    const char *options2[] = {"--in", spec, "--name", "second", NULL};
    const char *command2[] = {"cat", NULL};
    s_worker_start (&second, options2, command2);
    s_wait_done (spec, id, "survive me");
    out = s_status (spec, id, NULL, NULL);
    cr_assert (s_starts (out, "done attempt=2 "), "%s", out);
    cr_assert (strstr (out, "path: jobs done attempts=2 consumer=second "), "%s", out);
    cr_assert (strstr (out, "\nresult: survive me\n"), "%s", out);
    free (out);

    s_stop (&second);
    s_job_end (&job);
    free (pid);
    free (script);
    free (started);
}

Test (cli_cat_jobs, a_failing_job_ends_dead_with_its_reason)
{
    s_job_t job;
    s_job_start (&job, "jobs", "poison", "--max-deliver", "2");
    const char *spec = job.spec, *id = job.id;
    tu_daemon_t worker;
    const char *options[] = {"--in", spec, NULL};
    const char *command[] = {"sh", "-c", "cat >/dev/null; exit 7", NULL};
    s_worker_start (&worker, options, command);
    char *out, *err;
    int rc = s_cat (NULL, &out, &err, "--wait", id, spec, "--timeout", "30", NULL);
    cr_assert_eq (rc, 1, "--wait: exit %d: %s", rc, err);
    cr_assert_str_eq (out, "");
    char *expected = zsys_sprintf ("zkit-cat: error: job %s is dead in jobs: exit status 7\n", id);
    cr_assert_str_eq (err, expected);
    free (expected);
    free (out);
    free (err);
    out = s_status (spec, id, NULL, NULL);
    cr_assert (s_starts (out, "dead attempt=2 "), "%s", out);
    cr_assert (strstr (out, "\nreason: exit status 7\n"), "%s", out);
    free (out);
    out = s_status (spec, id, "--format", "json");
    s_check_json (out, "dead");
    cr_assert (strstr (out, "\"reason\":\"exit status 7\""), "%s", out);
    free (out);
    s_stop (&worker);
    s_job_end (&job);
}

Test (cli_cat_jobs, wait_gives_up_at_its_timeout_and_unknown_ids_fail)
{
    s_job_t job;
    s_job_start (&job, "idle", "nobody takes me", NULL, NULL);
    const char *spec = job.spec, *id = job.id;
    int64_t start = zclock_mono ();
    char *out, *err;
    int rc = s_cat (NULL, &out, &err, "--wait", id, spec, "--timeout", "1", NULL);
    int64_t took = zclock_mono () - start;
    cr_assert_eq (rc, 3, "--wait: exit %d: %s", rc, err);
    cr_assert (took >= 900 && took < 8000, "took %" PRId64 " ms", took);
    char *expected =
        zsys_sprintf ("zkit-cat: error: job %s did not end within 1 s (queued in idle)\n", id);
    cr_assert_str_eq (err, expected);
    cr_assert_str_eq (out, "");
    free (expected);
    free (out);
    free (err);

    uint8_t unknown[ZK_ID_SIZE];
    zk_id_generate (unknown);
    char text[ZK_ID_TEXT_SIZE];
    zk_id_format (unknown, text);
    const char *flags[] = {"--status", "--wait"};
    for (int index = 0; index < 2; index++) {
        rc = s_cat (NULL, &out, &err, flags[index], text, spec, NULL);
        cr_assert_eq (rc, 1, "%s: exit %d: %s", flags[index], rc, err);
        expected = zsys_sprintf ("zkit-cat: error: job %s unknown in idle\n", text);
        cr_assert_str_eq (err, expected);
        cr_assert_str_eq (out, "");
        free (expected);
        free (out);
        free (err);
    }
    //  Known, but not in the queue asked.
    char *other = zsys_sprintf ("queue>%s/elsewhere", job.endpoint);
    rc = s_cat (NULL, NULL, &err, "--status", id, other, NULL);
    cr_assert_eq (rc, 1, "%s", err);
    free (err);
    free (other);
    s_job_end (&job);
}

Test (cli_cat_jobs, a_three_step_workflow_shows_every_step)
{
    tu_daemon_t queue;
    char *endpoint = s_queue_start (&queue, NULL);
    char *steps[4];
    for (int index = 1; index <= 3; index++)
        steps[index] = zsys_sprintf ("queue>%s/step%d", endpoint, index);
    tu_daemon_t workers[3];
    for (int index = 1; index <= 3; index++) {
        char name[16];
        snprintf (name, sizeof name, "w%d", index);
        char *script = zsys_sprintf ("cat; printf ' %d'", index);
        const char *options[] = {"--in",
                                 steps[index],
                                 "--name",
                                 name,
                                 index < 3 ? "--out" : NULL,
                                 index < 3 ? steps[index + 1] : NULL,
                                 NULL};
        const char *command[] = {"sh", "-c", script, NULL};
        s_worker_start (&workers[index - 1], options, command);
        free (script);
    }
    char *id = s_submit (steps[1], "job");
    s_wait_done (steps[1], id, "job 1 2 3");
    char *out;
    //  From the first queue or the last, the same path of three steps.
    for (int from = 1; from <= 3; from += 2) {
        out = s_status (steps[from], id, NULL, NULL);
        cr_assert (s_starts (out, "done attempt=1 since=20"), "%s", out);
        cr_assert (strstr (out, "Z queue=step3\npath: step1 done attempts=1 consumer=w1 "), "%s",
                   out);
        cr_assert (strstr (out, "\n      step2 done attempts=1 consumer=w2 "), "%s", out);
        cr_assert (strstr (out, "\n      step3 done attempts=1 consumer=w3 "), "%s", out);
        cr_assert (strstr (out, "\nresult: job 1 2 3\n"), "%s", out);
        free (out);
    }
    out = s_status (steps[1], id, "--format", "json");
    s_check_json (out, "done");
    cr_assert (strstr (out, "\"path\":[{\"queue\":\"step1\",\"state\":\"done\",\"attempts\":1,"),
               "%s", out);
    free (out);
    for (int index = 0; index < 3; index++)
        s_stop (&workers[index]);
    s_stop (&queue);
    for (int index = 1; index <= 3; index++)
        free (steps[index]);
    free (id);
    free (endpoint);
}

//  ===========================================================================
//  Output formats, against the fake server

//  A client of queue name on fake, taking as consumer (or NULL).
static zk_client_t *
s_client (fake_queue_t *fake, const char *name, const char *consumer)
{
    zk_client_config_t config = {.consumer = consumer};
    return fake_queue_client (fake, name, &config);
}

static zk_delivery_t *
s_take (zk_client_t *client)
{
    cr_assert_eq (zk_client_get (client, NULL, 1), 0);
    zk_delivery_t *delivery;
    cr_assert_eq (zk_client_recv (client, 5000, &delivery), 0);
    return delivery;
}

//  A job through step1 (by w1:1, forwarded) into step2 (by w2:2), then
//  acked there with result (size bytes): its id as text into id.
static void
s_two_steps (fake_queue_t *fake, const void *result, size_t size, char *id)
{
    zk_client_t *one = s_client (fake, "step1", "w1:1");
    zk_client_t *two = s_client (fake, "step2", "w2:2");
    zmsg_t *body = zmsg_new ();
    zmsg_addstr (body, "in");
    uint8_t msgid[ZK_ID_SIZE];
    cr_assert_eq (zk_client_put (one, NULL, &body, msgid), 0);
    cr_assert_eq (zk_client_flush (one, 5000), 0);
    zk_delivery_t *delivery = s_take (one);
    body = zmsg_new ();
    zmsg_addstr (body, "mid");
    cr_assert_eq (zk_client_fwd (one, delivery, "step2", &body), 0);
    zk_delivery_destroy (&delivery);
    delivery = s_take (two);
    zmsg_t *reply = zmsg_new ();
    zmsg_addmem (reply, result, size);
    cr_assert_eq (zk_client_ack (two, delivery, &reply), 0);
    zk_delivery_destroy (&delivery);
    zk_client_destroy (&one);
    zk_client_destroy (&two);
    zk_id_format (msgid, id);
}

Test (cli_cat_jobs_fake, status_text_shows_the_path_and_a_raw_result_last)
{
    fake_queue_t *fake = fake_queue_new ();
    char id[ZK_ID_TEXT_SIZE];
    s_two_steps (fake, "line 1\nline 2\n", 14, id);
    char *spec = fake_queue_spec (fake, "step1");
    char *out = s_status (spec, id, NULL, NULL);
    //  done attempt=1 since=... queue=step2 / path: ... / result: N bytes follow / the bytes
    cr_assert (s_starts (out, "done attempt=1 since=20"), "%s", out);
    cr_assert (strstr (out, "Z queue=step2\npath: step1 done attempts=1 consumer=w1:1 accepted=20"),
               "%s", out);
    cr_assert (strstr (out, "\n      step2 done attempts=1 consumer=w2:2 accepted=20"), "%s", out);
    const char *tail = "\nresult: 14 bytes follow\nline 1\nline 2\n";
    size_t length = strlen (out);
    cr_assert (length > strlen (tail) && streq (out + length - strlen (tail), tail), "%s", out);
    int lines = 0;
    for (const char *c = out; *c; c++)
        lines += *c == '\n';
    cr_assert_eq (lines, 6, "%s", out);
    free (out);
    //  --wait prints the result as it is.
    s_wait_done (spec, id, "line 1\nline 2\n");
    out = s_status (spec, id, "--format", "json");
    s_check_json (out, "done");
    cr_assert (strstr (out, "\"queue\":\"step2\",\"attempt\":1,\"since\":\"20"), "%s", out);
    cr_assert (strstr (out, "\"result\":\"line 1\\u000aline 2\\u000a\""), "%s", out);
    cr_assert (strstr (out, "\"path\":[{\"queue\":\"step1\",\"state\":\"done\",\"attempts\":1,"
                            "\"accepted\":\"20"),
               "%s", out);
    cr_assert (strstr (out, "\"consumer\":\"w1:1\"},{\"queue\":\"step2\""), "%s", out);
    free (out);
    free (spec);
    fake_queue_destroy (&fake);
}

Test (cli_cat_jobs_fake, results_and_reasons_that_are_not_text)
{
    fake_queue_t *fake = fake_queue_new ();
    char id[ZK_ID_TEXT_SIZE];
    const uint8_t binary[] = {0xff, 0x00, 0x41};
    s_two_steps (fake, binary, sizeof binary, id);
    char *spec = fake_queue_spec (fake, "step2");
    char *out = s_status (spec, id, "--format", "json");
    cr_assert (strstr (out, "\"result\":{\"hex\":\"ff0041\"}"), "%s", out);
    free (out);
    char *err;
    int rc = s_cat (NULL, &out, &err, "--wait", id, spec, NULL);
    cr_assert_eq (rc, 0, "%s", err);
    cr_assert_eq (memcmp (out, "\xff", 1), 0);  //  raw: tu_run stops at the NUL
    free (out);
    free (err);

    //  A dead job whose reason has control bytes: escaped in text, JSON-escaped.
    zk_client_t *client = s_client (fake, "jobs", NULL);
    zmsg_t *body = zmsg_new ();
    zmsg_addstr (body, "x");
    uint8_t msgid[ZK_ID_SIZE];
    cr_assert_eq (zk_client_put (client, NULL, &body, msgid), 0);
    cr_assert_eq (zk_client_flush (client, 5000), 0);
    zk_delivery_t *delivery = s_take (client);
    cr_assert_eq (zk_client_nack (client, delivery, true, "bad\x01line\nnext"), 0);
    zk_delivery_destroy (&delivery);
    zk_client_destroy (&client);
    char dead[ZK_ID_TEXT_SIZE];
    zk_id_format (msgid, dead);
    char *jobs = fake_queue_spec (fake, "jobs");
    out = s_status (jobs, dead, NULL, NULL);
    cr_assert (s_starts (out, "dead attempt=1 "), "%s", out);
    cr_assert (strstr (out, "\nreason: bad\\x01line\\x0anext\n"), "%s", out);
    free (out);
    out = s_status (jobs, dead, "--format", "json");
    cr_assert (strstr (out, "\"reason\":\"bad\\u0001line\\u000anext\""), "%s", out);
    free (out);
    rc = s_cat (NULL, &out, &err, "--wait", dead, jobs, NULL);
    cr_assert_eq (rc, 1);
    cr_assert (strstr (err, "is dead in jobs: bad\\x01line\\x0anext\n"), "%s", err);
    free (out);
    free (err);
    free (jobs);
    free (spec);
    fake_queue_destroy (&fake);
}

Test (cli_cat_jobs_fake, a_malformed_trace_is_an_error)
{
    fake_queue_t *fake = fake_queue_new ();
    char *spec = fake_queue_spec (fake, "jobs");
    char *id = s_submit (spec, "x");
    fake_queue_ask (fake, "BADTRACE 1");
    char *out, *err;
    int rc = s_cat (NULL, &out, &err, "--status", id, spec, NULL);
    cr_assert_eq (rc, 1);
    cr_assert (strstr (err, "a malformed TRACE reply"), "%s", err);
    cr_assert_str_eq (out, "");
    free (out);
    free (err);
    fake_queue_ask (fake, "BADTRACE 2");
    rc = s_cat (NULL, &out, &err, "--wait", id, spec, "--timeout", "5", NULL);
    cr_assert_eq (rc, 1);
    cr_assert (strstr (err, "a malformed TRACE reply"), "%s", err);
    free (out);
    free (err);
    free (id);
    free (spec);
    fake_queue_destroy (&fake);
}

Test (cli_cat_jobs_fake, submit_takes_all_of_stdin_as_one_job)
{
    fake_queue_t *fake = fake_queue_new ();
    char *spec = fake_queue_spec (fake, "jobs");
    //  Lines, frames (-F), one --data, nothing at all: one job each.
    char *id = s_submit (spec, "line 1\nline 2\n");
    free (id);
    char *out, *err;
    int rc = s_cat ("a|b", &out, &err, "--submit", "-F", "|", spec, NULL);
    cr_assert_eq (rc, 0, "%s", err);
    free (out);
    free (err);
    rc = s_cat (NULL, &out, &err, "--submit", "--data", "given", spec, NULL);
    cr_assert_eq (rc, 0, "%s", err);
    free (out);
    free (err);
    id = s_submit (spec, "");
    free (id);
    cr_assert_eq (fake_queue_ask (fake, "COUNT jobs queued"), 4);
    rc = s_cat (NULL, &out, &err, spec, "-n", "4", "-F", "+", "--timeout", "10", NULL);
    cr_assert_eq (rc, 0, "%s", err);
    cr_assert_str_eq (out, "line 1\nline 2\n\na+b\ngiven\n\n");
    free (out);
    free (err);
    //  No server: not confirmed, exit 3.
    char *none = zsys_sprintf ("queue>ipc://%s/none.sock/jobs", s_dir);
    rc = s_cat ("x", &out, &err, "--submit", "--timeout", "0.3", none, NULL);
    cr_assert_eq (rc, 3, "%s", err);
    cr_assert_str_eq (out, "");
    cr_assert (strstr (err, "job not confirmed durable: no connection"), "%s", err);
    free (out);
    free (err);
    free (none);
    free (spec);
    fake_queue_destroy (&fake);
}

Test (cli_cat_jobs_fake, usage_errors)
{
    const char *spec = "queue>tcp://127.0.0.1:1/jobs";
    const char *id = "01a20100-68cb-7333-9013-2c891321c8fd";
    struct {
        const char *args[8];
        const char *reason;
    } cases[] = {
        {{"--submit", "push>tcp://127.0.0.1:1"}, "--submit: only for a queue spec"},
        {{"--status", id, "pull@tcp://127.0.0.1:*"}, "--status: only for a queue spec"},
        {{"--wait", id, "req>tcp://127.0.0.1:1"}, "--wait: only for a queue spec"},
        {{"--status", "xyz", spec}, "--status: 'xyz' is not a job id"},
        {{"--wait", "", spec}, "--wait: '' is not a job id"},
        {{"--status", id, "--wait", id, spec}, "cannot be combined"},
        {{"--submit", "--status", id, spec}, "cannot be combined"},
        {{"--status", id, "-n", "1", spec}, "-n, --list, --requeue and --id do not apply"},
        {{"--wait", id, "--list", spec}, "-n, --list, --requeue and --id do not apply"},
        {{"--submit", "--id", id, spec}, "-n, --list, --requeue and --id do not apply"},
        {{"--submit", "-d", ",", spec}, "-d/-0 do not apply"},
        {{"--submit", "-0", spec}, "-d/-0 do not apply"},
        {{"--submit", "--format", "json", spec}, "--format does not apply"},
        {{"--submit", "--data", "a", "--data", "b", spec}, "at most one --data"},
        {{"--status", id, "--format", "hex", spec}, "text (--format raw, the default) or json"},
        {{"--wait", id, "--format", "json", spec}, "--format does not apply"},
        {{"--status", id, "-e", spec}, "takes no message options"},
        {{"--wait", id, "--data", "x", spec}, "takes no message options"},
        {{"--status", id, "-F", ",", spec}, "takes no message options"},
        {{"--status", spec}, NULL},  //  the spec taken as the id, no spec left
    };
    for (size_t index = 0; index < sizeof cases / sizeof cases[0]; index++) {
        char *err;
        int rc = tu_run_bin ("zkit-cat", cases[index].args, NULL, &err, 10000);
        cr_assert_eq (rc, 2, "case %zu: %d %s", index, rc, err);
        if (cases[index].reason)
            cr_assert (strstr (err, cases[index].reason), "case %zu: %s", index, err);
        cr_assert (s_starts (err, "zkit-cat: "), "case %zu: %s", index, err);
        free (err);
    }
}
