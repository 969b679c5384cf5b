/*  zk_envelope — ids, the codec, hostile input, attach/detach, JSON.

    Hand-made inputs are written as hex ("81 a2 7a 6b 01") so each test
    shows the bytes it feeds the decoder. Every decode of hostile bytes
    gets a heap copy of exactly that size, so a read past the end would
    show under a memory checker.                                         */

#include "testutil.h"

#include <pthread.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

//  --------------------------------------------------------------------------
//  Helpers

typedef struct {
    uint8_t *data;
    size_t size;
    size_t capacity;
} s_bytes_t;

static void
s_put (s_bytes_t *bytes, const void *data, size_t size)
{
    if (bytes->size + size > bytes->capacity) {
        size_t capacity = bytes->capacity ? bytes->capacity : 256;
        while (capacity < bytes->size + size)
            capacity *= 2;
        bytes->data = realloc (bytes->data, capacity);
        cr_assert_not_null (bytes->data);
        bytes->capacity = capacity;
    }
    if (size)
        memcpy (bytes->data + bytes->size, data, size);
    bytes->size += size;
}

static void
s_put_byte (s_bytes_t *bytes, uint8_t byte)
{
    s_put (bytes, &byte, 1);
}

static void
s_put_repeat (s_bytes_t *bytes, uint8_t byte, size_t count)
{
    for (size_t i = 0; i < count; i++)
        s_put_byte (bytes, byte);
}

//  Bytes written as hex pairs, spaces ignored.
static void
s_put_hex (s_bytes_t *bytes, const char *hex)
{
    while (*hex) {
        if (*hex == ' ') {
            hex++;
            continue;
        }
        unsigned int byte;
        cr_assert_eq (sscanf (hex, "%2x", &byte), 1, "bad hex in test: %s", hex);
        s_put_byte (bytes, (uint8_t) byte);
        hex += 2;
    }
}

//  A msgpack str in its shortest form.
static void
s_put_str_size (s_bytes_t *bytes, const void *text, size_t size)
{
    if (size < 32)
        s_put_byte (bytes, (uint8_t) (0xa0 | size));
    else if (size < 256) {
        s_put_byte (bytes, 0xd9);
        s_put_byte (bytes, (uint8_t) size);
    }
    else {
        cr_assert_lt (size, 65536);
        s_put_byte (bytes, 0xda);
        s_put_byte (bytes, (uint8_t) (size >> 8));
        s_put_byte (bytes, (uint8_t) size);
    }
    s_put (bytes, text, size);
}

static void
s_put_str (s_bytes_t *bytes, const char *text)
{
    s_put_str_size (bytes, text, strlen (text));
}

static const uint8_t s_id_a[ZK_ID_SIZE] = {0x01, 0x8f, 0x3a, 0x6c, 0x2b, 0x40, 0x7a, 0x1c,
                                           0x9c, 0x3e, 0x5d, 0x2f, 0x81, 0xa0, 0x44, 0x17};
static const uint8_t s_id_b[ZK_ID_SIZE] = {0x01, 0x8f, 0x3a, 0x6c, 0x2a, 0x10, 0x70, 0x00,
                                           0x8a, 0xbc, 0xde, 0xf0, 0x12, 0x34, 0x56, 0x78};

static void
s_put_id (s_bytes_t *bytes, const uint8_t id[ZK_ID_SIZE])
{
    s_put_hex (bytes, "c4 10");
    s_put (bytes, id, ZK_ID_SIZE);
}

//  The start of a fixmap envelope of pairs pairs: "zk": 1 and, if
//  with_id, "id": s_id_a. The caller appends the remaining pairs.
static void
s_start (s_bytes_t *bytes, int pairs, bool with_id)
{
    s_put_byte (bytes, (uint8_t) (0x80 | pairs));
    s_put_hex (bytes, "a2 7a 6b 01");
    if (with_id) {
        s_put_str (bytes, "id");
        s_put_id (bytes, s_id_a);
    }
}

static void
s_bytes_free (s_bytes_t *bytes)
{
    free (bytes->data);
    *bytes = (s_bytes_t){0};
}

//  Decode a heap copy of exactly size bytes; returns the code, and the
//  envelope in *self_p when self_p is given (else destroys it).
static int
s_decode (const void *data, size_t size, zk_envelope_t **self_p)
{
    uint8_t *copy = malloc (size ? size : 1);
    cr_assert_not_null (copy);
    if (size)
        memcpy (copy, data, size);
    zk_envelope_t *envelope = (zk_envelope_t *) 0x1;
    int rc = zk_envelope_decode (copy, size, &envelope);
    free (copy);
    if (rc)
        cr_assert_null (envelope, "a failed decode leaves *self_p NULL");
    else
        cr_assert_not_null (envelope);
    if (self_p)
        *self_p = envelope;
    else
        zk_envelope_destroy (&envelope);
    return rc;
}

static int
s_decode_bytes (const s_bytes_t *bytes)
{
    return s_decode (bytes->data, bytes->size, NULL);
}

static int
s_decode_hex (const char *hex)
{
    s_bytes_t bytes = {0};
    s_put_hex (&bytes, hex);
    int rc = s_decode_bytes (&bytes);
    s_bytes_free (&bytes);
    return rc;
}

//  Decode an envelope of "zk": 1, "id" (unless key is "id") and one more
//  pair: key and the value given in hex.
static int
s_decode_pair (const char *key, const char *value_hex)
{
    s_bytes_t bytes = {0};
    bool id = streq (key, "id");
    s_start (&bytes, id ? 2 : 3, !id);
    s_put_str (&bytes, key);
    s_put_hex (&bytes, value_hex);
    int rc = s_decode_bytes (&bytes);
    s_bytes_free (&bytes);
    return rc;
}

static void
s_assert_same (const zk_envelope_t *a, const zk_envelope_t *b)
{
    cr_assert_eq (memcmp (zk_envelope_id (a), zk_envelope_id (b), ZK_ID_SIZE), 0);
    cr_assert_eq (memcmp (zk_envelope_trace (a), zk_envelope_trace (b), ZK_ID_SIZE), 0);
    cr_assert_eq (zk_envelope_time (a), zk_envelope_time (b));
    cr_assert_eq (zk_envelope_attempt (a), zk_envelope_attempt (b));
    const char *ct_a = zk_envelope_content_type (a), *ct_b = zk_envelope_content_type (b);
    cr_assert_eq (ct_a == NULL, ct_b == NULL);
    if (ct_a)
        cr_assert_str_eq (ct_a, ct_b);
    cr_assert_eq (zk_envelope_header_count (a), zk_envelope_header_count (b));
    for (size_t i = 0; i < zk_envelope_header_count (a); i++) {
        cr_assert_str_eq (zk_envelope_header_key (a, i), zk_envelope_header_key (b, i));
        cr_assert_str_eq (zk_envelope_header_value (a, i), zk_envelope_header_value (b, i));
    }
}

//  Encode, decode, compare; returns the decoded copy (caller destroys).
static zk_envelope_t *
s_round_trip (const zk_envelope_t *envelope)
{
    zframe_t *frame = NULL;
    cr_assert_eq (zk_envelope_encode (envelope, &frame), 0);
    cr_assert_not_null (frame);
    cr_assert (zk_envelope_is_envelope (zframe_data (frame), zframe_size (frame)));
    zk_envelope_t *decoded;
    int rc = s_decode (zframe_data (frame), zframe_size (frame), &decoded);
    cr_assert_eq (rc, 0, "decode: %s", zk_strerror (rc));
    s_assert_same (envelope, decoded);
    zframe_destroy (&frame);
    return decoded;
}

static char *
s_repeat (char c, size_t size)
{
    char *text = malloc (size + 1);
    cr_assert_not_null (text);
    memset (text, c, size);
    text[size] = 0;
    return text;
}

