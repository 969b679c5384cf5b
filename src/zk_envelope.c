/*  zk_envelope — the envelope frame: ids, encode (msgpack-c's packer),
    a bounded decoder of our own, attach/detach on a zmsg, JSON output.

    docs/protocol.md section 3 is the contract for the bytes. The decoder
    does not use msgpack_unpack: that allocates from the counts the input
    declares. Ours is a cursor over the received bytes that checks every
    declared length or count against what is left before it uses it, and
    allocates only for what it has actually read.                        */

#include "zk_classes.h"

#include <msgpack.h>
#include <pthread.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    char *key;
    char *value;
} s_header_t;

struct _zk_envelope_t {
    uint8_t id[ZK_ID_SIZE];
    uint8_t trace[ZK_ID_SIZE];
    int64_t time_us;
    uint32_t attempt;
    char *content_type;   //  NULL: not set
    s_header_t *headers;  //  insertion order
    size_t header_count;
    size_t header_capacity;
};

//  --------------------------------------------------------------------------
//  Ids: UUIDv7 (RFC 9562)

static int64_t
s_wall_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

//  Fill buf from the kernel's CSPRNG. getrandom () only fails on very old
//  kernels or seccomp sandboxes; then /dev/urandom, then (logged once) a
//  clock-seeded mix that still keeps ids of one process distinct.
static void
s_random_bytes (uint8_t *buf, size_t size)
{
    size_t filled = 0;
    while (filled < size) {
        ssize_t got = getrandom (buf + filled, size - filled, 0);
        if (got > 0)
            filled += (size_t) got;
        else if (got < 0 && errno != EINTR)
            break;
    }
    if (filled == size)
        return;
    FILE *urandom = fopen ("/dev/urandom", "rb");
    if (urandom) {
        filled += fread (buf + filled, 1, size - filled, urandom);
        fclose (urandom);
    }
    if (filled == size)
        return;
    static bool warned;
    if (!warned) {
        warned = true;
        zk_warn ("no system random source: message ids use a clock-seeded generator");
    }
    static uint64_t state;
    state += (uint64_t) s_wall_us () ^ ((uint64_t) getpid () << 32);
    for (; filled < size; filled++) {
        uint64_t z = (state += 0x9e3779b97f4a7c15ULL);  //  splitmix64
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        buf[filled] = (uint8_t) (z ^ (z >> 31));
    }
}

//  The monotonic part of UUIDv7 (RFC 9562 section 6.2, method 1): rand_a
//  (12 bits) is a counter within the millisecond. A new millisecond seeds
//  it randomly below 0x800, so at least 2048 ids fit in every millisecond;
//  when it runs out, or the clock steps back, the id borrows the next
//  millisecond. Ids of one process therefore sort in creation order.
static pthread_mutex_t s_id_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t s_id_last_ms;
static uint16_t s_id_counter;

//  Random bytes for ids come from a per-thread pool refilled 4 KiB at a
//  time: one getrandom () call per ~400 ids instead of one per id (it cost
//  about 0.5 us, most of an envelope's price). A fork () copies the pool,
//  so the child would repeat its parent's ids: every fork bumps a
//  generation (pthread_atfork) and a pool of an older generation is
//  thrown away. Bytes are taken once and wiped as they are used.
#define S_POOL_SIZE 4096

static unsigned s_pool_generation = 1;
static pthread_once_t s_pool_once = PTHREAD_ONCE_INIT;
static _Thread_local struct {
    uint8_t bytes[S_POOL_SIZE];
    size_t used;
    unsigned generation;
} s_pool;

static void
s_pool_forked (void)
{
    __atomic_add_fetch (&s_pool_generation, 1, __ATOMIC_RELAXED);
}

static void
s_pool_register (void)
{
    pthread_atfork (NULL, NULL, s_pool_forked);
}

static void
s_pool_take (uint8_t *buf, size_t size)
{
    pthread_once (&s_pool_once, s_pool_register);
    unsigned generation = __atomic_load_n (&s_pool_generation, __ATOMIC_RELAXED);
    if (s_pool.generation != generation || s_pool.used + size > S_POOL_SIZE) {
        s_random_bytes (s_pool.bytes, S_POOL_SIZE);
        s_pool.used = 0;
        s_pool.generation = generation;
    }
    memcpy (buf, s_pool.bytes + s_pool.used, size);
    memset (s_pool.bytes + s_pool.used, 0, size);
    s_pool.used += size;
}

