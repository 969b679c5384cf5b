/*  zk_cat — the shell's door to every channel (see include/zk_cat.h).

    One socket in a private libzmq context, one thread, no actor: zk_cat_run
    reads, sends, receives and prints in the caller's thread, polling in
    short slices so that SIGINT/SIGTERM (zsys_interrupted) is seen at once.
    The private context is what lets the end of a run be timed honestly
    (s_finish) without touching czmq's global context, so a test or a
    service can run a zk_cat next to its own sockets.                    */

#include "zk_classes.h"

#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <unistd.h>

#define S_SLICE_MS            200    //  longest single poll: an interrupt is seen this fast
#define S_INTERRUPT_LINGER_MS 1000   //  hand-over after SIGINT/SIGTERM, at most
#define S_MIN_LINGER_MS       100    //  a sender always gets this much to hand over
#define S_REP_LINGER_MS       1000   //  rep: for its last answer
#define S_MIN_MAXMSGSIZE      65536  //  ZMQ_MAXMSGSIZE floor (handshakes must fit)
#define S_QUEUE_WINDOW        100    //  queue: messages taken at once, at most
#define S_QUEUE_LIST_MAX      1000   //  queue --list: lines by default (the server's cap)

//  What zkit-cat does with a queue spec.
typedef enum {
    S_QUEUE_NONE,  //  not a queue
    S_QUEUE_PUT,
    S_QUEUE_TAKE,
    S_QUEUE_LIST,
    S_QUEUE_REQUEUE,
    S_QUEUE_SUBMIT,  //  --submit: all of the input is one job
    S_QUEUE_STATUS,  //  --status ID
    S_QUEUE_WAIT,    //  --wait ID
} s_queue_mode_t;

//  What a config settles into (zk_cat_validate and zk_cat_new share it).
typedef struct {
    int type;       //  the spec's socket type
    int delimiter;  //  input and output byte; -1 in raw mode
    char frame_sep[ZK_CAT_MAX_SEPARATOR];
    size_t frame_sep_size;  //  0: no separator given
    zk_cat_format_t format;
    size_t max_size;
    bool envelope;
    int64_t send_timeout_ms;  //  push, pub, pair sending; queue put, list, requeue; -1 = no limit
    int64_t timeout_ms;       //  everything else; -1 = no limit
    s_queue_mode_t queue_mode;
    char origin[ZK_SPEC_QUEUE_NAME_MAX + 1];  //  NAME of a NAME.dead spec, else ""
    uint8_t id[ZK_ID_SIZE];                   //  requeue --id; the job of --status, --wait
    bool has_id;
} s_settings_t;

struct _zk_cat_t {
    zk_cat_config_t config;  //  strings borrowed from the caller
    s_settings_t settings;
    zk_cat_output_t output;
    zk_spec_t *spec;
    void *context;        //  private libzmq context
    void *handle;         //  the libzmq socket
    zk_client_t *client;  //  a queue spec's client instead
    zk_caller_t *caller;  //  req: the reliable client instead
    FILE *in;
    zk_cat_reader_t *reader;  //  over in, or NULL
    int data_next;            //  next item of config.data
    zk_cat_stats_t stats;
    bool ran;
};

//  --------------------------------------------------------------------------
//  Settling and checking a config

static bool
s_type_sends (int type)
{
    return type == ZMQ_PUSH || type == ZMQ_PUB || type == ZMQ_PAIR || type == ZMQ_REQ
           || type == ZMQ_DEALER;
}

static bool
s_type_prints (int type)
{
    return type != ZMQ_PUSH && type != ZMQ_PUB;
}

int
zk_cat_unescape (const char *text, char *out, size_t out_size, size_t *size_p)
{
    assert (text && out && size_p);
    size_t size = 0;
    while (*text) {
        char byte = *text++;
        if (byte == '\\') {
            char escape = *text;
            if (!escape)
                return ZK_EINVAL;
            text++;
            if (escape == 'n')
                byte = '\n';
            else if (escape == 't')
                byte = '\t';
            else if (escape == 'r')
                byte = '\r';
            else if (escape == '0')
                byte = 0;
            else if (escape == '\\')
                byte = '\\';
            else if (escape == 'x' && isxdigit ((unsigned char) text[0])
                     && isxdigit ((unsigned char) text[1])) {
                char digits[3] = {text[0], text[1], 0};
                byte = (char) strtol (digits, NULL, 16);
                text += 2;
            }
            else
                return ZK_EINVAL;
        }
        if (size == out_size)
            return ZK_ETOOBIG;
        out[size++] = byte;
    }
    *size_p = size;
    return 0;
}

int
zk_cat_format_from_name (const char *name)
{
    static const char *names[] = {"raw", "hex", "json", "msgpack"};
    for (int format = 0; name && format < 4; format++)
        if (streq (name, names[format]))
            return format;
    return -1;
}

//  Why zkit-cat refuses a type, or NULL if it takes it.
static const char *
s_refusal (int type)
{
    if (type == ZMQ_ROUTER)
        return "cannot use a router socket: every message it sends needs a peer's routing "
               "id; talk to a router with req or dealer, or serve behind zkit-proxy "
               "'router@...' 'dealer@...' with zkit-cat 'rep>...'";
    if (type == ZMQ_XPUB)
        return "cannot use an xpub socket: it is for devices (zkit-forwarder); use pub "
               "(--wait-subscribers N waits for subscribers)";
    if (type == ZMQ_XSUB)
        return "cannot use an xsub socket: it is for devices (zkit-forwarder); use sub "
               "(-s TOPIC)";
    return NULL;
}

static int64_t
s_timeout_ms (double seconds, int64_t fallback)
{
    if (seconds == 0)
        return fallback;
    if (seconds < 0)
        return -1;
    double ms = ceil (seconds * 1000);
    return ms > 1e12 ? (int64_t) 1e12 : (int64_t) ms;
}

static bool
s_sends (const s_settings_t *settings)
{
    if (settings->type == ZK_SPEC_QUEUE)
        return settings->queue_mode == S_QUEUE_PUT || settings->queue_mode == S_QUEUE_SUBMIT;
    return s_type_sends (settings->type);
}

static bool
s_prints (const s_settings_t *settings)
{
    if (settings->type == ZK_SPEC_QUEUE)
        return settings->queue_mode == S_QUEUE_TAKE || settings->queue_mode == S_QUEUE_STATUS;
    return s_type_prints (settings->type);
}

/*  --submit, --status ID, --wait ID (async jobs) and what they allow:
    0 with the queue mode set (left alone when none is given), or
    ZK_EINVAL with the reason.                                           */
static int
s_settle_job (const zk_cat_config_t *config, s_settings_t *settings, char *reason, size_t size)
{
    const char *flag = config->submit   ? "--submit"
                       : config->status ? "--status"
                       : config->wait   ? "--wait"
                                        : NULL;
    if (!flag)
        return 0;
    if (settings->type != ZK_SPEC_QUEUE)
        return zk_engine_reason (reason, size,
                                 "%s: only for a queue spec (queue>tcp://HOST:PORT/NAME)", flag);
    if (!!config->submit + !!config->status + !!config->wait > 1)
        return zk_engine_reason (reason, size, "--submit, --status and --wait cannot be combined");
    if (config->list || config->requeue || config->id || config->count)
        return zk_engine_reason (reason, size, "%s: -n, --list, --requeue and --id do not apply",
                                 flag);
    if (config->submit) {
        if (config->delimiter || config->null_delimiter)
            return zk_engine_reason (reason, size,
                                     "--submit puts all of stdin as one job: -d/-0 do not apply");
        if (config->format)
            return zk_engine_reason (reason, size,
                                     "--submit prints the job id: --format does not apply");
        if (config->data.count > 1)
            return zk_engine_reason (reason, size,
                                     "--submit takes at most one --data (the job's body)");
        settings->queue_mode = S_QUEUE_SUBMIT;
        return 0;
    }
    if (config->data.count || config->delimiter || config->null_delimiter || config->raw
        || config->envelope || config->headers.count || config->content_type
        || (config->status && config->frame_sep))
        return zk_engine_reason (reason, size, "%s prints a job: it takes no message options",
                                 flag);
    if (config->status && config->format && !streq (config->format, "raw")
        && !streq (config->format, "json"))
        return zk_engine_reason (reason, size,
                                 "--status prints text (--format raw, the default) or json");
    if (config->wait && config->format)
        return zk_engine_reason (reason, size,
                                 "--wait prints the job's result as it is: --format does not "
                                 "apply");
    const char *id = config->status ? config->status : config->wait;
    if (zk_id_parse (id, settings->id))
        return zk_engine_reason (reason, size,
                                 "%s: '%s' is not a job id (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, "
                                 "as --submit prints)",
                                 flag, id);
    settings->has_id = true;
    settings->queue_mode = config->status ? S_QUEUE_STATUS : S_QUEUE_WAIT;
    return 0;
}

/*  A queue spec: what to do with it (put; -n: take; --list; --requeue;
    the jobs' flags) and what only that allows. Other specs: refuse the
    queue flags.                                                         */
static int
s_settle_queue (const zk_cat_config_t *config, s_settings_t *settings, char *reason, size_t size)
{
    if (s_settle_job (config, settings, reason, size))
        return ZK_EINVAL;
    if (settings->queue_mode != S_QUEUE_NONE)
        return 0;
    const char *flag = config->list ? "--list" : config->requeue ? "--requeue" : "--id";
    if (settings->type != ZK_SPEC_QUEUE) {
        if (config->list || config->requeue || config->id)
            return zk_engine_reason (
                reason, size, "%s: only for a queue spec (queue>tcp://HOST:PORT/NAME)", flag);
        return 0;
    }
    if (config->list && config->requeue)
        return zk_engine_reason (reason, size, "--list and --requeue cannot be combined");
    if (config->id && !config->requeue)
        return zk_engine_reason (reason, size, "--id: only with --requeue");
    if (config->list)
        settings->queue_mode = S_QUEUE_LIST;
    else if (config->requeue)
        settings->queue_mode = S_QUEUE_REQUEUE;
    else if (config->count)
        settings->queue_mode = S_QUEUE_TAKE;
    else
        settings->queue_mode = S_QUEUE_PUT;
    bool admin = config->list || config->requeue;
    if (admin
        && (config->data.count || config->raw || config->frame_sep || config->format
            || config->envelope || config->headers.count || config->content_type))
        return zk_engine_reason (
            reason, size, "%s prints a listing: it takes no message or format options", flag);
    if (config->requeue && config->count)
        return zk_engine_reason (reason, size,
                                 "--requeue moves every dead letter (or --id's), not -n of them");
    if (settings->queue_mode == S_QUEUE_PUT && config->format)
        return zk_engine_reason (reason, size,
                                 "--format: putting into a queue prints nothing (-n N takes)");
    if (settings->queue_mode == S_QUEUE_TAKE
        && (config->data.count || config->envelope || config->headers.count
            || config->content_type))
        return zk_engine_reason (reason, size,
                                 "-n N takes messages from the queue: --data/-e/-H/--content-type "
                                 "are for putting (without -n)");
    zk_spec_t *spec = zk_spec_new (config->spec);  //  valid: zk_engine_spec_type said so
    const char *name = spec ? zk_spec_queue_name (spec) : "";
    size_t length = strlen (name);
    if (length > 5 && streq (name + length - 5, ".dead"))
        snprintf (settings->origin, sizeof settings->origin, "%.*s", (int) (length - 5), name);
    zk_spec_destroy (&spec);
    if (config->requeue && !settings->origin[0])
        return zk_engine_reason (reason, size,
                                 "--requeue takes a dead-letter queue, NAME.dead (it moves "
                                 "the messages back into NAME)");
    if (config->id) {
        if (zk_id_parse (config->id, settings->id))
            return zk_engine_reason (reason, size,
                                     "--id: '%s' is not a message id "
                                     "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, as --list prints)",
                                     config->id);
        settings->has_id = true;
    }
    return 0;
}

