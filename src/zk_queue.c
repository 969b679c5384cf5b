/*  zk_queue — the durable queue server (see include/zk_queue.h; the wire
    protocol is docs/protocol.md, "The queue protocol", ZKQ/1). This file
    is the engine: sockets, clients, the loop, commit, dispatch, timers
    and the API; src/zk_qserve.c parses the requests and answers them;
    src/zk_qstore.c keeps each queue (zk_classes.h declares what they
    share).

    One actor thread owns everything: the ROUTER socket (one socket bound
    or connected to every spec), a PAIR socket on its monitor, the --pull
    sockets, and the queues (zk_qstore_t: journal + index, src/zk_qstore.c).

    A turn of the loop:
      1. the monitor's events (a closed connection releases its leases);
      2. timers: lease expiry, forgetting old status, removing segments;
      3. a batch: every request waiting, up to ZK_QSERVER_BATCH_MAX; each
         appends its records at once and leaves a completion (what to
         reply, which entries to settle) in arrival order (zk_qserve.c);
      4. commit: one flush + fdatasync per journal touched (group commit);
      5. settle: moves (dead letters, MOVE), then the completions in order:
         a put becomes deliverable and is confirmed only if its record is
         durable; otherwise ERR 503 and the entry is dropped;
      6. dispatch: deliver ready messages to consumers with credit, round
         robin, one at a time, so work spreads and nobody is flooded.

    A failed write discards every record not yet written (zk_journal.h),
    so failure is tracked per queue as a seq: records from fail_from on
    are treated as lost. It is conservative (a record written after a
    failure may be reported lost: the producer retries, dedup keeps it
    single in memory) and never the other way round.

    Moves (to NAME.dead, or MOVE) copy the message into the target first
    and write the record that removes it from the source only once the
    copy is durable: a crash in between leaves a duplicate, never a loss.
    The copy is skipped when the target already holds the message live
    (dedup by presence), so a repeated move stays single.

    Disconnects: libzmq 4.3 has no ZMQ_ROUTER_NOTIFY, so a client is tied
    to the connection its frames came from (ZMQ_SRCFD) and the monitor's
    DISCONNECTED event (which carries the fd) ends it. fds are reused, so
    each fd has a generation, bumped at every accept/connect/disconnect;
    the monitor is drained before a client is (re)bound to an fd, so the
    binding always names the connection's own generation.               */

#include "zk_classes.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define S_OUTBOX_MAX     100000  //  replies waiting for one client's full pipe
#define S_RETRY_MS       2       //  blocked sends are retried this often
#define S_DEFAULT_HWM    10000   //  router pipes: room for a pipelining client's replies
#define S_TIMER_MS       100     //  lease expiry and maintenance scan, at least this often
#define S_IDLE_MS        60000   //  a client that holds nothing is forgotten after this
#define S_HEARTBEAT_IVL  1000
#define S_HEARTBEAT_TTL  3000
#define S_MAXMSG_SLACK   65536  //  frames above max_size + this close the connection
#define S_MAX_SIZE_LIMIT ((size_t) 256 << 20)
#define S_RECORD_SLACK                                                                             \
    (ZK_QSTORE_RECORD_HEAD + 4 * ZK_QUEUE_BODY_FRAMES + ZK_QUEUE_REASON_MAX + 256)
#define S_STATS_TEXT 1024

//  The configuration, deep-copied: the actor and the owner share it.
typedef struct {
    zk_queue_config_t config;
    char *data_dir;
    char **specs;
    char **pulls;
} s_setup_t;

struct _zk_queue_t {
    zactor_t *actor;
    s_setup_t *setup;
};

// ---------------------------------------------------------------- small helpers

static void
s_clock (zk_qserver_t *self)
{
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    self->now_us = (int64_t) now.tv_sec * 1000000 + now.tv_nsec / 1000;
    self->now_ms = zk_now_ms ();
}

bool
zk_queue_name_valid (const char *name, size_t size)
{
    if (!name || size == 0 || size > ZK_QUEUE_NAME_MAX || name[0] == '.')
        return false;
    for (size_t index = 0; index < size; index++) {
        char c = name[index];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                  || c == '.' || c == '_' || c == '-';
        if (!ok || (c == '.' && index + 1 < size && name[index + 1] == '.'))
            return false;
    }
    return true;
}

bool
zk_queue_consumer_valid (const char *name, size_t size)
{
    if (!name || size == 0 || size > ZK_QUEUE_CONSUMER_MAX)
        return false;
    for (size_t index = 0; index < size; index++)
        if (name[index] < 0x21 || name[index] > 0x7e)
            return false;
    return true;
}

static void
s_hex (const uint8_t *data, size_t size, char *text)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t index = 0; index < size; index++) {
        text[2 * index] = digits[data[index] >> 4];
        text[2 * index + 1] = digits[data[index] & 15];
    }
    text[2 * size] = 0;
}

// ---------------------------------------------------------------- queues

void
zk_qserver_mark_dirty (zk_qserver_t *self, zk_qserver_queue_t *queue)
{
    if (queue->dirty)
        return;
    queue->dirty = true;
    self->dirty[self->dirty_count++] = queue;
}

void
zk_qserver_kick (zk_qserver_t *self, zk_qserver_queue_t *queue)
{
    if (queue->kicked)
        return;
    queue->kicked = true;
    self->kicked[self->kicked_count++] = queue;
}

//  Records of queue from from_seq on are lost.
void
zk_qserver_note_failure (zk_qserver_t *self, zk_qserver_queue_t *queue, uint64_t from_seq, int rc)
{
    zk_warn_limited ("queue %s: cannot store: %s", queue->store->name, zk_strerror (rc));
    if (from_seq < queue->fail_from)
        queue->fail_from = from_seq;
    if (!queue->failing) {
        queue->failing = true;
        self->failing[self->failing_count++] = queue;
    }
}

//  True when the record seq of queue is durable under the policy and was
//  not discarded by a failure.
bool
zk_qserver_record_ok (zk_qserver_t *self, zk_qserver_queue_t *queue, uint64_t seq)
{
    if (seq >= queue->fail_from)
        return false;
    zk_journal_t *journal = queue->store->journal;
    uint64_t durable = self->config->fsync == ZK_QUEUE_FSYNC_NEVER
                           ? zk_journal_written_seq (journal)
                           : zk_journal_synced_seq (journal);
    return seq <= durable;
}

//  Under --fsync always, a PUT or ACK is made durable before the next request.
void
zk_qserver_sync_always (zk_qserver_t *self, zk_qserver_queue_t *queue)
{
    if (self->config->fsync != ZK_QUEUE_FSYNC_ALWAYS)
        return;
    zk_journal_t *journal = queue->store->journal;
    int rc = zk_journal_sync (journal);
    self->counters.syncs++;
    if (rc)
        zk_qserver_note_failure (self, queue, zk_journal_synced_seq (journal) + 1, rc);
}

