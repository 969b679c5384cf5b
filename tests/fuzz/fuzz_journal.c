/*  Fuzz target: the journal reader (zk_journal_open's scan and recovery,
    zk_journal_read) and, behind it, the queue's replay of its records.

    Input framing: byte 0 holds flags, the rest is segment file bytes.
      0x01  fix the checksums: every record found by walking the bytes
            (a magic, a length that fits) gets valid crc and head_crc,
            so the fuzzer reaches what lies behind them;
      0x02  max_record_size 256 (else the default);
      0x04  two segments: bytes 1-2 (little-endian) pick where the data
            is cut; the second file is named after id 1 + that offset;
      0x08  after the scan: append a record, sync, close, open again;
      0x10  also open the bytes as a zkit-queue queue (zk_qstore_open).
    Invariants: open succeeds whatever the files hold; replayed records
    come in strictly increasing seq, within max_record_size, and read
    back (zk_journal_read) as the same bytes; a second open replays the
    same records, plus the appended one last.                           */

#include "../../src/zk_classes.h"
#include "fuzz.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_MAX_RECORDS 64  //  records whose bytes are compared after open

enum {
    S_FIX_CRC = 0x01,
    S_SMALL_MAX = 0x02,
    S_TWO_SEGMENTS = 0x04,
    S_REOPEN = 0x08,
    S_QUEUE = 0x10,
};

typedef struct {
    uint64_t seq;
    zk_journal_pos_t pos;
    uint8_t type;
    uint32_t crc;  //  of the payload as replayed
} s_seen_t;

typedef struct {
    s_seen_t seen[S_MAX_RECORDS];
    size_t count;  //  all records replayed (only the first S_MAX_RECORDS kept)
    uint64_t last_seq;
    uint32_t max_record;
} s_replay_t;

static char *s_base;       //  private temp dir for the whole run
static char *s_queue_dir;  //  s_base/q (a queue server's data directory)
static char *s_journal;    //  s_base/q/fuzz (the journal directory)

static void s_clear (void);

void
zk_fuzz_journal_cleanup (void)
{
    if (!s_base)
        return;
    s_clear ();
    rmdir (s_journal);
    rmdir (s_queue_dir);
    rmdir (s_base);
    zstr_free (&s_journal);
    zstr_free (&s_queue_dir);
    zstr_free (&s_base);
}

