/*  zk_qstore — one queue of zkit-queue: records in its journal, the index
    in memory (see zk_classes.h).

    Record payload (every type; numbers little-endian, as in the journal):

        0   16  msgid
        16  8   time      realtime µs when the record was written
        24  4   attempts  deliveries so far (RELEASE, ACK, DEAD, MOVED); in a
                          PUT, those before it died (a dead letter), else 0
        28  1   frames    F, 0..64
        29  1   text      T, bytes of text (a reason, a queue name)
        30  1   meta      M, bytes of optional fields (0 in the first
                          version's records, where this byte was reserved)
        31  1   reserved  zero
        32  4F  sizes     bytes of each frame
        ..  T   text
        ..  M   fields: TAG LENGTH VALUE each (1 + 1 + LENGTH bytes):
                1 started (8: µs), 2 consumer (1..64), 3 origin (a queue
                name), 4 origin attempts (4), 5 target position (16);
                unknown tags are skipped
        ..      the frames, concatenated

    The index: a pool of entries (ids are indexes, so the pool may move
    when it grows), an open-addressing map from message id to entry, and
    three intrusive doubly-linked lists (ready, leased, finished). A
    table of the journal's segments counts, for each, the live messages
    whose put record it holds; a segment is removed once it holds none,
    its newest record is older than max(dedup window, result TTL), and
    every older segment is gone (removal is a prefix, so an ack record is
    never removed while the put record it finishes remains).            */

#include "zk_classes.h"

#include <sys/stat.h>

#define S_INITIAL_CAPACITY 1024
#define S_FLAG_RELEASED    0x01     //  replay: delivered before the restart
#define S_FLAG_PENDING     0x02     //  replay: forwarded, unsettled; holder = pending index
#define S_NAMES_MAX        1000000  //  names one server's table takes
#define S_META_MAX         255      //  bytes of a record's optional fields

//  The optional fields' tags (docs/protocol.md 8.9).
enum {
    S_META_STARTED = 1,
    S_META_CONSUMER = 2,
    S_META_ORIGIN = 3,
    S_META_ORIGIN_ATTEMPTS = 4,
    S_META_TARGET_POS = 5,
};

_Static_assert(sizeof (zk_qentry_t) == 80, "the documented index entry size");
_Static_assert((ZK_QENTRY_FORWARDED & (S_FLAG_RELEASED | S_FLAG_PENDING)) == 0, "entry flags");

// ---------------------------------------------------------------- bytes

static void
s_put16 (uint8_t *at, uint16_t value)
{
    at[0] = (uint8_t) value;
    at[1] = (uint8_t) (value >> 8);
}

static void
s_put32 (uint8_t *at, uint32_t value)
{
    for (int index = 0; index < 4; index++)
        at[index] = (uint8_t) (value >> (8 * index));
}

static void
s_put64 (uint8_t *at, uint64_t value)
{
    for (int index = 0; index < 8; index++)
        at[index] = (uint8_t) (value >> (8 * index));
}

static uint32_t
s_get32 (const uint8_t *at)
{
    return (uint32_t) at[0] | (uint32_t) at[1] << 8 | (uint32_t) at[2] << 16
           | (uint32_t) at[3] << 24;
}

static uint64_t
s_get64 (const uint8_t *at)
{
    uint64_t value = 0;
    for (int index = 7; index >= 0; index--)
        value = value << 8 | at[index];
    return value;
}

//  The optional fields (docs/protocol.md 8.9) into meta. 0 or ZK_EPROTO.
static int
s_meta_decode (const uint8_t *fields, size_t size, zk_qmeta_t *meta)
{
    memset (meta, 0, sizeof *meta);
    size_t offset = 0;
    while (offset < size) {
        if (size - offset < 2 || fields[offset + 1] > size - offset - 2)
            return ZK_EPROTO;
        uint8_t tag = fields[offset];
        size_t length = fields[offset + 1];
        const uint8_t *value = fields + offset + 2;
        offset += 2 + length;
        switch (tag) {
            case S_META_STARTED:
                if (length != 8)
                    return ZK_EPROTO;
                meta->started_us = (int64_t) s_get64 (value);
                break;
            case S_META_CONSUMER:
                if (!zk_queue_consumer_valid ((const char *) value, length))
                    return ZK_EPROTO;
                meta->consumer = (const char *) value;
                meta->consumer_size = length;
                break;
            case S_META_ORIGIN:
                if (!zk_queue_name_valid ((const char *) value, length))
                    return ZK_EPROTO;
                meta->origin = (const char *) value;
                meta->origin_size = length;
                break;
            case S_META_ORIGIN_ATTEMPTS:
                if (length != 4)
                    return ZK_EPROTO;
                meta->origin_attempts = s_get32 (value);
                break;
            case S_META_TARGET_POS:
                if (length != 16)
                    return ZK_EPROTO;
                meta->has_target_pos = true;
                meta->target_pos =
                    (zk_journal_pos_t){s_get64 (value), s_get32 (value + 8), s_get32 (value + 12)};
                break;
            default: break;  //  a later version's field
        }
    }
    return 0;
}

//  The optional fields of meta (may be NULL) into fields (S_META_MAX
//  bytes at least); their size.
static size_t
s_meta_encode (const zk_qmeta_t *meta, uint8_t *fields)
{
    size_t size = 0;
    if (!meta)
        return 0;
    if (meta->started_us) {
        fields[size] = S_META_STARTED;
        fields[size + 1] = 8;
        s_put64 (fields + size + 2, (uint64_t) meta->started_us);
        size += 10;
    }
    if (meta->consumer_size && meta->consumer_size <= ZK_QUEUE_CONSUMER_MAX) {
        fields[size] = S_META_CONSUMER;
        fields[size + 1] = (uint8_t) meta->consumer_size;
        memcpy (fields + size + 2, meta->consumer, meta->consumer_size);
        size += 2 + meta->consumer_size;
    }
    if (meta->origin_size && meta->origin_size <= ZK_QUEUE_NAME_MAX) {
        fields[size] = S_META_ORIGIN;
        fields[size + 1] = (uint8_t) meta->origin_size;
        memcpy (fields + size + 2, meta->origin, meta->origin_size);
        size += 2 + meta->origin_size;
        fields[size] = S_META_ORIGIN_ATTEMPTS;
        fields[size + 1] = 4;
        s_put32 (fields + size + 2, meta->origin_attempts);
        size += 6;
    }
    if (meta->has_target_pos) {
        fields[size] = S_META_TARGET_POS;
        fields[size + 1] = 16;
        s_put64 (fields + size + 2, meta->target_pos.segment);
        s_put32 (fields + size + 10, meta->target_pos.offset);
        s_put32 (fields + size + 14, meta->target_pos.size);
        size += 18;
    }
    assert (size <= S_META_MAX);
    return size;
}

