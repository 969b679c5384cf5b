/*  zk_journal — segment files, the write buffer and group commit, the
    recovery scan, CRC-32C.

    The record (docs/protocol.md, "Journal files", is the contract):

        0   4  magic      89 5a 4a 31  ("\x89ZJ1")
        4   4  length     payload bytes, little-endian
        8   8  seq        little-endian
        16  1  type       the caller's
        17  3  reserved   zero
        20  4  crc        CRC-32C of bytes 0..19, then of the payload
        24  4  head crc   CRC-32C of bytes 0..23
        28     payload

    The header checks itself (head crc), so the scan can trust a length
    before reading that many bytes, and resynchronisation after damage
    costs one 24-byte CRC per candidate magic, not one payload CRC.

    State shared with a sync thread (written_seq, the fds waiting for an
    fdatasync, the dirty flags, the sticky failure) lives under
    state_lock; sync_lock keeps two syncs from overlapping. Everything
    else belongs to the owner thread and takes no lock.                 */

#include "zk_classes.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define S_HAVE_SSE42_PATH 1
#endif

#define S_HEADER          ZK_JOURNAL_HEADER_SIZE
#define S_OFF_LENGTH      4
#define S_OFF_SEQ         8
#define S_OFF_TYPE        16
#define S_OFF_RESERVED    17
#define S_OFF_CRC         20
#define S_OFF_HEAD_CRC    24
#define S_NAME_SIZE       32  //  "%020" PRIu64 ".seg" and a NUL
#define S_NAME_DIGITS     20
#define S_PENDING_MAX     16             //  sealed segments waiting for a sync
#define S_OPEN_SEALED_MAX 16             //  read fds kept open on sealed segments
#define S_SCAN_WINDOW     (1u << 20)     //  scan read size
#define S_OFFSET_LIMIT    0xffffffffULL  //  offsets are 32-bit

static const uint8_t s_magic[4] = {0x89, 'Z', 'J', '1'};

typedef struct {
    uint64_t id;         //  first seq when created: its file name
    int fd;              //  -1: closed (sealed segments only)
    uint64_t size;       //  bytes written
    uint64_t first_seq;  //  0: no record yet
    uint64_t last_seq;
    uint64_t records;
    uint64_t last_use;  //  read-fd eviction clock
} s_segment_t;

struct _zk_journal_t {
    char *path;
    int dir_fd;  //  holds the flock
    uint64_t segment_size;
    uint32_t max_record;
    zk_journal_record_fn *on_record;
    zk_journal_damage_fn *on_damage;
    void *arg;

    //  Owner thread
    s_segment_t *segments;  //  ascending id; the last one is active
    size_t count;
    size_t capacity;
    size_t open_sealed;  //  sealed segments with an open read fd
    uint64_t clock;
    uint8_t *buffer;  //  records for the active segment, from its size on
    size_t buffered;
    size_t buffer_capacity;
    uint64_t buffer_records;
    uint64_t buffer_first_seq;
    uint64_t next_seq;
    uint64_t appended_seq;
    zk_journal_stats_t stats;  //  syncs: atomically, from any thread

    //  Shared with the sync thread
    pthread_mutex_t state_lock;
    pthread_mutex_t sync_lock;
    uint64_t written_seq;  //  written under state_lock, by the owner only
    uint64_t synced_seq;   //  atomic
    int failed;            //  atomic; sticky error after a failed sync
    int pending_fds[S_PENDING_MAX];
    size_t pending_count;
    int sync_active_fd;  //  a dup of the active segment's fd, closed only by a sync
    bool active_dirty;   //  written since the last sync
    bool dir_dirty;      //  a segment was created or removed since the last sync
};

//  --------------------------------------------------------------------------
//  CRC-32C: polynomial 0x1EDC6F41 (reflected 0x82F63B78), init and final
//  xor 0xFFFFFFFF. Slicing-by-8 tables, or SSE4.2's crc32 instruction.

typedef uint32_t (s_crc_fn) (uint32_t crc, const uint8_t *data, size_t size);

static uint32_t s_crc_table[8][256];
static pthread_once_t s_crc_once = PTHREAD_ONCE_INIT;
static s_crc_fn *s_crc_impl;
static bool s_crc_hw;

