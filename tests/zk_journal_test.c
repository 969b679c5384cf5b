/*  zk_journal — round trips, segment rolls, replay, damage and resync,
    torn tails, hostile directories and headers, removal, full disks,
    a concurrent sync thread, CRC-32C vectors.

    Record i of a test carries payload s_payload (i): its size and bytes
    follow from i, so a replayed record is checked byte for byte against
    what was appended, without keeping copies.                           */

#include "testutil.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

//  --------------------------------------------------------------------------
//  Helpers

#define S_PAYLOAD_MAX 256

//  Payload of record i: 0..199 bytes (fixed_size when not 0), bytes from i.
static size_t
s_payload (uint64_t i, size_t fixed_size, uint8_t *buf)
{
    size_t size = fixed_size ? fixed_size : (size_t) ((i * 37) % 200);
    for (size_t j = 0; j < size; j++)
        buf[j] = (uint8_t) (i * 131 + j * 7 + 1);
    return size;
}

static uint8_t
s_type (uint64_t i)
{
    return (uint8_t) (i % 251);
}

typedef struct {
    zk_journal_record_t record;
    uint8_t payload[S_PAYLOAD_MAX];
} s_seen_t;

//  What a replay handed out.
typedef struct {
    s_seen_t *records;
    size_t count;
    size_t capacity;
    zk_journal_damage_t damages[64];
    size_t damage_count;
    size_t abort_at;  //  fail the open at this record (1-based), 0 = never
} s_replay_t;

static int
s_on_record (void *arg, const zk_journal_record_t *record, const void *payload)
{
    s_replay_t *replay = (s_replay_t *) arg;
    if (replay->abort_at && replay->count + 1 == replay->abort_at)
        return ZK_ENOMEM;
    if (replay->count == replay->capacity) {
        replay->capacity = replay->capacity ? replay->capacity * 2 : 64;
        replay->records = realloc (replay->records, replay->capacity * sizeof (s_seen_t));
        cr_assert_not_null (replay->records);
    }
    s_seen_t *seen = &replay->records[replay->count++];
    seen->record = *record;
    cr_assert_leq (record->pos.size, S_PAYLOAD_MAX);
    memcpy (seen->payload, payload, record->pos.size);
    return 0;
}

static void
s_on_damage (void *arg, const zk_journal_damage_t *damage)
{
    s_replay_t *replay = (s_replay_t *) arg;
    cr_assert_lt (replay->damage_count, 64);
    replay->damages[replay->damage_count++] = *damage;
}

static void
s_replay_reset (s_replay_t *replay)
{
    free (replay->records);
    memset (replay, 0, sizeof (*replay));
}

static int
s_open_rc (const char *dir, uint64_t segment_size, s_replay_t *replay, zk_journal_t **journal_p)
{
    zk_journal_config_t config = {.segment_size = segment_size};
    if (replay) {
        s_replay_reset (replay);
        config.on_record = s_on_record;
        config.on_damage = s_on_damage;
        config.arg = replay;
    }
    return zk_journal_open (dir, &config, journal_p);
}

static zk_journal_t *
s_open (const char *dir, uint64_t segment_size, s_replay_t *replay)
{
    zk_journal_t *journal = NULL;
    int rc = s_open_rc (dir, segment_size, replay, &journal);
    cr_assert_eq (rc, 0, "open %s: %s", dir, zk_strerror (rc));
    return journal;
}

//  Append records first..last (payloads from s_payload); their records
//  go to out[i - first] when out is not NULL.
static void
s_fill (zk_journal_t *journal, uint64_t first, uint64_t last, size_t fixed_size,
        zk_journal_record_t *out)
{
    uint8_t payload[S_PAYLOAD_MAX];
    for (uint64_t i = first; i <= last; i++) {
        size_t size = s_payload (i, fixed_size, payload);
        zk_journal_record_t record;
        int rc = zk_journal_append (journal, s_type (i), payload, size, &record);
        cr_assert_eq (rc, 0, "append %" PRIu64 ": %s", i, zk_strerror (rc));
        cr_assert_eq (record.seq, i);
        cr_assert_eq (record.pos.size, size);
        if (out)
            out[i - first] = record;
    }
}

//  A journal in dir holding records 1..count, synced (records as s_fill).
static zk_journal_t *
s_create (const char *dir, uint64_t segment_size, uint64_t count, size_t fixed_size,
          zk_journal_record_t *records)
{
    zk_journal_t *journal = s_open (dir, segment_size, NULL);
    s_fill (journal, 1, count, fixed_size, records);
    cr_assert_eq (zk_journal_sync (journal), 0);
    return journal;
}

//  The replayed record at index holds record i, payload and all.
static void
s_expect_seen (const s_replay_t *replay, size_t index, uint64_t i, size_t fixed_size)
{
    cr_assert_lt (index, replay->count);
    const s_seen_t *seen = &replay->records[index];
    uint8_t payload[S_PAYLOAD_MAX];
    size_t size = s_payload (i, fixed_size, payload);
    cr_assert_eq (seen->record.seq, i, "record %zu: seq %" PRIu64 ", expected %" PRIu64, index,
                  seen->record.seq, i);
    cr_assert_eq (seen->record.type, s_type (i));
    cr_assert_eq (seen->record.pos.size, size);
    cr_assert_eq (memcmp (seen->payload, payload, size), 0, "payload of record %" PRIu64, i);
}

//  Read record i back through its position and check it.
static void
s_expect_read (zk_journal_t *journal, zk_journal_pos_t pos, uint64_t i, size_t fixed_size)
{
    uint8_t expected[S_PAYLOAD_MAX], got[S_PAYLOAD_MAX];
    size_t size = s_payload (i, fixed_size, expected);
    zk_journal_record_t record;
    int rc = zk_journal_read (journal, pos, got, sizeof (got), &record);
    cr_assert_eq (rc, 0, "read %" PRIu64 ": %s", i, zk_strerror (rc));
    cr_assert_eq (record.seq, i);
    cr_assert_eq (record.type, s_type (i));
    cr_assert_eq (memcmp (got, expected, size), 0);
}

static char *
s_segment_path (const char *dir, uint64_t segment)
{
    return zsys_sprintf ("%s/%020" PRIu64 ".seg", dir, segment);
}

static off_t
s_file_size (const char *path)
{
    struct stat status;
    cr_assert_eq (stat (path, &status), 0, "stat %s", path);
    return status.st_size;
}

static void
s_flip_bit (const char *path, uint64_t offset, int bit)
{
    int fd = open (path, O_RDWR);
    cr_assert_geq (fd, 0);
    uint8_t byte;
    cr_assert_eq (pread (fd, &byte, 1, (off_t) offset), 1);
    byte ^= (uint8_t) (1u << bit);
    cr_assert_eq (pwrite (fd, &byte, 1, (off_t) offset), 1);
    close (fd);
}

static void
s_write_file (const char *path, const void *data, size_t size)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq (fd, 0, "create %s", path);
    cr_assert_eq (write (fd, data, size), (ssize_t) size);
    close (fd);
}

