/*  cli_cat — the real zkit-cat binary, against libzkit sockets in the test
    or a second zkit-cat. Readiness comes from --ready-file, ports are
    ephemeral, ipc paths live in a private temp dir, no fixed sleeps.    */

#include "testutil.h"

#include <signal.h>
#include <sys/ioctl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

TestSuite (cli_cat, .init = s_setup, .fini = s_teardown, .timeout = 60);

//  argv for zkit-cat: the binary, then the NULL-terminated arguments.
//  Returns argc.
static size_t
s_argv (char **argv, size_t size, va_list args)
{
    static char bin[512];
    tu_bin ("zkit-cat", bin, sizeof bin);
    size_t argc = 0;
    argv[argc++] = bin;
    char *word;
    while (argc < size - 1 && (word = va_arg (args, char *)))
        argv[argc++] = word;
    argv[argc] = NULL;
    return argc;
}

//  Start zkit-cat with the arguments (NULL-terminated).
static void
s_start (tu_proc_t *proc, ...)
{
    char *argv[32];
    va_list args;
    va_start (args, proc);
    s_argv (argv, 32, args);
    va_end (args);
    cr_assert_eq (tu_spawn (proc, s_dir, argv), 0);
}

//  Run zkit-cat to its end with input on stdin; its exit code.
static int
s_run (const char *input, char **out_p, char **err_p, int timeout_ms, ...)
{
    char *argv[32];
    va_list args;
    va_start (args, timeout_ms);
    s_argv (argv, 32, args);
    va_end (args);
    return tu_run (s_dir, argv, input, out_p, err_p, timeout_ms);
}

//  Start zkit-cat with the arguments (NULL-terminated) and a --ready-file;
//  wait until it is attached. Its "socket" endpoint; caller frees.
static char *
s_start_ready (tu_proc_t *proc, ...)
{
    static int files;
    char *argv[32];
    va_list args;
    va_start (args, proc);
    size_t argc = s_argv (argv, 30, args);
    va_end (args);
    char *path = zsys_sprintf ("%s/ready-%d", s_dir, files++);
    argv[argc++] = (char *) "--ready-file";
    argv[argc++] = path;
    argv[argc] = NULL;
    cr_assert_eq (tu_spawn (proc, s_dir, argv), 0);
    char *ready = tu_wait_file (path, 10000);
    cr_assert_not_null (ready, "no ready file %s", path);
    char *endpoint = tu_ready_endpoint (ready, "socket");
    cr_assert_not_null (endpoint, "ready file without a socket line: %s", ready);
    free (ready);
    free (path);
    return endpoint;
}

//  A socket of type bound to an ephemeral loopback port, and in *spec_p
//  the spec for a zkit-cat of cat_type that connects to it (caller frees).
static zsock_t *
s_bind_peer (int type, const char *cat_type, char **spec_p)
{
    zsock_t *sock = zsock_new (type);
    int port = zsock_bind (sock, "tcp://127.0.0.1:*[60000-]");
    cr_assert_gt (port, 0);
    *spec_p = zsys_sprintf ("%s>tcp://127.0.0.1:%d", cat_type, port);
    return sock;
}

//  Wait for proc to exit with rc and check what it printed.
static void
s_expect_stdout (tu_proc_t *proc, int rc, const char *expected)
{
    cr_assert_eq (tu_wait (proc, 20000), rc);
    char *out = tu_stdout (proc);
    cr_assert_str_eq (out, expected);
    free (out);
}

//  Whole file with its size (binary-safe). Caller frees.
static char *
s_read_file (const char *path, size_t *size_p)
{
    FILE *file = fopen (path, "rb");
    cr_assert_not_null (file);
    char *data = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&data, &size);
    char chunk[65536];
    size_t got;
    while ((got = fread (chunk, 1, sizeof chunk, file)) > 0)
        fwrite (chunk, 1, got, out);
    fclose (out);
    fclose (file);
    *size_p = size;
    return data;
}

