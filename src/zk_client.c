/*  zk_client — the queue client, ZKQ/1 (see include/zk_client.h).

    Every request lives on two intrusive lists while it waits for its
    reply: `requests`, in the order they were made, and `outbox`, the ones
    still to be written on the current connection. A reply finds its
    request by TAG, a counter, in an open-addressing table (`pending`).
    Timers are a scan of `requests`: a request on the wire past its resend
    time goes back to the outbox, one past its deadline fails. A
    disconnect puts every request back into the outbox, in order. The
    lists are walked with the next pointer read first, so a callback that
    makes new requests (at the tail) is safe.

    The hot paths (PUT and its confirm, a delivery, ACK and its answer)
    allocate nothing of their own in steady state: request records come
    from a free list, a request keeps its QUEUE and MSGID in fixed fields
    and only the caller's body (or ACK result) as frames, its frames are
    written with zmq_send straight from those buffers, server messages
    are read into reused zmq_msg_t frames and parsed in place, an OK's
    frames reach a callback in one reused zmsg (empty for PUT and ACK),
    and deliveries wait in a ring. What is left per message is the
    caller's zmsg, libzmq's own copy of frames over 33 bytes, and a
    delivery's struct and body (owned by the caller).                     */

#include "zk_classes.h"

#include <unistd.h>

#define S_PROTOCOL     "ZKQ1"
#define S_SLICE_MS     200   //  longest single poll inside a wait: interrupts are seen this fast
#define S_RECV_BATCH   1000  //  server messages handled per turn
#define S_MAX_BUFFERED (2 * ZK_CLIENT_MAX_WINDOW)  //  deliveries held for zk_client_recv
//  Frames of one server message: a delivery, or a LIST/STATS reply (3 + lines).
#define S_MAX_IN_FRAMES                                                                            \
    ((ZK_CLIENT_MAX_FRAMES > ZK_QUEUE_LIST_MAX ? ZK_CLIENT_MAX_FRAMES : ZK_QUEUE_LIST_MAX) + 8)
#define S_FRAME_SLACK    65536  //  bytes a server message may carry beyond the body limit
#define S_MAX_REASON     1024   //  NACK reason bytes sent
#define S_MIN_MAXMSGSIZE 65536
#define S_POOL_MAX       4096  //  free request records kept for reuse
#define S_TABLE_MIN      1024  //  slots of the pending table at first (a power of two)
#define S_KEEP_FRAME     4096  //  bytes of a received frame kept for reuse after it was read
#define S_INLINE_MAX     1024  //  argument bytes a request copies into its own buffer
#define S_INLINE_FRAMES  (ZK_CLIENT_MAX_FRAMES + 4)  //  ... in at most this many frames

typedef struct _s_request_t s_request_t;
struct _s_request_t {
    uint64_t tag;       //  unique in this client, from 1
    char tag_text[24];  //  the TAG frame: tag in decimal
    size_t tag_size;
    char command[16];  //  the COMMAND frame, also for logs
    size_t command_size;
    char queue[ZK_SPEC_QUEUE_NAME_MAX + 1];  //  the QUEUE frame after TAG, if queue_size
    size_t queue_size;                       //  0: no QUEUE frame of its own
    uint8_t id[ZK_ID_SIZE];                  //  the MSGID frame after QUEUE, if has_id
    bool has_id;
    //  The frames after those (a body, a result ...), kept for resends:
    //  small ones copied into data (frame_count frames of sizes[i] bytes,
    //  one after the other; the buffer stays with the record in the pool),
    //  bigger ones kept as the caller's message (args).
    uint8_t *data;
    size_t data_capacity;
    size_t frame_count;
    uint32_t sizes[S_INLINE_FRAMES];
    zmsg_t *args;
    int64_t deadline;   //  ms; 0: none
    int64_t resend_at;  //  ms, while on the wire
    bool on_wire;       //  written on this connection, no reply yet
    bool in_outbox;
    unsigned sends;
    bool is_put;
    zk_client_fn *done;
    void *arg;
    s_request_t *prev, *next;          //  requests, oldest first; the free list (next)
    s_request_t *out_prev, *out_next;  //  outbox
};

typedef struct {
    s_request_t *head, *tail;
} s_list_t;

//  Requests waiting for their reply by tag: linear probing, at most half full.
typedef struct {
    s_request_t **slots;
    size_t mask;     //  slots - 1
    unsigned shift;  //  64 - log2 (slots)
    size_t count;
} s_table_t;

struct _zk_client_t {
    zk_client_config_t config;  //  defaults filled in
    zk_spec_t *spec;
    zsock_t *sock;     //  the DEALER
    void *handle;      //  its libzmq socket
    zsock_t *monitor;  //  PAIR: the DEALER's connects and disconnects
    size_t endpoint;   //  index of the endpoint connected
    bool connected;
    int64_t unconnected_since;  //  ms: connect () or the last disconnect
    uint64_t last_tag;
    s_table_t pending;  //  tag -> s_request_t
    s_list_t requests;  //  linked through prev/next
    s_list_t outbox;    //  linked through out_prev/out_next
    s_request_t *pool;  //  free request records, linked through next
    size_t pool_size;
    size_t request_count;
    size_t unconfirmed;  //  PUTs awaiting their confirm
    int first_failure;   //  first PUT failure since the last flush
    //  Deliveries not yet taken: a ring of ring_size slots (grown on demand).
    zk_delivery_t **ring;
    size_t ring_size, ring_head, ring_count;
    //  The server message read last, frame by frame (reused).
    zmq_msg_t in[S_MAX_IN_FRAMES];
    zmq_msg_t in_extra;  //  frames beyond S_MAX_IN_FRAMES land here (refused)
    zmsg_t *reply;       //  an OK's frames after TAG, lent to a callback (reused)
    zhashx_t *windows;   //  queue -> GET window (int *), sent again after a reconnect
    int64_t next_timer;  //  ms; INT64_MAX: none
    zk_client_stats_t stats;
    char last_error[256];
    char consumer[ZK_CLIENT_CONSUMER_MAX + 1];  //  GET's third argument; "": none
};

//  ---------------------------------------------------------------------------
//  Requests and their lists

static void
s_list_append (s_list_t *list, s_request_t *request)
{
    request->prev = list->tail;
    request->next = NULL;
    if (list->tail)
        list->tail->next = request;
    else
        list->head = request;
    list->tail = request;
}

static void
s_list_remove (s_list_t *list, s_request_t *request)
{
    if (request->prev)
        request->prev->next = request->next;
    else
        list->head = request->next;
    if (request->next)
        request->next->prev = request->prev;
    else
        list->tail = request->prev;
    request->prev = request->next = NULL;
}

static void
s_outbox_add (zk_client_t *self, s_request_t *request)
{
    if (request->in_outbox)
        return;
    request->on_wire = false;
    request->in_outbox = true;
    request->out_prev = self->outbox.tail;
    request->out_next = NULL;
    if (self->outbox.tail)
        self->outbox.tail->out_next = request;
    else
        self->outbox.head = request;
    self->outbox.tail = request;
}

static void
s_outbox_remove (zk_client_t *self, s_request_t *request)
{
    if (!request->in_outbox)
        return;
    if (request->out_prev)
        request->out_prev->out_next = request->out_next;
    else
        self->outbox.head = request->out_next;
    if (request->out_next)
        request->out_next->out_prev = request->out_prev;
    else
        self->outbox.tail = request->out_prev;
    request->out_prev = request->out_next = NULL;
    request->in_outbox = false;
}

//  ---------------------------------------------------------------------------
//  The pending table: tag -> request. Tags are consecutive, so Fibonacci
//  hashing spreads them evenly; deletion shifts the following entries of
//  a run back (no tombstones), so a lookup stops at the first empty slot.

static size_t
s_table_home (const s_table_t *table, uint64_t tag)
{
    return (size_t) ((tag * UINT64_C (11400714819323198485)) >> table->shift);
}

//  Make room for size slots (a power of two) and put the entries back. 0
//  or ZK_ENOMEM (the table is unchanged).
static int
s_table_resize (s_table_t *table, size_t size)
{
    s_request_t **slots = calloc (size, sizeof *slots);
    if (!slots)
        return ZK_ENOMEM;
    s_table_t bigger = {slots, size - 1, 64, 0};
    for (size_t bits = size; bits > 1; bits >>= 1)
        bigger.shift--;
    for (size_t index = 0; table->slots && index <= table->mask; index++) {
        s_request_t *request = table->slots[index];
        if (!request)
            continue;
        size_t slot = s_table_home (&bigger, request->tag);
        while (bigger.slots[slot])
            slot = (slot + 1) & bigger.mask;
        bigger.slots[slot] = request;
        bigger.count++;
    }
    free (table->slots);
    *table = bigger;
    return 0;
}