static void
s_setup (void)
{
    if (s_base)
        return;
    const char *tmp = access ("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv ("TMPDIR");
    char *pattern = zsys_sprintf ("%s/zk-fuzz-journal-XXXXXX", tmp ? tmp : "/tmp");
    ZK_FUZZ_CHECK (pattern && mkdtemp (pattern));
    s_base = pattern;
    s_queue_dir = zsys_sprintf ("%s/q", s_base);
    s_journal = zsys_sprintf ("%s/fuzz", s_queue_dir);
    ZK_FUZZ_CHECK (mkdir (s_queue_dir, 0700) == 0 && mkdir (s_journal, 0700) == 0);
    atexit (zk_fuzz_journal_cleanup);
}

//  Remove every file in the journal directory.
static void
s_clear (void)
{
    DIR *dir = opendir (s_journal);
    ZK_FUZZ_CHECK (dir);
    struct dirent *entry;
    while ((entry = readdir (dir)))
        if (entry->d_name[0] != '.') {
            char *path = zsys_sprintf ("%s/%s", s_journal, entry->d_name);
            unlink (path);
            zstr_free (&path);
        }
    closedir (dir);
}

static void
s_write_segment (uint64_t id, const uint8_t *data, size_t size)
{
    char *path = zsys_sprintf ("%s/%020" PRIu64 ".seg", s_journal, id);
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ZK_FUZZ_CHECK (fd >= 0);
    ZK_FUZZ_CHECK (size == 0 || write (fd, data, size) == (ssize_t) size);
    close (fd);
    zstr_free (&path);
}

static uint32_t
s_get32 (const uint8_t *at)
{
    return (uint32_t) at[0] | (uint32_t) at[1] << 8 | (uint32_t) at[2] << 16
           | (uint32_t) at[3] << 24;
}

static void
s_put32 (uint8_t *at, uint32_t value)
{
    for (int index = 0; index < 4; index++)
        at[index] = (uint8_t) (value >> (8 * index));
}

//  Give every record found by a walk over bytes valid checksums.
static void
s_fix_crcs (uint8_t *bytes, size_t size)
{
    static const uint8_t magic[4] = {0x89, 'Z', 'J', '1'};
    size_t offset = 0;
    while (offset + ZK_JOURNAL_HEADER_SIZE <= size) {
        if (memcmp (bytes + offset, magic, 4) != 0) {
            offset++;
            continue;
        }
        uint32_t length = s_get32 (bytes + offset + 4);
        if (length > size - offset - ZK_JOURNAL_HEADER_SIZE)
            break;
        uint8_t *header = bytes + offset;
        uint32_t crc =
            zk_crc32c (zk_crc32c (0, header, 20), header + ZK_JOURNAL_HEADER_SIZE, length);
        s_put32 (header + 20, crc);
        s_put32 (header + 24, zk_crc32c (0, header, 24));
        offset += ZK_JOURNAL_HEADER_SIZE + length;
    }
}

static int
s_on_record (void *arg, const zk_journal_record_t *record, const void *payload)
{
    s_replay_t *replay = arg;
    ZK_FUZZ_CHECK (record->seq > replay->last_seq);
    ZK_FUZZ_CHECK (record->pos.size <= replay->max_record);
    replay->last_seq = record->seq;
    if (replay->count < S_MAX_RECORDS)
        replay->seen[replay->count] = (s_seen_t){record->seq, record->pos, record->type,
                                                 zk_crc32c (0, payload, record->pos.size)};
    replay->count++;
    //  What the queue would make of it (views into payload, all inside).
    zk_qrecord_t parsed;
    if (zk_qrecord_decode (record->type, payload, record->pos.size, &parsed) == 0) {
        const uint8_t *start = payload, *end = start + record->pos.size;
        size_t body = 0;
        ZK_FUZZ_CHECK (parsed.frame_count >= 0 && parsed.frame_count <= ZK_QUEUE_BODY_FRAMES);
        ZK_FUZZ_CHECK ((const uint8_t *) parsed.text >= start
                       && (const uint8_t *) parsed.text + parsed.text_size <= end);
        for (int index = 0; index < parsed.frame_count; index++) {
            ZK_FUZZ_CHECK (parsed.frames[index] >= start
                           && parsed.frames[index] + parsed.sizes[index] <= end);
            body += parsed.sizes[index];
        }
        ZK_FUZZ_CHECK (body == parsed.body_size);
    }
    return 0;
}

static void
s_on_damage (void *arg, const zk_journal_damage_t *damage)
{
    (void) arg;
    ZK_FUZZ_CHECK (damage->reason);
}

static zk_journal_t *
s_open (s_replay_t *replay, uint32_t max_record)
{
    memset (replay, 0, sizeof *replay);
    replay->max_record = max_record ? max_record : ZK_JOURNAL_DEFAULT_MAX_RECORD;
    zk_journal_config_t config = {
        .segment_size = 1 << 20,
        .max_record_size = max_record,
        .buffer_size = ZK_JOURNAL_MIN_BUFFER_SIZE,
        .on_record = s_on_record,
        .on_damage = s_on_damage,
        .arg = replay,
    };
    zk_journal_t *journal = NULL;
    int rc = zk_journal_open (s_journal, &config, &journal);
    ZK_FUZZ_CHECK (rc == 0 && journal);
    ZK_FUZZ_CHECK (zk_journal_appended_seq (journal) == replay->last_seq);
    zk_journal_stats_t stats;
    zk_journal_stats (journal, &stats);
    ZK_FUZZ_CHECK (stats.records_replayed == replay->count);
    return journal;
}

//  Every replayed record reads back as the bytes the scan saw.
static void
s_read_back (zk_journal_t *journal, const s_replay_t *replay)
{
    size_t kept = replay->count < S_MAX_RECORDS ? replay->count : S_MAX_RECORDS;
    for (size_t index = 0; index < kept; index++) {
        const s_seen_t *seen = &replay->seen[index];
        void *payload = NULL;
        zk_journal_record_t record;
        int rc = zk_journal_read_alloc (journal, seen->pos, &payload, &record);
        ZK_FUZZ_CHECK (rc == 0);
        ZK_FUZZ_CHECK (record.seq == seen->seq && record.type == seen->type);
        ZK_FUZZ_CHECK (zk_crc32c (0, payload, seen->pos.size) == seen->crc);
        free (payload);
    }
}

int
zk_fuzz_journal (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    s_setup ();
    uint8_t flags = data[0];
    size_t header = 1;
    size_t split = 0;
    if (flags & S_TWO_SEGMENTS) {
        if (size < 3)
            return 0;
        split = (size_t) (data[1] | data[2] << 8);
        header = 3;
    }
    size_t body_size = size - header;
    uint8_t *bytes = malloc (body_size ? body_size : 1);
    ZK_FUZZ_CHECK (bytes);
    memcpy (bytes, data + header, body_size);
    if (split > body_size)
        split = body_size;

    s_clear ();
    if (flags & S_TWO_SEGMENTS) {
        if (flags & S_FIX_CRC) {
            s_fix_crcs (bytes, split);
            s_fix_crcs (bytes + split, body_size - split);
        }
        s_write_segment (1, bytes, split);
        s_write_segment (1 + split + 1, bytes + split, body_size - split);
    }
    else {
        if (flags & S_FIX_CRC)
            s_fix_crcs (bytes, body_size);
        s_write_segment (1, bytes, body_size);
    }

    if (flags & S_QUEUE) {
        //  The queue's replay first, on a copy of the files: its open
        //  cuts torn tails as the journal's does, so rewrite them after.
        zk_qstore_config_t config = {
            .segment_size = 1 << 20,
            .max_record = (flags & S_SMALL_MAX) ? 256 : ZK_JOURNAL_DEFAULT_MAX_RECORD,
            .dedup_window_us = 120 * 1000000LL,
            .result_ttl_us = 600 * 1000000LL,
            .max_done = 1000,
        };
        zk_qstore_t *store = NULL;
        int rc = zk_qstore_open (s_queue_dir, "fuzz", &config, &store);
        ZK_FUZZ_CHECK (rc == 0 && store);
        ZK_FUZZ_CHECK (store->live <= store->used);
        zk_qstore_maintain (store, zclock_time () * 1000);
        zk_qstore_destroy (&store);
        s_clear ();
        if (flags & S_TWO_SEGMENTS) {
            s_write_segment (1, bytes, split);
            s_write_segment (1 + split + 1, bytes + split, body_size - split);
        }
        else
            s_write_segment (1, bytes, body_size);
    }

    uint32_t max_record = (flags & S_SMALL_MAX) ? 256 : 0;
    s_replay_t *first = calloc (1, sizeof *first);
    s_replay_t *second = calloc (1, sizeof *second);
    ZK_FUZZ_CHECK (first && second);
    zk_journal_t *journal = s_open (first, max_record);
    s_read_back (journal, first);

    if (flags & S_REOPEN) {
        zk_journal_record_t appended;
        int rc = zk_journal_append (journal, 7, "appended", 8, &appended);
        if (first->last_seq == UINT64_MAX - 1) {
            //  The highest seq a record may have was replayed: no more (documented).
            ZK_FUZZ_CHECK (rc == ZK_EINVAL);
            goto out_journal;
        }
        ZK_FUZZ_CHECK (rc == 0);
        ZK_FUZZ_CHECK (appended.seq > first->last_seq);
        ZK_FUZZ_CHECK (zk_journal_sync (journal) == 0);
        zk_journal_destroy (&journal);
        journal = s_open (second, max_record);
        ZK_FUZZ_CHECK (second->count == first->count + 1);
        ZK_FUZZ_CHECK (second->last_seq == appended.seq);
        size_t kept = first->count < S_MAX_RECORDS ? first->count : S_MAX_RECORDS;
        for (size_t index = 0; index < kept; index++) {
            ZK_FUZZ_CHECK (second->seen[index].seq == first->seen[index].seq);
            ZK_FUZZ_CHECK (second->seen[index].crc == first->seen[index].crc);
        }
        s_read_back (journal, second);
    }
out_journal:
    zk_journal_destroy (&journal);
    free (second);
    free (first);
    free (bytes);
    return 0;
}

ZK_FUZZ_TARGET (zk_fuzz_journal, )