Test (cli_cat, help_and_usage)
{
    char *out, *err;
    cr_assert_eq (s_run (NULL, &out, &err, 10000, "--help", NULL), 0);
    cr_assert (strstr (out, "Usage: zkit-cat SPEC"), "%s", out);
    cr_assert (strstr (out, "--wait-subscribers"));
    cr_assert_str_eq (err, "");
    free (out);
    free (err);
    cr_assert_eq (s_run (NULL, &out, &err, 10000, NULL), 2);
    cr_assert_str_eq (out, "");
    cr_assert (strstr (err, "Usage: zkit-cat SPEC"), "%s", err);
    free (out);
    free (err);
}

Test (cli_cat, bad_spec_is_a_usage_error)
{
    char *out, *err;
    cr_assert_eq (s_run (NULL, &out, &err, 10000, "pull@nowhere", NULL), 2);
    cr_assert (strncmp (err, "zkit-cat: invalid socket spec 'pull@nowhere': ", 46) == 0, "%s", err);
    cr_assert_str_eq (out, "");
    free (out);
    free (err);
    cr_assert_eq (s_run (NULL, &out, &err, 10000, "pull@tcp://127.0.0.1:*", "--bogus", NULL), 2);
    cr_assert (strstr (err, "zkit-cat: unknown option '--bogus'"), "%s", err);
    free (out);
    free (err);
}

Test (cli_cat, refuses_types_it_cannot_use)
{
    const char *specs[] = {"router@tcp://127.0.0.1:*", "xpub@tcp://127.0.0.1:*",
                           "xsub>tcp://127.0.0.1:1"};
    const char *why[] = {"cannot use a router socket", "use pub", "use sub"};
    for (int i = 0; i < 3; i++) {
        char *err;
        cr_assert_eq (s_run (NULL, NULL, &err, 10000, specs[i], NULL), 2, "%s", specs[i]);
        cr_assert (strncmp (err, "zkit-cat: ", 10) == 0 && strstr (err, why[i]), "%s", err);
        free (err);
    }
    //  Flags that the type cannot use.
    char *err;
    cr_assert_eq (s_run (NULL, NULL, &err, 10000, "pull@tcp://127.0.0.1:*", "-s", "x", NULL), 2);
    cr_assert (strstr (err, "only a sub socket"), "%s", err);
    free (err);
}

Test (cli_cat, push_to_pull_multipart_byte_exact)
{
    tu_proc_t pull;
    char *endpoint = s_start_ready (&pull, "pull@tcp://127.0.0.1:*", "-n", "4", "-F", "|",
                                    "--timeout", "20", NULL);
    char *spec = zsys_sprintf ("push>%s", endpoint);
    //  Frames, empty frames, an empty message, a last line without newline.
    const char *input = "a|b|c\n|x|\n\nlast\xff";
    char *err;
    cr_assert_eq (s_run (input, NULL, &err, 20000, spec, "-F", "|", NULL), 0, "%s", err);
    free (err);
    cr_assert_eq (tu_wait (&pull, 20000), 0);
    size_t size;
    char *out = s_read_file (pull.out_path, &size);
    const char *expected = "a|b|c\n|x|\n\nlast\xff\n";
    cr_assert_eq (size, strlen (expected));
    cr_assert (memcmp (out, expected, size) == 0, "%s", out);
    free (out);
    free (spec);
    free (endpoint);
}

Test (cli_cat, nul_separated_messages)
{
    tu_proc_t pull;
    char *endpoint =
        s_start_ready (&pull, "pull@tcp://127.0.0.1:*", "-0", "-n", "3", "--timeout", "20", NULL);
    char *spec = zsys_sprintf ("push>%s", endpoint);
    tu_proc_t push;
    s_start (&push, spec, "-0", NULL);
    const char input[] = "line\none\0\0two\0";
    tu_write_stdin (&push, input, sizeof input - 1, true);
    cr_assert_eq (tu_wait (&push, 20000), 0);
    cr_assert_eq (tu_wait (&pull, 20000), 0);
    size_t size;
    char *out = s_read_file (pull.out_path, &size);
    cr_assert_eq (size, sizeof input - 1);
    cr_assert (memcmp (out, input, size) == 0);
    free (out);
    free (spec);
    free (endpoint);
}