static zk_qserver_queue_t *
s_queue_open (zk_qserver_t *self, const char *name, bool limited)
{
    if (limited && self->queue_count >= (size_t) self->config->max_queues) {
        zk_warn_limited ("queue %s: not created: the server hosts %zu queues already (limit)", name,
                         self->queue_count);
        return NULL;
    }
    zk_qserver_queue_t *queue = calloc (1, sizeof *queue);
    if (!queue)
        return NULL;
    queue->fail_from = UINT64_MAX;
    //  Three lists of queue pointers, each at most one entry per queue.
    size_t capacity = self->queue_capacity;
    if (self->queue_count == capacity) {
        capacity = capacity ? capacity * 2 : 64;
        zk_qserver_queue_t **lists[4] = {NULL, NULL, NULL, NULL};
        bool failed = false;
        zk_qserver_queue_t ***targets[4] = {&self->queues, &self->dirty, &self->kicked,
                                            &self->failing};
        for (int index = 0; index < 4; index++) {
            lists[index] = realloc (*targets[index], capacity * sizeof (zk_qserver_queue_t *));
            if (lists[index])
                *targets[index] = lists[index];
            else
                failed = true;
        }
        if (failed) {
            free (queue);
            return NULL;
        }
        self->queue_capacity = capacity;
    }
    int rc = zk_qstore_open (self->config->data_dir, name, &self->store_config, &queue->store);
    if (rc) {
        free (queue);
        return NULL;
    }
    self->counters.damaged_open +=
        queue->store->counters.damaged_runs + queue->store->counters.bad_records;
    zhashx_insert (self->queue_map, queue->store->name, queue);
    self->queues[self->queue_count++] = queue;
    if (queue->store->ready.count || queue->store->live)
        zk_info ("queue %s: %" PRIu32 " messages back from the journal", name, queue->store->live);
    return queue;
}

//  The queue called name (size bytes, valid), opened or created on
//  demand when create is set. NULL if absent, or if it cannot be opened.
zk_qserver_queue_t *
zk_qserver_queue_get (zk_qserver_t *self, const void *name, size_t size, bool create)
{
    char text[ZK_QUEUE_NAME_MAX + 1];
    memcpy (text, name, size);
    text[size] = 0;
    zk_qserver_queue_t *queue = zhashx_lookup (self->queue_map, text);
    if (!queue && create)
        queue = s_queue_open (self, text, true);
    return queue;
}

//  NAME.dead, opened on demand; NULL if the name would be too long or
//  it cannot be opened.
zk_qserver_queue_t *
zk_qserver_dead_queue (zk_qserver_t *self, zk_qserver_queue_t *queue)
{
    char name[ZK_QUEUE_NAME_MAX + 8];
    int size = snprintf (name, sizeof name, "%s.dead", queue->store->name);
    if (size > ZK_QUEUE_NAME_MAX) {
        zk_warn_limited ("queue %s: the name is too long for a dead-letter queue: the message "
                         "stays queued",
                         queue->store->name);
        return NULL;
    }
    return zk_qserver_queue_get (self, name, (size_t) size, true);
}

zk_qserver_sub_t *
zk_qserver_sub_find (zk_qserver_queue_t *queue, uint32_t slot)
{
    for (size_t index = 0; index < queue->sub_count; index++)
        if (queue->subs[index].client == slot)
            return &queue->subs[index];
    return NULL;
}

const char *
zk_qserver_consumer (zk_qserver_queue_t *queue, uint32_t slot)
{
    zk_qserver_sub_t *sub = zk_qserver_sub_find (queue, slot);
    return sub && sub->consumer[0] ? sub->consumer : NULL;
}

// ---------------------------------------------------------------- clients

static uint32_t
s_fd_gen (zk_qserver_t *self, int fd)
{
    return fd >= 0 && (size_t) fd < self->fd_gen_size ? self->fd_gen[fd] : 0;
}

static void
s_fd_bump (zk_qserver_t *self, int fd)
{
    if (fd < 0 || fd > 1 << 24)
        return;
    if ((size_t) fd >= self->fd_gen_size) {
        size_t size = self->fd_gen_size ? self->fd_gen_size : 256;
        while (size <= (size_t) fd)
            size *= 2;
        uint32_t *gens = realloc (self->fd_gen, size * sizeof *gens);
        if (!gens)
            return;
        memset (gens + self->fd_gen_size, 0, (size - self->fd_gen_size) * sizeof *gens);
        self->fd_gen = gens;
        self->fd_gen_size = size;
    }
    self->fd_gen[fd]++;
}

//  Forget a client: every message it holds is released (while its sub
//  still names the consumer, for a dead letter's record), its subs go.
static void
s_client_remove (zk_qserver_t *self, zk_qserver_client_t *client, const char *reason)
{
    for (size_t index = 0; index < client->queue_count; index++) {
        zk_qserver_queue_t *queue = client->queues[index];
        //  Newest first: each goes to the front, so they end up in delivery order.
        zk_qstore_t *store = queue->store;
        uint32_t id = store->leased.tail;
        while (id != ZK_QSTORE_NIL) {
            zk_qentry_t *entry = zk_qstore_entry (store, id);
            uint32_t prev = entry->prev;
            if (entry->holder == client->slot) {
                self->counters.released++;
                store->counters.released++;
                zk_qserver_release (self, queue, id, reason, UINT32_MAX);
            }
            id = prev;
        }
        zk_qserver_sub_t *sub = zk_qserver_sub_find (queue, client->slot);
        if (sub) {
            *sub = queue->subs[--queue->sub_count];
            if (queue->next_sub >= queue->sub_count)
                queue->next_sub = 0;
        }
    }
    if (client->queue_count)
        zk_info ("client %s left (%s): its messages are released", client->key, reason);
    zhashx_delete (self->client_map, client->key);
    self->clients[client->slot] = NULL;
    self->freed_slots[self->freed_count++] = client->slot;
    self->client_count--;
    if (self->last_client == client)
        self->last_client = NULL;
    while (zlist_size (client->outbox)) {
        zmsg_t *msg = zlist_pop (client->outbox);
        zmsg_destroy (&msg);
    }
    zlist_destroy (&client->outbox);
    free (client->queues);
    free (client);
}

