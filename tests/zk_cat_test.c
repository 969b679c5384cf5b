/*  zk_cat — splitting input, printing messages, validating configs, and a
    zk_cat run in-process against the test's own sockets.                */

#include "testutil.h"

#include <stdio.h>
#include <string.h>

//  Up to 16 messages read from size bytes of input.
typedef struct {
    char *data[16];
    size_t size[16];
    int count;
    int rc;  //  of the call that ended the reading
} s_read_t;

static void
s_read_all (const void *input, size_t size, int delimiter, size_t max_size, s_read_t *result)
{
    memset (result, 0, sizeof *result);
    FILE *in = size ? fmemopen ((void *) input, size, "r") : fopen ("/dev/null", "r");
    cr_assert_not_null (in);
    zk_cat_reader_t *reader = zk_cat_reader_new (in, delimiter, max_size);
    cr_assert_not_null (reader);
    for (int call = 0; call < 20; call++) {
        const uint8_t *data;
        size_t data_size;
        result->rc = zk_cat_reader_next (reader, &data, &data_size);
        if (result->rc || !data)
            break;
        cr_assert_lt (result->count, 16);
        result->data[result->count] = malloc (data_size + 1);
        memcpy (result->data[result->count], data, data_size);
        result->size[result->count++] = data_size;
    }
    zk_cat_reader_destroy (&reader);
    cr_assert_null (reader);
    fclose (in);
}

static void
s_read_free (s_read_t *result)
{
    for (int index = 0; index < result->count; index++)
        free (result->data[index]);
}

static void
s_expect (s_read_t *result, int index, const void *data, size_t size)
{
    cr_assert_lt (index, result->count);
    cr_assert_eq (result->size[index], size, "message %d: %zu bytes, expected %zu", index,
                  result->size[index], size);
    cr_assert (memcmp (result->data[index], data, size) == 0, "message %d differs", index);
}

Test (zk_cat, reads_one_message_per_line)
{
    s_read_t result;
    s_read_all ("a\nbc\n", 5, '\n', 100, &result);
    cr_assert_eq (result.rc, 0);
    cr_assert_eq (result.count, 2);
    s_expect (&result, 0, "a", 1);
    s_expect (&result, 1, "bc", 2);
    s_read_free (&result);
}

Test (zk_cat, final_line_without_newline_is_a_message)
{
    s_read_t result;
    s_read_all ("a\nb", 3, '\n', 100, &result);
    cr_assert_eq (result.count, 2);
    s_expect (&result, 1, "b", 1);
    s_read_free (&result);
}

Test (zk_cat, empty_lines_are_empty_messages)
{
    s_read_t result;
    s_read_all ("\n\na\n\n", 5, '\n', 100, &result);
    cr_assert_eq (result.count, 4);
    s_expect (&result, 0, "", 0);
    s_expect (&result, 1, "", 0);
    s_expect (&result, 2, "a", 1);
    s_expect (&result, 3, "", 0);
    s_read_free (&result);
    //  One newline: one empty message. No input: no message.
    s_read_all ("\n", 1, '\n', 100, &result);
    cr_assert_eq (result.count, 1);
    s_expect (&result, 0, "", 0);
    s_read_free (&result);
    s_read_all ("", 0, '\n', 100, &result);
    cr_assert_eq (result.rc, 0);
    cr_assert_eq (result.count, 0);
}

Test (zk_cat, keeps_every_byte_but_the_delimiter)
{
    s_read_t result;
    s_read_all ("a\r\n\x00\xff\n", 6, '\n', 100, &result);
    cr_assert_eq (result.count, 2);
    s_expect (&result, 0, "a\r", 2);
    s_expect (&result, 1, "\x00\xff", 2);
    s_read_free (&result);
}