void
zk_id_generate (uint8_t id[ZK_ID_SIZE])
{
    assert (id);
    uint8_t random[10];
    s_pool_take (random, sizeof random);
    uint16_t seed = (uint16_t) (((random[0] << 8) | random[1]) & 0x7ff);
    uint64_t now_ms = (uint64_t) (s_wall_us () / 1000);

    pthread_mutex_lock (&s_id_lock);
    if (now_ms > s_id_last_ms) {
        s_id_last_ms = now_ms;
        s_id_counter = seed;
    }
    else if (s_id_counter < 0xfff)
        s_id_counter++;
    else {
        s_id_last_ms++;
        s_id_counter = seed;
    }
    uint64_t ms = s_id_last_ms;
    uint16_t counter = s_id_counter;
    pthread_mutex_unlock (&s_id_lock);

    for (int i = 0; i < 6; i++)
        id[i] = (uint8_t) (ms >> (40 - 8 * i));
    id[6] = (uint8_t) (0x70 | (counter >> 8));  //  version 7
    id[7] = (uint8_t) counter;
    id[8] = (uint8_t) (0x80 | (random[2] & 0x3f));  //  variant 10
    memcpy (id + 9, random + 3, 7);
}

void
zk_id_format (const uint8_t id[ZK_ID_SIZE], char text[ZK_ID_TEXT_SIZE])
{
    assert (id);
    assert (text);
    static const char hex[] = "0123456789abcdef";
    char *out = text;
    for (int i = 0; i < ZK_ID_SIZE; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *out++ = '-';
        *out++ = hex[id[i] >> 4];
        *out++ = hex[id[i] & 0xf];
    }
    *out = 0;
}

static int
s_hex_value (char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
zk_id_parse (const char *text, uint8_t id[ZK_ID_SIZE])
{
    assert (id);
    if (!text)
        return ZK_EINVAL;
    size_t length = strnlen (text, ZK_ID_TEXT_SIZE);
    bool dashed = length == ZK_ID_TEXT_SIZE - 1;
    if (!dashed && length != 2 * ZK_ID_SIZE)
        return ZK_EINVAL;
    uint8_t parsed[ZK_ID_SIZE];
    const char *cursor = text;
    for (int i = 0; i < ZK_ID_SIZE; i++) {
        if (dashed && (i == 4 || i == 6 || i == 8 || i == 10) && *cursor++ != '-')
            return ZK_EINVAL;
        int high = s_hex_value (cursor[0]);
        int low = high < 0 ? -1 : s_hex_value (cursor[1]);
        if (low < 0)
            return ZK_EINVAL;
        parsed[i] = (uint8_t) (high << 4 | low);
        cursor += 2;
    }
    memcpy (id, parsed, ZK_ID_SIZE);
    return 0;
}

//  --------------------------------------------------------------------------
//  The envelope object

//  An empty envelope (all zero) for the decoder, which fills every field.
static zk_envelope_t *
s_envelope_alloc (void)
{
    return (zk_envelope_t *) calloc (1, sizeof (zk_envelope_t));
}

zk_envelope_t *
zk_envelope_new (void)
{
    zk_envelope_t *self = s_envelope_alloc ();
    if (!self) {
        zk_error ("envelope: out of memory");
        return NULL;
    }
    zk_id_generate (self->id);
    memcpy (self->trace, self->id, ZK_ID_SIZE);
    self->time_us = s_wall_us ();
    self->attempt = 1;
    return self;
}

void
zk_envelope_destroy (zk_envelope_t **self_p)
{
    assert (self_p);
    zk_envelope_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->header_count; i++) {
        free (self->headers[i].key);
        free (self->headers[i].value);
    }
    free (self->headers);
    free (self->content_type);
    free (self);
    *self_p = NULL;
}

//  A NUL-terminated copy of size bytes, or NULL.
static char *
s_strndup (const void *data, size_t size)
{
    char *copy = (char *) malloc (size + 1);
    if (copy) {
        if (size)
            memcpy (copy, data, size);
        copy[size] = 0;
    }
    return copy;
}

//  Append a header (copies both strings). The array grows with what is
//  actually appended, never with a count announced by the input.
static int
s_header_append (zk_envelope_t *self, const void *key, size_t key_size, const void *value,
                 size_t value_size)
{
    if (self->header_count == self->header_capacity) {
        size_t capacity = self->header_capacity ? self->header_capacity * 2 : 4;
        s_header_t *headers =
            (s_header_t *) realloc (self->headers, capacity * sizeof (s_header_t));
        if (!headers)
            return ZK_ENOMEM;
        self->headers = headers;
        self->header_capacity = capacity;
    }
    char *key_copy = s_strndup (key, key_size);
    char *value_copy = s_strndup (value, value_size);
    if (!key_copy || !value_copy) {
        free (key_copy);
        free (value_copy);
        return ZK_ENOMEM;
    }
    self->headers[self->header_count].key = key_copy;
    self->headers[self->header_count].value = value_copy;
    self->header_count++;
    return 0;
}

static s_header_t *
s_header_find (const zk_envelope_t *self, const void *key, size_t key_size)
{
    for (size_t i = 0; i < self->header_count; i++)
        if (strlen (self->headers[i].key) == key_size
            && memcmp (self->headers[i].key, key, key_size) == 0)
            return &self->headers[i];
    return NULL;
}

