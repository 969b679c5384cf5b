/*  zk_journal — an append-only, segmented log of checksummed records.

    The storage under zkit-queue. A journal is a directory of segment
    files, each named after the sequence number of its first record
    ("00000000000000000001.seg"). A record is a 28-byte header (magic,
    payload length, 64-bit sequence number, a type byte the caller
    chooses, two CRC-32C checksums) followed by the payload; docs/
    protocol.md ("Journal files") specifies the bytes. The journal knows
    records, not messages: what a type means is the caller's business.

    Group commit. zk_journal_append only copies the record into a write
    buffer and hands back its sequence number and position; nothing is
    on disk yet. zk_journal_flush writes the buffer (one pwrite for a
    whole batch); zk_journal_sync flushes and makes everything appended
    so far durable (fdatasync; fsync of the directory after a segment
    was created or removed). The caller picks the policy: sync after
    every append, after each batch, or never. Three sequence numbers say
    how far things got: appended ≥ written ≥ synced.

    Threads. A journal belongs to one thread (the owner). The one
    exception is zk_journal_sync_flushed and zk_journal_synced_seq, which
    another thread may call while the owner appends and flushes, so the
    fdatasync of batch N overlaps the appends of batch N+1.

    Recovery. zk_journal_open scans every segment in order and hands each
    valid record to the caller (so it can rebuild its index). A damaged
    record (bad checksum, impossible length, garbage) is reported to
    on_damage, skipped, and the scan resynchronises on the next valid
    record, so every good record before and after it is kept. A torn
    tail of the newest segment (a crash in the middle of a write) is cut
    off, and reported too (truncated = true). Sequence numbers continue
    after the highest one seen.

    Errors. An action returns 0 or a negative ZK_E... code. When a write
    fails (ZK_ENOSPC for a full disk, a quota or a file size limit;
    ZK_EIO otherwise), the partly written bytes are cut off again and
    every record not yet written (seq > zk_journal_written_seq) is
    discarded; the journal stays usable and nothing already written is
    touched. (A process with a file size limit must ignore SIGXFSZ to get
    ZK_ENOSPC rather than be killed.) A failed fdatasync is different: the kernel may have dropped
    the data, so the journal refuses every later write with that error
    until it is reopened (which re-reads what really is on disk).

    Everything read from the files is treated as hostile: lengths are
    checked against the configured maximum before anything is allocated,
    and a bad record is an error code, never a crash.                   */

#ifndef ZK_JOURNAL_H_INCLUDED
#define ZK_JOURNAL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZK_JOURNAL_HEADER_SIZE          28           //  bytes before each payload
#define ZK_JOURNAL_DEFAULT_SEGMENT_SIZE (64u << 20)  //  roll to a new segment past this
#define ZK_JOURNAL_DEFAULT_MAX_RECORD   (16u << 20)  //  payload bytes of one record
#define ZK_JOURNAL_DEFAULT_BUFFER_SIZE  (1u << 20)   //  write buffer
#define ZK_JOURNAL_SEGMENT_SIZE_LIMIT   (1u << 30)   //  largest segment_size accepted
#define ZK_JOURNAL_MAX_RECORD_LIMIT     (1u << 30)   //  largest max_record_size accepted
#define ZK_JOURNAL_MIN_BUFFER_SIZE      4096         //  smallest buffer_size accepted
#define ZK_JOURNAL_MAX_PARTS            64           //  parts of one zk_journal_appendv record

typedef struct _zk_journal_t zk_journal_t;

//  Where a record lives: 16 bytes, meant to be kept in the caller's index.
//  Stays valid across reopen for as long as the segment exists.
typedef struct {
    uint64_t segment;  //  segment id: the sequence number in its file name
    uint32_t offset;   //  byte offset of the record's header in that file
    uint32_t size;     //  payload bytes
} zk_journal_pos_t;

//  One record as the journal hands it out.
typedef struct {
    uint64_t seq;          //  sequence number, strictly increasing (gaps possible)
    zk_journal_pos_t pos;  //  for zk_journal_read
    uint8_t type;          //  the caller's record type
} zk_journal_record_t;