Test (cli_cat, raw_binary_with_nuls)
{
    tu_proc_t pull;
    char *endpoint = s_start_ready (&pull, "pull@tcp://127.0.0.1:*", "--raw", "-n", "1",
                                    "--timeout", "20", NULL);
    char *spec = zsys_sprintf ("push>%s", endpoint);
    //  Every byte value, newlines and NULs included, 100 kB.
    size_t input_size = 100000;
    unsigned char *input = malloc (input_size);
    for (size_t i = 0; i < input_size; i++)
        input[i] = (unsigned char) (i * 7 + i / 256);
    tu_proc_t push;
    s_start (&push, spec, "--raw", NULL);
    tu_write_stdin (&push, input, input_size, true);
    cr_assert_eq (tu_wait (&push, 20000), 0);
    cr_assert_eq (tu_wait (&pull, 20000), 0);
    size_t size;
    char *out = s_read_file (pull.out_path, &size);
    cr_assert_eq (size, input_size);
    cr_assert (memcmp (out, input, size) == 0);
    free (out);
    free (input);
    free (spec);
    free (endpoint);
}

Test (cli_cat, count_with_timeout_prints_what_came_and_exits_3)
{
    tu_proc_t pull;
    char *endpoint =
        s_start_ready (&pull, "pull@tcp://127.0.0.1:*", "-n", "3", "--timeout", "1.5", NULL);
    zsock_t *push = zsock_new (ZMQ_PUSH);
    cr_assert_eq (zsock_connect (push, "%s", endpoint), 0);
    zstr_send (push, "first");
    zstr_send (push, "second");
    cr_assert_eq (tu_wait (&pull, 20000), 3);
    char *out = tu_stdout (&pull);
    char *err = tu_stderr (&pull);
    cr_assert_str_eq (out, "first\nsecond\n");
    cr_assert (strstr (err, "zkit-cat: error: received 2 of 3 message(s) within 1.5 s"), "%s", err);
    free (out);
    free (err);
    zsock_destroy (&push);
    free (endpoint);
}

Test (cli_cat, req_prints_the_replies_of_a_rep)
{
    char *spec;
    zsock_t *rep = s_bind_peer (ZMQ_REP, "req", &spec);
    tu_proc_t req;
    s_start (&req, spec, "--timeout", "20", NULL);
    tu_write_stdin (&req, "one\ntwo\n", 8, true);
    for (int i = 0; i < 2; i++) {
        zmsg_t *request = tu_recv (rep, 20000);
        cr_assert_not_null (request);
        //  req is the reliable client: an envelope goes in front of the body.
        zframe_t *envelope = zmsg_pop (request);
        cr_assert (zk_envelope_is_envelope (zframe_data (envelope), zframe_size (envelope)));
        zframe_destroy (&envelope);
        char *text = zmsg_popstr (request);
        for (char *c = text; *c; c++)
            *c = (char) toupper ((unsigned char) *c);
        zstr_send (rep, text);
        zstr_free (&text);
        zmsg_destroy (&request);
    }
    s_expect_stdout (&req, 0, "ONE\nTWO\n");
    free (spec);
    zsock_destroy (&rep);
}

Test (cli_cat, req_without_a_reply_exits_3)
{
    char *spec;
    zsock_t *rep = s_bind_peer (ZMQ_REP, "req", &spec);
    char *err;
    cr_assert_eq (s_run ("hello\n", NULL, &err, 20000, spec, "--timeout", "0.5", NULL), 3);
    cr_assert (strstr (err, "message 1: no reply after 1 attempt of 0.5 s over tcp://127.0.0.1:"),
               "%s", err);
    zmsg_t *request = tu_recv (rep, 5000);
    cr_assert_not_null (request);  //  it was sent, the reply never came
    zmsg_destroy (&request);
    free (err);
    free (spec);
    zsock_destroy (&rep);
}

