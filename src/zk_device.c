/*  zk_device — the engine under zk_proxy and zk_forwarder.

    One actor, one zmq_poll loop over the pipe, the control socket and the
    two sides. A direction (frontend → backend, and backend → frontend when
    both sides can talk back) moves whole messages as raw zmq_msg_t frames:
    received into a reusable array, sent from it, never copied, never
    decoded. See zk_classes.h for the pipe protocol.                      */

#include "zk_classes.h"

#define FRAMES_INITIAL      8
#define CONTROL_MAX_FRAMES  16
#define CONTROL_MAX_FRAME   256
#define CONTROL_MAX_COMMAND 64
#define CONTROL_REPLY_MAX   1024
#define TOPIC_SHOWN         64
#define STATS_TEXT_MAX      512
#define BLOCK_MS            50    //  longest wait inside one send (one-way devices)
#define S_XPUB_FRAME_FLOOR  4096  //  an xpub backend's frame limit at least (handshakes)

typedef enum { S_NOTHING, S_REFUSED, S_ACCEPTED } s_received_t;

//  One way through the device. The frames array holds at most one message:
//  the one being moved, or the one waiting for the other side (pending).
typedef struct {
    const char *from_role;  //  "frontend" / "backend", for logs
    void *from;             //  raw libzmq sockets; to is NULL when the
    void *to;               //  messages are only counted (sub frontend)
    bool to_never_blocks;   //  pub/xpub: always writable, drop by design
    bool subscriptions;     //  messages are xpub (un)subscriptions
    bool block;             //  sends wait (up to BLOCK_MS) for room: see s_device_new
    zmq_msg_t *frames;      //  every slot [0, capacity) is initialised
    size_t capacity;
    size_t count;       //  frames of the pending message, 0 if none
    size_t sent;        //  frames of it already sent
    uint64_t messages;  //  accepted (received within limits)
    uint64_t bytes;
} s_direction_t;

typedef struct {
    zk_device_config_t config;  //  strings owned
    zsock_t *pipe;
    zsock_t *frontend, *backend, *capture, *control;
    zk_spec_t *frontend_spec, *backend_spec, *capture_spec, *control_spec;
    int control_type;
    s_direction_t forward;   //  frontend → backend
    s_direction_t backward;  //  backend → frontend; used when backward.from is set
    zmq_msg_t scratch;       //  frames of a refused message are drained into it
    bool paused;
    bool terminated;    //  by a control TERMINATE: no more forwarding
    bool context_gone;  //  zsys_shutdown closed our sockets already
    uint64_t refused, refused_bytes;
    uint64_t captured, capture_dropped;
    uint64_t dropped;  //  lost on a send error (a peer vanished mid-message)
    uint64_t subscribes, unsubscribes;
    uint64_t refused_topics;  //  subscriptions over max_topic, not passed upstream
    int64_t next_stats;
} s_device_t;

static zk_ratelimit_t s_subscription_limiter;

static const int s_capture_types[] = {ZMQ_PUB, ZMQ_PUSH, ZMQ_DEALER, ZMQ_PAIR, -1};
static const int s_control_types[] = {ZMQ_REP,  ZMQ_ROUTER, ZMQ_DEALER, ZMQ_PAIR,
                                      ZMQ_PULL, ZMQ_SUB,    -1};

//  An optional helper socket (capture, control): valid, and of a type that can do its job.
static int
s_check_helper (const char *role, const char *text, const int *types, const char *job,
                const char *allowed, char *reason, size_t reason_size)
{
    if (!text)
        return 0;
    int type = zk_engine_spec_type (role, text, reason, reason_size);
    if (type < 0)
        return ZK_EINVAL;
    if (!zk_engine_type_in (type, types))
        return zk_engine_reason (reason, reason_size, "%s: a %s socket cannot %s (use %s)", role,
                                 zk_spec_type_to_name (type), job, allowed);
    return 0;
}

int
zk_device_check (const zk_device_config_t *config, int *frontend_type_p, int *backend_type_p,
                 char *reason, size_t reason_size)
{
    assert (config);
    int frontend_type = zk_engine_spec_type ("frontend", config->frontend, reason, reason_size);
    if (frontend_type < 0)
        return ZK_EINVAL;
    int backend_type = zk_engine_spec_type ("backend", config->backend, reason, reason_size);
    if (backend_type < 0)
        return ZK_EINVAL;
    if (s_check_helper ("capture", config->capture, s_capture_types, "send the copies",
                        "pub, push, dealer or pair", reason, reason_size)
        || s_check_helper ("control", config->control, s_control_types, "receive commands",
                           "rep, router, dealer, pair, pull or sub", reason, reason_size))
        return ZK_EINVAL;
    if (config->hwm < 0)
        return zk_engine_reason (reason, reason_size, "hwm: %d is negative", config->hwm);
    if (config->handshake_ms < 0)
        return zk_engine_reason (reason, reason_size, "handshake timeout: %d ms is negative",
                                 config->handshake_ms);
    if (config->max_topic > ZK_MAX_TOPIC_MAX)
        return zk_engine_reason (reason, reason_size,
                                 "max-topic: %zu bytes is more than %d (use a shorter topic)",
                                 config->max_topic, ZK_MAX_TOPIC_MAX);
    if (frontend_type_p)
        *frontend_type_p = frontend_type;
    if (backend_type_p)
        *backend_type_p = backend_type;
    return 0;
}

