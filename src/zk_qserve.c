/*  zk_qserve — ZKQ/1 requests and replies for the zk_queue actor (see
    src/zk_queue.c for the turn they run in, docs/protocol.md for the
    protocol).

    Parsing: each request becomes a completion at once, in arrival order;
    one that changes a queue appends its records now (a PUT its put
    record, an ACK its ack record, a NACK dead or MOVE the copy into the
    target queue). Nothing is answered before the turn's commit: then the
    moves settle and the completions are applied in order, so a reply
    only ever confirms what is durable, and STATUS/LIST/STATS see every
    earlier request of the batch.                                       */

#include "zk_classes.h"

#define S_BATCH_BYTES ((size_t) 32 << 20)  //  body bytes taken per turn
#define S_UNUSED      __attribute__ ((unused))

// ---------------------------------------------------------------- small helpers

//  A decimal number of 1..20 ASCII digits that fits in 64 bits.
static bool
s_parse_decimal (const void *data, size_t size, uint64_t *value_p)
{
    const char *text = data;
    if (size == 0 || size > 20)
        return false;
    uint64_t value = 0;
    for (size_t index = 0; index < size; index++) {
        if (text[index] < '0' || text[index] > '9')
            return false;
        unsigned digit = (unsigned) (text[index] - '0');
        if (value > (UINT64_MAX - digit) / 10)
            return false;
        value = value * 10 + digit;
    }
    *value_p = value;
    return true;
}

static bool
s_frame_is (zmq_msg_t *frame, const char *text)
{
    size_t size = strlen (text);
    return zmq_msg_size (frame) == size && memcmp (zmq_msg_data (frame), text, size) == 0;
}

//  Append item to a growable array of pointers.
static int
s_push_ptr (void ***array, size_t *count, size_t *capacity, void *item)
{
    if (*count == *capacity) {
        size_t grown = *capacity ? *capacity * 2 : 16;
        void **bigger = realloc (*array, grown * sizeof *bigger);
        if (!bigger)
            return ZK_ENOMEM;
        *array = bigger;
        *capacity = grown;
    }
    (*array)[(*count)++] = item;
    return 0;
}

// ---------------------------------------------------------------- replies

//  Reply for completion c: "ZKQ1" status TAG, then extra frames.
static void
s_reply (zk_qserver_t *self, zk_qserver_completion_t *c, const char *status,
         const void *const *extra, const size_t *extra_sizes, int extra_count)
{
    if (c->client == UINT32_MAX)
        return;
    zk_qserver_client_t *client = self->clients[c->client];
    if (!client)
        return;
    const void *parts[4 + ZK_QUEUE_LIST_MAX];
    size_t sizes[4 + ZK_QUEUE_LIST_MAX];
    parts[0] = ZK_QSERVER_SIGNATURE;
    sizes[0] = 4;
    parts[1] = status;
    sizes[1] = strlen (status);
    parts[2] = c->tag;
    sizes[2] = c->tag_size;
    int count = 3;
    for (int index = 0; index < extra_count && count < 4 + ZK_QUEUE_LIST_MAX; index++) {
        parts[count] = extra[index];
        sizes[count++] = extra_sizes[index];
    }
    zk_qserver_send (self, client, parts, sizes, count, true);
}

static void
s_reply_ok (zk_qserver_t *self, zk_qserver_completion_t *c)
{
    s_reply (self, c, "OK", NULL, NULL, 0);
}

static void
s_reply_err (zk_qserver_t *self, zk_qserver_completion_t *c, int code, const char *text)
{
    char digits[8];
    snprintf (digits, sizeof digits, "%d", code);
    const void *extra[2] = {digits, text};
    size_t sizes[2] = {strlen (digits), strlen (text)};
    self->counters.errors++;
    s_reply (self, c, "ERR", extra, sizes, 2);
}

// ---------------------------------------------------------------- moves and releases

//  Start moving entry id of source into target (copy first). completion:
//  the index of the request waiting for it, or UINT32_MAX.
static void
s_move_begin (zk_qserver_t *self, zk_qserver_queue_t *source, uint32_t id,
              zk_qserver_queue_t *target, uint8_t type, const char *text, uint32_t completion)
{
    if (self->move_count == self->move_capacity) {
        size_t capacity = self->move_capacity ? self->move_capacity * 2 : 64;
        zk_qserver_move_t *moves = realloc (self->moves, capacity * sizeof *moves);
        if (!moves) {
            zk_error ("queue %s: out of memory: a message stays queued", source->store->name);
            if (zk_qstore_entry (source->store, id)->state == ZK_QSTATE_LEASED) {
                zk_qstore_release (source->store, id, text, self->now_us);
                zk_qserver_mark_dirty (self, source);
            }
            return;
        }
        self->moves = moves;
        self->move_capacity = capacity;
    }
    zk_qserver_move_t *move = &self->moves[self->move_count++];
    memset (move, 0, sizeof *move);
    move->source = source;
    move->entry = id;
    move->target = target;
    move->target_entry = ZK_QSTORE_NIL;
    move->completion = completion;
    move->type = type;
    snprintf (move->text, sizeof move->text, "%s", text ? text : "");
    if (completion != UINT32_MAX)
        self->completions[completion].moves_open++;
    target->moves_pending++;

    zk_qstore_t *store = source->store;
    zk_qentry_t *held = zk_qstore_entry (store, id);
    if (held->state == ZK_QSTATE_LEASED) {
        //  The delivery that ends here, for the dead letter's record (TRACE).
        const char *consumer = zk_qserver_consumer (source, held->holder);
        move->started_us = held->since_us;
        snprintf (move->consumer, sizeof move->consumer, "%s", consumer ? consumer : "");
    }
    zk_qstore_take (store, id, self->now_us);
    const uint8_t *msgid = zk_qstore_entry (store, id)->msgid;
    uint32_t existing = zk_qstore_find (target->store, msgid);
    if (existing != ZK_QSTORE_NIL) {
        uint8_t state = zk_qstore_entry (target->store, existing)->state;
        if (state >= ZK_QSTATE_PUTTING && state <= ZK_QSTATE_MOVING)
            return;  //  already there
        zk_qstore_forget (target->store, existing);
    }
    zk_qrecord_t record;
    int rc = zk_qstore_read (store, id, &record);
    if (rc) {
        move->unreadable = true;
        return;
    }
    struct iovec frames[ZK_QUEUE_BODY_FRAMES];
    for (int index = 0; index < record.frame_count; index++)
        frames[index] = (struct iovec){(void *) record.frames[index], record.sizes[index]};
    //  A dead letter keeps why it died and how often it was tried; MOVE starts afresh.
    bool dead = type == ZK_QREC_DEAD;
    rc = zk_qstore_put (target->store, msgid, self->now_us, dead ? move->text : NULL,
                        dead ? strlen (move->text) : 0,
                        dead ? zk_qstore_entry (store, id)->attempts : 0, NULL, frames,
                        record.frame_count, &move->target_entry, &move->target_seq);
    if (rc) {
        move->failed = true;
        move->target_entry = ZK_QSTORE_NIL;
        zk_qserver_note_failure (self, target, zk_journal_written_seq (target->store->journal) + 1,
                                 rc);
    }
    zk_qserver_mark_dirty (self, target);
}