//  The envelope of docs/protocol.md's example.
static zk_envelope_t *
s_example (void)
{
    zk_envelope_t *envelope = zk_envelope_new ();
    cr_assert_not_null (envelope);
    zk_envelope_set_id (envelope, s_id_a);
    zk_envelope_set_time (envelope, 1714672118592123);
    zk_envelope_set_trace (envelope, s_id_b);
    zk_envelope_set_attempt (envelope, 2);
    cr_assert_eq (zk_envelope_set_content_type (envelope, "text/plain"), 0);
    cr_assert_eq (zk_envelope_set_header (envelope, "tenant", "acme"), 0);
    return envelope;
}

//  print_json into a string. Caller frees.
static char *
s_json (const zk_envelope_t *envelope)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    cr_assert_not_null (out);
    cr_assert_eq (zk_envelope_print_json (envelope, out), 0);
    fclose (out);
    return text;
}

static char *
s_json_string (const void *data, size_t size)
{
    char *text = NULL;
    size_t text_size = 0;
    FILE *out = open_memstream (&text, &text_size);
    cr_assert_not_null (out);
    cr_assert_eq (zk_json_print_string (data, size, out), 0);
    fclose (out);
    return text;
}

//  --------------------------------------------------------------------------
//  The object and the round trip

Test (zk_envelope, new_has_the_defaults)
{
    int64_t before = (int64_t) time (NULL) * 1000000;
    zk_envelope_t *envelope = zk_envelope_new ();
    int64_t after = ((int64_t) time (NULL) + 1) * 1000000;
    cr_assert_not_null (envelope);
    const uint8_t *id = zk_envelope_id (envelope);
    cr_assert_eq (id[6] >> 4, 7);
    cr_assert_eq (memcmp (zk_envelope_trace (envelope), id, ZK_ID_SIZE), 0);
    cr_assert_eq (zk_envelope_attempt (envelope), 1);
    cr_assert_null (zk_envelope_content_type (envelope));
    cr_assert_eq (zk_envelope_header_count (envelope), 0);
    cr_assert_null (zk_envelope_header_key (envelope, 0));
    cr_assert_null (zk_envelope_header (envelope, "x"));
    cr_assert_geq (zk_envelope_time (envelope), before);
    cr_assert_leq (zk_envelope_time (envelope), after);
    zk_envelope_destroy (&envelope);
    cr_assert_null (envelope);
    zk_envelope_destroy (&envelope);  //  safe on NULL
}

Test (zk_envelope, round_trips_every_field)
{
    const int64_t times[] = {0, 1, -1, 1714672118592123, INT64_MAX, INT64_MIN, 127, -33, 65536};
    const uint32_t attempts[] = {0, 1, 127, 128, 255, 256, 65535, 65536, UINT32_MAX};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        zk_envelope_t *envelope = s_example ();
        zk_envelope_set_time (envelope, times[i]);
        zk_envelope_set_attempt (envelope, attempts[i]);
        zk_envelope_t *decoded = s_round_trip (envelope);
        cr_assert_eq (zk_envelope_time (decoded), times[i]);
        cr_assert_eq (zk_envelope_attempt (decoded), attempts[i]);
        cr_assert_eq (memcmp (zk_envelope_id (decoded), s_id_a, ZK_ID_SIZE), 0);
        cr_assert_eq (memcmp (zk_envelope_trace (decoded), s_id_b, ZK_ID_SIZE), 0);
        cr_assert_str_eq (zk_envelope_content_type (decoded), "text/plain");
        cr_assert_str_eq (zk_envelope_header (decoded, "tenant"), "acme");
        zk_envelope_destroy (&decoded);
        zk_envelope_destroy (&envelope);
    }
}

Test (zk_envelope, content_type_set_unset_and_empty)
{
    zk_envelope_t *envelope = zk_envelope_new ();
    cr_assert_eq (zk_envelope_set_content_type (envelope, ""), 0);
    zk_envelope_t *decoded = s_round_trip (envelope);
    cr_assert_str_eq (zk_envelope_content_type (decoded), "");
    zk_envelope_destroy (&decoded);
    cr_assert_eq (zk_envelope_set_content_type (envelope, "application/json"), 0);
    cr_assert_eq (zk_envelope_set_content_type (envelope, NULL), 0);
    cr_assert_null (zk_envelope_content_type (envelope));
    decoded = s_round_trip (envelope);
    cr_assert_null (zk_envelope_content_type (decoded));
    zk_envelope_destroy (&decoded);
    zk_envelope_destroy (&envelope);
}

Test (zk_envelope, round_trips_headers)
{
    zk_envelope_t *envelope = zk_envelope_new ();
    char binary[256];  //  every byte but NUL, not valid UTF-8
    for (int i = 0; i < 255; i++)
        binary[i] = (char) (i + 1);
    binary[255] = 0;
    cr_assert_eq (zk_envelope_set_header (envelope, "reply-to", "orders"), 0);
    cr_assert_eq (zk_envelope_set_header (envelope, "", "empty key"), 0);
    cr_assert_eq (zk_envelope_set_header (envelope, "empty value", ""), 0);
    cr_assert_eq (zk_envelope_set_header (envelope, "binary", binary), 0);
    cr_assert_eq (zk_envelope_set_header (envelope, binary, "binary key"), 0);
    cr_assert_eq (zk_envelope_set_header (envelope, "reply-to", "invoices"), 0);  //  replaces
    cr_assert_eq (zk_envelope_set_header (envelope, NULL, "x"), ZK_EINVAL);
    cr_assert_eq (zk_envelope_set_header (envelope, "x", NULL), ZK_EINVAL);
    cr_assert_eq (zk_envelope_header_count (envelope), 5);

    zk_envelope_t *decoded = s_round_trip (envelope);
    cr_assert_str_eq (zk_envelope_header_key (decoded, 0), "reply-to");
    cr_assert_str_eq (zk_envelope_header_value (decoded, 0), "invoices");
    cr_assert_str_eq (zk_envelope_header (decoded, ""), "empty key");
    cr_assert_str_eq (zk_envelope_header (decoded, "empty value"), "");
    cr_assert_str_eq (zk_envelope_header (decoded, "binary"), binary);
    cr_assert_str_eq (zk_envelope_header (decoded, binary), "binary key");
    cr_assert_null (zk_envelope_header (decoded, "absent"));
    cr_assert_null (zk_envelope_header_key (decoded, 5));
    cr_assert_null (zk_envelope_header_value (decoded, 5));
    zk_envelope_destroy (&decoded);
    zk_envelope_destroy (&envelope);
}

Test (zk_envelope, dup_is_a_deep_copy)
{
    zk_envelope_t *envelope = s_example ();
    zk_envelope_t *copy = zk_envelope_dup (envelope);
    cr_assert_not_null (copy);
    s_assert_same (envelope, copy);
    cr_assert_eq (zk_envelope_set_header (envelope, "tenant", "other"), 0);
    cr_assert_eq (zk_envelope_set_content_type (envelope, NULL), 0);
    zk_envelope_destroy (&envelope);
    cr_assert_str_eq (zk_envelope_header (copy, "tenant"), "acme");
    cr_assert_str_eq (zk_envelope_content_type (copy), "text/plain");
    zk_envelope_destroy (&copy);
}

Test (zk_envelope, max_header_count_round_trips_and_one_more_is_refused)
{
    zk_envelope_t *envelope = zk_envelope_new ();
    for (int i = 0; i < ZK_ENVELOPE_MAX_HEADERS; i++) {
        char key[16];
        snprintf (key, sizeof key, "k%02d", i);
        cr_assert_eq (zk_envelope_set_header (envelope, key, key + 1), 0);
    }
    cr_assert_eq (zk_envelope_set_header (envelope, "one-more", "x"), ZK_ETOOBIG);
    cr_assert_eq (zk_envelope_set_header (envelope, "k07", "replaced"), 0);  //  still allowed
    cr_assert_eq (zk_envelope_header_count (envelope), ZK_ENVELOPE_MAX_HEADERS);
    zk_envelope_t *decoded = s_round_trip (envelope);
    cr_assert_str_eq (zk_envelope_header (decoded, "k07"), "replaced");
    cr_assert_str_eq (zk_envelope_header_key (decoded, 63), "k63");
    zk_envelope_destroy (&decoded);
    zk_envelope_destroy (&envelope);

    //  The decoder refuses a map of 65 headers.
    s_bytes_t bytes = {0};
    s_start (&bytes, 3, true);
    s_put_str (&bytes, "h");
    s_put_hex (&bytes, "de 00 41");
    for (int i = 0; i <= ZK_ENVELOPE_MAX_HEADERS; i++) {
        char key[16];
        snprintf (key, sizeof key, "k%02d", i);
        s_put_str (&bytes, key);
        s_put_str (&bytes, "v");
    }
    cr_assert_eq (s_decode_bytes (&bytes), ZK_ETOOBIG);
    s_bytes_free (&bytes);
}