zk_envelope_t *
zk_envelope_dup (const zk_envelope_t *self)
{
    assert (self);
    zk_envelope_t *copy = s_envelope_alloc ();
    if (!copy)
        goto out_nomem;
    memcpy (copy->id, self->id, ZK_ID_SIZE);
    memcpy (copy->trace, self->trace, ZK_ID_SIZE);
    copy->time_us = self->time_us;
    copy->attempt = self->attempt;
    if (self->content_type) {
        copy->content_type = strdup (self->content_type);
        if (!copy->content_type)
            goto out_nomem;
    }
    for (size_t i = 0; i < self->header_count; i++) {
        const s_header_t *header = &self->headers[i];
        if (s_header_append (copy, header->key, strlen (header->key), header->value,
                             strlen (header->value)))
            goto out_nomem;
    }
    return copy;
out_nomem:
    zk_error ("envelope: out of memory");
    zk_envelope_destroy (&copy);
    return NULL;
}

const uint8_t *
zk_envelope_id (const zk_envelope_t *self)
{
    assert (self);
    return self->id;
}

void
zk_envelope_set_id (zk_envelope_t *self, const uint8_t id[ZK_ID_SIZE])
{
    assert (self);
    assert (id);
    memcpy (self->id, id, ZK_ID_SIZE);
}

int64_t
zk_envelope_time (const zk_envelope_t *self)
{
    assert (self);
    return self->time_us;
}

void
zk_envelope_set_time (zk_envelope_t *self, int64_t time_us)
{
    assert (self);
    self->time_us = time_us;
}

const uint8_t *
zk_envelope_trace (const zk_envelope_t *self)
{
    assert (self);
    return self->trace;
}

void
zk_envelope_set_trace (zk_envelope_t *self, const uint8_t trace[ZK_ID_SIZE])
{
    assert (self);
    assert (trace);
    memcpy (self->trace, trace, ZK_ID_SIZE);
}

uint32_t
zk_envelope_attempt (const zk_envelope_t *self)
{
    assert (self);
    return self->attempt;
}

void
zk_envelope_set_attempt (zk_envelope_t *self, uint32_t attempt)
{
    assert (self);
    self->attempt = attempt;
}

const char *
zk_envelope_content_type (const zk_envelope_t *self)
{
    assert (self);
    return self->content_type;
}

int
zk_envelope_set_content_type (zk_envelope_t *self, const char *content_type)
{
    assert (self);
    char *copy = NULL;
    if (content_type) {
        if (strnlen (content_type, ZK_ENVELOPE_MAX_STRING + 1) > ZK_ENVELOPE_MAX_STRING)
            return ZK_ETOOBIG;
        copy = strdup (content_type);
        if (!copy)
            return ZK_ENOMEM;
    }
    free (self->content_type);
    self->content_type = copy;
    return 0;
}

int
zk_envelope_set_header (zk_envelope_t *self, const char *key, const char *value)
{
    assert (self);
    if (!key || !value)
        return ZK_EINVAL;
    size_t key_size = strnlen (key, ZK_ENVELOPE_MAX_STRING + 1);
    size_t value_size = strnlen (value, ZK_ENVELOPE_MAX_STRING + 1);
    if (key_size > ZK_ENVELOPE_MAX_STRING || value_size > ZK_ENVELOPE_MAX_STRING)
        return ZK_ETOOBIG;
    s_header_t *header = s_header_find (self, key, key_size);
    if (header) {
        char *copy = s_strndup (value, value_size);
        if (!copy)
            return ZK_ENOMEM;
        free (header->value);
        header->value = copy;
        return 0;
    }
    if (self->header_count == ZK_ENVELOPE_MAX_HEADERS)
        return ZK_ETOOBIG;
    return s_header_append (self, key, key_size, value, value_size);
}

const char *
zk_envelope_header (const zk_envelope_t *self, const char *key)
{
    assert (self);
    if (!key)
        return NULL;
    const s_header_t *header = s_header_find (self, key, strlen (key));
    return header ? header->value : NULL;
}

size_t
zk_envelope_header_count (const zk_envelope_t *self)
{
    assert (self);
    return self->header_count;
}

const char *
zk_envelope_header_key (const zk_envelope_t *self, size_t index)
{
    assert (self);
    return index < self->header_count ? self->headers[index].key : NULL;
}

const char *
zk_envelope_header_value (const zk_envelope_t *self, size_t index)
{
    assert (self);
    return index < self->header_count ? self->headers[index].value : NULL;
}

//  --------------------------------------------------------------------------
//  The encoder's buffer: on the stack for the usual envelope (no malloc per
//  message: msgpack's sbuffer took 8 KiB from the heap each time, which was
//  most of an envelope's cost), on the heap only for big header sets, and
//  never beyond ZK_ENVELOPE_MAX_SIZE.
typedef struct {
    uint8_t stack[512];
    uint8_t *data;
    size_t size, capacity;
    bool too_big;
} s_buffer_t;