int
zk_qrecord_decode (uint8_t type, const uint8_t *payload, size_t size, zk_qrecord_t *record)
{
    if (type < ZK_QREC_PUT || type > ZK_QREC_FORWARDED || size < ZK_QSTORE_RECORD_HEAD)
        return ZK_EPROTO;
    int frame_count = payload[28];
    size_t text_size = payload[29];
    size_t meta_size = payload[30];
    if (frame_count > ZK_QUEUE_BODY_FRAMES || payload[31])
        return ZK_EPROTO;
    if ((type == ZK_QREC_PUT && frame_count == 0)
        || (type != ZK_QREC_PUT && type != ZK_QREC_ACK && frame_count != 0))
        return ZK_EPROTO;
    size_t offset = ZK_QSTORE_RECORD_HEAD + 4 * (size_t) frame_count;
    if (offset + text_size + meta_size > size)
        return ZK_EPROTO;
    record->type = type;
    record->msgid = payload;
    record->time_us = (int64_t) s_get64 (payload + 16);
    record->attempts = s_get32 (payload + 24);
    record->text = (const char *) payload + offset;
    record->text_size = text_size;
    record->frame_count = frame_count;
    //  A forward names its target.
    if (type == ZK_QREC_FORWARDED && !zk_queue_name_valid (record->text, text_size))
        return ZK_EPROTO;
    offset += text_size;
    if (s_meta_decode (payload + offset, meta_size, &record->meta) != 0)
        return ZK_EPROTO;
    offset += meta_size;
    size_t body = 0;
    for (int index = 0; index < frame_count; index++) {
        size_t frame_size = s_get32 (payload + ZK_QSTORE_RECORD_HEAD + 4 * index);
        if (frame_size > size - offset)
            return ZK_EPROTO;
        record->frames[index] = payload + offset;
        record->sizes[index] = frame_size;
        offset += frame_size;
        body += frame_size;
    }
    if (offset != size)
        return ZK_EPROTO;
    record->body_size = body;
    return 0;
}

/*  Append a record: the fixed head, sizes and text go in one part, each
    frame in its own. A record of 64 frames has one part too many for
    zk_journal_appendv: its frames are gathered into one buffer first.  */
static int
s_append (zk_qstore_t *self, uint8_t type, const uint8_t *msgid, int64_t now_us, uint32_t attempts,
          const char *text, size_t text_size, const zk_qmeta_t *meta, const struct iovec *frames,
          int count, zk_journal_record_t *record)
{
    assert (count >= 0 && count <= ZK_QUEUE_BODY_FRAMES);
    if (text_size > ZK_QUEUE_REASON_MAX)
        text_size = ZK_QUEUE_REASON_MAX;
    uint8_t
        head[ZK_QSTORE_RECORD_HEAD + 4 * ZK_QUEUE_BODY_FRAMES + ZK_QUEUE_REASON_MAX + S_META_MAX];
    memcpy (head, msgid, 16);
    s_put64 (head + 16, (uint64_t) now_us);
    s_put32 (head + 24, attempts);
    head[28] = (uint8_t) count;
    head[29] = (uint8_t) text_size;
    s_put16 (head + 30, 0);
    size_t head_size = ZK_QSTORE_RECORD_HEAD;
    for (int index = 0; index < count; index++, head_size += 4) {
        if (frames[index].iov_len > UINT32_MAX)
            return ZK_ETOOBIG;
        s_put32 (head + head_size, (uint32_t) frames[index].iov_len);
    }
    if (text_size)
        memcpy (head + head_size, text, text_size);
    head_size += text_size;
    size_t meta_size = s_meta_encode (meta, head + head_size);
    head[30] = (uint8_t) meta_size;
    head_size += meta_size;

    struct iovec parts[ZK_JOURNAL_MAX_PARTS];
    parts[0] = (struct iovec){head, head_size};
    if (count + 1 <= ZK_JOURNAL_MAX_PARTS) {
        for (int index = 0; index < count; index++)
            parts[index + 1] = frames[index];
        return zk_journal_appendv (self->journal, type, parts, count + 1, record);
    }
    size_t total = 0;
    for (int index = 0; index < count; index++)
        total += frames[index].iov_len;
    uint8_t *gathered = malloc (total ? total : 1);
    if (!gathered)
        return ZK_ENOMEM;
    size_t at = 0;
    for (int index = 0; index < count; index++) {
        if (frames[index].iov_len)
            memcpy (gathered + at, frames[index].iov_base, frames[index].iov_len);
        at += frames[index].iov_len;
    }
    parts[1] = (struct iovec){gathered, total};
    int rc = zk_journal_appendv (self->journal, type, parts, 2, record);
    free (gathered);
    return rc;
}

// ---------------------------------------------------------------- lists

static void
s_list_push_back (zk_qstore_t *self, zk_qlist_t *list, uint32_t id)
{
    zk_qentry_t *entry = zk_qstore_entry (self, id);
    entry->prev = list->tail;
    entry->next = ZK_QSTORE_NIL;
    if (list->tail != ZK_QSTORE_NIL)
        zk_qstore_entry (self, list->tail)->next = id;
    else
        list->head = id;
    list->tail = id;
    list->count++;
}

static void
s_list_push_front (zk_qstore_t *self, zk_qlist_t *list, uint32_t id)
{
    zk_qentry_t *entry = zk_qstore_entry (self, id);
    entry->next = list->head;
    entry->prev = ZK_QSTORE_NIL;
    if (list->head != ZK_QSTORE_NIL)
        zk_qstore_entry (self, list->head)->prev = id;
    else
        list->tail = id;
    list->head = id;
    list->count++;
}

static void
s_list_remove (zk_qstore_t *self, zk_qlist_t *list, uint32_t id)
{
    zk_qentry_t *entry = zk_qstore_entry (self, id);
    if (entry->prev != ZK_QSTORE_NIL)
        zk_qstore_entry (self, entry->prev)->next = entry->next;
    else
        list->head = entry->next;
    if (entry->next != ZK_QSTORE_NIL)
        zk_qstore_entry (self, entry->next)->prev = entry->prev;
    else
        list->tail = entry->prev;
    entry->prev = entry->next = ZK_QSTORE_NIL;
    assert (list->count > 0);
    list->count--;
}

static void
s_list_init (zk_qlist_t *list)
{
    list->head = list->tail = ZK_QSTORE_NIL;
    list->count = 0;
}

//  The list an entry in this state is on, or NULL.
static zk_qlist_t *
s_list_of (zk_qstore_t *self, uint8_t state)
{
    switch (state) {
        case ZK_QSTATE_QUEUED: return &self->ready;
        case ZK_QSTATE_LEASED: return &self->leased;
        case ZK_QSTATE_DONE:
        case ZK_QSTATE_DEAD:
        case ZK_QSTATE_MOVED: return &self->finished;
        default: return NULL;
    }
}

static bool
s_is_live (uint8_t state)
{
    return state >= ZK_QSTATE_PUTTING && state <= ZK_QSTATE_MOVING;
}

// ---------------------------------------------------------------- id map

static uint32_t
s_hash (const uint8_t *msgid)
{
    uint64_t low, high;
    memcpy (&low, msgid, 8);
    memcpy (&high, msgid + 8, 8);
    uint64_t hash = (low ^ (high * 0x9E3779B97F4A7C15ULL)) * 0xC2B2AE3D27D4EB4FULL;
    return (uint32_t) (hash >> 32);
}

uint32_t
zk_qstore_find (zk_qstore_t *self, const uint8_t *msgid)
{
    assert (self);
    for (uint32_t slot = s_hash (msgid) & self->slot_mask;; slot = (slot + 1) & self->slot_mask) {
        uint32_t id = self->slots[slot];
        if (id == ZK_QSTORE_NIL || memcmp (zk_qstore_entry (self, id)->msgid, msgid, 16) == 0)
            return id;
    }
}

