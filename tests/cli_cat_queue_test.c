/*  cli_cat_queue — the real zkit-cat binary on queue specs, against the
    fake ZKQ/1 server of tests/zk_client_test.c (fake_queue.h): put with
    confirms, take with acks after printing, dead letters from the shell
    (--list, --requeue), failures and usage errors.
    cli_queue_shell (below) — the same end to end with the real zkit-queue
    and zkit-worker.                                                      */

#include "fake_queue.h"

#include <signal.h>
#include <stdarg.h>

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

TestSuite (cli_cat_queue, .init = s_setup, .fini = s_teardown, .timeout = 60);

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
    return tu_run (s_dir, argv, input, out_p, err_p, 30000);
}

//  Run zkit-cat with input on stdin and the NULL-terminated arguments.
static int
s_cat (const char *input, char **out_p, char **err_p, ...)
{
    va_list args;
    va_start (args, err_p);
    int rc = s_vcat (input, out_p, err_p, args);
    va_end (args);
    return rc;
}

//  The same, expecting exit code rc and exactly expected on stdout.
static void
s_expect (const char *input, int rc, const char *expected, ...)
{
    char *out, *err;
    va_list args;
    va_start (args, expected);
    int got = s_vcat (input, &out, &err, args);
    va_end (args);
    cr_assert_eq (got, rc, "exit %d, expected %d: %s", got, rc, err);
    cr_assert_str_eq (out, expected);
    free (out);
    free (err);
}

//  "1\n2\n...count\n". Caller frees.
static char *
s_lines (int count)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    for (int index = 1; index <= count; index++)
        fprintf (out, "line %d\n", index);
    fclose (out);
    return text;
}

Test (cli_cat_queue, put_is_confirmed_and_take_prints_in_order_then_acks)
{
    fake_queue_t *fake = fake_queue_new ();
    char *spec = fake_queue_spec (fake, "orders");
    char *input = s_lines (100);
    s_expect (input, 0, "", spec, NULL);
    cr_assert_eq (fake_queue_ask (fake, "COUNT orders queued"), 100);

    s_expect (NULL, 0, input, spec, "-n", "100", "--timeout", "20", NULL);
    cr_assert_eq (fake_queue_ask (fake, "COUNT orders done"), 100);
    cr_assert_eq (fake_queue_ask (fake, "COUNT orders queued"), 0);
    cr_assert_eq (fake_queue_ask (fake, "COUNT orders running"), 0);
    free (input);
    free (spec);
    fake_queue_destroy (&fake);
}

Test (cli_cat_queue, take_holds_no_more_than_it_wants)
{
    fake_queue_t *fake = fake_queue_new ();
    char *spec = fake_queue_spec (fake, "jobs");
    cr_assert_eq (s_cat ("a\nb\nc\nd\ne\n", NULL, NULL, spec, NULL), 0);
    s_expect (NULL, 0, "a\nb\n", spec, "-n", "2", NULL);
    //  Two taken and acked; none leased beyond them, none lost.
    cr_assert_eq (fake_queue_ask (fake, "COUNT jobs done"), 2);
    cr_assert_eq (fake_queue_ask (fake, "COUNT jobs queued"), 3);
    cr_assert_leq (fake_queue_ask (fake, "MAXLEASED"), 2);
    //  Formats as other receivers: hex, json.
    s_expect (NULL, 0, "63\n", spec, "-n", "1", "--format", "hex", NULL);
    s_expect (NULL, 0, "{\"frames\":[\"d\"]}\n", spec, "-n", "1", "--format", "json", NULL);
    free (spec);
    fake_queue_destroy (&fake);
}

Test (cli_cat_queue, frames_and_envelopes_go_through)
{
    fake_queue_t *fake = fake_queue_new ();
    char *spec = fake_queue_spec (fake, "frames");
    cr_assert_eq (s_cat ("a|b|\n", NULL, NULL, spec, "-F", "|", "-e", "-H", "k=v", NULL), 0);
    //  raw: the body without its envelope frame, frames joined by -F.
    s_expect (NULL, 0, "a|b|\n", spec, "-n", "1", "-F", "|", NULL);
    //  More than 64 frames is no queue message: refused before sending.
    char wide[200] = "";
    for (int index = 0; index < 70; index++)
        strcat (wide, "x|");
    strcat (wide, "\n");
    char *err;
    cr_assert_eq (s_cat (wide, NULL, &err, spec, "-F", "|", NULL), 3);
    cr_assert (strstr (err, "1 to 64"), "%s", err);
    cr_assert (strstr (err, "1 message(s) not confirmed durable"), "%s", err);
    free (err);
    free (spec);
    fake_queue_destroy (&fake);
}