/*  req runs the reliable client (zk_caller): it only connects, and
    --retries (its only user) needs --timeout, the time each attempt waits
    (without one, a request gets one attempt without a limit).         */
static int
s_settle_req (const zk_cat_config_t *config, int type, char *reason, size_t size)
{
    if (config->retries && type != ZMQ_REQ)
        return zk_engine_reason (reason, size, "--retries: only a req socket retries (this is %s)",
                                 zk_spec_type_to_name (type));
    if (config->retries < 0 || config->retries > ZK_CALLER_MAX_RETRIES)
        return zk_engine_reason (reason, size, "--retries: %d is not in 0..%d", config->retries,
                                 ZK_CALLER_MAX_RETRIES);
    if (config->retries && config->timeout <= 0)
        return zk_engine_reason (reason, size,
                                 "--retries needs --timeout SECONDS: how long each attempt waits "
                                 "for its reply");
    if (type != ZMQ_REQ)
        return 0;
    char why[512];
    if (zk_caller_validate (config->spec, NULL, why, sizeof why))
        return zk_engine_reason (reason, size, "%s", why);
    return 0;
}

static int
s_settle (const zk_cat_config_t *config, s_settings_t *settings, char *reason, size_t size)
{
    memset (settings, 0, sizeof *settings);
    int type = zk_engine_spec_type ("zk_cat", config->spec, reason, size);
    if (type < 0)
        return ZK_EINVAL;
    const char *name = zk_spec_type_to_name (type);
    settings->type = type;
    if (s_refusal (type))
        return zk_engine_reason (reason, size, "%s", s_refusal (type));
    if (s_settle_queue (config, settings, reason, size))
        return ZK_EINVAL;
    bool sends = s_sends (settings), prints = s_prints (settings);

    //  Framing of input and output.
    settings->delimiter = '\n';
    if (config->raw && (config->delimiter || config->null_delimiter))
        return zk_engine_reason (reason, size, "--raw has no delimiter: drop -d/-0");
    if (config->delimiter && config->null_delimiter)
        return zk_engine_reason (reason, size, "-0 and -d cannot be combined");
    if (config->delimiter) {
        char byte[2];
        size_t byte_size;
        if (zk_cat_unescape (config->delimiter, byte, sizeof byte, &byte_size) || byte_size != 1)
            return zk_engine_reason (reason, size,
                                     "-d: '%s' is not one byte (a character or one of \\n \\t "
                                     "\\r \\0 \\\\ \\xHH)",
                                     config->delimiter);
        settings->delimiter = (unsigned char) byte[0];
    }
    if (config->null_delimiter)
        settings->delimiter = 0;
    if (config->raw || settings->queue_mode == S_QUEUE_SUBMIT)
        settings->delimiter = -1;
    if (config->frame_sep) {
        int rc = zk_cat_unescape (config->frame_sep, settings->frame_sep,
                                  sizeof settings->frame_sep, &settings->frame_sep_size);
        if (rc == ZK_ETOOBIG)
            return zk_engine_reason (reason, size, "-F: longer than %d bytes",
                                     ZK_CAT_MAX_SEPARATOR);
        if (rc)
            return zk_engine_reason (reason, size,
                                     "-F: '%s' has an unknown escape (\\n \\t \\r "
                                     "\\0 \\\\ \\xHH)",
                                     config->frame_sep);
        if (settings->frame_sep_size == 0)
            return zk_engine_reason (reason, size, "-F: the frame separator is empty");
    }
    settings->max_size = config->max_size ? config->max_size : ZK_CAT_DEFAULT_MAX_SIZE;

    //  What only some types do.
    int format = config->format ? zk_cat_format_from_name (config->format) : ZK_CAT_RAW;
    if (format < 0)
        return zk_engine_reason (reason, size, "--format: '%s' is not one of raw|hex|json|msgpack",
                                 config->format);
    settings->format = (zk_cat_format_t) format;
    if (config->format && !prints)
        return zk_engine_reason (reason, size, "--format: a %s socket prints nothing", name);
    if (config->data.count && !sends)
        return zk_engine_reason (reason, size, "--data: a %s socket does not send", name);
    settings->envelope = config->envelope || config->headers.count || config->content_type;
    if (settings->envelope && !sends)
        return zk_engine_reason (reason, size, "-e/-H/--content-type: a %s socket does not send",
                                 name);
    for (int index = 0; index < config->headers.count; index++) {
        const char *header = config->headers.items[index];
        const char *equals = strchr (header, '=');
        if (!equals || equals == header)
            return zk_engine_reason (reason, size, "-H: '%s' is not KEY=VALUE", header);
        if ((size_t) (equals - header) > ZK_ENVELOPE_MAX_STRING
            || strlen (equals + 1) > ZK_ENVELOPE_MAX_STRING)
            return zk_engine_reason (reason, size, "-H: longer than %d bytes",
                                     ZK_ENVELOPE_MAX_STRING);
    }
    if (config->headers.count > ZK_ENVELOPE_MAX_HEADERS)
        return zk_engine_reason (reason, size, "-H: more than %d headers", ZK_ENVELOPE_MAX_HEADERS);
    if (config->content_type && strlen (config->content_type) > ZK_ENVELOPE_MAX_STRING)
        return zk_engine_reason (reason, size, "--content-type: longer than %d bytes",
                                 ZK_ENVELOPE_MAX_STRING);
    if (config->subscribe.count && type != ZMQ_SUB)
        return zk_engine_reason (reason, size, "-s: only a sub socket subscribes (this is %s)",
                                 name);
    for (int index = 0; index < config->subscribe.count; index++)
        if (strlen (config->subscribe.items[index]) > ZK_MAX_TOPIC_MAX)
            return zk_engine_reason (reason, size,
                                     "-s: a topic longer than %d bytes (no forwarder passes it)",
                                     ZK_MAX_TOPIC_MAX);
    if (config->wait_subscribers < 0 || (config->wait_subscribers && type != ZMQ_PUB))
        return zk_engine_reason (reason, size,
                                 "--wait-subscribers: only a pub socket has subscribers (this "
                                 "is %s)",
                                 name);
    if (config->count < 0)
        return zk_engine_reason (reason, size, "--count: must not be negative");
    if (isnan (config->timeout))
        return zk_engine_reason (reason, size, "--timeout: not a number");
    bool plain_sender =
        type == ZMQ_PUSH || type == ZMQ_PUB || type == ZMQ_PAIR
        || (settings->queue_mode != S_QUEUE_NONE && settings->queue_mode != S_QUEUE_TAKE);
    settings->send_timeout_ms = s_timeout_ms (
        config->timeout, plain_sender ? (int64_t) (ZK_CAT_DEFAULT_SEND_TIMEOUT * 1000) : -1);
    settings->timeout_ms = s_timeout_ms (config->timeout, -1);
    return s_settle_req (config, type, reason, size);
}

int
zk_cat_validate (const zk_cat_config_t *config, char *reason, size_t reason_size)
{
    assert (config);
    s_settings_t settings;
    return s_settle (config, &settings, reason, reason_size);
}

//  --------------------------------------------------------------------------
//  Reading messages from a stream

struct _zk_cat_reader_t {
    FILE *in;
    int delimiter;  //  -1: raw
    size_t max_size;
    uint8_t *buffer;
    size_t size;  //  bytes of the message being read
    size_t capacity;
    bool returned;  //  the last call returned a message: start a new one
    bool ended;     //  the input ended
    int failed;     //  sticky ZK_ETOOBIG
};

zk_cat_reader_t *
zk_cat_reader_new (FILE *in, int delimiter, size_t max_size)
{
    assert (in);
    assert (delimiter >= -1 && delimiter <= 255);
    zk_cat_reader_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->in = in;
    self->delimiter = delimiter;
    self->max_size = max_size;
    return self;
}

void
zk_cat_reader_destroy (zk_cat_reader_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free ((*self_p)->buffer);
        free (*self_p);
        *self_p = NULL;
    }
}

//  Room for one more byte; the buffer grows with what arrived, never past
//  max_size. 0 or ZK_ENOMEM.
static int
s_reader_grow (zk_cat_reader_t *self)
{
    if (self->size < self->capacity)
        return 0;
    size_t capacity = self->capacity ? self->capacity * 2 : 4096;
    if (capacity > self->max_size)
        capacity = self->max_size;
    uint8_t *buffer = realloc (self->buffer, capacity);
    if (!buffer)
        return ZK_ENOMEM;
    self->buffer = buffer;
    self->capacity = capacity;
    return 0;
}

//  Hand out the message read so far.
static int
s_reader_deliver (zk_cat_reader_t *self, const uint8_t **data_p, size_t *size_p)
{
    self->returned = true;
    *data_p = self->buffer ? self->buffer : (const uint8_t *) "";
    *size_p = self->size;
    return 0;
}