//  A run of bytes that zk_journal_open set aside (not replayed).
typedef struct {
    uint64_t segment;         //  segment id
    uint64_t offset;          //  first damaged byte in that file
    uint64_t size;            //  damaged bytes
    uint64_t after_seq;       //  seq of the last good record before it; 0 if none
    uint32_t intact_headers;  //  records in the run whose header was intact (payload bad)
    bool truncated;           //  torn tail of the newest segment: cut off the file
    const char *reason;       //  the first problem seen. Static string.
} zk_journal_damage_t;

//  Called by zk_journal_open for every valid record, in order. payload is
//  borrowed: valid until the callback returns. Return 0 to go on, or a
//  negative ZK_E... code to stop: zk_journal_open then fails with it.
typedef int (zk_journal_record_fn) (void *arg, const zk_journal_record_t *record,
                                    const void *payload);
//  Called by zk_journal_open for every damaged run (also logged and counted).
typedef void (zk_journal_damage_fn) (void *arg, const zk_journal_damage_t *damage);

typedef struct {
    uint64_t segment_size;            //  0 = ZK_JOURNAL_DEFAULT_SEGMENT_SIZE
    uint32_t max_record_size;         //  payload bytes; 0 = ZK_JOURNAL_DEFAULT_MAX_RECORD
    uint32_t buffer_size;             //  0 = ZK_JOURNAL_DEFAULT_BUFFER_SIZE
    zk_journal_record_fn *on_record;  //  replay callback, or NULL
    zk_journal_damage_fn *on_damage;  //  damage callback, or NULL
    void *arg;                        //  passed to both
} zk_journal_config_t;

//  One segment file, for zk_journal_segment_info.
typedef struct {
    uint64_t segment;    //  segment id (its file name)
    uint64_t first_seq;  //  0 when it holds no record
    uint64_t last_seq;   //  0 when it holds no record
    uint64_t records;    //  written records (damaged runs not counted)
    uint64_t size;       //  bytes written to the file
    bool active;         //  the segment appends go to
} zk_journal_segment_t;

typedef struct {
    uint64_t records_replayed;   //  valid records found by zk_journal_open
    uint64_t records_appended;   //  since open
    uint64_t records_discarded;  //  appended but dropped by a failed write
    uint64_t bytes_written;      //  headers + payloads written since open
    uint64_t writes;             //  pwrite/pwritev calls
    uint64_t syncs;              //  fdatasync/fsync calls
    uint64_t write_errors;       //  failed writes (each also returned)
    uint64_t damaged_runs;       //  runs reported to on_damage (including torn tails)
    uint64_t damaged_bytes;
    uint64_t truncated_bytes;   //  torn-tail bytes cut off at open
    uint64_t segments;          //  segment files now
    uint64_t segments_removed;  //  since open
    uint64_t disk_bytes;        //  bytes in segment files now
    uint64_t buffered_bytes;    //  appended, not yet written
} zk_journal_stats_t;

//  Open (or create) the journal in directory path (created if missing;
//  its parent must exist), replay it through config's callbacks, cut a
//  torn tail, and make it ready for appends. config may be NULL (all
//  defaults, no callbacks); it is copied. On success 0 and the journal in
//  *self_p (caller owns it). Errors: ZK_EINVAL (bad config), ZK_EBUSY
//  (another journal object or process has it open), ZK_EIO / ZK_ENOSPC
//  (file system), ZK_ENOMEM, or what on_record returned. Logged.
int zk_journal_open (const char *path, const zk_journal_config_t *config, zk_journal_t **self_p);

//  Write what is buffered (no fdatasync: call zk_journal_sync first for
//  durability), close everything. Safe on NULL; nulls *self_p. No other
//  thread may be inside zk_journal_sync_flushed.
void zk_journal_destroy (zk_journal_t **self_p);

//  Append one record: type is the caller's, payload up to max_record_size
//  bytes (ZK_ETOOBIG beyond). The record goes into the write buffer; its
//  seq and position go to *record (may be NULL). Usually no syscall: only
//  a full buffer, a record larger than the buffer, or a segment roll
//  writes, and then it can fail as zk_journal_flush does.
int zk_journal_append (zk_journal_t *self, uint8_t type, const void *payload, size_t size,
                       zk_journal_record_t *record);