//  ---------------------------------------------------------------- frames

//  The slot for frame index of the message being received, growing the
//  array (by moving the held frames) when needed. NULL past the frame limit.
static zmq_msg_t *
s_slot (s_direction_t *d, size_t index)
{
    if (index < d->capacity)
        return &d->frames[index];
    if (index >= ZK_DEVICE_MAX_FRAMES)
        return NULL;
    size_t capacity = d->capacity ? d->capacity * 2 : FRAMES_INITIAL;
    if (capacity > ZK_DEVICE_MAX_FRAMES)
        capacity = ZK_DEVICE_MAX_FRAMES;
    zmq_msg_t *frames = malloc (capacity * sizeof *frames);
    if (!frames)
        return NULL;
    for (size_t i = 0; i < capacity; i++)
        zmq_msg_init (&frames[i]);
    for (size_t i = 0; i < d->capacity; i++) {
        zmq_msg_move (&frames[i], &d->frames[i]);
        zmq_msg_close (&d->frames[i]);
    }
    free (d->frames);
    d->frames = frames;
    d->capacity = capacity;
    return &d->frames[index];
}

//  Close frames [from, to) and make the slots empty again.
static void
s_release (s_direction_t *d, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        zmq_msg_close (&d->frames[i]);
        zmq_msg_init (&d->frames[i]);
    }
}

static void
s_direction_free (s_direction_t *d)
{
    for (size_t i = 0; i < d->capacity; i++)
        zmq_msg_close (&d->frames[i]);
    free (d->frames);
    d->frames = NULL;
    d->capacity = d->count = d->sent = 0;
}

/*  Receive one whole message from d->from into d->frames. Nothing waiting
    (or an error before the first frame): S_NOTHING. A message over the
    size or frame limit is drained to its last frame through the scratch
    frame, counted, logged at a limited rate and dropped: S_REFUSED, the
    device goes on. Otherwise the frames are held, d->count is set:
    S_ACCEPTED. Frames after the first are already there (libzmq delivers
    messages whole), so they are read without DONTWAIT.                  */
static s_received_t
s_receive (s_device_t *self, s_direction_t *d)
{
    size_t parts = 0, held = 0, bytes = 0;
    bool too_big = false, too_many = false;
    while (true) {
        bool refusing = too_big || too_many;
        zmq_msg_t *frame = refusing ? &self->scratch : s_slot (d, parts);
        if (!frame) {
            too_many = true;
            refusing = true;
            frame = &self->scratch;
        }
        if (zmq_msg_recv (frame, d->from, parts == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            if (parts > 0 && errno == EINTR)
                continue;
            s_release (d, 0, held);
            return S_NOTHING;
        }
        parts++;
        bytes += zmq_msg_size (frame);
        bool more = zmq_msg_more (frame);
        if (!refusing) {
            held = parts;
            if (self->config.max_size && bytes > self->config.max_size)
                too_big = true;
        }
        if (!more)
            break;
    }
    if (too_big || too_many) {
        s_release (d, 0, held);
        zmq_msg_close (&self->scratch);
        zmq_msg_init (&self->scratch);
        self->refused++;
        self->refused_bytes += bytes;
        if (too_many)
            zk_warn_limited ("refused a message of more than %d frames from the %s",
                             ZK_DEVICE_MAX_FRAMES, d->from_role);
        else
            zk_warn_limited ("refused a %zu-byte message from the %s (max-size %zu bytes)", bytes,
                             d->from_role, self->config.max_size);
        return S_REFUSED;
    }
    d->count = parts;
    d->sent = 0;
    d->messages++;
    d->bytes += bytes;
    return S_ACCEPTED;
}

/*  Send the held message on from the first unsent frame. True when it is
    all gone; false when the other side cannot take it now (EAGAIN): it
    stays pending and the loop polls that side for POLLOUT. libzmq takes a
    message whole once its first frame went, so a stop mid-message is not
    expected; it would resume at the frame it stopped at. A hard error
    (the peer vanished) loses the message: counted as dropped.            */
static bool
s_flush (s_device_t *self, s_direction_t *d)
{
    if (!d->to) {
        s_release (d, 0, d->count);
        d->count = d->sent = 0;
        return true;
    }
    while (d->sent < d->count) {
        int flags = (d->block ? 0 : ZMQ_DONTWAIT) | (d->sent + 1 < d->count ? ZMQ_SNDMORE : 0);
        if (zmq_msg_send (&d->frames[d->sent], d->to, flags) >= 0) {
            d->sent++;
            continue;
        }
        if (errno == EAGAIN || errno == EINTR)
            return false;
        self->dropped++;
        zk_warn_limited ("lost a message from the %s: %s", d->from_role, zmq_strerror (errno));
        s_release (d, d->sent, d->count);
        break;
    }
    d->count = d->sent = 0;
    return true;
}

bool
zk_device_copy_out (void *socket, zmq_msg_t *frames, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        zmq_msg_t copy;
        zmq_msg_init (&copy);
        zmq_msg_copy (&copy, &frames[i]);
        int flags = ZMQ_DONTWAIT | (i + 1 < count ? ZMQ_SNDMORE : 0);
        if (zmq_msg_send (&copy, socket, flags) < 0) {
            zmq_msg_close (&copy);
            return false;
        }
    }
    return true;
}

