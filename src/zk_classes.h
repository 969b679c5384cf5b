/*  zk_classes.h — private to src/: every source file includes this only.

    Besides the public API it declares the helpers the engines share
    (src/zk_engine.c). The pipe protocol between an engine actor and its
    owner:

        owner → engine   "$TERM"      stop: hand over, close, return
                         "PAUSE" / "RESUME"
                         "STATS"      reply: one frame per counter, "name=value"
                         "ENDPOINTS"  reply: one frame per endpoint, "ROLE ENDPOINT"
        engine → owner   "TERMINATED" a control socket asked it to stop; the
                                      engine then waits for "$TERM".
    Start-up: the engine signals 0 on the pipe once its sockets are ready,
    or -1 after logging why it could not start.                          */

#ifndef ZK_CLASSES_H_INCLUDED
#define ZK_CLASSES_H_INCLUDED

#include "../include/zkit.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ZK_DEFAULT_LINGER_MS 1000

//  Parse text, create its socket with hwm (0: default) and linger
//  (<0: ZK_DEFAULT_LINGER_MS), attach it. On success 0 with the socket
//  in *sock_p and the parsed spec in *spec_p (caller owns both); else an
//  error, logged as "ROLE: ...". expected_types, when not NULL, is a
//  -1-terminated list of the socket types this role accepts.
int zk_engine_open (const char *role, const char *text, const int *expected_types, int hwm,
                    int linger_ms, zsock_t **sock_p, zk_spec_t **spec_p);

/*  Receive limits (docs/protocol.md 4.2). ZMQ_MAXMSGSIZE is per frame in
    libzmq and also bounds handshake commands: a socket gets max_size +
    ZK_MAXMSG_SLACK, so a crafted frame header never allocates more than
    that (the peer is disconnected) and a whole message's limit is still
    zkit's own check on all frames.                                      */
#define ZK_MAXMSG_SLACK 65536

typedef struct {
    int hwm;            //  send/receive high-water mark; 0: libzmq's default (1000)
    int linger_ms;      //  <0: ZK_DEFAULT_LINGER_MS
    size_t max_size;    //  ZMQ_MAXMSGSIZE max_size + slack; 0 or ZK_MAX_SIZE_UNLIMITED: none
    int handshake_ms;   //  ZMQ_HANDSHAKE_IVL; 0: zk_spec_socket's ZK_SPEC_HANDSHAKE_MS
    int64_t max_frame;  //  >0: ZMQ_MAXMSGSIZE exactly this instead (no slack)
} zk_engine_limits_t;

//  zk_engine_open with every limit: set before the socket is attached.
int zk_engine_open_limited (const char *role, const char *text, const int *expected_types,
                            const zk_engine_limits_t *limits, zsock_t **sock_p, zk_spec_t **spec_p);

//  Set max_size and handshake_ms (as in zk_engine_limits_t) and the accept
//  backlog ZK_SPEC_BACKLOG on a socket that is not yet attached (libzmq
//  copies options at bind/connect).
void zk_engine_limit_socket (zsock_t *sock, size_t max_size, int handshake_ms);

//  A max_size from a config: 0 is ZK_MAX_SIZE_DEFAULT.
#define zk_engine_max_size(max_size) ((max_size) ? (max_size) : ZK_MAX_SIZE_DEFAULT)

//  Append "ROLE ENDPOINT" frames for every endpoint of spec to msg.
void zk_engine_add_endpoints (zmsg_t *msg, const char *role, const zk_spec_t *spec);

//  Append one "name=value" frame to msg.
void zk_engine_add_counter (zmsg_t *msg, const char *name, uint64_t value);

//  Read a "name=value" STATS reply value by name, 0 if absent.
uint64_t zk_engine_counter (zmsg_t *reply, const char *name);

//  Send cmd to the engine and wait for its reply. Caller owns it; NULL
//  if the engine is gone.
zmsg_t *zk_engine_request (zactor_t *engine, const char *cmd);

//  Wait at most timeout_ms for the engine to become readable; 0 when it is.
//  Returns ZK_ETIMEDOUT otherwise.
int zk_engine_wait_readable (zactor_t *engine, int timeout_ms);

//  Monotonic clock, milliseconds.
int64_t zk_now_ms (void);

//  Start an engine actor and wait for its start-up signal (0 or -1, see
//  above), riding over EINTR. The actor, or NULL when it could not start
//  (name says which engine in the log) or signalled -1 (it logged why).
zactor_t *zk_engine_start (zactor_fn *actor, void *args, const char *name);