Test (cli_cat_queue, put_without_a_server_exits_3_with_the_count)
{
    char *spec = zsys_sprintf ("queue>ipc://%s/nobody.sock/orders", s_dir);
    char *input = s_lines (10);
    char *err;
    int64_t start = zclock_mono ();
    cr_assert_eq (s_cat (input, NULL, &err, spec, "--timeout", "0.5", NULL), 3, "%s", err);
    cr_assert_lt (zclock_mono () - start, 10000);
    cr_assert (strstr (err, "10 message(s) not confirmed durable (0 confirmed)"), "%s", err);
    cr_assert (strstr (err, "no connection"), "%s", err);
    free (err);
    free (input);
    free (spec);
}

Test (cli_cat_queue, a_refused_put_exits_3_with_the_reason)
{
    fake_queue_t *fake = fake_queue_new ();
    fake_queue_ask (fake, "ERR 503");
    char *spec = fake_queue_spec (fake, "orders");
    char *input = s_lines (5);
    char *err;
    cr_assert_eq (s_cat (input, NULL, &err, spec, NULL), 3, "%s", err);
    cr_assert (strstr (err, "5 message(s) not confirmed durable (0 confirmed): 503 no space"), "%s",
               err);
    free (err);
    //  A silent server: the timeout.
    fake_queue_ask (fake, "ERR 0");
    fake_queue_ask (fake, "MODE silent");
    cr_assert_eq (s_cat (input, NULL, &err, spec, "--timeout", "0.3", NULL), 3, "%s", err);
    cr_assert (strstr (err, "5 message(s) not confirmed durable"), "%s", err);
    cr_assert (strstr (err, "no reply"), "%s", err);
    free (err);
    free (input);
    free (spec);
    fake_queue_destroy (&fake);
}

Test (cli_cat_queue, take_times_out_with_what_it_has)
{
    fake_queue_t *fake = fake_queue_new ();
    char *spec = fake_queue_spec (fake, "few");
    cr_assert_eq (s_cat ("only\n", NULL, NULL, spec, NULL), 0);
    char *out, *err;
    cr_assert_eq (s_cat (NULL, &out, &err, spec, "-n", "3", "--timeout", "0.5", NULL), 3);
    cr_assert_str_eq (out, "only\n");
    cr_assert (strstr (err, "received 1 of 3"), "%s", err);
    free (out);
    free (err);
    cr_assert_eq (fake_queue_ask (fake, "COUNT few done"), 1);
    free (spec);
    fake_queue_destroy (&fake);
}

Test (cli_cat_queue, dead_letters_list_take_and_requeue)
{
    fake_queue_t *fake = fake_queue_new ();
    char *spec = fake_queue_spec (fake, "orders");
    char *dead = fake_queue_spec (fake, "orders.dead");
    cr_assert_eq (s_cat ("poison\nfine\n", NULL, NULL, spec, NULL), 0);
    //  Kill one with a reason, through the library.
    zk_client_t *client = zk_client_new (spec, NULL);
    cr_assert_eq (zk_client_get (client, NULL, 1), 0);
    zk_delivery_t *delivery;
    cr_assert_eq (zk_client_recv (client, 5000, &delivery), 0);
    //  Window 0 first, or the nack would make room for the next one.
    cr_assert_eq (zk_client_get (client, NULL, 0), 0);
    cr_assert_eq (zk_client_nack (client, delivery, true, "bad input\nsecond line"), 0);
    char id[ZK_ID_TEXT_SIZE];
    zk_id_format (delivery->id, id);
    zk_delivery_destroy (&delivery);
    zk_client_destroy (&client);

    char *out, *err;
    cr_assert_eq (s_cat (NULL, &out, &err, "--list", dead, NULL), 0, "%s", err);
    char *expected = zsys_sprintf ("%s 1 bad input\\x0asecond line\n", id);
    cr_assert_str_eq (out, expected);
    free (expected);
    free (out);
    free (err);
    //  --requeue --id ID: that one back into orders.
    cr_assert_eq (s_cat (NULL, &out, &err, "--requeue", "--id", id, dead, NULL), 0, "%s", err);
    cr_assert (strstr (err, "moved 1 message(s) from orders.dead to orders"), "%s", err);
    free (out);
    free (err);
    cr_assert_eq (fake_queue_ask (fake, "COUNT orders.dead queued"), 0);
    cr_assert_eq (fake_queue_ask (fake, "COUNT orders queued"), 2);
    //  Again: it is not there any more.
    cr_assert_eq (s_cat (NULL, NULL, &err, "--requeue", "--id", id, dead, NULL), 1);
    cr_assert (strstr (err, "is not waiting in orders.dead"), "%s", err);
    free (err);
    //  A dead letter is taken like any message: the bare body.
    client = zk_client_new (spec, NULL);
    cr_assert_eq (zk_client_get (client, NULL, 2), 0);
    for (int index = 0; index < 2; index++) {
        cr_assert_eq (zk_client_recv (client, 5000, &delivery), 0);
        cr_assert_eq (zk_client_nack (client, delivery, true, "again"), 0);
        zk_delivery_destroy (&delivery);
    }
    zk_client_destroy (&client);
    s_expect (NULL, 0, "poison\n", dead, "-n", "1", NULL);
    //  --requeue without --id: all the rest.
    cr_assert_eq (s_cat (NULL, NULL, &err, "--requeue", dead, NULL), 0);
    cr_assert (strstr (err, "moved 1 message(s)"), "%s", err);
    free (err);
    s_expect (NULL, 0, "", "--list", dead, NULL);
    free (dead);
    free (spec);
    fake_queue_destroy (&fake);
}