/*  A delivery ended without an ack (lease expired, connection closed,
    NACK requeue): requeue it at the front, or, once it has had
    max_deliver attempts, move it to NAME.dead with the reason. A
    request waiting for that move is completion (or UINT32_MAX).         */
void
zk_qserver_release (zk_qserver_t *self, zk_qserver_queue_t *queue, uint32_t id, const char *reason,
                    uint32_t completion)
{
    zk_qstore_t *store = queue->store;
    zk_qentry_t *entry = zk_qstore_entry (store, id);
    if (entry->attempts >= self->config->max_deliver) {
        zk_qserver_queue_t *dead = zk_qserver_dead_queue (self, queue);
        if (dead) {
            if (completion != UINT32_MAX)
                self->completions[completion].kind = ZK_QREPLY_MOVES;
            s_move_begin (self, queue, id, dead, ZK_QREC_DEAD, reason, completion);
            return;
        }
    }
    zk_qstore_release (store, id, reason, self->now_us);
    zk_qserver_mark_dirty (self, queue);
    zk_qserver_kick (self, queue);
}

//  Settle the moves whose copy is durable or failed; keep the others.
void
zk_qserver_settle_moves (zk_qserver_t *self)
{
    size_t kept = 0;
    for (size_t index = 0; index < self->move_count; index++) {
        zk_qserver_move_t *move = &self->moves[index];
        bool ok;
        if (move->unreadable || move->failed)
            ok = false;
        else if (move->target_entry == ZK_QSTORE_NIL)
            ok = true;
        else if (zk_qserver_record_ok (self, move->target, move->target_seq))
            ok = true;
        else if (move->target_seq >= move->target->fail_from)
            ok = false;
        else {
            self->moves[kept++] = *move;  //  not durable yet: next turn
            continue;
        }
        move->target->moves_pending--;
        if (move->target_entry != ZK_QSTORE_NIL) {
            zk_qstore_put_done (move->target->store, move->target_entry, ok);
            if (ok)
                zk_qserver_kick (self, move->target);
        }
        zk_qstore_t *store = move->source->store;
        if (move->unreadable)
            zk_qstore_drop (store, move->entry, "unreadable record", self->now_us);
        else {
            zk_qmeta_t meta = {.started_us = move->started_us,
                               .consumer = move->consumer,
                               .consumer_size = strlen (move->consumer)};
            zk_qstore_move_done (store, move->entry, ok, move->type, move->text, &meta,
                                 self->now_us);
        }
        zk_qserver_mark_dirty (self, move->source);
        zk_qserver_kick (self, move->source);
        if (move->completion != UINT32_MAX) {
            zk_qserver_completion_t *c = &self->completions[move->completion];
            c->moves_open--;
            if (ok)
                c->moved++;
            else
                c->move_failed++;
        }
    }
    self->move_count = kept;
}

// ---------------------------------------------------------------- requests

static zk_qserver_completion_t *
s_completion_new (zk_qserver_t *self, uint32_t client)
{
    zk_qserver_completion_t *c = &self->completions[self->completion_count++];
    c->kind = ZK_QREPLY_OK;
    c->tag_size = 0;
    c->client = client;
    c->queue = NULL;
    c->entry = ZK_QSTORE_NIL;
    c->moved = c->move_failed = c->moves_open = 0;
    c->count_reply = false;
    return c;
}

static void
s_fail (zk_qserver_completion_t *c, int code, const char *text)
{
    c->kind = ZK_QREPLY_ERR;
    c->code = (uint16_t) code;
    c->text = text;
}

//  Store one message (PUT or a pull socket) and fill c with what to reply.
static void
s_put (zk_qserver_t *self, zk_qserver_queue_t *queue, const uint8_t *msgid,
       const struct iovec *frames, int count, zk_qserver_completion_t *c, bool reply)
{
    zk_qstore_t *store = queue->store;
    uint32_t existing = zk_qstore_find (store, msgid);
    if (existing != ZK_QSTORE_NIL) {
        if (zk_qstore_is_duplicate (store, existing, self->now_us)) {
            c->kind = reply ? ZK_QREPLY_DUP : ZK_QREPLY_NONE;
            c->queue = queue;
            memcpy (c->msgid, msgid, 16);
            self->counters.duplicates++;
            store->counters.duplicates++;
            return;
        }
        zk_qstore_forget (store, existing);
    }
    uint32_t id;
    uint64_t seq;
    int rc = zk_qstore_put (store, msgid, self->now_us, NULL, 0, 0, NULL, frames, count, &id, &seq);
    if (rc) {
        zk_qserver_note_failure (self, queue, zk_journal_written_seq (store->journal) + 1, rc);
        self->counters.put_failed++;
        s_fail (c, 503,
                rc == ZK_ENOSPC ? "storage failure: no space left, message not stored"
                                : "storage failure: message not stored");
        if (!reply)
            c->kind = ZK_QREPLY_NONE;
        return;
    }
    c->kind = reply ? ZK_QREPLY_PUT : ZK_QREPLY_NONE;
    c->queue = queue;
    c->entry = id;
    c->seq = seq;
    zk_qserver_mark_dirty (self, queue);
    zk_qserver_sync_always (self, queue);
}

//  Body frames args[0..count) as iovecs, checked against the limits.
//  0, or an ERR code with c filled.
static int
s_body (zk_qserver_t *self, zmq_msg_t *args, int count, struct iovec *frames,
        zk_qserver_completion_t *c)
{
    if (count > ZK_QUEUE_BODY_FRAMES) {
        s_fail (c, 413, "more than 64 body frames");
        return 413;
    }
    size_t total = 0;
    for (int index = 0; index < count; index++) {
        frames[index] = (struct iovec){zmq_msg_data (&args[index]), zmq_msg_size (&args[index])};
        total += frames[index].iov_len;
    }
    if (total > self->config->max_size) {
        s_fail (c, 413, "message larger than --max-size");
        return 413;
    }
    self->batch_bytes += total;
    return 0;
}

static bool
s_check_name (zmq_msg_t *frame, zk_qserver_completion_t *c)
{
    if (zk_queue_name_valid (zmq_msg_data (frame), zmq_msg_size (frame)))
        return true;
    s_fail (c, 400, "invalid queue name");
    return false;
}

//  A decimal argument up to max; else c gets ERR 400 with text.
static bool
s_check_decimal (zmq_msg_t *frame, uint64_t max, uint64_t *value_p, zk_qserver_completion_t *c,
                 const char *text)
{
    if (s_parse_decimal (zmq_msg_data (frame), zmq_msg_size (frame), value_p) && *value_p <= max)
        return true;
    s_fail (c, 400, text);
    return false;
}

static bool
s_check_msgid (zmq_msg_t *frame, zk_qserver_completion_t *c)
{
    if (zmq_msg_size (frame) == 16)
        return true;
    s_fail (c, 400, "MSGID must be 16 bytes");
    return false;
}