Test (zk_cat, nul_and_other_delimiters)
{
    s_read_t result;
    s_read_all ("a\nb\0c\0", 6, 0, 100, &result);
    cr_assert_eq (result.count, 2);
    s_expect (&result, 0, "a\nb", 3);
    s_expect (&result, 1, "c", 1);
    s_read_free (&result);
    s_read_all ("x,y,,z", 6, ',', 100, &result);
    cr_assert_eq (result.count, 4);
    s_expect (&result, 2, "", 0);
    s_expect (&result, 3, "z", 1);
    s_read_free (&result);
}

Test (zk_cat, raw_mode_reads_everything_as_one_message)
{
    s_read_t result;
    s_read_all ("a\nb\0\n", 5, -1, 100, &result);
    cr_assert_eq (result.rc, 0);
    cr_assert_eq (result.count, 1);
    s_expect (&result, 0, "a\nb\0\n", 5);
    s_read_free (&result);
    //  Empty input is still one (empty) message.
    s_read_all ("", 0, -1, 100, &result);
    cr_assert_eq (result.count, 1);
    s_expect (&result, 0, "", 0);
    s_read_free (&result);
}

Test (zk_cat, refuses_a_message_longer_than_max_size)
{
    s_read_t result;
    //  Exactly max_size is fine; one byte more is refused, and stays refused.
    s_read_all ("abc\nabcd\nx\n", 11, '\n', 3, &result);
    cr_assert_eq (result.count, 1);
    s_expect (&result, 0, "abc", 3);
    cr_assert_eq (result.rc, ZK_ETOOBIG);
    s_read_free (&result);
    s_read_all ("abcd", 4, -1, 3, &result);
    cr_assert_eq (result.count, 0);
    cr_assert_eq (result.rc, ZK_ETOOBIG);
    s_read_all ("abc", 3, -1, 3, &result);
    cr_assert_eq (result.count, 1);
    s_read_free (&result);
    s_read_all ("a", 1, '\n', 0, &result);
    cr_assert_eq (result.rc, ZK_ETOOBIG);
}

Test (zk_cat, a_huge_line_is_refused_without_holding_it)
{
    //  8 MiB without a delimiter, max 1 MiB: refused after 1 MiB.
    FILE *in = tmpfile ();
    cr_assert_not_null (in);
    char block[65536];
    memset (block, 'x', sizeof block);
    for (int i = 0; i < 128; i++)
        cr_assert_eq (fwrite (block, 1, sizeof block, in), sizeof block);
    fputs ("\nshort\n", in);
    rewind (in);
    zk_cat_reader_t *reader = zk_cat_reader_new (in, '\n', 1 << 20);
    const uint8_t *data;
    size_t size;
    cr_assert_eq (zk_cat_reader_next (reader, &data, &size), ZK_ETOOBIG);
    cr_assert_null (data);
    cr_assert_eq (zk_cat_reader_next (reader, &data, &size), ZK_ETOOBIG);
    //  Read only a little past the limit.
    cr_assert_leq (ftell (in), (1 << 20) + 65536);
    zk_cat_reader_destroy (&reader);
    fclose (in);
}

Test (zk_cat, splits_frames_at_a_separator)
{
    zmsg_t *msg = zk_cat_split ("a|b||c|", 7, "|", 1);
    cr_assert_not_null (msg);
    cr_assert_eq (zmsg_size (msg), 5);
    char *frames[5];
    for (int i = 0; i < 5; i++)
        frames[i] = zmsg_popstr (msg);
    cr_assert_str_eq (frames[0], "a");
    cr_assert_str_eq (frames[1], "b");
    cr_assert_str_eq (frames[2], "");
    cr_assert_str_eq (frames[3], "c");
    cr_assert_str_eq (frames[4], "");
    for (int i = 0; i < 5; i++)
        zstr_free (&frames[i]);
    zmsg_destroy (&msg);

    //  Multi-byte separator, NUL bytes in the data and in the separator.
    msg = zk_cat_split ("a\0::b:c::", 9, "::", 2);
    cr_assert_eq (zmsg_size (msg), 3);
    cr_assert_eq (zframe_size (zmsg_first (msg)), 2);
    cr_assert (zframe_streq (zmsg_next (msg), "b:c"));
    cr_assert_eq (zframe_size (zmsg_next (msg)), 0);
    zmsg_destroy (&msg);
    msg = zk_cat_split ("x\0y", 3, "\0", 1);
    cr_assert_eq (zmsg_size (msg), 2);
    zmsg_destroy (&msg);

    //  No separator, or empty data: one frame.
    msg = zk_cat_split ("a|b", 3, NULL, 0);
    cr_assert_eq (zmsg_size (msg), 1);
    cr_assert_eq (zframe_size (zmsg_first (msg)), 3);
    zmsg_destroy (&msg);
    msg = zk_cat_split ("", 0, "|", 1);
    cr_assert_eq (zmsg_size (msg), 1);
    cr_assert_eq (zframe_size (zmsg_first (msg)), 0);
    zmsg_destroy (&msg);
}