//  The same, with the payload gathered from part_count parts (at most
//  ZK_JOURNAL_MAX_PARTS), so a caller need not concatenate them first.
int zk_journal_appendv (zk_journal_t *self, uint8_t type, const struct iovec *parts, int part_count,
                        zk_journal_record_t *record);

//  Write the buffer to the active segment (one pwrite). On failure
//  (ZK_ENOSPC, ZK_EIO) the file is cut back to where the buffer began and
//  the buffered records are discarded: zk_journal_appended_seq falls back
//  to zk_journal_written_seq, and new records get new, higher seqs.
int zk_journal_flush (zk_journal_t *self);

//  Flush, then make every record appended so far durable. When it
//  returns 0, zk_journal_synced_seq () == zk_journal_appended_seq ().
int zk_journal_sync (zk_journal_t *self);

//  Make every record written so far (by zk_journal_flush) durable. The
//  one call that a second thread may make while the owner appends and
//  flushes (calls from several threads are serialised).
int zk_journal_sync_flushed (zk_journal_t *self);

//  Highest seq appended (buffered or written), written to the file, and
//  made durable. After open all three are the highest seq replayed (0 for
//  an empty journal). zk_journal_synced_seq is safe from any thread.
uint64_t zk_journal_appended_seq (zk_journal_t *self);
uint64_t zk_journal_written_seq (zk_journal_t *self);
uint64_t zk_journal_synced_seq (zk_journal_t *self);

//  Read the payload of the record at pos into buffer (buffer_size must be
//  at least pos.size, else ZK_ETOOBIG) with one pread, and check it: the
//  header must say the same length, both checksums must match. The
//  record's seq and type go to *record (may be NULL). Records still in
//  the write buffer are read from there. Errors: ZK_EINVAL (no such
//  segment, or pos outside what was written), ZK_ETOOBIG (pos.size above
//  max_record_size or the buffer), ZK_EPROTO (not a valid record there),
//  ZK_ETRUNC (the file is shorter than it was), ZK_EIO.
int zk_journal_read (zk_journal_t *self, zk_journal_pos_t pos, void *buffer, size_t buffer_size,
                     zk_journal_record_t *record);

//  The same into a new allocation of pos.size bytes (at most
//  max_record_size; at least 1 byte is allocated). Caller owns *payload_p
//  (free ()); it is NULL after an error.
int zk_journal_read_alloc (zk_journal_t *self, zk_journal_pos_t pos, void **payload_p,
                           zk_journal_record_t *record);

//  Flush and start a new active segment now (named after the next seq),
//  so the old one can be removed. Does nothing when the active segment is
//  empty.
int zk_journal_roll (zk_journal_t *self);

//  Delete one segment file. The active segment (the newest one, where
//  appends go) is never deleted: ZK_EINVAL, as for an unknown id. Positions
//  into a deleted segment then read as ZK_EINVAL. The deletion is made
//  durable by the next sync.
int zk_journal_remove_segment (zk_journal_t *self, uint64_t segment);

//  Delete every segment, except the active one, whose records all have a
//  seq below seq (empty ones too). The count removed goes to *removed_p
//  (may be NULL).
int zk_journal_remove_below (zk_journal_t *self, uint64_t seq, size_t *removed_p);

//  Number of segment files, and the index-th one, oldest first (the last
//  is the active one). 0, or ZK_EINVAL when index is out of range.
size_t zk_journal_segment_count (zk_journal_t *self);
int zk_journal_segment_info (zk_journal_t *self, size_t index, zk_journal_segment_t *info);

//  Counters since open. Owner thread.
void zk_journal_stats (zk_journal_t *self, zk_journal_stats_t *stats);

//  The directory. Borrowed.
const char *zk_journal_path (zk_journal_t *self);

//  CRC-32C (Castagnoli, as in iSCSI, RFC 3720) of data, continuing from
//  crc (0 to start): zk_crc32c (0, "123456789", 9) == 0xE3069283. Uses
//  the SSE4.2 instruction when the CPU has it.
uint32_t zk_crc32c (uint32_t crc, const void *data, size_t size);
//  The same, always with the table-driven code (slicing-by-8).
uint32_t zk_crc32c_portable (uint32_t crc, const void *data, size_t size);
//  True when zk_crc32c uses the CPU's instruction.
bool zk_crc32c_hardware (void);

#ifdef __cplusplus
}
#endif

#endif