//  A copy of the held message on the capture socket: frames shared with
//  zmq_msg_copy (reference counted, no data copy), sent DONTWAIT so a slow
//  tap never stalls the device; a copy it cannot take is dropped and counted.
static void
s_capture (s_device_t *self, s_direction_t *d)
{
    if (zk_device_copy_out (zsock_resolve (self->capture), d->frames, d->count))
        self->captured++;
    else
        self->capture_dropped++;
}

//  Bytes shown safely in a log line: printable ASCII as is, the rest as
//  \xHH, at most TOPIC_SHOWN bytes then "...".
static void
s_escape (const unsigned char *data, size_t size, char *out, size_t out_size)
{
    static const char hex[] = "0123456789abcdef";
    size_t used = 0;
    for (size_t i = 0; i < size && i < TOPIC_SHOWN && used + 5 < out_size; i++) {
        unsigned char c = data[i];
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'')
            out[used++] = (char) c;
        else {
            out[used++] = '\\';
            out[used++] = 'x';
            out[used++] = hex[c >> 4];
            out[used++] = hex[c & 15];
        }
    }
    if (size > TOPIC_SHOWN && used + 4 <= out_size) {
        memcpy (out + used, "...", 3);
        used += 3;
    }
    out[used] = 0;
}

/*  An xpub (un)subscription: one frame, first byte 1 or 0, then the topic.
    Counted and logged; true when it goes on upstream. One whose topic is
    longer than max_topic is dropped (released, counted, logged at a
    limited rate): publishers never see it, so neither their tries nor a
    chain of forwarders above grow with it. Its unsubscribe is dropped
    the same way.                                                         */
static bool
s_note_subscription (s_device_t *self, s_direction_t *d)
{
    if (d->count != 1 || zmq_msg_size (&d->frames[0]) == 0)
        return true;
    const unsigned char *data = zmq_msg_data (&d->frames[0]);
    size_t size = zmq_msg_size (&d->frames[0]);
    if (data[0] > 1)
        return true;
    if (size - 1 > self->config.max_topic) {
        self->refused_topics++;
        zk_warn_limited ("dropped a %s of a %zu-byte topic (max-topic %zu bytes)",
                         data[0] ? "subscription" : "unsubscription", size - 1,
                         self->config.max_topic);
        s_release (d, 0, d->count);
        d->count = d->sent = 0;
        return false;
    }
    if (data[0] == 1)
        self->subscribes++;
    else
        self->unsubscribes++;
    if (self->config.forwarder && zk_log_enabled (ZK_LOG_INFO)) {
        char topic[TOPIC_SHOWN * 4 + 8];
        s_escape (data + 1, size - 1, topic, sizeof topic);
        zk_log_limited (&s_subscription_limiter, ZK_LOG_INFO, "%s '%s' (%zu bytes)",
                        data[0] ? "subscribe" : "unsubscribe", topic, size - 1);
    }
    return true;
}

/*  Move up to ZK_DEVICE_BATCH messages one way: first the pending one, then
    fresh ones, until nothing is waiting or the other side is full.
    A pub/xpub side drops for a subscriber whose queue it believes full.
    It learns that a subscriber read its queue from commands that libzmq
    processes during sends at most once a millisecond, so its belief can
    lag by a whole high-water mark at a few million messages a second:
    subscribers that keep up would lose messages. ZMQ_EVENTS processes the
    pending commands, so each stretch of S_REFRESH_EVERY messages starts
    from a fresh count (a whole batch is longer than a high-water mark,
    and a device descheduled on a busy machine falls behind by as much).  */
