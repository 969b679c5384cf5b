/*  zk_bench — the work behind zkit-bench (see include/zk_bench.h).

    A run is a handful of tasks — sender, receiver(s), publisher,
    subscribers, client, server, reference device — each a role. A role is
    one function; it runs in a child process (this program spawned again
    with "--role NAME key=value ...", its result one line on stdout) or,
    with `inproc`, in a thread (its result in memory). Roles that bind
    announce their endpoints in a ready file, as the zkit daemons do, and
    the orchestrator waits for it: no fixed sleeps.

    Honest figures: the receiver times from its first message to its last
    and checks a sequence number in every message (gaps are lost messages,
    a smaller number is disorder); a fan-out publisher waits until every
    subscriber is subscribed and never runs more than `window` messages
    ahead of the slowest one (credit acks on a back channel), so no queue
    reaches its high-water mark and a subscriber that keeps up loses
    nothing; every socket and device gets the same high-water mark.     */

#include "zk_classes.h"
#include "../include/zk_bench.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define SPEC_MAX           512  //  a socket spec: type, direction, endpoint
#define ENDPOINT_MAX       256  //  an endpoint
#define DIR_MAX            128  //  a run's directory (ipc paths live in it)
#define PATH_MAX_BENCH     512
#define ERROR_MAX          256
#define LATENCIES          6  //  min p50 p90 p99 p99.9 max
#define ENVELOPE_FRAMES    8  //  most frames a server echoes
#define STOP_WAIT_MS       5000
#define READY_WAIT_MS      10000
#define DEFAULT_HWM        1000
#define DEFAULT_REPEAT     3
#define DEFAULT_WARMUP     100
#define DEFAULT_TIMEOUT    10.0
#define RUN_BYTES_TARGET   (32 * 1024 * 1024)
#define QUEUE_COUNT        50000  //  messages of a queue run, by default at most
#define QUEUE_BYTES_TARGET (64 * 1024 * 1024)
#define QUEUE_WINDOW       2000  //  PUTs in flight, GET window

static const double s_percentiles[LATENCIES] = {0, 50, 90, 99, 99.9, 100};
static const char *s_latency_names[LATENCIES] = {"min", "p50", "p90", "p99", "p99.9", "max"};

//  ---------------------------------------------------------------- channels

typedef enum { S_PIPE, S_FANOUT, S_RPC, S_QUEUE } s_kind_t;
#define KINDS 4

typedef enum {
    D_NONE,
    D_ZKIT_PROXY,        //  the zkit-proxy binary (or zk_proxy in-process)
    D_ZKIT_FORWARDER,    //  zkit-forwarder / zk_forwarder
    D_ZKIT_WORKER,       //  zkit-worker --lines -- cat / zk_worker
    D_ZKIT_WORKER_EXEC,  //  zkit-worker -- cat: one process per message
    D_ZMQ_PROXY,         //  libzmq's zmq_proxy on the same sockets
    D_ZPROXY,            //  czmq's zproxy actor on the same sockets
    D_ZKIT_QUEUE,        //  zkit-queue --fsync POLICY / zk_queue
    D_ZKIT_LB,           //  zkit-proxy --lb router@ router@ / zk_proxy with lb
} s_device_kind_t;

typedef struct {
    const char *name;
    s_kind_t kind;
    s_device_kind_t device;
    bool envelope;         //  a fresh envelope per message, decoded at the other end
    bool text;             //  payload without newlines (zkit-worker's lines)
    int count_divisor;     //  slower channels: fewer messages by default
    const char *baseline;  //  NULL: this channel is a baseline
    const char *what;
    const char *fsync;  //  queue: zkit-queue's --fsync policy
    bool raw_client;    //  queue: the minimal ZKQ/1 client instead of zk_client
    bool caller;        //  rpc: the reliable client (zk_caller) instead of REQ
} s_channel_t;

/*  Every channel, in report order. A queue channel's count_divisor keeps
    the slow policy short; its -raw twin measures the server alone, with
    the minimal client of s_raw_producer. The --lb channels answer with a
    minimal ZKW/1 echo worker (s_role_lbserver), so they measure the
    proxy, not a command.                                               */
static const s_channel_t s_channels[] = {
    {"push", S_PIPE, D_NONE, false, false, 1, NULL, "direct PUSH/PULL (baseline)"},
    {"proxy", S_PIPE, D_ZKIT_PROXY, false, false, 1, "push", "through zkit-proxy pull@ push@"},
    {"zmq-proxy", S_PIPE, D_ZMQ_PROXY, false, false, 1, "push", "through libzmq's zmq_proxy"},
    {"zproxy", S_PIPE, D_ZPROXY, false, false, 1, "push", "through czmq's zproxy"},
    {"envelope", S_PIPE, D_NONE, true, false, 1, "push",
     "direct PUSH/PULL, a fresh envelope per message, decoded"},
    {"two-frames", S_PIPE, D_NONE, false, false, 1, "push",
     "direct PUSH/PULL, a plain 60-byte frame in front: the envelope's frame without its work"},
    {"proxy-envelope", S_PIPE, D_ZKIT_PROXY, true, false, 1, "push",
     "through zkit-proxy with the envelope"},
    {"worker", S_PIPE, D_ZKIT_WORKER, false, true, 20, "push",
     "through zkit-worker --lines -- cat (pull@ to push@)"},
    {"pub", S_FANOUT, D_NONE, false, false, 1, NULL, "direct PUB/SUB to K subscribers (baseline)"},
    {"forwarder", S_FANOUT, D_ZKIT_FORWARDER, false, false, 1, "pub",
     "through zkit-forwarder xsub@ xpub@"},
    {"zmq-forwarder", S_FANOUT, D_ZMQ_PROXY, false, false, 1, "pub",
     "through libzmq's zmq_proxy XSUB/XPUB"},
    {"reqrep", S_RPC, D_NONE, false, false, 1, NULL, "direct REQ/REP round trips (baseline)"},
    {"reqrep-proxy", S_RPC, D_ZKIT_PROXY, false, false, 1, "reqrep",
     "through zkit-proxy router@ dealer@"},
    {"reqrep-zmq-proxy", S_RPC, D_ZMQ_PROXY, false, false, 1, "reqrep",
     "through libzmq's zmq_proxy ROUTER/DEALER"},
    {"reqrep-zproxy", S_RPC, D_ZPROXY, false, false, 1, "reqrep",
     "through czmq's zproxy ROUTER/DEALER"},
    {"reqrep-envelope", S_RPC, D_NONE, false, false, 1, "reqrep",
     "direct, the envelope on requests and replies"},
    {"reqrep-reliable", S_RPC, D_ZKIT_PROXY, false, false, 1, "reqrep",
     "the reliable client (zk_caller: REQID, envelope) through zkit-proxy router@ dealer@", NULL,
     false, true},
    {"reqrep-lb", S_RPC, D_ZKIT_LB, false, false, 1, "reqrep",
     "REQ through zkit-proxy --lb to a ZKW/1 worker"},
    {"reqrep-lb-reliable", S_RPC, D_ZKIT_LB, false, false, 1, "reqrep",
     "the reliable client through zkit-proxy --lb to a ZKW/1 worker", NULL, false, true},
    {"reqrep-worker", S_RPC, D_ZKIT_WORKER, false, true, 1, "reqrep",
     "to zkit-worker --lines -- cat"},
    {"reqrep-worker-exec", S_RPC, D_ZKIT_WORKER_EXEC, false, true, 20, "reqrep",
     "to zkit-worker -- cat (a process per request)"},
    {"queue-batch", S_QUEUE, D_ZKIT_QUEUE, false, false, 1, "push",
     "zk_client to zkit-queue --fsync batch: confirmed puts/s, consumed+acked/s, both at once",
     "batch", false},
    {"queue-always", S_QUEUE, D_ZKIT_QUEUE, false, false, 10, "push",
     "zk_client to zkit-queue --fsync always (an fdatasync per PUT and per ACK)", "always", false},
    {"queue-never", S_QUEUE, D_ZKIT_QUEUE, false, false, 1, "push",
     "zk_client to zkit-queue --fsync never (confirmed once written to the OS)", "never", false},
    {"queue-batch-raw", S_QUEUE, D_ZKIT_QUEUE, false, false, 1, "push",
     "a minimal ZKQ/1 client (bare DEALER) to zkit-queue --fsync batch: the server alone", "batch",
     true},
    {"queue-never-raw", S_QUEUE, D_ZKIT_QUEUE, false, false, 1, "push",
     "a minimal ZKQ/1 client to zkit-queue --fsync never: the server alone", "never", true},
};
#define CHANNELS (sizeof s_channels / sizeof s_channels[0])

static const char *s_default_channels = "push,proxy,pub,forwarder,reqrep,reqrep-proxy";

static const s_channel_t *
s_channel_find (const char *name, size_t length)
{
    for (size_t i = 0; i < CHANNELS; i++)
        if (strlen (s_channels[i].name) == length && !memcmp (s_channels[i].name, name, length))
            return &s_channels[i];
    return NULL;
}

//  "reqrep-envelope" carries the envelope too (its flag is only for pipes).
//  What goes in front of each message: 0 nothing, 1 a fresh envelope
//  (decoded at the other end), 2 a plain 60-byte frame, about an envelope's
//  size (what the second frame alone costs, without encoding or decoding).
static int
s_channel_envelope (const s_channel_t *channel)
{
    if (streq (channel->name, "two-frames"))
        return 2;
    return channel->envelope || streq (channel->name, "reqrep-envelope");
}

void
zk_bench_print_channels (FILE *out)
{
    for (size_t i = 0; i < CHANNELS; i++) {
        const s_channel_t *c = &s_channels[i];
        const char *kind = c->kind == S_PIPE     ? "throughput"
                           : c->kind == S_FANOUT ? "fan-out"
                           : c->kind == S_RPC    ? "latency"
                                                 : "queue";
        fprintf (out, "  %-19s %-10s %s%s%s\n", c->name, kind, c->what, c->baseline ? "; vs " : "",
                 c->baseline ? c->baseline : "");
    }
}

//  ---------------------------------------------------------------- roles

typedef struct {
    char name[16];               //  sender receiver publisher subscriber client server device
                                 //  producer consumer
    char spec[SPEC_MAX];         //  the data socket (device: the frontend)
    char spec2[SPEC_MAX];        //  publisher/subscriber: the ack socket; device: the backend
    char control[SPEC_MAX];      //  device in a thread: "pair@..." it stops on
    char ready[PATH_MAX_BENCH];  //  ready file to write once bound, or ""
    char device[16];             //  device: zmq-proxy or zproxy
    long long count;             //  messages or round trips (recorded)
    long long size;
    int hwm, window, subscribers, id, warmup, skip_every;
    int envelope, text, verbose;
    int cpu;      //  pin to this CPU; -1: anywhere
    int hold_fd;  //  sender: keep the socket open until EOF here; -1: no hold
    int phase;    //  producer, consumer: a queue run's phase (PHASE_...)
    int raw;      //  producer, consumer: the minimal ZKQ/1 client, not zk_client
    double timeout;
} s_role_t;

typedef struct {
    int failed;
    uint64_t sent, received, lost, disorder, bad;
    uint64_t bytes;
    int64_t first_ns, last_ns;
    uint64_t latency[LATENCIES];
    char error[ERROR_MAX];
} s_result_t;

typedef enum { F_STR, F_LL, F_INT, F_DBL, F_U64, F_I64 } s_field_type_t;
typedef struct {
    const char *key;
    s_field_type_t type;
    size_t offset, size;
} s_field_t;

#define ROLE_STR(f)                                                                                \
    {                                                                                              \
#f, F_STR, offsetof(s_role_t, f), sizeof((s_role_t *) 0)->f                                \
    }
#define ROLE_NUM(f, t)                                                                             \
    {                                                                                              \
#f, t, offsetof(s_role_t, f), 0                                                            \
    }
static const s_field_t s_role_fields[] = {
    ROLE_STR (spec),
    ROLE_STR (spec2),
    ROLE_STR (control),
    ROLE_STR (ready),
    ROLE_STR (device),
    ROLE_NUM (count, F_LL),
    ROLE_NUM (size, F_LL),
    ROLE_NUM (hwm, F_INT),
    ROLE_NUM (window, F_INT),
    ROLE_NUM (subscribers, F_INT),
    ROLE_NUM (id, F_INT),
    ROLE_NUM (warmup, F_INT),
    ROLE_NUM (skip_every, F_INT),
    ROLE_NUM (envelope, F_INT),
    ROLE_NUM (text, F_INT),
    ROLE_NUM (verbose, F_INT),
    ROLE_NUM (cpu, F_INT),
    ROLE_NUM (hold_fd, F_INT),
    ROLE_NUM (phase, F_INT),
    ROLE_NUM (raw, F_INT),
    ROLE_NUM (timeout, F_DBL),
};

#define RESULT_NUM(f, t)                                                                           \
    {                                                                                              \
#f, t, offsetof(s_result_t, f), 0                                                          \
    }
#define RESULT_LAT(i)                                                                              \
    {                                                                                              \
        "latency" #i, F_U64, offsetof (s_result_t, latency) + i * sizeof (uint64_t), 0             \
    }
static const s_field_t s_result_fields[] = {
    RESULT_NUM (failed, F_INT),
    RESULT_NUM (sent, F_U64),
    RESULT_NUM (received, F_U64),
    RESULT_NUM (lost, F_U64),
    RESULT_NUM (disorder, F_U64),
    RESULT_NUM (bad, F_U64),
    RESULT_NUM (bytes, F_U64),
    RESULT_NUM (first_ns, F_I64),
    RESULT_NUM (last_ns, F_I64),
    RESULT_LAT (0),
    RESULT_LAT (1),
    RESULT_LAT (2),
    RESULT_LAT (3),
    RESULT_LAT (4),
    RESULT_LAT (5),
};

//  "key=value" of one field of the struct at base into buf.
static void
s_field_format (const s_field_t *field, const void *base, char *buf, size_t size)
{
    const char *at = (const char *) base + field->offset;
    switch (field->type) {
        case F_STR: snprintf (buf, size, "%s=%s", field->key, at); break;
        case F_LL: snprintf (buf, size, "%s=%lld", field->key, *(const long long *) at); break;
        case F_INT: snprintf (buf, size, "%s=%d", field->key, *(const int *) at); break;
        case F_DBL: snprintf (buf, size, "%s=%.17g", field->key, *(const double *) at); break;
        case F_U64: snprintf (buf, size, "%s=%" PRIu64, field->key, *(const uint64_t *) at); break;
        case F_I64: snprintf (buf, size, "%s=%" PRId64, field->key, *(const int64_t *) at); break;
    }
}

//  Set the field named in "key=value" text. 0, or ZK_EINVAL.
static int
s_field_parse (const s_field_t *fields, size_t count, void *base, const char *text)
{
    const char *equals = strchr (text, '=');
    if (!equals)
        return ZK_EINVAL;
    size_t key_length = (size_t) (equals - text);
    const char *value = equals + 1;
    for (size_t i = 0; i < count; i++) {
        const s_field_t *field = &fields[i];
        if (strlen (field->key) != key_length || memcmp (field->key, text, key_length))
            continue;
        char *at = (char *) base + field->offset;
        char *end = NULL;
        errno = 0;
        switch (field->type) {
            case F_STR:
                if (strlen (value) >= field->size)
                    return ZK_EINVAL;
                strcpy (at, value);
                return 0;
            case F_LL: *(long long *) at = strtoll (value, &end, 10); break;
            case F_INT: *(int *) at = (int) strtol (value, &end, 10); break;
            case F_DBL: *(double *) at = strtod (value, &end); break;
            case F_U64: *(uint64_t *) at = strtoull (value, &end, 10); break;
            case F_I64: *(int64_t *) at = strtoll (value, &end, 10); break;
        }
        return errno || end == value || *end ? ZK_EINVAL : 0;
    }
    return ZK_EINVAL;
}