static void
s_cmd_put (zk_qserver_t *self, zk_qserver_client_t *client S_UNUSED, zk_qserver_completion_t *c,
           zmq_msg_t *args, int count)
{
    struct iovec frames[ZK_QUEUE_BODY_FRAMES];
    if (!s_check_name (&args[0], c) || !s_check_msgid (&args[1], c)
        || s_body (self, args + 2, count - 2, frames, c))
        return;
    zk_qserver_queue_t *queue =
        zk_qserver_queue_get (self, zmq_msg_data (&args[0]), zmq_msg_size (&args[0]), true);
    if (!queue) {
        self->counters.put_failed++;
        s_fail (c, 503, "storage failure: the queue cannot be opened or created");
        return;
    }
    s_put (self, queue, zmq_msg_data (&args[1]), frames, count - 2, c, true);
}

//  The queue and entry of QUEUE/MSGID leased to client, or NULL (c
//  filled with 400 or 404). Nothing changes yet.
static zk_qserver_queue_t *
s_find_held (zk_qserver_t *self, zk_qserver_client_t *client, zmq_msg_t *args,
             zk_qserver_completion_t *c, uint32_t *id_p)
{
    if (!s_check_name (&args[0], c) || !s_check_msgid (&args[1], c))
        return NULL;
    zk_qserver_queue_t *queue =
        zk_qserver_queue_get (self, zmq_msg_data (&args[0]), zmq_msg_size (&args[0]), false);
    uint32_t id = queue ? zk_qstore_find (queue->store, zmq_msg_data (&args[1])) : ZK_QSTORE_NIL;
    zk_qentry_t *entry = id == ZK_QSTORE_NIL ? NULL : zk_qstore_entry (queue->store, id);
    if (!entry || entry->state != ZK_QSTATE_LEASED || entry->holder != client->slot) {
        s_fail (c, 404, "message not held by this client");
        return NULL;
    }
    *id_p = id;
    return queue;
}

//  The client gives a held message back (ack, nack, forward): its credit returns.
static void
s_give_back (zk_qserver_t *self, zk_qserver_client_t *client, zk_qserver_queue_t *queue)
{
    zk_qserver_sub_t *sub = zk_qserver_sub_find (queue, client->slot);
    if (sub && sub->held)
        sub->held--;
    zk_qserver_kick (self, queue);
}

//  s_find_held, then s_give_back when it is held.
static zk_qserver_queue_t *
s_held (zk_qserver_t *self, zk_qserver_client_t *client, zmq_msg_t *args,
        zk_qserver_completion_t *c, uint32_t *id_p)
{
    zk_qserver_queue_t *queue = s_find_held (self, client, args, c, id_p);
    if (queue)
        s_give_back (self, client, queue);
    return queue;
}

static void
s_cmd_ack (zk_qserver_t *self, zk_qserver_client_t *client, zk_qserver_completion_t *c,
           zmq_msg_t *args, int count)
{
    struct iovec result[ZK_QUEUE_BODY_FRAMES];
    if (s_body (self, args + 2, count - 2, result, c))
        return;
    uint32_t id;
    zk_qserver_queue_t *queue = s_held (self, client, args, c, &id);
    if (!queue)
        return;
    zk_journal_record_t record;
    int rc = zk_qstore_ack (queue->store, id, result, count - 2,
                            zk_qserver_consumer (queue, client->slot), self->now_us, &record);
    if (rc) {
        zk_qserver_note_failure (self, queue, zk_journal_written_seq (queue->store->journal) + 1,
                                 rc);
        s_fail (c, 503, "storage failure: ack not stored, the message will be delivered again");
        return;
    }
    c->kind = ZK_QREPLY_ACK;
    c->queue = queue;
    c->entry = id;
    c->seq = record.seq;
    c->pos = record.pos;
    c->time_us = self->now_us;  //  the record's time: STATUS and TRACE say the same after a restart
    zk_qserver_mark_dirty (self, queue);
    zk_qserver_sync_always (self, queue);
}

static void
s_cmd_nack (zk_qserver_t *self, zk_qserver_client_t *client, zk_qserver_completion_t *c,
            zmq_msg_t *args, int count)
{
    bool dead = s_frame_is (&args[2], "dead");
    if (!dead && !s_frame_is (&args[2], "requeue")) {
        s_fail (c, 400, "NACK MODE must be requeue or dead");
        return;
    }
    char reason[ZK_QUEUE_REASON_MAX + 1] = "nacked";
    if (count == 4 && zmq_msg_size (&args[3])) {
        size_t size = zmq_msg_size (&args[3]);
        if (size > ZK_QUEUE_REASON_MAX)
            size = ZK_QUEUE_REASON_MAX;
        memcpy (reason, zmq_msg_data (&args[3]), size);
        reason[size] = 0;
    }
    uint32_t id;
    zk_qserver_queue_t *queue = s_held (self, client, args, c, &id);
    if (!queue)
        return;
    self->counters.nacked++;
    queue->store->counters.nacked++;
    if (!dead) {
        //  A release that becomes a dead letter is answered when it settles.
        zk_qserver_release (self, queue, id, reason, (uint32_t) (c - self->completions));
        return;
    }
    zk_qserver_queue_t *target = zk_qserver_dead_queue (self, queue);
    if (!target) {
        zk_qstore_release (queue->store, id, reason, self->now_us);
        zk_qserver_mark_dirty (self, queue);
        s_fail (c, 503, "storage failure: the dead-letter queue cannot be opened");
        return;
    }
    c->kind = ZK_QREPLY_MOVES;
    s_move_begin (self, queue, id, target, ZK_QREC_DEAD, reason,
                  (uint32_t) (c - self->completions));
}

static void
s_cmd_get (zk_qserver_t *self, zk_qserver_client_t *client S_UNUSED, zk_qserver_completion_t *c,
           zmq_msg_t *args, int count)
{
    uint64_t window;
    if (!s_check_name (&args[0], c)
        || !s_check_decimal (&args[1], ZK_QUEUE_WINDOW_MAX, &window, c,
                             "WINDOW must be a decimal number from 0 to 10000"))
        return;
    c->name[0] = 0;
    if (count == 3) {
        size_t size = zmq_msg_size (&args[2]);
        if (!zk_queue_consumer_valid (zmq_msg_data (&args[2]), size)) {
            s_fail (c, 400, "CONSUMER must be 1 to 64 printable ASCII bytes without spaces");
            return;
        }
        memcpy (c->name, zmq_msg_data (&args[2]), size);
        c->name[size] = 0;
    }
    zk_qserver_queue_t *queue =
        zk_qserver_queue_get (self, zmq_msg_data (&args[0]), zmq_msg_size (&args[0]), true);
    if (!queue) {
        s_fail (c, 503, "storage failure: the queue cannot be opened or created");
        return;
    }
    c->kind = ZK_QREPLY_GET;
    c->queue = queue;
    c->number = (uint32_t) window;
}

//  STATUS and TRACE (QUEUE MSGID), answered once the turn is committed.
//  Like LIST, they may name a queue that does not exist (it stays so).
static void
s_query_id (zk_qserver_t *self, zk_qserver_completion_t *c, zmq_msg_t *args, uint8_t kind)
{
    if (!s_check_name (&args[0], c) || !s_check_msgid (&args[1], c))
        return;
    c->kind = kind;
    c->queue = zk_qserver_queue_get (self, zmq_msg_data (&args[0]), zmq_msg_size (&args[0]), false);
    memcpy (c->msgid, zmq_msg_data (&args[1]), 16);
}