/*  zk_device — the core that zk_proxy and zk_forwarder share (src/zk_device.c).

    One actor moves whole messages frontend → backend and, when both sides
    can, backend → frontend, with raw zmq_msg_t frames (no copy, no
    allocation per message), batches, back-pressure (one pending message per
    direction), a size and frame limit, capture, control and stats.        */

#define ZK_DEVICE_MAX_FRAMES 1024  //  frames in one message; more is refused
#define ZK_DEVICE_BATCH      1000  //  messages moved per direction per poll

typedef struct {
    const char *name;      //  "proxy" or "forwarder"
    const char *frontend;  //  specs, as in the public configs
    const char *backend;
    const char *capture;    //  or NULL
    const char *control;    //  or NULL
    size_t max_size;        //  0 = ZK_MAX_SIZE_DEFAULT; ZK_MAX_SIZE_UNLIMITED
    int hwm;                //  0 = libzmq's default
    int linger_ms;          //  <0 = ZK_DEFAULT_LINGER_MS
    int handshake_ms;       //  0 = ZK_SPEC_HANDSHAKE_MS
    size_t max_topic;       //  xpub backend: longest subscription; 0 = ZK_MAX_TOPIC_DEFAULT
    int stats_interval_ms;  //  0 = no periodic report
    bool forwarder;         //  xpub verbose, count and log subscriptions
    bool lb;                //  the ZKW/1 load balancer (src/zk_lb.c) instead
    int heartbeat_ms;       //  lb: heartbeat interval; 0 = ZK_LB_HEARTBEAT_MS
} zk_device_config_t;

//  Check the specs and the capture/control types (not the pair: that is
//  the caller's rule). 0, or ZK_EINVAL with a one-line reason; the types
//  go to *frontend_type_p / *backend_type_p.
int zk_device_check (const zk_device_config_t *config, int *frontend_type_p, int *backend_type_p,
                     char *reason, size_t reason_size);

//  Start the device actor (config is copied). NULL if a socket could not
//  be opened (logged). Caller owns the actor (zactor_destroy).
zactor_t *zk_device_start (const zk_device_config_t *config);

//  Send a command that has no reply (PAUSE, RESUME) and return once the
//  device has acted on it. 0, or ZK_EIO if the device is gone.
int zk_device_command (zactor_t *device, const char *cmd);

//  The options both device binaries take (same names, same help), bound
//  to one struct; ZK_DEVICE_CONFIG_FIELDS turns it into the fields the
//  proxy and forwarder configs share.
typedef struct {
    size_t max_size;
    int hwm;
    const char *capture;
    const char *control;
    const char *ready_file;
    double stats_seconds;
    double linger_seconds;  //  set the default (1) before parsing
    double handshake_seconds;
} zk_device_options_t;

#define ZK_DEVICE_OPTIONS 8
#define ZK_DEVICE_CONFIG_FIELDS(values)                                                            \
    .capture = (values).capture, .control = (values).control, .max_size = (values).max_size,       \
    .hwm = (values).hwm, .linger_ms = (int) ((values).linger_seconds * 1000),                      \
    .stats_interval_ms = (int) ((values).stats_seconds * 1000),                                    \
    .handshake_ms = (int) ((values).handshake_seconds * 1000 + 0.5)

//  Fill table[0 .. ZK_DEVICE_OPTIONS] (the last entry ends the table) with
//  the device options, bound to values.
void zk_device_options (zk_option_t *table, zk_device_options_t *values);

//  Free a configuration copied by zk_device_start (the actor owns it).
void zk_device_config_free (zk_device_config_t *config);

//  Serve one message of a control socket (docs/protocol.md 4.4), for
//  every device engine: PAUSE and RESUME set *paused; TERMINATE sets
//  *terminated and tells the owner ("TERMINATED" on pipe); STATISTICS is
//  answered with what statistics (arg, text, size) writes.
typedef void (zk_device_text_fn) (void *arg, char *text, size_t size);
void zk_device_control (zsock_t *control, zsock_t *pipe, bool *paused, bool *terminated,
                        zk_device_text_fn *statistics, void *arg);