static int
s_buffer_write (void *data, const char *bytes, size_t length)
{
    s_buffer_t *buffer = (s_buffer_t *) data;
    if (length > ZK_ENVELOPE_MAX_SIZE - buffer->size) {
        buffer->too_big = true;
        return -1;
    }
    if (buffer->size + length > buffer->capacity) {
        size_t capacity = buffer->capacity * 4;
        if (capacity < buffer->size + length)
            capacity = buffer->size + length;
        if (capacity > ZK_ENVELOPE_MAX_SIZE)
            capacity = ZK_ENVELOPE_MAX_SIZE;
        uint8_t *grown = malloc (capacity);
        if (!grown)
            return -1;
        memcpy (grown, buffer->data, buffer->size);
        if (buffer->data != buffer->stack)
            free (buffer->data);
        buffer->data = grown;
        buffer->capacity = capacity;
    }
    memcpy (buffer->data + buffer->size, bytes, length);
    buffer->size += length;
    return 0;
}

//  Encoder: msgpack-c's packer into an sbuffer, one fixmap

static int
s_pack_string (msgpack_packer *packer, const char *text, size_t size)
{
    return msgpack_pack_str (packer, size) | msgpack_pack_str_body (packer, text, size);
}

static int
s_pack_cstring (msgpack_packer *packer, const char *text)
{
    return s_pack_string (packer, text, strlen (text));
}

static int
s_pack_id (msgpack_packer *packer, const char *key, const uint8_t id[ZK_ID_SIZE])
{
    return s_pack_cstring (packer, key) | msgpack_pack_bin (packer, ZK_ID_SIZE)
           | msgpack_pack_bin_body (packer, id, ZK_ID_SIZE);
}

int
zk_envelope_encode (const zk_envelope_t *self, zframe_t **frame_p)
{
    assert (self);
    assert (frame_p);
    *frame_p = NULL;
    s_buffer_t buffer = {.data = buffer.stack, .capacity = sizeof buffer.stack};
    msgpack_packer packer;
    msgpack_packer_init (&packer, &buffer, s_buffer_write);

    //  Key order: zk id ts tr at [ct] [h]; "zk" first is the magic.
    size_t pairs = 5 + (self->content_type ? 1 : 0) + (self->header_count ? 1 : 0);
    int failed = msgpack_pack_map (&packer, pairs);
    failed |= s_pack_cstring (&packer, "zk") | msgpack_pack_uint8 (&packer, ZK_ENVELOPE_VERSION);
    failed |= s_pack_id (&packer, "id", self->id);
    failed |= s_pack_cstring (&packer, "ts") | msgpack_pack_int64 (&packer, self->time_us);
    failed |= s_pack_id (&packer, "tr", self->trace);
    failed |= s_pack_cstring (&packer, "at") | msgpack_pack_uint32 (&packer, self->attempt);
    if (self->content_type)
        failed |= s_pack_cstring (&packer, "ct") | s_pack_cstring (&packer, self->content_type);
    if (self->header_count) {
        failed |= s_pack_cstring (&packer, "h") | msgpack_pack_map (&packer, self->header_count);
        for (size_t i = 0; i < self->header_count; i++)
            failed |= s_pack_cstring (&packer, self->headers[i].key)
                      | s_pack_cstring (&packer, self->headers[i].value);
    }
    int rc = 0;
    if (buffer.too_big || buffer.size > ZK_ENVELOPE_MAX_SIZE)
        rc = ZK_ETOOBIG;
    else if (failed)
        rc = ZK_ENOMEM;
    else {
        *frame_p = zframe_new (buffer.data, buffer.size);
        if (!*frame_p)
            rc = ZK_ENOMEM;
    }
    if (buffer.data != buffer.stack)
        free (buffer.data);
    return rc;
}

//  --------------------------------------------------------------------------
//  Decoder: a bounded cursor over the received bytes

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t pos;
} s_reader_t;

static size_t
s_remaining (const s_reader_t *reader)
{
    return reader->size - reader->pos;
}

//  Take size bytes; *bytes_p points into the input. ETRUNC if fewer remain.
static int
s_take (s_reader_t *reader, size_t size, const uint8_t **bytes_p)
{
    if (size > s_remaining (reader))
        return ZK_ETRUNC;
    *bytes_p = reader->data + reader->pos;
    reader->pos += size;
    return 0;
}

static int
s_take_byte (s_reader_t *reader, uint8_t *byte_p)
{
    const uint8_t *bytes;
    int rc = s_take (reader, 1, &bytes);
    if (rc == 0)
        *byte_p = bytes[0];
    return rc;
}