Test (zk_envelope, max_string_length_round_trips_and_one_more_is_refused)
{
    char *longest = s_repeat ('x', ZK_ENVELOPE_MAX_STRING);
    char *too_long = s_repeat ('y', ZK_ENVELOPE_MAX_STRING + 1);
    zk_envelope_t *envelope = zk_envelope_new ();
    cr_assert_eq (zk_envelope_set_content_type (envelope, longest), 0);
    cr_assert_eq (zk_envelope_set_header (envelope, longest, longest), 0);
    cr_assert_eq (zk_envelope_set_content_type (envelope, too_long), ZK_ETOOBIG);
    cr_assert_eq (zk_envelope_set_header (envelope, too_long, "v"), ZK_ETOOBIG);
    cr_assert_eq (zk_envelope_set_header (envelope, "k", too_long), ZK_ETOOBIG);
    cr_assert_eq (zk_envelope_set_header (envelope, longest, too_long), ZK_ETOOBIG);
    cr_assert_str_eq (zk_envelope_content_type (envelope), longest);  //  unchanged
    cr_assert_str_eq (zk_envelope_header (envelope, longest), longest);
    cr_assert_eq (zk_envelope_header_count (envelope), 1);
    zk_envelope_t *decoded = s_round_trip (envelope);
    zk_envelope_destroy (&decoded);
    zk_envelope_destroy (&envelope);

    //  The decoder refuses a content type, header key or value of 4097 bytes.
    for (int where = 0; where < 3; where++) {
        s_bytes_t bytes = {0};
        s_start (&bytes, 3, true);
        if (where == 0) {
            s_put_str (&bytes, "ct");
            s_put_str (&bytes, too_long);
        }
        else {
            s_put_str (&bytes, "h");
            s_put_hex (&bytes, "81");
            s_put_str (&bytes, where == 1 ? too_long : "k");
            s_put_str (&bytes, where == 1 ? "v" : too_long);
        }
        cr_assert_eq (s_decode_bytes (&bytes), ZK_ETOOBIG, "case %d", where);
        s_bytes_free (&bytes);
    }
    free (longest);
    free (too_long);
}

Test (zk_envelope, encode_refuses_an_oversized_frame)
{
    zk_envelope_t *envelope = zk_envelope_new ();
    char *value = s_repeat ('v', ZK_ENVELOPE_MAX_STRING);
    for (int i = 0; i < 16; i++) {  //  16 x 4 KiB and the keys: just over 64 KiB
        char key[16];
        snprintf (key, sizeof key, "k%02d", i);
        cr_assert_eq (zk_envelope_set_header (envelope, key, value), 0);
    }
    zframe_t *frame = (zframe_t *) 0x1;
    cr_assert_eq (zk_envelope_encode (envelope, &frame), ZK_ETOOBIG);
    cr_assert_null (frame);
    zmsg_t *msg = zmsg_new ();
    cr_assert_eq (zk_envelope_attach (envelope, msg), ZK_ETOOBIG);
    cr_assert_eq (zmsg_size (msg), 0);
    zmsg_destroy (&msg);
    free (value);
    zk_envelope_destroy (&envelope);
}

//  --------------------------------------------------------------------------
//  The documented example: docs/protocol.md shows these exact bytes

//  The bytes as `hexdump -C` prints them.
static char *
s_hexdump (const uint8_t *data, size_t size)
{
    char *text = NULL;
    size_t text_size = 0;
    FILE *out = open_memstream (&text, &text_size);
    cr_assert_not_null (out);
    for (size_t line = 0; line < size; line += 16) {
        fprintf (out, "%08zx  ", line);
        for (size_t i = line; i < line + 16; i++) {
            if (i < size)
                fprintf (out, "%02x ", data[i]);
            else
                fprintf (out, "   ");
            if (i == line + 7)
                fprintf (out, " ");
        }
        fprintf (out, " |");
        for (size_t i = line; i < line + 16 && i < size; i++)
            fputc (data[i] >= 0x20 && data[i] < 0x7f ? data[i] : '.', out);
        fprintf (out, "|\n");
    }
    fprintf (out, "%08zx\n", size);
    fclose (out);
    return text;
}

static char *
s_protocol_doc (void)
{
    char *doc = tu_slurp ("docs/protocol.md");
    const char *bin = getenv ("ZK_BIN");  //  build/bin when run by make check
    if (!doc && bin) {
        char path[1024];
        snprintf (path, sizeof path, "%s/../../docs/protocol.md", bin);
        doc = tu_slurp (path);
    }
    cr_assert_not_null (doc, "docs/protocol.md not found (run from the repository root)");
    return doc;
}

Test (zk_envelope, example_matches_docs_protocol_byte_for_byte)
{
    zk_envelope_t *envelope = s_example ();
    zframe_t *frame;
    cr_assert_eq (zk_envelope_encode (envelope, &frame), 0);
    char *dump = s_hexdump (zframe_data (frame), zframe_size (frame));
    char *json = s_json (envelope);
    char *doc = s_protocol_doc ();
    cr_assert_not_null (strstr (doc, dump), "docs/protocol.md lacks the example dump:\n%s", dump);
    cr_assert_not_null (strstr (doc, json), "docs/protocol.md lacks the example JSON:\n%s", json);
    cr_assert_str_eq (json,
                      "{\"id\":\"018f3a6c-2b40-7a1c-9c3e-5d2f81a04417\",\"time\":1714672118592123,"
                      "\"trace\":\"018f3a6c-2a10-7000-8abc-def012345678\",\"attempt\":2,"
                      "\"content_type\":\"text/plain\",\"headers\":{\"tenant\":\"acme\"}}");
    //  The first bytes are the magic; the fixmap holds 7 pairs.
    cr_assert_eq (memcmp (zframe_data (frame), "\x87\xa2zk\x01", 5), 0);
    free (doc);
    free (json);
    free (dump);
    zframe_destroy (&frame);
    zk_envelope_destroy (&envelope);
}

//  --------------------------------------------------------------------------
//  Ids

Test (zk_envelope, ids_have_version_7_and_variant_10)
{
    for (int i = 0; i < 1000; i++) {
        uint8_t id[ZK_ID_SIZE];
        zk_id_generate (id);
        cr_assert_eq (id[6] >> 4, 7, "version nibble");
        cr_assert_eq (id[8] >> 6, 2, "variant bits");
    }
}

Test (zk_envelope, id_carries_the_current_millisecond)
{
    struct timespec before, after;
    clock_gettime (CLOCK_REALTIME, &before);
    uint8_t id[ZK_ID_SIZE];
    zk_id_generate (id);
    clock_gettime (CLOCK_REALTIME, &after);
    int64_t ms = 0;
    for (int i = 0; i < 6; i++)
        ms = ms << 8 | id[i];
    cr_assert_geq (ms, (int64_t) before.tv_sec * 1000 + before.tv_nsec / 1000000);
    cr_assert_leq (ms, (int64_t) after.tv_sec * 1000 + after.tv_nsec / 1000000);
}

Test (zk_envelope, ten_thousand_ids_strictly_increase)
{
    uint8_t previous[ZK_ID_SIZE], id[ZK_ID_SIZE];
    zk_id_generate (previous);
    for (int i = 0; i < 10000; i++) {
        zk_id_generate (id);
        cr_assert_gt (memcmp (id, previous, ZK_ID_SIZE), 0, "id %d does not sort after the last",
                      i);
        memcpy (previous, id, ZK_ID_SIZE);
    }
}

#define S_THREAD_IDS 2500