//  The pipe commands of a device engine (see above): $TERM (returns
//  false), PAUSE and RESUME (set *paused), STATS (sends what stats (arg)
//  makes), ENDPOINTS (of specs: frontend, backend, capture, control, each
//  may be NULL). Returns true but on $TERM.
typedef zmsg_t *(zk_device_stats_fn) (void *arg);
bool zk_device_pipe (zsock_t *pipe, const char *name, bool *paused, zk_device_stats_fn *stats,
                     void *arg, zk_spec_t *const specs[4]);

//  Send a copy of frames[0 .. count) on socket (zmq_msg_copy: shared, not
//  copied), without blocking. False when the socket could not take it.
bool zk_device_copy_out (void *socket, zmq_msg_t *frames, size_t count);

/*  zk_lb — the load balancer of zkit-proxy --lb (src/zk_lb.c), the proxy
    side of ZKW/1 (docs/protocol.md section 10). zk_device_start runs it
    for a configuration with lb set; the pipe protocol is the device's.  */

#define ZK_LB_HEARTBEAT_MS 1000  //  default heartbeat interval

//  The actor; args is a configuration copied by zk_device_start, owned.
void zk_lb_actor (zsock_t *pipe, void *args);

/*  Validators' helpers (src/zk_engine.c): a validator returns 0, or
    ZK_EINVAL with a one-line reason, and logs nothing.                 */