static void
s_map_insert (zk_qstore_t *self, uint32_t id)
{
    uint32_t slot = s_hash (zk_qstore_entry (self, id)->msgid) & self->slot_mask;
    while (self->slots[slot] != ZK_QSTORE_NIL)
        slot = (slot + 1) & self->slot_mask;
    self->slots[slot] = id;
}

//  Linear probing with backward-shift deletion: no tombstones in the map.
static void
s_map_remove (zk_qstore_t *self, uint32_t id)
{
    uint32_t mask = self->slot_mask;
    uint32_t hole = s_hash (zk_qstore_entry (self, id)->msgid) & mask;
    while (self->slots[hole] != id) {
        assert (self->slots[hole] != ZK_QSTORE_NIL);
        hole = (hole + 1) & mask;
    }
    uint32_t probe = hole;
    while (true) {
        self->slots[hole] = ZK_QSTORE_NIL;
        while (true) {
            probe = (probe + 1) & mask;
            uint32_t other = self->slots[probe];
            if (other == ZK_QSTORE_NIL)
                return;
            uint32_t home = s_hash (zk_qstore_entry (self, other)->msgid) & mask;
            //  It may move back into the hole unless its home is cyclically in (hole, probe].
            bool stays =
                hole <= probe ? (hole < home && home <= probe) : (hole < home || home <= probe);
            if (!stays)
                break;
        }
        self->slots[hole] = self->slots[probe];
        hole = probe;
    }
}

//  Pool and map sized for capacity entries (map: twice as many slots).
static int
s_grow (zk_qstore_t *self, uint32_t capacity)
{
    if (capacity > (UINT32_MAX >> 2))
        return ZK_ENOMEM;
    zk_qentry_t *entries = realloc (self->entries, (size_t) capacity * sizeof *entries);
    if (!entries)
        return ZK_ENOMEM;
    self->entries = entries;
    uint32_t *slots = malloc ((size_t) capacity * 2 * sizeof *slots);
    if (!slots)
        return ZK_ENOMEM;
    for (uint32_t id = self->capacity; id < capacity; id++) {
        entries[id].state = ZK_QSTATE_FREE;
        entries[id].next = id + 1 < capacity ? id + 1 : self->free_head;
    }
    if (capacity > self->capacity)
        self->free_head = self->capacity;
    self->capacity = capacity;
    free (self->slots);
    self->slots = slots;
    self->slot_mask = capacity * 2 - 1;
    memset (slots, 0xff, (size_t) capacity * 2 * sizeof *slots);
    for (uint32_t id = 0; id < capacity; id++)
        if (entries[id].state != ZK_QSTATE_FREE)
            s_map_insert (self, id);
    return 0;
}

//  A new entry for msgid, in the map, on no list. ZK_QSTORE_NIL when out of memory.
static uint32_t
s_entry_new (zk_qstore_t *self, const uint8_t *msgid)
{
    if (self->free_head == ZK_QSTORE_NIL && s_grow (self, self->capacity * 2) != 0)
        return ZK_QSTORE_NIL;
    uint32_t id = self->free_head;
    zk_qentry_t *entry = zk_qstore_entry (self, id);
    self->free_head = entry->next;
    memset (entry, 0, sizeof *entry);
    memcpy (entry->msgid, msgid, 16);
    entry->prev = entry->next = ZK_QSTORE_NIL;
    entry->holder = ZK_QSTORE_NIL;
    entry->state = ZK_QSTATE_PUTTING;  //  anything but FREE; callers set it
    s_map_insert (self, id);
    self->used++;
    return id;
}

static void
s_entry_free (zk_qstore_t *self, uint32_t id)
{
    zk_qentry_t *entry = zk_qstore_entry (self, id);
    s_map_remove (self, id);
    entry->state = ZK_QSTATE_FREE;
    entry->next = self->free_head;
    self->free_head = id;
    self->used--;
}

// ---------------------------------------------------------------- names

int
zk_qnames_init (zk_qnames_t *self)
{
    assert (self);
    memset (self, 0, sizeof *self);
    self->map = zhashx_new ();
    return self->map ? 0 : ZK_ENOMEM;
}

void
zk_qnames_fini (zk_qnames_t *self)
{
    if (!self)
        return;
    zhashx_destroy (&self->map);
    for (uint32_t index = 0; index < self->count; index++)
        free (self->names[index]);
    free (self->names);
    memset (self, 0, sizeof *self);
}

uint32_t
zk_qnames_intern (zk_qnames_t *self, const char *name, size_t size)
{
    if (!self || !self->map || !zk_queue_name_valid (name, size))
        return 0;
    char key[ZK_QUEUE_NAME_MAX + 1];
    memcpy (key, name, size);
    key[size] = 0;
    uintptr_t known = (uintptr_t) zhashx_lookup (self->map, key);
    if (known)
        return (uint32_t) known;
    if (self->count >= S_NAMES_MAX) {
        zk_warn_limited ("more than %d queue names seen: origins and forwards of the others "
                         "are not traced",
                         S_NAMES_MAX);
        return 0;
    }
    if (self->count == self->capacity) {
        uint32_t capacity = self->capacity ? self->capacity * 2 : 64;
        char **names = realloc (self->names, capacity * sizeof *names);
        if (!names)
            return 0;
        self->names = names;
        self->capacity = capacity;
    }
    char *copy = strdup (key);
    if (!copy)
        return 0;
    if (zhashx_insert (self->map, key, (void *) (uintptr_t) (self->count + 1)) != 0) {
        free (copy);
        return 0;
    }
    self->names[self->count++] = copy;
    return self->count;
}

const char *
zk_qnames_get (const zk_qnames_t *self, uint32_t index)
{
    return self && index && index <= self->count ? self->names[index - 1] : NULL;
}

// ---------------------------------------------------------------- segments

static zk_qsegment_t *
s_segment_find (zk_qstore_t *self, uint64_t id)
{
    size_t low = 0, high = self->segment_count;
    while (low < high) {
        size_t middle = (low + high) / 2;
        if (self->segments[middle].id < id)
            low = middle + 1;
        else
            high = middle;
    }
    if (low < self->segment_count && self->segments[low].id == id)
        return &self->segments[low];
    return NULL;
}

//  A record was written into segment id at time_us. New segments only
//  ever come after the known ones.
static zk_qsegment_t *
s_segment_touch (zk_qstore_t *self, uint64_t id, int64_t time_us)
{
    zk_qsegment_t *segment = NULL;
    if (self->segment_count && self->segments[self->segment_count - 1].id == id)
        segment = &self->segments[self->segment_count - 1];
    else if (self->segment_count == 0 || self->segments[self->segment_count - 1].id < id) {
        if (self->segment_count == self->segment_capacity) {
            size_t capacity = self->segment_capacity ? self->segment_capacity * 2 : 16;
            zk_qsegment_t *segments = realloc (self->segments, capacity * sizeof *segments);
            if (!segments)
                return NULL;  //  only costs the removal of this segment
            self->segments = segments;
            self->segment_capacity = capacity;
        }
        segment = &self->segments[self->segment_count++];
        *segment = (zk_qsegment_t){.id = id};
    }
    else
        segment = s_segment_find (self, id);
    if (segment && time_us > segment->last_us)
        segment->last_us = time_us;
    return segment;
}