#define S_REFRESH_EVERY 128

static void
s_refresh (s_direction_t *d)
{
    int events;
    size_t size = sizeof events;
    zmq_getsockopt (d->to, ZMQ_EVENTS, &events, &size);
}

static void
s_transfer (s_device_t *self, s_direction_t *d)
{
    if (d->count && !s_flush (self, d))
        return;
    bool refresh = d->to_never_blocks && d->to;
    for (int moved = 0; moved < ZK_DEVICE_BATCH; moved++) {
        if (refresh && moved % S_REFRESH_EVERY == 0)
            s_refresh (d);
        s_received_t received = s_receive (self, d);
        if (received == S_NOTHING)
            break;
        if (received == S_REFUSED)
            continue;
        if (d->subscriptions && !s_note_subscription (self, d))
            continue;
        if (self->capture)
            s_capture (self, d);
        if (!s_flush (self, d))
            break;
    }
}

//  True when d->to can take a message now.
static bool
s_can_send (s_direction_t *d)
{
    if (!d->to || d->to_never_blocks)
        return true;
    int events = 0;
    size_t size = sizeof events;
    return zmq_getsockopt (d->to, ZMQ_EVENTS, &events, &size) == 0 && (events & ZMQ_POLLOUT);
}

//  ---------------------------------------------------------------- counters

static void
s_stats_text (void *arg, char *text, size_t size)
{
    s_device_t *self = arg;
    int used = snprintf (text, size,
                         "frontend_in=%" PRIu64 " frontend_in_bytes=%" PRIu64 " backend_in=%" PRIu64
                         " backend_in_bytes=%" PRIu64,
                         self->forward.messages, self->forward.bytes, self->backward.messages,
                         self->backward.bytes);
    if (self->config.forwarder && used > 0 && (size_t) used < size)
        used +=
            snprintf (text + used, size - (size_t) used,
                      " subscribes=%" PRIu64 " unsubscribes=%" PRIu64 " refused_topics=%" PRIu64,
                      self->subscribes, self->unsubscribes, self->refused_topics);
    if (used > 0 && (size_t) used < size)
        snprintf (text + used, size - (size_t) used,
                  " refused=%" PRIu64 " refused_bytes=%" PRIu64 " captured=%" PRIu64
                  " capture_dropped=%" PRIu64 " dropped=%" PRIu64 " auth_denied=%" PRIu64,
                  self->refused, self->refused_bytes, self->captured, self->capture_dropped,
                  self->dropped, zk_auth_denied ());
}

static zmsg_t *
s_stats_reply (void *arg)
{
    s_device_t *self = arg;
    zmsg_t *reply = zmsg_new ();
    zk_engine_add_counter (reply, "frontend_in", self->forward.messages);
    zk_engine_add_counter (reply, "frontend_in_bytes", self->forward.bytes);
    zk_engine_add_counter (reply, "backend_in", self->backward.messages);
    zk_engine_add_counter (reply, "backend_in_bytes", self->backward.bytes);
    zk_engine_add_counter (reply, "subscribes", self->subscribes);
    zk_engine_add_counter (reply, "unsubscribes", self->unsubscribes);
    zk_engine_add_counter (reply, "refused_topics", self->refused_topics);
    zk_engine_add_counter (reply, "refused", self->refused);
    zk_engine_add_counter (reply, "refused_bytes", self->refused_bytes);
    zk_engine_add_counter (reply, "captured", self->captured);
    zk_engine_add_counter (reply, "capture_dropped", self->capture_dropped);
    zk_engine_add_counter (reply, "dropped", self->dropped);
    zk_engine_add_counter (reply, "auth_denied", zk_auth_denied ());
    zk_engine_add_counter (reply, "paused", self->paused || self->terminated);
    return reply;
}

//  ---------------------------------------------------------------- commands

/*  One control message: the last frame is the command (PAUSE, RESUME,
    TERMINATE, STATISTICS; trailing newlines or NULs are ignored), the frames
    before it are the envelope a router or a req peer needs, sent back
    before the reply text on sockets that can reply. At most
    CONTROL_MAX_FRAMES frames of at most CONTROL_MAX_FRAME bytes are kept;
    anything larger is drained and answered as an unknown command.      */
