/*  zk_queue — the durable queue server (zkit-queue) as an actor.

    Hosts any number of named queues under one data directory, each in a
    journal of its own (DIR/NAME, created on first use), and serves them
    over ROUTER sockets with the ZKQ/1 protocol (docs/protocol.md, "The
    queue protocol"): put with a confirm once the message is durable, get
    with a credit window (and a consumer name), ack (with an optional
    result), nack, status, stats, list, move, and for jobs and workflows
    forward (ack one message and put it into another queue under the same
    id, atomically) and trace (a job's path through the queues).

    Delivery is at-least-once: a delivered message is leased to its
    consumer until it is acked, the lease runs out, or the consumer's
    connection closes; then it is delivered again (attempt + 1) and,
    after max_deliver attempts, moved to NAME.dead with the reason. A PUT
    whose message id was accepted within the dedup window, or is still in
    the queue, is confirmed again and not stored twice. First deliveries
    are FIFO per queue.

    Group commit: each turn of the loop takes every request waiting (up to
    a bounded batch), appends their records, makes each journal touched
    durable with one fdatasync (ZK_QUEUE_FSYNC_BATCH), and only then sends
    the replies. Bodies stay on disk; memory per queued message is one
    index entry and its map slot (88 bytes).                             */

#ifndef ZK_QUEUE_H_INCLUDED
#define ZK_QUEUE_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZK_QUEUE_NAME_MAX         128    //  bytes of a queue name
#define ZK_QUEUE_TAG_MAX          64     //  bytes of a request's TAG
#define ZK_QUEUE_BODY_FRAMES      64     //  body (and result) frames of one message
#define ZK_QUEUE_ARG_FRAMES       16     //  argument frames of other commands
#define ZK_QUEUE_WINDOW_MAX       10000  //  largest GET window
#define ZK_QUEUE_LIST_MAX         1000   //  entries one LIST returns at most
#define ZK_QUEUE_MAX_PULLS        64     //  --pull sockets one server takes
#define ZK_QUEUE_MOVE_MAX         10000  //  messages one MOVE moves at most
#define ZK_QUEUE_REASON_MAX       200    //  bytes of a reason kept (longer is cut)
#define ZK_QUEUE_CONSUMER_MAX     64     //  bytes of a consumer name (GET)
#define ZK_QUEUE_TRACE_MAX        32     //  steps one TRACE returns at most
#define ZK_QUEUE_DEFAULT_MAX_SIZE ((size_t) 1 << 20)

typedef enum {
    ZK_QUEUE_FSYNC_BATCH = 0,  //  one fdatasync per journal per turn, before the replies
    ZK_QUEUE_FSYNC_ALWAYS,     //  one fdatasync per PUT/ACK, before its reply
    ZK_QUEUE_FSYNC_NEVER,      //  replies once written to the OS
} zk_queue_fsync_t;

typedef struct {
    const char *data_dir;      //  required; created if missing (its parent must exist)
    const char *const *specs;  //  router specs, NULL-terminated, at least one
    const char *const *pulls;  //  "NAME=SPEC" pull sockets, NULL-terminated; or NULL
    int64_t lease_ms;          //  a delivery's lease
    int max_deliver;           //  attempts before NAME.dead
    int64_t dedup_window_ms;   //  0: no window (messages still queued are always deduped)
    int64_t result_ttl_ms;     //  how long "done"/"dead" status and results are kept
    zk_queue_fsync_t fsync;
    size_t max_size;        //  body bytes of one message (all frames)
    uint64_t segment_size;  //  journal segment size; 0 = the journal's default (64 MiB)
    size_t max_done;        //  finished messages remembered per queue (status, dedup)
    int max_queues;         //  queues one server hosts
    int hwm;                //  0 = 10000 on the router, libzmq's default on pulls
    int linger_ms;          //  <0 = default 1000
    int stats_interval_ms;  //  0 = no periodic report
    int handshake_ms;       //  drop a peer whose ZMTP handshake takes longer; 0 = 5000
} zk_queue_config_t;

typedef struct {
    uint64_t queues;       //  queues open now
    uint64_t clients;      //  clients known now
    uint64_t queued;       //  messages waiting, every queue
    uint64_t leased;       //  delivered, not yet acked
    uint64_t requests;     //  protocol messages received
    uint64_t errors;       //  ERR replies sent
    uint64_t put;          //  messages stored (PUT, MOVE targets, dead letters, --pull)
    uint64_t duplicates;   //  PUTs confirmed again without storing
    uint64_t put_failed;   //  PUTs answered ERR 503 (storage failure)
    uint64_t delivered;    //  MSG sent
    uint64_t redelivered;  //  of which attempt > 1
    uint64_t acked;
    uint64_t nacked;
    uint64_t expired;     //  leases that ran out
    uint64_t released;    //  leases a closed connection gave back
    uint64_t dead;        //  messages moved to a dead-letter queue
    uint64_t moved;       //  messages moved by MOVE
    uint64_t pulled;      //  messages taken from --pull sockets
    uint64_t dropped;     //  replies or pull messages that could not be handled
    uint64_t syncs;       //  fdatasync rounds
    uint64_t damaged;     //  journal runs set aside and bad records, since start
    uint64_t disk_bytes;  //  bytes in journal segments now
    uint64_t forwarded;   //  messages done by FWD (put into another queue)
} zk_queue_stats_t;

typedef struct _zk_queue_t zk_queue_t;

//  Fill config with the defaults: lease 30 s, max_deliver 5, dedup window
//  120 s, result TTL 600 s, fsync batch, max_size 1 MiB, max_done 100000,
//  max_queues 1000, linger -1; no data_dir, specs or pulls.
void zk_queue_config_init (zk_queue_config_t *config);

//  Check a configuration without starting anything. 0, or ZK_EINVAL with
//  a one-line reason in reason (when not NULL).
int zk_queue_validate (const zk_queue_config_t *config, char *reason, size_t reason_size);

//  Open every queue found under data_dir (replaying its journal), bind or
//  connect the sockets, start serving. NULL on a bad configuration, a
//  data directory in use by another server, a journal that cannot be
//  opened or a failed bind/connect (logged). Caller owns the result.
zk_queue_t *zk_queue_new (const zk_queue_config_t *config);

//  Stop reading requests, make what was appended durable, hand over the
//  replies (bounded by linger), close. Safe on NULL; nulls *self_p.
void zk_queue_destroy (zk_queue_t **self_p);

//  Counters since start, and gauges now. 0, or ZK_EIO if the engine is gone.
int zk_queue_stats (zk_queue_t *self, zk_queue_stats_t *stats);

//  The engine's actor, to poll. Borrowed. Its ENDPOINTS reply has the
//  roles "router" (ZKQ/1 sockets) and "pull:NAME" (--pull sockets).
zactor_t *zk_queue_actor (zk_queue_t *self);

//  True when name is a valid queue name: 1..ZK_QUEUE_NAME_MAX bytes of
//  [A-Za-z0-9._-], not starting with '.', not containing "..".
bool zk_queue_name_valid (const char *name, size_t size);

//  True when name is a valid consumer name (GET's CONSUMER): 1..
//  ZK_QUEUE_CONSUMER_MAX bytes of printable ASCII without spaces (0x21..0x7e).
bool zk_queue_consumer_valid (const char *name, size_t size);

#ifdef __cplusplus
}
#endif

#endif