static zk_qserver_client_t *
s_client_new (zk_qserver_t *self, const uint8_t *id, size_t size, const char *key)
{
    if (self->free_count == 0) {
        uint32_t capacity = self->client_capacity ? self->client_capacity * 2 : 64;
        zk_qserver_client_t **clients = realloc (self->clients, capacity * sizeof *clients);
        if (!clients)
            return NULL;
        self->clients = clients;
        uint32_t *free_slots = realloc (self->free_slots, capacity * sizeof *free_slots);
        if (free_slots)
            self->free_slots = free_slots;
        uint32_t *freed_slots = realloc (self->freed_slots, capacity * sizeof *freed_slots);
        if (freed_slots)
            self->freed_slots = freed_slots;
        if (!free_slots || !freed_slots)
            return NULL;
        for (uint32_t slot = capacity; slot > self->client_capacity; slot--) {
            clients[slot - 1] = NULL;
            self->free_slots[self->free_count++] = slot - 1;
        }
        self->client_capacity = capacity;
    }
    zk_qserver_client_t *client = calloc (1, sizeof *client);
    if (!client)
        return NULL;
    client->outbox = zlist_new ();
    if (!client->outbox) {
        free (client);
        return NULL;
    }
    memcpy (client->id, id, size);
    client->id_size = size;
    client->fd = -1;
    memcpy (client->key, key, 2 * size + 1);
    client->slot = self->free_slots[--self->free_count];
    self->clients[client->slot] = client;
    self->client_count++;
    zhashx_insert (self->client_map, client->key, client);
    return client;
}

static void s_drain_monitor (zk_qserver_t *self);

//  The client behind a routing id, created on first sight and bound to
//  the connection fd its frames came from.
zk_qserver_client_t *
zk_qserver_client_for (zk_qserver_t *self, const uint8_t *id, size_t size, int fd)
{
    zk_qserver_client_t *client = self->last_client;
    char key[2 * 256 + 1];
    key[0] = 0;
    if (!client || client->id_size != size || memcmp (client->id, id, size) != 0) {
        s_hex (id, size, key);
        client = zhashx_lookup (self->client_map, key);
    }
    if (!client || client->fd != fd) {
        //  A new connection: the monitor's events up to its accept must be
        //  handled first (they may end this client's previous connection).
        if (!key[0])
            s_hex (id, size, key);
        if (fd >= 0)
            s_drain_monitor (self);
        client = zhashx_lookup (self->client_map, key);
        if (!client)
            client = s_client_new (self, id, size, key);
        if (!client)
            return NULL;
        client->fd = fd;
        client->fd_gen = s_fd_gen (self, fd);
    }
    client->last_seen = self->now_ms;
    self->last_client = client;
    return client;
}

//  Remove the clients found unreachable, now that nothing refers to them.
static void
s_reap_clients (zk_qserver_t *self)
{
    for (uint32_t slot = 0; slot < self->client_capacity; slot++) {
        zk_qserver_client_t *client = self->clients[slot];
        if (client && client->gone)
            s_client_remove (self, client, "consumer disconnected");
    }
}

static void
s_handle_event (zk_qserver_t *self, uint16_t event, int fd)
{
    if (event == ZMQ_EVENT_ACCEPTED || event == ZMQ_EVENT_CONNECTED)
        s_fd_bump (self, fd);
    else if (event == ZMQ_EVENT_DISCONNECTED) {
        uint32_t gen = s_fd_gen (self, fd);
        for (uint32_t slot = 0; slot < self->client_capacity; slot++) {
            zk_qserver_client_t *client = self->clients[slot];
            if (client && client->fd == fd && client->fd_gen == gen) {
                zk_debug ("client %s: connection closed", client->key);
                s_client_remove (self, client, "consumer disconnected");
            }
        }
        s_fd_bump (self, fd);
    }
}

static void
s_drain_monitor (zk_qserver_t *self)
{
    if (!self->monitor)
        return;
    void *handle = zsock_resolve (self->monitor);
    for (int count = 0; count < 10000; count++) {
        zmq_msg_t head, address;
        zmq_msg_init (&head);
        if (zmq_msg_recv (&head, handle, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&head);
            return;
        }
        bool more = zmq_msg_more (&head);
        uint16_t event = 0;
        uint32_t value = 0;
        if (zmq_msg_size (&head) >= 6) {
            memcpy (&event, zmq_msg_data (&head), 2);
            memcpy (&value, (uint8_t *) zmq_msg_data (&head) + 2, 4);
        }
        zmq_msg_close (&head);
        while (more) {
            zmq_msg_init (&address);
            if (zmq_msg_recv (&address, handle, 0) < 0) {
                zmq_msg_close (&address);
                break;
            }
            more = zmq_msg_more (&address);
            zmq_msg_close (&address);
        }
        s_handle_event (self, event, (int) value);
    }
}

// ---------------------------------------------------------------- sending

/*  Send one message to a client: parts[] are copied. A client whose
    pipe is full keeps what it cannot take in its outbox (replies), or
    refuses it (deliveries: queue_on_full false). 0, ZK_EIO when refused
    now (EAGAIN), ZK_EENDPOINT when the client is gone.                  */
int
zk_qserver_send (zk_qserver_t *self, zk_qserver_client_t *client, const void *const *parts,
                 const size_t *sizes, int count, bool queue_on_full)
{
    if (client->gone)
        return ZK_EENDPOINT;
    void *router = zsock_resolve (self->router);
    if (zlist_size (client->outbox) == 0) {
        if (zmq_send (router, client->id, client->id_size, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0) {
            for (int index = 0; index < count; index++)
                zmq_send (router, parts[index], sizes[index], index + 1 < count ? ZMQ_SNDMORE : 0);
            return 0;
        }
        if (errno == EHOSTUNREACH) {
            client->gone = true;
            return ZK_EENDPOINT;
        }
        if (errno != EAGAIN) {
            self->counters.dropped++;
            return ZK_EIO;
        }
    }
    //  Full: nothing more for this client until the retry tick drains its
    //  outbox and kicks its queues again.
    client->blocked = true;
    if (!self->retry_at)
        self->retry_at = self->now_ms + S_RETRY_MS;
    if (!queue_on_full)
        return ZK_EIO;
    if (zlist_size (client->outbox) >= S_OUTBOX_MAX) {
        self->counters.dropped++;
        zk_warn_limited ("client %s reads no replies: one dropped", client->key);
        return ZK_EIO;
    }
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, client->id, client->id_size);
    for (int index = 0; index < count; index++)
        zmsg_addmem (msg, parts[index], sizes[index]);
    zlist_append (client->outbox, msg);
    return 0;
}