//  A header as docs/protocol.md describes it, for hand-made records.
static void
s_make_header (uint8_t *header, uint32_t length, uint64_t seq, uint8_t type, const void *payload,
               size_t payload_size)
{
    memcpy (header, "\x89ZJ1", 4);
    for (int i = 0; i < 4; i++)
        header[4 + i] = (uint8_t) (length >> (8 * i));
    for (int i = 0; i < 8; i++)
        header[8 + i] = (uint8_t) (seq >> (8 * i));
    header[16] = type;
    memset (header + 17, 0, 3);
    uint32_t crc = zk_crc32c (zk_crc32c (0, header, 20), payload, payload_size);
    for (int i = 0; i < 4; i++)
        header[20 + i] = (uint8_t) (crc >> (8 * i));
    uint32_t head_crc = zk_crc32c (0, header, 24);
    for (int i = 0; i < 4; i++)
        header[24 + i] = (uint8_t) (head_crc >> (8 * i));
}

//  --------------------------------------------------------------------------
//  CRC-32C

Test (zk_journal, crc32c_vectors)
{
    //  RFC 3720 appendix B.4, and the usual check value
    uint8_t data[48];
    cr_assert_eq (zk_crc32c (0, "123456789", 9), 0xE3069283u);
    cr_assert_eq (zk_crc32c_portable (0, "123456789", 9), 0xE3069283u);
    memset (data, 0, 32);
    cr_assert_eq (zk_crc32c (0, data, 32), 0x8A9136AAu);
    cr_assert_eq (zk_crc32c_portable (0, data, 32), 0x8A9136AAu);
    memset (data, 0xff, 32);
    cr_assert_eq (zk_crc32c (0, data, 32), 0x62A8AB43u);
    cr_assert_eq (zk_crc32c_portable (0, data, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        data[i] = (uint8_t) i;
    cr_assert_eq (zk_crc32c (0, data, 32), 0x46DD794Eu);
    cr_assert_eq (zk_crc32c_portable (0, data, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        data[i] = (uint8_t) (31 - i);
    cr_assert_eq (zk_crc32c (0, data, 32), 0x113FDB5Cu);
    cr_assert_eq (zk_crc32c_portable (0, data, 32), 0x113FDB5Cu);
    static const uint8_t iscsi_read[48] = {
        0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
        0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    cr_assert_eq (zk_crc32c (0, iscsi_read, 48), 0xD9963A56u);
    cr_assert_eq (zk_crc32c_portable (0, iscsi_read, 48), 0xD9963A56u);
    cr_assert_eq (zk_crc32c (0, NULL, 0), 0);
}

Test (zk_journal, crc32c_paths_agree)
{
    //  Both paths, every length and alignment, whole and in two pieces
    uint8_t data[1100];
    uint32_t state = 12345;
    for (size_t i = 0; i < sizeof (data); i++) {
        state = state * 1103515245u + 12345u;
        data[i] = (uint8_t) (state >> 16);
    }
    for (size_t start = 0; start < 9; start++)
        for (size_t size = 0; size + start <= 1090; size += (size < 40 ? 1 : 29)) {
            uint32_t hw = zk_crc32c (0, data + start, size);
            uint32_t sw = zk_crc32c_portable (0, data + start, size);
            cr_assert_eq (hw, sw, "start %zu size %zu", start, size);
            size_t half = size / 3;
            uint32_t chained =
                zk_crc32c (zk_crc32c (0, data + start, half), data + start + half, size - half);
            cr_assert_eq (chained, hw);
        }
    cr_log_info ("CRC-32C hardware path: %s", zk_crc32c_hardware () ? "yes" : "no");
}

//  --------------------------------------------------------------------------
//  Writing and reading

Test (zk_journal, round_trip)
{
    char *dir = tu_tmpdir ();
    char *path = zsys_sprintf ("%s/journal", dir);
    zk_journal_t *journal = s_open (path, 0, NULL);
    cr_assert_eq (zk_journal_appended_seq (journal), 0);
    cr_assert_str_eq (zk_journal_path (journal), path);

    zk_journal_record_t first, empty, gathered;
    cr_assert_eq (zk_journal_append (journal, 7, "hello", 5, &first), 0);
    cr_assert_eq (zk_journal_append (journal, 0, NULL, 0, &empty), 0);
    struct iovec parts[3] = {{"ab", 2}, {"", 0}, {"cde", 3}};
    cr_assert_eq (zk_journal_appendv (journal, 255, parts, 3, &gathered), 0);
    cr_assert_eq (first.seq, 1);
    cr_assert_eq (empty.seq, 2);
    cr_assert_eq (gathered.seq, 3);
    cr_assert_eq (first.pos.segment, 1);
    cr_assert_eq (first.pos.offset, 0);
    cr_assert_eq (empty.pos.offset, ZK_JOURNAL_HEADER_SIZE + 5);
    cr_assert_eq (gathered.pos.size, 5);
    cr_assert_eq (gathered.type, 255);

    //  Buffered: readable, not yet written
    cr_assert_eq (zk_journal_appended_seq (journal), 3);
    cr_assert_eq (zk_journal_written_seq (journal), 0);
    cr_assert_eq (zk_journal_synced_seq (journal), 0);
    char buf[16];
    zk_journal_record_t record;
    cr_assert_eq (zk_journal_read (journal, gathered.pos, buf, sizeof (buf), &record), 0);
    cr_assert_eq (memcmp (buf, "abcde", 5), 0);
    cr_assert_eq (record.seq, 3);
    cr_assert_eq (record.type, 255);

    cr_assert_eq (zk_journal_flush (journal), 0);
    cr_assert_eq (zk_journal_written_seq (journal), 3);
    cr_assert_eq (zk_journal_synced_seq (journal), 0);
    cr_assert_eq (zk_journal_sync (journal), 0);
    cr_assert_eq (zk_journal_synced_seq (journal), 3);

    cr_assert_eq (zk_journal_read (journal, first.pos, buf, sizeof (buf), &record), 0);
    cr_assert_eq (memcmp (buf, "hello", 5), 0);
    cr_assert_eq (record.type, 7);
    cr_assert_eq (zk_journal_read (journal, empty.pos, NULL, 0, &record), 0);
    cr_assert_eq (record.seq, 2);
    void *copy = NULL;
    cr_assert_eq (zk_journal_read_alloc (journal, gathered.pos, &copy, NULL), 0);
    cr_assert_eq (memcmp (copy, "abcde", 5), 0);
    free (copy);
    cr_assert_eq (zk_journal_read (journal, first.pos, buf, 4, NULL), ZK_ETOOBIG);

    zk_journal_stats_t stats;
    zk_journal_stats (journal, &stats);
    cr_assert_eq (stats.records_appended, 3);
    cr_assert_eq (stats.writes, 1);  //  one batch, one write
    cr_assert_eq (stats.segments, 1);
    cr_assert_eq (stats.disk_bytes, 3 * ZK_JOURNAL_HEADER_SIZE + 10);
    char *segment = s_segment_path (path, 1);
    cr_assert_eq (s_file_size (segment), 3 * ZK_JOURNAL_HEADER_SIZE + 10);

    //  The same directory cannot be opened twice
    zk_journal_t *twice = NULL;
    cr_assert_eq (zk_journal_open (path, NULL, &twice), ZK_EBUSY);
    cr_assert_null (twice);
    zk_journal_destroy (&journal);
    cr_assert_null (journal);
    zk_journal_destroy (&journal);
    free (segment);
    free (path);
    tu_rmdir (dir);
    free (dir);
}

Test (zk_journal, limits_and_bad_config)
{
    char *dir = tu_tmpdir ();
    zk_journal_t *journal = NULL;
    zk_journal_config_t config = {.segment_size = ZK_JOURNAL_SEGMENT_SIZE_LIMIT + 1ULL};
    cr_assert_eq (zk_journal_open (dir, &config, &journal), ZK_EINVAL);
    config = (zk_journal_config_t){.max_record_size = ZK_JOURNAL_MAX_RECORD_LIMIT + 1u};
    cr_assert_eq (zk_journal_open (dir, &config, &journal), ZK_EINVAL);
    config = (zk_journal_config_t){.buffer_size = 100};
    cr_assert_eq (zk_journal_open (dir, &config, &journal), ZK_EINVAL);
    char *missing = zsys_sprintf ("%s/no/such/parent", dir);
    cr_assert_neq (zk_journal_open (missing, NULL, &journal), 0);
    cr_assert_null (journal);

    //  Records above max_record_size are refused on write
    config = (zk_journal_config_t){.max_record_size = 20000, .buffer_size = 4096};
    cr_assert_eq (zk_journal_open (dir, &config, &journal), 0);
    uint8_t *big = calloc (1, 20001);
    cr_assert_eq (zk_journal_append (journal, 1, big, 20001, NULL), ZK_ETOOBIG);
    struct iovec parts[2] = {{big, 10000}, {big, 10001}};
    cr_assert_eq (zk_journal_appendv (journal, 1, parts, 2, NULL), ZK_ETOOBIG);
    struct iovec many[ZK_JOURNAL_MAX_PARTS + 1];
    for (int i = 0; i <= ZK_JOURNAL_MAX_PARTS; i++)
        many[i] = (struct iovec){big, 1};
    cr_assert_eq (zk_journal_appendv (journal, 1, many, ZK_JOURNAL_MAX_PARTS + 1, NULL), ZK_EINVAL);
    cr_assert_eq (zk_journal_appended_seq (journal), 0);

    //  A record larger than the write buffer goes straight to the file
    zk_journal_record_t small, large;
    for (int i = 0; i < 20000; i++)
        big[i] = (uint8_t) (i * 13);
    cr_assert_eq (zk_journal_append (journal, 1, "x", 1, &small), 0);
    cr_assert_eq (zk_journal_appendv (journal, 2, parts, 1, NULL), 0);
    cr_assert_eq (zk_journal_append (journal, 3, big, 20000, &large), 0);
    cr_assert_eq (zk_journal_written_seq (journal), 3);
    void *back = NULL;
    zk_journal_record_t record;
    cr_assert_eq (zk_journal_read_alloc (journal, large.pos, &back, &record), 0);
    cr_assert_eq (memcmp (back, big, 20000), 0);
    cr_assert_eq (record.seq, 3);
    free (back);
    //  On read, a size above the maximum is refused before any allocation
    zk_journal_pos_t huge = large.pos;
    huge.size = UINT32_MAX;
    cr_assert_eq (zk_journal_read_alloc (journal, huge, &back, NULL), ZK_ETOOBIG);
    cr_assert_null (back);
    zk_journal_destroy (&journal);

    //  ... and a journal reopened with a smaller maximum refuses the big one
    config.max_record_size = 5000;
    s_replay_t replay = {0};
    config.on_record = s_on_record;
    config.on_damage = s_on_damage;
    config.arg = &replay;
    cr_assert_eq (zk_journal_open (dir, &config, &journal), 0);
    cr_assert_eq (replay.count, 1);
    cr_assert_eq (replay.damage_count, 1);  //  the 10000- and 20000-byte records: a torn tail
    cr_assert (replay.damages[0].truncated);
    zk_journal_destroy (&journal);
    s_replay_reset (&replay);
    free (big);
    free (missing);
    tu_rmdir (dir);
    free (dir);
}

Test (zk_journal, many_records_roll_segments)
{
    char *dir = tu_tmpdir ();
    size_t count = 2000;
    zk_journal_record_t *records = calloc (count, sizeof (zk_journal_record_t));
    zk_journal_t *journal = s_create (dir, 4096, count, 0, records);

    size_t segments = zk_journal_segment_count (journal);
    cr_assert_gt (segments, 20, "only %zu segments", segments);
    uint64_t next_first = 1;
    uint64_t total = 0;
    for (size_t index = 0; index < segments; index++) {
        zk_journal_segment_t info;
        cr_assert_eq (zk_journal_segment_info (journal, index, &info), 0);
        cr_assert_eq (info.first_seq, next_first);
        cr_assert_eq (info.segment, info.first_seq);
        cr_assert_eq (info.active, index + 1 == segments);
        cr_assert_leq (info.size, 4096);
        next_first = info.last_seq + 1;
        total += info.records;
        char *path = s_segment_path (dir, info.segment);
        cr_assert_eq ((uint64_t) s_file_size (path), info.size);
        free (path);
    }
    cr_assert_eq (total, count);
    zk_journal_segment_t info;
    cr_assert_eq (zk_journal_segment_info (journal, segments, &info), ZK_EINVAL);
    for (size_t i = 1; i <= count; i++)
        s_expect_read (journal, records[i - 1].pos, i, 0);
    zk_journal_destroy (&journal);
    free (records);
    tu_rmdir (dir);
    free (dir);
}

Test (zk_journal, reopen_replays_in_order)
{
    char *dir = tu_tmpdir ();
    size_t count = 700;
    zk_journal_record_t *records = calloc (count + 1, sizeof (zk_journal_record_t));
    zk_journal_t *journal = s_create (dir, 8192, count, 0, records);
    zk_journal_destroy (&journal);

    s_replay_t replay = {0};
    journal = s_open (dir, 8192, &replay);
    cr_assert_eq (replay.count, count);
    cr_assert_eq (replay.damage_count, 0);
    for (size_t i = 1; i <= count; i++) {
        s_expect_seen (&replay, i - 1, i, 0);
        //  Positions survive a reopen
        cr_assert_eq (replay.records[i - 1].record.pos.segment, records[i - 1].pos.segment);
        cr_assert_eq (replay.records[i - 1].record.pos.offset, records[i - 1].pos.offset);
    }
    cr_assert_eq (zk_journal_appended_seq (journal), count);
    cr_assert_eq (zk_journal_synced_seq (journal), count);
    s_expect_read (journal, records[10].pos, 11, 0);

    //  Appends go on after the highest seq, in the same active segment
    s_fill (journal, count + 1, count + 1, 0, records + count);
    cr_assert_eq (records[count].pos.segment, records[count - 1].pos.segment);
    zk_journal_destroy (&journal);  //  flushes, no sync

    journal = s_open (dir, 8192, &replay);
    cr_assert_eq (replay.count, count + 1);
    s_expect_seen (&replay, count, count + 1, 0);
    zk_journal_stats_t stats;
    zk_journal_stats (journal, &stats);
    cr_assert_eq (stats.records_replayed, count + 1);
    zk_journal_destroy (&journal);

    //  A replay callback can stop the open; the lock is released after
    replay.abort_at = 5;
    zk_journal_config_t config = {.on_record = s_on_record, .arg = &replay};
    replay.count = 0;
    cr_assert_eq (zk_journal_open (dir, &config, &journal), ZK_ENOMEM);
    cr_assert_null (journal);
    journal = s_open (dir, 8192, NULL);
    zk_journal_destroy (&journal);

    s_replay_reset (&replay);
    free (records);
    tu_rmdir (dir);
    free (dir);
}

//  --------------------------------------------------------------------------
//  Damage

//  Flip one bit of the middle record of the first (sealed) and of the
//  newest segment: each is reported once, every other record replayed.
Test (zk_journal, bit_flip_sets_aside_one_record)
{
    char *dir = tu_tmpdir ();
    size_t count = 100;
    zk_journal_record_t records[100];
    zk_journal_t *journal = s_create (dir, 2048, count, 100, records);
    zk_journal_segment_t sealed, newest;
    cr_assert_eq (zk_journal_segment_info (journal, 0, &sealed), 0);
    cr_assert_eq (
        zk_journal_segment_info (journal, zk_journal_segment_count (journal) - 1, &newest), 0);
    cr_assert_geq (sealed.records, 10);
    cr_assert_geq (newest.records, 3, "newest segment has %" PRIu64 " records", newest.records);
    zk_journal_destroy (&journal);

    uint64_t bad_sealed = sealed.first_seq + sealed.records / 2;
    uint64_t bad_newest = newest.first_seq + newest.records / 2;
    char *sealed_path = s_segment_path (dir, sealed.segment);
    char *newest_path = s_segment_path (dir, newest.segment);
    s_flip_bit (sealed_path, records[bad_sealed - 1].pos.offset + ZK_JOURNAL_HEADER_SIZE + 50, 3);
    s_flip_bit (newest_path, records[bad_newest - 1].pos.offset + ZK_JOURNAL_HEADER_SIZE + 1, 0);

    s_replay_t replay = {0};
    journal = s_open (dir, 2048, &replay);
    cr_assert_eq (replay.count, count - 2);
    cr_assert_eq (replay.damage_count, 2);
    const zk_journal_damage_t *first = &replay.damages[0];
    cr_assert_eq (first->segment, sealed.segment);
    cr_assert_eq (first->offset, records[bad_sealed - 1].pos.offset);
    cr_assert_eq (first->size, ZK_JOURNAL_HEADER_SIZE + 100);
    cr_assert_eq (first->after_seq, bad_sealed - 1);
    cr_assert_eq (first->intact_headers, 1);
    cr_assert_not (first->truncated);
    cr_assert_str_eq (first->reason, "checksum mismatch");
    cr_assert_eq (replay.damages[1].segment, newest.segment);
    cr_assert_eq (replay.damages[1].after_seq, bad_newest - 1);
    cr_assert_not (replay.damages[1].truncated);
    size_t index = 0;
    for (uint64_t i = 1; i <= count; i++)
        if (i != bad_sealed && i != bad_newest)
            s_expect_seen (&replay, index++, i, 100);

    //  A damaged record reads as an error, not as data
    uint8_t buf[S_PAYLOAD_MAX];
    cr_assert_eq (zk_journal_read (journal, records[bad_sealed - 1].pos, buf, sizeof (buf), NULL),
                  ZK_EPROTO);
    s_expect_read (journal, records[bad_sealed].pos, bad_sealed + 1, 100);
    //  The damaged record in the newest segment was not cut off
    cr_assert_eq ((uint64_t) s_file_size (newest_path), newest.size);
    zk_journal_stats_t stats;
    zk_journal_stats (journal, &stats);
    cr_assert_eq (stats.damaged_runs, 2);
    cr_assert_eq (stats.truncated_bytes, 0);
    zk_journal_destroy (&journal);

    s_replay_reset (&replay);
    free (sealed_path);
    free (newest_path);
    tu_rmdir (dir);
    free (dir);
}

//  A bit flip in a header (length), and garbage with a fake magic inserted
//  between two records: the scan resynchronises on the next record.
Test (zk_journal, damaged_header_and_garbage_resync)
{
    char *dir = tu_tmpdir ();
    zk_journal_record_t records[30];
    zk_journal_t *journal = s_create (dir, 0, 30, 0, records);
    zk_journal_destroy (&journal);

    char *path = s_segment_path (dir, 1);
    s_flip_bit (path, records[9].pos.offset + 5, 1);  //  record 10's length
    char *bytes = tu_slurp (path);
    size_t size = (size_t) s_file_size (path);
    cr_assert_not_null (bytes);
    //  Rewrite with 61 bytes of garbage (holding a magic) before record 20
    size_t cut = records[19].pos.offset;
    uint8_t garbage[61];
    for (size_t i = 0; i < sizeof (garbage); i++)
        garbage[i] = (uint8_t) (i * 29 + 3);
    memcpy (garbage + 17, "\x89ZJ1", 4);
    int fd = open (path, O_WRONLY | O_TRUNC);
    cr_assert_geq (fd, 0);
    cr_assert_eq (write (fd, bytes, cut), (ssize_t) cut);
    cr_assert_eq (write (fd, garbage, sizeof (garbage)), (ssize_t) sizeof (garbage));
    cr_assert_eq (write (fd, bytes + cut, size - cut), (ssize_t) (size - cut));
    close (fd);

    s_replay_t replay = {0};
    journal = s_open (dir, 0, &replay);
    cr_assert_eq (replay.count, 29);
    cr_assert_eq (replay.damage_count, 2);
    cr_assert_eq (replay.damages[0].offset, records[9].pos.offset);
    cr_assert_eq (replay.damages[0].size, records[10].pos.offset - records[9].pos.offset);
    cr_assert_eq (replay.damages[0].after_seq, 9);
    cr_assert_eq (replay.damages[0].intact_headers, 0);
    cr_assert_str_eq (replay.damages[0].reason, "header checksum mismatch");
    cr_assert_eq (replay.damages[1].offset, cut);
    cr_assert_eq (replay.damages[1].size, sizeof (garbage));
    cr_assert_eq (replay.damages[1].after_seq, 19);
    cr_assert_str_eq (replay.damages[1].reason, "bad magic");
    size_t index = 0;
    for (uint64_t i = 1; i <= 30; i++)
        if (i != 10)
            s_expect_seen (&replay, index++, i, 0);
    //  Appends continue after the last record
    s_fill (journal, 31, 31, 0, NULL);
    cr_assert_eq (zk_journal_sync (journal), 0);
    zk_journal_destroy (&journal);
    journal = s_open (dir, 0, &replay);
    cr_assert_eq (replay.count, 30);
    s_expect_seen (&replay, 29, 31, 0);
    zk_journal_destroy (&journal);

    s_replay_reset (&replay);
    free (bytes);
    free (path);
    tu_rmdir (dir);
    free (dir);
}

//  Cut the last record at every byte: the earlier records stay, the torn
//  bytes are cut off, appends continue and replay after them.
Test (zk_journal, truncated_tail_at_every_offset)
{
    zk_log_set_level (ZK_LOG_WARN);  //  no notice for each of the 127 cuts
    char *dir = tu_tmpdir ();
    char *source = zsys_sprintf ("%s/source", dir);
    zk_journal_record_t records[5];
    zk_journal_t *journal = s_create (source, 0, 5, 100, records);
    zk_journal_destroy (&journal);
    char *source_segment = s_segment_path (source, 1);
    uint8_t *bytes = (uint8_t *) tu_slurp (source_segment);
    cr_assert_not_null (bytes);
    uint64_t last_start = records[4].pos.offset;
    uint64_t record_size = ZK_JOURNAL_HEADER_SIZE + 100;
    cr_assert_eq ((uint64_t) s_file_size (source_segment), last_start + record_size);

    s_replay_t replay = {0};
    for (uint64_t cut = 0; cut < record_size; cut++) {
        char *copy = zsys_sprintf ("%s/cut-%" PRIu64, dir, cut);
        cr_assert_eq (mkdir (copy, 0755), 0);
        char *segment = s_segment_path (copy, 1);
        s_write_file (segment, bytes, last_start + cut);

        journal = s_open (copy, 0, &replay);
        cr_assert_eq (replay.count, 4, "cut %" PRIu64 ": %zu records", cut, replay.count);
        for (uint64_t i = 1; i <= 4; i++)
            s_expect_seen (&replay, i - 1, i, 100);
        if (cut == 0)
            cr_assert_eq (replay.damage_count, 0);
        else {
            cr_assert_eq (replay.damage_count, 1, "cut %" PRIu64, cut);
            cr_assert (replay.damages[0].truncated);
            cr_assert_eq (replay.damages[0].offset, last_start);
            cr_assert_eq (replay.damages[0].size, cut);
            cr_assert_eq (replay.damages[0].after_seq, 4);
        }
        cr_assert_eq ((uint64_t) s_file_size (segment), last_start, "cut %" PRIu64, cut);
        cr_assert_eq (zk_journal_appended_seq (journal), 4);

        zk_journal_record_t record;
        uint8_t payload[S_PAYLOAD_MAX];
        size_t size = s_payload (1000 + cut, 100, payload);
        cr_assert_eq (zk_journal_append (journal, 9, payload, size, &record), 0);
        cr_assert_eq (record.seq, 5);
        cr_assert_eq (record.pos.offset, last_start);
        cr_assert_eq (zk_journal_sync (journal), 0);
        zk_journal_destroy (&journal);

        journal = s_open (copy, 0, &replay);
        cr_assert_eq (replay.count, 5);
        cr_assert_eq (replay.damage_count, 0);
        cr_assert_eq (replay.records[4].record.seq, 5);
        cr_assert_eq (memcmp (replay.records[4].payload, payload, size), 0);
        zk_journal_destroy (&journal);
        free (segment);
        free (copy);
    }
    s_replay_reset (&replay);
    free (bytes);
    free (source_segment);
    free (source);
    tu_rmdir (dir);
    free (dir);
}

//  Files that are not segments are left alone; a garbage segment, a
//  zero-length one and a copy of a segment under another name are
//  reported or skipped, and every real record is replayed.
Test (zk_journal, hostile_directory)
{
    char *dir = tu_tmpdir ();
    zk_journal_t *journal = s_create (dir, 1024, 40, 50, NULL);
    size_t segments = zk_journal_segment_count (journal);
    cr_assert_geq (segments, 3);
    zk_journal_segment_t first, second;
    zk_journal_segment_info (journal, 0, &first);
    zk_journal_segment_info (journal, 1, &second);
    zk_journal_destroy (&journal);

    char *junk = zsys_sprintf ("%s/README", dir);
    s_write_file (junk, "not a segment\n", 14);
    char *short_name = zsys_sprintf ("%s/123.seg", dir);
    s_write_file (short_name, "\x89ZJ1", 4);
    char *subdir = s_segment_path (dir, 2);
    cr_assert_eq (mkdir (subdir, 0755), 0);
    char *link = s_segment_path (dir, 3);
    cr_assert_eq (symlink ("/etc/passwd", link), 0);
    //  Garbage named like a segment, between the first two
    char *garbage = s_segment_path (dir, 4);
    uint8_t noise[5000];
    uint32_t state = 99;
    for (size_t i = 0; i < sizeof (noise); i++) {
        state = state * 1664525u + 1013904223u;
        noise[i] = (uint8_t) (state >> 24);
    }
    s_write_file (garbage, noise, sizeof (noise));
    char *empty = s_segment_path (dir, 5);
    s_write_file (empty, "", 0);
    //  The first segment again, under a later name: its seqs are stale
    char *first_path = s_segment_path (dir, first.segment);
    char *first_bytes = tu_slurp (first_path);
    char *copy = s_segment_path (dir, second.segment + 1);
    s_write_file (copy, first_bytes, first.size);

    s_replay_t replay = {0};
    journal = s_open (dir, 1024, &replay);
    cr_assert_eq (replay.count, 40);
    for (uint64_t i = 1; i <= 40; i++)
        s_expect_seen (&replay, i - 1, i, 50);
    cr_assert_eq (replay.damage_count, 2);
    cr_assert_eq (replay.damages[0].segment, 4);
    cr_assert_eq (replay.damages[0].size, sizeof (noise));
    cr_assert_eq (replay.damages[1].segment, second.segment + 1);
    cr_assert_eq (replay.damages[1].intact_headers, first.records);
    cr_assert_str_eq (replay.damages[1].reason, "sequence number out of order");
    //  Appends continue after the highest seq
    zk_journal_record_t record;
    cr_assert_eq (zk_journal_append (journal, 1, "z", 1, &record), 0);
    cr_assert_eq (record.seq, 41);
    cr_assert_eq (zk_journal_sync (journal), 0);
    zk_journal_destroy (&journal);
    char *junk_text = tu_slurp (junk);
    cr_assert_str_eq (junk_text, "not a segment\n");
    free (junk_text);

    free (first_bytes);
    free (copy);
    free (first_path);
    free (empty);
    free (garbage);
    free (link);
    free (subdir);
    free (short_name);
    free (junk);
    s_replay_reset (&replay);
    tu_rmdir (dir);
    free (dir);
}

//  A zero-length newest segment (a crash right after a roll) becomes the
//  active one; seqs continue from its name.
Test (zk_journal, zero_length_newest_segment)
{
    char *dir = tu_tmpdir ();
    zk_journal_t *journal = s_create (dir, 0, 10, 0, NULL);
    zk_journal_destroy (&journal);
    char *empty = s_segment_path (dir, 100);
    s_write_file (empty, "", 0);

    s_replay_t replay = {0};
    journal = s_open (dir, 0, &replay);
    cr_assert_eq (replay.count, 10);
    cr_assert_eq (replay.damage_count, 0);
    cr_assert_eq (zk_journal_segment_count (journal), 2);
    zk_journal_record_t record;
    cr_assert_eq (zk_journal_append (journal, 1, "a", 1, &record), 0);
    cr_assert_eq (record.seq, 100);
    cr_assert_eq (record.pos.segment, 100);
    cr_assert_eq (zk_journal_sync (journal), 0);
    zk_journal_destroy (&journal);
    journal = s_open (dir, 0, &replay);
    cr_assert_eq (replay.count, 11);
    cr_assert_eq (replay.records[10].record.seq, 100);
    zk_journal_destroy (&journal);
    s_replay_reset (&replay);
    free (empty);
    tu_rmdir (dir);
    free (dir);
}

static uint64_t
s_vm_size (void)
{
    char *status = tu_slurp ("/proc/self/status");
    cr_assert_not_null (status);
    char *line = strstr (status, "VmSize:");
    cr_assert_not_null (line);
    uint64_t kib = strtoull (line + 7, NULL, 10);
    free (status);
    return kib * 1024;
}

//  Headers that check out but claim 4 GiB, or 1 GiB past the end of the
//  file: refused without allocating (the address space is capped to
//  make sure), and the records around them replayed.
Test (zk_journal, huge_length_refused_without_allocating)
{
    char *dir = tu_tmpdir ();
    zk_journal_config_t config = {.max_record_size = ZK_JOURNAL_MAX_RECORD_LIMIT};
    zk_journal_t *journal = NULL;
    cr_assert_eq (zk_journal_open (dir, &config, &journal), 0);
    zk_journal_record_t records[3];
    s_fill (journal, 1, 3, 40, records);
    cr_assert_eq (zk_journal_sync (journal), 0);
    zk_journal_destroy (&journal);

    //  Between records 1 and 2: a 4 GiB claim; after record 3: a 1 GiB one
    char *path = s_segment_path (dir, 1);
    uint8_t *bytes = (uint8_t *) tu_slurp (path);
    size_t record_size = ZK_JOURNAL_HEADER_SIZE + 40;
    uint8_t four_gib[ZK_JOURNAL_HEADER_SIZE + 8], one_gib[ZK_JOURNAL_HEADER_SIZE + 8];
    s_make_header (four_gib, UINT32_MAX, 2, 1, "", 0);
    memset (four_gib + ZK_JOURNAL_HEADER_SIZE, 0xaa, 8);
    s_make_header (one_gib, ZK_JOURNAL_MAX_RECORD_LIMIT, 4, 1, "", 0);
    memset (one_gib + ZK_JOURNAL_HEADER_SIZE, 0xbb, 8);
    int fd = open (path, O_WRONLY | O_TRUNC);
    cr_assert_eq (write (fd, bytes, record_size), (ssize_t) record_size);
    cr_assert_eq (write (fd, four_gib, sizeof (four_gib)), (ssize_t) sizeof (four_gib));
    cr_assert_eq (write (fd, bytes + record_size, 2 * record_size), (ssize_t) (2 * record_size));
    cr_assert_eq (write (fd, one_gib, sizeof (one_gib)), (ssize_t) sizeof (one_gib));
    close (fd);

    struct rlimit saved, capped;
    cr_assert_eq (getrlimit (RLIMIT_AS, &saved), 0);
    capped = saved;
    capped.rlim_cur = s_vm_size () + (256u << 20);
    cr_assert_eq (setrlimit (RLIMIT_AS, &capped), 0);
    void *probe = malloc ((size_t) 1 << 30);
    cr_assert_null (probe, "the address-space cap does not hold");

    s_replay_t replay = {0};
    config.on_record = s_on_record;
    config.on_damage = s_on_damage;
    config.arg = &replay;
    int rc = zk_journal_open (dir, &config, &journal);
    cr_assert_eq (rc, 0, "open: %s", zk_strerror (rc));
    cr_assert_eq (replay.count, 3);
    for (uint64_t i = 1; i <= 3; i++)
        s_expect_seen (&replay, i - 1, i, 40);
    cr_assert_eq (replay.damage_count, 2);
    cr_assert_eq (replay.damages[0].offset, record_size);
    cr_assert_eq (replay.damages[0].size, sizeof (four_gib));
    cr_assert_str_eq (replay.damages[0].reason, "record longer than the maximum");
    cr_assert (replay.damages[1].truncated);
    cr_assert_str_eq (replay.damages[1].reason, "record runs past the end of the file");
    //  A position claiming the maximum is refused before reading
    zk_journal_pos_t pos = replay.records[0].record.pos;
    pos.size = ZK_JOURNAL_MAX_RECORD_LIMIT;
    void *payload = NULL;
    cr_assert_eq (zk_journal_read_alloc (journal, pos, &payload, NULL), ZK_ENOMEM);
    pos.size = ZK_JOURNAL_MAX_RECORD_LIMIT + 1u;
    cr_assert_eq (zk_journal_read_alloc (journal, pos, &payload, NULL), ZK_ETOOBIG);
    zk_journal_destroy (&journal);
    setrlimit (RLIMIT_AS, &saved);

    s_replay_reset (&replay);
    free (bytes);
    free (path);
    tu_rmdir (dir);
    free (dir);
}

//  Positions that point nowhere, or at the wrong bytes, are errors.
Test (zk_journal, hostile_positions)
{
    char *dir = tu_tmpdir ();
    zk_journal_t *journal = s_open (dir, 0, NULL);
    zk_journal_record_t records[4];
    s_fill (journal, 1, 4, 60, records);
    cr_assert_eq (zk_journal_flush (journal), 0);
    s_fill (journal, 5, 5, 60, NULL);  //  stays buffered
    uint8_t buf[S_PAYLOAD_MAX];
    zk_journal_pos_t pos = records[1].pos;

    pos.segment = 77;
    cr_assert_eq (zk_journal_read (journal, pos, buf, sizeof (buf), NULL), ZK_EINVAL);
    pos = records[1].pos;
    pos.offset += 1;
    cr_assert_eq (zk_journal_read (journal, pos, buf, sizeof (buf), NULL), ZK_EPROTO);
    pos = records[1].pos;
    pos.size -= 1;
    cr_assert_eq (zk_journal_read (journal, pos, buf, sizeof (buf), NULL), ZK_EPROTO);
    pos = records[3].pos;
    pos.offset = UINT32_MAX - 10;
    cr_assert_eq (zk_journal_read (journal, pos, buf, sizeof (buf), NULL), ZK_EINVAL);
    pos = records[3].pos;
    pos.size += 1;  //  straddles written and buffered bytes
    cr_assert_eq (zk_journal_read (journal, pos, buf, sizeof (buf), NULL), ZK_EINVAL);
    s_expect_read (journal, records[3].pos, 4, 60);

    //  Bytes changed on disk behind the journal's back
    char *path = s_segment_path (dir, 1);
    s_flip_bit (path, records[2].pos.offset + ZK_JOURNAL_HEADER_SIZE + 7, 5);
    cr_assert_eq (zk_journal_read (journal, records[2].pos, buf, sizeof (buf), NULL), ZK_EPROTO);
    s_flip_bit (path, records[2].pos.offset + 8, 0);  //  and its seq
    cr_assert_eq (zk_journal_read (journal, records[2].pos, buf, sizeof (buf), NULL), ZK_EPROTO);
    //  ... or cut short
    cr_assert_eq (truncate (path, records[1].pos.offset + 10), 0);
    cr_assert_eq (zk_journal_read (journal, records[1].pos, buf, sizeof (buf), NULL), ZK_ETRUNC);
    s_expect_read (journal, records[0].pos, 1, 60);
    zk_journal_destroy (&journal);
    free (path);
    tu_rmdir (dir);
    free (dir);
}

//  --------------------------------------------------------------------------
//  Removing segments

Test (zk_journal, remove_segments)
{
    char *dir = tu_tmpdir ();
    zk_journal_record_t records[60];
    zk_journal_t *journal = s_create (dir, 1024, 60, 50, records);
    size_t segments = zk_journal_segment_count (journal);
    cr_assert_geq (segments, 5);
    zk_journal_segment_t first, second, third, active;
    zk_journal_segment_info (journal, 0, &first);
    zk_journal_segment_info (journal, 1, &second);
    zk_journal_segment_info (journal, 2, &third);
    zk_journal_segment_info (journal, segments - 1, &active);

    cr_assert_eq (zk_journal_remove_segment (journal, active.segment), ZK_EINVAL);
    cr_assert_eq (zk_journal_remove_segment (journal, 999999), ZK_EINVAL);
    cr_assert_eq (zk_journal_remove_segment (journal, second.segment), 0);
    char *second_path = s_segment_path (dir, second.segment);
    cr_assert_eq (access (second_path, F_OK), -1);
    uint8_t buf[S_PAYLOAD_MAX];
    cr_assert_eq (
        zk_journal_read (journal, records[second.first_seq - 1].pos, buf, sizeof (buf), NULL),
        ZK_EINVAL);
    s_expect_read (journal, records[third.first_seq - 1].pos, third.first_seq, 50);
    cr_assert_eq (zk_journal_segment_count (journal), segments - 1);

    //  Everything below the third segment's last record: first and third go
    size_t removed = 0;
    cr_assert_eq (zk_journal_remove_below (journal, third.last_seq + 1, &removed), 0);
    cr_assert_eq (removed, 2);
    cr_assert_eq (zk_journal_segment_count (journal), segments - 3);
    zk_journal_stats_t stats;
    zk_journal_stats (journal, &stats);
    cr_assert_eq (stats.segments_removed, 3);

    //  Everything: the active segment stays; a roll lets it go too
    cr_assert_eq (zk_journal_remove_below (journal, UINT64_MAX, &removed), 0);
    cr_assert_eq (zk_journal_segment_count (journal), 1);
    cr_assert_eq (zk_journal_roll (journal), 0);
    cr_assert_eq (zk_journal_segment_count (journal), 2);
    cr_assert_eq (zk_journal_roll (journal), 0);  //  empty active: no new segment
    cr_assert_eq (zk_journal_segment_count (journal), 2);
    cr_assert_eq (zk_journal_remove_below (journal, 61, &removed), 0);
    cr_assert_eq (removed, 1);
    zk_journal_segment_info (journal, 0, &active);
    cr_assert_eq (active.segment, 61);
    cr_assert (active.active);
    cr_assert_eq (zk_journal_sync (journal), 0);
    zk_journal_destroy (&journal);

    s_replay_t replay = {0};
    journal = s_open (dir, 1024, &replay);
    cr_assert_eq (replay.count, 0);
    cr_assert_eq (zk_journal_appended_seq (journal), 0);
    zk_journal_record_t record;
    cr_assert_eq (zk_journal_append (journal, 1, "q", 1, &record), 0);
    cr_assert_eq (record.seq, 61);  //  from the active segment's name
    zk_journal_destroy (&journal);
    s_replay_reset (&replay);
    free (second_path);
    tu_rmdir (dir);
    free (dir);
}

//  A segment that cannot be created (no file descriptor left) fails the
//  append that needed it; nothing is lost, and the journal goes on once
//  descriptors are back.
Test (zk_journal, roll_failure_keeps_journal_usable)
{
    char *dir = tu_tmpdir ();
    zk_journal_t *journal = s_create (dir, 1024, 10, 50, NULL);

    struct rlimit saved, limited;
    cr_assert_eq (getrlimit (RLIMIT_NOFILE, &saved), 0);
    limited = saved;
    limited.rlim_cur = 256;
    cr_assert_eq (setrlimit (RLIMIT_NOFILE, &limited), 0);
    int fillers[256];
    size_t filler_count = 0;
    while (filler_count < 256) {
        int fd = open ("/dev/null", O_RDONLY);
        if (fd < 0)
            break;
        fillers[filler_count++] = fd;
    }
    cr_assert_eq (errno, EMFILE);

    uint8_t payload[S_PAYLOAD_MAX];
    int rc = 0;
    uint64_t i;
    for (i = 11; i < 40 && rc == 0; i++)
        rc = zk_journal_append (journal, s_type (i), payload, s_payload (i, 50, payload), NULL);
    cr_assert_eq (rc, ZK_EIO, "%s", zk_strerror (rc));
    uint64_t last = i - 2;  //  the last record appended
    cr_assert_eq (zk_journal_appended_seq (journal), last);
    cr_assert_eq (zk_journal_written_seq (journal), last);
    cr_assert_eq (zk_journal_segment_count (journal), 1);

    for (size_t index = 0; index < filler_count; index++)
        close (fillers[index]);
    cr_assert_eq (setrlimit (RLIMIT_NOFILE, &saved), 0);
    s_fill (journal, last + 1, last + 1, 50, NULL);
    cr_assert_eq (zk_journal_segment_count (journal), 2);
    cr_assert_eq (zk_journal_sync (journal), 0);
    zk_journal_destroy (&journal);

    s_replay_t replay = {0};
    journal = s_open (dir, 1024, &replay);
    cr_assert_eq (replay.count, last + 1);
    cr_assert_eq (replay.damage_count, 0);
    for (uint64_t seq = 1; seq <= last + 1; seq++)
        s_expect_seen (&replay, seq - 1, seq, 50);
    zk_journal_destroy (&journal);
    s_replay_reset (&replay);
    tu_rmdir (dir);
    free (dir);
}

//  --------------------------------------------------------------------------
//  Full disk

/*  Fill the journal in dir until a flush fails with ZK_ENOSPC, syncing
    every sync_every records, then check: nothing partial on disk, the
    unwritten records dropped, the written ones readable. Returns the
    highest synced seq.                                                */
static uint64_t
s_fill_until_full (zk_journal_t *journal, const char *dir, size_t sync_every)
{
    uint8_t payload[S_PAYLOAD_MAX];
    int rc = 0;
    uint64_t i;
    zk_journal_pos_t positions[4096];
    for (i = 1; i < 4096; i++) {
        zk_journal_record_t record;
        size_t size = s_payload (i, 100, payload);
        rc = zk_journal_append (journal, s_type (i), payload, size, &record);
        if (rc)
            break;
        cr_assert_eq (record.seq, i);
        positions[i] = record.pos;
        if (i % sync_every == 0 && (rc = zk_journal_sync (journal)) != 0)
            break;
    }
    cr_assert_eq (rc, ZK_ENOSPC, "expected a full disk, got %s after %" PRIu64 " records",
                  zk_strerror (rc), i);
    uint64_t written = zk_journal_written_seq (journal);
    uint64_t synced = zk_journal_synced_seq (journal);
    cr_assert_geq (written, sync_every);
    cr_assert_eq (zk_journal_appended_seq (journal), written);
    cr_assert_geq (synced, written - written % sync_every);
    zk_journal_stats_t stats;
    zk_journal_stats (journal, &stats);
    cr_assert_eq (stats.write_errors, 1);
    cr_assert_eq (stats.buffered_bytes, 0);
    //  No partial record: the file ends where the written records end
    char *path = s_segment_path (dir, 1);
    cr_assert_eq ((uint64_t) s_file_size (path), written * (ZK_JOURNAL_HEADER_SIZE + 100));
    free (path);
    for (uint64_t seq = 1; seq <= written; seq++)
        s_expect_read (journal, positions[seq], seq, 100);
    //  A dropped record is not readable
    if (i > written && i < 4096) {
        uint8_t buf[S_PAYLOAD_MAX];
        positions[i] = positions[written];
        positions[i].offset += ZK_JOURNAL_HEADER_SIZE + 100;
        cr_assert_eq (zk_journal_read (journal, positions[i], buf, sizeof (buf), NULL), ZK_EINVAL);
    }
    return written;
}

//  After the failure more space appears: appends go on with fresh seqs,
//  and a reopen finds every written record and no damage.
static void
s_after_full (zk_journal_t *journal, const char *dir, uint64_t written)
{
    zk_journal_record_t record;
    cr_assert_eq (zk_journal_append (journal, 3, "after", 5, &record), 0);
    cr_assert_gt (record.seq, written);
    cr_assert_eq (zk_journal_sync (journal), 0);
    zk_journal_destroy (&journal);
    s_replay_t replay = {0};
    journal = s_open (dir, 0, &replay);
    cr_assert_eq (replay.damage_count, 0);
    cr_assert_eq (replay.count, written + 1);
    for (uint64_t i = 1; i <= written; i++)
        s_expect_seen (&replay, i - 1, i, 100);
    cr_assert_eq (replay.records[written].record.seq, record.seq);
    zk_journal_destroy (&journal);
    s_replay_reset (&replay);
}

Test (zk_journal, full_disk_file_size_limit)
{
    signal (SIGXFSZ, SIG_IGN);
    char *dir = tu_tmpdir ();
    zk_journal_t *journal = s_open (dir, 0, NULL);
    struct rlimit saved, limited;
    cr_assert_eq (getrlimit (RLIMIT_FSIZE, &saved), 0);
    limited = saved;
    limited.rlim_cur = 30000;  //  about 234 records, not a record boundary
    cr_assert_eq (setrlimit (RLIMIT_FSIZE, &limited), 0);
    uint64_t written = s_fill_until_full (journal, dir, 10);
    cr_assert_eq (setrlimit (RLIMIT_FSIZE, &saved), 0);
    s_after_full (journal, dir, written);
    tu_rmdir (dir);
    free (dir);
}

//  The same on a real full file system: a 64 KiB tmpfs (needs the right
//  to mount; skipped with a message otherwise).
Test (zk_journal, full_disk_tmpfs)
{
    char *dir = tu_tmpdir ();
    if (mount ("tmpfs", dir, "tmpfs", 0, "size=64k,mode=0700") != 0) {
        int err = errno;
        tu_rmdir (dir);
        free (dir);
        cr_skip_test ("cannot mount a tmpfs for the full-disk test: %s", strerror (err));
    }
    char *path = zsys_sprintf ("%s/journal", dir);
    zk_journal_config_t config = {.buffer_size = 8192};
    zk_journal_t *journal = NULL;
    int rc = zk_journal_open (path, &config, &journal);
    cr_assert_eq (rc, 0, "%s", zk_strerror (rc));
    uint64_t written = s_fill_until_full (journal, path, 7);
    //  Free space, then go on
    zk_journal_destroy (&journal);
    cr_assert_eq (mount ("tmpfs", dir, "tmpfs", MS_REMOUNT, "size=256k,mode=0700"), 0);
    journal = s_open (path, 0, NULL);
    s_after_full (journal, path, written);
    umount2 (dir, MNT_DETACH);
    tu_rmdir (dir);
    free (path);
    free (dir);
}

//  --------------------------------------------------------------------------
//  Crashes

static int64_t
s_now_ms (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

//  The child: append records from where the journal ends, sync every 10,
//  report each synced seq on fd. Runs until killed (bounded anyway).
static void
s_crash_writer (const char *dir, int fd)
{
    zk_journal_t *journal = NULL;
    zk_journal_config_t config = {.segment_size = 4096};
    if (zk_journal_open (dir, &config, &journal) != 0)
        _exit (1);
    uint8_t payload[S_PAYLOAD_MAX];
    for (uint64_t seq = zk_journal_appended_seq (journal) + 1; seq < 10000000; seq++) {
        if (zk_journal_append (journal, s_type (seq), payload, s_payload (seq, 0, payload), NULL))
            _exit (1);
        if (seq % 10 == 0) {
            if (zk_journal_sync (journal) != 0)
                _exit (1);
            uint64_t synced = zk_journal_synced_seq (journal);
            if (write (fd, &synced, sizeof (synced)) != sizeof (synced))
                _exit (1);
        }
    }
    _exit (0);
}

//  SIGKILL a writer at different moments, five times over the same
//  journal: every record it reported synced is replayed, in order,
//  nothing is damaged, and the next writer carries on after it.
Test (zk_journal, killed_writer_loses_nothing_synced, .timeout = 60)
{
    char *dir = tu_tmpdir ();
    s_replay_t replay = {0};
    uint64_t synced = 0;
    for (int round = 0; round < 5; round++) {
        int fds[2];
        cr_assert_eq (pipe (fds), 0);
        pid_t pid = fork ();
        cr_assert_geq (pid, 0);
        if (pid == 0) {
            close (fds[0]);
            s_crash_writer (dir, fds[1]);
        }
        close (fds[1]);
        uint64_t target = synced + 100 + (uint64_t) round * 137;
        int64_t deadline = s_now_ms () + 20000;
        while (synced < target && s_now_ms () < deadline) {
            struct pollfd item = {fds[0], POLLIN, 0};
            if (poll (&item, 1, 100) <= 0)
                continue;
            uint64_t report;
            if (read (fds[0], &report, sizeof (report)) != sizeof (report))
                break;
            synced = report;
        }
        kill (pid, SIGKILL);
        int status;
        cr_assert_eq (waitpid (pid, &status, 0), pid);
        close (fds[0]);
        cr_assert_geq (synced, target, "round %d: writer reached %" PRIu64, round, synced);

        zk_journal_t *journal = s_open (dir, 4096, &replay);
        cr_assert_geq (replay.count, synced);
        for (size_t index = 0; index < replay.count; index++)
            s_expect_seen (&replay, index, index + 1, 0);
        for (size_t index = 0; index < replay.damage_count; index++)
            cr_assert (replay.damages[index].truncated);
        zk_journal_destroy (&journal);
    }
    s_replay_reset (&replay);
    tu_rmdir (dir);
    free (dir);
}

//  --------------------------------------------------------------------------
//  Group commit from a second thread

typedef struct {
    zk_journal_t *journal;
    volatile bool stop;
    uint64_t syncs;
    int rc;
} s_syncer_t;

static void *
s_syncer (void *arg)
{
    s_syncer_t *syncer = (s_syncer_t *) arg;
    //  Bounded: stops when told, or after 100000 syncs
    while (!__atomic_load_n (&syncer->stop, __ATOMIC_ACQUIRE) && syncer->syncs < 100000) {
        uint64_t before = zk_journal_synced_seq (syncer->journal);
        syncer->rc = zk_journal_sync_flushed (syncer->journal);
        if (syncer->rc)
            break;
        if (zk_journal_synced_seq (syncer->journal) < before) {
            syncer->rc = ZK_EINVAL;  //  went backwards
            break;
        }
        syncer->syncs++;
    }
    return NULL;
}

Test (zk_journal, sync_from_another_thread)
{
    char *dir = tu_tmpdir ();
    zk_journal_t *journal = s_open (dir, 16384, NULL);
    s_syncer_t syncer = {.journal = journal};
    pthread_t thread;
    cr_assert_eq (pthread_create (&thread, NULL, s_syncer, &syncer), 0);
    size_t count = 30000;
    uint8_t payload[S_PAYLOAD_MAX];
    for (uint64_t i = 1; i <= count; i++) {
        size_t size = s_payload (i, 0, payload);
        cr_assert_eq (zk_journal_append (journal, s_type (i), payload, size, NULL), 0);
        if (i % 50 == 0)
            cr_assert_eq (zk_journal_flush (journal), 0);
        cr_assert_leq (zk_journal_synced_seq (journal), zk_journal_written_seq (journal));
    }
    cr_assert_eq (zk_journal_flush (journal), 0);
    __atomic_store_n (&syncer.stop, true, __ATOMIC_RELEASE);
    pthread_join (thread, NULL);
    cr_assert_eq (syncer.rc, 0, "%s", zk_strerror (syncer.rc));
    cr_assert_eq (zk_journal_sync_flushed (journal), 0);
    cr_assert_eq (zk_journal_synced_seq (journal), count);
    cr_assert_gt (zk_journal_segment_count (journal), 50);
    zk_journal_destroy (&journal);

    s_replay_t replay = {0};
    journal = s_open (dir, 16384, &replay);
    cr_assert_eq (replay.count, count);
    cr_assert_eq (replay.damage_count, 0);
    for (uint64_t i = 1; i <= count; i += 97)
        s_expect_seen (&replay, i - 1, i, 0);
    zk_journal_destroy (&journal);
    s_replay_reset (&replay);
    tu_rmdir (dir);
    free (dir);
}