Test (zk_cat, unescapes_separators)
{
    char out[8];
    size_t size;
    cr_assert_eq (zk_cat_unescape ("\\t", out, sizeof out, &size), 0);
    cr_assert_eq (size, 1);
    cr_assert_eq (out[0], '\t');
    cr_assert_eq (zk_cat_unescape ("a\\0\\x7f\\\\\\n\\r", out, sizeof out, &size), 0);
    cr_assert_eq (size, 6);
    cr_assert (memcmp (out, "a\0\x7f\\\n\r", 6) == 0);
    cr_assert_eq (zk_cat_unescape ("", out, sizeof out, &size), 0);
    cr_assert_eq (size, 0);
    cr_assert_eq (zk_cat_unescape ("\\", out, sizeof out, &size), ZK_EINVAL);
    cr_assert_eq (zk_cat_unescape ("\\q", out, sizeof out, &size), ZK_EINVAL);
    cr_assert_eq (zk_cat_unescape ("\\x4", out, sizeof out, &size), ZK_EINVAL);
    cr_assert_eq (zk_cat_unescape ("\\xzz", out, sizeof out, &size), ZK_EINVAL);
    cr_assert_eq (zk_cat_unescape ("123456789", out, sizeof out, &size), ZK_ETOOBIG);
}

//  Print msg and return what came out (caller frees), its size in *size_p.
static char *
s_print (zk_cat_output_t *output, zmsg_t *msg, size_t *size_p)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    cr_assert_eq (zk_cat_print (output, msg, out), 0);
    fclose (out);
    if (size_p)
        *size_p = size;
    return text;
}

static zmsg_t *
s_msg (int frames, ...)
{
    zmsg_t *msg = zmsg_new ();
    va_list args;
    va_start (args, frames);
    for (int i = 0; i < frames; i++) {
        const char *data = va_arg (args, const char *);
        size_t size = va_arg (args, size_t);
        zmsg_addmem (msg, data, size);
    }
    va_end (args);
    return msg;
}

Test (zk_cat, prints_raw)
{
    zk_cat_output_t output = {ZK_CAT_RAW, '\n'};
    zmsg_t *msg = s_msg (2, "a\0b", (size_t) 3, "c", (size_t) 1);
    size_t size;
    char *text = s_print (&output, msg, &size);
    cr_assert_eq (size, 6);
    cr_assert (memcmp (text, "a\0b\tc\n", 6) == 0);
    free (text);
    output.frame_sep = "::";
    output.frame_sep_size = 2;
    output.delimiter = 0;
    text = s_print (&output, msg, &size);
    cr_assert_eq (size, 7);
    cr_assert (memcmp (text, "a\0b::c\0", 7) == 0);
    free (text);
    output.delimiter = -1;  //  --raw
    text = s_print (&output, msg, &size);
    cr_assert_eq (size, 6);
    free (text);
    zmsg_destroy (&msg);
}