static int
s_table_insert (s_table_t *table, s_request_t *request)
{
    if ((table->count + 1) * 2 > (table->slots ? table->mask + 1 : 0)) {
        size_t size = table->slots ? (table->mask + 1) * 2 : S_TABLE_MIN;
        if (s_table_resize (table, size))
            return ZK_ENOMEM;
    }
    size_t slot = s_table_home (table, request->tag);
    while (table->slots[slot])
        slot = (slot + 1) & table->mask;
    table->slots[slot] = request;
    table->count++;
    return 0;
}

//  The slot of tag, or SIZE_MAX.
static size_t
s_table_find (const s_table_t *table, uint64_t tag)
{
    if (!table->slots)
        return SIZE_MAX;
    size_t slot = s_table_home (table, tag);
    while (table->slots[slot]) {
        if (table->slots[slot]->tag == tag)
            return slot;
        slot = (slot + 1) & table->mask;
    }
    return SIZE_MAX;
}

static s_request_t *
s_table_lookup (const s_table_t *table, uint64_t tag)
{
    size_t slot = s_table_find (table, tag);
    return slot == SIZE_MAX ? NULL : table->slots[slot];
}

static void
s_table_remove (s_table_t *table, uint64_t tag)
{
    size_t hole = s_table_find (table, tag);
    if (hole == SIZE_MAX)
        return;
    //  Move back every later entry of the run whose home is not between
    //  the hole and its slot (cyclically), so none is cut off from home.
    size_t slot = hole;
    while (true) {
        slot = (slot + 1) & table->mask;
        s_request_t *request = table->slots[slot];
        if (!request)
            break;
        size_t home = s_table_home (table, request->tag);
        bool stays = hole <= slot ? hole < home && home <= slot : hole < home || home <= slot;
        if (stays)
            continue;
        table->slots[hole] = request;
        hole = slot;
    }
    table->slots[hole] = NULL;
    table->count--;
}

//  ---------------------------------------------------------------------------
//  Request records

//  value in decimal into text (room for 21 bytes); returns its length.
static size_t
s_format_decimal (uint64_t value, char *text)
{
    char digits[20];
    size_t count = 0;
    do {
        digits[count++] = (char) ('0' + value % 10);
        value /= 10;
    } while (value);
    for (size_t index = 0; index < count; index++)
        text[index] = digits[count - 1 - index];
    text[count] = 0;
    return count;
}

//  Give a request record back to the pool (or free it), with its frames.
static void
s_request_destroy (zk_client_t *self, s_request_t **request_p)
{
    s_request_t *request = *request_p;
    if (request) {
        zmsg_destroy (&request->args);
        if (self->pool_size < S_POOL_MAX) {
            request->next = self->pool;
            self->pool = request;
            self->pool_size++;
        }
        else {
            free (request->data);
            free (request);
        }
        *request_p = NULL;
    }
}

/*  Keep args (taken) in request: copied into its buffer when small, so the
    caller's message is freed at once. That matters more than the copy:
    freed right after it was made, the caller's message recycles the same
    few heap chunks; kept until the confirm, a window of them spreads over
    the heap and every free coalesces (glibc's malloc_consolidate was 10 %
    of a producer's time). Out of memory, args stay a message.          */
static void
s_request_take_args (s_request_t *request, zmsg_t *args)
{
    size_t frames = zmsg_size (args), total = zmsg_content_size (args);
    if (frames > S_INLINE_FRAMES || total > S_INLINE_MAX) {
        request->args = args;
        return;
    }
    if (total > request->data_capacity) {
        size_t capacity = total < 256 ? 256 : S_INLINE_MAX;
        uint8_t *data = malloc (capacity);
        if (!data) {
            request->args = args;
            return;
        }
        free (request->data);
        request->data = data;
        request->data_capacity = capacity;
    }
    size_t used = 0;
    for (zframe_t *frame = zmsg_first (args); frame; frame = zmsg_next (args)) {
        if (zframe_size (frame))
            memcpy (request->data + used, zframe_data (frame), zframe_size (frame));
        used += zframe_size (frame);
        request->sizes[request->frame_count++] = (uint32_t) zframe_size (frame);
    }
    zmsg_destroy (&args);
}

/*  A new request "ZKQ1 COMMAND TAG [QUEUE [MSGID]] ARGS...": queue (may be
    NULL: no QUEUE frame; at most ZK_SPEC_QUEUE_NAME_MAX bytes) and id (may
    be NULL) are copied, *args_p (may be NULL) is taken and nulled. NULL if
    out of memory (args destroyed).                                      */
static s_request_t *
s_request_new (zk_client_t *self, const char *command, const char *queue,
               const uint8_t id[ZK_ID_SIZE], zmsg_t **args_p)
{
    s_request_t *request = self->pool;
    if (request) {
        self->pool = request->next;
        self->pool_size--;
    }
    else if ((request = malloc (sizeof *request))) {
        request->data = NULL;
        request->data_capacity = 0;
    }
    if (!request) {
        if (args_p)
            zmsg_destroy (args_p);
        return NULL;
    }
    request->tag = ++self->last_tag;
    request->tag_size = s_format_decimal (request->tag, request->tag_text);
    request->command_size = strlen (command);
    assert (request->command_size < sizeof request->command);
    memcpy (request->command, command, request->command_size + 1);
    request->queue_size = queue ? strlen (queue) : 0;
    assert (request->queue_size < sizeof request->queue);
    memcpy (request->queue, queue ? queue : "", request->queue_size + 1);
    request->has_id = id != NULL;
    if (id)
        memcpy (request->id, id, ZK_ID_SIZE);
    request->args = NULL;
    request->frame_count = 0;
    if (args_p && *args_p) {
        if (zmsg_size (*args_p))
            s_request_take_args (request, *args_p);
        else
            zmsg_destroy (args_p);
        *args_p = NULL;
    }
    request->deadline = request->resend_at = 0;
    request->on_wire = request->in_outbox = request->is_put = false;
    request->sends = 0;
    request->done = NULL;
    request->arg = NULL;
    request->prev = request->next = request->out_prev = request->out_next = NULL;
    return request;
}

static void
s_timer_at (zk_client_t *self, int64_t when)
{
    if (when > 0 && when < self->next_timer)
        self->next_timer = when;
}

//  Forget a request (it is answered, failed or cancelled).
static void
s_unlink (zk_client_t *self, s_request_t *request)
{
    s_outbox_remove (self, request);
    s_list_remove (&self->requests, request);
    s_table_remove (&self->pending, request->tag);
    self->request_count--;
}

/*  A request is over: count it, call its callback (which may make new
    requests), free it. rc 0: reply holds the frames after "OK TAG".     */
static void
s_complete (zk_client_t *self, s_request_t *request, int rc, zmsg_t *reply)
{
    s_unlink (self, request);
    if (request->is_put) {
        self->unconfirmed--;
        if (rc == 0)
            self->stats.confirmed++;
        else {
            self->stats.failed++;
            if (!self->first_failure)
                self->first_failure = rc;
        }
    }
    if (rc == ZK_ETIMEDOUT)
        snprintf (self->last_error, sizeof self->last_error,
                  "%s got no reply within %d ms (sent %u time(s))", request->command,
                  self->config.timeout_ms, request->sends);
    if (request->done)
        request->done (self, rc, rc == 0 ? reply : NULL, request->arg);
    s_request_destroy (self, &request);
}

//  ---------------------------------------------------------------------------
//  The wire

//  Write one frame without blocking. 0; 1 when the socket cannot take the
//  first frame of a message now (libzmq takes the rest of a message whose
//  first frame it took); or ZK_ESOCKET.
static int
s_send_part (zk_client_t *self, const void *data, size_t size, bool more, bool first)
{
    int flags = ZMQ_DONTWAIT | (more ? ZMQ_SNDMORE : 0);
    while (zmq_send (self->handle, data, size, flags) < 0) {
        if (errno == EAGAIN && first)
            return 1;
        if (errno != EINTR) {
            zk_warn_limited ("queue client: send failed: %s", zmq_strerror (errno));
            return ZK_ESOCKET;
        }
    }
    return 0;
}

