/*  zk_lb — zkit-proxy --lb: load balancing by readiness with worker
    liveness, the proxy side of ZKW/1 (docs/protocol.md section 10).

    Clients (req, dealer) talk to a router frontend; workers connect a
    dealer to a router backend and announce free job slots (credit) with
    READY. A request goes to the least recently used worker that has a
    free slot; while none has, the frontend is not read (back-pressure).
    Each worker holds an in-flight table: the routing frames of every
    request it was sent, so that a REPLY is matched to its request (the
    slot comes back) and, when the worker is lost (silent for
    ZK_PROXY_LB_LIVENESS heartbeats, its connection gone) or says
    DISCONNECT, every request it held is answered at once with an error
    reply that says "retry" (zk-retry=1).

    Bodies are never decoded: request and reply frames are moved as
    zmq_msg_t (no copy); only the small routing frames are copied into the
    in-flight table, whose buffers are reused. See zk_classes.h for the
    pipe protocol, which is the device's.                               */

#include "zk_classes.h"

#define SIGNATURE          "ZKW1"
#define MAX_ROUTING_FRAMES 16    //  routing frames of a request, client's routing id included
#define MAX_ROUTING_BYTES  4096  //  their bytes in all
#define ROUTING_BUFFER     (MAX_ROUTING_BYTES + 2 * MAX_ROUTING_FRAMES)
#define MAX_WORKERS        10000
#define BACKEND_HWM        (ZK_PROXY_LB_MAX_CREDIT + 64)  //  least send hwm per worker
#define ID_MAX             255                            //  bytes of a ROUTER routing id
#define NOT_IN_HEAP        SIZE_MAX
#define STATS_TEXT_MAX     1024
#define MAX_COUNTERS       16

typedef enum { R_NOTHING, R_REFUSED, R_ACCEPTED } s_received_t;

//  One request a worker holds: its routing frames, each as a 2-byte
//  big-endian size and the bytes. The buffer is kept for reuse.
typedef struct {
    uint8_t *routing;
    uint32_t size;
    uint32_t capacity;
} s_entry_t;

typedef struct {
    uint8_t id[ID_MAX];  //  its routing id on the backend
    size_t id_size;
    char key[2 * ID_MAX + 1];  //  the id in hex: the map's key, and logs
    uint32_t credit;           //  free slots
    uint32_t busy;             //  requests in flight: entries[0 .. busy)
    s_entry_t *entries;
    uint32_t entry_capacity;
    int64_t expires;     //  monotonic ms: lost when nothing came from it until then
    uint64_t last_used;  //  dispatch number of its last request; 0 = none yet
    uint64_t arrival;    //  order of arrival, among the workers never used
    size_t heap_index;   //  in the ready heap, or NOT_IN_HEAP
    size_t index;        //  in workers[]
} s_worker_t;

typedef struct {
    zk_device_config_t *config;
    int heartbeat_ms;
    zsock_t *pipe;
    zsock_t *frontend, *backend, *capture, *control;
    zk_spec_t *frontend_spec, *backend_spec, *capture_spec, *control_spec;
    void *front, *back;  //  the raw sockets

    zhashx_t *worker_map;  //  key → s_worker_t *
    s_worker_t **workers;  //  every known worker
    s_worker_t **ready;    //  min-heap of the workers with credit: least recently used first
    size_t worker_count, ready_count, worker_capacity;
    uint64_t dispatches, arrivals;

    zmq_msg_t request[ZK_DEVICE_MAX_FRAMES];  //  a request taken from the frontend
    size_t request_count;                     //  its frames; 0 = none held
    size_t request_delimiter;                 //  index of its empty frame
    zmq_msg_t message[ZK_DEVICE_MAX_FRAMES];  //  a message from the backend
    zmq_msg_t scratch;                        //  frames past the limit are drained here
    char refusal[128];                        //  why s_receive refused the last message

    bool paused, terminated, context_gone;
    int64_t now;  //  monotonic ms, refreshed once per loop turn
    int64_t next_heartbeat, next_stats;

    uint64_t frontend_in, frontend_in_bytes, backend_in, backend_in_bytes;
    uint64_t in_flight, requests, replies, lost, unknown;
    uint64_t refused, refused_bytes, captured, capture_dropped, dropped;
} s_lb_t;

static const int s_router[] = {ZMQ_ROUTER, -1};

//  ---------------------------------------------------------------- frames

static void
s_release (zmq_msg_t *frames, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        zmq_msg_close (&frames[i]);
        zmq_msg_init (&frames[i]);
    }
}

static bool
s_frame_is (zmq_msg_t *frame, const char *text)
{
    size_t size = strlen (text);
    return zmq_msg_size (frame) == size && memcmp (zmq_msg_data (frame), text, size) == 0;
}

/*  Receive one whole message from socket into frames (every slot empty):
    the first ZK_DEVICE_MAX_FRAMES frames are held (*count_p), any further
    one is drained. R_NOTHING when none was waiting. R_REFUSED when it had
    more frames or more bytes (max_size) than allowed: counted, logged at
    a limited rate, the reason in self->refusal; the held frames are left
    for the caller to look at and release. Frames after the first are
    already there (libzmq delivers messages whole).                      */