Test (cli_cat_queue, queue_flags_are_checked)
{
    struct {
        const char *args[6];
        const char *reason;
    } cases[] = {
        {{"queue@tcp://127.0.0.1:1/orders"}, "only connects"},
        {{"queue>tcp://127.0.0.1:1"}, "without a queue name"},
        {{"queue>tcp://127.0.0.1:1/a..b"}, "contains '..'"},
        {{"--requeue", "queue>tcp://127.0.0.1:1/orders"}, "NAME.dead"},
        {{"--requeue", "--id", "nope", "queue>tcp://127.0.0.1:1/o.dead"}, "not a message id"},
        {{"--id", "x", "queue>tcp://127.0.0.1:1/o"}, "only with --requeue"},
        {{"--list", "--requeue", "queue>tcp://127.0.0.1:1/o.dead"}, "cannot be combined"},
        {{"--list", "pull@tcp://127.0.0.1:*"}, "only for a queue spec"},
        {{"--list", "--format", "hex", "queue>tcp://127.0.0.1:1/o"}, "no message or format"},
        {{"-n", "1", "-D", "x", "queue>tcp://127.0.0.1:1/o"}, "are for putting"},
        {{"--format", "json", "queue>tcp://127.0.0.1:1/o"}, "prints nothing"},
    };
    for (size_t index = 0; index < sizeof cases / sizeof cases[0]; index++) {
        const char *const *args = cases[index].args;
        char *err;
        int rc = s_cat (NULL, NULL, &err, args[0], args[1], args[2], args[3], args[4], NULL);
        cr_assert_eq (rc, 2, "case %zu: rc %d: %s", index, rc, err);
        cr_assert (strstr (err, cases[index].reason), "case %zu: %s", index, err);
        free (err);
    }
}

//  ===========================================================================
//  cli_queue_shell: the same paths end to end with the real zkit-queue
//  (started with --ready-file on an ephemeral port) and zkit-worker; the
//  library's view of the server (STATS, STATUS) checks what the binaries
//  did. (The server alone, driven with raw sockets, is cli_queue_test.c.)

#define SHELL_WAIT_MS 20000

TestSuite (cli_queue_shell, .init = s_setup, .fini = s_teardown, .timeout = 120);

//  A zkit-queue bound to endpoint with its data in data, and the extra
//  options (a NULL-terminated list); its endpoint (caller frees).
static char *
s_queue_run (tu_daemon_t *daemon, const char *data, const char *endpoint, va_list extra)
{
    const char *args[24];
    int argc = 0;
    args[argc++] = "--data";
    args[argc++] = data;
    const char *word;
    while (argc < 20 && (word = va_arg (extra, const char *)))
        args[argc++] = word;
    char *bind = zsys_sprintf ("router@%s", endpoint);
    args[argc++] = bind;
    args[argc] = NULL;
    int rc = tu_daemon_start (daemon, "zkit-queue", args, SHELL_WAIT_MS);
    free (bind);
    if (rc) {
        char *err = tu_stderr (&daemon->proc);
        cr_assert_fail ("zkit-queue did not start: %s", err ? err : "");
    }
    char *resolved = tu_ready_endpoint (daemon->ready, "router");
    cr_assert_not_null (resolved, "no router line in %s", daemon->ready);
    return resolved;
}