//  Mark result failed with a reason (the first reason wins).
static void s_fail (s_result_t *result, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));
static void
s_fail (s_result_t *result, const char *format, ...)
{
    if (result->failed)
        return;
    result->failed = 1;
    va_list args;
    va_start (args, format);
    vsnprintf (result->error, sizeof result->error, format, args);
    va_end (args);
    //  One line: the result travels as one.
    for (char *c = result->error; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
}

//  Copy text into buf, cut to fit.
static void
s_copy (char *buf, size_t size, const char *text)
{
    size_t length = strnlen (text, size - 1);
    memcpy (buf, text, length);
    buf[length] = 0;
}

//  ---------------------------------------------------------------- payload

//  The sequence number goes in the first bytes: 8 bytes binary, or 16
//  hex digits in text payloads (the rest 'x': no newline for zkit-worker).
static size_t
s_seq_size (bool text)
{
    return text ? 16 : 8;
}

static void
s_payload_write (uint8_t *data, size_t size, uint64_t seq, bool text)
{
    if (text) {
        memset (data, 'x', size);
        if (size >= 16) {
            char digits[17];
            snprintf (digits, sizeof digits, "%016" PRIx64, seq);
            memcpy (data, digits, 16);
        }
    }
    else if (size >= 8)
        memcpy (data, &seq, 8);
}

//  The sequence number in data; false if it has none (too short, not hex).
static bool
s_payload_seq (const uint8_t *data, size_t size, bool text, uint64_t *seq_p)
{
    if (size < s_seq_size (text))
        return false;
    if (!text) {
        memcpy (seq_p, data, 8);
        return true;
    }
    uint64_t seq = 0;
    for (int i = 0; i < 16; i++) {
        int c = data[i], digit = c >= '0' && c <= '9'   ? c - '0'
                                 : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                                        : -1;
        if (digit < 0)
            return false;
        seq = seq << 4 | (uint64_t) digit;
    }
    *seq_p = seq;
    return true;
}

//  Testing: the sender leaves out every Nth message (never the first or
//  the last, so the receiver sees where the run ends).
static bool
s_skipped (const s_role_t *role, long long seq)
{
    return role->skip_every > 0 && seq > 0 && seq < role->count - 1 && seq % role->skip_every == 0;
}

//  ---------------------------------------------------------------- role helpers

static int
s_timeout_ms (const s_role_t *role)
{
    return (int) (role->timeout * 1000);
}

//  Open a role's socket from a spec with its hwm; receive and send time
//  out after the role's timeout. linger_ms as in zk_engine_open.
static int
s_open (const s_role_t *role, const char *which, const char *text, int linger_ms, zsock_t **sock_p,
        zk_spec_t **spec_p, s_result_t *result)
{
    int rc = zk_engine_open (which, text, NULL, role->hwm, linger_ms, sock_p, spec_p);
    if (rc) {
        s_fail (result, "%s: cannot open '%s': %s", which, text, zk_strerror (rc));
        return rc;
    }
    zsock_set_rcvtimeo (*sock_p, s_timeout_ms (role));
    zsock_set_sndtimeo (*sock_p, s_timeout_ms (role));
    return 0;
}

//  Append "ROLE ENDPOINT" lines for a bound spec to text.
static void
s_ready_add (char *text, size_t size, const char *which, const zk_spec_t *spec)
{
    size_t used = strlen (text);
    snprintf (text + used, size - used, "%s %s\n", which, zk_spec_resolved (spec, 0));
}

static int
s_ready_write (const s_role_t *role, const char *text, s_result_t *result)
{
    if (!*role->ready)
        return 0;
    if (zk_cli_write_file (role->ready, text) != 0) {
        s_fail (result, "cannot write %s", role->ready);
        return ZK_EIO;
    }
    return 0;
}

//  Send one frame; EINTR is retried unless the process is stopping.
static int
s_send (void *sock, zmq_msg_t *msg, int flags, const s_role_t *role, s_result_t *result)
{
    while (zmq_msg_send (msg, sock, flags) < 0) {
        if (errno == EINTR && !zsys_interrupted)
            continue;
        zmq_msg_close (msg);
        if (errno == EAGAIN)
            s_fail (result, "%s: no peer took a message for %g s", role->name, role->timeout);
        else
            s_fail (result, "%s: send failed: %s", role->name, zmq_strerror (errno));
        return ZK_EIO;
    }
    return 0;
}

static int
s_recv (void *sock, zmq_msg_t *msg, const s_role_t *role, s_result_t *result)
{
    while (zmq_msg_recv (msg, sock, 0) < 0) {
        if (errno == EINTR && !zsys_interrupted)
            continue;
        if (errno == EAGAIN)
            s_fail (result, "%s: nothing arrived for %g s", role->name, role->timeout);
        else
            s_fail (result, "%s: receive failed: %s", role->name, zmq_strerror (errno));
        return ZK_EIO;
    }
    return 0;
}

//  One message of role->size bytes carrying seq, sent (the last frame).
static int
s_send_payload (void *sock, uint64_t seq, const s_role_t *role, s_result_t *result)
{
    zmq_msg_t msg;
    if (zmq_msg_init_size (&msg, (size_t) role->size)) {
        s_fail (result, "out of memory");
        return ZK_ENOMEM;
    }
    s_payload_write (zmq_msg_data (&msg), (size_t) role->size, seq, role->text);
    return s_send (sock, &msg, 0, role, result);
}

//  A fresh envelope (new id, time now), encoded and sent as a frame with more to come.
static int
s_send_envelope (void *sock, const s_role_t *role, s_result_t *result)
{
    if (role->envelope == 2) {
        static const uint8_t plain[60] = {0};
        if (zmq_send (sock, plain, sizeof plain, ZMQ_SNDMORE) == (int) sizeof plain)
            return 0;
        s_fail (result, "%s: cannot send the first frame: %s", role->name, zmq_strerror (errno));
        return ZK_EIO;
    }
    zk_envelope_t *envelope = zk_envelope_new ();
    zframe_t *frame = NULL;
    int rc = envelope ? zk_envelope_encode (envelope, &frame) : ZK_ENOMEM;
    zk_envelope_destroy (&envelope);
    if (rc) {
        s_fail (result, "cannot encode an envelope: %s", zk_strerror (rc));
        return rc;
    }
    if (zframe_send (&frame, sock, ZFRAME_MORE) != 0) {
        zframe_destroy (&frame);
        s_fail (result, "%s: cannot send the envelope: %s", role->name, zmq_strerror (errno));
        return ZK_EIO;
    }
    return 0;
}

//  Decode an envelope frame as a receiver would; false if it is not one.
static bool
s_envelope_ok (zmq_msg_t *frame)
{
    zk_envelope_t *envelope = NULL;
    int rc = zk_envelope_decode (zmq_msg_data (frame), zmq_msg_size (frame), &envelope);
    zk_envelope_destroy (&envelope);
    return rc == 0;
}

//  ---------------------------------------------------------------- sender

/*  Keep the sender's socket open until the orchestrator closes the hold
    pipe, which it does once the receivers are done. Closing earlier, even
    with a linger, can lose the tail: libzmq 4.3 drops what its I/O thread
    still holds in the encoder when the socket's session ends (measured:
    500 to 900 of the last 16-byte messages over ipc). Interrupted by a
    signal: stop waiting.                                                */
static void
s_hold (const s_role_t *role)
{
    if (role->hold_fd < 0)
        return;
    char byte;
    while (true) {
        ssize_t got = read (role->hold_fd, &byte, 1);
        if (got == 0 || (got < 0 && (errno != EINTR || zsys_interrupted)))
            break;
    }
    close (role->hold_fd);
}

static void
s_role_sender (const s_role_t *role, s_result_t *result)
{
    zsock_t *sock;
    zk_spec_t *spec;
    //  Linger: closing waits until the peer took everything.
    if (s_open (role, "data", role->spec, s_timeout_ms (role), &sock, &spec, result))
        return;
    void *handle = zsock_resolve (sock);
    for (long long seq = 0; seq < role->count && !result->failed; seq++) {
        if (s_skipped (role, seq))
            continue;
        if (role->envelope && s_send_envelope (handle, role, result))
            break;
        if (s_send_payload (handle, (uint64_t) seq, role, result))
            break;
        result->sent++;
        result->bytes += (uint64_t) role->size;
    }
    s_hold (role);
    zsock_destroy (&sock);
    zk_spec_destroy (&spec);
}

//  ---------------------------------------------------------------- receiver, subscriber

typedef struct {
    uint32_t id;
    uint64_t next;  //  the next sequence number the subscriber waits for
} __attribute__ ((packed)) s_ack_t;

/*  Receive count messages (with the envelope: two frames each), checking
    the sequence numbers. A subscriber (ack is set) subscribes to
    everything and tells the publisher how far it got every window/4
    messages and at the end. The clock runs from the first message to the
    last: connecting and subscribing are not measured.                  */
static void
s_role_receiver (const s_role_t *role, s_result_t *result)
{
    bool subscriber = streq (role->name, "subscriber");
    zsock_t *sock = NULL, *ack = NULL;
    zk_spec_t *spec = NULL, *ack_spec = NULL;
    if (s_open (role, "data", role->spec, 0, &sock, &spec, result))
        return;
    if (subscriber) {
        zsock_set_subscribe (sock, "");
        if (s_open (role, "ack", role->spec2, 0, &ack, &ack_spec, result))
            goto out;
    }
    char ready[SPEC_MAX + 16] = "";
    if (zk_spec_binds (spec, 0))
        s_ready_add (ready, sizeof ready, "data", spec);
    if (s_ready_write (role, ready, result))
        goto out;

    void *handle = zsock_resolve (sock);
    uint64_t ack_every = role->window > 4 ? (uint64_t) role->window / 4 : 1;
    uint64_t count = (uint64_t) role->count, next = 0, next_ack = ack_every;
    zk_meter_t meter = {0};
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    while (meter.messages < count) {
        if (role->envelope) {
            if (s_recv (handle, &msg, role, result))
                break;
            if (!zmq_msg_more (&msg) || (role->envelope == 1 && !s_envelope_ok (&msg)))
                result->bad++;
        }
        if (s_recv (handle, &msg, role, result))
            break;
        size_t size = zmq_msg_size (&msg);
        zk_meter_count (&meter, size);
        while (zmq_msg_more (&msg)) {  //  frames we did not send
            result->bad++;
            if (s_recv (handle, &msg, role, result))
                break;
        }
        uint64_t seq;
        bool last = false;
        if (s_payload_seq (zmq_msg_data (&msg), size, role->text, &seq)) {
            if (seq < next)
                result->disorder++;
            else
                next = seq + 1;
            last = seq + 1 >= count;
        }
        else
            next = meter.messages;
        if (last)
            zk_meter_stamp (&meter);
        if (ack && (next >= next_ack || last || meter.messages == count)) {
            s_ack_t credit = {(uint32_t) role->id, next};
            if (zsock_send (ack, "b", &credit, sizeof credit) != 0) {
                s_fail (result, "subscriber: cannot send an ack");
                break;
            }
            next_ack = next + ack_every;
        }
        if (last)
            break;  //  in order: nothing after the last can come
    }
    if (meter.messages == count && !meter.last_ns)
        zk_meter_stamp (&meter);
    zmq_msg_close (&msg);
    if (meter.last_ns <= meter.first_ns)
        zk_meter_stamp (&meter);
    result->received = meter.messages;
    result->bytes = meter.bytes;
    result->first_ns = meter.first_ns;
    result->last_ns = meter.last_ns;
    result->lost = count > meter.messages ? count - meter.messages : 0;
    if (result->lost) {
        result->failed = 0;  //  the count says more than a timeout
        s_fail (result,
                "%s: %" PRIu64 " of %" PRIu64 " messages never arrived (next expected %" PRIu64 ")",
                role->name, result->lost, count, next);
    }
out:
    zsock_destroy (&ack);
    zsock_destroy (&sock);
    zk_spec_destroy (&ack_spec);
    zk_spec_destroy (&spec);
}

//  ---------------------------------------------------------------- publisher

static uint64_t
s_slowest (const uint64_t *acked, int subscribers)
{
    uint64_t slowest = UINT64_MAX;
    for (int i = 0; i < subscribers; i++)
        if (acked[i] < slowest)
            slowest = acked[i];
    return slowest;
}

//  Take one ack (waiting at most the timeout). 0, or an error (logged in result).
static int
s_take_ack (zsock_t *ack, uint64_t *acked, const s_role_t *role, s_result_t *result)
{
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    int rc = s_recv (zsock_resolve (ack), &msg, role, result);
    if (rc == 0 && zmq_msg_size (&msg) == sizeof (s_ack_t)) {
        s_ack_t credit;
        memcpy (&credit, zmq_msg_data (&msg), sizeof credit);
        if (credit.id < (uint32_t) role->subscribers && credit.next > acked[credit.id])
            acked[credit.id] = credit.next;
    }
    zmq_msg_close (&msg);
    return rc;
}

/*  An XPUB publisher, verbose so it sees one subscribe per subscriber
    (zkit-forwarder's xpub is verboser and passes them all up; so is the
    reference forwarder's). It starts once all have subscribed, and stays
    at most `window` messages ahead of the slowest subscriber.          */
static void
s_role_publisher (const s_role_t *role, s_result_t *result)
{
    zsock_t *sock = NULL, *ack = NULL;
    zk_spec_t *spec = NULL, *ack_spec = NULL;
    uint64_t *acked = calloc ((size_t) role->subscribers, sizeof *acked);
    if (!acked) {
        s_fail (result, "out of memory");
        return;
    }
    if (s_open (role, "data", role->spec, s_timeout_ms (role), &sock, &spec, result)
        || s_open (role, "ack", role->spec2, 0, &ack, &ack_spec, result))
        goto out;
    zsock_set_xpub_verbose (sock, 1);
    char ready[2 * SPEC_MAX] = "";
    if (zk_spec_binds (spec, 0))
        s_ready_add (ready, sizeof ready, "data", spec);
    s_ready_add (ready, sizeof ready, "ack", ack_spec);
    if (s_ready_write (role, ready, result))
        goto out;

    void *handle = zsock_resolve (sock);
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    int subscribed = 0;
    while (subscribed < role->subscribers) {
        if (s_recv (handle, &msg, role, result))
            break;
        if (zmq_msg_size (&msg) >= 1 && *(uint8_t *) zmq_msg_data (&msg) == 1)
            subscribed++;
    }
    zmq_msg_close (&msg);
    if (result->failed) {
        snprintf (result->error, sizeof result->error,
                  "publisher: %d of %d subscribers subscribed within %g s", subscribed,
                  role->subscribers, role->timeout);
        goto out;
    }
    uint64_t window = role->window > 0 ? (uint64_t) role->window : 1;
    for (long long seq = 0; seq < role->count && !result->failed; seq++) {
        if ((uint64_t) seq >= s_slowest (acked, role->subscribers) + window) {
            while ((uint64_t) seq >= s_slowest (acked, role->subscribers) + window)
                if (s_take_ack (ack, acked, role, result))
                    goto out;
            //  libzmq learns that a subscriber's queue emptied from commands
            //  it reads during sends, at most once a millisecond; a queue it
            //  still thinks full drops. ZMQ_EVENTS reads them now.
            zsock_events (sock);
        }
        if (s_skipped (role, seq))
            continue;
        zmq_msg_t out;
        if (zmq_msg_init_size (&out, (size_t) role->size)) {
            s_fail (result, "out of memory");
            break;
        }
        s_payload_write (zmq_msg_data (&out), (size_t) role->size, (uint64_t) seq, role->text);
        if (s_send (handle, &out, 0, role, result))
            break;
        result->sent++;
        result->bytes += (uint64_t) role->size;
    }
    //  Stay until every subscriber has everything: then nothing is in flight.
    while (!result->failed && s_slowest (acked, role->subscribers) < (uint64_t) role->count)
        if (s_take_ack (ack, acked, role, result))
            break;
out:
    free (acked);
    zsock_destroy (&ack);
    zsock_destroy (&sock);
    zk_spec_destroy (&ack_spec);
    zk_spec_destroy (&spec);
}

//  ---------------------------------------------------------------- client, server

/*  REQ client: warmup + count round trips, one at a time; the count after
    the warm-up are timed into a histogram. The reply must be the request
    echoed (same body size; with the envelope, an envelope in front).   */
//  The end of a round-trip role: percentiles, round trips lost, and a
//  failure when some replies were not the request echoed.
static void
s_round_trips_done (const s_role_t *role, zk_histogram_t *histogram, s_result_t *result)
{
    for (int i = 0; i < LATENCIES; i++)
        result->latency[i] = zk_histogram_percentile (histogram, s_percentiles[i]);
    result->lost =
        (uint64_t) role->count > result->received ? (uint64_t) role->count - result->received : 0;
    if (result->bad && !result->failed)
        s_fail (result, "%s: %" PRIu64 " replies were not the request echoed", role->name,
                result->bad);
}

static void
s_role_client (const s_role_t *role, s_result_t *result)
{
    zsock_t *sock;
    zk_spec_t *spec;
    if (s_open (role, "data", role->spec, 0, &sock, &spec, result))
        return;
    zk_histogram_t *histogram = zk_histogram_new ();
    if (!histogram) {
        s_fail (result, "out of memory");
        goto out;
    }
    void *handle = zsock_resolve (sock);
    long long total = role->warmup + role->count;
    zmq_msg_t reply;
    zmq_msg_init (&reply);
    for (long long i = 0; i < total && !result->failed; i++) {
        int64_t start = zk_meter_now_ns ();
        if (role->envelope && s_send_envelope (handle, role, result))
            break;
        if (s_send_payload (handle, (uint64_t) i, role, result))
            break;
        result->sent++;
        int frames = 0;
        size_t body = 0;
        bool envelope_ok = !role->envelope;
        do {
            if (s_recv (handle, &reply, role, result))
                break;
            if (frames == 0 && role->envelope)
                envelope_ok = s_envelope_ok (&reply);
            body = zmq_msg_size (&reply);
            frames++;
        } while (zmq_msg_more (&reply));
        if (result->failed)
            break;
        int64_t elapsed = zk_meter_now_ns () - start;
        if (!envelope_ok || body != (size_t) role->size || frames != (role->envelope ? 2 : 1))
            result->bad++;
        if (i >= role->warmup) {
            zk_histogram_record (histogram, (uint64_t) (elapsed > 0 ? elapsed : 0));
            result->received++;
        }
    }
    zmq_msg_close (&reply);
    s_round_trips_done (role, histogram, result);
out:
    zk_histogram_destroy (&histogram);
    zsock_destroy (&sock);
    zk_spec_destroy (&spec);
}

//  REP echo server: every request goes back as it came (frames moved, not
//  copied); with the envelope, it is decoded first, as a service would.
static void
s_role_server (const s_role_t *role, s_result_t *result)
{
    zsock_t *sock;
    zk_spec_t *spec;
    if (s_open (role, "data", role->spec, s_timeout_ms (role), &sock, &spec, result))
        return;
    char ready[SPEC_MAX + 16] = "";
    if (zk_spec_binds (spec, 0))
        s_ready_add (ready, sizeof ready, "data", spec);
    if (s_ready_write (role, ready, result))
        goto out;
    void *handle = zsock_resolve (sock);
    zmq_msg_t frames[ENVELOPE_FRAMES];
    for (int i = 0; i < ENVELOPE_FRAMES; i++)
        zmq_msg_init (&frames[i]);
    long long total = role->warmup + role->count;
    for (long long served = 0; served < total && !result->failed; served++) {
        int count = 0;
        do {
            zmq_msg_t *frame = &frames[count < ENVELOPE_FRAMES ? count : ENVELOPE_FRAMES - 1];
            if (s_recv (handle, frame, role, result))
                break;
            count++;
        } while (
            zmq_msg_more (&frames[count - 1 < ENVELOPE_FRAMES ? count - 1 : ENVELOPE_FRAMES - 1]));
        if (result->failed)
            break;
        if (count > ENVELOPE_FRAMES) {
            s_fail (result, "server: a request of %d frames", count);
            break;
        }
        if (role->envelope && (count < 2 || !s_envelope_ok (&frames[0])))
            result->bad++;
        for (int i = 0; i < count; i++)
            if (s_send (handle, &frames[i], i + 1 < count ? ZMQ_SNDMORE : 0, role, result))
                break;
        result->received++;
    }
    for (int i = 0; i < ENVELOPE_FRAMES; i++)
        zmq_msg_close (&frames[i]);
out:
    zsock_destroy (&sock);
    zk_spec_destroy (&spec);
}

//  The reliable client (zk_caller): each round trip is one zk_caller_call,
//  its REQID and envelope included; the reply must be the envelope and the
//  payload echoed.
static void
s_role_caller (const s_role_t *role, s_result_t *result)
{
    int timeout_ms = s_timeout_ms (role);
    zk_caller_config_t config = {.timeout_ms = timeout_ms > 0 ? timeout_ms : 10000,
                                 .max_size = ZK_MAX_SIZE_UNLIMITED,
                                 .hwm = role->hwm};
    zk_caller_t *caller = zk_caller_new (role->spec, &config);
    zk_histogram_t *histogram = zk_histogram_new ();
    uint8_t *payload = malloc ((size_t) role->size + 1);
    if (!caller || !histogram || !payload) {
        s_fail (result, caller ? "out of memory" : "caller: cannot open %s", role->spec);
        goto out;
    }
    long long total = role->warmup + role->count;
    for (long long i = 0; i < total && !result->failed; i++) {
        s_payload_write (payload, (size_t) role->size, (uint64_t) i, role->text);
        int64_t start = zk_meter_now_ns ();
        zmsg_t *request = zmsg_new ();
        zmsg_addmem (request, payload, (size_t) role->size);
        zmsg_t *reply = NULL;
        int rc = zk_caller_call (caller, &request, &reply);
        int64_t elapsed = zk_meter_now_ns () - start;
        zmsg_destroy (&request);
        if (rc) {
            s_fail (result, "caller: %s", zk_caller_last_error (caller));
            zmsg_destroy (&reply);
            break;
        }
        result->sent++;
        zframe_t *body = zmsg_last (reply);
        if (zmsg_size (reply) != 2 || !body || zframe_size (body) != (size_t) role->size)
            result->bad++;
        zmsg_destroy (&reply);
        if (i >= role->warmup) {
            zk_histogram_record (histogram, (uint64_t) (elapsed > 0 ? elapsed : 0));
            result->received++;
        }
    }
    s_round_trips_done (role, histogram, result);
out:
    free (payload);
    zk_histogram_destroy (&histogram);
    zk_caller_destroy (&caller);
}

//  A minimal ZKW/1 worker (docs/protocol.md section 10) that echoes: READY
//  with one slot, each REQUEST sent back as a REPLY with its frames moved,
//  a HEARTBEAT every second. It measures zkit-proxy --lb, not a command.
#define LB_FRAMES 16

static int
s_lb_send (void *handle, const char *command, bool more)
{
    if (zmq_send (handle, "ZKW1", 4, ZMQ_SNDMORE) != 4)
        return -1;
    return zmq_send (handle, command, strlen (command), more ? ZMQ_SNDMORE : 0) < 0 ? -1 : 0;
}

static void
s_role_lbserver (const s_role_t *role, s_result_t *result)
{
    zsock_t *sock;
    zk_spec_t *spec;
    if (s_open (role, "data", role->spec, s_timeout_ms (role), &sock, &spec, result))
        return;
    void *handle = zsock_resolve (sock);
    zmq_msg_t frames[LB_FRAMES];
    for (int i = 0; i < LB_FRAMES; i++)
        zmq_msg_init (&frames[i]);
    if (s_lb_send (handle, "READY", true) || zmq_send (handle, "1", 1, 0) != 1) {
        s_fail (result, "lbserver: cannot send READY");
        goto out;
    }
    long long total = role->warmup + role->count;
    int64_t quiet_until = zk_meter_now_ns () + 30 * (int64_t) 1000000000;
    int64_t heartbeat_at = zk_meter_now_ns () + 1000000000;
    for (long long served = 0; served < total && !result->failed;) {
        int64_t now = zk_meter_now_ns ();
        if (now >= heartbeat_at) {
            if (s_lb_send (handle, "HEARTBEAT", false))
                s_fail (result, "lbserver: cannot send HEARTBEAT");
            heartbeat_at = now + 1000000000;
        }
        if (now >= quiet_until) {
            s_fail (result, "lbserver: no request for 30 s");
            break;
        }
        zmq_pollitem_t item = {handle, 0, ZMQ_POLLIN, 0};
        long wait_ms = (long) ((heartbeat_at - now) / 1000000) + 1;
        if (zmq_poll (&item, 1, wait_ms) <= 0)
            continue;
        int count = 0;
        bool more = true;
        while (more) {
            zmq_msg_t *frame = &frames[count < LB_FRAMES ? count : LB_FRAMES - 1];
            if (s_recv (handle, frame, role, result))
                break;
            more = zmq_msg_more (frame);
            count++;
        }
        if (result->failed)
            break;
        quiet_until = zk_meter_now_ns () + 30 * (int64_t) 1000000000;
        if (count < 2 || count > LB_FRAMES || zmq_msg_size (&frames[0]) != 4
            || memcmp (zmq_msg_data (&frames[0]), "ZKW1", 4))
            continue;
        if (zmq_msg_size (&frames[1]) != 7 || memcmp (zmq_msg_data (&frames[1]), "REQUEST", 7))
            continue;  //  HEARTBEAT, or anything else: a sign of life
        if (s_lb_send (handle, "REPLY", true))
            break;
        for (int i = 2; i < count; i++)
            if (s_send (handle, &frames[i], i + 1 < count ? ZMQ_SNDMORE : 0, role, result))
                break;
        result->received++;
        served++;
    }
out:
    for (int i = 0; i < LB_FRAMES; i++)
        zmq_msg_close (&frames[i]);
    zsock_destroy (&sock);
    zk_spec_destroy (&spec);
}

//  ---------------------------------------------------------------- producer, consumer

//  The phases of a queue run, one after the other (s_run_queue).
#define PHASE_FILL  1  //  a producer fills queue "bench": confirmed puts/s
#define PHASE_DRAIN 2  //  a consumer empties it: consumed+acked msg/s
#define PHASE_BOTH  3  //  a consumer and a producer at once on "bench-e2e"

//  A queue client for a role: its requests time out with the role, and are
//  not sent again before that (a healthy connection answers them all).
static zk_client_t *
s_queue_client (const s_role_t *role, s_result_t *result)
{
    zk_client_config_t config = {
        .window = role->window,
        .timeout_ms = s_timeout_ms (role),
        .retry_ms = s_timeout_ms (role),
        .max_size = (size_t) role->size > ZK_CLIENT_DEFAULT_MAX_SIZE ? (size_t) role->size : 0};
    zk_client_t *client = zk_client_new (role->spec, &config);
    if (!client)
        s_fail (result, "%s: cannot make a queue client for '%s'", role->name, role->spec);
    return client;
}

//  Fail with the client's view of what went wrong with a request.
static void
s_queue_fail (zk_client_t *client, const s_role_t *role, const char *what, int rc,
              s_result_t *result)
{
    const char *detail = zk_client_last_error (client);
    s_fail (result, "%s: %s: %s%s%s", role->name, what, zk_strerror (rc), *detail ? ": " : "",
            detail);
}

/*  After a phase, the queue's own counters must agree with the role's
    (STATS): `queued` messages waiting, none leased or pending, and the
    counter `name` (put or acked) at `expected`. A queue that lost or
    doubled a message, or still holds one, fails the run here.          */
static void
s_queue_verify (zk_client_t *client, const s_role_t *role, uint64_t queued, const char *name,
                uint64_t expected, s_result_t *result)
{
    zmsg_t *lines = NULL;
    int rc = zk_client_queue_stats (client, NULL, &lines);
    if (rc) {
        s_queue_fail (client, role, "STATS failed", rc, result);
        return;
    }
    const char *queue = zk_client_queue (client);
    uint64_t now_queued = zk_client_stat (lines, queue, "queued");
    uint64_t leased = zk_client_stat (lines, queue, "leased");
    uint64_t pending = zk_client_stat (lines, queue, "pending");
    uint64_t value = zk_client_stat (lines, queue, name);
    zmsg_destroy (&lines);
    if (now_queued != queued || leased || pending || value != expected)
        s_fail (result,
                "%s: the queue's STATS say queued=%" PRIu64 " leased=%" PRIu64 " pending=%" PRIu64
                " %s=%" PRIu64 ", expected queued=%" PRIu64 " leased=0 pending=0 %s=%" PRIu64,
                role->name, now_queued, leased, pending, name, value, queued, name, expected);
}

//  The minimal-client variants (-raw channels), below.
static void s_raw_producer (const s_role_t *role, s_result_t *result);
static void s_raw_consumer (const s_role_t *role, s_result_t *result);

/*  Put count messages of size bytes (a sequence number first) with
    zk_client's pipelined PUTs, at most `window` awaiting their confirm.
    The clock runs from the first PUT to the last confirm (connecting is
    not measured: a PING answered first). Filling an idle queue, the
    queue's STATS must then say it holds exactly the messages put.
    Testing (skip_every): some are left out, for the consumer to miss.  */
static void
s_role_producer (const s_role_t *role, s_result_t *result)
{
    if (role->raw) {
        s_raw_producer (role, result);
        return;
    }
    zk_client_t *client = s_queue_client (role, result);
    if (!client)
        return;
    int rc = zk_client_ping (client);
    if (rc) {
        s_queue_fail (client, role, "no answer to PING", rc, result);
        goto out;
    }
    size_t size = (size_t) role->size;
    result->first_ns = zk_meter_now_ns ();
    for (long long seq = 0; seq < role->count; seq++) {
        if (s_skipped (role, seq))
            continue;
        zmsg_t *body = zmsg_new ();
        zframe_t *frame = zframe_new (NULL, size);
        if (!body || !frame) {
            zmsg_destroy (&body);
            zframe_destroy (&frame);
            s_fail (result, "out of memory");
            goto out;
        }
        s_payload_write (zframe_data (frame), size, (uint64_t) seq, false);
        zmsg_append (body, &frame);
        rc = zk_client_put (client, NULL, &body, NULL);
        if (rc) {
            s_queue_fail (client, role, "a PUT failed", rc, result);
            goto out;
        }
        result->sent++;
        result->bytes += size;
    }
    rc = zk_client_flush (client, s_timeout_ms (role));
    result->last_ns = zk_meter_now_ns ();
    zk_client_stats_t stats;
    zk_client_stats (client, &stats);
    result->received = stats.confirmed;
    if (rc)
        s_queue_fail (client, role, "not every PUT was confirmed", rc, result);
    else if (stats.confirmed != result->sent)
        s_fail (result, "producer: %" PRIu64 " of %" PRIu64 " PUTs confirmed", stats.confirmed,
                result->sent);
    else if (role->phase == PHASE_FILL)
        s_queue_verify (client, role, result->sent, "put", result->sent, result);
out:
    zk_client_destroy (&client);
}

typedef struct {
    uint64_t sent, done, failed;  //  ACKs made, answered OK, answered otherwise
    int64_t last_ns;              //  when the last answer came
} s_acks_t;

static void
s_ack_done (zk_client_t *client, int rc, zmsg_t *reply, void *arg)
{
    (void) client;
    (void) reply;
    s_acks_t *acks = arg;
    if (rc)
        acks->failed++;
    else
        acks->done++;
    acks->last_ns = zk_meter_now_ns ();
}

//  Wait until every ACK made has its answer; a timeout is `timeout`
//  without one. 0, ZK_ETIMEDOUT or ZK_EINTR.
static int
s_acks_wait (zk_client_t *client, s_acks_t *acks, const s_role_t *role)
{
    uint64_t answered = acks->done + acks->failed;
    int64_t deadline = zk_now_ms () + s_timeout_ms (role);
    while (acks->done + acks->failed < acks->sent) {
        if (zsys_interrupted)
            return ZK_EINTR;
        if (acks->done + acks->failed > answered) {
            answered = acks->done + acks->failed;
            deadline = zk_now_ms () + s_timeout_ms (role);
        }
        int64_t left = deadline - zk_now_ms ();
        if (left <= 0)
            return ZK_ETIMEDOUT;
        long timeout = zk_client_next_timeout (client);
        if (timeout < 0 || timeout > left)
            timeout = (long) left;
        zmq_pollitem_t items[2];
        int count = zk_client_pollitems (client, items, 2);
        if (zmq_poll (items, count, timeout) < 0 && errno != EINTR)
            return ZK_EIO;
        int rc = zk_client_process (client);
        if (rc)
            return rc;
    }
    return 0;
}

/*  A consumer took a delivery: body_frames frames, the first of size
    bytes at data. It must be one frame of the role's size with a sequence
    number below count not seen before (else it is counted bad); a first
    delivery (attempt 1) below the highest seen so far is disorder.     */
static void
s_consumer_take (const s_role_t *role, uint8_t *seen, size_t body_frames, const void *data,
                 size_t size, uint64_t attempt, uint64_t *next_p, s_result_t *result)
{
    uint64_t seq;
    if (body_frames != 1 || size != (size_t) role->size || !s_payload_seq (data, size, false, &seq)
        || seq >= (uint64_t) role->count || seen[seq / 8] & (1u << seq % 8)) {
        result->bad++;  //  not a message we put, or one we had already
        return;
    }
    seen[seq / 8] |= (uint8_t) (1u << seq % 8);
    result->received++;
    result->bytes += size;
    if (seq < *next_p && attempt == 1)
        result->disorder++;
    else if (seq >= *next_p)
        *next_p = seq + 1;
}

//  A consumer's verdict on what it took: lost messages first (the count
//  says more than a timeout), then deliveries that were not ours. True if
//  it failed.
static bool
s_consumer_done (const s_role_t *role, uint64_t next, s_result_t *result)
{
    uint64_t count = (uint64_t) role->count;
    result->lost = count - result->received;
    if (result->lost) {
        result->failed = 0;
        s_fail (result,
                "consumer: %" PRIu64 " of %" PRIu64
                " messages never arrived (next expected %" PRIu64 ")",
                result->lost, count, next);
    }
    else if (result->bad)
        s_fail (result, "consumer: %" PRIu64 " deliveries were duplicates or not a message put",
                result->bad);
    return result->failed;
}

/*  Take count messages from the queue with a GET window of `window`,
    acking each (pipelined: the answers are counted as they come). Every
    body must be one frame of size bytes with a sequence number not seen
    before, first deliveries in order (one consumer: FIFO). The clock runs
    from the GET to the last ACK's answer; then the queue must be empty,
    with every message acked. With a ready file, it is written once the
    GET is answered (the producer of PHASE_BOTH starts then).           */
static void
s_role_consumer (const s_role_t *role, s_result_t *result)
{
    if (role->raw) {
        s_raw_consumer (role, result);
        return;
    }
    uint64_t count = (uint64_t) role->count;
    uint8_t *seen = calloc (count / 8 + 1, 1);
    if (!seen) {
        s_fail (result, "out of memory");
        return;
    }
    s_acks_t acks = {0};
    uint64_t next = 0;
    zk_client_t *client = s_queue_client (role, result);
    if (!client)
        goto out;
    result->first_ns = zk_meter_now_ns ();
    int rc = zk_client_get (client, NULL, role->window);
    if (rc) {
        s_queue_fail (client, role, "GET failed", rc, result);
        goto out;
    }
    if (s_ready_write (role, "consumer ready\n", result))
        goto out;
    while (result->received < count) {
        zk_delivery_t *delivery;
        rc = zk_client_recv (client, s_timeout_ms (role), &delivery);
        if (rc == ZK_ETIMEDOUT)
            s_fail (result, "consumer: nothing arrived for %g s", role->timeout);
        else if (rc)
            s_queue_fail (client, role, "receive failed", rc, result);
        if (rc)
            break;
        zframe_t *frame = zmsg_first (delivery->body);
        s_consumer_take (role, seen, zmsg_size (delivery->body), zframe_data (frame),
                         zframe_size (frame), delivery->attempt, &next, result);
        rc = zk_client_ack_async (client, delivery, NULL, s_ack_done, &acks);
        zk_delivery_destroy (&delivery);
        if (rc) {
            s_queue_fail (client, role, "an ACK failed", rc, result);
            break;
        }
        acks.sent++;
    }
    rc = s_acks_wait (client, &acks, role);
    result->last_ns = acks.last_ns;
    result->sent = acks.done;
    if (!s_consumer_done (role, next, result)) {
        if (rc)
            s_queue_fail (client, role, "not every ACK was answered", rc, result);
        else if (acks.failed)
            s_fail (result, "consumer: %" PRIu64 " ACKs were refused: %s", acks.failed,
                    zk_client_last_error (client));
        else
            s_queue_verify (client, role, 0, "acked", count, result);
    }
out:
    zk_client_destroy (&client);
    free (seen);
}

/*  The minimal ZKQ/1 client of the -raw channels: a bare DEALER; each
    request written frame by frame from the stack (no allocation per
    message), replies read into reused zmq_msg_t frames, no retries and no
    reconnects (any failure fails the run). What zkit-queue sustains
    without zk_client's own costs. The queue's STATS are still checked
    afterwards, with zk_client, outside the clock.                      */
#define RAW_FRAMES 8  //  frames of a reply kept (a delivery has 7)

typedef struct {
    zsock_t *sock;
    zk_spec_t *spec;  //  the role's queue spec
    void *handle;
    const char *queue;
    zmq_msg_t frames[RAW_FRAMES];
    size_t count;  //  frames of the message read last (more are dropped)
} s_raw_t;

//  Open the DEALER of role->spec's server. Always safe to s_raw_close after.
static int
s_raw_open (const s_role_t *role, s_raw_t *raw, s_result_t *result)
{
    *raw = (s_raw_t){0};
    for (int i = 0; i < RAW_FRAMES; i++)
        zmq_msg_init (&raw->frames[i]);
    raw->spec = zk_spec_new (role->spec);
    raw->sock = zsock_new (ZMQ_DEALER);
    if (!raw->spec || !raw->sock || !zk_spec_queue_name (raw->spec)) {
        s_fail (result, "%s: cannot open '%s'", role->name, role->spec);
        return ZK_EIO;
    }
    raw->queue = zk_spec_queue_name (raw->spec);
    raw->handle = zsock_resolve (raw->sock);
    //  Room for every request of a window and its reply, both ways.
    int hwm = 4 * role->window + 100;
    zsock_set_sndhwm (raw->sock, hwm);
    zsock_set_rcvhwm (raw->sock, hwm);
    zsock_set_sndtimeo (raw->sock, s_timeout_ms (role));
    zsock_set_linger (raw->sock, 0);
    if (zsock_connect (raw->sock, "%s", zk_spec_endpoint (raw->spec, 0)) != 0) {
        s_fail (result, "%s: cannot connect to %s", role->name, zk_spec_endpoint (raw->spec, 0));
        return ZK_EIO;
    }
    return 0;
}

static void
s_raw_close (s_raw_t *raw)
{
    for (int i = 0; i < RAW_FRAMES; i++)
        zmq_msg_close (&raw->frames[i]);
    zsock_destroy (&raw->sock);
    zk_spec_destroy (&raw->spec);
}

//  Send "ZKQ1 COMMAND TAG" and count more frames (data, size pairs).
static int
s_raw_send (s_raw_t *raw, const s_role_t *role, s_result_t *result, const char *command,
            const char *tag, int count, ...)
{
    va_list args;
    va_start (args, count);
    int rc = zmq_send (raw->handle, "ZKQ1", 4, ZMQ_SNDMORE) < 0
             || zmq_send (raw->handle, command, strlen (command), ZMQ_SNDMORE) < 0
             || zmq_send (raw->handle, tag, strlen (tag), count ? ZMQ_SNDMORE : 0) < 0;
    for (int i = 0; i < count && !rc; i++) {
        const void *data = va_arg (args, const void *);
        size_t size = va_arg (args, size_t);
        rc = zmq_send (raw->handle, data, size, i + 1 < count ? ZMQ_SNDMORE : 0) < 0;
    }
    va_end (args);
    if (rc)
        s_fail (result, "%s: cannot send %s: %s", role->name, command, zmq_strerror (errno));
    return rc ? ZK_EIO : 0;
}

/*  Read one whole message (waiting at most the role's timeout, or not at
    all with ZMQ_DONTWAIT), keeping its first RAW_FRAMES frames. 0, 1 when
    nothing is there (ZMQ_DONTWAIT), or ZK_EIO (in result).             */
static int
s_raw_read (s_raw_t *raw, int flags, const s_role_t *role, s_result_t *result)
{
    if (!flags) {
        zmq_pollitem_t item = {raw->handle, 0, ZMQ_POLLIN, 0};
        int ready;
        while ((ready = zmq_poll (&item, 1, s_timeout_ms (role))) < 0 && errno == EINTR
               && !zsys_interrupted)
            ;
        if (ready <= 0) {
            s_fail (result, "%s: nothing came from the queue for %g s", role->name, role->timeout);
            return ZK_EIO;
        }
    }
    raw->count = 0;
    zmq_msg_t extra;
    zmq_msg_init (&extra);
    bool more = true;
    while (more) {
        zmq_msg_t *frame = raw->count < RAW_FRAMES ? &raw->frames[raw->count] : &extra;
        if (zmq_msg_recv (frame, raw->handle, raw->count ? 0 : ZMQ_DONTWAIT) < 0) {
            if (errno == EINTR && !zsys_interrupted)
                continue;
            zmq_msg_close (&extra);
            if (errno == EAGAIN && raw->count == 0)
                return 1;
            s_fail (result, "%s: receive failed: %s", role->name, zmq_strerror (errno));
            return ZK_EIO;
        }
        more = zmq_msg_more (frame);
        raw->count++;
    }
    zmq_msg_close (&extra);
    return 0;
}

//  True if frame index of the message read last is text.
static bool
s_raw_is (s_raw_t *raw, size_t index, const char *text)
{
    return index < raw->count && zmq_msg_size (&raw->frames[index]) == strlen (text)
           && !memcmp (zmq_msg_data (&raw->frames[index]), text, strlen (text));
}

//  After an ERR reply: fail with its code and text.
static void
s_raw_error (s_raw_t *raw, const s_role_t *role, const char *command, s_result_t *result)
{
    int code = raw->count > 3 ? (int) zmq_msg_size (&raw->frames[3]) : 0;
    int text = raw->count > 4 ? (int) zmq_msg_size (&raw->frames[4]) : 0;
    s_fail (result, "%s: %s answered: %.*s %.*s", role->name, command, code,
            code ? (const char *) zmq_msg_data (&raw->frames[3]) : "", text,
            text ? (const char *) zmq_msg_data (&raw->frames[4]) : "");
}

//  Check the queue's STATS with a zk_client (s_queue_verify), outside the clock.
static void
s_raw_verify (const s_role_t *role, uint64_t queued, const char *name, uint64_t expected,
              s_result_t *result)
{
    zk_client_t *client = s_queue_client (role, result);
    if (client)
        s_queue_verify (client, role, queued, name, expected, result);
    zk_client_destroy (&client);
}

//  s_role_producer with the minimal client: PUTs with message ids that
//  are a random prefix and the sequence number, every reply counted.
static void
s_raw_producer (const s_role_t *role, s_result_t *result)
{
    s_raw_t raw;
    uint8_t *body = NULL;
    if (s_raw_open (role, &raw, result))
        goto out;
    body = calloc (1, (size_t) role->size);
    if (!body) {
        s_fail (result, "out of memory");
        goto out;
    }
    if (s_raw_send (&raw, role, result, "PING", "ping", 0) || s_raw_read (&raw, 0, role, result))
        goto out;
    uint8_t id[ZK_ID_SIZE];
    zk_id_generate (id);
    uint64_t count = (uint64_t) role->count, window = (uint64_t) role->window, answered = 0;
    uint64_t seq = 0;
    result->first_ns = zk_meter_now_ns ();
    while ((seq < count || answered < result->sent) && !result->failed) {
        for (; seq < count && result->sent - answered < window; seq++) {
            if (s_skipped (role, (long long) seq))
                continue;
            char tag[24];
            snprintf (tag, sizeof tag, "%" PRIu64, seq);
            memcpy (id + 8, &seq, 8);
            s_payload_write (body, (size_t) role->size, seq, false);
            if (s_raw_send (&raw, role, result, "PUT", tag, 3, raw.queue, strlen (raw.queue), id,
                            (size_t) ZK_ID_SIZE, body, (size_t) role->size))
                goto out;
            result->sent++;
        }
        if (answered == result->sent)
            continue;
        //  One reply, waiting; then every one that is there.
        for (int flags = 0; !result->failed; flags = ZMQ_DONTWAIT) {
            int rc = s_raw_read (&raw, flags, role, result);
            if (rc)
                break;
            answered++;
            if (s_raw_is (&raw, 0, "ZKQ1") && s_raw_is (&raw, 1, "OK"))
                result->received++;
            else
                s_raw_error (&raw, role, "PUT", result);
        }
    }
    result->last_ns = zk_meter_now_ns ();
    result->bytes = result->received * (uint64_t) role->size;
    if (!result->failed && role->phase == PHASE_FILL)
        s_raw_verify (role, result->sent, "put", result->sent, result);
out:
    s_raw_close (&raw);
    free (body);
}

//  s_role_consumer with the minimal client: one GET, then an ACK for each
//  delivery, the OKs to the ACKs counted (tag "a"; the GET's is "get").
static void
s_raw_consumer (const s_role_t *role, s_result_t *result)
{
    s_raw_t raw;
    uint64_t count = (uint64_t) role->count, next = 0, acks = 0, acked = 0;
    uint8_t *seen = NULL;
    if (s_raw_open (role, &raw, result))
        goto out;
    seen = calloc (count / 8 + 1, 1);
    if (!seen) {
        s_fail (result, "out of memory");
        goto out;
    }
    char window[16];
    snprintf (window, sizeof window, "%d", role->window);
    result->first_ns = zk_meter_now_ns ();
    if (s_raw_send (&raw, role, result, "GET", "get", 2, raw.queue, strlen (raw.queue), window,
                    strlen (window)))
        goto out;
    bool started = false;  //  the GET answered
    while ((!started || result->received < count || acked < acks) && !result->failed) {
        if (s_raw_read (&raw, 0, role, result))
            break;
        if (s_raw_is (&raw, 1, "MSG") && raw.count >= 7) {
            //  ZKQ1 MSG "" QUEUE MSGID ATTEMPT BODY...
            char attempt[24] = "";
            size_t digits = zmq_msg_size (&raw.frames[5]);
            if (digits < sizeof attempt)
                memcpy (attempt, zmq_msg_data (&raw.frames[5]), digits);
            zmq_msg_t *frame = &raw.frames[6];
            s_consumer_take (role, seen, raw.count - 6, zmq_msg_data (frame), zmq_msg_size (frame),
                             strtoull (attempt, NULL, 10), &next, result);
            if (s_raw_send (&raw, role, result, "ACK", "a", 2, raw.queue, strlen (raw.queue),
                            zmq_msg_data (&raw.frames[4]), zmq_msg_size (&raw.frames[4])))
                break;
            acks++;
        }
        else if (s_raw_is (&raw, 1, "OK") && s_raw_is (&raw, 2, "a")) {
            acked++;
            result->last_ns = zk_meter_now_ns ();
        }
        else if (s_raw_is (&raw, 1, "OK") && s_raw_is (&raw, 2, "get")) {
            started = true;
            if (s_ready_write (role, "consumer ready\n", result))
                break;
        }
        else
            s_raw_error (&raw, role, s_raw_is (&raw, 2, "get") ? "GET" : "ACK", result);
    }
    result->sent = acked;
    if (!s_consumer_done (role, next, result) && !result->failed)
        s_raw_verify (role, 0, "acked", count, result);
out:
    s_raw_close (&raw);
    free (seen);
}

//  ---------------------------------------------------------------- reference devices

//  A free loopback port for zproxy, which cannot report an ephemeral one:
//  bind port 0, read it, close. Another process could take it meanwhile;
//  then zproxy fails and the run reports it.
static int
s_free_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in address = {.sin_family = AF_INET,
                                  .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    socklen_t length = sizeof address;
    int port = -1;
    if (bind (fd, (struct sockaddr *) &address, sizeof address) == 0
        && getsockname (fd, (struct sockaddr *) &address, &length) == 0)
        port = ntohs (address.sin_port);
    close (fd);
    return port;
}

//  zproxy's endpoint for a spec: "@ENDPOINT", a wildcard tcp port made real.
static int
s_zproxy_endpoint (const zk_spec_t *spec, char *buf, size_t size)
{
    const char *endpoint = zk_spec_endpoint (spec, 0);
    const char *star = strstr (endpoint, ":*");
    if (strncmp (endpoint, "tcp://", 6) == 0 && star) {
        int port = s_free_port ();
        if (port < 0)
            return ZK_EENDPOINT;
        snprintf (buf, size, "@%.*s:%d", (int) (star - endpoint), endpoint, port);
    }
    else
        snprintf (buf, size, "@%s", endpoint);
    return 0;
}

//  Upper-case type name for zproxy ("PULL").
static void
s_upper (const char *text, char *buf, size_t size)
{
    size_t i = 0;
    for (; text[i] && i + 1 < size; i++)
        buf[i] = (char) toupper ((unsigned char) text[i]);
    buf[i] = 0;
}

/*  Run libzmq's zmq_proxy or czmq's zproxy on the spec'd sockets. In a
    process it runs until killed (SIGTERM: the bench installs no handler
    there). In a thread (control is set) it stops on TERMINATE from the
    control PAIR socket: zmq_proxy_steerable, or a wait before destroying
    the zproxy actor.                                                    */
static void
s_role_device (const s_role_t *role, s_result_t *result)
{
    zsock_t *front = NULL, *back = NULL, *control = NULL;
    zk_spec_t *front_spec = NULL, *back_spec = NULL, *control_spec = NULL;
    zactor_t *zproxy_actor = NULL;
    char ready[3 * SPEC_MAX] = "";
    if (*role->control
        && s_open (role, "control", role->control, 0, &control, &control_spec, result))
        return;
    if (streq (role->device, "zmq-proxy")) {
        //  The reference gets zkit's setup: same hwm, a verboser xpub.
        if (zk_engine_open ("frontend", role->spec, NULL, role->hwm, 0, &front, &front_spec)
            || zk_engine_open ("backend", role->spec2, NULL, role->hwm, 0, &back, &back_spec)) {
            s_fail (result, "zmq_proxy: cannot open its sockets");
            goto out;
        }
        if (zsock_type (back) == ZMQ_XPUB) {
            int on = 1;
            zmq_setsockopt (zsock_resolve (back), ZMQ_XPUB_VERBOSER, &on, sizeof on);
        }
        s_ready_add (ready, sizeof ready, "frontend", front_spec);
        s_ready_add (ready, sizeof ready, "backend", back_spec);
        if (s_ready_write (role, ready, result))
            goto out;
        if (control)
            zmq_proxy_steerable (zsock_resolve (front), zsock_resolve (back), NULL,
                                 zsock_resolve (control));
        else
            zmq_proxy (zsock_resolve (front), zsock_resolve (back), NULL);
    }
    else {
        front_spec = zk_spec_new (role->spec);
        back_spec = zk_spec_new (role->spec2);
        char front_endpoint[ENDPOINT_MAX], back_endpoint[ENDPOINT_MAX], front_type[16],
            back_type[16];
        if (!front_spec || !back_spec
            || s_zproxy_endpoint (front_spec, front_endpoint, sizeof front_endpoint)
            || s_zproxy_endpoint (back_spec, back_endpoint, sizeof back_endpoint)) {
            s_fail (result, "zproxy: bad specs");
            goto out;
        }
        s_upper (zk_spec_type_name (front_spec), front_type, sizeof front_type);
        s_upper (zk_spec_type_name (back_spec), back_type, sizeof back_type);
        //  zproxy's sockets take czmq's default high-water marks.
        zsys_set_sndhwm ((size_t) role->hwm);
        zsys_set_rcvhwm ((size_t) role->hwm);
        zproxy_actor = zactor_new (zproxy, NULL);
        if (!zproxy_actor) {
            s_fail (result, "zproxy: cannot start");
            goto out;
        }
        zstr_sendx (zproxy_actor, "FRONTEND", front_type, front_endpoint, NULL);
        zsock_wait (zproxy_actor);
        zstr_sendx (zproxy_actor, "BACKEND", back_type, back_endpoint, NULL);
        zsock_wait (zproxy_actor);
        size_t used = strlen (ready);
        snprintf (ready + used, sizeof ready - used, "frontend %s\nbackend %s\n",
                  front_endpoint + 1, back_endpoint + 1);
        if (s_ready_write (role, ready, result))
            goto out;
        if (control) {
            char *command = NULL;
            while (!command && !zsys_interrupted)
                command = zstr_recv (control);  //  times out with the role: wait again
            zstr_free (&command);
        }
        else
            while (true)
                pause ();  //  until SIGTERM ends the process
    }
out:
    zactor_destroy (&zproxy_actor);
    zsock_destroy (&front);
    zsock_destroy (&back);
    zsock_destroy (&control);
    zk_spec_destroy (&front_spec);
    zk_spec_destroy (&back_spec);
    zk_spec_destroy (&control_spec);
}

//  Pin the calling thread to the role's CPU, if it has one.
static void
s_pin (const s_role_t *role)
{
    if (role->cpu < 0 || role->cpu >= CPU_SETSIZE)
        return;
    cpu_set_t set;
    CPU_ZERO (&set);
    CPU_SET (role->cpu, &set);
    if (pthread_setaffinity_np (pthread_self (), sizeof set, &set) != 0)
        zk_warn_limited ("cannot pin the %s to CPU %d", role->name, role->cpu);
}

typedef void (s_role_fn) (const s_role_t *role, s_result_t *result);

static s_role_fn *
s_role_function (const char *name)
{
    if (streq (name, "sender"))
        return s_role_sender;
    if (streq (name, "receiver") || streq (name, "subscriber"))
        return s_role_receiver;
    if (streq (name, "publisher"))
        return s_role_publisher;
    if (streq (name, "client"))
        return s_role_client;
    if (streq (name, "server"))
        return s_role_server;
    if (streq (name, "caller"))
        return s_role_caller;
    if (streq (name, "lbserver"))
        return s_role_lbserver;
    if (streq (name, "device"))
        return s_role_device;
    if (streq (name, "producer"))
        return s_role_producer;
    if (streq (name, "consumer"))
        return s_role_consumer;
    return NULL;
}

bool
zk_bench_is_role (int argc, char **argv)
{
    return argc >= 3 && streq (argv[1], "--role");
}

int
zk_bench_role_main (int argc, char **argv)
{
    assert (zk_bench_is_role (argc, argv));
    zk_log_set_program ("zkit-bench");
    s_role_t role = {0};
    snprintf (role.name, sizeof role.name, "%s", argv[2]);
    s_role_fn *run = s_role_function (role.name);
    if (!run) {
        zk_error ("unknown role '%s'", argv[2]);
        return 2;
    }
    for (int i = 3; i < argc; i++)
        if (s_field_parse (s_role_fields, sizeof s_role_fields / sizeof s_role_fields[0], &role,
                           argv[i])) {
            zk_error ("bad role argument '%s'", argv[i]);
            return 2;
        }
    //  A reference device is stopped by SIGTERM: no czmq handler.
    if (streq (role.name, "device"))
        zsys_handler_set (NULL);
    s_result_t result = {0};
    s_pin (&role);
    run (&role, &result);
    char line[4096] = "", field[ERROR_MAX + 32];
    for (size_t i = 0; i < sizeof s_result_fields / sizeof s_result_fields[0]; i++) {
        s_field_format (&s_result_fields[i], &result, field, sizeof field);
        size_t used = strlen (line);
        snprintf (line + used, sizeof line - used, "%s%s", used ? " " : "", field);
    }
    printf ("%s error=%s\n", line, result.error);
    fflush (stdout);
    return 0;
}

//  Parse a result line (as zk_bench_role_main prints it). 0 or ZK_EPROTO.
static int
s_result_parse (char *line, s_result_t *result)
{
    char *error = strstr (line, " error=");
    if (!error)
        return ZK_EPROTO;
    *error = 0;
    snprintf (result->error, sizeof result->error, "%s", error + 7);
    size_t length = strlen (result->error);
    while (length && (result->error[length - 1] == '\n' || result->error[length - 1] == '\r'))
        result->error[--length] = 0;
    char *save = NULL;
    for (char *token = strtok_r (line, " ", &save); token; token = strtok_r (NULL, " ", &save))
        if (s_field_parse (s_result_fields, sizeof s_result_fields / sizeof s_result_fields[0],
                           result, token))
            return ZK_EPROTO;
    return 0;
}

//  ---------------------------------------------------------------- tasks

//  One role of a run: a child process, or a thread with `inproc`.
typedef struct {
    s_role_t role;
    s_result_t result;
    bool threaded;
    bool started;
    bool collected;
    pthread_t thread;
    int done;  //  thread finished (atomic)
    pid_t pid;
    int pidfd;
    int release_fd;  //  write end of a sender's hold pipe; -1: none
    int status;      //  process: wait status once collected
    char out_path[PATH_MAX_BENCH];
    char err_path[PATH_MAX_BENCH];
} s_task_t;

static void *
s_task_thread (void *args)
{
    s_task_t *task = args;
    s_pin (&task->role);
    s_role_function (task->role.name) (&task->role, &task->result);
    __atomic_store_n (&task->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

//  Spawn path with argv, stdin from stdin_fd (-1: /dev/null), stdout and
//  stderr into files. 0 or ZK_EIO.
static int
s_spawn (const char *path, char *const argv[], int stdin_fd, const char *out_path,
         const char *err_path, pid_t *pid_p)
{
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init (&actions);
    if (stdin_fd >= 0)
        posix_spawn_file_actions_adddup2 (&actions, stdin_fd, 0);
    else
        posix_spawn_file_actions_addopen (&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen (&actions, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen (&actions, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    //  Default signal handling in the child: SIGTERM stops it.
    posix_spawnattr_t attributes;
    posix_spawnattr_init (&attributes);
    sigset_t all, none;
    sigfillset (&all);
    sigemptyset (&none);
    posix_spawnattr_setsigdefault (&attributes, &all);
    posix_spawnattr_setsigmask (&attributes, &none);
    posix_spawnattr_setflags (&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    int rc = posix_spawn (pid_p, path, &actions, &attributes, argv, environ);
    posix_spawnattr_destroy (&attributes);
    posix_spawn_file_actions_destroy (&actions);
    if (rc) {
        zk_error ("cannot run %s: %s", path, strerror (rc));
        return ZK_EIO;
    }
    return 0;
}

//  The last line of a file, or its last 200 bytes, for error messages.
static void
s_tail (const char *path, char *buf, size_t size)
{
    buf[0] = 0;
    FILE *file = fopen (path, "r");
    if (!file)
        return;
    char line[512];
    while (fgets (line, sizeof line, file))
        if (line[0] != '\n')
            s_copy (buf, size, line);
    fclose (file);
    size_t length = strlen (buf);
    while (length && buf[length - 1] == '\n')
        buf[--length] = 0;
}

static int
s_task_start (const char *exe, s_task_t *task, const char *dir, int index)
{
    task->pidfd = -1;
    task->release_fd = -1;
    int hold[2] = {-1, -1};
    if (task->role.hold_fd >= 0) {
        if (pipe2 (hold, O_CLOEXEC) != 0) {
            s_fail (&task->result, "cannot make a pipe: %s", strerror (errno));
            return ZK_EIO;
        }
        task->release_fd = hold[1];
        //  A process reads its stdin, a thread the pipe itself.
        task->role.hold_fd = task->threaded ? hold[0] : 0;
    }
    if (task->threaded) {
        if (pthread_create (&task->thread, NULL, s_task_thread, task)) {
            s_fail (&task->result, "cannot start a thread");
            if (hold[0] >= 0) {
                close (hold[0]);
                close (hold[1]);
                task->release_fd = -1;
            }
            return ZK_EIO;
        }
        task->started = true;
        return 0;
    }
    snprintf (task->out_path, sizeof task->out_path, "%s/%s-%d.out", dir, task->role.name, index);
    snprintf (task->err_path, sizeof task->err_path, "%s/%s-%d.err", dir, task->role.name, index);
    size_t fields = sizeof s_role_fields / sizeof s_role_fields[0];
    char storage[sizeof s_role_fields / sizeof s_role_fields[0]][SPEC_MAX + 32];
    char *argv[4 + sizeof s_role_fields / sizeof s_role_fields[0]];
    argv[0] = (char *) exe;
    argv[1] = "--role";
    argv[2] = task->role.name;
    for (size_t i = 0; i < fields; i++) {
        s_field_format (&s_role_fields[i], &task->role, storage[i], sizeof storage[i]);
        argv[3 + i] = storage[i];
    }
    argv[3 + fields] = NULL;
    int rc = s_spawn (exe, argv, hold[0], task->out_path, task->err_path, &task->pid);
    if (hold[0] >= 0)
        close (hold[0]);
    if (rc) {
        s_fail (&task->result, "cannot start the %s process", task->role.name);
        return ZK_EIO;
    }
    task->pidfd = pidfd_open (task->pid, 0);
    task->started = true;
    return 0;
}

//  True once the task has finished (non-blocking).
static bool
s_task_finished (s_task_t *task)
{
    if (!task->started || task->collected)
        return true;
    if (task->threaded)
        return __atomic_load_n (&task->done, __ATOMIC_ACQUIRE);
    return waitpid (task->pid, &task->status, WNOHANG) == task->pid && (task->collected = true);
}

//  Gather the result of a finished task.
static void
s_task_collect (s_task_t *task)
{
    if (!task->started)
        return;
    if (task->threaded) {
        pthread_join (task->thread, NULL);
        task->started = false;
        return;
    }
    if (!task->collected)
        waitpid (task->pid, &task->status, 0);
    task->collected = true;
    task->started = false;
    if (task->pidfd >= 0)
        close (task->pidfd);
    task->pidfd = -1;
    FILE *file = fopen (task->out_path, "r");
    char line[4096] = "";
    bool got = file && fgets (line, sizeof line, file);
    if (file)
        fclose (file);
    s_result_t parsed = {0};
    if (got && s_result_parse (line, &parsed) == 0) {
        task->result = parsed;
        return;
    }
    char tail[256];
    s_tail (task->err_path, tail, sizeof tail);
    if (WIFSIGNALED (task->status))
        s_fail (&task->result, "the %s process was killed by signal %d%s%s", task->role.name,
                WTERMSIG (task->status), *tail ? ": " : "", tail);
    else
        s_fail (&task->result, "the %s process exited with status %d%s%s", task->role.name,
                WEXITSTATUS (task->status), *tail ? ": " : "", tail);
}

//  Wait until task has finished, at most until deadline (ms on zk_now_ms):
//  a process through its pidfd, a thread by join. At the deadline a process
//  is killed, a thread reported (it ends on its own timeouts). 0 or ZK_ETIMEDOUT.
static int
s_task_wait (s_task_t *task, int64_t deadline)
{
    int rc = 0;
    if (!task->started)
        return 0;
    while (!s_task_finished (task)) {
        int64_t left = deadline - zk_now_ms ();
        if (left <= 0) {
            rc = ZK_ETIMEDOUT;
            break;
        }
        if (task->threaded) {
            struct timespec until;
            clock_gettime (CLOCK_REALTIME, &until);
            int64_t wait_ms = left < 100 ? left : 100;
            until.tv_sec += wait_ms / 1000;
            until.tv_nsec += (wait_ms % 1000) * 1000000;
            if (until.tv_nsec >= 1000000000) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000;
            }
            if (pthread_timedjoin_np (task->thread, NULL, &until) == 0) {
                task->started = false;  //  joined
                break;
            }
        }
        else {
            struct pollfd item = {task->pidfd, POLLIN, 0};
            if (task->pidfd < 0 || poll (&item, 1, (int) (left < 100 ? left : 100)) < 0)
                zmq_poll (NULL, 0, 1);  //  no pidfd: look again in a millisecond
        }
    }
    if (rc) {
        if (!task->threaded && task->started) {
            kill (task->pid, SIGKILL);
            waitpid (task->pid, &task->status, 0);
            task->collected = true;
        }
        s_fail (&task->result, "the %s did not finish in time", task->role.name);
    }
    if (!task->threaded || task->started)
        s_task_collect (task);
    return rc;
}

/*  Wait for every task, at most until deadline: first the ones that end on
    their own (receivers, publisher, client...), then release the senders
    held open for them (s_hold) and wait for those. 0 or ZK_ETIMEDOUT.   */
static int
s_tasks_wait (s_task_t *tasks, int count, int64_t deadline)
{
    int rc = 0;
    for (int i = 0; i < count; i++)
        if (tasks[i].release_fd < 0 && s_task_wait (&tasks[i], deadline))
            rc = ZK_ETIMEDOUT;
    for (int i = 0; i < count; i++)
        if (tasks[i].release_fd >= 0) {
            close (tasks[i].release_fd);
            tasks[i].release_fd = -1;
            if (s_task_wait (&tasks[i], deadline))
                rc = ZK_ETIMEDOUT;
        }
    return rc;
}

//  Wait for a ready file written by task (or by the process pid), at most
//  READY_WAIT_MS. Its contents (caller frees), or NULL if the writer ended
//  first or the time ran out (reason in result).
static char *
s_wait_ready (const char *path, s_task_t *task, pid_t pid, int *status_p, s_result_t *result)
{
    int64_t deadline = zk_now_ms () + READY_WAIT_MS;
    while (true) {
        FILE *file = fopen (path, "r");
        if (file) {
            char *contents = calloc (1, 4096);
            if (contents)
                fread (contents, 1, 4095, file);
            fclose (file);
            return contents;
        }
        if (task && s_task_finished (task)) {
            s_task_collect (task);
            s_fail (result, "%s",
                    task->result.failed ? task->result.error : "a role ended before it was ready");
            return NULL;
        }
        if (pid > 0 && waitpid (pid, status_p, WNOHANG) == pid) {
            s_fail (result, "exited before it was ready");
            return NULL;
        }
        if (zk_now_ms () > deadline) {
            s_fail (result, "not ready within %d s", READY_WAIT_MS / 1000);
            return NULL;
        }
        zmq_poll (NULL, 0, 1);  //  look again in a millisecond
    }
}

//  The endpoint after "ROLE " in ready-file text, into buf. 0 or ZK_EPROTO.
static int
s_ready_endpoint (const char *text, const char *which, char *buf, size_t size)
{
    size_t length = strlen (which);
    for (const char *line = text; line && *line;
         line = strchr (line, '\n') ? strchr (line, '\n') + 1 : NULL) {
        if (strncmp (line, which, length) == 0 && line[length] == ' ') {
            const char *start = line + length + 1;
            size_t end = strcspn (start, "\n");
            if (end == 0 || end >= size)
                return ZK_EPROTO;
            memcpy (buf, start, end);
            buf[end] = 0;
            return 0;
        }
    }
    return ZK_EPROTO;
}

//  ---------------------------------------------------------------- the bench

#define MAX_ITEMS 32

typedef struct {
    const s_channel_t *channel;
    const char *transport;
    size_t size;
    int subscribers;  //  fan-out only
    long count;
    int warmup;
    int baseline;  //  index of the baseline case, or -1
    int runs;      //  completed without error
    int failures;
    uint64_t lost, disorder, bad;
    double rate[ZK_BENCH_MAX_REPEAT], byte_rate[ZK_BENCH_MAX_REPEAT];
    //  queue: rate is confirmed puts/s; consumed+acked/s, and both at once
    double acked_rate[ZK_BENCH_MAX_REPEAT], both_rate[ZK_BENCH_MAX_REPEAT];
    double latency[LATENCIES][ZK_BENCH_MAX_REPEAT];
    char error[ERROR_MAX];
} s_case_t;

struct _zk_bench_t {
    zk_bench_config_t config;
    char exe[PATH_MAX];
    char bin_dir[PATH_MAX];
    const s_channel_t *channels[CHANNELS];
    size_t channel_count;
    size_t sizes[MAX_ITEMS];
    size_t size_count;
    const char *transports[3];
    size_t transport_count;
    int subscribers[MAX_ITEMS];
    size_t subscriber_count;
    s_case_t *cases;
    size_t case_count;
    uint64_t lost;
    int failed_runs;
    long serial;  //  runs so far: unique inproc names
};

static const char *s_transport_names[] = {"tcp", "ipc", "inproc"};
static const char *s_kind_names[KINDS] = {"throughput", "fanout", "latency", "queue"};

//  Split a comma-separated list and call item for each part; stops at the first error.
typedef int (s_item_fn) (zk_bench_t *self, const char *item, size_t length, char *reason,
                         size_t reason_size);

static int
s_each_item (zk_bench_t *self, const char *list, s_item_fn *item, char *reason, size_t reason_size)
{
    const char *start = list;
    while (true) {
        size_t length = strcspn (start, ",");
        if (length == 0)
            return zk_engine_reason (reason, reason_size, "an empty item in '%s'", list);
        int rc = item (self, start, length, reason, reason_size);
        if (rc)
            return rc;
        if (!start[length])
            return 0;
        start += length + 1;
    }
}

static int
s_add_channel (zk_bench_t *self, const char *name, size_t length, char *reason, size_t reason_size)
{
    const s_channel_t *channel = s_channel_find (name, length);
    if (!channel)
        return zk_engine_reason (reason, reason_size,
                                 "unknown channel '%.*s' (see --list-channels)", (int) length,
                                 name);
    for (size_t i = 0; i < self->channel_count; i++)
        if (self->channels[i] == channel)
            return 0;
    self->channels[self->channel_count++] = channel;
    return 0;
}

static int
s_add_size (zk_bench_t *self, const char *text, size_t length, char *reason, size_t reason_size)
{
    char item[32];
    size_t size;
    if (length >= sizeof item)
        return zk_engine_reason (reason, reason_size, "bad size '%.*s'", (int) length, text);
    memcpy (item, text, length);
    item[length] = 0;
    if (zk_cli_parse_size (item, &size) || size > ZK_BENCH_MAX_SIZE)
        return zk_engine_reason (reason, reason_size,
                                 "bad size '%s': bytes up to 64M, with k or M suffix", item);
    if (self->size_count == MAX_ITEMS)
        return zk_engine_reason (reason, reason_size, "at most %d sizes", MAX_ITEMS);
    self->sizes[self->size_count++] = size;
    return 0;
}

static int
s_add_transport (zk_bench_t *self, const char *text, size_t length, char *reason,
                 size_t reason_size)
{
    for (size_t i = 0; i < 3; i++)
        if (strlen (s_transport_names[i]) == length
            && !memcmp (s_transport_names[i], text, length)) {
            if (i == 2 && !self->config.inproc)
                return zk_engine_reason (
                    reason, reason_size,
                    "the inproc transport needs --inproc (threads in one process)");
            for (size_t j = 0; j < self->transport_count; j++)
                if (self->transports[j] == s_transport_names[i])
                    return 0;
            self->transports[self->transport_count++] = s_transport_names[i];
            return 0;
        }
    return zk_engine_reason (reason, reason_size, "unknown transport '%.*s' (tcp, ipc or inproc)",
                             (int) length, text);
}

static int
s_add_subscribers (zk_bench_t *self, const char *text, size_t length, char *reason,
                   size_t reason_size)
{
    char item[16];
    if (length >= sizeof item)
        return zk_engine_reason (reason, reason_size, "bad subscriber count '%.*s'", (int) length,
                                 text);
    memcpy (item, text, length);
    item[length] = 0;
    char *end;
    long k = strtol (item, &end, 10);
    if (*end || k < 1 || k > ZK_BENCH_MAX_SUBSCRIBERS)
        return zk_engine_reason (reason, reason_size, "bad subscriber count '%s': 1 to %d", item,
                                 ZK_BENCH_MAX_SUBSCRIBERS);
    if (self->subscriber_count == MAX_ITEMS)
        return zk_engine_reason (reason, reason_size, "at most %d subscriber counts", MAX_ITEMS);
    self->subscribers[self->subscriber_count++] = (int) k;
    return 0;
}

//  Parse the lists of config into self. 0 or ZK_EINVAL with a reason.
static int
s_parse_lists (zk_bench_t *self, char *reason, size_t reason_size)
{
    const zk_bench_config_t *config = &self->config;
    if (s_each_item (self, config->channels ? config->channels : s_default_channels, s_add_channel,
                     reason, reason_size)
        || s_each_item (self, config->sizes ? config->sizes : "64", s_add_size, reason, reason_size)
        || s_each_item (self, config->transports ? config->transports : "tcp", s_add_transport,
                        reason, reason_size)
        || s_each_item (self, config->subscribers ? config->subscribers : "1", s_add_subscribers,
                        reason, reason_size))
        return ZK_EINVAL;
    //  Every channel's baseline runs too, first.
    size_t count = self->channel_count;
    for (size_t i = 0; i < count; i++)
        if (self->channels[i]->baseline
            && s_add_channel (self, self->channels[i]->baseline,
                              strlen (self->channels[i]->baseline), reason, reason_size))
            return ZK_EINVAL;
    //  A queue message carries its sequence number; zkit-queue serves tcp and ipc.
    for (size_t i = 0; i < self->channel_count; i++) {
        if (self->channels[i]->kind != S_QUEUE)
            continue;
        for (size_t t = 0; t < self->transport_count; t++)
            if (streq (self->transports[t], "inproc"))
                return zk_engine_reason (reason, reason_size,
                                         "channel %s runs over tcp or ipc, not inproc",
                                         self->channels[i]->name);
        for (size_t z = 0; z < self->size_count; z++)
            if (self->sizes[z] < s_seq_size (false))
                return zk_engine_reason (
                    reason, reason_size,
                    "channel %s needs messages of at least 8 bytes (a sequence number), not %zu",
                    self->channels[i]->name, self->sizes[z]);
    }
    return 0;
}

int
zk_bench_validate (const zk_bench_config_t *config, char *reason, size_t reason_size)
{
    assert (config);
    zk_bench_t *probe = calloc (1, sizeof *probe);
    if (!probe)
        return ZK_ENOMEM;
    probe->config = *config;
    int rc = s_parse_lists (probe, reason, reason_size);
    free (probe);
    if (rc)
        return rc;
    if (config->repeat < 0 || config->repeat > ZK_BENCH_MAX_REPEAT)
        return zk_engine_reason (reason, reason_size, "--repeat must be 1 to %d",
                                 ZK_BENCH_MAX_REPEAT);
    if (config->count < 0)
        return zk_engine_reason (reason, reason_size, "--count must be positive");
    if (config->format && !streq (config->format, "table") && !streq (config->format, "csv")
        && !streq (config->format, "json") && !streq (config->format, "markdown"))
        return zk_engine_reason (reason, reason_size, "unknown format '%s'", config->format);
    if (config->hwm < 0 || config->window < 0 || config->timeout < 0 || config->skip_every < 0)
        return zk_engine_reason (reason, reason_size, "negative values are not allowed");
    if (config->queue_window < 0 || config->queue_window > ZK_BENCH_MAX_QUEUE_WINDOW)
        return zk_engine_reason (reason, reason_size, "--queue-window must be 1 to %d",
                                 ZK_BENCH_MAX_QUEUE_WINDOW);
    if (config->pin && sysconf (_SC_NPROCESSORS_ONLN) < 2)
        return zk_engine_reason (reason, reason_size, "--pin needs two CPUs");
    int hwm = config->hwm ? config->hwm : DEFAULT_HWM;
    if (config->window && config->window * 5 > hwm * 2)
        return zk_engine_reason (reason, reason_size,
                                 "--window %d would let queues reach --hwm %d: at most 2/5 of it",
                                 config->window, hwm);
    return 0;
}

//  The binary a device kind runs, or NULL (a reference, run by us).
static const char *
s_device_program (s_device_kind_t kind)
{
    switch (kind) {
        case D_ZKIT_PROXY:
        case D_ZKIT_LB: return "zkit-proxy";
        case D_ZKIT_FORWARDER: return "zkit-forwarder";
        case D_ZKIT_WORKER:
        case D_ZKIT_WORKER_EXEC: return "zkit-worker";
        case D_ZKIT_QUEUE: return "zkit-queue";
        default: return NULL;
    }
}

static long
s_auto_count (const zk_bench_t *self, const s_channel_t *channel, size_t size)
{
    if (self->config.count)
        return self->config.count;
    long count;
    if (channel->kind == S_RPC)
        count = 2000;
    else if (channel->kind == S_QUEUE) {
        //  Every message goes to disk: 50000 at most, 64 MiB at most.
        count = (long) (QUEUE_BYTES_TARGET / (size ? size : 1));
        if (count > QUEUE_COUNT)
            count = QUEUE_COUNT;
        if (count < 1000)
            count = 1000;
    }
    else {
        size_t per = size ? size : 1;
        count = (long) (RUN_BYTES_TARGET / per);
        if (count < 2000)
            count = 2000;
        if (count > 500000)
            count = 500000;
    }
    count /= channel->count_divisor;
    return count < 10 ? 10 : count;
}

//  The index of the case of channel name, transport and size; -1 if none.
static int
s_case_index (const zk_bench_t *self, const char *name, const char *transport, size_t size)
{
    for (size_t i = 0; i < self->case_count; i++) {
        const s_case_t *item = &self->cases[i];
        if (streq (item->channel->name, name) && item->transport == transport && item->size == size)
            return (int) i;
    }
    return -1;
}

//  Build the case list: for each transport, size and (fan-out) K, every
//  selected channel of each kind, its baseline first. A queue channel's
//  baseline is the PUSH/PULL case of its transport and size, built before.
static int
s_build_cases (zk_bench_t *self)
{
    size_t most =
        self->transport_count * self->size_count * (self->subscriber_count + 1) * CHANNELS;
    self->cases = calloc (most, sizeof *self->cases);
    if (!self->cases)
        return ZK_ENOMEM;
    for (int kind = S_PIPE; kind < KINDS; kind++)
        for (size_t t = 0; t < self->transport_count; t++)
            for (size_t z = 0; z < self->size_count; z++) {
                size_t k_count = kind == S_FANOUT ? self->subscriber_count : 1;
                for (size_t k = 0; k < k_count; k++) {
                    int baseline =
                        kind == S_QUEUE
                            ? s_case_index (self, "push", self->transports[t], self->sizes[z])
                            : -1;
                    //  Baselines first (table order), then the rest.
                    for (int pass = 0; pass < 2; pass++)
                        for (size_t c = 0; c < CHANNELS; c++) {
                            const s_channel_t *channel = &s_channels[c];
                            bool selected = false;
                            for (size_t i = 0; i < self->channel_count; i++)
                                selected |= self->channels[i] == channel;
                            if (!selected || (int) channel->kind != kind
                                || (pass == 0) != (channel->baseline == NULL))
                                continue;
                            s_case_t *item = &self->cases[self->case_count];
                            item->channel = channel;
                            item->transport = self->transports[t];
                            item->size = self->sizes[z];
                            item->subscribers = kind == S_FANOUT ? self->subscribers[k] : 0;
                            item->count = s_auto_count (self, channel, item->size);
                            int warmup = self->config.warmup >= 0 ? self->config.warmup
                                         : channel->device == D_ZKIT_WORKER_EXEC ? 10
                                                                                 : DEFAULT_WARMUP;
                            item->warmup = warmup;
                            item->baseline = pass == 0 ? -1 : baseline;
                            if (pass == 0)
                                baseline = (int) self->case_count;
                            self->case_count++;
                        }
                }
            }
    return 0;
}

zk_bench_t *
zk_bench_new (const zk_bench_config_t *config)
{
    assert (config);
    char reason[512];
    if (zk_bench_validate (config, reason, sizeof reason)) {
        zk_error ("%s", reason);
        return NULL;
    }
    zk_bench_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->config = *config;
    if (!self->config.repeat)
        self->config.repeat = DEFAULT_REPEAT;
    if (!self->config.hwm)
        self->config.hwm = DEFAULT_HWM;
    if (!self->config.window)
        self->config.window = self->config.hwm * 2 / 5 > 0 ? self->config.hwm * 2 / 5 : 1;
    if (self->config.timeout <= 0)
        self->config.timeout = DEFAULT_TIMEOUT;
    if (!self->config.queue_window)
        self->config.queue_window = QUEUE_WINDOW;
    if (!self->config.format)
        self->config.format = "table";
    if (s_parse_lists (self, reason, sizeof reason) || s_build_cases (self)) {
        zk_bench_destroy (&self);
        return NULL;
    }
    ssize_t length = readlink ("/proc/self/exe", self->exe, sizeof self->exe - 1);
    if (length <= 0) {
        zk_error ("cannot find this program (/proc/self/exe): %s", strerror (errno));
        zk_bench_destroy (&self);
        return NULL;
    }
    self->exe[length] = 0;
    const char *bin_dir = config->bin_dir ? config->bin_dir : getenv ("ZK_BIN");
    if (bin_dir && *bin_dir)
        snprintf (self->bin_dir, sizeof self->bin_dir, "%s", bin_dir);
    else {
        snprintf (self->bin_dir, sizeof self->bin_dir, "%s", self->exe);
        char *slash = strrchr (self->bin_dir, '/');
        if (slash)
            *slash = 0;
    }
    //  Every binary a process-mode channel needs must be there before we start.
    if (!self->config.inproc)
        for (size_t i = 0; i < self->channel_count; i++) {
            const char *program = s_device_program (self->channels[i]->device);
            if (!program)
                continue;
            char path[PATH_MAX + 64];
            snprintf (path, sizeof path, "%s/%s", self->bin_dir, program);
            if (access (path, X_OK) != 0) {
                zk_error ("channel %s needs %s: %s: %s (set --bin-dir or ZK_BIN)",
                          self->channels[i]->name, program, path, strerror (errno));
                zk_bench_destroy (&self);
                return NULL;
            }
        }
    return self;
}

void
zk_bench_destroy (zk_bench_t **self_p)
{
    assert (self_p);
    zk_bench_t *self = *self_p;
    if (!self)
        return;
    free (self->cases);
    free (self);
    *self_p = NULL;
}

uint64_t
zk_bench_lost (const zk_bench_t *self)
{
    assert (self);
    return self->lost;
}

//  ---------------------------------------------------------------- devices

typedef struct {
    s_device_kind_t kind;
    bool started;
    //  a zkit binary
    pid_t pid;
    char err_path[PATH_MAX_BENCH];
    //  in-process zkit engines
    zk_proxy_t *proxy;
    zk_forwarder_t *forwarder;
    zk_worker_t *worker;
    zk_queue_t *queue;
    //  a reference device: a task (process, or thread stopped through control)
    s_task_t task;
    char control[ENDPOINT_MAX];
    char frontend[ENDPOINT_MAX];  //  resolved endpoints
    char backend[ENDPOINT_MAX];
} s_device_t;

//  The endpoints an in-process engine reports ("ROLE ENDPOINT" frames).
static int
s_engine_endpoints (zactor_t *actor, const char *front_role, const char *back_role,
                    s_device_t *device)
{
    zmsg_t *reply = zk_engine_request (actor, "ENDPOINTS");
    if (!reply)
        return ZK_EIO;
    char text[4 * SPEC_MAX] = "";
    for (char *line = zmsg_popstr (reply); line; line = zmsg_popstr (reply)) {
        size_t used = strlen (text);
        snprintf (text + used, sizeof text - used, "%s\n", line);
        zstr_free (&line);
    }
    zmsg_destroy (&reply);
    int rc = s_ready_endpoint (text, front_role, device->frontend, sizeof device->frontend);
    if (!rc && back_role)
        rc = s_ready_endpoint (text, back_role, device->backend, sizeof device->backend);
    return rc;
}

/*  Start the device of a run with its two specs (back is NULL for a
    worker serving requests itself, and for zkit-queue). A zkit binary
    gets --ready-file and is waited for, the devices --hwm, zkit-queue a
    fresh --data directory in the run's and the --fsync policy named by
    the channel (its own high-water marks: a queue client is not a PUSH
    socket); in-process engines are made with the same settings; a
    reference device is a role. The resolved endpoints go into
    device->frontend / backend. 0, or an error in result.               */
static int
s_device_start (zk_bench_t *self, s_device_t *device, const s_case_t *item, const char *front,
                const char *back, const char *dir, s_result_t *result)
{
    s_device_kind_t kind = item->channel->device;
    *device = (s_device_t){.kind = kind};
    device->task.pidfd = -1;
    device->task.release_fd = -1;
    device->task.role.hold_fd = -1;
    char hwm[16], data_dir[PATH_MAX_BENCH], max_size[32];
    snprintf (hwm, sizeof hwm, "%d", self->config.hwm);
    snprintf (data_dir, sizeof data_dir, "%s/data", dir);
    size_t max_bytes =
        item->size > ZK_QUEUE_DEFAULT_MAX_SIZE ? item->size : ZK_QUEUE_DEFAULT_MAX_SIZE;
    snprintf (max_size, sizeof max_size, "%zu", max_bytes);
    const char *fsync = item->channel->fsync;
    bool worker = kind == D_ZKIT_WORKER || kind == D_ZKIT_WORKER_EXEC;
    bool queue = kind == D_ZKIT_QUEUE;
    const char *front_role = worker ? "input" : queue ? "router" : "frontend";
    const char *back_role = back ? (worker ? "output" : "backend") : NULL;
    if (kind == D_ZMQ_PROXY || kind == D_ZPROXY) {
        s_task_t *task = &device->task;
        task->threaded = self->config.inproc;
        s_role_t *role = &task->role;
        snprintf (role->name, sizeof role->name, "device");
        snprintf (role->device, sizeof role->device, "%s",
                  kind == D_ZMQ_PROXY ? "zmq-proxy" : "zproxy");
        snprintf (role->spec, sizeof role->spec, "%s", front);
        snprintf (role->spec2, sizeof role->spec2, "%s", back);
        snprintf (role->ready, sizeof role->ready, "%s/device.ready", dir);
        role->cpu = -1;
        role->hwm = self->config.hwm;
        role->timeout = self->config.timeout;
        if (task->threaded) {
            snprintf (device->control, sizeof device->control, "inproc://zkit-bench-%d-%ld-control",
                      (int) getpid (), self->serial);
            snprintf (role->control, sizeof role->control, "pair@%s", device->control);
        }
        if (s_task_start (self->exe, task, dir, 0))
            return s_fail (result, "%s", task->result.error), ZK_EIO;
        device->started = true;
        char *ready = s_wait_ready (role->ready, task, 0, NULL, result);
        if (!ready)
            return ZK_EIO;
        int rc = s_ready_endpoint (ready, "frontend", device->frontend, sizeof device->frontend)
                 || s_ready_endpoint (ready, "backend", device->backend, sizeof device->backend);
        free (ready);
        if (rc)
            s_fail (result, "%s: a bad ready file", role->device);
        return rc ? ZK_EPROTO : 0;
    }
    if (self->config.inproc) {
        zactor_t *actor = NULL;
        if (kind == D_ZKIT_PROXY || kind == D_ZKIT_LB) {
            zk_proxy_config_t config = {.frontend = front,
                                        .backend = back,
                                        .lb = kind == D_ZKIT_LB,
                                        .hwm = self->config.hwm,
                                        .max_size = ZK_MAX_SIZE_UNLIMITED,
                                        .linger_ms = -1};
            device->proxy = zk_proxy_new (&config);
            actor = device->proxy ? zk_proxy_actor (device->proxy) : NULL;
        }
        else if (kind == D_ZKIT_FORWARDER) {
            zk_forwarder_config_t config = {.frontend = front,
                                            .backend = back,
                                            .hwm = self->config.hwm,
                                            .max_size = ZK_MAX_SIZE_UNLIMITED,
                                            .linger_ms = -1};
            device->forwarder = zk_forwarder_new (&config);
            actor = device->forwarder ? zk_forwarder_actor (device->forwarder) : NULL;
        }
        else if (worker) {
            char *argv[] = {"cat", NULL};
            zk_worker_config_t config = {.input = front,
                                         .output = back,
                                         .argv = argv,
                                         .lines = kind == D_ZKIT_WORKER,
                                         .hwm = self->config.hwm,
                                         .max_size = ZK_MAX_SIZE_UNLIMITED,
                                         .linger_ms = -1};
            device->worker = zk_worker_new (&config);
            actor = device->worker ? zk_worker_actor (device->worker) : NULL;
        }
        else {
            zk_queue_config_t config;
            zk_queue_config_init (&config);
            const char *specs[] = {front, NULL};
            config.data_dir = data_dir;
            config.specs = specs;
            config.fsync = streq (fsync, "always")  ? ZK_QUEUE_FSYNC_ALWAYS
                           : streq (fsync, "never") ? ZK_QUEUE_FSYNC_NEVER
                                                    : ZK_QUEUE_FSYNC_BATCH;
            config.max_size = max_bytes;
            device->queue = zk_queue_new (&config);
            actor = device->queue ? zk_queue_actor (device->queue) : NULL;
        }
        if (!actor) {
            s_fail (result, "the in-process %s would not start", s_device_program (kind));
            return ZK_EIO;
        }
        device->started = true;
        if (s_engine_endpoints (actor, front_role, back_role, device)) {
            s_fail (result, "the in-process %s reported no endpoints", s_device_program (kind));
            return ZK_EIO;
        }
        return 0;
    }
    //  The real binary.
    char path[PATH_MAX + 64], ready_path[PATH_MAX_BENCH], out_path[PATH_MAX_BENCH];
    snprintf (path, sizeof path, "%s/%s", self->bin_dir, s_device_program (kind));
    snprintf (ready_path, sizeof ready_path, "%s/device.ready", dir);
    snprintf (out_path, sizeof out_path, "%s/device.out", dir);
    snprintf (device->err_path, sizeof device->err_path, "%s/device.err", dir);
    const char *argv[24];
    int argc = 0;
    argv[argc++] = path;
    if (worker) {
        argv[argc++] = "--in";
        argv[argc++] = front;
        if (back) {
            argv[argc++] = "--out";
            argv[argc++] = back;
        }
        if (kind == D_ZKIT_WORKER)
            argv[argc++] = "--lines";
    }
    else if (queue) {
        argv[argc++] = "--data";
        argv[argc++] = data_dir;
        argv[argc++] = "--fsync";
        argv[argc++] = fsync;
        argv[argc++] = "--max-size";
        argv[argc++] = max_size;
        argv[argc++] = front;
    }
    else {
        if (kind == D_ZKIT_LB)
            argv[argc++] = "--lb";
        argv[argc++] = front;
        argv[argc++] = back;
    }
    if (!queue) {
        argv[argc++] = "--hwm";
        argv[argc++] = hwm;
        argv[argc++] = "--max-size";  //  sizes up to 64M: no 1 MiB default here
        argv[argc++] = "unlimited";
    }
    argv[argc++] = "--ready-file";
    argv[argc++] = ready_path;
    if (worker) {
        argv[argc++] = "--";
        argv[argc++] = "cat";
    }
    argv[argc] = NULL;
    if (s_spawn (path, (char *const *) argv, -1, out_path, device->err_path, &device->pid)) {
        s_fail (result, "cannot run %s", path);
        return ZK_EIO;
    }
    device->started = true;
    int status = 0;
    char *ready = s_wait_ready (ready_path, NULL, device->pid, &status, result);
    if (!ready) {
        char tail[200];
        s_tail (device->err_path, tail, sizeof tail);
        char why[ERROR_MAX];
        s_copy (why, sizeof why, result->error);
        result->failed = 0;  //  say it again, with the device's last words
        s_fail (result, "%s: %s%s%s", s_device_program (kind), why, *tail ? ": " : "", tail);
        if (waitpid (device->pid, &status, WNOHANG) == device->pid)
            device->started = false;
        return ZK_EIO;
    }
    int rc = s_ready_endpoint (ready, front_role, device->frontend, sizeof device->frontend);
    if (!rc && back_role)
        rc = s_ready_endpoint (ready, back_role, device->backend, sizeof device->backend);
    free (ready);
    if (rc)
        s_fail (result, "%s: a bad ready file", s_device_program (kind));
    return rc;
}

//  Stop the device; a zkit binary must exit 0 within STOP_WAIT_MS of SIGTERM.
static void
s_device_stop (s_device_t *device, s_result_t *result)
{
    if (!device->started)
        return;
    device->started = false;
    if (device->kind == D_ZMQ_PROXY || device->kind == D_ZPROXY) {
        s_task_t *task = &device->task;
        if (task->threaded) {
            zsock_t *control = zsock_new (ZMQ_PAIR);
            if (control && zsock_connect (control, "%s", device->control) == 0)
                zstr_send (control, "TERMINATE");
            zsock_destroy (&control);
        }
        else
            kill (task->pid, SIGTERM);
        s_tasks_wait (task, 1, zk_now_ms () + STOP_WAIT_MS);
        //  A helper process ends by SIGTERM: that is its normal stop.
        bool stopped =
            !task->threaded && WIFSIGNALED (task->status) && WTERMSIG (task->status) == SIGTERM;
        if (task->result.failed && !stopped)
            s_fail (result, "%s", task->result.error);
        return;
    }
    if (device->proxy || device->forwarder || device->worker || device->queue) {
        zk_proxy_destroy (&device->proxy);
        zk_forwarder_destroy (&device->forwarder);
        zk_worker_destroy (&device->worker);
        zk_queue_destroy (&device->queue);
        return;
    }
    kill (device->pid, SIGTERM);
    int status = 0;
    int pidfd = pidfd_open (device->pid, 0);
    int64_t deadline = zk_now_ms () + STOP_WAIT_MS;
    while (waitpid (device->pid, &status, WNOHANG) != device->pid) {
        int64_t left = deadline - zk_now_ms ();
        if (left <= 0) {
            kill (device->pid, SIGKILL);
            waitpid (device->pid, &status, 0);
            s_fail (result, "%s did not stop within %d s of SIGTERM",
                    s_device_program (device->kind), STOP_WAIT_MS / 1000);
            break;
        }
        struct pollfd item = {pidfd, POLLIN, 0};
        if (pidfd < 0 || poll (&item, 1, (int) left) < 0)
            zmq_poll (NULL, 0, 1);
    }
    if (pidfd >= 0)
        close (pidfd);
    if (WIFEXITED (status) && WEXITSTATUS (status) != 0)
        s_fail (result, "%s exited with status %d at stop", s_device_program (device->kind),
                WEXITSTATUS (status));
}

//  ---------------------------------------------------------------- runs

typedef struct {
    char dir[DIR_MAX];
    s_task_t tasks[2 + ZK_BENCH_MAX_SUBSCRIBERS];
    int task_count;
    s_device_t device;
    s_result_t result;  //  the run's own failures (devices, readiness)
} s_run_t;

//  An endpoint for transport: a wildcard tcp port, an ipc path in the run's
//  directory, or an inproc name unique to this run.
static void
s_endpoint (zk_bench_t *self, s_run_t *run, const char *transport, const char *name, char *buf,
            size_t size)
{
    if (streq (transport, "tcp"))
        snprintf (buf, size, "tcp://127.0.0.1:*");
    else if (streq (transport, "ipc"))
        snprintf (buf, size, "ipc://%s/%s", run->dir, name);
    else
        snprintf (buf, size, "inproc://zkit-bench-%d-%ld-%s", (int) getpid (), self->serial, name);
}

static s_task_t *
s_run_task (zk_bench_t *self, s_run_t *run, const s_case_t *item, const char *name)
{
    s_task_t *task = &run->tasks[run->task_count++];
    *task = (s_task_t){.threaded = self->config.inproc, .pidfd = -1, .release_fd = -1};
    s_role_t *role = &task->role;
    snprintf (role->name, sizeof role->name, "%s", name);
    role->count = item->count;
    role->size = (long long) item->size;
    role->hwm = self->config.hwm;
    role->window = self->config.window;
    role->subscribers = item->subscribers;
    role->warmup = item->warmup;
    role->skip_every = self->config.skip_every;
    role->envelope = s_channel_envelope (item->channel);
    role->text = item->channel->text;
    role->timeout = self->config.timeout;
    //  --pin: the side that sends on CPU 0, the side that receives on CPU 1.
    bool sends = streq (name, "sender") || streq (name, "publisher") || streq (name, "client")
                 || streq (name, "caller") || streq (name, "producer");
    role->cpu = self->config.pin ? (sends ? 0 : 1) : -1;
    role->hold_fd = streq (name, "sender") ? 0 : -1;  //  s_task_start makes the pipe
    return task;
}

//  Start task. If it binds, wait for its ready file and return its text
//  (caller frees) in *ready_p. 0 or an error (in run->result).
static int
s_run_start (zk_bench_t *self, s_run_t *run, s_task_t *task, char **ready_p)
{
    int index = (int) (task - run->tasks);
    if (ready_p)
        snprintf (task->role.ready, sizeof task->role.ready, "%s/%s-%d.ready", run->dir,
                  task->role.name, index);
    if (s_task_start (self->exe, task, run->dir, index)) {
        s_fail (&run->result, "%s", task->result.error);
        return ZK_EIO;
    }
    if (!ready_p)
        return 0;
    *ready_p = s_wait_ready (task->role.ready, task, 0, NULL, &run->result);
    return *ready_p ? 0 : ZK_EIO;
}

//  "TYPE@ENDPOINT" (bind) or "TYPE>ENDPOINT" (connect) into buf.
static void
s_spec (char *buf, size_t size, const char *type, const char *endpoint, bool bind)
{
    snprintf (buf, size, "%s%c%s", type, bind ? '@' : '>', endpoint);
}

//  Start the run's device between a front and a back socket type, both bound.
static int
s_run_device (zk_bench_t *self, s_run_t *run, const s_case_t *item, const char *front_type,
              const char *back_type)
{
    char endpoint[ENDPOINT_MAX], front[SPEC_MAX], back[SPEC_MAX];
    s_endpoint (self, run, item->transport, "front", endpoint, sizeof endpoint);
    s_spec (front, sizeof front, front_type, endpoint, true);
    s_endpoint (self, run, item->transport, "back", endpoint, sizeof endpoint);
    s_spec (back, sizeof back, back_type, endpoint, true);
    return s_device_start (self, &run->device, item, front, back_type ? back : NULL, run->dir,
                           &run->result);
}

//  The endpoint of `which` in a ready text into buf (freeing the text). 0 or ZK_EPROTO.
static int
s_take_endpoint (s_run_t *run, char **ready_p, const char *which, char *buf, size_t size)
{
    int rc = *ready_p ? s_ready_endpoint (*ready_p, which, buf, size) : ZK_EPROTO;
    if (rc)
        s_fail (&run->result, "no '%s' endpoint in a ready file", which);
    return rc;
}

//  Point-to-point: sender → [device] → receiver.
static void
s_run_pipe (zk_bench_t *self, s_run_t *run, const s_case_t *item)
{
    s_task_t *receiver = s_run_task (self, run, item, "receiver");
    s_task_t *sender = s_run_task (self, run, item, "sender");
    char endpoint[ENDPOINT_MAX];
    if (item->channel->device != D_NONE) {
        if (s_run_device (self, run, item, "pull", "push"))
            return;
        s_spec (receiver->role.spec, sizeof receiver->role.spec, "pull", run->device.backend,
                false);
        s_spec (sender->role.spec, sizeof sender->role.spec, "push", run->device.frontend, false);
        if (s_run_start (self, run, receiver, NULL))
            return;
    }
    else {
        s_endpoint (self, run, item->transport, "data", endpoint, sizeof endpoint);
        s_spec (receiver->role.spec, sizeof receiver->role.spec, "pull", endpoint, true);
        char *ready = NULL;
        int rc = s_run_start (self, run, receiver, &ready)
                 || s_take_endpoint (run, &ready, "data", endpoint, sizeof endpoint);
        free (ready);
        if (rc)
            return;
        s_spec (sender->role.spec, sizeof sender->role.spec, "push", endpoint, false);
    }
    s_run_start (self, run, sender, NULL);
}

//  Fan-out: publisher → [device] → K subscribers; credit acks go straight
//  back to the publisher.
static void
s_run_fanout (zk_bench_t *self, s_run_t *run, const s_case_t *item)
{
    s_task_t *publisher = s_run_task (self, run, item, "publisher");
    char data[ENDPOINT_MAX], ack[ENDPOINT_MAX];
    s_endpoint (self, run, item->transport, "ack", ack, sizeof ack);
    s_spec (publisher->role.spec2, sizeof publisher->role.spec2, "pull", ack, true);
    bool device = item->channel->device != D_NONE;
    if (device) {
        if (s_run_device (self, run, item, "xsub", "xpub"))
            return;
        s_spec (publisher->role.spec, sizeof publisher->role.spec, "xpub", run->device.frontend,
                false);
        s_copy (data, sizeof data, run->device.backend);
    }
    else {
        s_endpoint (self, run, item->transport, "data", data, sizeof data);
        s_spec (publisher->role.spec, sizeof publisher->role.spec, "xpub", data, true);
    }
    char *ready = NULL;
    int rc = s_run_start (self, run, publisher, &ready)
             || s_take_endpoint (run, &ready, "ack", ack, sizeof ack)
             || (!device && s_take_endpoint (run, &ready, "data", data, sizeof data));
    free (ready);
    if (rc)
        return;
    for (int i = 0; i < item->subscribers; i++) {
        s_task_t *subscriber = s_run_task (self, run, item, "subscriber");
        subscriber->role.id = i;
        s_spec (subscriber->role.spec, sizeof subscriber->role.spec, "sub", data, false);
        s_spec (subscriber->role.spec2, sizeof subscriber->role.spec2, "push", ack, false);
        if (s_run_start (self, run, subscriber, NULL))
            return;
    }
}

//  Request-response: client → [device] → server, or client → zkit-worker.
static void
s_run_rpc (zk_bench_t *self, s_run_t *run, const s_case_t *item)
{
    s_device_kind_t kind = item->channel->device;
    char endpoint[ENDPOINT_MAX];
    if (kind == D_ZKIT_WORKER || kind == D_ZKIT_WORKER_EXEC) {
        if (s_run_device (self, run, item, "rep", NULL))
            return;
        s_copy (endpoint, sizeof endpoint, run->device.frontend);
    }
    else {
        bool lb = kind == D_ZKIT_LB;
        s_task_t *server = s_run_task (self, run, item, lb ? "lbserver" : "server");
        if (kind != D_NONE) {
            if (s_run_device (self, run, item, "router", lb ? "router" : "dealer"))
                return;
            s_spec (server->role.spec, sizeof server->role.spec, lb ? "dealer" : "rep",
                    run->device.backend, false);
            if (s_run_start (self, run, server, NULL))
                return;
            s_copy (endpoint, sizeof endpoint, run->device.frontend);
        }
        else {
            s_endpoint (self, run, item->transport, "data", endpoint, sizeof endpoint);
            s_spec (server->role.spec, sizeof server->role.spec, "rep", endpoint, true);
            char *ready = NULL;
            int rc = s_run_start (self, run, server, &ready)
                     || s_take_endpoint (run, &ready, "data", endpoint, sizeof endpoint);
            free (ready);
            if (rc)
                return;
        }
    }
    s_task_t *client = s_run_task (self, run, item, item->channel->caller ? "caller" : "client");
    s_spec (client->role.spec, sizeof client->role.spec, "req", endpoint, false);
    s_run_start (self, run, client, NULL);
}

//  A queue role of a phase, on queue `queue` of the run's zkit-queue.
static s_task_t *
s_queue_task (zk_bench_t *self, s_run_t *run, const s_case_t *item, const char *name, int phase,
              const char *queue)
{
    s_task_t *task = s_run_task (self, run, item, name);
    task->role.phase = phase;
    task->role.raw = item->channel->raw_client;
    task->role.window = self->config.queue_window;
    snprintf (task->role.spec, sizeof task->role.spec, "queue>%s/%s", run->device.frontend, queue);
    return task;
}

//  Wait for the tasks of a phase. 0 when each of them succeeded.
static int
s_queue_phase_wait (zk_bench_t *self, s_run_t *run, s_task_t *tasks, int count,
                    const s_case_t *item)
{
    double seconds =
        60 + 10 * self->config.timeout + (double) item->count * (double) (item->size + 64) / 1e6;
    s_tasks_wait (tasks, count, zk_now_ms () + (int64_t) (seconds * 1000));
    for (int i = 0; i < count; i++)
        if (tasks[i].result.failed)
            return ZK_EIO;
    return run->result.failed ? ZK_EIO : 0;
}

/*  A queue channel: a zkit-queue with the channel's --fsync policy, then
    three phases, each once the one before has succeeded: a producer fills
    queue "bench" (confirmed puts/s); a consumer empties it (consumed and
    acked msg/s); a consumer and a producer at once on "bench-e2e" (end to
    end: from the producer's first PUT to the consumer's last ACK answer).
    The consumer of the last phase starts first and is ready once its GET
    is answered.                                                        */
static void
s_run_queue (zk_bench_t *self, s_run_t *run, const s_case_t *item)
{
    if (s_run_device (self, run, item, "router", NULL))
        return;
    s_task_t *fill = s_queue_task (self, run, item, "producer", PHASE_FILL, "bench");
    if (s_run_start (self, run, fill, NULL) || s_queue_phase_wait (self, run, fill, 1, item))
        return;
    s_task_t *drain = s_queue_task (self, run, item, "consumer", PHASE_DRAIN, "bench");
    if (s_run_start (self, run, drain, NULL) || s_queue_phase_wait (self, run, drain, 1, item))
        return;
    s_task_t *consumer = s_queue_task (self, run, item, "consumer", PHASE_BOTH, "bench-e2e");
    char *ready = NULL;
    int rc = s_run_start (self, run, consumer, &ready);
    free (ready);
    if (rc)
        return;
    s_task_t *producer = s_queue_task (self, run, item, "producer", PHASE_BOTH, "bench-e2e");
    s_run_start (self, run, producer, NULL);
    s_queue_phase_wait (self, run, consumer, 2, item);
}

//  Remove the run's directory and what the roles and the queue left in it
//  (zkit-queue's data: a directory per queue), depth bounded.
static void
s_remove_dir (const char *dir, int depth)
{
    DIR *handle = opendir (dir);
    if (handle) {
        struct dirent *entry;
        while ((entry = readdir (handle))) {
            if (streq (entry->d_name, ".") || streq (entry->d_name, ".."))
                continue;
            char path[PATH_MAX_BENCH + 256];
            snprintf (path, sizeof path, "%s/%s", dir, entry->d_name);
            struct stat info;
            if (depth > 0 && lstat (path, &info) == 0 && S_ISDIR (info.st_mode))
                s_remove_dir (path, depth - 1);
            else
                unlink (path);
        }
        closedir (handle);
    }
    rmdir (dir);
}

//  The failures of the run and of its tasks, "; "-separated, into buf;
//  NULL if there were none.
static const char *
s_run_error (const s_run_t *run, char *buf, size_t size)
{
    buf[0] = 0;
    if (run->result.failed)
        s_copy (buf, size, run->result.error);
    for (int i = 0; i < run->task_count; i++)
        if (run->tasks[i].result.failed) {
            size_t used = strlen (buf);
            snprintf (buf + used, size - used, "%s%s", used ? "; " : "",
                      run->tasks[i].result.error);
        }
    return buf[0] ? buf : NULL;
}

//  Count a failed run of a case, and say why (each case keeps its first reason).
static void
s_record_failure (zk_bench_t *self, s_case_t *item, const char *error)
{
    item->failures++;
    self->failed_runs++;
    if (!*item->error)
        snprintf (item->error, sizeof item->error, "%s", error);
    if (self->config.progress)
        fprintf (stderr, "\r\033[K");
    zk_error ("%s %s %zu B%s: %s", item->channel->name, item->transport, item->size,
              item->subscribers ? " (K subscribers)" : "", error);
}

//  Add a run's lost, disordered and bad messages to its case and the bench.
static void
s_record_counts (zk_bench_t *self, s_case_t *item, uint64_t lost, uint64_t disorder, uint64_t bad)
{
    item->lost += lost;
    item->disorder += disorder;
    item->bad += bad;
    self->lost += lost;
}

//  Messages per second between two instants; 0 if none passed.
static double
s_per_second (uint64_t messages, int64_t from_ns, int64_t to_ns)
{
    return to_ns > from_ns ? (double) messages / ((double) (to_ns - from_ns) / 1e9) : 0;
}

/*  Record a queue run: the producer of PHASE_FILL gives confirmed puts/s,
    the consumer of PHASE_DRAIN consumed+acked/s, PHASE_BOTH its
    consumer's acked messages over the span from its producer's first PUT
    to its consumer's last ACK answer (both processes read the same
    monotonic clock). Messages a consumer never saw are lost; a phase that
    did not run (an earlier one failed) is a failure, not a loss.        */
static void
s_record_queue (zk_bench_t *self, s_case_t *item, s_run_t *run)
{
    double rates[4] = {0};  //  by phase
    int64_t both_first = 0;
    uint64_t lost = 0, disorder = 0, bad = 0;
    for (int i = 0; i < run->task_count; i++) {
        const s_task_t *task = &run->tasks[i];
        const s_result_t *result = &task->result;
        int phase = task->role.phase;
        bool consumer = streq (task->role.name, "consumer");
        lost += result->lost;
        disorder += result->disorder;
        bad += result->bad;
        if (phase == PHASE_BOTH && !consumer)
            both_first = result->first_ns;
        else if (phase >= PHASE_FILL && phase <= PHASE_BOTH)
            rates[phase] = s_per_second (result->received, result->first_ns, result->last_ns);
    }
    for (int i = 0; i < run->task_count; i++) {
        const s_task_t *task = &run->tasks[i];
        if (task->role.phase == PHASE_BOTH && streq (task->role.name, "consumer"))
            rates[PHASE_BOTH] =
                s_per_second (task->result.received, both_first, task->result.last_ns);
    }
    s_record_counts (self, item, lost, disorder, bad);
    char errors[4 * ERROR_MAX];
    const char *error = s_run_error (run, errors, sizeof errors);
    if (!error && disorder)
        error = "first deliveries came out of order";
    if (!error && (rates[PHASE_FILL] <= 0 || rates[PHASE_DRAIN] <= 0 || rates[PHASE_BOTH] <= 0))
        error = "a phase did not run, or no rate could be measured";
    if (error) {
        s_record_failure (self, item, error);
        return;
    }
    int r = item->runs++;
    item->rate[r] = rates[PHASE_FILL];
    item->byte_rate[r] = rates[PHASE_FILL] * (double) item->size;
    item->acked_rate[r] = rates[PHASE_DRAIN];
    item->both_rate[r] = rates[PHASE_BOTH];
}

//  Record one finished run into its case.
static void
s_record (zk_bench_t *self, s_case_t *item, s_run_t *run)
{
    if (item->channel->kind == S_QUEUE) {
        s_record_queue (self, item, run);
        return;
    }
    uint64_t lost = 0, disorder = 0, bad = 0;
    double rate = 0;
    double latency[LATENCIES] = {0};
    int64_t first = INT64_MAX, last = 0;
    uint64_t delivered = 0;
    int receivers = 0;
    for (int i = 0; i < run->task_count; i++) {
        const s_task_t *task = &run->tasks[i];
        const s_result_t *result = &task->result;
        disorder += result->disorder;
        bad += result->bad;
        if (streq (task->role.name, "receiver") || streq (task->role.name, "subscriber")) {
            //  A task that never ran lost everything.
            lost += task->started || task->collected || result->received || result->lost
                        ? result->lost
                        : (uint64_t) item->count;
            receivers++;
            delivered += result->received;
            if (result->received && result->first_ns < first)
                first = result->first_ns;
            if (result->last_ns > last)
                last = result->last_ns;
        }
        if (streq (task->role.name, "client") || streq (task->role.name, "caller")) {
            lost += result->lost;
            for (int j = 0; j < LATENCIES; j++)
                latency[j] = (double) result->latency[j];
        }
    }
    if (item->channel->kind == S_FANOUT && receivers < item->subscribers)
        lost += (uint64_t) (item->subscribers - receivers) * (uint64_t) item->count;
    if (last > first && delivered > (uint64_t) receivers)
        rate = (double) (delivered - (uint64_t) receivers) / ((double) (last - first) / 1e9);
    s_record_counts (self, item, lost, disorder, bad);
    char errors[4 * ERROR_MAX];
    const char *error = s_run_error (run, errors, sizeof errors);
    if (!error && disorder)
        error = "messages arrived out of order";
    if (!error && item->channel->kind != S_RPC && rate <= 0)
        error = "no rate could be measured (too few messages?)";
    if (error) {
        s_record_failure (self, item, error);
        return;
    }
    int r = item->runs++;
    item->rate[r] = rate;
    item->byte_rate[r] = rate * (double) item->size;
    for (int j = 0; j < LATENCIES; j++)
        item->latency[j][r] = latency[j];
}

//  One run of a case: a fresh directory, the roles, the device; wait; record.
static void
s_run_case (zk_bench_t *self, s_case_t *item)
{
    s_run_t *run = calloc (1, sizeof *run);
    if (!run) {
        zk_error ("out of memory");
        self->failed_runs++;
        return;
    }
    self->serial++;
    const char *tmp = getenv ("TMPDIR");
    //  ipc paths must stay short (108 bytes).
    if (!tmp || !*tmp || strlen (tmp) > 60)
        tmp = "/tmp";
    snprintf (run->dir, sizeof run->dir, "%s/zkit-bench-XXXXXX", tmp);
    if (!mkdtemp (run->dir)) {
        s_fail (&run->result, "cannot make a directory in %s: %s", tmp, strerror (errno));
        s_record (self, item, run);
        free (run);
        return;
    }
    if (item->channel->kind == S_PIPE)
        s_run_pipe (self, run, item);
    else if (item->channel->kind == S_FANOUT)
        s_run_fanout (self, run, item);
    else if (item->channel->kind == S_RPC)
        s_run_rpc (self, run, item);
    else
        s_run_queue (self, run, item);
    //  The roles end on their own (done, or nothing moved for `timeout`);
    //  the deadline only catches a role that hangs.
    double seconds =
        60 + 10 * self->config.timeout + (double) item->count * (double) (item->size + 64) / 20e6;
    if (run->result.failed)
        seconds = self->config.timeout + 5;
    s_tasks_wait (run->tasks, run->task_count, zk_now_ms () + (int64_t) (seconds * 1000));
    s_device_stop (&run->device, &run->result);
    s_record (self, item, run);
    s_remove_dir (run->dir, 3);
    free (run);
}

//  ---------------------------------------------------------------- results

typedef struct {
    double median, min, max;
} s_spread_t;

typedef struct {
    double rate, byte_rate, per_subscriber;
    double latency[LATENCIES];
    double base_rate, ratio;
    double base_p50, p50_ratio, base_p99, p99_ratio;
    s_spread_t spread;       //  of rate over the runs
    s_spread_t acked, both;  //  queue: consumed+acked/s, end to end
    double acked_ratio, both_ratio;
    bool measured, has_baseline;
} s_summary_t;

static double
s_median (const double *values, int count)
{
    double copy[ZK_BENCH_MAX_REPEAT];
    memcpy (copy, values, (size_t) count * sizeof *copy);
    return zk_meter_median (copy, (size_t) count);
}

static s_spread_t
s_spread (const double *values, int count)
{
    s_spread_t spread = {s_median (values, count), values[0], values[0]};
    for (int i = 1; i < count; i++) {
        if (values[i] < spread.min)
            spread.min = values[i];
        if (values[i] > spread.max)
            spread.max = values[i];
    }
    return spread;
}

static s_summary_t
s_summarize (const zk_bench_t *self, const s_case_t *item)
{
    s_summary_t s = {0};
    s.measured = item->runs > 0;
    if (!s.measured)
        return s;
    s.spread = s_spread (item->rate, item->runs);
    s.rate = s.spread.median;
    s.byte_rate = s_median (item->byte_rate, item->runs);
    s.acked = s_spread (item->acked_rate, item->runs);
    s.both = s_spread (item->both_rate, item->runs);
    s.per_subscriber = item->subscribers ? s.rate / item->subscribers : s.rate;
    for (int j = 0; j < LATENCIES; j++)
        s.latency[j] = s_median (item->latency[j], item->runs);
    const s_case_t *base = item->baseline >= 0 ? &self->cases[item->baseline] : item;
    if (base->runs == 0)
        return s;
    s.has_baseline = true;
    s.base_rate = s_median (base->rate, base->runs);
    s.ratio = s.base_rate > 0 ? s.rate / s.base_rate : 0;
    s.acked_ratio = s.base_rate > 0 ? s.acked.median / s.base_rate : 0;
    s.both_ratio = s.base_rate > 0 ? s.both.median / s.base_rate : 0;
    s.base_p50 = s_median (base->latency[1], base->runs);
    s.base_p99 = s_median (base->latency[3], base->runs);
    s.p50_ratio = s.base_p50 > 0 ? s.latency[1] / s.base_p50 : 0;
    s.p99_ratio = s.base_p99 > 0 ? s.latency[3] / s.base_p99 : 0;
    return s;
}

static const char *
s_size_text (size_t size, char *buf, size_t buf_size)
{
    if (size >= 1048576 && size % 1048576 == 0)
        snprintf (buf, buf_size, "%zuMiB", size / 1048576);
    else if (size >= 1024 && size % 1024 == 0)
        snprintf (buf, buf_size, "%zuKiB", size / 1024);
    else
        snprintf (buf, buf_size, "%zuB", size);
    return buf;
}

static const char *
s_rate_text (double rate, char *buf, size_t size)
{
    if (rate >= 1e6)
        snprintf (buf, size, "%.2fM", rate / 1e6);
    else if (rate >= 1e4)
        snprintf (buf, size, "%.1fk", rate / 1e3);
    else
        snprintf (buf, size, "%.0f", rate);
    return buf;
}

static const char *
s_us_text (double ns, char *buf, size_t size)
{
    snprintf (buf, size, ns >= 1e6 ? "%.0f" : "%.1f", ns / 1000);
    return buf;
}

static const char *
s_baseline_name (const zk_bench_t *self, const s_case_t *item)
{
    return item->baseline >= 0 ? self->cases[item->baseline].channel->name : "-";
}

//  One row: markdown cells, or text padded to widths.
static void
s_print_row (FILE *out, bool markdown, const int *widths, char **cells, int count)
{
    if (markdown)
        fprintf (out, "|");
    for (int c = 0; c < count; c++)
        if (markdown)
            fprintf (out, " %s |", cells[c]);
        else
            fprintf (out, "%-*s ", widths[c], cells[c]);
    fprintf (out, "\n");
}

#define CELL 48

typedef const char *(s_format_fn) (double value, char *buf, size_t size);

static const char *
s_ratio_text (double ratio, char *buf, size_t size)
{
    //  Small ratios (a queue against PUSH/PULL) keep two significant digits.
    snprintf (buf, size, ratio < 0.1 ? "%.3f" : "%.2f", ratio);
    return buf;
}

//  A figure, or `otherwise` when it is not known.
static void
s_cell (char *cell, bool known, double value, s_format_fn *format, const char *otherwise)
{
    if (known)
        format (value, cell, CELL);
    else
        snprintf (cell, CELL, "%s", otherwise);
}

//  "min-max" of a spread, or "-".
static void
s_range_text (char *cell, bool known, const s_spread_t *spread)
{
    if (!known) {
        snprintf (cell, CELL, "-");
        return;
    }
    char low[CELL / 2], high[CELL / 2];
    snprintf (cell, CELL, "%s-%s", s_rate_text (spread->min, low, sizeof low),
              s_rate_text (spread->max, high, sizeof high));
}

//  The row of one case: its medians, its baseline's, the ratio.
static void
s_print_case (const zk_bench_t *self, const s_case_t *item, FILE *out, bool markdown,
              const int *widths)
{
    s_summary_t s = s_summarize (self, item);
    char storage[16][CELL];
    char *cells[16];
    int n = 0;
    for (int c = 0; c < 16; c++)
        cells[c] = storage[c];
    snprintf (cells[n++], CELL, "%s", item->channel->name);
    snprintf (cells[n++], CELL, "%s", item->transport);
    s_size_text (item->size, cells[n++], CELL);
    if (item->channel->kind == S_FANOUT)
        snprintf (cells[n++], CELL, "%d", item->subscribers);
    bool compared = item->baseline >= 0 && s.has_baseline;
    bool ratio = s.measured && s.has_baseline;
    if (item->channel->kind == S_QUEUE) {
        const s_spread_t *spreads[] = {&s.spread, &s.acked, &s.both};
        const double ratios[] = {s.ratio, s.acked_ratio, s.both_ratio};
        for (int j = 0; j < 3; j++) {
            s_cell (cells[n++], s.measured, spreads[j]->median, s_rate_text, "failed");
            s_range_text (cells[n++], s.measured, spreads[j]);
            s_cell (cells[n++], ratio, ratios[j], s_ratio_text, "-");
        }
        snprintf (cells[n++], CELL, "%s", s_baseline_name (self, item));
        s_cell (cells[n++], compared, s.base_rate, s_rate_text, "-");
    }
    else if (item->channel->kind != S_RPC) {
        s_cell (cells[n++], s.measured, s.rate, s_rate_text, "failed");
        if (item->channel->kind == S_FANOUT)
            s_cell (cells[n++], s.measured, s.per_subscriber, s_rate_text, "failed");
        snprintf (cells[n++], CELL, "%.1f", s.byte_rate / 1e6);
        snprintf (cells[n++], CELL, "%s", s_baseline_name (self, item));
        s_cell (cells[n++], compared, s.base_rate, s_rate_text, "-");
        s_cell (cells[n++], ratio, s.ratio, s_ratio_text, "-");
    }
    else {
        for (int j = 0; j < LATENCIES; j++)
            s_cell (cells[n++], s.measured, s.latency[j], s_us_text, "failed");
        snprintf (cells[n++], CELL, "%s", s_baseline_name (self, item));
        s_cell (cells[n++], compared, s.base_p50, s_us_text, "-");
        s_cell (cells[n++], ratio, s.p50_ratio, s_ratio_text, "-");
        s_cell (cells[n++], compared, s.base_p99, s_us_text, "-");
        s_cell (cells[n++], ratio, s.p99_ratio, s_ratio_text, "-");
    }
    snprintf (cells[n++], CELL, "%" PRIu64 "%s", item->lost, item->failures ? "!" : "");
    s_print_row (out, markdown, widths, cells, n);
}

//  One text or markdown table per kind.
static void
s_print_tables (const zk_bench_t *self, FILE *out, bool markdown)
{
    static const char *titles[KINDS] = {"Throughput", "Fan-out", "Latency",
                                        "Queue (zkit-queue, per --fsync policy)"};
    static const char *headers[] = {
        "channel|transport|size|msg/s|MB/s|baseline|baseline msg/s|ratio|lost",
        "channel|transport|size|K|aggregate msg/s|per subscriber|MB/s|baseline|baseline "
        "msg/s|ratio|lost",
        "channel|transport|size|min us|p50 us|p90 us|p99 us|p99.9 us|max us|baseline|baseline "
        "p50|p50 "
        "ratio|baseline p99|p99 ratio|lost",
        "channel|transport|size|confirmed puts/s|range|ratio|consumed+acked/s|range|ratio|end to "
        "end/s|range|ratio|baseline|baseline msg/s|lost",
    };
    static const int widths[][16] = {
        {15, 9, 8, 9, 9, 9, 14, 6, 6},
        {14, 9, 8, 3, 15, 14, 9, 9, 14, 6, 6},
        {19, 9, 8, 8, 8, 8, 8, 9, 9, 9, 12, 9, 12, 9, 6},
        {15, 9, 6, 16, 14, 6, 16, 14, 6, 12, 14, 6, 8, 14, 6},
    };
    for (int kind = S_PIPE; kind < KINDS; kind++) {
        bool any = false;
        for (size_t i = 0; i < self->case_count; i++)
            any |= (int) self->cases[i].channel->kind == kind;
        if (!any)
            continue;
        if (markdown)
            fprintf (out, "\n### %s\n\n", titles[kind]);
        else
            fprintf (out, "\n%s (median of %d runs; ratio = figure / baseline's, same runs)\n",
                     titles[kind], self->config.repeat);
        char header[512];
        s_copy (header, sizeof header, headers[kind]);
        char *cells[16];
        int columns = 0;
        char *save = NULL;
        for (char *name = strtok_r (header, "|", &save); name && columns < 16;
             name = strtok_r (NULL, "|", &save))
            cells[columns++] = name;
        s_print_row (out, markdown, widths[kind], cells, columns);
        if (markdown) {
            fprintf (out, "|");
            for (int c = 0; c < columns; c++)
                fprintf (out, c < 3 ? "---|" : "---:|");
            fprintf (out, "\n");
        }
        for (size_t i = 0; i < self->case_count; i++) {
            const s_case_t *item = &self->cases[i];
            if ((int) item->channel->kind == kind)
                s_print_case (self, item, out, markdown, widths[kind]);
        }
    }
    //  Failures, each once.
    bool title = false;
    for (size_t i = 0; i < self->case_count; i++) {
        const s_case_t *item = &self->cases[i];
        if (!item->failures)
            continue;
        if (!title)
            fprintf (out, markdown ? "\n### Failed runs\n\n" : "\nFailed runs:\n");
        title = true;
        char size[32];
        fprintf (out, "%s%s %s %s: %d of %d runs failed: %s\n", markdown ? "- " : "  ",
                 item->channel->name, item->transport, s_size_text (item->size, size, sizeof size),
                 item->failures, item->failures + item->runs, item->error);
    }
}

static void
s_print_csv (const zk_bench_t *self, FILE *out)
{
    fprintf (out, "kind,channel,transport,size,subscribers,count,runs,msgs_per_s,mb_per_s,"
                  "per_subscriber_msgs_per_s,baseline,baseline_msgs_per_s,ratio,min_us,p50_us,"
                  "p90_us,p99_us,p999_us,max_us,baseline_p50_us,p50_ratio,baseline_p99_us,"
                  "p99_ratio,lost,failed_runs,msgs_per_s_min,msgs_per_s_max,acked_msgs_per_s,"
                  "acked_min,acked_max,acked_ratio,e2e_msgs_per_s,e2e_min,e2e_max,e2e_ratio\n");
    for (size_t i = 0; i < self->case_count; i++) {
        const s_case_t *item = &self->cases[i];
        s_summary_t s = s_summarize (self, item);
        fprintf (out, "%s,%s,%s,%zu,%d,%ld,%d,", s_kind_names[item->channel->kind],
                 item->channel->name, item->transport, item->size, item->subscribers, item->count,
                 item->runs);
        bool rate = s.measured && item->channel->kind != S_RPC;
        bool latency = s.measured && item->channel->kind == S_RPC;
        if (rate)
            fprintf (out, "%.0f,%.3f,%.0f,", s.rate, s.byte_rate / 1e6, s.per_subscriber);
        else
            fprintf (out, ",,,");
        fprintf (out, "%s,", s_baseline_name (self, item));
        if (rate && s.has_baseline)
            fprintf (out, "%.0f,%.4f,", s.base_rate, s.ratio);
        else
            fprintf (out, ",,");
        for (int j = 0; j < LATENCIES; j++)
            if (latency)
                fprintf (out, "%.2f,", s.latency[j] / 1000);
            else
                fprintf (out, ",");
        if (latency && s.has_baseline)
            fprintf (out, "%.2f,%.4f,%.2f,%.4f,", s.base_p50 / 1000, s.p50_ratio, s.base_p99 / 1000,
                     s.p99_ratio);
        else
            fprintf (out, ",,,,");
        fprintf (out, "%" PRIu64 ",%d,", item->lost, item->failures);
        if (rate)
            fprintf (out, "%.0f,%.0f,", s.spread.min, s.spread.max);
        else
            fprintf (out, ",,");
        //  Queue: consumed+acked/s, then end to end (puts/s is msgs_per_s).
        const s_spread_t *spreads[] = {&s.acked, &s.both};
        const double ratios[] = {s.acked_ratio, s.both_ratio};
        for (int j = 0; j < 2; j++) {
            if (rate && item->channel->kind == S_QUEUE)
                fprintf (out, "%.0f,%.0f,%.0f,", spreads[j]->median, spreads[j]->min,
                         spreads[j]->max);
            else
                fprintf (out, ",,,");
            if (rate && item->channel->kind == S_QUEUE && s.has_baseline)
                fprintf (out, "%.4f", ratios[j]);
            fprintf (out, j ? "\n" : ",");
        }
    }
}

//  ,"NAME":median,"NAME_range":[min,max] and, with a baseline, ,"RATIO_NAME":ratio.
static void
s_print_json_spread (FILE *out, const char *name, const s_spread_t *spread, const char *ratio_name,
                     bool has_baseline, double ratio)
{
    fprintf (out, ",\"%s\":%.0f,\"%s_range\":[%.0f,%.0f]", name, spread->median, name, spread->min,
             spread->max);
    if (has_baseline)
        fprintf (out, ",\"%s\":%.4f", ratio_name, ratio);
}

static void
s_print_json (const zk_bench_t *self, FILE *out)
{
    fprintf (out,
             "{\"program\":\"zkit-bench\",\"version\":\"%s\",\"repeat\":%d,\"mode\":\"%s\","
             "\"hwm\":%d,\"results\":[",
             zk_version (), self->config.repeat, self->config.inproc ? "threads" : "processes",
             self->config.hwm);
    for (size_t i = 0; i < self->case_count; i++) {
        const s_case_t *item = &self->cases[i];
        s_summary_t s = s_summarize (self, item);
        fprintf (out,
                 "%s\n{\"kind\":\"%s\",\"channel\":\"%s\",\"transport\":\"%s\",\"size\":%zu,"
                 "\"subscribers\":%d,\"count\":%ld,\"runs\":%d,\"failed_runs\":%d,"
                 "\"lost\":%" PRIu64 ",\"disorder\":%" PRIu64 ",\"baseline\":",
                 i ? "," : "", s_kind_names[item->channel->kind], item->channel->name,
                 item->transport, item->size, item->subscribers, item->count, item->runs,
                 item->failures, item->lost, item->disorder);
        if (item->baseline >= 0)
            fprintf (out, "\"%s\"", s_baseline_name (self, item));
        else
            fprintf (out, "null");
        if (s.measured && item->channel->kind != S_RPC) {
            fprintf (out,
                     ",\"msgs_per_s\":%.0f,\"mb_per_s\":%.3f,\"per_subscriber_msgs_per_s\":%.0f",
                     s.rate, s.byte_rate / 1e6, s.per_subscriber);
            if (s.has_baseline)
                fprintf (out, ",\"baseline_msgs_per_s\":%.0f,\"ratio\":%.4f", s.base_rate, s.ratio);
            fprintf (out, ",\"msgs_per_s_range\":[%.0f,%.0f]", s.spread.min, s.spread.max);
        }
        if (s.measured && item->channel->kind == S_QUEUE) {
            fprintf (out, ",\"fsync\":\"%s\",\"queue_window\":%d", item->channel->fsync,
                     self->config.queue_window);
            s_print_json_spread (out, "puts_per_s", &s.spread, "puts_ratio", s.has_baseline,
                                 s.ratio);
            s_print_json_spread (out, "acked_msgs_per_s", &s.acked, "acked_ratio", s.has_baseline,
                                 s.acked_ratio);
            s_print_json_spread (out, "e2e_msgs_per_s", &s.both, "e2e_ratio", s.has_baseline,
                                 s.both_ratio);
        }
        if (s.measured && item->channel->kind == S_RPC) {
            fprintf (out, ",\"latency_us\":{");
            for (int j = 0; j < LATENCIES; j++)
                fprintf (out, "%s\"%s\":%.2f", j ? "," : "", s_latency_names[j],
                         s.latency[j] / 1000);
            fprintf (out, "}");
            if (s.has_baseline)
                fprintf (out,
                         ",\"baseline_p50_us\":%.2f,\"p50_ratio\":%.4f,\"baseline_p99_us\":%.2f,"
                         "\"p99_ratio\":%.4f",
                         s.base_p50 / 1000, s.p50_ratio, s.base_p99 / 1000, s.p99_ratio);
        }
        if (*item->error) {
            fprintf (out, ",\"error\":");
            zk_json_print_string (item->error, strlen (item->error), out);
        }
        fprintf (out, "}");
    }
    fprintf (out, "\n],\"lost\":%" PRIu64 ",\"failed_runs\":%d}\n", self->lost, self->failed_runs);
}

int
zk_bench_run (zk_bench_t *self, FILE *out)
{
    assert (self);
    assert (out);
    int total = (int) self->case_count * self->config.repeat, done = 0;
    //  Interleaved: every case once, then again, so drift hits all alike.
    for (int r = 0; r < self->config.repeat && !zsys_interrupted; r++)
        for (size_t i = 0; i < self->case_count && !zsys_interrupted; i++) {
            s_case_t *item = &self->cases[i];
            if (self->config.progress) {
                char size[32];
                fprintf (stderr, "\r\033[Kzkit-bench: run %d/%d: %s %s %s", ++done, total,
                         item->channel->name, item->transport,
                         s_size_text (item->size, size, sizeof size));
                if (item->subscribers)
                    fprintf (stderr, " K=%d", item->subscribers);
                fflush (stderr);
            }
            s_run_case (self, item);
        }
    if (self->config.progress)
        fprintf (stderr, "\r\033[K");
    const char *format = self->config.format;
    int rc = 0;
    if (self->config.csv_path) {
        FILE *file = fopen (self->config.csv_path, "w");
        if (file)
            s_print_csv (self, file);
        if (!file || fclose (file) != 0) {
            zk_error ("cannot write %s: %s", self->config.csv_path, strerror (errno));
            rc = ZK_EIO;
        }
    }
    if (streq (format, "csv"))
        s_print_csv (self, out);
    else if (streq (format, "json"))
        s_print_json (self, out);
    else
        s_print_tables (self, out, streq (format, "markdown"));
    fflush (out);
    if (zsys_interrupted)
        return ZK_EINTR;
    if (self->lost)
        zk_error ("%" PRIu64 " messages lost", self->lost);
    return self->failed_runs || self->lost ? ZK_EIO : rc;
}