static bool
s_control_recv (zsock_t *control_sock, zmsg_t **message_p, char *command)
{
    void *control = zsock_resolve (control_sock);
    zmsg_t *message = zmsg_new ();
    bool too_long = false;
    int64_t more = 1;
    command[0] = 0;
    *message_p = NULL;
    while (more) {
        zmq_msg_t part;
        zmq_msg_init (&part);
        if (zmq_msg_recv (&part, control, zmsg_size (message) ? 0 : ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&part);
            if (errno == EINTR && zmsg_size (message))
                continue;
            zmsg_destroy (&message);
            return false;
        }
        more = zmq_msg_more (&part);
        //  Only small frames are kept (a router identity is at most 255
        //  bytes): a larger one stays empty and makes the command unknown.
        size_t size = zmq_msg_size (&part);
        if (size > CONTROL_MAX_FRAME || zmsg_size (message) == CONTROL_MAX_FRAMES)
            too_long = true;
        if (zmsg_size (message) < CONTROL_MAX_FRAMES) {
            zframe_t *frame = zframe_new (size > CONTROL_MAX_FRAME ? NULL : zmq_msg_data (&part),
                                          size > CONTROL_MAX_FRAME ? 0 : size);
            zmsg_append (message, &frame);
        }
        zmq_msg_close (&part);
    }
    zframe_t *last = zmsg_last (message);
    size_t length = last ? zframe_size (last) : 0;
    if (!too_long && length <= CONTROL_MAX_COMMAND) {
        memcpy (command, zframe_data (last), length);
        command[length] = 0;
        while (length
               && (command[length - 1] == '\n' || command[length - 1] == '\r'
                   || command[length - 1] == 0))
            command[--length] = 0;
        if (strlen (command) != length)
            command[0] = 0;  //  a NUL inside: not a command
    }
    *message_p = message;
    return true;
}

//  Send reply after the message's routing frames (not on pull and sub
//  sockets, which cannot answer); destroys *message_p.
static void
s_control_reply (zsock_t *control, zmsg_t **message_p, const char *reply)
{
    zmsg_t *message = *message_p;
    int type = zsock_type (control);
    if (message && type != ZMQ_PULL && type != ZMQ_SUB) {
        zframe_t *command_frame = zmsg_last (message);
        zmsg_remove (message, command_frame);
        zframe_destroy (&command_frame);
        zmsg_addstr (message, reply);
        zmsg_send (message_p, control);
    }
    zmsg_destroy (message_p);
}

void
zk_device_control (zsock_t *control, zsock_t *pipe, bool *paused, bool *terminated,
                   zk_device_text_fn *statistics, void *arg)
{
    zmsg_t *message;
    char command[CONTROL_MAX_COMMAND + 1];
    if (!s_control_recv (control, &message, command))
        return;
    char reply[CONTROL_REPLY_MAX] = "OK";
    if (streq (command, "PAUSE"))
        *paused = true;
    else if (streq (command, "RESUME"))
        *paused = false;
    else if (streq (command, "TERMINATE")) {
        if (!*terminated) {
            *terminated = true;
            zk_info ("TERMINATE on the control socket: stopping");
            zstr_send (pipe, "TERMINATED");
        }
    }
    else if (streq (command, "STATISTICS"))
        statistics (arg, reply, sizeof reply);
    else {
        snprintf (reply, sizeof reply, "ERROR unknown command");
        zk_warn_limited ("control: unknown command (%zu bytes)", zframe_size (zmsg_last (message)));
    }
    s_control_reply (control, &message, reply);
}

bool
zk_device_pipe (zsock_t *pipe, const char *name, bool *paused, zk_device_stats_fn *stats, void *arg,
                zk_spec_t *const specs[4])
{
    char *command = zstr_recv (pipe);
    if (!command)
        return true;  //  interrupted: the loop never stops but on $TERM
    bool running = true;
    if (streq (command, "$TERM"))
        running = false;
    else if (streq (command, "PAUSE"))
        *paused = true;
    else if (streq (command, "RESUME"))
        *paused = false;
    else if (streq (command, "STATS")) {
        zmsg_t *reply = stats (arg);
        zmsg_send (&reply, pipe);
    }
    else if (streq (command, "ENDPOINTS")) {
        static const char *roles[4] = {"frontend", "backend", "capture", "control"};
        zmsg_t *reply = zmsg_new ();
        for (int i = 0; i < 4; i++)
            zk_engine_add_endpoints (reply, roles[i], specs[i]);
        zmsg_send (&reply, pipe);
    }
    else
        zk_warn ("%s: unknown pipe command '%s'", name, command);
    zstr_free (&command);
    return running;
}

//  A pipe command. Returns false on $TERM.
static bool
s_pipe (s_device_t *self)
{
    zk_spec_t *const specs[4] = {self->frontend_spec, self->backend_spec, self->capture_spec,
                                 self->control_spec};
    return zk_device_pipe (self->pipe, self->config.name, &self->paused, s_stats_reply, self,
                           specs);
}