int
zk_cat_reader_next (zk_cat_reader_t *self, const uint8_t **data_p, size_t *size_p)
{
    assert (self && data_p && size_p);
    *data_p = NULL;
    *size_p = 0;
    if (self->failed)
        return self->failed;
    if (self->ended)
        return 0;
    if (self->returned) {
        self->size = 0;
        self->returned = false;
    }
    int rc = 0;
    flockfile (self->in);
    while (true) {
        int byte = getc_unlocked (self->in);
        if (byte == EOF) {
            if (ferror (self->in)) {
                rc = errno == EINTR ? ZK_EINTR : ZK_EIO;
                clearerr (self->in);
                break;
            }
            self->ended = true;
            //  A final line without a delimiter is a message; nothing after
            //  the last delimiter is not. Raw mode always has its one message.
            if (self->size > 0 || self->delimiter < 0)
                rc = s_reader_deliver (self, data_p, size_p);
            break;
        }
        if (byte == self->delimiter) {
            rc = s_reader_deliver (self, data_p, size_p);
            break;
        }
        if (self->size == self->max_size) {
            rc = self->failed = ZK_ETOOBIG;
            break;
        }
        if (s_reader_grow (self)) {
            rc = self->failed = ZK_ENOMEM;
            break;
        }
        self->buffer[self->size++] = (uint8_t) byte;
    }
    funlockfile (self->in);
    return rc;
}

zmsg_t *
zk_cat_split (const void *data, size_t size, const void *sep, size_t sep_size)
{
    zmsg_t *msg = zmsg_new ();
    if (!msg)
        return NULL;
    const uint8_t *start = (const uint8_t *) data;
    const uint8_t *end = start + size;
    const uint8_t *hit;
    while (sep && sep_size && start < end
           && (hit = memmem (start, (size_t) (end - start), sep, sep_size))) {
        if (zmsg_addmem (msg, start, (size_t) (hit - start)))
            goto out_fail;
        start = hit + sep_size;
    }
    if (zmsg_addmem (msg, start, (size_t) (end - start)))
        goto out_fail;
    return msg;
out_fail:
    zmsg_destroy (&msg);
    return NULL;
}

//  --------------------------------------------------------------------------
//  Printing

//  The frame of msg that holds its envelope (the first; with topic_first
//  also the second), decoded into *envelope_p (caller owns it); else NULL.
//  A frame that has the magic but does not decode is data, with a warning.
static zframe_t *
s_find_envelope (zmsg_t *msg, bool topic_first, zk_envelope_t **envelope_p)
{
    *envelope_p = NULL;
    int tries = topic_first ? 2 : 1;
    zframe_t *frame = zmsg_first (msg);
    for (int index = 0; frame && index < tries; index++, frame = zmsg_next (msg)) {
        if (!zk_envelope_is_envelope (zframe_data (frame), zframe_size (frame)))
            continue;
        int rc = zk_envelope_decode (zframe_data (frame), zframe_size (frame), envelope_p);
        if (rc == 0)
            return frame;
        zk_warn_limited ("frame %d looks like an envelope but does not decode (%s): shown as data",
                         index + 1, zk_strerror (rc));
    }
    return NULL;
}

static bool
s_write (const void *data, size_t size, FILE *out)
{
    return size == 0 || fwrite (data, 1, size, out) == size;
}

static bool
s_write_hex (const uint8_t *data, size_t size, FILE *out)
{
    static const char digits[] = "0123456789abcdef";
    char chunk[512];
    size_t used = 0;
    for (size_t pos = 0; pos < size; pos++) {
        chunk[used++] = digits[data[pos] >> 4];
        chunk[used++] = digits[data[pos] & 15];
        if (used == sizeof chunk) {
            if (!s_write (chunk, used, out))
                return false;
            used = 0;
        }
    }
    return s_write (chunk, used, out);
}

//  A msgpack array or bin header (the 8-bit form only exists for bin).
static bool
s_write_msgpack_header (bool array, size_t count, FILE *out)
{
    uint8_t bytes[5];
    size_t size;
    if (array && count <= 15) {
        bytes[0] = (uint8_t) (0x90 | count);
        size = 1;
    }
    else if (!array && count <= 0xff) {
        bytes[0] = 0xc4;
        bytes[1] = (uint8_t) count;
        size = 2;
    }
    else if (count <= 0xffff) {
        bytes[0] = array ? 0xdc : 0xc5;
        bytes[1] = (uint8_t) (count >> 8);
        bytes[2] = (uint8_t) count;
        size = 3;
    }
    else {
        bytes[0] = array ? 0xdd : 0xc6;
        for (int i = 0; i < 4; i++)
            bytes[1 + i] = (uint8_t) (count >> (24 - 8 * i));
        size = 5;
    }
    return s_write (bytes, size, out);
}

//  A frame in JSON: a string when it is valid UTF-8, else {"hex":"..."}.
static bool
s_print_json_frame (zframe_t *frame, FILE *out)
{
    const uint8_t *data = zframe_data (frame);
    size_t size = zframe_size (frame);
    if (zk_utf8_valid (data, size))
        return zk_json_print_string (data, size, out) == 0;
    return fputs ("{\"hex\":\"", out) != EOF && s_write_hex (data, size, out)
           && fputs ("\"}", out) != EOF;
}

static bool
s_print_json (zmsg_t *msg, zframe_t *envelope_frame, const zk_envelope_t *envelope, FILE *out)
{
    bool ok = fputs ("{\"frames\":[", out) != EOF;
    bool first = true;
    for (zframe_t *frame = zmsg_first (msg); ok && frame; frame = zmsg_next (msg)) {
        if (frame == envelope_frame)
            continue;
        ok = (first || fputc (',', out) != EOF) && s_print_json_frame (frame, out);
        first = false;
    }
    ok = ok && fputc (']', out) != EOF;
    if (ok && envelope)
        ok = fputs (",\"envelope\":", out) != EOF && zk_envelope_print_json (envelope, out) == 0;
    return ok && fputc ('}', out) != EOF;
}

int
zk_cat_print (const zk_cat_output_t *output, zmsg_t *msg, FILE *out)
{
    assert (output && msg && out);
    bool ok = true;
    if (output->format == ZK_CAT_MSGPACK) {
        ok = s_write_msgpack_header (true, zmsg_size (msg), out);
        for (zframe_t *frame = zmsg_first (msg); ok && frame; frame = zmsg_next (msg))
            ok = s_write_msgpack_header (false, zframe_size (frame), out)
                 && s_write (zframe_data (frame), zframe_size (frame), out);
        return ok ? 0 : ZK_EIO;
    }
    zk_envelope_t *envelope;
    zframe_t *envelope_frame = s_find_envelope (msg, output->topic_first, &envelope);
    if (output->format == ZK_CAT_JSON)
        ok = s_print_json (msg, envelope_frame, envelope, out);
    else {
        const char *sep = output->format == ZK_CAT_HEX ? " " : "\t";
        size_t sep_size = 1;
        if (output->format == ZK_CAT_RAW && output->frame_sep) {
            sep = output->frame_sep;
            sep_size = output->frame_sep_size;
        }
        bool first = true;
        for (zframe_t *frame = zmsg_first (msg); ok && frame; frame = zmsg_next (msg)) {
            if (frame == envelope_frame)
                continue;
            ok = first || s_write (sep, sep_size, out);
            first = false;
            if (output->format == ZK_CAT_HEX)
                ok = ok && s_write_hex (zframe_data (frame), zframe_size (frame), out);
            else
                ok = ok && s_write (zframe_data (frame), zframe_size (frame), out);
        }
    }
    zk_envelope_destroy (&envelope);
    if (ok && output->delimiter >= 0)
        ok = fputc (output->delimiter, out) != EOF;
    return ok ? 0 : ZK_EIO;
}

//  --------------------------------------------------------------------------
//  The socket

static int
s_setsockopt_int (void *handle, int option, int value)
{
    return zmq_setsockopt (handle, option, &value, sizeof value);
}

//  Create and attach the socket in the private context. 0 or a ZK_E... (logged).
static int
s_open (zk_cat_t *self)
{
    const s_settings_t *settings = &self->settings;
    int type = settings->type;
    //  Waiting for subscribers means seeing subscriptions: an xpub does.
    if (type == ZMQ_PUB && self->config.wait_subscribers)
        type = ZMQ_XPUB;
    self->handle = zmq_socket (self->context, type);
    if (!self->handle) {
        zk_error ("cannot create %s socket: %s", zk_spec_type_to_name (type), zmq_strerror (errno));
        return ZK_ESOCKET;
    }
    int rc = s_setsockopt_int (self->handle, ZMQ_LINGER, 0);
    if (self->config.hwm > 0) {
        rc |= s_setsockopt_int (self->handle, ZMQ_SNDHWM, self->config.hwm);
        rc |= s_setsockopt_int (self->handle, ZMQ_RCVHWM, self->config.hwm);
    }
    //  Queue a message only for a peer that is connected, so "no peer took
    //  it in time" is a send that did not happen, counted exactly. Not on
    //  req/dealer: there libzmq would throw away a reply still unread when
    //  the peer closes the connection right after sending it.
    if (type == ZMQ_PUSH || type == ZMQ_PUB || type == ZMQ_XPUB || type == ZMQ_PAIR)
        rc |= s_setsockopt_int (self->handle, ZMQ_IMMEDIATE, 1);
    //  A peer that sends a bigger frame is disconnected before we hold it.
    //  libzmq applies this to handshake commands too, hence the floor; s_recv
    //  enforces the exact limit on whole messages. Senders only take
    //  handshakes and subscriptions: the floor alone.
    if (settings->max_size <= (size_t) INT64_MAX) {
        int64_t max_size = s_type_prints (settings->type) ? (int64_t) settings->max_size : 0;
        if (max_size < S_MIN_MAXMSGSIZE)
            max_size = S_MIN_MAXMSGSIZE;
        rc |= zmq_setsockopt (self->handle, ZMQ_MAXMSGSIZE, &max_size, sizeof max_size);
    }
    rc |= s_setsockopt_int (self->handle, ZMQ_HANDSHAKE_IVL, ZK_SPEC_HANDSHAKE_MS);
    rc |= s_setsockopt_int (self->handle, ZMQ_BACKLOG, ZK_SPEC_BACKLOG);
    //  pub/xpub: wait for a slow subscriber rather than drop silently.
    if (type == ZMQ_PUB || type == ZMQ_XPUB)
        rc |= s_setsockopt_int (self->handle, ZMQ_XPUB_NODROP, 1);
    if (type == ZMQ_XPUB)
        rc |= s_setsockopt_int (self->handle, ZMQ_XPUB_VERBOSE, 1);
    if (type == ZMQ_SUB) {
        for (int index = 0; index < self->config.subscribe.count; index++) {
            const char *topic = self->config.subscribe.items[index];
            if (strlen (topic) > ZK_MAX_TOPIC_DEFAULT)
                zk_warn ("-s: a %zu-byte topic; a zkit-forwarder drops subscriptions longer "
                         "than its --max-topic (default %d)",
                         strlen (topic), ZK_MAX_TOPIC_DEFAULT);
            rc |= zmq_setsockopt (self->handle, ZMQ_SUBSCRIBE, topic, strlen (topic));
        }
        if (self->config.subscribe.count == 0)
            rc |= zmq_setsockopt (self->handle, ZMQ_SUBSCRIBE, "", 0);
    }
    if (rc) {
        zk_error ("cannot configure %s socket: %s", zk_spec_type_to_name (type),
                  zmq_strerror (errno));
        return ZK_ESOCKET;
    }
    //  The spec's security, and for a binding spec a ZAP handler in our
    //  private context (stopped in s_finish, before the context ends).
    rc = zk_spec_secure (self->spec, self->handle, self->context);
    if (rc)
        return rc;
    //  zk_spec_attach takes a zsock_t but only uses zsock_resolve (), which
    //  accepts a plain libzmq socket as well (czmq's polymorphic sockets).
    return zk_spec_attach (self->spec, (zsock_t *) self->handle);
}