//  The entry's put record stops counting as live.
static void
s_unlive (zk_qstore_t *self, zk_qentry_t *entry)
{
    zk_qsegment_t *segment = s_segment_find (self, entry->pos.segment);
    if (segment && segment->live)
        segment->live--;
    assert (self->live > 0);
    self->live--;
}

static void
s_make_live (zk_qstore_t *self, zk_qentry_t *entry, int64_t time_us)
{
    zk_qsegment_t *segment = s_segment_touch (self, entry->pos.segment, time_us);
    if (segment)
        segment->live++;
    self->live++;
}

// ---------------------------------------------------------------- finishing

static int64_t
s_retention_us (zk_qstore_t *self)
{
    return self->config.dedup_window_us > self->config.result_ttl_us ? self->config.dedup_window_us
                                                                     : self->config.result_ttl_us;
}

void
zk_qstore_forget (zk_qstore_t *self, uint32_t id)
{
    assert (self);
    zk_qentry_t *entry = zk_qstore_entry (self, id);
    assert (!s_is_live (entry->state));
    s_list_remove (self, &self->finished, id);
    s_entry_free (self, id);
}

//  A live entry (on no list) finishes in state, its record at pos.
static void
s_finish (zk_qstore_t *self, uint32_t id, uint8_t state, zk_journal_pos_t pos, int64_t now_us)
{
    zk_qentry_t *entry = zk_qstore_entry (self, id);
    s_unlive (self, entry);
    entry->state = state;
    entry->pos = pos;
    entry->since_us = now_us;
    entry->holder = ZK_QSTORE_NIL;
    s_list_push_back (self, &self->finished, id);
    while (self->finished.count > self->config.max_done && self->finished.head != ZK_QSTORE_NIL)
        zk_qstore_forget (self, self->finished.head);
}

bool
zk_qstore_is_duplicate (zk_qstore_t *self, uint32_t id, int64_t now_us)
{
    assert (self);
    zk_qentry_t *entry = zk_qstore_entry (self, id);
    if (s_is_live (entry->state))
        return true;
    return now_us - entry->put_us < self->config.dedup_window_us;
}

// ---------------------------------------------------------------- replay

//  Replay: a pending forward is known to have happened; the message is done.
static void
s_pending_confirmed (zk_qstore_t *self, uint32_t id, const zk_qpending_t *item)
{
    zk_qentry_t *entry = zk_qstore_entry (self, id);
    entry->flags &= (uint8_t) ~S_FLAG_PENDING;
    s_list_remove (self, &self->ready, id);
    s_finish (self, id, ZK_QSTATE_DONE, item->pos, item->time_us);
    entry->flags |= ZK_QENTRY_FORWARDED;
    entry->holder = item->target;
}

static int
s_replay_put (zk_qstore_t *self, const zk_journal_record_t *record, const zk_qrecord_t *parsed)
{
    uint32_t id = zk_qstore_find (self, parsed->msgid);
    if (id != ZK_QSTORE_NIL) {
        zk_qentry_t *entry = zk_qstore_entry (self, id);
        if (s_is_live (entry->state) && !(entry->flags & S_FLAG_PENDING))
            return 0;  //  stored twice (a put that failed late, retried): keep the first
        //  A put is only written for an id that finished: a pending forward
        //  before it had happened.
        if (s_is_live (entry->state))
            s_pending_confirmed (self, id, &self->pending[entry->holder]);
        zk_qstore_forget (self, id);
    }
    id = s_entry_new (self, parsed->msgid);
    if (id == ZK_QSTORE_NIL)
        return ZK_ENOMEM;
    zk_qentry_t *entry = zk_qstore_entry (self, id);
    entry->pos = record->pos;
    entry->put_us = entry->since_us = parsed->time_us;
    entry->state = ZK_QSTATE_QUEUED;  //  attempts 0: a put's own field tells deliveries elsewhere
    if (parsed->meta.origin_size)
        entry->origin =
            zk_qnames_intern (self->config.names, parsed->meta.origin, parsed->meta.origin_size);
    s_make_live (self, entry, parsed->time_us);
    s_list_push_back (self, &self->ready, id);
    return 0;
}

static int
s_replay_finish (zk_qstore_t *self, const zk_journal_record_t *record, const zk_qrecord_t *parsed,
                 uint8_t state)
{
    uint32_t id = zk_qstore_find (self, parsed->msgid);
    if (id != ZK_QSTORE_NIL)
        zk_qstore_entry (self, id)->flags &= (uint8_t) ~S_FLAG_PENDING;
    if (id == ZK_QSTORE_NIL) {
        //  Its put record is gone: remember the outcome for STATUS only.
        id = s_entry_new (self, parsed->msgid);
        if (id == ZK_QSTORE_NIL)
            return ZK_ENOMEM;
        zk_qentry_t *entry = zk_qstore_entry (self, id);
        entry->state = state;
        entry->pos = record->pos;
        entry->since_us = parsed->time_us;
        entry->attempts =
            (uint16_t) (parsed->attempts > UINT16_MAX ? UINT16_MAX : parsed->attempts);
        s_list_push_back (self, &self->finished, id);
        while (self->finished.count > self->config.max_done)
            zk_qstore_forget (self, self->finished.head);
        return 0;
    }
    zk_qentry_t *entry = zk_qstore_entry (self, id);
    if (s_is_live (entry->state)) {
        if (parsed->attempts > entry->attempts)
            entry->attempts =
                (uint16_t) (parsed->attempts > UINT16_MAX ? UINT16_MAX : parsed->attempts);
        s_list_remove (self, &self->ready, id);
        s_finish (self, id, state, record->pos, parsed->time_us);
    }
    return 0;
}

/*  A FORWARDED record. One with a target position is decided by the put
    record there, in another queue: its message stays live and pending
    (the record's place in self->pending) until zk_qstore_reconcile_pending
    looks. One without (the target held the message already, or a
    restart confirmed it) finishes the message as an ACK does.          */
static int
s_replay_forwarded (zk_qstore_t *self, const zk_journal_record_t *record,
                    const zk_qrecord_t *parsed)
{
    uint32_t id = zk_qstore_find (self, parsed->msgid);
    zk_qentry_t *entry = id == ZK_QSTORE_NIL ? NULL : zk_qstore_entry (self, id);
    if (parsed->meta.has_target_pos && entry && s_is_live (entry->state)) {
        if (self->pending_count == self->pending_capacity) {
            size_t capacity = self->pending_capacity ? self->pending_capacity * 2 : 64;
            zk_qpending_t *pending = realloc (self->pending, capacity * sizeof *pending);
            if (!pending)
                return ZK_ENOMEM;
            self->pending = pending;
            self->pending_capacity = capacity;
        }
        zk_qpending_t *item = &self->pending[self->pending_count];
        memcpy (item->msgid, parsed->msgid, 16);
        item->pos = record->pos;
        item->time_us = parsed->time_us;
        item->target = zk_qnames_intern (self->config.names, parsed->text, parsed->text_size);
        if (parsed->attempts > entry->attempts)
            entry->attempts =
                (uint16_t) (parsed->attempts > UINT16_MAX ? UINT16_MAX : parsed->attempts);
        entry->flags |= S_FLAG_PENDING;
        entry->holder = (uint32_t) self->pending_count++;
        return 0;
    }
    int rc = s_replay_finish (self, record, parsed, ZK_QSTATE_DONE);
    if (rc)
        return rc;
    id = zk_qstore_find (self, parsed->msgid);
    entry = id == ZK_QSTORE_NIL ? NULL : zk_qstore_entry (self, id);
    if (entry && entry->state == ZK_QSTATE_DONE && entry->pos.segment == record->pos.segment
        && entry->pos.offset == record->pos.offset) {
        entry->flags |= ZK_QENTRY_FORWARDED;
        entry->holder = zk_qnames_intern (self->config.names, parsed->text, parsed->text_size);
    }
    return 0;
}