Test (zk_cat, prints_hex)
{
    zk_cat_output_t output = {ZK_CAT_HEX, '\n'};
    zmsg_t *msg = s_msg (3, "\x00\xff\x10", (size_t) 3, "", (size_t) 0, "hi", (size_t) 2);
    char *text = s_print (&output, msg, NULL);
    cr_assert_str_eq (text, "00ff10  6869\n");
    free (text);
    zmsg_destroy (&msg);
}

Test (zk_cat, prints_json_with_strings_and_hex_frames)
{
    zk_cat_output_t output = {ZK_CAT_JSON, '\n'};
    zmsg_t *msg = s_msg (4, "say \"hi\"\\", (size_t) 9, "\xc3\xa9\t\x00", (size_t) 4, "\xff\xfe",
                         (size_t) 2, "\xed\xa0\x80", (size_t) 3);
    char *text = s_print (&output, msg, NULL);
    cr_assert_str_eq (text, "{\"frames\":[\"say \\\"hi\\\"\\\\\",\"\xc3\xa9\\u0009\\u0000\","
                            "{\"hex\":\"fffe\"},{\"hex\":\"eda080\"}]}\n");
    free (text);
    zmsg_destroy (&msg);
    //  An empty frame is an empty string.
    msg = s_msg (1, "", (size_t) 0);
    text = s_print (&output, msg, NULL);
    cr_assert_str_eq (text, "{\"frames\":[\"\"]}\n");
    free (text);
    zmsg_destroy (&msg);
}

//  A message with an envelope (id known) in front of body frames.
static zmsg_t *
s_enveloped (const char *body, uint8_t id[ZK_ID_SIZE], char id_text[ZK_ID_TEXT_SIZE])
{
    zk_envelope_t *envelope = zk_envelope_new ();
    zk_envelope_set_header (envelope, "zk-status", "error");
    memcpy (id, zk_envelope_id (envelope), ZK_ID_SIZE);
    zk_id_format (id, id_text);
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, body);
    cr_assert_eq (zk_envelope_attach (envelope, msg), 0);
    zk_envelope_destroy (&envelope);
    return msg;
}

Test (zk_cat, envelope_is_left_out_of_raw_and_shown_in_json)
{
    uint8_t id[ZK_ID_SIZE];
    char id_text[ZK_ID_TEXT_SIZE];
    zmsg_t *msg = s_enveloped ("body", id, id_text);
    cr_assert_eq (zmsg_size (msg), 2);
    zk_cat_output_t output = {ZK_CAT_RAW, '\n'};
    char *text = s_print (&output, msg, NULL);
    cr_assert_str_eq (text, "body\n");
    free (text);
    output.format = ZK_CAT_HEX;
    text = s_print (&output, msg, NULL);
    cr_assert_str_eq (text, "626f6479\n");
    free (text);
    output.format = ZK_CAT_JSON;
    text = s_print (&output, msg, NULL);
    char *expected = zsys_sprintf ("{\"frames\":[\"body\"],\"envelope\":{\"id\":\"%s\"", id_text);
    cr_assert (strncmp (text, expected, strlen (expected)) == 0, "%s", text);
    cr_assert (strstr (text, "\"headers\":{\"zk-status\":\"error\"}}}\n"), "%s", text);
    free (expected);
    free (text);
    zmsg_destroy (&msg);
}

Test (zk_cat, envelope_after_the_topic_on_sub)
{
    uint8_t id[ZK_ID_SIZE];
    char id_text[ZK_ID_TEXT_SIZE];
    zmsg_t *msg = s_enveloped ("body", id, id_text);
    zmsg_pushstr (msg, "topic");
    zk_cat_output_t output = {ZK_CAT_RAW, '\n'};
    output.topic_first = true;
    char *text = s_print (&output, msg, NULL);
    cr_assert_str_eq (text, "topic\tbody\n");
    free (text);
    //  Not on other sockets: there the second frame is data.
    output.topic_first = false;
    size_t size;
    text = s_print (&output, msg, &size);
    cr_assert_gt (size, strlen ("topic\tbody\n"));
    free (text);
    zmsg_destroy (&msg);
}