static void *
s_generate_ids (void *arg)
{
    uint8_t (*ids)[ZK_ID_SIZE] = arg;
    for (int i = 0; i < S_THREAD_IDS; i++)
        zk_id_generate (ids[i]);
    return NULL;
}

static int
s_compare_ids (const void *a, const void *b)
{
    return memcmp (a, b, ZK_ID_SIZE);
}

Test (zk_envelope, ids_from_several_threads_are_distinct_and_ordered_per_thread)
{
    enum { threads = 4 };
    uint8_t (*ids)[ZK_ID_SIZE] = calloc (threads * S_THREAD_IDS, ZK_ID_SIZE);
    cr_assert_not_null (ids);
    pthread_t thread[threads];
    for (int t = 0; t < threads; t++)
        cr_assert_eq (pthread_create (&thread[t], NULL, s_generate_ids, ids + t * S_THREAD_IDS), 0);
    for (int t = 0; t < threads; t++)
        pthread_join (thread[t], NULL);
    for (int t = 0; t < threads; t++)
        for (int i = 1; i < S_THREAD_IDS; i++)
            cr_assert_gt (
                memcmp (ids[t * S_THREAD_IDS + i], ids[t * S_THREAD_IDS + i - 1], ZK_ID_SIZE), 0);
    qsort (ids, threads * S_THREAD_IDS, ZK_ID_SIZE, s_compare_ids);
    for (int i = 1; i < threads * S_THREAD_IDS; i++)
        cr_assert_neq (memcmp (ids[i], ids[i - 1], ZK_ID_SIZE), 0, "duplicate id");
    free (ids);
}

//  The random bytes of ids come from a per-thread pool: a forked child
//  must not reuse its parent's pool, or both would make the same ids.
Test (zk_envelope, a_forked_child_does_not_repeat_its_parents_ids)
{
    uint8_t first[ZK_ID_SIZE];
    zk_id_generate (first);  //  fills the pool
    int fds[2];
    cr_assert_eq (pipe (fds), 0);
    pid_t pid = fork ();
    cr_assert_geq (pid, 0);
    if (pid == 0) {
        uint8_t mine[ZK_ID_SIZE];
        zk_id_generate (mine);
        _exit (write (fds[1], mine, sizeof mine) == sizeof mine ? 0 : 1);
    }
    uint8_t parent[ZK_ID_SIZE], child[ZK_ID_SIZE];
    zk_id_generate (parent);
    cr_assert_eq (read (fds[0], child, sizeof child), (ssize_t) sizeof child);
    int status;
    cr_assert_eq (waitpid (pid, &status, 0), pid);
    close (fds[0]);
    close (fds[1]);
    cr_assert_neq (memcmp (parent + 9, child + 9, 7), 0, "child and parent drew the same random bytes");
    cr_assert_neq (memcmp (first + 9, child + 9, 7), 0);
}

Test (zk_envelope, id_text_round_trips)
{
    char text[ZK_ID_TEXT_SIZE];
    zk_id_format (s_id_a, text);
    cr_assert_str_eq (text, "018f3a6c-2b40-7a1c-9c3e-5d2f81a04417");
    uint8_t parsed[ZK_ID_SIZE];
    cr_assert_eq (zk_id_parse (text, parsed), 0);
    cr_assert_eq (memcmp (parsed, s_id_a, ZK_ID_SIZE), 0);
    memset (parsed, 0, sizeof parsed);
    cr_assert_eq (zk_id_parse ("018F3A6C-2B40-7A1C-9C3E-5D2F81A04417", parsed), 0);
    cr_assert_eq (memcmp (parsed, s_id_a, ZK_ID_SIZE), 0);
    memset (parsed, 0, sizeof parsed);
    cr_assert_eq (zk_id_parse ("018f3a6c2b407a1c9c3e5d2f81a04417", parsed), 0);
    cr_assert_eq (memcmp (parsed, s_id_a, ZK_ID_SIZE), 0);
    for (int i = 0; i < 100; i++) {
        uint8_t id[ZK_ID_SIZE];
        zk_id_generate (id);
        zk_id_format (id, text);
        cr_assert_eq (strlen (text), ZK_ID_TEXT_SIZE - 1);
        cr_assert_eq (strspn (text, "0123456789abcdef-"), ZK_ID_TEXT_SIZE - 1, "lowercase hex");
        cr_assert_eq (zk_id_parse (text, parsed), 0);
        cr_assert_eq (memcmp (parsed, id, ZK_ID_SIZE), 0);
    }
}

Test (zk_envelope, id_parse_refuses_bad_text)
{
    const char *bad[] = {
        "",
        "018f3a6c-2b40-7a1c-9c3e-5d2f81a0441",    //  one digit short
        "018f3a6c-2b40-7a1c-9c3e-5d2f81a044170",  //  one digit more
        "018f3a6c-2b40-7a1c-9c3e-5d2f81a04417\n",
        " 018f3a6c-2b40-7a1c-9c3e-5d2f81a04417",
        "018f3a6c2-b40-7a1c-9c3e-5d2f81a04417",  //  dash misplaced
        "018f3a6c-2b40-7a1c-9c3e_5d2f81a04417",
        "018f3a6c-2b40-7a1c-9c3e-5d2f81a0441g",  //  not hex
        "{018f3a6c-2b40-7a1c-9c3e-5d2f81a04417}",
        "urn:uuid:018f3a6c-2b40-7a1c-9c3e-5d2f81a04417",
        "018f3a6c2b407a1c9c3e5d2f81a0441",    //  31 digits
        "018f3a6c2b407a1c9c3e5d2f81a044170",  //  33 digits
        "018f3a6c2b407a1c9c3e5d2f81a0441-",
        "018f3a6c-2b40-7a1c-9c3e5d2f81a04417",  //  35 chars, a dash missing
        "+18f3a6c-2b40-7a1c-9c3e-5d2f81a04417",
    };
    uint8_t id[ZK_ID_SIZE];
    memset (id, 0xee, sizeof id);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq (zk_id_parse (bad[i], id), ZK_EINVAL, "accepted '%s'", bad[i]);
    cr_assert_eq (zk_id_parse (NULL, id), ZK_EINVAL);
    for (int i = 0; i < ZK_ID_SIZE; i++)
        cr_assert_eq (id[i], 0xee, "a refused parse leaves id untouched");
}

//  --------------------------------------------------------------------------
//  Magic, defaults, forward compatibility