//  A big-endian unsigned number of width bytes (1, 2, 4 or 8).
static int
s_take_uint (s_reader_t *reader, size_t width, uint64_t *value_p)
{
    const uint8_t *bytes;
    int rc = s_take (reader, width, &bytes);
    if (rc)
        return rc;
    uint64_t value = 0;
    for (size_t i = 0; i < width; i++)
        value = value << 8 | bytes[i];
    *value_p = value;
    return 0;
}

//  The width of the length/count field that follows a type byte, for the
//  types that have one (str8..32, bin8..32, array16/32, map16/32).
static size_t
s_length_width (uint8_t type)
{
    switch (type) {
        case 0xd9:
        case 0xc4: return 1;
        case 0xda:
        case 0xc5:
        case 0xdc:
        case 0xde: return 2;
        case 0xdb:
        case 0xc6:
        case 0xdd:
        case 0xdf: return 4;
        default: return 0;
    }
}

//  A str or bin (kind "str" / "bin") whose size bytes all remain. Points
//  into the input; nothing is copied. A different type is ZK_EPROTO.
static int
s_take_blob (s_reader_t *reader, bool want_bin, const uint8_t **bytes_p, size_t *size_p)
{
    uint8_t type;
    int rc = s_take_byte (reader, &type);
    if (rc)
        return rc;
    uint64_t size;
    if (!want_bin && type >= 0xa0 && type <= 0xbf)
        size = type & 0x1f;
    else if ((!want_bin && type >= 0xd9 && type <= 0xdb)
             || (want_bin && type >= 0xc4 && type <= 0xc6)) {
        rc = s_take_uint (reader, s_length_width (type), &size);
        if (rc)
            return rc;
    }
    else
        return ZK_EPROTO;
    if (size > s_remaining (reader))
        return ZK_ETRUNC;
    *size_p = (size_t) size;
    return s_take (reader, *size_p, bytes_p);
}

//  A str of at most ZK_ENVELOPE_MAX_STRING bytes without NUL (values end
//  up as C strings).
static int
s_take_string (s_reader_t *reader, const uint8_t **bytes_p, size_t *size_p)
{
    int rc = s_take_blob (reader, false, bytes_p, size_p);
    if (rc)
        return rc;
    if (*size_p > ZK_ENVELOPE_MAX_STRING)
        return ZK_ETOOBIG;
    if (memchr (*bytes_p, 0, *size_p))
        return ZK_EPROTO;
    return 0;
}

static int
s_take_id (s_reader_t *reader, uint8_t id[ZK_ID_SIZE])
{
    const uint8_t *bytes;
    size_t size;
    int rc = s_take_blob (reader, true, &bytes, &size);
    if (rc)
        return rc;
    if (size != ZK_ID_SIZE)
        return ZK_EPROTO;
    memcpy (id, bytes, ZK_ID_SIZE);
    return 0;
}

//  Any msgpack integer. *negative_p tells which of the two values holds it.
static int
s_take_int (s_reader_t *reader, bool *negative_p, int64_t *signed_p, uint64_t *unsigned_p)
{
    uint8_t type;
    int rc = s_take_byte (reader, &type);
    if (rc)
        return rc;
    uint64_t raw = 0;
    *negative_p = false;
    if (type <= 0x7f)
        raw = type;
    else if (type >= 0xe0) {
        *negative_p = true;
        *signed_p = (int8_t) type;
        return 0;
    }
    else if (type >= 0xcc && type <= 0xcf)
        rc = s_take_uint (reader, (size_t) 1 << (type - 0xcc), &raw);
    else if (type >= 0xd0 && type <= 0xd3) {
        size_t width = (size_t) 1 << (type - 0xd0);
        rc = s_take_uint (reader, width, &raw);
        if (rc)
            return rc;
        //  Sign-extend from width bytes.
        int64_t value = width == 8 ? (int64_t) raw
                                   : (int64_t) (raw ^ (1ULL << (8 * width - 1)))
                                         - (int64_t) (1ULL << (8 * width - 1));
        if (value < 0) {
            *negative_p = true;
            *signed_p = value;
            return 0;
        }
        raw = (uint64_t) value;
    }
    else
        return ZK_EPROTO;
    *unsigned_p = raw;
    return rc;
}

//  A map header (fixmap, map16, map32) whose count fits in what remains:
//  every pair needs at least two bytes.
static int
s_take_map_header (s_reader_t *reader, uint32_t *count_p)
{
    uint8_t type;
    int rc = s_take_byte (reader, &type);
    if (rc)
        return rc;
    uint64_t count;
    if (type >= 0x80 && type <= 0x8f)
        count = type & 0x0f;
    else if (type == 0xde || type == 0xdf) {
        rc = s_take_uint (reader, s_length_width (type), &count);
        if (rc)
            return rc;
    }
    else
        return ZK_EPROTO;
    if (count * 2 > s_remaining (reader))
        return ZK_ETRUNC;
    *count_p = (uint32_t) count;
    return 0;
}