//  A queue spec: its client. Every request gets the run's timeout (none
//  while taking without --timeout: receivers wait as long as it takes).
static int
s_open_queue (zk_cat_t *self)
{
    const s_settings_t *settings = &self->settings;
    int64_t timeout_ms =
        settings->queue_mode == S_QUEUE_TAKE ? settings->timeout_ms : settings->send_timeout_ms;
    zk_client_config_t config = {
        .timeout_ms = timeout_ms < 0         ? -1
                      : timeout_ms > INT_MAX ? INT_MAX
                                             : (int) timeout_ms,
        .max_size = settings->max_size,
        .hwm = self->config.hwm,
    };
    if (config.timeout_ms == 0)
        config.timeout_ms = 1;
    self->client = zk_client_new (self->config.spec, &config);
    return self->client ? 0 : ZK_ESOCKET;
}

//  req: the reliable client, one attempt of timeout_ms (none: no limit)
//  and the retries asked for.
static int
s_open_caller (zk_cat_t *self)
{
    int64_t timeout_ms = self->settings.timeout_ms;
    zk_caller_config_t config = {
        .timeout_ms = timeout_ms < 0         ? -1
                      : timeout_ms > INT_MAX ? INT_MAX
                                             : (int) timeout_ms,
        .retries = self->config.retries,
        .max_size = self->settings.max_size,
        .max_frames = ZK_CAT_MAX_FRAMES + 2,  //  the REQID and the delimiter too
        .hwm = self->config.hwm,
    };
    if (config.timeout_ms == 0)
        config.timeout_ms = 1;
    self->caller = zk_caller_new (self->config.spec, &config);
    return self->caller ? 0 : ZK_ESOCKET;
}

static int
s_write_ready_file (zk_cat_t *self)
{
    char lines[8192] = "";
    size_t used = 0;
    for (size_t index = 0; index < zk_spec_size (self->spec); index++) {
        used += (size_t) snprintf (lines + used, used < sizeof lines ? sizeof lines - used : 0,
                                   "socket %s\n", zk_spec_resolved (self->spec, index));
        zk_info ("ready socket=%s", zk_spec_resolved (self->spec, index));
    }
    if (!self->config.ready_file)
        return 0;
    if (used >= sizeof lines || zk_cli_write_file (self->config.ready_file, lines)) {
        zk_error ("cannot write ready file %s: %s", self->config.ready_file, strerror (errno));
        return ZK_EIO;
    }
    return 0;
}

zk_cat_t *
zk_cat_new (const zk_cat_config_t *config)
{
    assert (config);
    zk_cat_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->config = *config;
    char reason[512];
    if (s_settle (config, &self->settings, reason, sizeof reason)) {
        zk_error ("%s", reason);
        goto out_fail;
    }
    const s_settings_t *settings = &self->settings;
    self->output.format = settings->format;
    self->output.delimiter = settings->delimiter;
    self->output.frame_sep = settings->frame_sep_size ? settings->frame_sep : NULL;
    self->output.frame_sep_size = settings->frame_sep_size;
    self->output.topic_first = settings->type == ZMQ_SUB;
    self->spec = zk_spec_new (config->spec);
    if (!self->spec)
        goto out_fail;
    if (settings->type == ZK_SPEC_QUEUE) {
        if (s_open_queue (self) || s_write_ready_file (self))
            goto out_fail;
        return self;
    }
    if (settings->type == ZMQ_REQ) {
        if (s_open_caller (self) || s_write_ready_file (self))
            goto out_fail;
        return self;
    }
    self->context = zmq_ctx_new ();
    if (!self->context) {
        zk_error ("cannot create a ZeroMQ context: %s", zmq_strerror (errno));
        goto out_fail;
    }
    if (s_open (self) || s_write_ready_file (self))
        goto out_fail;
    return self;
out_fail:
    zk_cat_destroy (&self);
    return NULL;
}

//  A detached thread ends a context whose hand-over nobody waits for.
static void *
s_term_thread (void *context)
{
    while (zmq_ctx_term (context) != 0 && errno == EINTR)
        ;
    return NULL;
}

/*  Close the socket, letting it hand over what is queued for at most
    linger_ms, and end the private context. zmq_ctx_term returns as soon
    as every queued message is written out, or when the linger timer
    (started after our clock read) drops the rest: so it took linger_ms or
    more exactly when something was left. Returns true if the hand-over
    finished (always true with linger 0: nothing was waited for). A new
    signal during the wait abandons it to a detached thread.            */
static bool
s_finish (zk_cat_t *self, int64_t linger_ms)
{
    if (!self->context)
        return true;
    if (zsys_interrupted && linger_ms > S_INTERRUPT_LINGER_MS)
        linger_ms = S_INTERRUPT_LINGER_MS;
    int linger = linger_ms <= 0 ? 0 : linger_ms > INT_MAX ? INT_MAX : (int) linger_ms;
    if (self->handle) {
        s_setsockopt_int (self->handle, ZMQ_LINGER, linger);
        zmq_close (self->handle);
        self->handle = NULL;
    }
    zk_auth_stop (self->context);  //  its socket would hold zmq_ctx_term
    bool interrupted_before = zsys_interrupted;
    int64_t start = zk_now_ms ();
    while (zmq_ctx_term (self->context) != 0) {
        if (errno != EINTR)
            break;
        if (zsys_interrupted && !interrupted_before) {
            pthread_t thread;
            pthread_attr_t attr;
            pthread_attr_init (&attr);
            pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
            pthread_create (&thread, &attr, s_term_thread, self->context);
            pthread_attr_destroy (&attr);
            self->context = NULL;
            return false;
        }
    }
    self->context = NULL;
    return linger == 0 || zk_now_ms () - start < linger;
}

void
zk_cat_destroy (zk_cat_t **self_p)
{
    assert (self_p);
    zk_cat_t *self = *self_p;
    if (!self)
        return;
    s_finish (self, 0);
    zk_client_destroy (&self->client);
    zk_caller_destroy (&self->caller);
    zk_cat_reader_destroy (&self->reader);
    zk_spec_destroy (&self->spec);
    free (self);
    *self_p = NULL;
}

const char *
zk_cat_endpoint (zk_cat_t *self, size_t index)
{
    assert (self);
    return index < zk_spec_size (self->spec) ? zk_spec_resolved (self->spec, index) : NULL;
}

void
zk_cat_stats (zk_cat_t *self, zk_cat_stats_t *stats)
{
    assert (self && stats);
    *stats = self->stats;
}

int
zk_cat_exit_code (int rc)
{
    if (rc == 0)
        return 0;
    if (rc == ZK_ETIMEDOUT)
        return 3;
    if (rc == ZK_EINVAL)
        return 2;
    return 1;
}

//  --------------------------------------------------------------------------
//  Moving messages

/*  Wait until the socket is ready for events, at most until deadline
    (zk_now_ms; -1 = none), in slices so an interrupt is seen. Returns the
    ready events, 0 at the deadline, ZK_EINTR when interrupted, or
    ZK_ESOCKET.                                                          */
static int
s_wait (zk_cat_t *self, short events, int64_t deadline)
{
    while (true) {
        if (zsys_interrupted)
            return ZK_EINTR;
        long slice = S_SLICE_MS;
        if (deadline >= 0) {
            int64_t left = deadline - zk_now_ms ();
            if (left < slice)
                slice = left < 0 ? 0 : (long) left;
        }
        zmq_pollitem_t item = {self->handle, 0, events, 0};
        int rc = zmq_poll (&item, 1, slice);
        if (rc > 0)
            return item.revents;
        if (rc < 0 && errno != EINTR) {
            zk_error ("poll failed: %s", zmq_strerror (errno));
            return ZK_ESOCKET;
        }
        if (deadline >= 0 && zk_now_ms () >= deadline)
            return 0;
    }
}

//  Seconds as the user wrote them, for messages.
static double
s_seconds (int64_t ms)
{
    return (double) ms / 1000;
}

//  Send msg's frames without blocking: 0 (msg destroyed), 1 when the
//  socket cannot take it now (msg kept), or ZK_ESOCKET.
static int
s_send_now (zk_cat_t *self, zmsg_t **msg_p)
{
    zmsg_t *msg = *msg_p;
    size_t left = zmsg_size (msg);
    bool first = true;
    for (zframe_t *frame = zmsg_first (msg); frame; frame = zmsg_next (msg)) {
        left--;
        int flags = ZMQ_DONTWAIT | (left ? ZMQ_SNDMORE : 0);
        while (zmq_send (self->handle, zframe_data (frame), zframe_size (frame), flags) < 0) {
            if (errno == EAGAIN && first)
                return 1;
            if (errno != EINTR) {
                zk_error ("send failed: %s", zmq_strerror (errno));
                return ZK_ESOCKET;
            }
        }
        first = false;
    }
    zmsg_destroy (msg_p);
    self->stats.sent++;
    return 0;
}

/*  Receive one message (the socket is readable) into *msg_p, frame by
    frame, keeping at most max_size bytes and ZK_CAT_MAX_FRAMES frames: a
    bigger message is read to its end, dropped, counted and warned about.
    0 with *msg_p (NULL when there was nothing or it was refused), or
    ZK_ESOCKET.                                                          */