//  Send the outboxes that the clients' pipes can take now.
static void
s_flush_outboxes (zk_qserver_t *self)
{
    void *router = zsock_resolve (self->router);
    bool waiting = false;
    for (uint32_t slot = 0; slot < self->client_capacity; slot++) {
        zk_qserver_client_t *client = self->clients[slot];
        if (!client)
            continue;
        if (client->blocked) {
            client->blocked = false;
            for (size_t index = 0; index < client->queue_count; index++)
                zk_qserver_kick (self, client->queues[index]);
        }
        while (zlist_size (client->outbox) && !client->gone) {
            zmsg_t *msg = zlist_first (client->outbox);
            zframe_t *frame = zmsg_first (msg);
            if (zmq_send (router, zframe_data (frame), zframe_size (frame),
                          ZMQ_SNDMORE | ZMQ_DONTWAIT)
                < 0) {
                if (errno == EHOSTUNREACH)
                    client->gone = true;
                else
                    waiting = true;
                break;
            }
            size_t left = zmsg_size (msg) - 1;
            for (frame = zmsg_next (msg); frame; frame = zmsg_next (msg))
                zmq_send (router, zframe_data (frame), zframe_size (frame),
                          --left ? ZMQ_SNDMORE : 0);
            zlist_pop (client->outbox);
            zmsg_destroy (&msg);
        }
    }
    self->retry_at = waiting ? self->now_ms + S_RETRY_MS : 0;
}

// ---------------------------------------------------------------- commit

//  Group commit: one flush (+ fdatasync) per journal touched.
static void
s_commit (zk_qserver_t *self)
{
    for (size_t index = 0; index < self->dirty_count; index++) {
        zk_qserver_queue_t *queue = self->dirty[index];
        queue->dirty = false;
        zk_journal_t *journal = queue->store->journal;
        int rc;
        if (self->config->fsync == ZK_QUEUE_FSYNC_NEVER)
            rc = zk_journal_flush (journal);
        else {
            rc = zk_journal_sync (journal);
            self->counters.syncs++;
        }
        if (rc) {
            uint64_t from = self->config->fsync == ZK_QUEUE_FSYNC_NEVER
                                ? zk_journal_written_seq (journal)
                                : zk_journal_synced_seq (journal);
            zk_qserver_note_failure (self, queue, from + 1, rc);
        }
    }
    self->dirty_count = 0;
}

// ---------------------------------------------------------------- delivery

//  Deliver the head of queue's ready list to sub's client. 0 when sent,
//  ZK_EIO when the client cannot take it now, ZK_EENDPOINT when it is
//  gone, ZK_EPROTO when the message was unreadable (dropped).
static int
s_deliver (zk_qserver_t *self, zk_qserver_queue_t *queue, zk_qserver_sub_t *sub,
           zk_qserver_client_t *client)
{
    zk_qstore_t *store = queue->store;
    uint32_t id = store->ready.head;
    zk_qrecord_t record;
    int rc = zk_qstore_read (store, id, &record);
    if (rc) {
        zk_qstore_drop (store, id, zk_strerror (rc), self->now_us);
        zk_qserver_mark_dirty (self, queue);
        return ZK_EPROTO;
    }
    zk_qentry_t *entry = zk_qstore_entry (store, id);
    char attempt[16];
    snprintf (attempt, sizeof attempt, "%u", entry->attempts + 1u);
    const void *parts[6 + ZK_QUEUE_BODY_FRAMES] = {ZK_QSERVER_SIGNATURE, "MSG",        "",
                                                   store->name,          entry->msgid, attempt};
    size_t sizes[6 + ZK_QUEUE_BODY_FRAMES] = {4, 3, 0, strlen (store->name), 16, strlen (attempt)};
    for (int index = 0; index < record.frame_count; index++) {
        parts[6 + index] = record.frames[index];
        sizes[6 + index] = record.sizes[index];
    }
    rc = zk_qserver_send (self, client, parts, sizes, 6 + record.frame_count, false);
    if (rc)
        return rc;
    zk_qstore_lease (store, id, client->slot, self->now_ms + self->config->lease_ms, self->now_us);
    sub->held++;
    return 0;
}

/*  Round robin over the consumers with credit, one message each, until
    the queue is empty or nobody can take more.                          */
static void
s_dispatch (zk_qserver_t *self)
{
    for (size_t index = 0; index < self->kicked_count; index++) {
        zk_qserver_queue_t *queue = self->kicked[index];
        queue->kicked = false;
        zk_qstore_t *store = queue->store;
        size_t misses = 0;
        while (store->ready.head != ZK_QSTORE_NIL && queue->sub_count
               && misses < queue->sub_count) {
            if (queue->next_sub >= queue->sub_count)
                queue->next_sub = 0;
            zk_qserver_sub_t *sub = &queue->subs[queue->next_sub++];
            zk_qserver_client_t *client = self->clients[sub->client];
            if (!client || client->gone || client->blocked || sub->held >= sub->window) {
                misses++;
                continue;
            }
            int rc = s_deliver (self, queue, sub, client);
            if (rc == 0 || rc == ZK_EPROTO)
                misses = 0;
            else
                misses++;
        }
    }
    self->kicked_count = 0;
}

// ---------------------------------------------------------------- timers

static void
s_timers (zk_qserver_t *self)
{
    if (self->now_ms < self->next_timer)
        return;
    int64_t next = self->now_ms + S_TIMER_MS;
    for (size_t index = 0; index < self->queue_count; index++) {
        zk_qserver_queue_t *queue = self->queues[index];
        //  The expired leases are a prefix of the list (oldest deadline
        //  first): release them newest first, so they keep their order.
        zk_qstore_t *store = queue->store;
        uint32_t last = ZK_QSTORE_NIL;
        for (uint32_t id = store->leased.head; id != ZK_QSTORE_NIL;
             id = zk_qstore_entry (store, id)->next) {
            int64_t deadline = zk_qstore_entry (store, id)->lease_deadline;
            if (deadline > self->now_ms) {
                if (deadline < next)
                    next = deadline;
                break;
            }
            last = id;
        }
        while (last != ZK_QSTORE_NIL) {
            zk_qentry_t *entry = zk_qstore_entry (store, last);
            uint32_t prev = entry->prev;
            zk_qserver_sub_t *sub = zk_qserver_sub_find (queue, entry->holder);
            if (sub && sub->held)
                sub->held--;
            self->counters.expired++;
            store->counters.expired++;
            zk_qserver_release (self, queue, last, "lease expired", UINT32_MAX);
            last = prev;
        }
        zk_qstore_maintain (store, self->now_us);
    }
    self->next_timer = next;
    if (self->now_ms >= self->next_idle) {
        for (uint32_t slot = 0; slot < self->client_capacity; slot++) {
            zk_qserver_client_t *client = self->clients[slot];
            if (client && client->queue_count == 0 && zlist_size (client->outbox) == 0
                && self->now_ms - client->last_seen > S_IDLE_MS)
                s_client_remove (self, client, "idle");
        }
        self->next_idle = self->now_ms + S_IDLE_MS / 4;
    }
}