Test (zk_envelope, magic_detection)
{
    struct {
        const char *hex;
        bool is_envelope;
    } cases[] = {
        {"81 a2 7a 6b 01", true},
        {"8f a2 7a 6b 01", true},
        {"81 a2 7a 6b 02", true},  //  a future version is still an envelope
        {"81 a2 7a 6b 7f", true},
        {"de 00 02 a2 7a 6b 01", true},
        {"81 a2 7a 6b", false},  //  no version byte
        {"de 00 02 a2 7a 6b", false},
        {"80 a2 7a 6b 01", false},  //  an empty map cannot hold "zk"
        {"90 a2 7a 6b 01", false},
        {"df 00 00 00 02 a2 7a 6b 01", false},
        {"81 a2 7a 6c 01", false},
        {"81 a2 6b 7a 01", false},
        {"81 d9 02 7a 6b 01", false},  //  "zk" must be a fixstr
        {"81 a2 7a 6b cc", false},     //  version must be a positive fixint
        {"81 a2 7a 6b ff", false},
        {"68 65 6c 6c 6f", false},  //  "hello"
        {"", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_bytes_t bytes = {0};
        s_put_hex (&bytes, cases[i].hex);
        cr_assert_eq (zk_envelope_is_envelope (bytes.data, bytes.size), cases[i].is_envelope, "%s",
                      cases[i].hex);
        s_bytes_free (&bytes);
    }
    cr_assert_not (zk_envelope_is_envelope (NULL, 0));
    zk_envelope_t *envelope = zk_envelope_new ();
    zframe_t *frame;
    cr_assert_eq (zk_envelope_encode (envelope, &frame), 0);
    cr_assert (zk_envelope_is_envelope (zframe_data (frame), zframe_size (frame)));
    zframe_destroy (&frame);
    zk_envelope_destroy (&envelope);
}

Test (zk_envelope, minimal_envelope_gets_the_defaults)
{
    s_bytes_t bytes = {0};
    s_start (&bytes, 2, true);
    zk_envelope_t *envelope;
    cr_assert_eq (s_decode (bytes.data, bytes.size, &envelope), 0);
    cr_assert_eq (memcmp (zk_envelope_id (envelope), s_id_a, ZK_ID_SIZE), 0);
    cr_assert_eq (memcmp (zk_envelope_trace (envelope), s_id_a, ZK_ID_SIZE), 0);
    cr_assert_eq (zk_envelope_attempt (envelope), 1);
    cr_assert_eq (zk_envelope_time (envelope), 1714672118592LL * 1000, "the id's millisecond");
    cr_assert_null (zk_envelope_content_type (envelope));
    cr_assert_eq (zk_envelope_header_count (envelope), 0);
    zk_envelope_destroy (&envelope);
    s_bytes_free (&bytes);
}

Test (zk_envelope, decodes_map16_and_any_integer_form)
{
    s_bytes_t bytes = {0};
    s_put_hex (&bytes, "de 00 05 a2 7a 6b 01");
    s_put_str (&bytes, "id");
    s_put_id (&bytes, s_id_a);
    s_put_str (&bytes, "ts");
    s_put_hex (&bytes, "d3 ff ff ff ff ff ff ff fe");  //  int64 -2
    s_put_str (&bytes, "at");
    s_put_hex (&bytes, "d0 07");  //  int8 7
    s_put_str (&bytes, "ct");
    s_put_hex (&bytes, "db 00 00 00 01 78");  //  str32 "x"
    zk_envelope_t *envelope;
    cr_assert_eq (s_decode (bytes.data, bytes.size, &envelope), 0);
    cr_assert_eq (zk_envelope_time (envelope), -2);
    cr_assert_eq (zk_envelope_attempt (envelope), 7);
    cr_assert_str_eq (zk_envelope_content_type (envelope), "x");
    zk_envelope_destroy (&envelope);
    s_bytes_free (&bytes);

    struct {
        const char *hex;
        int64_t time;
    } forms[] = {
        {"7f", 127},
        {"e0", -32},
        {"cc ff", 255},
        {"cd ff ff", 65535},
        {"d0 80", -128},
        {"d1 80 00", -32768},
        {"d2 80 00 00 00", INT32_MIN},
        {"ce ff ff ff ff", UINT32_MAX},
        {"cf 7f ff ff ff ff ff ff ff", INT64_MAX},
        {"d3 80 00 00 00 00 00 00 00", INT64_MIN},
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        s_start (&bytes, 3, true);
        s_put_str (&bytes, "ts");
        s_put_hex (&bytes, forms[i].hex);
        cr_assert_eq (s_decode (bytes.data, bytes.size, &envelope), 0, "%s", forms[i].hex);
        cr_assert_eq (zk_envelope_time (envelope), forms[i].time, "%s", forms[i].hex);
        zk_envelope_destroy (&envelope);
        s_bytes_free (&bytes);
    }
}

Test (zk_envelope, skips_unknown_keys_of_every_type)
{
    const char *values[] = {
        "c0",
        "c2",
        "c3",
        "05",
        "ff",
        "cc 01",
        "cd 00 01",
        "ce 00 00 00 01",
        "cf 00 00 00 00 00 00 00 01",
        "d0 ff",
        "d1 ff ff",
        "d2 ff ff ff ff",
        "d3 ff ff ff ff ff ff ff ff",
        "ca 3f 80 00 00",
        "cb 3f f0 00 00 00 00 00 00",
        "a3 61 62 63",
        "d9 01 61",
        "da 00 01 61",
        "db 00 00 00 01 61",
        "c4 01 00",
        "c5 00 01 00",
        "c6 00 00 00 01 00",
        "92 01 a1 61",
        "dc 00 01 c0",
        "dd 00 00 00 01 c0",
        "81 a1 61 91 c0",
        "de 00 01 01 02",
        "df 00 00 00 01 01 02",
        "d4 01 02",
        "d5 01 02 03",
        "d6 01 00 00 00 00",
        "d7 01 00 00 00 00 00 00 00 00",
        "d8 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
        "c7 02 01 aa bb",
        "c8 00 01 01 aa",
        "c9 00 00 00 01 01 aa",
        "90",
        "80",
    };
    size_t count = sizeof values / sizeof values[0];
    s_bytes_t bytes = {0};
    s_put_hex (&bytes, "de 00");
    s_put_byte (&bytes, (uint8_t) (count + 4));
    s_put_hex (&bytes, "a2 7a 6b 01");
    s_put_str (&bytes, "future");  //  an unknown key before the known ones
    s_put_hex (&bytes, "c0");
    s_put_str (&bytes, "id");
    s_put_id (&bytes, s_id_a);
    for (size_t i = 0; i < count; i++) {
        char key[16];
        snprintf (key, sizeof key, "x%zu", i);
        s_put_str (&bytes, key);
        s_put_hex (&bytes, values[i]);
    }
    s_put_str (&bytes, "at");
    s_put_hex (&bytes, "09");
    zk_envelope_t *envelope;
    int rc = s_decode (bytes.data, bytes.size, &envelope);
    cr_assert_eq (rc, 0, "%s", zk_strerror (rc));
    cr_assert_eq (zk_envelope_attempt (envelope), 9);
    cr_assert_eq (memcmp (zk_envelope_id (envelope), s_id_a, ZK_ID_SIZE), 0);
    zk_envelope_destroy (&envelope);
    s_bytes_free (&bytes);
}

Test (zk_envelope, unknown_value_nested_to_the_max_depth_is_skipped)
{
    for (int depth = ZK_ENVELOPE_MAX_DEPTH; depth <= ZK_ENVELOPE_MAX_DEPTH + 1; depth++) {
        s_bytes_t bytes = {0};
        s_start (&bytes, 3, true);
        s_put_str (&bytes, "nest");
        for (int i = 0; i < depth; i++)
            s_put_hex (&bytes, i % 2 ? "91" : "81 a0");  //  arrays and maps alternate
        s_put_hex (&bytes, "c0");
        cr_assert_eq (s_decode_bytes (&bytes), depth > ZK_ENVELOPE_MAX_DEPTH ? ZK_EDEPTH : 0,
                      "depth %d", depth);
        s_bytes_free (&bytes);
    }
}

//  --------------------------------------------------------------------------
//  Hostile input

//  A valid encoding with every field and a few headers.
static zframe_t *
s_full_frame (void)
{
    zk_envelope_t *envelope = s_example ();
    cr_assert_eq (zk_envelope_set_header (envelope, "reply-to", "orders"), 0);
    cr_assert_eq (zk_envelope_set_header (envelope, "", ""), 0);
    char *long_value = s_repeat ('l', 300);  //  a str16
    cr_assert_eq (zk_envelope_set_header (envelope, "long", long_value), 0);
    free (long_value);
    zframe_t *frame;
    cr_assert_eq (zk_envelope_encode (envelope, &frame), 0);
    zk_envelope_destroy (&envelope);
    return frame;
}

Test (zk_envelope, hostile_every_truncation_is_etrunc)
{
    zframe_t *frame = s_full_frame ();
    const uint8_t *data = zframe_data (frame);
    size_t size = zframe_size (frame);
    cr_assert_eq (s_decode (data, size, NULL), 0);
    for (size_t length = 0; length < size; length++) {
        int rc = s_decode (data, length, NULL);
        cr_assert_eq (rc, ZK_ETRUNC, "length %zu of %zu: %s", length, size, zk_strerror (rc));
    }
    //  The same through a map16 header.
    s_bytes_t bytes = {0};
    s_put_hex (&bytes, "de 00");
    s_put_byte (&bytes, data[0] & 0x0f);
    s_put (&bytes, data + 1, size - 1);
    cr_assert_eq (s_decode_bytes (&bytes), 0);
    for (size_t length = 0; length < bytes.size; length++)
        cr_assert_eq (s_decode (bytes.data, length, NULL), ZK_ETRUNC, "map16, length %zu", length);
    s_bytes_free (&bytes);
    zframe_destroy (&frame);
}

Test (zk_envelope, hostile_huge_counts_are_refused_without_allocating)
{
    //  A top-level map32 is not an envelope (65536 pairs cannot fit 64 KiB).
    cr_assert_eq (s_decode_hex ("df ff ff ff ff a2 7a 6b 01"), ZK_EPROTO);
    cr_assert_eq (s_decode_hex ("de ff ff a2 7a 6b 01"), ZK_ETRUNC);
    const char *values[] = {
        "df ff ff ff ff", "dd ff ff ff ff",       "de ff ff",
        "dc ff ff",       "df 7f ff ff ff 01 01", "dd 00 00 00 03 01 01",
    };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        for (int as_headers = 0; as_headers < 2; as_headers++) {
            if (as_headers && values[i][1] != 'f' && values[i][1] != 'e')
                continue;  //  arrays are not header maps
            cr_assert_eq (s_decode_pair (as_headers ? "h" : "unknown", values[i]), ZK_ETRUNC,
                          "%s in %s", values[i], as_headers ? "h" : "an unknown key");
        }
    }
}