//  Answer n dealer requests on router: [id][""][body] → [id][""][prefix body],
//  an error envelope for a body "fail".
static void
s_router_answer (zsock_t *router, int n)
{
    for (int i = 0; i < n; i++) {
        zmsg_t *msg = tu_recv (router, 20000);
        cr_assert_not_null (msg);
        cr_assert_eq (zmsg_size (msg), 3);
        zframe_t *id = zmsg_pop (msg);
        zframe_t *delimiter = zmsg_pop (msg);
        cr_assert_eq (zframe_size (delimiter), 0, "dealer sends an empty delimiter first");
        char *body = zmsg_popstr (msg);
        zmsg_t *reply = zmsg_new ();
        zmsg_addstrf (reply, "re:%s", body);
        if (streq (body, "fail")) {
            zk_envelope_t *envelope = zk_envelope_new ();
            zk_envelope_set_header (envelope, "zk-status", "error");
            zk_envelope_set_header (envelope, "zk-error", "exit status 9");
            zk_envelope_attach (envelope, reply);
            zk_envelope_destroy (&envelope);
        }
        zmsg_prepend (reply, &delimiter);
        zmsg_prepend (reply, &id);
        zmsg_send (&reply, router);
        zstr_free (&body);
        zmsg_destroy (&msg);
    }
}

Test (cli_cat, dealer_against_a_router)
{
    char *spec;
    zsock_t *router = s_bind_peer (ZMQ_ROUTER, "dealer", &spec);
    tu_proc_t dealer;
    s_start (&dealer, spec, "--timeout", "20", NULL);
    tu_write_stdin (&dealer, "a\nb\nc\n", 6, true);
    s_router_answer (router, 3);
    s_expect_stdout (&dealer, 0, "re:a\nre:b\nre:c\n");
    free (spec);
    zsock_destroy (&router);
}

Test (cli_cat, dealer_error_reply_exits_1)
{
    char *spec;
    zsock_t *router = s_bind_peer (ZMQ_ROUTER, "dealer", &spec);
    tu_proc_t dealer;
    s_start (&dealer, spec, "--timeout", "20", "--format", "json", NULL);
    tu_write_stdin (&dealer, "ok\nfail\n", 8, true);
    s_router_answer (router, 2);
    cr_assert_eq (tu_wait (&dealer, 20000), 1);
    char *out = tu_stdout (&dealer);
    char *err = tu_stderr (&dealer);
    const char *head = "{\"frames\":[\"re:ok\"]}\n{\"frames\":[\"re:fail\"],\"envelope\":";
    cr_assert (strncmp (out, head, strlen (head)) == 0, "%s", out);
    cr_assert (strstr (err, "reply 2 is an error: exit status 9"), "%s", err);
    free (out);
    free (err);
    free (spec);
    zsock_destroy (&router);
}

Test (cli_cat, rep_echoes_and_prints)
{
    tu_proc_t rep;
    char *endpoint =
        s_start_ready (&rep, "rep@tcp://127.0.0.1:*", "-n", "1", "--timeout", "20", NULL);
    zsock_t *req = zsock_new (ZMQ_REQ);
    zsock_connect (req, "%s", endpoint);
    zstr_sendm (req, "ping");
    zstr_send (req, "pong");
    zmsg_t *reply = tu_recv (req, 20000);
    cr_assert_not_null (reply);
    cr_assert_eq (zmsg_size (reply), 2);
    cr_assert (zframe_streq (zmsg_first (reply), "ping"));
    zmsg_destroy (&reply);
    s_expect_stdout (&rep, 0, "ping\tpong\n");
    zsock_destroy (&req);
    free (endpoint);
}

Test (cli_cat, pub_waits_for_a_subscriber)
{
    tu_proc_t pub;
    char *endpoint = s_start_ready (&pub, "pub@tcp://127.0.0.1:*", "--wait-subscribers", "1",
                                    "--timeout", "20", "-F", " ", NULL);
    tu_write_stdin (&pub, "news one\nweather sunny\nnews two\n", 32, true);
    char *spec = zsys_sprintf ("sub>%s", endpoint);
    tu_proc_t sub;
    s_start (&sub, spec, "-s", "news", "-n", "2", "--timeout", "20", "--format", "json", NULL);
    s_expect_stdout (&sub, 0, "{\"frames\":[\"news\",\"one\"]}\n{\"frames\":[\"news\",\"two\"]}\n");
    cr_assert_eq (tu_wait (&pub, 20000), 0);
    free (spec);
    free (endpoint);
}