//  Skip one value of any type. depth is the nesting level of this value
//  (the value of a top-level key is at depth 1); an array or map deeper
//  than ZK_ENVELOPE_MAX_DEPTH is refused before its count is read.
//  Recursion is bounded by that depth; work by the bytes, since every
//  element consumes at least one.
static int
s_skip (s_reader_t *reader, int depth)
{
    uint8_t type;
    int rc = s_take_byte (reader, &type);
    if (rc)
        return rc;
    uint64_t skip = 0;      //  bytes that follow
    uint64_t elements = 0;  //  values that follow
    if (type <= 0x7f || type >= 0xe0 || type == 0xc0 || type == 0xc2 || type == 0xc3)
        return 0;  //  fixint, nil, false, true
    if (type >= 0xa0 && type <= 0xbf)
        skip = type & 0x1f;
    else if ((type >= 0x80 && type <= 0x9f) || type == 0xdc || type == 0xdd || type == 0xde
             || type == 0xdf) {
        if (depth > ZK_ENVELOPE_MAX_DEPTH)
            return ZK_EDEPTH;
        bool is_map = (type >= 0x80 && type <= 0x8f) || type == 0xde || type == 0xdf;
        if (type <= 0x9f)
            elements = type & 0x0f;
        else if ((rc = s_take_uint (reader, s_length_width (type), &elements)))
            return rc;
        if (is_map)
            elements *= 2;
        if (elements > s_remaining (reader))
            return ZK_ETRUNC;
    }
    else if (type >= 0xcc && type <= 0xd3)
        skip = (uint64_t) 1 << ((type - 0xcc) & 3);  //  uint8..64, int8..64
    else if (type == 0xca || type == 0xcb)
        skip = type == 0xca ? 4 : 8;  //  float32, float64
    else if (type >= 0xd4 && type <= 0xd8)
        skip = 1 + ((uint64_t) 1 << (type - 0xd4));  //  fixext: type byte + 1..16
    else if (type == 0xd9 || type == 0xda || type == 0xdb || type == 0xc4 || type == 0xc5
             || type == 0xc6) {
        if ((rc = s_take_uint (reader, s_length_width (type), &skip)))
            return rc;
    }
    else if (type >= 0xc7 && type <= 0xc9) {  //  ext8..32: length, type byte, data
        if ((rc = s_take_uint (reader, (size_t) 1 << (type - 0xc7), &skip)))
            return rc;
        skip += 1;
    }
    else
        return ZK_EPROTO;  //  0xc1: never used
    if (skip > s_remaining (reader))
        return ZK_ETRUNC;
    reader->pos += (size_t) skip;
    for (uint64_t i = 0; i < elements; i++)
        if ((rc = s_skip (reader, depth + 1)))
            return rc;
    return 0;
}

static int
s_decode_headers (s_reader_t *reader, zk_envelope_t *self)
{
    uint32_t count;
    int rc = s_take_map_header (reader, &count);
    if (rc)
        return rc;
    if (count > ZK_ENVELOPE_MAX_HEADERS)
        return ZK_ETOOBIG;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *key, *value;
        size_t key_size, value_size;
        if ((rc = s_take_string (reader, &key, &key_size))
            || (rc = s_take_string (reader, &value, &value_size)))
            return rc;
        if (s_header_find (self, key, key_size))
            return ZK_EPROTO;
        if ((rc = s_header_append (self, key, key_size, value, value_size)))
            return rc;
    }
    return 0;
}

enum {
    S_KEY_ID = 1 << 0,
    S_KEY_TS = 1 << 1,
    S_KEY_TR = 1 << 2,
    S_KEY_AT = 1 << 3,
    S_KEY_CT = 1 << 4,
    S_KEY_H = 1 << 5,
    S_KEY_ZK = 1 << 6,
};

//  Which known key these bytes are, 0 for an unknown one.
static int
s_key_bit (const uint8_t *key, size_t size)
{
    static const struct {
        const char *name;
        int bit;
    } keys[] = {{"id", S_KEY_ID}, {"ts", S_KEY_TS}, {"tr", S_KEY_TR}, {"at", S_KEY_AT},
                {"ct", S_KEY_CT}, {"h", S_KEY_H},   {"zk", S_KEY_ZK}};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strlen (keys[i].name) == size && memcmp (keys[i].name, key, size) == 0)
            return keys[i].bit;
    return 0;
}