static void
s_gather_stats (zk_qserver_t *self, zk_queue_stats_t *stats)
{
    memset (stats, 0, sizeof *stats);
    stats->queues = self->queue_count;
    stats->clients = self->client_count;
    stats->requests = self->counters.requests;
    stats->errors = self->counters.errors;
    stats->duplicates = self->counters.duplicates;
    stats->put_failed = self->counters.put_failed;
    stats->nacked = self->counters.nacked;
    stats->expired = self->counters.expired;
    stats->released = self->counters.released;
    stats->pulled = self->counters.pulled;
    stats->dropped = self->counters.dropped;
    stats->syncs = self->counters.syncs;
    for (size_t index = 0; index < self->queue_count; index++) {
        zk_qstore_t *store = self->queues[index]->store;
        stats->forwarded += store->counters.forwarded;
        stats->queued += store->ready.count;
        stats->leased += store->leased.count;
        stats->put += store->counters.put;
        stats->delivered += store->counters.delivered;
        stats->redelivered += store->counters.redelivered;
        stats->acked += store->counters.acked;
        stats->dead += store->counters.dead;
        stats->moved += store->counters.moved;
        stats->damaged +=
            store->counters.damaged_runs + store->counters.bad_records + store->counters.unreadable;
        zk_journal_stats_t journal;
        zk_journal_stats (store->journal, &journal);
        stats->disk_bytes += journal.disk_bytes;
    }
}

// clang-format off
#define S_STATS_FIELDS(X)                                                                          \
    X (queues) X (clients) X (queued) X (leased) X (requests) X (errors) X (put) X (duplicates)    \
    X (put_failed) X (delivered) X (redelivered) X (acked) X (nacked) X (expired) X (released)     \
    X (dead) X (moved) X (pulled) X (dropped) X (syncs) X (damaged) X (disk_bytes) X (forwarded)
// clang-format on

static void
s_stats_log (zk_qserver_t *self)
{
    zk_queue_stats_t stats;
    s_gather_stats (self, &stats);
    char text[S_STATS_TEXT];
    size_t used = 0;
#define S_FIELD(name)                                                                              \
    if (used < sizeof text)                                                                        \
        used += (size_t) snprintf (text + used, sizeof text - used, "%s" #name "=%" PRIu64,        \
                                   used ? " " : "", stats.name);
    S_STATS_FIELDS (S_FIELD)
#undef S_FIELD
    zk_notice ("stats %s auth_denied=%" PRIu64, text, zk_auth_denied ());
}

static void
s_handle_pipe (zk_qserver_t *self)
{
    zmsg_t *msg = zmsg_recv (self->pipe);
    if (!msg)
        return;
    char *command = zmsg_popstr (msg);
    zmsg_t *reply = NULL;
    if (!command)
        zk_warn ("queue: empty pipe command");
    else if (streq (command, "$TERM"))
        self->terminated = true;
    else if (streq (command, "PAUSE"))
        self->paused = true;
    else if (streq (command, "RESUME"))
        self->paused = false;
    else if (streq (command, "STATS")) {
        zk_queue_stats_t stats;
        s_gather_stats (self, &stats);
        reply = zmsg_new ();
#define S_FIELD(name) zk_engine_add_counter (reply, #name, stats.name);
        S_STATS_FIELDS (S_FIELD)
#undef S_FIELD
        zk_engine_add_counter (reply, "auth_denied", zk_auth_denied ());
    }
    else if (streq (command, "ENDPOINTS")) {
        reply = zmsg_new ();
        for (size_t index = 0; index < self->router_spec_count; index++)
            zk_engine_add_endpoints (reply, "router", self->router_specs[index]);
        for (size_t index = 0; index < self->pull_count; index++)
            zk_engine_add_endpoints (reply, self->pulls[index].role, self->pulls[index].spec);
    }
    else
        zk_warn ("queue: unknown pipe command '%s'", command);
    if (reply)
        zmsg_send (&reply, self->pipe);
    zstr_free (&command);
    zmsg_destroy (&msg);
}

// ---------------------------------------------------------------- the loop

//  Failure marks only matter to the records they cover: once nothing
//  waits on them, a queue starts clean.
static void
s_clear_failures (zk_qserver_t *self)
{
    size_t kept = 0;
    for (size_t index = 0; index < self->failing_count; index++) {
        zk_qserver_queue_t *queue = self->failing[index];
        if (queue->moves_pending)
            self->failing[kept++] = queue;
        else {
            queue->fail_from = UINT64_MAX;
            queue->failing = false;
        }
    }
    self->failing_count = kept;
}

static long
s_timeout (zk_qserver_t *self)
{
    if (self->dirty_count || self->move_count || self->kicked_count)
        return 0;
    int64_t next = self->next_timer;
    if (self->retry_at && self->retry_at < next)
        next = self->retry_at;
    if (self->config->stats_interval_ms > 0 && self->next_stats < next)
        next = self->next_stats;
    return next <= self->now_ms ? 0 : (long) (next - self->now_ms);
}

static void
s_turn (zk_qserver_t *self)
{
    s_clock (self);
    s_clear_failures (self);
    s_drain_monitor (self);
    s_timers (self);
    if (!self->paused)
        zk_qserver_read_batch (self);
    else
        self->completion_count = 0;
    s_commit (self);
    s_clock (self);
    zk_qserver_settle_moves (self);
    for (size_t index = 0; index < self->completion_count; index++)
        zk_qserver_complete (self, &self->completions[index]);
    self->completion_count = 0;
    if (self->retry_at && self->now_ms >= self->retry_at)
        s_flush_outboxes (self);
    if (!self->paused)
        s_dispatch (self);
    s_reap_clients (self);
    if (self->freed_count) {
        memcpy (self->free_slots + self->free_count, self->freed_slots,
                self->freed_count * sizeof (uint32_t));
        self->free_count += self->freed_count;
        self->freed_count = 0;
    }
    if (self->config->stats_interval_ms > 0 && self->now_ms >= self->next_stats) {
        s_stats_log (self);
        self->next_stats = self->now_ms + self->config->stats_interval_ms;
    }
}