Test (zk_envelope, hostile_lengths_beyond_the_data)
{
    struct {
        const char *key;
        const char *value;
    } cases[] = {
        {"ct", "db ff ff ff ff 41"},
        {"ct", "da 01 00 41"},
        {"ct", "d9 05 41"},
        {"id", "c6 ff ff ff ff 00"},
        {"tr", "c6 00 00 00 10"},
        {"tr", "c5 00 10 00"},
        {"x", "db ff ff ff ff"},
        {"x", "c6 7f ff ff ff"},
        {"x", "c9 ff ff ff ff 01"},
        {"x", "d8 01 00"},
        {"x", "cf 00 00"},
        {"x", "cb 00"},
        {"h", "81 db ff ff ff ff 61"},
        {"h", "81 a1 61 db 00 00 10 00 62"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_assert_eq (s_decode_pair (cases[i].key, cases[i].value), ZK_ETRUNC, "%s: %s",
                      cases[i].key, cases[i].value);
    //  A key whose own length runs past the end.
    s_bytes_t bytes = {0};
    s_start (&bytes, 3, true);
    s_put_hex (&bytes, "db ff ff ff ff 61 62");
    cr_assert_eq (s_decode_bytes (&bytes), ZK_ETRUNC);
    s_bytes_free (&bytes);
}

Test (zk_envelope, hostile_deep_nesting_is_edepth)
{
    const char *levels[] = {"91", "81 a0", "dc 00 01", "de 00 01 a0"};
    for (size_t kind = 0; kind < sizeof levels / sizeof levels[0]; kind++) {
        s_bytes_t bytes = {0};
        s_start (&bytes, 3, true);
        s_put_str (&bytes, "deep");
        for (int i = 0; i < 1000; i++)
            s_put_hex (&bytes, levels[kind]);
        s_put_hex (&bytes, "c0");
        cr_assert_eq (s_decode_bytes (&bytes), ZK_EDEPTH, "%s", levels[kind]);
        s_bytes_free (&bytes);
    }
}

Test (zk_envelope, hostile_wrong_types_for_each_key)
{
    struct {
        const char *key;
        const char *value;
    } cases[] = {
        {"id", "a0"},
        {"id", "c0"},
        {"id", "01"},
        {"id", "c4 0f 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"},        //  15 bytes
        {"id", "c4 11 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"},  //  17 bytes
        {"id", "b0 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"},        //  str, not bin
        {"tr", "a0"},
        {"tr", "90"},
        {"tr", "c4 00"},
        {"ts", "a1 31"},
        {"ts", "c0"},
        {"ts", "c3"},
        {"ts", "cb 41 d9 00 00 00 00 00 00"},  //  a float
        {"ts", "cf 80 00 00 00 00 00 00 00"},  //  above INT64_MAX
        {"ts", "c4 01 00"},
        {"at", "ff"},  //  -1
        {"at", "d0 fe"},
        {"at", "cf 00 00 00 01 00 00 00 00"},  //  above UINT32_MAX
        {"at", "a1 31"},
        {"at", "c2"},
        {"ct", "01"},
        {"ct", "c0"},
        {"ct", "c4 01 61"},
        {"ct", "91 a1 61"},
        {"ct", "a3 61 00 62"},  //  NUL inside
        {"h", "90"},
        {"h", "a1 61"},
        {"h", "c0"},
        {"h", "81 01 a1 61"},        //  integer key
        {"h", "81 a1 61 01"},        //  integer value
        {"h", "81 a1 61 c4 01 62"},  //  bin value
        {"h", "81 a1 61 c0"},
        {"h", "81 a1 61 81 a1 62 a1 63"},  //  nested map
        {"h", "81 a1 00 a1 61"},           //  NUL in a key
        {"h", "81 a1 61 a3 62 00 63"},     //  NUL in a value
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = s_decode_pair (cases[i].key, cases[i].value);
        cr_assert_eq (rc, ZK_EPROTO, "%s: %s gave %s", cases[i].key, cases[i].value,
                      zk_strerror (rc));
    }
    //  Keys are strs.
    cr_assert_eq (s_decode_hex ("82 a2 7a 6b 01 01 c0"), ZK_EPROTO);
    cr_assert_eq (s_decode_hex ("82 a2 7a 6b 01 c4 02 69 64 c0"), ZK_EPROTO);
    //  No id at all.
    cr_assert_eq (s_decode_hex ("81 a2 7a 6b 01"), ZK_EPROTO);
    cr_assert_eq (s_decode_hex ("82 a2 7a 6b 01 a2 61 74 02"), ZK_EPROTO);
    //  Not a map, or "zk" not first.
    cr_assert_eq (s_decode_hex ("91 a2 7a 6b"), ZK_EPROTO);
    cr_assert_eq (s_decode_hex ("80"), ZK_EPROTO);
    cr_assert_eq (s_decode_hex ("68 65 6c 6c 6f"), ZK_EPROTO);
    s_bytes_t bytes = {0};
    s_put_hex (&bytes, "82");
    s_put_str (&bytes, "id");
    s_put_id (&bytes, s_id_a);
    s_put_hex (&bytes, "a2 7a 6b 01");
    cr_assert_eq (s_decode_bytes (&bytes), ZK_EPROTO);
    s_bytes_free (&bytes);
}

Test (zk_envelope, hostile_duplicate_keys)
{
    const char *keys[] = {"zk", "id", "ts", "tr", "at", "ct", "h"};
    const char *values[] = {"01", NULL, "01", NULL, "01", "a0", "80"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        s_bytes_t bytes = {0};
        bool id = streq (keys[i], "id");
        s_start (&bytes, id ? 3 : 4, true);
        int copies = id ? 1 : 2;  //  "zk" and "id" are already there once
        if (streq (keys[i], "zk"))
            copies = 1;
        for (int copy = 0; copy < copies; copy++) {
            s_put_str (&bytes, keys[i]);
            if (values[i])
                s_put_hex (&bytes, values[i]);
            else
                s_put_id (&bytes, s_id_b);
        }
        if (streq (keys[i], "zk")) {  //  keep the pair count right
            s_put_str (&bytes, "x");
            s_put_hex (&bytes, "c0");
        }
        cr_assert_eq (s_decode_bytes (&bytes), ZK_EPROTO, "%s twice", keys[i]);
        s_bytes_free (&bytes);
    }
    //  A header key twice.
    s_bytes_t bytes = {0};
    s_start (&bytes, 3, true);
    s_put_str (&bytes, "h");
    s_put_hex (&bytes, "82 a1 6b a1 31 a1 6b a1 32");
    cr_assert_eq (s_decode_bytes (&bytes), ZK_EPROTO);
    s_bytes_free (&bytes);
    //  An unknown key twice is skipped twice.
    s_start (&bytes, 4, true);
    s_put_hex (&bytes, "a1 78 c0 a1 78 c0");
    cr_assert_eq (s_decode_bytes (&bytes), 0);
    s_bytes_free (&bytes);
}

Test (zk_envelope, hostile_bad_version)
{
    cr_assert_eq (s_decode_hex ("81 a2 7a 6b 02"), ZK_EVERSION);
    cr_assert_eq (s_decode_hex ("81 a2 7a 6b 00"), ZK_EVERSION);
    cr_assert_eq (s_decode_hex ("81 a2 7a 6b 7f"), ZK_EVERSION);
    cr_assert_eq (s_decode_hex ("83 a2 7a 6b 02 c1 c1 c1 c1"), ZK_EVERSION,
                  "nothing after it is read");
    cr_assert_eq (s_decode_hex ("de 00 01 a2 7a 6b 02"), ZK_EVERSION);
    cr_assert_eq (s_decode_hex ("81 a2 7a 6b cc 01"), ZK_EPROTO, "not a positive fixint");
    cr_assert_eq (s_decode_hex ("81 a2 7a 6b c0"), ZK_EPROTO);
    cr_assert_eq (s_decode_hex ("81 d9 02 7a 6b 01"), ZK_EPROTO, "\"zk\" not a fixstr");
    //  The same frames fail zk_envelope_detach, which leaves the msg alone.
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, "\x81\xa2zk\x02", 5);
    zmsg_addstr (msg, "body");
    zk_envelope_t *envelope;
    cr_assert_eq (zk_envelope_detach (msg, &envelope), ZK_EVERSION);
    cr_assert_null (envelope);
    cr_assert_eq (zmsg_size (msg), 2);
    zmsg_destroy (&msg);
}

Test (zk_envelope, hostile_oversized_frame)
{
    //  Exactly ZK_ENVELOPE_MAX_SIZE bytes decode (padded with an unknown
    //  bin32); one byte more is ZK_ETOOBIG before anything is read.
    s_bytes_t bytes = {0};
    s_start (&bytes, 3, true);
    s_put_str (&bytes, "pad");
    size_t pad = ZK_ENVELOPE_MAX_SIZE - bytes.size - 5;
    s_put_byte (&bytes, 0xc6);
    for (int shift = 24; shift >= 0; shift -= 8)
        s_put_byte (&bytes, (uint8_t) (pad >> shift));
    s_put_repeat (&bytes, 0, pad);
    cr_assert_eq (bytes.size, ZK_ENVELOPE_MAX_SIZE);
    cr_assert_eq (s_decode_bytes (&bytes), 0);
    s_put_byte (&bytes, 0);
    cr_assert_eq (s_decode_bytes (&bytes), ZK_ETOOBIG);
    s_bytes_free (&bytes);
}

Test (zk_envelope, hostile_trailing_and_reserved_bytes)
{
    s_bytes_t bytes = {0};
    s_start (&bytes, 2, true);
    s_put_hex (&bytes, "c0");  //  a byte after the map
    cr_assert_eq (s_decode_bytes (&bytes), ZK_EPROTO);
    s_bytes_free (&bytes);
    cr_assert_eq (s_decode_pair ("x", "c1"), ZK_EPROTO, "0xc1 is never used");
    cr_assert_eq (s_decode_pair ("x", "92 01 c1"), ZK_EPROTO);
}

//  xorshift64*: a fixed seed, so a failure reproduces.
static uint64_t
s_random (uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 0x2545f4914f6cdd1dULL;
}

//  One mutation of the size bytes at work (capacity bytes), chosen by r:
//  any byte, one bit, a msgpack type byte, 0xff, a byte dropped or inserted.
static void
s_mutate (uint8_t *work, size_t *size_p, size_t capacity, uint64_t r)
{
    size_t size = *size_p;
    size_t at = (size_t) ((r >> 8) % size);
    uint8_t byte = (uint8_t) (r >> 40);
    int kind = (int) (r % 6);
    if (kind == 0)
        work[at] = byte;
    else if (kind == 1)
        work[at] ^= (uint8_t) (1 << (byte % 8));
    else if (kind == 2)
        work[at] = (uint8_t) (0xc0 + byte % 0x20);
    else if (kind == 3)
        work[at] = 0xff;
    else if (kind == 4 && size > 1) {
        memmove (work + at, work + at + 1, size - at - 1);
        size--;
    }
    else if (kind == 5 && size < capacity) {
        memmove (work + at + 1, work + at, size - at);
        work[at] = byte;
        size++;
    }
    *size_p = size;
}

Test (zk_envelope, hostile_random_mutations_never_crash, .timeout = 60)
{
    zframe_t *frame = s_full_frame ();
    const uint8_t *original = zframe_data (frame);
    size_t original_size = zframe_size (frame);
    uint64_t state = 0x9e3779b97f4a7c15ULL;
    int decoded = 0, refused = 0;
    uint8_t *work = malloc (original_size + 8);
    cr_assert_not_null (work);
    for (int round = 0; round < 50000; round++) {
        size_t size = original_size;
        memcpy (work, original, size);
        int mutations = 1 + (int) (s_random (&state) % 4);
        for (int m = 0; m < mutations; m++)
            s_mutate (work, &size, original_size + 8, s_random (&state));
        zk_envelope_t *envelope;
        int rc = s_decode (work, size, &envelope);
        if (rc) {
            cr_assert (rc == ZK_ETRUNC || rc == ZK_ETOOBIG || rc == ZK_EPROTO || rc == ZK_EDEPTH
                           || rc == ZK_EVERSION,
                       "round %d: unexpected %d", round, rc);
            refused++;
            continue;
        }
        decoded++;
        zframe_t *again;
        rc = zk_envelope_encode (envelope, &again);
        cr_assert_eq (rc, 0, "round %d: re-encode failed: %s", round, zk_strerror (rc));
        zk_envelope_t *twice;
        cr_assert_eq (s_decode (zframe_data (again), zframe_size (again), &twice), 0);
        s_assert_same (envelope, twice);
        zk_envelope_destroy (&twice);
        zframe_destroy (&again);
        zk_envelope_destroy (&envelope);
    }
    cr_assert_gt (decoded, 100, "mutations that still decode exercise the re-encode");
    cr_assert_gt (refused, 10000);
    free (work);
    zframe_destroy (&frame);
}

Test (zk_envelope, hostile_random_garbage_after_the_magic, .timeout = 60)
{
    uint64_t state = 0x0123456789abcdefULL;
    uint8_t buffer[64];
    for (int round = 0; round < 20000; round++) {
        size_t size = 5 + (size_t) (s_random (&state) % (sizeof buffer - 5));
        memcpy (buffer, "\x8f\xa2zk\x01", 5);
        for (size_t i = 5; i < size; i++)
            buffer[i] = (uint8_t) s_random (&state);
        int rc = s_decode (buffer, size, NULL);
        cr_assert_neq (rc, ZK_ENOMEM, "round %d", round);
    }
}

//  --------------------------------------------------------------------------
//  On a zmsg

Test (zk_envelope, attach_then_detach)
{
    zk_envelope_t *envelope = s_example ();
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "body-1");
    zmsg_addstr (msg, "body-2");
    cr_assert_eq (zk_envelope_attach (envelope, msg), 0);
    cr_assert_eq (zmsg_size (msg), 3);
    zframe_t *first = zmsg_first (msg);
    cr_assert (zk_envelope_is_envelope (zframe_data (first), zframe_size (first)));

    zk_envelope_t *received;
    cr_assert_eq (zk_envelope_detach (msg, &received), 0);
    cr_assert_not_null (received);
    s_assert_same (envelope, received);
    cr_assert_eq (zmsg_size (msg), 2);
    char *body = zmsg_popstr (msg);
    cr_assert_str_eq (body, "body-1");
    free (body);
    zk_envelope_destroy (&received);
    zmsg_destroy (&msg);
    zk_envelope_destroy (&envelope);
}