static s_received_t
s_receive (s_lb_t *self, void *socket, zmq_msg_t *frames, const char *role, size_t *count_p,
           size_t *bytes_p)
{
    size_t parts = 0, bytes = 0;
    *count_p = 0;
    while (true) {
        zmq_msg_t *frame = parts < ZK_DEVICE_MAX_FRAMES ? &frames[parts] : &self->scratch;
        if (zmq_msg_recv (frame, socket, parts == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            if (parts > 0 && errno == EINTR)
                continue;
            s_release (frames, *count_p);
            *count_p = 0;
            return R_NOTHING;
        }
        parts++;
        bytes += zmq_msg_size (frame);
        bool more = zmq_msg_more (frame);
        if (frame == &self->scratch) {
            zmq_msg_close (frame);
            zmq_msg_init (frame);
        }
        else
            *count_p = parts;
        if (!more)
            break;
    }
    *bytes_p = bytes;
    size_t max_size = self->config->max_size;
    if (parts > ZK_DEVICE_MAX_FRAMES)
        snprintf (self->refusal, sizeof self->refusal, "more than %d frames", ZK_DEVICE_MAX_FRAMES);
    else if (max_size && bytes > max_size)
        snprintf (self->refusal, sizeof self->refusal, "message too large (%zu bytes, limit %zu)",
                  bytes, max_size);
    else
        return R_ACCEPTED;
    self->refused++;
    self->refused_bytes += bytes;
    zk_warn_limited ("refused a message from the %s: %s", role, self->refusal);
    return R_REFUSED;
}

//  A message that breaks ZKW/1 or the routing rules: counted and logged.
static void
s_refuse (s_lb_t *self, size_t bytes, const char *role, const char *why)
{
    self->refused++;
    self->refused_bytes += bytes;
    zk_warn_limited ("refused a message from the %s: %s", role, why);
}

/*  The routing frames of a message (the client's routing envelope: its
    routing id on the frontend, any further routing frames) start at
    frames[first] and end before the first empty frame (the delimiter),
    whose index goes to *delimiter_p. NULL when they are fine; else why
    not: no delimiter, no routing frame, more than MAX_ROUTING_FRAMES
    frames or MAX_ROUTING_BYTES bytes.                                   */
static const char *
s_routing_check (zmq_msg_t *frames, size_t first, size_t count, size_t *delimiter_p)
{
    size_t bytes = 0;
    for (size_t i = first; i < count && i <= first + MAX_ROUTING_FRAMES; i++) {
        size_t size = zmq_msg_size (&frames[i]);
        if (size == 0) {
            if (i == first)
                return "no routing frame before the empty delimiter";
            *delimiter_p = i;
            return bytes > MAX_ROUTING_BYTES ? "routing frames of more than 4096 bytes" : NULL;
        }
        bytes += size;
    }
    if (count > first + MAX_ROUTING_FRAMES)
        return "more than 16 routing frames";
    return "no empty delimiter";
}

static size_t
s_routing_size (zmq_msg_t *frames, size_t count)
{
    size_t size = 0;
    for (size_t i = 0; i < count; i++)
        size += 2 + zmq_msg_size (&frames[i]);
    return size;
}

//  Write frames[0 .. count) into out (s_routing_size bytes) as the
//  in-flight table keeps them. Returns the bytes written.
static size_t
s_routing_encode (zmq_msg_t *frames, size_t count, uint8_t *out)
{
    size_t used = 0;
    for (size_t i = 0; i < count; i++) {
        size_t size = zmq_msg_size (&frames[i]);
        out[used++] = (uint8_t) (size >> 8);
        out[used++] = (uint8_t) size;
        memcpy (out + used, zmq_msg_data (&frames[i]), size);
        used += size;
    }
    return used;
}

static bool
s_routing_equal (const s_entry_t *entry, zmq_msg_t *frames, size_t count)
{
    size_t used = 0;
    for (size_t i = 0; i < count; i++) {
        size_t size = zmq_msg_size (&frames[i]);
        if (used + 2 + size > entry->size
            || (size_t) (entry->routing[used] << 8 | entry->routing[used + 1]) != size
            || memcmp (entry->routing + used + 2, zmq_msg_data (&frames[i]), size) != 0)
            return false;
        used += 2 + size;
    }
    return used == entry->size;
}

static void
s_capture (s_lb_t *self, zmq_msg_t *frames, size_t count)
{
    if (!self->capture)
        return;
    if (zk_device_copy_out (zsock_resolve (self->capture), frames, count))
        self->captured++;
    else
        self->capture_dropped++;
}

//  ---------------------------------------------------------------- replies to clients

//  A fresh envelope frame for an error reply (docs/protocol.md 5.4, R1).
static int
s_error_envelope (const char *error, bool retry, zframe_t **frame_p)
{
    zk_envelope_t *envelope = zk_envelope_new ();
    if (!envelope)
        return ZK_ENOMEM;
    int rc = zk_envelope_set_header (envelope, "zk-status", "error");
    if (rc == 0)
        rc = zk_envelope_set_header (envelope, "zk-error", error);
    if (rc == 0 && retry)
        rc = zk_envelope_set_header (envelope, "zk-retry", "1");
    if (rc == 0)
        rc = zk_envelope_encode (envelope, frame_p);
    zk_envelope_destroy (&envelope);
    return rc;
}

/*  Answer the request whose routing frames are routing[0 .. size) (as the
    in-flight table keeps them) with an error reply: ROUTING "" ENVELOPE "".
    Never blocks: a client that has gone or cannot take it loses it, as
    the frontend router does with every reply.                          */
static void
s_fail_back (s_lb_t *self, const uint8_t *routing, size_t size, const char *error, bool retry)
{
    zframe_t *envelope = NULL;
    if (s_error_envelope (error, retry, &envelope)) {
        self->dropped++;
        zk_warn_limited ("cannot make an error reply ('%s'): out of memory", error);
        return;
    }
    for (size_t used = 0; used + 2 <= size;) {
        size_t frame_size = (size_t) (routing[used] << 8 | routing[used + 1]);
        zmq_send (self->front, routing + used + 2, frame_size, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        used += 2 + frame_size;
    }
    zmq_send (self->front, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send (self->front, zframe_data (envelope), zframe_size (envelope),
              ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send (self->front, "", 0, ZMQ_DONTWAIT);
    zframe_destroy (&envelope);
}

//  The request held from the frontend (not sent to a worker) gets an error reply.
static void
s_fail_request (s_lb_t *self, const char *error, bool retry)
{
    uint8_t routing[ROUTING_BUFFER];
    size_t size = s_routing_encode (self->request, self->request_delimiter, routing);
    s_fail_back (self, routing, size, error, retry);
    s_release (self->request, self->request_count);
    self->request_count = 0;
}

//  ---------------------------------------------------------------- workers

//  Send "ZKW1" COMMAND to the worker with this routing id (more: further
//  frames follow). 0; ZK_EENDPOINT when its connection is gone
//  (ZMQ_ROUTER_MANDATORY); ZK_EIO when it cannot take a message now.
static int
s_send_command (s_lb_t *self, const void *id, size_t id_size, const char *command, bool more)
{
    int rc = -1;
    for (int tries = 0; tries < 100 && rc < 0; tries++) {
        rc = zmq_send (self->back, id, id_size, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        if (rc < 0 && errno != EINTR)
            return errno == EHOSTUNREACH ? ZK_EENDPOINT : ZK_EIO;
    }
    if (rc < 0)
        return ZK_EIO;
    //  The first frame went: libzmq takes the rest of the message.
    zmq_send (self->back, SIGNATURE, 4, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send (self->back, command, strlen (command), (more ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT);
    return 0;
}

//  The ready heap orders workers by last use, those never used first (by arrival).
static bool
s_before (const s_worker_t *a, const s_worker_t *b)
{
    return a->last_used < b->last_used || (a->last_used == b->last_used && a->arrival < b->arrival);
}

static void
s_heap_set (s_lb_t *self, size_t index, s_worker_t *worker)
{
    self->ready[index] = worker;
    worker->heap_index = index;
}

static void
s_heap_up (s_lb_t *self, size_t index)
{
    s_worker_t *worker = self->ready[index];
    while (index > 0) {
        size_t parent = (index - 1) / 2;
        if (!s_before (worker, self->ready[parent]))
            break;
        s_heap_set (self, index, self->ready[parent]);
        index = parent;
    }
    s_heap_set (self, index, worker);
}

static void
s_heap_down (s_lb_t *self, size_t index)
{
    s_worker_t *worker = self->ready[index];
    while (true) {
        size_t child = 2 * index + 1;
        if (child >= self->ready_count)
            break;
        if (child + 1 < self->ready_count && s_before (self->ready[child + 1], self->ready[child]))
            child++;
        if (!s_before (self->ready[child], worker))
            break;
        s_heap_set (self, index, self->ready[child]);
        index = child;
    }
    s_heap_set (self, index, worker);
}

//  A worker with credit joins the heap (if it is not in it).
static void
s_heap_push (s_lb_t *self, s_worker_t *worker)
{
    if (worker->heap_index != NOT_IN_HEAP || worker->credit == 0)
        return;
    s_heap_set (self, self->ready_count++, worker);
    s_heap_up (self, worker->heap_index);
}

static void
s_heap_remove (s_lb_t *self, s_worker_t *worker)
{
    size_t index = worker->heap_index;
    if (index == NOT_IN_HEAP)
        return;
    worker->heap_index = NOT_IN_HEAP;
    if (index == --self->ready_count)
        return;
    s_worker_t *moved = self->ready[self->ready_count];
    s_heap_set (self, index, moved);
    s_heap_down (self, index);
    s_heap_up (self, moved->heap_index);
}

static void
s_hex (const uint8_t *data, size_t size, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < size; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 15];
    }
    out[2 * size] = 0;
}

//  The worker whose routing id is frame, or NULL.
static s_worker_t *
s_worker_find (s_lb_t *self, zmq_msg_t *frame)
{
    size_t size = zmq_msg_size (frame);
    if (size == 0 || size > ID_MAX)
        return NULL;
    char key[2 * ID_MAX + 1];
    s_hex (zmq_msg_data (frame), size, key);
    return zhashx_lookup (self->worker_map, key);
}

//  A new worker with no credit yet, or NULL (too many workers, no memory: logged).
static s_worker_t *
s_worker_new (s_lb_t *self, zmq_msg_t *id_frame)
{
    size_t id_size = zmq_msg_size (id_frame);
    if (self->worker_count == MAX_WORKERS || id_size == 0 || id_size > ID_MAX) {
        zk_warn_limited ("a new worker refused: %d workers already", MAX_WORKERS);
        return NULL;
    }
    if (self->worker_count == self->worker_capacity) {
        size_t capacity = self->worker_capacity ? self->worker_capacity * 2 : 16;
        s_worker_t **workers = realloc (self->workers, capacity * sizeof *workers);
        if (workers)
            self->workers = workers;
        s_worker_t **ready = workers ? realloc (self->ready, capacity * sizeof *ready) : NULL;
        if (ready)
            self->ready = ready;
        if (!workers || !ready) {
            zk_warn_limited ("a new worker refused: out of memory");
            return NULL;
        }
        self->worker_capacity = capacity;
    }
    s_worker_t *worker = calloc (1, sizeof *worker);
    if (!worker)
        return NULL;
    memcpy (worker->id, zmq_msg_data (id_frame), id_size);
    worker->id_size = id_size;
    s_hex (worker->id, id_size, worker->key);
    worker->heap_index = NOT_IN_HEAP;
    worker->arrival = ++self->arrivals;
    worker->expires = self->now + ZK_PROXY_LB_LIVENESS * (int64_t) self->heartbeat_ms;
    if (zhashx_insert (self->worker_map, worker->key, worker) != 0) {
        free (worker);
        return NULL;
    }
    worker->index = self->worker_count;
    self->workers[self->worker_count++] = worker;
    return worker;
}

static void
s_worker_free (s_worker_t *worker)
{
    for (uint32_t i = 0; i < worker->entry_capacity; i++)
        free (worker->entries[i].routing);
    free (worker->entries);
    free (worker);
}

/*  Forget a worker. Every request it held is answered at once with an
    error reply (error, zk-retry=1), so its client can send it again
    elsewhere without waiting for its timeout.                          */
static void
s_worker_drop (s_lb_t *self, s_worker_t *worker, const char *error, const char *why)
{
    if (streq (error, "worker stopping"))
        zk_info ("worker %.16s left (%s): %" PRIu32 " requests failed back", worker->key, why,
                 worker->busy);
    else
        zk_warn_limited ("worker %.16s lost (%s): %" PRIu32 " requests failed back", worker->key,
                         why, worker->busy);
    for (uint32_t i = 0; i < worker->busy; i++)
        s_fail_back (self, worker->entries[i].routing, worker->entries[i].size, error, true);
    self->lost += worker->busy;
    self->in_flight -= worker->busy;
    s_heap_remove (self, worker);
    zhashx_delete (self->worker_map, worker->key);
    s_worker_t *last = self->workers[--self->worker_count];
    self->workers[worker->index] = last;
    last->index = worker->index;
    s_worker_free (worker);
}

//  Room in worker's table for one more request whose routing takes size
//  bytes. False when out of memory.
static bool
s_entry_reserve (s_worker_t *worker, size_t size)
{
    if (worker->busy == worker->entry_capacity) {
        uint32_t capacity = worker->entry_capacity ? worker->entry_capacity * 2 : 4;
        if (capacity > ZK_PROXY_LB_MAX_CREDIT)
            capacity = ZK_PROXY_LB_MAX_CREDIT;
        if (capacity <= worker->busy)
            return false;  //  cannot happen: credit + busy <= ZK_PROXY_LB_MAX_CREDIT
        s_entry_t *entries = realloc (worker->entries, capacity * sizeof *entries);
        if (!entries)
            return false;
        memset (entries + worker->entry_capacity, 0,
                (capacity - worker->entry_capacity) * sizeof *entries);
        worker->entries = entries;
        worker->entry_capacity = capacity;
    }
    s_entry_t *entry = &worker->entries[worker->busy];
    if (entry->capacity < size) {
        uint32_t capacity = size < 64 ? 64 : (uint32_t) size;
        uint8_t *routing = realloc (entry->routing, capacity);
        if (!routing)
            return false;
        entry->routing = routing;
        entry->capacity = capacity;
    }
    return true;
}

//  The request of worker's table with these routing frames, or -1.
static long
s_entry_find (s_worker_t *worker, zmq_msg_t *frames, size_t count)
{
    for (uint32_t i = 0; i < worker->busy; i++)
        if (s_routing_equal (&worker->entries[i], frames, count))
            return (long) i;
    return -1;
}

//  Request index is answered: its slot is free again. The last entry
//  takes its place (buffers swap, none is freed).
static void
s_entry_done (s_lb_t *self, s_worker_t *worker, long index)
{
    s_entry_t done = worker->entries[index];
    worker->entries[index] = worker->entries[--worker->busy];
    worker->entries[worker->busy] = done;
    worker->credit++;
    self->in_flight--;
    s_heap_push (self, worker);
}

/*  Send the request held from the frontend to the least recently used
    worker with a free slot, and note it in that worker's table. A worker
    that cannot take it (its connection is gone, its queue full beyond
    its credit) is dropped and the next one tried. With no worker left
    the request stays held: the frontend is not read meanwhile.         */
static void
s_dispatch (s_lb_t *self)
{
    while (self->request_count && self->ready_count) {
        s_worker_t *worker = self->ready[0];
        size_t routing_size = s_routing_size (self->request, self->request_delimiter);
        if (!s_entry_reserve (worker, routing_size)) {
            self->dropped++;
            zk_warn_limited ("a request dropped: out of memory");
            s_release (self->request, self->request_count);
            self->request_count = 0;
            return;
        }
        int rc = s_send_command (self, worker->id, worker->id_size, "REQUEST", true);
        if (rc) {
            s_worker_drop (self, worker, "worker lost",
                           rc == ZK_EENDPOINT ? "its connection is gone"
                                              : "its queue is full beyond its credit");
            continue;
        }
        s_entry_t *entry = &worker->entries[worker->busy++];
        entry->size =
            (uint32_t) s_routing_encode (self->request, self->request_delimiter, entry->routing);
        for (size_t i = 0; i < self->request_count; i++)
            zmq_msg_send (&self->request[i], self->back,
                          (i + 1 < self->request_count ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT);
        s_release (self->request, self->request_count);
        self->request_count = 0;
        worker->credit--;
        worker->last_used = ++self->dispatches;
        if (worker->credit)
            s_heap_down (self, worker->heap_index);
        else
            s_heap_remove (self, worker);
        self->requests++;
        self->in_flight++;
    }
}

//  ---------------------------------------------------------------- the frontend

//  Take requests while a worker has a free slot, each to a worker at once.
static void
s_frontend (s_lb_t *self)
{
    for (int taken = 0; taken < ZK_DEVICE_BATCH && self->ready_count && !self->request_count;
         taken++) {
        size_t count, bytes;
        s_received_t received =
            s_receive (self, self->front, self->request, "frontend", &count, &bytes);
        if (received == R_NOTHING)
            break;
        const char *why = NULL;
        if (received == R_ACCEPTED) {
            why = s_routing_check (self->request, 0, count, &self->request_delimiter);
            if (why)
                s_refuse (self, bytes, "frontend", why);
        }
        if (received == R_REFUSED || why) {
            s_release (self->request, count);
            continue;
        }
        self->frontend_in++;
        self->frontend_in_bytes += bytes;
        self->request_count = count;
        s_capture (self, self->request, count);
        s_dispatch (self);
    }
}

//  ---------------------------------------------------------------- the backend

//  CREDIT: 1 to 4 decimal digits, 1 .. ZK_PROXY_LB_MAX_CREDIT. 0 when invalid.
static uint32_t
s_parse_credit (zmq_msg_t *frame)
{
    size_t size = zmq_msg_size (frame);
    const char *digits = zmq_msg_data (frame);
    if (size == 0 || size > 4)
        return 0;
    uint32_t credit = 0;
    for (size_t i = 0; i < size; i++) {
        if (digits[i] < '0' || digits[i] > '9')
            return 0;
        credit = credit * 10 + (uint32_t) (digits[i] - '0');
    }
    return credit <= ZK_PROXY_LB_MAX_CREDIT ? credit : 0;
}

//  READY CREDIT: a new worker, or more free slots for a known one. NULL
//  when it is fine, else why it is refused.
static const char *
s_ready (s_lb_t *self, s_worker_t *worker, size_t count)
{
    zmq_msg_t *frames = self->message;
    uint32_t credit = count == 4 ? s_parse_credit (&frames[3]) : 0;
    if (!credit)
        return "READY without a valid CREDIT (1..1024)";
    if (!worker) {
        worker = s_worker_new (self, &frames[0]);
        if (!worker)
            return "READY from one worker too many";
        zk_info ("worker %.16s ready with %" PRIu32 " slots", worker->key, credit);
    }
    else if (worker->credit + worker->busy + credit > ZK_PROXY_LB_MAX_CREDIT)
        return "READY past 1024 slots in all";
    worker->credit += credit;
    s_heap_push (self, worker);
    return NULL;
}

/*  A known worker answered the request with these routing frames: the
    slot comes back. A reply that matches no request in its table is to
    one it was running when it last sent READY, which counted only its
    free slots (it had reconnected, or was told DISCONNECT): that slot is
    free now too, so it comes back all the same, within 1024 in all.    */
static void
s_slot_back (s_lb_t *self, s_worker_t *worker, zmq_msg_t *routing, size_t count)
{
    long index = s_entry_find (worker, routing, count);
    if (index >= 0)
        s_entry_done (self, worker, index);
    else if (worker->credit + worker->busy < ZK_PROXY_LB_MAX_CREDIT) {
        zk_debug ("worker %.16s answered a request from before its READY", worker->key);
        worker->credit++;
        s_heap_push (self, worker);
    }
}

/*  A REPLY: ROUTING "" REPLY-FRAMES after the command. Forwarded to the
    client in any case (from a worker the proxy does not know, too: the
    client drops what it no longer waits for).                          */
static const char *
s_reply (s_lb_t *self, s_worker_t *worker, size_t count)
{
    zmq_msg_t *frames = self->message;
    size_t delimiter;
    if (s_routing_check (frames, 3, count, &delimiter))
        return "a REPLY without a valid routing envelope";
    if (worker)
        s_slot_back (self, worker, frames + 3, delimiter - 3);
    s_capture (self, frames + 3, count - 3);
    for (size_t i = 3; i < count; i++)
        zmq_msg_send (&frames[i], self->front, (i + 1 < count ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT);
    self->replies++;
    return NULL;
}

//  A known worker's message refused for its size or frame count: when it
//  is a REPLY, its client gets a final error reply in its place and the
//  slot comes back.
static void
s_refused_reply (s_lb_t *self, s_worker_t *worker, size_t count)
{
    zmq_msg_t *frames = self->message;
    size_t delimiter;
    if (!worker || count < 4 || !s_frame_is (&frames[1], SIGNATURE)
        || !s_frame_is (&frames[2], "REPLY") || s_routing_check (frames, 3, count, &delimiter))
        return;
    char error[160];
    snprintf (error, sizeof error, "reply refused by the proxy: %s", self->refusal);
    uint8_t routing[ROUTING_BUFFER];
    size_t size = s_routing_encode (frames + 3, delimiter - 3, routing);
    s_fail_back (self, routing, size, error, false);
    s_slot_back (self, worker, frames + 3, delimiter - 3);
}

/*  One message from a worker: ID "ZKW1" COMMAND [ARGS...]. Anything from
    a known worker is a sign of life. A valid message from a worker the
    proxy does not know, READY and DISCONNECT excepted, is answered with
    DISCONNECT; a malformed one is never answered.                      */
static void
s_worker_message (s_lb_t *self, size_t count, size_t bytes, s_received_t received)
{
    zmq_msg_t *frames = self->message;
    s_worker_t *worker = s_worker_find (self, &frames[0]);
    if (worker)
        worker->expires = self->now + ZK_PROXY_LB_LIVENESS * (int64_t) self->heartbeat_ms;
    if (received == R_REFUSED) {
        s_refused_reply (self, worker, count);
        return;
    }
    const char *why = NULL;
    zmq_msg_t *command = &frames[2];
    if (count < 3)
        why = "a message too short for ZKW/1";
    else if (!s_frame_is (&frames[1], SIGNATURE))
        why = "a message without the ZKW1 signature";
    else if (s_frame_is (command, "READY"))
        why = s_ready (self, worker, count);
    else if (s_frame_is (command, "REPLY"))
        why = s_reply (self, worker, count);
    else if (s_frame_is (command, "HEARTBEAT"))
        why = count == 3 ? NULL : "a HEARTBEAT with extra frames";
    else if (s_frame_is (command, "DISCONNECT")) {
        if (count != 3)
            why = "a DISCONNECT with extra frames";
        else if (worker)
            s_worker_drop (self, worker, "worker stopping", "it sent DISCONNECT");
    }
    else
        why = "an unknown ZKW/1 command";
    if (why) {
        s_refuse (self, bytes, "backend", why);
        return;
    }
    self->backend_in++;
    self->backend_in_bytes += bytes;
    if (!worker && !s_frame_is (command, "READY") && !s_frame_is (command, "DISCONNECT")) {
        self->unknown++;
        s_send_command (self, zmq_msg_data (&frames[0]), zmq_msg_size (&frames[0]), "DISCONNECT",
                        false);
    }
}

//  Take what the workers sent, up to limit messages. True when more may wait.
static bool
s_backend (s_lb_t *self, int limit)
{
    for (int taken = 0; taken < limit; taken++) {
        size_t count, bytes;
        s_received_t received =
            s_receive (self, self->back, self->message, "backend", &count, &bytes);
        if (received == R_NOTHING)
            return false;
        s_worker_message (self, count, bytes, received);
        s_release (self->message, count);
    }
    return true;
}

//  Every heartbeat interval: drop the workers silent for too long, send
//  HEARTBEAT to the others (a worker whose connection is gone is dropped).
static void
s_heartbeat (s_lb_t *self)
{
    //  What the workers sent is read first: when this thread was held up
    //  (a loaded machine), their heartbeats wait in the socket, unread.
    for (int batch = 0; batch < 10 && s_backend (self, ZK_DEVICE_BATCH); batch++)
        ;
    for (size_t i = 0; i < self->worker_count;) {
        s_worker_t *worker = self->workers[i];
        const char *lost = NULL;
        if (self->now >= worker->expires)
            lost = "silent for 3 heartbeats";
        else if (s_send_command (self, worker->id, worker->id_size, "HEARTBEAT", false)
                 == ZK_EENDPOINT)
            lost = "its connection is gone";
        if (lost)
            s_worker_drop (self, worker, "worker lost", lost);  //  the last one takes place i
        else
            i++;
    }
}

//  ---------------------------------------------------------------- counters and commands

typedef struct {
    const char *name;
    uint64_t value;
} s_counter_t;

static size_t
s_counters (s_lb_t *self, s_counter_t *counters)
{
    size_t n = 0;
    counters[n++] = (s_counter_t){"frontend_in", self->frontend_in};
    counters[n++] = (s_counter_t){"frontend_in_bytes", self->frontend_in_bytes};
    counters[n++] = (s_counter_t){"backend_in", self->backend_in};
    counters[n++] = (s_counter_t){"backend_in_bytes", self->backend_in_bytes};
    counters[n++] = (s_counter_t){"workers", self->worker_count};
    counters[n++] = (s_counter_t){"in_flight", self->in_flight};
    counters[n++] = (s_counter_t){"requests", self->requests};
    counters[n++] = (s_counter_t){"replies", self->replies};
    counters[n++] = (s_counter_t){"lost", self->lost};
    counters[n++] = (s_counter_t){"unknown", self->unknown};
    counters[n++] = (s_counter_t){"refused", self->refused};
    counters[n++] = (s_counter_t){"refused_bytes", self->refused_bytes};
    counters[n++] = (s_counter_t){"captured", self->captured};
    counters[n++] = (s_counter_t){"capture_dropped", self->capture_dropped};
    counters[n++] = (s_counter_t){"dropped", self->dropped};
    counters[n++] = (s_counter_t){"auth_denied", zk_auth_denied ()};
    assert (n <= MAX_COUNTERS);
    return n;
}

static void
s_stats_text (void *arg, char *text, size_t size)
{
    s_lb_t *self = arg;
    s_counter_t counters[MAX_COUNTERS];
    size_t n = s_counters (self, counters);
    size_t used = 0;
    text[0] = 0;
    for (size_t i = 0; i < n && used < size; i++) {
        int wrote = snprintf (text + used, size - used, "%s%s=%" PRIu64, i ? " " : "",
                              counters[i].name, counters[i].value);
        if (wrote < 0)
            break;
        used += (size_t) wrote;
    }
}

static zmsg_t *
s_stats_reply (void *arg)
{
    s_lb_t *self = arg;
    zmsg_t *reply = zmsg_new ();
    s_counter_t counters[MAX_COUNTERS];
    size_t n = s_counters (self, counters);
    for (size_t i = 0; i < n; i++)
        zk_engine_add_counter (reply, counters[i].name, counters[i].value);
    zk_engine_add_counter (reply, "paused", self->paused || self->terminated);
    return reply;
}

//  ---------------------------------------------------------------- life

/*  Stop: the requests still held (by workers, or taken and not yet
    sent) are answered "proxy stopping" with zk-retry=1, so that clients
    retry elsewhere at once; linger hands those replies over.           */
static void
s_lb_destroy (s_lb_t **self_p)
{
    s_lb_t *self = *self_p;
    if (!self)
        return;
    if (!self->context_gone && self->front) {
        if (self->request_count) {
            s_fail_request (self, "proxy stopping", true);
            self->lost++;
        }
        for (size_t i = 0; i < self->worker_count; i++) {
            s_worker_t *worker = self->workers[i];
            for (uint32_t e = 0; e < worker->busy; e++)
                s_fail_back (self, worker->entries[e].routing, worker->entries[e].size,
                             "proxy stopping", true);
            self->lost += worker->busy;
        }
    }
    for (size_t i = 0; i < self->worker_count; i++)
        s_worker_free (self->workers[i]);
    free (self->workers);
    free (self->ready);
    zhashx_destroy (&self->worker_map);
    if (!self->context_gone) {
        zsock_destroy (&self->frontend);
        zsock_destroy (&self->backend);
        zsock_destroy (&self->capture);
        zsock_destroy (&self->control);
    }
    for (size_t i = 0; i < ZK_DEVICE_MAX_FRAMES; i++) {
        zmq_msg_close (&self->request[i]);
        zmq_msg_close (&self->message[i]);
    }
    zmq_msg_close (&self->scratch);
    zk_spec_destroy (&self->frontend_spec);
    zk_spec_destroy (&self->backend_spec);
    zk_spec_destroy (&self->capture_spec);
    zk_spec_destroy (&self->control_spec);
    free (self);
    *self_p = NULL;
}

//  Open the sockets. NULL if one failed (logged).
static s_lb_t *
s_lb_new (zsock_t *pipe, zk_device_config_t *config)
{
    s_lb_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->config = config;
    self->pipe = pipe;
    self->heartbeat_ms = config->heartbeat_ms > 0 ? config->heartbeat_ms : ZK_LB_HEARTBEAT_MS;
    for (size_t i = 0; i < ZK_DEVICE_MAX_FRAMES; i++) {
        zmq_msg_init (&self->request[i]);
        zmq_msg_init (&self->message[i]);
    }
    zmq_msg_init (&self->scratch);
    self->worker_map = zhashx_new ();
    //  Credit bounds what waits for a worker: its queue never needs more.
    int hwm = config->hwm;
    int backend_hwm = (hwm > 0 ? hwm : 1000) < BACKEND_HWM ? BACKEND_HWM : hwm;
    zk_engine_limits_t data = {.hwm = hwm,
                               .linger_ms = config->linger_ms,
                               .max_size = config->max_size,
                               .handshake_ms = config->handshake_ms};
    zk_engine_limits_t backend = data, small = data;
    backend.hwm = backend_hwm;
    small.max_size = 1;  //  capture and control: the slack alone
    //  The capture and control types were checked by zk_proxy_validate.
    if (!self->worker_map
        || zk_engine_open_limited ("frontend", config->frontend, s_router, &data, &self->frontend,
                                   &self->frontend_spec)
        || zk_engine_open_limited ("backend", config->backend, s_router, &backend, &self->backend,
                                   &self->backend_spec)
        || (config->capture
            && zk_engine_open_limited ("capture", config->capture, NULL, &small, &self->capture,
                                       &self->capture_spec))
        || (config->control
            && zk_engine_open_limited ("control", config->control, NULL, &small, &self->control,
                                       &self->control_spec))) {
        s_lb_destroy (&self);
        return NULL;
    }
    self->front = zsock_resolve (self->frontend);
    self->back = zsock_resolve (self->backend);
    //  A send to a worker whose connection is gone fails (EHOSTUNREACH)
    //  instead of vanishing: the worker is dropped at once.
    zsock_set_router_mandatory (self->backend, 1);
    if (self->control) {
        if (zsock_type (self->control) == ZMQ_SUB)
            zsock_set_subscribe (self->control, "");
        zsock_set_sndtimeo (self->control, 0);
    }
    self->now = zk_now_ms ();
    self->next_heartbeat = self->now + self->heartbeat_ms;
    if (config->stats_interval_ms > 0)
        self->next_stats = self->now + config->stats_interval_ms;
    return self;
}

static void
s_run (s_lb_t *self)
{
    enum { PIPE, BACKEND, FRONTEND, CONTROL };
    while (true) {
        self->now = zk_now_ms ();
        if (self->now >= self->next_heartbeat) {
            s_heartbeat (self);
            self->next_heartbeat = self->now + self->heartbeat_ms;
        }
        if (self->config->stats_interval_ms > 0 && self->now >= self->next_stats) {
            char text[STATS_TEXT_MAX];
            s_stats_text (self, text, sizeof text);
            zk_notice ("stats %s", text);
            self->next_stats = self->now + self->config->stats_interval_ms;
        }
        bool moving = !self->paused && !self->terminated;
        if (moving && self->request_count)
            s_dispatch (self);
        //  Back-pressure: the frontend is read only while a worker has a free slot.
        bool taking = moving && self->ready_count && !self->request_count;
        zmq_pollitem_t items[4] = {
            {zsock_resolve (self->pipe), 0, ZMQ_POLLIN, 0},
            {self->back, 0, ZMQ_POLLIN, 0},
            {self->front, 0, taking ? ZMQ_POLLIN : 0, 0},
            {self->control ? zsock_resolve (self->control) : NULL, 0, ZMQ_POLLIN, 0},
        };
        int64_t wake = self->next_heartbeat;
        if (self->config->stats_interval_ms > 0 && self->next_stats < wake)
            wake = self->next_stats;
        long timeout = wake > self->now ? (long) (wake - self->now) : 0;
        //  Never leave the loop on EINTR: only $TERM ends it.
        if (zmq_poll (items, self->control ? 4 : 3, timeout) < 0) {
            if (errno == ETERM || errno == ENOTSOCK) {
                self->context_gone = true;
                return;
            }
            if (errno != EINTR)
                zk_warn_limited ("%s: poll failed: %s", self->config->name, zmq_strerror (errno));
            continue;
        }
        self->now = zk_now_ms ();
        zk_spec_t *const specs[4] = {self->frontend_spec, self->backend_spec, self->capture_spec,
                                     self->control_spec};
        if ((items[PIPE].revents & ZMQ_POLLIN)
            && !zk_device_pipe (self->pipe, self->config->name, &self->paused, s_stats_reply, self,
                                specs))
            return;
        if (self->control && (items[CONTROL].revents & ZMQ_POLLIN))
            zk_device_control (self->control, self->pipe, &self->paused, &self->terminated,
                               s_stats_text, self);
        if (items[BACKEND].revents & ZMQ_POLLIN)
            s_backend (self, ZK_DEVICE_BATCH);
        if (taking && !self->paused && !self->terminated && (items[FRONTEND].revents & ZMQ_POLLIN))
            s_frontend (self);
    }
}

void
zk_lb_actor (zsock_t *pipe, void *args)
{
    zk_device_config_t *config = args;
    zsock_signal (pipe, 0);
    s_lb_t *self = s_lb_new (pipe, config);
    //  Could not start: zk_device_start reads -1 and destroys the actor.
    zsock_signal (pipe, self ? 0 : (byte) -1);
    if (self) {
        zk_info ("load balancing: heartbeat every %d ms, a worker silent for %d is dropped",
                 self->heartbeat_ms, ZK_PROXY_LB_LIVENESS);
        s_run (self);
        s_lb_destroy (&self);
    }
    zk_device_config_free (config);
}