Test (zk_cat, a_malformed_envelope_is_printed_as_data)
{
    //  The envelope magic (a map whose first key is "zk") with garbage after.
    const char bogus[] = "\x82\xa2zk\x01\xa1x\xc1";
    zmsg_t *msg = s_msg (2, bogus, sizeof bogus - 1, "b", (size_t) 1);
    cr_assert (zk_envelope_is_envelope (bogus, sizeof bogus - 1));
    zk_cat_output_t output = {ZK_CAT_HEX, '\n'};
    char *text = s_print (&output, msg, NULL);
    cr_assert_str_eq (text, "82a27a6b01a178c1 62\n");
    free (text);
    output.format = ZK_CAT_JSON;
    text = s_print (&output, msg, NULL);
    cr_assert_null (strstr (text, "envelope"));
    free (text);
    zmsg_destroy (&msg);
}

Test (zk_cat, prints_msgpack_arrays_of_bin)
{
    zk_cat_output_t output = {ZK_CAT_MSGPACK, '\n'};
    zmsg_t *msg = s_msg (2, "ab", (size_t) 2, "", (size_t) 0);
    size_t size;
    char *text = s_print (&output, msg, &size);
    cr_assert_eq (size, 7);
    cr_assert (memcmp (text,
                       "\x92\xc4\x02"
                       "ab\xc4\x00",
                       7)
               == 0);
    free (text);
    zmsg_destroy (&msg);
    //  300 bytes: a bin 16 header; 20 frames: an array 16 header.
    char big[300];
    memset (big, 'z', sizeof big);
    msg = zmsg_new ();
    zmsg_addmem (msg, big, sizeof big);
    for (int i = 1; i < 20; i++)
        zmsg_addmem (msg, "", 0);
    text = s_print (&output, msg, &size);
    cr_assert_eq (size, 3 + 3 + 300 + 19 * 2);
    cr_assert (memcmp (text, "\xdc\x00\x14\xc5\x01\x2c", 6) == 0);
    free (text);
    zmsg_destroy (&msg);
}

Test (zk_cat, format_names)
{
    cr_assert_eq (zk_cat_format_from_name ("raw"), ZK_CAT_RAW);
    cr_assert_eq (zk_cat_format_from_name ("hex"), ZK_CAT_HEX);
    cr_assert_eq (zk_cat_format_from_name ("json"), ZK_CAT_JSON);
    cr_assert_eq (zk_cat_format_from_name ("msgpack"), ZK_CAT_MSGPACK);
    cr_assert_eq (zk_cat_format_from_name ("xml"), -1);
    cr_assert_eq (zk_cat_format_from_name (NULL), -1);
}

//  zk_cat_validate's reason for config, or NULL if it is valid.
static const char *
s_invalid (const zk_cat_config_t *config)
{
    static char reason[512];
    return zk_cat_validate (config, reason, sizeof reason) ? reason : NULL;
}