static void
s_run (zk_qserver_t *self)
{
    zmq_pollitem_t items[3 + ZK_QUEUE_MAX_PULLS];
    while (!self->terminated) {
        int count = 0;
        items[count++] = (zmq_pollitem_t){zsock_resolve (self->pipe), 0, ZMQ_POLLIN, 0};
        items[count++] = (zmq_pollitem_t){zsock_resolve (self->monitor), 0, ZMQ_POLLIN, 0};
        if (!self->paused) {
            items[count++] = (zmq_pollitem_t){zsock_resolve (self->router), 0, ZMQ_POLLIN, 0};
            for (size_t index = 0; index < self->pull_count && count < 3 + ZK_QUEUE_MAX_PULLS;
                 index++)
                items[count++] =
                    (zmq_pollitem_t){zsock_resolve (self->pulls[index].sock), 0, ZMQ_POLLIN, 0};
        }
        s_clock (self);
        //  Never leave the loop on EINTR: only $TERM ends it.
        if (zmq_poll (items, count, s_timeout (self)) < 0 && errno == ETERM)
            break;
        if (items[0].revents & ZMQ_POLLIN)
            s_handle_pipe (self);
        s_turn (self);
    }
    //  Stop: no more requests; what was appended becomes durable.
    s_clock (self);
    s_commit (self);
    zk_qserver_settle_moves (self);
    s_commit (self);
    s_flush_outboxes (self);
}

// ---------------------------------------------------------------- set-up

static void
s_server_destroy (zk_qserver_t **self_p)
{
    zk_qserver_t *self = *self_p;
    if (!self)
        return;
    for (uint32_t slot = 0; slot < self->client_capacity; slot++)
        if (self->clients[slot]) {
            zk_qserver_client_t *client = self->clients[slot];
            while (zlist_size (client->outbox)) {
                zmsg_t *msg = zlist_pop (client->outbox);
                zmsg_destroy (&msg);
            }
            zlist_destroy (&client->outbox);
            free (client->queues);
            free (client);
        }
    for (size_t index = 0; index < self->queue_count; index++) {
        zk_qstore_destroy (&self->queues[index]->store);
        free (self->queues[index]->subs);
        free (self->queues[index]);
    }
    if (self->monitor) {
        zmq_socket_monitor (zsock_resolve (self->router), NULL, 0);
        zsock_destroy (&self->monitor);
    }
    zsock_destroy (&self->router);
    for (size_t index = 0; index < self->router_spec_count; index++)
        zk_spec_destroy (&self->router_specs[index]);
    free (self->router_specs);
    for (size_t index = 0; index < self->pull_count; index++) {
        zsock_destroy (&self->pulls[index].sock);
        zk_spec_destroy (&self->pulls[index].spec);
    }
    free (self->pulls);
    zhashx_destroy (&self->queue_map);
    zhashx_destroy (&self->client_map);
    free (self->queues);
    free (self->dirty);
    free (self->kicked);
    free (self->failing);
    free (self->clients);
    free (self->free_slots);
    free (self->freed_slots);
    free (self->fd_gen);
    free (self->completions);
    free (self->moves);
    zk_qnames_fini (&self->names);
    if (self->dir_fd >= 0)
        close (self->dir_fd);
    free (self);
    *self_p = NULL;
}

//  Create (if needed) and lock the data directory.
static int
s_lock_data_dir (zk_qserver_t *self)
{
    const char *dir = self->config->data_dir;
    if (mkdir (dir, 0755) != 0 && errno != EEXIST) {
        zk_error ("cannot create the data directory %s: %s", dir, strerror (errno));
        return ZK_EIO;
    }
    self->dir_fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (self->dir_fd < 0) {
        zk_error ("cannot open the data directory %s: %s", dir, strerror (errno));
        return ZK_EIO;
    }
    if (flock (self->dir_fd, LOCK_EX | LOCK_NB) != 0) {
        zk_error ("the data directory %s is in use by another zkit-queue", dir);
        return ZK_EBUSY;
    }
    return 0;
}

//  Open every queue already under the data directory.
static int
s_open_existing (zk_qserver_t *self)
{
    DIR *dir = opendir (self->config->data_dir);
    if (!dir) {
        zk_error ("cannot read the data directory %s: %s", self->config->data_dir,
                  strerror (errno));
        return ZK_EIO;
    }
    int rc = 0;
    struct dirent *item;
    zlist_t *names = zlist_new ();
    zlist_autofree (names);
    while ((item = readdir (dir)) != NULL) {
        struct stat info;
        if (!zk_queue_name_valid (item->d_name, strlen (item->d_name))
            || fstatat (dirfd (dir), item->d_name, &info, AT_SYMLINK_NOFOLLOW) != 0
            || !S_ISDIR (info.st_mode))
            continue;
        zlist_append (names, item->d_name);
    }
    closedir (dir);
    zlist_sort (names, NULL);
    //  Queues already on disk are hosted whatever --max-queues says.
    for (char *name = zlist_first (names); name && rc == 0; name = zlist_next (names))
        if (!s_queue_open (self, name, false))
            rc = ZK_EIO;
    zlist_destroy (&names);
    return rc;
}

static zk_qstore_t *
s_lookup_store (void *arg, const char *name)
{
    zk_qserver_t *self = arg;
    zk_qserver_queue_t *queue = zhashx_lookup (self->queue_map, name);
    return queue ? queue->store : NULL;
}

/*  Forwards cut short by a crash (docs/protocol.md 7.8): once every queue
    is replayed, each pending FORWARDED record is confirmed by the target's
    put record or cancelled, and each put record forwarded from a queue
    that still holds the message finishes it there. What that writes is
    made durable before the first request is read.                      */
static void
s_reconcile_forwards (zk_qserver_t *self)
{
    size_t settled = 0;
    for (size_t index = 0; index < self->queue_count; index++)
        settled += zk_qstore_reconcile_pending (self->queues[index]->store, s_lookup_store, self);
    for (size_t index = 0; index < self->queue_count; index++)
        settled += zk_qstore_reconcile_origins (self->queues[index]->store, s_lookup_store, self);
    for (size_t index = 0; settled && index < self->queue_count; index++) {
        zk_journal_t *journal = self->queues[index]->store->journal;
        if (zk_journal_appended_seq (journal) == zk_journal_synced_seq (journal))
            continue;
        int rc = zk_journal_sync (journal);
        if (rc)
            zk_error ("queue %s: cannot sync what a restart settled: %s",
                      self->queues[index]->store->name, zk_strerror (rc));
    }
}