//  Write request's frames, straight from its buffers. As s_send_part.
static int
s_send_request (zk_client_t *self, s_request_t *request)
{
    bool queue = request->queue_size > 0, id = request->has_id;
    zframe_t *frame = request->args ? zmsg_first (request->args) : NULL;
    bool more = frame || request->frame_count;
    int rc = s_send_part (self, S_PROTOCOL, 4, true, true);
    if (rc)
        return rc;
    rc = s_send_part (self, request->command, request->command_size, true, false);
    if (!rc)
        rc = s_send_part (self, request->tag_text, request->tag_size, queue || id || more, false);
    if (!rc && queue)
        rc = s_send_part (self, request->queue, request->queue_size, id || more, false);
    if (!rc && id)
        rc = s_send_part (self, request->id, ZK_ID_SIZE, more, false);
    const uint8_t *data = request->data;
    for (size_t index = 0; !rc && index < request->frame_count; index++) {
        rc = s_send_part (self, data, request->sizes[index], index + 1 < request->frame_count,
                          false);
        data += request->sizes[index];
    }
    while (!rc && frame) {
        zframe_t *next = zmsg_next (request->args);
        rc = s_send_part (self, zframe_data (frame), zframe_size (frame), next != NULL, false);
        frame = next;
    }
    return rc;
}

//  Write what the outbox holds, oldest first, while connected and the
//  socket takes it. now: the time in ms if known, else 0.
static void
s_send_outbox_at (zk_client_t *self, int64_t now)
{
    while (self->connected && self->outbox.head) {
        s_request_t *request = self->outbox.head;
        int rc = s_send_request (self, request);
        if (rc == 1)
            return;
        //  Sent, or lost in a socket error: either way the resend timer
        //  sends it again if no reply comes.
        s_outbox_remove (self, request);
        request->on_wire = true;
        request->sends++;
        if (request->sends > 1)
            self->stats.resent++;
        if (!now)
            now = zk_now_ms ();  //  once per batch: the timers are in ms
        request->resend_at = now + self->config.retry_ms;
        s_timer_at (self, request->resend_at);
    }
}

static void
s_send_outbox (zk_client_t *self)
{
    s_send_outbox_at (self, 0);
}

//  Make the request known and send it when the connection allows. 0, or
//  ZK_ENOMEM (the request is destroyed).
static int
s_submit (zk_client_t *self, s_request_t *request)
{
    if (s_table_insert (&self->pending, request)) {
        s_request_destroy (self, &request);
        return ZK_ENOMEM;
    }
    int64_t now = zk_now_ms ();
    if (self->config.timeout_ms > 0)
        request->deadline = now + self->config.timeout_ms;
    s_timer_at (self, request->deadline);
    s_list_append (&self->requests, request);
    self->request_count++;
    s_outbox_add (self, request);
    s_send_outbox_at (self, now);
    return 0;
}

static void
s_refuse (zk_client_t *self, const char *why)
{
    self->stats.refused++;
    zk_warn_limited ("queue client: refused a message from the server: %s (%" PRIu64 " refused)",
                     why, self->stats.refused);
}

/*  Receive one server message (the socket may be empty) into self->in,
    frame by frame, keeping at most S_MAX_IN_FRAMES frames and max_size +
    S_FRAME_SLACK bytes: a bigger one is read to its end and refused. 0
    with *count_p its frames (0: refused), 1 when nothing is there, or
    ZK_ESOCKET.                                                          */
static int
s_recv (zk_client_t *self, size_t *count_p)
{
    *count_p = 0;
    size_t total = 0, frames = 0, limit = self->config.max_size + S_FRAME_SLACK;
    bool more = true;
    while (more) {
        zmq_msg_t *part = frames < S_MAX_IN_FRAMES ? &self->in[frames] : &self->in_extra;
        if (zmq_msg_recv (part, self->handle, ZMQ_DONTWAIT) < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN && frames == 0)
                return 1;
            zk_warn_limited ("queue client: receive failed: %s", zmq_strerror (errno));
            return ZK_ESOCKET;
        }
        more = zmq_msg_more (part);
        total += zmq_msg_size (part);
        frames++;
    }
    if (total > limit || frames > S_MAX_IN_FRAMES) {
        char why[96];
        snprintf (why, sizeof why, "%zu frames, %zu bytes: over the limits", frames, total);
        s_refuse (self, why);
        return 0;
    }
    *count_p = frames;
    return 0;
}

//  Frame index of the message read last, if there: its bytes and size.
static const uint8_t *
s_in (zk_client_t *self, size_t count, size_t index, size_t *size_p)
{
    if (index >= count) {
        *size_p = 0;
        return NULL;
    }
    *size_p = zmq_msg_size (&self->in[index]);
    return zmq_msg_data (&self->in[index]);
}

static bool
s_in_is (zk_client_t *self, size_t count, size_t index, const char *text)
{
    size_t size, length = strlen (text);
    const uint8_t *data = s_in (self, count, index, &size);
    return data && size == length && memcmp (data, text, size) == 0;
}

//  A decimal number of 1..20 digits that fits 64 bits. 0 or ZK_EPROTO.
static int
s_parse_decimal (const void *data, size_t size, uint64_t *value_p)
{
    const uint8_t *digits = data;
    if (!data || size == 0 || size > 20)
        return ZK_EPROTO;
    uint64_t value = 0;
    for (size_t index = 0; index < size; index++) {
        if (digits[index] < '0' || digits[index] > '9')
            return ZK_EPROTO;
        unsigned digit = digits[index] - '0';
        if (value > (UINT64_MAX - digit) / 10)
            return ZK_EPROTO;
        value = value * 10 + digit;
    }
    *value_p = value;
    return 0;
}

static int
s_frame_decimal (zframe_t *frame, uint64_t *value_p)
{
    return frame ? s_parse_decimal (zframe_data (frame), zframe_size (frame), value_p) : ZK_EPROTO;
}

static int
s_in_decimal (zk_client_t *self, size_t count, size_t index, uint64_t *value_p)
{
    size_t size;
    const uint8_t *data = s_in (self, count, index, &size);
    return s_parse_decimal (data, size, value_p);
}

//  An ERR code as a ZK_E... code.
static int
s_error_code (uint64_t code)
{
    switch (code) {
        case 400: return ZK_EPROTO;
        case 404: return ZK_ENOENT;
        case 413: return ZK_ETOOBIG;
        default: return ZK_EIO;
    }
}

//  Copy text (size bytes at data, may be NULL) into out for logs,
//  non-printable bytes as '?'.
static void
s_printable (const uint8_t *data, size_t length, char *out, size_t size)
{
    if (!data)
        length = 0;
    if (length > size - 1)
        length = size - 1;
    for (size_t index = 0; index < length; index++)
        out[index] = data[index] >= 32 && data[index] < 127 ? (char) data[index] : '?';
    out[length] = 0;
}

//  ---------------------------------------------------------------------------
//  Deliveries waiting for zk_client_recv: a ring, grown by doubling.

static int
s_ring_push (zk_client_t *self, zk_delivery_t *delivery)
{
    if (self->ring_count == self->ring_size) {
        size_t size = self->ring_size ? self->ring_size * 2 : 64;
        zk_delivery_t **ring = malloc (size * sizeof *ring);
        if (!ring)
            return ZK_ENOMEM;
        for (size_t index = 0; index < self->ring_count; index++)
            ring[index] = self->ring[(self->ring_head + index) % self->ring_size];
        free (self->ring);
        self->ring = ring;
        self->ring_size = size;
        self->ring_head = 0;
    }
    self->ring[(self->ring_head + self->ring_count) % self->ring_size] = delivery;
    self->ring_count++;
    return 0;
}

static zk_delivery_t *
s_ring_pop (zk_client_t *self)
{
    if (self->ring_count == 0)
        return NULL;
    zk_delivery_t *delivery = self->ring[self->ring_head];
    self->ring_head = (self->ring_head + 1) % self->ring_size;
    self->ring_count--;
    return delivery;
}

//  Why a MSG of count frames (ZKQ1 MSG TAG QUEUE MSGID ATTEMPT BODY...) is
//  not a delivery we take, or NULL.
static const char *
s_check_delivery (zk_client_t *self, size_t count, uint64_t *attempt_p)
{
    size_t size;
    const uint8_t *queue = s_in (self, count, 3, &size);
    if (!queue || zk_spec_check_queue_name ((const char *) queue, size, NULL, 0))
        return "a delivery with a bad queue name";
    if (!s_in (self, count, 4, &size) || size != ZK_ID_SIZE)
        return "a delivery whose MSGID is not 16 bytes";
    if (s_in_decimal (self, count, 5, attempt_p))
        return "a delivery with a bad ATTEMPT";
    size_t body_frames = count > 6 ? count - 6 : 0;
    if (body_frames < 1 || body_frames > ZK_CLIENT_MAX_FRAMES)
        return "a delivery without 1..64 body frames";
    if (self->ring_count >= S_MAX_BUFFERED)
        return "more deliveries than any window allows";
    return NULL;
}