//  A zkit-queue on tcp://127.0.0.1:* with its data under the suite's dir
//  and the extra options (NULL-terminated); its endpoint (caller frees).
static char *
s_queue_start (tu_daemon_t *daemon, ...)
{
    static int instances;
    char *data = zsys_sprintf ("%s/data-%d", s_dir, instances++);
    va_list extra;
    va_start (extra, daemon);
    char *endpoint = s_queue_run (daemon, data, "tcp://127.0.0.1:*", extra);
    va_end (extra);
    free (data);
    return endpoint;
}

//  The same on a given data dir and endpoint (a restart).
static char *
s_queue_restart (tu_daemon_t *daemon, const char *data, const char *endpoint, ...)
{
    va_list extra;
    va_start (extra, endpoint);
    char *resolved = s_queue_run (daemon, data, endpoint, extra);
    va_end (extra);
    return resolved;
}

//  SIGTERM: the daemon exits 0; then its files go.
static void
s_stop (tu_daemon_t *daemon)
{
    cr_assert_eq (tu_stop (&daemon->proc, SIGTERM, SHELL_WAIT_MS), 0);
    tu_daemon_cleanup (daemon);
}

//  zkit-worker with options, --ready-file and "-- COMMAND..." (lists
//  NULL-terminated); waits until it is ready.
static void
s_worker_start (tu_daemon_t *daemon, const char *const *options, const char *const *command)
{
    int rc = tu_daemon_start_command (daemon, "zkit-worker", options, command, SHELL_WAIT_MS);
    cr_assert_eq (rc, 0, "zkit-worker never got ready");
}

//  The number name of queue on the server (STATS).
static uint64_t
s_stat (const char *endpoint, const char *queue, const char *name)
{
    char *spec = zsys_sprintf ("queue>%s/%s", endpoint, queue);
    zk_client_t *client = zk_client_new (spec, NULL);
    cr_assert_not_null (client);
    zmsg_t *lines;
    int rc = zk_client_queue_stats (client, NULL, &lines);
    cr_assert_eq (rc, 0, "STATS: %s", zk_client_last_error (client));
    uint64_t value = zk_client_stat (lines, queue, name);
    zmsg_destroy (&lines);
    zk_client_destroy (&client);
    free (spec);
    return value;
}

//  Wait until STATS says name of queue is value, at most SHELL_WAIT_MS.
static bool
s_wait_stat (const char *endpoint, const char *queue, const char *name, uint64_t value)
{
    int64_t deadline = zclock_mono () + SHELL_WAIT_MS;
    while (s_stat (endpoint, queue, name) != value) {
        if (zclock_mono () >= deadline)
            return false;
        zmq_poll (NULL, 0, 20);  //  between polls of the server, bounded by the deadline
    }
    return true;
}

Test (cli_queue_shell, put_then_take_in_order_and_the_queue_is_empty)
{
    tu_daemon_t queue;
    char *endpoint = s_queue_start (&queue, NULL);
    char *spec = zsys_sprintf ("queue>%s/orders", endpoint);
    char *input = s_lines (100);
    s_expect (input, 0, "", spec, NULL);
    cr_assert_eq (s_stat (endpoint, "orders", "queued"), 100);
    //  --list of more lines than a delivery has frames: one line each.
    char *out, *err;
    cr_assert_eq (s_cat (NULL, &out, &err, "--list", spec, NULL), 0, "%s", err);
    int lines = 0;
    for (const char *c = out; *c; c++)
        lines += *c == '\n';
    cr_assert_eq (lines, 100, "--list printed %d lines: %s", lines, err);
    free (out);
    free (err);

    s_expect (NULL, 0, input, spec, "-n", "100", "--timeout", "30", NULL);
    cr_assert_eq (s_stat (endpoint, "orders", "queued"), 0);
    cr_assert_eq (s_stat (endpoint, "orders", "leased"), 0);
    //  Nothing left: a take times out with exit 3.
    s_expect (NULL, 3, "", spec, "-n", "1", "--timeout", "0.3", NULL);
    s_stop (&queue);
    free (input);
    free (spec);
    free (endpoint);
}