//  ---------------------------------------------------------------- life

static char *
s_strdup_or_null (const char *text)
{
    return text ? strdup (text) : NULL;
}

void
zk_device_config_free (zk_device_config_t *config)
{
    free ((char *) config->name);
    free ((char *) config->frontend);
    free ((char *) config->backend);
    free ((char *) config->capture);
    free ((char *) config->control);
    free (config);
}

static zk_device_config_t *
s_config_dup (const zk_device_config_t *config)
{
    zk_device_config_t *copy = malloc (sizeof *copy);
    if (!copy)
        return NULL;
    *copy = *config;
    copy->max_size = zk_engine_max_size (config->max_size);
    if (!copy->max_topic)
        copy->max_topic = ZK_MAX_TOPIC_DEFAULT;
    copy->name = s_strdup_or_null (config->name ? config->name : "device");
    copy->frontend = s_strdup_or_null (config->frontend);
    copy->backend = s_strdup_or_null (config->backend);
    copy->capture = s_strdup_or_null (config->capture);
    copy->control = s_strdup_or_null (config->control);
    return copy;
}

static void
s_device_destroy (s_device_t **self_p)
{
    s_device_t *self = *self_p;
    if (!self)
        return;
    //  A message still pending gets one last chance; then linger hands
    //  over what the sockets hold.
    if (!self->context_gone) {
        self->forward.block = false;
        if (self->forward.count && !s_flush (self, &self->forward))
            self->dropped++;
        if (self->backward.count && !s_flush (self, &self->backward))
            self->dropped++;
        zsock_destroy (&self->frontend);
        zsock_destroy (&self->backend);
        zsock_destroy (&self->capture);
        zsock_destroy (&self->control);
    }
    s_direction_free (&self->forward);
    s_direction_free (&self->backward);
    zmq_msg_close (&self->scratch);
    zk_spec_destroy (&self->frontend_spec);
    zk_spec_destroy (&self->backend_spec);
    zk_spec_destroy (&self->capture_spec);
    zk_spec_destroy (&self->control_spec);
    free (self);
    *self_p = NULL;
}

/*  An xpub backend receives subscriptions, and libzmq stores each in its
    subscription trie before the device sees it, at some 65 bytes per topic
    byte: a subscriber's 1 MB topic would cost 65 MB. So the frames an xpub
    takes are bounded by the longest topic the device passes on (frames
    longer close that subscriber's connection), with a floor for the
    handshake commands; topics between max_topic and that bound are
    dropped by s_transfer. Other backends: 0, max_size + slack applies. */
static int64_t
s_backend_max_frame (const zk_device_config_t *config)
{
    char reason[256];
    if (zk_engine_spec_type ("backend", config->backend, reason, sizeof reason) != ZMQ_XPUB)
        return 0;
    size_t bound = config->max_topic + 1;
    return (int64_t) (bound < S_XPUB_FRAME_FLOOR ? S_XPUB_FRAME_FLOOR : bound);
}

static const int s_talk_back_types[] = {ZMQ_DEALER, ZMQ_ROUTER, ZMQ_PAIR, ZMQ_XSUB, ZMQ_XPUB, -1};
static const int s_never_block_types[] = {ZMQ_PUB, ZMQ_XPUB, -1};