//  MSG "" QUEUE MSGID ATTEMPT BODY... (count frames in self->in): keep it
//  for zk_client_recv, or refuse it.
static void
s_on_delivery (zk_client_t *self, size_t count)
{
    uint64_t attempt = 0;
    const char *refusal = s_check_delivery (self, count, &attempt);
    zk_delivery_t *delivery = refusal ? NULL : malloc (sizeof *delivery);
    zmsg_t *body = delivery ? zmsg_new () : NULL;
    bool fail = !body;
    for (size_t index = 6; !fail && index < count; index++)
        fail = zmsg_addmem (body, zmq_msg_data (&self->in[index]), zmq_msg_size (&self->in[index]))
               != 0;
    if (fail || s_ring_push (self, delivery)) {
        zmsg_destroy (&body);
        free (delivery);
        s_refuse (self, refusal ? refusal : "out of memory");
        return;
    }
    size_t size;
    const uint8_t *queue = s_in (self, count, 3, &size);
    memcpy (delivery->queue, queue, size);
    delivery->queue[size] = 0;
    memcpy (delivery->id, zmq_msg_data (&self->in[4]), ZK_ID_SIZE);
    delivery->attempt = attempt;
    delivery->body = body;
    self->stats.deliveries++;
}

//  An OK to request (count frames in self->in): its callback gets the
//  frames after TAG in the reused reply message, emptied afterwards.
static void
s_on_ok (zk_client_t *self, s_request_t *request, size_t count)
{
    if (!request->done || !self->reply) {
        s_complete (self, request, 0, NULL);
        return;
    }
    for (size_t index = 3; index < count; index++)
        if (zmsg_addmem (self->reply, zmq_msg_data (&self->in[index]),
                         zmq_msg_size (&self->in[index]))) {
            s_refuse (self, "out of memory");
            break;
        }
    s_complete (self, request, 0, self->reply);
    zframe_t *frame;
    while ((frame = zmsg_pop (self->reply)))
        zframe_destroy (&frame);
}

//  One server message in self->in (count frames): a reply (OK, ERR) or a
//  delivery (MSG).
static void
s_dispatch (zk_client_t *self, size_t count)
{
    if (!s_in_is (self, count, 0, S_PROTOCOL) || count < 3)
        s_refuse (self, "not a ZKQ1 message");
    else if (s_in_is (self, count, 1, "MSG"))
        s_on_delivery (self, count);
    else if (s_in_is (self, count, 1, "OK") || s_in_is (self, count, 1, "ERR")) {
        uint64_t tag;
        s_request_t *request = NULL;
        if (s_in_decimal (self, count, 2, &tag) == 0)
            request = s_table_lookup (&self->pending, tag);
        if (!request)
            zk_debug ("queue client: a reply to no request waiting (late, or not ours)");
        else if (s_in_is (self, count, 1, "OK"))
            s_on_ok (self, request, count);
        else {
            uint64_t code = 0;
            if (s_in_decimal (self, count, 3, &code) || code > 999) {
                s_refuse (self, "an ERR without a CODE");
                code = 500;
            }
            size_t size;
            const uint8_t *text = s_in (self, count, 4, &size);
            char shown[200];
            s_printable (text, size, shown, sizeof shown);
            snprintf (self->last_error, sizeof self->last_error, "%" PRIu64 " %s", code, shown);
            zk_debug ("queue client: %s refused: %s", request->command, self->last_error);
            s_complete (self, request, s_error_code (code), NULL);
        }
    }
    else
        s_refuse (self, "an unknown command");
}

//  ---------------------------------------------------------------------------
//  The connection

static void
s_drop_deliveries (zk_client_t *self)
{
    zk_delivery_t *delivery;
    while ((delivery = s_ring_pop (self))) {
        self->stats.dropped++;
        zk_delivery_destroy (&delivery);
    }
}

static void s_send_windows (zk_client_t *self);

static void
s_on_connect (zk_client_t *self)
{
    if (self->connected)
        return;
    self->connected = true;
    self->stats.connects++;
    zk_info ("queue client: connected to %s", zk_spec_endpoint (self->spec, self->endpoint));
    //  A new connection has no window at the server: ask again (also on the
    //  first one, in case the GET itself timed out before it).
    s_send_windows (self);
    s_send_outbox (self);
}

/*  The connection is gone, and with it every lease the server gave us and
    every reply still on its way: requests go back to the outbox in the
    order they were made; deliveries not taken yet are dropped (the server
    delivers them again, maybe to us).                                   */
static void
s_on_disconnect (zk_client_t *self)
{
    if (!self->connected)
        return;
    self->connected = false;
    self->stats.disconnects++;
    self->unconnected_since = zk_now_ms ();
    zk_info ("queue client: disconnected from %s", zk_spec_endpoint (self->spec, self->endpoint));
    while (self->outbox.head)
        s_outbox_remove (self, self->outbox.head);
    for (s_request_t *request = self->requests.head; request; request = request->next)
        s_outbox_add (self, request);
    s_drop_deliveries (self);
    if (zk_spec_size (self->spec) > 1)
        s_timer_at (self, self->unconnected_since + self->config.failover_ms);
}

//  Read the monitor's events: [uint16 event, uint32 value][endpoint].
static void
s_read_monitor (zk_client_t *self)
{
    void *handle = zsock_resolve (self->monitor);
    for (int round = 0; round < 100; round++) {
        zmq_msg_t part;
        zmq_msg_init (&part);
        if (zmq_msg_recv (&part, handle, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&part);
            return;
        }
        uint16_t event = 0;
        if (zmq_msg_size (&part) >= 6)
            memcpy (&event, zmq_msg_data (&part), sizeof event);
        while (zmq_msg_more (&part)) {
            zmq_msg_close (&part);
            zmq_msg_init (&part);
            if (zmq_msg_recv (&part, handle, 0) < 0)
                break;
        }
        zmq_msg_close (&part);
        if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
            s_on_connect (self);
        else if (event == ZMQ_EVENT_DISCONNECTED)
            s_on_disconnect (self);
    }
}

//  With several endpoints: after failover_ms without a connection, try
//  the next one.
static void
s_failover (zk_client_t *self, int64_t now)
{
    size_t count = zk_spec_size (self->spec);
    if (self->connected || count < 2)
        return;
    if (now < self->unconnected_since + self->config.failover_ms) {
        s_timer_at (self, self->unconnected_since + self->config.failover_ms);
        return;
    }
    void *handle = zsock_resolve (self->sock);
    const char *from = zk_spec_endpoint (self->spec, self->endpoint);
    zmq_disconnect (handle, from);
    self->endpoint = (self->endpoint + 1) % count;
    const char *to = zk_spec_endpoint (self->spec, self->endpoint);
    zk_notice ("queue client: no connection to %s for %d ms, trying %s", from,
               self->config.failover_ms, to);
    if (zmq_connect (handle, to) != 0)
        zk_warn ("queue client: cannot connect %s: %s", to, zmq_strerror (errno));
    self->unconnected_since = now;
    s_timer_at (self, now + self->config.failover_ms);
}

//  Resends and deadlines: one scan of the requests.
static void
s_run_timers (zk_client_t *self)
{
    int64_t now = zk_now_ms ();
    if (now < self->next_timer)
        return;
    self->next_timer = INT64_MAX;
    s_failover (self, now);
    s_request_t *request = self->requests.head;
    while (request) {
        s_request_t *next = request->next;
        if (request->deadline && now >= request->deadline)
            s_complete (self, request, ZK_ETIMEDOUT, NULL);
        else {
            if (request->on_wire && now >= request->resend_at)
                s_outbox_add (self, request);
            if (request->on_wire)
                s_timer_at (self, request->resend_at);
            s_timer_at (self, request->deadline);
        }
        request = next;
    }
}

//  ---------------------------------------------------------------------------
//  Waiting

int
zk_client_pollitems (zk_client_t *self, zmq_pollitem_t *items, int size)
{
    assert (self && items && size >= 2);
    short events = ZMQ_POLLIN;
    if (self->connected && self->outbox.head)
        events |= ZMQ_POLLOUT;
    items[0] = (zmq_pollitem_t){zsock_resolve (self->monitor), 0, ZMQ_POLLIN, 0};
    items[1] = (zmq_pollitem_t){zsock_resolve (self->sock), 0, events, 0};
    return 2;
}

int
zk_client_process (zk_client_t *self)
{
    assert (self);
    //  Events first: a disconnect must be seen before what a new
    //  connection brings.
    s_read_monitor (self);
    int rc = 0;
    for (int round = 0; round < S_RECV_BATCH; round++) {
        size_t count;
        rc = s_recv (self, &count);
        if (rc == 1) {
            rc = 0;
            break;
        }
        if (rc)  //  an error, or nothing more there
            break;
        if (count)
            s_dispatch (self, count);
        //  Big frames are not kept until the next message overwrites them.
        for (size_t index = 0; index < count; index++)
            if (zmq_msg_size (&self->in[index]) > S_KEEP_FRAME) {
                zmq_msg_close (&self->in[index]);
                zmq_msg_init (&self->in[index]);
            }
    }
    s_send_outbox (self);
    s_run_timers (self);
    s_send_outbox (self);
    return rc;
}