Test (cli_cat, pub_without_subscribers_in_time_exits_3)
{
    char *err;
    cr_assert_eq (s_run ("a\nb\n", NULL, &err, 20000, "pub@tcp://127.0.0.1:*", "--wait-subscribers",
                         "2", "--timeout", "0.5", NULL),
                  3);
    cr_assert (strstr (err, "2 message(s) not sent (0 sent): only 0 of 2 subscription(s) arrived "
                            "within 0.5 s"),
               "%s", err);
    free (err);
}

Test (cli_cat, json_and_hex_output_exact)
{
    const char *formats[] = {"json", "hex"};
    const char *expected[] = {"{\"frames\":[\"t\\u0009x\",{\"hex\":\"00ff\"},\"\"]}\n",
                              "740978 00ff \n"};
    for (int i = 0; i < 2; i++) {
        tu_proc_t pull;
        char *endpoint = s_start_ready (&pull, "pull@tcp://127.0.0.1:*", "-n", "1", "--timeout",
                                        "20", "--format", formats[i], NULL);
        zsock_t *push = zsock_new (ZMQ_PUSH);
        zsock_connect (push, "%s", endpoint);
        zmsg_t *msg = zmsg_new ();
        zmsg_addstr (msg, "t\tx");
        zmsg_addmem (msg, "\x00\xff", 2);
        zmsg_addmem (msg, "", 0);
        zmsg_send (&msg, push);
        s_expect_stdout (&pull, 0, expected[i]);
        zsock_destroy (&push);
        free (endpoint);
    }
}

Test (cli_cat, envelope_id_survives_the_trip)
{
    //  zkit-cat -e → the test (decode the id) → zkit-cat --format json.
    char *spec;
    zsock_t *pull = s_bind_peer (ZMQ_PULL, "push", &spec);
    char *err;
    cr_assert_eq (s_run ("hello\n", NULL, &err, 20000, spec, "-H", "k=v", "--content-type",
                         "text/plain", NULL),
                  0, "%s", err);
    free (err);
    zmsg_t *msg = tu_recv (pull, 20000);
    cr_assert_not_null (msg);
    cr_assert_eq (zmsg_size (msg), 2);
    zframe_t *frame = zmsg_first (msg);
    zk_envelope_t *envelope;
    cr_assert_eq (zk_envelope_decode (zframe_data (frame), zframe_size (frame), &envelope), 0);
    cr_assert_str_eq (zk_envelope_header (envelope, "k"), "v");
    char id[ZK_ID_TEXT_SIZE];
    zk_id_format (zk_envelope_id (envelope), id);
    zk_envelope_destroy (&envelope);

    tu_proc_t reader;
    char *endpoint = s_start_ready (&reader, "pull@tcp://127.0.0.1:*", "-n", "1", "--timeout", "20",
                                    "--format", "json", NULL);
    zsock_t *push = zsock_new (ZMQ_PUSH);
    zsock_connect (push, "%s", endpoint);
    zmsg_send (&msg, push);
    cr_assert_eq (tu_wait (&reader, 20000), 0);
    char *out = tu_stdout (&reader);
    char *head = zsys_sprintf ("{\"frames\":[\"hello\"],\"envelope\":{\"id\":\"%s\"", id);
    cr_assert (strncmp (out, head, strlen (head)) == 0, "%s", out);
    cr_assert (strstr (out, "\"content_type\":\"text/plain\",\"headers\":{\"k\":\"v\"}}}\n"), "%s",
               out);
    free (head);
    free (out);
    free (endpoint);
    zsock_destroy (&push);
    free (spec);
    zsock_destroy (&pull);
}