//  Write the reason into buf (when not NULL). Returns ZK_EINVAL.
int zk_engine_reason (char *buf, size_t size, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

//  True when type is in the -1-terminated list types.
bool zk_engine_type_in (int type, const int *types);

//  The libzmq type of the spec text for role, or -1 with a reason
//  ("ROLE: invalid socket spec 'TEXT': WHY", or "a ROLE spec is required"
//  when text is NULL).
int zk_engine_spec_type (const char *role, const char *text, char *reason, size_t reason_size);

/*  zk_qstore — one durable queue of zkit-queue: its journal and its
    in-memory index (src/zk_qstore.c). Private to the server (zk_queue.c,
    zk_qserve.c), which owns the policy (leases, clients, group commit);
    the store owns the records and the index. docs/protocol.md ("Queue journal records")
    specifies the record payloads.

    Every message has one entry (zk_qentry_t), found by message id, in
    one state. Live states: PUTTING (its put record is appended, not yet
    durable: invisible to consumers, but a duplicate PUT sees it), QUEUED
    (in the ready list: redeliveries at the front, first deliveries at
    the back), LEASED (in the lease list, oldest deadline first), ACKING
    and MOVING (an ack, or a copy into another queue, is appended and not
    yet durable; ACKING also while a FWD is). Finished states, kept for
    STATUS, TRACE and dedup until they expire: DONE (acked, or forwarded:
    ZK_QENTRY_FORWARDED), DEAD, MOVED (in the finished list).

    Forwards (FWD, docs/protocol.md 7.8): the PUT record in the target
    queue carries where the message came from and decides; the FORWARDED
    record in the source confirms it. A queue's replay leaves a message
    whose latest record is a FORWARDED record with a target position
    live and pending; zk_qstore_reconcile_pending and
    zk_qstore_reconcile_origins settle both directions once every queue
    of the server is open.                                               */

#define ZK_QSTORE_NIL         UINT32_MAX
#define ZK_QSTORE_RECORD_HEAD 32  //  fixed part of every record payload

typedef enum {
    ZK_QSTATE_FREE = 0,
    ZK_QSTATE_PUTTING,
    ZK_QSTATE_QUEUED,
    ZK_QSTATE_LEASED,
    ZK_QSTATE_ACKING,
    ZK_QSTATE_MOVING,
    ZK_QSTATE_DONE,
    ZK_QSTATE_DEAD,
    ZK_QSTATE_MOVED,
} zk_qstate_t;

//  Record types (the journal's type byte).
typedef enum {
    ZK_QREC_PUT = 1,      //  a message: id, accept time, body; dead letters: text = why it
                          //  died, attempts = its deliveries before
    ZK_QREC_ACK = 2,      //  done; frames = the result
    ZK_QREC_RELEASE = 3,  //  a delivery ended without an ack; attempts = deliveries so far
    ZK_QREC_DEAD = 4,     //  copied into NAME.dead; text = the reason
    ZK_QREC_MOVED = 5,    //  copied into another queue by MOVE; text = its name
    ZK_QREC_FORWARDED = 6,  //  done by FWD; text = the target queue
} zk_qrec_type_t;

#define ZK_QENTRY_FORWARDED 0x04  //  flags: DONE by a FWD; holder = the target's name index

//  One message's index entry: 80 bytes, plus its slot in the id map.
typedef struct {
    uint8_t msgid[16];
    zk_journal_pos_t pos;    //  live: the put record; finished: the ack/dead/moved record
    int64_t put_us;          //  accepted (realtime µs): the dedup window runs from here
    int64_t since_us;        //  last state change (realtime µs); LEASED: when the lease began
    int64_t lease_deadline;  //  LEASED: monotonic ms
    uint32_t prev, next;     //  links in the ready, lease or finished list
    uint32_t holder;         //  LEASED: the client slot holding it; DONE by FWD: the target
    uint16_t attempts;       //  deliveries so far
    uint8_t state;           //  zk_qstate_t
    uint8_t flags;
    uint32_t origin;  //  name index of the queue it was forwarded from; 0: none
} zk_qentry_t;

/*  Queue names by a small index (1, 2, ...; 0 is none), shared by the
    queues of one server, so an entry names its origin or its forward
    target in 4 bytes. Names are never removed.                          */
typedef struct {
    zhashx_t *map;  //  name → index
    char **names;   //  [index - 1]
    uint32_t count, capacity;
} zk_qnames_t;

//  0, or ZK_ENOMEM.
int zk_qnames_init (zk_qnames_t *self);
void zk_qnames_fini (zk_qnames_t *self);
//  The index of name (size bytes; a valid queue name), added on first
//  sight. 0 for an invalid name, or when out of memory or room (logged).
uint32_t zk_qnames_intern (zk_qnames_t *self, const char *name, size_t size);
//  The name of index, or NULL. Borrowed: valid as long as self.
const char *zk_qnames_get (const zk_qnames_t *self, uint32_t index);

/*  A record's optional fields (docs/protocol.md 8.9), decoded or to
    write: views into a buffer the caller keeps alive.                   */
typedef struct {
    int64_t started_us;    //  when the delivery this record ends began; 0: unknown
    const char *consumer;  //  that delivery's consumer name (consumer_size bytes)
    size_t consumer_size;  //  0: unknown
    const char *origin;    //  PUT: the queue it was forwarded from (origin_size bytes)
    size_t origin_size;    //  0: not forwarded
    uint32_t origin_attempts;     //  PUT: its deliveries in the origin queue
    bool has_target_pos;          //  FORWARDED: decided by the put record at target_pos
    zk_journal_pos_t target_pos;  //  FORWARDED: the put record in the target queue
} zk_qmeta_t;

typedef struct {
    uint32_t head, tail;
    uint32_t count;
} zk_qlist_t;

//  A decoded record: views into a buffer the caller keeps alive.
typedef struct {
    uint8_t type;
    const uint8_t *msgid;
    int64_t time_us;
    uint32_t attempts;
    const char *text;
    size_t text_size;
    int frame_count;
    size_t body_size;  //  all frames
    const uint8_t *frames[ZK_QUEUE_BODY_FRAMES];
    size_t sizes[ZK_QUEUE_BODY_FRAMES];
    zk_qmeta_t meta;
} zk_qrecord_t;

typedef struct {
    uint64_t segment_size;    //  0 = the journal's default
    uint32_t max_record;      //  payload bytes of one record
    int64_t dedup_window_us;  //  a finished entry dedups this long after its put
    int64_t result_ttl_us;    //  and is kept at least this long after it finished
    size_t max_done;          //  finished entries kept at most (oldest forgotten first)
    zk_qnames_t *names;       //  the server's name table; NULL: origins are not kept
} zk_qstore_config_t;

typedef struct {
    uint64_t put, duplicates, delivered, redelivered, acked, nacked;
    uint64_t expired, released, dead, moved, forwarded;
    uint64_t bad_records;   //  valid journal records with an invalid payload, at replay
    uint64_t damaged_runs;  //  damage the journal reported at open
    uint64_t unreadable;    //  messages whose record could not be read back (dropped)
} zk_qcounters_t;

typedef struct {
    uint64_t id;      //  journal segment id
    uint64_t live;    //  live messages whose put record is in it
    int64_t last_us;  //  time of its newest record
} zk_qsegment_t;

//  Replay: a FORWARDED record still to be settled (its message's latest).
typedef struct {
    uint8_t msgid[16];
    zk_journal_pos_t pos;  //  the FORWARDED record
    int64_t time_us;       //  its time
    uint32_t target;       //  its target's name index
} zk_qpending_t;

//  A forward's facts, for the FORWARDED record (zk_qstore_forward).
typedef struct {
    const char *target;  //  the target queue's name (NUL-terminated)
    int64_t time_us;     //  when it was forwarded (the record's time)
    uint32_t attempts;   //  deliveries in this queue
    int64_t started_us;  //  when the delivery that forwarded it began
    const char *consumer;         //  that delivery's consumer, or NULL
    bool has_target_pos;          //  false: the record decides alone (TO held it already)
    zk_journal_pos_t target_pos;  //  the put record in the target
} zk_qforward_t;

//  The store of the queue called name among a server's queues, or NULL.
typedef struct _zk_qstore_t *(zk_qstore_lookup_fn) (void *arg, const char *name);

typedef struct _zk_qstore_t {
    char name[ZK_QUEUE_NAME_MAX + 1];
    zk_journal_t *journal;
    zk_qstore_config_t config;
    zk_qentry_t *entries;  //  the pool; ids are indexes
    uint32_t capacity;
    uint32_t free_head;
    uint32_t used;
    uint32_t *slots;  //  id map: open addressing, linear probing
    uint32_t slot_mask;
    zk_qlist_t ready, leased, finished;
    uint32_t live;  //  PUTTING + QUEUED + LEASED + ACKING + MOVING
    zk_qsegment_t *segments;
    size_t segment_count, segment_capacity;
    uint8_t *buffer;  //  records read back
    size_t buffer_size;
    zk_qcounters_t counters;
    zk_qpending_t *pending;  //  replay: FORWARDED records to settle (then freed)
    size_t pending_count, pending_capacity;
} zk_qstore_t;

//  Open (or create) queue name's journal in dir/name and rebuild the
//  index by replay: live messages queued (those delivered before first,
//  then in put order), finished ones kept while they count for dedup or
//  status. 0 or an error (logged).
int zk_qstore_open (const char *dir, const char *name, const zk_qstore_config_t *config,
                    zk_qstore_t **self_p);
//  Sync and close. Safe on NULL.
void zk_qstore_destroy (zk_qstore_t **self_p);

#define zk_qstore_entry(self, id) (&(self)->entries[(id)])

//  The entry of msgid, or ZK_QSTORE_NIL.
uint32_t zk_qstore_find (zk_qstore_t *self, const uint8_t *msgid);
//  True when a PUT of this entry's id must be confirmed without storing:
//  it is live, or it finished and was put within the dedup window.
bool zk_qstore_is_duplicate (zk_qstore_t *self, uint32_t id, int64_t now_us);
//  Drop a finished entry.
void zk_qstore_forget (zk_qstore_t *self, uint32_t id);

//  Append a put record and add a PUTTING entry (the id must not be in
//  the index). frames: count views of the body. A dead letter has text
//  (why it died) and attempts (its deliveries before; the new entry
//  starts at 0); a forwarded message has meta (origin and the delivery
//  that forwarded it; may be NULL). seq_p gets the record's seq. On
//  error nothing is added.
int zk_qstore_put (zk_qstore_t *self, const uint8_t *msgid, int64_t now_us, const char *text,
                   size_t text_size, uint32_t attempts, const zk_qmeta_t *meta,
                   const struct iovec *frames, int count, uint32_t *id_p, uint64_t *seq_p);
//  The put became durable (QUEUED at the back) or failed (entry dropped).
void zk_qstore_put_done (zk_qstore_t *self, uint32_t id, bool ok);

//  Read an entry's put record (into the store's buffer: valid until the
//  next read) and decode it.
int zk_qstore_read (zk_qstore_t *self, uint32_t id, zk_qrecord_t *record);
//  Read and decode the record at pos the same way.
int zk_qstore_read_at (zk_qstore_t *self, zk_journal_pos_t pos, zk_qrecord_t *record);

//  QUEUED → LEASED to holder until deadline (monotonic ms); attempts + 1.
void zk_qstore_lease (zk_qstore_t *self, uint32_t id, uint32_t holder, int64_t deadline,
                      int64_t now_us);
//  LEASED → ACKING with an ack record (result: count frames; consumer:
//  the holder's name or NULL), whose seq and position go to *record. On
//  error the message is QUEUED at the front.
int zk_qstore_ack (zk_qstore_t *self, uint32_t id, const struct iovec *result, int count,
                   const char *consumer, int64_t now_us, zk_journal_record_t *record);
//  The ack (its record at pos) became durable (DONE) or failed (QUEUED at
//  the front).
void zk_qstore_ack_done (zk_qstore_t *self, uint32_t id, bool ok, zk_journal_pos_t pos,
                         int64_t now_us);
//  LEASED → QUEUED at the front, with a release record (its failure only
//  costs the attempt count after a restart: logged, not returned).
void zk_qstore_release (zk_qstore_t *self, uint32_t id, const char *reason, int64_t now_us);
//  QUEUED or LEASED → MOVING.
void zk_qstore_take (zk_qstore_t *self, uint32_t id, int64_t now_us);
//  The copy is durable (type ZK_QREC_DEAD or ZK_QREC_MOVED: the record is
//  appended, with meta (may be NULL), the entry finishes), or failed
//  (QUEUED at the front).
void zk_qstore_move_done (zk_qstore_t *self, uint32_t id, bool ok, uint8_t type, const char *text,
                          const zk_qmeta_t *meta, int64_t now_us);
//  LEASED → ACKING without a record (a FWD whose put is being stored).
void zk_qstore_hold (zk_qstore_t *self, uint32_t id);
//  QUEUED, LEASED or ACKING → ACKING, with a FORWARDED record (seq and
//  position to *record). On error the entry stays ACKING: the caller
//  finishes it with zk_qstore_forward_done.
int zk_qstore_forward (zk_qstore_t *self, uint32_t id, const zk_qforward_t *forward,
                       zk_journal_record_t *record);
//  ACKING → DONE by a forward to target (a name index) at time_us, its
//  FORWARDED record at pos (size 0: none); or, when !ok, QUEUED at the
//  front with a RELEASE record that cancels any FORWARDED record.
void zk_qstore_forward_done (zk_qstore_t *self, uint32_t id, bool ok, zk_journal_pos_t pos,
                             uint32_t target, int64_t time_us, int64_t now_us);
//  After every queue is open: settle this queue's pending forwards
//  against their targets (found through lookup), and finish the
//  messages of other queues that this one holds forwarded from them.
//  Records they write are appended, not synced. The number of messages
//  settled either way.
size_t zk_qstore_reconcile_pending (zk_qstore_t *self, zk_qstore_lookup_fn *lookup, void *arg);
size_t zk_qstore_reconcile_origins (zk_qstore_t *self, zk_qstore_lookup_fn *lookup, void *arg);
//  A message whose record cannot be read back: finish it as DEAD with
//  reason, without a copy (counted, logged).
void zk_qstore_drop (zk_qstore_t *self, uint32_t id, const char *reason, int64_t now_us);

//  Forget finished entries past their time; remove segments that hold no
//  live message and nothing recent enough for dedup or status.
void zk_qstore_maintain (zk_qstore_t *self, int64_t now_us);

//  Decode a record payload (hostile bytes). 0 or ZK_EPROTO.
int zk_qrecord_decode (uint8_t type, const uint8_t *payload, size_t size, zk_qrecord_t *record);

/*  zk_qserver — the inside of the zk_queue actor, shared by src/zk_queue.c
    (sockets, clients, the loop, commit, dispatch, timers, the API) and
    src/zk_qserve.c (ZKQ/1 requests, moves, completions and replies).   */

#define ZK_QSERVER_SIGNATURE  "ZKQ1"
#define ZK_QSERVER_BATCH_MAX  4096  //  requests taken per turn
#define ZK_QSERVER_MAX_FRAMES (4 + ZK_QUEUE_ARG_FRAMES + ZK_QUEUE_BODY_FRAMES)  //  kept per request

typedef struct _zk_qserver_queue_t zk_qserver_queue_t;

//  A consumer of one queue: its credit window, what it holds, its name.
typedef struct {
    uint32_t client;  //  slot
    uint32_t window;
    uint32_t held;
    char consumer[ZK_QUEUE_CONSUMER_MAX + 1];  //  GET's CONSUMER; "" when none was given
} zk_qserver_sub_t;

struct _zk_qserver_queue_t {
    zk_qstore_t *store;
    zk_qserver_sub_t *subs;
    size_t sub_count, sub_capacity;
    size_t next_sub;         //  round robin
    bool dirty;              //  on the dirty list: appended since the last commit
    bool kicked;             //  on the kick list: may have something to deliver
    bool failing;            //  on the failed list
    uint64_t fail_from;      //  records with seq >= this are lost (UINT64_MAX: none)
    uint32_t moves_pending;  //  unsettled moves into this queue
};

typedef struct {
    uint8_t id[256];
    size_t id_size;
    uint32_t slot;
    int fd;  //  connection its frames came from; -1: none known
    uint32_t fd_gen;
    int64_t last_seen;
    zk_qserver_queue_t **queues;  //  queues it has a sub in
    size_t queue_count, queue_capacity;
    zlist_t *outbox;  //  zmsg_t replies its full pipe could not take yet
    bool blocked;     //  a send got EAGAIN: wait for the retry tick
    bool gone;        //  unreachable: removed at the next safe point
    char key[2 * 256 + 1];
} zk_qserver_client_t;

typedef enum {
    ZK_QREPLY_NONE,  //  no reply (pull)
    ZK_QREPLY_OK,    //  plain OK
    ZK_QREPLY_ERR,   //  ERR code text
    ZK_QREPLY_PUT,   //  OK once the put is durable
    ZK_QREPLY_DUP,   //  OK if the original put is (still) there
    ZK_QREPLY_ACK,   //  OK once the ack is durable
    ZK_QREPLY_GET,   //  set the window, OK
    ZK_QREPLY_STATUS,
    ZK_QREPLY_STATS,
    ZK_QREPLY_LIST,
    ZK_QREPLY_MOVES,  //  NACK dead and MOVE: OK COUNT / OK when the moves settled
    ZK_QREPLY_FWD,    //  OK once the forward is decided (the target's put, or the record)
    ZK_QREPLY_TRACE,
} zk_qserver_kind_t;

typedef struct {
    uint8_t kind;
    uint8_t tag_size;
    uint16_t code;  //  ZK_QREPLY_ERR
    uint32_t client;
    uint8_t tag[ZK_QUEUE_TAG_MAX];
    zk_qserver_queue_t *queue;
    uint32_t entry;
    uint64_t seq;
    zk_journal_pos_t pos;
    const char *text;  //  ZK_QREPLY_ERR; static
    uint8_t msgid[16];
    uint32_t number;  //  GET window, LIST max
    uint32_t moved, move_failed, moves_open;
    bool count_reply;  //  ZK_QREPLY_MOVES: reply OK COUNT (MOVE) rather than OK (NACK)
    char name[ZK_QUEUE_NAME_MAX + 1];  //  ZK_QREPLY_STATS of one queue; GET's CONSUMER
    //  ZK_QREPLY_FWD: the target, its new entry (ZK_QSTORE_NIL: it held the
    //  message already) whose put record is seq; the FORWARDED record of
    //  entry is source_seq (0: none) at pos.
    zk_qserver_queue_t *target;
    uint32_t target_entry;
    uint32_t target_index;  //  the target's name index
    uint64_t source_seq;
    int64_t time_us;
} zk_qserver_completion_t;

typedef struct {
    zk_qserver_queue_t *source;
    uint32_t entry;
    zk_qserver_queue_t *target;
    uint32_t target_entry;  //  ZK_QSTORE_NIL: the target already held it
    uint64_t target_seq;
    uint32_t completion;  //  index in this turn's completions, or UINT32_MAX
    uint8_t type;         //  ZK_QREC_DEAD or ZK_QREC_MOVED
    bool failed;          //  the copy could not be appended
    bool unreadable;      //  the source record could not be read
    char text[ZK_QUEUE_REASON_MAX + 1];
    int64_t started_us;                        //  a leased message: when its delivery began
    char consumer[ZK_QUEUE_CONSUMER_MAX + 1];  //  and who had it
} zk_qserver_move_t;

typedef struct {
    zsock_t *sock;
    zk_spec_t *spec;
    char name[ZK_QUEUE_NAME_MAX + 1];
    char role[ZK_QUEUE_NAME_MAX + 8];
} zk_qserver_pull_t;

typedef struct {
    uint64_t requests, errors, put_failed, pulled, dropped, syncs, duplicates, nacked, expired,
        released, damaged_open;
} zk_qserver_counters_t;

typedef struct {
    zsock_t *pipe;
    const zk_queue_config_t *config;
    zk_qstore_config_t store_config;
    int dir_fd;  //  holds the data directory's lock
    zsock_t *router;
    zk_spec_t **router_specs;
    size_t router_spec_count;
    zsock_t *monitor;
    zk_qserver_pull_t *pulls;
    size_t pull_count;

    zk_qnames_t names;    //  queue names by index (origins, forward targets)
    zhashx_t *queue_map;  //  name → zk_qserver_queue_t *
    zk_qserver_queue_t **queues;
    size_t queue_count, queue_capacity;
    zk_qserver_queue_t **dirty, **kicked, **failing;
    size_t dirty_count, kicked_count, failing_count;

    zhashx_t *client_map;           //  hex routing id → zk_qserver_client_t *
    zk_qserver_client_t **clients;  //  by slot
    uint32_t client_capacity, client_count;
    uint32_t *free_slots, *freed_slots;  //  freed slots are reused only next turn
    uint32_t free_count, freed_count;
    zk_qserver_client_t *last_client;
    uint32_t *fd_gen;
    size_t fd_gen_size;

    zk_qserver_completion_t *completions;
    size_t completion_count;
    zk_qserver_move_t *moves;
    size_t move_count, move_capacity;
    size_t batch_bytes;
    zmq_msg_t frames[ZK_QSERVER_MAX_FRAMES];

    int64_t now_ms, now_us;
    int64_t next_timer, next_stats, next_idle, retry_at;
    bool paused, terminated;
    zk_qserver_counters_t counters;
} zk_qserver_t;

//  queue has records to commit this turn.
void zk_qserver_mark_dirty (zk_qserver_t *self, zk_qserver_queue_t *queue);
//  queue may have something to deliver: dispatch looks at it this turn.
void zk_qserver_kick (zk_qserver_t *self, zk_qserver_queue_t *queue);
//  queue lost its records from from_seq on (a failed write or sync: rc).
void zk_qserver_note_failure (zk_qserver_t *self, zk_qserver_queue_t *queue, uint64_t from_seq,
                              int rc);
//  True when record seq of queue is durable under the policy and was not lost.
bool zk_qserver_record_ok (zk_qserver_t *self, zk_qserver_queue_t *queue, uint64_t seq);
//  --fsync always: make queue durable now (a PUT or ACK was appended).
void zk_qserver_sync_always (zk_qserver_t *self, zk_qserver_queue_t *queue);
//  The queue called name (size bytes, a valid name), opened or created
//  when create is set; NULL if absent or it cannot be opened (logged).
zk_qserver_queue_t *zk_qserver_queue_get (zk_qserver_t *self, const void *name, size_t size,
                                          bool create);
//  NAME.dead of queue, opened on demand; NULL if the name would be too
//  long or it cannot be opened.
zk_qserver_queue_t *zk_qserver_dead_queue (zk_qserver_t *self, zk_qserver_queue_t *queue);
//  The sub of client slot on queue, or NULL.
zk_qserver_sub_t *zk_qserver_sub_find (zk_qserver_queue_t *queue, uint32_t slot);
//  The consumer name of client slot on queue, or NULL when it gave none.
const char *zk_qserver_consumer (zk_qserver_queue_t *queue, uint32_t slot);
//  The client behind a routing id (created on first sight), bound to
//  the connection fd its frames came from. NULL when out of memory.
zk_qserver_client_t *zk_qserver_client_for (zk_qserver_t *self, const uint8_t *id, size_t size,
                                            int fd);
//  Send parts to client (copied). A full pipe keeps replies in the
//  client's outbox (queue_on_full) or refuses (deliveries): ZK_EIO;
//  a client gone: ZK_EENDPOINT.
int zk_qserver_send (zk_qserver_t *self, zk_qserver_client_t *client, const void *const *parts,
                     const size_t *sizes, int count, bool queue_on_full);
//  A delivery ended without an ack: requeue it at the front, or after
//  max_deliver attempts move it to NAME.dead; a request waiting for that
//  move is completion (or UINT32_MAX).
void zk_qserver_release (zk_qserver_t *self, zk_qserver_queue_t *queue, uint32_t id,
                         const char *reason, uint32_t completion);
//  Take the requests waiting (router and pulls), up to the batch limits:
//  each appends its records and leaves a completion.
void zk_qserver_read_batch (zk_qserver_t *self);
//  After the commit: finish the moves whose copy is durable or failed.
void zk_qserver_settle_moves (zk_qserver_t *self);
//  After the commit: apply completion c and send its reply.
void zk_qserver_complete (zk_qserver_t *self, zk_qserver_completion_t *c);

#endif