long
zk_client_next_timeout (zk_client_t *self)
{
    assert (self);
    if (self->next_timer == INT64_MAX)
        return -1;
    int64_t left = self->next_timer - zk_now_ms ();
    return left < 0 ? 0 : left > INT32_MAX ? INT32_MAX : (long) left;
}

/*  One turn: poll at most until deadline (ms; -1: no limit), the next
    timer or a slice, then handle what came. ZK_EINTR when interrupted.  */
static int
s_pump (zk_client_t *self, int64_t deadline)
{
    if (zsys_interrupted)
        return ZK_EINTR;
    long timeout = S_SLICE_MS;
    long timer = zk_client_next_timeout (self);
    if (timer >= 0 && timer < timeout)
        timeout = timer;
    if (deadline >= 0) {
        int64_t left = deadline - zk_now_ms ();
        if (left < timeout)
            timeout = left < 0 ? 0 : (long) left;
    }
    zmq_pollitem_t items[2];
    int count = zk_client_pollitems (self, items, 2);
    if (zmq_poll (items, count, timeout) < 0 && errno != EINTR) {
        zk_error ("queue client: poll failed: %s", zmq_strerror (errno));
        return ZK_ESOCKET;
    }
    int rc = zk_client_process (self);
    return rc ? rc : zsys_interrupted ? ZK_EINTR : 0;
}

static int64_t
s_deadline_of (int timeout_ms)
{
    return timeout_ms < 0 ? -1 : zk_now_ms () + timeout_ms;
}

static bool
s_passed (int64_t deadline)
{
    return deadline >= 0 && zk_now_ms () >= deadline;
}

typedef struct {
    bool done;
    int rc;
    zmsg_t *reply;
} s_waiter_t;

static void
s_waiter_done (zk_client_t *client, int rc, zmsg_t *reply, void *arg)
{
    (void) client;
    s_waiter_t *waiter = arg;
    waiter->done = true;
    waiter->rc = rc;
    waiter->reply = reply ? zmsg_dup (reply) : NULL;
}

/*  Send request and wait for its end: its reply, its deadline, or an
    interrupt (the request is then forgotten). 0 with the frames after
    "OK TAG" in *reply_p (when not NULL), or the error.                 */
static int
s_wait_request (zk_client_t *self, s_request_t *request, zmsg_t **reply_p)
{
    if (reply_p)
        *reply_p = NULL;
    s_waiter_t waiter = {0};
    request->done = s_waiter_done;
    request->arg = &waiter;
    uint64_t tag = request->tag;
    int rc = s_submit (self, request);
    if (rc)
        return rc;
    while (!waiter.done) {
        rc = s_pump (self, -1);
        if (rc && !waiter.done) {
            request = s_table_lookup (&self->pending, tag);
            if (request) {
                s_unlink (self, request);
                s_request_destroy (self, &request);
            }
            return rc;
        }
    }
    if (reply_p)
        *reply_p = waiter.reply;
    else
        zmsg_destroy (&waiter.reply);
    return waiter.rc;
}

//  ---------------------------------------------------------------------------
//  Life cycle

//  A consumer name: 1..64 bytes of printable ASCII without spaces.
static bool
s_consumer_valid (const char *name, size_t size)
{
    if (size < 1 || size > ZK_CLIENT_CONSUMER_MAX)
        return false;
    for (size_t index = 0; index < size; index++)
        if (name[index] <= ' ' || name[index] > '~')
            return false;
    return true;
}

static int
s_check_config (const zk_client_config_t *config, char *reason, size_t size)
{
    if (config->consumer && !s_consumer_valid (config->consumer, strlen (config->consumer)))
        return zk_engine_reason (reason, size,
                                 "a consumer name is 1 to %d printable ASCII bytes without "
                                 "spaces, not '%.80s'",
                                 ZK_CLIENT_CONSUMER_MAX, config->consumer);
    if (config->window < 0 || config->window > 1000000)
        return zk_engine_reason (reason, size, "window must be 1 to 1000000, not %d",
                                 config->window);
    if (config->retry_ms < 0 || config->failover_ms < 0 || config->hwm < 0)
        return zk_engine_reason (reason, size, "retry, failover and hwm cannot be negative");
    return 0;
}

zk_client_t *
zk_client_new (const char *spec_text, const zk_client_config_t *config)
{
    static int instances;
    zk_client_config_t defaults = {0};
    if (!config)
        config = &defaults;
    char reason[256];
    if (s_check_config (config, reason, sizeof reason)) {
        zk_error ("queue client: %s", reason);
        return NULL;
    }
    zk_spec_t *spec = zk_spec_new (spec_text);
    if (!spec)
        return NULL;
    if (zk_spec_type (spec) != ZK_SPEC_QUEUE) {
        zk_error ("queue client: '%s' is not a queue spec (queue>ENDPOINT/NAME)", spec_text);
        zk_spec_destroy (&spec);
        return NULL;
    }
    zk_client_t *self = calloc (1, sizeof *self);
    if (!self) {
        zk_spec_destroy (&spec);
        return NULL;
    }
    self->spec = spec;
    self->config = *config;
    zk_client_config_t *settings = &self->config;
    if (config->consumer)
        snprintf (self->consumer, sizeof self->consumer, "%s", config->consumer);
    settings->consumer = self->consumer[0] ? self->consumer : NULL;
    settings->window = settings->window ? settings->window : ZK_CLIENT_DEFAULT_WINDOW;
    settings->timeout_ms = settings->timeout_ms ? settings->timeout_ms : ZK_CLIENT_DEFAULT_TIMEOUT;
    settings->retry_ms = settings->retry_ms ? settings->retry_ms : ZK_CLIENT_DEFAULT_RETRY;
    settings->failover_ms =
        settings->failover_ms ? settings->failover_ms : ZK_CLIENT_DEFAULT_FAILOVER;
    settings->max_size = settings->max_size ? settings->max_size : ZK_CLIENT_DEFAULT_MAX_SIZE;
    if (settings->max_size > SIZE_MAX / 2)  //  ZK_MAX_SIZE_UNLIMITED: no sum may wrap
        settings->max_size = SIZE_MAX / 2;
    self->next_timer = INT64_MAX;
    for (size_t index = 0; index < S_MAX_IN_FRAMES; index++)
        zmq_msg_init (&self->in[index]);
    zmq_msg_init (&self->in_extra);
    self->reply = zmsg_new ();
    self->windows = zhashx_new ();
    self->sock = zk_spec_socket (spec);
    self->monitor = zsock_new (ZMQ_PAIR);
    if (!self->reply || !self->windows || !self->sock || !self->monitor) {
        zk_error ("queue client: cannot create its sockets: %s", zmq_strerror (errno));
        goto out_fail;
    }
    zhashx_set_destructor (self->windows, (zhashx_destructor_fn *) zstr_free);
    void *handle = self->handle = zsock_resolve (self->sock);
    zsock_set_linger (self->sock, 0);
    //  Commands go only to a connected server: the outbox holds them meanwhile.
    zsock_set_immediate (self->sock, 1);
    if (settings->hwm > 0) {
        zsock_set_sndhwm (self->sock, settings->hwm);
        zsock_set_rcvhwm (self->sock, settings->hwm);
    }
    //  A frame bigger than a delivery can be closes the connection before we hold it.
    int64_t max_frame = (int64_t) (settings->max_size + S_FRAME_SLACK);
    if (max_frame < S_MIN_MAXMSGSIZE || settings->max_size > (size_t) INT64_MAX / 2)
        max_frame = settings->max_size > (size_t) INT64_MAX / 2 ? -1 : S_MIN_MAXMSGSIZE;
    zmq_setsockopt (handle, ZMQ_MAXMSGSIZE, &max_frame, sizeof max_frame);
    char monitor[96];
    snprintf (monitor, sizeof monitor, "inproc://zk-client-monitor-%d-%d", (int) getpid (),
              __atomic_add_fetch (&instances, 1, __ATOMIC_RELAXED));
    if (zmq_socket_monitor (handle, monitor, ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED)
            != 0
        || zsock_connect (self->monitor, "%s", monitor) != 0) {
        zk_error ("queue client: cannot monitor its socket: %s", zmq_strerror (errno));
        goto out_fail;
    }
    const char *endpoint = zk_spec_endpoint (spec, 0);
    if (zmq_connect (handle, endpoint) != 0) {
        zk_error ("queue client: cannot connect %s: %s", endpoint, zmq_strerror (errno));
        goto out_fail;
    }
    self->unconnected_since = zk_now_ms ();
    if (zk_spec_size (spec) > 1)
        s_timer_at (self, self->unconnected_since + settings->failover_ms);
    return self;

out_fail:
    zk_client_destroy (&self);
    return NULL;
}