static int
s_recv (zk_cat_t *self, zmsg_t **msg_p)
{
    *msg_p = NULL;
    zmsg_t *msg = zmsg_new ();
    size_t total = 0, frames = 0;
    bool more = true, refused = false;
    int rc = 0;
    while (more) {
        zmq_msg_t part;
        zmq_msg_init (&part);
        if (zmq_msg_recv (&part, self->handle, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&part);
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN || frames > 0) {
                zk_error ("receive failed: %s", zmq_strerror (errno));
                rc = ZK_ESOCKET;
            }
            break;
        }
        more = zmq_msg_more (&part);
        total += zmq_msg_size (&part);
        frames++;
        if (!refused && (total > self->settings.max_size || frames > ZK_CAT_MAX_FRAMES))
            refused = true;
        if (!refused && zmsg_addmem (msg, zmq_msg_data (&part), zmq_msg_size (&part)))
            refused = true;
        zmq_msg_close (&part);
    }
    if (refused && !rc) {
        self->stats.refused++;
        if (frames > ZK_CAT_MAX_FRAMES)
            zk_warn_limited ("refused a message of %zu frames: more than %d (%" PRIu64 " refused)",
                             frames, ZK_CAT_MAX_FRAMES, self->stats.refused);
        else
            zk_warn_limited ("refused a message of %zu bytes: over --max-size %zu (%" PRIu64
                             " refused)",
                             total, self->settings.max_size, self->stats.refused);
    }
    if (rc || refused || frames == 0)
        zmsg_destroy (&msg);
    *msg_p = msg;
    return rc;
}

//  A reply whose envelope says zk-status=error: log its zk-error, count it.
static void
s_check_reply (zk_cat_t *self, zmsg_t *msg)
{
    zk_envelope_t *envelope;
    if (!s_find_envelope (msg, false, &envelope))
        return;
    const char *status = zk_envelope_header (envelope, "zk-status");
    if (status && streq (status, "error")) {
        self->stats.error_replies++;
        const char *error = zk_envelope_header (envelope, "zk-error");
        zk_error ("reply %" PRIu64 " is an error: %s", self->stats.received + 1,
                  error ? error : "(no zk-error header)");
    }
    zk_envelope_destroy (&envelope);
}

//  Print a received message (a reply: strip dealer's delimiter, check the
//  status first). 0 or ZK_EIO.
static int
s_show (zk_cat_t *self, zmsg_t *msg, FILE *out)
{
    int type = self->settings.type;
    if (type == ZMQ_DEALER && zmsg_size (msg) > 1 && zframe_size (zmsg_first (msg)) == 0) {
        zframe_t *delimiter = zmsg_pop (msg);
        zframe_destroy (&delimiter);
    }
    if (type == ZMQ_REQ || type == ZMQ_DEALER)
        s_check_reply (self, msg);
    self->stats.received++;
    if (!out)
        return 0;
    if (zk_cat_print (&self->output, msg, out) || fflush (out)) {
        zk_error ("cannot write output: %s", strerror (errno));
        return ZK_EIO;
    }
    return 0;
}

//  Receive one message if there is one and print it. rep answers it with
//  itself. 0 or a ZK_E... code.
static int
s_take (zk_cat_t *self, FILE *out, int64_t deadline)
{
    zmsg_t *msg;
    int rc = s_recv (self, &msg);
    if (rc || !msg)
        return rc;
    rc = s_show (self, msg, out);
    while (rc == 0 && self->settings.type == ZMQ_REP && msg) {
        rc = s_send_now (self, &msg);
        if (rc == 1) {
            rc = s_wait (self, ZMQ_POLLOUT, deadline);
            rc = rc > 0 ? 0 : rc == 0 ? ZK_ETIMEDOUT : rc;
        }
    }
    zmsg_destroy (&msg);
    return rc == ZK_EINTR ? 0 : rc;
}

/*  Receive and print until want messages were printed in all (0: no
    limit) or the deadline. An interrupt ends it with 0, and so does the
    deadline when there is no want. Fewer than want: ZK_ETIMEDOUT.       */
static int
s_receive (zk_cat_t *self, FILE *out, uint64_t want, int64_t deadline, int64_t timeout_ms,
           const char *what)
{
    while (want == 0 || self->stats.received < want) {
        int rc = s_wait (self, ZMQ_POLLIN, deadline);
        if (rc == ZK_EINTR)
            return 0;
        if (rc < 0)
            return rc;
        if (rc == 0) {
            if (want == 0)
                return 0;
            zk_error ("received %" PRIu64 " of %" PRIu64 " %s within %g s", self->stats.received,
                      want, what, s_seconds (timeout_ms));
            return ZK_ETIMEDOUT;
        }
        rc = s_take (self, out, deadline);
        if (rc)
            return rc;
    }
    return 0;
}

/*  The next message to send, built (frames, envelope, dealer's empty
    delimiter): 0 with *msg_p, or 0 with NULL when the input or the data
    list ended; ZK_EINTR when interrupted; ZK_ETOOBIG, ZK_EIO, ZK_ENOMEM
    (logged).                                                            */
static int
s_next_message (zk_cat_t *self, zmsg_t **msg_p)
{
    *msg_p = NULL;
    const uint8_t *data = NULL;
    size_t size = 0;
    if (zsys_interrupted)
        return ZK_EINTR;
    if (self->config.data.count) {
        if (self->data_next == self->config.data.count)
            return 0;
        data = (const uint8_t *) self->config.data.items[self->data_next++];
        size = strlen ((const char *) data);
    }
    else if (self->reader) {
        int rc;
        while ((rc = zk_cat_reader_next (self->reader, &data, &size)) == ZK_EINTR)
            if (zsys_interrupted)
                return ZK_EINTR;
        if (rc == ZK_ETOOBIG)
            zk_error ("message %" PRIu64 " is longer than --max-size (%zu bytes): not sent, "
                      "stopping",
                      self->stats.read + 1, self->settings.max_size);
        else if (rc)
            zk_error ("cannot read the input: %s", zk_strerror (rc));
        if (rc || !data)
            return rc;
    }
    else
        return 0;
    self->stats.read++;
    const s_settings_t *settings = &self->settings;
    zmsg_t *msg = zk_cat_split (data, size, settings->frame_sep_size ? settings->frame_sep : NULL,
                                settings->frame_sep_size);
    if (!msg)
        return ZK_ENOMEM;
    if (settings->envelope) {
        zk_envelope_t *envelope = zk_envelope_new ();
        int rc = envelope ? 0 : ZK_ENOMEM;
        if (!rc && self->config.content_type)
            rc = zk_envelope_set_content_type (envelope, self->config.content_type);
        for (int index = 0; !rc && index < self->config.headers.count; index++) {
            const char *header = self->config.headers.items[index];
            size_t key_len = (size_t) (strchr (header, '=') - header);
            char key[ZK_ENVELOPE_MAX_STRING + 1];
            memcpy (key, header, key_len);
            key[key_len] = 0;
            rc = zk_envelope_set_header (envelope, key, header + key_len + 1);
        }
        //  pub keeps the topic first, so subscribers still filter on it.
        zframe_t *topic = settings->type == ZMQ_PUB ? zmsg_pop (msg) : NULL;
        if (!rc)
            rc = zk_envelope_attach (envelope, msg);
        if (topic)
            zmsg_prepend (msg, &topic);
        zk_envelope_destroy (&envelope);
        if (rc) {
            zk_error ("cannot build the envelope: %s", zk_strerror (rc));
            zmsg_destroy (&msg);
            return rc;
        }
    }
    if (settings->type == ZMQ_DEALER)
        zmsg_pushmem (msg, NULL, 0);
    *msg_p = msg;
    return 0;
}

/*  After sending stopped: how many more messages the input already holds
    (read without waiting for more; a terminal is not read). *complete_p
    says whether the end of the input was seen.                          */
static uint64_t
s_count_rest (zk_cat_t *self, uint64_t limit, bool *complete_p)
{
    *complete_p = true;
    uint64_t rest = 0;
    if (self->config.data.count)
        rest = (uint64_t) (self->config.data.count - self->data_next);
    else if (self->reader) {
        int fd = fileno (self->in);
        if (fd >= 0 && isatty (fd)) {
            *complete_p = false;
            return 0;
        }
        int flags = fd >= 0 ? fcntl (fd, F_GETFL) : -1;
        if (flags >= 0)
            fcntl (fd, F_SETFL, flags | O_NONBLOCK);
        const uint8_t *data;
        size_t size;
        int rc;
        while ((rc = zk_cat_reader_next (self->reader, &data, &size)) == 0 && data && rest < limit)
            rest++;
        *complete_p = rc == 0 && !data;
        if (flags >= 0)
            fcntl (fd, F_SETFL, flags);
    }
    if (rest > limit)
        rest = limit;
    return rest;
}

//  Sending stopped with in_hand messages read but not sent: count the rest
//  of the input and say what was not sent and why.
static void
s_report_unsent (zk_cat_t *self, uint64_t in_hand, const char *why)
{
    uint64_t limit = UINT64_MAX;
    int type = self->settings.type;
    if (self->config.count && (type == ZMQ_PUSH || type == ZMQ_PUB || type == ZMQ_REQ))
        limit = (uint64_t) self->config.count - self->stats.read;
    bool complete;
    self->stats.unsent = in_hand + s_count_rest (self, limit, &complete);
    zk_error ("%s%" PRIu64 " message(s) not sent (%" PRIu64 " sent): %s",
              complete ? "" : "at least ", self->stats.unsent, self->stats.sent, why);
}

//  A message in hand could not be sent (rc): say so and count it.
static void
s_send_failed (zk_cat_t *self, int rc, int64_t timeout_ms)
{
    if (rc == ZK_ETIMEDOUT) {
        char why[128];
        snprintf (why, sizeof why, "no peer took them within %g s", s_seconds (timeout_ms));
        s_report_unsent (self, 1, why);
    }
    else if (rc == ZK_EINTR) {
        self->stats.unsent = 1;
        zk_error ("interrupted: 1 message(s) not sent (%" PRIu64 " sent)", self->stats.sent);
    }
}

/*  Send msg, waiting for a peer until deadline; a dealer prints the
    replies that arrive meanwhile. 0 (msg destroyed), ZK_ETIMEDOUT (msg
    kept), ZK_EINTR or another ZK_E....                                  */
static int
s_send (zk_cat_t *self, zmsg_t **msg_p, int64_t deadline, FILE *out)
{
    bool dealer = self->settings.type == ZMQ_DEALER;
    while (true) {
        int rc = s_send_now (self, msg_p);
        if (rc <= 0)
            return rc;
        bool want_more =
            !self->config.count || self->stats.received < (uint64_t) self->config.count;
        rc = s_wait (self, ZMQ_POLLOUT | (dealer && want_more ? ZMQ_POLLIN : 0), deadline);
        if (rc == 0)
            return ZK_ETIMEDOUT;
        if (rc < 0)
            return rc;
        if (rc & ZMQ_POLLIN) {
            rc = s_take (self, out, deadline);
            if (rc)
                return rc;
        }
    }
}

//  A dealer prints the replies that are already there.
static int
s_drain_replies (zk_cat_t *self, FILE *out)
{
    uint64_t want = (uint64_t) self->config.count;
    while (want == 0 || self->stats.received < want) {
        zmq_pollitem_t item = {self->handle, 0, ZMQ_POLLIN, 0};
        if (zmq_poll (&item, 1, 0) <= 0)
            return 0;
        int rc = s_take (self, out, -1);
        if (rc)
            return rc;
    }
    return 0;
}