Test (zk_envelope, detach_without_an_envelope_leaves_the_msg)
{
    zmsg_t *msg = zmsg_new ();
    zk_envelope_t *envelope = (zk_envelope_t *) 0x1;
    cr_assert_eq (zk_envelope_detach (msg, &envelope), 0, "empty msg");
    cr_assert_null (envelope);
    zmsg_addstr (msg, "hello");
    zmsg_addmem (msg, "\x81\xa2zk\x01", 5);  //  the magic, but not first
    cr_assert_eq (zk_envelope_detach (msg, &envelope), 0);
    cr_assert_null (envelope);
    cr_assert_eq (zmsg_size (msg), 2);
    cr_assert (zframe_streq (zmsg_first (msg), "hello"));
    zmsg_destroy (&msg);
}

Test (zk_envelope, detach_of_a_bad_envelope_leaves_the_msg)
{
    const char *frames[] = {"81 a2 7a 6b 01", "82 a2 7a 6b 01 a2 69 64 c4 10 00",
                            "81 a2 7a 6b 01 c0"};
    const int codes[] = {ZK_EPROTO, ZK_ETRUNC, ZK_EPROTO};
    for (size_t i = 0; i < sizeof frames / sizeof frames[0]; i++) {
        s_bytes_t bytes = {0};
        s_put_hex (&bytes, frames[i]);
        zmsg_t *msg = zmsg_new ();
        zmsg_addmem (msg, bytes.data, bytes.size);
        zmsg_addstr (msg, "body");
        zk_envelope_t *envelope;
        cr_assert_eq (zk_envelope_detach (msg, &envelope), codes[i], "%s", frames[i]);
        cr_assert_null (envelope);
        cr_assert_eq (zmsg_size (msg), 2);
        zframe_t *first = zmsg_first (msg);
        cr_assert_eq (zframe_size (first), bytes.size);
        cr_assert_eq (memcmp (zframe_data (first), bytes.data, bytes.size), 0);
        zmsg_destroy (&msg);
        s_bytes_free (&bytes);
    }
}