void
zk_client_destroy (zk_client_t **self_p)
{
    assert (self_p);
    zk_client_t *self = *self_p;
    if (!self)
        return;
    while (self->requests.head) {
        s_request_t *request = self->requests.head;
        s_unlink (self, request);
        s_request_destroy (self, &request);
    }
    while (self->pool) {
        s_request_t *request = self->pool;
        self->pool = request->next;
        free (request->data);
        free (request);
    }
    free (self->pending.slots);
    s_drop_deliveries (self);
    free (self->ring);
    for (size_t index = 0; index < S_MAX_IN_FRAMES; index++)
        zmq_msg_close (&self->in[index]);
    zmq_msg_close (&self->in_extra);
    zmsg_destroy (&self->reply);
    if (self->sock)
        zmq_socket_monitor (zsock_resolve (self->sock), NULL, 0);
    zsock_destroy (&self->sock);
    zsock_destroy (&self->monitor);
    zhashx_destroy (&self->windows);
    zk_spec_destroy (&self->spec);
    free (self);
    *self_p = NULL;
}

const char *
zk_client_queue (zk_client_t *self)
{
    assert (self);
    return zk_spec_queue_name (self->spec);
}

bool
zk_client_connected (zk_client_t *self)
{
    assert (self);
    return self->connected;
}

void
zk_client_stats (zk_client_t *self, zk_client_stats_t *stats)
{
    assert (self && stats);
    *stats = self->stats;
}

void
zk_client_set_timeout (zk_client_t *self, int timeout_ms)
{
    assert (self);
    self->config.timeout_ms = timeout_ms ? timeout_ms : ZK_CLIENT_DEFAULT_TIMEOUT;
}

const char *
zk_client_last_error (zk_client_t *self)
{
    assert (self);
    return self->last_error;
}

//  ---------------------------------------------------------------------------
//  Requests, by command

//  The queue argument: name, or the spec's when NULL; NULL if invalid.
static const char *
s_queue (zk_client_t *self, const char *queue, bool allow_empty)
{
    if (!queue)
        return zk_client_queue (self);
    if (allow_empty && !*queue)
        return queue;
    char reason[200];
    if (zk_spec_check_queue_name (queue, strlen (queue), reason, sizeof reason)) {
        snprintf (self->last_error, sizeof self->last_error, "%s", reason);
        return NULL;
    }
    return queue;
}

//  A request made and submitted without a waiter. 0 or an error.
//  (queue, id: the request's QUEUE and MSGID frames, each may be NULL.)
static int
s_async (zk_client_t *self, const char *command, const char *queue, const uint8_t *id,
         zmsg_t **args_p, zk_client_fn *done, void *arg, bool is_put)
{
    s_request_t *request = s_request_new (self, command, queue, id, args_p);
    if (!request)
        return ZK_ENOMEM;
    request->done = done;
    request->arg = arg;
    request->is_put = is_put;
    return s_submit (self, request);
}

static int
s_sync (zk_client_t *self, const char *command, const char *queue, const uint8_t *id,
        zmsg_t **args_p, zmsg_t **reply_p)
{
    s_request_t *request = s_request_new (self, command, queue, id, args_p);
    if (!request)
        return ZK_ENOMEM;
    return s_wait_request (self, request, reply_p);
}

//  A command name: 1..15 upper-case letters.
static bool
s_command_valid (const char *command)
{
    size_t length = command ? strlen (command) : 0;
    if (length == 0 || length > 15)
        return false;
    for (size_t index = 0; index < length; index++)
        if (command[index] < 'A' || command[index] > 'Z')
            return false;
    return true;
}

int
zk_client_request_async (zk_client_t *self, const char *command, zmsg_t **args_p,
                         zk_client_fn *done, void *arg)
{
    assert (self);
    if (!s_command_valid (command)) {
        if (args_p)
            zmsg_destroy (args_p);
        return ZK_EINVAL;
    }
    return s_async (self, command, NULL, NULL, args_p, done, arg, false);
}

int
zk_client_request (zk_client_t *self, const char *command, zmsg_t **args_p, zmsg_t **reply_p)
{
    assert (self);
    if (reply_p)
        *reply_p = NULL;
    if (!s_command_valid (command)) {
        if (args_p)
            zmsg_destroy (args_p);
        return ZK_EINVAL;
    }
    return s_sync (self, command, NULL, NULL, args_p, reply_p);
}

int
zk_client_put_async (zk_client_t *self, const char *queue, zmsg_t **body_p, uint8_t id[ZK_ID_SIZE],
                     zk_client_fn *done, void *arg)
{
    assert (self && body_p);
    zmsg_t *body = *body_p;
    *body_p = NULL;
    queue = s_queue (self, queue, false);
    size_t frames = body ? zmsg_size (body) : 0;
    if (!queue || frames < 1 || frames > ZK_CLIENT_MAX_FRAMES) {
        if (queue)
            snprintf (self->last_error, sizeof self->last_error,
                      "a body has 1 to %d frames, not %zu", ZK_CLIENT_MAX_FRAMES, frames);
        zmsg_destroy (&body);
        return ZK_EINVAL;
    }
    uint8_t msgid[ZK_ID_SIZE];
    zk_id_generate (msgid);
    if (id)
        memcpy (id, msgid, ZK_ID_SIZE);
    self->stats.puts++;
    self->unconfirmed++;
    int rc = s_async (self, "PUT", queue, msgid, &body, done, arg, true);
    if (rc) {
        self->unconfirmed--;
        self->stats.failed++;
    }
    return rc;
}

int
zk_client_put (zk_client_t *self, const char *queue, zmsg_t **body_p, uint8_t id[ZK_ID_SIZE])
{
    assert (self && body_p);
    int64_t deadline = 0;
    while (self->unconfirmed >= (size_t) self->config.window) {
        if (!deadline)  //  the clock is read only when the window is full
            deadline = s_deadline_of (self->config.timeout_ms);
        int rc = s_passed (deadline) ? ZK_ETIMEDOUT : s_pump (self, deadline);
        if (rc) {
            zmsg_destroy (body_p);
            return rc;
        }
    }
    return zk_client_put_async (self, queue, body_p, id, NULL, NULL);
}

size_t
zk_client_pending (zk_client_t *self)
{
    assert (self);
    return self->request_count;
}

size_t
zk_client_unconfirmed (zk_client_t *self)
{
    assert (self);
    return self->unconfirmed;
}

int
zk_client_flush (zk_client_t *self, int timeout_ms)
{
    assert (self);
    int64_t deadline = s_deadline_of (timeout_ms);
    while (self->unconfirmed > 0) {
        int rc = s_passed (deadline) ? ZK_ETIMEDOUT : s_pump (self, deadline);
        if (rc)
            return rc;
    }
    int rc = self->first_failure;
    self->first_failure = 0;
    return rc;
}

//  Remember the window of queue, to send again after a reconnect.
static void
s_remember_window (zk_client_t *self, const char *queue, int window)
{
    char *text = zsys_sprintf ("%d", window);
    if (text)
        zhashx_update (self->windows, queue, text);
}

//  GET's arguments: QUEUE WINDOW [CONSUMER].
static zmsg_t *
s_get_message (zk_client_t *self, const char *queue, const char *window)
{
    zmsg_t *args = zmsg_new ();
    zmsg_addstr (args, queue);
    zmsg_addstr (args, window);
    if (self->consumer[0])
        zmsg_addstr (args, self->consumer);
    return args;
}

static void
s_send_windows (zk_client_t *self)
{
    for (char *window = zhashx_first (self->windows); window;
         window = zhashx_next (self->windows)) {
        if (streq (window, "0"))
            continue;
        zmsg_t *args = s_get_message (self, (const char *) zhashx_cursor (self->windows), window);
        s_async (self, "GET", NULL, NULL, &args, NULL, NULL, false);
    }
}

//  GET's arguments, or NULL (ZK_EINVAL) for a bad queue or window.
static zmsg_t *
s_get_args (zk_client_t *self, const char *queue, int window)
{
    queue = s_queue (self, queue, false);
    if (!queue || window < 0 || window > ZK_CLIENT_MAX_WINDOW)
        return NULL;
    s_remember_window (self, queue, window);
    char text[16];
    snprintf (text, sizeof text, "%d", window);
    return s_get_message (self, queue, text);
}

int
zk_client_get_async (zk_client_t *self, const char *queue, int window, zk_client_fn *done,
                     void *arg)
{
    assert (self);
    zmsg_t *args = s_get_args (self, queue, window);
    return args ? s_async (self, "GET", NULL, NULL, &args, done, arg, false) : ZK_EINVAL;
}