//  The value of known key bit, into self.
static int
s_decode_value (s_reader_t *reader, int bit, zk_envelope_t *self)
{
    bool negative;
    int64_t signed_value;
    uint64_t unsigned_value;
    const uint8_t *bytes;
    size_t size;
    int rc;
    switch (bit) {
        case S_KEY_ID: return s_take_id (reader, self->id);
        case S_KEY_TR: return s_take_id (reader, self->trace);
        case S_KEY_TS:
            if ((rc = s_take_int (reader, &negative, &signed_value, &unsigned_value)))
                return rc;
            if (!negative && unsigned_value > INT64_MAX)
                return ZK_EPROTO;
            self->time_us = negative ? signed_value : (int64_t) unsigned_value;
            return 0;
        case S_KEY_AT:
            if ((rc = s_take_int (reader, &negative, &signed_value, &unsigned_value)))
                return rc;
            if (negative || unsigned_value > UINT32_MAX)
                return ZK_EPROTO;
            self->attempt = (uint32_t) unsigned_value;
            return 0;
        case S_KEY_CT:
            if ((rc = s_take_string (reader, &bytes, &size)))
                return rc;
            self->content_type = s_strndup (bytes, size);
            return self->content_type ? 0 : ZK_ENOMEM;
        case S_KEY_H: return s_decode_headers (reader, self);
        default: return ZK_EPROTO;  //  "zk" again: a known key twice
    }
}

//  The map header and the "zk" key with its version: the first five bytes
//  of a fixmap envelope, the first seven of a map16 one.
static int
s_decode_magic (s_reader_t *reader, uint32_t *pairs_p)
{
    if (s_remaining (reader) == 0)
        return ZK_ETRUNC;
    uint8_t first = reader->data[0];
    if (!((first >= 0x80 && first <= 0x8f) || first == 0xde))
        return ZK_EPROTO;
    int rc = s_take_map_header (reader, pairs_p);
    if (rc)
        return rc;
    if (*pairs_p == 0)
        return ZK_EPROTO;
    const uint8_t *key;
    uint8_t version;
    if ((rc = s_take (reader, 3, &key)))
        return rc;
    if (memcmp (key, "\xa2zk", 3) != 0)
        return ZK_EPROTO;
    if ((rc = s_take_byte (reader, &version)))
        return rc;
    if (version > 0x7f)
        return ZK_EPROTO;  //  not a positive fixint
    return version == ZK_ENVELOPE_VERSION ? 0 : ZK_EVERSION;
}

static int
s_decode (s_reader_t *reader, zk_envelope_t *self)
{
    uint32_t pairs;
    int rc = s_decode_magic (reader, &pairs);
    if (rc)
        return rc;
    int seen = S_KEY_ZK;
    for (uint32_t i = 1; i < pairs; i++) {
        const uint8_t *key;
        size_t key_size;
        if ((rc = s_take_blob (reader, false, &key, &key_size)))
            return rc;
        int bit = s_key_bit (key, key_size);
        if (bit == 0)
            rc = s_skip (reader, 1);
        else if (seen & bit)
            rc = ZK_EPROTO;
        else {
            seen |= bit;
            rc = s_decode_value (reader, bit, self);
        }
        if (rc)
            return rc;
    }
    if (s_remaining (reader))
        return ZK_EPROTO;  //  bytes after the map
    if (!(seen & S_KEY_ID))
        return ZK_EPROTO;
    //  Defaults: trace = id, attempt 1, time = the id's millisecond stamp.
    if (!(seen & S_KEY_TR))
        memcpy (self->trace, self->id, ZK_ID_SIZE);
    if (!(seen & S_KEY_AT))
        self->attempt = 1;
    if (!(seen & S_KEY_TS)) {
        int64_t ms = 0;
        for (int i = 0; i < 6; i++)
            ms = ms << 8 | self->id[i];
        self->time_us = ms * 1000;
    }
    return 0;
}

int
zk_envelope_decode (const void *data, size_t size, zk_envelope_t **self_p)
{
    assert (self_p);
    *self_p = NULL;
    if (!data && size)
        return ZK_EINVAL;
    if (size > ZK_ENVELOPE_MAX_SIZE)
        return ZK_ETOOBIG;
    s_reader_t reader = {(const uint8_t *) data, size, 0};
    zk_envelope_t *self = s_envelope_alloc ();
    if (!self)
        return ZK_ENOMEM;
    int rc = s_decode (&reader, self);
    if (rc)
        zk_envelope_destroy (&self);
    *self_p = self;
    return rc;
}

bool
zk_envelope_is_envelope (const void *data, size_t size)
{
    const uint8_t *bytes = (const uint8_t *) data;
    size_t offset;
    if (!bytes || size < 5)
        return false;
    if (bytes[0] >= 0x81 && bytes[0] <= 0x8f)
        offset = 1;
    else if (bytes[0] == 0xde)
        offset = 3;
    else
        return false;
    return size >= offset + 4 && memcmp (bytes + offset, "\xa2zk", 3) == 0
           && bytes[offset + 3] <= 0x7f;
}

//  --------------------------------------------------------------------------
//  On a zmsg