Test (zk_cat, validates_configs)
{
    zk_cat_config_t config = {.spec = "push>tcp://127.0.0.1:5"};
    cr_assert_null (s_invalid (&config));
    struct {
        zk_cat_config_t config;
        const char *reason_part;
    } cases[] = {
        {{.spec = NULL}, "spec is required"},
        {{.spec = "push"}, "invalid socket spec 'push'"},
        {{.spec = "router@tcp://*:1"}, "cannot use a router socket"},
        {{.spec = "xpub@tcp://*:1"}, "use pub"},
        {{.spec = "xsub@tcp://*:1"}, "use sub"},
        {{.spec = "push>inproc://x", .delimiter = "ab"}, "is not one byte"},
        {{.spec = "push>inproc://x", .delimiter = ","}, NULL},
        {{.spec = "push>inproc://x", .delimiter = "\\x00"}, NULL},
        {{.spec = "push>inproc://x", .delimiter = ",", .null_delimiter = true}, "-0 and -d"},
        {{.spec = "push>inproc://x", .raw = true, .null_delimiter = true}, "--raw"},
        {{.spec = "push>inproc://x", .frame_sep = ""}, "empty"},
        {{.spec = "push>inproc://x", .frame_sep = "\\q"}, "unknown escape"},
        {{.spec = "push>inproc://x", .format = "json"}, "prints nothing"},
        {{.spec = "pull@inproc://x", .format = "yaml"}, "not one of"},
        {{.spec = "pull@inproc://x", .data = {{"a"}, 1}}, "does not send"},
        {{.spec = "pull@inproc://x", .envelope = true}, "does not send"},
        {{.spec = "sub@inproc://x", .content_type = "text/plain"}, "does not send"},
        {{.spec = "push>inproc://x", .headers = {{"novalue"}, 1}}, "KEY=VALUE"},
        {{.spec = "push>inproc://x", .headers = {{"=v"}, 1}}, "KEY=VALUE"},
        {{.spec = "push>inproc://x", .headers = {{"k="}, 1}}, NULL},
        {{.spec = "pull@inproc://x", .subscribe = {{"t"}, 1}}, "only a sub socket"},
        {{.spec = "sub@inproc://x", .subscribe = {{"t"}, 1}}, NULL},
        {{.spec = "push>inproc://x", .wait_subscribers = 1}, "only a pub socket"},
        {{.spec = "pub@inproc://x", .wait_subscribers = 1}, NULL},
        {{.spec = "pull@inproc://x", .count = -1}, "negative"},
        {{.spec = "dealer>inproc://x", .format = "msgpack", .envelope = true}, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *reason = s_invalid (&cases[i].config);
        if (!cases[i].reason_part)
            cr_assert_null (reason, "case %zu: %s", i, reason);
        else {
            cr_assert_not_null (reason, "case %zu should be refused", i);
            cr_assert (strstr (reason, cases[i].reason_part), "case %zu: '%s' lacks '%s'", i,
                       reason, cases[i].reason_part);
            cr_assert_null (strchr (reason, '\n'), "case %zu: one line", i);
        }
    }
    cr_assert_eq (zk_cat_validate (&cases[0].config, NULL, 0), ZK_EINVAL);
}

Test (zk_cat, exit_codes)
{
    cr_assert_eq (zk_cat_exit_code (0), 0);
    cr_assert_eq (zk_cat_exit_code (ZK_ETIMEDOUT), 3);
    cr_assert_eq (zk_cat_exit_code (ZK_EINVAL), 2);
    cr_assert_eq (zk_cat_exit_code (ZK_ECOMMAND), 1);
    cr_assert_eq (zk_cat_exit_code (ZK_ETOOBIG), 1);
}

Test (zk_cat, sends_data_to_a_pull_socket, .timeout = 20)
{
    zsock_t *pull = zsock_new (ZMQ_PULL);
    int port = zsock_bind (pull, "tcp://127.0.0.1:*[60000-]");
    cr_assert_gt (port, 0);
    char spec[64];
    snprintf (spec, sizeof spec, "push>tcp://127.0.0.1:%d", port);
    zk_cat_config_t config = {.spec = spec, .data = {{"a|b", "c"}, 2}, .frame_sep = "|"};
    zk_cat_t *cat = zk_cat_new (&config);
    cr_assert_not_null (cat);
    cr_assert_str_eq (zk_cat_endpoint (cat, 0), spec + 5);
    cr_assert_null (zk_cat_endpoint (cat, 1));
    cr_assert_eq (zk_cat_run (cat, NULL, NULL), 0);
    zk_cat_stats_t stats;
    zk_cat_stats (cat, &stats);
    cr_assert_eq (stats.read, 2);
    cr_assert_eq (stats.sent, 2);
    cr_assert_eq (stats.unsent, 0);
    cr_assert (stats.delivered);
    zk_cat_destroy (&cat);
    zmsg_t *msg = tu_recv (pull, 5000);
    cr_assert_not_null (msg);
    cr_assert_eq (zmsg_size (msg), 2);
    cr_assert (zframe_streq (zmsg_first (msg), "a"));
    cr_assert (zframe_streq (zmsg_next (msg), "b"));
    zmsg_destroy (&msg);
    msg = tu_recv (pull, 5000);
    cr_assert (zframe_streq (zmsg_first (msg), "c"));
    zmsg_destroy (&msg);
    zsock_destroy (&pull);
}

//  Run cat with input in, expecting rc. What it printed (caller frees);
//  its counters in *stats.
static char *
s_run_cat (zk_cat_t *cat, FILE *in, int rc, zk_cat_stats_t *stats)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    cr_assert_eq (zk_cat_run (cat, in, out), rc);
    fclose (out);
    zk_cat_stats (cat, stats);
    return text;
}