int
zk_client_get (zk_client_t *self, const char *queue, int window)
{
    assert (self);
    zmsg_t *args = s_get_args (self, queue, window);
    return args ? s_sync (self, "GET", NULL, NULL, &args, NULL) : ZK_EINVAL;
}

int
zk_client_recv (zk_client_t *self, int timeout_ms, zk_delivery_t **delivery_p)
{
    assert (self && delivery_p);
    *delivery_p = NULL;
    int64_t deadline = s_deadline_of (timeout_ms);
    if (self->ring_count == 0) {
        int rc = zk_client_process (self);
        if (rc)
            return rc;
    }
    while (self->ring_count == 0) {
        int rc = s_passed (deadline) ? ZK_ETIMEDOUT : s_pump (self, deadline);
        if (rc)
            return rc;
    }
    *delivery_p = s_ring_pop (self);
    return 0;
}

size_t
zk_client_ready (zk_client_t *self)
{
    assert (self);
    return self->ring_count;
}

void
zk_delivery_destroy (zk_delivery_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        zmsg_destroy (&(*self_p)->body);
        free (*self_p);
        *self_p = NULL;
    }
}

/*  Per-message commands (ACK, NACK, FWD, STATUS, TRACE) start with QUEUE
    MSGID: the request's own fields, not frames. ACK's RESULT frames (the
    caller's message, taken as they are) follow them.                     */
int
zk_client_ack_async (zk_client_t *self, const zk_delivery_t *delivery, zmsg_t **result_p,
                     zk_client_fn *done, void *arg)
{
    assert (self && delivery);
    return s_async (self, "ACK", delivery->queue, delivery->id, result_p, done, arg, false);
}

int
zk_client_ack (zk_client_t *self, const zk_delivery_t *delivery, zmsg_t **result_p)
{
    assert (self && delivery);
    return s_sync (self, "ACK", delivery->queue, delivery->id, result_p, NULL);
}

static zmsg_t *
s_nack_args (bool dead, const char *reason)
{
    zmsg_t *args = zmsg_new ();
    zmsg_addstr (args, dead ? "dead" : "requeue");
    if (reason) {
        size_t size = strlen (reason);
        zmsg_addmem (args, reason, size > S_MAX_REASON ? S_MAX_REASON : size);
    }
    return args;
}

int
zk_client_nack_async (zk_client_t *self, const zk_delivery_t *delivery, bool dead,
                      const char *reason, zk_client_fn *done, void *arg)
{
    assert (self && delivery);
    zmsg_t *args = s_nack_args (dead, reason);
    return s_async (self, "NACK", delivery->queue, delivery->id, &args, done, arg, false);
}

int
zk_client_nack (zk_client_t *self, const zk_delivery_t *delivery, bool dead, const char *reason)
{
    assert (self && delivery);
    zmsg_t *args = s_nack_args (dead, reason);
    return s_sync (self, "NACK", delivery->queue, delivery->id, &args, NULL);
}

/*  FWD's arguments, QUEUE MSGID TO BODY..., or NULL (ZK_EINVAL, the
    reason in last_error) for a bad TO or body. *body_p is taken.        */
static zmsg_t *
s_fwd_args (zk_client_t *self, const zk_delivery_t *delivery, const char *to, zmsg_t **body_p)
{
    zmsg_t *body = *body_p;
    *body_p = NULL;
    size_t frames = body ? zmsg_size (body) : 0;
    to = to ? s_queue (self, to, false) : NULL;
    if (!to || streq (to, delivery->queue) || frames < 1 || frames > ZK_CLIENT_MAX_FRAMES) {
        if (!to || streq (to, delivery->queue))
            snprintf (self->last_error, sizeof self->last_error,
                      "FWD needs a valid queue other than the delivery's own");
        else
            snprintf (self->last_error, sizeof self->last_error,
                      "a body has 1 to %d frames, not %zu", ZK_CLIENT_MAX_FRAMES, frames);
        zmsg_destroy (&body);
        return NULL;
    }
    if (zmsg_pushstr (body, to)) {
        snprintf (self->last_error, sizeof self->last_error, "out of memory");
        zmsg_destroy (&body);
    }
    return body;
}

int
zk_client_fwd_async (zk_client_t *self, const zk_delivery_t *delivery, const char *to,
                     zmsg_t **body_p, zk_client_fn *done, void *arg)
{
    assert (self && delivery && body_p);
    zmsg_t *args = s_fwd_args (self, delivery, to, body_p);
    return args ? s_async (self, "FWD", delivery->queue, delivery->id, &args, done, arg, false)
                : ZK_EINVAL;
}

int
zk_client_fwd (zk_client_t *self, const zk_delivery_t *delivery, const char *to, zmsg_t **body_p)
{
    assert (self && delivery && body_p);
    zmsg_t *args = s_fwd_args (self, delivery, to, body_p);
    return args ? s_sync (self, "FWD", delivery->queue, delivery->id, &args, NULL) : ZK_EINVAL;
}

//  The frame's text into out (size bytes), "" when absent or too long.
static bool
s_frame_text (zframe_t *frame, char *out, size_t size)
{
    out[0] = 0;
    if (!frame || zframe_size (frame) >= size)
        return false;
    memcpy (out, zframe_data (frame), zframe_size (frame));
    out[zframe_size (frame)] = 0;
    return strlen (out) == zframe_size (frame);
}

int
zk_client_status (zk_client_t *self, const char *queue, const uint8_t id[ZK_ID_SIZE],
                  zk_client_status_t *status)
{
    assert (self && id && status);
    memset (status, 0, sizeof *status);
    queue = s_queue (self, queue, false);
    if (!queue)
        return ZK_EINVAL;
    zmsg_t *reply;
    int rc = s_sync (self, "STATUS", queue, id, NULL, &reply);
    if (rc)
        return rc;
    uint64_t attempt, since;
    if (!s_frame_text (zmsg_first (reply), status->state, sizeof status->state)
        || s_frame_decimal (zmsg_next (reply), &attempt)
        || s_frame_decimal (zmsg_next (reply), &since) || since > INT64_MAX) {
        zmsg_destroy (&reply);
        s_refuse (self, "a malformed STATUS reply");
        return ZK_EPROTO;
    }
    status->attempt = attempt;
    status->since_us = (int64_t) since;
    for (int index = 0; index < 3; index++) {
        zframe_t *frame = zmsg_pop (reply);
        zframe_destroy (&frame);
    }
    if (zmsg_size (reply))
        status->detail = reply;
    else
        zmsg_destroy (&reply);
    return 0;
}

/*  The first count fields of a line (frame), each up to the next space
    or the end: their starts and sizes (a field may be empty), and in
    *rest_p what follows the last one's space. false when the line ends
    before count fields.                                                 */
static bool
s_split_fields (zframe_t *frame, int count, const char **fields, size_t *sizes, const char **rest_p)
{
    const char *cursor = (const char *) zframe_data (frame);
    const char *end = cursor + zframe_size (frame);
    for (int index = 0; index < count; index++) {
        if (cursor >= end)
            return false;
        const char *space = memchr (cursor, ' ', (size_t) (end - cursor));
        fields[index] = cursor;
        sizes[index] = (size_t) ((space ? space : end) - cursor);
        cursor = space ? space + 1 : end;
    }
    *rest_p = cursor;
    return true;
}

//  A time field: microseconds since the epoch, fitting int64.
static int
s_parse_time (const char *text, size_t size, int64_t *value_p)
{
    uint64_t value;
    if (s_parse_decimal (text, size, &value) || value > INT64_MAX)
        return ZK_EPROTO;
    *value_p = (int64_t) value;
    return 0;
}

/*  QUEUE STATE ATTEMPTS ACCEPTED STARTED FINISHED CONSUMER: exactly seven
    fields, one space apart; a valid queue name, a lower-case STATE of
    1..15 letters, decimal numbers, a CONSUMER of 1..64 printable bytes
    ("-": unknown, kept as "").                                          */