static int
s_replay_record (void *arg, const zk_journal_record_t *record, const void *payload)
{
    zk_qstore_t *self = arg;
    zk_qrecord_t parsed;
    if (zk_qrecord_decode (record->type, payload, record->pos.size, &parsed) != 0) {
        self->counters.bad_records++;
        zk_warn_limited ("queue %s: record %" PRIu64 " (segment %" PRIu64 " offset %" PRIu32
                         ") is not a valid queue record: set aside",
                         self->name, record->seq, record->pos.segment, record->pos.offset);
        return 0;
    }
    s_segment_touch (self, record->pos.segment, parsed.time_us);
    switch (record->type) {
        case ZK_QREC_PUT: return s_replay_put (self, record, &parsed);
        case ZK_QREC_ACK: return s_replay_finish (self, record, &parsed, ZK_QSTATE_DONE);
        case ZK_QREC_DEAD: return s_replay_finish (self, record, &parsed, ZK_QSTATE_DEAD);
        case ZK_QREC_MOVED: return s_replay_finish (self, record, &parsed, ZK_QSTATE_MOVED);
        case ZK_QREC_FORWARDED: return s_replay_forwarded (self, record, &parsed);
        case ZK_QREC_RELEASE: {
            uint32_t id = zk_qstore_find (self, parsed.msgid);
            zk_qentry_t *entry = id == ZK_QSTORE_NIL ? NULL : zk_qstore_entry (self, id);
            if (entry && s_is_live (entry->state)) {
                uint32_t attempts = parsed.attempts > UINT16_MAX ? UINT16_MAX : parsed.attempts;
                if (attempts > entry->attempts)
                    entry->attempts = (uint16_t) attempts;
                //  A release after a forward cancels it (the forward failed).
                if (entry->flags & S_FLAG_PENDING)
                    entry->holder = ZK_QSTORE_NIL;
                entry->flags = (uint8_t) ((entry->flags | S_FLAG_RELEASED) & ~S_FLAG_PENDING);
            }
            break;
        }
        default: break;
    }
    return 0;
}

static void
s_replay_damage (void *arg, const zk_journal_damage_t *damage)
{
    zk_qstore_t *self = arg;
    self->counters.damaged_runs++;
    zk_warn ("queue %s: damaged journal: %" PRIu64 " bytes set aside in segment %" PRIu64
             " at offset %" PRIu64 " (%s%s); every good record is kept",
             self->name, damage->size, damage->segment, damage->offset, damage->reason,
             damage->truncated ? ", torn tail cut" : "");
}

//  After replay: messages delivered before the restart go first (as
//  redeliveries do), the rest in put order.
static void
s_replay_order (zk_qstore_t *self)
{
    zk_qlist_t again, first;
    s_list_init (&again);
    s_list_init (&first);
    while (self->ready.head != ZK_QSTORE_NIL) {
        uint32_t id = self->ready.head;
        s_list_remove (self, &self->ready, id);
        zk_qentry_t *entry = zk_qstore_entry (self, id);
        bool released = entry->flags & S_FLAG_RELEASED;
        entry->flags &= (uint8_t) ~S_FLAG_RELEASED;
        s_list_push_back (self, released ? &again : &first, id);
    }
    while (first.head != ZK_QSTORE_NIL) {
        uint32_t id = first.head;
        s_list_remove (self, &first, id);
        s_list_push_back (self, &again, id);
    }
    self->ready = again;
}

//  Match the segment table to the journal's list (it may hold segments
//  without a record, which replay never saw).
static int
s_segments_sync (zk_qstore_t *self)
{
    size_t count = zk_journal_segment_count (self->journal);
    zk_qsegment_t *segments = calloc (count + 16, sizeof *segments);
    if (!segments)
        return ZK_ENOMEM;
    for (size_t index = 0; index < count; index++) {
        zk_journal_segment_t info;
        if (zk_journal_segment_info (self->journal, index, &info) != 0)
            break;
        zk_qsegment_t *known = s_segment_find (self, info.segment);
        segments[index] = known ? *known : (zk_qsegment_t){.id = info.segment};
    }
    free (self->segments);
    self->segments = segments;
    self->segment_count = count;
    self->segment_capacity = count + 16;
    return 0;
}

// ---------------------------------------------------------------- open, close

int
zk_qstore_open (const char *dir, const char *name, const zk_qstore_config_t *config,
                zk_qstore_t **self_p)
{
    assert (dir && name && config && self_p);
    *self_p = NULL;
    zk_qstore_t *self = calloc (1, sizeof *self);
    if (!self)
        return ZK_ENOMEM;
    snprintf (self->name, sizeof self->name, "%s", name);
    self->config = *config;
    self->free_head = ZK_QSTORE_NIL;
    s_list_init (&self->ready);
    s_list_init (&self->leased);
    s_list_init (&self->finished);
    int rc = s_grow (self, S_INITIAL_CAPACITY);
    if (rc)
        goto out_destroy;
    char *path = zsys_sprintf ("%s/%s", dir, name);
    if (!path) {
        rc = ZK_ENOMEM;
        goto out_destroy;
    }
    zk_journal_config_t journal_config = {
        .segment_size = config->segment_size,
        .max_record_size = config->max_record,
        .on_record = s_replay_record,
        .on_damage = s_replay_damage,
        .arg = self,
    };
    rc = zk_journal_open (path, &journal_config, &self->journal);
    zstr_free (&path);
    if (rc) {
        zk_error ("queue %s: cannot open its journal: %s", name, zk_strerror (rc));
        goto out_destroy;
    }
    if ((rc = s_segments_sync (self)) != 0)
        goto out_destroy;
    s_replay_order (self);
    zk_qstore_maintain (self, zclock_time () * 1000);
    *self_p = self;
    return 0;

out_destroy:
    zk_qstore_destroy (&self);
    return rc;
}

void
zk_qstore_destroy (zk_qstore_t **self_p)
{
    assert (self_p);
    zk_qstore_t *self = *self_p;
    if (!self)
        return;
    if (self->journal) {
        int rc = zk_journal_sync (self->journal);
        if (rc)
            zk_error ("queue %s: final sync failed: %s", self->name, zk_strerror (rc));
        zk_journal_destroy (&self->journal);
    }
    free (self->entries);
    free (self->slots);
    free (self->segments);
    free (self->buffer);
    free (self->pending);
    free (self);
    *self_p = NULL;
}

