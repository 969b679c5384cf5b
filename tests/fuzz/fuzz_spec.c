/*  Fuzz target: the socket-spec parser (docs/protocol.md section 2), the
    queue-name check and the CLI's size parser. The input is the text
    (up to its first NUL). Invariants:
    - zk_spec_validate and zk_spec_new agree; a refusal has a reason,
      also when the reason buffer is tiny;
    - a valid spec has 1..ZK_SPEC_MAX_ENDPOINTS non-empty endpoints, a
      known type, and for a queue spec a valid NAME;
    - the spec written back in canonical form (every endpoint with its
      own direction) parses to the same type, endpoints and NAME.
    Nothing is bound or connected: zk_spec_attach is not called.         */

#include "../../include/zkit.h"
#include "fuzz.h"

static void
s_check_canonical (const zk_spec_t *spec)
{
    char text[ZK_SPEC_MAX_TEXT + 1];
    size_t used = 0;
    for (size_t index = 0; index < zk_spec_size (spec); index++) {
        int length = snprintf (
            text + used, sizeof text - used, "%s%s%s", index ? "," : zk_spec_type_name (spec),
            zk_spec_binds (spec, index) ? "@" : ">", zk_spec_endpoint (spec, index));
        if (length < 0 || (size_t) length >= sizeof text - used)
            return;  //  longer than a spec may be: nothing to compare
        used += (size_t) length;
    }
    const char *name = zk_spec_queue_name (spec);
    if (name) {
        int length = snprintf (text + used, sizeof text - used, "/%s", name);
        if (length < 0 || (size_t) length >= sizeof text - used)
            return;
    }
    char reason[256];
    int rc = zk_spec_validate (text, reason, sizeof reason);
    if (rc != 0)
        fprintf (stderr, "canonical form '%s' refused: %s\n", text, reason);
    ZK_FUZZ_CHECK (rc == 0);
    zk_spec_t *again = zk_spec_new (text);
    ZK_FUZZ_CHECK (again);
    ZK_FUZZ_CHECK (zk_spec_type (again) == zk_spec_type (spec));
    ZK_FUZZ_CHECK (zk_spec_size (again) == zk_spec_size (spec));
    for (size_t index = 0; index < zk_spec_size (spec); index++) {
        ZK_FUZZ_CHECK (streq (zk_spec_endpoint (again, index), zk_spec_endpoint (spec, index)));
        ZK_FUZZ_CHECK (zk_spec_binds (again, index) == zk_spec_binds (spec, index));
    }
    ZK_FUZZ_CHECK ((name == NULL) == (zk_spec_queue_name (again) == NULL));
    if (name)
        ZK_FUZZ_CHECK (streq (name, zk_spec_queue_name (again)));
    zk_spec_destroy (&again);
}

int
zk_fuzz_spec (const uint8_t *data, size_t size)
{
    //  The raw bytes, not NUL-terminated: any over-read is the checker's.
    char reason[256];
    if (zk_spec_check_queue_name ((const char *) data, size, reason, sizeof reason) == 0) {
        ZK_FUZZ_CHECK (size >= 1 && size <= ZK_SPEC_QUEUE_NAME_MAX);
        ZK_FUZZ_CHECK (data[0] != '.');
    }
    zk_spec_check_queue_name ((const char *) data, size, NULL, 0);

    char *text = malloc (size + 1);
    ZK_FUZZ_CHECK (text);
    memcpy (text, data, size);
    text[size] = 0;

    reason[0] = 0;
    int rc = zk_spec_validate (text, reason, sizeof reason);
    ZK_FUZZ_CHECK (rc == 0 || rc == ZK_EINVAL);
    if (rc != 0)
        ZK_FUZZ_CHECK (reason[0] != 0 && strlen (reason) < sizeof reason);
    char tiny[4] = "xyz";
    ZK_FUZZ_CHECK (zk_spec_validate (text, tiny, 1) == rc);
    if (rc != 0)
        ZK_FUZZ_CHECK (tiny[0] == 0);
    ZK_FUZZ_CHECK (zk_spec_validate (text, NULL, 0) == rc);

    if (rc == 0) {
        zk_spec_t *spec = zk_spec_new (text);
        ZK_FUZZ_CHECK (spec);
        ZK_FUZZ_CHECK (streq (zk_spec_text (spec), text));
        ZK_FUZZ_CHECK (zk_spec_type_name (spec));
        ZK_FUZZ_CHECK (zk_spec_type_from_name (zk_spec_type_name (spec)) == zk_spec_type (spec));
        size_t count = zk_spec_size (spec);
        ZK_FUZZ_CHECK (count >= 1 && count <= ZK_SPEC_MAX_ENDPOINTS);
        for (size_t index = 0; index < count; index++) {
            const char *endpoint = zk_spec_endpoint (spec, index);
            ZK_FUZZ_CHECK (endpoint && *endpoint);
            ZK_FUZZ_CHECK (streq (zk_spec_resolved (spec, index), endpoint));
        }
        const char *name = zk_spec_queue_name (spec);
        ZK_FUZZ_CHECK ((name != NULL) == (zk_spec_type (spec) == ZK_SPEC_QUEUE));
        if (name)
            ZK_FUZZ_CHECK (zk_spec_check_queue_name (name, strlen (name), NULL, 0) == 0);
        s_check_canonical (spec);
        zk_spec_destroy (&spec);
    }

    zk_spec_type_from_name (text);
    size_t parsed;
    if (zk_cli_parse_size (text, &parsed) == 0)
        ZK_FUZZ_CHECK (parsed <= SIZE_MAX / 2);
    free (text);
    return 0;
}

ZK_FUZZ_TARGET (zk_fuzz_spec, )