static int
s_open_router (zk_qserver_t *self)
{
    const zk_queue_config_t *config = self->config;
    size_t count = 0;
    while (config->specs[count])
        count++;
    self->router_specs = calloc (count, sizeof *self->router_specs);
    if (!self->router_specs)
        return ZK_ENOMEM;
    for (size_t index = 0; index < count; index++) {
        self->router_specs[index] = zk_spec_new (config->specs[index]);
        if (!self->router_specs[index])
            return ZK_EINVAL;
        self->router_spec_count++;
    }
    self->router = zk_spec_socket (self->router_specs[0]);
    if (!self->router)
        return ZK_ESOCKET;
    zsock_set_router_mandatory (self->router, 1);
    zsock_set_router_handover (self->router, 1);
    zsock_set_heartbeat_ivl (self->router, S_HEARTBEAT_IVL);
    zsock_set_heartbeat_timeout (self->router, S_HEARTBEAT_TTL);
    zsock_set_heartbeat_ttl (self->router, S_HEARTBEAT_TTL);
    zsock_set_maxmsgsize (self->router, (int64_t) (config->max_size + S_MAXMSG_SLACK));
    if (config->handshake_ms > 0)
        zsock_set_handshake_ivl (self->router, config->handshake_ms);
    zsock_set_sndhwm (self->router, config->hwm > 0 ? config->hwm : S_DEFAULT_HWM);
    zsock_set_rcvhwm (self->router, config->hwm > 0 ? config->hwm : S_DEFAULT_HWM);
    zsock_set_linger (self->router,
                      config->linger_ms < 0 ? ZK_DEFAULT_LINGER_MS : config->linger_ms);
    //  The monitor first, so no connection is missed.
    //  A name never used before in this process: a freed server's address
    //  comes back, and its monitor's inproc name may not be released yet.
    static uint64_t s_monitors;
    char *endpoint = zsys_sprintf ("inproc://zk-queue-monitor-%" PRIu64,
                                   __atomic_add_fetch (&s_monitors, 1, __ATOMIC_RELAXED));
    int rc = zmq_socket_monitor (zsock_resolve (self->router), endpoint,
                                 ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED);
    if (rc == 0) {
        self->monitor = zsock_new (ZMQ_PAIR);
        if (!self->monitor || zsock_connect (self->monitor, "%s", endpoint) != 0)
            rc = -1;
    }
    zstr_free (&endpoint);
    if (rc != 0) {
        zk_error ("router: cannot monitor the socket: %s", zmq_strerror (errno));
        return ZK_ESOCKET;
    }
    for (size_t index = 0; index < count; index++)
        if ((rc = zk_spec_attach (self->router_specs[index], self->router)) != 0)
            return rc;
    return 0;
}

static int
s_open_pulls (zk_qserver_t *self)
{
    const zk_queue_config_t *config = self->config;
    size_t count = 0;
    while (config->pulls && config->pulls[count])
        count++;
    if (count == 0)
        return 0;
    self->pulls = calloc (count, sizeof *self->pulls);
    if (!self->pulls)
        return ZK_ENOMEM;
    static const int types[] = {ZMQ_PULL, -1};
    for (size_t index = 0; index < count; index++) {
        zk_qserver_pull_t *pull = &self->pulls[index];
        const char *text = config->pulls[index];
        const char *equals = strchr (text, '=');
        snprintf (pull->name, sizeof pull->name, "%.*s", (int) (equals - text), text);
        snprintf (pull->role, sizeof pull->role, "pull:%s", pull->name);
        zk_engine_limits_t limits = {.hwm = config->hwm,
                                     .linger_ms = config->linger_ms,
                                     .max_size = config->max_size,
                                     .handshake_ms = config->handshake_ms};
        int rc = zk_engine_open_limited (pull->role, equals + 1, types, &limits, &pull->sock,
                                         &pull->spec);
        if (rc)
            return rc;
        self->pull_count++;
    }
    return 0;
}