/*  Send every input message (push, pub, pair, dealer), all within the
    deadline *deadline_p; time spent waiting for input moves the deadline,
    so only waiting for peers counts. 0, ZK_ETIMEDOUT (reported), ZK_EINTR
    (stopped), or another ZK_E....                                       */
static int
s_send_input (zk_cat_t *self, int64_t *deadline_p, int64_t timeout_ms, FILE *out)
{
    int type = self->settings.type;
    uint64_t limit = self->config.count && (type == ZMQ_PUSH || type == ZMQ_PUB)
                         ? (uint64_t) self->config.count
                         : UINT64_MAX;
    while (self->stats.read < limit) {
        int64_t reading = zk_now_ms ();
        zmsg_t *msg;
        int rc = s_next_message (self, &msg);
        if (*deadline_p >= 0)
            *deadline_p += zk_now_ms () - reading;
        if (rc || !msg)
            return rc;
        rc = s_send (self, &msg, *deadline_p, out);
        if (rc == 0 && type == ZMQ_DEALER)
            rc = s_drain_replies (self, out);
        if (msg)
            s_send_failed (self, rc, timeout_ms);
        zmsg_destroy (&msg);
        if (rc)
            return rc;
    }
    return 0;
}

//  pub --wait-subscribers N: read subscriptions on the xpub until N came.
static int
s_wait_subscribers (zk_cat_t *self, int64_t deadline)
{
    int want = self->config.wait_subscribers, seen = 0;
    while (seen < want) {
        int rc = s_wait (self, ZMQ_POLLIN, deadline);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            char why[128];
            snprintf (why, sizeof why, "only %d of %d subscription(s) arrived within %g s", seen,
                      want, s_seconds (self->settings.send_timeout_ms));
            s_report_unsent (self, 0, why);
            return ZK_ETIMEDOUT;
        }
        zmsg_t *msg;
        rc = s_recv (self, &msg);
        if (rc)
            return rc;
        zframe_t *frame = msg ? zmsg_first (msg) : NULL;
        if (frame && zframe_size (frame) > 0 && zframe_data (frame)[0] == 1)
            seen++;
        zmsg_destroy (&msg);
    }
    zk_info ("%d subscription(s) arrived, sending", seen);
    return 0;
}

/*  The end of a run: hand over what was sent (for at most linger_ms), say
    what was not delivered, and settle the result: an interrupt is fine
    unless a message read was not sent; error replies make ZK_ECOMMAND
    when nothing worse happened.                                         */
static int
s_hand_over (zk_cat_t *self, int rc, int64_t linger_ms, int64_t timeout_ms)
{
    self->stats.delivered = s_finish (self, self->stats.sent ? linger_ms : 0);
    if (!self->stats.delivered)
        zk_error ("%" PRIu64 " message(s) sent but not all delivered within %g s (the rest "
                  "were dropped)",
                  self->stats.sent, s_seconds (timeout_ms));
    //  Interrupted: fine, unless what was read did not get out.
    if (rc == ZK_EINTR)
        rc = self->stats.unsent ? ZK_ETIMEDOUT : 0;
    if (rc == 0 && !self->stats.delivered)
        rc = ZK_ETIMEDOUT;
    if (rc == 0 && self->stats.error_replies)
        rc = ZK_ECOMMAND;
    return rc;
}

//  push, pub, pair: send the input; pair then receives count messages.
static int
s_run_sender (zk_cat_t *self, FILE *out)
{
    int64_t timeout_ms = self->settings.send_timeout_ms;
    int64_t deadline = timeout_ms < 0 ? -1 : zk_now_ms () + timeout_ms;
    int rc = 0;
    if (self->config.wait_subscribers)
        rc = s_wait_subscribers (self, deadline);
    if (rc == 0)
        rc = s_send_input (self, &deadline, timeout_ms, out);
    int64_t linger_ms = deadline < 0 ? INT_MAX : deadline - zk_now_ms ();
    if (linger_ms < S_MIN_LINGER_MS)
        linger_ms = S_MIN_LINGER_MS;
    if (rc == 0 && self->settings.type == ZMQ_PAIR && self->config.count) {
        int64_t timeout = self->settings.timeout_ms;
        rc = s_receive (self, out, (uint64_t) self->config.count,
                        timeout < 0 ? -1 : zk_now_ms () + timeout, timeout, "message(s)");
    }
    return s_hand_over (self, rc, linger_ms, timeout_ms);
}

/*  req: one request at a time through the reliable client, which
    retries and fails over. An error reply is printed and counted, and the
    next request goes on; a request without a reply ends the run.       */
static int
s_run_requester (zk_cat_t *self, FILE *out)
{
    uint64_t limit = self->config.count ? (uint64_t) self->config.count : UINT64_MAX;
    int rc = 0;
    while (rc == 0 && self->stats.received < limit) {
        zmsg_t *msg, *reply;
        rc = s_next_message (self, &msg);
        if (rc || !msg)
            break;
        self->stats.sent++;
        rc = zk_caller_call (self->caller, &msg, &reply);
        if (reply) {
            int shown = s_show (self, reply, out);
            zmsg_destroy (&reply);
            rc = shown ? shown : rc == ZK_ECOMMAND ? 0 : rc;
        }
        else if (rc == ZK_ETIMEDOUT || rc == ZK_EINVAL) {
            zk_error ("message %" PRIu64 ": %s", self->stats.sent,
                      zk_caller_last_error (self->caller));
            if (rc == ZK_EINVAL)
                rc = ZK_EPROTO;  //  the input, not the command line
        }
    }
    return s_hand_over (self, rc, 0, self->settings.timeout_ms);
}

//  dealer: send everything (pipelined), then collect the replies.
static int
s_run_dealer (zk_cat_t *self, FILE *out)
{
    int64_t timeout_ms = self->settings.timeout_ms;
    int64_t deadline = timeout_ms < 0 ? -1 : zk_now_ms () + timeout_ms;
    int rc = s_send_input (self, &deadline, timeout_ms, out);
    if (rc == 0) {
        uint64_t want = self->config.count ? (uint64_t) self->config.count : self->stats.sent;
        if (self->stats.received < want)
            rc = s_receive (self, out, want, deadline, timeout_ms, "reply(ies)");
    }
    return s_hand_over (self, rc, 0, timeout_ms);
}

//  --------------------------------------------------------------------------
//  Queues

/*  Put every input message, pipelined (the client keeps up to its window
    awaiting confirms), and wait for the confirms. The first failure stops
    the reading; what was read and not confirmed, and what the input still
    holds, is counted and reported as not confirmed.                     */
static int
s_queue_put (zk_cat_t *self)
{
    zk_client_t *client = self->client;
    zk_client_stats_t stats;
    uint64_t in_hand = 0;
    int rc = 0;
    while (true) {
        zmsg_t *msg;
        rc = s_next_message (self, &msg);
        if (rc || !msg)
            break;
        size_t frames = zmsg_size (msg);
        rc = zk_client_put (client, NULL, &msg, NULL);
        if (rc == ZK_EINVAL) {
            zk_error ("message %" PRIu64 " has %zu frames: a queue message has 1 to %d",
                      self->stats.read, frames, ZK_CLIENT_MAX_FRAMES);
            in_hand = 1;
            break;
        }
        if (rc) {
            in_hand = 1;
            break;
        }
        self->stats.sent++;
        zk_client_process (client);
        zk_client_stats (client, &stats);
        if (stats.failed)
            break;
    }
    //  Whatever stopped us, let what is on its way be confirmed (each
    //  request ends by its own deadline; an interrupt ends the wait).
    if (rc != ZK_EINTR) {
        int flushed = zk_client_flush (client, -1);
        if (flushed == ZK_EINTR)
            rc = ZK_EINTR;
    }
    zk_client_stats (client, &stats);
    uint64_t unconfirmed = stats.puts - stats.confirmed + in_hand;
    bool complete = true;
    if (unconfirmed || rc)
        unconfirmed += s_count_rest (self, UINT64_MAX, &complete);
    self->stats.unsent = unconfirmed;
    self->stats.delivered = unconfirmed == 0;
    if (unconfirmed == 0)
        return rc == ZK_EINTR ? 0 : rc;
    char why[300];
    if (rc == ZK_EINTR)
        snprintf (why, sizeof why, "interrupted");
    else if (stats.connects == 0)
        snprintf (why, sizeof why, "no connection to the queue server within %g s",
                  s_seconds (self->settings.send_timeout_ms));
    else
        snprintf (why, sizeof why, "%s", zk_client_last_error (client));
    zk_error ("%s%" PRIu64 " message(s) not confirmed durable (%" PRIu64 " confirmed): %s",
              complete ? "" : "at least ", unconfirmed, stats.confirmed, why);
    return ZK_ETIMEDOUT;
}

/*  Take count messages: print each, flush, and only then ack it. The GET
    window never lets the server hand us more than we still want: before
    an ack lowers what we hold, the window is lowered first.             */
static int
s_queue_take (zk_cat_t *self, FILE *out)
{
    zk_client_t *client = self->client;
    int64_t timeout_ms = self->settings.timeout_ms;
    int64_t deadline = timeout_ms < 0 ? -1 : zk_now_ms () + timeout_ms;
    uint64_t want = (uint64_t) self->config.count;
    int window = want < S_QUEUE_WINDOW ? (int) want : S_QUEUE_WINDOW;
    const char *failed = NULL;  //  the step that failed, for the log
    int rc = zk_client_get (client, NULL, window);
    if (rc)
        failed = "GET";
    uint64_t done = 0;
    while (rc == 0 && done < want) {
        zk_delivery_t *delivery;
        int64_t left = deadline < 0 ? -1 : deadline - zk_now_ms ();
        if (deadline >= 0 && left < 0)
            left = 0;
        rc = zk_client_recv (client, left > INT_MAX ? INT_MAX : (int) left, &delivery);
        if (rc == ZK_ETIMEDOUT) {
            zk_error ("received %" PRIu64 " of %" PRIu64 " message(s) within %g s", done, want,
                      s_seconds (timeout_ms));
            return rc;
        }
        if (rc)
            break;
        self->stats.received++;
        if (out && (zk_cat_print (&self->output, delivery->body, out) || fflush (out))) {
            zk_error ("cannot write output: %s", strerror (errno));
            zk_client_nack (client, delivery, false, "zkit-cat could not write it");
            zk_delivery_destroy (&delivery);
            return ZK_EIO;
        }
        uint64_t still = want - done - 1;
        if ((uint64_t) window > still) {
            window = (int) still;
            rc = zk_client_get (client, NULL, window);
            failed = rc ? "GET" : NULL;
        }
        if (rc == 0) {
            rc = zk_client_ack (client, delivery, NULL);
            failed = rc ? "ACK" : NULL;
        }
        if (rc == ZK_ENOENT) {
            char id[ZK_ID_TEXT_SIZE];
            zk_id_format (delivery->id, id);
            zk_warn ("message %s was printed, but its lease had ended: the queue will deliver "
                     "it again",
                     id);
            rc = 0;
        }
        zk_delivery_destroy (&delivery);
        done++;
    }
    if (rc == ZK_EINTR)
        return 0;
    if (rc)
        zk_error ("queue %s: %s failed after %" PRIu64 " of %" PRIu64 " message(s): %s (%s)",
                  zk_client_queue (client), failed ? failed : "receive", done, want,
                  zk_strerror (rc), zk_client_last_error (client));
    return rc;
}