Test (cli_cat, undeliverable_push_exits_3_within_the_timeout)
{
    //  Connecting to an ipc path nobody binds.
    char *spec = zsys_sprintf ("push>ipc://%s/nobody.sock", s_dir);
    char *err;
    int64_t start = zclock_mono ();
    cr_assert_eq (s_run ("a\nb\n", NULL, &err, 20000, spec, "--timeout", "1", NULL), 3);
    int64_t took = zclock_mono () - start;
    cr_assert_geq (took, 1000);
    cr_assert_lt (took, 4000);
    cr_assert (strstr (err, "zkit-cat: error: 2 message(s) not sent (0 sent): no peer took them "
                            "within 1 s"),
               "%s", err);
    free (err);
    free (spec);
}

Test (cli_cat, bound_push_without_peer_exits_3)
{
    char *err;
    int64_t start = zclock_mono ();
    cr_assert_eq (
        s_run ("a\nb\nc\n", NULL, &err, 20000, "push@tcp://127.0.0.1:*", "--timeout", "0.5", NULL),
        3);
    cr_assert_lt (zclock_mono () - start, 3500);
    cr_assert (strstr (err, "3 message(s) not sent (0 sent)"), "%s", err);
    free (err);
}

Test (cli_cat, sent_but_not_handed_over_exits_3)
{
    //  A peer that takes the connection but never reads: messages are sent
    //  (queued) but cannot all be handed over before the deadline.
    char *spec;
    zsock_t *pull = zsock_new (ZMQ_PULL);
    zsock_set_rcvhwm (pull, 1);
    zsock_set_rcvbuf (pull, 4096);
    int port = zsock_bind (pull, "tcp://127.0.0.1:*[60000-]");
    spec = zsys_sprintf ("push>tcp://127.0.0.1:%d", port);
    tu_proc_t push;
    s_start (&push, spec, "--timeout", "2", NULL);
    char *line = malloc (1 << 20);
    memset (line, 'x', (1 << 20) - 1);
    line[(1 << 20) - 1] = '\n';
    for (int i = 0; i < 48; i++)
        cr_assert_eq (tu_write_stdin (&push, line, 1 << 20, false), 0);
    tu_close_stdin (&push);
    cr_assert_eq (tu_wait (&push, 20000), 3);
    char *err = tu_stderr (&push);
    cr_assert (strstr (err, "48 message(s) sent but not all delivered within 2 s"), "%s", err);
    free (err);
    free (line);
    free (spec);
    zsock_destroy (&pull);
}

Test (cli_cat, oversized_input_is_refused)
{
    char *spec;
    zsock_t *pull = s_bind_peer (ZMQ_PULL, "push", &spec);
    char *err;
    cr_assert_eq (s_run ("ok\nthis line is too long\nnever\n", NULL, &err, 20000, spec,
                         "--max-size", "10", NULL),
                  1);
    cr_assert (strstr (err, "message 2 is longer than --max-size (10 bytes)"), "%s", err);
    //  What came before was still handed over.
    zmsg_t *msg = tu_recv (pull, 5000);
    cr_assert_not_null (msg);
    cr_assert (zframe_streq (zmsg_first (msg), "ok"));
    zmsg_destroy (&msg);
    cr_assert_null (tu_recv (pull, 100));
    free (err);
    free (spec);
    zsock_destroy (&pull);
}

Test (cli_cat, pair_sends_then_receives_count)
{
    char *spec;
    zsock_t *pair = s_bind_peer (ZMQ_PAIR, "pair", &spec);
    tu_proc_t cat;
    s_start (&cat, spec, "-D", "hi", "-n", "1", "--timeout", "20", NULL);
    tu_close_stdin (&cat);
    zmsg_t *msg = tu_recv (pair, 20000);
    cr_assert_not_null (msg);
    cr_assert (zframe_streq (zmsg_first (msg), "hi"));
    zmsg_destroy (&msg);
    zstr_send (pair, "back");
    s_expect_stdout (&cat, 0, "back\n");
    free (spec);
    zsock_destroy (&pair);
}