int
zk_envelope_attach (const zk_envelope_t *self, zmsg_t *msg)
{
    assert (self);
    assert (msg);
    zframe_t *frame;
    int rc = zk_envelope_encode (self, &frame);
    if (rc)
        return rc;
    if (zmsg_prepend (msg, &frame)) {
        zframe_destroy (&frame);
        return ZK_ENOMEM;
    }
    return 0;
}

int
zk_envelope_detach (zmsg_t *msg, zk_envelope_t **self_p)
{
    assert (msg);
    assert (self_p);
    *self_p = NULL;
    zframe_t *first = zmsg_first (msg);
    if (!first || !zk_envelope_is_envelope (zframe_data (first), zframe_size (first)))
        return 0;
    int rc = zk_envelope_decode (zframe_data (first), zframe_size (first), self_p);
    if (rc)
        return rc;
    zframe_t *frame = zmsg_pop (msg);
    zframe_destroy (&frame);
    return 0;
}

//  --------------------------------------------------------------------------
//  UTF-8 and JSON

//  Length of the valid UTF-8 sequence at bytes (RFC 3629: no overlongs, no
//  surrogates, nothing above U+10FFFF), or 0 if it is not one.
static size_t
s_utf8_sequence (const uint8_t *bytes, size_t size)
{
    uint8_t lead = bytes[0];
    if (lead <= 0x7f)
        return 1;
    size_t length;
    uint8_t low = 0x80, high = 0xbf;  //  range of the second byte
    if (lead >= 0xc2 && lead <= 0xdf)
        length = 2;
    else if (lead >= 0xe0 && lead <= 0xef) {
        length = 3;
        if (lead == 0xe0)
            low = 0xa0;  //  overlong
        else if (lead == 0xed)
            high = 0x9f;  //  surrogates
    }
    else if (lead >= 0xf0 && lead <= 0xf4) {
        length = 4;
        if (lead == 0xf0)
            low = 0x90;  //  overlong
        else if (lead == 0xf4)
            high = 0x8f;  //  above U+10FFFF
    }
    else
        return 0;
    if (size < length || bytes[1] < low || bytes[1] > high)
        return 0;
    for (size_t i = 2; i < length; i++)
        if (bytes[i] < 0x80 || bytes[i] > 0xbf)
            return 0;
    return length;
}

bool
zk_utf8_valid (const void *data, size_t size)
{
    const uint8_t *bytes = (const uint8_t *) data;
    size_t pos = 0;
    while (pos < size) {
        size_t length = s_utf8_sequence (bytes + pos, size - pos);
        if (!length)
            return false;
        pos += length;
    }
    return true;
}

int
zk_json_print_string (const void *data, size_t size, FILE *out)
{
    assert (out);
    const uint8_t *bytes = (const uint8_t *) data;
    bool ok = fputc ('"', out) != EOF;
    size_t pos = 0;
    while (ok && pos < size) {
        uint8_t byte = bytes[pos];
        size_t length = s_utf8_sequence (bytes + pos, size - pos);
        if (byte == '"' || byte == '\\')
            ok = fputc ('\\', out) != EOF && fputc (byte, out) != EOF;
        else if (length == 0 || byte < 0x20 || byte == 0x7f)
            ok = fprintf (out, "\\u%04x", byte) == 6;  //  control or invalid byte
        else {
            ok = fwrite (bytes + pos, 1, length, out) == length;
            pos += length - 1;
        }
        pos++;
    }
    ok = ok && fputc ('"', out) != EOF;
    return ok ? 0 : ZK_EIO;
}

static int
s_print_cstring (const char *text, FILE *out)
{
    return zk_json_print_string (text, strlen (text), out);
}

int
zk_envelope_print_json (const zk_envelope_t *self, FILE *out)
{
    assert (self);
    assert (out);
    char id[ZK_ID_TEXT_SIZE], trace[ZK_ID_TEXT_SIZE];
    zk_id_format (self->id, id);
    zk_id_format (self->trace, trace);
    bool ok = fprintf (out,
                       "{\"id\":\"%s\",\"time\":%" PRId64 ",\"trace\":\"%s\",\"attempt\":%" PRIu32
                       ",\"content_type\":",
                       id, self->time_us, trace, self->attempt)
              > 0;
    if (ok && self->content_type)
        ok = s_print_cstring (self->content_type, out) == 0;
    else if (ok)
        ok = fputs ("null", out) != EOF;
    ok = ok && fputs (",\"headers\":{", out) != EOF;
    for (size_t i = 0; ok && i < self->header_count; i++)
        ok = (i == 0 || fputc (',', out) != EOF) && s_print_cstring (self->headers[i].key, out) == 0
             && fputc (':', out) != EOF && s_print_cstring (self->headers[i].value, out) == 0;
    ok = ok && fputs ("}}", out) != EOF;
    return ok ? 0 : ZK_EIO;
}
