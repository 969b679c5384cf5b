/*  Fuzz target: the envelope decoder (docs/protocol.md 3.5) and what a
    receiver does next. Invariants checked on every input:
    - what decodes passes the magic test, and detach agrees with decode;
    - a decoded envelope re-encodes (unless the re-encoding is too big),
      that encoding decodes again, and re-encodes to the same bytes;
    - dup gives the same bytes; JSON output never fails;
    - zk_id_parse: what parses formats and parses back to the same id.   */

#include "../../include/zkit.h"
#include "fuzz.h"

static void
s_check_reencode (const zk_envelope_t *envelope)
{
    zframe_t *frame = NULL;
    int rc = zk_envelope_encode (envelope, &frame);
    ZK_FUZZ_CHECK (rc == 0 || rc == ZK_ETOOBIG);
    if (rc != 0) {
        ZK_FUZZ_CHECK (frame == NULL);
        return;
    }
    ZK_FUZZ_CHECK (zframe_size (frame) <= ZK_ENVELOPE_MAX_SIZE);
    zk_envelope_t *again = NULL;
    rc = zk_envelope_decode (zframe_data (frame), zframe_size (frame), &again);
    ZK_FUZZ_CHECK (rc == 0 && again);
    ZK_FUZZ_CHECK (zk_envelope_time (again) == zk_envelope_time (envelope));
    ZK_FUZZ_CHECK (zk_envelope_attempt (again) == zk_envelope_attempt (envelope));
    ZK_FUZZ_CHECK (memcmp (zk_envelope_id (again), zk_envelope_id (envelope), ZK_ID_SIZE) == 0);
    ZK_FUZZ_CHECK (zk_envelope_header_count (again) == zk_envelope_header_count (envelope));
    zframe_t *second = NULL;
    ZK_FUZZ_CHECK (zk_envelope_encode (again, &second) == 0);
    ZK_FUZZ_CHECK (zframe_eq (frame, second));

    zk_envelope_t *copy = zk_envelope_dup (envelope);
    ZK_FUZZ_CHECK (copy);
    zframe_t *third = NULL;
    ZK_FUZZ_CHECK (zk_envelope_encode (copy, &third) == 0);
    ZK_FUZZ_CHECK (zframe_eq (frame, third));

    zframe_destroy (&third);
    zframe_destroy (&second);
    zframe_destroy (&frame);
    zk_envelope_destroy (&copy);
    zk_envelope_destroy (&again);
}

static void
s_check_json (const zk_envelope_t *envelope, const uint8_t *data, size_t size)
{
    char *text = NULL;
    size_t text_size = 0;
    FILE *out = open_memstream (&text, &text_size);
    ZK_FUZZ_CHECK (out);
    if (envelope)
        ZK_FUZZ_CHECK (zk_envelope_print_json (envelope, out) == 0);
    ZK_FUZZ_CHECK (zk_json_print_string (data, size, out) == 0);
    fclose (out);
    ZK_FUZZ_CHECK (text_size >= 2);
    free (text);
}

static void
s_check_id_text (const uint8_t *data, size_t size)
{
    char text[80];
    if (size >= sizeof text)
        return;
    memcpy (text, data, size);
    text[size] = 0;
    uint8_t id[ZK_ID_SIZE], again[ZK_ID_SIZE];
    if (zk_id_parse (text, id) != 0)
        return;
    char formatted[ZK_ID_TEXT_SIZE];
    zk_id_format (id, formatted);
    ZK_FUZZ_CHECK (strlen (formatted) == 36);
    ZK_FUZZ_CHECK (zk_id_parse (formatted, again) == 0);
    ZK_FUZZ_CHECK (memcmp (id, again, ZK_ID_SIZE) == 0);
}

int
zk_fuzz_envelope (const uint8_t *data, size_t size)
{
    zk_envelope_t *envelope = NULL;
    int rc = zk_envelope_decode (data, size, &envelope);
    int decode_rc = rc;
    ZK_FUZZ_CHECK ((rc == 0) == (envelope != NULL));
    ZK_FUZZ_CHECK (rc == 0 || rc == ZK_ETRUNC || rc == ZK_ETOOBIG || rc == ZK_EPROTO
                   || rc == ZK_EDEPTH || rc == ZK_EVERSION);
    if (envelope) {
        ZK_FUZZ_CHECK (zk_envelope_is_envelope (data, size));
        ZK_FUZZ_CHECK (zk_envelope_header_count (envelope) <= ZK_ENVELOPE_MAX_HEADERS);
        s_check_reencode (envelope);
    }
    s_check_json (envelope, data, size);
    zk_envelope_destroy (&envelope);

    //  detach: the same verdict as decode whenever the magic is there.
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, data, size);
    zmsg_addstr (msg, "body");
    rc = zk_envelope_detach (msg, &envelope);
    ZK_FUZZ_CHECK ((decode_rc == 0) == (rc == 0 && envelope != NULL));
    if (rc == 0 && envelope)
        ZK_FUZZ_CHECK (zmsg_size (msg) == 1);
    else
        ZK_FUZZ_CHECK (zmsg_size (msg) == 2);
    zk_envelope_destroy (&envelope);
    zmsg_destroy (&msg);

    s_check_id_text (data, size);
    return 0;
}

ZK_FUZZ_TARGET (zk_fuzz_envelope, )