Test (cli_queue_shell, put_with_the_server_down_exits_3_with_the_count)
{
    tu_daemon_t queue;
    char *endpoint = s_queue_start (&queue, NULL);
    char *spec = zsys_sprintf ("queue>%s/orders", endpoint);
    s_stop (&queue);
    char *input = s_lines (10);
    char *err;
    int64_t start = zclock_mono ();
    cr_assert_eq (s_cat (input, NULL, &err, spec, "--timeout", "1", NULL), 3, "%s", err);
    cr_assert_lt (zclock_mono () - start, 15000);
    cr_assert (strstr (err, "10 message(s) not confirmed durable (0 confirmed)"), "%s", err);
    free (err);
    free (input);
    free (spec);
    free (endpoint);
}

Test (cli_queue_shell, worker_acks_nacks_until_dead_then_list_and_requeue)
{
    tu_daemon_t queue;
    char *endpoint = s_queue_start (&queue, "--max-deliver", "2", NULL);
    char *spec = zsys_sprintf ("queue>%s/orders", endpoint);
    char *dead = zsys_sprintf ("queue>%s/orders.dead", endpoint);
    //  Put through the library, to know the ids.
    zk_client_t *client = zk_client_new (spec, NULL);
    uint8_t good[ZK_ID_SIZE], bad[ZK_ID_SIZE];
    zmsg_t *body = zmsg_new ();
    zmsg_addstr (body, "good");
    cr_assert_eq (zk_client_put (client, NULL, &body, good), 0);
    body = zmsg_new ();
    zmsg_addstr (body, "bad");
    cr_assert_eq (zk_client_put (client, NULL, &body, bad), 0);
    cr_assert_eq (zk_client_flush (client, SHELL_WAIT_MS), 0, "%s", zk_client_last_error (client));

    tu_daemon_t worker;
    const char *options[] = {"--in", spec, NULL};
    const char *command[] = {"sh", "-c", "read x; [ \"$x\" != bad ] || exit 7; echo \"ok $x\"",
                             NULL};
    s_worker_start (&worker, options, command);
    cr_assert (s_wait_stat (endpoint, "orders.dead", "queued", 1));
    cr_assert (s_wait_stat (endpoint, "orders", "leased", 0));
    cr_assert_eq (s_stat (endpoint, "orders", "queued"), 0);
    s_stop (&worker);

    //  The good one is done, its stdout the result; the bad one dead.
    zk_client_status_t status;
    cr_assert_eq (zk_client_status (client, NULL, good, &status), 0);
    cr_assert_str_eq (status.state, "done");
    cr_assert_not_null (status.detail);
    char *result = zframe_strdup (zmsg_first (status.detail));
    cr_assert_str_eq (result, "ok good\n");
    free (result);
    zmsg_destroy (&status.detail);
    cr_assert_eq (zk_client_status (client, NULL, bad, &status), 0);
    cr_assert_str_eq (status.state, "dead");
    zmsg_destroy (&status.detail);
    zk_client_destroy (&client);

    //  --list shows it with its attempts and the reason it died.
    char *out, *err;
    cr_assert_eq (s_cat (NULL, &out, &err, "--list", dead, NULL), 0, "%s", err);
    char id[ZK_ID_TEXT_SIZE];
    zk_id_format (bad, id);
    char *line = zsys_sprintf ("%s 2 exit status 7\n", id);
    cr_assert_str_eq (out, line);
    free (line);
    free (out);
    free (err);
    //  --requeue puts it back: there to take, the bare body.
    cr_assert_eq (s_cat (NULL, &out, &err, "--requeue", dead, NULL), 0, "%s", err);
    cr_assert (strstr (err, "moved 1 message(s) from orders.dead to orders"), "%s", err);
    free (out);
    free (err);
    cr_assert (s_wait_stat (endpoint, "orders", "queued", 1));
    cr_assert_eq (s_stat (endpoint, "orders.dead", "queued"), 0);
    s_expect (NULL, 0, "bad\n", spec, "-n", "1", "--timeout", "10", NULL);
    s_stop (&queue);
    free (dead);
    free (spec);
    free (endpoint);
}