//  Print size bytes of data, escaping control bytes (\xHH), so one entry
//  stays one line.
static void
s_print_clean_bytes (const void *data, size_t size, FILE *out)
{
    const unsigned char *bytes = data;
    for (size_t index = 0; index < size; index++)
        if (bytes[index] < 32 || bytes[index] == 127)
            fprintf (out, "\\x%02x", bytes[index]);
        else
            fputc (bytes[index], out);
}

static void
s_print_clean (const char *text, FILE *out)
{
    s_print_clean_bytes (text, strlen (text), out);
}

//  --list: one line per message, "ID ATTEMPTS REASON".
static int
s_queue_list (zk_cat_t *self, FILE *out)
{
    size_t max = self->config.count ? (size_t) self->config.count : S_QUEUE_LIST_MAX;
    zmsg_t *entries;
    int rc = zk_client_list (self->client, NULL, max, &entries);
    if (rc) {
        zk_error ("cannot list %s: %s (%s)", zk_client_queue (self->client), zk_strerror (rc),
                  zk_client_last_error (self->client));
        return ZK_EIO;
    }
    for (zframe_t *frame = zmsg_first (entries); frame; frame = zmsg_next (entries)) {
        zk_client_entry_t entry;
        if (zk_client_entry (frame, &entry)) {
            self->stats.refused++;
            zk_warn_limited ("a malformed LIST line from the server: skipped");
            continue;
        }
        self->stats.received++;
        //  A dead letter's attempts are those it had in NAME: when the
        //  server's LIST does not carry them, NAME's STATUS does.
        uint8_t id[ZK_ID_SIZE];
        zk_client_status_t status;
        if (entry.attempts == 0 && self->settings.origin[0] && zk_id_parse (entry.id, id) == 0
            && zk_client_status (self->client, self->settings.origin, id, &status) == 0) {
            if (streq (status.state, "dead"))
                entry.attempts = status.attempt;
            zmsg_destroy (&status.detail);
        }
        if (out) {
            fprintf (out, "%s %" PRIu64 " ", entry.id, entry.attempts);
            s_print_clean (entry.reason, out);
            fputc ('\n', out);
        }
    }
    zmsg_destroy (&entries);
    if (out && fflush (out)) {
        zk_error ("cannot write output: %s", strerror (errno));
        return ZK_EIO;
    }
    return 0;
}

//  --requeue: move NAME.dead's messages (or --id's) back into NAME.
static int
s_queue_requeue (zk_cat_t *self)
{
    const char *from = zk_client_queue (self->client);
    const char *to = self->settings.origin;
    //  One MOVE moves at most ZK_QUEUE_MOVE_MAX; a full batch means "ask
    //  again". Bounded: a backlog of a billion is 100,000 rounds.
    uint64_t moved = 0, batch = 0;
    for (int round = 0; round < 100000; round++) {
        int rc = zk_client_move (self->client, from, to,
                                 self->settings.has_id ? self->settings.id : NULL, &batch);
        if (rc) {
            zk_error ("cannot move %s to %s: %s (%s)", from, to, zk_strerror (rc),
                      zk_client_last_error (self->client));
            return ZK_EIO;
        }
        moved += batch;
        if (self->settings.has_id || batch < ZK_QUEUE_MOVE_MAX)
            break;
    }
    if (self->settings.has_id && moved == 0) {
        zk_error ("message %s is not waiting in %s", self->config.id, from);
        return ZK_ENOENT;
    }
    zk_notice ("moved %" PRIu64 " message(s) from %s to %s", moved, from, to);
    return 0;
}

//  --------------------------------------------------------------------------
//  Async jobs: --submit, --status, --wait

#define S_JOB_REQUEST_MS  5000  //  --wait: one TRACE/STATUS at most (then asked again)
#define S_JOB_POLL_MIN_MS 20    //  --wait: first pause between polls, doubling
#define S_JOB_POLL_MAX_MS 500   //  up to this

//  --submit: all of the input (or the one --data) is the job's body; its
//  id is printed once the server confirmed it durable.
static int
s_queue_submit (zk_cat_t *self, FILE *out)
{
    zk_client_t *client = self->client;
    zmsg_t *msg;
    int rc = s_next_message (self, &msg);
    if (rc == ZK_EINTR)
        return 0;
    if (rc)
        return rc;
    if (!msg)
        msg = zk_cat_split ("", 0, NULL, 0);  //  no input at all: an empty job
    size_t frames = zmsg_size (msg);
    uint8_t id[ZK_ID_SIZE];
    rc = zk_client_put (client, NULL, &msg, id);
    if (rc == ZK_EINVAL) {
        zk_error ("the job has %zu frames: a queue message has 1 to %d", frames,
                  ZK_CLIENT_MAX_FRAMES);
        return ZK_ETOOBIG;
    }
    self->stats.sent++;
    if (rc == 0)
        rc = zk_client_flush (client, -1);
    if (rc == ZK_EINTR)
        return 0;
    if (rc) {
        zk_client_stats_t stats;
        zk_client_stats (client, &stats);
        self->stats.unsent = 1;
        if (stats.connects == 0)
            zk_error ("job not confirmed durable: no connection to the queue server within %g s",
                      s_seconds (self->settings.send_timeout_ms));
        else
            zk_error ("job not confirmed durable: %s", zk_client_last_error (client));
        return ZK_ETIMEDOUT;
    }
    self->stats.delivered = true;
    char text[ZK_ID_TEXT_SIZE];
    zk_id_format (id, text);
    if (out && (fprintf (out, "%s\n", text) < 0 || fflush (out))) {
        zk_error ("cannot write output: %s", strerror (errno));
        return ZK_EIO;
    }
    return 0;
}