static void
s_cmd_status (zk_qserver_t *self, zk_qserver_client_t *client S_UNUSED, zk_qserver_completion_t *c,
              zmq_msg_t *args, int count S_UNUSED)
{
    s_query_id (self, c, args, ZK_QREPLY_STATUS);
}

static void
s_cmd_stats (zk_qserver_t *self, zk_qserver_client_t *client S_UNUSED, zk_qserver_completion_t *c,
             zmq_msg_t *args, int count S_UNUSED)
{
    size_t size = zmq_msg_size (&args[0]);
    if (size && !s_check_name (&args[0], c))
        return;
    c->kind = ZK_QREPLY_STATS;
    memcpy (c->name, zmq_msg_data (&args[0]), size);
    c->name[size] = 0;
    c->queue = size ? zk_qserver_queue_get (self, c->name, size, false) : NULL;
}

static void
s_cmd_list (zk_qserver_t *self, zk_qserver_client_t *client S_UNUSED, zk_qserver_completion_t *c,
            zmq_msg_t *args, int count S_UNUSED)
{
    uint64_t max;
    if (!s_check_name (&args[0], c)
        || !s_check_decimal (&args[1], UINT64_MAX, &max, c, "MAX must be a decimal number"))
        return;
    c->kind = ZK_QREPLY_LIST;
    c->queue = zk_qserver_queue_get (self, zmq_msg_data (&args[0]), zmq_msg_size (&args[0]), false);
    c->number = max > ZK_QUEUE_LIST_MAX ? ZK_QUEUE_LIST_MAX : (uint32_t) max;
}

static void
s_cmd_move (zk_qserver_t *self, zk_qserver_client_t *client S_UNUSED, zk_qserver_completion_t *c,
            zmq_msg_t *args, int count S_UNUSED)
{
    if (!s_check_name (&args[0], c) || !s_check_name (&args[1], c))
        return;
    bool all = s_frame_is (&args[2], "*");
    if (!all && !s_check_msgid (&args[2], c))
        return;
    if (zmq_msg_size (&args[0]) == zmq_msg_size (&args[1])
        && memcmp (zmq_msg_data (&args[0]), zmq_msg_data (&args[1]), zmq_msg_size (&args[0]))
               == 0) {
        s_fail (c, 400, "MOVE needs two different queues");
        return;
    }
    c->kind = ZK_QREPLY_MOVES;
    c->count_reply = true;
    zk_qserver_queue_t *from =
        zk_qserver_queue_get (self, zmq_msg_data (&args[0]), zmq_msg_size (&args[0]), false);
    if (!from)
        return;  //  nothing to move: OK 0
    zk_qserver_queue_t *to =
        zk_qserver_queue_get (self, zmq_msg_data (&args[1]), zmq_msg_size (&args[1]), true);
    if (!to) {
        s_fail (c, 503, "storage failure: the target queue cannot be opened or created");
        return;
    }
    uint32_t index = (uint32_t) (c - self->completions);
    zk_qstore_t *store = from->store;
    if (!all) {
        uint32_t id = zk_qstore_find (store, zmq_msg_data (&args[2]));
        if (id != ZK_QSTORE_NIL && zk_qstore_entry (store, id)->state == ZK_QSTATE_QUEUED)
            s_move_begin (self, from, id, to, ZK_QREC_MOVED, to->store->name, index);
        return;
    }
    for (int moved = 0; moved < ZK_QUEUE_MOVE_MAX && store->ready.head != ZK_QSTORE_NIL; moved++)
        s_move_begin (self, from, store->ready.head, to, ZK_QREC_MOVED, to->store->name, index);
}

static bool
s_same_frame (zmq_msg_t *one, zmq_msg_t *other)
{
    return zmq_msg_size (one) == zmq_msg_size (other)
           && memcmp (zmq_msg_data (one), zmq_msg_data (other), zmq_msg_size (one)) == 0;
}

/*  FWD QUEUE MSGID TO BODY: the message this client holds in QUEUE is done
    and BODY goes into TO under the same MSGID, atomically across a crash
    (docs/protocol.md 7.8). The put record in TO, which names QUEUE as its
    origin, decides; the FORWARDED record in QUEUE, appended in the same
    turn, names that put record's position and only confirms it. When TO
    holds the MSGID already (or saw it within the dedup window) nothing is
    put, and the FORWARDED record, without a position, decides alone.
    Nothing changes on a refusal (400, 404, 413, 503 before any record),
    except that a failed record releases the message as a failed ACK does. */
static void
s_cmd_fwd (zk_qserver_t *self, zk_qserver_client_t *client, zk_qserver_completion_t *c,
           zmq_msg_t *args, int count)
{
    struct iovec body[ZK_QUEUE_BODY_FRAMES];
    if (!s_check_name (&args[0], c) || !s_check_msgid (&args[1], c) || !s_check_name (&args[2], c))
        return;
    if (s_same_frame (&args[0], &args[2])) {
        s_fail (c, 400, "FWD needs two different queues");
        return;
    }
    if (s_body (self, args + 3, count - 3, body, c))
        return;
    uint32_t id;
    zk_qserver_queue_t *queue = s_find_held (self, client, args, c, &id);
    if (!queue)
        return;
    zk_qserver_queue_t *target =
        zk_qserver_queue_get (self, zmq_msg_data (&args[2]), zmq_msg_size (&args[2]), true);
    if (!target) {
        s_fail (c, 503, "storage failure: the queue cannot be opened or created");
        return;
    }
    const uint8_t *msgid = zmq_msg_data (&args[1]);
    zk_qstore_t *to = target->store;
    uint32_t existing = zk_qstore_find (to, msgid);
    bool deduped = false;
    if (existing != ZK_QSTORE_NIL) {
        if (zk_qstore_entry (to, existing)->state == ZK_QSTATE_PUTTING) {
            //  Its put is not durable yet: the forward could not rely on it.
            s_fail (c, 503, "storage failure: TO is storing this message now, try again");
            return;
        }
        if (zk_qstore_is_duplicate (to, existing, self->now_us))
            deduped = true;
        else
            zk_qstore_forget (to, existing);
    }
    if (deduped) {
        self->counters.duplicates++;
        to->counters.duplicates++;
    }
    s_give_back (self, client, queue);
    zk_qstore_t *store = queue->store;
    zk_qentry_t *entry = zk_qstore_entry (store, id);
    const char *consumer = zk_qserver_consumer (queue, client->slot);
    c->kind = ZK_QREPLY_FWD;
    c->queue = queue;
    c->entry = id;
    c->target = target;
    c->target_entry = ZK_QSTORE_NIL;
    c->target_index = zk_qnames_intern (&self->names, to->name, strlen (to->name));
    c->time_us = self->now_us;
    c->source_seq = 0;
    c->pos = (zk_journal_pos_t){0};
    zk_qforward_t forward = {
        .target = to->name,
        .time_us = self->now_us,
        .attempts = entry->attempts,
        .started_us = entry->since_us,
        .consumer = consumer,
    };
    int rc;
    if (!deduped) {
        zk_qmeta_t meta = {
            .started_us = entry->since_us,
            .consumer = consumer,
            .consumer_size = consumer ? strlen (consumer) : 0,
            .origin = store->name,
            .origin_size = strlen (store->name),
            .origin_attempts = entry->attempts,
        };
        rc = zk_qstore_put (to, msgid, self->now_us, NULL, 0, 0, &meta, body, count - 3,
                            &c->target_entry, &c->seq);
        if (rc) {
            zk_qserver_note_failure (self, target, zk_journal_written_seq (to->journal) + 1, rc);
            self->counters.put_failed++;
            zk_qstore_hold (store, id);
            zk_qstore_forward_done (store, id, false, c->pos, 0, 0, self->now_us);
            zk_qserver_mark_dirty (self, queue);
            s_fail (c, 503, "storage failure: message not forwarded, it will be delivered again");
            return;
        }
        zk_qserver_mark_dirty (self, target);
        zk_qserver_sync_always (self, target);
        forward.has_target_pos = true;
        forward.target_pos = zk_qstore_entry (to, c->target_entry)->pos;
    }
    zk_journal_record_t record;
    rc = zk_qstore_forward (store, id, &forward, &record);
    if (rc) {
        zk_qserver_note_failure (self, queue, zk_journal_written_seq (store->journal) + 1, rc);
        if (deduped) {
            //  The record was to decide: nothing happened.
            zk_qstore_forward_done (store, id, false, c->pos, 0, 0, self->now_us);
            zk_qserver_mark_dirty (self, queue);
            s_fail (c, 503, "storage failure: ack not stored, the message will be delivered again");
        }
        return;  //  else the put in TO decides without it
    }
    c->source_seq = record.seq;
    c->pos = record.pos;
    zk_qserver_mark_dirty (self, queue);
    zk_qserver_sync_always (self, queue);
}

