/*  zkit-bench — a short smoke test of the real binary: tiny counts, every
    kind of channel once, the counts it reports, and its failures (lost
    messages, a missing device, bad flags). Speed is never asserted.     */

#include "testutil.h"

#define RUN_MS 60000

//  Run zkit-bench with args; returns the exit code, output in *out_p / *err_p.
static int
s_bench (const char *const *args, char **out_p, char **err_p)
{
    return tu_run_bin ("zkit-bench", args, out_p, err_p, RUN_MS);
}

//  The JSON object of one result, from "channel":"NAME" to its closing brace.
static char *
s_result (const char *json, const char *channel)
{
    char needle[64];
    snprintf (needle, sizeof needle, "\"channel\":\"%s\"", channel);
    const char *start = strstr (json, needle);
    if (!start)
        return NULL;
    const char *end = strchr (start, '}');
    return end ? strndup (start, (size_t) (end - start)) : NULL;
}

//  Field index (0-based) of the CSV line at row.
static char *
s_csv_field (const char *row, int index)
{
    for (int i = 0; i < index && row; i++) {
        row = strpbrk (row, ",\n");
        row = row && *row == ',' ? row + 1 : NULL;
    }
    return row ? strndup (row, strcspn (row, ",\n")) : strdup ("(missing)");
}

Test (cli_bench, help_lists_the_options_and_exits_0, .timeout = 30)
{
    char *out, *err;
    int rc = s_bench ((const char *[]){"--help", NULL}, &out, &err);
    cr_assert_eq (rc, 0, "%s", err);
    cr_assert_not_null (strstr (out, "Usage: zkit-bench"), "%s", out);
    cr_assert_not_null (strstr (out, "--channel LIST"));
    cr_assert_not_null (strstr (out, "--inproc"));
    free (out);
    free (err);
}

Test (cli_bench, lists_every_channel, .timeout = 30)
{
    char *out, *err;
    int rc = s_bench ((const char *[]){"--list-channels", NULL}, &out, &err);
    cr_assert_eq (rc, 0, "%s", err);
    const char *names[] = {"push",         "proxy",        "zmq-proxy",      "zproxy",
                           "envelope",     "pub",          "forwarder",      "zmq-forwarder",
                           "reqrep",       "reqrep-proxy", "reqrep-worker",  "queue-batch",
                           "queue-always", "queue-never",  "queue-batch-raw"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char line[64];
        snprintf (line, sizeof line, "  %s ", names[i]);
        cr_assert_not_null (strstr (out, line), "%s missing:\n%s", names[i], out);
    }
    free (out);
    free (err);
}