Test (cli_cat, sigint_receiver_exits_0_with_what_arrived)
{
    tu_proc_t pull;
    char *endpoint = s_start_ready (&pull, "pull@tcp://127.0.0.1:*", "-n", "5", NULL);
    zsock_t *push = zsock_new (ZMQ_PUSH);
    zsock_connect (push, "%s", endpoint);
    zstr_send (push, "only one");
    cr_assert (tu_wait_contains (pull.out_path, "only one\n", 20000));
    int64_t start = zclock_mono ();
    cr_assert_eq (tu_stop (&pull, SIGINT, 5000), 0);
    cr_assert_lt (zclock_mono () - start, 1500);
    zsock_destroy (&push);
    free (endpoint);
}

Test (cli_cat, sigint_sender_stops_reading_and_exits_0)
{
    char *spec;
    zsock_t *pull = s_bind_peer (ZMQ_PULL, "push", &spec);
    tu_proc_t push;
    s_start (&push, spec, NULL);
    tu_write_stdin (&push, "sent\n", 5, false);  //  stdin stays open
    zmsg_t *msg = tu_recv (pull, 20000);
    cr_assert_not_null (msg);
    cr_assert (zframe_streq (zmsg_first (msg), "sent"));
    zmsg_destroy (&msg);
    int64_t start = zclock_mono ();
    cr_assert_eq (tu_stop (&push, SIGINT, 5000), 0);
    cr_assert_lt (zclock_mono () - start, 1500);
    free (spec);
    zsock_destroy (&pull);
}

Test (cli_cat, sigint_with_a_message_no_peer_took_exits_3)
{
    tu_proc_t push;
    char *endpoint = s_start_ready (&push, "push@tcp://127.0.0.1:*", "--timeout", "60", NULL);
    tu_write_stdin (&push, "stuck\n", 6, false);
    //  Wait (bounded) until the pipe is empty: zkit-cat holds the line and
    //  waits for a peer.
    int pending = 1;
    int64_t deadline = zclock_mono () + 10000;
    while (pending && zclock_mono () < deadline && tu_wait (&push, 20) == -1)
        cr_assert_eq (ioctl (push.stdin_fd, FIONREAD, &pending), 0);
    cr_assert_eq (pending, 0);
    cr_assert_eq (tu_stop (&push, SIGINT, 5000), 3);
    char *err = tu_stderr (&push);
    cr_assert (strstr (err, "interrupted: 1 message(s) not sent (0 sent)"), "%s", err);
    free (err);
    free (endpoint);
}

Test (cli_cat, address_in_use_exits_1)
{
    char *spec;
    zsock_t *pull = s_bind_peer (ZMQ_PULL, "pull", &spec);
    spec[4] = '@';  //  the same address, bound a second time
    char *err;
    cr_assert_eq (s_run (NULL, NULL, &err, 20000, spec, "-n", "1", NULL), 1);
    cr_assert (strstr (err, "Address already in use"), "%s", err);
    free (err);
    free (spec);
    zsock_destroy (&pull);
}

//  --------------------------------------------------------------------------
//  req: the reliable client (zk_caller), --retries, failover

Test (cli_cat, req_retries_is_validated)
{
    struct {
        const char *args[8];
        const char *reason;
    } cases[] = {
        {{"req>tcp://127.0.0.1:1", "--retries", "3"}, "--retries needs --timeout"},
        {{"req>tcp://127.0.0.1:1", "--retries", "101", "--timeout", "1"},
         "not a valid N (0 to 100)"},
        {{"req>tcp://127.0.0.1:1", "--retries", "-1", "--timeout", "1"}, "not a valid N"},
        {{"req>tcp://127.0.0.1:1", "--retries", "x", "--timeout", "1"}, "not a valid N"},
        {{"push>tcp://127.0.0.1:1", "--retries", "1", "--timeout", "1"},
         "only a req socket retries"},
        {{"req@tcp://127.0.0.1:*"}, "only connects"},
    };
    for (size_t index = 0; index < sizeof cases / sizeof cases[0]; index++) {
        const char *const *args = cases[index].args;
        char *out, *err;
        int rc = s_run (NULL, &out, &err, 10000, args[0], args[1], args[2], args[3], args[4],
                        args[5], NULL);
        cr_assert_eq (rc, 2, "%s: exit %d", args[0], rc);
        cr_assert (strncmp (err, "zkit-cat: ", 10) == 0 && strstr (err, cases[index].reason), "%s",
                   err);
        cr_assert_str_eq (out, "");
        free (out);
        free (err);
    }
}