//  A bound pull cat made from config, and a push socket connected to it.
static zk_cat_t *
s_pull_cat (const zk_cat_config_t *config, zsock_t **push_p)
{
    zk_cat_t *cat = zk_cat_new (config);
    cr_assert_not_null (cat);
    const char *endpoint = zk_cat_endpoint (cat, 0);
    cr_assert_neq (strstr (endpoint, "tcp://127.0.0.1:"), NULL);
    *push_p = zsock_new (ZMQ_PUSH);
    cr_assert_eq (zsock_connect (*push_p, "%s", endpoint), 0);
    return cat;
}

Test (zk_cat, receives_count_messages_then_stops, .timeout = 20)
{
    zk_cat_config_t config = {.spec = "pull@tcp://127.0.0.1:*", .count = 2, .timeout = 10};
    zsock_t *push;
    zk_cat_t *cat = s_pull_cat (&config, &push);
    zstr_sendm (push, "x");
    zstr_send (push, "y");
    zstr_send (push, "z");
    zstr_send (push, "not read");
    zk_cat_stats_t stats;
    char *text = s_run_cat (cat, NULL, 0, &stats);
    cr_assert_str_eq (text, "x\ty\nz\n");
    cr_assert_eq (stats.received, 2);
    free (text);
    zk_cat_destroy (&cat);
    zsock_destroy (&push);
}

Test (zk_cat, too_few_messages_in_time_is_a_timeout, .timeout = 20)
{
    zk_cat_config_t config = {.spec = "pull@tcp://127.0.0.1:*", .count = 2, .timeout = 0.3};
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    int64_t start = zclock_mono ();
    cr_assert_eq (zk_cat_receive (&config, out), ZK_ETIMEDOUT);
    cr_assert_geq (zclock_mono () - start, 300);
    fclose (out);
    cr_assert_eq (size, 0);
    free (text);
    //  Without a count, the timeout just ends the run.
    config.count = 0;
    cr_assert_eq (zk_cat_receive (&config, NULL), 0);
}

Test (zk_cat, refuses_received_messages_over_max_size, .timeout = 20)
{
    zk_cat_config_t config = {
        .spec = "pull@tcp://127.0.0.1:*", .count = 1, .timeout = 10, .max_size = 4};
    zsock_t *push;
    zk_cat_t *cat = s_pull_cat (&config, &push);
    zstr_sendm (push, "abc");  //  7 bytes in all: refused
    zstr_send (push, "defg");
    zstr_send (push, "ok");
    zk_cat_stats_t stats;
    char *text = s_run_cat (cat, NULL, 0, &stats);
    cr_assert_str_eq (text, "ok\n");
    cr_assert_eq (stats.refused, 1);
    free (text);
    zk_cat_destroy (&cat);
    zsock_destroy (&push);
}