static void
s_cmd_trace (zk_qserver_t *self, zk_qserver_client_t *client S_UNUSED, zk_qserver_completion_t *c,
             zmq_msg_t *args, int count S_UNUSED)
{
    s_query_id (self, c, args, ZK_QREPLY_TRACE);
}

static void
s_cmd_ping (zk_qserver_t *self S_UNUSED, zk_qserver_client_t *client S_UNUSED,
            zk_qserver_completion_t *c S_UNUSED, zmq_msg_t *args S_UNUSED, int count S_UNUSED)
{
}

typedef void (s_command_fn) (zk_qserver_t *self, zk_qserver_client_t *client,
                             zk_qserver_completion_t *c, zmq_msg_t *args, int count);

//  The commands and their argument counts (max_args -1: body frames
//  follow, checked against the body limits instead).
static const struct {
    const char *name;
    s_command_fn *handler;
    int min_args, max_args;
    const char *usage;
} s_commands[] = {
    {"PUT", s_cmd_put, 3, -1, "PUT needs QUEUE, MSGID and a body"},
    {"GET", s_cmd_get, 2, 3, "GET needs QUEUE, WINDOW and an optional CONSUMER"},
    {"ACK", s_cmd_ack, 2, -1, "ACK needs QUEUE and MSGID"},
    {"NACK", s_cmd_nack, 3, 4, "NACK needs QUEUE, MSGID, MODE and an optional REASON"},
    {"STATUS", s_cmd_status, 2, 2, "STATUS needs QUEUE and MSGID"},
    {"STATS", s_cmd_stats, 1, 1, "STATS needs QUEUE (empty: every queue)"},
    {"LIST", s_cmd_list, 2, 2, "LIST needs QUEUE and MAX"},
    {"MOVE", s_cmd_move, 3, 3, "MOVE needs FROM, TO and MSGID or *"},
    {"PING", s_cmd_ping, 0, 0, "PING takes no arguments"},
    {"FWD", s_cmd_fwd, 4, -1, "FWD needs QUEUE, MSGID, TO and a body"},
    {"TRACE", s_cmd_trace, 2, 2, "TRACE needs QUEUE and MSGID"},
    {NULL, NULL, 0, 0, NULL},
};

/*  One request: frames[0] is the routing id, then "ZKQ1" COMMAND TAG
    args. extra counts frames beyond ZK_QSERVER_MAX_FRAMES (already dropped).     */
static void
s_handle_request (zk_qserver_t *self, int count, size_t extra)
{
    zmq_msg_t *frames = self->frames;
    self->counters.requests++;
    int fd = count > 1 ? zmq_msg_get (&frames[1], ZMQ_SRCFD) : -1;
    zk_qserver_client_t *client =
        zk_qserver_client_for (self, zmq_msg_data (&frames[0]), zmq_msg_size (&frames[0]), fd);
    if (!client) {
        self->counters.dropped++;
        return;
    }
    zk_qserver_completion_t *c = s_completion_new (self, client->slot);
    if (count > 3 && zmq_msg_size (&frames[3]) <= ZK_QUEUE_TAG_MAX) {
        c->tag_size = (uint8_t) zmq_msg_size (&frames[3]);
        memcpy (c->tag, zmq_msg_data (&frames[3]), c->tag_size);
    }
    int command = -1;
    for (int index = 0; count > 2 && s_commands[index].name; index++)
        if (s_frame_is (&frames[2], s_commands[index].name))
            command = index;
    int nargs = count - 4;
    if (count < 2 || !s_frame_is (&frames[1], ZK_QSERVER_SIGNATURE))
        s_fail (c, 400, "not a ZKQ1 message");
    else if (count < 4)
        s_fail (c, 400, "missing COMMAND or TAG frame");
    else if (command < 0)
        s_fail (c, 400, "unknown command");
    else if (zmq_msg_size (&frames[3]) > ZK_QUEUE_TAG_MAX)
        s_fail (c, 400, "TAG longer than 64 bytes");
    else if (extra)
        s_fail (c, 413, "too many frames");
    else if (nargs < s_commands[command].min_args
             || (s_commands[command].max_args >= 0 && nargs > s_commands[command].max_args))
        s_fail (c, 400, s_commands[command].usage);
    else
        s_commands[command].handler (self, client, c, frames + 4, nargs);
    //  A refused request is counted (errors) and, unless it is the normal
    //  404 of at-least-once, logged at a limited rate.
    if (c->kind == ZK_QREPLY_ERR && c->code != 404)
        zk_warn_limited ("client %s: request refused: %d %s", client->key, c->code, c->text);
}