//  Answer n requests of the reliable client on router:
//  [id][REQID][""][ENVELOPE][body] → [id][REQID][""][ENVELOPE]["re:" body].
static void
s_router_answer_reliable (zsock_t *router, int n)
{
    for (int i = 0; i < n; i++) {
        zmsg_t *msg = tu_recv (router, 20000);
        cr_assert_not_null (msg);
        cr_assert_eq (zmsg_size (msg), 5);
        zframe_t *body = zmsg_last (msg);
        char *text =
            zsys_sprintf ("re:%.*s", (int) zframe_size (body), (char *) zframe_data (body));
        zmsg_remove (msg, body);
        zframe_destroy (&body);
        zmsg_addstr (msg, text);
        zstr_free (&text);
        zmsg_send (&msg, router);
    }
}

Test (cli_cat, req_fails_over_from_a_dead_endpoint)
{
    //  The dead endpoint takes requests and never answers: it costs one
    //  --timeout, not the call; the next request goes to the live one.
    char dead[256], live[256];
    zsock_t *dead_router = tu_bind_ephemeral (ZMQ_ROUTER, dead, sizeof dead);
    zsock_t *live_router = tu_bind_ephemeral (ZMQ_ROUTER, live, sizeof live);
    char *spec = zsys_sprintf ("req>%s,%s", dead, live);
    int64_t start = zclock_mono ();
    tu_proc_t req;
    s_start (&req, spec, "--timeout", "2", "--retries", "3", NULL);
    tu_write_stdin (&req, "a\nb\n", 4, true);
    s_router_answer_reliable (live_router, 2);
    s_expect_stdout (&req, 0, "re:a\nre:b\n");
    int64_t elapsed = zclock_mono () - start;
    cr_assert_lt (elapsed, 4000, "a dead first endpoint cost %" PRId64 " ms", elapsed);
    free (spec);
    zsock_destroy (&dead_router);
    zsock_destroy (&live_router);
}

Test (cli_cat, req_skips_an_endpoint_with_nothing_listening)
{
    //  Port 1 on loopback refuses connections: with ZMQ_IMMEDIATE the
    //  request goes to the next endpoint at once, no timeout spent.
    char live[256];
    zsock_t *live_router = tu_bind_ephemeral (ZMQ_ROUTER, live, sizeof live);
    char *spec = zsys_sprintf ("req>tcp://127.0.0.1:1,%s", live);
    int64_t start = zclock_mono ();
    tu_proc_t req;
    s_start (&req, spec, "--timeout", "20", "--retries", "1", NULL);
    tu_write_stdin (&req, "a\n", 2, true);
    s_router_answer_reliable (live_router, 1);
    s_expect_stdout (&req, 0, "re:a\n");
    cr_assert_lt (zclock_mono () - start, 10000, "the refusing endpoint was waited for");
    free (spec);
    zsock_destroy (&live_router);
}

Test (cli_cat, req_without_a_reply_after_every_attempt_exits_3)
{
    char a[256], b[256];
    zsock_t *router_a = tu_bind_ephemeral (ZMQ_ROUTER, a, sizeof a);
    zsock_t *router_b = tu_bind_ephemeral (ZMQ_ROUTER, b, sizeof b);
    char *spec = zsys_sprintf ("req>%s,%s", a, b);
    char *err;
    cr_assert_eq (s_run ("hello\nnever sent\n", NULL, &err, 20000, spec, "--timeout", "0.3",
                         "--retries", "2", NULL),
                  3);
    cr_assert (strstr (err, "zkit-cat: error: message 1: no reply after 3 attempts of 0.3 s over "
                            "tcp://127.0.0.1:"),
               "%s", err);
    free (err);
    free (spec);
    zsock_destroy (&router_a);
    zsock_destroy (&router_b);
}