//  Open the sockets and wire the directions. NULL if a socket failed (logged).
static s_device_t *
s_device_new (zsock_t *pipe, zk_device_config_t *config)
{
    s_device_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->config = *config;
    self->pipe = pipe;
    zmq_msg_init (&self->scratch);
    //  Receive limits: see s_backend_max_frame; capture and control sockets
    //  carry nothing large, the floor keeps any handshake working.
    zk_engine_limits_t data = {.hwm = config->hwm,
                               .linger_ms = config->linger_ms,
                               .max_size = config->max_size,
                               .handshake_ms = config->handshake_ms};
    zk_engine_limits_t backend = data, small = data;
    backend.max_frame = s_backend_max_frame (config);
    small.max_size = 1;
    if (zk_engine_open_limited ("frontend", config->frontend, NULL, &data, &self->frontend,
                                &self->frontend_spec)
        || zk_engine_open_limited ("backend", config->backend, NULL, &backend, &self->backend,
                                   &self->backend_spec)
        || (config->capture
            && zk_engine_open_limited ("capture", config->capture, s_capture_types, &small,
                                       &self->capture, &self->capture_spec))
        || (config->control
            && zk_engine_open_limited ("control", config->control, s_control_types, &small,
                                       &self->control, &self->control_spec))) {
        s_device_destroy (&self);
        return NULL;
    }
    int frontend_type = zsock_type (self->frontend);
    int backend_type = zsock_type (self->backend);
    if (frontend_type == ZMQ_SUB)
        zsock_set_subscribe (self->frontend, "");
    //  Verbose: every subscribe goes up, so publishers can count subscribers.
    //  Verboser adds every unsubscribe: an xsub forwards a topic's
    //  unsubscribe once it has seen as many as subscribes, so both must pass.
    if (backend_type == ZMQ_XPUB) {
        int on = 1;
        zmq_setsockopt (zsock_resolve (self->backend), ZMQ_XPUB_VERBOSER, &on, sizeof on);
    }
    //  An xsub with no xpub behind it would get nothing: subscribe to all.
    if (frontend_type == ZMQ_XSUB && backend_type != ZMQ_XPUB)
        zmq_send (zsock_resolve (self->frontend), "\x01", 1, 0);
    if (self->control) {
        self->control_type = zsock_type (self->control);
        if (self->control_type == ZMQ_SUB)
            zsock_set_subscribe (self->control, "");
        //  Never block on a control peer: a reply it cannot take is lost.
        zsock_set_sndtimeo (self->control, 0);
    }
    self->forward =
        (s_direction_t){.from_role = "frontend",
                        .from = zsock_resolve (self->frontend),
                        .to = zsock_resolve (self->backend),
                        .to_never_blocks = zk_engine_type_in (backend_type, s_never_block_types)};
    bool talk_back = zk_engine_type_in (frontend_type, s_talk_back_types)
                     && zk_engine_type_in (backend_type, s_talk_back_types);
    //  An xpub backend is always read, so (un)subscriptions never pile up;
    //  with a plain sub frontend they are only counted.
    if (talk_back || backend_type == ZMQ_XPUB)
        self->backward = (s_direction_t){.from_role = "backend",
                                         .from = zsock_resolve (self->backend),
                                         .to = talk_back ? zsock_resolve (self->frontend) : NULL,
                                         .to_never_blocks =
                                             zk_engine_type_in (frontend_type, s_never_block_types),
                                         .subscriptions = backend_type == ZMQ_XPUB};
    //  A one-way device whose backend can push back (push, dealer, pair)
    //  waits inside the send for room, as zproxy does, instead of going
    //  round the poll loop: when the consumer is the bottleneck that saves
    //  a poll of every socket per wake-up, and measured 10-20% more
    //  throughput at 64 B (docs/performance.md). The wait is bounded so the
    //  pipe and the control socket are still served every BLOCK_MS. A
    //  two-way device never waits on one side: the other could be starved.
    if (!self->backward.from && self->forward.to && !self->forward.to_never_blocks) {
        self->forward.block = true;
        zsock_set_sndtimeo (self->backend, BLOCK_MS);
    }
    if (config->stats_interval_ms > 0)
        self->next_stats = zk_now_ms () + config->stats_interval_ms;
    return self;
}

//  Which socket a direction polls: its source when the other side can take
//  a message, else the other side for POLLOUT.
static void
s_want (s_direction_t *d, zmq_pollitem_t *from_item, zmq_pollitem_t *to_item)
{
    if (!d->from)
        return;
    if (d->count)
        to_item->events |= ZMQ_POLLOUT;
    else if (s_can_send (d))
        from_item->events |= ZMQ_POLLIN;
    else
        to_item->events |= ZMQ_POLLOUT;
}