//  Receive one multipart message into self->frames (the rest dropped).
//  The frame count, or 0 when nothing is waiting.
static int
s_recv_message (zk_qserver_t *self, void *socket, size_t *extra_p)
{
    zmq_msg_t *frames = self->frames;
    zmq_msg_init (&frames[0]);
    if (zmq_msg_recv (&frames[0], socket, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close (&frames[0]);
        return 0;
    }
    int count = 1;
    size_t extra = 0;
    bool more = zmq_msg_more (&frames[0]);
    while (more) {
        zmq_msg_t scratch;
        zmq_msg_t *frame = count < ZK_QSERVER_MAX_FRAMES ? &frames[count] : &scratch;
        zmq_msg_init (frame);
        int rc;
        //  The rest of a multipart message is already there: only EINTR can wait.
        do
            rc = zmq_msg_recv (frame, socket, 0);
        while (rc < 0 && errno == EINTR);
        if (rc < 0) {
            zmq_msg_close (frame);
            break;
        }
        more = zmq_msg_more (frame);
        if (frame == &scratch) {
            zmq_msg_close (frame);
            extra++;
        }
        else
            count++;
    }
    *extra_p = extra;
    return count;
}

static void
s_close_frames (zk_qserver_t *self, int count)
{
    for (int index = 0; index < count; index++)
        zmq_msg_close (&self->frames[index]);
}

//  A message from a --pull socket: stored under a fresh id, no reply.
static void
s_handle_pull (zk_qserver_t *self, zk_qserver_pull_t *pull, int count, size_t extra)
{
    zk_qserver_completion_t *c = s_completion_new (self, UINT32_MAX);
    struct iovec frames[ZK_QUEUE_BODY_FRAMES];
    bool refused = extra || s_body (self, self->frames, count, frames, c);
    c->kind = ZK_QREPLY_NONE;
    if (refused) {
        self->counters.dropped++;
        zk_warn_limited ("pull %s: a message over the limits (64 frames, --max-size) dropped",
                         pull->name);
        return;
    }
    self->counters.pulled++;
    zk_qserver_queue_t *queue = zk_qserver_queue_get (self, pull->name, strlen (pull->name), true);
    if (!queue) {
        self->counters.dropped++;
        return;
    }
    uint8_t msgid[ZK_ID_SIZE];
    zk_id_generate (msgid);
    s_put (self, queue, msgid, frames, count, c, false);
    if (c->entry == ZK_QSTORE_NIL)
        self->counters.dropped++;
}

//  Take what is waiting, up to the batch limits.
void
zk_qserver_read_batch (zk_qserver_t *self)
{
    self->completion_count = 0;
    self->batch_bytes = 0;
    void *router = zsock_resolve (self->router);
    size_t extra;
    while (self->completion_count < ZK_QSERVER_BATCH_MAX && self->batch_bytes < S_BATCH_BYTES) {
        int count = s_recv_message (self, router, &extra);
        if (count == 0)
            break;
        s_handle_request (self, count, extra);
        s_close_frames (self, count);
    }
    for (size_t index = 0; index < self->pull_count; index++) {
        void *socket = zsock_resolve (self->pulls[index].sock);
        while (self->completion_count < ZK_QSERVER_BATCH_MAX && self->batch_bytes < S_BATCH_BYTES) {
            int count = s_recv_message (self, socket, &extra);
            if (count == 0)
                break;
            s_handle_pull (self, &self->pulls[index], count, extra);
            s_close_frames (self, count);
        }
    }
}

// ---------------------------------------------------------------- completions

static const char *
s_state_name (uint8_t state)
{
    switch (state) {
        case ZK_QSTATE_QUEUED:
        case ZK_QSTATE_MOVING: return "queued";
        case ZK_QSTATE_LEASED:
        case ZK_QSTATE_ACKING: return "running";
        case ZK_QSTATE_DONE: return "done";
        case ZK_QSTATE_DEAD: return "dead";
        default: return "unknown";
    }
}

static void
s_complete_status (zk_qserver_t *self, zk_qserver_completion_t *c)
{
    zk_qstore_t *store = c->queue ? c->queue->store : NULL;
    uint32_t id = store ? zk_qstore_find (store, c->msgid) : ZK_QSTORE_NIL;
    zk_qentry_t *entry = id == ZK_QSTORE_NIL ? NULL : zk_qstore_entry (store, id);
    const char *state = entry ? s_state_name (entry->state) : "unknown";
    if (entry && streq (state, "unknown"))
        entry = NULL;  //  not accepted yet (later in this batch), or moved away
    char attempts[16], since[24];
    snprintf (attempts, sizeof attempts, "%u", entry ? entry->attempts : 0u);
    snprintf (since, sizeof since, "%" PRId64, entry ? entry->since_us : (int64_t) 0);
    const void *extra[3 + ZK_QUEUE_BODY_FRAMES] = {state, attempts, since};
    size_t sizes[3 + ZK_QUEUE_BODY_FRAMES] = {strlen (state), strlen (attempts), strlen (since)};
    int count = 3;
    zk_qrecord_t record;
    //  A result is kept --result-ttl after the ack, even if the entry stays
    //  longer for the dedup window.
    bool expired = entry && entry->state == ZK_QSTATE_DONE
                   && self->now_us - entry->since_us >= self->store_config.result_ttl_us;
    if (entry && (entry->state == ZK_QSTATE_DONE || entry->state == ZK_QSTATE_DEAD) && !expired
        && entry->pos.size && zk_qstore_read_at (store, entry->pos, &record) == 0) {
        if (entry->state == ZK_QSTATE_DEAD) {
            extra[count] = record.text;
            sizes[count++] = record.text_size;
        }
        else
            for (int index = 0; index < record.frame_count; index++) {
                extra[count] = record.frames[index];
                sizes[count++] = record.sizes[index];
            }
    }
    s_reply (self, c, "OK", extra, sizes, count);
}

/*  The result lines of a STATS or LIST reply: at most max lines of up to
    line_size bytes each, in one allocation.                            */
typedef struct {
    char *text;
    const void **parts;
    size_t *sizes;
    size_t line_size, count, max;
} s_lines_t;

static bool
s_lines_init (s_lines_t *lines, size_t max, size_t line_size)
{
    *lines = (s_lines_t){.line_size = line_size, .max = max};
    lines->text = malloc (max * line_size + 1);
    lines->parts = calloc (max + 1, sizeof *lines->parts);
    lines->sizes = calloc (max + 1, sizeof *lines->sizes);
    return lines->text && lines->parts && lines->sizes;
}

static void s_lines_add (s_lines_t *lines, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
s_lines_add (s_lines_t *lines, const char *format, ...)
{
    if (lines->count == lines->max)
        return;
    char *line = lines->text + lines->count * lines->line_size;
    va_list args;
    va_start (args, format);
    int size = vsnprintf (line, lines->line_size, format, args);
    va_end (args);
    lines->parts[lines->count] = line;
    lines->sizes[lines->count++] = size < 0                           ? 0
                                   : (size_t) size < lines->line_size ? (size_t) size
                                                                      : lines->line_size - 1;
}

//  Reply OK with the lines (or ERR 500 if they could not be allocated), free them.
static void
s_lines_reply (zk_qserver_t *self, zk_qserver_completion_t *c, s_lines_t *lines, bool ok)
{
    if (ok)
        s_reply (self, c, "OK", lines->parts, lines->sizes, (int) lines->count);
    else
        s_reply_err (self, c, 500, "out of memory");
    free (lines->text);
    free (lines->parts);
    free (lines->sizes);
}

#define S_STATS_LINE 512

static void
s_queue_line (s_lines_t *lines, zk_qserver_queue_t *queue)
{
    zk_qstore_t *store = queue->store;
    zk_qcounters_t *n = &store->counters;
    zk_journal_stats_t journal;
    zk_journal_stats (store->journal, &journal);
    s_lines_add (
        lines,
        "%s queued=%" PRIu32 " leased=%" PRIu32 " pending=%" PRIu32 " consumers=%zu put=%" PRIu64
        " duplicates=%" PRIu64 " delivered=%" PRIu64 " redelivered=%" PRIu64 " acked=%" PRIu64
        " nacked=%" PRIu64 " expired=%" PRIu64 " released=%" PRIu64 " dead=%" PRIu64
        " moved=%" PRIu64 " finished=%" PRIu32 " segments=%" PRIu64 " disk_bytes=%" PRIu64
        " damaged=%" PRIu64 " forwarded=%" PRIu64,
        store->name, store->ready.count, store->leased.count,
        store->live - store->ready.count - store->leased.count, queue->sub_count, n->put,
        n->duplicates, n->delivered, n->redelivered, n->acked, n->nacked, n->expired, n->released,
        n->dead, n->moved, store->finished.count, journal.segments, journal.disk_bytes,
        n->damaged_runs + n->bad_records + n->unreadable, n->forwarded);
}

static void
s_complete_stats (zk_qserver_t *self, zk_qserver_completion_t *c)
{
    size_t count = c->name[0] ? 1 : self->queue_count;
    s_lines_t lines;
    bool ok =
        s_lines_init (&lines, count < ZK_QUEUE_LIST_MAX ? count : ZK_QUEUE_LIST_MAX, S_STATS_LINE);
    if (ok && c->name[0] && !c->queue)
        s_lines_add (&lines,
                     "%s queued=0 leased=0 pending=0 consumers=0 put=0 duplicates=0 "
                     "delivered=0 redelivered=0 acked=0 nacked=0 expired=0 released=0 "
                     "dead=0 moved=0 finished=0 segments=0 disk_bytes=0 damaged=0 forwarded=0",
                     c->name);
    else if (ok && c->name[0])
        s_queue_line (&lines, c->queue);
    else
        for (size_t index = 0; ok && index < lines.max; index++)
            s_queue_line (&lines, self->queues[index]);
    s_lines_reply (self, c, &lines, ok);
}

static void
s_complete_list (zk_qserver_t *self, zk_qserver_completion_t *c)
{
    if (!c->queue || c->number == 0) {
        s_reply_ok (self, c);
        return;
    }
    zk_qstore_t *store = c->queue->store;
    s_lines_t lines;
    bool ok = s_lines_init (&lines, c->number, ZK_ID_TEXT_SIZE + 48 + ZK_QUEUE_REASON_MAX);
    zk_qlist_t *lists[2] = {&store->ready, &store->leased};
    for (int list = 0; ok && list < 2; list++)
        for (uint32_t id = lists[list]->head; id != ZK_QSTORE_NIL && lines.count < lines.max;
             id = zk_qstore_entry (store, id)->next) {
            zk_qentry_t *entry = zk_qstore_entry (store, id);
            char uuid[ZK_ID_TEXT_SIZE];
            zk_id_format (entry->msgid, uuid);
            //  A dead letter: why it died, and its deliveries before (its record's).
            zk_qrecord_t record;
            const char *reason = "";
            int reason_size = 0;
            unsigned attempts = entry->attempts;
            if (zk_qstore_read (store, id, &record) == 0 && record.text_size) {
                reason = record.text;
                reason_size = (int) record.text_size;
                attempts = record.attempts;
            }
            s_lines_add (&lines, "%s %u %" PRId64 " %.*s", uuid, attempts, entry->since_us,
                         reason_size, reason);
        }
    s_lines_reply (self, c, &lines, ok);
}

//  GET: set (or clear) this client's window on the queue.
static void
s_complete_get (zk_qserver_t *self, zk_qserver_completion_t *c)
{
    zk_qserver_client_t *client = self->clients[c->client];
    zk_qserver_queue_t *queue = c->queue;
    if (!client)
        return;
    zk_qserver_sub_t *sub = zk_qserver_sub_find (queue, client->slot);
    if (!sub && c->number) {
        if (queue->sub_count == queue->sub_capacity) {
            size_t capacity = queue->sub_capacity ? queue->sub_capacity * 2 : 4;
            zk_qserver_sub_t *subs = realloc (queue->subs, capacity * sizeof *subs);
            if (!subs) {
                s_reply_err (self, c, 500, "out of memory");
                return;
            }
            queue->subs = subs;
            queue->sub_capacity = capacity;
        }
        bool known = false;
        for (size_t index = 0; index < client->queue_count; index++)
            known |= client->queues[index] == queue;
        if (!known
            && s_push_ptr ((void ***) &client->queues, &client->queue_count,
                           &client->queue_capacity, queue)) {
            s_reply_err (self, c, 500, "out of memory");
            return;
        }
        sub = &queue->subs[queue->sub_count++];
        *sub = (zk_qserver_sub_t){.client = client->slot};
    }
    if (sub) {
        sub->window = c->number;
        if (c->name[0])
            snprintf (sub->consumer, sizeof sub->consumer, "%.64s", c->name);
    }
    zk_qserver_kick (self, queue);
    s_reply_ok (self, c);
}

/*  One step of a TRACE: the entry id of a queue, visible (neither being
    put in this turn nor moved away).                                   */
typedef struct {
    zk_qserver_queue_t *queue;
    uint32_t id;
} s_step_t;

//  The entry of msgid in the queue called name (when it is open and
//  visible to TRACE); false otherwise.
static bool
s_step_find (zk_qserver_t *self, const char *name, const uint8_t *msgid, s_step_t *step)
{
    if (!name)
        return false;
    step->queue = zk_qserver_queue_get (self, name, strlen (name), false);
    if (!step->queue)
        return false;
    step->id = zk_qstore_find (step->queue->store, msgid);
    if (step->id == ZK_QSTORE_NIL)
        return false;
    uint8_t state = zk_qstore_entry (step->queue->store, step->id)->state;
    return state >= ZK_QSTATE_QUEUED && state <= ZK_QSTATE_DEAD;
}

static bool
s_step_seen (const s_step_t *steps, size_t count, zk_qserver_queue_t *queue)
{
    for (size_t index = 0; index < count; index++)
        if (steps[index].queue == queue)
            return true;
    return false;
}

//  A step's line: QUEUE STATE ATTEMPTS ACCEPTED_US STARTED_US FINISHED_US CONSUMER.
static void
s_step_line (const s_step_t *step, s_lines_t *lines)
{
    zk_qstore_t *store = step->queue->store;
    zk_qentry_t *entry = zk_qstore_entry (store, step->id);
    int64_t started = 0, finished = 0;
    char consumer[ZK_QUEUE_CONSUMER_MAX + 1] = "-";
    if (entry->state == ZK_QSTATE_LEASED || entry->state == ZK_QSTATE_ACKING) {
        started = entry->since_us;
        const char *name = entry->state == ZK_QSTATE_LEASED
                               ? zk_qserver_consumer (step->queue, entry->holder)
                               : NULL;
        if (name)
            snprintf (consumer, sizeof consumer, "%s", name);
    }
    else if (entry->state == ZK_QSTATE_DONE || entry->state == ZK_QSTATE_DEAD) {
        //  The delivery that finished it is in the record that did.
        finished = entry->since_us;
        zk_qrecord_t record;
        if (entry->pos.size && zk_qstore_read_at (store, entry->pos, &record) == 0) {
            started = record.meta.started_us;
            if (record.meta.consumer_size) {
                memcpy (consumer, record.meta.consumer, record.meta.consumer_size);
                consumer[record.meta.consumer_size] = 0;
            }
        }
    }
    s_lines_add (lines, "%s %s %u %" PRId64 " %" PRId64 " %" PRId64 " %s", store->name,
                 s_state_name (entry->state), entry->attempts, entry->put_us, started, finished,
                 consumer);
}

/*  TRACE: the path of c->msgid through the queues, first step first.
    Backward from QUEUE by each entry's origin, forward by each forwarded
    entry's target; at most ZK_QUEUE_TRACE_MAX steps, each queue once.  */
static void
s_complete_trace (zk_qserver_t *self, zk_qserver_completion_t *c)
{
    s_step_t here;
    if (!c->queue || !s_step_find (self, c->queue->store->name, c->msgid, &here)) {
        s_reply_ok (self, c);
        return;
    }
    s_step_t steps[ZK_QUEUE_TRACE_MAX], back[ZK_QUEUE_TRACE_MAX];
    size_t count = 0, back_count = 0;
    //  Backward: the origins, nearest first (room is left for QUEUE's own step).
    s_step_t step = here;
    while (back_count + 1 < ZK_QUEUE_TRACE_MAX) {
        zk_qentry_t *entry = zk_qstore_entry (step.queue->store, step.id);
        s_step_t origin;
        if (!s_step_find (self, zk_qnames_get (&self->names, entry->origin), c->msgid, &origin)
            || origin.queue == here.queue || s_step_seen (back, back_count, origin.queue))
            break;
        back[back_count++] = step = origin;
    }
    while (back_count)
        steps[count++] = back[--back_count];
    //  QUEUE's step, then forward while a step was done by a FWD.
    steps[count++] = step = here;
    while (count < ZK_QUEUE_TRACE_MAX) {
        zk_qentry_t *entry = zk_qstore_entry (step.queue->store, step.id);
        s_step_t target;
        if (entry->state != ZK_QSTATE_DONE || !(entry->flags & ZK_QENTRY_FORWARDED)
            || !s_step_find (self, zk_qnames_get (&self->names, entry->holder), c->msgid, &target)
            || s_step_seen (steps, count, target.queue))
            break;
        steps[count++] = step = target;
    }
    s_lines_t lines;
    bool ok = s_lines_init (&lines, count, ZK_QUEUE_NAME_MAX + ZK_QUEUE_CONSUMER_MAX + 96);
    for (size_t index = 0; ok && index < count; index++)
        s_step_line (&steps[index], &lines);
    s_lines_reply (self, c, &lines, ok);
}

/*  FWD after the commit: decided by the put record in TO (or, when TO
    held the message already, by the FORWARDED record). Done: the message
    finishes in QUEUE and is deliverable in TO. Not: it is queued again
    in QUEUE (a release record cancels the FORWARDED record), ERR 503.  */
static void
s_complete_fwd (zk_qserver_t *self, zk_qserver_completion_t *c)
{
    zk_qstore_t *store = c->queue->store;
    bool recorded = c->source_seq && zk_qserver_record_ok (self, c->queue, c->source_seq);
    bool ok = recorded;
    if (c->target_entry != ZK_QSTORE_NIL) {
        ok = zk_qserver_record_ok (self, c->target, c->seq);
        zk_qstore_put_done (c->target->store, c->target_entry, ok);
        if (ok)
            zk_qserver_kick (self, c->target);
        else
            self->counters.put_failed++;
    }
    zk_qstore_forward_done (store, c->entry, ok, recorded ? c->pos : (zk_journal_pos_t){0},
                            c->target_index, c->time_us, self->now_us);
    if (ok) {
        store->counters.forwarded++;
        s_reply_ok (self, c);
        return;
    }
    zk_qserver_mark_dirty (self, c->queue);
    zk_qserver_kick (self, c->queue);
    s_reply_err (self, c, 503,
                 c->target_entry == ZK_QSTORE_NIL
                     ? "storage failure: ack not stored, the message will be delivered again"
                     : "storage failure: message not forwarded, it will be delivered again");
}

void
zk_qserver_complete (zk_qserver_t *self, zk_qserver_completion_t *c)
{
    switch (c->kind) {
        case ZK_QREPLY_NONE:
        case ZK_QREPLY_PUT: {
            if (c->entry == ZK_QSTORE_NIL)
                break;
            bool ok = zk_qserver_record_ok (self, c->queue, c->seq);
            zk_qstore_put_done (c->queue->store, c->entry, ok);
            if (ok) {
                zk_qserver_kick (self, c->queue);
                if (c->kind == ZK_QREPLY_PUT)
                    s_reply_ok (self, c);
            }
            else {
                self->counters.put_failed++;
                if (c->kind == ZK_QREPLY_PUT)
                    s_reply_err (self, c, 503, "storage failure: message not stored");
                else
                    self->counters.dropped++;
            }
            break;
        }
        case ZK_QREPLY_DUP: {
            //  Confirmed again only if the original is still stored (it may
            //  have been in this very batch, and failed).
            uint32_t id = zk_qstore_find (c->queue->store, c->msgid);
            if (id != ZK_QSTORE_NIL)
                s_reply_ok (self, c);
            else
                s_reply_err (self, c, 503, "storage failure: message not stored");
            break;
        }
        case ZK_QREPLY_ACK: {
            bool ok = zk_qserver_record_ok (self, c->queue, c->seq);
            zk_qstore_ack_done (c->queue->store, c->entry, ok, c->pos,
                                ok ? c->time_us : self->now_us);
            if (ok)
                s_reply_ok (self, c);
            else {
                zk_qserver_kick (self, c->queue);
                s_reply_err (self, c, 503,
                             "storage failure: ack not stored, the message will be delivered "
                             "again");
            }
            break;
        }
        case ZK_QREPLY_MOVES:
            if (c->moves_open)
                zk_error ("internal: a move did not settle in its turn");
            if (c->count_reply) {
                char digits[16];
                snprintf (digits, sizeof digits, "%" PRIu32, c->moved);
                const void *extra[1] = {digits};
                size_t sizes[1] = {strlen (digits)};
                if (c->move_failed && c->moved == 0)
                    s_reply_err (self, c, 503, "storage failure: nothing moved");
                else
                    s_reply (self, c, "OK", extra, sizes, 1);
            }
            else if (c->move_failed)
                s_reply_err (self, c, 503, "storage failure: the message stays queued");
            else
                s_reply_ok (self, c);
            break;
        case ZK_QREPLY_GET: s_complete_get (self, c); break;
        case ZK_QREPLY_FWD: s_complete_fwd (self, c); break;
        case ZK_QREPLY_TRACE: s_complete_trace (self, c); break;
        case ZK_QREPLY_STATUS: s_complete_status (self, c); break;
        case ZK_QREPLY_STATS: s_complete_stats (self, c); break;
        case ZK_QREPLY_LIST: s_complete_list (self, c); break;
        case ZK_QREPLY_ERR: s_reply_err (self, c, c->code, c->text); break;
        default: s_reply_ok (self, c); break;
    }
}