Test (cli_queue_shell, worker_jobs_2_never_holds_more_than_2)
{
    tu_daemon_t queue;
    char *endpoint = s_queue_start (&queue, NULL);
    char *spec = zsys_sprintf ("queue>%s/jobs", endpoint);
    cr_assert_eq (s_cat ("1\n2\n3\n4\n5\n6\n", NULL, NULL, spec, NULL), 0);
    char *go = zsys_sprintf ("%s/go", s_dir);
    //  Each job waits for the go file (bounded by the worker's --timeout).
    char *script = zsys_sprintf ("while [ ! -e '%s' ]; do sleep 0.01; done; cat", go);
    tu_daemon_t worker;
    const char *options[] = {"--in", spec, "-j", "2", "--timeout", "60", NULL};
    const char *command[] = {"sh", "-c", script, NULL};
    s_worker_start (&worker, options, command);
    cr_assert (s_wait_stat (endpoint, "jobs", "leased", 2));
    //  However often we look while they block, two are leased, four wait.
    for (int look = 0; look < 10; look++) {
        cr_assert_eq (s_stat (endpoint, "jobs", "leased"), 2);
        cr_assert_eq (s_stat (endpoint, "jobs", "queued"), 4);
    }
    FILE *file = fopen (go, "w");
    cr_assert_not_null (file);
    fclose (file);
    cr_assert (s_wait_stat (endpoint, "jobs", "queued", 0));
    cr_assert (s_wait_stat (endpoint, "jobs", "leased", 0));
    s_stop (&worker);
    s_stop (&queue);
    free (script);
    free (go);
    free (spec);
    free (endpoint);
}

Test (cli_queue_shell, worker_output_queue_gets_the_results)
{
    tu_daemon_t queue;
    char *endpoint = s_queue_start (&queue, NULL);
    char *in = zsys_sprintf ("queue>%s/step1", endpoint);
    char *out_spec = zsys_sprintf ("queue>%s/step2", endpoint);
    cr_assert_eq (s_cat ("a\nb\nc\n", NULL, NULL, in, NULL), 0);
    tu_daemon_t worker;
    const char *options[] = {"--in", in, "--out", out_spec, NULL};
    const char *command[] = {"tr", "a-z", "A-Z", NULL};
    s_worker_start (&worker, options, command);
    s_expect (NULL, 0, "A\nB\nC\n", out_spec, "-n", "3", "--timeout", "20", NULL);
    cr_assert (s_wait_stat (endpoint, "step1", "leased", 0));
    cr_assert_eq (s_stat (endpoint, "step1", "queued"), 0);
    s_stop (&worker);
    s_stop (&queue);
    free (in);
    free (out_spec);
    free (endpoint);
}

Test (cli_queue_shell, a_client_rides_out_a_server_restart)
{
    char *data = zsys_sprintf ("%s/restart", s_dir);
    tu_daemon_t queue;
    char *endpoint = s_queue_restart (&queue, data, "tcp://127.0.0.1:*", NULL);
    char *spec = zsys_sprintf ("queue>%s/orders", endpoint);
    zk_client_config_t config = {.retry_ms = 200, .timeout_ms = 30000};
    zk_client_t *client = zk_client_new (spec, &config);
    for (int index = 0; index < 50; index++) {
        zmsg_t *body = zmsg_new ();
        zmsg_addstrf (body, "before %d", index);
        cr_assert_eq (zk_client_put (client, NULL, &body, NULL), 0);
    }
    cr_assert_eq (zk_client_flush (client, SHELL_WAIT_MS), 0, "%s", zk_client_last_error (client));
    //  The server goes; puts wait in the client; it comes back on the
    //  same endpoint and data: they are sent again and confirmed.
    s_stop (&queue);
    for (int index = 0; index < 50; index++) {
        zmsg_t *body = zmsg_new ();
        zmsg_addstrf (body, "during %d", index);
        cr_assert_eq (zk_client_put (client, NULL, &body, NULL), 0);
    }
    cr_assert_eq (zk_client_flush (client, 0), ZK_ETIMEDOUT);
    char *again = s_queue_restart (&queue, data, endpoint, NULL);
    cr_assert_str_eq (again, endpoint);
    cr_assert_eq (zk_client_flush (client, SHELL_WAIT_MS), 0, "%s", zk_client_last_error (client));
    zk_client_stats_t stats;
    zk_client_stats (client, &stats);
    cr_assert_eq (stats.confirmed, 100);
    cr_assert_geq (stats.connects, 2);
    zk_client_destroy (&client);
    cr_assert_eq (s_stat (endpoint, "orders", "queued"), 100);
    s_stop (&queue);
    free (again);
    free (spec);
    free (endpoint);
    free (data);
}