static uint32_t
s_crc32c_sw (uint32_t crc, const uint8_t *data, size_t size)
{
    crc = ~crc;
    while (size && ((uintptr_t) data & 7)) {
        crc = s_crc_table[0][(crc ^ *data++) & 0xff] ^ (crc >> 8);
        size--;
    }
    while (size >= 8) {
        uint64_t word;
        memcpy (&word, data, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        word = __builtin_bswap64 (word);
#endif
        word ^= crc;
        crc = s_crc_table[7][word & 0xff] ^ s_crc_table[6][(word >> 8) & 0xff]
              ^ s_crc_table[5][(word >> 16) & 0xff] ^ s_crc_table[4][(word >> 24) & 0xff]
              ^ s_crc_table[3][(word >> 32) & 0xff] ^ s_crc_table[2][(word >> 40) & 0xff]
              ^ s_crc_table[1][(word >> 48) & 0xff] ^ s_crc_table[0][word >> 56];
        data += 8;
        size -= 8;
    }
    while (size--)
        crc = s_crc_table[0][(crc ^ *data++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

#ifdef S_HAVE_SSE42_PATH
__attribute__ ((target ("sse4.2"))) static uint32_t
s_crc32c_hw (uint32_t crc, const uint8_t *data, size_t size)
{
    crc = ~crc;
    while (size && ((uintptr_t) data & 7)) {
        crc = _mm_crc32_u8 (crc, *data++);
        size--;
    }
#if defined(__x86_64__)
    uint64_t wide = crc;
    while (size >= 8) {
        uint64_t word;
        memcpy (&word, data, 8);
        wide = _mm_crc32_u64 (wide, word);
        data += 8;
        size -= 8;
    }
    crc = (uint32_t) wide;
#endif
    while (size >= 4) {
        uint32_t word;
        memcpy (&word, data, 4);
        crc = _mm_crc32_u32 (crc, word);
        data += 4;
        size -= 4;
    }
    while (size--)
        crc = _mm_crc32_u8 (crc, *data++);
    return ~crc;
}
#endif

static void
s_crc_init (void)
{
    for (uint32_t byte = 0; byte < 256; byte++) {
        uint32_t crc = byte;
        for (int bit = 0; bit < 8; bit++)
            crc = crc & 1 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        s_crc_table[0][byte] = crc;
    }
    for (uint32_t byte = 0; byte < 256; byte++) {
        uint32_t crc = s_crc_table[0][byte];
        for (int slice = 1; slice < 8; slice++) {
            crc = s_crc_table[0][crc & 0xff] ^ (crc >> 8);
            s_crc_table[slice][byte] = crc;
        }
    }
    s_crc_fn *impl = s_crc32c_sw;
#ifdef S_HAVE_SSE42_PATH
    __builtin_cpu_init ();
    if (__builtin_cpu_supports ("sse4.2")) {
        impl = s_crc32c_hw;
        s_crc_hw = true;
    }
#endif
    __atomic_store_n (&s_crc_impl, impl, __ATOMIC_RELEASE);
}

static s_crc_fn *
s_crc (void)
{
    s_crc_fn *impl = __atomic_load_n (&s_crc_impl, __ATOMIC_ACQUIRE);
    if (!impl) {
        pthread_once (&s_crc_once, s_crc_init);
        impl = s_crc_impl;
    }
    return impl;
}

uint32_t
zk_crc32c (uint32_t crc, const void *data, size_t size)
{
    return s_crc () (crc, (const uint8_t *) data, size);
}

uint32_t
zk_crc32c_portable (uint32_t crc, const void *data, size_t size)
{
    pthread_once (&s_crc_once, s_crc_init);
    return s_crc32c_sw (crc, (const uint8_t *) data, size);
}

bool
zk_crc32c_hardware (void)
{
    pthread_once (&s_crc_once, s_crc_init);
    return s_crc_hw;
}

//  --------------------------------------------------------------------------
//  Record headers

typedef struct {
    uint32_t length;
    uint64_t seq;
    uint8_t type;
    uint32_t crc;
} s_header_t;

static void
s_put32 (uint8_t *at, uint32_t value)
{
    for (int i = 0; i < 4; i++)
        at[i] = (uint8_t) (value >> (8 * i));
}

static void
s_put64 (uint8_t *at, uint64_t value)
{
    for (int i = 0; i < 8; i++)
        at[i] = (uint8_t) (value >> (8 * i));
}

static uint32_t
s_get32 (const uint8_t *at)
{
    uint32_t value = 0;
    for (int i = 3; i >= 0; i--)
        value = (value << 8) | at[i];
    return value;
}

static uint64_t
s_get64 (const uint8_t *at)
{
    uint64_t value = 0;
    for (int i = 7; i >= 0; i--)
        value = (value << 8) | at[i];
    return value;
}

//  Fill bytes 0..19 of a header.
static void
s_header_start (uint8_t *header, uint8_t type, uint64_t seq, uint32_t length)
{
    memcpy (header, s_magic, 4);
    s_put32 (header + S_OFF_LENGTH, length);
    s_put64 (header + S_OFF_SEQ, seq);
    header[S_OFF_TYPE] = type;
    memset (header + S_OFF_RESERVED, 0, 3);
}

//  Fill both checksums, given the CRC already run over bytes 0..19 and
//  then the payload.
static void
s_header_finish (uint8_t *header, uint32_t crc)
{
    s_put32 (header + S_OFF_CRC, crc);
    s_put32 (header + S_OFF_HEAD_CRC, zk_crc32c (0, header, S_OFF_HEAD_CRC));
}

static uint32_t
s_record_crc (const uint8_t *header, const void *payload, size_t size)
{
    s_crc_fn *crc = s_crc ();
    return crc (crc (0, header, S_OFF_CRC), (const uint8_t *) payload, size);
}

//  Check a header on its own: magic, head crc, reserved bytes, length
//  limit. NULL when it is valid (then *header is filled), else the reason.
static const char *
s_header_check (const uint8_t *bytes, uint32_t max_record, s_header_t *header)
{
    if (memcmp (bytes, s_magic, 4) != 0)
        return "bad magic";
    if (zk_crc32c (0, bytes, S_OFF_HEAD_CRC) != s_get32 (bytes + S_OFF_HEAD_CRC))
        return "header checksum mismatch";
    if (bytes[S_OFF_RESERVED] || bytes[S_OFF_RESERVED + 1] || bytes[S_OFF_RESERVED + 2])
        return "reserved header bytes not zero";
    header->length = s_get32 (bytes + S_OFF_LENGTH);
    if (header->length > max_record)
        return "record longer than the maximum";
    header->seq = s_get64 (bytes + S_OFF_SEQ);
    if (header->seq == 0)
        return "sequence number zero";
    if (header->seq == UINT64_MAX)
        return "sequence number out of range";  //  the next seq would wrap to 0
    header->type = bytes[S_OFF_TYPE];
    header->crc = s_get32 (bytes + S_OFF_CRC);
    return NULL;
}

//  --------------------------------------------------------------------------
//  Small helpers

static int
s_errno_rc (int err)
{
    switch (err) {
        case ENOSPC:
        case EDQUOT:
        case EFBIG: return ZK_ENOSPC;
        case ENOMEM: return ZK_ENOMEM;
        default: return ZK_EIO;
    }
}

static void
s_segment_name (char *name, uint64_t id)
{
    snprintf (name, S_NAME_SIZE, "%020" PRIu64 ".seg", id);
}

//  True when name is exactly 20 digits and ".seg", naming a 64-bit id.
static bool
s_segment_name_parse (const char *name, uint64_t *id)
{
    if (strlen (name) != S_NAME_DIGITS + 4 || strcmp (name + S_NAME_DIGITS, ".seg") != 0)
        return false;
    uint64_t value = 0;
    for (int i = 0; i < S_NAME_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        uint64_t digit = (uint64_t) (name[i] - '0');
        if (value > (UINT64_MAX - digit) / 10)
            return false;
        value = value * 10 + digit;
    }
    *id = value;
    return true;
}

//  Step over done bytes of an iovec array (modified in place).
static void
s_iov_advance (struct iovec **iov_p, int *count_p, size_t done)
{
    struct iovec *iov = *iov_p;
    int count = *count_p;
    while (count > 0 && done >= iov->iov_len) {
        done -= iov->iov_len;
        iov++;
        count--;
    }
    if (count > 0) {
        iov->iov_base = (uint8_t *) iov->iov_base + done;
        iov->iov_len -= done;
    }
    *iov_p = iov;
    *count_p = count;
}

//  pwritev (writing) or preadv every byte of iov (modified) at offset,
//  resuming after short transfers. 0 or an errno value: ENODATA when a
//  read meets the end of the file. calls (may be NULL) counts syscalls.
static int
s_transfer_all (int fd, struct iovec *iov, int count, uint64_t offset, bool writing,
                uint64_t *calls)
{
    while (count > 0) {
        ssize_t done = writing ? pwritev (fd, iov, count, (off_t) offset)
                               : preadv (fd, iov, count, (off_t) offset);
        if (calls)
            (*calls)++;
        if (done < 0 && errno == EINTR)
            continue;
        if (done < 0)
            return errno;
        if (done == 0)
            return writing ? EIO : ENODATA;
        offset += (uint64_t) done;
        s_iov_advance (&iov, &count, (size_t) done);
    }
    return 0;
}

static int
s_fsync_fd (zk_journal_t *self, int fd, bool data_only)
{
    __atomic_add_fetch (&self->stats.syncs, 1, __ATOMIC_RELAXED);
    int rc = data_only ? fdatasync (fd) : fsync (fd);
    return rc == 0 ? 0 : errno;
}

static int
s_failed (zk_journal_t *self)
{
    return __atomic_load_n (&self->failed, __ATOMIC_ACQUIRE);
}

//  Make every later write fail with rc until the journal is reopened.
static void
s_fail (zk_journal_t *self, int rc)
{
    int expected = 0;
    __atomic_compare_exchange_n (&self->failed, &expected, rc, false, __ATOMIC_RELEASE,
                                 __ATOMIC_RELAXED);
}

static s_segment_t *
s_active (zk_journal_t *self)
{
    assert (self->count > 0);
    return &self->segments[self->count - 1];
}

//  The segment with this id, or NULL (binary search).
static s_segment_t *
s_segment_find (zk_journal_t *self, uint64_t id)
{
    size_t low = 0, high = self->count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (self->segments[middle].id < id)
            low = middle + 1;
        else
            high = middle;
    }
    return low < self->count && self->segments[low].id == id ? &self->segments[low] : NULL;
}

static int
s_segments_reserve (zk_journal_t *self, size_t wanted)
{
    if (wanted <= self->capacity)
        return 0;
    size_t capacity = self->capacity ? self->capacity * 2 : 16;
    while (capacity < wanted)
        capacity *= 2;
    s_segment_t *segments = realloc (self->segments, capacity * sizeof (s_segment_t));
    if (!segments)
        return ZK_ENOMEM;
    self->segments = segments;
    self->capacity = capacity;
    return 0;
}

static void
s_segment_close (zk_journal_t *self, s_segment_t *segment)
{
    if (segment->fd < 0)
        return;
    close (segment->fd);
    segment->fd = -1;
    if (segment != s_active (self))
        self->open_sealed--;
}

//  Close read fds of sealed segments, least recently used first, until
//  there is room for one more.
static void
s_evict_sealed (zk_journal_t *self)
{
    while (self->open_sealed >= S_OPEN_SEALED_MAX) {
        s_segment_t *oldest = NULL;
        for (size_t index = 0; index + 1 < self->count; index++) {
            s_segment_t *segment = &self->segments[index];
            if (segment->fd >= 0 && (!oldest || segment->last_use < oldest->last_use))
                oldest = segment;
        }
        if (!oldest)
            break;
        s_segment_close (self, oldest);
    }
}

//  An fd to read the segment with; opens a sealed one on demand.
static int
s_segment_fd (zk_journal_t *self, s_segment_t *segment, int *fd_p)
{
    segment->last_use = ++self->clock;
    if (segment->fd < 0) {
        char name[S_NAME_SIZE];
        s_segment_name (name, segment->id);
        s_evict_sealed (self);
        segment->fd = openat (self->dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (segment->fd < 0) {
            int rc = s_errno_rc (errno);
            zk_warn_limited ("journal %s: cannot open %s: %s", self->path, name, strerror (errno));
            return rc;
        }
        self->open_sealed++;
    }
    *fd_p = segment->fd;
    return 0;
}

//  --------------------------------------------------------------------------
//  Writing

//  A write at the end of the active segment failed: cut the file back to
//  its last complete record, drop every record not yet written.
static int
s_write_failed (zk_journal_t *self, int err)
{
    s_segment_t *active = s_active (self);
    int rc = s_errno_rc (err);
    self->stats.write_errors++;
    zk_warn_limited ("journal %s: write failed: %s (%" PRIu64 " unwritten records dropped)",
                     self->path, strerror (err), self->buffer_records);
    if (ftruncate (active->fd, (off_t) active->size) != 0) {
        zk_error ("journal %s: cannot cut a partial write: %s; reopen the journal", self->path,
                  strerror (errno));
        s_fail (self, ZK_EIO);
    }
    pthread_mutex_lock (&self->state_lock);
    self->active_dirty = true;
    pthread_mutex_unlock (&self->state_lock);
    self->stats.records_discarded += self->buffer_records;
    self->buffered = 0;
    self->buffer_records = 0;
    self->appended_seq = self->written_seq;
    return rc;
}

//  Bytes holding records first_seq..last_seq reached the active segment.
static void
s_written (zk_journal_t *self, size_t bytes, uint64_t records, uint64_t first_seq,
           uint64_t last_seq)
{
    s_segment_t *active = s_active (self);
    active->size += bytes;
    active->records += records;
    if (!active->first_seq)
        active->first_seq = first_seq;
    active->last_seq = last_seq;
    self->stats.bytes_written += bytes;
    pthread_mutex_lock (&self->state_lock);
    self->written_seq = last_seq;
    self->active_dirty = true;
    pthread_mutex_unlock (&self->state_lock);
}

static int
s_flush (zk_journal_t *self)
{
    int rc = s_failed (self);
    if (rc || self->buffered == 0)
        return rc;
    struct iovec iov = {self->buffer, self->buffered};
    int err = s_transfer_all (s_active (self)->fd, &iov, 1, s_active (self)->size, true,
                              &self->stats.writes);
    if (err)
        return s_write_failed (self, err);
    s_written (self, self->buffered, self->buffer_records, self->buffer_first_seq,
               self->appended_seq);
    self->buffered = 0;
    self->buffer_records = 0;
    return 0;
}

//  Create segment file id and make it the active one. The directory
//  needs an fsync before records in it count as durable (dir_dirty).
static int
s_segment_create (zk_journal_t *self, uint64_t id, int *sync_fd_p)
{
    int rc = s_segments_reserve (self, self->count + 1);
    if (rc)
        return rc;
    char name[S_NAME_SIZE];
    s_segment_name (name, id);
    int fd = openat (self->dir_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = s_errno_rc (errno);
        zk_error ("journal %s: cannot create %s: %s", self->path, name, strerror (errno));
        return rc;
    }
    int sync_fd = dup (fd);
    if (sync_fd < 0) {
        rc = s_errno_rc (errno);
        zk_error ("journal %s: cannot create %s: %s", self->path, name, strerror (errno));
        close (fd);
        unlinkat (self->dir_fd, name, 0);
        return rc;
    }
    self->segments[self->count++] = (s_segment_t){.id = id, .fd = fd};
    *sync_fd_p = sync_fd;
    return 0;
}

/*  Seal the active segment and start a new one named after the next seq.

    The old segment may hold written but unsynced bytes: its sync fd goes
    to the pending list, which the next sync works through, so a sync
    still covers everything appended before it. When the list is full
    (the caller has not synced for S_PENDING_MAX segments) we sync here
    rather than let it grow.                                            */
static int
s_roll (zk_journal_t *self)
{
    int rc = s_flush (self);
    if (rc)
        return rc;
    if (s_active (self)->size == 0)
        return 0;
    pthread_mutex_lock (&self->state_lock);
    bool full = self->pending_count == S_PENDING_MAX;
    pthread_mutex_unlock (&self->state_lock);
    if (full && (rc = zk_journal_sync_flushed (self)) != 0)
        return rc;
    int sync_fd;
    rc = s_segment_create (self, self->next_seq, &sync_fd);
    if (rc)
        return rc;
    pthread_mutex_lock (&self->state_lock);
    self->pending_fds[self->pending_count++] = self->sync_active_fd;
    self->sync_active_fd = sync_fd;
    self->active_dirty = false;
    self->dir_dirty = true;
    pthread_mutex_unlock (&self->state_lock);
    //  The old active segment's fd stays open as a read fd
    self->open_sealed++;
    self->segments[self->count - 2].last_use = ++self->clock;
    s_evict_sealed (self);
    return 0;
}

int
zk_journal_appendv (zk_journal_t *self, uint8_t type, const struct iovec *parts, int part_count,
                    zk_journal_record_t *record)
{
    assert (self);
    assert (part_count >= 0 && (part_count == 0 || parts));
    if (part_count > ZK_JOURNAL_MAX_PARTS)
        return ZK_EINVAL;
    int rc = s_failed (self);
    if (rc)
        return rc;
    size_t size = 0;
    for (int part = 0; part < part_count; part++) {
        if (parts[part].iov_len > self->max_record - size)
            return ZK_ETOOBIG;
        size += parts[part].iov_len;
    }
    if (self->next_seq == UINT64_MAX)
        return ZK_EINVAL;  //  sequence numbers exhausted

    uint64_t record_size = S_HEADER + size;
    uint64_t end = s_active (self)->size + self->buffered;
    if (end > 0 && end + record_size > self->segment_size) {
        rc = s_roll (self);
        if (rc)
            return rc;
    }
    if (self->buffered + record_size > self->buffer_capacity) {
        rc = s_flush (self);
        if (rc)
            return rc;
    }
    s_segment_t *active = s_active (self);
    uint64_t seq = self->next_seq;
    uint64_t offset = active->size + self->buffered;

    if (record_size <= self->buffer_capacity) {
        uint8_t *header = self->buffer + self->buffered;
        uint8_t *payload = header + S_HEADER;
        for (int part = 0; part < part_count; part++) {
            if (parts[part].iov_len)
                memcpy (payload, parts[part].iov_base, parts[part].iov_len);
            payload += parts[part].iov_len;
        }
        s_header_start (header, type, seq, (uint32_t) size);
        s_header_finish (header, s_record_crc (header, header + S_HEADER, size));
        if (self->buffer_records++ == 0)
            self->buffer_first_seq = seq;
        self->buffered += record_size;
        self->appended_seq = seq;
    }
    else {
        //  Larger than the whole buffer (flushed above): straight to the file
        uint8_t header[S_HEADER];
        s_header_start (header, type, seq, (uint32_t) size);
        s_crc_fn *crc_fn = s_crc ();
        uint32_t crc = crc_fn (0, header, S_OFF_CRC);
        struct iovec iov[ZK_JOURNAL_MAX_PARTS + 1];
        iov[0] = (struct iovec){header, S_HEADER};
        for (int part = 0; part < part_count; part++) {
            iov[part + 1] = parts[part];
            crc = crc_fn (crc, parts[part].iov_base, parts[part].iov_len);
        }
        s_header_finish (header, crc);
        int err = s_transfer_all (active->fd, iov, part_count + 1, active->size, true,
                                  &self->stats.writes);
        if (err)
            return s_write_failed (self, err);
        self->appended_seq = seq;
        s_written (self, record_size, 1, seq, seq);
    }
    self->next_seq++;
    self->stats.records_appended++;
    if (record) {
        record->seq = seq;
        record->type = type;
        record->pos = (zk_journal_pos_t){active->id, (uint32_t) offset, (uint32_t) size};
    }
    return 0;
}

int
zk_journal_append (zk_journal_t *self, uint8_t type, const void *payload, size_t size,
                   zk_journal_record_t *record)
{
    assert (self);
    assert (payload || size == 0);
    struct iovec part = {(void *) payload, size};
    return zk_journal_appendv (self, type, &part, 1, record);
}

int
zk_journal_flush (zk_journal_t *self)
{
    assert (self);
    return s_flush (self);
}

/*  Group commit: everything written before this call is durable when it
    returns 0. Under state_lock we take a snapshot (the highest written
    seq, the pending fds of sealed segments, whether the active segment
    and the directory are dirty) and release the lock, so the owner goes
    on appending and flushing while we fdatasync. The fds we use cannot
    be closed under us: pending and sync fds are closed only here, and
    sync_lock lets one sync run at a time. A failed fdatasync is sticky
    (the kernel may have thrown the dirty pages away), see s_fail.      */
int
zk_journal_sync_flushed (zk_journal_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->sync_lock);
    pthread_mutex_lock (&self->state_lock);
    int rc = s_failed (self);
    if (rc) {
        pthread_mutex_unlock (&self->state_lock);
        goto out_unlock;
    }
    uint64_t target = self->written_seq;
    int fds[S_PENDING_MAX];
    size_t fd_count = self->pending_count;
    memcpy (fds, self->pending_fds, fd_count * sizeof (int));
    self->pending_count = 0;
    int active_fd = self->active_dirty ? self->sync_active_fd : -1;
    self->active_dirty = false;
    bool sync_dir = self->dir_dirty;
    self->dir_dirty = false;
    pthread_mutex_unlock (&self->state_lock);

    int err = 0;
    for (size_t index = 0; index < fd_count; index++) {
        if (!err)
            err = s_fsync_fd (self, fds[index], true);
        close (fds[index]);
    }
    if (!err && active_fd >= 0)
        err = s_fsync_fd (self, active_fd, true);
    if (!err && sync_dir)
        err = s_fsync_fd (self, self->dir_fd, false);
    if (err) {
        rc = s_errno_rc (err);
        zk_error ("journal %s: sync failed: %s; refusing writes until reopened", self->path,
                  strerror (err));
        s_fail (self, rc);
        goto out_unlock;
    }
    uint64_t synced = __atomic_load_n (&self->synced_seq, __ATOMIC_RELAXED);
    if (target > synced)
        __atomic_store_n (&self->synced_seq, target, __ATOMIC_RELEASE);
out_unlock:
    pthread_mutex_unlock (&self->sync_lock);
    return rc;
}

int
zk_journal_sync (zk_journal_t *self)
{
    assert (self);
    int rc = s_flush (self);
    return rc ? rc : zk_journal_sync_flushed (self);
}

uint64_t
zk_journal_appended_seq (zk_journal_t *self)
{
    assert (self);
    return self->appended_seq;
}

uint64_t
zk_journal_written_seq (zk_journal_t *self)
{
    assert (self);
    return self->written_seq;
}

uint64_t
zk_journal_synced_seq (zk_journal_t *self)
{
    assert (self);
    return __atomic_load_n (&self->synced_seq, __ATOMIC_ACQUIRE);
}

int
zk_journal_roll (zk_journal_t *self)
{
    assert (self);
    int rc = s_failed (self);
    return rc ? rc : s_roll (self);
}

//  --------------------------------------------------------------------------
//  Reading

static int
s_read (zk_journal_t *self, zk_journal_pos_t pos, uint8_t *payload, zk_journal_record_t *record)
{
    s_segment_t *segment = s_segment_find (self, pos.segment);
    if (!segment)
        return ZK_EINVAL;
    uint8_t header[S_HEADER];
    uint64_t end = (uint64_t) pos.offset + S_HEADER + pos.size;
    if (segment == s_active (self) && pos.offset >= segment->size) {
        uint64_t at = pos.offset - segment->size;
        if (at + S_HEADER + pos.size > self->buffered)
            return ZK_EINVAL;
        memcpy (header, self->buffer + at, S_HEADER);
        if (pos.size)
            memcpy (payload, self->buffer + at + S_HEADER, pos.size);
    }
    else {
        if (end > segment->size)
            return ZK_EINVAL;
        int fd;
        int rc = s_segment_fd (self, segment, &fd);
        if (rc)
            return rc;
        struct iovec iov[2] = {{header, S_HEADER}, {payload, pos.size}};
        int err = s_transfer_all (fd, iov, 2, pos.offset, false, NULL);
        if (err) {
            rc = err == ENODATA ? ZK_ETRUNC : s_errno_rc (err);
            zk_warn_limited ("journal %s: record %" PRIu64 ":%" PRIu32 " unreadable: %s",
                             self->path, pos.segment, pos.offset, zk_strerror (rc));
            return rc;
        }
    }
    s_header_t parsed;
    const char *problem = s_header_check (header, self->max_record, &parsed);
    if (!problem && parsed.length != pos.size)
        problem = "length differs from the position's";
    if (!problem && s_record_crc (header, payload, pos.size) != parsed.crc)
        problem = "checksum mismatch";
    if (problem) {
        zk_warn_limited ("journal %s: record %" PRIu64 ":%" PRIu32 " unreadable: %s", self->path,
                         pos.segment, pos.offset, problem);
        return ZK_EPROTO;
    }
    if (record) {
        record->seq = parsed.seq;
        record->type = parsed.type;
        record->pos = pos;
    }
    return 0;
}

int
zk_journal_read (zk_journal_t *self, zk_journal_pos_t pos, void *buffer, size_t buffer_size,
                 zk_journal_record_t *record)
{
    assert (self);
    assert (buffer || buffer_size == 0);
    if (pos.size > self->max_record || pos.size > buffer_size)
        return ZK_ETOOBIG;
    return s_read (self, pos, (uint8_t *) buffer, record);
}

int
zk_journal_read_alloc (zk_journal_t *self, zk_journal_pos_t pos, void **payload_p,
                       zk_journal_record_t *record)
{
    assert (self);
    assert (payload_p);
    *payload_p = NULL;
    if (pos.size > self->max_record)
        return ZK_ETOOBIG;
    uint8_t *payload = malloc (pos.size ? pos.size : 1);
    if (!payload)
        return ZK_ENOMEM;
    int rc = s_read (self, pos, payload, record);
    if (rc) {
        free (payload);
        return rc;
    }
    *payload_p = payload;
    return 0;
}

//  --------------------------------------------------------------------------
//  Removing segments

static int
s_remove_index (zk_journal_t *self, size_t index)
{
    assert (index + 1 < self->count);
    s_segment_t *segment = &self->segments[index];
    char name[S_NAME_SIZE];
    s_segment_name (name, segment->id);
    if (unlinkat (self->dir_fd, name, 0) != 0 && errno != ENOENT) {
        int rc = s_errno_rc (errno);
        zk_error ("journal %s: cannot remove %s: %s", self->path, name, strerror (errno));
        return rc;
    }
    s_segment_close (self, segment);
    memmove (segment, segment + 1, (self->count - index - 1) * sizeof (s_segment_t));
    self->count--;
    self->stats.segments_removed++;
    pthread_mutex_lock (&self->state_lock);
    self->dir_dirty = true;
    pthread_mutex_unlock (&self->state_lock);
    return 0;
}

int
zk_journal_remove_segment (zk_journal_t *self, uint64_t segment_id)
{
    assert (self);
    s_segment_t *segment = s_segment_find (self, segment_id);
    if (!segment || segment == s_active (self))
        return ZK_EINVAL;
    return s_remove_index (self, (size_t) (segment - self->segments));
}

int
zk_journal_remove_below (zk_journal_t *self, uint64_t seq, size_t *removed_p)
{
    assert (self);
    size_t removed = 0;
    size_t index = 0;
    int rc = 0;
    while (index + 1 < self->count) {
        s_segment_t *segment = &self->segments[index];
        if (segment->records == 0 || segment->last_seq < seq) {
            rc = s_remove_index (self, index);
            if (rc)
                break;
            removed++;
        }
        else
            index++;
    }
    if (removed_p)
        *removed_p = removed;
    return rc;
}

size_t
zk_journal_segment_count (zk_journal_t *self)
{
    assert (self);
    return self->count;
}

int
zk_journal_segment_info (zk_journal_t *self, size_t index, zk_journal_segment_t *info)
{
    assert (self);
    assert (info);
    if (index >= self->count)
        return ZK_EINVAL;
    s_segment_t *segment = &self->segments[index];
    *info = (zk_journal_segment_t){
        .segment = segment->id,
        .first_seq = segment->first_seq,
        .last_seq = segment->last_seq,
        .records = segment->records,
        .size = segment->size,
        .active = index + 1 == self->count,
    };
    return 0;
}

void
zk_journal_stats (zk_journal_t *self, zk_journal_stats_t *stats)
{
    assert (self);
    assert (stats);
    *stats = self->stats;
    stats->syncs = __atomic_load_n (&self->stats.syncs, __ATOMIC_RELAXED);
    stats->segments = self->count;
    stats->disk_bytes = 0;
    for (size_t index = 0; index < self->count; index++)
        stats->disk_bytes += self->segments[index].size;
    stats->buffered_bytes = self->buffered;
}

const char *
zk_journal_path (zk_journal_t *self)
{
    assert (self);
    return self->path;
}

//  --------------------------------------------------------------------------
//  Recovery scan

//  A read-ahead window over one segment file.
typedef struct {
    int fd;
    uint64_t limit;  //  bytes of the file that are scanned
    uint8_t *data;
    size_t capacity;
    uint64_t start;  //  file offset of data[0]
    size_t length;   //  valid bytes in data
} s_window_t;

//  Make [offset, offset + need) readable in the window; need never
//  exceeds a verified header plus max_record, so growth is bounded.
//  0, ZK_ETRUNC (the file is shorter than it was), ZK_ENOMEM, ZK_EIO.
static int
s_window_ensure (s_window_t *window, uint64_t offset, size_t need)
{
    if (offset >= window->start && offset + need <= window->start + window->length)
        return 0;
    if (need > window->capacity) {
        uint8_t *data = realloc (window->data, need);
        if (!data)
            return ZK_ENOMEM;
        window->data = data;
        window->capacity = need;
    }
    uint64_t left = window->limit > offset ? window->limit - offset : 0;
    size_t want = left < window->capacity ? (size_t) left : window->capacity;
    window->start = offset;
    window->length = 0;
    while (window->length < want) {
        ssize_t got = pread (window->fd, window->data + window->length, want - window->length,
                             (off_t) (offset + window->length));
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return s_errno_rc (errno);
        if (got == 0)
            break;
        window->length += (size_t) got;
    }
    return window->length >= need ? 0 : ZK_ETRUNC;
}

//  The next offset at or after from where the magic starts and a whole
//  header fits before the limit; the limit when there is none.
static int
s_find_magic (s_window_t *window, uint64_t from, uint64_t *found_p)
{
    uint64_t offset = from;
    while (offset + S_HEADER <= window->limit) {
        int rc = s_window_ensure (window, offset, S_HEADER);
        if (rc)
            return rc;
        const uint8_t *base = window->data + (offset - window->start);
        size_t avail = (size_t) (window->start + window->length - offset);
        const uint8_t *hit = memchr (base, s_magic[0], avail);
        if (!hit) {
            offset += avail;
            continue;
        }
        offset += (uint64_t) (hit - base);
        if (offset + S_HEADER > window->limit)
            break;
        rc = s_window_ensure (window, offset, S_HEADER);
        if (rc)
            return rc;
        if (memcmp (window->data + (offset - window->start), s_magic, 4) == 0) {
            *found_p = offset;
            return 0;
        }
        offset++;
    }
    *found_p = window->limit;
    return 0;
}

typedef struct {
    s_window_t window;
    uint64_t last_seq;     //  highest seq replayed, over all segments so far
    bool stopped;          //  on_record asked to stop
    bool newest_damaged;   //  damage inside the newest segment (not a cut tail)
} s_scan_t;

//  A run of damaged bytes being collected.
typedef struct {
    bool open;
    uint64_t offset;
    uint32_t intact_headers;
    const char *reason;
} s_run_t;

static void
s_run_add (s_run_t *run, uint64_t offset, const char *reason)
{
    if (run->open)
        return;
    *run = (s_run_t){.open = true, .offset = offset, .reason = reason};
}

static void
s_run_report (zk_journal_t *self, s_segment_t *segment, s_run_t *run, uint64_t end,
              uint64_t after_seq, bool truncated)
{
    zk_journal_damage_t damage = {
        .segment = segment->id,
        .offset = run->offset,
        .size = end - run->offset,
        .after_seq = after_seq,
        .intact_headers = run->intact_headers,
        .truncated = truncated,
        .reason = run->reason,
    };
    self->stats.damaged_runs++;
    self->stats.damaged_bytes += damage.size;
    if (truncated) {
        self->stats.truncated_bytes += damage.size;
        zk_notice ("journal %s: segment %020" PRIu64 ": cut a torn tail of %" PRIu64
                   " bytes at offset %" PRIu64 " (%s)",
                   self->path, segment->id, damage.size, damage.offset, damage.reason);
    }
    else
        zk_warn_limited (
            "journal %s: segment %020" PRIu64 ": %" PRIu64 " damaged bytes at offset %" PRIu64
            " after seq %" PRIu64 " set aside (%s)",
            self->path, segment->id, damage.size, damage.offset, after_seq, damage.reason);
    if (self->on_damage)
        self->on_damage (self->arg, &damage);
    run->open = false;
}

/*  Scan one segment: hand every valid record to on_record, report damage.

    At each offset we expect a header. A header that checks out (magic,
    head crc, sane length within the file) is trusted: if its payload
    fails the crc, or its seq does not follow the previous one, the
    record is damaged and the scan skips exactly that record. Anything
    else is garbage: the scan steps forward to the next magic and tries
    again, so the work stays linear in the file size. Damaged bytes
    between two good records are reported as one run when the next good
    record is found. Damage that reaches the end of the newest segment
    is a torn write: the file is cut back to its last good record.      */
static int
s_scan_segment (zk_journal_t *self, s_segment_t *segment, bool newest, s_scan_t *scan)
{
    s_window_t *window = &scan->window;
    struct stat status;
    if (fstat (segment->fd, &status) != 0)
        return s_errno_rc (errno);
    uint64_t file_size = (uint64_t) status.st_size;
    window->fd = segment->fd;
    window->limit = file_size < S_OFFSET_LIMIT ? file_size : S_OFFSET_LIMIT;
    window->start = 0;
    window->length = 0;

    uint64_t offset = 0;
    uint64_t good_end = 0;
    s_run_t run = {false};
    while (offset < window->limit) {
        if (window->limit - offset < S_HEADER) {
            s_run_add (&run, offset, "incomplete header");
            break;
        }
        int rc = s_window_ensure (window, offset, S_HEADER);
        if (rc)
            return rc;
        s_header_t header;
        const char *problem =
            s_header_check (window->data + (offset - window->start), self->max_record, &header);
        if (!problem && header.length > window->limit - offset - S_HEADER)
            problem = "record runs past the end of the file";
        if (problem) {
            s_run_add (&run, offset, problem);
            rc = s_find_magic (window, offset + 1, &offset);
            if (rc)
                return rc;
            continue;
        }
        uint64_t record_end = offset + S_HEADER + header.length;
        rc = s_window_ensure (window, offset, S_HEADER + header.length);
        if (rc)
            return rc;
        const uint8_t *bytes = window->data + (offset - window->start);
        if (s_record_crc (bytes, bytes + S_HEADER, header.length) != header.crc)
            problem = "checksum mismatch";
        else if (header.seq <= scan->last_seq)
            problem = "sequence number out of order";
        if (problem) {
            s_run_add (&run, offset, problem);
            run.intact_headers++;
            offset = record_end;
            continue;
        }
        if (run.open) {
            s_run_report (self, segment, &run, offset, scan->last_seq, false);
            scan->newest_damaged |= newest;
        }
        zk_journal_record_t record = {
            .seq = header.seq,
            .pos = {segment->id, (uint32_t) offset, header.length},
            .type = header.type,
        };
        if (self->on_record) {
            rc = self->on_record (self->arg, &record, bytes + S_HEADER);
            if (rc) {
                scan->stopped = true;
                return rc < 0 ? rc : ZK_EINVAL;
            }
        }
        self->stats.records_replayed++;
        if (!segment->first_seq)
            segment->first_seq = header.seq;
        segment->last_seq = header.seq;
        segment->records++;
        scan->last_seq = header.seq;
        offset = record_end;
        good_end = offset;
    }
    if (!run.open && file_size > window->limit)
        s_run_add (&run, window->limit, "segment larger than 4 GiB");
    if (run.open && newest) {
        if (ftruncate (segment->fd, (off_t) good_end) != 0) {
            int rc = s_errno_rc (errno);
            zk_error ("journal %s: cannot cut the torn tail of segment %020" PRIu64 ": %s",
                      self->path, segment->id, strerror (errno));
            return rc;
        }
        s_run_report (self, segment, &run, file_size, scan->last_seq, true);
    }
    else if (run.open)
        s_run_report (self, segment, &run, file_size, scan->last_seq, false);
    segment->size = newest ? good_end : file_size;
    return 0;
}

static int
s_id_compare (const void *a, const void *b)
{
    uint64_t left = *(const uint64_t *) a, right = *(const uint64_t *) b;
    return left < right ? -1 : left > right;
}

//  The ids of the segment files in the directory, ascending. Other names
//  are left alone (and logged).
static int
s_list_segments (zk_journal_t *self, uint64_t **ids_p, size_t *count_p)
{
    int dir_fd = dup (self->dir_fd);
    DIR *dir = dir_fd >= 0 ? fdopendir (dir_fd) : NULL;
    if (!dir) {
        int rc = s_errno_rc (errno);
        zk_error ("journal %s: cannot list: %s", self->path, strerror (errno));
        if (dir_fd >= 0)
            close (dir_fd);
        return rc;
    }
    rewinddir (dir);
    uint64_t *ids = NULL;
    size_t count = 0, capacity = 0;
    int rc = 0;
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        uint64_t id;
        if (!strcmp (entry->d_name, ".") || !strcmp (entry->d_name, ".."))
            continue;
        if (!s_segment_name_parse (entry->d_name, &id)) {
            zk_warn_limited ("journal %s: ignoring %s: not a segment file name", self->path,
                             entry->d_name);
            continue;
        }
        if (count == capacity) {
            capacity = capacity ? capacity * 2 : 64;
            uint64_t *grown = realloc (ids, capacity * sizeof (uint64_t));
            if (!grown) {
                rc = ZK_ENOMEM;
                break;
            }
            ids = grown;
        }
        ids[count++] = id;
    }
    closedir (dir);
    if (rc) {
        free (ids);
        return rc;
    }
    if (count)
        qsort (ids, count, sizeof (uint64_t), s_id_compare);
    *ids_p = ids;
    *count_p = count;
    return 0;
}

//  Open, scan and fsync every segment file, oldest first.
static int
s_replay (zk_journal_t *self, s_scan_t *scan)
{
    uint64_t *ids = NULL;
    size_t count = 0;
    int rc = s_list_segments (self, &ids, &count);
    if (rc)
        return rc;
    rc = s_segments_reserve (self, count + 1);
    if (rc)
        goto out_free;
    //  A name may be a directory or a link: those are skipped, so which
    //  file is the newest is known only once every file is open
    for (size_t index = 0; index < count; index++) {
        char name[S_NAME_SIZE];
        s_segment_name (name, ids[index]);
        int fd = openat (self->dir_fd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        struct stat status;
        if (fd < 0 && (errno == ELOOP || errno == EISDIR)) {
            zk_warn ("journal %s: ignoring %s: not a regular file", self->path, name);
            continue;
        }
        if (fd < 0 || fstat (fd, &status) != 0) {
            rc = s_errno_rc (errno);
            zk_error ("journal %s: cannot open %s: %s", self->path, name, strerror (errno));
            if (fd >= 0)
                close (fd);
            goto out_free;
        }
        if (!S_ISREG (status.st_mode)) {
            zk_warn ("journal %s: ignoring %s: not a regular file", self->path, name);
            close (fd);
            continue;
        }
        self->segments[self->count++] = (s_segment_t){.id = ids[index], .fd = fd};
    }
    for (size_t index = 0; index < self->count; index++) {
        s_segment_t *segment = &self->segments[index];
        bool newest = index + 1 == self->count;
        rc = s_scan_segment (self, segment, newest, scan);
        if (rc == 0 && fdatasync (segment->fd) != 0)
            rc = s_errno_rc (errno);
        if (rc) {
            zk_error ("journal %s: %s segment %020" PRIu64 ": %s", self->path,
                      scan->stopped ? "replay stopped by the caller in" : "cannot recover",
                      segment->id, zk_strerror (rc));
            goto out_free;
        }
        if (!newest) {
            close (segment->fd);
            segment->fd = -1;
        }
    }
out_free:
    free (ids);
    return rc;
}

static void
s_destroy (zk_journal_t *self)
{
    for (size_t index = 0; index < self->count; index++)
        if (self->segments[index].fd >= 0)
            close (self->segments[index].fd);
    for (size_t index = 0; index < self->pending_count; index++)
        close (self->pending_fds[index]);
    if (self->sync_active_fd >= 0)
        close (self->sync_active_fd);
    if (self->dir_fd >= 0)
        close (self->dir_fd);
    pthread_mutex_destroy (&self->state_lock);
    pthread_mutex_destroy (&self->sync_lock);
    free (self->segments);
    free (self->buffer);
    free (self->path);
    free (self);
}

//  Resolve defaults and check limits; 0 or ZK_EINVAL (logged).
static int
s_config_apply (zk_journal_t *self, const zk_journal_config_t *config)
{
    self->segment_size =
        config->segment_size ? config->segment_size : ZK_JOURNAL_DEFAULT_SEGMENT_SIZE;
    self->max_record =
        config->max_record_size ? config->max_record_size : ZK_JOURNAL_DEFAULT_MAX_RECORD;
    self->buffer_capacity =
        config->buffer_size ? config->buffer_size : ZK_JOURNAL_DEFAULT_BUFFER_SIZE;
    self->on_record = config->on_record;
    self->on_damage = config->on_damage;
    self->arg = config->arg;
    if (self->segment_size > ZK_JOURNAL_SEGMENT_SIZE_LIMIT) {
        zk_error ("journal %s: segment size %" PRIu64 " above the limit of %u bytes", self->path,
                  self->segment_size, ZK_JOURNAL_SEGMENT_SIZE_LIMIT);
        return ZK_EINVAL;
    }
    if (self->max_record > ZK_JOURNAL_MAX_RECORD_LIMIT) {
        zk_error ("journal %s: record size %" PRIu32 " above the limit of %u bytes", self->path,
                  self->max_record, ZK_JOURNAL_MAX_RECORD_LIMIT);
        return ZK_EINVAL;
    }
    if (self->buffer_capacity < ZK_JOURNAL_MIN_BUFFER_SIZE) {
        zk_error ("journal %s: buffer size %zu below the minimum of %d bytes", self->path,
                  self->buffer_capacity, ZK_JOURNAL_MIN_BUFFER_SIZE);
        return ZK_EINVAL;
    }
    return 0;
}

//  Create the directory if missing (and make its entry durable), open
//  and lock it.
static int
s_dir_open (zk_journal_t *self)
{
    if (mkdir (self->path, 0755) == 0) {
        char *parent = strdup (self->path);
        if (!parent)
            return ZK_ENOMEM;
        char *slash = strrchr (parent, '/');
        const char *parent_path = slash ? (slash == parent ? "/" : parent) : ".";
        if (slash && slash != parent)
            *slash = 0;
        int parent_fd = open (parent_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (parent_fd >= 0) {
            fsync (parent_fd);
            close (parent_fd);
        }
        free (parent);
    }
    else if (errno != EEXIST) {
        zk_error ("journal %s: cannot create the directory: %s", self->path, strerror (errno));
        return s_errno_rc (errno);
    }
    self->dir_fd = open (self->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (self->dir_fd < 0) {
        zk_error ("journal %s: cannot open the directory: %s", self->path, strerror (errno));
        return s_errno_rc (errno);
    }
    if (flock (self->dir_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            zk_error ("journal %s: already open (by this or another process)", self->path);
            return ZK_EBUSY;
        }
        zk_error ("journal %s: cannot lock the directory: %s", self->path, strerror (errno));
        return s_errno_rc (errno);
    }
    return 0;
}

int
zk_journal_open (const char *path, const zk_journal_config_t *config, zk_journal_t **self_p)
{
    assert (path);
    assert (self_p);
    *self_p = NULL;
    zk_journal_config_t defaults = {0};
    zk_journal_t *self = calloc (1, sizeof (zk_journal_t));
    if (!self)
        return ZK_ENOMEM;
    self->dir_fd = -1;
    self->sync_active_fd = -1;
    pthread_mutex_init (&self->state_lock, NULL);
    pthread_mutex_init (&self->sync_lock, NULL);
    self->path = strdup (path);
    s_scan_t scan = {{.fd = -1}};
    int rc = self->path ? s_config_apply (self, config ? config : &defaults) : ZK_ENOMEM;
    if (rc)
        goto out_destroy;
    self->buffer = malloc (self->buffer_capacity);
    if (!self->buffer) {
        rc = ZK_ENOMEM;
        goto out_destroy;
    }
    rc = s_dir_open (self);
    if (rc)
        goto out_destroy;

    scan.window.data = malloc (S_SCAN_WINDOW);
    scan.window.capacity = S_SCAN_WINDOW;
    rc = scan.window.data ? s_replay (self, &scan) : ZK_ENOMEM;
    free (scan.window.data);
    if (rc)
        goto out_destroy;

    self->next_seq = scan.last_seq + 1;
    if (self->count == 0) {
        int sync_fd;
        rc = s_segment_create (self, self->next_seq, &sync_fd);
        if (rc)
            goto out_destroy;
        self->sync_active_fd = sync_fd;
        if (fsync (self->dir_fd) != 0) {
            rc = s_errno_rc (errno);
            zk_error ("journal %s: cannot sync the directory: %s", self->path, strerror (errno));
            goto out_destroy;
        }
    }
    else {
        s_segment_t *active = s_active (self);
        if (active->id > self->next_seq)
            self->next_seq = active->id;
        self->sync_active_fd = dup (active->fd);
        if (self->sync_active_fd < 0) {
            rc = s_errno_rc (errno);
            zk_error ("journal %s: %s", self->path, strerror (errno));
            goto out_destroy;
        }
        //  Never append after damage: a damaged header whose length ran
        //  past the end of the file would, once appends make the file
        //  long enough, be taken for an intact record at the next open and
        //  skipped over the records appended since. A fresh segment keeps
        //  the damaged one's size fixed.
        if (scan.newest_damaged) {
            if (self->next_seq <= active->id)
                self->next_seq = active->id + 1;
            rc = s_roll (self);
            if (rc)
                goto out_destroy;
        }
    }
    self->appended_seq = self->written_seq = self->synced_seq = scan.last_seq;
    if (self->stats.records_replayed || self->stats.damaged_runs)
        zk_info ("journal %s: %zu segments, %" PRIu64 " records replayed, last seq %" PRIu64,
                 self->path, self->count, self->stats.records_replayed, scan.last_seq);
    *self_p = self;
    return 0;

out_destroy:
    s_destroy (self);
    return rc;
}

void
zk_journal_destroy (zk_journal_t **self_p)
{
    assert (self_p);
    zk_journal_t *self = *self_p;
    if (!self)
        return;
    *self_p = NULL;
    uint64_t unwritten = self->buffer_records;
    int rc = s_flush (self);
    if (rc)
        zk_error ("journal %s: %" PRIu64 " appended records not written: %s", self->path, unwritten,
                  zk_strerror (rc));
    s_destroy (self);
}