Test (zk_cat, refuses_received_messages_with_too_many_frames, .timeout = 30)
{
    zk_cat_config_t config = {.spec = "pull@tcp://127.0.0.1:*", .count = 1, .timeout = 20};
    zsock_t *push;
    zk_cat_t *cat = s_pull_cat (&config, &push);
    for (int frame = 0; frame < ZK_CAT_MAX_FRAMES; frame++)
        zmq_send (zsock_resolve (push), "", 0, ZMQ_SNDMORE);
    zstr_send (push, "last");
    zstr_send (push, "ok");
    zk_cat_stats_t stats;
    char *text = s_run_cat (cat, NULL, 0, &stats);
    cr_assert_str_eq (text, "ok\n");
    cr_assert_eq (stats.refused, 1);
    free (text);
    zk_cat_destroy (&cat);
    zsock_destroy (&push);
}

/*  A REP service in its own thread (zk_cat_run blocks this one): replies
    with the request upper-cased; to "fail", an error envelope. Sends its
    endpoint on the pipe when ready.                                    */
static void
s_rep_service (zsock_t *pipe, void *args)
{
    zsock_t *rep = zsock_new (ZMQ_REP);
    int port = zsock_bind (rep, "tcp://127.0.0.1:*[60000-]");
    zsock_signal (pipe, 0);
    zstr_sendf (pipe, "tcp://127.0.0.1:%d", port);
    zpoller_t *poller = zpoller_new (pipe, rep, NULL);
    while (true) {
        void *which = zpoller_wait (poller, 10000);
        if (which != rep)
            break;
        char *request = zstr_recv (rep);
        zmsg_t *reply = zmsg_new ();
        if (request && streq (request, "fail")) {
            zmsg_addstr (reply, "partial output");
            zk_envelope_t *envelope = zk_envelope_new ();
            zk_envelope_set_header (envelope, "zk-status", "error");
            zk_envelope_set_header (envelope, "zk-error", "command exited with status 7");
            zk_envelope_attach (envelope, reply);
            zk_envelope_destroy (&envelope);
        }
        else {
            for (char *c = request; c && *c; c++)
                *c = (char) toupper ((unsigned char) *c);
            zmsg_addstr (reply, request ? request : "");
        }
        zstr_free (&request);
        zmsg_send (&reply, rep);
        zmsg_destroy (&reply);  //  not sent (stopping)
    }
    zpoller_destroy (&poller);
    zsock_destroy (&rep);
}

Test (zk_cat, req_prints_replies_and_flags_error_replies, .timeout = 20)
{
    zactor_t *service = zactor_new (s_rep_service, NULL);
    char *endpoint = zstr_recv (service);
    char *spec = zsys_sprintf ("req>%s", endpoint);
    zk_cat_config_t config = {.spec = spec, .timeout = 10};
    zk_cat_t *cat = zk_cat_new (&config);
    cr_assert_not_null (cat);
    FILE *in = fmemopen ((void *) "ok\nfail\nmore", 12, "r");
    zk_cat_stats_t stats;
    char *text = s_run_cat (cat, in, ZK_ECOMMAND, &stats);
    fclose (in);
    //  Every reply is printed, the error reply too (its body).
    cr_assert_str_eq (text, "OK\npartial output\nMORE\n");
    cr_assert_eq (stats.sent, 3);
    cr_assert_eq (stats.received, 3);
    cr_assert_eq (stats.error_replies, 1);
    zk_cat_destroy (&cat);
    free (text);
    free (spec);
    zstr_free (&endpoint);
    zactor_destroy (&service);
}

Test (zk_cat, library_use_leaves_czmq_sockets_alone, .timeout = 20)
{
    //  A run ends its own context only: the caller's czmq sockets still work.
    zsock_t *pull = zsock_new_pull ("inproc://zk-cat-test-alone");
    zsock_t *push = zsock_new_push ("inproc://zk-cat-test-alone");
    zk_cat_config_t config = {.spec = "pull@tcp://127.0.0.1:*", .timeout = 0.05};
    cr_assert_eq (zk_cat_receive (&config, NULL), 0);
    cr_assert_eq (zstr_send (push, "still here"), 0);
    zmsg_t *msg = tu_recv (pull, 5000);
    cr_assert_not_null (msg);
    zmsg_destroy (&msg);
    zsock_destroy (&push);
    zsock_destroy (&pull);
}