Test (cli_bench, bad_flags_are_one_line_and_exit_2, .timeout = 30)
{
    struct {
        const char *args[6];
        const char *problem;
    } cases[] = {
        {{"-c", "nope", NULL}, "unknown channel 'nope'"},
        {{"-c", "push", "-t", "inproc", NULL}, "the inproc transport needs --inproc"},
        {{"-c", "push", "-s", "12q", NULL}, "bad size '12q'"},
        {{"-c", "pub", "-k", "0", NULL}, "bad subscriber count '0'"},
        {{"--csv", "--json", NULL}, "choose one of --csv, --json, --markdown"},
        {{"--hwm", "100", "--window", "50", NULL}, "--window 50 would let queues reach --hwm 100"},
        {{"-c", "queue-batch", "-s", "4", NULL}, "needs messages of at least 8 bytes"},
        {{"--inproc", "-t", "inproc", "-c", "queue-never", NULL},
         "channel queue-never runs over tcp or ipc, not inproc"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out, *err;
        int rc = s_bench (cases[i].args, &out, &err);
        cr_assert_eq (rc, 2, "case %zu: %s", i, err);
        cr_assert_str_eq (out, "");
        cr_assert_eq (strncmp (err, "zkit-bench: ", 12), 0, "%s", err);
        const char *newline = strchr (err, '\n');
        cr_assert_not_null (newline);
        cr_assert (
            memmem (err, (size_t) (newline - err), cases[i].problem, strlen (cases[i].problem)),
            "case %zu: %s", i, err);
        free (out);
        free (err);
    }
}

Test (cli_bench, throughput_through_the_proxy_counts_every_message, .timeout = 90)
{
    char *out, *err;
    int rc = s_bench ((const char *[]){"-c", "proxy,zmq-proxy,zproxy", "-n", "3000", "-s", "64",
                                       "-r", "1", "--json", NULL},
                      &out, &err);
    cr_assert_eq (rc, 0, "%s\n%s", out, err);
    //  The baseline was added and ran, and each device with it.
    const char *channels[] = {"push", "proxy", "zmq-proxy", "zproxy"};
    for (size_t i = 0; i < 4; i++) {
        char *result = s_result (out, channels[i]);
        cr_assert_not_null (result, "no %s in %s", channels[i], out);
        cr_assert_not_null (
            strstr (result, "\"count\":3000,\"runs\":1,\"failed_runs\":0,\"lost\":0"), "%s",
            result);
        cr_assert_not_null (strstr (result, "\"msgs_per_s\":"), "%s", result);
        if (i > 0)
            cr_assert_not_null (strstr (result, "\"baseline\":\"push\""), "%s", result);
        free (result);
    }
    cr_assert_not_null (strstr (out, "\"lost\":0,\"failed_runs\":0}"), "%s", out);
    free (out);
    free (err);
}

Test (cli_bench, fan_out_delivers_every_message_to_every_subscriber, .timeout = 90)
{
    char *out, *err;
    int rc = s_bench ((const char *[]){"-c", "forwarder", "-k", "3", "-n", "2000", "-s", "100",
                                       "-r", "1", "--csv", NULL},
                      &out, &err);
    cr_assert_eq (rc, 0, "%s\n%s", out, err);
    //  kind,channel,transport,size,subscribers,count,runs,... lost,failed_runs
    cr_assert_not_null (strstr (out, "fanout,pub,tcp,100,3,2000,1,"), "%s", out);
    cr_assert_not_null (strstr (out, "fanout,forwarder,tcp,100,3,2000,1,"), "%s", out);
    const char *row = strstr (out, "fanout,forwarder,");
    cr_assert_not_null (row);
    char *lost = s_csv_field (row, 23), *failed = s_csv_field (row, 24);
    cr_assert_str_eq (lost, "0", "lost: %s", row);
    cr_assert_str_eq (failed, "0", "failed_runs: %s", row);
    free (lost);
    free (failed);
    free (out);
    free (err);
}

Test (cli_bench, latency_reports_percentiles_beside_the_baseline, .timeout = 90)
{
    char *out, *err;
    int rc = s_bench ((const char *[]){"-c", "reqrep-proxy,reqrep-envelope", "-n", "200",
                                       "--warmup", "10", "-r", "1", "--json", NULL},
                      &out, &err);
    cr_assert_eq (rc, 0, "%s\n%s", out, err);
    char *result = s_result (out, "reqrep-proxy");
    cr_assert_not_null (result, "%s", out);
    //  s_result stops at the first brace: the latency object's.
    cr_assert_not_null (strstr (result, "\"count\":200,\"runs\":1,\"failed_runs\":0,\"lost\":0"),
                        "%s", result);
    cr_assert_not_null (strstr (result, "\"latency_us\":{\"min\":"), "%s", result);
    free (result);
    cr_assert_not_null (strstr (out, "\"p99.9\":"), "%s", out);
    cr_assert_not_null (strstr (out, "\"baseline_p50_us\":"), "%s", out);
    cr_assert_not_null (strstr (out, "\"channel\":\"reqrep-envelope\""), "%s", out);
    free (out);
    free (err);
}

Test (cli_bench, threads_with_inproc_transport, .timeout = 90)
{
    char *out, *err;
    int rc = s_bench ((const char *[]){"--inproc", "-t", "inproc", "-c",
                                       "proxy,zmq-proxy,zproxy,forwarder,reqrep-proxy", "-n",
                                       "2000", "-r", "1", "--csv", NULL},
                      &out, &err);
    cr_assert_eq (rc, 0, "%s\n%s", out, err);
    cr_assert_not_null (strstr (out, "throughput,zproxy,inproc,64,0,2000,1,"), "%s", out);
    cr_assert_not_null (strstr (out, "fanout,forwarder,inproc,64,1,2000,1,"), "%s", out);
    cr_assert_not_null (strstr (out, "latency,reqrep-proxy,inproc,64,0,2000,1,"), "%s", out);
    free (out);
    free (err);
}

Test (cli_bench, lost_messages_are_reported_and_exit_3, .timeout = 90)
{
    char *out, *err;
    //  The sender leaves out 10, 20, ... 990: 99 of 1000 messages.
    int rc = s_bench ((const char *[]){"-c", "push", "-n", "1000", "-r", "1", "--skip-every", "10",
                                       "--json", NULL},
                      &out, &err);
    cr_assert_eq (rc, 3, "%s\n%s", out, err);
    cr_assert_not_null (strstr (out, "\"lost\":99,"), "%s", out);
    cr_assert_not_null (strstr (out, "\"failed_runs\":1"), "%s", out);
    cr_assert_not_null (strstr (err, "99 of 1000 messages never arrived"), "%s", err);
    cr_assert_not_null (strstr (err, "99 messages lost"), "%s", err);
    free (out);
    free (err);
}

Test (cli_bench, a_missing_device_fails_before_running, .timeout = 30)
{
    char *out, *err;
    int rc = s_bench ((const char *[]){"-c", "proxy", "--bin-dir", "/nonexistent/zkit", NULL}, &out,
                      &err);
    cr_assert_eq (rc, 1, "%s\n%s", out, err);
    cr_assert_str_eq (out, "");
    cr_assert_not_null (
        strstr (err, "channel proxy needs zkit-proxy: /nonexistent/zkit/zkit-proxy"), "%s", err);
    free (out);
    free (err);
}

Test (cli_bench, queue_channels_count_every_put_and_ack, .timeout = 120)
{
    char *out, *err;
    //  A real zkit-queue per run: 300 puts, 300 consumed and acked, then
    //  300 more end to end; zk_client and the minimal client.
    int rc = s_bench ((const char *[]){"-c", "queue-batch,queue-batch-raw", "-s", "100", "-n",
                                       "300", "-r", "1", "--queue-window", "50", "--json", NULL},
                      &out, &err);
    cr_assert_eq (rc, 0, "%s\n%s", out, err);
    const char *channels[] = {"queue-batch", "queue-batch-raw"};
    for (size_t i = 0; i < 2; i++) {
        char *result = s_result (out, channels[i]);
        cr_assert_not_null (result, "no %s in %s", channels[i], out);
        cr_assert_not_null (
            strstr (result, "\"count\":300,\"runs\":1,\"failed_runs\":0,\"lost\":0,\"disorder\":0,"
                            "\"baseline\":\"push\""),
            "%s", result);
        cr_assert_not_null (strstr (result, "\"fsync\":\"batch\",\"queue_window\":50"), "%s",
                            result);
        cr_assert_not_null (strstr (result, "\"puts_per_s\":"), "%s", result);
        cr_assert_not_null (strstr (result, "\"acked_msgs_per_s\":"), "%s", result);
        cr_assert_not_null (strstr (result, "\"e2e_msgs_per_s\":"), "%s", result);
        free (result);
    }
    cr_assert_not_null (strstr (out, "\"lost\":0,\"failed_runs\":0}"), "%s", out);
    free (out);
    free (err);
}

Test (cli_bench, a_message_missing_from_a_queue_is_lost_and_exit_3, .timeout = 90)
{
    char *out, *err;
    //  The producer leaves out 10, 20, ... 90: the consumer misses 9 of 100.
    int rc = s_bench ((const char *[]){"-c", "queue-never", "-s", "100", "-n", "100", "-r", "1",
                                       "--skip-every", "10", "--timeout", "1", "--json", NULL},
                      &out, &err);
    cr_assert_eq (rc, 3, "%s\n%s", out, err);
    char *result = s_result (out, "queue-never");
    cr_assert_not_null (result, "%s", out);
    cr_assert_not_null (strstr (result, "\"runs\":0,\"failed_runs\":1,\"lost\":9,"), "%s", result);
    free (result);
    cr_assert_not_null (
        strstr (err, "queue-never tcp 100 B: consumer: 9 of 100 messages never arrived"), "%s",
        err);
    free (out);
    free (err);
}