static void
s_run (s_device_t *self)
{
    enum { PIPE, FRONTEND, BACKEND, CONTROL };
    while (true) {
        zmq_pollitem_t items[4] = {
            {zsock_resolve (self->pipe), 0, ZMQ_POLLIN, 0},
            {zsock_resolve (self->frontend), 0, 0, 0},
            {zsock_resolve (self->backend), 0, 0, 0},
            {self->control ? zsock_resolve (self->control) : NULL, 0, ZMQ_POLLIN, 0},
        };
        bool moving = !self->paused && !self->terminated;
        if (moving) {
            s_want (&self->forward, &items[FRONTEND], &items[BACKEND]);
            s_want (&self->backward, &items[BACKEND], &items[FRONTEND]);
        }
        long timeout = -1;
        if (self->config.stats_interval_ms > 0) {
            int64_t left = self->next_stats - zk_now_ms ();
            timeout = left > 0 ? (long) left : 0;
        }
        //  Never leave the loop on EINTR: only $TERM ends it.
        if (zmq_poll (items, self->control ? 4 : 3, timeout) < 0) {
            //  The context went away under us (the process is exiting without
            //  destroying the engine): no $TERM can come any more.
            if (errno == ETERM || errno == ENOTSOCK) {
                self->context_gone = true;
                return;
            }
            if (errno != EINTR)
                zk_warn_limited ("%s: poll failed: %s", self->config.name, zmq_strerror (errno));
            continue;
        }
        if ((items[PIPE].revents & ZMQ_POLLIN) && !s_pipe (self))
            return;
        if (self->control && (items[CONTROL].revents & ZMQ_POLLIN))
            zk_device_control (self->control, self->pipe, &self->paused, &self->terminated,
                               s_stats_text, self);
        if (moving) {
            short front = items[FRONTEND].revents, back = items[BACKEND].revents;
            if ((front & ZMQ_POLLIN) || (back & ZMQ_POLLOUT))
                s_transfer (self, &self->forward);
            if (self->backward.from && ((back & ZMQ_POLLIN) || (front & ZMQ_POLLOUT)))
                s_transfer (self, &self->backward);
        }
        if (self->config.stats_interval_ms > 0 && zk_now_ms () >= self->next_stats) {
            char text[STATS_TEXT_MAX];
            s_stats_text (self, text, sizeof text);
            zk_notice ("stats %s", text);
            self->next_stats = zk_now_ms () + self->config.stats_interval_ms;
        }
    }
}

/*  The actor. The first signal is zactor_new's handshake; the second says
    whether the sockets opened (0) or not (-1, logged). A device that could
    not start still waits for $TERM, as every engine does.              */
static void
s_device_actor (zsock_t *pipe, void *args)
{
    zk_device_config_t *config = args;
    zsock_signal (pipe, 0);
    s_device_t *self = s_device_new (pipe, config);
    zsock_signal (pipe, self ? 0 : (byte) -1);
    if (self)
        s_run (self);
    else
        while (true) {
            char *command = zstr_recv (pipe);
            bool done = command ? streq (command, "$TERM") : errno != EINTR;
            zstr_free (&command);
            if (done)
                break;
        }
    s_device_destroy (&self);
    zk_device_config_free (config);
}

zactor_t *
zk_device_start (const zk_device_config_t *config)
{
    assert (config);
    zk_device_config_t *copy = s_config_dup (config);
    if (!copy)
        return NULL;
    zactor_t *actor = zactor_new (copy->lb ? zk_lb_actor : s_device_actor, copy);
    if (!actor) {
        zk_device_config_free (copy);
        zk_error ("%s: cannot start the engine thread", config->name);
        return NULL;
    }
    int status = -1;
    for (int tries = 0; tries < 100; tries++) {
        status = zsock_wait (actor);
        if (status != -1 || errno != EINTR)
            break;
    }
    if (status != 0) {
        zactor_destroy (&actor);
        return NULL;
    }
    return actor;
}

void
zk_device_options (zk_option_t *table, zk_device_options_t *values)
{
    const zk_option_t options[ZK_DEVICE_OPTIONS + 1] = {
        {"max-size", 0, ZK_OPT_LIMIT, &values->max_size, "BYTES",
         "refuse larger messages, all frames (default 1M; 'unlimited')", 1, 1e15},
        {"hwm", 0, ZK_OPT_INT, &values->hwm, "N", "send/receive high-water mark (default 1000)", 1,
         1e9},
        {"handshake-timeout", 0, ZK_OPT_SECONDS, &values->handshake_seconds, "SECONDS",
         "drop a peer that has not finished its handshake (default 5)", 0.001, 3600},
        {"capture", 0, ZK_OPT_SPEC, &values->capture, "SPEC", "send a copy of every message here"},
        {"control", 0, ZK_OPT_SPEC, &values->control, "SPEC",
         "accept PAUSE, RESUME, TERMINATE, STATISTICS here"},
        {"stats", 0, ZK_OPT_SECONDS, &values->stats_seconds, "SECONDS",
         "log a one-line counter report every SECONDS", 0, 86400},
        {"linger", 0, ZK_OPT_SECONDS, &values->linger_seconds, "SECONDS",
         "hand queued messages over on stop (default 1)", 0, 3600},
        {"ready-file", 0, ZK_OPT_OUTFILE, &values->ready_file, "PATH",
         "write 'ROLE ENDPOINT' lines here once bound"},
        {NULL},
    };
    memcpy (table, options, sizeof options);
}

int
zk_device_command (zactor_t *device, const char *cmd)
{
    assert (device);
    if (zstr_send (device, cmd) != 0)
        return ZK_EIO;
    //  The device answers in order: once STATS is answered, cmd was done.
    zmsg_t *reply = zk_engine_request (device, "STATS");
    if (!reply)
        return ZK_EIO;
    zmsg_destroy (&reply);
    return 0;
}