//  Microseconds since the epoch as ISO-8601 UTC, "2026-11-22T02:31:05.123456Z";
//  "-" for 0 (not yet).
static void
s_iso_time (int64_t us, char *out, size_t size)
{
    if (us <= 0) {
        snprintf (out, size, "-");
        return;
    }
    time_t seconds = (time_t) (us / 1000000);
    struct tm tm;
    if (!gmtime_r (&seconds, &tm)) {
        snprintf (out, size, "%" PRId64, us);
        return;
    }
    char date[40];
    strftime (date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (out, size, "%s.%06dZ", date, (int) (us % 1000000));
}

//  The same in JSON: a string, or null for 0.
static bool
s_json_time (const char *name, int64_t us, FILE *out)
{
    char text[64];
    s_iso_time (us, text, sizeof text);
    if (us <= 0)
        return fprintf (out, ",\"%s\":null", name) > 0;
    return fprintf (out, ",\"%s\":\"%s\"", name, text) > 0;
}

//  A result worth printing on its "result:" line: one frame of UTF-8 text
//  without control bytes (a final newline aside).
static bool
s_is_text_line (zmsg_t *detail)
{
    zframe_t *frame = zmsg_first (detail);
    if (zmsg_size (detail) != 1)
        return zmsg_size (detail) == 0;
    const uint8_t *data = zframe_data (frame);
    size_t size = zframe_size (frame);
    if (size && data[size - 1] == '\n')
        size--;
    if (!zk_utf8_valid (data, size))
        return false;
    for (size_t index = 0; index < size; index++)
        if (data[index] < 32 || data[index] == 127)
            return false;
    return true;
}

/*  The text form of --status:
        STATE attempt=N since=TIME queue=QUEUE
        path: QUEUE STATE attempts=N consumer=C accepted=TIME started=TIME finished=TIME
              (one line per step)
        result: TEXT                  done, a result that is one line of text
        result: N bytes follow        done, any other result: its bytes raw, last
        reason: TEXT                  dead (control bytes as \xHH)                */
static bool
s_print_job_text (const zk_client_job_t *job, const zk_cat_output_t *output, FILE *out)
{
    char since[64];
    s_iso_time (job->since_us, since, sizeof since);
    fprintf (out, "%s attempt=%" PRIu64 " since=%s queue=%s\n", job->state, job->attempt, since,
             job->queue);
    for (size_t index = 0; index < job->path.count; index++) {
        const zk_client_step_t *step = &job->path.steps[index];
        char accepted[64], started[64], finished[64];
        s_iso_time (step->accepted_us, accepted, sizeof accepted);
        s_iso_time (step->started_us, started, sizeof started);
        s_iso_time (step->finished_us, finished, sizeof finished);
        fprintf (out,
                 "%s%s %s attempts=%" PRIu64 " consumer=%s accepted=%s started=%s finished=%s\n",
                 index ? "      " : "path: ", step->queue, step->state, step->attempts,
                 step->consumer[0] ? step->consumer : "-", accepted, started, finished);
    }
    zmsg_t *detail = job->detail;
    if (streq (job->state, "dead")) {
        fputs ("reason: ", out);
        zframe_t *reason = detail ? zmsg_first (detail) : NULL;
        if (reason)
            s_print_clean_bytes (zframe_data (reason), zframe_size (reason), out);
        fputc ('\n', out);
    }
    else if (streq (job->state, "done") && (!detail || s_is_text_line (detail))) {
        zframe_t *result = detail ? zmsg_first (detail) : NULL;
        size_t size = result ? zframe_size (result) : 0;
        if (size && zframe_data (result)[size - 1] == '\n')
            size--;
        fputs ("result: ", out);
        s_write (result ? zframe_data (result) : NULL, size, out);
        fputc ('\n', out);
    }
    else if (streq (job->state, "done")) {
        fprintf (out, "result: %zu bytes follow\n", zmsg_content_size (detail));
        return zk_cat_print (output, detail, out) == 0;
    }
    return !ferror (out);
}

//  The JSON form of --status: one object on one line (docs/protocol.md 7.12).
static bool
s_print_job_json (const zk_client_job_t *job, const char *id, FILE *out)
{
    char since[64];
    s_iso_time (job->since_us, since, sizeof since);
    bool ok = fprintf (out, "{\"id\":\"%s\",\"state\":", id) > 0
              && zk_json_print_string (job->state, strlen (job->state), out) == 0
              && fputs (",\"queue\":", out) != EOF
              && zk_json_print_string (job->queue, strlen (job->queue), out) == 0
              && fprintf (out, ",\"attempt\":%" PRIu64, job->attempt) > 0
              && s_json_time ("since", job->since_us, out);
    zmsg_t *detail = job->detail;
    bool done = streq (job->state, "done"), dead = streq (job->state, "dead");
    if (ok && (done || dead)) {
        ok = fputs (done ? ",\"result\":" : ",\"reason\":", out) != EOF;
        size_t frames = detail ? zmsg_size (detail) : 0;
        if (frames == 0)
            ok = ok && fputs ("\"\"", out) != EOF;
        else if (frames == 1)
            ok = ok && s_print_json_frame (zmsg_first (detail), out);
        else {
            ok = ok && fputc ('[', out) != EOF;
            for (zframe_t *frame = zmsg_first (detail); ok && frame; frame = zmsg_next (detail))
                ok = (frame == zmsg_first (detail) || fputc (',', out) != EOF)
                     && s_print_json_frame (frame, out);
            ok = ok && fputc (']', out) != EOF;
        }
    }
    ok = ok && fputs (",\"path\":[", out) != EOF;
    for (size_t index = 0; ok && index < job->path.count; index++) {
        const zk_client_step_t *step = &job->path.steps[index];
        ok = fprintf (out, "%s{\"queue\":", index ? "," : "") > 0
             && zk_json_print_string (step->queue, strlen (step->queue), out) == 0
             && fputs (",\"state\":", out) != EOF
             && zk_json_print_string (step->state, strlen (step->state), out) == 0
             && fprintf (out, ",\"attempts\":%" PRIu64, step->attempts) > 0
             && s_json_time ("accepted", step->accepted_us, out)
             && s_json_time ("started", step->started_us, out)
             && s_json_time ("finished", step->finished_us, out)
             && fputs (",\"consumer\":", out) != EOF;
        if (ok && step->consumer[0])
            ok = zk_json_print_string (step->consumer, strlen (step->consumer), out) == 0;
        else if (ok)
            ok = fputs ("null", out) != EOF;
        ok = ok && fputc ('}', out) != EOF;
    }
    return ok && fputs ("]}\n", out) != EOF;
}

//  A job's state (--status, --wait), or the error said (an unknown id is
//  ZK_ENOENT; the others only when not quiet).
static int
s_ask_job (zk_cat_t *self, zk_client_job_t *job, bool quiet)
{
    const char *id = self->config.status ? self->config.status : self->config.wait;
    const char *queue = zk_client_queue (self->client);
    int rc = zk_client_job (self->client, NULL, self->settings.id, job);
    if (rc == ZK_ENOENT)
        zk_error ("job %s unknown in %s", id, queue);
    else if (rc && rc != ZK_EINTR && !quiet)
        zk_error ("cannot get the state of job %s in %s: %s (%s)", id, queue, zk_strerror (rc),
                  zk_client_last_error (self->client));
    return rc;
}

//  --status ID: the job's state, as text or JSON.
static int
s_queue_status (zk_cat_t *self, FILE *out)
{
    zk_client_job_t job;
    int rc = s_ask_job (self, &job, false);
    if (rc == ZK_EINTR)
        return 0;
    if (rc)
        return rc == ZK_ETIMEDOUT ? ZK_ETIMEDOUT : ZK_EIO;
    self->stats.received++;
    bool ok = true;
    if (out) {
        char id[ZK_ID_TEXT_SIZE];
        zk_id_format (self->settings.id, id);
        zk_cat_output_t raw = {.format = ZK_CAT_RAW, .delimiter = -1};
        ok = (self->settings.format == ZK_CAT_JSON ? s_print_job_json (&job, id, out)
                                                   : s_print_job_text (&job, &raw, out))
             && fflush (out) == 0;
    }
    zmsg_destroy (&job.detail);
    if (!ok) {
        zk_error ("cannot write output: %s", strerror (errno));
        return ZK_EIO;
    }
    return 0;
}

/*  --wait ID: ask for the job's state (backing off from 20 ms to 500 ms
    between asks) until it is done (print its result as it is: 0), dead
    (its reason on stderr: ZK_ECOMMAND) or the timeout passed
    (ZK_ETIMEDOUT). A server that does not answer for a while is asked
    again (the job is durable: it goes on without us).                   */
static int
s_queue_wait (zk_cat_t *self, FILE *out)
{
    int64_t timeout_ms = self->settings.timeout_ms;
    int64_t deadline = timeout_ms < 0 ? -1 : zk_now_ms () + timeout_ms;
    const char *id = self->config.wait;
    const char *queue = zk_client_queue (self->client);
    int64_t pause = S_JOB_POLL_MIN_MS;
    char state[16] = "unknown";
    while (true) {
        int64_t left = deadline < 0 ? S_JOB_REQUEST_MS : deadline - zk_now_ms ();
        zk_client_set_timeout (self->client, (int) (left < 1                  ? 1
                                                    : left > S_JOB_REQUEST_MS ? S_JOB_REQUEST_MS
                                                                              : left));
        zk_client_job_t job;
        int rc = s_ask_job (self, &job, true);
        if (rc == ZK_ENOENT)
            return rc;
        if (rc == 0) {
            snprintf (state, sizeof state, "%s", job.state);
            if (streq (job.state, "done")) {
                zk_cat_output_t raw = {.format = ZK_CAT_RAW, .delimiter = -1};
                raw.frame_sep = self->settings.frame_sep_size ? self->settings.frame_sep : NULL;
                raw.frame_sep_size = self->settings.frame_sep_size;
                bool ok = !out || !job.detail
                          || (zk_cat_print (&raw, job.detail, out) == 0 && fflush (out) == 0);
                zmsg_destroy (&job.detail);
                self->stats.received++;
                if (!ok) {
                    zk_error ("cannot write output: %s", strerror (errno));
                    return ZK_EIO;
                }
                return 0;
            }
            if (streq (job.state, "dead")) {
                zframe_t *reason = job.detail ? zmsg_first (job.detail) : NULL;
                char text[1024] = "";
                if (reason) {
                    FILE *stream = fmemopen (text, sizeof text - 1, "w");
                    if (stream) {
                        s_print_clean_bytes (zframe_data (reason), zframe_size (reason), stream);
                        fclose (stream);
                    }
                }
                zk_error ("job %s is dead in %s: %s", id, job.queue, text);
                zmsg_destroy (&job.detail);
                return ZK_ECOMMAND;
            }
            zmsg_destroy (&job.detail);
        }
        else if (rc == ZK_ETIMEDOUT || rc == ZK_EIO)
            zk_warn_limited ("no answer about job %s from the queue server (%s): asking again", id,
                             zk_client_last_error (self->client));
        else if (rc != ZK_EINTR) {
            zk_error ("cannot get the state of job %s in %s: %s (%s)", id, queue, zk_strerror (rc),
                      zk_client_last_error (self->client));
            return ZK_EIO;
        }
        //  Pause, in slices so that an interrupt is seen at once.
        int64_t until = zk_now_ms () + pause;
        if (deadline >= 0 && until > deadline)
            until = deadline;
        while (!zsys_interrupted && zk_now_ms () < until) {
            int64_t slice = until - zk_now_ms ();
            zmq_poll (NULL, 0, slice > S_SLICE_MS ? S_SLICE_MS : slice < 0 ? 0 : (long) slice);
        }
        if (zsys_interrupted) {
            zk_error ("interrupted before job %s ended (%s in %s)", id, state, queue);
            return ZK_ETIMEDOUT;
        }
        if (deadline >= 0 && zk_now_ms () >= deadline) {
            zk_error ("job %s did not end within %g s (%s in %s)", id, s_seconds (timeout_ms),
                      state, queue);
            return ZK_ETIMEDOUT;
        }
        pause = pause * 2 > S_JOB_POLL_MAX_MS ? S_JOB_POLL_MAX_MS : pause * 2;
    }
}

static int
s_run_queue (zk_cat_t *self, FILE *out)
{
    switch (self->settings.queue_mode) {
        case S_QUEUE_TAKE: return s_queue_take (self, out);
        case S_QUEUE_LIST: return s_queue_list (self, out);
        case S_QUEUE_REQUEUE: return s_queue_requeue (self);
        case S_QUEUE_SUBMIT: return s_queue_submit (self, out);
        case S_QUEUE_STATUS: return s_queue_status (self, out);
        case S_QUEUE_WAIT: return s_queue_wait (self, out);
        default: return s_queue_put (self);
    }
}

int
zk_cat_run (zk_cat_t *self, FILE *in, FILE *out)
{
    assert (self);
    assert (!self->ran);
    self->ran = true;
    self->in = in;
    if (in && !self->config.data.count && s_sends (&self->settings)) {
        self->reader = zk_cat_reader_new (in, self->settings.delimiter, self->settings.max_size);
        if (!self->reader)
            return ZK_ENOMEM;
    }
    switch (self->settings.type) {
        case ZMQ_PUSH:
        case ZMQ_PUB:
        case ZMQ_PAIR: return s_run_sender (self, out);
        case ZMQ_REQ: return s_run_requester (self, out);
        case ZMQ_DEALER: return s_run_dealer (self, out);
        case ZK_SPEC_QUEUE: return s_run_queue (self, out);
        default: {
            int64_t timeout = self->settings.timeout_ms;
            int rc = s_receive (self, out, (uint64_t) self->config.count,
                                timeout < 0 ? -1 : zk_now_ms () + timeout, timeout, "message(s)");
            int64_t linger = self->settings.type == ZMQ_REP ? S_REP_LINGER_MS : 0;
            return s_hand_over (self, rc, linger, linger);
        }
    }
}

static int
s_one_shot (const zk_cat_config_t *config, FILE *in, FILE *out)
{
    if (zk_cat_validate (config, NULL, 0))
        return ZK_EINVAL;
    zk_cat_t *self = zk_cat_new (config);
    if (!self)
        return ZK_EENDPOINT;
    int rc = zk_cat_run (self, in, out);
    zk_cat_destroy (&self);
    return rc;
}

int
zk_cat_send (const zk_cat_config_t *config, FILE *in)
{
    return s_one_shot (config, in, NULL);
}

int
zk_cat_receive (const zk_cat_config_t *config, FILE *out)
{
    return s_one_shot (config, NULL, out);
}