int
zk_client_step (zframe_t *frame, zk_client_step_t *step)
{
    assert (frame && step);
    memset (step, 0, sizeof *step);
    const char *end = (const char *) zframe_data (frame) + zframe_size (frame);
    const char *fields[7], *rest;
    size_t sizes[7];
    if (!s_split_fields (frame, 7, fields, sizes, &rest) || fields[6] + sizes[6] != end)
        return ZK_EPROTO;  //  an eighth field, or a trailing space
    if (zk_spec_check_queue_name (fields[0], sizes[0], NULL, 0))
        return ZK_EPROTO;
    memcpy (step->queue, fields[0], sizes[0]);
    if (sizes[1] < 1 || sizes[1] >= sizeof step->state)
        return ZK_EPROTO;
    for (size_t index = 0; index < sizes[1]; index++)
        if (fields[1][index] < 'a' || fields[1][index] > 'z')
            return ZK_EPROTO;
    memcpy (step->state, fields[1], sizes[1]);
    if (s_parse_decimal (fields[2], sizes[2], &step->attempts)
        || s_parse_time (fields[3], sizes[3], &step->accepted_us)
        || s_parse_time (fields[4], sizes[4], &step->started_us)
        || s_parse_time (fields[5], sizes[5], &step->finished_us))
        return ZK_EPROTO;
    if (!s_consumer_valid (fields[6], sizes[6]))
        return ZK_EPROTO;
    if (!(sizes[6] == 1 && fields[6][0] == '-'))
        memcpy (step->consumer, fields[6], sizes[6]);
    return 0;
}

int
zk_client_trace (zk_client_t *self, const char *queue, const uint8_t id[ZK_ID_SIZE],
                 zk_client_trace_t *trace)
{
    assert (self && id && trace);
    trace->count = 0;
    queue = s_queue (self, queue, false);
    if (!queue)
        return ZK_EINVAL;
    zmsg_t *reply;
    int rc = s_sync (self, "TRACE", queue, id, NULL, &reply);
    if (rc)
        return rc;
    if (zmsg_size (reply) > ZK_CLIENT_MAX_STEPS)
        rc = ZK_EPROTO;
    for (zframe_t *frame = zmsg_first (reply); !rc && frame; frame = zmsg_next (reply))
        if (zk_client_step (frame, &trace->steps[trace->count++]))
            rc = ZK_EPROTO;
    zmsg_destroy (&reply);
    if (rc) {
        trace->count = 0;
        s_refuse (self, "a malformed TRACE reply");
        snprintf (self->last_error, sizeof self->last_error, "a malformed TRACE reply");
    }
    return rc;
}

//  True when the two paths end in the same step.
static bool
s_same_end (const zk_client_trace_t *one, const zk_client_trace_t *other)
{
    return one->count == other->count
           && (one->count == 0
               || streq (one->steps[one->count - 1].queue, other->steps[other->count - 1].queue));
}

/*  TRACE, then STATUS in the last step. A job may move on between the two
    (a worker forwards it: the step it left reads "done"); so unless STATUS
    says it is still queued or running there, TRACE is asked again, and the
    round repeats while the path grew meanwhile (bounded).               */
int
zk_client_job (zk_client_t *self, const char *queue, const uint8_t id[ZK_ID_SIZE],
               zk_client_job_t *job)
{
    assert (self && id && job);
    memset (job, 0, sizeof *job);
    int rc = zk_client_trace (self, queue, id, &job->path);
    for (int round = 0; rc == 0 && round < 8; round++) {
        if (job->path.count == 0) {
            snprintf (self->last_error, sizeof self->last_error, "job unknown");
            return ZK_ENOENT;
        }
        const zk_client_step_t *last = &job->path.steps[job->path.count - 1];
        zk_client_status_t status;
        rc = zk_client_status (self, last->queue, id, &status);
        if (rc)
            break;
        memcpy (job->queue, last->queue, sizeof job->queue);
        zmsg_destroy (&job->detail);
        if (streq (status.state, "unknown")) {
            //  Forgotten there meanwhile: what TRACE said is all we know.
            memcpy (job->state, last->state, sizeof job->state);
            job->attempt = last->attempts;
            job->since_us = last->finished_us  ? last->finished_us
                            : last->started_us ? last->started_us
                                               : last->accepted_us;
            zmsg_destroy (&status.detail);
        }
        else {
            snprintf (job->state, sizeof job->state, "%s", status.state);
            job->attempt = status.attempt;
            job->since_us = status.since_us;
            job->detail = status.detail;
        }
        if (streq (job->state, "queued") || streq (job->state, "running"))
            return 0;
        zk_client_trace_t again;
        rc = zk_client_trace (self, queue, id, &again);
        if (rc == 0 && s_same_end (&again, &job->path)) {
            job->path = again;
            return 0;
        }
        if (rc == 0)
            job->path = again;
    }
    zmsg_destroy (&job->detail);
    if (rc == 0)
        snprintf (self->last_error, sizeof self->last_error,
                  "the job kept moving on while asked for its state");
    return rc ? rc : ZK_EIO;
}

int
zk_client_queue_stats (zk_client_t *self, const char *queue, zmsg_t **lines_p)
{
    assert (self && lines_p);
    *lines_p = NULL;
    queue = s_queue (self, queue, true);
    if (!queue)
        return ZK_EINVAL;
    zmsg_t *args = zmsg_new ();
    zmsg_addstr (args, queue);
    return s_sync (self, "STATS", NULL, NULL, &args, lines_p);
}

uint64_t
zk_client_stat (zmsg_t *lines, const char *queue, const char *name)
{
    assert (lines && queue && name);
    size_t queue_len = strlen (queue), name_len = strlen (name);
    for (zframe_t *frame = zmsg_first (lines); frame; frame = zmsg_next (lines)) {
        const char *data = (const char *) zframe_data (frame);
        const char *end = data + zframe_size (frame);
        if ((size_t) (end - data) <= queue_len || memcmp (data, queue, queue_len) != 0
            || data[queue_len] != ' ')
            continue;
        //  name=value pairs, separated by spaces.
        const char *word = data + queue_len;
        while (word < end) {
            while (word < end && *word == ' ')
                word++;
            const char *word_end = memchr (word, ' ', (size_t) (end - word));
            if (!word_end)
                word_end = end;
            uint64_t value;
            if ((size_t) (word_end - word) > name_len + 1 && memcmp (word, name, name_len) == 0
                && word[name_len] == '='
                && s_parse_decimal (word + name_len + 1, (size_t) (word_end - word) - name_len - 1,
                                    &value)
                       == 0)
                return value;
            word = word_end;
        }
    }
    return 0;
}

int
zk_client_list (zk_client_t *self, const char *queue, size_t max, zmsg_t **entries_p)
{
    assert (self && entries_p);
    *entries_p = NULL;
    queue = s_queue (self, queue, false);
    if (!queue)
        return ZK_EINVAL;
    zmsg_t *args = zmsg_new ();
    zmsg_addstr (args, queue);
    zmsg_addstrf (args, "%zu", max);
    return s_sync (self, "LIST", NULL, NULL, &args, entries_p);
}

int
zk_client_entry (zframe_t *frame, zk_client_entry_t *entry)
{
    assert (frame && entry);
    memset (entry, 0, sizeof *entry);
    const char *end = (const char *) zframe_data (frame) + zframe_size (frame);
    const char *fields[3], *cursor;
    size_t sizes[3];
    if (!s_split_fields (frame, 3, fields, sizes, &cursor))
        return ZK_EPROTO;
    uint8_t id[ZK_ID_SIZE];
    if (sizes[0] >= sizeof entry->id)
        return ZK_EPROTO;
    memcpy (entry->id, fields[0], sizes[0]);
    entry->id[sizes[0]] = 0;
    if (zk_id_parse (entry->id, id) || s_parse_decimal (fields[1], sizes[1], &entry->attempts)
        || s_parse_time (fields[2], sizes[2], &entry->since_us))
        return ZK_EPROTO;
    size_t reason_size = (size_t) (end - cursor);
    if (reason_size > sizeof entry->reason - 1)
        reason_size = sizeof entry->reason - 1;
    memcpy (entry->reason, cursor, reason_size);
    entry->reason[reason_size] = 0;
    return 0;
}

int
zk_client_move (zk_client_t *self, const char *from, const char *to, const uint8_t id[ZK_ID_SIZE],
                uint64_t *count_p)
{
    assert (self);
    if (count_p)
        *count_p = 0;
    from = s_queue (self, from, false);
    to = to ? s_queue (self, to, false) : NULL;
    if (!from || !to)
        return ZK_EINVAL;
    zmsg_t *args = zmsg_new ();
    zmsg_addstr (args, from);
    zmsg_addstr (args, to);
    if (id)
        zmsg_addmem (args, id, ZK_ID_SIZE);
    else
        zmsg_addstr (args, "*");
    zmsg_t *reply;
    int rc = s_sync (self, "MOVE", NULL, NULL, &args, &reply);
    if (rc)
        return rc;
    uint64_t count;
    rc = s_frame_decimal (zmsg_first (reply), &count);
    zmsg_destroy (&reply);
    if (rc) {
        s_refuse (self, "a malformed MOVE reply");
        return ZK_EPROTO;
    }
    if (count_p)
        *count_p = count;
    return 0;
}

int
zk_client_ping (zk_client_t *self)
{
    assert (self);
    return s_sync (self, "PING", NULL, NULL, NULL, NULL);
}