// ---------------------------------------------------------------- operations

int
zk_qstore_put (zk_qstore_t *self, const uint8_t *msgid, int64_t now_us, const char *text,
               size_t text_size, uint32_t attempts, const zk_qmeta_t *meta,
               const struct iovec *frames, int count, uint32_t *id_p, uint64_t *seq_p)
{
    assert (self && msgid && id_p);
    assert (zk_qstore_find (self, msgid) == ZK_QSTORE_NIL);
    //  Room first: a record without an entry would be a message nobody confirmed.
    if (self->free_head == ZK_QSTORE_NIL && s_grow (self, self->capacity * 2) != 0)
        return ZK_ENOMEM;
    zk_journal_record_t record;
    int rc = s_append (self, ZK_QREC_PUT, msgid, now_us, attempts, text, text_size, meta, frames,
                       count, &record);
    if (rc)
        return rc;
    uint32_t id = s_entry_new (self, msgid);
    assert (id != ZK_QSTORE_NIL);
    zk_qentry_t *entry = zk_qstore_entry (self, id);
    entry->pos = record.pos;
    entry->put_us = entry->since_us = now_us;
    entry->state = ZK_QSTATE_PUTTING;
    if (meta && meta->origin_size)
        entry->origin = zk_qnames_intern (self->config.names, meta->origin, meta->origin_size);
    s_make_live (self, entry, now_us);
    *id_p = id;
    if (seq_p)
        *seq_p = record.seq;
    return 0;
}

void
zk_qstore_put_done (zk_qstore_t *self, uint32_t id, bool ok)
{
    assert (self);
    zk_qentry_t *entry = zk_qstore_entry (self, id);
    assert (entry->state == ZK_QSTATE_PUTTING);
    if (ok) {
        entry->state = ZK_QSTATE_QUEUED;
        s_list_push_back (self, &self->ready, id);
        self->counters.put++;
    }
    else {
        s_unlive (self, entry);
        s_entry_free (self, id);
    }
}

int
zk_qstore_read_at (zk_qstore_t *self, zk_journal_pos_t pos, zk_qrecord_t *record)
{
    assert (self && record);
    //  A position from a record (a forward's target) is hostile: no
    //  allocation beyond what a record may be.
    uint32_t max_record =
        self->config.max_record ? self->config.max_record : ZK_JOURNAL_DEFAULT_MAX_RECORD;
    if (pos.size > max_record)
        return ZK_ETOOBIG;
    if (pos.size > self->buffer_size) {
        uint8_t *buffer = realloc (self->buffer, pos.size);
        if (!buffer)
            return ZK_ENOMEM;
        self->buffer = buffer;
        self->buffer_size = pos.size;
    }
    zk_journal_record_t header;
    int rc = zk_journal_read (self->journal, pos, self->buffer, self->buffer_size, &header);
    if (rc)
        return rc;
    return zk_qrecord_decode (header.type, self->buffer, pos.size, record);
}

int
zk_qstore_read (zk_qstore_t *self, uint32_t id, zk_qrecord_t *record)
{
    assert (self && record);
    zk_qentry_t *entry = zk_qstore_entry (self, id);
    int rc = zk_qstore_read_at (self, entry->pos, record);
    if (rc == 0 && (record->type != ZK_QREC_PUT || memcmp (record->msgid, entry->msgid, 16) != 0))
        rc = ZK_EPROTO;
    return rc;
}

void
zk_qstore_lease (zk_qstore_t *self, uint32_t id, uint32_t holder, int64_t deadline, int64_t now_us)
{
    assert (self);
    zk_qentry_t *entry = zk_qstore_entry (self, id);
    assert (entry->state == ZK_QSTATE_QUEUED);
    s_list_remove (self, &self->ready, id);
    if (entry->attempts < UINT16_MAX)
        entry->attempts++;
    entry->state = ZK_QSTATE_LEASED;
    entry->holder = holder;
    entry->lease_deadline = deadline;
    entry->since_us = now_us;
    s_list_push_back (self, &self->leased, id);
    self->counters.delivered++;
    if (entry->attempts > 1)
        self->counters.redelivered++;
}

//  Back to the front of the ready list, from whatever list it is on.
static void
s_requeue (zk_qstore_t *self, uint32_t id, int64_t now_us)
{
    zk_qentry_t *entry = zk_qstore_entry (self, id);
    zk_qlist_t *list = s_list_of (self, entry->state);
    if (list)
        s_list_remove (self, list, id);
    entry->state = ZK_QSTATE_QUEUED;
    entry->holder = ZK_QSTORE_NIL;
    entry->since_us = now_us;
    s_list_push_front (self, &self->ready, id);
}

int
zk_qstore_ack (zk_qstore_t *self, uint32_t id, const struct iovec *result, int count,
               const char *consumer, int64_t now_us, zk_journal_record_t *record)
{
    assert (self && record);
    zk_qentry_t *entry = zk_qstore_entry (self, id);
    assert (entry->state == ZK_QSTATE_LEASED);
    //  The delivery it ends, for TRACE: a leased entry's since is its start.
    zk_qmeta_t meta = {.started_us = entry->since_us,
                       .consumer = consumer,
                       .consumer_size = consumer ? strlen (consumer) : 0};
    int rc = s_append (self, ZK_QREC_ACK, entry->msgid, now_us, entry->attempts, NULL, 0, &meta,
                       result, count, record);
    if (rc) {
        s_requeue (self, id, now_us);
        return rc;
    }
    s_segment_touch (self, record->pos.segment, now_us);
    s_list_remove (self, &self->leased, id);
    entry->state = ZK_QSTATE_ACKING;
    entry->holder = ZK_QSTORE_NIL;
    return 0;
}

void
zk_qstore_ack_done (zk_qstore_t *self, uint32_t id, bool ok, zk_journal_pos_t pos, int64_t now_us)
{
    assert (self);
    zk_qentry_t *entry = zk_qstore_entry (self, id);
    assert (entry->state == ZK_QSTATE_ACKING);
    if (ok) {
        s_finish (self, id, ZK_QSTATE_DONE, pos, now_us);
        self->counters.acked++;
    }
    else
        s_requeue (self, id, now_us);
}

void
zk_qstore_release (zk_qstore_t *self, uint32_t id, const char *reason, int64_t now_us)
{
    assert (self);
    zk_qentry_t *entry = zk_qstore_entry (self, id);
    assert (entry->state == ZK_QSTATE_LEASED);
    zk_journal_record_t record;
    int rc = s_append (self, ZK_QREC_RELEASE, entry->msgid, now_us, entry->attempts, reason,
                       reason ? strlen (reason) : 0, NULL, NULL, 0, &record);
    if (rc)
        zk_warn_limited ("queue %s: cannot record a release: %s", self->name, zk_strerror (rc));
    else
        s_segment_touch (self, record.pos.segment, now_us);
    s_requeue (self, id, now_us);
}

void
zk_qstore_take (zk_qstore_t *self, uint32_t id, int64_t now_us)
{
    assert (self);
    zk_qentry_t *entry = zk_qstore_entry (self, id);
    assert (entry->state == ZK_QSTATE_QUEUED || entry->state == ZK_QSTATE_LEASED);
    s_list_remove (self, s_list_of (self, entry->state), id);
    entry->state = ZK_QSTATE_MOVING;
    entry->holder = ZK_QSTORE_NIL;
    entry->since_us = now_us;
}