Test (zk_envelope, pub_sub_keeps_the_topic_first)
{
    zk_envelope_t *envelope = s_example ();
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "body");
    cr_assert_eq (zk_envelope_attach (envelope, msg), 0);
    zmsg_pushstr (msg, "weather.paris");  //  the publisher puts the topic in front

    char *topic = zmsg_popstr (msg);  //  the subscriber takes it off first
    cr_assert_str_eq (topic, "weather.paris");
    zk_envelope_t *received;
    cr_assert_eq (zk_envelope_detach (msg, &received), 0);
    cr_assert_not_null (received);
    s_assert_same (envelope, received);
    cr_assert_eq (zmsg_size (msg), 1);
    free (topic);
    zk_envelope_destroy (&received);
    zmsg_destroy (&msg);
    zk_envelope_destroy (&envelope);
}

//  --------------------------------------------------------------------------
//  JSON and UTF-8

Test (zk_envelope, json_with_no_content_type_or_headers)
{
    zk_envelope_t *envelope = zk_envelope_new ();
    zk_envelope_set_id (envelope, s_id_a);
    zk_envelope_set_trace (envelope, s_id_a);
    zk_envelope_set_time (envelope, -5);
    char *json = s_json (envelope);
    cr_assert_str_eq (json, "{\"id\":\"018f3a6c-2b40-7a1c-9c3e-5d2f81a04417\",\"time\":-5,"
                            "\"trace\":\"018f3a6c-2b40-7a1c-9c3e-5d2f81a04417\",\"attempt\":1,"
                            "\"content_type\":null,\"headers\":{}}");
    free (json);
    zk_envelope_destroy (&envelope);
}

Test (zk_envelope, json_escapes_headers)
{
    zk_envelope_t *envelope = zk_envelope_new ();
    cr_assert_eq (zk_envelope_set_content_type (envelope, "a\"b"), 0);
    cr_assert_eq (zk_envelope_set_header (envelope, "q\"k", "line\nnext\\"), 0);
    cr_assert_eq (zk_envelope_set_header (envelope, "bin", "\xff\x01"), 0);
    char *json = s_json (envelope);
    cr_assert_not_null (strstr (json, "\"content_type\":\"a\\\"b\",\"headers\":{"
                                      "\"q\\\"k\":\"line\\u000anext\\\\\","
                                      "\"bin\":\"\\u00ff\\u0001\"}}"),
                        "%s", json);
    free (json);
    zk_envelope_destroy (&envelope);
}

Test (zk_envelope, json_string_escapes)
{
    struct {
        const char *input;
        size_t size;
        const char *expected;
    } cases[] = {
        {"", 0, "\"\""},
        {"plain text", 10, "\"plain text\""},
        {"\"quoted\"", 8, "\"\\\"quoted\\\"\""},
        {"back\\slash", 10, "\"back\\\\slash\""},
        {"\n\r\t\b\f", 5, "\"\\u000a\\u000d\\u0009\\u0008\\u000c\""},
        {"\x01\x1f\x7f", 3, "\"\\u0001\\u001f\\u007f\""},
        {"nul\0inside", 10, "\"nul\\u0000inside\""},
        {"/ slash", 7, "\"/ slash\""},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14,
         "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *json = s_json_string (cases[i].input, cases[i].size);
        cr_assert_str_eq (json, cases[i].expected, "case %zu", i);
        free (json);
    }
}

Test (zk_envelope, json_string_escapes_invalid_utf8_bytes)
{
    struct {
        const char *input;
        const char *expected;
    } cases[] = {
        {"\xc0\x80", "\"\\u00c0\\u0080\""},                        //  overlong NUL
        {"\xe0\x80\xaf", "\"\\u00e0\\u0080\\u00af\""},             //  overlong '/'
        {"\xed\xa0\x80", "\"\\u00ed\\u00a0\\u0080\""},             //  surrogate
        {"\xf4\x90\x80\x80", "\"\\u00f4\\u0090\\u0080\\u0080\""},  //  above U+10FFFF
        {"\xe2\x82"
         "A",
         "\"\\u00e2\\u0082A\""},      //  cut short
        {"a\x80z", "\"a\\u0080z\""},  //  lone continuation
        {"\xff\xfe", "\"\\u00ff\\u00fe\""},
        {"\xe2\x82\xac\xe2\x82", "\"\xe2\x82\xac\\u00e2\\u0082\""},  //  ends mid-sequence
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *json = s_json_string (cases[i].input, strlen (cases[i].input));
        cr_assert_str_eq (json, cases[i].expected, "case %zu", i);
        cr_assert (zk_utf8_valid (json, strlen (json)), "the output is valid UTF-8");
        free (json);
    }
}

Test (zk_envelope, utf8_validation)
{
    const char *valid[] = {
        "",
        "ascii",
        "\xc2\x80",
        "\xdf\xbf",
        "\xe0\xa0\x80",
        "\xed\x9f\xbf",
        "\xee\x80\x80",
        "\xef\xbf\xbf",
        "\xf0\x90\x80\x80",
        "\xf4\x8f\xbf\xbf",
        "caf\xc3\xa9",
    };
    const char *invalid[] = {
        "\xc0\x80",
        "\xc1\xbf",
        "\xe0\x9f\xbf",
        "\xf0\x8f\xbf\xbf",
        "\xed\xa0\x80",
        "\xed\xbf\xbf",
        "\xf4\x90\x80\x80",
        "\xf5\x80\x80\x80",
        "\xf8\x88\x80\x80\x80",
        "\xff",
        "\x80",
        "\xe2\x82",
        "\xe2\x28\xa1",
        "a\xc3",
        "\xf0\x9f\x98",
    };
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
        cr_assert (zk_utf8_valid (valid[i], strlen (valid[i])), "valid case %zu", i);
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        cr_assert_not (zk_utf8_valid (invalid[i], strlen (invalid[i])), "invalid case %zu", i);
    cr_assert (zk_utf8_valid ("a\0b", 3), "NUL is valid UTF-8");
}

Test (zk_envelope, json_reports_write_errors)
{
    FILE *read_only = fopen ("/dev/null", "r");
    cr_assert_not_null (read_only);
    zk_envelope_t *envelope = s_example ();
    cr_assert_eq (zk_envelope_print_json (envelope, read_only), ZK_EIO);
    cr_assert_eq (zk_json_print_string ("x", 1, read_only), ZK_EIO);
    fclose (read_only);
    zk_envelope_destroy (&envelope);
}