static zk_qserver_t *
s_server_new (zsock_t *pipe, const zk_queue_config_t *config)
{
    zk_qserver_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->pipe = pipe;
    self->config = config;
    self->dir_fd = -1;
    self->store_config = (zk_qstore_config_t){
        .segment_size = config->segment_size,
        .max_record = (uint32_t) (config->max_size + S_RECORD_SLACK > ZK_JOURNAL_DEFAULT_MAX_RECORD
                                      ? config->max_size + S_RECORD_SLACK
                                      : ZK_JOURNAL_DEFAULT_MAX_RECORD),
        .dedup_window_us = config->dedup_window_ms * 1000,
        .result_ttl_us = config->result_ttl_ms * 1000,
        .max_done = config->max_done,
        .names = &self->names,
    };
    if (zk_qnames_init (&self->names) != 0)
        goto out_destroy;
    self->queue_map = zhashx_new ();
    self->client_map = zhashx_new ();
    self->completions = calloc (ZK_QSERVER_BATCH_MAX + 1, sizeof *self->completions);
    if (!self->queue_map || !self->client_map || !self->completions)
        goto out_destroy;
    //  Many queues, many journals: take every fd the system allows.
    struct rlimit files;
    if (getrlimit (RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        setrlimit (RLIMIT_NOFILE, &files);
    }
    if (s_lock_data_dir (self) || s_open_existing (self))
        goto out_destroy;
    s_reconcile_forwards (self);
    if (s_open_router (self) || s_open_pulls (self))
        goto out_destroy;
    s_clock (self);
    self->next_timer = self->now_ms;
    self->next_idle = self->now_ms + S_IDLE_MS;
    if (config->stats_interval_ms > 0)
        self->next_stats = self->now_ms + config->stats_interval_ms;
    for (size_t index = 0; index < self->queue_count; index++)
        zk_qserver_kick (self, self->queues[index]);
    return self;

out_destroy:
    s_server_destroy (&self);
    return NULL;
}

static void
s_queue_actor (zsock_t *pipe, void *args)
{
    s_setup_t *setup = args;
    //  A file size limit must fail the write (EFBIG → ERR 503), not kill us.
    sigset_t signals;
    sigemptyset (&signals);
    sigaddset (&signals, SIGXFSZ);
    sigaddset (&signals, SIGPIPE);
    pthread_sigmask (SIG_BLOCK, &signals, NULL);
    zsock_signal (pipe, 0);
    zk_qserver_t *self = s_server_new (pipe, &setup->config);
    zsock_signal (pipe, self ? 0 : (byte) -1);
    if (!self)
        return;
    zk_info ("serving %zu queues from %s", self->queue_count, setup->config.data_dir);
    s_run (self);
    s_server_destroy (&self);
}

// ---------------------------------------------------------------- public API

static void
s_strv_free (char **list)
{
    for (char **item = list; item && *item; item++)
        free (*item);
    free (list);
}

static char **
s_strv_dup (const char *const *list, bool *failed)
{
    size_t count = 0;
    while (list && list[count])
        count++;
    char **copy = calloc (count + 1, sizeof *copy);
    if (!copy)
        *failed = true;
    for (size_t index = 0; copy && index < count; index++)
        if (!(copy[index] = strdup (list[index])))
            *failed = true;
    return copy;
}

static void
s_setup_destroy (s_setup_t **setup_p)
{
    s_setup_t *setup = *setup_p;
    if (!setup)
        return;
    free (setup->data_dir);
    s_strv_free (setup->specs);
    s_strv_free (setup->pulls);
    free (setup);
    *setup_p = NULL;
}

static s_setup_t *
s_setup_new (const zk_queue_config_t *config)
{
    s_setup_t *setup = calloc (1, sizeof *setup);
    if (!setup)
        return NULL;
    bool failed = false;
    setup->config = *config;
    setup->data_dir = strdup (config->data_dir);
    setup->specs = s_strv_dup (config->specs, &failed);
    setup->pulls = s_strv_dup (config->pulls, &failed);
    if (failed || !setup->data_dir) {
        s_setup_destroy (&setup);
        return NULL;
    }
    setup->config.data_dir = setup->data_dir;
    setup->config.specs = (const char *const *) setup->specs;
    setup->config.pulls = (const char *const *) setup->pulls;
    return setup;
}

void
zk_queue_config_init (zk_queue_config_t *config)
{
    assert (config);
    *config = (zk_queue_config_t){
        .lease_ms = 30000,
        .max_deliver = 5,
        .dedup_window_ms = 120000,
        .result_ttl_ms = 600000,
        .fsync = ZK_QUEUE_FSYNC_BATCH,
        .max_size = ZK_QUEUE_DEFAULT_MAX_SIZE,
        .max_done = 100000,
        .max_queues = 1000,
        .linger_ms = -1,
    };
}

int
zk_queue_validate (const zk_queue_config_t *config, char *reason, size_t reason_size)
{
    assert (config);
    if (!config->data_dir || !config->data_dir[0])
        return zk_engine_reason (reason, reason_size, "a data directory (--data DIR) is required");
    if (!config->specs || !config->specs[0])
        return zk_engine_reason (reason, reason_size,
                                 "at least one router socket spec is required");
    static const int router_types[] = {ZMQ_ROUTER, -1};
    static const int pull_types[] = {ZMQ_PULL, -1};
    for (const char *const *spec = config->specs; *spec; spec++) {
        int type = zk_engine_spec_type ("router", *spec, reason, reason_size);
        if (type < 0)
            return ZK_EINVAL;
        if (!zk_engine_type_in (type, router_types))
            return zk_engine_reason (reason, reason_size,
                                     "a %s socket cannot serve queues (expected router)",
                                     zk_spec_type_to_name (type));
        //  One socket binds them all: its security options are the socket's.
        const char *options = strchr (*spec, '?'), *first = strchr (config->specs[0], '?');
        if (!streq (options ? options : "?", first ? first : "?"))
            return zk_engine_reason (reason, reason_size,
                                     "the router specs share one socket: give them the same "
                                     "security options (after '?')");
    }
    size_t pull_count = 0;
    for (const char *const *pull = config->pulls; pull && *pull; pull++) {
        if (++pull_count > ZK_QUEUE_MAX_PULLS)
            return zk_engine_reason (reason, reason_size, "more than %d --pull sockets",
                                     ZK_QUEUE_MAX_PULLS);
        const char *equals = strchr (*pull, '=');
        if (!equals || !zk_queue_name_valid (*pull, (size_t) (equals - *pull)))
            return zk_engine_reason (reason, reason_size,
                                     "--pull '%s': expected NAME=SPEC with a valid queue name",
                                     *pull);
        int type = zk_engine_spec_type ("--pull", equals + 1, reason, reason_size);
        if (type < 0)
            return ZK_EINVAL;
        if (!zk_engine_type_in (type, pull_types))
            return zk_engine_reason (reason, reason_size, "--pull '%s': expected a pull socket",
                                     *pull);
    }
    if (config->lease_ms < 1 || config->lease_ms > 86400000LL * 365)
        return zk_engine_reason (reason, reason_size, "the lease must be 1 ms to a year");
    if (config->max_deliver < 1 || config->max_deliver > 65535)
        return zk_engine_reason (reason, reason_size, "max-deliver must be 1 to 65535");
    if (config->dedup_window_ms < 0 || config->result_ttl_ms < 0
        || config->dedup_window_ms > 86400000LL * 365 || config->result_ttl_ms > 86400000LL * 365)
        return zk_engine_reason (reason, reason_size,
                                 "dedup window and result TTL must be 0 to a year");
    if (config->fsync < ZK_QUEUE_FSYNC_BATCH || config->fsync > ZK_QUEUE_FSYNC_NEVER)
        return zk_engine_reason (reason, reason_size, "unknown fsync policy");
    if (config->max_size < 1 || config->max_size > S_MAX_SIZE_LIMIT)
        return zk_engine_reason (reason, reason_size, "max-size must be 1 byte to 256 MiB");
    if (config->segment_size
        && (config->segment_size < 4096 || config->segment_size > ZK_JOURNAL_SEGMENT_SIZE_LIMIT))
        return zk_engine_reason (reason, reason_size, "segment-size must be 4 KiB to 1 GiB");
    if (config->max_done < 1 || config->max_queues < 1)
        return zk_engine_reason (reason, reason_size, "max-done and max-queues must be positive");
    if (config->hwm < 0 || config->stats_interval_ms < 0 || config->handshake_ms < 0)
        return zk_engine_reason (reason, reason_size,
                                 "hwm, stats interval and handshake timeout cannot be negative");
    return 0;
}

zk_queue_t *
zk_queue_new (const zk_queue_config_t *config)
{
    assert (config);
    char reason[512];
    if (zk_queue_validate (config, reason, sizeof reason)) {
        zk_error ("%s", reason);
        return NULL;
    }
    zk_queue_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->setup = s_setup_new (config);
    if (!self->setup)
        goto out_free;
    self->actor = zk_engine_start (s_queue_actor, self->setup, "queue");
    if (!self->actor)
        goto out_free;
    return self;

out_free:
    zactor_destroy (&self->actor);
    s_setup_destroy (&self->setup);
    free (self);
    return NULL;
}

void
zk_queue_destroy (zk_queue_t **self_p)
{
    assert (self_p);
    zk_queue_t *self = *self_p;
    if (!self)
        return;
    zactor_destroy (&self->actor);
    s_setup_destroy (&self->setup);
    free (self);
    *self_p = NULL;
}

int
zk_queue_stats (zk_queue_t *self, zk_queue_stats_t *stats)
{
    assert (self && stats);
    zmsg_t *reply = zk_engine_request (self->actor, "STATS");
    if (!reply)
        return ZK_EIO;
#define S_FIELD(name) stats->name = zk_engine_counter (reply, #name);
    S_STATS_FIELDS (S_FIELD)
#undef S_FIELD
    zmsg_destroy (&reply);
    return 0;
}

zactor_t *
zk_queue_actor (zk_queue_t *self)
{
    assert (self);
    return self->actor;
}