//  Append the record that finishes a live entry (DEAD or MOVED) and
//  finish it. A failed append is logged: the message is then in both
//  queues after a restart (a duplicate, never a loss).
static void
s_finish_with_record (zk_qstore_t *self, uint32_t id, uint8_t type, const char *text,
                      const zk_qmeta_t *meta, int64_t now_us)
{
    zk_qentry_t *entry = zk_qstore_entry (self, id);
    zk_journal_record_t record = {0};
    int rc = s_append (self, type, entry->msgid, now_us, entry->attempts, text,
                       text ? strlen (text) : 0, meta, NULL, 0, &record);
    if (rc)
        zk_warn_limited ("queue %s: cannot record that a message left: %s", self->name,
                         zk_strerror (rc));
    else
        s_segment_touch (self, record.pos.segment, now_us);
    s_finish (self, id, type == ZK_QREC_DEAD ? ZK_QSTATE_DEAD : ZK_QSTATE_MOVED, record.pos,
              now_us);
}

void
zk_qstore_move_done (zk_qstore_t *self, uint32_t id, bool ok, uint8_t type, const char *text,
                     const zk_qmeta_t *meta, int64_t now_us)
{
    assert (self);
    assert (type == ZK_QREC_DEAD || type == ZK_QREC_MOVED);
    zk_qentry_t *entry = zk_qstore_entry (self, id);
    assert (entry->state == ZK_QSTATE_MOVING);
    if (!ok) {
        s_requeue (self, id, now_us);
        return;
    }
    s_finish_with_record (self, id, type, text, meta, now_us);
    if (type == ZK_QREC_DEAD)
        self->counters.dead++;
    else
        self->counters.moved++;
}

void
zk_qstore_drop (zk_qstore_t *self, uint32_t id, const char *reason, int64_t now_us)
{
    assert (self);
    zk_qentry_t *entry = zk_qstore_entry (self, id);
    assert (s_is_live (entry->state));
    zk_qlist_t *list = s_list_of (self, entry->state);
    if (list)
        s_list_remove (self, list, id);
    self->counters.unreadable++;
    zk_error ("queue %s: a message cannot be read back from the journal (%s): dropped", self->name,
              reason);
    s_finish_with_record (self, id, ZK_QREC_DEAD, reason, NULL, now_us);
}

void
zk_qstore_hold (zk_qstore_t *self, uint32_t id)
{
    assert (self);
    zk_qentry_t *entry = zk_qstore_entry (self, id);
    assert (entry->state == ZK_QSTATE_LEASED);
    s_list_remove (self, &self->leased, id);
    entry->state = ZK_QSTATE_ACKING;
    entry->holder = ZK_QSTORE_NIL;
}

int
zk_qstore_forward (zk_qstore_t *self, uint32_t id, const zk_qforward_t *forward,
                   zk_journal_record_t *record)
{
    assert (self && forward && record);
    zk_qentry_t *entry = zk_qstore_entry (self, id);
    assert (entry->state == ZK_QSTATE_QUEUED || entry->state == ZK_QSTATE_LEASED
            || entry->state == ZK_QSTATE_ACKING);
    zk_qlist_t *list = s_list_of (self, entry->state);
    if (list)
        s_list_remove (self, list, id);
    entry->state = ZK_QSTATE_ACKING;
    entry->holder = ZK_QSTORE_NIL;
    if (forward->attempts > entry->attempts)
        entry->attempts =
            (uint16_t) (forward->attempts > UINT16_MAX ? UINT16_MAX : forward->attempts);
    zk_qmeta_t meta = {
        .started_us = forward->started_us,
        .consumer = forward->consumer,
        .consumer_size = forward->consumer ? strlen (forward->consumer) : 0,
        .has_target_pos = forward->has_target_pos,
        .target_pos = forward->target_pos,
    };
    int rc = s_append (self, ZK_QREC_FORWARDED, entry->msgid, forward->time_us, forward->attempts,
                       forward->target, strlen (forward->target), &meta, NULL, 0, record);
    if (rc == 0)
        s_segment_touch (self, record->pos.segment, forward->time_us);
    return rc;
}

void
zk_qstore_forward_done (zk_qstore_t *self, uint32_t id, bool ok, zk_journal_pos_t pos,
                        uint32_t target, int64_t time_us, int64_t now_us)
{
    assert (self);
    zk_qentry_t *entry = zk_qstore_entry (self, id);
    assert (entry->state == ZK_QSTATE_ACKING);
    if (!ok) {
        //  Its FORWARDED record (if any made it) must not count: a release
        //  after it cancels it at replay.
        zk_journal_record_t record;
        int rc = s_append (self, ZK_QREC_RELEASE, entry->msgid, now_us, entry->attempts,
                           "forward failed", 14, NULL, NULL, 0, &record);
        if (rc)
            zk_warn_limited ("queue %s: cannot record a failed forward: %s", self->name,
                             zk_strerror (rc));
        else
            s_segment_touch (self, record.pos.segment, now_us);
        s_requeue (self, id, now_us);
        return;
    }
    s_finish (self, id, ZK_QSTATE_DONE, pos, time_us);
    entry->flags |= ZK_QENTRY_FORWARDED;
    entry->holder = target;
}

void
zk_qstore_maintain (zk_qstore_t *self, int64_t now_us)
{
    assert (self);
    while (self->finished.head != ZK_QSTORE_NIL) {
        zk_qentry_t *entry = zk_qstore_entry (self, self->finished.head);
        int64_t expires = entry->put_us + self->config.dedup_window_us;
        if (entry->since_us + self->config.result_ttl_us > expires)
            expires = entry->since_us + self->config.result_ttl_us;
        if (expires > now_us)
            break;
        zk_qstore_forget (self, self->finished.head);
    }
    int64_t retention = s_retention_us (self);
    //  Oldest first; the journal refuses to remove its active segment.
    while (self->segment_count > 1 && self->segments[0].live == 0
           && self->segments[0].last_us + retention <= now_us) {
        int rc = zk_journal_remove_segment (self->journal, self->segments[0].id);
        if (rc) {
            if (rc != ZK_EINVAL)
                zk_warn_limited ("queue %s: cannot remove segment %" PRIu64 ": %s", self->name,
                                 self->segments[0].id, zk_strerror (rc));
            break;
        }
        memmove (self->segments, self->segments + 1,
                 (self->segment_count - 1) * sizeof *self->segments);
        self->segment_count--;
    }
    //  A drained queue: seal the active segment once it is worth it, so the
    //  next turn removes it and disk use falls to nothing.
    if (self->live == 0 && self->segment_count == 1
        && self->segments[0].last_us + retention <= now_us) {
        size_t count = zk_journal_segment_count (self->journal);
        zk_journal_segment_t info;
        uint64_t worth = self->config.segment_size ? self->config.segment_size / 4
                                                   : ZK_JOURNAL_DEFAULT_SEGMENT_SIZE / 4;
        if (count && zk_journal_segment_info (self->journal, count - 1, &info) == 0
            && info.segment == self->segments[0].id && info.size >= worth
            && zk_journal_roll (self->journal) == 0) {
            count = zk_journal_segment_count (self->journal);
            if (zk_journal_segment_info (self->journal, count - 1, &info) == 0)
                s_segment_touch (self, info.segment, 0);
        }
    }
    if (self->used == 0 && self->capacity > S_INITIAL_CAPACITY * 4) {
        //  Give back the memory of a past backlog.
        free (self->entries);
        free (self->slots);
        self->entries = NULL;
        self->slots = NULL;
        self->capacity = 0;
        self->free_head = ZK_QSTORE_NIL;
        if (s_grow (self, S_INITIAL_CAPACITY) != 0)
            zk_error ("queue %s: out of memory", self->name);
    }
}

// ---------------------------------------------------------------- forwards at start

/*  True when to holds the put record that a forward from origin at
    time_us wrote at pos: its entry is still known, or the record is
    read back from pos. A segment that to removed (it has newer ones)
    held the record once: the message finished there, so the forward
    happened. A segment still there without the record (a torn tail, a
    write that failed) means it never became durable.                   */
static bool
s_holds_forward (zk_qstore_t *to, const uint8_t *msgid, const char *origin, int64_t time_us,
                 zk_journal_pos_t pos)
{
    uint32_t id = zk_qstore_find (to, msgid);
    if (id != ZK_QSTORE_NIL) {
        zk_qentry_t *entry = zk_qstore_entry (to, id);
        const char *name = zk_qnames_get (to->config.names, entry->origin);
        if (name && streq (name, origin) && entry->put_us == time_us)
            return true;
    }
    if (!s_segment_find (to, pos.segment))
        return to->segment_count && to->segments[to->segment_count - 1].id > pos.segment;
    zk_qrecord_t record;
    return zk_qstore_read_at (to, pos, &record) == 0 && record.type == ZK_QREC_PUT
           && memcmp (record.msgid, msgid, 16) == 0 && record.time_us == time_us
           && record.meta.origin_size == strlen (origin)
           && memcmp (record.meta.origin, origin, record.meta.origin_size) == 0;
}

//  A pending forward did not happen: the message stays queued, and a
//  release record cancels the FORWARDED record for later restarts.
static void
s_cancel_forward (zk_qstore_t *self, uint32_t id, const char *target)
{
    zk_qentry_t *entry = zk_qstore_entry (self, id);
    entry->flags &= (uint8_t) ~S_FLAG_PENDING;
    entry->holder = ZK_QSTORE_NIL;
    char text[ZK_ID_TEXT_SIZE];
    zk_id_format (entry->msgid, text);
    zk_warn ("queue %s: message %s: its forward to %s was not stored before a crash: it is "
             "queued again",
             self->name, text, target);
    zk_journal_record_t record;
    int rc = s_append (self, ZK_QREC_RELEASE, entry->msgid, zclock_time () * 1000, entry->attempts,
                       "forward lost", 12, NULL, NULL, 0, &record);
    if (rc)
        zk_error ("queue %s: cannot record a lost forward: %s", self->name, zk_strerror (rc));
    else
        s_segment_touch (self, record.pos.segment, zclock_time () * 1000);
}

size_t
zk_qstore_reconcile_pending (zk_qstore_t *self, zk_qstore_lookup_fn *lookup, void *arg)
{
    assert (self && lookup);
    size_t settled = 0;
    for (size_t index = 0; index < self->pending_count; index++) {
        zk_qpending_t *item = &self->pending[index];
        uint32_t id = zk_qstore_find (self, item->msgid);
        zk_qentry_t *entry = id == ZK_QSTORE_NIL ? NULL : zk_qstore_entry (self, id);
        if (!entry || !(entry->flags & S_FLAG_PENDING) || entry->holder != index
            || entry->state != ZK_QSTATE_QUEUED)
            continue;  //  a later record settled it
        settled++;
        zk_qrecord_t record;
        if (zk_qstore_read_at (self, item->pos, &record) != 0 || record.type != ZK_QREC_FORWARDED) {
            s_cancel_forward (self, id, "a queue it no longer names (unreadable record)");
            continue;
        }
        char target[ZK_QUEUE_NAME_MAX + 1];
        memcpy (target, record.text, record.text_size);
        target[record.text_size] = 0;
        int64_t time_us = record.time_us;
        zk_qstore_t *to = lookup (arg, target);
        if (!to
            || !s_holds_forward (to, item->msgid, self->name, time_us, record.meta.target_pos)) {
            s_cancel_forward (self, id, target);
            continue;
        }
        s_pending_confirmed (self, id, item);
    }
    free (self->pending);
    self->pending = NULL;
    self->pending_count = self->pending_capacity = 0;
    return settled;
}

size_t
zk_qstore_reconcile_origins (zk_qstore_t *self, zk_qstore_lookup_fn *lookup, void *arg)
{
    assert (self && lookup);
    size_t settled = 0;
    uint32_t self_index = zk_qnames_intern (self->config.names, self->name, strlen (self->name));
    for (uint32_t id = 0; id < self->capacity; id++) {
        zk_qentry_t *entry = zk_qstore_entry (self, id);
        if (entry->state == ZK_QSTATE_FREE || !entry->origin)
            continue;
        const char *origin = zk_qnames_get (self->config.names, entry->origin);
        zk_qstore_t *from = origin ? lookup (arg, origin) : NULL;
        uint32_t source =
            from && from != self ? zk_qstore_find (from, entry->msgid) : ZK_QSTORE_NIL;
        if (source == ZK_QSTORE_NIL)
            continue;
        zk_qentry_t *held = zk_qstore_entry (from, source);
        if (held->state != ZK_QSTATE_QUEUED || held->put_us > entry->put_us
            || (held->flags & S_FLAG_PENDING))
            continue;
        //  The put here decided: the source's FORWARDED record was lost.
        //  What the put record says of the delivery that forwarded it.
        zk_qforward_t forward = {
            .target = self->name,
            .time_us = entry->put_us,
            .attempts = held->attempts,
        };
        char consumer[ZK_QUEUE_CONSUMER_MAX + 1] = "";
        zk_qrecord_t record;
        if (s_is_live (entry->state) && zk_qstore_read (self, id, &record) == 0) {
            forward.started_us = record.meta.started_us;
            if (record.meta.origin_attempts > forward.attempts)
                forward.attempts = record.meta.origin_attempts;
            memcpy (consumer, record.meta.consumer, record.meta.consumer_size);
            consumer[record.meta.consumer_size] = 0;
        }
        forward.consumer = consumer[0] ? consumer : NULL;
        zk_journal_record_t written;
        int rc = zk_qstore_forward (from, source, &forward, &written);
        if (rc)
            zk_error ("queue %s: cannot record a forward: %s", from->name, zk_strerror (rc));
        zk_qstore_forward_done (from, source, true, rc ? (zk_journal_pos_t){0} : written.pos,
                                self_index, entry->put_us, entry->put_us);
        char text[ZK_ID_TEXT_SIZE];
        zk_id_format (entry->msgid, text);
        zk_notice ("queue %s: message %s was forwarded to %s before a crash: done", from->name,
                   text, self->name);
        settled++;
    }
    return settled;
}
